//! `dispatchlab load`: run the load the arguments describe and print the
//! report in the format asked for (table, JSON, CSV row, .hgrm files).

use std::io::IsTerminal;
use std::process::ExitCode;

use super::{Config, LoadArgs};
use crate::results::{self, Machine};
use crate::rlimit::raise_open_file_limit;

/// Runs the load, prints the report in the requested format.
pub fn run(args: &LoadArgs) -> Result<ExitCode, String> {
    let mut config = Config::try_from(args).map_err(|err| err.to_string())?;
    if let Err(err) = raise_open_file_limit() {
        eprintln!("dispatchlab load: note: could not raise the open-file limit ({err}); see `ulimit -n`");
    }
    config.progress = std::io::stderr().is_terminal();
    // Ctrl-C ends the run early and still prints the report (as wrk does); a
    // second Ctrl-C exits at once.
    let stop = crate::signals::stop_flag().map_err(|err| format!("cannot install the Ctrl-C handler: {err}"))?;
    config.stop = Some(stop);
    let report = super::run(&config).map_err(|err| err.to_string())?;
    if let Some(path) = &args.hgrm {
        let file = std::fs::File::create(path).map_err(|err| format!("cannot create {}: {err}", path.display()))?;
        report
            .write_hgrm(std::io::BufWriter::new(file))
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
        let answered_path = path.with_extension("answered.hgrm");
        let file = std::fs::File::create(&answered_path)
            .map_err(|err| format!("cannot create {}: {err}", answered_path.display()))?;
        report
            .write_answered_hgrm(std::io::BufWriter::new(file))
            .map_err(|err| format!("cannot write {}: {err}", answered_path.display()))?;
        let raw_path = path.with_extension("uncorrected.hgrm");
        if report.uncorrected.is_some() {
            let file = std::fs::File::create(&raw_path)
                .map_err(|err| format!("cannot create {}: {err}", raw_path.display()))?;
            if let Some(Err(err)) = report.write_uncorrected_hgrm(std::io::BufWriter::new(file)) {
                return Err(format!("cannot write {}: {err}", raw_path.display()));
            }
        }
    }
    if args.json {
        println!("{:#}", report.to_json());
    } else if args.csv {
        let mut row = report.to_row(&Machine::detect());
        row.run_id = format!("{}-0", results::run_name_now());
        row.command = std::env::args().collect::<Vec<_>>().join(" ");
        results::write_csv(std::io::stdout().lock(), &[row]).map_err(|err| format!("cannot write CSV: {err}"))?;
    } else {
        print!("{report}");
    }
    if report.requests == 0 && report.errors.total() > 0 {
        eprintln!(
            "dispatchlab load: no request succeeded ({} errors): is the server at {} running and answering 2xx?",
            report.errors.total(),
            config.target.url
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
