//! The values that cross the routing boundary: [`QueryInput`] in, [`RouteDecision`] out.
//!
//! The lowest layer above the foundations: everything else (data files, routers, evaluation,
//! the CLI) speaks in these two types.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

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
