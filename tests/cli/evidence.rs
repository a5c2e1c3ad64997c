//! `--evidence FILE.csv`: the user's own opt-out records, merged with the log's events
//! (docs/opt-out-rule.md, "Imported evidence"), on `optouts`, `plan` and `audit`.

use std::fs;
use std::path::Path;

use predicates::str::contains;
use tempfile::TempDir;

use crate::support::*;

const N1: &str = "+14155550101";
const N2: &str = "+14155550102";
const U1: &str = "+12065552001";
const U2: &str = "+12065552002";
const LOST_HEADER: &str = "end_user,twilio_number,twilio_number_sid,scope,messaging_service_sid,opted_out_at,keyword,evidence,evidence_message_sid,target_customer,target_account_sid\n";
const EVIDENCE_HEADER: &str = "time,end_user,twilio_number,messaging_service_sid,kind,note\n";
const MAP: &str = "number,customer,subaccount_sid\n+14155550101,Heron,\n+14155550102,Heron,\n";

fn inbound(n: u64, from: &str, to: &str, body: &str, date: &str) -> serde_json::Value {
    Msg {
        sid: &sid("SM", n),
        direction: "inbound",
        from,
        to,
        body: Some(body),
        date_sent: date,
        ..Msg::default()
    }
    .json()
}

fn outbound(n: u64, from: &str, to: &str, date: &str, service: Option<&str>) -> serde_json::Value {
    Msg {
        sid: &sid("SM", n),
        direction: "outbound-api",
        from,
        to,
        date_sent: date,
        service,
        ..Msg::default()
    }
    .json()
}

/// N1 on its own, N2 in the parent service MG..1.
fn snapshot() -> SnapshotBuilder {
    let mut b = SnapshotBuilder::default();
    b.numbers.push(number(&sid("PN", 1), N1));
    b.numbers.push(number(&sid("PN", 2), N2));
    b.services.push(service(&sid("MG", 1), "Alerts"));
    b.service_numbers
        .push(service_number(&sid("MG", 1), &sid("PN", 2), N2));
    b
}

/// A folder with the snapshot `snap`, `map.csv` and the given files.
fn setup(b: &SnapshotBuilder, files: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new().unwrap();
    b.write(&dir.path().join("snap"));
    fs::write(dir.path().join("map.csv"), MAP).unwrap();
    for (name, text) in files {
        fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// `subaudit optouts` on the folder with the extra arguments; the lost CSV's text.
fn lost(dir: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "optouts",
        "--snapshot",
        "snap",
        "--map",
        "map.csv",
        "--out",
        "lost.csv",
    ];
    args.extend_from_slice(extra);
    run(dir, &args).success();
    fs::read_to_string(dir.join("lost.csv")).unwrap()
}

#[test]
fn imported_rows_are_lost_cancel_and_cite_their_file_and_line() {
    let mut b = snapshot();
    b.messages
        .push(inbound(1, U1, N1, "STOP", &jan(5, 12, 0, 0)));
    // Sent into the imported opt-out of U2 on N1: a violation citing the file's line.
    b.messages
        .push(outbound(2, N1, U2, &jan(10, 9, 0, 0), None));
    let evidence = format!(
        "{EVIDENCE_HEADER}\
         2025-06-01T14:03:00+02:00,{U2},{N1},,opt-out,STOP webhook before the logs\n\
         2026-01-06T08:00:00Z,{U1},{N1},,opt-in,\"START, via our app\"\n\
         2026-01-07T08:00:00Z,{U1},{N2},{},opt-out,21610 through the service\n",
        sid("MG", 1)
    );
    let dir = setup(&b, &[("ev.csv", &evidence)]);
    // Without the file: U1's STOP on N1 is the only loss.
    assert_eq!(
        lost(dir.path(), &[]),
        format!(
            "{LOST_HEADER}{U1},{N1},{},number,,2026-01-05T12:00:00Z,STOP,inbound-keyword,{},Heron,\n",
            sid("PN", 1),
            sid("SM", 1)
        )
    );
    let csv = lost(
        dir.path(),
        &[
            "--evidence",
            "ev.csv",
            "--violations",
            "violations.csv",
            "--per-customer",
            "per",
        ],
    );
    // The opt-in of line 3 cancels the log's STOP; line 2 (offset normalised to UTC) and
    // line 4 (a service opt-out, lost with the service's number N2) are lost.
    assert_eq!(
        csv,
        format!(
            "{LOST_HEADER}\
             {U2},{N1},{},number,,2025-06-01T12:03:00Z,,imported,ev.csv:2,Heron,\n\
             {U1},{N2},{},service,{},2026-01-07T08:00:00Z,,imported,ev.csv:4,Heron,\n",
            sid("PN", 1),
            sid("PN", 2),
            sid("MG", 1)
        )
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("per/Heron.csv")).unwrap(),
        csv
    );
    let violations = read_csv(&dir.path().join("violations.csv"));
    assert_eq!(violations.len(), 2, "{violations:?}");
    let v = &violations[1];
    assert_eq!(v[0], sid("SM", 2));
    assert_eq!(v[7..], ["2025-06-01T12:03:00Z", "", "imported", "ev.csv:2"]);
}

#[test]
fn at_the_same_time_an_imported_row_comes_after_the_log() {
    let mut b = snapshot();
    // U1: START in the log, an imported opt-out the same second: opted out.
    b.messages
        .push(inbound(1, U1, N1, "START", &jan(5, 12, 0, 0)));
    // U2: STOP in the log, an imported opt-in the same second: not opted out.
    b.messages
        .push(inbound(2, U2, N1, "STOP", &jan(5, 12, 0, 0)));
    // Sent to U1 the same second as the imported opt-out: before it, not a violation; a
    // second later: a violation.
    b.messages
        .push(outbound(3, N1, U1, &jan(5, 12, 0, 0), None));
    b.messages
        .push(outbound(4, N1, U1, &jan(5, 12, 0, 1), None));
    let evidence = format!(
        "{EVIDENCE_HEADER}\
         2026-01-05T12:00:00Z,{U1},{N1},,opt-out,\n\
         2026-01-05T12:00:00Z,{U2},{N1},,opt-in,\n"
    );
    let dir = setup(&b, &[("ev.csv", &evidence)]);
    let csv = lost(
        dir.path(),
        &["--evidence", "ev.csv", "--violations", "v.csv"],
    );
    assert_eq!(
        csv,
        format!(
            "{LOST_HEADER}{U1},{N1},{},number,,2026-01-05T12:00:00Z,,imported,ev.csv:2,Heron,\n",
            sid("PN", 1)
        )
    );
    let violations = read_csv(&dir.path().join("v.csv"));
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert_eq!(violations[1][0], sid("SM", 4));
}

#[test]
fn rows_of_the_same_time_in_two_files_follow_the_command_line_order() {
    let b = snapshot();
    let opt_out = format!("{EVIDENCE_HEADER}2026-01-05T12:00:00Z,{U1},{N1},,opt-out,\n");
    let opt_in = format!("{EVIDENCE_HEADER}2026-01-05T12:00:00Z,{U1},{N1},,opt-in,\n");
    let dir = setup(&b, &[("out.csv", &opt_out), ("in.csv", &opt_in)]);
    // The opt-in's file comes last: it decides.
    assert_eq!(
        lost(
            dir.path(),
            &["--evidence", "out.csv", "--evidence", "in.csv"]
        ),
        LOST_HEADER
    );
    // The opt-out's file comes last: lost, citing that file as given.
    let csv = lost(
        dir.path(),
        &["--evidence", "in.csv", "--evidence", "./out.csv"],
    );
    assert!(csv.contains(",imported,./out.csv:2,Heron,"), "{csv}");
}

#[test]
fn bad_rows_exit_2_listing_every_problem_and_nothing_is_written() {
    let mut b = snapshot();
    b.messages
        .push(inbound(1, U1, N1, "STOP", &jan(5, 12, 0, 0)));
    let first = format!(
        "{EVIDENCE_HEADER}\
         2026-01-05 12:00,{U1},{N1},,opt-out,\n\
         2026-01-05T12:00:00Z,,{N1},,opt-out,\n\
         2026-01-05T12:00:00Z,{U1},+19995550100,,opt-out,\n\
         2026-01-05T12:00:00Z,{U1},{N1},MG123,STOP,\n\
         2026-01-05T12:00:00Z,{U2},{N1},,opt-out,good row\n"
    );
    let second = format!(
        "time,end_user,twilio_number,kind,source\n2026-01-05T12:00:00Z,{U1},{N1},opt-out,app\n"
    );
    let dir = setup(&b, &[("bad.csv", &first), ("second.csv", &second)]);
    // A report from an earlier run stays exactly as it was.
    on_snap(dir.path(), "audit", "report", &[])
        .assert()
        .success();
    let before = tree(&dir.path().join("report"));
    let expected = [
        "bad.csv:2: time: \"2026-01-05 12:00\" is not an RFC 3339 time",
        "bad.csv:3: end_user: empty",
        "bad.csv:4: twilio_number: +19995550100 is not a number of the snapshot",
        "bad.csv:5: messaging_service_sid: \"MG123\" is not a Messaging Service sid",
        "bad.csv:5: kind: \"STOP\" is not a kind: write opt-out or opt-in",
        "second.csv:1: unknown column \"source\"",
        "missing.csv: evidence file not found",
    ];
    let evidence = [
        "--evidence",
        "bad.csv",
        "--evidence",
        "second.csv",
        "--evidence",
        "missing.csv",
    ];
    let mut audit = vec![
        "audit",
        "--snapshot",
        "snap",
        "--map",
        "map.csv",
        "--out",
        "report",
    ];
    audit.extend_from_slice(&evidence);
    let mut optouts = vec![
        "optouts",
        "--snapshot",
        "snap",
        "--map",
        "map.csv",
        "--out",
        "lost.csv",
        "--per-customer",
        "per",
    ];
    optouts.extend_from_slice(&evidence);
    let mut plan = vec![
        "plan",
        "--snapshot",
        "snap",
        "--map",
        "map.csv",
        "--out",
        "plan/plan.json",
    ];
    plan.extend_from_slice(&evidence);
    for args in [&audit, &optouts, &plan] {
        let mut assert = run(dir.path(), args).code(BAD_INPUT);
        for problem in expected {
            assert = assert.stderr(contains(problem));
        }
    }
    assert_eq!(tree(&dir.path().join("report")), before);
    for path in ["lost.csv", "per", "plan"] {
        assert!(!dir.path().join(path).exists(), "{path} was written");
    }
}

#[test]
fn an_output_never_replaces_an_evidence_file() {
    let dir = setup(&snapshot(), &[("ev.csv", EVIDENCE_HEADER)]);
    run(
        dir.path(),
        &[
            "optouts",
            "--snapshot",
            "snap",
            "--evidence",
            "ev.csv",
            "--out",
            "ev.csv",
        ],
    )
    .code(BAD_INPUT)
    .stderr(contains("would replace the input ev.csv (--evidence)"));
    assert_eq!(
        fs::read_to_string(dir.path().join("ev.csv")).unwrap(),
        EVIDENCE_HEADER
    );
}

#[test]
fn imported_opt_outs_are_re_seeded_by_the_plan() {
    let b = snapshot();
    let evidence = format!("{EVIDENCE_HEADER}2025-06-01T12:00:00Z,{U2},{N1},,opt-out,\n");
    let dir = setup(&b, &[("ev.csv", &evidence)]);
    on_snap(
        dir.path(),
        "plan",
        "plan/plan.json",
        &["--evidence", "ev.csv"],
    )
    .assert()
    .success();
    let reseed: Vec<_> = fs::read_dir(dir.path().join("plan/reseed"))
        .unwrap()
        .map(|e| fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(reseed.len(), 1, "{reseed:?}");
    let item: serde_json::Value = serde_json::from_str(reseed[0].trim()).unwrap();
    assert_eq!(item["contact_id"], U2);
    assert_eq!(item["sender_id"], N1);
    assert_eq!(item["status"], "opt-out");
    assert_eq!(item["date_of_consent"], "2025-06-01T12:00:00Z");
}

#[test]
fn the_shipped_evidence_changes_the_sample_result() {
    let dir = TempDir::new().unwrap();
    let root = repo_root();
    let run_on_sample = |name: &str, evidence: bool| {
        let out = dir.path().join(name);
        let mut cmd = subaudit(&root);
        cmd.args(["optouts", "--map", "sample-data/owlie/mapping.csv", "--out"])
            .arg(out.join("lost.csv"))
            .arg("--violations")
            .arg(out.join("violations.csv"));
        if evidence {
            cmd.args(["--evidence", "sample-data/owlie/evidence.csv"]);
        }
        cmd.assert().success();
        (
            read_csv(&out.join("lost.csv")),
            read_csv(&out.join("violations.csv")),
        )
    };
    let (lost_without, violations_without) = run_on_sample("without", false);
    let (lost_with, violations_with) = run_on_sample("with", true);
    let evidence = read_csv(&root.join("sample-data/owlie/evidence.csv"));
    assert!((10..=20).contains(&(evidence.len() - 1)), "{evidence:?}");

    let imported: Vec<&Vec<String>> = lost_with.iter().filter(|r| r[7] == "imported").collect();
    assert!(lost_without.iter().all(|r| r[7] != "imported"));
    assert!(imported.len() >= 5, "{imported:?}");
    for row in &imported {
        let line: usize = row[8]
            .strip_prefix("sample-data/owlie/evidence.csv:")
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("cites no line of the file: {row:?}"));
        // The row of the file it cites names the same end user and time.
        let cited = &evidence[line - 1];
        assert_eq!(
            (&cited[1], &cited[0], &cited[4]),
            (&row[0], &row[5], &"opt-out".to_string())
        );
    }
    // The file's opt-in cancels an opt-out the logs show.
    let opt_in = evidence
        .iter()
        .find(|r| r[4] == "opt-in")
        .expect("an opt-in row");
    let of_user = |rows: &[Vec<String>]| {
        rows.iter()
            .filter(|r| r[0] == opt_in[1] && r[1] == opt_in[2] && r[3] == "number")
            .count()
    };
    assert_eq!(of_user(&lost_without), 1);
    assert_eq!(of_user(&lost_with), 0);
    // A send the logs could not flag (its opt-out is only in the file) is a violation now.
    assert!(violations_without.iter().all(|r| r[9] != "imported"));
    assert!(violations_with.iter().any(|r| r[9] == "imported"));
    assert_ne!(lost_with.len(), lost_without.len());
}

#[test]
fn audit_cites_imported_rows_in_its_files_summary_and_page() {
    let b = snapshot();
    let evidence = format!(
        "{EVIDENCE_HEADER}\
         2025-06-01T12:00:00Z,{U2},{N1},,opt-out,\n\
         2026-01-07T08:00:00Z,{U1},{N2},{},opt-out,\n",
        sid("MG", 1)
    );
    let dir = setup(&b, &[("ev.csv", &evidence)]);
    on_snap(dir.path(), "audit", "report", &["--evidence", "ev.csv"])
        .assert()
        .success()
        .stdout(contains(
            "2 events from your own records added (--evidence)",
        ));
    let report = dir.path().join("report");
    let lost = fs::read_to_string(report.join("optouts_lost.csv")).unwrap();
    assert!(lost.contains(",imported,ev.csv:2,Heron,"), "{lost}");
    assert!(lost.contains(",imported,ev.csv:3,Heron,"), "{lost}");
    assert_eq!(
        fs::read_to_string(report.join("optouts/Heron.csv")).unwrap(),
        lost
    );
    let page = fs::read_to_string(report.join("report.html")).unwrap();
    assert!(page.contains("your imported records"));
    assert!(page.contains("2 events from your own records (--evidence) are included"));
}

/// One file under several spellings (`ev.csv`, `./ev.csv`, a link to it) is read once, under
/// the first: its rows are imported once and its problems listed once.
#[cfg(unix)]
#[test]
fn a_file_given_under_two_spellings_is_read_once() {
    let mut b = snapshot();
    b.messages
        .push(inbound(1, U1, N1, "STOP", &jan(5, 12, 0, 0)));
    let good = format!("{EVIDENCE_HEADER}2025-06-01T12:03:00Z,{U2},{N1},,opt-out,\n");
    let bad = format!("{EVIDENCE_HEADER}2026-01-05T12:00:00Z,,{N1},,opt-out,\n");
    let dir = setup(&b, &[("ev.csv", &good), ("bad.csv", &bad)]);
    std::os::unix::fs::symlink("ev.csv", dir.path().join("link.csv")).unwrap();
    let once = lost(dir.path(), &["--evidence", "ev.csv"]);
    let spelled = [
        "--evidence",
        "ev.csv",
        "--evidence",
        "./ev.csv",
        "--evidence",
        "link.csv",
    ];
    assert_eq!(lost(dir.path(), &spelled), once);
    assert!(once.contains("ev.csv:2"), "{once}");

    let twice = ["--evidence", "bad.csv", "--evidence", "./bad.csv"];
    let out = on_snap(dir.path(), "optouts", "x.csv", &twice)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(BAD_INPUT));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("end_user: empty").count(), 1, "{stderr}");
}
