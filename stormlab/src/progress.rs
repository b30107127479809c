//! The progress bar: one bar over the simulated time of the whole suite,
//! drawn on standard error, hidden when standard output is not a terminal
//! or with `--quiet`.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The suite's progress, shared by the runs (it is `Sync`).
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar over `total` of run time; drawn only when `visible`.
    pub fn new(total: Duration, visible: bool) -> Progress {
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total.as_millis() as u64), target);
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}%  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        if visible {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        Progress { bar }
    }

    /// A bar that is never drawn.
    pub fn hidden() -> Progress {
        Progress::new(Duration::ZERO, false)
    }

    /// `elapsed` more run time is done.
    pub fn advance(&self, elapsed: Duration) {
        self.bar.inc(elapsed.as_millis() as u64);
    }

    /// Says what runs now.
    pub fn set_message(&self, message: String) {
        self.bar.set_message(message);
    }

    /// Prints `text` on standard output without tearing the bar.
    pub fn print(&self, text: &str) {
        self.bar.suspend(|| print!("{text}"));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
