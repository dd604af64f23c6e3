//! Progress of a long read of the lake, so that a person watching a multi-gigabyte verify
//! knows it is moving and how fast. The audit code reports through [`ReadProgress`]; how (and
//! whether) it is shown is the caller's business (the CLI draws a bar on a terminal).

use std::time::{Duration, Instant};

/// Where a read of the lake reports its progress. Called after every segment: an
/// implementation decides how often to show it.
pub trait ReadProgress: Send + Sync {
    /// `segments_done` of `segments_total` segments read so far, holding `events_done` events.
    fn segments_read(
        &self,
        label: &'static str,
        segments_done: usize,
        segments_total: usize,
        events_done: u64,
    );

    /// The read is over.
    fn finished(&self, label: &'static str, segments_done: usize, events_done: u64) {
        let _ = (label, segments_done, events_done);
    }
}

/// Reports nowhere (tests, and callers that only want the report).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ReadProgress for NoProgress {
    fn segments_read(&self, _: &'static str, _: usize, _: usize, _: u64) {}
}

/// One read of the lake: its label, its size and its start, and where it reports.
pub struct Progress<'a> {
    label: &'static str,
    segments_total: usize,
    started: Instant,
    sink: &'a dyn ReadProgress,
}

impl<'a> Progress<'a> {
    pub fn new(
        label: &'static str,
        segments_total: usize,
        sink: &'a dyn ReadProgress,
    ) -> Progress<'a> {
        Progress {
            label,
            segments_total,
            started: Instant::now(),
            sink,
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
        self.sink
            .segments_read(self.label, segments_done, self.segments_total, events_done);
    }

    pub fn finish(&mut self, segments_done: usize, events_done: u64) {
        self.sink.finished(self.label, segments_done, events_done);
    }
}
