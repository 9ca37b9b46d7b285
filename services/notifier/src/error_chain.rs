//! Error text with its causes, for log fields.

use std::error::Error;

/// Returns `error` followed by each of its sources, separated by `: `.
/// Transport errors such as tonic's print only "transport error" themselves
/// and keep the reason (connection refused, timed out) in a source.
pub(crate) fn error_chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their source's text in their own message.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
