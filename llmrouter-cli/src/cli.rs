//! The command-line interface: every subcommand and option, with the help text users read.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Route each query to the LLM that should answer it, trading answer quality against price.
///
/// Configs use Python LLMRouter's YAML keys (data_path.*, hparam, model_path.*, metric.weights,
/// api_endpoint). Relative paths in a config resolve against the working directory, then against
/// the config file's folder.
#[derive(Debug, Parser)]
#[command(name = "llmrouter", version, about, long_about = None, propagate_version = true)]
#[command(after_help = "Examples:\n  \
    llmrouter list-routers\n  \
    llmrouter infer --router randomrouter --config custom_routers/randomrouter/config.yaml --query \"Hello world\" --route-only\n  \
    llmrouter train --router thresholdrouter --config custom_routers/thresholdrouter/config.yaml")]
pub struct Cli {
    /// Hide progress bars and informational messages (errors are still printed).
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
    /// Route one query or a file of queries.
    Infer(InferArgs),
    /// Train a router on its config's routing data and save the model.
    Train(TrainArgs),
}

/// Output format of `list-routers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// An aligned table.
    Text,
    /// A JSON array of {name, summary, trainable, package} objects (a stable contract).
    Json,
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
    Output: one query prints a JSON object; a file prints JSON lines, or writes --output \
    (.jsonl: JSON lines, .json: one JSON list), atomically.")]
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

    /// Write the decisions to this file (.jsonl or .json) instead of standard output.
    #[arg(long, short, requires = "input")]
    pub output: Option<PathBuf>,

    /// Only decide which model should answer; do not call it.
    #[arg(long)]
    pub route_only: bool,
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
}
