//! `llmrouter-core`: the contracts every router shares and the machinery behind them, in layers.
//! A module names only modules of lower layers (the `layers` test in `tests/structure.rs`
//! enforces it); lowest first:
//!
//! 1. Foundations: [`error`] (the error type), [`rng`] (seeded, platform-independent randomness
//!    and hashing), [`progress`] (the progress trait the CLI implements), [`names`] (name
//!    checks and suggestions), [`plugins`] (where plugin crates live on disk).
//! 2. [`learn`]: learning machinery over plain slices: linear models, candle pieces (feature
//!    `nn`), array codecs, the one parallel helper.
//! 3. [`query`]: [`QueryInput`] and [`RouteDecision`].
//! 4. [`config`]: LLMRouter-compatible YAML configs, path resolution, typed `hparam` sections.
//! 5. [`data`]: candidate models (`llm_data`), query files and routing data in three layouts,
//!    loaded into one [`data::RoutingTable`].
//! 6. [`model`]: the model file's envelope ([`model::ModelFile`]: router, candidates, training
//!    fingerprint, calibration, payload) and atomic writes.
//! 7. [`meta`]: [`MetaRouter`], the part every router holds (config, candidates, the model file
//!    read once).
//! 8. [`embed`]: the [`embed::Embedder`] trait, the embedding-backend registry (`hashed`,
//!    `minilm`, any crate's own) and the embedding cache.
//! 9. [`decision`]: the cost model, per-model [`decision::Predictions`], the cost-aware rule.
//! 10. [`router`]: the [`Router`] and [`Trainer`] traits, [`ScorePredictor`] / [`ScoreRouter`]
//!     and [`Fit`] / [`FitTrainer`] (router plumbing written once), [`router::BySize`], the
//!     training set.
//! 11. [`registry`]: [`register_router!`] and name lookup over every compiled-in router.
//! 12. [`eval`]: evaluation figures, cost-quality curves, budget calibration.
//! 13. [`testing`] (feature `testing`, for router crates' `[dev-dependencies]`): the shared
//!     conformance suite.
//!
//! Core never names a concrete router and does no network I/O: the model client lives in the CLI
//! (`llmrouter-cli/src/client/`).

pub mod error;
pub mod names;
pub mod plugins;
pub mod progress;
pub mod rng;

pub mod learn;

pub mod query;

pub mod config;

pub mod data;

pub mod model;

pub mod meta;

pub mod embed;

pub mod decision;

pub mod router;

pub mod registry;

pub mod eval;

#[cfg(feature = "testing")]
pub mod testing;

pub use config::{Config, CostMix, MetricWeights};
pub use data::{Candidate, Candidates, RoutingTable};
pub use error::{Error, Result};
pub use meta::MetaRouter;
pub use progress::{NoProgress, Progress};
pub use query::{QueryInput, RouteDecision};
pub use registry::RouterRegistration;
pub use router::{
    BySize, Decide, Device, Fit, FitTrainer, Fitted, Router, ScorePredictor, ScoreRouter, TrainReport, Trainer,
};

/// Items the [`register_router!`] and [`register_embedding_backend!`] macros expand to. Not a
/// public API.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
    pub use linkme;
}
