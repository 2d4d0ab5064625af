//! Shared machinery of the learned routers: training sets from routing data, cost estimates, the
//! cost-aware decision rule, and compact storage of large arrays in model files.
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

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::MetricWeights;
use crate::data::RoutingTable;
use crate::error::{Error, Result};
use crate::meta::MetaRouter;
use crate::rng::SplitMix64;
use crate::router::{QueryInput, RouteDecision};

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

/// What a router that decides by predicted per-model scores holds besides its model (the cost
/// estimate, `metric.weights`, the candidate names), and the steps every such router shares:
/// check and embed the queries, assemble [`Predictions`], decide.
#[derive(Debug, Clone)]
pub struct ScoreRouting {
    router: &'static str,
    costs: CostModel,
    metric: MetricWeights,
    names: Vec<String>,
}

impl ScoreRouting {
    /// For `router`, with `meta`'s candidates, prices and weights.
    pub fn new(router: &'static str, meta: &MetaRouter) -> Self {
        ScoreRouting {
            router,
            costs: CostModel::from_meta(meta),
            metric: meta.config.metric,
            names: meta.candidates.names().into_iter().map(String::from).collect(),
        }
    }

    /// Rejects empty queries, then embeds them sparsely (precomputed embeddings used as is).
    pub fn inputs(
        &self,
        embedder: &dyn crate::embed::Embedder,
        queries: &[QueryInput],
    ) -> Result<Vec<Vec<(u32, f32)>>> {
        for q in queries {
            q.check(self.router)?;
        }
        crate::embed::embed_queries_sparse(embedder, queries, &crate::NoProgress)
    }

    /// Predictions from per-query scores in candidate order, with each query's estimated costs.
    pub fn predictions(&self, queries: &[QueryInput], scores: Vec<Vec<f32>>) -> Predictions {
        let costs = queries.iter().map(|q| self.costs.estimate(&q.query)).collect();
        Predictions { models: self.names.clone(), scores, costs }
    }

    /// The decisions for `queries` from the router's predictions.
    pub fn decide(&self, queries: &[QueryInput], predictions: Option<Predictions>) -> Result<Vec<RouteDecision>> {
        let p = predictions.ok_or_else(|| Error::router(self.router, "no predictions"))?;
        Ok(p.decide_all(self.router, queries, self.metric))
    }
}

fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Routing data as dense arrays in candidate order, ready for training.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSet {
    /// Candidate names (the column order).
    pub models: Vec<String>,
    /// Query texts.
    pub queries: Vec<String>,
    /// Tasks, when known.
    pub tasks: Vec<Option<String>>,
    /// Scores, `NaN` where a model was not measured.
    pub scores: Vec<Vec<f32>>,
    /// Costs in USD: measured where the data has them, else estimated from list prices.
    pub costs: Vec<Vec<f64>>,
}

impl TrainingSet {
    /// Builds the set from `table` (whose models must be candidates of `meta`). Rows where no
    /// model was measured are dropped.
    pub fn from_table(meta: &MetaRouter, table: &RoutingTable) -> Result<Self> {
        let models: Vec<String> = meta.candidates.names().into_iter().map(String::from).collect();
        let column: Vec<Option<usize>> = models.iter().map(|m| table.model_index(m)).collect();
        let cost_model = CostModel::from_meta(meta);
        let cands = meta.candidates.all();
        let mut set = TrainingSet { models, queries: vec![], tasks: vec![], scores: vec![], costs: vec![] };
        for row in &table.rows {
            let mut scores = vec![f32::NAN; set.models.len()];
            let mut costs = cost_model.estimate(&row.query);
            let mut any = false;
            for (m, col) in column.iter().enumerate() {
                let Some(cell) = col.and_then(|c| row.cells[c].as_ref()) else { continue };
                scores[m] = cell.score as f32;
                any = true;
                if let Some(c) = cell.cost {
                    costs[m] = c;
                } else if let (Some(i), Some(o)) = (cell.input_tokens, cell.output_tokens) {
                    costs[m] = (i * cands[m].input_price + o * cands[m].output_price) / 1e6;
                }
            }
            if any {
                set.queries.push(row.query.clone());
                set.tasks.push(row.task.clone());
                set.scores.push(scores);
                set.costs.push(costs);
            }
        }
        if set.queries.is_empty() {
            return Err(Error::router(meta.router_name(), "the routing data has no measured scores for any candidate"));
        }
        Ok(set)
    }

    /// Number of queries.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// Whether there are no queries.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// Mean measured score of each model (0.5 for a model never measured).
    pub fn model_means(&self) -> Vec<f32> {
        (0..self.models.len())
            .map(|m| {
                let (sum, n) = self
                    .scores
                    .iter()
                    .filter(|r| !r[m].is_nan())
                    .fold((0.0f64, 0usize), |(s, n), r| (s + f64::from(r[m]), n + 1));
                if n == 0 { 0.5 } else { (sum / n as f64) as f32 }
            })
            .collect()
    }

    /// A seeded split of row indices into (train, held-out) with `fraction` held out.
    pub fn split(&self, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
        let mut idx: Vec<usize> = (0..self.len()).collect();
        SplitMix64::new(seed).shuffle(&mut idx);
        let n_val = ((self.len() as f64) * fraction).round() as usize;
        let val = idx[..n_val].to_vec();
        let mut train = idx[n_val..].to_vec();
        train.sort_unstable();
        let mut val = val;
        val.sort_unstable();
        (train, val)
    }

    /// Index of model `name`.
    pub fn model_index(&self, name: &str) -> Option<usize> {
        self.models.iter().position(|m| m == name)
    }
}

/// Dense `f32` data stored compactly in a model file: little-endian bytes, base64-encoded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct F32s(pub Vec<f32>);

impl Serialize for F32s {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(self.0.len() * 4);
        for x in &self.0 {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        s.serialize_str(&base64_encode(&bytes))
    }
}

impl<'de> Deserialize<'de> for F32s {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = base64_decode(&text).map_err(serde::de::Error::custom)?;
        if bytes.len() % 4 != 0 {
            return Err(serde::de::Error::custom("f32 data length is not a multiple of 4 bytes"));
        }
        Ok(F32s(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
    }
}

/// Dense `u32` data stored like [`F32s`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct U32s(pub Vec<u32>);

impl Serialize for U32s {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = self.0.iter().flat_map(|x| x.to_le_bytes()).collect();
        s.serialize_str(&base64_encode(&bytes))
    }
}

impl<'de> Deserialize<'de> for U32s {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let bytes = base64_decode(&String::deserialize(d)?).map_err(serde::de::Error::custom)?;
        if bytes.len() % 4 != 0 {
            return Err(serde::de::Error::custom("u32 data length is not a multiple of 4 bytes"));
        }
        Ok(U32s(bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> std::result::Result<Vec<u8>, String> {
    let mut lookup = [255u8; 256];
    for (i, c) in B64.iter().enumerate() {
        lookup[*c as usize] = i as u8;
    }
    let clean: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if clean.len() % 4 != 0 {
        return Err("base64 length is not a multiple of 4".into());
    }
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    for quad in clean.chunks(4) {
        let mut n = 0u32;
        let mut pad = 0;
        for &c in quad {
            let v = if c == b'=' {
                pad += 1;
                0
            } else {
                match lookup[c as usize] {
                    255 => return Err(format!("invalid base64 character {:?}", c as char)),
                    v => u32::from(v),
                }
            };
            n = (n << 6) | v;
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad.min(2)]);
    }
    Ok(out)
}

/// A training set with its queries embedded by a freshly fitted embedder.
pub struct Prepared {
    /// The routing data.
    pub set: TrainingSet,
    /// The embedder's saved form.
    pub spec: crate::embed::EmbedderSpec,
    /// The embedder.
    pub embedder: std::sync::Arc<dyn crate::embed::Embedder>,
    /// One embedding per training query, as sorted non-zero entries.
    pub x: Vec<Vec<(u32, f32)>>,
}

/// Loads `routing_data_train`, fits the configured embedder on its queries and embeds them.
pub fn prepare(meta: &MetaRouter, progress: &dyn crate::progress::Progress) -> Result<Prepared> {
    let table = meta.load_routing_train()?;
    let set = TrainingSet::from_table(meta, &table)?;
    let texts: Vec<&str> = set.queries.iter().map(String::as_str).collect();
    let (spec, embedder) = crate::embed::fit(&meta.config, &texts)?;
    progress.begin(texts.len() as u64, "embedding training queries");
    let x = embedder.embed_batch_sparse(&texts, progress)?;
    progress.finish();
    Ok(Prepared { set, spec, embedder, x })
}

pub use crate::embed::to_sparse as sparse;

/// Folds a sparse vector into `dim` buckets (index mod `dim`), keeping it sorted.
pub fn fold(x: &[(u32, f32)], dim: usize) -> Vec<(u32, f32)> {
    let mut out: Vec<(u32, f32)> = x.iter().map(|&(j, v)| (j % dim as u32, v)).collect();
    out.sort_by_key(|e| e.0);
    out.dedup_by(|b, a| {
        if a.0 == b.0 {
            a.1 += b.1;
            true
        } else {
            false
        }
    });
    out
}

/// Runs `f` on each chunk of `items` on all cores and concatenates the results in order.
pub fn par_chunks<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> Vec<R> + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if items.len() < 64 || threads == 1 {
        return f(items);
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.chunks(chunk).map(|part| scope.spawn(|| f(part))).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}

/// Per-task counts, for reports.
pub fn count_by<T: Ord + Clone>(items: impl IntoIterator<Item = T>) -> BTreeMap<T, usize> {
    let mut out = BTreeMap::new();
    for x in items {
        *out.entry(x).or_insert(0) += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for data in [vec![], vec![1.5f32], vec![1.0, -2.0], vec![0.1, 0.2, 0.3, f32::MIN_POSITIVE]] {
            let json = serde_json::to_string(&F32s(data.clone())).expect("ser");
            let back: F32s = serde_json::from_str(&json).expect("de");
            assert!(back.0.iter().zip(&data).all(|(a, b)| a.to_bits() == b.to_bits()) && back.0.len() == data.len());
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_decode("Zm8=").expect("decode"), b"fo");
        assert!(base64_decode("Zm8").is_err());
    }

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
