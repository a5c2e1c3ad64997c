//! `subaudit audit`: the whole offline audit of a snapshot, every output into one folder.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Args;

use super::usage::{self as usage_cmd, UsageOptions};
use super::{load_mapping, KeywordArgs, SnapshotArgs};
use crate::audit::attribution::{AttributionScan, AttributionWorker};
use crate::audit::optouts::{self, lost_opt_outs, EvidenceScan};
use crate::audit::plan::{self, TrafficScan};
use crate::error::Result;
use crate::output;
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
    output::check_out_dir(&args.out)?;
    let keywords = args.keywords.keywords()?;
    let snapshot = args.snapshot.open()?;
    let mapping = load_mapping(args.map.as_deref(), &snapshot)?;
    let usage_records = usage_cmd::UsageRecords::prepare(&snapshot, period, &categories)?;

    // One read of the messages, on every core, for three stages: the opt-out evidence, the
    // recent traffic of the plan, and the usage attribution.
    let traffic_scan = TrafficScan::new(&snapshot);
    let attribution_scan = AttributionScan::new(&snapshot, &mapping, period);
    let (parts, messages_read) = snapshot.fold_messages(
        || {
            (
                EvidenceScan::default(),
                HashMap::new(),
                AttributionWorker::default(),
            )
        },
        |(evidence, traffic, attribution), at, message| {
            evidence.visit(at, message, &keywords)?;
            traffic_scan.visit(traffic, message);
            attribution_scan.visit(attribution, at, message)
        },
    )?;
    let (mut evidence, mut traffic, mut attribution) = (Vec::new(), Vec::new(), Vec::new());
    for (e, t, a) in parts {
        evidence.push(e);
        traffic.push(t);
        attribution.push(a);
    }
    let analysis = optouts::finish(&snapshot, evidence, messages_read)?;
    let traffic = TrafficScan::merge(traffic);
    let attribution = attribution_scan.finish(
        &snapshot,
        attribution,
        messages_read,
        &usage_records.parsed,
        &usage_records.summary.included,
    )?;
    let usage = usage_records.with(attribution);

    let lost = lost_opt_outs(&snapshot, &analysis, &mapping, args.all);
    let customers = mapping.moving_customers();
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
    let plan = plan::build(&snapshot, &mapping, moving_lost, &traffic);
    output::create_out_dir(&args.out)?;
    out::write_lost(&args.out.join(out::LOST_FILE), &lost)?;
    let customer_files =
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
    let page = html::render(&html::Page {
        plan: &plan,
        analysis: &analysis,
        lost: &lost,
        attribution: &usage.attribution,
        period,
        customer_files: &customer_files,
        files: &files,
    });
    output::write_atomic(&args.out.join(html::HTML_FILE), page.as_bytes())?;

    let parent = snapshot.parent();
    println!(
        "subaudit audit of {} ({}), messages {} to {}",
        parent.name(),
        parent.sid,
        crate::time::rfc3339(&snapshot.manifest.window.since),
        crate::time::rfc3339(&snapshot.manifest.window.until),
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
