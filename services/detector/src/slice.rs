//! Identity of one series of a metric: its dimension values.

use std::fmt;

/// Dimension values of a series, sorted by dimension name; empty for the
/// metric's total. The windowing produces the total and single-dimension
/// slices; the type allows more dimensions so the gRPC API can carry them.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SliceKey {
    dimensions: Vec<(String, String)>,
}

impl SliceKey {
    /// The metric's total over all events.
    pub fn total() -> SliceKey {
        SliceKey::default()
    }

    /// The series of one value of one dimension, e.g. `os = iOS`.
    pub fn single(name: &str, value: &str) -> SliceKey {
        SliceKey {
            dimensions: vec![(name.to_string(), value.to_string())],
        }
    }

    /// Builds a slice from `(name, value)` pairs in any order. Fails on a
    /// dimension given twice, naming it.
    pub fn from_pairs<I>(pairs: I) -> Result<SliceKey, String>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut dimensions: Vec<(String, String)> = pairs.into_iter().collect();
        dimensions.sort();

        for pair in dimensions.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(format!(
                    "dimension `{}` is given twice; give each dimension once",
                    pair[0].0
                ));
            }
        }
        Ok(SliceKey { dimensions })
    }

    pub fn dimensions(&self) -> &[(String, String)] {
        &self.dimensions
    }

    pub fn is_total(&self) -> bool {
        self.dimensions.is_empty()
    }
}

/// `total`, or `name=value` pairs joined by commas.
impl fmt::Display for SliceKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dimensions.is_empty() {
            return formatter.write_str("total");
        }
        for (index, (name, value)) in self.dimensions.iter().enumerate() {
            if index > 0 {
                formatter.write_str(",")?;
            }
            write!(formatter, "{name}={value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_sorted_by_name() {
        let slice = SliceKey::from_pairs([
            ("source".to_string(), "ads".to_string()),
            ("os".to_string(), "iOS".to_string()),
        ])
        .unwrap();

        assert_eq!(slice.to_string(), "os=iOS,source=ads");
    }

    #[test]
    fn repeated_dimension_is_rejected() {
        let error = SliceKey::from_pairs([
            ("os".to_string(), "iOS".to_string()),
            ("os".to_string(), "Android".to_string()),
        ])
        .unwrap_err();

        assert!(error.contains("`os`"), "{error}");
    }

    #[test]
    fn total_displays_as_total() {
        assert_eq!(SliceKey::total().to_string(), "total");
        assert!(SliceKey::total().is_total());
        assert!(!SliceKey::single("os", "iOS").is_total());
    }
}
