//! Bad input: a clear message naming the file, line or field, exit code 2, and no output.

use std::fs;

use predicates::str::contains;
use tempfile::TempDir;

use crate::support::*;

/// A valid snapshot with one number and one STOP, in `dir/snap`, and a valid mapping.
pub fn setup() -> TempDir {
    let dir = TempDir::new().unwrap();
    let mut b = SnapshotBuilder::default();
    b.numbers.push(number(&sid("PN", 1), "+14155550101"));
    b.messages.push(
        Msg {
            sid: &sid("SM", 1),
            direction: "inbound",
            from: "+12065552001",
            to: "+14155550101",
            body: Some("STOP"),
            date_sent: &jan(2, 1, 2, 3),
            ..Msg::default()
        }
        .json(),
    );
    b.messages.push(
        Msg {
            sid: &sid("SM", 2),
            direction: "inbound",
            from: "+12065552002",
            to: "+14155550101",
            body: Some("hi"),
            date_sent: &jan(2, 1, 2, 3),
            ..Msg::default()
        }
        .json(),
    );
    b.write(&dir.path().join("snap"));
    fs::write(
        dir.path().join("map.csv"),
        "number,customer,subaccount_sid\n+14155550101,Acme,\n",
    )
    .unwrap();
    dir
}

pub fn audit(dir: &TempDir) -> assert_cmd::assert::Assert {
    on_snap(dir.path(), "audit", "report", &[]).assert()
}

#[test]
fn a_missing_snapshot_folder_is_named() {
    let dir = setup();
    subaudit(dir.path())
        .args(["audit", "--snapshot", "nowhere", "--out", "report"])
        .assert()
        .code(BAD_INPUT)
        .stderr(contains("nowhere: no such snapshot folder"));
    assert!(!dir.path().join("report").exists());
}

#[test]
fn a_missing_data_file_is_named() {
    let dir = setup();
    fs::remove_file(dir.path().join("snap/incoming_phone_numbers.jsonl")).unwrap();
    audit(&dir)
        .code(BAD_INPUT)
        .stderr(contains("incoming_phone_numbers.jsonl: file is missing"));
    assert!(!dir.path().join("report").exists());
}

#[test]
fn a_corrupt_message_line_is_named_and_nothing_is_written() {
    let dir = setup();
    let path = dir.path().join("snap/messages.jsonl");
    let text = fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1] = "{\"sid\": \"SM1\", truncated";
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    audit(&dir)
        .code(BAD_INPUT)
        .stderr(contains("messages.jsonl:2: not a valid message record"));
    assert!(!dir.path().join("report").exists());
}

#[test]
fn a_record_count_that_differs_from_the_manifest_is_an_error() {
    let dir = setup();
    let path = dir.path().join("snap/messages.jsonl");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.lines().next().unwrap().to_string() + "\n").unwrap();
    audit(&dir).code(BAD_INPUT).stderr(contains(
        "messages.jsonl: holds 1 messages records but manifest.json says 2",
    ));
    assert!(!dir.path().join("report").exists());
}

#[test]
fn an_incomplete_snapshot_is_refused_unless_allowed() {
    let dir = setup();
    let path = dir.path().join("snap/manifest.json");
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("\"complete\": true", "\"complete\": false");
    fs::write(&path, text).unwrap();
    audit(&dir)
        .code(BAD_INPUT)
        .stderr(contains("the snapshot is incomplete"));
    subaudit(dir.path())
        .args([
            "audit",
            "--snapshot",
            "snap",
            "--out",
            "report",
            "--allow-incomplete",
        ])
        .assert()
        .success();
}

#[test]
fn a_mapping_without_header_points_at_line_1() {
    let dir = setup();
    fs::write(dir.path().join("map.csv"), "+14155550101,Acme,\n").unwrap();
    audit(&dir)
        .code(BAD_INPUT)
        .stderr(contains("map.csv:1: missing header"))
        .stderr(contains("number,customer,subaccount_sid"));
    assert!(!dir.path().join("report").exists());
}

#[test]
fn a_non_e164_number_and_a_malformed_sid_are_named_with_their_lines() {
    // A well-formed sid of no subaccount is the plan's target-not-child blocker instead
    // (tests/cli/plan.rs); a malformed one stays a load error.
    let dir = setup();
    fs::write(
        dir.path().join("map.csv"),
        "number,customer,subaccount_sid\n(415) 555-0101,Acme,\n+14155550101,Acme,AC99\n",
    )
    .unwrap();
    audit(&dir)
        .code(BAD_INPUT)
        .stderr(contains(
            "map.csv:2: number \"(415) 555-0101\" is neither E.164",
        ))
        .stderr(contains(
            "map.csv:3: subaccount_sid \"AC99\" is not an account sid",
        ));
    assert!(!dir.path().join("report").exists());
}

#[test]
fn a_number_the_parent_does_not_hold_is_named() {
    let dir = setup();
    fs::write(
        dir.path().join("map.csv"),
        "number,customer\n+14155550999,Acme\n",
    )
    .unwrap();
    audit(&dir).code(BAD_INPUT).stderr(contains(
        "map.csv:2: number +14155550999 is not among the parent's 1 phone numbers",
    ));
}

#[test]
fn an_unwritable_output_folder_fails_before_any_work() {
    let dir = setup();
    fs::write(dir.path().join("afile"), "x").unwrap();
    on_snap(dir.path(), "audit", "afile/report", &[])
        .assert()
        .code(BAD_INPUT)
        .stderr(contains("afile/report: cannot write the output there"));
    on_snap(dir.path(), "optouts", "afile/lost.csv", &[])
        .assert()
        .code(BAD_INPUT)
        .stderr(contains("afile/lost.csv"));
}

#[test]
fn a_failed_run_keeps_the_previous_report() {
    let dir = setup();
    audit(&dir).success();
    let before = fs::read_to_string(dir.path().join("report/optouts_lost.csv")).unwrap();
    fs::write(dir.path().join("map.csv"), "number,customer\nbad,Acme\n").unwrap();
    audit(&dir).code(BAD_INPUT);
    assert_eq!(
        fs::read_to_string(dir.path().join("report/optouts_lost.csv")).unwrap(),
        before
    );
    // No temporary files are left beside the reports.
    let stray: Vec<_> = fs::read_dir(dir.path().join("report"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn a_keyword_that_is_both_opt_out_and_opt_in_is_refused() {
    let dir = setup();
    subaudit(dir.path())
        .args([
            "optouts",
            "--snapshot",
            "snap",
            "--opt-out-keyword",
            "START",
        ])
        .assert()
        .code(BAD_INPUT)
        .stderr(contains(
            "--opt-out-keyword \"START\": START is already a keyword of another class",
        ));
    assert_nothing_written(&dir.path().join("report"));
}

#[test]
fn unknown_arguments_are_usage_errors() {
    let dir = setup();
    subaudit(dir.path())
        .args(["audit", "--frobnicate"])
        .assert()
        .code(BAD_INPUT);
}
