use thiserror::Error;

/// Reason a statistic cannot be computed. The text names the value that
/// failed and what to change.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum StatsError {
    #[error(
        "group `{sample}` has {count} values, but {test} needs at least {required}; widen the time range or check the group name"
    )]
    TooFewValues {
        test: &'static str,
        sample: String,
        count: usize,
        required: usize,
    },

    #[error(
        "value {index} of sample `{sample}` is {value}, but {test} needs finite numbers; check the per-user aggregates"
    )]
    NonFinite {
        test: &'static str,
        sample: String,
        index: usize,
        value: f64,
    },

    #[error(
        "both samples of {test} are constant (control {control}, treatment {treatment}), so the standard error is 0 and the test is undefined; use a metric that varies between users or a longer period"
    )]
    ZeroVariance {
        test: &'static str,
        control: f64,
        treatment: f64,
    },

    #[error(
        "every one of the {count} values of {test} equals {value}, so the rank test is undefined; use a metric that varies between users"
    )]
    AllTied {
        test: &'static str,
        count: usize,
        value: f64,
    },

    #[error("`{name}` is {value}, expected {expected}")]
    InvalidParameter {
        name: &'static str,
        value: f64,
        expected: &'static str,
    },

    #[error(
        "group `{group}` has no {denominator} events, so its ratio is undefined; check the time range and the event names"
    )]
    ZeroDenominator { group: String, denominator: &'static str },
}

/// Checks that a sample has at least `required` finite values.
pub(crate) fn check_sample(
    test: &'static str,
    sample: &str,
    values: &[f64],
    required: usize,
) -> Result<(), StatsError> {
    if values.len() < required {
        return Err(StatsError::TooFewValues {
            test,
            sample: sample.to_string(),
            count: values.len(),
            required,
        });
    }

    match values.iter().position(|value| !value.is_finite()) {
        Some(index) => Err(StatsError::NonFinite {
            test,
            sample: sample.to_string(),
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Checks that `alpha` is a probability strictly between 0 and 1.
pub(crate) fn check_probability(name: &'static str, value: f64) -> Result<(), StatsError> {
    if value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err(StatsError::InvalidParameter {
            name,
            value,
            expected: "a probability strictly between 0 and 1, e.g. 0.05",
        })
    }
}
