//! `subaudit plan`: the migration plan for a mapping, with every risk graded.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{load_mapping, EvidenceArgs, KeywordArgs, SnapshotArgs};
use crate::audit::plan::{Plan, Severity};
use crate::error::{Error, Result};
use crate::exit_code;
use crate::output;
use crate::report::plan as out;

/// Build the migration plan: each number's target, its findings, the API steps in a safe order.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  subaudit plan --snapshot sample-data/owlie \\\n      --map sample-data/owlie/mapping.csv --out plan.json\n  subaudit plan --snapshot sample-data/owlie \\\n      --map sample-data/owlie/mapping.csv \\\n      --out plan/plan.json --fail-on blocker\n\n\
Writes plan.json, and plan.csv and plan.sh beside it (named after --out),\n\
with the files plan.json names: reseed/ and optouts/<customer>.suppression.csv.\n\
Exit code 3 when --fail-on matches, after writing the outputs."
)]
pub struct PlanArgs {
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    /// Mapping CSV (number,customer,subaccount_sid), as `subaudit map` proposes it.
    #[arg(long, value_name = "FILE")]
    pub map: PathBuf,
    /// Where to write the plan JSON; the CSV and the shell script go beside it.
    #[arg(long, value_name = "FILE.json", default_value = "plan.json")]
    pub out: PathBuf,
    #[command(flatten)]
    pub fail_on: FailOnArgs,
    #[command(flatten)]
    pub keywords: KeywordArgs,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Fail when any number is blocked.
    Blocker,
    /// Fail on a warning or a blocker.
    Warning,
}

#[derive(Debug, Clone, Args)]
pub struct FailOnArgs {
    /// Exit with code 3 when the plan holds findings of this severity or worse (after writing
    /// the outputs), for scripted audits.
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
}

impl FailOnArgs {
    /// The exit code for a plan: FINDINGS when --fail-on matches, else OK.
    pub fn exit_code(&self, plan: &Plan) -> i32 {
        let threshold = match self.fail_on {
            None => return exit_code::OK,
            Some(FailOn::Blocker) => Severity::Blocker,
            Some(FailOn::Warning) => Severity::Warning,
        };
        match plan.worst() {
            Some(worst) if worst >= threshold => exit_code::FINDINGS,
            _ => exit_code::OK,
        }
    }

    /// Tells the user why the exit code is 3.
    pub fn report(&self, plan: &Plan) {
        if self.exit_code(plan) == exit_code::FINDINGS {
            let what = match self.fail_on {
                Some(FailOn::Warning) => "warnings or blockers",
                _ => "blockers",
            };
            eprintln!("--fail-on: the plan holds {what} (exit code 3)");
        }
    }
}

/// Prints the per-customer table and the plan's totals.
pub fn print_summary(plan: &Plan) {
    println!("{}", out::summary_table(plan));
    println!(
        "{}",
        crate::report::table::wrap(
            &out::summary_line(plan),
            crate::report::table::terminal_width()
        )
    );
}

pub fn run(args: PlanArgs) -> Result<i32> {
    if args
        .out
        .extension()
        .is_some_and(|e| e == "csv" || e == "sh")
    {
        return Err(Error::Input(format!(
            "{}: --out names the JSON file (plan.csv and plan.sh are written beside it); give a .json path",
            args.out.display()
        )));
    }
    output::check_out_file(&args.out)?;
    let (dir, name) = output::split_file_path(&args.out)?;
    let stem = name.strip_suffix(".json").unwrap_or(&name).to_string();
    let outputs: Vec<PathBuf> = ["json", "csv", "sh"]
        .iter()
        .map(|ext| dir.join(format!("{stem}.{ext}")))
        .collect();
    super::refuse_overwriting_inputs(
        &outputs,
        &args.snapshot,
        Some(&args.map),
        &args.evidence.files,
    )?;
    let keywords = args.keywords.keywords()?;
    let snapshot = args.snapshot.open()?;
    let mapping = load_mapping(Some(&args.map), &snapshot)?;
    let imported = args.evidence.load(&snapshot)?;
    let plan = crate::audit::plan_only(&snapshot, &mapping, &keywords, &imported)?;
    let mut staging = output::Staging::new(&dir)?;
    let mut written = out::stage(&mut staging, &stem, &plan)?;
    // The suppression lists plan.json names (`audit` writes them with the opt-out files).
    let lists = out::stage_suppression(&mut staging, &plan)?;
    if !lists.is_empty() {
        written.push(format!(
            "{}/*.suppression.csv",
            crate::audit::plan::SUPPRESSION_DIR
        ));
    }
    staging.commit()?;

    let parent = snapshot.parent();
    use crate::report::table::{short_sid, terminal_width, wrap};
    let width = terminal_width();
    println!(
        "{}",
        wrap(
            &format!(
                "subaudit plan for {} ({})",
                parent.name(),
                short_sid(&parent.sid)
            ),
            width
        )
    );
    print_summary(&plan);
    let written: Vec<String> = written
        .iter()
        .map(|n| dir.join(n).display().to_string())
        .collect();
    println!(
        "{}",
        wrap(&format!("Written: {}", written.join(", ")), width)
    );
    args.fail_on.report(&plan);
    Ok(args.fail_on.exit_code(&plan))
}
