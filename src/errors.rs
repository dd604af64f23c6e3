//! An error and its causes, each printed once: every error type keeps its cause in `source()`
//! and leaves it out of its own message, and these helpers walk the chain for logs and for the
//! final message of a command.

use std::error::Error;

/// Causes followed at most, a bound against a cyclic `source()` chain.
const CHAIN_DEPTH_MAX: usize = 16;

/// The messages of `error` and its causes, outermost first. A cause whose text is already part
/// of the message before it is skipped, so a library that repeats its source's text in its own
/// message does not print it twice.
pub fn chain_lines(error: &dyn Error) -> Vec<String> {
    let mut lines: Vec<String> = vec![error.to_string()];
    let mut cause = error.source();
    while let Some(current) = cause {
        if lines.len() == CHAIN_DEPTH_MAX {
            break;
        }
        let text = current.to_string();
        let last = lines.last().map(String::as_str).unwrap_or("");
        if !text.is_empty() && !last.contains(&text) {
            lines.push(text);
        }
        cause = current.source();
    }
    lines
}

/// `error` and its causes on one line, separated by ": " (for log fields).
pub fn one_line(error: &dyn Error) -> String {
    chain_lines(error).join(": ")
}

/// Chained errors for tests of code that prints errors.
#[cfg(test)]
pub(crate) mod test_support {
    /// One layer of a chain: its message, and the layer below as `source()`.
    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    pub(crate) struct Layer {
        text: String,
        #[source]
        source: Option<Box<Layer>>,
    }

    /// A chain of layers with these messages, outermost first.
    pub(crate) fn layers(texts: &[&str]) -> Layer {
        texts
            .iter()
            .rev()
            .fold(None, |source, text| {
                Some(Layer {
                    text: text.to_string(),
                    source: source.map(Box::new),
                })
            })
            .expect("at least one layer")
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::layers;
    use super::*;
    #[test]
    fn each_cause_is_printed_once() {
        let error = layers(&[
            "cannot open the lake",
            "object store failed",
            "connection refused",
        ]);
        assert_eq!(
            chain_lines(&error),
            [
                "cannot open the lake",
                "object store failed",
                "connection refused"
            ]
        );
        assert_eq!(
            one_line(&error),
            "cannot open the lake: object store failed: connection refused"
        );
    }

    #[test]
    fn a_cause_repeated_in_its_parent_is_skipped() {
        let error = layers(&[
            "broker unreachable: ACCESS_REFUSED",
            "ACCESS_REFUSED",
            "io: reset",
        ]);
        assert_eq!(
            chain_lines(&error),
            ["broker unreachable: ACCESS_REFUSED", "io: reset"]
        );
    }
}
