//! `subaudit audit`: the whole offline audit of a snapshot, every output into one folder.

use std::path::PathBuf;

use clap::Args;

use super::usage::{self as usage_cmd, UsageOptions};
use super::{load_mapping, KeywordArgs, SnapshotArgs};
use crate::audit::optouts::{analyze, lost_opt_outs};
use crate::error::Result;
use crate::report::{self, html, optouts as out};

/// Run the whole audit on a snapshot and write every report into one folder.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  subaudit audit --snapshot sample-data/owlie --map sample-data/owlie/mapping.csv --out report/"
)]
pub struct AuditArgs {
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    /// Mapping CSV (number,customer,subaccount_sid). Without it nothing moves.
    #[arg(long, value_name = "FILE")]
    pub map: Option<PathBuf>,
    /// Folder for the reports (created if missing; files of the same name are replaced).
    #[arg(long, value_name = "DIR", default_value = "report")]
    pub out: PathBuf,
    /// In optouts_lost.csv, list every opt-out in force in the parent, moving or not.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub fail_on: super::plan::FailOnArgs,
    #[command(flatten)]
    pub keywords: KeywordArgs,
    #[command(flatten)]
    pub usage: UsageOptions,
}

pub fn run(args: AuditArgs) -> Result<i32> {
    let (period, categories) = args.usage.check()?;
    report::check_out_dir(&args.out)?;
    let keywords = args.keywords.keywords()?;
    let snapshot = args.snapshot.open()?;
    let mapping = load_mapping(args.map.as_deref(), &snapshot)?;
    let analysis = analyze(&snapshot, &keywords)?;
    let lost = lost_opt_outs(&snapshot, &analysis, &mapping, args.all);
    let customers = mapping.moving_customers();
    let usage = usage_cmd::compute(&snapshot, &mapping, period, &categories)?;

    // Everything is computed before the first file is written: a failure leaves no mix of
    // old and new reports.
    // The plan uses the same lost rows: with --all they would include numbers that stay.
    let moving_only;
    let moving_lost = if args.all {
        moving_only = lost_opt_outs(&snapshot, &analysis, &mapping, false);
        &moving_only
    } else {
        &lost
    };
    let plan = super::plan::make_plan(&snapshot, &mapping, moving_lost)?;
    report::create_out_dir(&args.out)?;
    out::write_lost(&args.out.join(out::LOST_FILE), &lost)?;
    out::write_per_customer(&args.out.join(out::PER_CUSTOMER_DIR), &customers, &lost)?;
    out::write_possible(&args.out.join(out::POSSIBLE_FILE), &analysis)?;
    out::write_violations(&args.out.join(out::VIOLATIONS_FILE), &analysis)?;
    super::plan::PlanFiles::in_dir(&args.out).write(&plan)?;
    usage_cmd::write(
        &snapshot,
        &usage,
        &args.out.join(report::usage::SUMMARY_FILE),
    )?;
    let files = [
        out::LOST_FILE,
        out::PER_CUSTOMER_DIR,
        out::POSSIBLE_FILE,
        out::VIOLATIONS_FILE,
        crate::report::plan::JSON_FILE,
        crate::report::plan::CSV_FILE,
        crate::report::plan::SHELL_FILE,
        report::usage::SUMMARY_FILE,
        report::usage::PIVOT_FILE,
        report::usage::ATTRIBUTION_FILE,
        report::usage::STRADDLING_FILE,
    ];
    let usage_section = (
        "Usage: top customers by spend".to_string(),
        format!(
            "<pre>{}\n{}</pre>",
            html::escape(
                &report::usage::top_customers_table(&usage.attribution, args.usage.top).to_string()
            ),
            html::escape(&report::usage::reconciliation_line(&usage.attribution))
        ),
    );
    let page = html::render(&plan, &analysis, lost.len(), &files, &[usage_section]);
    report::write_atomic(&args.out.join(html::HTML_FILE), page.as_bytes())?;

    let parent = snapshot.parent();
    println!(
        "subaudit audit of {} ({}), messages {} to {}",
        parent.name(),
        parent.sid,
        report::rfc3339(&snapshot.manifest.window.since),
        report::rfc3339(&snapshot.manifest.window.until),
    );
    super::plan::print_summary(&plan);
    println!(
        "{} numbers, {} messages read, {} opt-outs in force, {} possible opt-outs to review, {} violations",
        snapshot.numbers.len(),
        analysis.messages_read,
        analysis.opt_outs.len(),
        analysis.possible.len(),
        analysis.violations.len()
    );
    usage_cmd::print(&usage, args.usage.top);
    println!("Reports written to {}", args.out.display());
    args.fail_on.report(&plan);
    Ok(args.fail_on.exit_code(&plan))
}
