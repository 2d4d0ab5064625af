//! Calling the chosen model: a blocking OpenAI-compatible chat-completions client.
//!
//! - **Where**: `POST {endpoint}/chat/completions`, the endpoint being the candidate's
//!   `api_endpoint`, else the config's `api_endpoint`; the API model id is the candidate's `model`.
//! - **Keys** ([`ApiKeys`]): a candidate's `api_key_env` names the variable holding its key;
//!   otherwise `API_KEYS` is used, as Python LLMRouter accepts it: a JSON object keyed by the
//!   candidate's `service`, a JSON list, a JSON string, or comma-separated keys. Several keys are
//!   rotated round-robin. Keys are never printed: every text this module returns (errors and
//!   answers alike) has them replaced by `[redacted]`.
//! - **TLS**: rustls with the *ring* provider, trusting the platform's certificate store
//!   (`rustls-platform-verifier`); no OpenSSL, no bundled roots.
//! - **Reliability** ([`ClientOptions`]): a connect timeout and a total timeout per attempt;
//!   retries with exponential backoff and jitter on timeouts, transport errors, 408, 429 (waiting
//!   at least its `Retry-After`) and 5xx; no retry on other 4xx or on a malformed answer.
//! - **Fallback** ([`ChatClient::answer`]): when the chosen model still fails, the next models
//!   of [`fallback_order`] are tried, and the result records which failed first.
//!
//! The client is `Sync`: one instance serves every worker thread of a batch and shares its
//! connection pool. Routing never calls it; only `infer` without `--route-only` does.
//!
//! This module is behind the `client` feature (the CLI enables it), so that crates which only
//! route never build a TLS stack. Its tests: `cargo test -p llmrouter-core --features client`
//! (`cargo test --workspace` includes them).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::data::{Candidate, Candidates};
use crate::query::RouteDecision;
use crate::rng::{SplitMix64, fnv1a64};

/// The variable Python LLMRouter reads its keys from.
pub const API_KEYS_VAR: &str = "API_KEYS";

/// What replaces an API key in every text the client returns.
pub const REDACTED: &str = "[redacted]";

/// The longest response body read (larger answers are an error, not an allocation).
const MAX_BODY_BYTES: u64 = 32 * 1024 * 1024;

/// How much of an error body is quoted in an error message.
const ERROR_BODY_CHARS: usize = 300;

/// Timeouts, retries and sampling settings of a [`ChatClient`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClientOptions {
    /// Longest wait for a connection (TCP and TLS) to be set up.
    pub connect_timeout: Duration,
    /// Longest time one attempt may take, from connecting to the end of the answer.
    pub timeout: Duration,
    /// Retries after the first attempt (so `1 + max_retries` attempts at most).
    pub max_retries: u32,
    /// Delay before the first retry; it doubles on each retry, with jitter.
    pub backoff: Duration,
    /// The longest delay between two attempts chosen by backoff.
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured; a server asking for more fails the attempt for good.
    pub max_retry_after: Duration,
    /// Sampling temperature sent with each request.
    pub temperature: f64,
    /// `max_tokens` sent with each request.
    pub max_tokens: u32,
    /// Idle connections kept open per host (set it to the batch concurrency).
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

/// Why a call failed. Every message is already redacted: it never contains an API key.
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
    /// The server answered 200 with something that is not a chat completion.
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

/// Token counts as the API reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the prompt.
    pub prompt_tokens: u64,
    /// Tokens of the answer.
    pub completion_tokens: u64,
    /// Their sum (as reported, or computed when the API leaves it out).
    pub total_tokens: u64,
}

/// A successful chat completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The answer text.
    pub text: String,
    /// Token usage, when the API reports it.
    pub usage: Option<Usage>,
}

/// The outcome of calling one model, retries included.
#[derive(Debug, Clone, PartialEq)]
pub struct CallReport {
    /// The answer, or the error of the last attempt.
    pub result: Result<Completion, CallError>,
    /// HTTP attempts made (0 when nothing could be sent).
    pub attempts: u32,
}

/// A model that failed before the one whose result is reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedModel {
    /// The candidate's name.
    pub model_name: String,
    /// Attempts made on it.
    pub attempts: u32,
    /// Its last error.
    pub error: String,
}

/// The result of answering one query: what `infer` prints or writes, one JSON object per query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferResult {
    /// Position of the query in its input file (batch runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// The query text.
    pub query: String,
    /// The query's id, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    /// The candidate that answered (or, when none did, the last one tried).
    pub model_name: String,
    /// Its API model id.
    pub api_model: String,
    /// The answer (`null` on failure).
    pub response: Option<String>,
    /// Token usage of the answer (`null` on failure or when the API does not report it).
    pub usage: Option<Usage>,
    /// USD: usage priced at the answering candidate's `input_price`/`output_price` per 1M tokens.
    pub cost: Option<f64>,
    /// Wall time from the first attempt to the result, backoff and fallbacks included.
    pub latency_ms: u64,
    /// Whether a model answered.
    pub success: bool,
    /// Why it failed (`null` on success).
    pub error: Option<String>,
    /// HTTP attempts made, over every model tried.
    pub attempts: u32,
    /// Models that failed before `model_name`, in the order tried (absent when none did).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback_from: Vec<FailedModel>,
    /// The routing decision, unchanged (`model_name` there is the router's choice).
    pub routing: RouteDecision,
}

/// One set of keys rotated round-robin.
struct KeyRing {
    keys: Vec<String>,
    next: AtomicUsize,
}

impl KeyRing {
    fn new(keys: Vec<String>) -> Self {
        KeyRing { keys, next: AtomicUsize::new(0) }
    }

    fn next(&self) -> &str {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.keys.len();
        &self.keys[i]
    }
}

/// Keys from one variable: one ring, or one ring per service.
enum KeySet {
    Ring(KeyRing),
    ByService(BTreeMap<String, KeyRing>),
}

/// API keys from the environment. Its `Debug` output shows variable and service names only.
pub struct ApiKeys {
    api_keys: Option<KeySet>,
    per_variable: BTreeMap<String, Option<KeySet>>,
    secrets: Vec<String>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("api_keys_set", &self.api_keys.is_some())
            .field("variables", &self.per_variable.keys().collect::<Vec<_>>())
            .field("keys", &self.secrets.len())
            .finish()
    }
}

impl ApiKeys {
    /// No keys: requests are sent without `Authorization` (local servers need none).
    pub fn none() -> Self {
        ApiKeys { api_keys: None, per_variable: BTreeMap::new(), secrets: Vec::new() }
    }

    /// Reads `API_KEYS` and every variable named by a candidate's `api_key_env`.
    pub fn from_env(candidates: &[Candidate]) -> Result<Self, CallError> {
        ApiKeys::from_lookup(|name| std::env::var(name).ok(), candidates)
    }

    /// As [`ApiKeys::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>, candidates: &[Candidate]) -> Result<Self, CallError> {
        let mut secrets = Vec::new();
        let api_keys = match lookup(API_KEYS_VAR) {
            Some(text) => parse_key_set(&text, API_KEYS_VAR, &mut secrets)?,
            None => None,
        };
        let mut per_variable = BTreeMap::new();
        for var in candidates.iter().filter_map(|c| c.api_key_env.as_deref()).filter(|v| !v.is_empty()) {
            if per_variable.contains_key(var) {
                continue;
            }
            let set = match lookup(var) {
                Some(text) => parse_key_set(&text, var, &mut secrets)?,
                None => None,
            };
            per_variable.insert(var.to_owned(), set);
        }
        // Longest first, so that a key containing another is replaced whole.
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        secrets.dedup();
        Ok(ApiKeys { api_keys, per_variable, secrets })
    }

    /// The key to send for `candidate` (the next one of its ring), or `None` when no key is
    /// configured for it at all. A variable named by `api_key_env` that is unset, or a service
    /// missing from an `API_KEYS` object, is an error.
    pub fn key_for(&self, candidate: &Candidate) -> Result<Option<&str>, CallError> {
        if let Some(var) = candidate.api_key_env.as_deref().filter(|v| !v.is_empty()) {
            return match self.per_variable.get(var) {
                Some(Some(set)) => pick(set, var, candidate).map(Some),
                _ => Err(CallError::Keys {
                    message: format!(
                        "model `{}`: `api_key_env` names the variable `{var}`, which is not set or empty",
                        candidate.name
                    ),
                }),
            };
        }
        match &self.api_keys {
            Some(set) => pick(set, API_KEYS_VAR, candidate).map(Some),
            None => Ok(None),
        }
    }

    /// `error` with every key removed from its URL, body and message (`serve` redacts the same way).
    pub fn redact_error(&self, error: CallError) -> CallError {
        if self.secrets.is_empty() {
            return error;
        }
        let r = |s: String| self.redact(&s);
        match error {
            CallError::Status { status, url, body, retry_after } => {
                CallError::Status { status, url: r(url), body: r(body), retry_after }
            }
            CallError::Timeout { url, what } => CallError::Timeout { url: r(url), what },
            CallError::Transport { url, message, retryable } => {
                CallError::Transport { url: r(url), message: r(message), retryable }
            }
            CallError::Malformed { url, message } => CallError::Malformed { url: r(url), message: r(message) },
            other => other,
        }
    }

    /// `text` with every known key replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }
}

fn pick<'a>(set: &'a KeySet, var: &str, candidate: &Candidate) -> Result<&'a str, CallError> {
    match set {
        KeySet::Ring(ring) => Ok(ring.next()),
        KeySet::ByService(services) => {
            let Some(service) = candidate.service.as_deref() else {
                return Err(CallError::Keys {
                    message: format!(
                        "model `{}` has no `service` in llm_data, and `{var}` holds keys by service ({})",
                        candidate.name,
                        services.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                });
            };
            let ring = services
                .get(service)
                .or_else(|| services.iter().find(|(k, _)| k.eq_ignore_ascii_case(service)).map(|(_, v)| v));
            ring.map(KeyRing::next).ok_or_else(|| CallError::Keys {
                message: format!(
                    "`{var}` has no key for service `{service}` (of model `{}`); it has keys for: {}",
                    candidate.name,
                    services.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            })
        }
    }
}

/// Parses a key variable: a JSON object (service to key or list of keys), a JSON list, a JSON
/// string, or comma-separated keys. Error messages never quote the value.
fn parse_key_set(text: &str, var: &str, secrets: &mut Vec<String>) -> Result<Option<KeySet>, CallError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bad = |what: String| CallError::Keys { message: format!("`{var}` is not usable: {what}") };
    let keys_of = |value: Value, secrets: &mut Vec<String>, what: &str| -> Result<Vec<String>, CallError> {
        let keys: Vec<String> = match value {
            Value::String(s) => vec![s],
            Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(bad(format!("{what}: every key must be a string"))),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(bad(format!("{what}: expected a key or a list of keys"))),
        };
        let keys: Vec<String> = keys.into_iter().map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()).collect();
        if keys.is_empty() {
            return Err(bad(format!("{what}: no keys")));
        }
        secrets.extend(keys.iter().cloned());
        Ok(keys)
    };
    // serde_json's messages give a position, never the text itself.
    let json = |t: &str| serde_json::from_str::<Value>(t).map_err(|e| bad(format!("invalid JSON ({e})")));
    let set = match text.as_bytes()[0] {
        b'{' => {
            let Value::Object(map) = json(text)? else { return Err(bad("expected a JSON object".into())) };
            let mut services = BTreeMap::new();
            for (service, value) in map {
                let keys = keys_of(value, secrets, &format!("service `{service}`"))?;
                services.insert(service, KeyRing::new(keys));
            }
            if services.is_empty() {
                return Err(bad("the JSON object names no service".into()));
            }
            KeySet::ByService(services)
        }
        b'[' | b'"' => KeySet::Ring(KeyRing::new(keys_of(json(text)?, secrets, "the list")?)),
        _ => {
            let keys = text.split(',').map(|k| Value::String(k.to_owned())).collect();
            KeySet::Ring(KeyRing::new(keys_of(Value::Array(keys), secrets, "the list")?))
        }
    };
    Ok(Some(set))
}

/// The models to try after the router's choice fails, best first: the decision's `ranking`
/// extra (a list of candidate names, best first) when the router gives one, else every other
/// candidate from the most to the least expensive (input plus output price), ties by name.
/// The chosen model, unknown names and repeats are left out.
pub fn fallback_order<'a>(decision: &RouteDecision, candidates: &'a Candidates) -> Vec<&'a Candidate> {
    let chosen = decision.model_name.as_str();
    if let Some(Value::Array(ranking)) = decision.extras.get("ranking") {
        let mut order: Vec<&Candidate> = Vec::new();
        for name in ranking.iter().filter_map(Value::as_str) {
            if let Some(c) = candidates.get(name) {
                if c.name != chosen && !order.iter().any(|o| o.name == c.name) {
                    order.push(c);
                }
            }
        }
        return order;
    }
    let mut rest: Vec<&Candidate> = candidates.all().iter().filter(|c| c.name != chosen).collect();
    rest.sort_by(|a, b| b.price().total_cmp(&a.price()).then(a.name.cmp(&b.name)));
    rest
}

/// The OpenAI-compatible chat-completions client. Build it once; share it between threads.
pub struct ChatClient {
    agent: ureq::Agent,
    options: ClientOptions,
    keys: ApiKeys,
    default_endpoint: Option<String>,
}

impl std::fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatClient")
            .field("options", &self.options)
            .field("keys", &self.keys)
            .field("default_endpoint", &self.default_endpoint)
            .finish()
    }
}

impl ChatClient {
    /// A client with `options` and `keys`; `default_endpoint` is the config's `api_endpoint`.
    pub fn new(options: ClientOptions, keys: ApiKeys, default_endpoint: Option<String>) -> Self {
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            // A redirect would resend the prompt (and maybe the key) somewhere else: report it.
            .max_redirects(0)
            .timeout_connect(Some(options.connect_timeout))
            .timeout_global(Some(options.timeout))
            .max_idle_connections(options.pool_per_host.max(1) * 4)
            .max_idle_connections_per_host(options.pool_per_host.max(1))
            .user_agent(concat!("llmrouter/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        ChatClient { agent, options, keys, default_endpoint: default_endpoint.filter(|e| !e.trim().is_empty()) }
    }

    /// The options in use.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// `text` with every API key replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        self.keys.redact(text)
    }

    /// The chat-completions URL for `candidate`.
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

    /// Sends `prompt` to `candidate`, retrying as [`ClientOptions`] says.
    pub fn complete(&self, candidate: &Candidate, prompt: &str) -> CallReport {
        let url = match self.url_for(candidate) {
            Ok(url) => url,
            Err(e) => return CallReport { result: Err(e), attempts: 0 },
        };
        let body = serde_json::json!({
            "model": candidate.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": self.options.temperature,
            "max_tokens": self.options.max_tokens,
            "stream": false,
        })
        .to_string();
        let mut rng = SplitMix64::new(jitter_seed(&url));
        let mut attempts = 0;
        loop {
            let key = match self.keys.key_for(candidate) {
                Ok(key) => key,
                Err(e) => return CallReport { result: Err(e), attempts },
            };
            attempts += 1;
            let result = self.attempt(&url, key, &body).map_err(|e| self.redact_error(e));
            let error = match result {
                Ok(done) => return CallReport { result: Ok(done), attempts },
                Err(e) => e,
            };
            let retry_after = match &error {
                CallError::Status { retry_after, .. } => *retry_after,
                _ => None,
            };
            if !error.is_retryable() || attempts > self.options.max_retries {
                return CallReport { result: Err(error), attempts };
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
                return CallReport { result: Err(error), attempts };
            }
            let delay = backoff_delay(&self.options, attempts, &mut rng);
            std::thread::sleep(retry_after.map_or(delay, |w| w.max(delay)));
        }
    }

    fn redact_error(&self, error: CallError) -> CallError {
        self.keys.redact_error(error)
    }

    /// One HTTP attempt.
    fn attempt(&self, url: &str, key: Option<&str>, body: &str) -> Result<Completion, CallError> {
        let mut request = self.agent.post(url).header("Content-Type", "application/json");
        if let Some(key) = key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        let mut response = request.send(body).map_err(|e| transport_error(&self.options, url, e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|e| transport_error(&self.options, url, e))?;
        if !(200..300).contains(&status) {
            let mut body = snippet(&text);
            if key.is_none() && matches!(status, 401 | 403) {
                body.push_str(&format!(
                    " (no API key was sent: set {API_KEYS_VAR}, or `api_key_env` for this model in llm_data)"
                ));
            }
            return Err(CallError::Status { status, url: url.to_owned(), body, retry_after });
        }
        parse_completion(&text).map_err(|message| CallError::Malformed { url: url.to_owned(), message })
    }

    /// Answers the routed query: calls the chosen model and, while it fails, up to
    /// `max_fallbacks` models of [`fallback_order`]. Never fails: failure is in the result.
    pub fn answer(&self, decision: RouteDecision, candidates: &Candidates, max_fallbacks: usize) -> InferResult {
        let started = Instant::now();
        let Some(chosen) = candidates.get(&decision.model_name) else {
            let error = CallError::UnknownModel { model: decision.model_name.clone() };
            return InferResult {
                index: None,
                query: decision.query.clone(),
                id: decision.id.clone(),
                model_name: decision.model_name.clone(),
                api_model: decision.model_name.clone(),
                response: None,
                usage: None,
                cost: None,
                latency_ms: 0,
                success: false,
                error: Some(error.to_string()),
                attempts: 0,
                fallback_from: Vec::new(),
                routing: decision,
            };
        };
        let mut order = vec![chosen];
        order.extend(fallback_order(&decision, candidates).into_iter().take(max_fallbacks));
        let mut failed: Vec<FailedModel> = Vec::new();
        let mut attempts = 0;
        let last = order.len() - 1;
        for (i, candidate) in order.into_iter().enumerate() {
            let report = self.complete(candidate, &decision.query);
            attempts += report.attempts;
            let (response, usage, error) = match report.result {
                Ok(done) => (Some(self.redact(&done.text)), done.usage, None),
                Err(e) if i < last => {
                    failed.push(FailedModel {
                        model_name: candidate.name.clone(),
                        attempts: report.attempts,
                        error: e.to_string(),
                    });
                    continue;
                }
                Err(e) => (None, None, Some(e.to_string())),
            };
            let cost = usage.map(|u| {
                (u.prompt_tokens as f64 * candidate.input_price + u.completion_tokens as f64 * candidate.output_price)
                    / 1e6
            });
            return InferResult {
                index: None,
                query: decision.query.clone(),
                id: decision.id.clone(),
                model_name: candidate.name.clone(),
                api_model: candidate.model.clone(),
                success: error.is_none(),
                response,
                usage,
                cost,
                latency_ms: started.elapsed().as_millis() as u64,
                error,
                attempts,
                fallback_from: failed,
                routing: decision,
            };
        }
        unreachable!("the loop returns on its last model")
    }
}

/// Exponential backoff with jitter: before retry `n` (1-based), a delay drawn uniformly from
/// `[d/2, d]` where `d = min(max_backoff, backoff * 2^(n-1))`.
pub fn backoff_delay(options: &ClientOptions, retry: u32, rng: &mut SplitMix64) -> Duration {
    let exp = 2f64.powi(retry.saturating_sub(1).min(30) as i32);
    let full = (options.backoff.as_secs_f64() * exp).min(options.max_backoff.as_secs_f64());
    Duration::from_secs_f64(full * (0.5 + 0.5 * rng.next_f64()))
}

fn jitter_seed(url: &str) -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    nanos ^ fnv1a64(url.as_bytes()) ^ COUNTER.fetch_add(0x9E37_79B9, Ordering::Relaxed)
}

/// `Retry-After` as a delay: whole seconds, or an HTTP date (IMF-fixdate,
/// `Sun, 06 Nov 1994 08:49:37 GMT`) relative to `now`. Other forms give `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = parse_http_date(value)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(when.saturating_sub(now)))
}

/// Seconds since the Unix epoch of an IMF-fixdate.
fn parse_http_date(value: &str) -> Option<u64> {
    let mut parts = value.split_whitespace();
    let (_weekday, day, month, year, time, zone) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if zone != "GMT" || parts.next().is_some() {
        return None;
    }
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let day: i64 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + m * 60 + s).ok()
}

fn transport_error(options: &ClientOptions, url: &str, error: ureq::Error) -> CallError {
    let url = url.to_owned();
    match error {
        ureq::Error::Timeout(ureq::Timeout::Connect) => CallError::Timeout {
            url,
            what: format!("no connection within the connect timeout of {:.1} s", options.connect_timeout.as_secs_f64()),
        },
        ureq::Error::Timeout(ureq::Timeout::Global) => CallError::Timeout {
            url,
            what: format!("no complete answer within the timeout of {:.1} s", options.timeout.as_secs_f64()),
        },
        ureq::Error::Timeout(which) => CallError::Timeout { url, what: format!("{which} timeout") },
        ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            CallError::Timeout { url, what: e.to_string() }
        }
        e @ (ureq::Error::Io(_)
        | ureq::Error::HostNotFound
        | ureq::Error::ConnectionFailed
        | ureq::Error::Protocol(_)
        | ureq::Error::BodyStalled) => CallError::Transport { url, message: e.to_string(), retryable: true },
        e => CallError::Transport { url, message: e.to_string(), retryable: false },
    }
}

/// The first [`ERROR_BODY_CHARS`] characters of an error body, on one line (`serve` shows the
/// same excerpt).
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

#[derive(Deserialize)]
struct RawResponse {
    #[serde(default)]
    choices: Option<Vec<RawChoice>>,
    #[serde(default)]
    usage: Option<RawUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct RawChoice {
    #[serde(default)]
    message: Option<RawMessage>,
    /// The legacy completions field, accepted too.
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(default)]
    content: Option<Value>,
}

#[derive(Deserialize)]
struct RawUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
}

/// Parses a chat-completion body: `choices[0].message.content` (a string, or a list of parts
/// with `text`) and `usage`. An `error` object, no choice, or no content is an error.
fn parse_completion(text: &str) -> Result<Completion, String> {
    let raw: RawResponse = serde_json::from_str(text).map_err(|e| format!("not a chat completion ({e})"))?;
    if let Some(error) = raw.error.filter(|e| !e.is_null()) {
        let message = error.get("message").and_then(Value::as_str).map(str::to_owned).unwrap_or(error.to_string());
        return Err(format!("the API reported an error: {}", snippet(&message)));
    }
    let choice = raw.choices.and_then(|c| c.into_iter().next()).ok_or("no `choices` in the answer")?;
    let content = match (choice.message.and_then(|m| m.content), choice.text) {
        (Some(Value::String(s)), _) => s,
        (Some(Value::Array(parts)), _) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("")
        }
        (Some(Value::Null) | None, Some(text)) => text,
        (Some(Value::Null) | None, None) => return Err("the first choice has no `message.content`".into()),
        (Some(other), _) => return Err(format!("`message.content` is not text: {}", snippet(&other.to_string()))),
    };
    let usage = raw.usage.map(|u| {
        let prompt = u.prompt_tokens.unwrap_or(0);
        let completion = u.completion_tokens.unwrap_or(0);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: u.total_tokens.unwrap_or(prompt + completion),
        }
    });
    Ok(Completion { text: content, usage })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::query::QueryInput;

    fn candidates() -> Candidates {
        Candidates::from_json_str(
            r#"{"cheap": {"cost": 0.1, "service": "NVIDIA", "model": "org/cheap"},
                "mid": {"cost": 0.5, "service": "OpenAI"},
                "dear": {"cost": 2.0, "api_key_env": "DEAR_KEY"},
                "also-dear": {"cost": 2.0}}"#,
            Path::new("llm.json"),
        )
        .expect("candidates")
    }

    fn keys(vars: &[(&str, &str)]) -> Result<ApiKeys, CallError> {
        let vars: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ApiKeys::from_lookup(|name| vars.get(name).cloned(), candidates().all())
    }

    fn key_of(keys: &ApiKeys, model: &str) -> Result<Option<String>, CallError> {
        let c = candidates();
        keys.key_for(c.get(model).expect("candidate")).map(|k| k.map(str::to_owned))
    }

    #[test]
    fn api_keys_in_every_form_rotate_round_robin() {
        for text in [r#"["sk-one", "sk-two"]"#, "sk-one, sk-two", " sk-one,sk-two,, "] {
            let k = keys(&[("API_KEYS", text)]).expect(text);
            let got: Vec<_> = (0..3).map(|_| key_of(&k, "cheap").expect("key")).collect();
            assert_eq!(got, [Some("sk-one".into()), Some("sk-two".into()), Some("sk-one".into())], "{text}");
        }
        let k = keys(&[("API_KEYS", r#""sk-solo""#)]).expect("JSON string");
        assert_eq!(key_of(&k, "mid").expect("key"), Some("sk-solo".into()));
        let k = keys(&[("API_KEYS", "sk-solo")]).expect("one plain key");
        assert_eq!(key_of(&k, "mid").expect("key"), Some("sk-solo".into()));
    }

    #[test]
    fn api_keys_by_service_and_per_candidate_variable() {
        let k = keys(&[("API_KEYS", r#"{"NVIDIA": ["nv-1", "nv-2"], "openai": "oa-1"}"#), ("DEAR_KEY", "dear-1")])
            .expect("object");
        assert_eq!(key_of(&k, "cheap").expect("nvidia"), Some("nv-1".into()));
        assert_eq!(key_of(&k, "cheap").expect("nvidia"), Some("nv-2".into()));
        assert_eq!(key_of(&k, "mid").expect("service names match case-insensitively"), Some("oa-1".into()));
        assert_eq!(key_of(&k, "dear").expect("api_key_env wins"), Some("dear-1".into()));
        let err = key_of(&k, "also-dear").expect_err("no service").to_string();
        assert!(err.contains("no `service`") && err.contains("NVIDIA, openai"), "{err}");
        let k = keys(&[]).expect("nothing set");
        assert_eq!(key_of(&k, "cheap").expect("no key"), None);
        let err = key_of(&k, "dear").expect_err("unset variable").to_string();
        assert!(err.contains("DEAR_KEY") && err.contains("not set"), "{err}");
    }

    #[test]
    fn bad_api_keys_never_quote_the_value() {
        for text in [r#"{"NVIDIA": 42}"#, r#"["sk-secret-123", 7]"#, r#"{"NVIDIA": "sk-secret-123""#, "[]"] {
            let err = keys(&[("API_KEYS", text)]).expect_err(text).to_string();
            assert!(err.starts_with("`API_KEYS` is not usable"), "{err}");
            assert!(!err.contains("sk-secret"), "{err}");
        }
    }

    #[test]
    fn redaction_replaces_every_key_longest_first() {
        let k = keys(&[("API_KEYS", "sk-abc,sk-abcdef"), ("DEAR_KEY", "dear-key")]).expect("keys");
        assert_eq!(k.redact("a sk-abcdef b sk-abc c dear-key"), "a [redacted] b [redacted] c [redacted]");
        assert!(!format!("{k:?}").contains("sk-abc"), "Debug shows no key");
    }

    #[test]
    fn fallback_uses_the_ranking_else_price_then_name() {
        let c = candidates();
        let names = |d: &RouteDecision| fallback_order(d, &c).iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        let d = RouteDecision::new("r", &QueryInput::new("q"), "mid");
        assert_eq!(names(&d), ["also-dear", "dear", "cheap"]);
        let d = d.with("ranking", serde_json::json!(["mid", "cheap", "nope", "cheap", "dear"]));
        assert_eq!(names(&d), ["cheap", "dear"]);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let options = ClientOptions {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            ..ClientOptions::default()
        };
        let mut rng = SplitMix64::new(1);
        for (retry, full) in [(1, 100.0), (2, 200.0), (3, 350.0), (9, 350.0)] {
            for _ in 0..50 {
                let ms = backoff_delay(&options, retry, &mut rng).as_secs_f64() * 1000.0;
                assert!((full / 2.0 - 1e-6..=full + 1e-6).contains(&ms), "retry {retry}: {ms} ms");
            }
        }
    }

    #[test]
    fn completions_parse_or_say_what_is_wrong() {
        let ok = parse_completion(
            r#"{"choices": [{"message": {"role": "assistant", "content": "4"}}], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}"#,
        )
        .expect("valid");
        assert_eq!(ok.text, "4");
        assert_eq!(ok.usage, Some(Usage { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 }));
        let parts = parse_completion(
            r#"{"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"text": "b"}]}}]}"#,
        )
        .expect("parts");
        assert_eq!((parts.text.as_str(), parts.usage), ("ab", None));
        for (body, needle) in [
            ("{\"choices\": [", "not a chat completion"),
            ("{\"choices\": []}", "no `choices`"),
            ("{\"error\": {\"message\": \"quota\"}}", "quota"),
            ("{\"choices\": [{\"message\": {}}]}", "no `message.content`"),
        ] {
            let err = parse_completion(body).expect_err(body);
            assert!(err.contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn urls_come_from_the_candidate_then_the_config() {
        let c = Candidates::from_json_str(
            r#"{"a": {"api_endpoint": "http://h/v1/"}, "b": {}, "c": {"api_endpoint": "http://h/v1/chat/completions"}}"#,
            Path::new("l.json"),
        )
        .expect("candidates");
        let with_default = ChatClient::new(ClientOptions::default(), ApiKeys::none(), Some("http://d/v1".into()));
        let without = ChatClient::new(ClientOptions::default(), ApiKeys::none(), Some(" ".into()));
        let url = |client: &ChatClient, m: &str| client.url_for(c.get(m).expect("candidate"));
        assert_eq!(url(&with_default, "a").expect("own"), "http://h/v1/chat/completions");
        assert_eq!(url(&with_default, "b").expect("config"), "http://d/v1/chat/completions");
        assert_eq!(url(&with_default, "c").expect("full"), "http://h/v1/chat/completions");
        assert!(matches!(url(&without, "b"), Err(CallError::NoEndpoint { .. })));
    }

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
