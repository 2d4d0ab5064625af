//! Links the router crates enabled by Cargo features into the binary.
//!
//! Each line names a router crate so that the linker keeps its `inventory` registration; without
//! it the registration silently vanishes. `#![deny(unused_crate_dependencies)]` in `main.rs`
//! makes a missing line a compile error.

#[cfg(feature = "largest_llm")]
use largest_llm as _;
#[cfg(feature = "randomrouter")]
use randomrouter as _;
#[cfg(feature = "smallest_llm")]
use smallest_llm as _;
#[cfg(feature = "thresholdrouter")]
use thresholdrouter as _;
