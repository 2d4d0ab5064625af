//! Progress on standard error: a bar on a terminal, and off one (a log file, CI, `2> file`) a
//! plain line every few seconds while a phase runs, so long work is never silent. `--quiet`
//! hides both.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use llmrouter_core::Progress;

/// Seconds between two progress lines off a terminal (default 5); for tests and chatty logs.
pub const EVERY_VAR: &str = "LLMROUTER_PROGRESS_EVERY";

/// Progress on standard error behind the core [`Progress`] trait.
pub struct Bar {
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
    lines: Mutex<Option<Lines>>,
}

impl Bar {
    /// Progress on standard error unless `quiet`.
    pub fn new(quiet: bool) -> Self {
        Bar { quiet, bar: Mutex::new(None), lines: Mutex::new(None) }
    }

    fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            f(bar);
        }
    }

    fn stop_lines(&self) {
        if let Some(lines) = self.lines.lock().unwrap_or_else(PoisonError::into_inner).take() {
            lines.stop();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.stop_lines();
    }
}

impl Progress for Bar {
    fn begin(&self, total: u64, message: &str) {
        self.stop_lines();
        let on_terminal = std::io::stderr().is_terminal();
        let target =
            if self.quiet || !on_terminal { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        let template = if total == 0 {
            "{spinner} {prefix} {msg} [{elapsed}]"
        } else {
            "{prefix} [{bar:30}] {pos}/{len} [{elapsed} < {eta}] {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(message.to_owned());
        if on_terminal && !self.quiet {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        if !on_terminal && !self.quiet {
            *self.lines.lock().unwrap_or_else(PoisonError::into_inner) = Some(Lines::start(bar.clone(), every()));
        }
        if let Some(old) = self.bar.lock().unwrap_or_else(PoisonError::into_inner).replace(bar) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, n: u64) {
        self.with(|b| b.inc(n));
    }

    fn set_message(&self, message: &str) {
        let message = message.to_owned();
        self.with(move |b| b.set_message(message));
    }

    fn finish(&self) {
        self.with(|b| b.finish());
        self.stop_lines();
    }
}

/// The interval of [`EVERY_VAR`], or 5 s.
fn every() -> Duration {
    std::env::var(EVERY_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::from_secs(5), |s| Duration::from_secs_f64(s.min(3600.0)))
}

/// A thread that prints the phase's state every interval until stopped.
struct Lines {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    stopped: Mutex<bool>,
    wake: Condvar,
    /// Lines printed.
    printed: AtomicU64,
}

impl Lines {
    fn start(bar: ProgressBar, every: Duration) -> Self {
        let shared = Arc::new(Shared { stopped: Mutex::new(false), wake: Condvar::new(), printed: AtomicU64::new(0) });
        let theirs = Arc::clone(&shared);
        let started = Instant::now();
        let thread = std::thread::Builder::new()
            .name("progress".to_owned())
            .spawn(move || {
                let mut stopped = theirs.stopped.lock().unwrap_or_else(PoisonError::into_inner);
                // `stopped` is checked before every wait, so a stop that came before this thread
                // first took the lock does not wait out a whole interval.
                while !*stopped {
                    let (guard, timeout) =
                        theirs.wake.wait_timeout(stopped, every).unwrap_or_else(PoisonError::into_inner);
                    stopped = guard;
                    if timeout.timed_out() && !*stopped {
                        theirs.printed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("{}", line(&bar, started, false));
                    }
                }
                if theirs.printed.load(Ordering::Relaxed) > 0 {
                    eprintln!("{}", line(&bar, started, true));
                }
            })
            .ok();
        Lines { shared, thread }
    }

    fn stop(mut self) {
        *self.shared.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `training: 120/800 (15%), 10 s, loss 0.41`, or `training: done, 800 in 52 s`.
fn line(bar: &ProgressBar, started: Instant, done: bool) -> String {
    let (pos, len) = (bar.position(), bar.length().unwrap_or(0));
    let secs = started.elapsed().as_secs_f64();
    let mut text = format!("{}: ", bar.prefix());
    if done {
        text.push_str(&format!("done, {pos} in {secs:.0} s"));
    } else if len > 0 {
        text.push_str(&format!("{pos}/{len} ({:.0}%), {secs:.0} s", 100.0 * pos as f64 / len as f64));
    } else {
        text.push_str(&format!("{secs:.0} s"));
    }
    let message = bar.message();
    if !message.is_empty() && !done {
        text.push_str(&format!(", {message}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_phase_its_position_and_its_message() {
        let bar = ProgressBar::hidden();
        bar.set_length(800);
        bar.set_position(120);
        bar.set_prefix("training");
        bar.set_message("loss 0.41");
        let text = line(&bar, Instant::now(), false);
        assert!(text.starts_with("training: 120/800 (15%), 0 s, loss 0.41"), "{text}");
        assert_eq!(line(&bar, Instant::now(), true), "training: done, 120 in 0 s");
        bar.set_length(0);
        assert_eq!(line(&bar, Instant::now(), false), "training: 0 s, loss 0.41");
    }
}
