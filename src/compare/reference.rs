//! External reference servers: a server that is not `dispatchlab serve`,
//! measured with the same load on the same CPU set, so that every row can be
//! read against a known quantity.
//!
//! The one reference today is nginx answering `return 200 "Hello, World!"`
//! from a generated configuration: `worker_processes` = the size of the
//! server CPU set, no access log, keep-alive without a request limit, the
//! cell's listen backlog, `reuseport`. It is started pinned to the server
//! CPUs in the foreground (`daemon off`, `master_process on`) and stopped
//! with `SIGTERM` (nginx's fast shutdown). Its configuration and pid file
//! live in a temporary directory that is removed afterwards; its error log
//! goes to standard error, which the runner keeps in `servers.log`.
//!
//! A reference server serves the hello workload only; where it is not
//! installed its rows are skipped with a note on how to install it.

use std::fmt;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::child::{self, ChildError, ServerChild};
use super::pin::CpuSet;

/// A reference server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reference {
    /// nginx, `return 200 "Hello, World!"`.
    Nginx,
}

impl Reference {
    /// Every reference server this build knows.
    pub const ALL: &'static [Reference] = &[Reference::Nginx];

    /// The name in result rows (the `strategy` column).
    pub fn name(self) -> &'static str {
        match self {
            Reference::Nginx => "nginx",
        }
    }

    /// How to install it, for the note printed when it is missing.
    pub fn install_hint(self) -> &'static str {
        match self {
            Reference::Nginx => "apt-get install nginx-light (Debian/Ubuntu), or any nginx on PATH",
        }
    }

    /// The executable, if installed (on `PATH`, or in `/usr/sbin`, which a
    /// non-root `PATH` often lacks).
    pub fn locate(self) -> Option<PathBuf> {
        match self {
            Reference::Nginx => find_program("nginx", &["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"]),
        }
    }

    /// Starts the server with `workers` worker processes (`None`: one per
    /// CPU of `cpus`) and listen `backlog`, pinned to `cpus`, and waits
    /// until it accepts connections.
    pub fn start(
        self,
        program: &Path,
        workers: Option<u32>,
        backlog: u32,
        cpus: Option<&CpuSet>,
        stderr: File,
    ) -> Result<ServerChild, ChildError> {
        match self {
            Reference::Nginx => start_nginx(program, workers, backlog, cpus, stderr),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn find_program(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// A temporary directory removed on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> std::io::Result<Self> {
        let base = std::env::temp_dir();
        for attempt in 0..100_u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let dir = base.join(format!("{prefix}-{}-{nanos}-{attempt}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(Self(dir)),
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "no free temporary directory name",
        ))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback port: bound, read, released. Another process could take
/// it in between; then nginx fails to bind and its row says so.
fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// The nginx configuration for one cell.
pub fn nginx_config(dir: &Path, addr: SocketAddr, worker_processes: u32, backlog: u32, modules: &str) -> String {
    let dir = dir.display();
    // Temporary-file paths of the modules that are compiled in, so that
    // nginx never needs its packaged /var/lib/nginx (absent, or not writable
    // when not root).
    let temp_paths: String = ["proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .filter(|module| !modules.contains(&format!("--without-http_{module}_module")))
        .map(|module| format!("    {module}_temp_path {dir}/{module};\n"))
        .collect();
    format!(
        "# Generated by dispatchlab compare: the reference row's server.
worker_processes {worker_processes};
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log stderr warn;
events {{
    worker_connections 65535;
}}
http {{
    access_log off;
    keepalive_requests 1000000000;
    keepalive_timeout 75s;
    client_body_temp_path {dir}/body;
{temp_paths}    server {{
        listen {addr} backlog={backlog} reuseport;
        location / {{
            default_type text/plain;
            return 200 \"Hello, World!\";
        }}
    }}
}}
"
    )
}

fn start_nginx(
    program: &Path,
    workers: Option<u32>,
    backlog: u32,
    cpus: Option<&CpuSet>,
    stderr: File,
) -> Result<ServerChild, ChildError> {
    let setup = |what: &str, source: std::io::Error| ChildError::Spawn {
        program: format!("nginx ({what})"),
        source,
    };
    let dir = TempDir::new("dispatchlab-nginx").map_err(|err| setup("temporary directory", err))?;
    let modules = Command::new(program)
        .arg("-V")
        .stdin(Stdio::null())
        .output()
        .map(|out| String::from_utf8_lossy(&out.stderr).into_owned())
        .unwrap_or_default();
    let addr = free_port().map_err(|err| setup("a free port", err))?;
    let workers = workers
        .or_else(|| cpus.map(|set| u32::try_from(set.len()).unwrap_or(1)))
        .unwrap_or_else(crate::results::online_cpus)
        .max(1);
    let config_path = dir.0.join("nginx.conf");
    std::fs::write(&config_path, nginx_config(&dir.0, addr, workers, backlog, &modules))
        .map_err(|err| setup("its configuration", err))?;
    let args: Vec<String> = vec![
        "-p".into(),
        dir.0.display().to_string(),
        "-e".into(),
        "stderr".into(),
        "-c".into(),
        config_path.display().to_string(),
    ];
    let rendered = child::render(program, &args);
    let mut command = Command::new(program);
    command.args(&args).stdout(Stdio::null());
    child::prepare(&mut command, cpus, stderr);
    let spawned = command.spawn().map_err(|source| ChildError::Spawn {
        program: program.display().to_string(),
        source,
    })?;
    ServerChild::adopt(spawned, addr, rendered, Some(workers), Box::new(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_has_what_a_fair_reference_needs() {
        let addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let config = nginx_config(Path::new("/tmp/x"), addr, 2, 5, "--without-http_uwsgi_module");
        for needed in [
            "worker_processes 2;",
            "daemon off;",
            "master_process on;",
            "access_log off;",
            "worker_connections 65535;",
            "listen 127.0.0.1:4000 backlog=5 reuseport;",
            "return 200 \"Hello, World!\";",
            "pid /tmp/x/nginx.pid;",
            "error_log stderr warn;",
            "proxy_temp_path /tmp/x/proxy;",
        ] {
            assert!(config.contains(needed), "missing {needed:?} in:\n{config}");
        }
        assert!(!config.contains("uwsgi_temp_path"), "{config}");
    }
}
