//! SIGHUP: the router is built again from the config and its model file, then swapped in.
//!
//! Requests hold the router they started with (an `Arc`), so every request in flight during a
//! reload completes with the old one, and the next request routes with the new one. When the new
//! config or model file cannot be read or built, or its candidates differ from the ones being
//! served (those are fixed for the life of the process: a restart changes them), the old router
//! stays, and one line on standard error says why.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use anyhow::{Context, Result, bail};
use llmrouter_core::{Candidates, MetaRouter, Router, RouterRegistration};

/// The router requests route with now.
pub struct LiveRouter {
    current: RwLock<Arc<dyn Router>>,
}

impl LiveRouter {
    pub fn new(router: Arc<dyn Router>) -> Self {
        LiveRouter { current: RwLock::new(router) }
    }

    /// The router now; a reload after this call does not change the one returned.
    pub fn get(&self) -> Arc<dyn Router> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn set(&self, router: Arc<dyn Router>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = router;
    }
}

/// How to build the router again.
pub struct Reloader {
    pub registration: &'static RouterRegistration,
    pub config: PathBuf,
    /// The candidates being served.
    pub candidates: Candidates,
}

impl Reloader {
    /// Builds the router from the config and model file as they are now, and swaps it in.
    /// Returns what was loaded, for the log; on an error the old router stays.
    pub fn reload(&self, live: &LiveRouter) -> Result<String> {
        let name = self.registration.name;
        let meta = MetaRouter::from_yaml(&self.config, name)?;
        if meta.candidates.all() != self.candidates.all() {
            bail!(
                "`llm_data` in {} no longer holds the candidates being served; restart the server to change them",
                self.config.display()
            );
        }
        let model = meta.load_model_path().ok().filter(|p| p.exists());
        let router = (self.registration.build)(meta).with_context(|| format!("building router `{name}`"))?;
        live.set(Arc::from(router));
        Ok(match model {
            Some(path) => format!("router `{name}` reloaded from {}", path.display()),
            None => format!("router `{name}` reloaded from {}", self.config.display()),
        })
    }
}
