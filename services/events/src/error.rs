use thiserror::Error;

/// Reason a message was rejected as an event. The text names the field, the
/// offending value (shortened) and what the producer should send instead.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EventError {
    #[error("message is {size} bytes, larger than the limit of {limit} bytes; split or trim the event")]
    TooLarge { size: usize, limit: usize },

    #[error("message is not valid UTF-8 at byte {position}; send UTF-8 encoded JSON")]
    NotUtf8 { position: usize },

    #[error("message is not valid JSON: {reason}; send one JSON object per message")]
    InvalidJson { reason: String },

    #[error("message is JSON {found}, not an object; send one JSON object per message")]
    NotAnObject { found: &'static str },

    #[error("required field `{field}` is missing; {hint}")]
    MissingField { field: &'static str, hint: &'static str },

    #[error("field `{field}` has invalid value {value}: {reason}")]
    InvalidField {
        field: &'static str,
        value: String,
        reason: String,
    },
}

impl EventError {
    /// Short stable label of the error kind, for metrics and the dead-letter
    /// record.
    pub fn kind(&self) -> &'static str {
        match self {
            EventError::TooLarge { .. } => "too_large",
            EventError::NotUtf8 { .. } => "not_utf8",
            EventError::InvalidJson { .. } => "invalid_json",
            EventError::NotAnObject { .. } => "not_an_object",
            EventError::MissingField { .. } => "missing_field",
            EventError::InvalidField { .. } => "invalid_field",
        }
    }
}
