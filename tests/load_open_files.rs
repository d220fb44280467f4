//! A run with more connections than the process may open files is refused
//! before it starts, with what to raise: otherwise every connect past the
//! limit would be counted as an `other` error. A test binary of its own:
//! it lowers the process's soft open-file limit.

use dispatchlab::load::{self, Config, LoadError, Target};

#[test]
fn more_connections_than_open_files_are_refused_with_what_to_raise() {
    let (_, hard) = dispatchlab::rlimit::open_file_limits().expect("read RLIMIT_NOFILE");
    let lowered = libc::rlimit {
        rlim_cur: 128.min(hard),
        rlim_max: hard,
    };
    // SAFETY: a valid rlimit; lowering the soft limit is always permitted.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
    let mut config = Config::new(Target::parse("http://127.0.0.1:9/").expect("target"));
    config.connections = 500;
    let err = load::run(&config).expect_err("refused");
    assert!(matches!(err, LoadError::InvalidConfig(_)), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("500 connections need about") && message.contains("ulimit -Hn"),
        "{message}"
    );
}
