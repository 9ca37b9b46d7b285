//! Maps teloxide request errors to retry classes and to log text without the
//! bot token.

use std::time::Duration;

use teloxide::{ApiError, RequestError};

use crate::error_chain::error_chain;
use crate::retry::FailureKind;

/// Leading phrases of Bot API error descriptions for client errors. Telegram
/// starts each description with the HTTP reason phrase of its `error_code`
/// ("Bad Request: chat not found", "Forbidden: bot was blocked by the user").
const CLIENT_ERROR_PHRASES: [&str; 6] = [
    "Bad Request",
    "Unauthorized",
    "Forbidden",
    "Not Found",
    "Conflict",
    "Request Entity Too Large",
];

/// Classifies a failed Bot API request for [`crate::retry::RetryPolicy`].
///
/// teloxide-core 0.13 drops the response's HTTP status and `error_code`, so an
/// API error is classified by its description: client-error phrases are
/// permanent, anything else (such as "Internal Server Error") is transient.
pub fn classify_request_error(error: &RequestError) -> FailureKind {
    match error {
        RequestError::RetryAfter(seconds) => FailureKind::RateLimited {
            retry_after: seconds.duration(),
        },
        RequestError::Network(_) | RequestError::Io(_) => FailureKind::Transient,
        // A proxy in front of the Bot API returns 502 or 504 as an HTML page.
        RequestError::InvalidJson { .. } => FailureKind::Transient,
        // The chat id in the configuration is outdated; the error names the new one.
        RequestError::MigrateToChatId(_) => FailureKind::Permanent,
        RequestError::Api(api_error) => classify_api_error(api_error),
    }
}

fn classify_api_error(error: &ApiError) -> FailureKind {
    match error {
        ApiError::Unknown(description) => classify_description(description),
        // Every named variant of teloxide-core 0.13 parses a 4xx description,
        // e.g. "Bad Request: can't parse entities: …" or "Forbidden: …".
        _ => FailureKind::Permanent,
    }
}

fn classify_description(description: &str) -> FailureKind {
    let is_client_error = CLIENT_ERROR_PHRASES
        .iter()
        .any(|phrase| description.starts_with(phrase));
    if is_client_error {
        FailureKind::Permanent
    } else {
        FailureKind::Transient
    }
}

/// Returns the error with its chain of causes, with every occurrence of
/// `token` replaced. teloxide already rewrites the request URL inside network
/// errors; the replacement also covers causes it does not rewrite.
pub fn describe_request_error(error: &RequestError, token: &str) -> String {
    let text = error_chain(error);
    if token.is_empty() {
        return text;
    }
    text.replace(token, "<redacted>")
}

/// Returns the retry delay in a 429 error, for log fields.
pub fn retry_after(error: &RequestError) -> Option<Duration> {
    match error {
        RequestError::RetryAfter(seconds) => Some(seconds.duration()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use teloxide::types::{ChatId, Seconds};

    use super::*;

    fn invalid_json() -> RequestError {
        let source = serde_json_error();
        RequestError::InvalidJson {
            source: Arc::new(source),
            raw: "<html>502 Bad Gateway</html>".into(),
        }
    }

    fn serde_json_error() -> serde_json::Error {
        serde_json::from_str::<u32>("<html>").unwrap_err()
    }

    #[test]
    fn rate_limit_carries_retry_after() {
        let error = RequestError::RetryAfter(Seconds::from_seconds(3));

        assert_eq!(
            classify_request_error(&error),
            FailureKind::RateLimited {
                retry_after: Duration::from_secs(3)
            }
        );
        assert_eq!(retry_after(&error), Some(Duration::from_secs(3)));
    }

    #[test]
    fn bad_request_is_permanent() {
        let errors = [
            RequestError::Api(ApiError::CantParseEntities(
                "Bad Request: can't parse entities: Unsupported start tag \"control\"".to_string(),
            )),
            RequestError::Api(ApiError::ChatNotFound),
            RequestError::Api(ApiError::BotBlocked),
            RequestError::Api(ApiError::Unknown("Bad Request: something new".to_string())),
            RequestError::Api(ApiError::Unknown("Forbidden: something new".to_string())),
            RequestError::MigrateToChatId(ChatId(-1001)),
        ];

        for error in errors {
            assert_eq!(classify_request_error(&error), FailureKind::Permanent, "{error}");
        }
    }

    #[test]
    fn server_errors_are_transient() {
        let errors = [
            RequestError::Api(ApiError::Unknown("Internal Server Error".to_string())),
            RequestError::Api(ApiError::Unknown("Bad Gateway".to_string())),
            RequestError::Api(ApiError::Unknown("Service Unavailable".to_string())),
            invalid_json(),
        ];

        for error in errors {
            assert_eq!(classify_request_error(&error), FailureKind::Transient, "{error}");
        }
    }

    #[test]
    fn description_redacts_token() {
        let token = "123456:SECRET";
        let error = RequestError::Api(ApiError::Unknown(format!("Bad Request: echo {token}")));

        let text = describe_request_error(&error, token);

        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("echo <redacted>"), "{text}");
    }

    #[test]
    fn description_includes_causes() {
        let text = describe_request_error(&invalid_json(), "123456:SECRET");

        assert!(text.starts_with("An error while parsing JSON: "), "{text}");
        assert!(text.contains("502 Bad Gateway"), "{text}");
    }
}
