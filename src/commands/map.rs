//! `subaudit map`: propose a mapping file from what the snapshot shows, for review.

use std::path::PathBuf;

use clap::Args;

use super::SnapshotArgs;
use crate::audit::proposal::propose;
use crate::error::Result;
use crate::exit_code;
use crate::output;
use crate::report::{self, proposal as out};

/// Propose which customer each number belongs to, for review; pass the edited file back with --map.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  subaudit map --snapshot sample-data/owlie --out mapping.proposed.csv\n  subaudit plan --map mapping.proposed.csv --out plan.json\n\n\
Columns: number,customer,subaccount_sid (the mapping file's), then\n\
number_sid,friendly_name,reason,confidence. Numbers without a customer are\n\
listed at the end as comment lines (# ...): the mapping reader skips them."
)]
pub struct MapArgs {
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    /// Where to write the proposed mapping CSV.
    #[arg(long, value_name = "FILE.csv", default_value = "mapping.proposed.csv")]
    pub out: PathBuf,
}

pub fn run(args: MapArgs) -> Result<i32> {
    output::check_out_file(&args.out)?;
    super::refuse_overwriting_inputs(std::slice::from_ref(&args.out), &args.snapshot, None, &[])?;
    let snapshot = args.snapshot.open()?;
    let proposal = propose(&snapshot);
    output::create_parent_dir(&args.out)?;
    out::write_proposal(&args.out, &proposal)?;

    let mut table = report::table::new_table(&["confidence", "numbers"], &["numbers"]);
    for confidence in ["high", "medium", "low"] {
        let count = proposal
            .rows
            .iter()
            .filter(|r| r.confidence.as_str() == confidence)
            .count();
        table.add_row(vec![confidence.to_string(), count.to_string()]);
    }
    table.add_row(vec![
        "unmatched".to_string(),
        proposal.unmatched.len().to_string(),
    ]);
    let customers: std::collections::BTreeSet<String> = proposal
        .rows
        .iter()
        .map(|r| r.customer.to_lowercase())
        .collect();
    println!("{table}");
    println!(
        "{} of {} matched to {}; proposal written to {}: review it, then pass it back with --map",
        proposal.rows.len(),
        crate::plural(
            proposal.rows.len() + proposal.unmatched.len(),
            "number",
            "numbers"
        ),
        crate::plural(customers.len(), "customer", "customers"),
        args.out.display()
    );
    Ok(exit_code::OK)
}
