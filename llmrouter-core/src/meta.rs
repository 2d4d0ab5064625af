//! [`MetaRouter`]: the part every router holds, composed rather than inherited: the config, the
//! candidates, and the trained model file, read at most once however many times it is asked for.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{Config, DataKey};
use crate::data::{Candidates, RoutingTable};
use crate::error::{Error, Result};
use crate::model::{self, Calibration, ModelFile};

/// A router's parsed config and loaded candidates, built from a YAML path.
#[derive(Debug, Clone)]
pub struct MetaRouter {
    /// The config.
    pub config: Config,
    /// The candidate models from `data_path.llm_data`.
    pub candidates: Candidates,
    router: String,
    holdout: Option<Holdout>,
    cost_weight_pinned: bool,
    /// The model file read from `load_model_path`, once (clones share it).
    model: OnceLock<Arc<ModelFile>>,
    /// The calibration [`MetaRouter::apply_calibration`] applied, once applied.
    calibration: Option<Option<Calibration>>,
}

/// A validation share carved from the training split: training sees the rest
/// ([`MetaRouter::load_routing_train`]), calibration the share
/// ([`MetaRouter::load_routing_validation`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Holdout {
    /// Share of the training rows held out, in (0, 1).
    pub share: f64,
    /// Seed of the row permutation.
    pub seed: u64,
}

impl Holdout {
    /// Which of `n` rows are held out: the first `round(share * n)` of a seeded permutation.
    pub fn mask(&self, n: usize) -> Vec<bool> {
        let mut idx: Vec<usize> = (0..n).collect();
        crate::rng::SplitMix64::new(self.seed).shuffle(&mut idx);
        let held = ((n as f64) * self.share).round() as usize;
        let mut mask = vec![false; n];
        for &i in &idx[..held.min(n)] {
            mask[i] = true;
        }
        mask
    }
}

fn keep(mut table: RoutingTable, holdout: &Holdout, held_out: bool) -> RoutingTable {
    let mask = holdout.mask(table.rows.len());
    let mut i = 0;
    table.rows.retain(|_| {
        i += 1;
        mask[i - 1] == held_out
    });
    table
}

impl MetaRouter {
    /// Loads the config at `path` and the candidates it names, for router `router`.
    pub fn from_yaml(path: impl AsRef<Path>, router: &str) -> Result<MetaRouter> {
        MetaRouter::from_config(Config::load(path)?, router)
    }

    /// Loads the candidates named by an already parsed config.
    pub fn from_config(config: Config, router: &str) -> Result<MetaRouter> {
        let llm = config.data_file(DataKey::LlmData, "every router needs the candidate models")?;
        let candidates = Candidates::load(&llm)?;
        Ok(MetaRouter {
            config,
            candidates,
            router: router.to_owned(),
            holdout: None,
            cost_weight_pinned: false,
            model: OnceLock::new(),
            calibration: None,
        })
    }

    /// The name of the router this is for.
    pub fn router_name(&self) -> &str {
        &self.router
    }

    /// Where this router's trained model is read from (`model_path.load_model_path`, else
    /// `save_model_path`, with `{router}` replaced).
    pub fn load_model_path(&self) -> Result<PathBuf> {
        self.config.load_model_path(&self.router)
    }

    /// Where this router's trainer writes its model (`model_path.save_model_path`).
    pub fn save_model_path(&self) -> Result<PathBuf> {
        self.config.save_model_path_for(&self.router)
    }

    /// Points the model paths at `path` (both loading and saving); forgets a model file read
    /// from elsewhere.
    pub fn set_model_path(&mut self, path: &Path) {
        self.config = self.config.clone().with_model_path(path);
        self.model = OnceLock::new();
        self.calibration = None;
    }

    /// The model file at [`MetaRouter::load_model_path`], read and checked the first time it is
    /// asked for and shared afterwards (by clones too).
    pub fn model_file(&self) -> Result<Arc<ModelFile>> {
        let path = self.load_model_path()?;
        if let Some(file) = self.model.get().filter(|f| f.path() == path) {
            return Ok(Arc::clone(file));
        }
        let file = Arc::new(ModelFile::read(&path)?);
        let _ = self.model.set(Arc::clone(&file));
        Ok(file)
    }

    /// This router's trained payload, checked against its name and the config's candidates, and
    /// the path it came from (for errors about its contents).
    pub fn load_model<T: DeserializeOwned>(&self) -> Result<(T, PathBuf)> {
        let file = self.model_file()?;
        let model = file.payload(&self.router, &self.candidates.names())?;
        Ok((model, file.path().to_path_buf()))
    }

    /// The error for a model file whose contents fail a check after it parsed (a hand edit, a
    /// bad copy): names the file and `what` is wrong, and gives the command that rebuilds it.
    pub fn damaged(&self, path: &Path, what: impl std::fmt::Display) -> Error {
        Error::model(
            path,
            format!(
                "damaged model file: {what}; rebuild it with: llmrouter train --router {} --config {}",
                self.router,
                self.config.path().display()
            ),
        )
    }

    /// Writes a trained `model` to `path` atomically, with the candidates and the config's
    /// training fingerprint ([`Config::training_hash`]).
    pub fn save_model<T: Serialize>(&self, path: &Path, model: &T) -> Result<()> {
        let hash = self.config.training_hash()?;
        model::save(path, &self.router, &self.candidates.names(), Some(hash), model)
    }

    /// Sets `metric.weights` from the calibration stored in this router's model file, unless the
    /// cost weight is pinned ([`MetaRouter::pin_cost_weight`]) or there is no model file.
    /// Returns the calibration applied. Applying twice changes nothing the second time.
    pub fn apply_calibration(&mut self) -> Result<Option<Calibration>> {
        if let Some(done) = &self.calibration {
            return Ok(done.clone());
        }
        let found = self.stored_calibration()?;
        if let Some(c) = &found {
            self.config.metric.cost = c.cost_weight;
            self.config.metric.cost_mix = c.mix;
            self.config.metric.performance = c.performance_weight;
        }
        self.calibration = Some(found.clone());
        Ok(found)
    }

    fn stored_calibration(&self) -> Result<Option<Calibration>> {
        if self.cost_weight_pinned {
            return Ok(None);
        }
        let Ok(path) = self.load_model_path() else { return Ok(None) };
        if !path.is_file() {
            return Ok(None);
        }
        Ok(self.model_file()?.calibration.clone())
    }

    /// Holds out a validation share of the training split from every trainer built from this.
    pub fn with_holdout(mut self, holdout: Holdout) -> Self {
        self.holdout = Some(holdout);
        self
    }

    /// The held-out validation share, if any.
    pub fn holdout(&self) -> Option<Holdout> {
        self.holdout
    }

    /// Sets `metric.weights.cost` and keeps it: a calibration stored in the model file does not
    /// override it.
    pub fn pin_cost_weight(&mut self, cost_weight: f64) {
        self.config.metric.cost = cost_weight;
        self.config.metric.cost_mix = None;
        self.cost_weight_pinned = true;
        self.calibration = Some(None);
    }

    /// Whether [`MetaRouter::pin_cost_weight`] was called.
    pub fn cost_weight_pinned(&self) -> bool {
        self.cost_weight_pinned
    }

    /// Loads `data_path.routing_data_train`, checking that it names only candidate models; without
    /// the held-out share when there is one ([`MetaRouter::with_holdout`]).
    pub fn load_routing_train(&self) -> Result<RoutingTable> {
        let table = self.load_routing(DataKey::RoutingDataTrain)?;
        Ok(match self.holdout {
            Some(h) => keep(table, &h, false),
            None => table,
        })
    }

    /// The held-out share of `data_path.routing_data_train` (needs [`MetaRouter::with_holdout`]).
    pub fn load_routing_validation(&self) -> Result<RoutingTable> {
        let h = self.holdout.ok_or_else(|| self.error("no validation share was held out of the training data"))?;
        Ok(keep(self.load_routing(DataKey::RoutingDataTrain)?, &h, true))
    }

    /// Loads `data_path.routing_data_test`, checking that it names only candidate models.
    pub fn load_routing_test(&self) -> Result<RoutingTable> {
        self.load_routing(DataKey::RoutingDataTest)
    }

    fn load_routing(&self, key: DataKey) -> Result<RoutingTable> {
        let path = self.config.data_file(key, "this command needs routing data")?;
        self.load_routing_file(&path)
    }

    /// Loads any routing data file, checking that it names only candidate models.
    pub fn load_routing_file(&self, path: &Path) -> Result<RoutingTable> {
        let path = path.to_path_buf();
        let table = RoutingTable::load(&path)?;
        if let Some(unknown) = table.models.iter().find(|m| self.candidates.index_of(m).is_none()) {
            return Err(Error::Data {
                path,
                message: format!(
                    "model `{unknown}` is not a candidate in {} (candidates: {})",
                    self.candidates.source().display(),
                    crate::names::list_capped(&self.candidates.names(), 12)
                ),
            });
        }
        Ok(table)
    }

    /// Validates a model name taken from config key `key` (e.g. `hparam.small_model`): it must be a
    /// candidate. Returns its index.
    pub fn candidate_for_key(&self, key: &str, name: &str) -> Result<usize> {
        self.candidates.index_of(name).ok_or_else(|| {
            self.config.key_error(
                key,
                format!(
                    "`{name}` is not a candidate model of {} (candidates: {})",
                    self.candidates.source().display(),
                    crate::names::list_capped(&self.candidates.names(), 12)
                ),
            )
        })
    }

    /// An error from this router.
    pub fn error(&self, message: impl std::fmt::Display) -> Error {
        Error::router(&self.router, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_mask_is_seeded_and_sized() {
        let h = Holdout { share: 0.2, seed: 7 };
        let mask = h.mask(101);
        assert_eq!(mask.iter().filter(|&&m| m).count(), 20);
        assert_eq!(mask, h.mask(101));
        assert_ne!(mask, Holdout { share: 0.2, seed: 8 }.mask(101));
    }
}
