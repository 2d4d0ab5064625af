//! `svmrouter`: one linear SVM per candidate model on the query embedding, predicting whether the
//! model answers well (score >= 0.5), with Platt-scaled probabilities used as predicted scores;
//! the decision follows `metric.weights`.
//!
//! Training holds out a seeded `calibration_fraction` of the queries, fits each SVM on the rest,
//! fits Platt scaling (`sigmoid(a * margin + c)` against the held-out scores, so that the
//! probability estimates the expected score) on the held-out part, then refits the SVMs on all
//! queries and keeps the calibration.

use std::path::PathBuf;
use std::sync::Arc;

use llmrouter_core::embed::{Embedder, EmbedderSpec, embed_queries_sparse};
use llmrouter_core::learn::{CostModel, Predictions, par_chunks, prepare};
use llmrouter_core::linear::{self, Linear, Loss, sigmoid};
use llmrouter_core::{
    Device, Error, MetaRouter, MetricWeights, Progress, QueryInput, Result, RouteDecision, Router, TrainReport,
    Trainer, model_file,
};
use serde::{Deserialize, Serialize};

const NAME: &str = "svmrouter";

/// `hparam` of svmrouter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hparams {
    /// Only `linear` is supported (default).
    pub kernel: String,
    /// Inverse regularisation strength, as in scikit-learn's SVC (default 1.0).
    #[serde(rename = "C")]
    pub c: f64,
    /// SGD passes over the data (default 15).
    pub epochs: usize,
    /// Share of queries held out to fit the probability calibration (default 0.2).
    pub calibration_fraction: f64,
    /// Seed of the SGD order and the hold-out split (default 42).
    pub seed: u64,
}

impl Default for Hparams {
    fn default() -> Self {
        Hparams { kernel: "linear".into(), c: 1.0, epochs: 15, calibration_fraction: 0.2, seed: 42 }
    }
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

/// The router.
pub struct SvmRouter {
    model: SavedModel,
    embedder: Arc<dyn Embedder>,
    costs: CostModel,
    metric: MetricWeights,
    names: Vec<String>,
}

impl Router for SvmRouter {
    fn from_meta(meta: MetaRouter) -> Result<Self> {
        let path = meta.config.load_model_path(NAME)?;
        let model: SavedModel = model_file::load(&path, NAME, &meta.candidates.names())?;
        let embedder = llmrouter_core::embed::from_spec(&model.embedder, &meta.config, &path)?;
        if model.classifiers.len() != meta.candidates.len()
            || model.classifiers.iter().any(|c| c.svm.w.len() != embedder.dim())
        {
            return Err(Error::model(&path, "corrupted: classifier shapes do not match the candidates and embedder"));
        }
        Ok(SvmRouter {
            model,
            embedder,
            costs: CostModel::from_meta(&meta),
            metric: meta.config.metric,
            names: meta.candidates.names().into_iter().map(String::from).collect(),
        })
    }

    fn route_single(&self, query: &QueryInput) -> Result<RouteDecision> {
        Ok(self.route_batch(std::slice::from_ref(query))?.remove(0))
    }

    fn route_batch(&self, queries: &[QueryInput]) -> Result<Vec<RouteDecision>> {
        let p = self.predict(queries)?.ok_or_else(|| Error::router(NAME, "no predictions"))?;
        Ok(p.decide_all(NAME, queries, self.metric))
    }

    fn predict(&self, queries: &[QueryInput]) -> Result<Option<Predictions>> {
        for q in queries {
            q.check(NAME)?;
        }
        let x = embed_queries_sparse(self.embedder.as_ref(), queries, &llmrouter_core::NoProgress)?;
        let scores = par_chunks(&x, |part| {
            part.iter()
                .map(|v| {
                    let s = v;
                    self.model
                        .classifiers
                        .iter()
                        .map(|c| sigmoid(f64::from(c.platt_a * c.svm.margin(s) + c.platt_c)) as f32)
                        .collect()
                })
                .collect()
        });
        let costs = queries.iter().map(|q| self.costs.estimate(&q.query)).collect();
        Ok(Some(Predictions { models: self.names.clone(), scores, costs }))
    }
}

/// Trains the per-model SVMs and their calibration.
pub struct SvmTrainer {
    meta: MetaRouter,
    hparams: Hparams,
    save_path: PathBuf,
}

impl Trainer for SvmTrainer {
    fn from_meta(meta: MetaRouter, _device: Device) -> Result<Self> {
        let hparams: Hparams = meta.config.hparams()?;
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
        if !(0.05..0.9).contains(&hparams.calibration_fraction) {
            return Err(meta.config.key_error("hparam.calibration_fraction", "must be between 0.05 and 0.9"));
        }
        let save_path = meta.config.save_model_path_for(NAME)?;
        Ok(SvmTrainer { meta, hparams, save_path })
    }

    fn train(&mut self, progress: &dyn Progress) -> Result<TrainReport> {
        let p = prepare(&self.meta, progress)?;
        let h = &self.hparams;
        let x: Vec<Vec<(u32, f32)>> = p.x.clone();
        let dim = p.embedder.dim();
        let models = p.set.models.len();
        let (fit_rows, cal_rows) = p.set.split(h.calibration_fraction, h.seed);
        let lambda_all = 1.0 / (h.c * x.len() as f64);
        let lambda_fit = 1.0 / (h.c * fit_rows.len().max(1) as f64);
        progress.begin(models as u64, "training one SVM per model");
        let mut classifiers = Vec::with_capacity(models);
        let mut cal_loss = 0.0f64;
        for m in 0..models {
            let targets: Vec<f32> = p.set.scores.iter().map(|r| r[m]).collect();
            let seed = h.seed.wrapping_add(m as u64);
            let fit_x: Vec<Vec<(u32, f32)>> = fit_rows.iter().map(|&i| x[i].clone()).collect();
            let fit_t: Vec<f32> = fit_rows.iter().map(|&i| targets[i]).collect();
            let svm = linear::train(&fit_x, &fit_t, dim, Loss::Hinge, lambda_fit, h.epochs, seed);
            let margins: Vec<f32> = cal_rows.iter().map(|&i| svm.margin(&x[i])).collect();
            let cal_t: Vec<f32> = cal_rows.iter().map(|&i| targets[i]).collect();
            let (a, c) = linear::platt(&margins, &cal_t);
            for (mg, t) in margins.iter().zip(&cal_t).filter(|(_, t)| !t.is_nan()) {
                let q = sigmoid(f64::from(a * mg + c)).clamp(1e-7, 1.0 - 1e-7);
                cal_loss -= f64::from(*t) * q.ln() + (1.0 - f64::from(*t)) * (1.0 - q).ln();
            }
            let svm = linear::train(&x, &targets, dim, Loss::Hinge, lambda_all, h.epochs, seed);
            classifiers.push(Classifier { svm, platt_a: a, platt_c: c });
            progress.advance(1);
        }
        progress.finish();
        let model = SavedModel { embedder: p.spec, classifiers };
        model_file::save(&self.save_path, NAME, &self.meta.candidates.names(), &model)?;
        Ok(TrainReport {
            model_path: self.save_path.clone(),
            metrics: vec![
                ("training queries".into(), x.len().to_string()),
                ("embedder".into(), p.embedder.id()),
                (
                    "calibration log loss".into(),
                    format!(
                        "{:.4} per (query, model) on {} held-out queries",
                        cal_loss / (cal_rows.len() * models).max(1) as f64,
                        cal_rows.len()
                    ),
                ),
            ],
        })
    }
}

llmrouter_core::register_router! {
    router: SvmRouter,
    name: "svmrouter",
    summary: "One linear SVM per model on the query embedding, Platt-calibrated scores; cost-aware",
    docs: include_str!("../README.md"),
    trainer: SvmTrainer,
}
