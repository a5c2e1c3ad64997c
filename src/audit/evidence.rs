//! Evidence the logs cannot show: the user's own records of opt-outs and opt-ins
//! (`--evidence FILE.csv`), e.g. from their app's STOP webhooks or the 21610 errors the API
//! answered to sends from a number, which leave no message in the logs.
//!
//! CSV with the header `time,end_user,twilio_number,messaging_service_sid,kind,note`
//! (`messaging_service_sid` and `note` may be left out; columns by name, in any order; an
//! unknown column is an error). Each row is one event of the opt-out rule
//! (docs/opt-out-rule.md, "Imported evidence"). Every problem of every file is reported at
//! once, as `FILE:LINE: field: what is wrong`, before anything is written.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::optouts::EventKind;
use crate::error::{Error, Result};
use crate::sid::{is_e164, is_sid};
use crate::snapshot::Snapshot;

/// One row of an evidence file: an event of the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedEvent {
    /// In UTC, whatever offset the file gave.
    pub time: DateTime<Utc>,
    pub end_user: String,
    pub twilio_number: String,
    /// The service the event went through: then its scope is the whole service, as for a
    /// logged message through that service.
    pub messaging_service_sid: Option<String>,
    pub kind: EventKind,
    /// `FILE:LINE`, the file as the user wrote its path: what a report cites.
    pub reference: String,
    /// The file's place among the `--evidence` options (0-based) and the line (1-based,
    /// the header is line 1): the order among imported events of the same time.
    pub position: (u32, u32),
}

pub const COLUMNS: [&str; 6] = [
    "time",
    "end_user",
    "twilio_number",
    "messaging_service_sid",
    "kind",
    "note",
];
const REQUIRED: [&str; 4] = ["time", "end_user", "twilio_number", "kind"];

const HEADER_HELP: &str = "expected the header `time,end_user,twilio_number,messaging_service_sid,kind,note` (messaging_service_sid and note may be left out)";

/// Reads every evidence file, in the order given, and checks each row against the snapshot.
/// Any problem in any file: one error listing them all (exit 2). The same file given twice,
/// under any spelling (`a.csv`, `./a.csv`, a link to it), is read once, under its first.
pub fn read_evidence(paths: &[PathBuf], snapshot: &Snapshot) -> Result<Vec<ImportedEvent>> {
    let numbers: HashSet<&str> = snapshot
        .numbers
        .iter()
        .map(|n| n.phone_number.as_str())
        .collect();
    let mut events = Vec::new();
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for path in paths {
        // A file that cannot be resolved is kept as given: reading it reports why.
        if !seen.insert(std::fs::canonicalize(path).unwrap_or_else(|_| path.clone())) {
            continue;
        }
        let index = u32::try_from(seen.len() - 1).unwrap_or(u32::MAX);
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                problems.push(format!(
                    "{}: evidence file not found (--evidence)",
                    path.display()
                ));
                continue;
            }
            Err(e) => return Err(Error::read(path, e)),
        };
        parse_evidence(path, index, &bytes, &numbers, &mut events, &mut problems);
    }
    if problems.is_empty() {
        Ok(events)
    } else {
        Err(Error::Many(problems))
    }
}

/// Parses one file's bytes: the well-formed rows into `events`, every problem into `problems`.
pub fn parse_evidence(
    path: &Path,
    index: u32,
    bytes: &[u8],
    numbers: &HashSet<&str>,
    events: &mut Vec<ImportedEvent>,
    problems: &mut Vec<String>,
) {
    let file = path.display().to_string();
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.records();
    let header = match records.next() {
        None => {
            problems.push(format!("{file}:1: the file is empty: {HEADER_HELP}"));
            return;
        }
        Some(Err(e)) => {
            problems.push(format!("{file}:1: {}: {HEADER_HELP}", csv_problem(&e)));
            return;
        }
        Some(Ok(header)) => header,
    };
    let mut lines = LineCounter::new(bytes);
    let header_line = lines.line_of(header.position());
    let names: Vec<String> = header.iter().map(|h| h.trim().to_lowercase()).collect();
    let column = |name: &str| names.iter().position(|n| n == name);
    let unknown: Vec<&str> = names
        .iter()
        .filter(|n| !COLUMNS.contains(&n.as_str()))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        problems.push(format!(
            "{file}:{header_line}: unknown column{} {}: {HEADER_HELP}",
            if unknown.len() == 1 { "" } else { "s" },
            unknown
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut repeated: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .filter(|c| names.iter().filter(|n| n == c).count() > 1)
        .collect();
    repeated.dedup();
    if !repeated.is_empty() {
        problems.push(format!(
            "{file}:{header_line}: column {} given twice: name each column once",
            repeated.join(", ")
        ));
    }
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|c| column(c).is_none())
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "{file}:{header_line}: missing column{} {}: {HEADER_HELP}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        ));
        return;
    }
    let [time_col, user_col, number_col, kind_col] = REQUIRED.map(|c| column(c).unwrap_or(0));
    let service_col = column("messaging_service_sid");

    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = lines.line_of(e.position());
                problems.push(format!("{file}:{line}: {}", csv_problem(&e)));
                continue;
            }
        };
        let line = lines.line_of(record.position());
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let before = problems.len();
        let mut problem = |field: &str, message: String| {
            problems.push(format!("{file}:{line}: {field}: {message}"));
        };
        if record.len() != names.len() {
            problem(
                "row",
                format!(
                    "{} fields where the header has {}: quote a field that holds a comma",
                    record.len(),
                    names.len()
                ),
            );
        }
        let field = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or("").trim();
        let time_text = field(Some(time_col));
        let time = DateTime::parse_from_rfc3339(time_text).map(|t| t.with_timezone(&Utc));
        if time.is_err() {
            problem(
                "time",
                format!(
                    "{time_text:?} is not an RFC 3339 time: write e.g. 2025-06-01T14:03:00Z (any offset, e.g. +02:00)"
                ),
            );
        }
        let end_user = field(Some(user_col));
        if end_user.is_empty() {
            problem(
                "end_user",
                "empty: give the end user's address as the logs write it, e.g. +14155550100".into(),
            );
        } else if let Some(c) = end_user.chars().find(|c| c.is_control()) {
            problem(
                "end_user",
                format!("{end_user:?} holds the control character {c:?}"),
            );
        }
        let number = field(Some(number_col));
        if !is_e164(number) {
            problem(
                "twilio_number",
                format!(
                    "{number:?} is not E.164: give the Twilio number as + and up to 15 digits, e.g. +14155550100"
                ),
            );
        } else if !numbers.contains(number) {
            problem(
                "twilio_number",
                format!(
                    "{number} is not a number of the snapshot: give one of the parent's numbers (incoming_phone_numbers.jsonl), or drop the row"
                ),
            );
        }
        let service = field(service_col);
        if !service.is_empty() && !is_sid(service, "MG") {
            problem(
                "messaging_service_sid",
                format!(
                    "{service:?} is not a Messaging Service sid (MG and 32 hex digits): name the service the event went through, or leave it empty for the number alone"
                ),
            );
        }
        let kind_text = field(Some(kind_col));
        let kind = if kind_text.eq_ignore_ascii_case("opt-out") {
            Some(EventKind::OptOut)
        } else if kind_text.eq_ignore_ascii_case("opt-in") {
            Some(EventKind::OptIn)
        } else {
            problem(
                "kind",
                format!("{kind_text:?} is not a kind: write opt-out or opt-in"),
            );
            None
        };
        if problems.len() != before {
            continue;
        }
        if let (Ok(time), Some(kind)) = (time, kind) {
            events.push(ImportedEvent {
                time,
                end_user: end_user.to_string(),
                twilio_number: number.to_string(),
                messaging_service_sid: (!service.is_empty()).then(|| service.to_string()),
                kind,
                reference: format!("{file}:{line}"),
                position: (index, u32::try_from(line).unwrap_or(u32::MAX)),
            });
        }
    }
}

/// The file's own 1-based line numbers: the csv crate's skip blank lines, and a record's
/// position may point at the blank lines before it.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    /// The line a record starts on (records come in order, so counting goes forward only).
    fn line_of(&mut self, position: Option<&csv::Position>) -> usize {
        let Some(position) = position else {
            return self.line;
        };
        let mut start = (position.byte() as usize).min(self.bytes.len());
        while start < self.bytes.len() && matches!(self.bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        if start > self.offset {
            self.line += self.bytes[self.offset..start]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            self.offset = start;
        }
        self.line
    }
}

fn csv_problem(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text: save the file as UTF-8 CSV".into(),
        _ => format!("not valid CSV: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<ImportedEvent>, Vec<String>) {
        let numbers: HashSet<&str> = ["+15550000001"].into_iter().collect();
        let (mut events, mut problems) = (Vec::new(), Vec::new());
        parse_evidence(
            Path::new("ev.csv"),
            0,
            text.as_bytes(),
            &numbers,
            &mut events,
            &mut problems,
        );
        (events, problems)
    }

    #[test]
    fn rows_become_events_with_their_file_and_line() {
        let (events, problems) = parse(
            "kind,time,end_user,twilio_number\n\
             opt-out,2025-06-01T16:03:00+02:00,+15551230000,+15550000001\n\
             \n\
             \"opt-in\",2025-06-02T00:00:00Z,+15551230000,+15550000001\n",
        );
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].time.to_rfc3339(), "2025-06-01T14:03:00+00:00");
        assert_eq!(events[0].reference, "ev.csv:2");
        assert_eq!(events[1].reference, "ev.csv:4");
        assert_eq!(events[1].kind, EventKind::OptIn);
        assert_eq!(events[1].position, (0, 4));
    }

    #[test]
    fn a_multi_line_note_keeps_the_line_of_its_row_start() {
        let (events, problems) = parse(
            "time,end_user,twilio_number,messaging_service_sid,kind,note\n\
             2025-06-01T14:03:00Z,+1555,+15550000001,,opt-out,\"webhook\nretried\"\n\
             2025-06-01T14:04:00Z,+1556,+15550000001,,opt-out,\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(events[1].reference, "ev.csv:4");
    }

    #[test]
    fn every_problem_is_named_with_line_and_field() {
        let (events, problems) = parse(
            "time,end_user,twilio_number,messaging_service_sid,kind,note\n\
             yesterday,,+15550000009,MGxyz,STOP,\n\
             2025-06-01T14:03:00Z,+1555,15550000001,,opt-out,\n",
        );
        assert!(events.is_empty());
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(problems[0].starts_with("ev.csv:2: time: \"yesterday\""));
        assert!(problems[1].starts_with("ev.csv:2: end_user: empty"));
        assert!(problems[2].contains("+15550000009 is not a number of the snapshot"));
        assert!(problems[3].starts_with("ev.csv:2: messaging_service_sid: \"MGxyz\""));
        assert!(problems[4].starts_with("ev.csv:2: kind: \"STOP\""));
        assert!(problems[5].starts_with("ev.csv:3: twilio_number: \"15550000001\" is not E.164"));
    }

    #[test]
    fn the_header_is_checked_by_name() {
        let (_, problems) = parse("time,end_user,number,kind,source\n");
        assert_eq!(
            problems,
            [
                format!("ev.csv:1: unknown columns \"number\", \"source\": {HEADER_HELP}"),
                format!("ev.csv:1: missing column twilio_number: {HEADER_HELP}"),
            ]
        );
        let (events, problems) = parse("time,end_user,twilio_number,kind\n");
        assert!(events.is_empty() && problems.is_empty());
        let (_, problems) = parse("");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("ev.csv:1: the file is empty"));
    }
}
