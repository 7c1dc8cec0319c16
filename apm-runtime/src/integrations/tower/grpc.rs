//! gRPC status codes as Elastic's gRPC spec records them on server transactions.

use crate::model::event::Outcome;

/// The status code's name, as `result` carries it (`OK`, `NOT_FOUND`, …).
pub(super) fn name(code: u32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// Elastic's server-side rule: only codes that say the server failed are failures; a client's
/// mistake (`INVALID_ARGUMENT`, `NOT_FOUND`, `UNAUTHENTICATED`, …) or its cancelling is not.
pub(super) fn outcome(code: u32) -> Outcome {
    match code {
        2 | 4 | 8 | 9 | 10 | 13 | 14 | 15 => Outcome::Failure,
        0..=16 => Outcome::Success,
        // A code outside the spec is read as UNKNOWN, which is a failure.
        _ => Outcome::Failure,
    }
}

/// The `grpc-status` of a header or trailer map, if it has a readable one.
pub(super) fn status(headers: &http::HeaderMap) -> Option<u32> {
    headers.get("grpc-status")?.to_str().ok()?.trim().parse().ok()
}

/// Whether a request speaks gRPC (`application/grpc`, `application/grpc+proto`, …).
pub(super) fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elastics_server_side_table() {
        let failures: Vec<&str> = (0..17).filter(|c| outcome(*c) == Outcome::Failure).map(name).collect();
        assert_eq!(
            failures,
            [
                "UNKNOWN",
                "DEADLINE_EXCEEDED",
                "RESOURCE_EXHAUSTED",
                "FAILED_PRECONDITION",
                "ABORTED",
                "INTERNAL",
                "UNAVAILABLE",
                "DATA_LOSS"
            ]
        );
        assert_eq!(outcome(99), Outcome::Failure);
        assert_eq!(name(99), "UNKNOWN");
    }

    #[test]
    fn status_and_content_type() {
        let mut h = http::HeaderMap::new();
        assert_eq!(status(&h), None);
        h.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(status(&h), Some(5));
        assert!(!is_grpc(&h));
        h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/grpc+proto"));
        assert!(is_grpc(&h));
    }
}
