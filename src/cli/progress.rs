//! The one progress reporter of the CLI, on stderr: an indicatif bar when stderr is a terminal,
//! otherwise a plain line at most every [`PLAIN_INTERVAL`] (logs and CI keep a readable trace).
//! The commands report through their own small interfaces (`audit::progress::ReadProgress`,
//! the rebuild's and the workload's callbacks); this turns each into a [`Step`].

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::audit::progress::ReadProgress;

/// How often a plain progress line is printed when stderr is not a terminal.
pub const PLAIN_INTERVAL: Duration = Duration::from_secs(2);

const BAR_TEMPLATE: &str = "{prefix} [{bar:30}] {pos}/{len} {msg}  {elapsed_precise} ETA {eta}";

/// Where a long command is.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub label: String,
    pub done: u64,
    pub total: u64,
    /// What `done` and `total` count (segments, objects, transfers).
    pub unit: &'static str,
    /// Events handled so far (the rate is of these).
    pub events: u64,
}

pub struct Reporter {
    terminal: bool,
    state: Mutex<State>,
}

struct State {
    bar: Option<ProgressBar>,
    started: Instant,
    printed: Instant,
    last: Option<Step>,
}

impl Default for Reporter {
    fn default() -> Self {
        Reporter::new()
    }
}

impl Reporter {
    /// A bar if stderr is a terminal, plain lines otherwise.
    pub fn new() -> Reporter {
        Reporter::with_terminal(std::io::stderr().is_terminal())
    }

    fn with_terminal(terminal: bool) -> Reporter {
        let now = Instant::now();
        Reporter {
            terminal,
            state: Mutex::new(State {
                bar: None,
                started: now,
                printed: now,
                last: None,
            }),
        }
    }

    pub fn show(&self, step: Step) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if self.terminal {
            let bar = state.bar.get_or_insert_with(new_bar);
            bar.set_prefix(step.label.clone());
            bar.set_length(step.total);
            bar.set_position(step.done);
            bar.set_message(format!("{}, {} events", step.unit, step.events));
        } else if state.printed.elapsed() >= PLAIN_INTERVAL {
            state.printed = Instant::now();
            print_plain(&step, state.started.elapsed());
        }
        state.last = Some(step);
    }

    /// Leaves the bar, or prints the last step as a plain line.
    pub fn finish(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bar) = state.bar.take() {
            bar.finish();
        } else if let Some(step) = state.last.take() {
            print_plain(&step, state.started.elapsed());
        }
        state.last = None;
    }
}

fn new_bar() -> ProgressBar {
    let style = ProgressStyle::with_template(BAR_TEMPLATE)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#>.");
    ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(style)
}

/// `verify: 12/40 segments, 393216 events, 150000 events/s, 2.6 s`
pub fn plain_line(step: &Step, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    format!(
        "{}: {}/{} {}, {} events, {:.0} events/s, {:.1} s",
        step.label,
        step.done,
        step.total,
        step.unit,
        step.events,
        step.events as f64 / secs,
        elapsed.as_secs_f64()
    )
}

fn print_plain(step: &Step, elapsed: Duration) {
    // Progress is best effort: a closed stderr must not stop the command.
    let _ = writeln!(std::io::stderr().lock(), "{}", plain_line(step, elapsed));
}

impl ReadProgress for Reporter {
    fn segments_read(
        &self,
        label: &'static str,
        segments_done: usize,
        segments_total: usize,
        events_done: u64,
    ) {
        self.show(Step {
            label: label.to_string(),
            done: segments_done as u64,
            total: segments_total as u64,
            unit: "segments",
            events: events_done,
        });
    }

    fn finished(&self, _label: &'static str, _segments_done: usize, _events_done: u64) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_say_where_and_how_fast() {
        let step = Step {
            label: "verify".into(),
            done: 12,
            total: 40,
            unit: "segments",
            events: 300,
        };
        assert_eq!(
            plain_line(&step, Duration::from_secs(3)),
            "verify: 12/40 segments, 300 events, 100 events/s, 3.0 s"
        );
    }

    #[test]
    fn the_last_step_is_kept_until_finish() {
        let reporter = Reporter::with_terminal(false);
        reporter.segments_read("balances", 1, 2, 10);
        let last = reporter.state.lock().unwrap().last.clone();
        assert_eq!(last.map(|s| (s.done, s.total, s.events)), Some((1, 2, 10)));
        reporter.finish();
        assert!(reporter.state.lock().unwrap().last.is_none());
    }
}
