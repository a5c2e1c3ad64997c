//! `subaudit sample`: writes the deterministic sample snapshot (see `crate::sample`).

use std::path::PathBuf;

use clap::Args;

use crate::error::Result;
use crate::exit_code;
use crate::plural;
use crate::sample::{generate, SampleOptions};

/// Generate a realistic, deterministic sample snapshot (Owlie Notifications) with its mapping.csv.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  subaudit sample --out sample-data/owlie\n  subaudit sample --out other-sample --seed 11 --messages 20000"
)]
pub struct SampleArgs {
    /// Snapshot folder to write (created; files of an earlier snapshot there are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Seed of the generator: the same seed and size give the same files, byte for byte.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Approximate number of messages (the shipped sample uses the default).
    #[arg(long, default_value_t = 6000)]
    pub messages: u64,
    /// Write the messages compressed with zstd (`messages.jsonl.zst`), as `pull --compress` does.
    #[arg(long)]
    pub compress: bool,
}

pub fn run(args: SampleArgs) -> Result<i32> {
    let summary = generate(
        &args.out,
        SampleOptions {
            seed: args.seed,
            messages: args.messages,
            compress: args.compress,
        },
    )?;
    println!(
        "Wrote {}: {} of {}, {}, {}, mapping.csv and evidence.csv",
        args.out.display(),
        plural(summary.numbers, "number", "numbers"),
        plural(summary.customers, "customer", "customers"),
        plural(summary.messages, "message", "messages"),
        plural(summary.usage_records, "usage record", "usage records")
    );
    Ok(exit_code::OK)
}
