//! The router contracts: [`QueryInput`] in, [`RouteDecision`] out, [`Router`] to route and
//! [`Trainer`] to fit and save a model.
//!
//! Lifecycle: the registry builds a router from a [`MetaRouter`] once (`Router::from_meta` loads
//! any trained model then, never per query); `route_single` / `route_batch` are then called any
//! number of times, from several threads. A trainer is built from the same [`MetaRouter`] and a
//! [`Device`]; `train` writes `model_path.save_model_path` atomically and reports what it did.

use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::meta::MetaRouter;
use crate::progress::Progress;

/// One query to route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryInput {
    /// The query text.
    pub query: String,
    /// A caller-chosen id, echoed in the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    /// A precomputed embedding, used as is by embedding routers when its dimension matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
    /// Any other fields (`task_name`, ...), kept for routers that use them.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl QueryInput {
    /// A query with text only.
    pub fn new(query: impl Into<String>) -> Self {
        QueryInput { query: query.into(), id: None, embedding: None, extra: Map::new() }
    }

    /// Rejects input no router can route: empty or whitespace-only text.
    pub fn check(&self, router: &str) -> Result<()> {
        if self.query.trim().is_empty() {
            let which = self.id.as_ref().map(|id| format!(" (id {id})")).unwrap_or_default();
            return Err(Error::router(router, format!("empty query text{which}: nothing to route")));
        }
        Ok(())
    }
}

/// A routing decision. Serialises with `query`, `model_name`, `predicted_llm`, `router`, the
/// query's `id` when it had one, and router-specific extras flattened beside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteDecision {
    /// The query text.
    pub query: String,
    /// The query's id, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    /// The chosen candidate (its key in `llm_data`).
    pub model_name: String,
    /// Same as `model_name`; kept because Python LLMRouter's output has both.
    pub predicted_llm: String,
    /// The router that decided.
    pub router: String,
    /// Router extras: scores, difficulty, threshold, ...
    #[serde(flatten)]
    pub extras: Map<String, Value>,
}

impl RouteDecision {
    /// A decision by `router` for `query`, sending it to `model_name`.
    pub fn new(router: &str, query: &QueryInput, model_name: &str) -> Self {
        RouteDecision {
            query: query.query.clone(),
            id: query.id.clone(),
            model_name: model_name.to_owned(),
            predicted_llm: model_name.to_owned(),
            router: router.to_owned(),
            extras: Map::new(),
        }
    }

    /// Adds an extra field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extras.insert(key.to_owned(), value.into());
        self
    }
}

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
    /// [`crate::learn::Predictions::decide`]; `None` for routers that do not predict scores.
    /// Evaluation uses this to trace cost-quality curves without routing again.
    fn predict(&self, _queries: &[QueryInput]) -> Result<Option<crate::learn::Predictions>> {
        Ok(None)
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
}
