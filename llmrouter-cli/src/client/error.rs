//! Why a model call failed ([`CallError`]), which failures are worth another attempt, and the
//! one-line excerpt of an error body that messages quote ([`snippet`]).

use std::time::Duration;

/// How much of an error body is quoted in an error message.
const ERROR_BODY_CHARS: usize = 300;

/// Why a call failed. Every message the client returns is already redacted: it never contains
/// an API key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// `API_KEYS`, or a variable named by `api_key_env`, is unusable.
    #[error("{message}")]
    Keys {
        /// What is wrong (names variables and services, never keys).
        message: String,
    },
    /// Neither the candidate nor the config has an `api_endpoint`.
    #[error("model `{model}` has no endpoint: set `api_endpoint` for it in llm_data, or `api_endpoint` in the config")]
    NoEndpoint {
        /// The candidate.
        model: String,
    },
    /// The router chose a model that is not among the candidates.
    #[error("the router chose `{model}`, which is not a candidate model")]
    UnknownModel {
        /// The name the router returned.
        model: String,
    },
    /// The server answered with an HTTP error status.
    #[error("HTTP {status} from {url}: {body}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The URL called.
        url: String,
        /// The start of the response body, and any hint about the cause.
        body: String,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The attempt took longer than a timeout.
    #[error("timed out calling {url} ({what})")]
    Timeout {
        /// The URL called.
        url: String,
        /// Which timeout expired.
        what: String,
    },
    /// The connection could not be made or broke off.
    #[error("cannot call {url}: {message}")]
    Transport {
        /// The URL called.
        url: String,
        /// The transport error.
        message: String,
        /// Whether trying again may help (not for TLS or URL errors).
        retryable: bool,
    },
    /// The server answered 2xx with something that is not a chat completion.
    #[error("malformed response from {url}: {message}")]
    Malformed {
        /// The URL called.
        url: String,
        /// What is wrong with it.
        message: String,
    },
}

impl CallError {
    /// Whether another attempt at the same model may succeed: timeouts, transport errors, 408,
    /// 429 and 5xx (a 429 whose `Retry-After` exceeds the limit is marked not retryable).
    pub fn is_retryable(&self) -> bool {
        match self {
            CallError::Timeout { .. } => true,
            CallError::Transport { retryable, .. } => *retryable,
            CallError::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            _ => false,
        }
    }
}

/// The first [`ERROR_BODY_CHARS`] characters of an error body, on one line.
pub fn snippet(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        return "(empty body)".to_owned();
    }
    let mut out: String = one_line.chars().take(ERROR_BODY_CHARS).collect();
    if one_line.chars().count() > ERROR_BODY_CHARS {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_failures_are_retried() {
        let status = |status| CallError::Status { status, url: String::new(), body: String::new(), retry_after: None };
        for code in [408, 429, 500, 502, 503] {
            assert!(status(code).is_retryable(), "{code}");
        }
        for code in [400, 401, 403, 404, 422] {
            assert!(!status(code).is_retryable(), "{code}");
        }
        assert!(CallError::Timeout { url: String::new(), what: String::new() }.is_retryable());
        assert!(!CallError::Malformed { url: String::new(), message: String::new() }.is_retryable());
    }
}
