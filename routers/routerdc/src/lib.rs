//! `routerdc`: RouterDC (Chen et al., NeurIPS 2024), a query encoder and one learned embedding
//! per candidate, trained by dual contrastive learning, in candle on CPU.
//!
//! The encoder maps a query's embedding `x` (the config's `embedding:`, folded to `input_dim`
//! buckets when wider) to `q(x) = W2 tanh(W1 x + b1) + b2`; each candidate `m` has a learned
//! vector `k_m`; their affinity is `sim(x, m) = cos(q(x), k_m)` (or the inner product). Training
//! ([`train`]) minimises the sample-LLM contrastive loss, which pulls a query towards its `top_k`
//! best candidates and pushes it from its `last_k` worst, plus the cluster contrastive loss,
//! which pulls a query towards another of its k-means cluster and pushes it from `H` queries of
//! other clusters (and, with `sample_loss_weight`, the same over tasks).
//!
//! RouterDC picks `argmax_m sim(x, m)`. To weigh quality against cost, the similarity is mapped
//! to a predicted score by one increasing logistic map, `sigmoid(a sim + b)`, fitted on the
//! training rows; it keeps RouterDC's pick at cost weight 0.

use std::path::Path;

use llmrouter_core::embed::EmbedderSpec;
use llmrouter_core::learn::F32s;
use llmrouter_core::learn::fold;
use llmrouter_core::model::all_finite;
use llmrouter_core::{FitTrainer, MetaRouter, Result, ScorePredictor, ScoreRouter};
use serde::{Deserialize, Serialize};

mod train;

/// How a query's encoding is compared with a candidate's embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Similarity {
    /// Cosine similarity (LLMRouter's default, `cos`).
    #[serde(rename = "cos")]
    Cosine,
    /// Inner product (`inner`).
    #[serde(rename = "inner")]
    Inner,
}

/// `hparam` of routerdc: LLMRouter's names; the defaults that differ from LLMRouter's are
/// explained in the README.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hparams {
    /// Width of the query encoding and the candidate embeddings (default 64; LLMRouter 768,
    /// mDeBERTa's width).
    pub hidden_state_dim: usize,
    /// `cos` or `inner` (default `cos`).
    pub similarity_function: Similarity,
    /// Queries per step (default 32).
    pub batch_size: usize,
    /// Optimisation steps (default 3000; LLMRouter 500, fine-tuning a pretrained encoder).
    pub training_steps: usize,
    /// AdamW learning rate (default 0.005; LLMRouter 5e-5, for a pretrained encoder).
    pub learning_rate: f64,
    /// AdamW weight decay (default 0).
    pub weight_decay: f64,
    /// Best candidates a query is pulled towards (default 3).
    pub top_k: usize,
    /// Worst candidates a query is pushed from (default 3).
    pub last_k: usize,
    /// Temperature of both contrastive losses (default 0.2; LLMRouter 1.0).
    pub temperature: f64,
    /// Weight of the sample-sample loss over tasks (default 0, as LLMRouter).
    pub sample_loss_weight: f64,
    /// Weight of the cluster contrastive loss (default 1, as LLMRouter).
    pub cluster_loss_weight: f64,
    /// Queries of other groups each query is pushed from (default 3, as LLMRouter).
    #[serde(rename = "H")]
    pub h: usize,
    /// k-means clusters of the training queries (default 3, as LLMRouter).
    pub n_clusters: usize,
    /// Steps between held-out evaluations; the best evaluated state is kept (default 100).
    pub eval_steps: usize,
    /// Share of training queries held out to pick the best state (default 0.1).
    pub validation_fraction: f64,
    /// Sparse embeddings wider than this are folded (index mod `input_dim`) (default 4096).
    pub input_dim: usize,
    /// Seed (default 1, as LLMRouter).
    pub seed: u64,
}

impl Default for Hparams {
    fn default() -> Self {
        Hparams {
            hidden_state_dim: 64,
            similarity_function: Similarity::Cosine,
            batch_size: 32,
            training_steps: 3000,
            learning_rate: 0.005,
            weight_decay: 0.0,
            top_k: 3,
            last_k: 3,
            temperature: 0.2,
            sample_loss_weight: 0.0,
            cluster_loss_weight: 1.0,
            h: 3,
            n_clusters: 3,
            eval_steps: 100,
            validation_fraction: 0.1,
            input_dim: 4096,
            seed: 1,
        }
    }
}

/// The saved model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedModel {
    embedder: EmbedderSpec,
    input_dim: usize,
    hidden: usize,
    similarity: Similarity,
    /// First encoder layer, input_dim x hidden.
    w1: F32s,
    /// Its bias, hidden.
    b1: F32s,
    /// Second encoder layer, hidden x hidden (input-major: `out_k = sum_j h_j w2[j][k]`).
    w2: F32s,
    /// Its bias, hidden.
    b2: F32s,
    /// Candidate embeddings, candidates x hidden (unit-normalised for cosine).
    llm: F32s,
    /// The score map `sigmoid(a sim + b)`: `[a, b]`, `a > 0`.
    score_map: [f32; 2],
}

impl SavedModel {
    /// The query's encoding `q(x)`, for an `x` already folded to `input_dim`.
    fn encode(&self, x: &[(u32, f32)]) -> Vec<f32> {
        let h = self.hidden;
        let mut first = self.b1.0.clone();
        for &(j, v) in x {
            let row = &self.w1.0[j as usize * h..(j as usize + 1) * h];
            for (acc, w) in first.iter_mut().zip(row) {
                *acc += v * w;
            }
        }
        let mut out = self.b2.0.clone();
        for (a, row) in first.iter().zip(self.w2.0.chunks(h)) {
            let a = a.tanh();
            for (o, w) in out.iter_mut().zip(row) {
                *o += a * w;
            }
        }
        out
    }

    /// `sim(x, m)` for every candidate, for an `x` already folded.
    fn similarities(&self, x: &[(u32, f32)]) -> Vec<f32> {
        let q = self.encode(x);
        let scale = match self.similarity {
            Similarity::Cosine => 1.0 / (q.iter().map(|v| v * v).sum::<f32>().sqrt() + 1e-8),
            Similarity::Inner => 1.0,
        };
        self.llm.0.chunks(self.hidden).map(|k| k.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>() * scale).collect()
    }

    /// The predicted score of every candidate.
    fn scores(&self, x: &[(u32, f32)]) -> Vec<f32> {
        let [a, b] = self.score_map;
        self.similarities(x).into_iter().map(|s| 1.0 / (1.0 + (-(a * s + b)).exp())).collect()
    }
}

/// The trained model: the [`ScorePredictor`] of this router.
pub struct Dc {
    model: SavedModel,
}

/// The router.
pub type RouterDc = ScoreRouter<Dc>;
/// Its trainer.
pub type RouterDcTrainer = FitTrainer<Dc>;

impl ScorePredictor for Dc {
    type Model = SavedModel;

    fn embedder_spec(model: &SavedModel) -> Option<&EmbedderSpec> {
        Some(&model.embedder)
    }

    fn from_model(model: SavedModel, meta: &MetaRouter, path: &Path, _dim: usize) -> Result<Self> {
        let h = model.hidden;
        let sizes_match = h > 0
            && model.input_dim > 0
            && model.input_dim.checked_mul(h) == Some(model.w1.0.len())
            && model.b1.0.len() == h
            && h.checked_mul(h) == Some(model.w2.0.len())
            && model.b2.0.len() == h
            && meta.candidates.len().checked_mul(h) == Some(model.llm.0.len());
        if !sizes_match {
            return Err(meta.damaged(path, "array sizes do not match the candidates, input_dim and hidden"));
        }
        let arrays = [&model.w1.0, &model.b1.0, &model.w2.0, &model.b2.0, &model.llm.0];
        if !arrays.iter().all(|a| all_finite(a.as_slice())) || !all_finite(&model.score_map) {
            return Err(meta.damaged(path, "a weight is not a finite number"));
        }
        if model.score_map[0] <= 0.0 {
            return Err(meta.damaged(path, "`score_map[0]` (the slope of the score map) must be positive"));
        }
        Ok(Dc { model })
    }

    fn scores(&self, x: &[(u32, f32)]) -> Vec<f32> {
        self.model.scores(&fold(x, self.model.input_dim))
    }
}

llmrouter_core::register_router! {
    router: RouterDc,
    name: "routerdc",
    summary: "RouterDC: query encoder + learned model embeddings, dual contrastive loss (candle); cost-aware",
    docs: include_str!("../README.md"),
    aliases: ["dcrouter"],
    trainer: RouterDcTrainer,
}
