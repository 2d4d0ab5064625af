//! Routers that predict each candidate's score, written once: a router crate implements
//! [`ScorePredictor`] (its model and how it scores one embedded query) and [`Fit`] (how it
//! trains), and gets [`ScoreRouter`] as its [`Router`] and [`FitTrainer`] as its [`Trainer`]:
//!
//! ```ignore
//! pub type KnnRouter = llmrouter_core::ScoreRouter<Knn>;
//! pub type KnnTrainer = llmrouter_core::FitTrainer<Knn>;
//! ```
//!
//! [`ScoreRouter`] loads the model file once (through [`MetaRouter::load_model`]), rejects empty
//! queries, embeds them (a precomputed `embedding` is used as is), predicts every query's scores
//! on all cores ([`par_chunks`]: a panicking worker is an error naming the router), estimates
//! each candidate's cost and decides by the cost-aware rule of [`crate::decision`].

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::MetricWeights;
use crate::decision::{CostModel, Predictions};
use std::sync::Arc;

use crate::embed::{Embedder, EmbedderSpec, embed_queries_sparse, from_spec};
use crate::error::{Error, Result};
use crate::learn::par_chunks;
use crate::meta::MetaRouter;
use crate::progress::{NoProgress, Progress};
use crate::query::{QueryInput, RouteDecision};
use crate::router::{Device, Router, TrainReport, Trainer};

/// A router that predicts a score per candidate for each query.
pub trait ScorePredictor: Send + Sync + Sized + 'static {
    /// The payload of its model file.
    type Model: DeserializeOwned;

    /// The embedder the model was trained with, as the model stores it; `None` for a router that
    /// does not read the text. [`ScoreRouter`] rebuilds it ([`crate::embed::from_spec`]) and
    /// embeds every query with it.
    fn embedder_spec(model: &Self::Model) -> Option<&EmbedderSpec>;

    /// Builds the predictor from its loaded model, checking every shape against the candidates
    /// and `dim`, the rebuilt embedder's vector length (0 without an embedder); `path` is the
    /// model file, for errors.
    fn from_model(model: Self::Model, meta: &MetaRouter, path: &Path, dim: usize) -> Result<Self>;

    /// The candidates (indices in candidate order) the scores are for; `None` (the default) for
    /// all of them.
    fn columns(&self) -> Option<Vec<usize>> {
        None
    }

    /// The predicted score of each column for one query's sparse embedding (empty when
    /// [`ScorePredictor::embedder_spec`] is `None`).
    fn scores(&self, x: &[(u32, f32)]) -> Vec<f32>;

    /// The decision for one query; by default the cost-aware rule ([`Decide::by_rule`]).
    fn decide(&self, d: Decide<'_>) -> RouteDecision {
        d.by_rule()
    }
}

/// What [`ScorePredictor::decide`] decides from.
#[derive(Debug, Clone, Copy)]
pub struct Decide<'a> {
    /// The router's name.
    pub router: &'a str,
    /// The query.
    pub query: &'a QueryInput,
    /// Its sparse embedding (empty for routers without an embedder).
    pub x: &'a [(u32, f32)],
    /// The predictions of the whole batch.
    pub predictions: &'a Predictions,
    /// The query's row in `predictions`.
    pub index: usize,
    /// `metric.weights`.
    pub weights: MetricWeights,
}

impl Decide<'_> {
    /// The cost-aware rule: best `w_perf * score - w_cost * normalised cost`, with the evidence.
    pub fn by_rule(&self) -> RouteDecision {
        self.predictions.decide(self.router, self.query, self.index, self.weights)
    }
}

/// The [`Router`] of every [`ScorePredictor`].
pub struct ScoreRouter<P> {
    predictor: P,
    embedder: Option<Arc<dyn Embedder>>,
    router: String,
    costs: CostModel,
    metric: MetricWeights,
    /// Names of the predicted columns.
    names: Vec<String>,
    columns: Option<Vec<usize>>,
}

impl<P: ScorePredictor> ScoreRouter<P> {
    /// The predictor inside.
    pub fn predictor(&self) -> &P {
        &self.predictor
    }

    /// Rejects empty queries, then embeds them sparsely.
    fn inputs(&self, queries: &[QueryInput]) -> Result<Vec<Vec<(u32, f32)>>> {
        for q in queries {
            q.check(&self.router)?;
        }
        match &self.embedder {
            Some(e) => embed_queries_sparse(e.as_ref(), queries, &NoProgress).map_err(|e| match e {
                Error::WorkerPanicked { stage, message } => {
                    Error::WorkerPanicked { stage: format!("{}: {stage}", self.router), message }
                }
                other => other,
            }),
            None => Ok(vec![Vec::new(); queries.len()]),
        }
    }

    fn predictions(&self, queries: &[QueryInput], x: &[Vec<(u32, f32)>]) -> Result<Predictions> {
        let stage = format!("{}: predicting scores", self.router);
        let scores = par_chunks(&stage, x, |part| Ok(part.iter().map(|v| self.predictor.scores(v)).collect()))?;
        let costs = queries
            .iter()
            .map(|q| {
                let all = self.costs.estimate(&q.query);
                match &self.columns {
                    Some(cols) => cols.iter().map(|&k| all[k]).collect(),
                    None => all,
                }
            })
            .collect();
        Ok(Predictions { models: self.names.clone(), scores, costs })
    }
}

impl<P: ScorePredictor> Router for ScoreRouter<P> {
    fn from_meta(meta: MetaRouter) -> Result<Self> {
        let (model, path) = meta.load_model::<P::Model>()?;
        let embedder = P::embedder_spec(&model).map(|spec| from_spec(spec, &meta.config, &path)).transpose()?;
        let dim = embedder.as_ref().map_or(0, |e| e.dim());
        let predictor = P::from_model(model, &meta, &path, dim)?;
        let all = meta.candidates.names();
        let columns = predictor.columns();
        let names = match &columns {
            Some(cols) => {
                if cols.iter().any(|&k| k >= all.len()) {
                    return Err(Error::model(&path, "corrupted: predicts for a candidate the config does not have"));
                }
                cols.iter().map(|&k| all[k].to_owned()).collect()
            }
            None => all.iter().map(|&n| n.to_owned()).collect(),
        };
        Ok(ScoreRouter {
            predictor,
            embedder,
            router: meta.router_name().to_owned(),
            costs: CostModel::from_meta(&meta),
            metric: meta.config.metric,
            names,
            columns,
        })
    }

    fn route_single(&self, query: &QueryInput) -> Result<RouteDecision> {
        self.route_batch(std::slice::from_ref(query))?
            .pop()
            .ok_or_else(|| Error::router(&self.router, "no decision for the query"))
    }

    fn route_batch(&self, queries: &[QueryInput]) -> Result<Vec<RouteDecision>> {
        let x = self.inputs(queries)?;
        let predictions = self.predictions(queries, &x)?;
        Ok(queries
            .iter()
            .zip(&x)
            .enumerate()
            .map(|(index, (query, x))| {
                self.predictor.decide(Decide {
                    router: &self.router,
                    query,
                    x,
                    predictions: &predictions,
                    index,
                    weights: self.metric,
                })
            })
            .collect())
    }

    fn predict(&self, queries: &[QueryInput]) -> Result<Option<Predictions>> {
        let x = self.inputs(queries)?;
        Ok(Some(self.predictions(queries, &x)?))
    }

    fn predicts_scores() -> bool {
        true
    }
}

/// How a router trains: its typed `hparam` section and the fit that turns routing data into the
/// payload of its model file.
pub trait Fit: 'static {
    /// The router's `hparam` section (unknown keys are errors: `#[serde(deny_unknown_fields)]`).
    type Hparams: DeserializeOwned + Default;
    /// The payload it saves.
    type Saved: Serialize;

    /// Checks `hparams` beyond their types (ranges, candidate names); by default nothing.
    fn check(_meta: &MetaRouter, _hparams: &Self::Hparams) -> Result<()> {
        Ok(())
    }

    /// Trains on `meta`'s training split.
    fn fit(meta: &MetaRouter, hparams: &Self::Hparams, progress: &dyn Progress) -> Result<Fitted<Self::Saved>>;
}

/// What a [`Fit`] produced: the payload, and the figures the training report shows.
#[derive(Debug, Clone)]
pub struct Fitted<M> {
    /// The model file's payload.
    pub model: M,
    /// Named figures worth showing, in order.
    pub metrics: Vec<(String, String)>,
}

/// The [`Trainer`] of every [`Fit`]: reads and checks `hparam` when built, fits, and writes the
/// model file atomically with the training fingerprint.
pub struct FitTrainer<F: Fit> {
    meta: MetaRouter,
    hparams: F::Hparams,
    save_path: PathBuf,
}

impl<F: Fit> Trainer for FitTrainer<F> {
    fn from_meta(meta: MetaRouter, _device: Device) -> Result<Self> {
        let hparams: F::Hparams = meta.config.hparams()?;
        F::check(&meta, &hparams)?;
        let save_path = meta.save_model_path()?;
        Ok(FitTrainer { meta, hparams, save_path })
    }

    fn check_config(meta: &MetaRouter) -> Result<()> {
        F::check(meta, &meta.config.hparams()?)
    }

    fn train(&mut self, progress: &dyn Progress) -> Result<TrainReport> {
        let fitted = F::fit(&self.meta, &self.hparams, progress)?;
        self.meta.save_model(&self.save_path, &fitted.model)?;
        Ok(TrainReport { model_path: self.save_path.clone(), metrics: fitted.metrics })
    }
}
