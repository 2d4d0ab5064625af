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

    /// [`TrainingSet::from_table`] for training: every candidate must have a measured score in
    /// some row. A router cannot learn anything about a candidate without data, and would invent
    /// a score for it and send it real traffic; the error names each such candidate.
    pub fn for_training(meta: &MetaRouter, table: &RoutingTable) -> Result<Self> {
        let set = TrainingSet::from_table(meta, table)?;
        let unmeasured: Vec<&str> = (0..set.models.len())
            .filter(|&m| set.scores.iter().all(|row| row[m].is_nan()))
            .map(|m| set.models[m].as_str())
            .collect();
        if !unmeasured.is_empty() {
            let source =
                meta.config.data_path_value(crate::config::DataKey::RoutingDataTrain).unwrap_or("the training data");
            return Err(Error::router(
                meta.router_name(),
                format!(
                    "{} {} in llm_data ({}) but {} no score in any row of {source}: a router cannot learn \
                     anything about {}. Remove {} from llm_data, or add routing data that measures {}",
                    crate::names::list_capped(&unmeasured, 10),
                    if unmeasured.len() == 1 { "is a candidate" } else { "are candidates" },
                    meta.candidates.source().display(),
                    if unmeasured.len() == 1 { "has" } else { "have" },
                    if unmeasured.len() == 1 { "it" } else { "them" },
                    if unmeasured.len() == 1 { "it" } else { "them" },
                    if unmeasured.len() == 1 { "it" } else { "them" },
                ),
            ));
        }
        Ok(set)
    }

    /// [`TrainingSet::from_table`] for scoring routers: only the rows where every candidate has
    /// a score, so no figure ever counts a missing score (as 0 or anything else) and every router
    /// and reference point is scored on the same queries. Also returns, when rows were left out,
    /// a warning saying how many and for which candidates; an error when none is left.
    pub fn for_evaluation(meta: &MetaRouter, table: &RoutingTable, source: &str) -> Result<(Self, Option<String>)> {
        let mut set = TrainingSet::from_table(meta, table)?;
        let total = set.len();
        let mut missing = vec![0usize; set.models.len()];
        let keep: Vec<bool> = set
            .scores
            .iter()
            .map(|row| {
                for (m, s) in row.iter().enumerate() {
                    missing[m] += usize::from(s.is_nan());
                }
                row.iter().all(|s| !s.is_nan())
            })
            .collect();
        let kept = keep.iter().filter(|&&k| k).count();
        if kept == total {
            return Ok((set, None));
        }
        let lacking: Vec<&str> =
            (0..set.models.len()).filter(|&m| missing[m] > 0).map(|m| set.models[m].as_str()).collect();
        let lacking = crate::names::list_capped(&lacking, 12);
        if kept == 0 {
            return Err(Error::router(
                meta.router_name(),
                format!(
                    "no row of {source} has a score for every candidate (some lack {lacking}); routers are \
                     scored only on rows where every candidate was measured"
                ),
            ));
        }
        fn keep_rows<T>(rows: &mut Vec<T>, keep: &[bool]) {
            *rows = std::mem::take(rows).into_iter().zip(keep).filter_map(|(row, &k)| k.then_some(row)).collect();
        }
        keep_rows(&mut set.queries, &keep);
        keep_rows(&mut set.tasks, &keep);
        keep_rows(&mut set.scores, &keep);
        keep_rows(&mut set.costs, &keep);
        let warning = format!(
            "warning: {} of {total} rows of {source} lack a score for {lacking}; \
             they are left out of every figure, which covers the other {kept}",
            total - kept
        );
        Ok((set, Some(warning)))
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
    let set = TrainingSet::for_training(meta, &table)?;
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
