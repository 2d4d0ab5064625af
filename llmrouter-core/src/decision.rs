//! The decision layer: cost estimates, per-model [`Predictions`], the cost-aware rule and the
//! ranking every router that predicts scores decides by.
//!
//! # The decision rule
//!
//! A router that predicts each candidate's quality `s_m` for a query picks
//! `argmax_m  w_perf * s_m - w_cost * c_m / max_k c_k`, where `w_perf` and `w_cost` are
//! `metric.weights.performance` and `metric.weights.cost`, and `c_m` is the candidate's estimated
//! cost for this query. Normalising by the most expensive candidate's cost for the same query
//! puts cost on the same [0, 1] scale as quality: with `w_cost = 1`, paying for the most
//! expensive model instead of a free one must buy a full point of quality. With `w_cost = 0` the
//! rule is "best predicted quality". Ties go to the cheaper model, then to name order.
//!
//! Costs: `c_m = (input_tokens * input_price_m + expected_output_tokens * output_price_m) / 1e6`
//! with `input_tokens = ceil(chars / 4)` and `metric.expected_output_tokens` (default 256).
//! Routers that learn per-query costs from routing data may predict them instead.

use crate::config::MetricWeights;
use crate::meta::MetaRouter;
use crate::query::{QueryInput, RouteDecision};

/// Input tokens of a text, estimated as `ceil(chars / 4)`.
pub fn input_tokens(text: &str) -> f64 {
    text.chars().count().div_ceil(4) as f64
}

/// Estimates each candidate's cost of answering a query from its list prices.
#[derive(Debug, Clone, PartialEq)]
pub struct CostModel {
    input_price: Vec<f64>,
    output_price: Vec<f64>,
    output_tokens: f64,
}

impl CostModel {
    /// Prices of `meta`'s candidates (in candidate order) and its `metric.expected_output_tokens`.
    pub fn from_meta(meta: &MetaRouter) -> Self {
        let c = meta.candidates.all();
        CostModel {
            input_price: c.iter().map(|c| c.input_price).collect(),
            output_price: c.iter().map(|c| c.output_price).collect(),
            output_tokens: meta.config.expected_output_tokens,
        }
    }

    /// USD per candidate for `text`.
    pub fn estimate(&self, text: &str) -> Vec<f64> {
        let tokens = input_tokens(text);
        self.input_price
            .iter()
            .zip(&self.output_price)
            .map(|(i, o)| (tokens * i + self.output_tokens * o) / 1e6)
            .collect()
    }
}

/// Costs divided by the largest of them (all zeros when every cost is zero).
pub fn normalized_costs(costs: &[f64]) -> Vec<f64> {
    let max = costs.iter().cloned().fold(0.0f64, f64::max);
    if max > 0.0 { costs.iter().map(|c| c / max).collect() } else { vec![0.0; costs.len()] }
}

/// `w_perf * score - w_cost * normalised cost`, per candidate.
pub fn utilities(scores: &[f32], costs: &[f64], weights: MetricWeights) -> Vec<f64> {
    normalized_costs(costs)
        .iter()
        .zip(scores)
        .map(|(c, s)| weights.performance * f64::from(*s) - weights.cost * c)
        .collect()
}

/// Candidate indices from best to worst utility (ties: cheaper first, then lower index).
pub fn ranking(scores: &[f32], costs: &[f64], weights: MetricWeights) -> Vec<usize> {
    let u = utilities(scores, costs, weights);
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| u[b].total_cmp(&u[a]).then(costs[a].total_cmp(&costs[b])).then(a.cmp(&b)));
    order
}

/// Per-model predictions for a batch of queries: what a learned router knows before deciding.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// The models predicted for (a subset of the candidates, for two-model routers).
    pub models: Vec<String>,
    /// Predicted quality, one row per query, one column per model.
    pub scores: Vec<Vec<f32>>,
    /// Estimated cost in USD, same shape.
    pub costs: Vec<Vec<f64>>,
}

impl Predictions {
    /// The decision for query `i` under `weights`, with the evidence as extras:
    /// `predicted_scores`, `estimated_costs` (USD), `ranking` (best first) and `cost_weight`.
    pub fn decide(&self, router: &str, query: &QueryInput, i: usize, weights: MetricWeights) -> RouteDecision {
        let weights = weights.for_query(&query.query);
        let order = ranking(&self.scores[i], &self.costs[i], weights);
        let best = &self.models[order[0]];
        let scores: serde_json::Map<String, serde_json::Value> =
            self.models.iter().zip(&self.scores[i]).map(|(m, s)| (m.clone(), round(f64::from(*s)).into())).collect();
        let costs: serde_json::Map<String, serde_json::Value> =
            self.models.iter().zip(&self.costs[i]).map(|(m, c)| (m.clone(), (*c).into())).collect();
        let ranking: Vec<serde_json::Value> = order.iter().map(|&k| self.models[k].clone().into()).collect();
        RouteDecision::new(router, query, best)
            .with("predicted_scores", scores)
            .with("estimated_costs", costs)
            .with("ranking", ranking)
            .with("cost_weight", weights.cost)
    }

    /// Decisions for every query.
    pub fn decide_all(&self, router: &str, queries: &[QueryInput], weights: MetricWeights) -> Vec<RouteDecision> {
        queries.iter().enumerate().map(|(i, q)| self.decide(router, q, i, weights)).collect()
    }
}

fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_trades_quality_against_cost() {
        let w0 = MetricWeights { cost: 0.0, ..MetricWeights::default() };
        let w1 = MetricWeights { cost: 1.0, ..MetricWeights::default() };
        let scores = [0.6f32, 0.8];
        let costs = [1.0, 10.0];
        assert_eq!(ranking(&scores, &costs, w0), vec![1, 0]);
        // 0.8 - 1.0 < 0.6 - 0.1: the cheap model wins once cost counts.
        assert_eq!(ranking(&scores, &costs, w1), vec![0, 1]);
        // Ties go to the cheaper model.
        assert_eq!(ranking(&[0.5, 0.5], &[2.0, 1.0], w0), vec![1, 0]);
        assert_eq!(normalized_costs(&[0.0, 0.0]), vec![0.0, 0.0]);
    }

    #[test]
    fn predictions_decide_with_evidence() {
        let p = Predictions {
            models: vec!["a".into(), "b".into()],
            scores: vec![vec![0.2, 0.9]],
            costs: vec![vec![1.0, 2.0]],
        };
        let d = p.decide("r", &QueryInput::new("q"), 0, MetricWeights::default());
        assert_eq!(d.model_name, "b");
        assert_eq!(d.extras["ranking"], serde_json::json!(["b", "a"]));
        assert_eq!(d.extras["predicted_scores"]["a"], 0.2);
    }
}
