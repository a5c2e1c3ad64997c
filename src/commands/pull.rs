//! `subaudit pull`: fetch a parent account from the Twilio REST API into a snapshot folder
//! (the work is `crate::pull`'s).

use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use clap::Args;

use crate::client::{Client, ClientConfig, Credentials, Hosts};
use crate::error::{Error, Result};
use crate::exit_code;
use crate::pull::{execute, prepare, BulkWait, PullRequest, Source, Tuning};
use crate::snapshot::Resource;

/// Credentials and hosts, with the Twilio CLI's variable names.
#[derive(Clone, Args)]
pub struct TwilioArgs {
    /// Parent account SID (AC...).
    #[arg(long, env = "TWILIO_ACCOUNT_SID", value_name = "AC...")]
    pub account_sid: Option<String>,
    /// The parent's auth token (prefer the environment variable: flags show in `ps`).
    #[arg(
        long,
        env = "TWILIO_AUTH_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub auth_token: Option<String>,
    /// API key SID (SK...); wins over the auth token when both are set.
    #[arg(long, env = "TWILIO_API_KEY", value_name = "SK...")]
    pub api_key: Option<String>,
    /// The API key's secret.
    #[arg(
        long,
        env = "TWILIO_API_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub api_secret: Option<String>,
    /// Twilio region (e.g. ie1, au1): hosts become {product}.{edge}.{region}.twilio.com.
    #[arg(long, env = "TWILIO_REGION")]
    pub region: Option<String>,
    /// Twilio edge location (e.g. dublin, sydney).
    #[arg(long, env = "TWILIO_EDGE")]
    pub edge: Option<String>,
    /// Send every request (api., messaging., accounts., bulkexports.) to this one origin,
    /// same paths: a simulator, a proxy, a test server.
    #[arg(long, env = "SUBAUDIT_TWILIO_BASE_URL", value_name = "URL")]
    pub twilio_base_url: Option<String>,
}

impl std::fmt::Debug for TwilioArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("TwilioArgs")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &redact(&self.auth_token))
            .field("api_key", &self.api_key)
            .field("api_secret", &redact(&self.api_secret))
            .field("region", &self.region)
            .field("edge", &self.edge)
            .field("twilio_base_url", &self.twilio_base_url)
            .finish()
    }
}

impl TwilioArgs {
    pub fn credentials(&self) -> Result<Credentials> {
        Credentials::resolve(
            self.account_sid.as_deref(),
            self.auth_token.as_deref(),
            self.api_key.as_deref(),
            self.api_secret.as_deref(),
        )
    }

    pub fn hosts(&self) -> Result<Hosts> {
        match self
            .twilio_base_url
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(base) => Hosts::single(base),
            None => Hosts::twilio(self.region.as_deref(), self.edge.as_deref()),
        }
    }
}

/// Fetch a parent account into a snapshot folder (resumable).
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  export TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=...\n  \
subaudit pull --out snapshots/2026-11-27 --since 2025-11-01\n\n\
Run the same command again after an interruption: it resumes where it stopped.\n\
Resources: accounts, incoming_phone_numbers, messaging_services,\n\
messaging_service_phone_numbers, a2p_campaigns, messages, usage_records."
)]
pub struct PullArgs {
    /// Snapshot folder to write (created; an unfinished pull there is resumed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// First day of messages and usage, UTC, inclusive (default: 400 days before --until).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub since: Option<String>,
    /// Last day of messages and usage, UTC, inclusive: the whole day is fetched (default:
    /// today, i.e. up to now).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub until: Option<String>,
    /// Fetch only these resources (comma-separated); default all.
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    pub resources: Vec<String>,
    /// Requests in flight at most (Twilio limits concurrency per account and publishes no
    /// number: 16 is the documented safe default; raise it if your account allows).
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,
    /// Messages each slice of the window aims at (the usage records place them); a test knob.
    #[arg(long, default_value_t = crate::pull::MESSAGES_PER_SLICE, value_name = "N", hide = true)]
    pub slice_messages: f64,
    /// Retries of a request after 429, 5xx or a connection error, before giving up.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub max_retries: u32,
    /// First retry delay in milliseconds (doubles per retry, with jitter).
    #[arg(long, default_value_t = 500, value_name = "MS", hide = true)]
    pub retry_base_ms: u64,
    /// Where the messages come from: `list` (the Messages list, in slices side by side),
    /// `bulk-export` (Twilio's Bulk Export: days already exported, export jobs for the missing
    /// ones, the list for days it cannot get), `auto` (the days already exported when the
    /// account has Bulk Export and its usage counts 100,000 messages or more; no jobs).
    #[arg(long, default_value = "list", value_name = "SOURCE")]
    pub source: String,
    /// With --source bulk-export: how long to wait for the export jobs before the days they
    /// have not exported yet come through the list.
    #[arg(long, default_value_t = 60, value_name = "MINUTES")]
    pub bulk_wait_minutes: u64,
    /// How often export jobs are asked whether they are done, in milliseconds.
    #[arg(long, default_value_t = 15_000, value_name = "MS", hide = true)]
    pub bulk_poll_ms: u64,
    /// Keep the bodies of outbound messages (personal data; dropped by default).
    #[arg(long)]
    pub keep_outbound_bodies: bool,
    /// Write the message files compressed with zstd (`.jsonl.zst`, about a tenth of the
    /// size); every command reads them as it reads plain ones.
    #[arg(long)]
    pub compress: bool,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub twilio: TwilioArgs,
}

pub fn run(args: PullArgs) -> Result<i32> {
    let creds = args.twilio.credentials()?;
    let hosts = args.twilio.hosts()?;
    if args.concurrency == 0 {
        return Err(Error::Input("--concurrency must be at least 1".into()));
    }
    if args.slice_messages.is_nan() || args.slice_messages < 1.0 {
        return Err(Error::Input("--slice-messages must be at least 1".into()));
    }
    let since = args
        .since
        .as_deref()
        .map(|t| parse_day("--since", t))
        .transpose()?;
    let last_day = args
        .until
        .as_deref()
        .map(|t| parse_day("--until", t))
        .transpose()?;
    if let (Some(since), Some(last)) = (since, last_day) {
        if since > last {
            return Err(Error::Input(format!(
                "--since {since} is after --until {last}: both days are included, so --until must be the same day or later"
            )));
        }
    }
    let request = PullRequest {
        out: args.out.clone(),
        since,
        // The library's window ends at the midnight after the last day (exclusive).
        until: last_day.map(|d| d + chrono::Days::new(1)),
        resources: parse_resources(&args.resources)?,
        keep_outbound_bodies: args.keep_outbound_bodies,
        source: Source::parse(args.source.trim()).ok_or_else(|| {
            Error::Input(format!(
                "--source {:?}: choose from {}",
                args.source,
                Source::NAMES.join(", ")
            ))
        })?,
        compress: args.compress,
    };
    let Some((state, manifest)) = prepare(&request, &creds)? else {
        if !args.quiet {
            eprintln!(
                "{}: already holds the complete snapshot of this pull; nothing to do",
                args.out.display()
            );
            print!("{}", next_steps(&args.out));
        }
        return Ok(exit_code::OK);
    };
    let config = ClientConfig {
        concurrency: args.concurrency,
        max_retries: args.max_retries,
        retry_base: Duration::from_millis(args.retry_base_ms),
        ..ClientConfig::default()
    };
    let client = Client::new(creds, hosts, config)?;
    let tuning = Tuning {
        concurrency: args.concurrency,
        messages_per_slice: args.slice_messages,
        bulk_wait: BulkWait {
            total: Duration::from_secs(args.bulk_wait_minutes.saturating_mul(60)),
            poll: Duration::from_millis(args.bulk_poll_ms.max(1)),
        },
    };
    execute(&args.out, state, manifest, client, tuning, args.quiet).map_err(|e| match e {
        // Twilio or the network kept failing: what is fetched is kept, and the same command
        // picks up from there.
        Error::Api(api) if api.status.is_none() => Error::Runtime(format!(
            "{api}; run the same command again later: it resumes"
        )),
        other => other,
    })?;
    if !args.quiet {
        print!("{}", next_steps(&args.out));
    }
    Ok(exit_code::OK)
}

/// Where the snapshot is and the commands that read it, to paste (`--quiet` prints nothing).
fn next_steps(out: &std::path::Path) -> String {
    let dir = shell_word(&out.display().to_string());
    format!(
        "Snapshot written to {dir}\n\
         Next: propose a mapping, review it, then audit:\n  \
         subaudit map --snapshot {dir} --out mapping.proposed.csv\n  \
         subaudit audit --snapshot {dir} --map mapping.proposed.csv --out report/\n"
    )
}

/// `text` as one shell word: as is when it is plain, else quoted as plan.sh quotes data.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,=@".contains(c));
    if plain {
        text.to_string()
    } else {
        crate::report::plan::shell_word(&crate::audit::plan::Template::text(text))
    }
}

fn parse_resources(names: &[String]) -> Result<Vec<Resource>> {
    if names.is_empty() {
        return Ok(Resource::ALL.to_vec());
    }
    let mut out = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let r = Resource::from_name(name).ok_or_else(|| {
            Error::Input(format!(
                "--resources: unknown resource {name:?}; choose from {}",
                Resource::ALL.map(Resource::name).join(", ")
            ))
        })?;
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out.sort();
    Ok(out)
}

fn parse_day(flag: &str, text: &str) -> Result<NaiveDate> {
    crate::time::parse_date(text).ok_or_else(|| {
        Error::Input(format!(
            "{flag} {text:?} is not a date: expected YYYY-MM-DD (UTC)"
        ))
    })
}
