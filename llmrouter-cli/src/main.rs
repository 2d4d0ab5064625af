//! `llmrouter`: pick the LLM that should answer each query, trading quality against price.
//!
//! Entry point: parses the command line, runs one subcommand, prints the whole error chain on
//! failure and maps the outcome to an exit code (0 success, 1 error, 2 usage error). A closed
//! stdout (`llmrouter ... | head`) ends the program quietly.

#![deny(unused_crate_dependencies)]

mod cli;
mod infer;
mod list;
mod output;
mod plugins;
mod progress;
mod routers;
mod train;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::ListRouters(args) => list::run(&args),
        cli::Command::Infer(args) => infer::run(&args, cli.quiet),
        cli::Command::Train(args) => train::run(&args, cli.quiet),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if output::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
