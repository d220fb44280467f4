//! Bakes the facts every result row carries into the binary: the rustc that
//! built it and the git revision it was built from.

use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = output_of(Command::new(rustc).arg("--version")).unwrap_or_else(|| "rustc unknown".into());
    println!("cargo:rustc-env=DISPATCHLAB_RUSTC={rustc_version}");

    let revision = output_of(Command::new("git").args(["rev-parse", "--short=12", "HEAD"]));
    let dirty = output_of(Command::new("git").args(["status", "--porcelain", "--untracked-files=no"]))
        .is_some_and(|status| !status.is_empty());
    let git_rev = match revision {
        Some(rev) if dirty => format!("{rev}-dirty"),
        Some(rev) => rev,
        None => "unknown".into(),
    };
    println!("cargo:rustc-env=DISPATCHLAB_GIT_REV={git_rev}");
    for path in [".git/HEAD", ".git/index", "src"] {
        println!("cargo:rerun-if-changed={path}");
    }
}

fn output_of(command: &mut Command) -> Option<String> {
    let output = command.output().ok().filter(|output| output.status.success())?;
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
