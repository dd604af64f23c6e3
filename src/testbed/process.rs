//! The child processes of the test bed: spawned with their output tail kept for error
//! messages, killed and reaped on drop; and the temp dirs and loopback ports they use.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{unique_name, TestbedError, TAIL_LINES};

/// The last lines a child process printed (stdout and stderr interleaved), filled by reader
/// threads.
#[derive(Clone, Default)]
pub(super) struct OutputTail {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl OutputTail {
    pub(super) fn follow(&self, stream: impl Read + Send + 'static) {
        let lines = Arc::clone(&self.lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let Ok(mut lines) = lines.lock() else { break };
                if lines.len() == TAIL_LINES {
                    lines.pop_front();
                }
                lines.push_back(line);
            }
        });
    }

    pub(super) fn text(&self) -> String {
        match self.lines.lock() {
            Ok(lines) => lines.iter().fold(String::new(), |mut s, l| {
                let _ = writeln!(s, "  {l}");
                s
            }),
            Err(_) => String::from("  <output unavailable>"),
        }
    }

    pub(super) fn contains(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .map(|lines| lines.iter().any(|l| l.contains(needle)))
            .unwrap_or(false)
    }
}

/// A child process that is killed (and reaped) when dropped.
pub(super) struct Process {
    child: Child,
    pub(super) command: String,
    pub(super) tail: OutputTail,
}

impl Process {
    pub(super) fn spawn(
        binary: &Path,
        args: &[String],
        cwd: &Path,
    ) -> Result<Process, TestbedError> {
        let command = command_line(binary, args);
        let mut child = Command::new(binary)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| TestbedError::Io {
                what: format!("spawning `{command}`"),
                source,
            })?;
        let tail = OutputTail::default();
        if let Some(out) = child.stdout.take() {
            tail.follow(out);
        }
        if let Some(err) = child.stderr.take() {
            tail.follow(err);
        }
        Ok(Process {
            child,
            command,
            tail,
        })
    }

    /// `Some(status)` once the process has exited.
    pub(super) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub(super) fn exited_error(&mut self, status: ExitStatus) -> TestbedError {
        // Give the reader threads a moment to drain the last lines.
        std::thread::sleep(Duration::from_millis(50));
        TestbedError::ProcessExited {
            command: self.command.clone(),
            status: status.to_string(),
            tail: self.tail.text(),
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; returns the exit status.
    pub(super) async fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.exited() {
            return Some(status);
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill()
    }

    fn kill(&mut self) -> Option<ExitStatus> {
        if let Some(status) = self.exited() {
            return Some(status);
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(super) fn command_line(binary: &Path, args: &[String]) -> String {
    let mut s = binary.display().to_string();
    for a in args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

/// A directory under the system temp dir, removed (with its contents) on drop.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new(prefix: &str) -> Result<TempDir, TestbedError> {
        let path = std::env::temp_dir().join(unique_name(prefix));
        std::fs::create_dir_all(&path).map_err(|source| TestbedError::Io {
            what: format!("creating {}", path.display()),
            source,
        })?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn free_port() -> Result<u16, TestbedError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|source| TestbedError::Io {
        what: "binding 127.0.0.1:0 to find a free port".into(),
        source,
    })?;
    let port = listener
        .local_addr()
        .map_err(|source| TestbedError::Io {
            what: "reading the bound port".into(),
            source,
        })?
        .port();
    Ok(port)
}
