//! The `subaudit` binary: parse arguments, run the command, map errors to exit codes.

use clap::Parser;

fn main() {
    let cli = subaudit::commands::Cli::parse();
    let code = match subaudit::commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            err.exit_code()
        }
    };
    std::process::exit(code);
}
