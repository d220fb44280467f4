//! Starting and joining named worker threads, shared by the pools (and public
//! for strategies written outside the crate).

use std::io;
use std::thread::{self, JoinHandle};

/// Spawns a thread named `dispatchlab-<strategy>-<index>` (visible in `top -H`,
/// `perf` and panic messages). Failure is an error, never a panic.
pub fn spawn_worker<F>(strategy: &str, index: usize, body: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    thread::Builder::new()
        .name(format!("dispatchlab-{strategy}-{index}"))
        .spawn(body)
}

/// Joins every handle. Worker bodies catch job panics themselves, so a join
/// error means the worker loop itself panicked: that is a bug worth a message.
pub fn join_all(strategy: &str, handles: impl IntoIterator<Item = JoinHandle<()>>) {
    for handle in handles {
        if handle.join().is_err() {
            eprintln!("dispatchlab: a {strategy} worker loop panicked outside a job");
        }
    }
}
