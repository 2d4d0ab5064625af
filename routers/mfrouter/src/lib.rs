//! `mfrouter`: RouteLLM's matrix-factorisation router (Ong et al., 2024), for any number of
//! models, trained with candle.
//!
//! Each model `m` has a learned vector `v_m` (unit-normalised); a query's embedding `x` is
//! projected to the same space by a learned matrix `W`; the model's strength on the query is
//! `z_m(x) = c . (v_m * W x)` with a learned `c`. Training sees every pair of models that scored
//! differently on a training query as "winner beat loser" and minimises the logistic loss
//! `-log sigmoid(z_winner - z_loser)` with AdamW: candle's for `v` and `c`, and for the sparse
//! projection `W` `llmrouter_core::learn::nn::SparseLayer` (lazy Adam over the rows a batch touches). The predicted quality of model `m` on a query is
//! its expected win rate against the others, `mean_{k != m} sigmoid(z_m - z_k)`, which the
//! decision weighs against cost with `metric.weights`.

use std::path::Path;

use llmrouter_core::embed::EmbedderSpec;
use llmrouter_core::learn::nn::candle_core::{D, Device as CDevice, Tensor, Var};
use llmrouter_core::learn::nn::candle_nn::{AdamW, Optimizer, ParamsAdamW};
use llmrouter_core::learn::nn::{SparseAdam, SparseLayer, err, leaf, leaf_grad, param, values};
use llmrouter_core::learn::{F32s, fold};
use llmrouter_core::model::all_finite;
use llmrouter_core::rng::SplitMix64;
use llmrouter_core::router::prepare;
use llmrouter_core::{Fit, FitTrainer, Fitted, MetaRouter, Progress, Result, ScorePredictor, ScoreRouter};
use serde::{Deserialize, Serialize};

/// `hparam` of mfrouter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hparams {
    /// Dimension of the model vectors and the query projection (default 64).
    pub latent_dim: usize,
    /// AdamW learning rate (default 0.001).
    pub lr: f64,
    /// AdamW weight decay (default 0.00001).
    pub weight_decay: f64,
    /// Maximum epochs over the training pairs (default 12).
    pub epochs: usize,
    /// Pairs per mini-batch (default 128).
    pub batch_size: usize,
    /// Share of training queries held out to pick the best epoch (default 0.1).
    pub validation_fraction: f64,
    /// Epochs without held-out improvement before stopping (default 4).
    pub patience: usize,
    /// Sparse embeddings wider than this are folded (index mod `input_dim`) (default 4096).
    pub input_dim: usize,
    /// Seed (default 42).
    pub seed: u64,
}

impl Default for Hparams {
    fn default() -> Self {
        Hparams {
            latent_dim: 64,
            lr: 0.001,
            weight_decay: 1e-5,
            epochs: 12,
            batch_size: 128,
            validation_fraction: 0.1,
            patience: 4,
            input_dim: 4096,
            seed: 42,
        }
    }
}

/// The saved model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedModel {
    embedder: EmbedderSpec,
    input_dim: usize,
    latent_dim: usize,
    /// Unit-normalised model vectors, models x latent_dim.
    model_vectors: F32s,
    /// Projection, input_dim x latent_dim.
    projection: F32s,
    /// Classifier weights, latent_dim.
    classifier: F32s,
}

impl SavedModel {
    /// `z_m(x)` for every model.
    fn strengths(&self, x: &[(u32, f32)]) -> Vec<f32> {
        let d = self.latent_dim;
        let mut proj = vec![0.0f32; d];
        for (j, v) in fold(x, self.input_dim) {
            let row = &self.projection.0[j as usize * d..(j as usize + 1) * d];
            for (p, w) in proj.iter_mut().zip(row) {
                *p += v * w;
            }
        }
        self.model_vectors
            .0
            .chunks(d)
            .map(|mv| mv.iter().zip(&proj).zip(&self.classifier.0).map(|((a, b), c)| a * b * c).sum())
            .collect()
    }

    /// Expected win rate of each model against the others.
    fn win_rates(&self, x: &[(u32, f32)]) -> Vec<f32> {
        let z = self.strengths(x);
        let m = z.len();
        (0..m)
            .map(|i| {
                let s: f32 = (0..m).filter(|&k| k != i).map(|k| 1.0 / (1.0 + (z[k] - z[i]).exp())).sum();
                if m > 1 { s / (m - 1) as f32 } else { 0.5 }
            })
            .collect()
    }
}

/// The trained model: the [`ScorePredictor`] of this router.
pub struct Mf {
    model: SavedModel,
}

/// The router.
pub type MfRouter = ScoreRouter<Mf>;
/// Its trainer.
pub type MfTrainer = FitTrainer<Mf>;

impl ScorePredictor for Mf {
    type Model = SavedModel;

    fn embedder_spec(model: &SavedModel) -> Option<&EmbedderSpec> {
        Some(&model.embedder)
    }

    fn from_model(model: SavedModel, meta: &MetaRouter, path: &Path, _dim: usize) -> Result<Self> {
        let d = model.latent_dim;
        if d == 0
            || model.input_dim == 0
            || meta.candidates.len().checked_mul(d) != Some(model.model_vectors.0.len())
            || model.input_dim.checked_mul(d) != Some(model.projection.0.len())
            || model.classifier.0.len() != d
        {
            return Err(meta.damaged(path, "array sizes do not match the candidates and latent_dim"));
        }
        if !(all_finite(&model.model_vectors.0) && all_finite(&model.projection.0) && all_finite(&model.classifier.0)) {
            return Err(meta.damaged(path, "a weight is not a finite number"));
        }
        Ok(Mf { model })
    }

    fn scores(&self, v: &[(u32, f32)]) -> Vec<f32> {
        self.model.win_rates(v)
    }
}

struct Net {
    vectors: Var,
    projection: SparseLayer,
    classifier: Var,
}

impl Net {
    /// `z_winner - z_loser` for a batch of (query, winner, loser), given the queries' projection.
    fn margins(&self, proj: &Tensor, winners: &Tensor, losers: &Tensor) -> Result<Tensor> {
        let side = |ids: &Tensor| -> Result<Tensor> {
            let v = self.vectors.as_tensor().index_select(ids, 0).map_err(err)?;
            let norm = v.sqr().map_err(err)?.sum_keepdim(D::Minus1).map_err(err)?.sqrt().map_err(err)?;
            let v = v.broadcast_div(&(norm + 1e-8).map_err(err)?).map_err(err)?;
            (v * proj).map_err(err)?.matmul(self.classifier.as_tensor()).map_err(err)
        };
        (side(winners)? - side(losers)?).map_err(err)
    }

    /// One optimisation step on a batch of (query row, winner, loser); returns the loss.
    fn step(
        &mut self,
        opt: &mut AdamW,
        batch: &[(u32, u32, u32)],
        x: &[Vec<(u32, f32)>],
        dev: &CDevice,
    ) -> Result<f32> {
        let refs: Vec<&[(u32, f32)]> = batch.iter().map(|(r, _, _)| x[*r as usize].as_slice()).collect();
        let ids = |k: fn(&(u32, u32, u32)) -> u32| {
            Tensor::from_vec(batch.iter().map(k).collect::<Vec<u32>>(), batch.len(), dev).map_err(err)
        };
        let (winners, losers) = (ids(|p| p.1)?, ids(|p| p.2)?);
        let proj = leaf(self.projection.forward(&refs), refs.len(), self.projection.outputs(), dev)?;
        let loss = pair_loss(&self.margins(proj.as_tensor(), &winners, &losers)?)?;
        let grads = loss.backward().map_err(err)?;
        opt.step(&grads).map_err(err)?;
        self.projection.step(&refs, &leaf_grad(&grads, &proj)?);
        loss.to_scalar::<f32>().map_err(err)
    }

    fn snapshot(&self, embedder: &EmbedderSpec, input_dim: usize, latent_dim: usize) -> Result<SavedModel> {
        let v = self.vectors.as_tensor();
        let norm = v.sqr().map_err(err)?.sum_keepdim(D::Minus1).map_err(err)?.sqrt().map_err(err)?;
        let v = v.broadcast_div(&(norm + 1e-8).map_err(err)?).map_err(err)?;
        Ok(SavedModel {
            embedder: embedder.clone(),
            input_dim,
            latent_dim,
            model_vectors: F32s(values(&v)?),
            projection: F32s(self.projection.weights()),
            classifier: F32s(values(self.classifier.as_tensor())?),
        })
    }
}

/// softplus(-d) = -log sigmoid(d), computed stably.
fn pair_loss(d: &Tensor) -> Result<Tensor> {
    let neg = d.neg().map_err(err)?;
    let soft =
        ((d.abs().map_err(err)?.neg().map_err(err)?.exp().map_err(err)? + 1.0).map_err(err)?.log()).map_err(err)?;
    (neg.relu().map_err(err)? + soft).map_err(err)?.mean_all().map_err(err)
}

fn routed_score(model: &SavedModel, x: &[Vec<(u32, f32)>], scores: &[Vec<f32>], rows: &[usize]) -> f32 {
    let total: f32 = rows
        .iter()
        .map(|&r| {
            let pred = model.strengths(&x[r]);
            let pick = (0..pred.len())
                .filter(|&m| !scores[r][m].is_nan())
                .max_by(|&a, &b| pred[a].total_cmp(&pred[b]).then(b.cmp(&a)));
            pick.map_or(0.0, |m| scores[r][m])
        })
        .sum();
    total / rows.len().max(1) as f32
}

impl Fit for Mf {
    type Hparams = Hparams;
    type Saved = SavedModel;

    fn check(meta: &MetaRouter, hparams: &Hparams) -> Result<()> {
        for (key, ok) in [
            ("hparam.latent_dim", hparams.latent_dim > 0),
            ("hparam.lr", hparams.lr > 0.0 && hparams.lr.is_finite()),
            ("hparam.weight_decay", hparams.weight_decay >= 0.0),
            ("hparam.epochs", hparams.epochs > 0),
            ("hparam.batch_size", hparams.batch_size > 0),
            ("hparam.input_dim", hparams.input_dim >= 16),
            ("hparam.validation_fraction", (0.0..0.9).contains(&hparams.validation_fraction)),
        ] {
            if !ok {
                return Err(meta.config.key_error(key, "value out of range (see the router README)"));
            }
        }
        Ok(())
    }

    fn fit(meta: &MetaRouter, hparams: &Hparams, progress: &dyn Progress) -> Result<Fitted<SavedModel>> {
        let p = prepare(meta, progress)?;
        let h = hparams;
        let dev = CDevice::Cpu;
        let models = p.set.models.len();
        let input_dim = p.embedder.dim().min(h.input_dim);
        let x: Vec<Vec<(u32, f32)>> = p.x.iter().map(|v| fold(v, input_dim)).collect();
        let (train_rows, val_rows) = p.set.split(h.validation_fraction, h.seed);
        let mut pairs: Vec<(u32, u32, u32)> = Vec::new();
        for &r in &train_rows {
            let s = &p.set.scores[r];
            for a in 0..models {
                for b in 0..models {
                    if !s[a].is_nan() && !s[b].is_nan() && s[a] > s[b] {
                        pairs.push((r as u32, a as u32, b as u32));
                    }
                }
            }
        }
        if pairs.is_empty() {
            return Err(meta.error("no training query where two models scored differently: nothing to learn"));
        }
        let mut rng = SplitMix64::new(h.seed);
        let vectors = param(&mut rng, &[models, h.latent_dim], 1.0, &dev)?;
        let projection =
            SparseLayer::new(&mut rng, input_dim, h.latent_dim, 0.5, SparseAdam::new(h.lr, h.weight_decay));
        let classifier = param(&mut rng, &[h.latent_dim, 1], (1.0 / h.latent_dim as f64).sqrt(), &dev)?;
        let mut net = Net { vectors, projection, classifier };
        let vars = vec![net.vectors.clone(), net.classifier.clone()];
        let mut opt = AdamW::new(vars, ParamsAdamW { lr: h.lr, weight_decay: h.weight_decay, ..Default::default() })
            .map_err(err)?;
        let mut best: Option<(f32, usize, SavedModel)> = None;
        let mut epochs_run = 0;
        progress.begin(h.epochs as u64, "training matrix factorisation");
        for epoch in 1..=h.epochs {
            epochs_run = epoch;
            rng.shuffle(&mut pairs);
            let mut total = 0.0f64;
            for batch in pairs.chunks(h.batch_size) {
                total += f64::from(net.step(&mut opt, batch, &x, &dev)?) * batch.len() as f64;
            }
            let snapshot = net.snapshot(&p.spec, input_dim, h.latent_dim)?;
            let score = if val_rows.is_empty() { 0.0 } else { routed_score(&snapshot, &x, &p.set.scores, &val_rows) };
            progress.set_message(&format!(
                "epoch {epoch}: pair loss {:.4}, held-out pick score {score:.4}",
                total / pairs.len() as f64
            ));
            progress.advance(1);
            if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
                best = Some((score, epoch, snapshot));
            }
            if best.as_ref().is_some_and(|(_, e, _)| epoch - e >= h.patience) {
                break;
            }
        }
        progress.finish();
        let Some((val_score, best_epoch, model)) = best else { return Err(meta.error("no epoch ran")) };
        Ok(Fitted {
            model,
            metrics: vec![
                ("training queries".into(), format!("{} ({} held out)", p.set.len(), val_rows.len())),
                ("training pairs".into(), pairs.len().to_string()),
                ("embedder".into(), p.embedder.id()),
                ("best epoch".into(), format!("{best_epoch} of {epochs_run} run")),
                ("held-out mean score of the picks".into(), format!("{val_score:.4}")),
            ],
        })
    }
}

llmrouter_core::register_router! {
    router: MfRouter,
    name: "mfrouter",
    summary: "RouteLLM matrix factorisation: model vectors x projected query, pairwise winner-loser loss (candle); cost-aware",
    docs: include_str!("../README.md"),
    trainer: MfTrainer,
}
