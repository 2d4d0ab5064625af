//! `llmrouter serve`: the real binary, on 127.0.0.1 and a port it picks, in front of a local
//! OpenAI-compatible server (tests/support) that each test starts. Every server the test starts
//! is killed by a guard, also when an assertion fails; every wait is bounded.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{MockServer, Reply, http};

/// The upstream API key (`API_KEYS`): sent upstream, never shown to a client.
const UPSTREAM_SECRET: &str = "sk-upstream-SECRET-77a1";

/// A client key.
const CLIENT_KEY: &str = "client-key-5b9e";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("llmrouter-serve-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Three candidates on `server`: `small` (smallest_llm's choice; it uses the config's
/// `api_endpoint`), `mid` and `large` (the most expensive: the first fallback), then `serve`
/// (YAML lines of the `serve:` section, indented by the caller).
fn write_config(dir: &Path, server: &MockServer, serve: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    let mut yaml = support::three_candidates(dir, server);
    if !serve.is_empty() {
        yaml.push_str("serve:\n");
        yaml.push_str(serve);
    }
    std::fs::write(&path, yaml).expect("write config");
    path
}

/// `llmrouter serve --router smallest_llm --config CONFIG --port 0 ARGS`, with `API_KEYS` set to
/// the upstream key, no client keys unless `env` gives them, and `env` set.
fn command(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    command_for("smallest_llm", config, args, env)
}

/// [`command`] with another router.
fn command_for(router: &str, config: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    subcommand("serve", router, config, args, env)
}

/// `llmrouter SUBCOMMAND` (`serve` or `chat`), set up as [`command`] is.
fn subcommand(name: &str, router: &str, config: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_llmrouter"));
    cmd.args([name, "--router", router, "--config"]).arg(config).args(["--port", "0"]).args(args);
    cmd.env_remove("LLMROUTER_SERVER_KEYS").env("API_KEYS", UPSTREAM_SECRET);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    cmd
}

/// A running `serve`; dropping it kills the process.
struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    base: String,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Everything printed on standard error so far.
    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr").clone()
    }
}

/// Starts `serve` and waits (at most 60 s) for its `listening on` line. Returns the child's
/// standard error when it exits (or does not start) first.
fn try_start(mut cmd: Command) -> Result<Server, (Option<i32>, String)> {
    let mut child = cmd.spawn().expect("run llmrouter serve");
    let stderr = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let pipe = child.stderr.take().expect("stderr piped");
    let log = Arc::clone(&stderr);
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            log.lock().expect("stderr").push_str(&format!("{line}\n"));
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let mut server = Server { child, base: String::new(), stderr };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(url) = rx.recv_timeout(Duration::from_millis(50)) {
            server.base = url;
            return Ok(server);
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            std::thread::sleep(Duration::from_millis(100)); // let the reader thread catch up
            return Err((status.code(), server.stderr()));
        }
    }
    Err((None, format!("no `listening on` line within 60 s:\n{}", server.stderr())))
}

fn start(cmd: Command) -> Server {
    try_start(cmd).unwrap_or_else(|(code, err)| panic!("serve did not start (exit {code:?}):\n{err}"))
}

/// A response: status, headers we read, body.
struct Answer {
    status: u16,
    headers: hyper::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("JSON body ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// `POST {base}/v1/chat/completions` with `body` and, when given, `Authorization: Bearer KEY`.
fn post(server: &Server, body: &str, key: Option<&str>) -> Answer {
    post_to(server, "/v1/chat/completions", body.as_bytes().to_vec(), key)
}

/// [`post`] with any bytes as the body.
fn post_bytes(server: &Server, body: Vec<u8>, key: Option<&str>) -> Answer {
    post_to(server, "/v1/chat/completions", body, key)
}

/// `POST {base}{path}` with `body` and, when given, `Authorization: Bearer KEY`.
fn post_to(server: &Server, path: &str, body: Vec<u8>, key: Option<&str>) -> Answer {
    let auth = key.map(|key| format!("Bearer {key}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    let response = http().request("POST", &format!("{}{path}", server.base), &headers, body);
    let (status, headers) = (response.status, response.headers.clone());
    Answer { status, headers, body: response.text() }
}

fn get(server: &Server, path: &str) -> Answer {
    let response = http().get(&format!("{}{path}", server.base), &[]);
    let (status, headers) = (response.status, response.headers.clone());
    Answer { status, headers, body: response.text() }
}

/// Asserts an OpenAI-shaped error with this status and code.
fn assert_error(answer: &Answer, status: u16, code: &str) -> Value {
    assert_eq!(answer.status, status, "{}", answer.body);
    let error = answer.json()["error"].clone();
    assert_eq!(error["code"], code, "{}", answer.body);
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", answer.body);
    assert!(error["type"].is_string(), "{}", answer.body);
    error
}

/// Waits (at most `secs`) for the child to exit; kills it if it does not.
fn wait_exit(child: &mut Child, secs: u64) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the process did not exit within {secs} s");
}

#[test]
fn auto_routes_and_passes_the_clients_parameters_through() {
    let upstream = MockServer::start(|_| Reply::Answer);
    let dir = temp_dir("auto");
    let server = start(command(&write_config(&dir, &upstream, ""), &[], &[]));
    let request = json!({
        "model": "auto", "messages": [{"role": "user", "content": "What is 2+2?"}],
        "temperature": 0.3, "top_p": 0.9, "stop": ["\n\n"], "max_tokens": 7, "user": "u-1",
        "response_format": {"type": "text"},
    });
    let answer = post(&server, &request.to_string(), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("x-llmrouter-model"), Some("small"));
    assert_eq!(answer.header("x-llmrouter-router"), Some("smallest_llm"));
    let route_us: u64 = answer.header("x-llmrouter-route-us").expect("routing time").parse().expect("µs");
    assert!(route_us < 5_000_000, "{route_us}");
    let body = answer.json();
    assert_eq!(body["model"], "small", "the candidate key, not the API model id");
    assert_eq!(body["choices"][0]["message"]["content"], "answer from org/small: What is 2+2?");
    assert_eq!(body["usage"]["total_tokens"], 15);

    let seen = upstream.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].model, "org/small", "the candidate's API model id is sent");
    let mut expected = request.clone();
    expected["model"] = json!("org/small");
    assert_eq!(seen[0].body, expected, "every other field passes through unchanged");
    assert_eq!(seen[0].authorization.as_deref(), Some(format!("Bearer {UPSTREAM_SECRET}").as_str()));

    // The router's name routes too.
    let answer = post(&server, &request.to_string().replace("\"auto\"", "\"smallest_llm\""), None);
    assert_eq!((answer.status, answer.header("x-llmrouter-model")), (200, Some("small")), "{}", answer.body);

    let models = get(&server, "/v1/models");
    assert_eq!(models.status, 200);
    let list = models.json();
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"].as_array().expect("data").iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(&ids[..2], ["auto", "smallest_llm"], "{ids:?}");
    for id in ["auto", "smallest_llm", "small", "mid", "large"] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert_eq!(get(&server, "/health").status, 200);
    let ready = get(&server, "/ready");
    assert_eq!((ready.status, ready.json()["router"].clone()), (200, json!("smallest_llm")));
    assert_error(&get(&server, "/v1/nothing"), 404, "not_found");
}

#[test]
fn a_candidate_key_skips_routing_and_an_unknown_model_is_404() {
    let upstream = MockServer::start(|_| Reply::Answer);
    let dir = temp_dir("named");
    let server = start(command(&write_config(&dir, &upstream, ""), &[], &[]));
    let answer = post(&server, r#"{"model": "large", "messages": [{"role": "user", "content": "hi"}]}"#, None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("x-llmrouter-model"), Some("large"));
    assert_eq!(answer.header("x-llmrouter-route-us"), Some("0"), "no routing");
    assert_eq!(answer.json()["model"], "large");
    assert_eq!(upstream.requests()[0].model, "org/large");

    let answer = post(&server, r#"{"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}"#, None);
    let error = assert_error(&answer, 404, "model_not_found");
    assert_eq!(error["param"], "model");
    assert!(error["message"].as_str().unwrap_or_default().contains("gpt-9"), "{error}");
    // The API model id is not a model name of the gateway.
    let answer = post(&server, r#"{"model": "org/large", "messages": [{"role": "user", "content": "hi"}]}"#, None);
    assert_error(&answer, 404, "model_not_found");
    assert_eq!(upstream.requests().len(), 1, "nothing more reached the upstream");
}

#[test]
fn a_stream_is_relayed_as_it_arrives() {
    let chunk = |content: &str| {
        let event = json!({"id": "c1", "object": "chat.completion.chunk", "model": "org/small",
                           "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]});
        format!("data: {event}\n\n")
    };
    let usage = json!({"id": "c1", "object": "chat.completion.chunk", "model": "org/small", "choices": [],
                       "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}});
    let events = vec![
        (0, chunk("chunk-one")),
        (1500, chunk(" chunk-two")),
        // A line split across two writes.
        (0, format!("data: {usage}").split_at(20).0.to_owned()),
        (50, format!("{}\n\n", format!("data: {usage}").split_at(20).1)),
        (0, "data: [DONE]\n\n".to_owned()),
    ];
    let upstream = MockServer::start(move |_| Reply::Sse(events.clone()));
    let dir = temp_dir("stream");
    let server = start(command(&write_config(&dir, &upstream, ""), &[], &[]));
    let request = json!({"model": "auto", "messages": [{"role": "user", "content": "stream please"}],
                         "stream": true, "stream_options": {"include_usage": true}});
    let sent = Instant::now();
    let url = format!("{}/v1/chat/completions", server.base);
    let mut response = http().request("POST", &url, &[("Content-Type", "application/json")], request.to_string());
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-llmrouter-model"), Some("small"));
    let content_type = response.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    let mut text = String::new();
    let mut first_at = None;
    for _ in 0..10_000 {
        let Some(chunk) = response.chunk() else { break };
        text.push_str(&String::from_utf8_lossy(&chunk));
        if first_at.is_none() && text.contains("chunk-one") {
            first_at = Some(sent.elapsed());
        }
    }
    let end_at = sent.elapsed();
    let first_at = first_at.expect("the first chunk arrived");
    assert!(
        end_at.saturating_sub(first_at) > Duration::from_millis(1000),
        "the first chunk came at {first_at:?}, the end at {end_at:?}: it was held back"
    );
    let data: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(data.len(), 4, "{text}");
    assert_eq!(data[3], "[DONE]");
    let events: Vec<Value> = data[..3].iter().map(|d| serde_json::from_str(d).expect("JSON event")).collect();
    for e in &events {
        assert_eq!(e["model"], "small", "every chunk names the candidate key: {e}");
    }
    assert_eq!(events[0]["choices"][0]["delta"]["content"], "chunk-one");
    assert_eq!(events[1]["choices"][0]["delta"]["content"], " chunk-two");
    assert_eq!(events[2]["usage"]["total_tokens"], 5, "the usage chunk passes through");
    let seen = upstream.requests();
    assert_eq!(seen[0].body["stream"], true);
    assert_eq!(seen[0].body["stream_options"], json!({"include_usage": true}));

    // The usage chunk's tokens reach /metrics once the stream is done.
    let want = [
        r#"llmrouter_tokens_total{model="small",kind="prompt"} 3"#,
        r#"llmrouter_tokens_total{model="small",kind="completion"} 2"#,
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = get(&server, "/metrics").body;
        if want.iter().all(|w| text.lines().any(|l| l == *w)) {
            break;
        }
        assert!(Instant::now() < deadline, "{want:?} not in /metrics within 10 s:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn client_keys_are_required_and_never_printed() {
    let upstream = MockServer::start(|_| Reply::Answer);
    let dir = temp_dir("auth");
    let config = write_config(&dir, &upstream, "  keys: ['${SERVE_TEST_KEY}']\n");
    let env = [("SERVE_TEST_KEY", "yaml-key-3c1d"), ("LLMROUTER_SERVER_KEYS", CLIENT_KEY)];
    let server = start(command(&config, &[], &env));
    let body = r#"{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}"#;
    let answer = post(&server, body, None);
    assert_error(&answer, 401, "invalid_api_key");
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    assert_error(&post(&server, body, Some("client-key-5b9f")), 401, "invalid_api_key");
    assert_error(&post(&server, body, Some("")), 401, "invalid_api_key");
    let models = http().get(&format!("{}/v1/models", server.base), &[]);
    assert_eq!(models.status, 401, "every /v1/* path needs a key");
    assert_eq!(upstream.requests().len(), 0, "nothing reached the upstream");
    for key in [CLIENT_KEY, "yaml-key-3c1d"] {
        let answer = post(&server, body, Some(key));
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(!answer.body.contains(key));
    }
    assert_eq!(get(&server, "/health").status, 200, "health needs no key");
    let seen = upstream.requests();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.authorization.as_deref() == Some(&format!("Bearer {UPSTREAM_SECRET}"))));
    let err = server.stderr();
    assert!(err.contains("client keys required"), "{err}");
    for secret in [CLIENT_KEY, "yaml-key-3c1d", UPSTREAM_SECRET] {
        assert!(!err.contains(secret), "stderr shows a key:\n{err}");
    }
}

#[test]
fn no_keys_and_a_public_address_is_refused() {
    let upstream = MockServer::start(|_| Reply::Answer);
    let dir = temp_dir("public");
    let config = write_config(&dir, &upstream, "");
    let mut child = command(&config, &["--host", "0.0.0.0"], &[]).spawn().expect("run");
    let code = wait_exit(&mut child, 60);
    let mut err = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut err).expect("stderr");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("0.0.0.0") && err.contains("--insecure-no-auth") && err.contains("LLMROUTER_SERVER_KEYS"));
    assert!(!err.contains("listening on") && !err.contains("panicked"), "{err}");
    // The section's host is refused the same way; the flag says it is deliberate.
    let config = write_config(&dir, &upstream, "  host: 0.0.0.0\n");
    let mut child = command(&config, &[], &[]).spawn().expect("run");
    assert_eq!(wait_exit(&mut child, 60), Some(2));
    let server = start(command(&config, &["--insecure-no-auth"], &[]));
    assert!(server.base.starts_with("http://0.0.0.0:"), "{}", server.base);
    // Keys make a public address acceptable.
    let server = start(command(&config, &[], &[("LLMROUTER_SERVER_KEYS", CLIENT_KEY)]));
    assert!(server.base.starts_with("http://0.0.0.0:"), "{}", server.base);
}

/// The local addresses (hex, as the kernel writes them) listening on TCP `port`, from
/// `/proc/net/tcp` and `/proc/net/tcp6`.
#[cfg(target_os = "linux")]
fn listening_addresses(port: u16) -> Vec<String> {
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            // sl local_address rem_address st ...; st 0A is LISTEN.
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some((ip, hex_port)) = fields.get(1).and_then(|a| a.split_once(':')) else { continue };
            if fields.get(3) == Some(&"0A") && u16::from_str_radix(hex_port, 16) == Ok(port) {
                found.push(ip.to_owned());
            }
        }
    }
    found
}

#[test]
fn chat_binds_only_loopback_and_prints_the_page_url() {
    let upstream = MockServer::start(|_| Reply::Answer);
    let dir = temp_dir("chat");
    // `serve` refuses this host without keys; `chat` binds 127.0.0.1 whatever the section says.
    let config = write_config(&dir, &upstream, "  host: 0.0.0.0\n");
    let server = start(subcommand("chat", "smallest_llm", &config, &[], &[]));
    assert!(server.base.starts_with("http://127.0.0.1:"), "{}", server.base);
    let err = wait_for_lines(&server, "chat page: ", 1);
    assert!(err.lines().any(|l| l == format!("chat page: {}/", server.base)), "{err}");
    assert!(err.contains("llmrouter chat: router `smallest_llm`, no client keys"), "{err}");
    #[cfg(target_os = "linux")]
    {
        let port: u16 = server.base.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        assert_eq!(listening_addresses(port), ["0100007F"], "only 127.0.0.1 listens on {port}");
    }
    let page = get(&server, "/");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(page.body.starts_with("<!doctype html>") && page.body.trim_end().ends_with("</html>"));
    for endpoint in ["/v1/route", "/v1/chat/completions", "/v1/models", "text/event-stream"] {
        assert!(page.body.contains(endpoint), "the page uses {endpoint}");
    }
    assert!(!page.body.contains("http://") && !page.body.contains("https://"), "the page names no other origin");
    let policy = page.header("content-security-policy").expect("a content security policy");
    assert!(policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"), "{policy}");
    // The chat works as serve's does.
    let answer = post(&server, r#"{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}"#, None);
    assert_eq!((answer.status, answer.header("x-llmrouter-model")), (200, Some("small")), "{}", answer.body);
    // `chat` has no --host (nor --insecure-no-auth): clap refuses it.
    let mut child = subcommand("chat", "smallest_llm", &config, &["--host", "0.0.0.0"], &[]).spawn().expect("run");
    assert_eq!(wait_exit(&mut child, 60), Some(2));
}

#[test]
fn route_answers_the_decision_and_ranking_without_calling_a_model() {
    let upstream = MockServer::start(|_| Reply::Answer);
    let dir = temp_dir("route");
    let server = start(command(&write_config(&dir, &upstream, ""), &[], &[("LLMROUTER_SERVER_KEYS", CLIENT_KEY)]));
    let route = |body: &str, key: Option<&str>| post_to(&server, "/v1/route", body.as_bytes().to_vec(), key);
    let body = r#"{"model": "auto", "messages": [{"role": "user", "content": "What is 2+2?"}], "stream": true}"#;
    assert_error(&route(body, None), 401, "invalid_api_key");
    assert_error(&route(body, Some("client-key-5b9f")), 401, "invalid_api_key");
    let answer = route(body, Some(CLIENT_KEY));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let v = answer.json();
    assert_eq!(
        (v["object"].as_str(), v["router"].as_str(), v["model"].as_str()),
        (Some("llmrouter.route"), Some("smallest_llm"), Some("small"))
    );
    assert!(v["route_us"].is_u64(), "{v}");
    // A baseline ranks only its choice, with no score and no cost.
    assert_eq!(v["ranking"], json!([{"model": "small", "predicted_score": null, "estimated_cost": null}]), "{v}");
    assert_eq!(
        (answer.header("x-llmrouter-model"), answer.header("x-llmrouter-router")),
        (Some("small"), Some("smallest_llm"))
    );
    // A candidate key is answered with that candidate, unrouted.
    let named = route(r#"{"model": "large", "messages": [{"role": "user", "content": "x"}]}"#, Some(CLIENT_KEY));
    assert_eq!(named.status, 200, "{}", named.body);
    let v = named.json();
    assert_eq!(
        (v["router"].clone(), v["model"].clone(), v["ranking"][0]["model"].clone()),
        (Value::Null, json!("large"), json!("large"))
    );
    assert_error(
        &route(r#"{"model": "nope", "messages": [{"role": "user", "content": "x"}]}"#, Some(CLIENT_KEY)),
        404,
        "model_not_found",
    );
    let bad = assert_error(&route(r#"{"model": "auto"}"#, Some(CLIENT_KEY)), 400, "invalid_request");
    assert_eq!(bad["param"], "messages");
    assert_eq!(upstream.requests().len(), 0, "routing called no model");
    // The page needs no key; what it calls does.
    assert_eq!(get(&server, "/").status, 200);

    // The chat route's rate limit applies: one bucket for both.
    let config = write_config(&dir, &upstream, "  rate_limit_rpm: 1\n");
    let limited = start(command(&config, &[], &[]));
    assert_eq!(post_to(&limited, "/v1/route", body.as_bytes().to_vec(), None).status, 200);
    assert_error(&post(&limited, body, None), 429, "rate_limit_exceeded");
    assert_error(&post_to(&limited, "/v1/route", body.as_bytes().to_vec(), None), 429, "rate_limit_exceeded");
    assert_eq!(upstream.requests().len(), 0);
}

#[test]
fn a_failing_model_falls_back_and_when_all_fail_the_502_names_each() {
    let upstream = MockServer::start(|seen| if seen.model == "org/small" { Reply::status(500) } else { Reply::Answer });
    let dir = temp_dir("fallback");
    let retries = "  upstream:\n    retries: 1\n    backoff_ms: 10\n";
    let server = start(command(&write_config(&dir, &upstream, retries), &[], &[]));
    let body = r#"{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}"#;
    let answer = post(&server, body, None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("x-llmrouter-model"), Some("large"), "the most expensive is the first fallback");
    assert_eq!(answer.header("x-llmrouter-fallback-from"), Some("small"));
    assert_eq!(answer.json()["model"], "large");
    let models: Vec<String> = upstream.requests().iter().map(|s| s.model.clone()).collect();
    assert_eq!(models, ["org/small", "org/small", "org/large"], "one retry, then the fallback");

    // A named candidate is that candidate only: no fallback.
    let answer = post(&server, &body.replace("\"auto\"", "\"small\""), None);
    let error = assert_error(&answer, 502, "all_models_failed");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("`small` failed after 2 attempts") && !message.contains("large"), "{message}");

    // Every model fails, with an error body that quotes the upstream key.
    let echo = Reply::Status { status: 503, retry_after: None, body: format!("bad key {UPSTREAM_SECRET}") };
    let upstream = MockServer::start(move |_| echo.clone());
    let server = start(command(&write_config(&dir, &upstream, retries), &[], &[]));
    let answer = post(&server, body, None);
    let error = assert_error(&answer, 502, "all_models_failed");
    let message = error["message"].as_str().unwrap_or_default();
    for needle in ["`small` failed after 2 attempts", "`large` failed", "`mid` failed", "HTTP 503", "[redacted]"] {
        assert!(message.contains(needle), "{needle:?} in {message}");
    }
    assert!(!answer.body.contains(UPSTREAM_SECRET), "{}", answer.body);
    assert_eq!(upstream.requests().len(), 6, "2 attempts on each of 3 models");
}

#[test]
fn bad_requests_get_a_400_naming_the_field() {
    let upstream = MockServer::start(|_| Reply::Answer);
    let dir = temp_dir("bad");
    let server = start(command(&write_config(&dir, &upstream, "  max_body_bytes: 2000\n"), &[], &[]));
    for (body, param) in [
        (r#"{"model": "auto"}"#, "messages"),
        (r#"{"model": "auto", "messages": []}"#, "messages"),
        (r#"{"model": "auto", "messages": {"role": "user"}}"#, "messages"),
        (r#"{"model": "auto", "messages": [{"role": "user", "content": 7}]}"#, "messages[0].content"),
        (r#"{"messages": [{"role": "user", "content": "hi"}]}"#, "model"),
        (r#"{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "stream": 1}"#, "stream"),
        (r#"{"model": "auto", "messages": [{"role": "system", "content": "only"}]}"#, "messages"),
    ] {
        let error = assert_error(&post(&server, body, None), 400, "invalid_request");
        assert_eq!(error["param"], param, "{body}");
        assert!(error["message"].as_str().unwrap_or_default().contains(param), "{body}: {error}");
    }
    assert_error(&post(&server, r#"{"model": "auto", "messages": ["#, None), 400, "invalid_json");
    let big = json!({"model": "auto", "messages": [{"role": "user", "content": "x".repeat(3000)}]});
    assert_error(&post(&server, &big.to_string(), None), 413, "request_too_large");
    assert_eq!(upstream.requests().len(), 0, "nothing reached the upstream");
    // The server still answers.
    let answer = post(&server, r#"{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}"#, None);
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[test]
fn a_typo_in_the_serve_section_names_the_key_and_line() {
    let upstream = MockServer::start(|_| Reply::Answer);
    let dir = temp_dir("typo");
    let config = write_config(&dir, &upstream, "  port: 0\n  rout_on: conversation\n");
    let mut child = command(&config, &[], &[]).spawn().expect("run");
    let code = wait_exit(&mut child, 60);
    let mut err = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut err).expect("stderr");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("rout_on") && err.contains("config.yaml:6:"), "{err}");
}

#[test]
fn beyond_the_concurrency_limit_and_its_queue_the_answer_is_503_with_retry_after() {
    let upstream = MockServer::start(|_| Reply::after_ms(1500, Reply::Answer));
    let dir = temp_dir("overload");
    let config = write_config(&dir, &upstream, "  max_concurrency: 1\n  max_queue: 0\n");
    let server = Arc::new(start(command(&config, &[], &[])));
    let body = r#"{"model": "auto", "messages": [{"role": "user", "content": "slow"}]}"#;
    let first = std::thread::spawn({
        let server = Arc::clone(&server);
        move || post(&server, body, None)
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while upstream.requests().is_empty() {
        assert!(Instant::now() < deadline, "the first request never reached the upstream");
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = post(&server, body, None);
    assert_error(&second, 503, "overloaded");
    let retry_after: u64 = second.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!(retry_after >= 1, "{retry_after}");
    let first = first.join().expect("first request");
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(upstream.requests().len(), 1, "the rejected request reached no model");
    // The place is free again.
    assert_eq!(post(&server, body, None).status, 200);
}

#[test]
fn beyond_the_rate_limit_a_key_gets_429_with_retry_after_and_another_key_does_not() {
    let upstream = MockServer::start(|_| Reply::Answer);
    let dir = temp_dir("rate");
    let config = write_config(&dir, &upstream, "  rate_limit_rpm: 2\n");
    let other = "client-key-other-81f0";
    let keys = format!("{CLIENT_KEY},{other}");
    let server = start(command(&config, &[], &[("LLMROUTER_SERVER_KEYS", keys.as_str())]));
    let body = r#"{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}"#;
    for _ in 0..2 {
        let answer = post(&server, body, Some(CLIENT_KEY));
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let third = post(&server, body, Some(CLIENT_KEY));
    assert_error(&third, 429, "rate_limit_exceeded");
    let retry_after: u64 = third.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    assert!(!third.body.contains(CLIENT_KEY), "{}", third.body);
    let answer = post(&server, body, Some(other));
    assert_eq!(answer.status, 200, "another key has its own bucket: {}", answer.body);
    assert_eq!(upstream.requests().len(), 3, "the limited request reached no model");
}

#[test]
fn metrics_count_requests_latency_tokens_and_refusals_and_never_show_a_key() {
    let upstream = MockServer::start(|_| Reply::Answer);
    let dir = temp_dir("metrics");
    let server = start(command(&write_config(&dir, &upstream, ""), &[], &[("LLMROUTER_SERVER_KEYS", CLIENT_KEY)]));
    let scrape = |key: Option<&str>| {
        let auth = key.map(|key| format!("Bearer {key}"));
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        let response = http().get(&format!("{}/metrics", server.base), &headers);
        let (status, content_type) = (response.status, response.headers.get("content-type").cloned());
        (status, content_type, response.text())
    };
    assert_eq!(scrape(None).0, 401, "/metrics needs the client key");
    let answer =
        post(&server, r#"{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}"#, Some(CLIENT_KEY));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer =
        post(&server, r#"{"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}"#, Some(CLIENT_KEY));
    assert_error(&answer, 404, "model_not_found");
    let routed = post_to(
        &server,
        "/v1/route",
        br#"{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}"#.to_vec(),
        Some(CLIENT_KEY),
    );
    assert_eq!(routed.status, 200, "{}", routed.body);
    let (status, content_type, text) = scrape(Some(CLIENT_KEY));
    assert_eq!(status, 200, "{text}");
    let content_type = content_type.and_then(|v| v.to_str().ok().map(str::to_owned)).unwrap_or_default();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    for line in [
        r#"llmrouter_requests_total{router="smallest_llm",model="small",status="200"} 1"#,
        r#"llmrouter_requests_total{router="none",model="none",status="404"} 1"#,
        r#"llmrouter_route_requests_total{router="smallest_llm",model="small",status="200"} 1"#,
        // The chat request's decision and the route request's.
        "llmrouter_routing_latency_seconds_count 2",
        "llmrouter_upstream_latency_seconds_count 1",
        "llmrouter_time_to_first_byte_seconds_count 1",
        r#"llmrouter_tokens_total{model="small",kind="prompt"} 10"#,
        r#"llmrouter_tokens_total{model="small",kind="completion"} 5"#,
        r#"llmrouter_tokens_total{model="large",kind="prompt"} 0"#,
        r#"llmrouter_rejected_requests_total{reason="model_not_found"} 1"#,
        r#"llmrouter_rejected_requests_total{reason="auth"} 1"#,
        "llmrouter_in_flight_requests 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    // small: 10 prompt tokens at 0.1 and 5 completion tokens at 0.2 per 1M: 2e-6 USD.
    let cost = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"llmrouter_cost_usd_total{model="small"} "#))
        .and_then(|v| v.parse::<f64>().ok())
        .expect("the cost of small");
    assert!((cost - 2e-6).abs() < 1e-12, "{cost}");
    let requests = text.lines().filter(|l| l.starts_with("llmrouter_requests_total{")).count();
    assert_eq!(requests, 2, "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        assert!(line.starts_with("llmrouter_"), "{line}");
    }
    for secret in [CLIENT_KEY, UPSTREAM_SECRET, "gpt-9"] {
        assert!(!text.contains(secret), "the metrics show {secret:?}");
    }
}

/// The access-log lines (JSON objects) on the server's standard error for `path`, waiting (at
/// most 10 s) until there are `n`.
fn access_lines(server: &Server, path: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<Value> = server
            .stderr()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["path"] == path)
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn each_request_gets_one_access_log_line_without_keys_or_the_prompt() {
    let upstream = MockServer::start(|_| Reply::Answer);
    let dir = temp_dir("access");
    let prompt = "the secret plan 4e7b";
    let body = json!({"model": "auto", "messages": [{"role": "user", "content": prompt}]}).to_string();
    let env = [("LLMROUTER_SERVER_KEYS", CLIENT_KEY)];
    let server = start(command(&write_config(&dir, &upstream, ""), &[], &env));
    assert_eq!(post(&server, &body, Some(CLIENT_KEY)).status, 200);
    assert_error(&post(&server, &body, Some("wrong-key")), 401, "invalid_api_key");
    let lines = access_lines(&server, "/v1/chat/completions", 2);
    assert_eq!(lines.len(), 2, "{}", server.stderr());
    let line = &lines[0];
    assert_eq!((line["method"].as_str(), line["status"].as_u64()), (Some("POST"), Some(200)), "{line}");
    assert_eq!((line["router"].as_str(), line["model"].as_str()), (Some("smallest_llm"), Some("small")), "{line}");
    assert_eq!((line["prompt_tokens"].as_u64(), line["completion_tokens"].as_u64()), (Some(10), Some(5)), "{line}");
    assert!(line["route_us"].is_u64() && line["upstream_ms"].is_u64() && line["total_ms"].is_u64(), "{line}");
    let time = line["time"].as_str().unwrap_or_default();
    assert!(time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
    assert!(line.get("prompt").is_none(), "{line}");
    assert_eq!(lines[1]["status"], 401, "a refused request is logged too");
    let err = server.stderr();
    for secret in [CLIENT_KEY, UPSTREAM_SECRET, "wrong-key", prompt] {
        assert!(!err.contains(secret), "stderr shows {secret:?}:\n{err}");
    }
    drop(server);

    let server = start(command(&write_config(&dir, &upstream, "  log_prompts: true\n"), &[], &env));
    assert_eq!(post(&server, &body, Some(CLIENT_KEY)).status, 200);
    let lines = access_lines(&server, "/v1/chat/completions", 1);
    assert_eq!(lines.first().map(|l| l["prompt"].clone()), Some(json!(prompt)), "{}", server.stderr());
    assert!(!server.stderr().contains(CLIENT_KEY));
}

/// Sends `raw` on a new connection to the server, half-closes it, and returns what came back
/// (bounded: 10 s).
fn raw_exchange(server: &Server, raw: &[u8]) -> String {
    use std::io::Write;
    let address = server.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream.write_all(raw).expect("write");
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends a 100 MB chat body (with `Content-Length`, or chunked) from one thread while reading the
/// answer on this one, and returns the answer's first line (bounded: 30 s). The writer stops at
/// the first write the server refuses.
fn huge_body(server: &Server, chunked: bool) -> String {
    use std::io::Write;
    const SIZE: usize = 100 * 1024 * 1024;
    const PIECE: usize = 64 * 1024;
    let address = server.base.trim_start_matches("http://");
    let stream = std::net::TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream.set_write_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut writer = stream.try_clone().expect("clone the socket");
    let framing = if chunked { "Transfer-Encoding: chunked".to_owned() } else { format!("Content-Length: {SIZE}") };
    let head =
        format!("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{framing}\r\n\r\n");
    let sender = std::thread::spawn(move || {
        let piece = vec![b' '; PIECE];
        let chunk_head = format!("{PIECE:x}\r\n");
        writer.write_all(head.as_bytes())?;
        for _ in 0..SIZE / PIECE {
            if chunked {
                writer.write_all(chunk_head.as_bytes())?;
            }
            writer.write_all(&piece)?;
            if chunked {
                writer.write_all(b"\r\n")?;
            }
        }
        if chunked {
            writer.write_all(b"0\r\n\r\n")?;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    let _ = reader.read_line(&mut status);
    drop(reader); // closes the socket: the writer's next write fails if it is still going
    let _ = sender.join().expect("writer thread");
    status.trim_end().to_owned()
}

#[test]
fn hostile_requests_get_errors_and_the_server_still_answers() {
    use std::io::Write;
    let upstream = MockServer::start(|_| Reply::Answer);
    let dir = temp_dir("hostile");
    let limit = 200_000;
    let serve = format!("  max_body_bytes: {limit}\n  header_timeout_seconds: 1\n");
    let server = start(command(&write_config(&dir, &upstream, &serve), &[], &[]));
    let good = r#"{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}"#;

    // A slow-loris connection: headers begun, never finished, held open while the rest runs.
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut loris = std::net::TcpStream::connect(&address).expect("connect");
    loris.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: appl").expect("write");

    // A body cut short: Content-Length promises more than is sent.
    let head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
    let cut =
        raw_exchange(&server, format!("{head}Content-Length: 500\r\n\r\n{{\"model\": \"auto\", \"mess").as_bytes());
    assert!(cut.is_empty() || cut.starts_with("HTTP/1.1 400"), "{cut}");
    // Headers that are not HTTP at all.
    let junk = raw_exchange(&server, b"\x00\xff\xfe GARBAGE\r\n\r\n");
    assert!(junk.is_empty() || junk.starts_with("HTTP/1.1 400"), "{junk}");

    // Invalid UTF-8 inside a JSON string.
    let mut bytes = br#"{"model": "auto", "messages": [{"role": "user", "content": ""#.to_vec();
    bytes.extend_from_slice(b"\xff\xfe\xc3");
    bytes.extend_from_slice(br#""}]}"#);
    assert_error(&post_bytes(&server, bytes, None), 400, "invalid_json");

    // 100,000 nested arrays: serde_json's recursion limit, not the stack.
    let nested = format!("{{\"model\": \"auto\", \"messages\": {}", "[".repeat(100_000));
    assert!(nested.len() < limit);
    assert_error(&post(&server, &nested, None), 400, "invalid_json");
    let nested_closed = format!("{}{}", "[".repeat(90_000), "]".repeat(90_000));
    assert_error(&post(&server, &nested_closed, None), 400, "invalid_json");

    // A body one byte over the limit.
    let filler = "x".repeat(limit);
    let over = format!(r#"{{"model": "auto", "messages": [{{"role": "user", "content": "{filler}"}}]}}"#);
    let over = &over[over.len() - limit - 1..];
    assert_eq!(over.len(), limit + 1);
    assert_error(&post(&server, over, None), 413, "request_too_large");

    // 100 MB, announced by `Content-Length` or sent chunked: refused, never buffered whole.
    for chunked in [false, true] {
        let status = huge_body(&server, chunked);
        assert!(status.starts_with("HTTP/1.1 413"), "chunked {chunked}: {status:?}");
    }

    // `messages` of the wrong type, and a message that is not an object.
    for (body, param) in [
        (r#"{"model": "auto", "messages": 42}"#, "messages"),
        (r#"{"model": "auto", "messages": [null]}"#, "messages[0]"),
        (r#"{"model": "auto", "messages": [{"role": 1, "content": "x"}]}"#, "messages[0].role"),
        (r#"{"model": ["auto"], "messages": [{"role": "user", "content": "x"}]}"#, "model"),
    ] {
        assert_eq!(assert_error(&post(&server, body, None), 400, "invalid_request")["param"], param, "{body}");
    }

    // With the slow-loris connection still open, a good request is answered.
    let answer = post(&server, good, None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    // Then the header read timeout (1 s) closes it: the read ends, well before 8 s.
    loris.set_read_timeout(Some(Duration::from_secs(8))).expect("timeout");
    let mut rest = Vec::new();
    let read = loris.read_to_end(&mut rest);
    assert!(read.is_ok(), "the slow-loris connection was still open after 8 s: {read:?}");
    drop(loris);
    assert_eq!(upstream.requests().len(), 1, "only the good request reached a model");
    let answer = post(&server, good, None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let err = server.stderr();
    assert!(!err.contains("panicked"), "{err}");
}

#[cfg(unix)]
#[test]
fn sigterm_lets_the_request_in_flight_finish_then_exits_0() {
    let upstream = MockServer::start(|_| Reply::after_ms(1500, Reply::Answer));
    let dir = temp_dir("drain");
    let server = Arc::new(Mutex::new(start(command(&write_config(&dir, &upstream, ""), &[], &[]))));
    let base = server.lock().expect("server").base.clone();
    let pid = server.lock().expect("server").child.id();
    let first = std::thread::spawn(move || {
        let body = r#"{"model": "auto", "messages": [{"role": "user", "content": "slow"}]}"#;
        let response = http().request(
            "POST",
            &format!("{base}/v1/chat/completions"),
            &[("Content-Type", "application/json")],
            body,
        );
        (response.status, response.text())
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while upstream.requests().is_empty() {
        assert!(Instant::now() < deadline, "the request never reached the upstream");
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
    assert!(killed.success());
    let (status, body) = first.join().expect("request thread");
    assert_eq!(status, 200, "{body}");
    let code = wait_exit(&mut server.lock().expect("server").child, 20);
    assert_eq!(code, Some(0), "{}", server.lock().expect("server").stderr());
}

/// Routing data in which `best` is the only candidate that answers any of a few queries well.
fn routing_data(best: &str) -> String {
    let mut rows = String::new();
    for (i, query) in ["What is 2 + 2?", "Name a prime number.", "Translate hello.", "Sort 3 1 2."].iter().enumerate() {
        for model in ["small", "mid", "large"] {
            let performance = if model == best { 1.0 } else { 0.0 };
            let row = json!({"id": format!("q{i}"), "query": query, "model_name": model, "performance": performance});
            rows.push_str(&format!("{row}\n"));
        }
    }
    rows
}

/// Waits (at most 20 s) until standard error holds `n` lines that start with `prefix`.
fn wait_for_lines(server: &Server, prefix: &str, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let err = server.stderr();
        if err.lines().filter(|l| l.starts_with(prefix)).count() >= n {
            return err;
        }
        assert!(Instant::now() < deadline, "no {n}th `{prefix}` line within 20 s:\n{err}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
#[test]
fn sighup_reloads_the_model_and_a_bad_file_keeps_the_old_router() {
    let upstream = MockServer::start(|seen| {
        if seen.content.contains("slow") { Reply::after_ms(1500, Reply::Answer) } else { Reply::Answer }
    });
    let dir = temp_dir("reload");
    let routing = dir.join("routing.jsonl");
    let model = dir.join("knn.json");
    let config = dir.join("config.yaml");
    let candidates = support::three_candidates(&dir, &upstream)
        .replace("data_path:\n", &format!("data_path:\n  routing_data_train: {}\n", routing.display()));
    let yaml = format!(
        "{candidates}model_path:\n  save_model_path: {}\nhparam:\n  n_neighbors: 3\n\
         embedding:\n  backend: hashed\n  dim: 256\nmetric:\n  weights:\n    performance: 1\n    cost: 0\n",
        model.display()
    );
    std::fs::write(&config, yaml).expect("write config");
    let train = |best: &str| {
        std::fs::write(&routing, routing_data(best)).expect("write routing data");
        let out = Command::new(env!("CARGO_BIN_EXE_llmrouter"))
            .args(["--quiet", "train", "--router", "knnrouter", "--config"])
            .arg(&config)
            .output()
            .expect("run train");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    let routed_model = |server: &Server| {
        let answer = post(
            server,
            r#"{"model": "auto", "messages": [{"role": "user", "content": "Name a prime number."}]}"#,
            None,
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.header("x-llmrouter-model").expect("x-llmrouter-model").to_owned()
    };
    train("small");
    let server = Arc::new(start(command_for("knnrouter", &config, &[], &[])));
    assert_eq!(routed_model(&server), "small");
    let hangup = |server: &Server| {
        let sent = Command::new("kill").args(["-HUP", &server.child.id().to_string()]).status().expect("kill");
        assert!(sent.success());
    };

    // A request in flight during a reload finishes with the router it started with.
    let slow = {
        let server = Arc::clone(&server);
        std::thread::spawn(move || {
            post(&server, r#"{"model": "auto", "messages": [{"role": "user", "content": "slow"}]}"#, None)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while upstream.count("slow") == 0 {
        assert!(Instant::now() < deadline, "the slow request never reached the upstream");
        std::thread::sleep(Duration::from_millis(10));
    }
    train("large");
    hangup(&server);
    let err = wait_for_lines(&server, "reload", 1);
    assert!(err.contains(&format!("reload: router `knnrouter` reloaded from {}", model.display())), "{err}");
    assert_eq!(routed_model(&server), "large");
    let slow = slow.join().expect("slow request");
    assert_eq!(slow.status, 200, "{}", slow.body);
    assert_eq!(slow.header("x-llmrouter-model"), Some("small"), "{}", slow.body);

    // A bad model file: the old router stays, and the log says why.
    std::fs::write(&model, "{ not a model").expect("break the model");
    hangup(&server);
    let err = wait_for_lines(&server, "reload", 2);
    let line = err.lines().filter(|l| l.starts_with("reload")).nth(1).expect("second reload line");
    assert!(line.starts_with("reload failed, keeping the old router: "), "{line}");
    assert!(line.contains(&model.display().to_string()), "{line}");
    assert_eq!(routed_model(&server), "large");
    let metrics = get(&server, "/metrics").body;
    for series in ["llmrouter_reloads_total{result=\"ok\"} 1", "llmrouter_reloads_total{result=\"failed\"} 1"] {
        assert!(metrics.lines().any(|l| l == series), "{series} in\n{metrics}");
    }
}

/// The official OpenAI Python SDK (`pip install openai`) makes a non-streamed and a streamed call.
/// Skipped when Python lacks the package, unless `LLMROUTER_REQUIRE_OPENAI_SDK` is set (as in CI).
#[test]
fn the_official_openai_python_sdk_works_unchanged() {
    let python = std::env::var("LLMROUTER_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let has_sdk = Command::new(&python).args(["-c", "import openai"]).output().is_ok_and(|o| o.status.success());
    if !has_sdk {
        assert!(
            std::env::var_os("LLMROUTER_REQUIRE_OPENAI_SDK").is_none(),
            "LLMROUTER_REQUIRE_OPENAI_SDK is set but `{python} -c 'import openai'` fails: pip install openai"
        );
        eprintln!("skipped: `{python}` has no `openai` package (pip install openai)");
        return;
    }
    let chunk = |content: &str| {
        let event = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "org/small",
                           "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]});
        format!("data: {event}\n\n")
    };
    let usage = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "org/small",
                       "choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}});
    let events = vec![
        (0, chunk("Paris")),
        (20, chunk(" is the capital.")),
        (0, format!("data: {usage}\n\n")),
        (0, "data: [DONE]\n\n".to_owned()),
    ];
    let upstream =
        MockServer::start(
            move |seen| if seen.body["stream"] == true { Reply::Sse(events.clone()) } else { Reply::Answer },
        );
    let dir = temp_dir("sdk");
    let server = start(command(&write_config(&dir, &upstream, ""), &[], &[("LLMROUTER_SERVER_KEYS", CLIENT_KEY)]));
    let out = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openai_sdk.py"))
        .env("LLMROUTER_BASE_URL", &server.base)
        .env("LLMROUTER_KEY", CLIENT_KEY)
        .output()
        .expect("run the SDK script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(got["model"], "small", "{got}");
    assert_eq!(got["header_model"], "small", "{got}");
    assert_eq!(got["content"], "answer from org/small: What is the capital of France?", "{got}");
    assert_eq!(got["total_tokens"], 15, "{got}");
    assert_eq!(got["stream_text"], "Paris is the capital.", "{got}");
    assert_eq!(got["stream_models"], json!(["small"]), "{got}");
    assert_eq!(got["stream_usage"], 7, "{got}");
    let seen = upstream.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body["temperature"], 0.2, "the SDK's parameters pass through");
    assert_eq!(seen[1].body["stream_options"], json!({"include_usage": true}));
    assert!(seen.iter().all(|s| s.authorization.as_deref() == Some(&format!("Bearer {UPSTREAM_SECRET}"))));
}
