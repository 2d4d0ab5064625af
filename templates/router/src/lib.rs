//! `{{crate_name}}`: a router crate made from `templates/router`.
//!
//! Queries of at most `hparam.max_chars` characters go to the cheapest candidate, longer ones to
//! the most expensive. Replace [`{{crate_name | pascal_case}}::route_single`] with your rule.

use llmrouter_core::{MetaRouter, QueryInput, Result, RouteDecision, Router};
use serde::Deserialize;

/// `hparam` of {{crate_name}}: unknown keys are errors that name the key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hparams {
    /// Longest query (in characters) sent to the cheapest candidate (default 200).
    pub max_chars: usize,
}

impl Default for Hparams {
    fn default() -> Self {
        Hparams { max_chars: 200 }
    }
}

/// The router. Built once by `from_meta`; `route_single` is then called for every query.
#[derive(Debug)]
pub struct {{crate_name | pascal_case}} {
    /// The name it is registered under (from `register_router!`, via the `MetaRouter`).
    router: String,
    cheapest: String,
    most_expensive: String,
    max_chars: usize,
}

impl Router for {{crate_name | pascal_case}} {
    fn from_meta(meta: MetaRouter) -> Result<Self> {
        let hparams: Hparams = meta.config.hparams()?;
        let by_price = meta.candidates.by_price();
        let name_at = |i: usize| meta.candidates.all()[by_price[i]].name.clone();
        Ok({{crate_name | pascal_case}} {
            router: meta.router_name().to_owned(),
            cheapest: name_at(0),
            most_expensive: name_at(by_price.len() - 1),
            max_chars: hparams.max_chars,
        })
    }

    fn route_single(&self, query: &QueryInput) -> Result<RouteDecision> {
        query.check(&self.router)?;
        let chars = query.query.chars().count();
        let model = if chars <= self.max_chars { &self.cheapest } else { &self.most_expensive };
        Ok(RouteDecision::new(&self.router, query, model).with("chars", chars))
    }
}

llmrouter_core::register_router! {
    router: {{crate_name | pascal_case}},
    name: "{{crate_name}}",
    summary: "Short queries to the cheapest candidate, long ones to the most expensive (from templates/router)",
    docs: include_str!("../README.md"),
}
