//! Property tests (issue 12): arbitrary bytes and arbitrary JSON values as a snapshot line and
//! as a mapping file never panic, always end with exit code 2 naming the file and line, and
//! never change an output. The commands run in-process (the library's `commands::run`), so
//! that a few hundred cases take seconds.

use std::fs;
use std::path::Path;

use clap::Parser;
use proptest::prelude::*;
use serde_json::Value;

use crate::errors::setup;
use crate::support::*;

/// Runs `subaudit audit` in `dir` in-process: the exit code and the error's text.
fn audit_in(dir: &Path) -> (i32, String) {
    let out = dir.join("report");
    let cli = subaudit::commands::Cli::try_parse_from([
        "subaudit".as_ref(),
        "audit".as_ref(),
        "--snapshot".as_ref(),
        dir.join("snap").as_os_str(),
        "--map".as_ref(),
        dir.join("map.csv").as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ])
    .unwrap();
    let result = std::panic::catch_unwind(|| subaudit::commands::run(cli));
    match result {
        Err(_) => panic!("subaudit panicked"),
        Ok(Ok(code)) => (code, String::new()),
        Ok(Err(e)) => (e.exit_code(), e.to_string()),
    }
}

/// Arbitrary JSON: scalars, and arrays and objects of them, a few levels deep; objects often
/// carry the message fields, so that the checks behind the parse are reached too.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("inbound"),
            Just("Inbound"),
            Just("outbound-api"),
            Just("STOP"),
            Just("Mon, 02 Jan 2026 03:04:05 +0000"),
            Just("+14155550101"),
            Just("SM00000000000000000000000000000001")
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    let keys = prop_oneof![
        Just("sid"),
        Just("direction"),
        Just("from"),
        Just("to"),
        Just("body"),
        Just("error_code"),
        Just("date_sent"),
        Just("date_created"),
        Just("messaging_service_sid"),
        Just("price"),
        Just("num_segments"),
    ]
    .prop_map(String::from);
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A folder with the setup's snapshot and mapping, and a report folder from a good run.
struct Case {
    dir: tempfile::TempDir,
    report: std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>,
}

/// Made once (a snapshot and a good run), then copied for each case.
fn template() -> &'static Path {
    static TEMPLATE: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let dir = setup();
            assert_eq!(audit_in(dir.path()).0, OK);
            dir
        })
        .path()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn case() -> Case {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(template(), dir.path());
    let report = tree(&dir.path().join("report"));
    Case { dir, report }
}

/// The snapshot's first message line replaced by `line`.
fn with_message_line(case: &Case, line: &[u8]) {
    let path = case.dir.path().join("snap/messages.jsonl");
    let text = fs::read(&path).unwrap();
    let first_end = text.iter().position(|b| *b == b'\n').unwrap();
    let mut new = line.to_vec();
    new.extend_from_slice(&text[first_end..]);
    fs::write(&path, new).unwrap();
}

fn check_refused(case: &Case, file: &str, line: usize) -> Result<(), TestCaseError> {
    let (code, message) = audit_in(case.dir.path());
    prop_assert_eq!(code, BAD_INPUT, "{}", message);
    prop_assert!(message.contains(&format!("{file}:{line}")), "{}", message);
    prop_assert_eq!(tree(&case.dir.path().join("report")), case.report.clone());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_as_a_snapshot_line(line in prop::collection::vec(any::<u8>().prop_filter("one line", |b| *b != b'\n'), 0..200)) {
        let case = case();
        with_message_line(&case, &line);
        if line.iter().all(u8::is_ascii_whitespace) {
            // A blank line is skipped; the run still has the other message.
            prop_assume!(false);
        }
        check_refused(&case, "messages.jsonl", 1)?;
    }

    #[test]
    fn arbitrary_json_as_a_snapshot_line(value in json_value()) {
        let case = case();
        with_message_line(&case, value.to_string().as_bytes());
        check_refused(&case, "messages.jsonl", 1)?;
    }

    #[test]
    fn arbitrary_bytes_as_a_mapping_file(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let case = case();
        fs::write(case.dir.path().join("map.csv"), &bytes).unwrap();
        let (code, message) = audit_in(case.dir.path());
        prop_assert_eq!(code, BAD_INPUT, "{}", message);
        prop_assert!(message.contains("map.csv:"), "{}", message);
        prop_assert_eq!(tree(&case.dir.path().join("report")), case.report.clone());
    }

    #[test]
    fn arbitrary_json_as_a_mapping_file(value in json_value()) {
        let case = case();
        fs::write(case.dir.path().join("map.csv"), value.to_string()).unwrap();
        let (code, message) = audit_in(case.dir.path());
        prop_assert_eq!(code, BAD_INPUT, "{}", message);
        prop_assert!(message.contains("map.csv:"), "{}", message);
        prop_assert_eq!(tree(&case.dir.path().join("report")), case.report.clone());
    }
}
