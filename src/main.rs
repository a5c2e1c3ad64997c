//! The `subaudit` binary: parse arguments, run the command, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = subaudit::commands::Cli::parse();
    let code = match subaudit::commands::run(cli) {
        Ok(code) => code,
        // The reader of our standard output went away (`| head -1`): a quiet, successful end,
        // as in ripgrep.
        Err(err) if err.is_broken_pipe() => subaudit::exit_code::OK,
        Err(err) => {
            eprintln!("error: {err}");
            err.exit_code()
        }
    };
    // The named codes (`subaudit::exit_code`) are all small and positive.
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// `println!` panics when standard output is a closed pipe; that panic ends the run quietly
/// with exit code 0 instead of "Broken pipe" and 101. Every other panic is reported as usual.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
