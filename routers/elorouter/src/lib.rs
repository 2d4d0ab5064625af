//! `elorouter`: a query-independent baseline, as in the original: Bradley-Terry (Elo) ratings
//! fitted by maximum likelihood on the pairwise outcomes of the training data, made cost-aware.
//!
//! Every training query where two models scored differently is a game the higher-scoring model
//! won. Strengths `p_m` maximise the likelihood `prod p_w / (p_w + p_l)`, found with Hunter's MM
//! algorithm; one virtual draw of every model against every other keeps ratings finite. The
//! predicted quality of model `m` is its expected win rate against the field,
//! `mean_{k != m} p_m / (p_m + p_k)`, the same for every query; the decision then weighs it
//! against cost with `metric.weights`, so with a cost weight the router trades rating for price.

use std::path::PathBuf;

use llmrouter_core::learn::{CostModel, Predictions, TrainingSet};
use llmrouter_core::{
    Device, Error, MetaRouter, MetricWeights, Progress, QueryInput, Result, RouteDecision, Router, TrainReport,
    Trainer, model_file,
};
use serde::{Deserialize, Serialize};

const NAME: &str = "elorouter";

/// `hparam` of elorouter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hparams {
    /// Maximum MM iterations (default 500).
    pub max_iterations: usize,
    /// Virtual draws between every pair of models, a prior that keeps ratings finite (default 1).
    pub prior_draws: f64,
}

impl Default for Hparams {
    fn default() -> Self {
        Hparams { max_iterations: 500, prior_draws: 1.0 }
    }
}

/// The saved model: one strength per candidate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedModel {
    /// Bradley-Terry strengths (geometric mean 1).
    pub strengths: Vec<f64>,
    /// The same on the Elo scale (`1500 + 400 log10 p`).
    pub elo: Vec<f64>,
    /// Games each model played.
    pub games: Vec<u64>,
}

/// Expected win rate of each model against the others.
fn win_rates(p: &[f64]) -> Vec<f32> {
    let m = p.len();
    (0..m)
        .map(|i| {
            if m < 2 {
                return 0.5;
            }
            let total: f64 = (0..m).filter(|&k| k != i).map(|k| p[i] / (p[i] + p[k])).sum();
            (total / (m - 1) as f64) as f32
        })
        .collect()
}

/// Fits Bradley-Terry strengths from `wins[i][j]` (times i beat j) with `prior` draws per pair.
pub fn fit(wins: &[Vec<f64>], prior: f64, iterations: usize) -> Vec<f64> {
    let m = wins.len();
    let mut p = vec![1.0f64; m];
    for _ in 0..iterations {
        let mut next = vec![0.0; m];
        for i in 0..m {
            let won: f64 = (0..m).filter(|&j| j != i).map(|j| wins[i][j] + prior / 2.0).sum();
            let denom: f64 =
                (0..m).filter(|&j| j != i).map(|j| (wins[i][j] + wins[j][i] + prior) / (p[i] + p[j])).sum();
            next[i] = if denom > 0.0 { won / denom } else { p[i] };
        }
        let log_mean = next.iter().map(|x| x.max(1e-300).ln()).sum::<f64>() / m.max(1) as f64;
        let scale = (-log_mean).exp();
        let change: f64 = next.iter().zip(&p).map(|(a, b)| (a * scale - b).abs()).sum();
        p = next.into_iter().map(|x| x * scale).collect();
        if change < 1e-10 {
            break;
        }
    }
    p
}

/// The router.
pub struct EloRouter {
    rates: Vec<f32>,
    costs: CostModel,
    metric: MetricWeights,
    names: Vec<String>,
    elo: Vec<f64>,
}

impl Router for EloRouter {
    fn from_meta(meta: MetaRouter) -> Result<Self> {
        let path = meta.config.load_model_path(NAME)?;
        let model: SavedModel = model_file::load(&path, NAME, &meta.candidates.names())?;
        if model.strengths.len() != meta.candidates.len()
            || model.strengths.iter().any(|p| !(p.is_finite() && *p > 0.0))
        {
            return Err(Error::model(&path, "corrupted: strengths must be one positive number per candidate"));
        }
        Ok(EloRouter {
            rates: win_rates(&model.strengths),
            costs: CostModel::from_meta(&meta),
            metric: meta.config.metric,
            names: meta.candidates.names().into_iter().map(String::from).collect(),
            elo: model.elo,
        })
    }

    fn route_single(&self, query: &QueryInput) -> Result<RouteDecision> {
        Ok(self.route_batch(std::slice::from_ref(query))?.remove(0))
    }

    fn route_batch(&self, queries: &[QueryInput]) -> Result<Vec<RouteDecision>> {
        let p = self.predict(queries)?.ok_or_else(|| Error::router(NAME, "no predictions"))?;
        let elo: serde_json::Map<String, serde_json::Value> =
            self.names.iter().zip(&self.elo).map(|(n, e)| (n.clone(), e.round().into())).collect();
        Ok(p.decide_all(NAME, queries, self.metric).into_iter().map(|d| d.with("elo", elo.clone())).collect())
    }

    fn predict(&self, queries: &[QueryInput]) -> Result<Option<Predictions>> {
        for q in queries {
            q.check(NAME)?;
        }
        Ok(Some(Predictions {
            models: self.names.clone(),
            scores: vec![self.rates.clone(); queries.len()],
            costs: queries.iter().map(|q| self.costs.estimate(&q.query)).collect(),
        }))
    }
}

/// Fits the ratings.
pub struct EloTrainer {
    meta: MetaRouter,
    hparams: Hparams,
    save_path: PathBuf,
}

impl Trainer for EloTrainer {
    fn from_meta(meta: MetaRouter, _device: Device) -> Result<Self> {
        let hparams: Hparams = meta.config.hparams()?;
        if !(hparams.prior_draws > 0.0 && hparams.prior_draws.is_finite()) {
            return Err(meta.config.key_error("hparam.prior_draws", "must be a positive number"));
        }
        let save_path = meta.config.save_model_path_for(NAME)?;
        Ok(EloTrainer { meta, hparams, save_path })
    }

    fn train(&mut self, progress: &dyn Progress) -> Result<TrainReport> {
        let table = self.meta.load_routing_train()?;
        let set = TrainingSet::from_table(&self.meta, &table)?;
        let m = set.models.len();
        let mut wins = vec![vec![0.0f64; m]; m];
        let mut games = vec![0u64; m];
        progress.begin(set.len() as u64, "counting pairwise outcomes");
        for row in &set.scores {
            for i in 0..m {
                for j in 0..m {
                    if i != j && !row[i].is_nan() && !row[j].is_nan() && row[i] > row[j] {
                        wins[i][j] += 1.0;
                        games[i] += 1;
                        games[j] += 1;
                    }
                }
            }
            progress.advance(1);
        }
        progress.finish();
        let strengths = fit(&wins, self.hparams.prior_draws, self.hparams.max_iterations);
        let elo: Vec<f64> = strengths.iter().map(|p| 1500.0 + 400.0 * p.log10()).collect();
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&a, &b| elo[b].total_cmp(&elo[a]));
        let table: Vec<String> = order.iter().take(5).map(|&i| format!("{} {:.0}", set.models[i], elo[i])).collect();
        let model = SavedModel { strengths, elo, games };
        model_file::save_trained(&self.save_path, &self.meta, NAME, &model)?;
        Ok(TrainReport {
            model_path: self.save_path.clone(),
            metrics: vec![
                ("training queries".into(), set.len().to_string()),
                ("decisive games".into(), (model.games.iter().sum::<u64>() / 2).to_string()),
                ("top ratings (Elo)".into(), table.join(", ")),
            ],
        })
    }
}

llmrouter_core::register_router! {
    router: EloRouter,
    name: "elorouter",
    summary: "Query-independent baseline: Bradley-Terry (Elo) ratings from pairwise outcomes, traded against cost",
    docs: include_str!("../README.md"),
    trainer: EloTrainer,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stronger_models_get_higher_strengths() {
        // 0 beats 1 three times in four, 1 beats 2 three times in four.
        let wins = vec![vec![0.0, 30.0, 0.0], vec![10.0, 0.0, 30.0], vec![0.0, 10.0, 0.0]];
        let p = fit(&wins, 1.0, 1000);
        assert!(p[0] > p[1] && p[1] > p[2], "{p:?}");
        // Close to the maximum-likelihood ratio of 3 for direct opponents.
        let ratio = p[0] / p[1];
        assert!((2.0..3.5).contains(&ratio), "{ratio}");
        let r = win_rates(&p);
        assert!(r[0] > 0.5 && r[2] < 0.5);
    }
}
