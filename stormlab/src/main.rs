//! The `stormlab` command: parses the options, runs the suite, and reports
//! any failure as one line with a non-zero exit code.

use std::error::Error;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use stormlab::cli::{listing, Cli};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let rendered = e.to_string();
            let first = rendered.lines().next().unwrap_or("bad options");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("stormlab: {first} (see --help)");
            return ExitCode::from(2);
        }
    };
    if cli.list {
        print!("{}", listing(&stormlab::LabParams::default()));
        return ExitCode::SUCCESS;
    }
    let result = cli.into_config().and_then(|config| stormlab::run(&config));
    match result {
        Ok((report, written)) => {
            println!("suite finished in {:.1} s", report.wall_time_s);
            for path in written {
                let shown = std::fs::canonicalize(&path).unwrap_or(path);
                println!("wrote {}", shown.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let mut line = format!("stormlab: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                line += &format!(": {cause}");
                source = cause.source();
            }
            eprintln!("{line}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
