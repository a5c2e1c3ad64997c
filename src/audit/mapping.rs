//! The mapping file: which customer (subaccount) each number moves to.
//!
//! CSV with the header `number,customer,subaccount_sid,messaging_service_sid`
//! (`subaccount_sid` and `messaging_service_sid` optional; other columns, such as a
//! proposal's `reason` and `confidence`, are ignored). `number` is E.164 or
//! a PN sid. Reading checks the file's shape; resolving checks it against a snapshot. Every
//! problem is reported with its line, all at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sid::{is_e164, is_sid};
use crate::snapshot::Snapshot;

/// One data line of the mapping file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingRow {
    /// 1-based line number in the file.
    pub line: usize,
    /// As written: E.164 or a PN sid.
    pub number: String,
    pub customer: String,
    pub subaccount_sid: Option<String>,
    /// An existing (campaign-approved) Messaging Service of the target subaccount that the
    /// number joins instead of a new one.
    pub messaging_service_sid: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MappingFile {
    pub path: PathBuf,
    /// The well-formed rows.
    pub rows: Vec<MappingRow>,
    /// (line, message) for each malformed row; `resolve` reports them with its own findings.
    pub problems: Vec<(usize, String)>,
}

impl MappingFile {
    /// An error listing every problem, by line, if there is any.
    pub fn check(&self, mut more: Vec<(usize, String)>) -> Result<()> {
        more.extend(self.problems.iter().cloned());
        if more.is_empty() {
            return Ok(());
        }
        more.sort_by_key(|(line, _)| *line);
        let path = self.path.display();
        Err(Error::Many(
            more.into_iter()
                .map(|(line, message)| format!("{path}:{line}: {message}"))
                .collect(),
        ))
    }
}

/// Where a number goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub customer: String,
    /// The existing subaccount; None when it must be created.
    pub account_sid: Option<String>,
    /// The subaccount's own Messaging Service the number joins (mapping column
    /// `messaging_service_sid`); None: the plan creates one where the number was in a service.
    pub messaging_service_sid: Option<String>,
    /// The mapping lines that name this target for the number.
    pub lines: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberTarget {
    /// One target: the number moves there.
    Move(Target),
    /// Mapped to different customers: it moves nowhere until the conflict is resolved.
    Conflict(Vec<Target>),
}

/// The mapping checked against a snapshot, by PN sid.
#[derive(Debug, Clone, Default)]
pub struct ResolvedMapping {
    pub targets: BTreeMap<String, NumberTarget>,
}

impl ResolvedMapping {
    pub fn target(&self, number_sid: &str) -> Option<&NumberTarget> {
        self.targets.get(number_sid)
    }

    /// The customers some number moves to, sorted, each once.
    pub fn moving_customers(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .targets
            .values()
            .filter_map(|t| match t {
                NumberTarget::Move(t) => Some(t.customer.clone()),
                NumberTarget::Conflict(_) => None,
            })
            .collect();
        names.sort_by(|a, b| crate::model::customer_order(a, b));
        names.dedup();
        names
    }

    /// The target a number moves to, if it moves (mapped once, no conflict).
    pub fn moving_to(&self, number_sid: &str) -> Option<&Target> {
        match self.targets.get(number_sid) {
            Some(NumberTarget::Move(t)) => Some(t),
            _ => None,
        }
    }
}

const HEADER_HELP: &str =
    "expected a header line `number,customer,subaccount_sid,messaging_service_sid` (the last two optional)";

fn normalize_name(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Reads and checks the shape of a mapping file.
pub fn read_mapping(path: &Path) -> Result<MappingFile> {
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Input(format!("{}: mapping file not found", path.display()))
        } else {
            Error::read(path, e)
        }
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = 1 + valid.iter().filter(|b| **b == b'\n').count();
        Error::at_line(path, line, "not UTF-8 text; save the mapping as UTF-8 CSV")
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    parse_mapping(path, text)
}

pub fn parse_mapping(path: &Path, text: &str) -> Result<MappingFile> {
    // Line by line, so that every message names the file's own line number (the csv crate
    // does not count comment lines); a field may be quoted but not span lines.
    let mut records = text.lines().enumerate().filter_map(|(i, line)| {
        let trimmed = line.trim();
        (!trimmed.is_empty() && !trimmed.starts_with('#'))
            .then(|| (i + 1, parse_line(path, i + 1, line)))
    });
    let (header_line, header) = records.next().ok_or_else(|| {
        Error::at_line(path, 1, format!("the mapping file is empty: {HEADER_HELP}"))
    })?;
    let header = header?;
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let (Some(number_col), Some(customer_col)) = (column("number"), column("customer")) else {
        return Err(Error::at_line(
            path,
            header_line,
            format!(
                "missing header: found {:?}; {HEADER_HELP}",
                header.iter().collect::<Vec<_>>().join(",")
            ),
        ));
    };
    let sid_col = column("subaccount_sid");
    let service_col = column("messaging_service_sid");
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for (line, record) in records {
        let record = record?;
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let field = |i: Option<usize>| {
            i.and_then(|i| record.get(i))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let number = field(Some(number_col));
        let customer = field(Some(customer_col));
        let sid = field(sid_col);
        let service = field(service_col);
        let before = problems.len();
        let mut problem = |message: String| problems.push((line, message));
        if number.is_empty() {
            problem(
                "number is empty: give the number in E.164 (+14155550100) or its PN sid".into(),
            );
        } else if !is_e164(&number) && !is_sid(&number, "PN") {
            problem(format!(
                "number {number:?} is neither E.164 (+ and up to 15 digits, e.g. +14155550100) nor a phone number sid (PN and 32 hex digits)"
            ));
        }
        if customer.is_empty() {
            problem("customer is empty: name the customer the number moves to".into());
        } else if let Some(c) = customer.chars().find(|c| c.is_control()) {
            // It would reach file names, the plan's shell script and the terminal.
            problem(format!(
                "customer {customer:?} holds the control character {c:?}: use printable text"
            ));
        }
        if !sid.is_empty() && !is_sid(&sid, "AC") {
            problem(format!(
                "subaccount_sid {sid:?} is not an account sid (AC and 32 hex digits); leave it empty to match the customer by name"
            ));
        }
        if !service.is_empty() && !is_sid(&service, "MG") {
            problem(format!(
                "messaging_service_sid {service:?} is not a Messaging Service sid (MG and 32 hex digits); name a campaign-approved service of the target subaccount, or leave it empty"
            ));
        }
        if problems.len() == before {
            rows.push(MappingRow {
                line,
                number,
                customer,
                subaccount_sid: (!sid.is_empty()).then_some(sid),
                messaging_service_sid: (!service.is_empty()).then_some(service),
            });
        }
    }
    Ok(MappingFile {
        path: path.to_path_buf(),
        rows,
        problems,
    })
}

fn parse_line(path: &Path, line: usize, text: &str) -> Result<csv::StringRecord> {
    check_quotes(text).map_err(|why| Error::at_line(path, line, why))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    match reader.records().next() {
        Some(Ok(record)) => Ok(record),
        Some(Err(e)) => Err(Error::at_line(path, line, format!("not valid CSV: {e}"))),
        None => Ok(csv::StringRecord::new()),
    }
}

/// The strict CSV of a mapping line (RFC 4180 quoting, on one line): a quote opens a field and
/// closes it right before a comma or the end of the line, a quote inside is doubled. The csv
/// crate would read `"Stork Vets,` as a customer named `Stork Vets,`; here it is an error.
fn check_quotes(text: &str) -> std::result::Result<(), String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut field_start = true;
    while i < bytes.len() {
        match bytes[i] {
            b'"' if field_start => {
                let opened = i + 1;
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => {
                            return Err(format!(
                                "the quoted field at column {opened} is not closed on this line (a quote is missing, or the field spans lines, which a mapping does not allow)"
                            ))
                        }
                        Some(b'"') if bytes.get(i + 1) == Some(&b'"') => i += 2,
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                while bytes.get(i).is_some_and(|b| *b == b' ' || *b == b'\t') {
                    i += 1;
                }
                match bytes.get(i) {
                    None => return Ok(()),
                    Some(b',') => {
                        i += 1;
                        field_start = true;
                    }
                    Some(_) => {
                        return Err(format!(
                            "text after the closing quote at column {i}: quote the whole field, and double a quote inside it (\"\")"
                        ))
                    }
                }
            }
            b'"' => {
                return Err(format!(
                    "a quote at column {} inside an unquoted field: quote the whole field, and double a quote inside it (\"\")",
                    i + 1
                ))
            }
            b',' => {
                field_start = true;
                i += 1;
            }
            _ => {
                field_start = false;
                i += 1;
            }
        }
    }
    Ok(())
}

/// Checks the mapping against the snapshot and settles each number's target. Errors (all
/// reported together): a number the snapshot does not hold, a number another account owns,
/// a subaccount sid that is the parent itself, a customer name that matches several
/// subaccounts. A number mapped to different customers is not an error but a `Conflict`, and
/// a well-formed subaccount sid the snapshot does not hold is kept: the plan reports both as
/// blockers on the number (mapping-conflict, target-not-child).
pub fn resolve(mapping: &MappingFile, snapshot: &Snapshot) -> Result<ResolvedMapping> {
    let parent = snapshot.parent_sid();
    let mut problems = Vec::new();
    let mut per_number: BTreeMap<String, Vec<Target>> = BTreeMap::new();
    // One spelling per customer: the first the file uses ("falcon flights" on a later line
    // is the same customer as "Falcon Flights").
    let mut spelling: BTreeMap<String, String> = BTreeMap::new();
    for row in &mapping.rows {
        let customer = spelling
            .entry(normalize_name(&row.customer))
            .or_insert_with(|| row.customer.clone())
            .clone();
        let line = row.line;
        let number = snapshot
            .numbers
            .iter()
            .chain(&snapshot.subaccount_numbers)
            .find(|n| n.sid == row.number || n.phone_number == row.number);
        let Some(number) = number else {
            problems.push((line, format!(
                "number {} is not among the parent's {} phone numbers in the snapshot; check for a typo, or remove the line",
                row.number,
                snapshot.numbers.len()
            )));
            continue;
        };
        if let Some(owner) = number.account_sid.as_deref().filter(|o| *o != parent) {
            problems.push((line, format!(
                "number {} belongs to account {owner}, not to the parent {parent}: only the parent's numbers can be moved",
                row.number
            )));
            continue;
        }
        let account_sid = match &row.subaccount_sid {
            Some(sid) if sid == parent => {
                problems.push((line, format!(
                    "subaccount_sid {sid} is the parent account itself; name a subaccount, or leave the number out of the mapping to keep it in the parent"
                )));
                continue;
            }
            // A well-formed sid the snapshot does not hold (another parent's account, a
            // deleted one, a typo) is the plan's target-not-child blocker on this number, not
            // a reason to stop the whole audit.
            Some(sid) => Some(sid.clone()),
            None => {
                let wanted = normalize_name(&row.customer);
                let matches: Vec<&str> = snapshot
                    .subaccounts()
                    .filter(|a| normalize_name(a.name()) == wanted)
                    .map(|a| a.sid.as_str())
                    .collect();
                match matches.as_slice() {
                    [] => None,
                    [one] => Some(one.to_string()),
                    many => {
                        problems.push((line, format!(
                            "customer {:?} matches {} subaccounts by name ({}); give the one meant in subaccount_sid",
                            row.customer,
                            many.len(),
                            many.join(", ")
                        )));
                        continue;
                    }
                }
            }
        };
        let targets = per_number.entry(number.sid.clone()).or_default();
        let same = targets.iter_mut().find(|t| {
            normalize_name(&t.customer) == normalize_name(&row.customer)
                && t.account_sid == account_sid
                && t.messaging_service_sid == row.messaging_service_sid
        });
        match same {
            Some(t) => t.lines.push(line),
            None => targets.push(Target {
                customer,
                account_sid,
                messaging_service_sid: row.messaging_service_sid.clone(),
                lines: vec![line],
            }),
        }
    }
    mapping.check(problems)?;
    let targets = per_number
        .into_iter()
        .map(|(sid, mut targets)| {
            let target = if targets.len() == 1 {
                NumberTarget::Move(targets.remove(0))
            } else {
                NumberTarget::Conflict(targets)
            };
            (sid, target)
        })
        .collect();
    Ok(ResolvedMapping { targets })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MappingFile> {
        let file = parse_mapping(Path::new("map.csv"), text)?;
        file.check(Vec::new())?;
        Ok(file)
    }

    #[test]
    fn reads_rows_with_or_without_sid_and_extra_columns() {
        let m = parse("number,customer,subaccount_sid,reason\n+14155550100,Falcon Flights,,name\n# note\n\nPN0123456789abcdef0123456789abcdef, Heron ,AC0123456789abcdef0123456789abcdef\n").unwrap();
        assert_eq!(m.rows.len(), 2);
        assert_eq!(m.rows[0].line, 2);
        assert_eq!(m.rows[0].subaccount_sid, None);
        assert_eq!(m.rows[1].line, 5);
        assert_eq!(m.rows[1].customer, "Heron");
        assert!(parse("number,customer\n+14155550100,A\n").is_ok());
    }

    #[test]
    fn quotes_are_strict_and_a_field_never_spans_lines() {
        let ok = parse("number,customer\n+14155550100,\"Stork Vets, Inc.\"\n+14155550101,\"The \"\"Best\"\" Vets\"\n").unwrap();
        assert_eq!(ok.rows[0].customer, "Stork Vets, Inc.");
        assert_eq!(ok.rows[1].customer, "The \"Best\" Vets");
        for (text, want) in [
            (
                "number,customer\n+14155550100,\"Stork Vets,\n",
                "map.csv:2: the quoted field at column 14 is not closed",
            ),
            (
                "number,customer\n+14155550100,\"Stork\nVets\"\n",
                "map.csv:2: the quoted field at column 14 is not closed on this line",
            ),
            (
                "number,customer\n+14155550100,Stork \"Vets\"\n",
                "map.csv:2: a quote at column 20 inside an unquoted field",
            ),
            (
                "number,customer\n+14155550100,\"Stork\" Vets\n",
                "map.csv:2: text after the closing quote",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn reports_every_bad_line_with_its_number() {
        let err = parse(
            "number,customer,subaccount_sid\n4155550100,A,\n+14155550100,,\n+14155550101,B,AC12\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("map.csv:2: number \"4155550100\" is neither E.164"),
            "{text}"
        );
        assert!(text.contains("map.csv:3: customer is empty"), "{text}");
        assert!(
            text.contains("map.csv:4: subaccount_sid \"AC12\" is not an account sid"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_header_is_an_error_on_line_1() {
        let err = parse("+14155550100,Falcon Flights,\n").unwrap_err();
        assert!(
            err.to_string().starts_with("map.csv:1: missing header"),
            "{err}"
        );
        assert!(parse("").unwrap_err().to_string().contains("empty"));
    }
}
