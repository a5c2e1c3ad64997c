//! Fault injection switches: what a real pull or apply meets on a bad day. They apply to
//! reads and writes alike; the twin-only endpoints under /__twin/ are never faulted.

use clap::Args;

#[derive(Debug, Clone, Default, Args)]
pub struct Faults {
    /// Added latency per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Share of requests answered 429 (Twilio error 20429), e.g. 0.15.
    #[arg(long, default_value_t = 0.0)]
    pub rate_429: f64,
    /// Retry-After seconds sent with half of the 429s (the other half carry none).
    #[arg(long, value_name = "SECS")]
    pub retry_after: Option<u64>,
    /// Share of requests answered 500, e.g. 0.05.
    #[arg(long, default_value_t = 0.0)]
    pub rate_500: f64,
    /// Share of requests whose connection is dropped without an answer.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Share of writes (POST, DELETE) that take effect and then answer 500 anyway: the case
    /// that makes a blind retry of a write dangerous.
    #[arg(
        long = "fault-write-5xx-after-effect",
        value_name = "RATE",
        default_value_t = 0.0
    )]
    pub write_5xx_after_effect: f64,
    /// Share of writes (POST, DELETE) that take effect and then lose their answer: the
    /// connection is closed without a response, as when the network fails after Twilio acted.
    #[arg(
        long = "fault-write-drop-after-effect",
        value_name = "RATE",
        default_value_t = 0.0
    )]
    pub write_drop_after_effect: f64,
    /// The fault every write (POST, DELETE) meets the first time the twin serves it; the same
    /// request sent again (method, path, form and credentials) is served as usual. Unlike the
    /// rates, it strikes every write of a run exactly once, whatever the order of the requests.
    #[arg(long = "fault-write-first-attempt", value_name = "FAULT", value_enum)]
    pub write_first_attempt: Option<FirstAttempt>,
    /// Writes that take effect and then get no answer at all, as KIND[:N] (the Nth write of
    /// that kind to take effect, default the first), comma-separated: the connection stays
    /// open and silent until the client gives up or goes away. Kinds: see docs/twin.md.
    #[arg(
        long = "fault-write-hold-after-effect",
        value_name = "KIND[:N],...",
        value_delimiter = ',',
        value_parser = parse_hold
    )]
    pub write_hold_after_effect: Vec<Hold>,
    /// Writes held before they take effect, as KIND[:N] (the Nth write of that kind to reach
    /// the twin), comma-separated: never served, never answered.
    #[arg(
        long = "fault-write-hold-before-effect",
        value_name = "KIND[:N],...",
        value_delimiter = ',',
        value_parser = parse_hold
    )]
    pub write_hold_before_effect: Vec<Hold>,
    /// Serve at most this many records per page, whatever PageSize asks.
    #[arg(long, value_name = "N")]
    pub max_page_size: Option<usize>,
    /// Seed of the fault dice (same seed, same sequence of faults).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// What a write meets the first time it is served (`--fault-write-first-attempt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FirstAttempt {
    /// The connection closes before the write is served: it did not happen.
    DropBeforeEffect,
    /// The write takes effect, then the connection closes without an answer.
    DropAfterEffect,
    /// The write takes effect, then answers 500.
    #[value(name = "5xx-after-effect")]
    Status500AfterEffect,
}

/// The kinds of write the twin serves, as the fault switches and `GET /__twin/writes` name
/// them.
pub const WRITE_KINDS: [&str; 11] = [
    "create-account",
    "update-account",
    "update-number",
    "send",
    "create-service",
    "update-service",
    "add-to-service",
    "remove-from-service",
    "consents-bulk",
    "create-export-job",
    "delete-export-job",
];

/// One held write: the `nth` write of `kind` (counting from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub kind: &'static str,
    pub nth: usize,
}

fn parse_hold(text: &str) -> Result<Hold, String> {
    let (kind, nth) = match text.split_once(':') {
        Some((k, n)) => (
            k,
            n.parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{n:?} is not a count from 1 (KIND:N)"))?,
        ),
        None => (text, 1),
    };
    let kind = WRITE_KINDS
        .iter()
        .find(|k| **k == kind.trim())
        .ok_or_else(|| {
            format!(
                "{kind:?} is not a kind of write; the kinds are: {}",
                WRITE_KINDS.join(", ")
            )
        })?;
    Ok(Hold { kind, nth })
}

impl Faults {
    /// Whether the `nth` write of `kind` is held (before or after its effect, per `holds`).
    pub fn holds(holds: &[Hold], kind: &str, nth: usize) -> bool {
        holds.iter().any(|h| h.kind == kind && h.nth == nth)
    }
}
