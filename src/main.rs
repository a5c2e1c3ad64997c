//! The `subaudit` binary: parse arguments, run the command, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = subaudit::commands::Cli::parse();
    let code = match subaudit::commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            err.exit_code()
        }
    };
    // The named codes (`subaudit::exit_code`) are all small and positive.
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
