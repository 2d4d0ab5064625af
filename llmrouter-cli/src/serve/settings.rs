//! `serve`'s settings: the config's `serve:` section (typed, unknown keys rejected with their
//! line), the command-line flags that win over it, and the client keys from `serve.keys` (with
//! `${VAR}` expanded) and `LLMROUTER_SERVER_KEYS`.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::cli::ServeArgs;
use crate::client::ClientOptions;

/// The variable holding client keys, comma-separated.
pub const SERVER_KEYS_VAR: &str = "LLMROUTER_SERVER_KEYS";

/// Which text of a chat request the router decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteOn {
    /// The last message whose role is `user` (Python LLMRouter's choice).
    #[default]
    LastUser,
    /// Every message, one `role: text` line each.
    Conversation,
}

/// The `serve:` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeSection {
    /// Address to bind (default 127.0.0.1).
    pub host: Option<String>,
    /// Port to bind (default 8000; 0 picks a free one).
    pub port: Option<u16>,
    /// The text routed on.
    pub route_on: RouteOn,
    /// Client keys; `${VAR}` expands from the environment.
    pub keys: Vec<String>,
    /// Largest request body accepted, in bytes (default 8 MiB); larger ones get 413.
    pub max_body_bytes: Option<usize>,
    /// Seconds in-flight requests may take to finish after SIGTERM or SIGINT (default 30).
    pub drain_seconds: Option<f64>,
    /// Seconds a client may take to send a request's header (default 10).
    pub header_timeout_seconds: Option<f64>,
    /// Chat requests in flight at once (default 256).
    pub max_concurrency: Option<usize>,
    /// Chat requests waiting for a place beyond those (default 1024); more get 503.
    pub max_queue: Option<usize>,
    /// Chat requests a minute per client key (one shared bucket without keys); off by default.
    pub rate_limit_rpm: Option<f64>,
    /// One JSON line per request on standard error (default true).
    pub access_log: Option<bool>,
    /// Put the routed text in the access log (default false).
    pub log_prompts: bool,
    /// How the models are called.
    pub upstream: UpstreamSection,
}

/// `serve.upstream`: timeouts, retries and fallback.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamSection {
    /// Seconds to wait for a TCP connection (default 10).
    pub connect_timeout: Option<f64>,
    /// Seconds one attempt may take, from connecting to the end of the answer, streams
    /// included (default 300).
    pub timeout: Option<f64>,
    /// Retries per model after the first attempt (default 2).
    pub retries: Option<u32>,
    /// Delay before the first retry in milliseconds, doubling with jitter (default 250).
    pub backoff_ms: Option<u64>,
    /// Other models tried along the decision's ranking when the chosen one fails (default 2).
    pub max_fallbacks: Option<usize>,
}

/// The settings in force: the section, then the flags over it.
#[derive(Clone)]
pub struct Settings {
    /// The host as given (a name or an address).
    pub host: String,
    /// The port as given.
    pub port: u16,
    /// The text routed on.
    pub route_on: RouteOn,
    /// Client keys (empty: no authentication).
    pub keys: Vec<String>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// How long in-flight requests may take to finish on shutdown.
    pub drain: Duration,
    /// How long a client may take to send a request's header.
    pub header_timeout: Duration,
    /// Chat requests in flight at once.
    pub max_concurrency: usize,
    /// Chat requests waiting for a place.
    pub max_queue: usize,
    /// Chat requests a minute per client key; `None`: no rate limit.
    pub rate_limit_rpm: Option<f64>,
    /// One JSON line per request on standard error.
    pub access_log: bool,
    /// The routed text goes in the access log.
    pub log_prompts: bool,
    /// Timeouts and retries of the upstream calls (sampling fields unused: the client's pass).
    pub client: ClientOptions,
    /// Other models tried when the chosen one fails (for routed requests).
    pub max_fallbacks: usize,
}

impl std::fmt::Debug for Settings {
    /// Shows how many keys there are, never the keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("route_on", &self.route_on)
            .field("keys", &self.keys.len())
            .field("max_body_bytes", &self.max_body_bytes)
            .field("drain", &self.drain)
            .field("header_timeout", &self.header_timeout)
            .field("max_concurrency", &self.max_concurrency)
            .field("max_queue", &self.max_queue)
            .field("rate_limit_rpm", &self.rate_limit_rpm)
            .field("access_log", &self.access_log)
            .field("log_prompts", &self.log_prompts)
            .field("client", &self.client)
            .field("max_fallbacks", &self.max_fallbacks)
            .finish()
    }
}

/// A positive, finite number of seconds from `serve.KEY`.
fn seconds(key: &str, value: Option<f64>, default: f64) -> Result<Duration> {
    match value {
        None => Ok(Duration::from_secs_f64(default)),
        Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(Duration::from_secs_f64(s)),
        Some(s) => bail!("`serve.{key}`: expected a positive number of seconds, found {s}"),
    }
}

impl Settings {
    /// The section with the flags over it, and the client keys from the section and from
    /// [`SERVER_KEYS_VAR`], read through `lookup`.
    pub fn resolve(section: ServeSection, args: &ServeArgs, lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut keys = Vec::new();
        for (i, raw) in section.keys.iter().enumerate() {
            let key = expand_vars(raw, &lookup).with_context(|| format!("`serve.keys[{i}]`"))?;
            let key = key.trim();
            if key.is_empty() {
                bail!("`serve.keys[{i}]` is empty");
            }
            keys.push(key.to_owned());
        }
        if let Some(text) = lookup(SERVER_KEYS_VAR) {
            keys.extend(text.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned));
        }
        keys.sort();
        keys.dedup();
        let u = section.upstream;
        let client = ClientOptions {
            connect_timeout: seconds("upstream.connect_timeout", u.connect_timeout, 10.0)?,
            timeout: seconds("upstream.timeout", u.timeout, 300.0)?,
            max_retries: u.retries.unwrap_or(2),
            backoff: Duration::from_millis(u.backoff_ms.unwrap_or(250)),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
            // Idle connections kept per upstream host, for the requests in flight at once.
            pool_per_host: 64,
            ..ClientOptions::default()
        };
        let max_concurrency = section.max_concurrency.unwrap_or(256);
        if max_concurrency == 0 {
            bail!("`serve.max_concurrency` must be at least 1");
        }
        if let Some(rpm) = section.rate_limit_rpm {
            if !(rpm.is_finite() && rpm > 0.0) {
                bail!("`serve.rate_limit_rpm`: expected a positive number of requests a minute, found {rpm}");
            }
        }
        Ok(Settings {
            host: args.host.clone().or(section.host).unwrap_or_else(|| "127.0.0.1".to_owned()),
            port: args.port.or(section.port).unwrap_or(8000),
            route_on: section.route_on,
            keys,
            max_body_bytes: section.max_body_bytes.unwrap_or(8 * 1024 * 1024),
            drain: seconds("drain_seconds", section.drain_seconds, 30.0)?,
            header_timeout: seconds("header_timeout_seconds", section.header_timeout_seconds, 10.0)?,
            max_concurrency,
            max_queue: section.max_queue.unwrap_or(1024),
            rate_limit_rpm: section.rate_limit_rpm,
            access_log: section.access_log.unwrap_or(true),
            log_prompts: section.log_prompts,
            client,
            max_fallbacks: u.max_fallbacks.unwrap_or(2),
        })
    }

    /// The addresses `host:port` resolves to.
    pub fn addresses(&self) -> Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve the host `{}`", self.host))?
            .collect();
        if addrs.is_empty() {
            bail!("the host `{}` resolves to no address", self.host);
        }
        Ok(addrs)
    }
}

/// Whether every address is a loopback one (127.0.0.0/8, ::1, or an IPv4-mapped loopback).
pub fn all_loopback(addrs: &[SocketAddr]) -> bool {
    addrs.iter().all(|a| match a.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    })
}

/// `text` with every `${NAME}` replaced by the variable's value. An unset variable is an error
/// naming it (never a value).
pub fn expand_vars(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { bail!("`${{` without a closing `}}`") };
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            bail!("`${{{name}}}` is not a variable name (letters, digits and `_`)");
        }
        match lookup(name) {
            Some(value) if !value.is_empty() => out.push_str(&value),
            _ => bail!("the environment variable `{name}` is not set or empty"),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(host: Option<&str>, port: Option<u16>) -> ServeArgs {
        ServeArgs {
            router: "r".into(),
            config: "c.yaml".into(),
            host: host.map(str::to_owned),
            port,
            insecure_no_auth: false,
        }
    }

    /// Parses `serve:` through the core's config, as `serve` does.
    fn section(yaml: &str) -> ServeSection {
        let config = llmrouter_core::Config::from_yaml_str(yaml, "/nowhere/c.yaml").expect("config");
        config.section("serve").expect("serve section")
    }

    #[test]
    fn flags_win_over_the_section_and_keys_expand() {
        let s = section("serve:\n  host: 0.0.0.0\n  port: 9000\n  route_on: conversation\n  keys: ['k-${A}', plain]\n");
        let lookup = |v: &str| match v {
            "A" => Some("one".to_owned()),
            SERVER_KEYS_VAR => Some(" two, ,plain ".to_owned()),
            _ => None,
        };
        let got = Settings::resolve(s, &args(Some("127.0.0.1"), None), lookup).expect("settings");
        assert_eq!((got.host.as_str(), got.port, got.route_on), ("127.0.0.1", 9000, RouteOn::Conversation));
        assert_eq!(got.keys, ["k-one", "plain", "two"]);
        assert!(!format!("{got:?}").contains("k-one"), "Debug shows no key");
        let defaults = Settings::resolve(ServeSection::default(), &args(None, Some(0)), |_| None).expect("defaults");
        assert_eq!((defaults.host.as_str(), defaults.port, defaults.keys.len()), ("127.0.0.1", 0, 0));
    }

    #[test]
    fn an_unset_variable_is_named_and_a_typo_is_an_error_with_its_line() {
        let s = section("serve:\n  keys: ['${NOPE}']\n");
        let err = format!("{:#}", Settings::resolve(s, &args(None, None), |_| None).expect_err("unset"));
        assert!(err.contains("serve.keys[0]") && err.contains("`NOPE`"), "{err}");
        let config = llmrouter_core::Config::from_yaml_str("serve:\n  port: 1\n  rout_on: last_user\n", "/n/c.yaml")
            .expect("the section is known to the core");
        let err = config.section::<ServeSection>("serve").expect_err("typo").to_string();
        assert!(err.contains(":3:") && err.contains("rout_on"), "{err}");
        let config =
            llmrouter_core::Config::from_yaml_str("serve:\n  route_on: everything\n", "/n/c.yaml").expect("known");
        let err = config.section::<ServeSection>("serve").expect_err("bad value").to_string();
        assert!(err.contains("serve.route_on"), "{err}");
    }

    #[test]
    fn limits_have_defaults_and_nonsense_is_refused() {
        let got = Settings::resolve(ServeSection::default(), &args(None, None), |_| None).expect("defaults");
        assert_eq!((got.max_concurrency, got.max_queue, got.rate_limit_rpm), (256, 1024, None));
        for yaml in
            ["serve:\n  rate_limit_rpm: 0\n", "serve:\n  rate_limit_rpm: -3\n", "serve:\n  max_concurrency: 0\n"]
        {
            let err = Settings::resolve(section(yaml), &args(None, None), |_| None).expect_err(yaml).to_string();
            assert!(err.contains("serve."), "{err}");
        }
    }

    #[test]
    fn loopback_is_recognised() {
        let addrs = |h: &str| (h, 1).to_socket_addrs().expect("resolve").collect::<Vec<_>>();
        assert!(all_loopback(&addrs("127.0.0.1")) && all_loopback(&addrs("::1")) && all_loopback(&addrs("127.3.0.1")));
        assert!(!all_loopback(&addrs("0.0.0.0")) && !all_loopback(&addrs("::")) && !all_loopback(&addrs("10.0.0.1")));
        assert!(all_loopback(&addrs("::ffff:127.0.0.1")));
    }

    #[test]
    fn expansion_rejects_what_is_not_a_variable() {
        let env = |v: &str| (v == "X").then(|| "x".to_owned());
        assert_eq!(expand_vars("a${X}b${X}", env).expect("two"), "axbx");
        assert_eq!(expand_vars("$X {X}", env).expect("literal"), "$X {X}");
        assert!(expand_vars("${X", env).is_err() && expand_vars("${a-b}", env).is_err());
    }
}
