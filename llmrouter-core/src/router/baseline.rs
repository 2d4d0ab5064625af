//! [`BySize`]: the baselines that send every query to one end of the candidate list by size,
//! `smallest_llm` (`BySize<false>`) and `largest_llm` (`BySize<true>`).
//!
//! Size is the parsed `size` (`7B`, `8x7B`, ...) when every candidate has one, otherwise the price
//! (input plus output per 1M tokens); ties go by price, then name
//! ([`crate::Candidates::by_size`]). Nothing to train.

use crate::error::Result;
use crate::meta::MetaRouter;
use crate::query::{QueryInput, RouteDecision};
use crate::router::Router;

/// Routes every query to the smallest candidate (`LARGEST = false`) or the largest one.
#[derive(Debug)]
pub struct BySize<const LARGEST: bool> {
    router: String,
    model: String,
    size: Option<String>,
}

impl<const LARGEST: bool> Router for BySize<LARGEST> {
    fn from_meta(meta: MetaRouter) -> Result<Self> {
        let order = meta.candidates.by_size();
        let end = if LARGEST { order.last() } else { order.first() };
        let index = *end.ok_or_else(|| meta.error("no candidate models"))?;
        let chosen = &meta.candidates.all()[index];
        Ok(BySize { router: meta.router_name().to_owned(), model: chosen.name.clone(), size: chosen.size.clone() })
    }

    fn route_single(&self, query: &QueryInput) -> Result<RouteDecision> {
        query.check(&self.router)?;
        let decision = RouteDecision::new(&self.router, query, &self.model);
        Ok(match &self.size {
            Some(size) => decision.with("size", size.as_str()),
            None => decision,
        })
    }
}
