//! `twilio-sim`: serves a snapshot as the Twilio REST API (see `subaudit::sim`).

use clap::Parser;

fn main() {
    let args = subaudit::sim::SimArgs::parse();
    if let Err(err) = subaudit::sim::run(args) {
        eprintln!("error: {err}");
        std::process::exit(err.exit_code());
    }
}
