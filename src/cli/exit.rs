//! How a command ends, for people and scripts: the exit status (0 ok, 1 the check found
//! problems, 2 the command could not run; see `EXIT_STATUS_HELP`) and the error, printed once.
//!
//! Errors print one cause per line. Many layers put their source's text in their own message
//! (and keep it as `source()` too), so a cause whose text the line before already holds is
//! skipped: a broker's refusal is printed once, not once per layer.

use std::error::Error;

/// The command ran to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Success.
    Done,
    /// A check (verify, reconcile) ran and found problems; its report lists them.
    ProblemsFound,
}

/// Success.
pub const EXIT_OK: u8 = 0;
/// The check ran and found problems.
pub const EXIT_PROBLEMS: u8 = 1;
/// The command could not run (bad arguments: clap exits with the same status).
pub const EXIT_CANNOT_RUN: u8 = 2;

/// The exit status of a command's result.
pub fn exit_status<E>(result: &Result<Outcome, E>) -> u8 {
    match result {
        Ok(Outcome::Done) => EXIT_OK,
        Ok(Outcome::ProblemsFound) => EXIT_PROBLEMS,
        Err(_) => EXIT_CANNOT_RUN,
    }
}

/// `error: <error>` then `  caused by: <source>` for each cause not already said
/// (`errors::chain_lines`).
pub fn error_lines(error: &(dyn Error + 'static)) -> Vec<String> {
    crate::errors::chain_lines(error)
        .into_iter()
        .enumerate()
        .map(|(i, text)| {
            if i == 0 {
                format!("error: {text}")
            } else {
                format!("  caused by: {text}")
            }
        })
        .collect()
}

/// Prints `error_lines` on stderr.
pub fn print_error(error: &(dyn Error + 'static)) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    for line in error_lines(error) {
        let line = super::logging::scrub(&line);
        let _ = writeln!(stderr, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::errors::test_support::layers as chain;

    #[test]
    fn the_exit_status_says_how_the_command_ended() {
        assert_eq!(exit_status::<()>(&Ok(Outcome::Done)), 0);
        assert_eq!(exit_status::<()>(&Ok(Outcome::ProblemsFound)), 1);
        assert_eq!(exit_status(&Err::<Outcome, _>("no lake")), 2);
        assert_eq!(
            [EXIT_OK, EXIT_PROBLEMS, EXIT_CANNOT_RUN],
            [0, 1, 2],
            "the statuses --help documents"
        );
    }

    #[test]
    fn each_cause_is_printed_once() {
        let refused = "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN";
        let error = chain(&[
            &format!("the broker is unreachable after 3 attempts: cannot connect: {refused}"),
            &format!("cannot connect: {refused}"),
            refused,
        ]);
        assert_eq!(
            error_lines(&error),
            vec![format!(
                "error: the broker is unreachable after 3 attempts: cannot connect: {refused}"
            )]
        );
    }

    #[test]
    fn causes_that_add_something_are_kept_in_order() {
        let error = chain(&["cannot open the lake", "permission denied", "os error 13"]);
        assert_eq!(
            error_lines(&error),
            vec![
                "error: cannot open the lake",
                "  caused by: permission denied",
                "  caused by: os error 13"
            ]
        );
        // A skipped cause's own causes are compared with the last line printed.
        let error = chain(&["reading x: timed out", "timed out", "socket closed"]);
        assert_eq!(
            error_lines(&error),
            vec!["error: reading x: timed out", "  caused by: socket closed"]
        );
        assert_eq!(error_lines(&chain(&["alone"])), vec!["error: alone"]);
    }
}
