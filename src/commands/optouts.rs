//! `subaudit optouts`: the opt-outs that the planned moves would lose, as CSV.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use super::{load_mapping, EvidenceArgs, KeywordArgs, SnapshotArgs};
use crate::audit::mapping::ResolvedMapping;
use crate::audit::opt_outs_and_traffic;
use crate::audit::optouts::{analyze_opt_outs, lost_opt_outs, LostRows};
use crate::audit::plan::Traffic;
use crate::error::Result;
use crate::exit_code;
use crate::output;
use crate::report::optouts as out;
use crate::snapshot::Snapshot;

/// Export the opt-outs each planned number move would lose, ready to re-seed.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  subaudit optouts --snapshot sample-data/owlie \\\n      --map sample-data/owlie/mapping.csv --out lost.csv\n  subaudit optouts --all --out all-optouts.csv --opt-out-keyword ARRET,BAJA"
)]
pub struct OptoutsArgs {
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    /// Mapping CSV (number,customer,subaccount_sid). Without it nothing moves.
    #[arg(long, value_name = "FILE")]
    pub map: Option<PathBuf>,
    /// Where to write the CSV; `-` for standard output.
    #[arg(long, value_name = "FILE.csv", default_value = "-")]
    pub out: PathBuf,
    /// Export every opt-out in force in the parent, moving or not.
    #[arg(long)]
    pub all: bool,
    /// Also write the per-customer files into this folder: `<customer>.csv` and
    /// `<customer>.suppression.csv` (what the plan re-seeds, and why not).
    #[arg(long, value_name = "DIR")]
    pub per_customer: Option<PathBuf>,
    /// Also write the possible opt-outs (near misses for review) to this file.
    #[arg(long, value_name = "FILE.csv")]
    pub possible: Option<PathBuf>,
    /// Also write the violations (sent after an opt-out) to this file.
    #[arg(long, value_name = "FILE.csv")]
    pub violations: Option<PathBuf>,
    #[command(flatten)]
    pub keywords: KeywordArgs,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

pub fn run(args: OptoutsArgs) -> Result<i32> {
    let to_stdout = args.out.as_os_str() == "-";
    // Check every output location before the work, so that a typo costs nothing.
    if !to_stdout {
        output::check_out_file(&args.out)?;
    }
    for path in [&args.possible, &args.violations].into_iter().flatten() {
        output::check_out_file(path)?;
    }
    if let Some(dir) = &args.per_customer {
        output::check_out_dir(dir)?;
        let files = [
            Some(("--out", args.out.as_path())),
            args.possible.as_deref().map(|p| ("--possible", p)),
            args.violations.as_deref().map(|p| ("--violations", p)),
        ];
        let files: Vec<(&str, &Path)> = files.into_iter().flatten().collect();
        output::refuse_outputs_inside("--per-customer", dir, &files)?;
    }
    let outputs: Vec<PathBuf> = [
        Some(&args.out),
        args.per_customer.as_ref(),
        args.possible.as_ref(),
        args.violations.as_ref(),
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    super::refuse_overwriting_inputs(
        &outputs,
        &args.snapshot,
        args.map.as_deref(),
        &args.evidence.files,
    )?;
    let keywords = args.keywords.keywords()?;
    let snapshot = args.snapshot.open()?;
    let mapping = load_mapping(args.map.as_deref(), &snapshot)?;
    let imported = args.evidence.load(&snapshot)?;
    // The suppression lists need the plan, and so its recent traffic: counted in the same read.
    let (mut analysis, search, traffic) = if args.per_customer.is_some() {
        let (analysis, search, traffic) = opt_outs_and_traffic(&snapshot, &keywords, &imported)?;
        (analysis, search, Some(traffic))
    } else {
        let (analysis, search) = analyze_opt_outs(&snapshot, &keywords, &imported)?;
        (analysis, search, None)
    };

    // Written to a regular file, the rows are staged while pass 2 runs (below). What reaches
    // standard output or a device cannot be taken back: pass 2 first, as it may still refuse
    // a line.
    let staged = !to_stdout && !output::is_special_file(&args.out);
    let rows = if !staged {
        analysis.violations = search.run(&snapshot)?;
        let rows = Arc::new(lost_opt_outs(&snapshot, &analysis, &mapping, args.all));
        if let Some(dir) = &args.per_customer {
            let mut stdout;
            let lost = if to_stdout {
                stdout = std::io::stdout().lock();
                out::LostCsvOut::Stream(&mut stdout)
            } else {
                out::LostCsvOut::File(&args.out)
            };
            let staging = stage_per_customer(dir, &snapshot, &mapping, &rows, lost, traffic)?;
            staging.commit()?;
        } else if to_stdout {
            out::write_lost_to(&mut std::io::stdout().lock(), &rows)
                .map_err(|e| crate::Error::failed("cannot write to standard output", e))?;
        } else {
            out::write_lost(&args.out, &rows)?;
        }
        rows
    } else {
        // Pass 2 (violations) reads the messages again while the lost rows are written: the
        // files are staged, and land only once it has succeeded.
        let (rows, staged, violations) = std::thread::scope(|scope| {
            let violations = scope.spawn(|| search.run(&snapshot));
            let staged = (|| -> Result<_> {
                let rows = Arc::new(lost_opt_outs(&snapshot, &analysis, &mapping, args.all));
                // A symlink stays: the staging replaces the file it names.
                let (parent, name) = output::split_file_path(&args.out)?;
                let mut staging = output::Staging::new(&parent)?;
                let staged_out = staging.path(&name);
                let per_customer = match &args.per_customer {
                    Some(dir) => Some(stage_per_customer(
                        dir,
                        &snapshot,
                        &mapping,
                        &rows,
                        out::LostCsvOut::File(&staged_out),
                        traffic,
                    )?),
                    None => {
                        out::write_lost(&staged_out, &rows)?;
                        None
                    }
                };
                Ok((rows, staging, per_customer))
            })();
            let violations = violations
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            staged.map(|(rows, staging, per_customer)| (rows, (staging, per_customer), violations))
        })?;
        analysis.violations = violations?;
        let (staging, per_customer) = staged;
        staging.commit()?;
        if let Some(staging) = per_customer {
            staging.commit()?;
        }
        rows
    };
    if let Some(path) = &args.possible {
        output::create_parent_dir(path)?;
        out::write_possible(path, &analysis)?;
    }
    if let Some(path) = &args.violations {
        output::create_parent_dir(path)?;
        out::write_violations(path, &analysis)?;
    }
    let what = if args.all {
        "in force"
    } else {
        "would be lost"
    };
    use crate::plural;
    let mut line = format!(
        "{} {what} ({} in force in all; {} to review; {}) from {}",
        plural(rows.len(), "opt-out", "opt-outs"),
        analysis.opt_outs.len(),
        plural(
            analysis.possible.len(),
            "possible opt-out",
            "possible opt-outs"
        ),
        plural(analysis.violations.len(), "violation", "violations"),
        plural(analysis.messages_read, "message", "messages")
    );
    if analysis.imported > 0 {
        line.push_str(&format!(
            " and {} (--evidence)",
            plural(analysis.imported, "imported event", "imported events")
        ));
    }
    // The CSV may be on stdout: the summary goes to stderr then.
    if to_stdout {
        eprintln!("{line}");
    } else {
        println!("{line}; written to {}", args.out.display());
    }
    crate::drop_in_background((analysis, rows));
    Ok(exit_code::OK)
}

/// Writes `--per-customer`'s folder into a staging folder, committed by the caller: each
/// customer's rows and its suppression list, and `optouts_lost.csv` to `lost`, from the same
/// rendered rows as the customers' files (as `audit` writes them).
fn stage_per_customer(
    dir: &Path,
    snapshot: &Snapshot,
    mapping: &ResolvedMapping,
    rows: &Arc<LostRows>,
    lost: out::LostCsvOut<'_>,
    traffic: Option<HashMap<String, Traffic>>,
) -> Result<output::Staging> {
    // The folder is replaced whole: no file of an earlier run lingers.
    let (parent, name) = output::split_file_path(dir)?;
    let mut staging = output::Staging::new(&parent)?;
    let folder = staging.path(&name);
    let customers = mapping.moving_customers();
    out::write_lost_and_per_customer(lost, &folder, &customers, rows)?;
    // The suppression lists say which opt-outs the plan re-seeds: they need the plan
    // (which reads the moving numbers' rows only, also with --all).
    let traffic = traffic.unwrap_or_default();
    let plan = crate::audit::plan::build(snapshot, mapping, rows.clone(), &traffic);
    crate::report::plan::write_suppression(&folder, &plan)?;
    Ok(staging)
}
