//! API keys ([`ApiKeys`]): read once from the environment, chosen per candidate, rotated
//! round-robin, and redacted from every text the client returns.
//!
//! A candidate's `api_key_env` names the variable holding its key; otherwise `API_KEYS` is used,
//! as Python LLMRouter accepts it: a JSON object keyed by the candidate's `service`, a JSON list,
//! a JSON string, or comma-separated keys. Keys are never printed: every text the client returns
//! (errors and answers alike) has them replaced by [`REDACTED`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use llmrouter_core::Candidate;
use serde_json::Value;

use super::CallError;

/// The variable Python LLMRouter reads its keys from.
pub const API_KEYS_VAR: &str = "API_KEYS";

/// What replaces an API key in every text the client returns.
pub const REDACTED: &str = "[redacted]";

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
    #[cfg(test)]
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
        let mut keys = ApiKeys { api_keys, per_variable, secrets };
        for endpoint in candidates.iter().filter_map(|c| c.api_endpoint.as_deref()) {
            keys.add_url_secrets(endpoint);
        }
        keys.order_secrets();
        Ok(keys)
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

    /// Redacts the credentials of `url` (`https://user:password@host/v1`) from now on: the
    /// `user:password` pair, the password alone, and the pair's Basic-auth form (a server may
    /// echo its `Authorization` header).
    pub fn add_url_secrets(&mut self, url: &str) {
        let Some(userinfo) = url_credentials(url) else { return };
        self.secrets.push(userinfo.to_owned());
        self.secrets.push(base64(userinfo.as_bytes()));
        if let Some((_, password)) = userinfo.split_once(':') {
            if !password.is_empty() {
                self.secrets.push(password.to_owned());
            }
        }
        self.order_secrets();
    }

    /// Longest first, so that a key containing another is replaced whole.
    fn order_secrets(&mut self) {
        self.secrets.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        self.secrets.dedup();
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

/// The `user:password` part of a URL (`https://user:password@host/...`), when it has one.
pub fn url_credentials(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit_once('@').map(|(userinfo, _)| userinfo).filter(|u| !u.is_empty())
}

/// `url` without its credentials, and their `Authorization: Basic` value when it had some.
pub fn split_credentials(url: &str) -> (String, Option<String>) {
    match url_credentials(url) {
        Some(userinfo) => {
            (url.replacen(&format!("{userinfo}@"), "", 1), Some(format!("Basic {}", base64(userinfo.as_bytes()))))
        }
        None => (url.to_owned(), None),
    }
}

/// Standard base64 with padding (RFC 4648), for a Basic-auth header.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::candidates;

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
    fn url_credentials_are_split_off_and_redacted_in_every_form() {
        assert_eq!(base64(b"Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        let url = "https://bob:s3cret-KEY@api.example.com:8443/v1?x=1";
        assert_eq!(url_credentials(url), Some("bob:s3cret-KEY"));
        assert_eq!(url_credentials("https://api.example.com/v1/a@b"), None, "an @ in the path is not userinfo");
        let (clean, basic) = split_credentials(url);
        assert_eq!(clean, "https://api.example.com:8443/v1?x=1");
        assert_eq!(basic.as_deref(), Some("Basic Ym9iOnMzY3JldC1LRVk="));
        let mut k = ApiKeys::none();
        k.add_url_secrets(url);
        let leaked = format!("{url} said: bad key s3cret-KEY (Authorization: Basic Ym9iOnMzY3JldC1LRVk=)");
        let shown = k.redact(&leaked);
        for secret in ["s3cret-KEY", "Ym9iOnMzY3JldC1LRVk="] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.starts_with("https://[redacted]@api.example.com:8443/v1"), "{shown}");
    }

    #[test]
    fn redaction_replaces_every_key_longest_first() {
        let k = keys(&[("API_KEYS", "sk-abc,sk-abcdef"), ("DEAR_KEY", "dear-key")]).expect("keys");
        assert_eq!(k.redact("a sk-abcdef b sk-abc c dear-key"), "a [redacted] b [redacted] c [redacted]");
        assert!(!format!("{k:?}").contains("sk-abc"), "Debug shows no key");
    }
}
