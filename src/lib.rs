//! subaudit: audit a Twilio parent account before its numbers move into per-customer
//! subaccounts.
//!
//! Data flows one way, and the modules follow it:
//! Twilio API -> [`client`] -> ([`pull`]) -> [`snapshot`] -> [`audit`] -> [`report`].
//! [`sim`] serves a snapshot back as the Twilio API does, for tests and demos.
//! [`commands`] holds one file per subcommand; `main` only parses and maps errors to exit codes.

pub mod audit;
pub mod client;
pub mod commands;
pub mod demo_sample;
pub mod error;
pub mod migrate;
pub mod model;
pub mod output;
pub mod pull;
pub mod report;
pub mod sample;
pub mod sid;
pub mod sim;
pub mod snapshot;
pub mod time;

pub use error::{exit_code, Error, Result};

/// `subaudit <version>`, written into manifests and reports.
pub fn created_by() -> String {
    format!("subaudit {}", env!("CARGO_PKG_VERSION"))
}

/// Frees a large value on a thread of its own. Freeing millions of small allocations one by
/// one (the opt-out index and results at 10M messages: ~1 s) then costs the caller nothing, and
/// a command that ends first simply exits: the system takes the memory back at once. Where no
/// thread can be started, the value is freed here.
pub fn drop_in_background<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new()
        .name("drop".into())
        .spawn(move || drop(value));
}

/// A count with its noun, `1 number` or `2 numbers`, for every line a person reads.
pub fn plural<N>(n: N, one: &str, many: &str) -> String
where
    N: std::fmt::Display + PartialEq + From<u8>,
{
    let noun = if n == N::from(1) { one } else { many };
    format!("{n} {noun}")
}
