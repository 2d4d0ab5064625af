//! The model client of `infer` and `serve`: one async OpenAI-compatible chat-completions client.
//!
//! - **Where**: `POST {endpoint}/chat/completions`, the endpoint being the candidate's
//!   `api_endpoint`, else the config's `api_endpoint`; the API model id is the candidate's `model`.
//! - **HTTP and TLS**: hyper's pooled HTTP/1.1 client on tokio, with rustls on the *ring*
//!   provider trusting the platform's certificate store (`rustls-platform-verifier`); no
//!   OpenSSL, no aws-lc, no bundled roots. Redirects are not followed (they would resend the
//!   prompt, and maybe the key, elsewhere): a 3xx is an error.
//! - **Keys** ([`keys`]): [`ApiKeys`] chooses each candidate's key and redacts every key from
//!   every error and answer the client returns.
//! - **Reliability** ([`ClientOptions`], [`retry`]): a connect timeout and a total timeout per
//!   attempt; retries with exponential backoff and jitter on timeouts, transport errors, 408,
//!   429 (waiting at least its `Retry-After`) and 5xx ([`CallError::is_retryable`]); no retry on
//!   other 4xx or on a malformed answer.
//! - **Streams** ([`Client::send`] with `stream`): an SSE answer counts as started once its
//!   first chunk has arrived; until then a failure is retried like any other, after it the
//!   caller relays the rest and a failure can no longer be retried.
//! - **Fallback** ([`answer`]): when the chosen model still fails, the next models of
//!   [`fallback_order`] are tried, and the result records which failed first.
//!
//! One [`Client`] (one connection pool) serves a whole command: every query of an `infer` batch,
//! every request of `serve`. Routing never calls it: routers do no network I/O.

mod answer;
mod error;
mod keys;
mod retry;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use llmrouter_core::Candidate;
use llmrouter_core::rng::SplitMix64;
use serde_json::{Map, Value};

pub use answer::{InferResult, fallback_order};
pub use error::{CallError, snippet};
pub use keys::{API_KEYS_VAR, ApiKeys, REDACTED};
pub use retry::{backoff_delay, parse_retry_after};

/// The longest answer read when not streamed (larger ones are an error, not an allocation).
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// Timeouts, retries and sampling settings of a [`Client`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClientOptions {
    /// Longest wait for a TCP connection to be set up.
    pub connect_timeout: Duration,
    /// Longest time one attempt may take, from connecting to the end of the answer (for a
    /// stream: to its last chunk).
    pub timeout: Duration,
    /// Retries after the first attempt (so `1 + max_retries` attempts at most).
    pub max_retries: u32,
    /// Delay before the first retry; it doubles on each retry, with jitter.
    pub backoff: Duration,
    /// The longest delay between two attempts chosen by backoff.
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured; a server asking for more fails the attempt for good.
    pub max_retry_after: Duration,
    /// Sampling temperature sent with each request of [`Client::complete`].
    pub temperature: f64,
    /// `max_tokens` sent with each request of [`Client::complete`].
    pub max_tokens: u32,
    /// Idle connections kept open per host (at least the number of calls in flight at once).
    pub pool_per_host: usize,
}

impl Default for ClientOptions {
    /// Python LLMRouter's `infer` defaults (temperature 0.8, 1024 tokens), 3 retries from 0.5 s.
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(120),
            max_retries: 3,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            temperature: 0.8,
            max_tokens: 1024,
            pool_per_host: 8,
        }
    }
}

/// A model's successful answer.
pub enum Reply {
    /// A whole answer: a JSON object that is not an `error`.
    Json(Map<String, Value>),
    /// An SSE stream (only when one was asked for): its first chunk, already read, and the rest.
    Stream {
        /// The first data received.
        first: Bytes,
        /// The rest of the body, to be relayed.
        rest: Incoming,
        /// When the attempt's total timeout expires.
        deadline: tokio::time::Instant,
    },
}

/// The OpenAI-compatible client. Build it once per command; it is cheap to share (`&Client`
/// across tasks, or in an `Arc`).
pub struct Client {
    http: hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    options: ClientOptions,
    keys: ApiKeys,
    default_endpoint: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.options)
            .field("keys", &self.keys)
            .field("default_endpoint", &self.default_endpoint)
            .finish()
    }
}

impl Client {
    /// A client with `options` and `keys`; `default_endpoint` is the config's `api_endpoint`.
    /// Fails only when the platform's certificate store cannot be used. Needs no runtime to be
    /// built; its calls run on tokio.
    pub fn new(options: ClientOptions, keys: ApiKeys, default_endpoint: Option<String>) -> std::io::Result<Self> {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(options.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_platform_verifier(Arc::new(rustls::crypto::ring::default_provider()))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(options.pool_per_host.max(1))
            .build(https);
        let default_endpoint = default_endpoint.filter(|e| !e.trim().is_empty());
        let mut keys = keys;
        if let Some(endpoint) = &default_endpoint {
            keys.add_url_secrets(endpoint);
        }
        Ok(Client { http, options, keys, default_endpoint })
    }

    /// The options in use.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// `text` with every API key replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        self.keys.redact(text)
    }

    /// The chat-completions URL for `candidate`: its `api_endpoint`, else the config's; an
    /// endpoint that already ends in `/chat/completions` is used as it is.
    pub fn url_for(&self, candidate: &Candidate) -> Result<String, CallError> {
        let base = candidate
            .api_endpoint
            .as_deref()
            .or(self.default_endpoint.as_deref())
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| CallError::NoEndpoint { model: candidate.name.clone() })?;
        let base = base.trim_end_matches('/');
        Ok(if base.ends_with("/chat/completions") { base.to_owned() } else { format!("{base}/chat/completions") })
    }

    /// Sends `body` (a chat-completion request naming the candidate's API model id) to
    /// `candidate`, retrying as the options say. With `stream`, an SSE answer is returned as
    /// soon as its first chunk is here. Returns the reply or the last error (redacted), and the
    /// HTTP attempts made.
    pub async fn send(&self, candidate: &Candidate, body: Bytes, stream: bool) -> (Result<Reply, CallError>, u32) {
        let url = match self.url_for(candidate) {
            Ok(url) => url,
            Err(e) => return (Err(e), 0),
        };
        let mut rng = SplitMix64::new(retry::jitter_seed(&url));
        let mut attempts = 0;
        loop {
            let key = match self.keys.key_for(candidate) {
                Ok(key) => key,
                Err(e) => return (Err(e), attempts),
            };
            attempts += 1;
            let error = match self.attempt(&url, key, body.clone(), stream).await {
                Ok(reply) => return (Ok(reply), attempts),
                Err(e) => self.keys.redact_error(e),
            };
            let retry_after = match &error {
                CallError::Status { retry_after, .. } => *retry_after,
                _ => None,
            };
            if !error.is_retryable() || attempts > self.options.max_retries {
                return (Err(error), attempts);
            }
            if let Some(wait) = retry_after.filter(|w| *w > self.options.max_retry_after) {
                let error = match error {
                    CallError::Status { status, url, body, retry_after } => CallError::Status {
                        status,
                        url,
                        body: format!(
                            "{body} (the server asks to wait {} s, more than the {} s this client waits)",
                            wait.as_secs(),
                            self.options.max_retry_after.as_secs()
                        ),
                        retry_after,
                    },
                    other => other,
                };
                return (Err(error), attempts);
            }
            let delay = backoff_delay(&self.options, attempts, &mut rng);
            tokio::time::sleep(retry_after.map_or(delay, |w| w.max(delay))).await;
        }
    }

    /// One HTTP attempt: the status, then the whole answer, or (a stream) its first chunk.
    async fn attempt(&self, url: &str, key: Option<&str>, body: Bytes, stream: bool) -> Result<Reply, CallError> {
        let deadline = tokio::time::Instant::now() + self.options.timeout;
        let timed_out = || CallError::Timeout {
            url: url.to_owned(),
            what: format!("no complete answer within the timeout of {:.1} s", self.options.timeout.as_secs_f64()),
        };
        // Credentials in the URL go in a Basic `Authorization` header (a bearer key wins), never
        // in the request line.
        let (target, basic) = keys::split_credentials(url);
        let sent_credentials = key.is_some() || basic.is_some();
        let mut request = hyper::Request::post(target.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, if stream { "text/event-stream" } else { "application/json" })
            .header(header::USER_AGENT, concat!("llmrouter/", env!("CARGO_PKG_VERSION")));
        if let Some(key) = key {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| CallError::Keys {
                message: "an API key holds characters not allowed in an HTTP header".to_owned(),
            })?;
            value.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, value);
        } else if let Some(basic) = basic {
            let mut value = HeaderValue::from_str(&basic).map_err(|_| CallError::Keys {
                message: "the credentials in an endpoint URL hold characters not allowed in an HTTP header".to_owned(),
            })?;
            value.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = request.body(Full::new(body)).map_err(|e| CallError::Transport {
            url: url.to_owned(),
            message: e.to_string(),
            retryable: false,
        })?;
        let response = tokio::time::timeout_at(deadline, self.http.request(request))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| self.transport_error(url, &e))?;
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
        let text = String::from_utf8_lossy(&collected);
        if !(200..300).contains(&status) {
            let mut body = snippet(&text);
            if !sent_credentials && matches!(status, 401 | 403) {
                body.push_str(&format!(
                    " (no API key was sent: set {API_KEYS_VAR}, or `api_key_env` for this model in llm_data)"
                ));
            }
            return Err(CallError::Status { status, url: url.to_owned(), body, retry_after });
        }
        json_answer(&text).map(Reply::Json).map_err(|message| CallError::Malformed { url: url.to_owned(), message })
    }

    /// A failure to send or to get a response header, as a [`CallError`].
    fn transport_error(&self, url: &str, error: &hyper_util::client::legacy::Error) -> CallError {
        let url = url.to_owned();
        let timed_out = std::iter::successors(std::error::Error::source(error), |e| e.source())
            .filter_map(|e| e.downcast_ref::<std::io::Error>())
            .any(|e| e.kind() == std::io::ErrorKind::TimedOut);
        if timed_out && error.is_connect() {
            let what = format!(
                "no connection within the connect timeout of {:.1} s",
                self.options.connect_timeout.as_secs_f64()
            );
            return CallError::Timeout { url, what };
        }
        let message = chain(error);
        // TLS failures (a bad certificate) do not heal on their own; refused connections may.
        let retryable = !(message.contains("certificate") || message.contains("InvalidCertificate"));
        CallError::Transport { url, message, retryable }
    }
}

/// A 2xx body as a JSON answer: an object that is not an OpenAI-shaped `error`.
fn json_answer(text: &str) -> Result<Map<String, Value>, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("not a chat completion ({e}): {}", snippet(text)))?;
    let Value::Object(answer) = value else {
        return Err(format!("not a chat completion (not a JSON object): {}", snippet(text)));
    };
    if let Some(error) = answer.get("error").filter(|e| !e.is_null()) {
        let message = error.get("message").and_then(Value::as_str).map_or_else(|| error.to_string(), str::to_owned);
        return Err(format!("the API reported an error: {}", snippet(&message)));
    }
    Ok(answer)
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

/// A failure while reading a response body.
fn body_error(url: &str, error: &hyper::Error) -> CallError {
    CallError::Transport {
        url: url.to_owned(),
        message: format!("reading the answer: {}", chain(error)),
        retryable: true,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use llmrouter_core::Candidates;

    use super::*;

    /// Candidates with services, one `api_key_env` and two at the same price.
    pub(crate) fn candidates() -> Candidates {
        Candidates::from_json_str(
            r#"{"cheap": {"cost": 0.1, "service": "NVIDIA", "model": "org/cheap"},
                "mid": {"cost": 0.5, "service": "OpenAI"},
                "dear": {"cost": 2.0, "api_key_env": "DEAR_KEY"},
                "also-dear": {"cost": 2.0}}"#,
            Path::new("llm.json"),
        )
        .expect("candidates")
    }

    #[test]
    fn urls_come_from_the_candidate_then_the_config() {
        let c = Candidates::from_json_str(
            r#"{"a": {"api_endpoint": "http://h/v1/"}, "b": {}, "c": {"api_endpoint": "http://h/v1/chat/completions"}}"#,
            Path::new("l.json"),
        )
        .expect("candidates");
        let client = |default: &str| {
            Client::new(ClientOptions::default(), ApiKeys::none(), Some(default.to_owned())).expect("client")
        };
        let (with_default, without) = (client("http://d/v1"), client(" "));
        let url = |client: &Client, m: &str| client.url_for(c.get(m).expect("candidate"));
        assert_eq!(url(&with_default, "a").expect("own"), "http://h/v1/chat/completions");
        assert_eq!(url(&with_default, "b").expect("config"), "http://d/v1/chat/completions");
        assert_eq!(url(&with_default, "c").expect("full"), "http://h/v1/chat/completions");
        assert!(matches!(url(&without, "b"), Err(CallError::NoEndpoint { .. })));
    }
}
