//! `randomrouter`: an example plugin that picks a candidate uniformly at random.
//!
//! The choice is seeded by `hparam.seed` and the query text (SplitMix64 seeded with
//! `seed XOR fnv1a64(query)`), so the same query always goes to the same model under the same
//! seed, whatever the batch order or thread, and across queries the choice is uniform.

use llmrouter_core::rng::{SplitMix64, fnv1a64};
use llmrouter_core::{MetaRouter, QueryInput, Result, RouteDecision, Router};
use serde::Deserialize;

/// `hparam` of randomrouter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hparams {
    /// Seed of the random choice (default 42).
    pub seed: u64,
}

impl Default for Hparams {
    fn default() -> Self {
        Hparams { seed: 42 }
    }
}

/// Uniform random choice among the candidates.
#[derive(Debug)]
pub struct RandomRouter {
    router: String,
    models: Vec<String>,
    seed: u64,
}

impl Router for RandomRouter {
    fn from_meta(meta: MetaRouter) -> Result<Self> {
        let hparams: Hparams = meta.config.hparams()?;
        let models = meta.candidates.names().into_iter().map(String::from).collect();
        Ok(RandomRouter { router: meta.router_name().to_owned(), models, seed: hparams.seed })
    }

    fn route_single(&self, query: &QueryInput) -> Result<RouteDecision> {
        query.check(&self.router)?;
        let mut rng = SplitMix64::new(self.seed ^ fnv1a64(query.query.as_bytes()));
        let model = &self.models[rng.below(self.models.len())];
        Ok(RouteDecision::new(&self.router, query, model).with("seed", self.seed))
    }
}

llmrouter_core::register_router! {
    router: RandomRouter,
    name: "randomrouter",
    summary: "Example plugin: uniform random choice of candidate, seeded by hparam.seed",
    docs: include_str!("../README.md"),
}
