//! Learning machinery shared by the routers that train: linear models on sparse inputs
//! ([`linear`]), candle pieces of the neural routers ([`nn`], feature `nn`), compact array storage
//! in model files ([`codec`]), sparse-vector helpers ([`sparse`]) and the one parallel helper
//! ([`parallel`]).
//!
//! This is pure math over slices: it names no other layer of the core but the foundations
//! (`error`, `rng`).

pub mod codec;
pub mod linear;
#[cfg(feature = "nn")]
pub mod nn;
pub mod parallel;
pub mod sparse;

pub use codec::{F32s, U32s};
pub use parallel::par_chunks;
pub use sparse::{fold, to_sparse};
