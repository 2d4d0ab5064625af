//! Evaluation on routing data with known scores: what a router's picks are worth, next to the
//! reference points every router should be compared with.
//!
//! For a set of picks (one model per query) on a [`TrainingSet`] (usually the test split):
//! - **mean score**: mean measured score of the picked models;
//! - **mean cost**: mean USD per query (measured costs where the data has them, else estimated
//!   from list prices);
//! - **utility**: `w_perf * mean score - w_cost * mean normalised cost`, the quantity routers
//!   maximise (normalised cost = pick's cost / the most expensive candidate's cost on the query);
//! - **routing accuracy**: share of queries whose picked model scored the best score of that query
//!   (ties count as right);
//! - the **share** of queries sent to each model, and the same figures **per task**.
//!
//! Reference points: the **best single model** (highest mean score on this data), the
//! **cheapest** model (lowest mean cost), **random** choice (the exact expectation of a uniform
//! pick, no sampling noise) and the per-query **oracle** (a best-scoring model, cheapest on ties).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::MetricWeights;
use crate::decision::{Predictions, normalized_costs};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::query::QueryInput;
use crate::router::{Router, TrainingSet};

/// The figures of one router or reference point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Router or reference name.
    pub name: String,
    /// Queries evaluated.
    pub queries: usize,
    /// Mean score of the picked models.
    pub mean_score: f64,
    /// Mean cost per query in USD.
    pub mean_cost: f64,
    /// `w_perf * mean score - w_cost * mean normalised cost`.
    pub utility: f64,
    /// Share of queries whose pick scored the best score.
    pub accuracy: f64,
    /// Share of queries sent to each model.
    pub shares: BTreeMap<String, f64>,
    /// Per task: queries, mean score, mean cost.
    pub per_task: BTreeMap<String, TaskFigures>,
}

/// Figures of one task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskFigures {
    /// Queries of this task.
    pub queries: usize,
    /// Mean score of the picks.
    pub mean_score: f64,
    /// Mean cost of the picks.
    pub mean_cost: f64,
}

/// Per-query weights of each model in a pick: one-hot for a router, uniform for random.
pub type Pick = Vec<(usize, f64)>;

/// Figures for `picks` (one per query of `set`; a pick may spread weight over models, as the
/// random baseline does).
pub fn summarize(name: &str, set: &TrainingSet, picks: &[Pick], weights: MetricWeights) -> Summary {
    let n = set.len();
    let (mut score, mut cost, mut ncost, mut acc) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut shares: BTreeMap<String, f64> = set.models.iter().map(|m| (m.clone(), 0.0)).collect();
    let mut tasks: BTreeMap<String, (usize, f64, f64)> = BTreeMap::new();
    for (i, pick) in picks.iter().enumerate() {
        let row = &set.scores[i];
        let best = row.iter().filter(|s| !s.is_nan()).cloned().fold(f32::MIN, f32::max);
        let norm = normalized_costs(&set.costs[i]);
        let (mut s_i, mut c_i) = (0.0, 0.0);
        for &(m, w) in pick {
            let s = if row[m].is_nan() { 0.0 } else { f64::from(row[m]) };
            s_i += w * s;
            c_i += w * set.costs[i][m];
            ncost += w * norm[m];
            acc += w * f64::from(u8::from(!row[m].is_nan() && row[m] >= best));
            *shares.entry(set.models[m].clone()).or_insert(0.0) += w;
        }
        score += s_i;
        cost += c_i;
        let task = set.tasks[i].clone().unwrap_or_else(|| "(none)".to_owned());
        let t = tasks.entry(task).or_insert((0, 0.0, 0.0));
        t.0 += 1;
        t.1 += s_i;
        t.2 += c_i;
    }
    let nf = n.max(1) as f64;
    let mean_score = score / nf;
    Summary {
        name: name.to_owned(),
        queries: n,
        mean_score,
        mean_cost: cost / nf,
        utility: weights.performance * mean_score - weights.cost * ncost / nf,
        accuracy: acc / nf,
        shares: shares.into_iter().map(|(k, v)| (k, v / nf)).collect(),
        per_task: tasks
            .into_iter()
            .map(|(k, (q, s, c))| (k, TaskFigures { queries: q, mean_score: s / q as f64, mean_cost: c / q as f64 }))
            .collect(),
    }
}

/// One-hot picks from model indices.
pub fn one_hot(indices: &[usize]) -> Vec<Pick> {
    indices.iter().map(|&m| vec![(m, 1.0)]).collect()
}

/// Mean measured score and mean cost of each model on `set`.
pub fn model_figures(set: &TrainingSet) -> Vec<(f64, f64)> {
    (0..set.models.len())
        .map(|m| {
            let n = set.len().max(1) as f64;
            let s = set.scores.iter().map(|r| if r[m].is_nan() { 0.0 } else { f64::from(r[m]) }).sum::<f64>();
            let c = set.costs.iter().map(|r| r[m]).sum::<f64>();
            (s / n, c / n)
        })
        .collect()
}

/// The reference points: best single model, cheapest model, random, oracle (in that order).
pub fn baselines(set: &TrainingSet, weights: MetricWeights) -> Vec<Summary> {
    let figures = model_figures(set);
    let m = set.models.len();
    let best = (0..m).max_by(|&a, &b| figures[a].0.total_cmp(&figures[b].0).then(b.cmp(&a))).unwrap_or(0);
    let cheapest = (0..m).min_by(|&a, &b| figures[a].1.total_cmp(&figures[b].1).then(a.cmp(&b))).unwrap_or(0);
    let oracle: Vec<usize> = (0..set.len())
        .map(|i| {
            let row = &set.scores[i];
            (0..m)
                .filter(|&k| !row[k].is_nan())
                .max_by(|&a, &b| {
                    row[a].total_cmp(&row[b]).then(set.costs[i][b].total_cmp(&set.costs[i][a])).then(b.cmp(&a))
                })
                .unwrap_or(0)
        })
        .collect();
    let uniform: Vec<Pick> = (0..set.len()).map(|_| (0..m).map(|k| (k, 1.0 / m as f64)).collect()).collect();
    vec![
        summarize(&format!("best single ({})", set.models[best]), set, &one_hot(&vec![best; set.len()]), weights),
        summarize(&format!("cheapest ({})", set.models[cheapest]), set, &one_hot(&vec![cheapest; set.len()]), weights),
        summarize("random", set, &uniform, weights),
        summarize("oracle", set, &one_hot(&oracle), weights),
    ]
}

/// Routes every query of `set` with `router` (in chunks, reporting progress) and returns the
/// index of each picked model.
pub fn route_set(router: &dyn Router, set: &TrainingSet, progress: &dyn Progress) -> Result<Vec<usize>> {
    let queries: Vec<QueryInput> = set.queries.iter().map(|q| QueryInput::new(q.as_str())).collect();
    progress.begin(queries.len() as u64, "routing");
    let mut picks = Vec::with_capacity(queries.len());
    for chunk in queries.chunks(512) {
        for d in router.route_batch(chunk)? {
            let m = set.model_index(&d.model_name).ok_or_else(|| {
                Error::router(
                    &d.router,
                    format!("routed to `{}`, which has no scores in the evaluation data", d.model_name),
                )
            })?;
            picks.push(m);
        }
        progress.advance(chunk.len() as u64);
    }
    progress.finish();
    Ok(picks)
}

/// Per-model predictions ([`Router::predict`]) for every query of `set`, in chunks of 512
/// with progress; `None` when the router does not predict scores.
pub fn predict_set(router: &dyn Router, set: &TrainingSet, progress: &dyn Progress) -> Result<Option<Predictions>> {
    let queries: Vec<QueryInput> = set.queries.iter().map(|q| QueryInput::new(q.as_str())).collect();
    let mut all: Option<Predictions> = None;
    progress.begin(queries.len() as u64, "predicting");
    for chunk in queries.chunks(512) {
        let Some(p) = router.predict(chunk)? else {
            progress.finish();
            return Ok(None);
        };
        match &mut all {
            Some(a) => {
                a.scores.extend(p.scores);
                a.costs.extend(p.costs);
            }
            None => all = Some(p),
        }
        progress.advance(chunk.len() as u64);
    }
    progress.finish();
    Ok(all)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Three models, five queries; costs 1, 2, 4 per query.
    pub(crate) fn tiny() -> TrainingSet {
        TrainingSet {
            models: vec!["a".into(), "b".into(), "c".into()],
            queries: (0..5).map(|i| format!("q{i}")).collect(),
            tasks: vec![Some("x".into()), Some("x".into()), Some("y".into()), Some("y".into()), Some("y".into())],
            scores: vec![
                vec![1.0, 1.0, 1.0],
                vec![0.0, 1.0, 1.0],
                vec![0.0, 0.0, 1.0],
                vec![0.0, 0.0, 0.0],
                vec![1.0, 0.0, 1.0],
            ],
            costs: vec![vec![1.0, 2.0, 4.0]; 5],
        }
    }

    #[test]
    fn figures_match_hand_computation() {
        let set = tiny();
        let w = MetricWeights { cost: 0.5, ..MetricWeights::default() };
        // Picks: a, b, c, a, a -> scores 1, 1, 1, 0, 1.
        let s = summarize("r", &set, &one_hot(&[0, 1, 2, 0, 0]), w);
        assert!((s.mean_score - 0.8).abs() < 1e-12);
        assert!((s.mean_cost - (1.0 + 2.0 + 4.0 + 1.0 + 1.0) / 5.0).abs() < 1e-12);
        // Normalised costs 0.25, 0.5, 1, 0.25, 0.25 -> mean 0.45; utility 0.8 - 0.5 * 0.45.
        assert!((s.utility - (0.8 - 0.225)).abs() < 1e-12);
        // Row 3: every model scored 0, so `a` is a best pick: all five picks are right.
        assert!((s.accuracy - 1.0).abs() < 1e-12);
        assert!((s.shares["a"] - 0.6).abs() < 1e-12);
        assert_eq!(s.per_task["x"].queries, 2);
        assert!((s.per_task["y"].mean_score - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn baselines_match_hand_computation() {
        let set = tiny();
        let b = baselines(&set, MetricWeights::default());
        assert_eq!(b[0].name, "best single (c)");
        assert!((b[0].mean_score - 0.8).abs() < 1e-12);
        assert_eq!(b[1].name, "cheapest (a)");
        assert!((b[1].mean_score - 0.4).abs() < 1e-12);
        // Random: mean over models of each row's mean: (1 + 2/3 + 1/3 + 0 + 2/3) / 5.
        assert!((b[2].mean_score - (1.0 + 2.0 / 3.0 + 1.0 / 3.0 + 0.0 + 2.0 / 3.0) / 5.0).abs() < 1e-12);
        // Oracle: 0.8 (row 3 has no good model), choosing the cheapest among the best.
        assert!((b[3].mean_score - 0.8).abs() < 1e-12);
        assert!((b[3].mean_cost - (1.0 + 2.0 + 4.0 + 1.0 + 1.0) / 5.0).abs() < 1e-12);
        assert!((b[3].accuracy - 1.0).abs() < 1e-12);
    }
}
