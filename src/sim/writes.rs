//! The twin's log of the writes it served, in order (`GET /__twin/writes`, twin-only): what
//! a test reads to see that nothing was done twice, and what the deterministic write faults
//! (`--fault-write-first-attempt`, `--fault-write-hold-*`) count.

use std::collections::HashSet;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::json_response;

/// One write that passed authentication and the random faults rolled before it is served.
#[derive(Debug, Clone, Serialize)]
pub struct WriteRecord {
    /// One of `faults::WRITE_KINDS` ("other" for a write no route takes).
    pub kind: &'static str,
    pub method: String,
    pub path: String,
    /// The account whose credentials sent it.
    pub account: String,
    pub form: Vec<(String, String)>,
    /// Whether it took effect (the twin's rules answered 2xx).
    pub took_effect: bool,
    /// The HTTP status the twin's rules gave it (null when it was never served).
    pub status: Option<u16>,
    /// What the client got.
    pub answer: Answer,
}

/// What the client got for a write, as `GET /__twin/writes` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Answer {
    /// The twin's rules' answer.
    #[serde(rename = "answered")]
    Answered,
    /// A 500, though the write took effect.
    #[serde(rename = "500")]
    Status500,
    /// The connection closed without an answer.
    #[serde(rename = "dropped")]
    Dropped,
    /// No answer yet: the connection stays open and silent.
    #[serde(rename = "held")]
    Held,
}

#[derive(Debug, Default)]
pub struct WriteLog {
    pub writes: Vec<WriteRecord>,
    /// The requests served so far (account, method, path, form): a write not in it is on its
    /// first attempt.
    attempted: HashSet<String>,
}

impl WriteLog {
    /// Logs a write as it arrives: its index, whether it is its first attempt, and how many
    /// writes of its kind arrived so far (itself included).
    pub fn arrive(&mut self, record: WriteRecord) -> (usize, bool, usize) {
        let key = format!(
            "{} {} {} {:?}",
            record.account, record.method, record.path, record.form
        );
        let first = self.attempted.insert(key);
        let nth = 1 + self.writes.iter().filter(|w| w.kind == record.kind).count();
        self.writes.push(record);
        (self.writes.len() - 1, first, nth)
    }

    /// Records how the rules answered the write at `at`: how many writes of its kind have
    /// taken effect so far (itself included), when it did.
    pub fn served(&mut self, at: usize, status: u16) -> Option<usize> {
        let took_effect = (200..300).contains(&status);
        let record = &mut self.writes[at];
        record.status = Some(status);
        record.took_effect = took_effect;
        let kind = record.kind;
        took_effect.then(|| {
            self.writes
                .iter()
                .filter(|w| w.kind == kind && w.took_effect)
                .count()
        })
    }

    pub fn answered(&mut self, at: usize, answer: Answer) {
        self.writes[at].answer = answer;
    }
}

/// The kind of a write, by its method and path (the routes of `write_route` and Bulk
/// Export's jobs).
pub fn kind(method: &Method, path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["2010-04-01", "Accounts.json"]) => "create-account",
        ("POST", ["2010-04-01", "Accounts", _]) => "update-account",
        ("POST", ["2010-04-01", "Accounts", _, "IncomingPhoneNumbers", _]) => "update-number",
        ("POST", ["2010-04-01", "Accounts", _, "Messages.json"]) => "send",
        ("POST", ["v1", "Services"]) => "create-service",
        ("POST", ["v1", "Services", _]) => "update-service",
        ("POST", ["v1", "Services", _, "PhoneNumbers"]) => "add-to-service",
        ("DELETE", ["v1", "Services", _, "PhoneNumbers", _]) => "remove-from-service",
        ("POST", ["v1", "Consents", "Bulk"]) => "consents-bulk",
        ("POST", ["v1", "Exports", ..]) => "create-export-job",
        ("DELETE", ["v1", "Exports", ..]) => "delete-export-job",
        _ => "other",
    }
}

/// `GET /__twin/writes`: `{writes: [...]}`, oldest first.
pub fn list(log: &WriteLog) -> Response {
    json_response(
        StatusCode::OK,
        serde_json::json!({ "writes": log.writes }).to_string(),
    )
}
