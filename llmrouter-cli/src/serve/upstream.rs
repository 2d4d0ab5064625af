//! Calling the chosen model from `serve`: an async OpenAI-compatible client.
//!
//! hyper's pooled client (HTTP/1.1) with rustls on *ring* and the platform's certificate store,
//! as `infer`'s blocking client has. The endpoint and the API key are chosen as `infer` chooses
//! them (the candidate's `api_endpoint`, else the config's; [`ApiKeys`]), and every error text is
//! redacted by the same [`ApiKeys`]. Retries follow `infer`'s policy ([`CallError::is_retryable`],
//! [`backoff_delay`], `Retry-After`), and happen only before anything reaches the client: a
//! streamed answer counts as started once its first chunk has arrived.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use llmrouter_core::client::{backoff_delay, parse_retry_after, snippet};
use llmrouter_core::{ApiKeys, CallError, Candidate, ClientOptions};
use serde_json::Value;

use super::metrics::Usage;

/// The longest non-streamed answer read (larger ones are an error, not an allocation).
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// A model's successful answer, not yet sent to the client.
pub enum Reply {
    /// A whole JSON answer, with `model` already set to the candidate key, and its usage.
    Json(Bytes, Option<Usage>),
    /// An SSE stream: its first chunk (already read) and the rest, to be relayed.
    Stream {
        /// The first data received.
        first: Bytes,
        /// The rest of the upstream body.
        rest: Incoming,
        /// When the attempt's total timeout expires.
        deadline: tokio::time::Instant,
    },
}

/// The async client: one per server, shared by every request.
pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    options: ClientOptions,
    keys: ApiKeys,
    default_endpoint: Option<String>,
}

impl Upstream {
    /// A client with `options`' timeouts and retries; `default_endpoint` is the config's
    /// `api_endpoint`.
    pub fn new(options: ClientOptions, keys: ApiKeys, default_endpoint: Option<String>) -> std::io::Result<Self> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(options.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_platform_verifier(Arc::new(rustls::crypto::ring::default_provider()))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .build(https);
        let default_endpoint = default_endpoint.filter(|e| !e.trim().is_empty());
        Ok(Upstream { client, options, keys, default_endpoint })
    }

    /// `text` with every upstream API key replaced by `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        self.keys.redact(text)
    }

    /// The chat-completions URL for `candidate`, as `ChatClient::url_for` gives it.
    pub fn url_for(&self, candidate: &Candidate) -> Result<String, CallError> {
        endpoint_url(candidate, self.default_endpoint.as_deref())
    }

    /// Sends `body` (the client's request with the candidate's API model id) to `candidate`,
    /// retrying as the options say. Returns the reply or the last error, and the attempts made.
    pub async fn call(&self, candidate: &Candidate, body: Bytes, stream: bool) -> (Result<Reply, CallError>, u32) {
        let url = match self.url_for(candidate) {
            Ok(url) => url,
            Err(e) => return (Err(e), 0),
        };
        let mut rng = llmrouter_core::rng::SplitMix64::new(seed(&url));
        let mut attempts = 0;
        loop {
            let key = match self.keys.key_for(candidate) {
                Ok(key) => key,
                Err(e) => return (Err(e), attempts),
            };
            attempts += 1;
            let error = match self.attempt(&url, key, body.clone(), &candidate.name, stream).await {
                Ok(reply) => return (Ok(reply), attempts),
                Err(e) => self.redact_error(e),
            };
            let retry_after = match &error {
                CallError::Status { retry_after, .. } => *retry_after,
                _ => None,
            };
            if !error.is_retryable()
                || attempts > self.options.max_retries
                || retry_after.is_some_and(|w| w > self.options.max_retry_after)
            {
                return (Err(error), attempts);
            }
            let delay = backoff_delay(&self.options, attempts, &mut rng);
            tokio::time::sleep(retry_after.map_or(delay, |w| w.max(delay))).await;
        }
    }

    fn redact_error(&self, error: CallError) -> CallError {
        self.keys.redact_error(error)
    }

    /// One HTTP attempt: the status, then the whole answer (not streamed) or its first chunk.
    async fn attempt(
        &self,
        url: &str,
        key: Option<&str>,
        body: Bytes,
        model_key: &str,
        stream: bool,
    ) -> Result<Reply, CallError> {
        let deadline = tokio::time::Instant::now() + self.options.timeout;
        let timed_out = || CallError::Timeout {
            url: url.to_owned(),
            what: format!("no complete answer within the timeout of {:.1} s", self.options.timeout.as_secs_f64()),
        };
        let mut request = hyper::Request::post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, if stream { "text/event-stream" } else { "application/json" })
            .header(header::USER_AGENT, concat!("llmrouter/", env!("CARGO_PKG_VERSION")));
        if let Some(key) = key {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| CallError::Keys {
                message: "an API key holds characters not allowed in an HTTP header".to_owned(),
            })?;
            value.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = request.body(Full::new(body)).map_err(|e| CallError::Transport {
            url: url.to_owned(),
            message: e.to_string(),
            retryable: false,
        })?;
        let response = tokio::time::timeout_at(deadline, self.client.request(request))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| transport_error(url, &e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let is_sse = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        let mut incoming = response.into_body();
        if (200..300).contains(&status) && stream && is_sse {
            // The answer has started only once its first chunk is here: until then a failure can
            // still be retried or fall back.
            loop {
                let frame = tokio::time::timeout_at(deadline, incoming.frame()).await.map_err(|_| timed_out())?;
                match frame {
                    None => return Ok(Reply::Stream { first: Bytes::new(), rest: incoming, deadline }),
                    Some(Err(e)) => return Err(body_error(url, &e)),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            if !data.is_empty() {
                                return Ok(Reply::Stream { first: data, rest: incoming, deadline });
                            }
                        }
                    }
                }
            }
        }
        let collected = tokio::time::timeout_at(deadline, Limited::new(incoming, MAX_BODY_BYTES).collect())
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| CallError::Transport {
                url: url.to_owned(),
                message: format!("reading the answer: {e}"),
                retryable: !e.is::<http_body_util::LengthLimitError>(),
            })?
            .to_bytes();
        if !(200..300).contains(&status) {
            let mut body = snippet(&String::from_utf8_lossy(&collected));
            if key.is_none() && matches!(status, 401 | 403) {
                body.push_str(" (no API key was sent: set API_KEYS, or `api_key_env` for this model in llm_data)");
            }
            return Err(CallError::Status { status, url: url.to_owned(), body, retry_after });
        }
        let malformed = |message: String| CallError::Malformed { url: url.to_owned(), message };
        let mut answer: Value = serde_json::from_slice(&collected)
            .map_err(|e| malformed(format!("not JSON ({e}): {}", snippet(&String::from_utf8_lossy(&collected)))))?;
        let Some(object) = answer.as_object_mut() else {
            return Err(malformed("not a JSON object".to_owned()));
        };
        if let Some(error) = object.get("error").filter(|e| !e.is_null()) {
            let message = error.get("message").and_then(Value::as_str).map_or_else(|| error.to_string(), str::to_owned);
            return Err(malformed(format!("the API reported an error: {}", snippet(&message))));
        }
        object.insert("model".to_owned(), Value::String(model_key.to_owned()));
        let usage = Usage::from_answer(&answer);
        Ok(Reply::Json(Bytes::from(answer.to_string()), usage))
    }
}

/// `POST {endpoint}/chat/completions`: the candidate's `api_endpoint`, else `default`; an
/// endpoint that already ends in `/chat/completions` is used as it is.
pub fn endpoint_url(candidate: &Candidate, default: Option<&str>) -> Result<String, CallError> {
    let base = candidate
        .api_endpoint
        .as_deref()
        .or(default)
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| CallError::NoEndpoint { model: candidate.name.clone() })?;
    let base = base.trim_end_matches('/');
    Ok(if base.ends_with("/chat/completions") { base.to_owned() } else { format!("{base}/chat/completions") })
}

fn seed(url: &str) -> u64 {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ llmrouter_core::rng::fnv1a64(url.as_bytes()) ^ Instant::now().elapsed().as_nanos() as u64
}

/// The message of `error` and of every error below it.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let more = e.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = e.source();
    }
    text
}

fn transport_error(url: &str, error: &hyper_util::client::legacy::Error) -> CallError {
    let message = chain(error);
    // TLS failures (a bad certificate) do not heal on their own; refused connections may.
    let retryable = !(message.contains("certificate") || message.contains("InvalidCertificate"));
    CallError::Transport { url: url.to_owned(), message, retryable }
}

fn body_error(url: &str, error: &hyper::Error) -> CallError {
    CallError::Transport {
        url: url.to_owned(),
        message: format!("reading the answer: {}", chain(error)),
        retryable: true,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use llmrouter_core::{Candidates, ChatClient};

    use super::*;

    /// The same URL as `infer`'s client, for every shape of endpoint.
    #[test]
    fn urls_are_those_of_infer() {
        let c = Candidates::from_json_str(
            r#"{"a": {"api_endpoint": "http://h/v1/"}, "b": {}, "c": {"api_endpoint": "http://h/v1/chat/completions"},
                "d": {"api_endpoint": " "}}"#,
            Path::new("l.json"),
        )
        .expect("candidates");
        for default in [Some("http://d/v1"), Some("http://d/v1/"), None] {
            let infer = ChatClient::new(ClientOptions::default(), ApiKeys::none(), default.map(str::to_owned));
            for candidate in c.all() {
                let ours = endpoint_url(candidate, default).map_err(|e| e.to_string());
                let theirs = infer.url_for(candidate).map_err(|e| e.to_string());
                assert_eq!(ours, theirs, "{} with default {default:?}", candidate.name);
            }
        }
    }
}
