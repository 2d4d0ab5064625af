//! `svmrouter`: one linear classifier per candidate model on the query embedding, whose
//! probability that the model answers well is used as its predicted score; the decision follows
//! `metric.weights`.
//!
//! Each classifier is the exact minimiser (L-BFGS, `llmrouter_core::learn::linear::fit`) of
//! `C * sum_i loss_i + |w|^2 / 2`, as scikit-learn's `LogisticRegression(C)` or `LinearSVC(C)`:
//! - `loss: logistic` (default): log loss against the measured scores as soft targets, so
//!   `sigmoid(margin)` already estimates the expected score.
//! - `loss: squared_hinge`: a linear SVM on `score >= 0.5`; its margins become probabilities by
//!   Platt scaling (`sigmoid(a * margin + c)`) fitted on a seeded held-out `calibration_fraction`,
//!   after which the SVMs are refitted on all queries and keep the calibration.

use std::path::Path;

use llmrouter_core::embed::EmbedderSpec;
use llmrouter_core::learn::linear::{self, Linear, Loss, sigmoid};
use llmrouter_core::model::all_finite;
use llmrouter_core::router::prepare;
use llmrouter_core::{Fit, FitTrainer, Fitted, MetaRouter, Progress, Result, ScorePredictor, ScoreRouter};
use serde::{Deserialize, Serialize};

/// `hparam` of svmrouter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hparams {
    /// Only `linear` is supported (default).
    pub kernel: String,
    /// `logistic` (default) or `squared_hinge`.
    pub loss: SvmLoss,
    /// Inverse regularisation strength, as in scikit-learn (default 0.2).
    #[serde(rename = "C")]
    pub c: f64,
    /// Most L-BFGS iterations per classifier (default 300).
    pub max_iter: usize,
    /// Share of queries held out to fit the Platt calibration of `squared_hinge` (default 0.2).
    pub calibration_fraction: f64,
    /// Seed of the hold-out split (default 42).
    pub seed: u64,
}

impl Default for Hparams {
    fn default() -> Self {
        Hparams {
            kernel: "linear".into(),
            loss: SvmLoss::Logistic,
            c: 0.2,
            max_iter: 300,
            calibration_fraction: 0.2,
            seed: 42,
        }
    }
}

/// The classifiers' loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SvmLoss {
    /// Logistic regression on the scores as soft targets.
    Logistic,
    /// Linear SVM (scikit-learn's `LinearSVC` loss) with Platt scaling.
    SquaredHinge,
}

/// One model's classifier and calibration.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Classifier {
    svm: Linear,
    platt_a: f32,
    platt_c: f32,
}

/// The saved model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedModel {
    embedder: EmbedderSpec,
    classifiers: Vec<Classifier>,
}

/// The per-model classifiers and their embedder: the [`ScorePredictor`] of svmrouter.
pub struct Svm {
    model: SavedModel,
}

/// The router.
pub type SvmRouter = ScoreRouter<Svm>;
/// Trains the per-model SVMs and their calibration.
pub type SvmTrainer = FitTrainer<Svm>;

impl ScorePredictor for Svm {
    type Model = SavedModel;

    fn embedder_spec(model: &SavedModel) -> Option<&EmbedderSpec> {
        Some(&model.embedder)
    }

    fn from_model(model: SavedModel, meta: &MetaRouter, path: &Path, dim: usize) -> Result<Self> {
        if model.classifiers.len() != meta.candidates.len() || model.classifiers.iter().any(|c| c.svm.w.len() != dim) {
            return Err(meta.damaged(path, "classifier shapes do not match the candidates and embedder"));
        }
        if model
            .classifiers
            .iter()
            .any(|c| !(all_finite(&c.svm.w) && c.svm.b.is_finite() && c.platt_a.is_finite() && c.platt_c.is_finite()))
        {
            return Err(meta.damaged(path, "a classifier holds a non-finite weight"));
        }
        Ok(Svm { model })
    }

    fn scores(&self, v: &[(u32, f32)]) -> Vec<f32> {
        self.model
            .classifiers
            .iter()
            .map(|c| sigmoid(f64::from(c.platt_a * c.svm.margin(v) + c.platt_c)) as f32)
            .collect()
    }
}

impl Fit for Svm {
    type Hparams = Hparams;
    type Saved = SavedModel;

    fn check(meta: &MetaRouter, hparams: &Hparams) -> Result<()> {
        if hparams.kernel != "linear" {
            return Err(meta.config.key_error(
                "hparam.kernel",
                format!(
                    "kernel `{}` is not supported; use `linear` (on TF-IDF features it routes as well as RBF)",
                    hparams.kernel
                ),
            ));
        }
        if !(hparams.c > 0.0 && hparams.c.is_finite()) {
            return Err(meta.config.key_error("hparam.C", "must be a positive number"));
        }
        if hparams.max_iter == 0 {
            return Err(meta.config.key_error("hparam.max_iter", "must be at least 1"));
        }
        if !(0.05..0.9).contains(&hparams.calibration_fraction) {
            return Err(meta.config.key_error("hparam.calibration_fraction", "must be between 0.05 and 0.9"));
        }
        Ok(())
    }

    fn fit(meta: &MetaRouter, h: &Hparams, progress: &dyn Progress) -> Result<Fitted<SavedModel>> {
        let p = prepare(meta, progress)?;
        let dim = p.embedder.dim();
        let models = p.set.models.len();
        let all: Vec<usize> = (0..p.set.len()).collect();
        let fit =
            |rows: &[usize], loss| linear::fit_columns(&p.x, &p.set.scores, rows, dim, loss, 1.0 / h.c, h.max_iter);
        progress.begin(1, "fitting one classifier per model");
        let (classifiers, quality) = match h.loss {
            SvmLoss::Logistic => {
                let classifiers: Vec<Classifier> = fit(&all, Loss::Logistic)
                    .into_iter()
                    .map(|svm| Classifier { svm, platt_a: 1.0, platt_c: 0.0 })
                    .collect();
                let loss = log_loss(&classifiers, &p.x, &p.set.scores, &all);
                (classifiers, format!("training log loss {loss:.4} per (query, model)"))
            }
            SvmLoss::SquaredHinge => {
                let (fit_rows, cal_rows) = p.set.split(h.calibration_fraction, h.seed);
                let held_out = fit(&fit_rows, Loss::SquaredHinge);
                let calibrations: Vec<(f32, f32)> = (0..models)
                    .map(|m| {
                        let margins: Vec<f32> = cal_rows.iter().map(|&i| held_out[m].margin(&p.x[i])).collect();
                        let targets: Vec<f32> = cal_rows.iter().map(|&i| p.set.scores[i][m]).collect();
                        linear::platt(&margins, &targets)
                    })
                    .collect();
                let calibrated: Vec<Classifier> = held_out
                    .into_iter()
                    .zip(&calibrations)
                    .map(|(svm, &(platt_a, platt_c))| Classifier { svm, platt_a, platt_c })
                    .collect();
                let loss = log_loss(&calibrated, &p.x, &p.set.scores, &cal_rows);
                let classifiers = fit(&all, Loss::SquaredHinge)
                    .into_iter()
                    .zip(calibrations)
                    .map(|(svm, (platt_a, platt_c))| Classifier { svm, platt_a, platt_c })
                    .collect();
                (
                    classifiers,
                    format!("calibration log loss {loss:.4} per (query, model) on {} held-out queries", cal_rows.len()),
                )
            }
        };
        progress.advance(1);
        progress.finish();
        let model = SavedModel { embedder: p.spec, classifiers };
        Ok(Fitted {
            model,
            metrics: vec![
                ("training queries".into(), p.set.len().to_string()),
                ("embedder".into(), p.embedder.id()),
                ("loss".into(), format!("{:?}, C = {}", h.loss, h.c)),
                ("fit".into(), quality),
            ],
        })
    }
}

/// Mean log loss of the calibrated probabilities against the measured scores on `rows`.
fn log_loss(classifiers: &[Classifier], x: &[Vec<(u32, f32)>], scores: &[Vec<f32>], rows: &[usize]) -> f64 {
    let (mut total, mut n) = (0.0f64, 0usize);
    for &i in rows {
        for (c, &t) in classifiers.iter().zip(&scores[i]) {
            if t.is_nan() {
                continue;
            }
            let q = sigmoid(f64::from(c.platt_a * c.svm.margin(&x[i]) + c.platt_c)).clamp(1e-7, 1.0 - 1e-7);
            total -= f64::from(t) * q.ln() + (1.0 - f64::from(t)) * (1.0 - q).ln();
            n += 1;
        }
    }
    total / n.max(1) as f64
}

llmrouter_core::register_router! {
    router: SvmRouter,
    name: "svmrouter",
    summary: "One linear classifier per model (logistic regression or SVM) on the query embedding; cost-aware",
    docs: include_str!("../README.md"),
    trainer: SvmTrainer,
}
