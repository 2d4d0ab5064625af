//! `serve`'s counters, and `GET /metrics` in Prometheus' text format (0.0.4), every series named
//! `llmrouter_...`. Written by hand: atomics for every counter, gauge and histogram bucket, one
//! mutex for the requests by (router, model, status). Label values are the router's name, the
//! candidates' keys, HTTP statuses and fixed reasons: never anything a client chose.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Token counts of one answer, as the model reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// `usage.prompt_tokens`.
    pub prompt: u64,
    /// `usage.completion_tokens`.
    pub completion: u64,
}

impl Usage {
    /// The `usage` object of an answer or a stream chunk, when it has one.
    pub fn from_answer(answer: &serde_json::Value) -> Option<Usage> {
        let usage = answer.get("usage")?;
        let count = |field: &str| usage.get(field).and_then(serde_json::Value::as_u64).unwrap_or(0);
        usage.is_object().then(|| Usage { prompt: count("prompt_tokens"), completion: count("completion_tokens") })
    }
}

/// Why a request was refused before any model was called.
#[derive(Debug, Clone, Copy)]
pub enum Reason {
    /// 401: no key or a wrong one.
    Auth,
    /// 429: the key's rate limit.
    RateLimit,
    /// 503: the concurrency limit and its queue are full.
    Overloaded,
    /// 413: the body is over `serve.max_body_bytes`.
    BodyTooLarge,
    /// 400: the request is malformed.
    BadRequest,
    /// 404: `model` is neither `auto`, the router nor a candidate.
    ModelNotFound,
}

const REASONS: [&str; 6] = ["auth", "rate_limit", "overloaded", "body_too_large", "bad_request", "model_not_found"];

/// Routing latency buckets, in seconds (10 µs to 1 s).
const ROUTING_BUCKETS: &[f64] =
    &[0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0];
/// Upstream latency and time-to-first-byte buckets, in seconds (5 ms to 5 min).
const CALL_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

/// A histogram with fixed buckets.
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative), then one for +Inf.
    counts: Vec<AtomicU64>,
    sum_bits: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_bits: AtomicU64::new(0f64.to_bits()),
            count: AtomicU64::new(0),
        }
    }

    /// Counts one observation of `took`.
    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = self.bounds.iter().position(|b| secs <= *b).unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        add_f64(&self.sum_bits, secs);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "{name}_sum {}", f64::from_bits(self.sum_bits.load(Ordering::Relaxed)));
        let _ = writeln!(out, "{name}_count {}", self.count.load(Ordering::Relaxed));
    }
}

fn add_f64(cell: &AtomicU64, x: f64) {
    let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + x).to_bits()));
}

/// Per candidate: tokens, cost and the fallbacks away from it.
#[derive(Default)]
struct PerModel {
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    cost_bits: AtomicU64,
    fallbacks: AtomicU64,
}

/// A chat request's labels: routed, candidate position, status.
type RequestKey = (bool, Option<usize>, u16);

/// Adds one to `key`'s count.
fn count(series: &Mutex<BTreeMap<RequestKey, u64>>, key: RequestKey) {
    let mut counts = series.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    *counts.entry(key).or_insert(0) += 1;
}

/// Every series of `/metrics`.
pub struct Metrics {
    router: String,
    /// Candidate keys and prices (input, output) per 1M tokens, by candidate position.
    models: Vec<(String, f64, f64)>,
    per_model: Vec<PerModel>,
    /// Chat requests by (routed, candidate position, status).
    requests: Mutex<BTreeMap<RequestKey, u64>>,
    /// `POST /v1/route` requests by (routed, candidate position, status).
    route_requests: Mutex<BTreeMap<RequestKey, u64>>,
    /// Routing time of each routed request.
    pub routing: Histogram,
    /// From the first upstream attempt to the end of the answer (retries and fallbacks included).
    pub upstream: Histogram,
    /// From the request's arrival to the answer's first byte being ready to send.
    pub ttfb: Histogram,
    in_flight: AtomicI64,
    rejected: [AtomicU64; 6],
    /// SIGHUP reloads that swapped the router in ([0]) and that kept the old one ([1]).
    reloads: [AtomicU64; 2],
}

impl Metrics {
    /// Zeroed series for `router` over these candidates (key, input price, output price).
    pub fn new(router: &str, models: Vec<(String, f64, f64)>) -> Self {
        Metrics {
            router: router.to_owned(),
            per_model: models.iter().map(|_| PerModel::default()).collect(),
            models,
            requests: Mutex::new(BTreeMap::new()),
            route_requests: Mutex::new(BTreeMap::new()),
            routing: Histogram::new(ROUTING_BUCKETS),
            upstream: Histogram::new(CALL_BUCKETS),
            ttfb: Histogram::new(CALL_BUCKETS),
            in_flight: AtomicI64::new(0),
            rejected: Default::default(),
            reloads: Default::default(),
        }
    }

    /// A chat request started (+1) or ended (-1).
    pub fn in_flight(&self, delta: i64) {
        self.in_flight.fetch_add(delta, Ordering::Relaxed);
    }

    /// Counts a refused request.
    pub fn reject(&self, reason: Reason) {
        self.rejected[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a reload: `ok` when the new router was swapped in.
    pub fn reloaded(&self, ok: bool) {
        self.reloads[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a fallback away from candidate `from`.
    pub fn fallback(&self, from: usize) {
        if let Some(m) = self.per_model.get(from) {
            m.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a finished chat request, and the tokens and cost of its answer.
    pub fn request(&self, routed: bool, model: Option<usize>, status: u16, usage: Option<Usage>) {
        let model = model.filter(|m| *m < self.models.len());
        count(&self.requests, (routed, model, status));
        if let (Some(m), Some(usage)) = (model, usage) {
            let per = &self.per_model[m];
            let (_, input_price, output_price) = self.models[m];
            per.prompt_tokens.fetch_add(usage.prompt, Ordering::Relaxed);
            per.completion_tokens.fetch_add(usage.completion, Ordering::Relaxed);
            let cost = (usage.prompt as f64 * input_price + usage.completion as f64 * output_price) / 1e6;
            add_f64(&per.cost_bits, cost);
        }
    }

    /// Counts a finished `POST /v1/route` request (`model`: the decision).
    pub fn route_request(&self, routed: bool, model: Option<usize>, status: u16) {
        count(&self.route_requests, (routed, model.filter(|m| *m < self.models.len()), status));
    }

    /// The text of `/metrics`; `queued` is the concurrency limit's queue length now.
    pub fn render(&self, queued: usize) -> String {
        let mut out = String::with_capacity(8192);
        let label = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let router = label(&self.router);
        let model_name = |m: Option<usize>| m.map_or_else(|| "none".to_owned(), |m| label(&self.models[m].0));
        for (name, help, series) in [
            (
                "llmrouter_requests_total",
                "Chat completion requests answered, by router (\"none\" for a named candidate), model and HTTP status.",
                &self.requests,
            ),
            (
                "llmrouter_route_requests_total",
                "POST /v1/route requests answered (decisions without a model call), by router (\"none\" for a named candidate), model decided and HTTP status.",
                &self.route_requests,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let requests = series.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for ((routed, model, status), n) in requests.iter() {
                let r = if *routed { router.as_str() } else { "none" };
                let _ =
                    writeln!(out, "{name}{{router=\"{r}\",model=\"{}\",status=\"{status}\"}} {n}", model_name(*model));
            }
        }
        self.routing.render(&mut out, "llmrouter_routing_latency_seconds", "Time the router took to decide.");
        self.upstream.render(
            &mut out,
            "llmrouter_upstream_latency_seconds",
            "From the first upstream attempt to the end of the answer, retries and fallbacks included.",
        );
        self.ttfb.render(
            &mut out,
            "llmrouter_time_to_first_byte_seconds",
            "From the request's arrival to the first byte of a successful answer.",
        );
        let per_model = |out: &mut String, name: &str, kind: &str, help: &str, value: &dyn Fn(&PerModel) -> String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (m, per) in self.per_model.iter().enumerate() {
                let _ = writeln!(out, "{name}{{model=\"{}\"}} {}", model_name(Some(m)), value(per));
            }
        };
        let _ = writeln!(
            out,
            "# HELP llmrouter_tokens_total Tokens the models reported, by model and kind.\n# TYPE llmrouter_tokens_total counter"
        );
        for (m, per) in self.per_model.iter().enumerate() {
            for (kind, n) in [("prompt", &per.prompt_tokens), ("completion", &per.completion_tokens)] {
                let _ = writeln!(
                    out,
                    "llmrouter_tokens_total{{model=\"{}\",kind=\"{kind}\"}} {}",
                    model_name(Some(m)),
                    n.load(Ordering::Relaxed)
                );
            }
        }
        per_model(
            &mut out,
            "llmrouter_cost_usd_total",
            "counter",
            "USD spent, from the reported usage at the candidate's input_price and output_price per 1M tokens.",
            &|p| f64::from_bits(p.cost_bits.load(Ordering::Relaxed)).to_string(),
        );
        per_model(
            &mut out,
            "llmrouter_fallbacks_total",
            "counter",
            "Times a model failed and the next one of the ranking was tried, by the model that failed.",
            &|p| p.fallbacks.load(Ordering::Relaxed).to_string(),
        );
        let _ = writeln!(
            out,
            "# HELP llmrouter_in_flight_requests Chat requests being answered now.\n# TYPE llmrouter_in_flight_requests gauge\nllmrouter_in_flight_requests {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP llmrouter_queued_requests Chat requests waiting for a place under serve.max_concurrency.\n# TYPE llmrouter_queued_requests gauge\nllmrouter_queued_requests {queued}"
        );
        out.push_str("# HELP llmrouter_rejected_requests_total Requests refused before any model was called, by reason.\n# TYPE llmrouter_rejected_requests_total counter\n");
        for (reason, n) in REASONS.iter().zip(&self.rejected) {
            let _ =
                writeln!(out, "llmrouter_rejected_requests_total{{reason=\"{reason}\"}} {}", n.load(Ordering::Relaxed));
        }
        out.push_str("# HELP llmrouter_reloads_total Reloads on SIGHUP: ok swapped the new router in, failed kept the old one.\n# TYPE llmrouter_reloads_total counter\n");
        for (result, n) in ["ok", "failed"].iter().zip(&self.reloads) {
            let _ = writeln!(out, "llmrouter_reloads_total{{result=\"{result}\"}} {}", n.load(Ordering::Relaxed));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_costs_follow_the_prices() {
        let m = Metrics::new("r\"x", vec![("small".into(), 0.1, 0.2), ("large".into(), 1.0, 2.0)]);
        m.routing.observe(Duration::from_micros(20));
        m.routing.observe(Duration::from_secs(5));
        m.request(true, Some(1), 200, Some(Usage { prompt: 1_000_000, completion: 500_000 }));
        m.request(false, None, 404, None);
        m.reject(Reason::ModelNotFound);
        m.reloaded(false);
        let text = m.render(0);
        for line in [
            "llmrouter_routing_latency_seconds_bucket{le=\"0.00001\"} 0",
            "llmrouter_routing_latency_seconds_bucket{le=\"0.000025\"} 1",
            "llmrouter_routing_latency_seconds_bucket{le=\"1\"} 1",
            "llmrouter_routing_latency_seconds_bucket{le=\"+Inf\"} 2",
            "llmrouter_routing_latency_seconds_count 2",
            "llmrouter_requests_total{router=\"r\\\"x\",model=\"large\",status=\"200\"} 1",
            "llmrouter_requests_total{router=\"none\",model=\"none\",status=\"404\"} 1",
            "llmrouter_tokens_total{model=\"large\",kind=\"prompt\"} 1000000",
            "llmrouter_cost_usd_total{model=\"large\"} 2",
            "llmrouter_cost_usd_total{model=\"small\"} 0",
            "llmrouter_rejected_requests_total{reason=\"model_not_found\"} 1",
            "llmrouter_rejected_requests_total{reason=\"auth\"} 0",
            "llmrouter_reloads_total{result=\"ok\"} 0",
            "llmrouter_reloads_total{result=\"failed\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
