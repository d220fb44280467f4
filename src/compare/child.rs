//! Server child processes: start one, learn its address, stop it with a
//! signal, and say how it ended.
//!
//! A `dispatchlab serve` child is the runner's own executable started with
//! `serve … --addr 127.0.0.1:0`; it prints `dispatchlab: listening on
//! http://127.0.0.1:PORT/ (…)` as its first line, which is read with a
//! timeout. Every child
//!
//! * runs in its own process group, so that a Ctrl-C at the terminal reaches
//!   only the runner, which then stops the child itself;
//! * gets `SIGTERM` if the runner dies (`PR_SET_PDEATHSIG`), so no server
//!   outlives an aborted comparison;
//! * is pinned to the server CPU set before it executes (`pre_exec`);
//! * writes its standard error to a log file beside the results.
//!
//! Stopping sends `SIGTERM` (the graceful shutdown of both dispatchlab and
//! nginx) and waits; a child that has not exited by the deadline is killed,
//! and that is reported as a failure of its row, as is a non-zero exit.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::pin::CpuSet;
use crate::server::Announce;

/// How long a child may take to announce its address (or accept a
/// connection, for reference servers).
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a child may take to exit after `SIGTERM`. The dispatchlab
/// children are started with a shorter `--shutdown-timeout`
/// ([`ServerSpec::serve_args`](super::ServerSpec::serve_args)), so a server
/// that gives up on its in-flight requests exits 1 before this.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A running server child.
#[derive(Debug)]
pub struct ServerChild {
    child: Child,
    /// The address it serves on.
    pub addr: SocketAddr,
    /// The command line that started it, for the result row.
    pub command: String,
    /// The worker count it announced (dispatchlab), or was configured with.
    pub workers: Option<u32>,
    /// Kept alive as long as the child runs (a reference server's config).
    _keep: Option<Box<dyn std::any::Any + Send>>,
}

/// Why a child could not be started, or how it ended badly.
#[derive(Debug)]
pub enum ChildError {
    /// The program could not be executed.
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// It exited before it was ready.
    ExitedEarly(String),
    /// It did not become ready in time (it was killed).
    NotReady(String),
}

impl fmt::Display for ChildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildError::Spawn { program, source } => write!(f, "cannot start {program}: {source}"),
            ChildError::ExitedEarly(what) | ChildError::NotReady(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for ChildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ChildError::Spawn { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Prepares a command the way every child is started: own process group,
/// `SIGTERM` when the runner dies, pinned to `cpus`, stdin closed, stderr to
/// `stderr`.
pub fn prepare(command: &mut Command, cpus: Option<&CpuSet>, stderr: File) {
    command
        .stdin(Stdio::null())
        .stderr(Stdio::from(stderr))
        .process_group(0);
    let cpus = cpus.cloned();
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (prctl, sched_setaffinity), on data prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(cpus) = &cpus {
                cpus.pin_current_thread()?;
            }
            Ok(())
        });
    }
}

/// Quotes an argument for a POSIX shell when it needs it.
pub fn quote(arg: &str) -> String {
    if !arg.is_empty() && !arg.contains(|c: char| c.is_whitespace() || "\"'$\\`*?[]{}()<>|&;#~!".contains(c)) {
        return arg.to_owned();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// Renders a command line for the record (arguments quoted where a shell
/// would split or expand them).
pub fn render(program: &Path, args: &[String]) -> String {
    std::iter::once(quote(&program.display().to_string()))
        .chain(args.iter().map(|a| quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

impl ServerChild {
    /// Starts `exe ARGS…` (a `dispatchlab serve` that listens on a free
    /// port) and waits for the line that announces its address.
    pub fn start_dispatchlab(
        exe: &Path,
        args: &[String],
        cpus: Option<&CpuSet>,
        stderr: File,
    ) -> Result<Self, ChildError> {
        let rendered = render(exe, args);
        let mut command = Command::new(exe);
        command.args(args).stdout(Stdio::piped());
        prepare(&mut command, cpus, stderr);
        let mut child = command.spawn().map_err(|source| ChildError::Spawn {
            program: exe.display().to_string(),
            source,
        })?;
        let Some(stdout) = child.stdout.take() else {
            kill(&mut child);
            return Err(ChildError::NotReady(
                "the server's standard output was not captured".into(),
            ));
        };
        // The first line is the address; the rest is drained so that the
        // server never writes into a full or closed pipe.
        let (sender, lines) = mpsc::channel();
        thread::Builder::new()
            .name("compare-child-stdout".into())
            .spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut line = String::new();
                let first = reader.read_line(&mut line).map(|_| line);
                let _ = sender.send(first);
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
            })
            .map_err(|source| ChildError::Spawn {
                program: "a thread to read the server's output".into(),
                source,
            })?;
        let line = match lines.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) if !line.is_empty() => line,
            Ok(_) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = wait_briefly(&mut child);
                return Err(ChildError::ExitedEarly(format!(
                    "server exited before announcing its address ({})",
                    describe(status)
                )));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                kill(&mut child);
                return Err(ChildError::NotReady(format!(
                    "server did not announce its address within {} s (killed)",
                    START_TIMEOUT.as_secs()
                )));
            }
        };
        let Ok(announced) = line.parse::<Announce>() else {
            kill(&mut child);
            return Err(ChildError::NotReady(format!(
                "server printed {:?} instead of its address (killed)",
                line.trim()
            )));
        };
        Ok(Self {
            child,
            addr: announced.addr,
            command: rendered,
            workers: u32::try_from(announced.workers).ok(),
            _keep: None,
        })
    }

    /// Wraps a started child that serves on `addr`, once it accepts
    /// connections (reference servers do not announce themselves).
    pub fn adopt(
        mut child: Child,
        addr: SocketAddr,
        command: String,
        workers: Option<u32>,
        keep: Box<dyn std::any::Any + Send>,
    ) -> Result<Self, ChildError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(ChildError::ExitedEarly(format!(
                    "server exited before accepting connections ({})",
                    describe(Some(status))
                )));
            }
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() >= deadline {
                kill(&mut child);
                return Err(ChildError::NotReady(format!(
                    "server did not accept connections on {addr} within {} s (killed)",
                    START_TIMEOUT.as_secs()
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(Self {
            child,
            addr,
            command,
            workers,
            _keep: Some(keep),
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(description)` when the child has already exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(describe(Some(status))),
            _ => None,
        }
    }

    /// Sends `SIGTERM` and waits up to `timeout`; kills it after that.
    /// `Ok` when it exited with status 0; otherwise what happened.
    pub fn stop(mut self, timeout: Duration) -> Result<(), String> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Err(format!("server had already exited ({})", describe(Some(status))));
        }
        let pid = libc::pid_t::try_from(self.child.id()).unwrap_or(libc::pid_t::MAX);
        // SAFETY: kill has no memory preconditions; the pid is our child,
        // not yet reaped, so it cannot have been reused.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("server {} after SIGTERM", describe(Some(status)))),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                Ok(None) => {
                    kill(&mut self.child);
                    return Err(format!(
                        "server did not exit within {} s of SIGTERM (killed)",
                        timeout.as_secs()
                    ));
                }
                Err(err) => return Err(format!("cannot wait for the server: {err}")),
            }
        }
    }
}

impl Drop for ServerChild {
    /// A child that was not stopped (the runner is unwinding) is killed.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            kill(&mut self.child);
        }
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits up to a second for a child that is about to exit.
fn wait_briefly(child: &mut Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => {
                kill(child);
                return None;
            }
        }
    }
}

/// `exited with status 1`, `was killed by signal 9`.
fn describe(status: Option<ExitStatus>) -> String {
    match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(signal)) => format!("was killed by signal {signal}"),
            (None, None) => format!("ended: {status}"),
        },
        None => "did not exit: killed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_commands_quote_what_a_shell_would_split() {
        let rendered = render(Path::new("/bin/x"), &["a".into(), "b c".into(), "it's".into()]);
        assert_eq!(rendered, r"/bin/x a 'b c' 'it'\''s'");
    }
}
