//! `serve`'s limits on `POST /v1/chat/completions`: how many requests run at once, with a
//! bounded queue behind them ([`Gate`]: 503 with `Retry-After` beyond it), and how many each
//! client key may send a minute ([`RateLimit`]: a token bucket per key, 429 with `Retry-After`).
//!
//! A request holds its place until its response body is done (a stream until its last chunk, or
//! until the client goes away): [`Held`] wraps the body and drops the permit with it.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// At most `max_concurrency` requests in flight and `max_queue` waiting for a place.
pub struct Gate {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_queue: usize,
}

impl Gate {
    /// A gate with `max_concurrency` places (at least 1) and a queue of `max_queue`.
    pub fn new(max_concurrency: usize, max_queue: usize) -> Self {
        Gate { permits: Arc::new(Semaphore::new(max_concurrency.max(1))), waiting: AtomicUsize::new(0), max_queue }
    }

    /// A place, at once or after waiting in the queue; `None` when every place is taken and
    /// the queue is full.
    pub async fn enter(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            return Some(permit);
        }
        let queued =
            self.waiting.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max_queue).then_some(n + 1));
        if queued.is_err() {
            return None;
        }
        // Leaves the queue however the wait ends, the client hanging up included.
        let _leave = Leave(&self.waiting);
        Arc::clone(&self.permits).acquire_owned().await.ok()
    }

    /// Requests waiting for a place now.
    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

/// Decrements the queue length when dropped.
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Requests per minute per client: one token bucket per client key (one shared bucket when the
/// server has no keys), holding at most a minute's worth, refilled continuously. Buckets are
/// found by the key's position, so the limiter never holds a key.
pub struct RateLimit {
    per_minute: f64,
    buckets: Vec<Mutex<Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    /// `per_minute` requests a minute (a positive number) for each of `clients` buckets.
    pub fn new(per_minute: f64, clients: usize) -> Self {
        let now = Instant::now();
        let buckets = (0..clients.max(1)).map(|_| Mutex::new(Bucket { tokens: per_minute, at: now })).collect();
        RateLimit { per_minute, buckets }
    }

    /// Takes a token from client `client`'s bucket at `now`, or says how long until one is there.
    pub fn take(&self, client: usize, now: Instant) -> Result<(), Duration> {
        let Some(bucket) = self.buckets.get(client).or_else(|| self.buckets.first()) else { return Ok(()) };
        // A poisoned lock still holds a valid bucket: every update below is one assignment.
        let mut b = bucket.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let per_second = self.per_minute / 60.0;
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * per_second).min(self.per_minute);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / per_second))
        }
    }
}

/// A response body that keeps `guard` alive until the body is done or dropped.
pub struct Held<G> {
    inner: axum::body::Body,
    guard: Option<G>,
}

impl<G> Held<G> {
    /// `inner`, holding `guard`.
    pub fn new(inner: axum::body::Body, guard: G) -> Self {
        Held { inner, guard: Some(guard) }
    }
}

impl<G: Unpin> Body for Held<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            // The last byte is out: free the place now rather than when hyper drops the body.
            this.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_queue_waits_for_a_place_and_is_bounded() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        runtime.block_on(async {
            let gate = Arc::new(Gate::new(1, 1));
            let first = gate.enter().await.expect("a free place");
            let waiter = tokio::spawn({
                let gate = Arc::clone(&gate);
                async move { gate.enter().await.is_some() }
            });
            while gate.waiting.load(Ordering::Acquire) == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert!(gate.enter().await.is_none(), "the place is taken and the queue is full");
            drop(first);
            assert!(waiter.await.expect("join"), "the queued request got the place");
            assert_eq!(gate.waiting.load(Ordering::Acquire), 0);
            let none_queued = Gate::new(1, 0);
            let _held = none_queued.enter().await.expect("a free place");
            assert!(none_queued.enter().await.is_none(), "no queue");
        });
    }

    #[test]
    fn each_client_has_its_own_bucket_refilled_over_the_minute() {
        let limit = RateLimit::new(2.0, 2);
        let t0 = Instant::now();
        assert!(limit.take(0, t0).is_ok() && limit.take(0, t0).is_ok());
        let wait = limit.take(0, t0).expect_err("the third in the same minute");
        assert!((29.0..=30.0).contains(&wait.as_secs_f64()), "{wait:?}");
        assert!(limit.take(1, t0).is_ok(), "another client's bucket is full");
        assert!(limit.take(0, t0 + Duration::from_secs(31)).is_ok(), "half a minute refills one");
        assert!(limit.take(0, t0 + Duration::from_secs(31)).is_err());
        // Out-of-range clients share the first bucket rather than panicking.
        assert!(limit.take(7, t0 + Duration::from_secs(31)).is_err());
    }
}
