//! The command-line interface: every subcommand and option, with the help text users read.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `llmrouter -h`: one line.
const ABOUT: &str = "Route each query to the LLM that should answer it, trading answer quality against price \
                     (list-routers, infer, train, eval, calibrate, serve, chat).";

/// `llmrouter --help`: what it does, every subcommand on one line (a unit test keeps this list in
/// step with [`Command`]), and how configs are read.
const LONG_ABOUT: &str = "Route each query to the LLM that should answer it, trading answer quality against price.

Commands, one line each:
  list-routers  list the routers compiled into this binary (a table, JSON or Markdown)
  infer         route one query or a file of queries, and send each to the chosen model
  train         train a router on its config's routing data and save the model
  eval          score trained routers on a test split: figures, cost-quality curves, a plot
  calibrate     choose the cost weight that keeps a router within a budget, stored in its model
  serve         an OpenAI-compatible HTTP gateway that routes each chat request
  chat          the same server on 127.0.0.1, with a chat page to talk to the router in a browser

Configs use Python LLMRouter's YAML keys (data_path.*, hparam, model_path.*, metric.weights,
api_endpoint). Relative paths in a config resolve against the working directory, then against the
config file's folder.";

/// The command line of `llmrouter`.
#[derive(Debug, Parser)]
#[command(name = "llmrouter", version, about = ABOUT, long_about = LONG_ABOUT, propagate_version = true)]
#[command(after_help = "Examples:\n  \
    llmrouter list-routers\n  \
    llmrouter infer --router randomrouter --config custom_routers/randomrouter/config.yaml --query \"Hello world\" --route-only\n  \
    llmrouter train --router thresholdrouter --config custom_routers/thresholdrouter/config.yaml\n  \
    llmrouter eval --router thresholdrouter --config custom_routers/thresholdrouter/config.yaml --train\n  \
    llmrouter calibrate --router knnrouter --config routers/knnrouter/config.yaml --max-share llama-3.1-nemotron-51b-instruct=0.2\n  \
    llmrouter serve --router smallest_llm --config routers/smallest_llm/config.yaml --port 8000\n  \
    llmrouter chat --router smallest_llm --config routers/smallest_llm/config.yaml")]
pub struct Cli {
    /// Hide progress and informational messages (errors are still printed). Off a terminal,
    /// progress is a plain line every 5 s; LLMROUTER_PROGRESS_EVERY=SECONDS sets the interval.
    #[arg(long, global = true)]
    pub quiet: bool,

    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the routers compiled into this binary.
    ListRouters(ListArgs),
    /// Route one query or a file of queries, and send each to the chosen model.
    Infer(InferArgs),
    /// Train a router on its config's routing data and save the model.
    Train(TrainArgs),
    /// Score trained routers on a test split: figures, cost-quality curves, AIQ/APGR/CPT, a plot.
    Eval(EvalArgs),
    /// Choose the cost weight that keeps a router within a budget, and store it in its model.
    Calibrate(CalibrateArgs),
    /// An OpenAI-compatible HTTP gateway: `model: "auto"` routes each chat request.
    Serve(ServeArgs),
    /// The same server on 127.0.0.1 with a chat page: talk to the router in a browser.
    Chat(ChatArgs),
}

/// Options of `serve`.
#[derive(Debug, Args)]
#[command(after_help = "Endpoints: POST /v1/chat/completions (`model`: \"auto\" or the router's name routes; a \
    candidate key calls that candidate; `stream: true` relays the model's SSE chunks as they arrive), \
    POST /v1/route (the same body: the router's decision and ranking, no model called), GET /v1/models, \
    GET /health, GET /ready, GET /metrics, and GET / (the chat page; see `llmrouter chat`).\n\n\
    The config's `serve:` section holds host, port, route_on (last_user | conversation), keys (a list; \
    `${VAR}` expands from the environment), max_body_bytes, drain_seconds, header_timeout_seconds, max_concurrency, max_queue, rate_limit_rpm, access_log, log_prompts and upstream (connect_timeout, \
    timeout, retries, backoff_ms, max_fallbacks); flags win over it. Client keys also come from \
    LLMROUTER_SERVER_KEYS (comma-separated); with keys, every /v1/* request needs \
    `Authorization: Bearer KEY`. Without keys the server binds only to loopback addresses, unless \
    --insecure-no-auth. Upstream API keys come from API_KEYS or a candidate's api_key_env, as for `infer`.\n\n\
    The line `listening on http://HOST:PORT` on standard error gives the bound address (--port 0 picks \
    a free port). SIGINT or SIGTERM stops accepting and lets in-flight requests finish (for up to \
    serve.drain_seconds). SIGHUP reloads the router from the config and its model file (after \
    `llmrouter train` or `calibrate`): requests in flight finish with the old router, and when the new \
    file is bad the old router stays and standard error says why.")]
pub struct ServeArgs {
    /// The router to use (see `llmrouter list-routers`).
    #[arg(long, short)]
    pub router: String,

    /// The router's YAML config (its `serve:` section holds the server's settings).
    #[arg(long, short)]
    pub config: PathBuf,

    /// Address to bind [default: serve.host, else 127.0.0.1].
    #[arg(long)]
    pub host: Option<String>,

    /// Port to bind; 0 picks a free one [default: serve.port, else 8000].
    #[arg(long, value_parser = clap::value_parser!(u16).range(0..=65535), allow_negative_numbers = true)]
    pub port: Option<u16>,

    /// Allow binding to a non-loopback address with no client keys: anyone who can reach the port
    /// spends your upstream credit.
    #[arg(long)]
    pub insecure_no_auth: bool,
}

/// Options of `chat`.
#[derive(Debug, Args)]
#[command(after_help = "`llmrouter chat` is `llmrouter serve` bound to 127.0.0.1 only (whatever `serve.host` \
    says), with the same endpoints, settings and client keys. It prints `listening on http://127.0.0.1:PORT` \
    and `chat page: http://127.0.0.1:PORT/` on standard error; open the page in a browser.\n\n\
    The page (GET /, one self-contained file in the binary, no external requests) sends each message to \
    POST /v1/chat/completions with `stream: true` and shows, for every turn, the model that answered, the \
    router's ranking with predicted scores and estimated costs (from POST /v1/route, which routes without \
    calling a model), the routing time, the time to first token and the total time. A selector picks \
    `auto` or a fixed candidate. With client keys set, the page asks for one the first time the server \
    answers 401 and keeps it for the browser tab.\n\n\
    In the page, Enter sends, Shift+Enter starts a new line and Esc stops an answer. Ctrl-C (or SIGTERM) \
    stops the server.\n\n\
    Example:\n  llmrouter chat --router randomrouter --config custom_routers/randomrouter/config.yaml --port 0")]
pub struct ChatArgs {
    /// The router to use (see `llmrouter list-routers`).
    #[arg(long, short)]
    pub router: String,

    /// The router's YAML config (its `serve:` section holds the server's settings; `host` is ignored).
    #[arg(long, short)]
    pub config: PathBuf,

    /// Port to bind on 127.0.0.1; 0 picks a free one [default: serve.port, else 8000].
    #[arg(long)]
    pub port: Option<u16>,
}

impl ChatArgs {
    /// The `serve` arguments `chat` runs with: loopback only, never `--insecure-no-auth`.
    pub fn to_serve(&self) -> ServeArgs {
        ServeArgs {
            router: self.router.clone(),
            config: self.config.clone(),
            host: Some("127.0.0.1".to_owned()),
            port: self.port,
            insecure_no_auth: false,
        }
    }
}

/// Options of `eval`.
#[derive(Debug, Args)]
#[command(after_help = "Figures (per router and reference point): mean score of the picked models, routing \
    accuracy (share of queries whose pick scored the best score), mean cost per query (USD), utility = \
    performance weight * score - cost weight * mean normalised cost (cost / the most expensive model's cost \
    on the same query), the share of queries sent to each model, and mean score per task.\n\n\
    Curves: a router that predicts every model's score is re-decided at 98 cost weights (0, then 1e-3 to 1e3) \
    to trace its (mean cost, mean score) points; others contribute their one point. From the upper convex hull \
    of those points (plus the cheapest model's point):\n  \
    AIQ      mean of the hull over the single models' cost range (cheapest .. most expensive model)\n  \
    APGR     mean share of the cheapest-to-best-model score gap recovered, from the cheapest to the best \
    model's cost (random mixing of the two gives 0.5)\n  \
    CPT(x%)  least mean cost per query (USD) recovering x% of that gap\n\
    README.md gives the formulas. --output DIR writes DIR/report.json (every figure and curve point) and \
    DIR/cost_quality.svg.\n\n\
    Example:\n  llmrouter eval --router knnrouter,svmrouter --config configs/llmrouter_dc.yaml --output eval/dc")]
pub struct EvalArgs {
    /// Routers to evaluate, comma-separated (each must be trained, or pass --train).
    #[arg(long, short)]
    pub router: String,

    /// The routers' YAML config (one config can serve several: `{router}` in model paths).
    #[arg(long, short)]
    pub config: PathBuf,

    /// Routing data to evaluate on (default: the config's `data_path.routing_data_test`).
    #[arg(long)]
    pub data: Option<PathBuf>,

    /// Write `report.json` with every figure into this folder.
    #[arg(long, short)]
    pub output: Option<PathBuf>,

    /// Override `metric.weights.cost` for the decisions and the utility (0 to 1000000).
    #[arg(long, value_parser = parse_cost_weight, allow_negative_numbers = true)]
    pub cost_weight: Option<f64>,

    /// Train each router first (on `data_path.routing_data_train`).
    #[arg(long)]
    pub train: bool,
}

/// Options of `calibrate`.
#[derive(Debug, Args)]
#[command(after_help = "How: the router is retrained on the training split minus a seeded validation share \
    (--validation-share), its per-model predictions on the validation queries are re-decided at 98 cost \
    weights and refined by bisection, and the least weight whose validation picks stay within the budget \
    (by the router's own predictions, the best score within it) is stored in the model file \
    (`calibration`). `infer` and `eval` then use it instead of \
    metric.weights.cost (`eval --cost-weight` still overrides it); `train` writes a new model without it. \
    The test split, when the config has one, is routed with the result and reported next to the budget.\n\n\
    Works with routers that predict every model's score (their decisions carry `predicted_scores`); \
    asked to calibrate another router, it names the ones this binary has.\n\n\
    Examples:\n  \
    llmrouter calibrate --router knnrouter --config configs/llmrouter_dc.yaml --max-cost-per-query 3e-5\n  \
    llmrouter calibrate --router svmrouter --config configs/routellm_mmlu.yaml --max-share gpt-4-1106-preview=0.3")]
#[command(group(clap::ArgGroup::new("budget").required(true).args(["max_cost_per_query", "max_share"])))]
pub struct CalibrateArgs {
    /// The router to calibrate (it is retrained without the validation share).
    #[arg(long, short)]
    pub router: String,

    /// The router's YAML config.
    #[arg(long, short)]
    pub config: PathBuf,

    /// Budget: mean cost per query in USD (more than 0).
    #[arg(long, value_name = "USD", value_parser = parse_positive_usd, allow_negative_numbers = true)]
    pub max_cost_per_query: Option<f64>,

    /// Budget: largest share of queries (0..1) sent to MODEL, e.g. `gpt-4-1106-preview=0.2`.
    #[arg(long, value_name = "MODEL=SHARE")]
    pub max_share: Option<String>,

    /// Share of the training split held out to calibrate on (between 0 and 1, both excluded).
    #[arg(long, default_value_t = 0.2, value_name = "SHARE", value_parser = parse_share, allow_negative_numbers = true)]
    pub validation_share: f64,

    /// Seed of the validation split.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Output format of `list-routers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// An aligned table.
    Text,
    /// A JSON array of {name, summary, trainable, package} objects (a stable contract).
    Json,
    /// The Markdown table of README.md's `## Routers` section (name, trains, summary).
    Markdown,
}

/// Options of `list-routers`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,

    /// Also print each router's documentation (its README).
    #[arg(long)]
    pub long: bool,
}

/// Options of `infer`.
#[derive(Debug, Args)]
#[command(after_help = "Input files by extension: .txt (one query a line), .json (a list of strings or of \
    objects with \"query\"), .jsonl (one object with \"query\" a line; \"id\" and other fields are kept).\n\
    With --route-only: one query prints its decision as a JSON object; a file prints JSON lines, or writes \
    --output (.jsonl: JSON lines, .json: one JSON list), atomically.\n\
    Without it, each query is sent to the chosen model: one query prints the answer (--format json: the whole \
    result); a file gives one JSON result line per query, written as it completes (to --output, a .jsonl file, \
    which --resume continues). API keys come from API_KEYS (a JSON object keyed by the candidate's service, \
    a JSON list, or comma-separated) or from the variable a candidate's api_key_env names.")]
pub struct InferArgs {
    /// The router to use (see `llmrouter list-routers`).
    #[arg(long, short)]
    pub router: String,

    /// The router's YAML config.
    #[arg(long, short)]
    pub config: PathBuf,

    /// One query to route.
    #[arg(long, short, conflicts_with = "input", required_unless_present = "input")]
    pub query: Option<String>,

    /// A file of queries (.txt, .json or .jsonl).
    #[arg(long, short)]
    pub input: Option<PathBuf>,

    /// Write the results to this file instead of standard output (.jsonl; .json too with
    /// --route-only).
    #[arg(long, short, requires = "input")]
    pub output: Option<PathBuf>,

    /// Only decide which model should answer; do not call it.
    #[arg(long)]
    pub route_only: bool,

    /// How one answer is printed: the answer text, or the whole result as JSON. Files of queries
    /// always give JSON lines.
    #[arg(long, value_enum, default_value_t = AnswerFormat::Text)]
    pub format: AnswerFormat,

    /// Also print the routing decision, latency, token usage and cost (on standard error).
    #[arg(long)]
    pub verbose: bool,

    /// Sampling temperature sent to the model (0 to 2, OpenAI's range).
    #[arg(long, default_value_t = 0.8, value_parser = parse_temperature, allow_negative_numbers = true)]
    pub temp: f64,

    /// The most tokens the model may answer with (at least 1).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..), allow_negative_numbers = true)]
    pub max_tokens: u32,

    /// How many queries of a file are sent at the same time.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024), allow_negative_numbers = true)]
    pub concurrency: u16,

    /// Continue an interrupted run: keep the answered queries in --output, answer the others
    /// (failed ones included) and append their results.
    #[arg(long, requires = "output")]
    pub resume: bool,

    /// When the chosen model still fails after its retries, try the next model: the next of the
    /// router's `ranking` when it gives one, else the next most expensive candidate.
    #[arg(long)]
    pub fallback: bool,

    /// How many other models --fallback may try for one query (0 to 64).
    #[arg(long, default_value_t = 1, requires = "fallback", allow_negative_numbers = true,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=64))]
    pub max_fallbacks: usize,

    /// Retries per model after the first attempt, on timeouts, dropped connections, 408, 429 and
    /// 5xx (never on other 4xx); 0 to 20.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=20), allow_negative_numbers = true)]
    pub retries: u32,

    /// Delay before the first retry, in milliseconds (0 to 600000); it doubles on each retry, with
    /// jitter. A 429's Retry-After is waited at least.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(0..=600_000), allow_negative_numbers = true)]
    pub backoff_ms: u64,

    /// Seconds one attempt may take, from connecting to the end of the answer.
    #[arg(long, default_value = "120", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub timeout: Duration,

    /// Seconds to wait for a connection to the endpoint.
    #[arg(long, default_value = "10", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub connect_timeout: Duration,
}

impl InferArgs {
    /// Checks what clap cannot: `--output` must not be the `--input` file (which writing the
    /// results would destroy).
    pub fn check(&self) -> anyhow::Result<()> {
        let (Some(input), Some(output)) = (&self.input, &self.output) else { return Ok(()) };
        let same = match (std::fs::canonicalize(input), std::fs::canonicalize(output)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same {
            anyhow::bail!(
                "--output {} is the --input file: writing the results there would destroy the queries; \
                 name another file",
                output.display()
            );
        }
        Ok(())
    }
}

/// How `infer` prints the answer to one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnswerFormat {
    /// The answer text alone.
    Text,
    /// The whole result: response, model_name, usage, cost, latency_ms, success, error, attempts,
    /// routing.
    Json,
}

/// A positive number of seconds (fractions allowed).
/// A number from the command line, refused unless finite and within `range` (which the message
/// names).
fn parse_in(text: &str, range: std::ops::RangeInclusive<f64>, what: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && range.contains(&v) => Ok(v),
        _ => Err(format!("expected {what} from {} to {}, found `{text}`", range.start(), range.end())),
    }
}

fn parse_temperature(text: &str) -> Result<f64, String> {
    parse_in(text, 0.0..=2.0, "a temperature")
}

fn parse_cost_weight(text: &str) -> Result<f64, String> {
    parse_in(text, 0.0..=1e6, "a cost weight")
}

fn parse_share(text: &str) -> Result<f64, String> {
    match parse_in(text, 0.0..=1.0, "a share") {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(format!("expected a share between 0 and 1 (both excluded), found `{text}`")),
    }
}

fn parse_positive_usd(text: &str) -> Result<f64, String> {
    match parse_in(text, 0.0..=1e9, "USD") {
        Ok(v) if v > 0.0 => Ok(v),
        _ => Err(format!("expected a cost in USD above 0, found `{text}`")),
    }
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!("expected a positive number of seconds, found `{text}`")),
    }
}

/// Options of `train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The router to train (see `llmrouter list-routers`: only routers marked "trains").
    #[arg(long, short)]
    pub router: String,

    /// The router's YAML config; the model is written to `model_path.save_model_path`.
    #[arg(long, short)]
    pub config: PathBuf,

    /// Where to train. This build trains on the CPU only.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    /// The top-level `--help` lists every subcommand on a line of its own, and `-h` names each.
    #[test]
    fn top_level_help_lists_every_subcommand() {
        let command = super::Cli::command();
        let names: Vec<&str> = command.get_subcommands().map(|c| c.get_name()).filter(|n| *n != "help").collect();
        assert_eq!(names, ["list-routers", "infer", "train", "eval", "calibrate", "serve", "chat"]);
        let listed: Vec<&str> = super::LONG_ABOUT
            .lines()
            .filter_map(|l| l.strip_prefix("  ").and_then(|l| l.split_whitespace().next()))
            .collect();
        assert_eq!(listed, names, "LONG_ABOUT has one `  name  what it does` line per subcommand, in order");
        for name in &names {
            assert!(super::ABOUT.contains(name), "ABOUT names `{name}`");
        }
    }
}
