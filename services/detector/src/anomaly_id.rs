//! Stable anomaly episode ids.

use crate::slice::SliceKey;

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Returns the id of the episode of `metric` × `slice` that started at the
/// window starting at `episode_start_ms`: 16 lowercase hex digits of the
/// 64-bit FNV-1a hash of a length-prefixed encoding of the three values.
///
/// The firing and the resolution of one episode share the id, and a
/// detector that processes the same history again (after a restart, or in a
/// replay) produces the same id, on any platform and build.
pub fn anomaly_id(metric: &str, slice: &SliceKey, episode_start_ms: i64) -> String {
    let mut hash = Fnv1a64::new();
    hash.write_text(metric);
    hash.write(&(slice.dimensions().len() as u64).to_le_bytes());
    for (name, value) in slice.dimensions() {
        hash.write_text(name);
        hash.write_text(value);
    }
    hash.write(&episode_start_ms.to_le_bytes());

    format!("{:016x}", hash.finish())
}

/// FNV-1a, 64-bit, as specified by Fowler, Noll and Vo
/// (IETF draft-eastlake-fnv). Not cryptographic: ids only need to be
/// stable and rarely collide.
struct Fnv1a64 {
    state: u64,
}

impl Fnv1a64 {
    fn new() -> Fnv1a64 {
        Fnv1a64 {
            state: FNV_OFFSET_BASIS,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.state ^= u64::from(*byte);
            self.state = self.state.wrapping_mul(FNV_PRIME);
        }
    }

    /// Writes the length first, so `("ab", "c")` and `("a", "bc")` differ.
    fn write_text(&mut self, text: &str) {
        self.write(&(text.len() as u64).to_le_bytes());
        self.write(text.as_bytes());
    }

    fn finish(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fnv(bytes: &[u8]) -> u64 {
        let mut hash = Fnv1a64::new();
        hash.write(bytes);
        hash.finish()
    }

    #[test]
    fn fnv_matches_reference_vectors() {
        // Test vectors of the FNV reference implementation.
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn id_is_deterministic() {
        let slice = SliceKey::single("os", "iOS");

        let first = anomaly_id("views", &slice, 1_700_000_040_000);
        let second = anomaly_id("views", &slice.clone(), 1_700_000_040_000);

        assert_eq!(first, second);
        assert_eq!(first.len(), 16);
        assert!(
            first
                .chars()
                .all(|character| character.is_ascii_hexdigit() && !character.is_ascii_uppercase())
        );
    }

    #[test]
    fn id_is_pinned() {
        // Expected values computed independently (Python, same encoding).
        // A change of the encoding would break ids that notifiers keep
        // across a detector upgrade, so it must fail here.
        assert_eq!(
            anomaly_id("views", &SliceKey::single("os", "iOS"), 1_700_000_040_000),
            "db94766c25be486e"
        );
        assert_eq!(anomaly_id("views", &SliceKey::total(), 0), "63e6bc95fd5d12a6");
    }

    #[test]
    fn id_differs_per_component() {
        let base = anomaly_id("views", &SliceKey::single("os", "iOS"), 1_000);

        assert_ne!(base, anomaly_id("likes", &SliceKey::single("os", "iOS"), 1_000));
        assert_ne!(base, anomaly_id("views", &SliceKey::single("os", "Android"), 1_000));
        assert_ne!(base, anomaly_id("views", &SliceKey::single("source", "iOS"), 1_000));
        assert_ne!(base, anomaly_id("views", &SliceKey::total(), 1_000));
        assert_ne!(base, anomaly_id("views", &SliceKey::single("os", "iOS"), 2_000));
    }

    #[test]
    fn length_prefix_separates_fields() {
        assert_ne!(
            anomaly_id("a", &SliceKey::single("bc", "d"), 0),
            anomaly_id("ab", &SliceKey::single("c", "d"), 0)
        );
    }
}
