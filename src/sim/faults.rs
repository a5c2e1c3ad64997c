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
    /// Serve at most this many records per page, whatever PageSize asks.
    #[arg(long, value_name = "N")]
    pub max_page_size: Option<usize>,
    /// Seed of the fault dice (same seed, same sequence of faults).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}
