//! `hybrid_llm`: Hybrid LLM (Ding et al., ICLR 2024) between one small and one large model.
//!
//! A regressor on the query embedding (logistic regression, soft targets) estimates `p(q)`, how
//! likely the small model's answer is as good as the large one's, trained with one of the
//! paper's three label modes:
//! - `deterministic`: `y = 1[s_small >= s_large]`;
//! - `probabilistic`: `y = (1 + s_small - s_large) / 2`, the chance that the small model wins or
//!   ties when each answer is judged by its score (ties count half);
//! - `transformed`: `y = 1[s_small >= s_large - t]` with the relaxation `t >= 0` chosen on the
//!   training data so that at least half of the labels are positive (the paper's fix for
//!   imbalanced labels when the large model is usually better).
//!
//! Decision: with `threshold` set, the small model answers when `p(q) >= threshold` (the paper's
//! rule). Without it (default), the decision is the cost-aware rule shared by all learned routers,
//! with predicted scores `large = mean_large` and `small = mean_large - loss(p(q))`, the expected
//! score lost by answering with the small model: `max(0, 1 - 2p)` with probabilistic labels (their
//! expectation is `(1 + E[s_small - s_large]) / 2`), `(1 - p) * gap` with 0/1 labels, where `gap`
//! is the large model's mean advantage on training queries where it was better. The small model
//! is chosen when that loss is worth less than the cost it saves under `metric.weights`; with a
//! cost weight of 0 the large model always answers.

use std::path::Path;

use llmrouter_core::embed::EmbedderSpec;
use llmrouter_core::learn::linear::{self, Linear, Loss, sigmoid};
use llmrouter_core::model::all_finite;
use llmrouter_core::router::prepare;
use llmrouter_core::{
    Decide, Error, Fit, FitTrainer, Fitted, MetaRouter, Progress, Result, RouteDecision, ScorePredictor, ScoreRouter,
};
use serde::{Deserialize, Serialize};

/// How training labels are made from the two models' scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelMode {
    /// `1[s_small >= s_large]`.
    Deterministic,
    /// `(1 + s_small - s_large) / 2`.
    Probabilistic,
    /// `1[s_small >= s_large - t]`, `t` balancing the labels.
    Transformed,
}

/// `hparam` of hybrid_llm.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hparams {
    /// The cheap model (default: the cheapest candidate).
    pub small_model: Option<String>,
    /// The strong model (default: the most expensive candidate).
    pub large_model: Option<String>,
    /// `deterministic`, `probabilistic` (default) or `transformed`.
    pub label_mode: LabelMode,
    /// Route to the small model when `p(q) >= threshold`; unset (default): decide by cost.
    pub threshold: Option<f64>,
    /// Inverse regularisation of the logistic regression (default 1.0).
    #[serde(rename = "C")]
    pub c: f64,
    /// SGD passes (default 15).
    pub epochs: usize,
    /// Seed (default 42).
    pub seed: u64,
}

impl Default for Hparams {
    fn default() -> Self {
        Hparams {
            small_model: None,
            large_model: None,
            label_mode: LabelMode::Probabilistic,
            threshold: None,
            c: 1.0,
            epochs: 15,
            seed: 42,
        }
    }
}

/// The saved model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedModel {
    embedder: EmbedderSpec,
    small_model: String,
    large_model: String,
    label_mode: LabelMode,
    relaxation: f32,
    regressor: Linear,
    large_mean: f32,
    gap: f32,
}

struct Setup {
    hparams: Hparams,
    small: usize,
    large: usize,
}

fn setup(meta: &MetaRouter) -> Result<Setup> {
    let hparams: Hparams = meta.config.hparams()?;
    let by_price = meta.candidates.by_price();
    if by_price.len() < 2 {
        return Err(meta.error("needs at least two candidates"));
    }
    let small = match &hparams.small_model {
        Some(n) => meta.candidate_for_key("hparam.small_model", n)?,
        None => by_price[0],
    };
    let large = match &hparams.large_model {
        Some(n) => meta.candidate_for_key("hparam.large_model", n)?,
        None => by_price[by_price.len() - 1],
    };
    if small == large {
        return Err(meta.config.key_error("hparam.large_model", "must differ from hparam.small_model"));
    }
    if let Some(t) = hparams.threshold {
        if !(0.0..=1.0).contains(&t) {
            return Err(meta.config.key_error("hparam.threshold", format!("must be between 0 and 1, found {t}")));
        }
    }
    if !(hparams.c > 0.0 && hparams.c.is_finite()) {
        return Err(meta.config.key_error("hparam.C", "must be a positive number"));
    }
    Ok(Setup { hparams, small, large })
}

/// The quality-gap regressor and its embedder: the [`ScorePredictor`] of hybrid_llm, which
/// predicts the small and the large model's scores.
pub struct Hybrid {
    model: SavedModel,
    threshold: Option<f64>,
    pair: [usize; 2],
}

/// The router.
pub type HybridLlm = ScoreRouter<Hybrid>;
/// Trains the quality-gap regressor.
pub type HybridTrainer = FitTrainer<Hybrid>;

impl Hybrid {
    /// `p(q)`: how likely the small model's answer is as good as the large one's.
    fn probability(&self, x: &[(u32, f32)]) -> f32 {
        sigmoid(f64::from(self.model.regressor.margin(x))) as f32
    }
}

impl ScorePredictor for Hybrid {
    type Model = SavedModel;

    fn embedder_spec(model: &SavedModel) -> Option<&EmbedderSpec> {
        Some(&model.embedder)
    }

    fn from_model(model: SavedModel, meta: &MetaRouter, path: &Path, dim: usize) -> Result<Self> {
        let s = setup(meta)?;
        let names = meta.candidates.names();
        if model.small_model != names[s.small] || model.large_model != names[s.large] {
            return Err(Error::model(
                path,
                format!(
                    "trained for small `{}` and large `{}`, but the config asks for `{}` and `{}`; retrain",
                    model.small_model, model.large_model, names[s.small], names[s.large]
                ),
            ));
        }
        if model.regressor.w.len() != dim {
            return Err(meta.damaged(path, "regressor size does not match the embedder"));
        }
        if !(all_finite(&model.regressor.w) && model.regressor.b.is_finite() && model.relaxation.is_finite()) {
            return Err(meta.damaged(path, "the regressor or `relaxation` holds a non-finite number"));
        }
        Ok(Hybrid { model, threshold: s.hparams.threshold, pair: [s.small, s.large] })
    }

    fn columns(&self) -> Option<Vec<usize>> {
        Some(self.pair.to_vec())
    }

    fn scores(&self, x: &[(u32, f32)]) -> Vec<f32> {
        let m = &self.model;
        vec![m.large_mean - expected_loss(m, self.probability(x)) - 1e-6, m.large_mean]
    }

    fn decide(&self, d: Decide<'_>) -> RouteDecision {
        let p = self.probability(d.x);
        let decision = match self.threshold {
            Some(t) => {
                let m = if f64::from(p) >= t { &self.model.small_model } else { &self.model.large_model };
                RouteDecision::new(d.router, d.query, m).with("threshold", t)
            }
            None => d.by_rule(),
        };
        decision.with("small_ok_probability", f64::from(p))
    }
}

/// Expected score lost by answering with the small model, from `p(q)`: with probabilistic labels
/// `E[y] = (1 + E[s_small - s_large]) / 2`, so the expected gap is `1 - 2p`; with 0/1 labels
/// `1 - p` is the chance the large model is better, worth `gap` on average. Never negative: the
/// small model is chosen for what it saves, not for being better.
fn expected_loss(m: &SavedModel, p: f32) -> f32 {
    match m.label_mode {
        LabelMode::Probabilistic => (1.0 - 2.0 * p).max(0.0),
        LabelMode::Deterministic | LabelMode::Transformed => (1.0 - p) * m.gap,
    }
}

impl Fit for Hybrid {
    type Hparams = Hparams;
    type Saved = SavedModel;

    fn check(meta: &MetaRouter, _hparams: &Hparams) -> Result<()> {
        setup(meta).map(drop)
    }

    fn fit(meta: &MetaRouter, _hparams: &Hparams, progress: &dyn Progress) -> Result<Fitted<SavedModel>> {
        let setup = setup(meta)?;
        let p = prepare(meta, progress)?;
        let (si, li) = (setup.small, setup.large);
        let h = &setup.hparams;
        let pairs: Vec<(usize, f32, f32)> = p
            .set
            .scores
            .iter()
            .enumerate()
            .filter(|(_, r)| !r[si].is_nan() && !r[li].is_nan())
            .map(|(i, r)| (i, r[si], r[li]))
            .collect();
        if pairs.len() < 10 {
            return Err(meta.error(format!(
                "only {} training queries have scores for both `{}` and `{}`; need at least 10",
                pairs.len(),
                p.set.models[si],
                p.set.models[li]
            )));
        }
        let mut gaps: Vec<f32> = pairs.iter().map(|(_, s, l)| l - s).collect();
        gaps.sort_by(f32::total_cmp);
        let relaxation = match h.label_mode {
            LabelMode::Transformed => gaps[gaps.len() / 2].max(0.0),
            _ => 0.0,
        };
        let label = |s: f32, l: f32| match h.label_mode {
            LabelMode::Deterministic => f32::from(u8::from(s >= l)),
            LabelMode::Probabilistic => ((1.0 + s - l) / 2.0).clamp(0.0, 1.0),
            LabelMode::Transformed => f32::from(u8::from(s >= l - relaxation)),
        };
        let x: Vec<Vec<(u32, f32)>> = pairs.iter().map(|(i, _, _)| p.x[*i].clone()).collect();
        let y: Vec<f32> = pairs.iter().map(|(_, s, l)| label(*s, *l)).collect();
        let lambda = 1.0 / (h.c * x.len() as f64);
        progress.begin(1, "fitting the quality-gap regressor");
        let regressor = linear::train(&x, &y, p.embedder.dim(), Loss::Logistic, lambda, h.epochs, h.seed);
        progress.advance(1);
        progress.finish();
        let large_mean = pairs.iter().map(|(_, _, l)| l).sum::<f32>() / pairs.len() as f32;
        let better: Vec<f32> = pairs.iter().filter(|(_, s, l)| l > s).map(|(_, s, l)| l - s).collect();
        let gap = if better.is_empty() { 0.0 } else { better.iter().sum::<f32>() / better.len() as f32 };
        let positive = y.iter().map(|v| f64::from(*v)).sum::<f64>() / y.len() as f64;
        let pair = format!("{} / {}", p.set.models[si], p.set.models[li]);
        let model = SavedModel {
            embedder: p.spec,
            small_model: p.set.models[si].clone(),
            large_model: p.set.models[li].clone(),
            label_mode: h.label_mode,
            relaxation,
            regressor,
            large_mean,
            gap,
        };
        Ok(Fitted {
            model,
            metrics: vec![
                ("small / large".into(), pair),
                ("training queries".into(), pairs.len().to_string()),
                (
                    "label mode".into(),
                    format!("{:?} (relaxation {relaxation:.3}, mean label {positive:.3})", h.label_mode),
                ),
                ("large model mean score".into(), format!("{large_mean:.4}")),
                ("mean gap when large is better".into(), format!("{gap:.4}")),
            ],
        })
    }
}

llmrouter_core::register_router! {
    router: HybridLlm,
    name: "hybrid_llm",
    summary: "Hybrid LLM (ICLR 2024): quality-gap regressor between a small and a large model; threshold or cost rule",
    docs: include_str!("../README.md"),
    trainer: HybridTrainer,
}
