//! What every trainer starts from: routing data as dense arrays in candidate order
//! ([`TrainingSet`]), and [`prepare`], which fits the configured embedder and embeds the training
//! queries.

use std::collections::BTreeMap;

use crate::data::RoutingTable;
use crate::decision::CostModel;
use crate::embed::{Embedder, EmbedderSpec};
use crate::error::{Error, Result};
use crate::meta::MetaRouter;
use crate::progress::Progress;
use crate::rng::SplitMix64;

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

/// A training set with its queries embedded by a freshly fitted embedder.
pub struct Prepared {
    /// The routing data.
    pub set: TrainingSet,
    /// The embedder's saved form.
    pub spec: EmbedderSpec,
    /// The embedder.
    pub embedder: std::sync::Arc<dyn Embedder>,
    /// One embedding per training query, as sorted non-zero entries.
    pub x: Vec<Vec<(u32, f32)>>,
}

/// Loads `routing_data_train`, fits the configured embedder on its queries and embeds them.
pub fn prepare(meta: &MetaRouter, progress: &dyn Progress) -> Result<Prepared> {
    let table = meta.load_routing_train()?;
    let set = TrainingSet::from_table(meta, &table)?;
    let texts: Vec<&str> = set.queries.iter().map(String::as_str).collect();
    let (spec, embedder) = crate::embed::fit(&meta.config, &texts)?;
    progress.begin(texts.len() as u64, "embedding training queries");
    let x = embedder.embed_batch_sparse(&texts, progress)?;
    progress.finish();
    Ok(Prepared { set, spec, embedder, x })
}

/// Per-task counts, for reports.
pub fn count_by<T: Ord + Clone>(items: impl IntoIterator<Item = T>) -> BTreeMap<T, usize> {
    let mut out = BTreeMap::new();
    for x in items {
        *out.entry(x).or_insert(0) += 1;
    }
    out
}
