//! Which active files of the `transfers` table a compaction pass merges, and into how many
//! outputs: a pure function of the file list and the consumer position, so it can be tested
//! without a lake.
//!
//! The rule: time is cut into aligned windows of three sizes — five minutes, one hour, one UTC
//! day (`WINDOW_LEVELS_NS`). A window is *closed* once the position (the last committed event)
//! has reached its end: the exporter only ever writes events after the position, so no file will
//! ever start inside a closed window again, and merging it is final for that level. Each file
//! goes to the largest closed window that holds its first timestamp; the files of one window
//! (consecutive in time, since windows are aligned and files do not overlap) merge into one
//! output, split into runs of at most `INPUT_BYTES_MAX` input bytes and `INPUT_FILES_MAX` files.
//!
//! Why these sizes: an active stream seals a segment every second, so the open five minutes hold
//! at most ~300 segments, the open hour at most 11 five-minute files plus those, a closed hour
//! one file and a closed day one file per `INPUT_BYTES_MAX` of data (a day at 5 events/s is one
//! file). That bounds a day to well under 48 files whatever the rate up to ~10^7 events/day, and
//! each event is rewritten at most three times. The byte cap bounds what one merge holds in
//! memory (the inputs are decoded whole, ~250 bytes per event) and keeps files in the size range
//! engines read well; the file cap bounds the remove actions of one commit.

use std::ops::Range;

use crate::timefmt::{NS_PER_DAY, NS_PER_SECOND};

/// The window sizes, smallest first (nanoseconds; each divides the next).
pub const WINDOW_LEVELS_NS: [u64; 3] = [300 * NS_PER_SECOND, 3_600 * NS_PER_SECOND, NS_PER_DAY];
/// Input bytes of one merge at most (a single larger file is left as it is).
pub const INPUT_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// Input files of one merge at most.
pub const INPUT_FILES_MAX: usize = 4_096;

/// What the plan needs to know of an active transfers file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanFile {
    pub first_timestamp: u64,
    pub last_timestamp: u64,
    pub size: u64,
}

/// One merge: the files `inputs` (indices into the sorted file list) become one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    pub inputs: Range<usize>,
    /// The window size it was planned at (one of `WINDOW_LEVELS_NS`).
    pub window_ns: u64,
}

/// The largest closed window holding `first` when the position is `position`: `(size, index)`.
fn closed_window(first: u64, position: u64) -> Option<(u64, u64)> {
    WINDOW_LEVELS_NS.iter().rev().find_map(|&size| {
        let index = first / size;
        // The window is index*size ..= (index+1)*size - 1; closed once the position reached
        // its last nanosecond.
        let last = index.checked_add(1)?.checked_mul(size)? - 1;
        (last <= position).then_some((size, index))
    })
}

/// The merges of one pass over `files` (sorted by first timestamp, not overlapping) when the
/// last committed event is at `position`. Every merge has at least two inputs; inputs of
/// different merges are disjoint; a file is in a merge only if its window is closed.
pub fn plan(files: &[PlanFile], position: u64) -> Vec<Merge> {
    for w in files.windows(2) {
        assert!(
            w[0].last_timestamp < w[1].first_timestamp,
            "active files overlap or are unsorted"
        );
    }
    let mut merges = Vec::new();
    let mut start = 0;
    while start < files.len() {
        let key = closed_window(files[start].first_timestamp, position);
        let mut end = start + 1;
        while end < files.len() && closed_window(files[end].first_timestamp, position) == key {
            end += 1;
        }
        if let Some((window_ns, _)) = key {
            runs(files, start..end, window_ns, &mut merges);
        }
        start = end;
    }
    merges
}

/// Splits the files of one window into runs within the caps; runs of two or more files merge.
fn runs(files: &[PlanFile], group: Range<usize>, window_ns: u64, merges: &mut Vec<Merge>) {
    let mut run_start = group.start;
    let mut bytes = 0u64;
    for i in group.clone() {
        let size = files[i].size;
        let full = i - run_start >= INPUT_FILES_MAX || bytes.saturating_add(size) > INPUT_BYTES_MAX;
        if full && i > run_start {
            if i - run_start >= 2 {
                merges.push(Merge {
                    inputs: run_start..i,
                    window_ns,
                });
            }
            run_start = i;
            bytes = 0;
        }
        bytes = bytes.saturating_add(size);
    }
    if group.end - run_start >= 2 {
        merges.push(Merge {
            inputs: run_start..group.end,
            window_ns,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY0: u64 = 20_000 * NS_PER_DAY; // 2024-10-04T00:00:00Z
    const MIN: u64 = 60 * NS_PER_SECOND;
    const HOUR: u64 = 60 * MIN;

    /// One-second segments starting at `from`, `count` of them, `size` bytes each.
    fn seconds(from: u64, count: u64, size: u64) -> Vec<PlanFile> {
        (0..count)
            .map(|i| PlanFile {
                first_timestamp: from + i * NS_PER_SECOND,
                last_timestamp: from + i * NS_PER_SECOND + NS_PER_SECOND / 2,
                size,
            })
            .collect()
    }

    fn last_of(files: &[PlanFile]) -> u64 {
        files.last().map_or(0, |f| f.last_timestamp)
    }

    /// Applies a plan: the merged files become one file each (sizes add up).
    fn apply(files: &[PlanFile], merges: &[Merge]) -> Vec<PlanFile> {
        let mut out = Vec::new();
        let mut i = 0;
        for m in merges {
            out.extend_from_slice(&files[i..m.inputs.start]);
            let inputs = &files[m.inputs.clone()];
            out.push(PlanFile {
                first_timestamp: inputs[0].first_timestamp,
                last_timestamp: inputs[inputs.len() - 1].last_timestamp,
                size: inputs.iter().map(|f| f.size).sum(),
            });
            i = m.inputs.end;
        }
        out.extend_from_slice(&files[i..]);
        out
    }

    #[test]
    fn open_windows_are_left_alone() {
        // Four minutes of segments and the position at the last of them: no window is closed.
        let files = seconds(DAY0, 240, 15_000);
        assert!(plan(&files, last_of(&files)).is_empty());
    }

    #[test]
    fn closed_five_minute_windows_merge_and_the_open_one_does_not() {
        let files = seconds(DAY0, 12 * 60, 15_000); // 12 minutes
        let merges = plan(&files, last_of(&files));
        // 00:00-00:05 and 00:05-00:10 are closed; 00:10-00:12 is open.
        assert_eq!(
            merges,
            vec![
                Merge {
                    inputs: 0..300,
                    window_ns: 5 * MIN
                },
                Merge {
                    inputs: 300..600,
                    window_ns: 5 * MIN
                },
            ]
        );
    }

    #[test]
    fn a_closed_hour_is_one_file_and_a_closed_day_is_one_file() {
        // A whole day and a bit of the next at one segment per second, compacted pass by pass
        // as the position moves: the closed day ends as one file.
        let day = seconds(DAY0, 86_400, 150); // 13 MB: under the cap
        let mut files = Vec::new();
        for hour in day.chunks(3_600) {
            files.extend_from_slice(hour);
            let position = last_of(&files);
            files = apply(&files, &plan(&files, position));
            let open_hour = files
                .iter()
                .filter(|f| f.first_timestamp / HOUR == position / HOUR)
                .count();
            // Closed hours are one file each; the open hour holds its closed five-minute
            // files and the open five minutes' segments.
            assert!(files.len() <= 24 + 12 + 300, "{} files", files.len());
            assert!(open_hour <= 12 + 300);
        }
        // The next day starts: the previous one is closed.
        let next = seconds(DAY0 + NS_PER_DAY, 10, 150);
        files.extend_from_slice(&next);
        files = apply(&files, &plan(&files, last_of(&files)));
        let day_files: Vec<_> = files
            .iter()
            .filter(|f| f.first_timestamp < DAY0 + NS_PER_DAY)
            .collect();
        assert_eq!(day_files.len(), 1, "{day_files:?}");
        assert_eq!(day_files[0].size, 86_400 * 150);
        assert_eq!(day_files[0].first_timestamp, DAY0);
        // A second pass has nothing more to do for the closed day.
        let again = plan(&files, last_of(&files));
        assert!(again
            .iter()
            .all(|m| files[m.inputs.start].first_timestamp >= DAY0 + NS_PER_DAY));
    }

    #[test]
    fn the_caps_split_a_window_and_a_big_file_stays() {
        let mb = 1024 * 1024;
        let mut files = seconds(DAY0, 5, 5 * mb); // 25 MiB in five files
        files.push(PlanFile {
            first_timestamp: DAY0 + 10 * NS_PER_SECOND,
            last_timestamp: DAY0 + 11 * NS_PER_SECOND,
            size: 40 * mb,
        });
        let merges = plan(&files, DAY0 + NS_PER_DAY); // the day is closed
        assert_eq!(
            merges,
            vec![Merge {
                inputs: 0..3,
                window_ns: NS_PER_DAY
            }]
            .into_iter()
            .chain([Merge {
                inputs: 3..5,
                window_ns: NS_PER_DAY
            }])
            .collect::<Vec<_>>()
        );
        for m in &merges {
            let bytes: u64 = files[m.inputs.clone()].iter().map(|f| f.size).sum();
            assert!(bytes <= INPUT_BYTES_MAX);
        }
        // Many tiny files: at most INPUT_FILES_MAX per merge.
        let tiny = seconds(DAY0, 10_000, 100);
        let merges = plan(&tiny, DAY0 + NS_PER_DAY);
        assert!(merges.iter().all(|m| m.inputs.len() <= INPUT_FILES_MAX));
        assert_eq!(merges.iter().map(|m| m.inputs.len()).sum::<usize>(), 10_000);
    }

    #[test]
    fn merges_are_disjoint_consecutive_and_never_single() {
        // Irregular files over two days, the position in the second.
        let mut files = Vec::new();
        let mut t = DAY0 + 7;
        let mut step = 1;
        while t < DAY0 + NS_PER_DAY + 5 * HOUR {
            files.push(PlanFile {
                first_timestamp: t,
                last_timestamp: t,
                size: 1_000 + step % 7_000,
            });
            step = (step * 7 + 13) % (20 * MIN) + 1;
            t += step;
        }
        let position = DAY0 + NS_PER_DAY + 3 * HOUR;
        let merges = plan(&files, position);
        let mut previous_end = 0;
        for m in &merges {
            assert!(m.inputs.len() >= 2);
            assert!(m.inputs.start >= previous_end);
            previous_end = m.inputs.end;
            let window = m.window_ns;
            let key = files[m.inputs.start].first_timestamp / window;
            for f in &files[m.inputs.clone()] {
                assert_eq!(f.first_timestamp / window, key, "one window per merge");
                assert!((key + 1) * window - 1 <= position, "only closed windows");
            }
        }
    }

    #[test]
    #[should_panic(expected = "overlap")]
    fn overlapping_input_is_a_programmer_error() {
        let mut files = seconds(DAY0, 2, 10);
        files[1].first_timestamp = files[0].last_timestamp;
        plan(&files, DAY0 + NS_PER_DAY);
    }
}
