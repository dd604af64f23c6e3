//! Progress of a long read on stderr, at most once per interval, so that a person watching a
//! multi-gigabyte verify knows it is moving and how fast; the report itself goes to stdout.

use std::time::{Duration, Instant};

/// How often a progress line is printed.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

pub struct Progress {
    label: &'static str,
    segments_total: usize,
    started: Instant,
    printed: Instant,
    enabled: bool,
}

impl Progress {
    pub fn new(label: &'static str, segments_total: usize, enabled: bool) -> Progress {
        let now = Instant::now();
        Progress {
            label,
            segments_total,
            started: now,
            printed: now,
            enabled,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Events per second since the start.
    pub fn rate(&self, events: u64) -> f64 {
        events as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    pub fn tick(&mut self, segments_done: usize, events_done: u64) {
        if self.enabled && self.printed.elapsed() >= PROGRESS_INTERVAL {
            self.printed = Instant::now();
            self.print(segments_done, events_done);
        }
    }

    pub fn finish(&mut self, segments_done: usize, events_done: u64) {
        if self.enabled {
            self.print(segments_done, events_done);
        }
    }

    fn print(&self, segments_done: usize, events_done: u64) {
        eprintln!(
            "{}: {segments_done}/{} segments, {events_done} events, {:.0} events/s, {:.1} s",
            self.label,
            self.segments_total,
            self.rate(events_done),
            self.elapsed().as_secs_f64()
        );
    }
}
