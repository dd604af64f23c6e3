//! The one progress reporter of the CLI, on stderr: an indicatif bar when stderr is a terminal,
//! otherwise a plain line at most every [`PLAIN_INTERVAL`] (logs and CI keep a readable trace).
//! The commands report through their own small interfaces (`audit::progress::ReadProgress`,
//! the rebuild's and the workload's callbacks); this turns each into a [`Step`].
//!
//! A new long command (drill, compact, ...) uses it the same way: make one [`Reporter::new`]
//! in its CLI module, call [`Reporter::show`] with a [`Step`] as often as it likes (plain lines
//! are rate-limited here, the bar redraws at most 20 times a second), and [`Reporter::finish`]
//! at the end; or pass the reporter where a `ReadProgress` is wanted (reads of the lake).

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
    interval: Duration,
    state: Mutex<State>,
}

struct State {
    bar: Option<ProgressBar>,
    started: Instant,
    printed: Instant,
    last: Option<Step>,
    /// Where plain lines go (stderr, or a buffer in tests).
    out: Box<dyn Write + Send>,
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
        Reporter::with_output(terminal, PLAIN_INTERVAL, Box::new(std::io::stderr()))
    }

    fn with_output(terminal: bool, interval: Duration, out: Box<dyn Write + Send>) -> Reporter {
        let now = Instant::now();
        Reporter {
            terminal,
            interval,
            state: Mutex::new(State {
                bar: None,
                started: now,
                printed: now,
                last: None,
                out,
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
        } else if state.printed.elapsed() >= self.interval {
            state.printed = Instant::now();
            let line = plain_line(&step, state.started.elapsed());
            print_plain(&mut state.out, &line);
        }
        state.last = Some(step);
    }

    /// Leaves the bar, or prints the last step as a plain line.
    pub fn finish(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bar) = state.bar.take() {
            bar.finish();
        } else if let Some(step) = state.last.take() {
            let line = plain_line(&step, state.started.elapsed());
            print_plain(&mut state.out, &line);
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

/// `verify: 12/40 segments, 393216 events, 150000 events/s, 2.6 s, ETA 6 s`: the ETA assumes
/// the rest goes as fast as what is done (none before anything is done, none once all is).
pub fn plain_line(step: &Step, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut line = format!(
        "{}: {}/{} {}, {} events, {:.0} events/s, {:.1} s",
        step.label,
        step.done,
        step.total,
        step.unit,
        step.events,
        step.events as f64 / secs,
        elapsed.as_secs_f64()
    );
    if let Some(eta) = eta(step, elapsed) {
        line.push_str(&format!(", ETA {}", humantime::format_duration(eta)));
    }
    line
}

/// The time left if the rest goes at the pace so far, to the second.
fn eta(step: &Step, elapsed: Duration) -> Option<Duration> {
    if step.done == 0 || step.done >= step.total {
        return None;
    }
    let left = (step.total - step.done) as f64 * elapsed.as_secs_f64() / step.done as f64;
    Some(Duration::from_secs(left.round() as u64))
}

fn print_plain(out: &mut Box<dyn Write + Send>, line: &str) {
    // Progress is best effort: a closed stderr must not stop the command.
    let _ = writeln!(out, "{line}");
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
            "verify: 12/40 segments, 300 events, 100 events/s, 3.0 s, ETA 7s"
        );
        let done = Step {
            done: 40,
            ..step.clone()
        };
        assert!(!plain_line(&done, Duration::from_secs(3)).contains("ETA"));
        let none = Step { done: 0, ..step };
        assert!(!plain_line(&none, Duration::from_secs(3)).contains("ETA"));
    }

    /// A shared buffer standing in for a redirected stderr.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn redirected_output_gets_periodic_plain_lines_and_a_last_one() {
        let captured = Captured::default();
        let reporter =
            Reporter::with_output(false, Duration::from_millis(20), Box::new(captured.clone()));
        let step = |done| Step {
            label: "rebuild".into(),
            done,
            total: 4,
            unit: "batches",
            events: done * 10,
        };
        reporter.show(step(1)); // too soon after the start: not printed
        std::thread::sleep(Duration::from_millis(30));
        reporter.show(step(2));
        reporter.show(step(3)); // too soon after the last line
        reporter.finish();
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].starts_with("rebuild: 2/4 batches, 20 events,"),
            "{text}"
        );
        assert!(lines[0].contains(", ETA "), "{text}");
        assert!(
            lines[1].starts_with("rebuild: 3/4 batches, 30 events,"),
            "{text}"
        );
        assert!(
            !text.contains('\u{1b}'),
            "no terminal escapes when redirected: {text}"
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
