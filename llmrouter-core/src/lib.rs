//! `llmrouter-core`: the contracts every router shares and the machinery behind them.
//!
//! - [`config`]: LLMRouter-compatible YAML configs, path resolution, typed `hparam` sections.
//! - [`data`]: candidate models (`llm_data`), query files and routing data in three layouts, loaded
//!   into one [`data::RoutingTable`].
//! - [`meta`]: [`MetaRouter`], the part every router holds (config plus loaded candidates).
//! - [`router`]: the [`Router`] and [`Trainer`] traits, [`QueryInput`] and [`RouteDecision`].
//! - [`registry`]: the [`register_router!`] macro and name lookup over every compiled-in router.
//! - [`features`]: a small deterministic hashed text featurizer.
//! - [`model_file`]: the self-contained, atomically written model file format.
//! - `client` (feature `client`, enabled by the CLI): the OpenAI-compatible client `infer` calls
//!   the chosen model with (retries, fallbacks, API keys from the environment, redacted errors).
//!
//! Core never names a concrete router, and routing never does network I/O (only `client` does).

pub mod calibrate;
#[cfg(feature = "client")]
pub mod client;
pub mod config;
pub mod conformance;
pub mod curve;
pub mod data;
pub mod embed;
pub mod error;
pub mod eval;
pub mod features;
pub mod learn;
pub mod linear;
pub mod meta;
#[cfg(feature = "minilm")]
pub mod minilm;
pub mod model_file;
#[cfg(feature = "nn")]
pub mod nn;
pub mod plugins;
pub mod progress;
pub mod registry;
pub mod rng;
pub mod router;

#[cfg(feature = "client")]
pub use client::{ApiKeys, CallError, ChatClient, ClientOptions, InferResult, Usage};
pub use config::{Config, CostMix, MetricWeights};
pub use data::{Candidate, Candidates, RoutingTable};
pub use error::{Error, Result};
pub use meta::MetaRouter;
pub use progress::{NoProgress, Progress};
pub use registry::RouterRegistration;
pub use router::{Device, QueryInput, RouteDecision, Router, TrainReport, Trainer};

/// Items the [`register_router!`] macro expands to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
}
