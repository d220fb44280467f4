//! Servers that are not the crate's: `compare --server NAME=COMMAND`, a
//! command the runner starts for each cell, and `compare --url URL`, a
//! server that is already running.
//!
//! They exist so that someone who built a server (a Rust Book exercise, a Go
//! service, a strategy of their own on [`Server::start_with`](crate::server::Server::start_with))
//! can read it against the crate's strategies under the same load, on the
//! same pinned CPUs, sampled the same way. So a `--server` row goes through
//! the same cell as every other: the command is split into words as a shell
//! would split them (no shell runs it), `{port}` and `{addr}` are replaced
//! by a free loopback port, the process starts pinned to the server CPUs in
//! its own process group, and it is ready once the port accepts a
//! connection. It is stopped with `SIGTERM` to the whole group, since an
//! outside server may have started others, and killed after [`GRACE`].
//! Its standard output and error go to `servers.log`; when it exits before
//! the port opens, the end of what it wrote is quoted in the row's outcome.
//!
//! A `--url` server is loaded where it is and never stopped; it is sampled
//! from `/proc` only when its `--pid` is given, and then its `VmHWM` is its
//! peak since it started, not this cell's.

use std::fmt;
use std::fs::File;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::fs::FileExt;
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::child::{self, ChildError, ServerChild};
use super::matrix::{Cell, DEFAULT_BACKLOG, ServerKind, ServerSpec};
use super::pin::CpuSet;
use super::reference::Reference;
use crate::server::Engine;

/// How long an outside server may take to exit after `SIGTERM` before its
/// process group is killed.
pub const GRACE: Duration = Duration::from_secs(5);

/// How long a `--url` server gets to accept a connection before its cell
/// fails (it is already running: this is not a start-up time).
const ATTACH_TIMEOUT: Duration = Duration::from_secs(3);

/// The most of an early-exiting command's output quoted in its outcome.
const QUOTED_OUTPUT: u64 = 600;

/// The `strategy` of a `--url` row without a name of its own (as in the
/// rows `dispatchlab load` writes).
const DEFAULT_URL_NAME: &str = "external";

/// A server that is not the crate's, and its name (its `strategy` column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct External {
    /// The name in result rows and tables.
    pub name: String,
    /// Where it comes from.
    pub source: ExternalSource,
}

/// How the runner reaches an outside server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternalSource {
    /// A command started for each cell: the program, then its arguments,
    /// with `{port}` and `{addr}` still in them.
    Command(Vec<String>),
    /// A server already running.
    Running {
        /// `host:port` as given (the load's `Host` header).
        authority: String,
        /// Its process, sampled when known.
        pid: Option<u32>,
    },
}

/// Why a `--server` or `--url` value was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadExternal(String);

impl fmt::Display for BadExternal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadExternal {}

fn bad(message: impl Into<String>) -> BadExternal {
    BadExternal(message.into())
}

/// The names outside servers may not take: the crate's own rows' names.
fn reserved_names() -> impl Iterator<Item = &'static str> {
    Engine::all()
        .iter()
        .map(|engine| engine.name())
        .chain(Reference::ALL.iter().map(|r| r.name()))
        .chain([DEFAULT_URL_NAME])
}

/// Checks a server's name: letters, digits, `.`, `_`, `-`; not a built-in one.
fn check_name(name: &str) -> Result<(), BadExternal> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        return Err(bad(format!(
            "server name {name:?}: use letters, digits, '.', '_' or '-' (it names the row)"
        )));
    }
    if reserved_names().any(|reserved| reserved == name) {
        return Err(bad(format!(
            "server name {name:?} is a built-in row's name; choose another (built-in: {})",
            reserved_names().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(())
}

impl FromStr for External {
    type Err = BadExternal;

    /// `NAME=COMMAND`, as `--server` takes it.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((name, command)) = text.split_once('=') else {
            return Err(bad(format!(
                "{text:?}: expected NAME=COMMAND, e.g. \"py=python3 -m http.server {{port}} --bind 127.0.0.1\""
            )));
        };
        let name = name.trim();
        check_name(name)?;
        let words = shlex::split(command).ok_or_else(|| {
            bad(format!(
                "{name}: cannot split {command:?} into words (unbalanced quotes?)"
            ))
        })?;
        if words.is_empty() {
            return Err(bad(format!("{name}: the command is empty")));
        }
        if !words.iter().any(|w| w.contains("{port}") || w.contains("{addr}")) {
            return Err(bad(format!(
                "{name}: the command has no {{port}} or {{addr}}, so the server cannot be told the free port the runner picks: \
                 put {{port}} where it takes its port (e.g. \"{name}=./server --port {{port}}\") or {{addr}} where it takes \
                 HOST:PORT"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            source: ExternalSource::Command(words),
        })
    }
}

impl External {
    /// `[NAME=]URL` and the `--pid` of `--url`: a server already running,
    /// at the root of `http://host:port`.
    pub fn running(text: &str, pid: Option<u32>) -> Result<Self, BadExternal> {
        let (name, url) = match text.split_once('=') {
            Some((name, url)) if !name.contains([':', '/']) => (name.trim(), url),
            _ => (DEFAULT_URL_NAME, text),
        };
        if name != DEFAULT_URL_NAME {
            check_name(name)?;
        }
        let target = crate::load::Target::parse(url).map_err(|err| bad(err.to_string()))?;
        if target.path != "/" {
            return Err(bad(format!(
                "--url {url}: give the server's address only (http://HOST:PORT); the path is the workload's (--workload)"
            )));
        }
        if let Some(pid) = pid.filter(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()) {
            return Err(bad(format!("--pid {pid}: no such process")));
        }
        Ok(Self {
            name: name.to_owned(),
            source: ExternalSource::Running {
                authority: target.host_header,
                pid,
            },
        })
    }

    /// What it is, for the notes: the command as given (placeholders kept),
    /// or where it runs.
    pub fn describe(&self) -> String {
        match &self.source {
            ExternalSource::Command(words) => {
                // Quoted where the words would not split back, placeholders kept.
                let needs_quotes =
                    |w: &str| w.is_empty() || w.contains(|c: char| c.is_whitespace() || "'\"\\".contains(c));
                let command: Vec<String> = words
                    .iter()
                    .map(|w| if needs_quotes(w) { child::quote(w) } else { w.clone() })
                    .collect();
                format!("`{}`, started for each run", command.join(" "))
            }
            ExternalSource::Running {
                authority,
                pid: Some(pid),
            } => {
                format!("already running at http://{authority}/, process {pid} and its children sampled")
            }
            ExternalSource::Running { authority, pid: None } => {
                format!("already running at http://{authority}/, not sampled (no --pid)")
            }
        }
    }
}

/// The workload every server answers, whatever it is: its root.
const HELLO: &str = "/";

/// `cells` with a cell for each outside server after every load a group
/// measures, on `/` only unless `every_workload` (a custom matrix, whose
/// workloads the user chose): another server in the same table.
pub fn join(cells: Vec<Cell>, externals: &[Arc<External>], every_workload: bool) -> Vec<Cell> {
    let mut joined = Vec::with_capacity(cells.len());
    for (index, cell) in cells.iter().enumerate() {
        joined.push(cell.clone());
        let last_of_its_load = !cells[index + 1..].iter().any(|later| same_load(later, cell));
        if last_of_its_load && (every_workload || cell.workload() == HELLO) {
            joined.extend(externals.iter().map(|external| Cell {
                server: ServerSpec::new(ServerKind::External(Arc::clone(external)), None, DEFAULT_BACKLOG),
                ..cell.clone()
            }));
        }
    }
    joined
}

/// Whether two cells are one load point of one table: same group, same
/// workload, same load label (connections, mode, pipeline, rate, count).
fn same_load(a: &Cell, b: &Cell) -> bool {
    a.group == b.group && a.workload() == b.workload() && a.load.label() == b.load.label()
}

/// A note for each outside server on the loads of `cells` it is not in.
pub fn left_out(cells: &[Cell], externals: &[Arc<External>]) -> Vec<String> {
    let mut notes = Vec::new();
    for external in externals {
        let is_it = |cell: &Cell| matches!(&cell.server.kind, ServerKind::External(e) if e.name == external.name);
        let mut missing: Vec<&Cell> = Vec::new();
        for cell in cells {
            let measured = cells.iter().any(|other| same_load(other, cell) && is_it(other));
            if !measured && !missing.iter().any(|m| same_load(m, cell)) {
                missing.push(cell);
            }
        }
        let mut routes: Vec<&str> = missing.iter().map(|c| c.workload()).collect();
        routes.dedup();
        if !missing.is_empty() {
            notes.push(format!(
                "{} is left out of {} run{} on {}: an outside server may not serve that route (it joins the `/` \
                 runs; in a custom matrix, every --workload).",
                external.name,
                missing.len(),
                if missing.len() == 1 { "" } else { "s" },
                routes.join(", ")
            ));
        }
    }
    notes
}

/// The command's words with `{port}` and `{addr}` replaced.
pub fn fill_in(words: &[String], addr: SocketAddr) -> Vec<String> {
    let port = addr.port().to_string();
    let addr = addr.to_string();
    words
        .iter()
        .map(|w| w.replace("{port}", &port).replace("{addr}", &addr))
        .collect()
}

/// Starts `words` on a free loopback port, pinned to `cpus`, its output
/// appended to `log` (which must be readable, to quote it), and waits until
/// the port accepts a connection.
pub fn start(words: &[String], cpus: Option<&CpuSet>, log: File) -> Result<ServerChild, ChildError> {
    let setup = |what: &str, source: std::io::Error| ChildError::Spawn {
        program: format!("the server ({what})"),
        source,
    };
    let addr = child::free_port().map_err(|err| setup("a free port", err))?;
    let filled = fill_in(words, addr);
    let Some((program, args)) = filled.split_first() else {
        return Err(ChildError::ExitedEarly("the command is empty".into()));
    };
    let stdout = log.try_clone().map_err(|err| setup("servers.log", err))?;
    let quoted = log.try_clone().map_err(|err| setup("servers.log", err))?;
    let written_before = quoted.metadata().map_or(0, |m| m.len());
    let mut command = Command::new(program);
    command.args(args).stdout(Stdio::from(stdout));
    child::prepare(&mut command, cpus, log);
    let spawned = command.spawn().map_err(|source| ChildError::Spawn {
        program: program.clone(),
        source,
    })?;
    let rendered = child::render(std::path::Path::new(program), args);
    match ServerChild::adopt(spawned, addr, rendered, None, Box::new(())) {
        Ok(server) => Ok(server.outside()),
        Err(ChildError::ExitedEarly(what)) => {
            Err(ChildError::ExitedEarly(match output_since(&quoted, written_before) {
                Some(output) if output.is_empty() => format!("{what}; it wrote nothing"),
                Some(output) => format!("{what}; it wrote: {output}"),
                None => format!("{what}; its output is in servers.log"),
            }))
        }
        Err(err) => Err(err),
    }
}

/// The end of what was appended to `log` after `offset`, on one line;
/// `None` when it cannot be read.
fn output_since(log: &File, offset: u64) -> Option<String> {
    let end = log.metadata().ok()?.len();
    let from = offset.max(end.saturating_sub(QUOTED_OUTPUT));
    let mut bytes = vec![0; usize::try_from(end.saturating_sub(from)).ok()?];
    log.read_exact_at(&mut bytes, from).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let joined = lines.join(" | ");
    let prefix = if from > offset && !joined.is_empty() {
        "… "
    } else {
        ""
    };
    Some(format!("{prefix}{joined}"))
}

/// A server the runner did not start (`--url`).
#[derive(Debug)]
pub struct Attached {
    /// `host:port` as given.
    pub authority: String,
    /// Its process, when `--pid` named it.
    pub pid: Option<u32>,
}

impl Attached {
    /// Checks that `authority` accepts a connection (within a few seconds).
    pub fn connect(authority: &str, pid: Option<u32>) -> Result<Self, String> {
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        let addrs: Vec<SocketAddr> = authority
            .to_socket_addrs()
            .map_err(|err| format!("cannot resolve {authority}: {err}"))?
            .collect();
        loop {
            if addrs
                .iter()
                .any(|addr| TcpStream::connect_timeout(addr, Duration::from_millis(500)).is_ok())
            {
                return Ok(Self {
                    authority: authority.to_owned(),
                    pid,
                });
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "nothing accepts connections on {authority} (tried for {} s)",
                    ATTACH_TIMEOUT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `Some(description)` when its process (if known) has gone.
    pub fn exited(&self) -> Option<String> {
        let pid = self.pid?;
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then(|| format!("(pid {pid}) exited"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::scenario::{PlanOptions, Scenario, default_plan};
    use super::*;

    fn parse(text: &str) -> Result<External, String> {
        text.parse::<External>().map_err(|err| err.to_string())
    }

    #[test]
    fn a_command_is_split_as_a_shell_would_and_keeps_its_placeholders() {
        let server = parse("py=python3 -m http.server {port} --bind '127.0.0.1'").expect("valid");
        assert_eq!(server.name, "py");
        let ExternalSource::Command(words) = &server.source else {
            panic!("a command");
        };
        assert_eq!(
            words,
            &["python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
        );
        let addr: SocketAddr = "127.0.0.1:4321".parse().expect("an address");
        let filled = fill_in(&["srv".into(), "--listen={addr}".into(), "{port}".into()], addr);
        assert_eq!(filled, ["srv", "--listen=127.0.0.1:4321", "4321"]);
    }

    #[test]
    fn bad_values_are_refused_with_what_to_do() {
        for (text, expected) in [
            ("python3 -m http.server", "NAME=COMMAND"),
            ("py=python3 -m http.server 8000", "no {port} or {addr}"),
            ("py=", "empty"),
            ("py=./srv '{port}", "unbalanced"),
            ("mutex-queue=./srv {port}", "built-in"),
            ("nginx=./srv {port}", "built-in"),
            ("my server=./srv {port}", "letters, digits"),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    fn py() -> Vec<Arc<External>> {
        vec![Arc::new(parse("py=python3 -m http.server {port}").expect("valid"))]
    }

    fn is_py(cell: &Cell) -> bool {
        cell.server.kind.strategy_name() == "py"
    }

    #[test]
    fn outside_servers_join_each_hello_load_at_the_end_of_its_table() {
        let options = PlanOptions::default();
        let plain = default_plan(&options).cells;
        let joined = join(plain.clone(), &py(), false);
        assert_eq!(joined.len(), plain.len() + 2, "one per connection count");
        for (index, cell) in joined.iter().enumerate().filter(|(_, c)| is_py(c)) {
            let before = &joined[index - 1];
            assert!(same_load(cell, before), "{} after {}", cell.label(), before.label());
            assert!(joined[index + 1..].iter().all(|later| later.group != cell.group));
            assert_eq!(cell.server.kind.scope_name(), "external");
        }
        assert!(left_out(&joined, &py()).is_empty());
    }

    #[test]
    fn routes_an_outside_server_may_lack_are_left_out_with_a_note() {
        let options = PlanOptions::default();
        let io_bound = join(Scenario::IoBound.plan(&options).cells, &py(), false);
        assert!(!io_bound.iter().any(is_py));
        let notes = left_out(&io_bound, &py());
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with("py is left out of 5 runs on /sleep?ms=40"),
            "{}",
            notes[0]
        );
        // A custom matrix's workloads are the user's: every one is joined.
        let custom = join(Scenario::IoBound.plan(&options).cells, &py(), true);
        assert_eq!(custom.iter().filter(|c| is_py(c)).count(), 5);
    }

    #[test]
    fn a_url_names_a_root_and_may_be_named() {
        let plain = External::running("http://127.0.0.1:8080", None).expect("valid");
        assert_eq!(plain.name, DEFAULT_URL_NAME);
        assert_eq!(
            plain.source,
            ExternalSource::Running {
                authority: "127.0.0.1:8080".into(),
                pid: None
            }
        );
        let named = External::running("go=http://127.0.0.1:8080/", Some(std::process::id())).expect("valid");
        assert_eq!(named.name, "go");
        let path = External::running("http://127.0.0.1:8080/hello", None).expect_err("a path");
        assert!(path.to_string().contains("--workload"), "{path}");
    }
}
