//! Progress bars on standard error (hidden when it is not a terminal or with `--quiet`).

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use llmrouter_core::Progress;

/// An indicatif bar behind the core [`Progress`] trait.
pub struct Bar {
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bar {
    /// A bar that draws on standard error unless `quiet`.
    pub fn new(quiet: bool) -> Self {
        Bar { quiet, bar: Mutex::new(None) }
    }

    fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if let Ok(guard) = self.bar.lock() {
            if let Some(bar) = guard.as_ref() {
                f(bar);
            }
        }
    }
}

impl Progress for Bar {
    fn begin(&self, total: u64, message: &str) {
        let target = if self.quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
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
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut guard) = self.bar.lock() {
            if let Some(old) = guard.replace(bar) {
                old.finish_and_clear();
            }
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
    }
}
