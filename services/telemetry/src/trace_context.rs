//! W3C trace context (`traceparent`) between services: Kafka headers and the
//! `traceparent` field of anomaly events.
//!
//! The helpers act on `tracing` spans through the OpenTelemetry layer that
//! [`crate::init_telemetry`] installs. Without that layer spans carry no
//! trace context, so [`span_traceparent`] returns `None` and the linking
//! functions do nothing.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Name of the W3C trace context header and of the proto field.
pub const TRACEPARENT: &str = "traceparent";

/// Maximum span links per span. A batch or window aggregates up to thousands
/// of messages, while opentelemetry_sdk 0.33 keeps at most 128 links per span
/// by default and drops the rest.
pub const MAX_SPAN_LINKS: usize = 32;

/// Parses a `traceparent` value such as
/// `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`; `None` when
/// it is invalid.
pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
    // The SDK's propagator (0.33) also accepts shorter ids, which W3C Trace
    // Context forbids: version 2, trace id 32, span id 16, flags 2 hex digits.
    let field_lengths: Vec<usize> = value.trim().split('-').take(4).map(str::len).collect();
    if field_lengths != [2, 32, 16, 2] {
        return None;
    }

    let carrier = HashMap::from([(TRACEPARENT.to_string(), value.trim().to_string())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then_some(span_context)
}

/// Renders the trace context of `span` as a `traceparent` value; `None` when
/// the span has no valid trace context.
pub fn span_traceparent(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }

    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes the remote span of `traceparent` the parent of `span`, which must
/// not have been entered yet. Returns false when the value is invalid.
pub fn set_remote_parent(span: &tracing::Span, traceparent: &str) -> bool {
    let Some(span_context) = parse_traceparent(traceparent) else {
        return false;
    };

    let parent = opentelemetry::Context::new().with_remote_span_context(span_context);
    span.set_parent(parent).is_ok()
}

/// Connects `span`, which aggregates many messages, to their trace contexts:
/// the first valid one becomes its parent, so a trace continues from the
/// producer, and the next distinct ones, up to [`MAX_SPAN_LINKS`], become
/// span links. Call it before the span is entered.
pub fn link_message_contexts<'a>(span: &tracing::Span, traceparents: impl IntoIterator<Item = &'a str>) {
    let mut parent_set = false;
    let mut linked: Vec<SpanContext> = Vec::new();

    for traceparent in traceparents {
        let Some(span_context) = parse_traceparent(traceparent) else {
            continue;
        };
        if !parent_set {
            let parent = opentelemetry::Context::new().with_remote_span_context(span_context);
            parent_set = span.set_parent(parent).is_ok();
            continue;
        }
        if linked.len() >= MAX_SPAN_LINKS {
            break;
        }
        if !linked.contains(&span_context) {
            span.add_link(span_context.clone());
            linked.push(span_context);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn valid_traceparent_parses() {
        let context = parse_traceparent(VALID).expect("the W3C example is valid");

        assert_eq!(context.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.span_id().to_string(), "00f067aa0ba902b7");
        assert!(context.is_sampled());
        assert!(context.is_remote());
    }

    #[test]
    fn invalid_traceparents_are_rejected() {
        for invalid in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(invalid).is_none(), "{invalid:?} parsed");
        }
    }

    #[test]
    fn span_without_otel_layer_has_no_traceparent() {
        let span = tracing::info_span!("no_subscriber");

        assert_eq!(span_traceparent(&span), None);
        assert!(!set_remote_parent(&span, "garbage"));
    }
}
