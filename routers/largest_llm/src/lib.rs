//! `largest_llm`: a baseline that sends every query to the largest candidate model.
//!
//! "Largest" is by parsed `size` (`7B`, `8x7B`, ...) when every candidate has one, otherwise
//! by price (input plus output per 1M tokens); ties go by price, then name. Nothing to train.

use llmrouter_core::{MetaRouter, QueryInput, Result, RouteDecision, Router};

/// Routes everything to the largest candidate.
#[derive(Debug)]
pub struct LargestLlm {
    model: String,
    size: Option<String>,
}

impl Router for LargestLlm {
    fn from_meta(meta: MetaRouter) -> Result<Self> {
        let order = meta.candidates.by_size();
        let index = *order.last().ok_or_else(|| meta.error("no candidate models"))?;
        let chosen = &meta.candidates.all()[index];
        Ok(LargestLlm { model: chosen.name.clone(), size: chosen.size.clone() })
    }

    fn route_single(&self, query: &QueryInput) -> Result<RouteDecision> {
        query.check("largest_llm")?;
        let decision = RouteDecision::new("largest_llm", query, &self.model);
        Ok(match &self.size {
            Some(size) => decision.with("size", size.as_str()),
            None => decision,
        })
    }
}

llmrouter_core::register_router! {
    router: LargestLlm,
    name: "largest_llm",
    summary: "Baseline: every query goes to the largest candidate (by size, else by price)",
    docs: include_str!("../README.md"),
}
