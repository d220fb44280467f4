//! Ctrl-C for the commands that run until they are told to stop (`load`,
//! `compare`, `serve`): the first SIGINT or SIGTERM asks for an orderly end
//! (the report still printed, the servers stopped), a second one exits at
//! once with [`FORCED_EXIT`], as a shell does for a killed job.

use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use signal_hook::consts::{SIGINT, SIGTERM};

/// The exit status after a second signal (128 + SIGINT).
pub const FORCED_EXIT: i32 = 130;

/// A flag the first SIGINT/SIGTERM sets; once it is set, the next signal
/// exits the process with [`FORCED_EXIT`].
pub fn stop_flag() -> io::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, FORCED_EXIT, Arc::clone(&stop))?;
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    Ok(stop)
}
