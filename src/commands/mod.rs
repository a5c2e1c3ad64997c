//! The command line: one file per subcommand, this file the dispatcher and the arguments
//! several commands share.

pub mod apply;
pub mod audit;
pub mod doctor;
pub mod map;
pub mod optouts;
pub mod plan;
pub mod pull;
pub mod sample;
pub mod usage;
pub mod verify;

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::audit::evidence::{self, ImportedEvent};
use crate::audit::keywords::Keywords;
use crate::audit::mapping::{self, ResolvedMapping};
use crate::error::Result;
use crate::snapshot::{OpenOptions, Snapshot};

#[derive(Debug, Parser)]
#[command(
    name = "subaudit",
    version,
    about = "Audit a Twilio parent account before its numbers move into per-customer subaccounts",
    long_about = "Audit a Twilio parent account before its numbers move into per-customer subaccounts: \
the opt-outs each move would lose, a graded migration plan, usage per customer.\n\n\
Works offline on a snapshot folder (default: sample-data/owlie).",
    after_help = "Example:\n  subaudit audit --snapshot sample-data/owlie \\\n      --map sample-data/owlie/mapping.csv --out report/\n\n\
Exit codes: 0 ok, 1 runtime or API failure, 2 bad input or usage,\n\
3 --fail-on matched."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Audit(audit::AuditArgs),
    Optouts(optouts::OptoutsArgs),
    Map(map::MapArgs),
    Plan(plan::PlanArgs),
    Sample(sample::SampleArgs),
    Pull(pull::PullArgs),
    Doctor(doctor::DoctorArgs),
    Usage(usage::UsageArgs),
    Apply(apply::ApplyArgs),
    Verify(verify::VerifyArgs),
}

pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Audit(args) => audit::run(args),
        Command::Optouts(args) => optouts::run(args),
        Command::Map(args) => map::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Sample(args) => sample::run(args),
        Command::Pull(args) => pull::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Usage(args) => usage::run(args),
        Command::Apply(args) => apply::run(args),
        Command::Verify(args) => verify::run(args),
    }
}

/// Which snapshot to read.
#[derive(Debug, Clone, Args)]
pub struct SnapshotArgs {
    /// Snapshot folder, as written by `subaudit pull` or `subaudit sample` [default: the demo
    /// sample, sample-data/owlie, generated into the cache folder outside the repository]
    #[arg(long, value_name = "DIR")]
    pub snapshot: Option<PathBuf>,
    /// Analyse a snapshot whose pull did not finish (its manifest says complete: false).
    #[arg(long)]
    pub allow_incomplete: bool,
    /// The folder read, once known (the demo sample is located, and announced, once).
    #[arg(skip)]
    resolved: std::sync::OnceLock<PathBuf>,
}

impl SnapshotArgs {
    /// The snapshot folder: `--snapshot`, or the demo sample, said so on stderr.
    pub fn dir(&self) -> Result<&Path> {
        if let Some(dir) = &self.snapshot {
            return Ok(dir);
        }
        if self.resolved.get().is_none() {
            let sample = crate::demo_sample::locate()?;
            eprintln!(
                "note: no --snapshot given: running on the demo sample in {}; \
                 for a real account, `subaudit pull --out DIR` then pass --snapshot DIR",
                sample.display()
            );
            let _ = self.resolved.set(sample);
        }
        Ok(self.resolved.get().expect("set just above"))
    }

    pub fn open(&self) -> Result<Snapshot> {
        Snapshot::open(
            self.dir()?,
            OpenOptions {
                allow_incomplete: self.allow_incomplete,
            },
        )
    }
}

/// Extra keywords (Advanced Opt-Out), on top of Twilio's defaults.
#[derive(Debug, Clone, Args)]
pub struct KeywordArgs {
    /// Extra opt-out keyword (repeat, or separate with commas), e.g. --opt-out-keyword ARRET,BAJA.
    #[arg(long = "opt-out-keyword", value_name = "WORD", value_delimiter = ',')]
    pub opt_out: Vec<String>,
    /// Extra opt-in keyword (repeat, or separate with commas).
    #[arg(long = "opt-in-keyword", value_name = "WORD", value_delimiter = ',')]
    pub opt_in: Vec<String>,
    /// Extra help keyword (repeat, or separate with commas): changes no state.
    #[arg(long = "help-keyword", value_name = "WORD", value_delimiter = ',')]
    pub help_words: Vec<String>,
}

impl KeywordArgs {
    pub fn keywords(&self) -> Result<Keywords> {
        Keywords::with_help(&self.opt_out, &self.opt_in, &self.help_words)
    }
}

/// The user's own opt-out records, merged with the log's events.
#[derive(Debug, Clone, Args)]
pub struct EvidenceArgs {
    /// Evidence the logs cannot show (repeatable): CSV with the header
    /// time,end_user,twilio_number,messaging_service_sid,kind,note, one opt-out or opt-in per
    /// row, e.g. 2025-06-01T14:03:00Z,+14155550100,+14155550199,,opt-out,STOP webhook.
    #[arg(long = "evidence", value_name = "FILE.csv")]
    pub files: Vec<PathBuf>,
}

impl EvidenceArgs {
    /// Reads and checks every file against the snapshot (exit 2 listing every bad row).
    pub fn load(&self, snapshot: &Snapshot) -> Result<Vec<ImportedEvent>> {
        if self.files.is_empty() {
            return Ok(Vec::new());
        }
        evidence::read_evidence(&self.files, snapshot)
    }
}

/// Refuses, before any work, outputs that would replace the snapshot, a file in it, the
/// mapping file or an evidence file (docs/output-safety.md).
pub fn refuse_overwriting_inputs(
    outputs: &[PathBuf],
    snapshot: &SnapshotArgs,
    map: Option<&Path>,
    evidence: &[PathBuf],
) -> Result<()> {
    let mut inputs = crate::output::Inputs {
        snapshot: Some(snapshot.dir()?),
        files: Vec::new(),
    };
    if let Some(map) = map {
        inputs.files.push(("--map", map));
    }
    for file in evidence {
        inputs.files.push(("--evidence", file));
    }
    crate::output::refuse_overwriting_inputs(outputs, &inputs)
}

/// Reads and resolves the mapping file against the snapshot; no file means nothing moves.
pub fn load_mapping(path: Option<&Path>, snapshot: &Snapshot) -> Result<ResolvedMapping> {
    match path {
        Some(path) => mapping::resolve(&mapping::read_mapping(path)?, snapshot),
        None => Ok(ResolvedMapping::default()),
    }
}
