//! `subaudit verify`: after `apply` and a fresh pull, check every moved number and every
//! re-seeded opt-out (the work is `crate::migrate::verify`'s).

use std::path::PathBuf;

use clap::Args;

use crate::error::Result;
use crate::migrate::{self, LoadedPlan, VERIFY_HEADER};
use crate::snapshot::{OpenOptions, Snapshot};

/// Check a migration: each number the journal moved is in its target account and service,
/// the service has the parent service's inbound settings, its lost opt-outs were re-seeded.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  subaudit apply --plan report/plan.json\n  \
subaudit pull --out after/\n  \
subaudit verify --plan report/plan.json --snapshot after/ \\\n      --out report/verify.csv\n\n\
Exit codes: 0 every applied number is ok, 2 bad input, 3 a number is not as\n\
planned.")]
pub struct VerifyArgs {
    /// The plan.json that was applied (its journal, plan.journal.jsonl, sits beside it).
    #[arg(long, value_name = "FILE")]
    pub plan: PathBuf,
    /// A snapshot pulled after the apply.
    #[arg(long, value_name = "DIR")]
    pub snapshot: PathBuf,
    /// Where to write one row per number (default: verify.csv beside the plan).
    #[arg(long, value_name = "FILE.csv")]
    pub out: Option<PathBuf>,
}

pub fn run(args: VerifyArgs) -> Result<i32> {
    let plan = LoadedPlan::load(&args.plan)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| plan.dir.join("verify.csv"));
    crate::output::prepare_out_file(&out)?;
    let after = Snapshot::open(&args.snapshot, OpenOptions::default())?;
    let report = migrate::verify(&plan, &args.snapshot, &after)?;
    crate::output::write_csv(&out, &VERIFY_HEADER, &report.rows)?;

    let mut per_customer: std::collections::BTreeMap<&str, [usize; 4]> = Default::default();
    for r in &report.rows {
        let c = per_customer.entry(r.customer.as_str()).or_default();
        match r.status.as_str() {
            "ok" => c[0] += 1,
            "problem" => c[1] += 1,
            "not-applied" => c[2] += 1,
            _ => c[3] += 1,
        }
    }
    let columns = ["customer", "ok", "problems", "not applied", "blocked"];
    let mut table = crate::report::table::new_table(&columns, &columns[1..]);
    let mut totals = [0usize; 4];
    let mut per_customer: Vec<_> = per_customer.into_iter().collect();
    per_customer.sort_by(|a, b| crate::model::customer_order(a.0, b.0));
    for (customer, counts) in &per_customer {
        let mut row = vec![customer.to_string()];
        for (i, n) in counts.iter().enumerate() {
            totals[i] += n;
            row.push(n.to_string());
        }
        table.add_row(row);
    }
    let mut row = vec!["total".to_string()];
    row.extend(totals.iter().map(|n| n.to_string()));
    table.add_row(row);
    println!("{table}");
    for r in report.rows.iter().filter(|r| r.status == "problem") {
        println!("{} ({}): {}", r.phone_number, r.customer, r.problems);
    }
    println!("wrote {}", out.display());
    Ok(report.exit_code())
}
