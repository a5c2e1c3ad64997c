//! `subaudit usage`: usage per account from the Usage API records, the finance pivot, and the
//! parent's message traffic attributed to the target customers.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::Args;

use super::{load_mapping, SnapshotArgs};
use crate::audit::usage::{check_categories, Period};
use crate::audit::usage_report::{usage_report, UsageReport};
use crate::error::Result;
use crate::exit_code;
use crate::output;
use crate::report::usage as out;

/// Summarise usage per account and attribute the parent's messages to the target customers.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  subaudit usage --snapshot sample-data/owlie \\\n      --map sample-data/owlie/mapping.csv \\\n      --out report/usage_summary.csv\n  subaudit usage --start 2026-01-01 --end 2026-03-31 \\\n      --category sms,mms,totalprice --out q1/usage_summary.csv\n\n\
usage_pivot.csv, usage_attribution.csv and usage_straddling.csv are written\n\
beside --out."
)]
pub struct UsageArgs {
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    /// Mapping CSV (number,customer,subaccount_sid). Without it all traffic is "(unmapped)".
    #[arg(long, value_name = "FILE")]
    pub map: Option<PathBuf>,
    /// Where to write usage_summary.csv; the other usage files go into the same folder.
    #[arg(long, value_name = "FILE.csv", default_value = out::SUMMARY_FILE)]
    pub out: PathBuf,
    #[command(flatten)]
    pub options: UsageOptions,
}

/// The period and the pivot's categories (shared with `audit`).
#[derive(Debug, Clone, Args)]
pub struct UsageOptions {
    /// First day of the usage period, included (YYYY-MM-DD). Default: no lower bound.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day)]
    pub start: Option<NaiveDate>,
    /// Last day of the usage period, included (YYYY-MM-DD). Default: no upper bound.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day)]
    pub end: Option<NaiveDate>,
    /// Usage categories of the pivot, comma-separated.
    #[arg(
        long = "category",
        value_name = "CATEGORY",
        value_delimiter = ',',
        default_value = "sms,mms,calls,phonenumbers,totalprice"
    )]
    pub categories: Vec<String>,
    /// Customers shown by name in the terminal tables (usage: the top by cost, the rest folded
    /// into one row; audit: the top by opt-outs lost).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
}

fn parse_day(text: &str) -> std::result::Result<NaiveDate, String> {
    crate::time::parse_date(text)
        .ok_or_else(|| format!("{text:?} is not a date: expected YYYY-MM-DD, e.g. 2026-01-31"))
}

impl UsageOptions {
    /// Checks the options before any work.
    pub fn check(&self) -> Result<(Period, Vec<String>)> {
        Ok((
            Period::new(self.start, self.end)?,
            check_categories(&self.categories)?,
        ))
    }
}

/// Warnings to stderr, then the table of the top customers to stdout.
pub fn print(report: &UsageReport, top: usize) {
    for w in report
        .summary
        .warnings
        .iter()
        .chain(&report.attribution.warnings)
    {
        eprintln!("warning: {w}");
    }
    use crate::plural;
    use crate::report::table::{terminal_width, wrap};
    let width = terminal_width();
    let header = format!(
        "Usage over {}: {} from {} ({} crossing the period left out); {} of {} in the period",
        report.summary.period.describe(),
        plural(
            report.summary.rows.len(),
            "account/category row",
            "account/category rows"
        ),
        plural(
            report.summary.included.len(),
            "usage record",
            "usage records"
        ),
        report.summary.straddling.len(),
        report.attribution.messages_in_period,
        plural(report.attribution.messages_read, "message", "messages"),
    );
    println!("{}", wrap(&header, width));
    println!("{}", out::top_customers_table(&report.attribution, top));
    println!(
        "{}",
        wrap(&out::reconciliation_line(&report.attribution), width)
    );
}

pub fn run(args: UsageArgs) -> Result<i32> {
    let (period, categories) = args.options.check()?;
    output::check_out_file(&args.out)?;
    let mut outputs = vec![args.out.clone()];
    if !output::is_special_file(&args.out) {
        let (dir, _) = output::split_file_path(&args.out)?;
        for name in [out::PIVOT_FILE, out::ATTRIBUTION_FILE, out::STRADDLING_FILE] {
            outputs.push(dir.join(name));
        }
    }
    super::refuse_overwriting_inputs(&outputs, &args.snapshot, args.map.as_deref(), &[])?;
    let snapshot = args.snapshot.open()?;
    let mapping = load_mapping(args.map.as_deref(), &snapshot)?;
    let report = usage_report(&snapshot, &mapping, period, &categories)?;
    if output::is_special_file(&args.out) {
        // A device or FIFO (`--out /dev/null`): the summary goes there, in place, and no
        // other file is written beside it (that would be in /dev).
        out::write_summary(&args.out, &report.summary)?;
    } else {
        let (dir, name) = output::split_file_path(&args.out)?;
        let mut staging = output::Staging::new(&dir)?;
        out::stage(&mut staging, &name, &snapshot, &report)?;
        staging.commit()?;
    }
    print(&report, args.options.top);
    println!(
        "{}",
        crate::report::table::wrap(
            &format!("Usage reports written beside {}", args.out.display()),
            crate::report::table::terminal_width()
        )
    );
    Ok(exit_code::OK)
}
