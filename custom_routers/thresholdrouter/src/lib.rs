//! `thresholdrouter`: an example plugin with a trainable difficulty estimator.
//!
//! A small MLP (hashed text features -> `hidden_size` ReLU units -> sigmoid) estimates how likely
//! the large model is to do better than the small one on a query. Queries whose difficulty is
//! below `hparam.threshold` go to `hparam.small_model`, the rest to `hparam.large_model`.
//!
//! Training uses the routing rows where both models were measured and their scores differ: a row
//! is *hard* (label 1) when the small model scored below the large one, *easy* (label 0) when it
//! scored above. Rows where both scored the same carry no information about which model to prefer
//! and are left out (the report counts them). A seeded tenth of the rows is held out, and the
//! weights of the epoch with the lowest held-out loss are saved.

mod mlp;

use llmrouter_core::embed::HashedFeaturizer;
use llmrouter_core::embed::MAX_HASHED_DIM;
use llmrouter_core::model::all_finite;
use llmrouter_core::rng::SplitMix64;
use llmrouter_core::{Fit, FitTrainer, Fitted, MetaRouter, Progress, QueryInput, Result, RouteDecision, Router};
use serde::{Deserialize, Serialize};

pub use mlp::Mlp;

/// `hparam` of thresholdrouter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hparams {
    /// Difficulty below which a query goes to the small model (default 0.5).
    pub threshold: f64,
    /// The cheap model (default: the cheapest candidate).
    pub small_model: Option<String>,
    /// The strong model (default: the most expensive candidate).
    pub large_model: Option<String>,
    /// Hidden units of the MLP (default 32).
    pub hidden_size: usize,
    /// Hash buckets of the text featurizer (default 4096).
    pub feature_dim: u32,
    /// Training epochs (default 30).
    pub epochs: usize,
    /// Adam learning rate (default 0.003).
    pub lr: f64,
    /// Mini-batch size (default 32).
    pub batch_size: usize,
    /// Decoupled weight decay (default 0.0001).
    pub weight_decay: f64,
    /// Share of training rows held out to pick the best epoch (default 0.1).
    pub validation_fraction: f64,
    /// Seed of initialisation, shuffling and the hold-out split (default 42).
    pub seed: u64,
}

impl Default for Hparams {
    fn default() -> Self {
        Hparams {
            threshold: 0.5,
            small_model: None,
            large_model: None,
            hidden_size: 32,
            feature_dim: 4096,
            epochs: 30,
            lr: 0.003,
            batch_size: 32,
            weight_decay: 1e-4,
            validation_fraction: 0.1,
            seed: 42,
        }
    }
}

/// What the model file holds besides the envelope.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SavedModel {
    /// The featurizer the MLP was trained on.
    pub featurizer: HashedFeaturizer,
    /// The small model it was trained for.
    pub small_model: String,
    /// The large model it was trained for.
    pub large_model: String,
    /// The difficulty estimator.
    pub mlp: Mlp,
}

/// Validated settings shared by router and trainer.
struct Setup {
    hparams: Hparams,
    small: String,
    large: String,
}

fn setup(meta: &MetaRouter) -> Result<Setup> {
    let hparams: Hparams = meta.config.hparams()?;
    let c = &meta.candidates;
    if c.len() < 2 {
        return Err(meta.error(format!("needs at least two candidates in {}", c.source().display())));
    }
    let by_price = c.by_price();
    let default_small = &c.all()[by_price[0]].name;
    let default_large = &c.all()[by_price[by_price.len() - 1]].name;
    let small = hparams.small_model.clone().unwrap_or_else(|| default_small.clone());
    let large = hparams.large_model.clone().unwrap_or_else(|| default_large.clone());
    meta.candidate_for_key("hparam.small_model", &small)?;
    meta.candidate_for_key("hparam.large_model", &large)?;
    if small == large {
        return Err(meta
            .config
            .key_error("hparam.large_model", format!("must differ from hparam.small_model (both are `{small}`)")));
    }
    if !(0.0..=1.0).contains(&hparams.threshold) {
        return Err(meta
            .config
            .key_error("hparam.threshold", format!("must be between 0 and 1, found {}", hparams.threshold)));
    }
    for (key, ok) in [
        ("hparam.hidden_size", hparams.hidden_size > 0),
        ("hparam.feature_dim", hparams.feature_dim >= 16),
        ("hparam.epochs", hparams.epochs > 0),
        ("hparam.batch_size", hparams.batch_size > 0),
        ("hparam.lr", hparams.lr > 0.0 && hparams.lr.is_finite()),
        ("hparam.weight_decay", hparams.weight_decay >= 0.0),
        ("hparam.validation_fraction", (0.0..0.9).contains(&hparams.validation_fraction)),
    ] {
        if !ok {
            return Err(meta.config.key_error(key, "value out of range (see the router README)"));
        }
    }
    Ok(Setup { hparams, small, large })
}

/// Routes by estimated difficulty.
#[derive(Debug)]
pub struct ThresholdRouter {
    router: String,
    model: SavedModel,
    threshold: f64,
}

impl ThresholdRouter {
    /// The estimated difficulty of a query, in [0, 1].
    pub fn difficulty(&self, text: &str) -> f64 {
        f64::from(self.model.mlp.predict(&self.model.featurizer.sparse(text)))
    }
}

impl Router for ThresholdRouter {
    fn from_meta(meta: MetaRouter) -> Result<Self> {
        let s = setup(&meta)?;
        let (model, path) = meta.load_model::<SavedModel>()?;
        if model.small_model != s.small || model.large_model != s.large {
            return Err(llmrouter_core::Error::model(
                &path,
                format!(
                    "trained for small `{}` and large `{}`, but the config asks for `{}` and `{}`; retrain",
                    model.small_model, model.large_model, s.small, s.large
                ),
            ));
        }
        let (f, mlp) = (&model.featurizer, &model.mlp);
        if !(16..=MAX_HASHED_DIM).contains(&(f.dim as usize))
            || mlp.inputs != f.dim as usize
            || mlp.hidden == 0
            || mlp.inputs.checked_mul(mlp.hidden) != Some(mlp.w1.len())
            || mlp.b1.len() != mlp.hidden
            || mlp.w2.len() != mlp.hidden
        {
            return Err(meta.damaged(&path, "the difficulty MLP's shapes do not match its featurizer"));
        }
        if !(all_finite(&mlp.w1) && all_finite(&mlp.b1) && all_finite(&mlp.w2) && mlp.b2.is_finite()) {
            return Err(meta.damaged(&path, "the difficulty MLP holds a non-finite weight"));
        }
        Ok(ThresholdRouter { router: meta.router_name().to_owned(), model, threshold: s.hparams.threshold })
    }

    fn route_single(&self, query: &QueryInput) -> Result<RouteDecision> {
        query.check(&self.router)?;
        let difficulty = self.difficulty(&query.query);
        let model = if difficulty < self.threshold { &self.model.small_model } else { &self.model.large_model };
        Ok(RouteDecision::new(&self.router, query, model)
            .with("difficulty_score", difficulty)
            .with("threshold", self.threshold)
            .with("small_model", self.model.small_model.as_str())
            .with("large_model", self.model.large_model.as_str()))
    }
}

/// Trains the difficulty estimator on `data_path.routing_data_train`.
pub type ThresholdTrainer = FitTrainer<ThresholdRouter>;

/// Training: [`Fit`] gives the trainer its plumbing (reading `hparam`, the atomic model file, the
/// report), so only the fit itself is written here.
impl Fit for ThresholdRouter {
    type Hparams = Hparams;
    type Saved = SavedModel;

    fn check(meta: &MetaRouter, _hparams: &Hparams) -> Result<()> {
        setup(meta).map(drop)
    }

    fn fit(meta: &MetaRouter, _hparams: &Hparams, progress: &dyn Progress) -> Result<Fitted<SavedModel>> {
        let setup = setup(meta)?;
        let table = meta.load_routing_train()?;
        let (s, h) = (&setup, &setup.hparams);
        let missing = |m: &str| meta.error(format!("the routing data has no scores for `{m}`"));
        let small = table.model_index(&s.small).ok_or_else(|| missing(&s.small))?;
        let large = table.model_index(&s.large).ok_or_else(|| missing(&s.large))?;
        let featurizer = HashedFeaturizer::new(h.feature_dim);
        let mut examples = Vec::new();
        let (mut ties, mut unmeasured) = (0usize, 0usize);
        for row in &table.rows {
            match (row.score(small), row.score(large)) {
                (Some(a), Some(b)) if a < b => examples.push((featurizer.sparse(&row.query), 1.0f32)),
                (Some(a), Some(b)) if a > b => examples.push((featurizer.sparse(&row.query), 0.0f32)),
                (Some(_), Some(_)) => ties += 1,
                _ => unmeasured += 1,
            }
        }
        if examples.len() < 10 {
            return Err(meta.error(format!(
                "only {} training rows where `{}` and `{}` scored differently; need at least 10",
                examples.len(),
                s.small,
                s.large
            )));
        }
        let mut rng = SplitMix64::new(h.seed);
        rng.shuffle(&mut examples);
        let n_val = ((examples.len() as f64) * h.validation_fraction).round() as usize;
        let (val, train) = examples.split_at(n_val);
        let hard = examples.iter().filter(|(_, y)| *y > 0.5).count();

        let mut mlp = Mlp::new(h.feature_dim as usize, h.hidden_size, &mut rng);
        let mut opt = mlp::Adam::new(&mlp, h.lr as f32, h.weight_decay as f32);
        let mut order: Vec<usize> = (0..train.len()).collect();
        let mut best: Option<(f32, Mlp, usize)> = None;
        progress.begin(h.epochs as u64, "training difficulty estimator");
        for epoch in 1..=h.epochs {
            rng.shuffle(&mut order);
            let mut train_loss = 0.0f32;
            for batch in order.chunks(h.batch_size) {
                let items: Vec<&(Vec<(u32, f32)>, f32)> = batch.iter().map(|&i| &train[i]).collect();
                train_loss += mlp.train_step(&items, &mut opt) * items.len() as f32;
            }
            train_loss /= train.len().max(1) as f32;
            let val_loss = if val.is_empty() { train_loss } else { mlp.mean_loss(val) };
            if best.as_ref().is_none_or(|(l, _, _)| val_loss < *l) {
                best = Some((val_loss, mlp.clone(), epoch));
            }
            progress.set_message(&format!("epoch {epoch}: train loss {train_loss:.4}, held-out loss {val_loss:.4}"));
            progress.advance(1);
        }
        progress.finish();
        let Some((val_loss, best_mlp, best_epoch)) = best else {
            return Err(meta.error("no epoch ran"));
        };
        let val_acc = if val.is_empty() {
            f64::NAN
        } else {
            val.iter().filter(|(x, y)| (best_mlp.predict(x) >= 0.5) == (*y > 0.5)).count() as f64 / val.len() as f64
        };
        let saved =
            SavedModel { featurizer, small_model: s.small.clone(), large_model: s.large.clone(), mlp: best_mlp };
        Ok(Fitted {
            model: saved,
            metrics: vec![
                ("small / large".into(), format!("{} / {}", s.small, s.large)),
                (
                    "training rows used".into(),
                    format!("{} ({} hard, {} easy)", examples.len(), hard, examples.len() - hard),
                ),
                ("rows left out".into(), format!("{ties} equal scores, {unmeasured} without both scores")),
                ("best epoch".into(), format!("{best_epoch} of {}", h.epochs)),
                ("held-out loss".into(), format!("{val_loss:.4}")),
                ("held-out accuracy".into(), format!("{val_acc:.4} on {} rows", val.len())),
            ],
        })
    }
}

llmrouter_core::register_router! {
    router: ThresholdRouter,
    name: "thresholdrouter",
    summary: "Example plugin: trained difficulty estimator; easy queries to a small model, hard ones to a large one",
    docs: include_str!("../README.md"),
    trainer: ThresholdTrainer,
}
