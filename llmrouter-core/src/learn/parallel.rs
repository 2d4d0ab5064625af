//! The one parallel helper: [`par_chunks`] splits a slice into one contiguous chunk per core,
//! runs a closure on each in a scoped thread and concatenates the results in order.
//!
//! A worker that panics never turns into a missing or empty row: the panic becomes an
//! [`Error::WorkerPanicked`] naming the stage (`"knnrouter: predicting scores"`) and the panic's
//! message, and a worker's own error is returned as it is.

use crate::error::{Error, Result};

/// Below this many items the work runs on the calling thread.
pub const MIN_PARALLEL: usize = 64;

/// Runs `f` on contiguous chunks of `items`, one per available core (on the calling thread when
/// there are fewer than [`MIN_PARALLEL`] items or one core), and concatenates the results in
/// order. `stage` names the work in errors.
pub fn par_chunks<T: Sync, R: Send>(
    stage: &str,
    items: &[T],
    f: impl Fn(&[T]) -> Result<Vec<R>> + Sync,
) -> Result<Vec<R>> {
    // Small inputs (one query routed by `serve`) stay on this thread without asking how many
    // cores there are: `available_parallelism` reads several /proc and cgroup files each call.
    if items.len() < MIN_PARALLEL {
        return run_caught(stage, || f(items));
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    par_chunks_on(stage, items, threads, f)
}

/// [`par_chunks`] on at most `threads` threads.
pub fn par_chunks_on<T: Sync, R: Send>(
    stage: &str,
    items: &[T],
    threads: usize,
    f: impl Fn(&[T]) -> Result<Vec<R>> + Sync,
) -> Result<Vec<R>> {
    if items.len() < MIN_PARALLEL || threads <= 1 {
        return run_caught(stage, || f(items));
    }
    let chunk = items.len().div_ceil(threads);
    let parts: Vec<Result<Vec<R>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = items.chunks(chunk).map(|part| scope.spawn(|| f(part))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|payload| Err(panicked(stage, payload.as_ref())))).collect()
    });
    let mut out = Vec::with_capacity(items.len());
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

/// Runs `f` on this thread, turning a panic into the same error a worker's panic gives.
fn run_caught<R>(stage: &str, f: impl FnOnce() -> Result<R>) -> Result<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(panicked(stage, payload.as_ref())))
}

fn panicked(stage: &str, payload: &(dyn std::any::Any + Send)) -> Error {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    Error::WorkerPanicked { stage: stage.to_owned(), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order() {
        let items: Vec<u32> = (0..1000).collect();
        let out = par_chunks_on("doubling", &items, 4, |part| Ok(part.iter().map(|x| x * 2).collect())).expect("ok");
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
    }

    #[test]
    fn a_panicking_worker_is_an_error_naming_the_stage() {
        let items: Vec<u32> = (0..1000).collect();
        for threads in [1, 4] {
            let err = par_chunks_on("knnrouter: predicting scores", &items, threads, |part| {
                if part.contains(&777) {
                    panic!("row 777 is bad");
                }
                Ok(part.to_vec())
            })
            .expect_err("the panic must surface");
            let text = err.to_string();
            assert!(text.contains("knnrouter: predicting scores") && text.contains("row 777 is bad"), "{text}");
            assert!(matches!(err, Error::WorkerPanicked { .. }), "{err:?}");
        }
    }

    #[test]
    fn a_worker_error_is_returned_as_is() {
        let items: Vec<u32> = (0..200).collect();
        let err = par_chunks_on("stage", &items, 2, |part| {
            if part.contains(&150) { Err(Error::Invalid("bad input".into())) } else { Ok(part.to_vec()) }
        })
        .expect_err("error");
        assert!(err.to_string().contains("bad input"), "{err}");
    }
}
