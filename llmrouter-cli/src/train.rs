//! `llmrouter train`: fit a router's model and save it.

use anyhow::Result;
use llmrouter_core::{Device, Error, MetaRouter};

use crate::cli::TrainArgs;
use crate::output;
use crate::progress::Bar;
use crate::warnings::warn_ignored;

pub fn run(args: &TrainArgs, quiet: bool) -> Result<()> {
    let registration = crate::plugins::find(&args.router)?;
    let Some(build_trainer) = registration.train else {
        return Err(Error::NotTrainable { router: registration.name.to_owned() }.into());
    };
    let device: Device = args.device.parse()?;
    let meta = MetaRouter::from_yaml(&args.config, registration.name)?;
    warn_ignored(&meta, quiet);
    let mut trainer = build_trainer(meta, device)?;
    let started = std::time::Instant::now();
    let report = trainer.train(&Bar::new(quiet))?;
    let mut text = format!(
        "trained {} in {:.1}s; model saved to {}\n",
        registration.name,
        started.elapsed().as_secs_f64(),
        report.model_path.display()
    );
    let width = report.metrics.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in &report.metrics {
        text.push_str(&format!("  {key:width$}  {value}\n"));
    }
    output::stdout(&text)
}
