//! Deterministic noise for the detection tests.

/// Noise in [-1, 1] from a 64-bit LCG (Knuth's MMIX constants), seeded by
/// its field.
pub(crate) struct Noise(pub u64);

impl Noise {
    pub fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}
