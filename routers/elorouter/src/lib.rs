//! `elorouter`: a query-independent baseline, as in the original: Bradley-Terry (Elo) ratings
//! fitted by maximum likelihood on the pairwise outcomes of the training data, made cost-aware.
//!
//! Every training query where two models scored differently is a game the higher-scoring model
//! won. Strengths `p_m` maximise the likelihood `prod p_w / (p_w + p_l)`, found with Hunter's MM
//! algorithm; one virtual draw of every model against every other keeps ratings finite. The
//! predicted quality of model `m` is its expected win rate against the field,
//! `mean_{k != m} p_m / (p_m + p_k)`, the same for every query; the decision then weighs it
//! against cost with `metric.weights`, so with a cost weight the router trades rating for price.

use std::path::Path;

use llmrouter_core::embed::EmbedderSpec;
use llmrouter_core::router::TrainingSet;
use llmrouter_core::{
    Decide, Fit, FitTrainer, Fitted, MetaRouter, Progress, Result, RouteDecision, ScorePredictor, ScoreRouter,
};
use serde::{Deserialize, Serialize};

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

/// The ratings: the [`ScorePredictor`] of elorouter (the same scores for every query).
pub struct Elo {
    rates: Vec<f32>,
    /// Each candidate's rating, shown with every decision.
    elo: serde_json::Map<String, serde_json::Value>,
}

/// The router.
pub type EloRouter = ScoreRouter<Elo>;
/// Fits the ratings.
pub type EloTrainer = FitTrainer<Elo>;

impl ScorePredictor for Elo {
    type Model = SavedModel;

    fn embedder_spec(_model: &SavedModel) -> Option<&EmbedderSpec> {
        None
    }

    fn from_model(model: SavedModel, meta: &MetaRouter, path: &Path, _dim: usize) -> Result<Self> {
        if model.strengths.len() != meta.candidates.len()
            || model.strengths.iter().any(|p| !(p.is_finite() && *p > 0.0))
        {
            return Err(meta.damaged(path, "`strengths` must be one positive number per candidate"));
        }
        if model.elo.len() != meta.candidates.len() || model.elo.iter().any(|e| !e.is_finite()) {
            return Err(meta.damaged(path, "`elo` must be one finite number per candidate"));
        }
        let elo = meta
            .candidates
            .names()
            .into_iter()
            .zip(&model.elo)
            .map(|(n, e)| (n.to_owned(), e.round().into()))
            .collect();
        Ok(Elo { rates: win_rates(&model.strengths), elo })
    }

    fn scores(&self, _x: &[(u32, f32)]) -> Vec<f32> {
        self.rates.clone()
    }

    fn decide(&self, d: Decide<'_>) -> RouteDecision {
        d.by_rule().with("elo", self.elo.clone())
    }
}

impl Fit for Elo {
    type Hparams = Hparams;
    type Saved = SavedModel;

    fn check(meta: &MetaRouter, hparams: &Hparams) -> Result<()> {
        if !(hparams.prior_draws > 0.0 && hparams.prior_draws.is_finite()) {
            return Err(meta.config.key_error("hparam.prior_draws", "must be a positive number"));
        }
        Ok(())
    }

    fn fit(meta: &MetaRouter, hparams: &Hparams, progress: &dyn Progress) -> Result<Fitted<SavedModel>> {
        let table = meta.load_routing_train()?;
        let set = TrainingSet::for_training(meta, &table)?;
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
        let strengths = fit(&wins, hparams.prior_draws, hparams.max_iterations);
        let elo: Vec<f64> = strengths.iter().map(|p| 1500.0 + 400.0 * p.log10()).collect();
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&a, &b| elo[b].total_cmp(&elo[a]));
        let table: Vec<String> = order.iter().take(5).map(|&i| format!("{} {:.0}", set.models[i], elo[i])).collect();
        let decisive = games.iter().sum::<u64>() / 2;
        let model = SavedModel { strengths, elo, games };
        Ok(Fitted {
            model,
            metrics: vec![
                ("training queries".into(), set.len().to_string()),
                ("decisive games".into(), decisive.to_string()),
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
