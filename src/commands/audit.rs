//! `subaudit audit`: the whole offline audit of a snapshot, every output into one folder.

use std::path::PathBuf;

use clap::Args;

use super::usage::UsageOptions;
use super::{load_mapping, EvidenceArgs, KeywordArgs, SnapshotArgs};
use crate::audit::{self, AuditOptions};
use crate::error::Result;
use crate::output;
use crate::report;

/// Run the whole audit on a snapshot and write every report into one folder.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  subaudit audit --snapshot sample-data/owlie \\\n      --map sample-data/owlie/mapping.csv --out report/"
)]
pub struct AuditArgs {
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    /// Mapping CSV (number,customer,subaccount_sid). Without it nothing moves.
    #[arg(long, value_name = "FILE")]
    pub map: Option<PathBuf>,
    /// Folder for the reports (created if missing; the set of files is replaced as a whole).
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
    pub evidence: EvidenceArgs,
    #[command(flatten)]
    pub usage: UsageOptions,
}

pub fn run(args: AuditArgs) -> Result<i32> {
    let (period, categories) = args.usage.check()?;
    output::check_out_dir(&args.out)?;
    let entries: Vec<PathBuf> = report::entry_names()
        .into_iter()
        .map(|name| args.out.join(name))
        .collect();
    super::refuse_overwriting_inputs(
        &entries,
        &args.snapshot,
        args.map.as_deref(),
        &args.evidence.files,
    )?;
    let keywords = args.keywords.keywords()?;
    let snapshot = args.snapshot.open()?;
    let mapping = load_mapping(args.map.as_deref(), &snapshot)?;
    let options = AuditOptions {
        keywords,
        imported: args.evidence.load(&snapshot)?,
        all: args.all,
        period,
        categories,
        top: args.usage.top,
    };
    let audit = audit::run(&snapshot, &mapping, &options)?;
    report::write(&audit, &args.out)?;

    for w in audit
        .usage
        .summary
        .warnings
        .iter()
        .chain(&audit.usage.attribution.warnings)
    {
        eprintln!("warning: {w}");
    }
    print!(
        "{}",
        report::summary::audit_summary(&audit, &args.out, args.usage.top)
    );
    args.fail_on.report(&audit.plan);
    let code = args.fail_on.exit_code(&audit.plan);
    let audit::Audit {
        analysis,
        lost,
        plan,
        usage,
        ..
    } = audit;
    crate::drop_in_background((analysis, lost, plan, usage));
    Ok(code)
}
