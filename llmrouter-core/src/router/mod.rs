//! The router contracts: [`Router`] to route a [`QueryInput`] to a [`RouteDecision`] and
//! [`Trainer`] to fit and save a model; and, written once for every router of each kind:
//! - [`score`]: [`ScorePredictor`], for routers that predict each candidate's score and decide
//!   by the shared cost-aware rule ([`ScoreRouter`] is their `Router`), and [`Fit`], for trainers
//!   that fit one model file ([`FitTrainer`] is their `Trainer`);
//! - [`baseline`]: [`BySize`], the smallest / largest candidate;
//! - [`training`]: the routing data as arrays ([`TrainingSet`]) and the embedded training queries
//!   every trainer starts from.
//!
//! Lifecycle: the registry builds a router from a [`MetaRouter`] once (`Router::from_meta` loads
//! any trained model then, never per query); `route_single` / `route_batch` are then called any
//! number of times, from several threads. A trainer is built from the same [`MetaRouter`] and a
//! [`Device`]; `train` writes `model_path.save_model_path` atomically and reports what it did.

use std::path::PathBuf;
use std::str::FromStr;

pub mod baseline;
pub mod score;
pub mod training;

pub use baseline::BySize;
pub use score::{Decide, Fit, FitTrainer, Fitted, ScorePredictor, ScoreRouter};
pub use training::{Prepared, TrainingSet, prepare};

use crate::decision::Predictions;
use crate::error::{Error, Result};
use crate::meta::MetaRouter;
use crate::progress::Progress;
use crate::query::{QueryInput, RouteDecision};

/// A router: picks one candidate per query. Object safe; built once, used from many threads.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a router: it does not implement `llmrouter_core::Router`",
    label = "registered with `register_router!` here, but `{Self}` has no `impl llmrouter_core::Router`",
    note = "implement `from_meta` and `route_single` (see custom_routers/randomrouter/src/lib.rs)"
)]
pub trait Router: Send + Sync {
    /// Builds the router from its config and data, loading a trained model if it needs one.
    fn from_meta(meta: MetaRouter) -> Result<Self>
    where
        Self: Sized;

    /// Routes one query. Never does network I/O.
    fn route_single(&self, query: &QueryInput) -> Result<RouteDecision>;

    /// Routes many queries; by default one at a time through [`Router::route_single`].
    fn route_batch(&self, queries: &[QueryInput]) -> Result<Vec<RouteDecision>> {
        queries.iter().map(|q| self.route_single(q)).collect()
    }

    /// Per-model predicted quality and estimated cost for each query, for routers that decide by
    /// [`Predictions::decide`]; `None` for routers that do not predict scores. Evaluation uses
    /// this to trace cost-quality curves without routing again.
    fn predict(&self, _queries: &[QueryInput]) -> Result<Option<Predictions>> {
        Ok(None)
    }

    /// Whether [`Router::predict`] gives predictions, so that a cost weight steers the router
    /// (true for every [`ScoreRouter`]). Asked of the type, without building a router.
    fn predicts_scores() -> bool
    where
        Self: Sized,
    {
        false
    }
}

/// Where training runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// The CPU (the only device of this build).
    #[default]
    Cpu,
}

impl FromStr for Device {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Device::Cpu),
            _ => Err(Error::UnsupportedDevice(s.to_owned())),
        }
    }
}

/// What a finished training run reports.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// Where the model was written.
    pub model_path: PathBuf,
    /// Named figures worth showing (training examples, final loss, accuracy, ...), in order.
    pub metrics: Vec<(String, String)>,
}

/// Fits a router's model and saves it to `model_path.save_model_path`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a trainer: it does not implement `llmrouter_core::Trainer`",
    note = "implement `from_meta` and `train` (see custom_routers/thresholdrouter/src/lib.rs)"
)]
pub trait Trainer {
    /// Builds the trainer from the router's config and data.
    fn from_meta(meta: MetaRouter, device: Device) -> Result<Self>
    where
        Self: Sized;

    /// Trains and writes the model file atomically (temporary file, then rename).
    fn train(&mut self, progress: &dyn Progress) -> Result<TrainReport>;

    /// Checks the training settings of the config (`hparam`) without training; the registry runs
    /// it before building the router on every command. By default nothing.
    fn check_config(_meta: &MetaRouter) -> Result<()>
    where
        Self: Sized,
    {
        Ok(())
    }
}
