//! Progress of a long run (backup, restore, health check): on a terminal a bar on stderr with
//! bytes, files, rate and ETA (indicatif); with `--json` one JSON line per update on stdout;
//! otherwise nothing until the result, so that logs and pipes get no control characters.

use std::io::IsTerminal;

use cloudkeep_model::units::human_bytes;
use cloudkeep_repo::engine::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

/// Where progress goes.
pub(crate) struct ProgressLine {
    json: bool,
    bar: Option<ProgressBar>,
    /// Whether the bar shows a known total (a bar) rather than a spinner.
    bounded: std::sync::atomic::AtomicBool,
}

impl ProgressLine {
    /// JSON lines with `json`, a bar when stderr is a terminal, else nothing.
    pub(crate) fn new(json: bool) -> Self {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(spinner_style());
            bar
        });
        Self {
            json,
            bar,
            bounded: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Shows one update.
    pub(crate) fn update(&self, p: &Progress) {
        if self.json {
            println!(
                "{}",
                json!({"event": "progress", "progress": p, "rate": p.rate(), "eta_secs": p.eta_secs()})
            );
            return;
        }
        let Some(bar) = &self.bar else { return };
        if let Some(total) = p.expected_bytes.filter(|t| *t > 0) {
            if !self
                .bounded
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                bar.set_style(bar_style());
            }
            bar.set_length(total.max(p.bytes));
        }
        let eta = p
            .eta_secs()
            .map(|s| format!(", ETA {}:{:02}", s / 60, s % 60))
            .unwrap_or_default();
        bar.set_message(format!(
            "{} files, {}, {}/s{eta}",
            p.files,
            human_bytes(p.bytes),
            human_bytes(p.rate() as u64)
        ));
        bar.set_position(p.bytes);
    }

    /// Prints a line above the bar (the bar redrawn below it).
    pub(crate) fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }

    /// Ends the bar, leaving the terminal line free for the result.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{bar:32} {percent:>3}%  {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("█▉▊▋▌▍▎▏ ")
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}
