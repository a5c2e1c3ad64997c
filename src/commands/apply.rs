//! `subaudit apply`: run a plan's steps against Twilio, journaled and resumable (the work is
//! `crate::migrate`'s).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::pull::TwilioArgs;
use crate::client::{Client, ClientConfig};
use crate::error::{Error, Result};
use crate::migrate::{self, ApplyOptions, LoadedPlan, Outcome};

/// Run a migration plan: journaled beside the plan, resumable, never a blind retry of a write.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  # the parent's credentials:\n  export TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=...\n  \
subaudit apply --plan report/plan.json --dry-run\n  \
subaudit apply --plan report/plan.json --customer \"Falcon Flights\" \\\n      --set C_FALCON_FLIGHTS_BUNDLE_SID=BU...\n\n\
Run the same command again after a failure or an interruption: it resumes from\n\
the journal (plan.journal.jsonl beside the plan) and reads Twilio's state\n\
before every write.\n\
Exit codes: 0 every selected customer done, 1 a request failed, 2 bad input,\n\
3 work left (blocked numbers, missing placeholders)."
)]
pub struct ApplyArgs {
    /// The plan.json that `subaudit plan` or `subaudit audit` wrote.
    #[arg(long, value_name = "FILE")]
    pub plan: PathBuf,
    /// Only this customer (name or key, e.g. C_FALCON_FLIGHTS); repeatable. Default: all.
    #[arg(long, value_name = "NAME_OR_KEY")]
    pub customer: Vec<String>,
    /// Print the requests it would send; send nothing, write no journal.
    #[arg(long)]
    pub dry_run: bool,
    /// A placeholder's value, e.g. --set C_FALCON_FLIGHTS_BUNDLE_SID=BU...; repeatable.
    /// Placeholders are also read from the environment.
    #[arg(long, value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Retries of a read after 429, 5xx or a connection error.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub max_retries: u32,
    /// First retry delay in milliseconds (doubles per retry).
    #[arg(long, default_value_t = 500, value_name = "MS", hide = true)]
    pub retry_base_ms: u64,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub twilio: TwilioArgs,
}

pub fn run(args: ApplyArgs) -> Result<i32> {
    let plan = LoadedPlan::load(&args.plan)?;
    let sets = parse_sets(&args.set)?;
    let creds = args.twilio.credentials()?;
    let hosts = args.twilio.hosts()?;
    let config = ClientConfig {
        concurrency: 1,
        max_retries: args.max_retries,
        retry_base: Duration::from_millis(args.retry_base_ms),
        ..ClientConfig::default()
    };
    let client = Client::new(creds, hosts, config)?;
    let options = ApplyOptions {
        customers: args.customer.clone(),
        dry_run: args.dry_run,
        sets,
        retry_base: Duration::from_millis(args.retry_base_ms),
        quiet: args.quiet,
    };
    let report = migrate::apply(&plan, client, &options)?;
    if !args.dry_run {
        let mut table = crate::report::table::new_table(
            &["customer", "steps", "sent", "already so", "result"],
            &["steps", "sent", "already so"],
        );
        for c in &report.customers {
            let result = match &c.outcome {
                Outcome::Done => "done".to_string(),
                Outcome::Left(why) => format!("work left: {}", why.join("; ")),
                Outcome::Failed(why) => format!("failed: {why}"),
            };
            table.add_row(vec![
                c.customer.clone(),
                c.steps.to_string(),
                c.done.to_string(),
                c.skipped.to_string(),
                result,
            ]);
        }
        println!("{table}");
        println!("journal: {}", migrate::journal_path(&plan.path).display());
    }
    Ok(report.exit_code())
}

fn parse_sets(sets: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for s in sets {
        let (name, value) = s.split_once('=').ok_or_else(|| {
            Error::Input(format!(
                "--set {s:?}: expected NAME=VALUE, e.g. --set C_FALCON_FLIGHTS_BUNDLE_SID=BU..."
            ))
        })?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(Error::Input(format!(
                "--set {name:?}: a placeholder name is upper-case letters, digits and _ (as the plan writes ${{NAME}})"
            )));
        }
        out.insert(name.to_string(), value.trim().to_string());
    }
    Ok(out)
}
