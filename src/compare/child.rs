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
//! and that is reported as a failure of its row, as is a non-zero exit. An
//! outside server (`compare --server`) gets its `SIGTERM` as a process
//! group, may end of that signal (most servers do: Python's), and whatever
//! is left of its group when it has exited is killed. A kill always takes
//! the whole process group, so that nothing a server started outlives it.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
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
    /// How it is asked to stop.
    ending: Ending,
}

/// How a child is asked to stop, and what counts as a clean end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// `SIGTERM` to the server, which must exit 0: the graceful shutdown of
    /// dispatchlab and nginx.
    Graceful,
    /// `SIGTERM` to its process group; exit 0 and the signal's own end
    /// (killed by it, or status 128 + 15 as the JVM reports it) are clean.
    Outside,
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

/// A free loopback port: bound, read, released. Another process could take
/// it in between; then the server fails to bind and its row says so.
pub fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
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
            ending: Ending::Graceful,
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
            ending: Ending::Graceful,
        })
    }

    /// Marks the child as an outside server: stopped as a process group,
    /// and allowed to end of the `SIGTERM` itself.
    pub(super) fn outside(mut self) -> Self {
        self.ending = Ending::Outside;
        self
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

    /// Sends `SIGTERM` (to the process group for an outside server) and
    /// waits up to `timeout`; kills it after that. `Ok` when it ended
    /// cleanly (exit 0; for an outside server also of the signal itself);
    /// otherwise what happened.
    pub fn stop(mut self, timeout: Duration) -> Result<(), String> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Err(format!("server had already exited ({})", describe(Some(status))));
        }
        let pid = pid_of(&self.child);
        let target = match self.ending {
            Ending::Graceful => pid,
            Ending::Outside => -pid,
        };
        // SAFETY: kill has no memory preconditions; the pid is our child,
        // not yet reaped, so neither it nor its process group id (the same
        // number) can have been reused.
        unsafe { libc::kill(target, libc::SIGTERM) };
        let deadline = Instant::now() + timeout;
        loop {
            // What an outside server left of its group is killed before the
            // server is reaped, while its group id cannot be reused.
            if self.ending == Ending::Outside && has_exited(pid) {
                kill_group(pid);
            }
            match self.child.try_wait() {
                Ok(Some(status)) if self.ending.is_clean(status) => return Ok(()),
                Ok(Some(status)) => return Err(format!("server {} after SIGTERM", describe(Some(status)))),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                Ok(None) => {
                    kill(&mut self.child);
                    return Err(format!(
                        "server did not exit within {} s of SIGTERM (killed with SIGKILL)",
                        timeout.as_secs()
                    ));
                }
                Err(err) => return Err(format!("cannot wait for the server: {err}")),
            }
        }
    }
}

impl Ending {
    fn is_clean(self, status: ExitStatus) -> bool {
        match self {
            Ending::Graceful => status.success(),
            Ending::Outside => {
                status.success() || status.signal() == Some(libc::SIGTERM) || status.code() == Some(128 + libc::SIGTERM)
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

/// Kills the child's process group (every child leads its own, see
/// [`prepare`]) and reaps the child.
fn kill(child: &mut Child) {
    kill_group(pid_of(child));
    let _ = child.kill();
    let _ = child.wait();
}

/// `SIGKILL` to the process group `pgid` (nothing happens when it is empty).
fn kill_group(pgid: libc::pid_t) {
    // SAFETY: kill has no memory preconditions; a negative pid names a
    // process group.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

/// Whether the child `pid` has exited, without reaping it.
fn has_exited(pid: libc::pid_t) -> bool {
    let Ok(id) = libc::id_t::try_from(pid) else {
        return false;
    };
    // SAFETY: siginfo_t is plain data that waitid fills.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid siginfo_t; WNOWAIT leaves the child
    // waitable, WNOHANG returns at once.
    let found = unsafe {
        libc::waitid(
            libc::P_PID,
            id,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: waitid succeeded, so si_pid is set (0 when nothing exited).
    found == 0 && unsafe { info.si_pid() } != 0
}

fn pid_of(child: &Child) -> libc::pid_t {
    libc::pid_t::try_from(child.id()).unwrap_or(libc::pid_t::MAX)
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
