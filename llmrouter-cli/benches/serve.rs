//! `cargo xtask bench-serve`: what `llmrouter serve` adds to a request, measured on this machine
//! (a bench binary, `harness = false`: it prints figures and asserts nothing about time).
//!
//! It starts, all on 127.0.0.1:
//! - a fake OpenAI-compatible upstream in this process, answering after a fixed delay
//!   (`--delay-ms`, default 5) and writing into each answer how long it held the request
//!   (`bench_upstream_us`; for a stream, `bench_first_us` in the first chunk);
//! - the real `llmrouter serve` binary (`--binary`, by default the release build) for each router
//!   (`--routers`, default randomrouter, svmrouter and knnrouter trained on
//!   `configs/llmrouter_dc.yaml` into `target/bench/models/` when missing), with
//!   `--insecure-no-auth` and `--port 0`, its port read from its `listening on` line;
//! - an open-loop load generator: at each rate (`--rates`, requests a second), requests are
//!   scheduled evenly on the clock for `--seconds`, whatever the answers do, over a pool of
//!   keep-alive connections; each latency counts from the request's scheduled time.
//!
//! Added latency is a request's end-to-end time minus the upstream's own time for it; the same
//! load sent straight to the upstream gives the floor that the load generator and the upstream's
//! HTTP handling cost by themselves. RSS is the server's `VmRSS`, idle after start and at its
//! highest under load. Every loop is bounded in count and time, and the server is killed at the
//! end, on error too.

#[allow(dead_code)] // each bench uses part of it
#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Longest a single request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// Requests sent before each measurement, to open connections and warm caches.
const WARM_UP: usize = 200;
/// Rate of the streamed run (time to first byte).
const STREAM_RATE: f64 = 500.0;

struct Args {
    binary: PathBuf,
    routers: Vec<String>,
    rates: Vec<f64>,
    seconds: f64,
    delay: Duration,
    config: PathBuf,
    input: PathBuf,
    models: PathBuf,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        binary: PathBuf::from("target/release/llmrouter"),
        routers: ["randomrouter", "svmrouter", "knnrouter"].map(str::to_owned).to_vec(),
        rates: vec![250.0, 500.0, 1000.0, 2000.0, 4000.0],
        seconds: 5.0,
        delay: Duration::from_millis(5),
        config: PathBuf::from("configs/llmrouter_dc.yaml"),
        input: PathBuf::from("../shared/data/llmrouter_dc_test.jsonl"),
        models: PathBuf::from("target/bench/models"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--binary" => args.binary = value()?.into(),
            "--routers" => args.routers = value()?.split(',').map(str::to_owned).collect(),
            "--rates" => {
                args.rates = value()?.split(',').map(|r| r.parse().context("--rates")).collect::<Result<_>>()?;
            }
            "--seconds" => args.seconds = value()?.parse().context("--seconds")?,
            "--delay-ms" => args.delay = Duration::from_secs_f64(value()?.parse::<f64>().context("--delay-ms")? / 1e3),
            "--config" => args.config = value()?.into(),
            "--input" => args.input = value()?.into(),
            "--models" => args.models = value()?.into(),
            "--bench" => {}
            other => bail!("unknown argument `{other}`"),
        }
    }
    if args.rates.iter().any(|r| !(*r > 0.0 && *r <= 100_000.0)) || !(args.seconds > 0.0 && args.seconds <= 600.0) {
        bail!("rates must be in (0, 100000] and --seconds in (0, 600]");
    }
    Ok(args)
}

fn main() -> Result<()> {
    support::enter_workspace_root()?;
    let args = parse_args()?;
    if !args.binary.is_file() {
        bail!("no server binary at {} (cargo build --release -p llmrouter-cli)", args.binary.display());
    }
    let texts: Vec<String> = support::read_queries(&args.input)?.into_iter().map(|q| q.query).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(args, texts))
}

async fn run(args: Args, texts: Vec<String>) -> Result<()> {
    let upstream = start_upstream(args.delay).await?;
    let config = write_config(&args, upstream)?;
    println!(
        "llmrouter serve benchmark: upstream delay {:.1} ms, {} s per rate, {} cores, load average {}",
        args.delay.as_secs_f64() * 1e3,
        args.seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        support::load_average()
    );
    let bodies = Arc::new(Bodies::new(&texts)?);
    let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(4096).build_http::<Full<Bytes>>();

    println!("\ndirect to the upstream (the floor: load generator, loopback and the upstream's HTTP):");
    print_header();
    let direct = format!("http://{upstream}/v1/chat/completions");
    for &rate in &args.rates {
        let run = load(&client, &direct, &bodies, rate, args.seconds, false, None).await?;
        println!("{}", run.line("direct", rate, None));
    }

    let mut summary = Vec::new();
    for router in &args.routers {
        let model = ensure_model(&args, &config, router)?;
        let mut server = Server::start(&args.binary, router, &config)?;
        let url = format!("http://{}/v1/chat/completions", server.address);
        // Idle: after start, before any request.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle_rss = server.rss_kb();
        println!("\n{router}: model file {}, idle RSS {}", size_text(model), kb_text(idle_rss));
        print_header();
        let mut held = None;
        let mut peak = idle_rss;
        for &rate in &args.rates {
            let run = load(&client, &url, &bodies, rate, args.seconds, false, Some(&server)).await?;
            peak = peak.max(run.peak_rss);
            println!("{}", run.line(router, rate, Some(run.peak_rss)));
            if run.holds() && run.added_p99() < 1000 {
                held = Some(rate);
            }
            server.check()?;
        }
        let stream = load(&client, &url, &bodies, STREAM_RATE, args.seconds, true, Some(&server)).await?;
        println!(
            "{router}: streamed at {STREAM_RATE} req/s: added time to first byte p50 {} p99 {} p99.9 {} µs ({} errors)",
            stream.quantile(0.5),
            stream.quantile(0.99),
            stream.quantile(0.999),
            stream.errors
        );
        server.check()?;
        summary.push((router.clone(), held, idle_rss, peak, model, stream.quantile(0.99)));
        drop(server);
    }
    println!("\nsummary (added = end-to-end minus the upstream's own time):");
    println!(
        "{:<14} {:>24} {:>12} {:>14} {:>12} {:>18}",
        "router", "highest rate p99 < 1 ms", "idle RSS", "RSS under load", "model file", "stream TTFB p99"
    );
    for (router, held, idle, peak, model, ttfb) in summary {
        let held = held.map_or_else(|| "none tested".to_owned(), |r| format!("{r} req/s"));
        println!(
            "{router:<14} {held:>24} {:>12} {:>14} {:>12} {:>15} µs",
            kb_text(idle),
            kb_text(peak),
            size_text(model),
            ttfb
        );
    }
    Ok(())
}

fn print_header() {
    println!(
        "{:<14} {:>8} {:>9} {:>8} {:>9} {:>9} {:>10} {:>7} {:>10}",
        "target", "req/s", "achieved", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "errors", "RSS"
    );
}

/// The request bodies, one per test query, serialised once.
struct Bodies {
    plain: Vec<Bytes>,
    streamed: Vec<Bytes>,
}

impl Bodies {
    fn new(texts: &[String]) -> Result<Self> {
        let body = |text: &str, stream: bool| -> Result<Bytes> {
            let value = serde_json::json!({
                "model": "auto",
                "messages": [{"role": "user", "content": text}],
                "max_tokens": 16,
                "stream": stream,
            });
            Ok(Bytes::from(serde_json::to_vec(&value)?))
        };
        if texts.is_empty() {
            bail!("no queries to send");
        }
        Ok(Bodies {
            plain: texts.iter().map(|t| body(t, false)).collect::<Result<_>>()?,
            streamed: texts.iter().map(|t| body(t, true)).collect::<Result<_>>()?,
        })
    }
}

/// What one run at one rate gave.
struct Run {
    /// Added microseconds of each successful request, sorted.
    added: Vec<u64>,
    errors: usize,
    sent: usize,
    /// Requests answered a second over the run.
    achieved: f64,
    peak_rss: Option<u64>,
}

impl Run {
    fn quantile(&self, q: f64) -> String {
        if self.added.is_empty() {
            return "-".to_owned();
        }
        let i = ((self.added.len() as f64 * q).ceil() as usize).clamp(1, self.added.len()) - 1;
        self.added[i].to_string()
    }

    fn added_p99(&self) -> u64 {
        self.quantile(0.99).parse().unwrap_or(u64::MAX)
    }

    /// Every request answered, at the rate asked (within 5 %).
    fn holds(&self) -> bool {
        self.errors == 0 && self.added.len() == self.sent
    }

    fn line(&self, target: &str, rate: f64, rss: Option<Option<u64>>) -> String {
        format!(
            "{target:<14} {rate:>8.0} {:>9.0} {:>8} {:>9} {:>9} {:>10} {:>7} {:>10}",
            self.achieved,
            self.quantile(0.5),
            self.quantile(0.99),
            self.quantile(0.999),
            self.added.last().map_or_else(|| "-".to_owned(), u64::to_string),
            self.errors,
            rss.map_or_else(String::new, kb_text)
        )
    }
}

/// One request's outcome: added microseconds, or a failure.
type Outcome = Option<u64>;

/// Sends `rate` requests a second for `seconds` to `url`, open loop, after a warm-up; samples the
/// server's RSS while it runs.
async fn load(
    client: &Client<HttpConnector, Full<Bytes>>,
    url: &str,
    bodies: &Arc<Bodies>,
    rate: f64,
    seconds: f64,
    stream: bool,
    server: Option<&Server>,
) -> Result<Run> {
    let uri: hyper::Uri = url.parse().context("the URL")?;
    // Warm-up, a few at a time.
    for chunk in (0..WARM_UP).collect::<Vec<_>>().chunks(16) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|&i| tokio::spawn(one(client.clone(), uri.clone(), Arc::clone(bodies), i, stream, Instant::now())))
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }
    let count = ((rate * seconds).round() as usize).max(1);
    let interval = Duration::from_secs_f64(1.0 / rate);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<(Outcome, Instant)>();
    let handle = tokio::runtime::Handle::current();
    let start = Instant::now() + Duration::from_millis(20);
    // Arrivals come from a plain thread sleeping to each scheduled time (finer than tokio's
    // millisecond timer); each request runs as a task and counts from its scheduled time.
    let scheduler = {
        let (client, uri, bodies) = (client.clone(), uri.clone(), Arc::clone(bodies));
        std::thread::spawn(move || {
            for i in 0..count {
                let at = start + interval.mul_f64(i as f64);
                let now = Instant::now();
                if at > now {
                    std::thread::sleep(at - now);
                }
                let done = done_tx.clone();
                let request = one(client.clone(), uri.clone(), Arc::clone(&bodies), i, stream, at);
                handle.spawn(async move {
                    let outcome = request.await;
                    let _ = done.send((outcome, Instant::now()));
                });
            }
        })
    };
    let pid = server.map(|s| s.child.id());
    let mut peak_rss = pid.and_then(rss_kb);
    let deadline = start + Duration::from_secs_f64(seconds) + REQUEST_TIMEOUT + Duration::from_secs(5);
    let (mut added, mut errors, mut last) = (Vec::with_capacity(count), 0, start);
    let mut received = 0;
    let mut next_sample = Instant::now();
    while received < count && Instant::now() < deadline {
        if Instant::now() >= next_sample {
            peak_rss = peak_rss.max(pid.and_then(rss_kb));
            next_sample += Duration::from_millis(100);
        }
        match tokio::time::timeout(Duration::from_millis(50), done_rx.recv()).await {
            Ok(Some((outcome, at))) => {
                received += 1;
                last = last.max(at);
                match outcome {
                    Some(us) => added.push(us),
                    None => errors += 1,
                }
            }
            Ok(None) => break,
            Err(_) => {}
        }
    }
    let _ = tokio::task::spawn_blocking(move || scheduler.join()).await;
    errors += count - received;
    added.sort_unstable();
    let span = last.saturating_duration_since(start).as_secs_f64().max(1e-9);
    Ok(Run { achieved: added.len() as f64 / span, added, errors, sent: count, peak_rss })
}

/// One request, timed from `scheduled`: the added microseconds (end-to-end, or to the first
/// byte when streaming, minus the upstream's own time), or `None` on any failure.
async fn one(
    client: Client<HttpConnector, Full<Bytes>>,
    uri: hyper::Uri,
    bodies: Arc<Bodies>,
    i: usize,
    stream: bool,
    scheduled: Instant,
) -> Outcome {
    let list = if stream { &bodies.streamed } else { &bodies.plain };
    let body = list[i % list.len()].clone();
    let request =
        hyper::Request::post(uri).header(hyper::header::CONTENT_TYPE, "application/json").body(Full::new(body)).ok()?;
    let work = async {
        let response = client.request(request).await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let mut body = response.into_body();
        if stream {
            // The first chunk carries the upstream's time to its first chunk.
            let mut seen = Vec::new();
            let first_at = loop {
                let frame = body.frame().await?.ok()?;
                if let Ok(data) = frame.into_data() {
                    if !data.is_empty() {
                        seen.extend_from_slice(&data);
                        break Instant::now();
                    }
                }
            };
            let upstream = field(&seen, "bench_first_us")?;
            while let Some(frame) = body.frame().await {
                frame.ok()?;
            }
            let took = first_at.saturating_duration_since(scheduled).as_micros() as u64;
            Some(took.saturating_sub(upstream))
        } else {
            let bytes = body.collect().await.ok()?.to_bytes();
            let took = scheduled.elapsed().as_micros() as u64;
            Some(took.saturating_sub(field(&bytes, "bench_upstream_us")?))
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, work).await.ok().flatten()
}

/// The integer after `"name":` in `bytes`.
fn field(bytes: &[u8], name: &str) -> Option<u64> {
    let key = format!("\"{name}\":");
    let at = bytes.windows(key.len()).position(|w| w == key.as_bytes())? + key.len();
    let digits: String = bytes[at..]
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit())
        .map(|&b| b as char)
        .collect();
    digits.parse().ok()
}

/// The fake upstream: answers every request after `delay`, with its own time in the answer.
async fn start_upstream(delay: Duration) -> Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the fake upstream")?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| answer(request, delay));
            tokio::spawn(async move {
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(address)
}

async fn answer(
    request: hyper::Request<Incoming>,
    delay: Duration,
) -> Result<hyper::Response<Full<Bytes>>, hyper::Error> {
    let arrived = Instant::now();
    let body = request.into_body().collect().await?.to_bytes();
    let stream =
        body.windows(14).any(|w| w == b"\"stream\":true}") || body.windows(13).any(|w| w == b"\"stream\":true");
    tokio::time::sleep(delay).await;
    let took = arrived.elapsed().as_micros();
    let (text, kind) = if stream {
        let chunk = |content: &str, extra: &str| {
            format!(
                "data: {{\"id\":\"bench\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{content}\"}},\"finish_reason\":null}}]{extra}}}\n\n"
            )
        };
        let first = chunk("o", &format!(",\"bench_first_us\":{took}"));
        (format!("{first}{}{}data: [DONE]\n\n", chunk("k", ""), chunk(".", "")), "text/event-stream")
    } else {
        (
            format!(
                "{{\"id\":\"bench\",\"object\":\"chat.completion\",\"created\":0,\"model\":\"m\",\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":\"ok\"}},\"finish_reason\":\"stop\"}}],\"usage\":{{\"prompt_tokens\":10,\"completion_tokens\":1,\"total_tokens\":11}},\"bench_upstream_us\":{took}}}"
            ),
            "application/json",
        )
    };
    let mut response = hyper::Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(kind));
    Ok(response)
}

/// The benchmark's config: the router config with its models under `--models` and the fake
/// upstream as `api_endpoint`, written to `target/bench/`.
fn write_config(args: &Args, upstream: std::net::SocketAddr) -> Result<PathBuf> {
    let text = std::fs::read_to_string(&args.config).with_context(|| format!("reading {}", args.config.display()))?;
    let models = std::path::absolute(&args.models)?;
    let mut replaced = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("save_model_path:") && line.starts_with(' ') {
            out.push_str(&format!("  save_model_path: {}/{{router}}.json\n", models.display()));
            replaced = true;
        } else if line.starts_with("api_endpoint:") {
            continue;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !replaced {
        bail!("{} has no `model_path.save_model_path` line to point at the bench models", args.config.display());
    }
    out.push_str(&format!("api_endpoint: http://{upstream}/v1\n"));
    let dir = Path::new("target/bench");
    std::fs::create_dir_all(dir)?;
    let path = dir.join("serve.yaml");
    std::fs::write(&path, out)?;
    Ok(path)
}

/// The router's model file (trained with the binary when missing), and its size; `None` for a
/// router that does not train.
fn ensure_model(args: &Args, config: &Path, router: &str) -> Result<Option<u64>> {
    let list = Command::new(&args.binary).args(["list-routers", "--format", "json"]).output()?;
    let routers: serde_json::Value = serde_json::from_slice(&list.stdout).context("list-routers --format json")?;
    let trainable = routers
        .as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == router))
        .with_context(|| format!("the binary has no router `{router}`"))?["trainable"]
        .as_bool()
        .unwrap_or(false);
    if !trainable {
        return Ok(None);
    }
    let path = args.models.join(format!("{router}.json"));
    if !path.is_file() {
        eprintln!("training {router} into {}", path.display());
        let status = Command::new(&args.binary)
            .args(["train", "--quiet", "--router", router, "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("training {router} failed");
        }
    }
    Ok(Some(std::fs::metadata(&path)?.len()))
}

/// A running `llmrouter serve`, killed when dropped.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start(binary: &Path, router: &str, config: &Path) -> Result<Server> {
        let mut child = Command::new(binary)
            .args(["serve", "--router", router, "--host", "127.0.0.1", "--port", "0", "--insecure-no-auth", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stderr = child.stderr.take().context("the server's stderr")?;
        let mut server = Server { child, address: String::new() };
        // A thread reads stderr to its end (the access log too, so the pipe never fills) and
        // passes on the address.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(address) = line.strip_prefix("listening on http://") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(address.trim().to_owned());
                    }
                } else if tx.is_some() {
                    eprintln!("server: {line}");
                }
            }
        });
        server.address = rx.recv_timeout(START_TIMEOUT).context("the server never printed `listening on`")?;
        Ok(server)
    }

    fn rss_kb(&self) -> Option<u64> {
        rss_kb(self.child.id())
    }

    /// An error when the server has exited.
    fn check(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("the server exited: {status}");
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS` of process `pid`, in kB.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn kb_text(kb: Option<u64>) -> String {
    kb.map_or_else(|| "-".to_owned(), |kb| format!("{:.1} MB", kb as f64 / 1024.0))
}

fn size_text(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "none".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6))
}
