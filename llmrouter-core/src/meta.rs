//! [`MetaRouter`]: the part every router holds, composed rather than inherited.

use std::path::Path;

use crate::config::{Config, DataKey};
use crate::data::{Candidates, RoutingTable};
use crate::error::{Error, Result};

/// A router's parsed config and loaded candidates, built from a YAML path.
#[derive(Debug, Clone)]
pub struct MetaRouter {
    /// The config.
    pub config: Config,
    /// The candidate models from `data_path.llm_data`.
    pub candidates: Candidates,
    router: String,
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
        Ok(MetaRouter { config, candidates, router: router.to_owned() })
    }

    /// The name of the router this is for.
    pub fn router_name(&self) -> &str {
        &self.router
    }

    /// Loads `data_path.routing_data_train`, checking that it names only candidate models.
    pub fn load_routing_train(&self) -> Result<RoutingTable> {
        self.load_routing(DataKey::RoutingDataTrain)
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
                    self.candidates.names().join(", ")
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
                    self.candidates.names().join(", ")
                ),
            )
        })
    }

    /// An error from this router.
    pub fn error(&self, message: impl std::fmt::Display) -> Error {
        Error::router(&self.router, message)
    }
}
