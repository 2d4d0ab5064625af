//! `smallest_llm`: a baseline that sends every query to the smallest candidate model.
//!
//! "Smallest" is by parsed `size` (`7B`, `8x7B`, ...) when every candidate has one, otherwise
//! by price (input plus output per 1M tokens); ties go by price, then name. Nothing to train.

use llmrouter_core::{MetaRouter, QueryInput, Result, RouteDecision, Router};

/// Routes everything to the smallest candidate.
#[derive(Debug)]
pub struct SmallestLlm {
    model: String,
    size: Option<String>,
}

impl Router for SmallestLlm {
    fn from_meta(meta: MetaRouter) -> Result<Self> {
        let order = meta.candidates.by_size();
        let index = *order.first().ok_or_else(|| meta.error("no candidate models"))?;
        let chosen = &meta.candidates.all()[index];
        Ok(SmallestLlm { model: chosen.name.clone(), size: chosen.size.clone() })
    }

    fn route_single(&self, query: &QueryInput) -> Result<RouteDecision> {
        query.check("smallest_llm")?;
        let decision = RouteDecision::new("smallest_llm", query, &self.model);
        Ok(match &self.size {
            Some(size) => decision.with("size", size.as_str()),
            None => decision,
        })
    }
}

llmrouter_core::register_router! {
    router: SmallestLlm,
    name: "smallest_llm",
    summary: "Baseline: every query goes to the smallest candidate (by size, else by price)",
    docs: include_str!("../README.md"),
}
