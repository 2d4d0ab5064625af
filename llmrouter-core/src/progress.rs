//! Progress reporting for long work (training, batch routing), independent of any terminal library.
//!
//! Core and router crates report through [`Progress`]; the CLI implements it with a progress bar.

/// A sink for progress events. Every method has a no-op default.
pub trait Progress: Sync {
    /// Starts a phase of `total` steps (0 when unknown) described by `message`.
    fn begin(&self, _total: u64, _message: &str) {}
    /// Marks `n` more steps done.
    fn advance(&self, _n: u64) {}
    /// Replaces the status text (for example the current loss).
    fn set_message(&self, _message: &str) {}
    /// Ends the current phase.
    fn finish(&self) {}
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
