//! The request timeline, for tuning the pull's schedule: with `SUBAUDIT_TRACE_REQUESTS` set,
//! each answered request prints one line on standard error, `trace <start ms> <end ms>
//! <status> <method> <url>` (times since the first request; from the permit taken to the
//! body read), from which the requests in flight at any moment follow. URLs as errors show
//! them: never a credential.

use std::sync::OnceLock;
use std::time::Instant;

use reqwest::Method;

/// Whether tracing is on (read once) and the instant times count from.
fn origin() -> Option<Instant> {
    static ORIGIN: OnceLock<Option<Instant>> = OnceLock::new();
    *ORIGIN.get_or_init(|| {
        std::env::var_os("SUBAUDIT_TRACE_REQUESTS")
            .filter(|v| !v.is_empty())
            .map(|_| Instant::now())
    })
}

/// Milliseconds since the origin; 0 when tracing is off.
pub fn now() -> f64 {
    origin().map_or(0.0, |o| o.elapsed().as_secs_f64() * 1000.0)
}

pub fn request(began: f64, method: &Method, status: u16, url: &str) {
    if origin().is_some() {
        eprintln!("trace {began:.1} {:.1} {status} {method} {url}", now());
    }
}

/// A moment of the pull's own (the plan made, the last answer, the manifest written).
pub fn event(what: &str) {
    if origin().is_some() {
        eprintln!("trace-event {:.1} {what}", now());
    }
}
