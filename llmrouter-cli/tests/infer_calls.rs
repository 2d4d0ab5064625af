//! `llmrouter infer` without `--route-only`: the real binary calling a local OpenAI-compatible
//! server (tests/support) started by each test on 127.0.0.1. Nothing here reaches the network.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{MockServer, Reply, Seen};

/// A recognisable key: no output may ever contain it.
const SECRET: &str = "sk-test-SECRET-4f2a9c";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("llmrouter-calls-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Three candidates on `server`: `small` (routed to by smallest_llm; no endpoint of its own, so
/// the config's `api_endpoint` is used), `mid` and `large` (the most expensive: the first
/// fallback). All of service `LOCAL`.
fn write_config(dir: &Path, server: &MockServer) -> PathBuf {
    let path = dir.join("config.yaml");
    std::fs::write(&path, support::three_candidates(dir, server)).expect("write config");
    path
}

/// `llmrouter infer --router smallest_llm --config CONFIG ARGS` with `API_KEYS=keys` (unset when
/// `None`).
fn command(config: &Path, args: &[&str], keys: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_llmrouter"));
    cmd.args(["infer", "--router", "smallest_llm", "--config"]).arg(config).args(args);
    cmd.env_remove("API_KEYS");
    if let Some(keys) = keys {
        cmd.env("API_KEYS", keys);
    }
    cmd
}

fn infer(config: &Path, args: &[&str], keys: Option<&str>) -> Output {
    command(config, args, keys).output().expect("run llmrouter")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_result(o: &Output) -> Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("JSON result ({e}):\n{}\n{}", stdout(o), stderr(o)))
}

/// Asserts exit code 1 with a readable error (no panic) mentioning every needle.
fn fails_with(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "exit code 1 expected; stderr:\n{err}");
    assert!(!err.contains("panicked"), "no panic:\n{err}");
    for n in needles {
        assert!(err.contains(n), "stderr should mention {n:?}:\n{err}");
    }
}

fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("read results");
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("result line {l:?}: {e}"))).collect()
}

/// Writes `n` queries `q0`..`q{n-1}` (with ids `id-0`, ...) as JSONL.
fn queries(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("queries.jsonl");
    let text: String = (0..n).map(|i| format!("{{\"query\": \"q{i}\", \"id\": \"id-{i}\"}}\n")).collect();
    std::fs::write(&path, text).expect("write queries");
    path
}

#[test]
fn one_query_prints_the_answer_of_the_chosen_model() {
    let server = MockServer::start(|_| Reply::Answer);
    let dir = temp_dir("one");
    let config = write_config(&dir, &server);
    let o = infer(&config, &["--query", "What is 2+2?"], Some(SECRET));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "answer from org/small: What is 2+2?\n");
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].model, "org/small", "the candidate's API model id is sent");
    assert_eq!(seen[0].authorization.as_deref(), Some(format!("Bearer {SECRET}").as_str()));

    let o = infer(&config, &["--query", "What is 2+2?", "--format", "json", "--verbose"], Some(SECRET));
    assert!(o.status.success(), "{}", stderr(&o));
    let r = json_result(&o);
    assert_eq!(r["success"], true);
    assert_eq!(r["error"], Value::Null);
    assert_eq!(r["model_name"], "small");
    assert_eq!(r["api_model"], "org/small");
    assert_eq!(r["response"], "answer from org/small: What is 2+2?");
    assert_eq!(r["usage"], serde_json::json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}));
    let cost = r["cost"].as_f64().expect("cost");
    assert!((cost - (10.0 * 0.1 + 5.0 * 0.2) / 1e6).abs() < 1e-15, "cost from the candidate's prices: {cost}");
    assert_eq!(r["attempts"], 1);
    assert!(r["latency_ms"].is_u64());
    assert_eq!(r["routing"]["model_name"], "small");
    assert_eq!(r["routing"]["router"], "smallest_llm");
    assert!(r.get("fallback_from").is_none());
    let err = stderr(&o);
    for needle in
        ["routing: {", "model: small (org/small)", "latency: ", "tokens: 10 prompt + 5 completion = 15", "cost: $"]
    {
        assert!(err.contains(needle), "--verbose shows {needle:?}:\n{err}");
    }
}

#[test]
fn transient_failures_are_retried_until_an_answer() {
    // 500, then 429 with Retry-After: 0, then a dropped connection, then the answer.
    let server = MockServer::start(|seen| match seen.nth {
        1 => Reply::status(500),
        2 => Reply::rate_limited(0),
        3 => Reply::Drop,
        _ => Reply::Answer,
    });
    let dir = temp_dir("retry");
    let config = write_config(&dir, &server);
    let o = infer(&config, &["--query", "hi", "--format", "json", "--retries", "3", "--backoff-ms", "1"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = json_result(&o);
    assert_eq!((r["success"].clone(), r["attempts"].clone()), (Value::Bool(true), Value::from(4)));
    assert_eq!(r["response"], "answer from org/small: hi");
    assert_eq!(server.count("hi"), 4);
}

#[test]
fn retry_after_is_waited() {
    let server = MockServer::start(|seen| if seen.nth == 1 { Reply::rate_limited(1) } else { Reply::Answer });
    let dir = temp_dir("retry-after");
    let config = write_config(&dir, &server);
    let started = Instant::now();
    let o = infer(&config, &["--query", "hi", "--backoff-ms", "1"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    // Not a speed check: a lower bound the client must respect (Retry-After: 1, backoff 1 ms).
    assert!(started.elapsed() >= Duration::from_secs(1), "waited only {:?}", started.elapsed());
    assert_eq!(server.count("hi"), 2);
}

#[test]
fn retries_exhausted_then_fallback_to_the_next_model() {
    let server = MockServer::start(|seen| if seen.model == "org/small" { Reply::status(503) } else { Reply::Answer });
    let dir = temp_dir("fallback");
    let config = write_config(&dir, &server);
    let args = ["--query", "hi", "--format", "json", "--retries", "2", "--backoff-ms", "1"];
    let o = infer(&config, &args, None);
    fails_with(&o, &["model `small` failed after 3 attempts", "HTTP 503"]);
    let r = json_result(&o);
    assert_eq!((r["success"].clone(), r["response"].clone()), (Value::Bool(false), Value::Null));
    assert!(r["error"].as_str().is_some_and(|e| e.contains("HTTP 503")), "{r}");
    assert_eq!(server.count("hi"), 3, "1 attempt + 2 retries, no fallback without --fallback");

    let o = infer(&config, &[&args[..], &["--fallback"]].concat(), None);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = json_result(&o);
    assert_eq!(r["success"], true);
    assert_eq!(r["model_name"], "large", "no ranking: the most expensive other candidate");
    assert_eq!(r["routing"]["model_name"], "small", "the decision is kept as the router made it");
    assert_eq!(r["response"], "answer from org/large: hi");
    assert_eq!(r["attempts"], 4);
    assert_eq!(r["fallback_from"][0]["model_name"], "small");
    assert_eq!(r["fallback_from"][0]["attempts"], 3);
    assert!(r["fallback_from"][0]["error"].as_str().is_some_and(|e| e.contains("HTTP 503")), "{r}");
    let cost = r["cost"].as_f64().expect("cost");
    assert!((cost - (10.0 * 1.0 + 5.0 * 2.0) / 1e6).abs() < 1e-15, "priced as the model that answered: {cost}");
    assert!(stderr(&o).contains("`small` failed"), "a note says a fallback answered:\n{}", stderr(&o));
}

#[test]
fn unauthorized_is_not_retried() {
    let server = MockServer::start(|_| Reply::status(401));
    let dir = temp_dir("401");
    let config = write_config(&dir, &server);
    let o = infer(&config, &["--query", "hi", "--retries", "5", "--backoff-ms", "1"], Some(SECRET));
    fails_with(&o, &["HTTP 401", "after 1 attempt:"]);
    assert_eq!(server.count("hi"), 1);
    let o = infer(&config, &["--query", "hi"], None);
    fails_with(&o, &["HTTP 401", "no API key was sent", "API_KEYS"]);
}

#[test]
fn timeouts_are_retried_then_reported() {
    let server = MockServer::start(|_| Reply::after_ms(5_000, Reply::Answer));
    let dir = temp_dir("timeout");
    let config = write_config(&dir, &server);
    let o = infer(&config, &["--query", "slow", "--timeout", "0.3", "--retries", "1", "--backoff-ms", "1"], None);
    fails_with(&o, &["timed out", "0.3 s", "after 2 attempts"]);
    assert_eq!(server.count("slow"), 2);
}

/// A connection that is never set up hits the connect timeout, is retried, and is reported as a
/// timeout naming it.
#[cfg(target_os = "linux")]
#[test]
fn a_connect_timeout_is_retried_then_reported() {
    // A listener that never accepts, with a backlog of 1: once its queue is full, Linux drops new
    // SYNs, so a connection attempt hangs until the client gives up.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let listener = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(([127, 0, 0, 1], 0).into()).expect("bind");
        socket.listen(1).expect("listen").into_std().expect("std listener")
    });
    let address = listener.local_addr().expect("address");
    let mut held = Vec::new();
    while let Ok(stream) = std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)) {
        held.push(stream);
        assert!(held.len() < 64, "the listen queue never filled");
    }
    let dir = temp_dir("connect-timeout");
    std::fs::write(dir.join("llm.json"), r#"{"small": {"size": "1B", "model": "org/small"}}"#).expect("llm data");
    let config = dir.join("config.yaml");
    let yaml =
        format!("data_path:\n  llm_data: {}\napi_endpoint: http://{address}/v1\n", dir.join("llm.json").display());
    std::fs::write(&config, yaml).expect("config");
    let args = ["--query", "hi", "--connect-timeout", "0.3", "--retries", "1", "--backoff-ms", "1"];
    let o = infer(&config, &args, None);
    fails_with(&o, &["timed out", "no connection within the connect timeout of 0.3 s", "after 2 attempts"]);
    drop((held, listener));
}

#[test]
fn a_malformed_answer_is_a_failure() {
    let server = MockServer::start(|_| Reply::Malformed);
    let dir = temp_dir("malformed");
    let config = write_config(&dir, &server);
    let o = infer(&config, &["--query", "hi", "--format", "json", "--backoff-ms", "1"], None);
    fails_with(&o, &["malformed response"]);
    let r = json_result(&o);
    assert_eq!((r["success"].clone(), r["response"].clone()), (Value::Bool(false), Value::Null));
    assert_eq!(server.count("hi"), 1, "a malformed answer is not retried");
}

#[test]
fn an_https_endpoint_goes_through_rustls_and_fails_cleanly_on_plain_http() {
    // The server speaks plain HTTP: the TLS handshake (rustls, platform verifier) must fail as an
    // error, not a panic about a missing crypto provider.
    let server = MockServer::start(|_| Reply::Answer);
    let dir = temp_dir("https");
    let config = write_config(&dir, &server);
    let text = std::fs::read_to_string(&config).expect("config").replace("http://", "https://");
    std::fs::write(&config, text).expect("config");
    let o = infer(&config, &["--query", "hi", "--retries", "0"], None);
    fails_with(&o, &["cannot call https://127.0.0.1:"]);
}

#[test]
fn no_api_key_appears_in_any_output() {
    // The server echoes the Authorization header back: in error bodies and in an answer.
    let server = MockServer::start(|seen| {
        let auth = seen.authorization.clone().unwrap_or_default();
        match seen.content.as_str() {
            "echo" => Reply::Text(format!("you sent {auth}")),
            "fail" => Reply::Status { status: 500, retry_after: None, body: format!("bad key {auth}") },
            _ => Reply::Status { status: 401, retry_after: None, body: format!("{{\"error\": \"invalid {auth}\"}}") },
        }
    });
    let dir = temp_dir("secret");
    let config = write_config(&dir, &server);
    let keys = format!("{{\"LOCAL\": [\"{SECRET}\", \"{SECRET}-2\"]}}");
    let mut outputs = Vec::new();
    for query in ["echo", "fail", "denied"] {
        for format in ["text", "json"] {
            let args = ["--query", query, "--format", format, "--verbose", "--retries", "1", "--backoff-ms", "1"];
            outputs.push(infer(&config, &args, Some(&keys)));
        }
    }
    let input = dir.join("q.txt");
    std::fs::write(&input, "echo\nfail\ndenied\n").expect("queries");
    let results = dir.join("results.jsonl");
    let args = ["--input", input.to_str().expect("utf8"), "--output", results.to_str().expect("utf8"), "--fallback"];
    outputs.push(infer(&config, &[&args[..], &["--backoff-ms", "1"]].concat(), Some(&keys)));
    let requests = server.requests();
    assert!(!requests.is_empty(), "the server was called");
    assert!(requests.iter().all(|s| s.authorization.as_deref().is_some_and(|a| a.contains(SECRET))));
    let mut everything = std::fs::read_to_string(&results).expect("results");
    for o in &outputs {
        everything.push_str(&stdout(o));
        everything.push_str(&stderr(o));
    }
    assert!(!everything.contains(SECRET), "a key leaked:\n{everything}");
    assert!(everything.contains("you sent Bearer [redacted]"), "{everything}");
    assert!(everything.contains("bad key Bearer [redacted]"), "{everything}");
    assert!(everything.contains("invalid Bearer [redacted]"), "{everything}");
}

#[test]
fn credentials_in_an_endpoint_url_never_print() {
    const PASSWORD: &str = "url-PASSWORD-4c2f";
    // base64("bob:url-PASSWORD-4c2f"), the Basic-auth form a server may echo.
    const BASIC: &str = "Ym9iOnVybC1QQVNTV09SRC00YzJm";
    let server = MockServer::start(|seen| {
        let auth = seen.authorization.clone().unwrap_or_default();
        match seen.content.as_str() {
            "echo" => Reply::Text(format!("you sent {auth}")),
            _ => Reply::Status { status: 401, retry_after: None, body: format!("{{\"error\": \"invalid {auth}\"}}") },
        }
    });
    let dir = temp_dir("url-credentials");
    let config = dir.join("config.yaml");
    let with_credentials = server.base_url.replacen("http://", &format!("http://bob:{PASSWORD}@"), 1);
    let yaml = support::three_candidates(&dir, &server)
        .replace(&format!("api_endpoint: {}", server.base_url), &format!("api_endpoint: {with_credentials}"));
    assert!(yaml.contains(PASSWORD), "{yaml}");
    std::fs::write(&config, yaml).expect("write config");
    let mut everything = String::new();
    for query in ["echo", "denied"] {
        for format in ["text", "json"] {
            let o = infer(&config, &["--query", query, "--format", format, "--verbose"], None);
            everything.push_str(&stdout(&o));
            everything.push_str(&stderr(&o));
        }
    }
    let requests = server.requests();
    assert!(!requests.is_empty(), "the server was called");
    assert!(requests.iter().all(|s| s.authorization.as_deref() == Some(&format!("Basic {BASIC}"))), "{requests:?}");
    for secret in [PASSWORD, BASIC] {
        assert!(!everything.contains(secret), "{secret} leaked:\n{everything}");
    }
    assert!(everything.contains("you sent Basic [redacted]"), "{everything}");
    assert!(everything.contains("invalid Basic [redacted]"), "{everything}");
    assert!(!everything.contains("no API key was sent"), "credentials were sent:\n{everything}");
}

#[test]
fn keys_rotate_round_robin_within_a_service() {
    let server = MockServer::start(|_| Reply::Answer);
    let dir = temp_dir("rotate");
    let config = write_config(&dir, &server);
    let input = queries(&dir, 4);
    let keys = r#"{"LOCAL": ["key-a", "key-b"], "OTHER": "key-c"}"#;
    let o = infer(&config, &["--input", input.to_str().expect("utf8"), "--concurrency", "1"], Some(keys));
    assert!(o.status.success(), "{}", stderr(&o));
    let used: Vec<String> = server.requests().into_iter().filter_map(|s| s.authorization).collect();
    assert_eq!(used, ["Bearer key-a", "Bearer key-b", "Bearer key-a", "Bearer key-b"]);
    assert_eq!(stdout(&o).lines().count(), 4, "without --output, one JSON line per query on stdout");
}

/// The injected failures of the 200-query batch, by query number.
fn flaky(seen: &Seen) -> Reply {
    let i: usize = seen.content.trim_start_matches('q').parse().expect("query number");
    match (i % 10, seen.nth) {
        (3, _) => Reply::status(500),                      // fails every attempt
        (9, _) => Reply::Malformed,                        // fails, not retried
        (5, 1) => Reply::rate_limited(0),                  // 429 once
        (7, 1) => Reply::Drop,                             // connection dropped once
        (1, 1) => Reply::after_ms(20, Reply::status(502)), // slow 502 once
        _ => Reply::after_ms((i % 7) as u64, Reply::Answer),
    }
}

#[test]
fn a_batch_of_200_with_injected_failures_gives_one_line_per_query() {
    let server = MockServer::start(flaky);
    let dir = temp_dir("batch200");
    let config = write_config(&dir, &server);
    let input = queries(&dir, 200);
    let results = dir.join("results.jsonl");
    let args = ["--input", input.to_str().expect("utf8"), "--output", results.to_str().expect("utf8")];
    let o =
        infer(&config, &[&args[..], &["--concurrency", "16", "--retries", "2", "--backoff-ms", "1"]].concat(), None);
    fails_with(&o, &["40 of 200 queries got no answer", "--resume"]);
    let err = stderr(&o);
    assert!(err.contains("answered 160 of 200 queries"), "{err}");
    assert!(err.contains("; 40 failed"), "{err}");
    assert!(err.contains("per model: small 160 (40 failed)"), "{err}");
    assert!(err.contains("tokens: 1600 prompt + 800 completion = 2400"), "{err}");

    let lines = lines(&results);
    assert_eq!(lines.len(), 200, "exactly one line per query");
    let mut by_index = BTreeMap::new();
    for line in &lines {
        let index = line["index"].as_u64().expect("index") as usize;
        assert!(by_index.insert(index, line.clone()).is_none(), "index {index} written twice");
    }
    assert_eq!(by_index.keys().copied().collect::<Vec<_>>(), (0..200).collect::<Vec<_>>());
    for (i, line) in &by_index {
        assert_eq!(line["query"], format!("q{i}"));
        assert_eq!(line["id"], format!("id-{i}"));
        let should_fail = matches!(i % 10, 3 | 9);
        assert_eq!(line["success"], !should_fail, "query {i}: {line}");
        assert_eq!(line["error"].is_null(), !should_fail, "query {i}: {line}");
        let expected_attempts = match i % 10 {
            3 => 3,
            9 | 0 | 2 | 4 | 6 | 8 => 1,
            _ => 2,
        };
        assert_eq!(line["attempts"], expected_attempts, "query {i}: {line}");
    }
    let successes = lines.iter().filter(|l| l["success"] == true).count();
    assert_eq!(successes, 160);
}

#[test]
fn resume_after_a_kill_keeps_every_answer_and_answers_the_rest() {
    const N: usize = 120;
    // The rerun's server answers at once; the first run's waits 40 ms per answer, so that it
    // can be killed midway.
    let server = MockServer::start(|_| Reply::Answer);
    let dir = temp_dir("resume");
    let config = write_config(&dir, &server);
    let input = queries(&dir, N);
    let results = dir.join("results.jsonl");
    let args = ["--input", input.to_str().expect("utf8"), "--output", results.to_str().expect("utf8")];

    let slow_server = MockServer::start(|_| Reply::after_ms(40, Reply::Answer));
    let slow_config = write_config(&temp_dir("resume-slow"), &slow_server);
    let mut child = command(&slow_config, &[&args[..], &["--concurrency", "2"]].concat(), None)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let written = std::fs::read_to_string(&results).map(|t| t.lines().count()).unwrap_or(0);
        if written >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "the first run wrote only {written} lines");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("kill");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "killed midway");
    let before = std::fs::read_to_string(&results).expect("results");
    let answered_before: Vec<Value> = lines(&results);
    assert!(answered_before.len() < N, "killed before the end ({} lines)", answered_before.len());
    // A write cut off by the kill: the rerun must drop it, not fail on it.
    std::fs::write(&results, format!("{before}{{\"index\": 3, \"query\": \"q3\", \"succ")).expect("append");

    let o = infer(&config, &args, None);
    fails_with(&o, &["already exists", "--resume"]);
    let o = infer(&config, &[&args[..], &["--resume", "--concurrency", "8"]].concat(), None);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&format!("{} of {N} queries already answered", answered_before.len())), "{err}");
    assert!(err.contains("cut off"), "{err}");

    let after = std::fs::read_to_string(&results).expect("results");
    assert!(after.starts_with(&before), "nothing written before the kill is lost or changed");
    let all = lines(&results);
    assert_eq!(all.len(), N, "one line per query in the end");
    let mut indices: Vec<u64> = all.iter().map(|l| l["index"].as_u64().expect("index")).collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..N as u64).collect::<Vec<_>>());
    assert!(all.iter().all(|l| l["success"] == true));
    // The queries answered before the kill were not sent again.
    for line in &answered_before {
        let query = line["query"].as_str().expect("query");
        assert_eq!(server.count(query), 0, "{query} was answered before the kill and must not be resent");
    }
    assert_eq!(server.requests().len(), N - answered_before.len());

    // Resuming a finished file does nothing; resuming it for another input is refused.
    let o = infer(&config, &[&args[..], &["--resume"]].concat(), None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(server.requests().len(), N - answered_before.len());
    let other = dir.join("other.txt");
    std::fs::write(&other, "something else\n").expect("write");
    let o = infer(
        &config,
        &["--input", other.to_str().expect("utf8"), "--output", results.to_str().expect("utf8"), "--resume"],
        None,
    );
    fails_with(&o, &["is not for this input"]);
}

#[test]
fn failed_lines_are_retried_on_resume() {
    let server =
        MockServer::start(
            |seen| if seen.content == "q1" && seen.nth == 1 { Reply::status(400) } else { Reply::Answer },
        );
    let dir = temp_dir("resume-failed");
    let config = write_config(&dir, &server);
    let input = queries(&dir, 3);
    let results = dir.join("created/on/demand/results.jsonl");
    let args = ["--input", input.to_str().expect("utf8"), "--output", results.to_str().expect("utf8")];
    let o = infer(&config, &args, None);
    fails_with(&o, &["1 of 3 queries got no answer"]);
    assert_eq!(lines(&results).iter().filter(|l| l["success"] == false).count(), 1);
    let o = infer(&config, &[&args[..], &["--resume"]].concat(), None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("retrying 1 that failed"), "{}", stderr(&o));
    let all = lines(&results);
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|l| l["success"] == true), "the failed line was replaced");
    assert_eq!(server.count("q0") + server.count("q1") + server.count("q2"), 4);
}

/// Not a test of speed: run it by hand to measure (see README, "Speed").
/// `cargo test --release -p llmrouter-cli --test infer_calls -- --ignored --nocapture thousand`
#[test]
#[ignore]
fn thousand_queries_at_concurrency_64_against_a_50_ms_server() {
    let server = MockServer::start(|_| Reply::after_ms(50, Reply::Answer));
    let dir = temp_dir("thousand");
    let config = write_config(&dir, &server);
    let input = queries(&dir, 1000);
    let results = dir.join("results.jsonl");
    let args = ["--input", input.to_str().expect("utf8"), "--output", results.to_str().expect("utf8")];
    let time = Path::new("/usr/bin/time");
    let mut cmd = if time.is_file() {
        let mut cmd = Command::new(time);
        cmd.arg("-v").arg(env!("CARGO_BIN_EXE_llmrouter"));
        cmd
    } else {
        Command::new(env!("CARGO_BIN_EXE_llmrouter"))
    };
    cmd.args(["infer", "--router", "smallest_llm", "--config"]).arg(&config).args(args).args(["--concurrency", "64"]);
    let started = Instant::now();
    let o = cmd.env_remove("API_KEYS").output().expect("run");
    let wall = started.elapsed();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(lines(&results).len(), 1000);
    let err = stderr(&o);
    let peak = err.lines().find(|l| l.contains("Maximum resident set size")).unwrap_or("(no /usr/bin/time)");
    println!("1000 queries, concurrency 64, 50 ms per answer: wall {:.2} s; {}", wall.as_secs_f64(), peak.trim());
    println!(
        "{}",
        err.lines().filter(|l| l.starts_with("answered") || l.starts_with("  ")).take(3).collect::<Vec<_>>().join("\n")
    );
}
