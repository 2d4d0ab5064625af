//! `mlprouter`: a multi-layer perceptron on the query embedding that predicts every candidate's
//! score at once (multi-output regression with sigmoid outputs and masked binary cross-entropy
//! against the measured scores), trained with AdamW; the decision follows `metric.weights`.
//! The sparse first layer is `llmrouter_core::learn::nn::SparseLayer` (lazy Adam over the rows a batch
//! touches), the rest of the network candle tensors with candle's AdamW.
//!
//! Why regression of every model's score rather than classification of the best model: scores
//! can be traded against cost (a classifier's "best model" label has already fixed the trade-off
//! at cost weight 0), ties between several best models need no arbitrary label, and unmeasured
//! (query, model) cells are simply masked out.
//!
//! Training holds out a seeded `validation_fraction` and keeps the weights of the epoch whose
//! picks score best on it (stopping after `patience` epochs without improvement). Inference runs in
//! plain Rust from the saved weights.

use std::path::Path;

use llmrouter_core::embed::EmbedderSpec;
use llmrouter_core::learn::nn::candle_core::{Device as CDevice, Tensor, Var};
use llmrouter_core::learn::nn::candle_nn::{AdamW, Optimizer, ParamsAdamW};
use llmrouter_core::learn::nn::{SparseAdam, SparseLayer, err, leaf, leaf_grad, param, values, zeros};
use llmrouter_core::learn::{F32s, fold};
use llmrouter_core::model::all_finite;
use llmrouter_core::rng::SplitMix64;
use llmrouter_core::router::prepare;
use llmrouter_core::{Fit, FitTrainer, Fitted, MetaRouter, Progress, Result, ScorePredictor, ScoreRouter};
use serde::{Deserialize, Serialize};

/// Hidden-layer activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `max(0, x)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + e^-x)`.
    Logistic,
    /// `x`.
    Identity,
}

impl Activation {
    fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Relu => x.max(0.0),
            Activation::Tanh => x.tanh(),
            Activation::Logistic => 1.0 / (1.0 + (-x).exp()),
            Activation::Identity => x,
        }
    }

    fn tensor(self, t: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Relu => t.relu(),
            Activation::Tanh => t.tanh(),
            Activation::Logistic => llmrouter_core::learn::nn::candle_nn::ops::sigmoid(t),
            Activation::Identity => Ok(t.clone()),
        }
        .map_err(err)
    }
}

/// `hparam` of mlprouter (LLMRouter's keys and defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hparams {
    /// Units per hidden layer (default [128]).
    pub hidden_layer_sizes: Vec<usize>,
    /// `relu` (default), `tanh`, `logistic` or `identity`.
    pub activation: Activation,
    /// AdamW learning rate (default 0.001).
    pub lr: f64,
    /// Maximum epochs (default 15).
    pub epochs: usize,
    /// Mini-batch size (default 32).
    pub batch_size: usize,
    /// AdamW weight decay (default 0.1).
    pub alpha: f64,
    /// Share of training queries held out for early stopping (default 0.1).
    pub validation_fraction: f64,
    /// Epochs without held-out improvement before stopping (default 8).
    pub patience: usize,
    /// Seed of initialisation, shuffling and the hold-out split (default 42).
    pub seed: u64,
    /// Sparse embeddings wider than this are folded (index mod `input_dim`) to bound the first
    /// layer (default 4096).
    pub input_dim: usize,
}

impl Default for Hparams {
    fn default() -> Self {
        Hparams {
            hidden_layer_sizes: vec![128],
            activation: Activation::Relu,
            lr: 0.001,
            epochs: 15,
            batch_size: 32,
            alpha: 0.1,
            validation_fraction: 0.1,
            patience: 8,
            seed: 42,
            input_dim: 4096,
        }
    }
}

/// One dense layer, `inputs x outputs` weights, row-major.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Layer {
    inputs: usize,
    outputs: usize,
    w: F32s,
    b: F32s,
}

/// The saved model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedModel {
    embedder: EmbedderSpec,
    activation: Activation,
    /// First layer (sparse input), hidden layers, output layer (one unit per candidate).
    layers: Vec<Layer>,
}

impl SavedModel {
    /// Predicted scores for one sparse input.
    fn forward(&self, x: &[(u32, f32)]) -> Vec<f32> {
        let first = &self.layers[0];
        let x = &fold(x, first.inputs);
        let mut h = first.b.0.clone();
        for &(j, v) in x {
            let row = &first.w.0[j as usize * first.outputs..(j as usize + 1) * first.outputs];
            for (hk, w) in h.iter_mut().zip(row) {
                *hk += v * w;
            }
        }
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate().skip(1) {
            let input: Vec<f32> = h.iter().map(|x| self.activation.apply(*x)).collect();
            h = layer.b.0.clone();
            for (k, xk) in input.iter().enumerate() {
                let row = &layer.w.0[k * layer.outputs..(k + 1) * layer.outputs];
                for (hj, w) in h.iter_mut().zip(row) {
                    *hj += xk * w;
                }
            }
            if i == last {
                break;
            }
        }
        h.iter().map(|z| 1.0 / (1.0 + (-z).exp())).collect()
    }
}

/// The trained model: the [`ScorePredictor`] of this router.
pub struct Mlp {
    model: SavedModel,
}

/// The router.
pub type MlpRouter = ScoreRouter<Mlp>;
/// Its trainer.
pub type MlpTrainer = FitTrainer<Mlp>;

impl ScorePredictor for Mlp {
    type Model = SavedModel;

    fn embedder_spec(model: &SavedModel) -> Option<&EmbedderSpec> {
        Some(&model.embedder)
    }

    fn from_model(model: SavedModel, meta: &MetaRouter, path: &Path, dim: usize) -> Result<Self> {
        let shapes_ok = !model.layers.is_empty()
            && (1..=dim).contains(&model.layers[0].inputs)
            && model.layers.windows(2).all(|w| w[0].outputs == w[1].inputs)
            && model
                .layers
                .iter()
                .all(|l| l.inputs.checked_mul(l.outputs) == Some(l.w.0.len()) && l.b.0.len() == l.outputs)
            && model.layers.last().is_some_and(|l| l.outputs == meta.candidates.len());
        if !shapes_ok {
            return Err(meta.damaged(path, "layer shapes do not match the embedder and the candidates"));
        }
        if !model.layers.iter().all(|l| all_finite(&l.w.0) && all_finite(&l.b.0)) {
            return Err(meta.damaged(path, "a layer holds a non-finite weight"));
        }
        Ok(Mlp { model })
    }

    fn scores(&self, v: &[(u32, f32)]) -> Vec<f32> {
        self.model.forward(v)
    }
}

struct Net {
    /// The sparse first layer's weights (its bias is `biases[0]`).
    first: SparseLayer,
    /// The dense layers after it.
    weights: Vec<Var>,
    /// One bias per layer, the first layer's included.
    biases: Vec<Var>,
    activation: Activation,
}

impl Net {
    /// The first layer's output without bias, as a candle leaf, for rows `x`.
    fn first(&self, x: &[&[(u32, f32)]], dev: &CDevice) -> Result<Var> {
        leaf(self.first.forward(x), x.len(), self.first.outputs(), dev)
    }

    fn logits(&self, first: &Tensor) -> Result<Tensor> {
        let mut h = first.broadcast_add(self.biases[0].as_tensor()).map_err(err)?;
        for (w, b) in self.weights.iter().zip(&self.biases[1..]) {
            h = self
                .activation
                .tensor(&h)?
                .matmul(w.as_tensor())
                .map_err(err)?
                .broadcast_add(b.as_tensor())
                .map_err(err)?;
        }
        Ok(h)
    }

    /// Masked binary cross-entropy with logits, averaged over measured cells.
    fn loss(&self, first: &Tensor, y: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let z = self.logits(first)?;
        let per = (z.relu().map_err(err)? - (&z * y).map_err(err)?).map_err(err)?;
        let soft =
            ((z.abs().map_err(err)?.neg().map_err(err)?.exp().map_err(err)? + 1.0).map_err(err)?.log()).map_err(err)?;
        let per = ((per + soft).map_err(err)? * mask).map_err(err)?;
        let n = mask.sum_all().map_err(err)?.to_scalar::<f32>().map_err(err)?.max(1.0);
        (per.sum_all().map_err(err)? / f64::from(n)).map_err(err)
    }

    /// One optimisation step on rows `x`; returns the loss.
    fn step(&mut self, opt: &mut AdamW, x: &[&[(u32, f32)]], y: &Tensor, mask: &Tensor) -> Result<f32> {
        let first = self.first(x, y.device())?;
        let loss = self.loss(first.as_tensor(), y, mask)?;
        let grads = loss.backward().map_err(err)?;
        opt.step(&grads).map_err(err)?;
        self.first.step(x, &leaf_grad(&grads, &first)?);
        loss.to_scalar::<f32>().map_err(err)
    }

    fn snapshot(&self) -> Result<Vec<Layer>> {
        let (inputs, outputs) = self.first.shape();
        let mut layers = vec![Layer {
            inputs,
            outputs,
            w: F32s(self.first.weights()),
            b: F32s(values(self.biases[0].as_tensor())?),
        }];
        for (w, b) in self.weights.iter().zip(&self.biases[1..]) {
            let (inputs, outputs) = w.as_tensor().dims2().map_err(err)?;
            layers.push(Layer { inputs, outputs, w: F32s(values(w.as_tensor())?), b: F32s(values(b.as_tensor())?) });
        }
        Ok(layers)
    }
}

/// Mean measured score of the models `model` picks (best predicted score) on `rows`.
fn routed_score(model: &SavedModel, x: &[Vec<(u32, f32)>], scores: &[Vec<f32>], rows: &[usize]) -> f32 {
    let total: f32 = rows
        .iter()
        .map(|&r| {
            let pred = model.forward(&x[r]);
            let pick = (0..pred.len())
                .filter(|&m| !scores[r][m].is_nan())
                .max_by(|&a, &b| pred[a].total_cmp(&pred[b]).then(b.cmp(&a)));
            pick.map_or(0.0, |m| scores[r][m])
        })
        .sum();
    total / rows.len().max(1) as f32
}

/// Targets and mask of `rows` (NaN scores masked out).
fn targets(scores: &[Vec<f32>], rows: &[usize], dev: &CDevice) -> Result<(Tensor, Tensor)> {
    let m = scores.first().map_or(0, Vec::len);
    let mut y = Vec::with_capacity(rows.len() * m);
    let mut mask = Vec::with_capacity(rows.len() * m);
    for &r in rows {
        for &s in &scores[r] {
            y.push(if s.is_nan() { 0.0 } else { s });
            mask.push(if s.is_nan() { 0.0f32 } else { 1.0 });
        }
    }
    Ok((
        Tensor::from_vec(y, (rows.len(), m), dev).map_err(err)?,
        Tensor::from_vec(mask, (rows.len(), m), dev).map_err(err)?,
    ))
}

impl Fit for Mlp {
    type Hparams = Hparams;
    type Saved = SavedModel;

    fn check(meta: &MetaRouter, hparams: &Hparams) -> Result<()> {
        for (key, ok) in [
            ("hparam.hidden_layer_sizes", hparams.hidden_layer_sizes.iter().all(|&n| n > 0)),
            ("hparam.lr", hparams.lr > 0.0 && hparams.lr.is_finite()),
            ("hparam.epochs", hparams.epochs > 0),
            ("hparam.batch_size", hparams.batch_size > 0),
            ("hparam.input_dim", hparams.input_dim >= 16),
            ("hparam.alpha", hparams.alpha >= 0.0),
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
        let mut rng = SplitMix64::new(h.seed);
        let input_dim = p.embedder.dim().min(h.input_dim);
        let x: Vec<Vec<(u32, f32)>> = p.x.iter().map(|v| fold(v, input_dim)).collect();
        let mut sizes = vec![input_dim];
        sizes.extend(&h.hidden_layer_sizes);
        sizes.push(models);
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        let last = sizes.len() - 2;
        let means = p.set.model_means();
        // Sparse unit-norm inputs: the first layer's sums have the weights' variance. The
        // output layer starts near zero with biases at each model's mean score, so the
        // network starts from "every query is average" and moves away only on evidence.
        let first = SparseLayer::new(&mut rng, sizes[0], sizes[1], 0.5, SparseAdam::new(h.lr, h.alpha));
        for (k, pair) in sizes.windows(2).enumerate() {
            if k > 0 {
                let std = if k == last { 0.01 } else { (2.0 / pair[0] as f64).sqrt() };
                weights.push(param(&mut rng, &[pair[0], pair[1]], std, &dev)?);
            }
            if k == last {
                let logits: Vec<f32> =
                    means.iter().map(|m| (m.clamp(0.01, 0.99) / (1.0 - m.clamp(0.01, 0.99))).ln()).collect();
                let init = Tensor::from_vec(logits, pair[1], &dev).map_err(err)?;
                biases.push(Var::from_tensor(&init).map_err(err)?);
            } else {
                biases.push(zeros(&[pair[1]], &dev)?);
            }
        }
        let mut net = Net { first, weights, biases, activation: h.activation };
        let mut vars: Vec<Var> = net.weights.clone();
        vars.extend(net.biases.iter().cloned());
        let params = ParamsAdamW { lr: h.lr, weight_decay: h.alpha, ..Default::default() };
        let mut opt = AdamW::new(vars, params).map_err(err)?;

        let (mut train_rows, val_rows) = p.set.split(h.validation_fraction, h.seed);
        let val_refs: Vec<&[(u32, f32)]> = val_rows.iter().map(|&r| x[r].as_slice()).collect();
        let (val_y, val_mask) = targets(&p.set.scores, &val_rows, &dev)?;
        let mut best: Option<(f32, usize, Vec<Layer>)> = None;
        let mut epochs_run = 0;
        progress.begin(h.epochs as u64, "training MLP");
        for epoch in 1..=h.epochs {
            epochs_run = epoch;
            rng.shuffle(&mut train_rows);
            let mut total = 0.0f64;
            for batch in train_rows.chunks(h.batch_size) {
                let refs: Vec<&[(u32, f32)]> = batch.iter().map(|&r| x[r].as_slice()).collect();
                let (y, mask) = targets(&p.set.scores, batch, &dev)?;
                total += f64::from(net.step(&mut opt, &refs, &y, &mask)?) * batch.len() as f64;
            }
            let train_loss = total / train_rows.len().max(1) as f64;
            let val_loss = if val_rows.is_empty() {
                train_loss as f32
            } else {
                let first = net.first(&val_refs, &dev)?;
                net.loss(first.as_tensor(), &val_y, &val_mask)?.to_scalar::<f32>().map_err(err)?
            };
            let layers = net.snapshot()?;
            let score = if val_rows.is_empty() {
                -val_loss
            } else {
                let candidate =
                    SavedModel { embedder: p.spec.clone(), activation: h.activation, layers: layers.clone() };
                routed_score(&candidate, &x, &p.set.scores, &val_rows)
            };
            if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
                best = Some((score, epoch, layers));
            }
            progress.set_message(&format!(
                "epoch {epoch}: train loss {train_loss:.4}, held-out loss {val_loss:.4}, held-out pick score {score:.4}"
            ));
            progress.advance(1);
            if best.as_ref().is_some_and(|(_, e, _)| epoch - e >= h.patience) {
                break;
            }
        }
        progress.finish();
        let Some((val_score, best_epoch, layers)) = best else { return Err(meta.error("no epoch ran")) };
        let model = SavedModel { embedder: p.spec, activation: h.activation, layers };
        Ok(Fitted {
            model,
            metrics: vec![
                ("training queries".into(), format!("{} ({} held out)", p.set.len(), val_rows.len())),
                ("embedder".into(), p.embedder.id()),
                ("layers".into(), format!("{sizes:?}")),
                ("best epoch".into(), format!("{best_epoch} of {epochs_run} run")),
                ("held-out mean score of the picks".into(), format!("{val_score:.4}")),
            ],
        })
    }
}

llmrouter_core::register_router! {
    router: MlpRouter,
    name: "mlprouter",
    summary: "MLP on the query embedding predicting every model's score (candle, AdamW); cost-aware",
    docs: include_str!("../README.md"),
    trainer: MlpTrainer,
}
