//! Routing a list of queries without calling any model: in chunks of [`CHUNK`] through
//! [`Router::route_batch`], with a progress bar for long files. Used by `infer --route-only` and by
//! the batch answering of `infer --input` (which routes every query before calling a model).

use anyhow::{Result, bail};
use llmrouter_core::{Progress, QueryInput, RouteDecision, Router};

use crate::progress::Bar;

/// Queries routed between two progress-bar updates.
pub const CHUNK: usize = 256;

/// Routes `queries` in chunks, with a progress bar for long files. Never calls a model.
pub fn route_all(router: &dyn Router, queries: &[QueryInput], quiet: bool) -> Result<Vec<RouteDecision>> {
    let bar = Bar::new(quiet || queries.len() < 2 * CHUNK);
    bar.begin(queries.len() as u64, "routing");
    let mut decisions: Vec<RouteDecision> = Vec::with_capacity(queries.len());
    for chunk in queries.chunks(CHUNK) {
        let routed = router.route_batch(chunk)?;
        if routed.len() != chunk.len() {
            bail!("the router returned {} decisions for {} queries", routed.len(), chunk.len());
        }
        decisions.extend(routed);
        bar.advance(chunk.len() as u64);
    }
    bar.finish();
    Ok(decisions)
}
