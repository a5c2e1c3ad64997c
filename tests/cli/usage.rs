//! `subaudit usage` (and the usage files of `audit`) on hand-made snapshots with known totals,
//! and on the shipped sample.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::support::*;

const N1: &str = "+14155550101";
const N2: &str = "+14155550102";
const N3: &str = "+14155550103";
const CUSTOMER_PHONE: &str = "+15125550001";

fn sub() -> String {
    sid("AC", 1)
}

fn out_msg(n: u64, from: &str, date: &str, price: Option<&str>) -> Value {
    let mut m = Msg {
        sid: &sid("SM", n),
        direction: "outbound-api",
        from,
        to: CUSTOMER_PHONE,
        body: None,
        date_sent: date,
        ..Msg::default()
    }
    .json();
    m["price"] = json!(price);
    m
}

/// The parent with a subaccount (Falcon Flights), three numbers (N1 to Falcon Flights, N2 to a
/// new Heron Health, N3 unmapped), messages in December, January and February, and usage
/// records whose totals are worked out by hand in the tests.
fn builder() -> SnapshotBuilder {
    let mut b = SnapshotBuilder::default();
    b.accounts
        .push(account(&sub(), "Falcon Flights", "active", Some(PARENT)));
    b.numbers = vec![
        number(&sid("PN", 1), N1),
        number(&sid("PN", 2), N2),
        number(&sid("PN", 3), N3),
    ];
    let mut m2 = out_msg(2, N1, &jan(6, 10, 0, 0), Some("-0.02370"));
    m2["num_segments"] = json!("3");
    let mut m3 = Msg {
        sid: &sid("SM", 3),
        direction: "inbound",
        from: CUSTOMER_PHONE,
        to: N1,
        body: Some("hi"),
        date_sent: &jan(7, 10, 0, 0),
        ..Msg::default()
    }
    .json();
    m3["price"] = json!("-0.00790");
    let mut m4 = out_msg(4, N2, &jan(8, 10, 0, 0), Some("-0.02000"));
    m4["num_media"] = json!("2");
    b.messages = vec![
        out_msg(1, N1, &jan(5, 10, 0, 0), Some("-0.00790")),
        m2,
        m3,
        m4,
        // Sent in the last second of January, not priced yet.
        out_msg(5, N2, &jan(31, 23, 59, 59), None),
        out_msg(6, N3, &jan(9, 10, 0, 0), Some("-0.00790")),
        // From a number the snapshot does not hold.
        out_msg(7, "+19995550000", &jan(10, 10, 0, 0), Some("-0.00790")),
        out_msg(8, N1, &at(2026, 2, 1, 0, 0, 0), Some("-0.00790")),
        out_msg(9, N1, &at(2025, 12, 31, 23, 59, 59), Some("-0.00790")),
    ];
    let s = sub();
    b.usage = vec![
        usage_record(
            PARENT,
            "sms",
            "2025-12-01",
            "2025-12-31",
            Some("1"),
            Some("1"),
            "segments",
            Some("0.00790"),
        ),
        usage_record(
            PARENT,
            "sms",
            "2026-01-01",
            "2026-01-31",
            Some("6"),
            Some("6"),
            "segments",
            Some("0.06320"),
        ),
        usage_record(
            PARENT,
            "mms",
            "2026-01-01",
            "2026-01-31",
            Some("1"),
            Some("1"),
            "messages",
            Some("0.02000"),
        ),
        usage_record(
            PARENT,
            "calls",
            "2025-12-01",
            "2025-12-31",
            None,
            Some("10"),
            "minutes",
            Some("1.1"),
        ),
        usage_record(
            PARENT,
            "calls",
            "2026-01-01",
            "2026-01-31",
            Some("3"),
            Some("12"),
            "minutes",
            Some("2.23450"),
        ),
        usage_record(
            PARENT,
            "phonenumbers",
            "2025-12-15",
            "2026-01-14",
            Some("3"),
            Some("3"),
            "phone-numbers",
            Some("3.45"),
        ),
        usage_record(
            PARENT,
            "totalprice",
            "2025-12-01",
            "2025-12-31",
            None,
            Some("1.10790"),
            "usd",
            Some("1.10790"),
        ),
        usage_record(
            PARENT,
            "totalprice",
            "2026-01-01",
            "2026-01-31",
            None,
            Some("2.31770"),
            "usd",
            Some("2.31770"),
        ),
        usage_record(
            PARENT,
            "sms",
            "2026-02-01",
            "2026-02-28",
            Some("1"),
            Some("1"),
            "segments",
            Some("0.00790"),
        ),
        usage_record(
            &s,
            "sms",
            "2025-12-01",
            "2025-12-31",
            Some("2"),
            Some("2"),
            "segments",
            Some("0.00000000000000000001"),
        ),
        usage_record(
            &s,
            "sms",
            "2026-01-01",
            "2026-01-31",
            Some("5"),
            Some("5"),
            "segments",
            Some("0.12345678901234567890"),
        ),
        usage_record(
            &s,
            "mms",
            "2026-01-01",
            "2026-01-31",
            Some("1"),
            Some("1"),
            "messages",
            None,
        ),
        usage_record(
            &s,
            "calls",
            "2026-01-01",
            "2026-01-31",
            Some("1"),
            Some("2"),
            "minutes",
            Some("-12.3450"),
        ),
    ];
    b
}

struct Run {
    dir: tempfile::TempDir,
    stdout: String,
    stderr: String,
}

impl Run {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join("out").join(name)
    }
    fn csv(&self, name: &str) -> Vec<String> {
        read_csv(&self.file(name))
            .into_iter()
            .map(|r| r.join(","))
            .collect()
    }
}

fn write_map(dir: &Path) -> PathBuf {
    let path = dir.join("mapping.csv");
    std::fs::write(
        &path,
        format!("number,customer,subaccount_sid\n{N1},Falcon Flights,\n{N2},Heron Health,\n"),
    )
    .unwrap();
    path
}

fn run_usage(b: &SnapshotBuilder, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let snap = b.write(&dir.path().join("snap"));
    let map = write_map(dir.path());
    let output = subaudit(dir.path())
        .arg("usage")
        .arg("--snapshot")
        .arg(&snap)
        .arg("--map")
        .arg(&map)
        .args(["--out", "out/usage_summary.csv"])
        .args(extra)
        .output()
        .unwrap();
    let run = Run {
        dir,
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    };
    assert!(output.status.success(), "{}\n{}", run.stdout, run.stderr);
    run
}

fn fail_usage(b: &SnapshotBuilder, extra: &[&str]) -> (tempfile::TempDir, i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let snap = b.write(&dir.path().join("snap"));
    let output = subaudit(dir.path())
        .arg("usage")
        .arg("--snapshot")
        .arg(&snap)
        .args(["--out", "out/usage_summary.csv"])
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    (dir, output.status.code().unwrap_or(-1), stderr)
}

const SUMMARY_HEADER: &str = "account_sid,friendly_name,category,start_date,end_date,count,usage,usage_unit,price,price_unit";

#[test]
fn summary_sums_exact_decimals_and_leaves_null_sums_empty() {
    let run = run_usage(&builder(), &[]);
    let s = sub();
    assert_eq!(
        run.csv("usage_summary.csv"),
        vec![
            SUMMARY_HEADER.to_string(),
            // count is null in one of the two calls records: the sum is unknown, not 3.
            format!("{PARENT},Owlie Notifications,calls,2025-12-01,2026-01-31,,22,minutes,3.33450,USD"),
            format!("{PARENT},Owlie Notifications,mms,2026-01-01,2026-01-31,1,1,messages,0.02000,USD"),
            format!("{PARENT},Owlie Notifications,phonenumbers,2025-12-15,2026-01-14,3,3,phone-numbers,3.45,USD"),
            format!("{PARENT},Owlie Notifications,sms,2025-12-01,2026-02-28,8,8,segments,0.07900,USD"),
            format!("{PARENT},Owlie Notifications,totalprice,2025-12-01,2026-01-31,,3.42560,usd,3.42560,USD"),
            format!("{s},Falcon Flights,calls,2026-01-01,2026-01-31,1,2,minutes,-12.3450,USD"),
            format!("{s},Falcon Flights,mms,2026-01-01,2026-01-31,1,1,messages,,USD"),
            format!("{s},Falcon Flights,sms,2025-12-01,2026-01-31,7,7,segments,0.12345678901234567891,USD"),
        ]
    );
    assert!(
        run.stderr
            .contains(&format!("{s} mms: price is null in 1 of 1 records")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("{PARENT} calls: count is null in 1 of 2 records")),
        "{}",
        run.stderr
    );
    // Nothing straddles the whole snapshot.
    assert_eq!(run.csv("usage_straddling.csv").len(), 1);
}

#[test]
fn pivot_has_a_column_per_category_and_a_total_without_totalprice() {
    let run = run_usage(&builder(), &[]);
    let s = sub();
    assert_eq!(
        run.csv("usage_pivot.csv"),
        vec![
            "account_sid,friendly_name,price_unit,sms,mms,calls,phonenumbers,totalprice,total,notes".to_string(),
            format!("{PARENT},Owlie Notifications,USD,0.07900,0.02000,3.33450,3.45,3.42560,6.88350,"),
            format!("{s},Falcon Flights,USD,0.12345678901234567891,,-12.3450,,,,mms price null in 1 of 1 records; total unknown (a price is null)"),
        ]
    );
    let run = run_usage(&builder(), &["--category", "sms,sms-outbound,calls"]);
    assert_eq!(
        run.csv("usage_pivot.csv")[..2],
        [
            "account_sid,friendly_name,price_unit,sms,sms-outbound,calls,total,notes".to_string(),
            // sms-outbound is part of sms: shown, not added twice.
            format!("{PARENT},Owlie Notifications,USD,0.07900,,3.33450,3.41350,"),
        ]
    );
}

#[test]
fn attribution_and_reconciliation_match_the_hand_worked_totals() {
    let run = run_usage(&builder(), &[]);
    let s = sub();
    assert_eq!(
        run.csv("usage_attribution.csv"),
        vec![
            "kind,customer,target_account_sid,month,inbound_messages,outbound_messages,segments,media,priced_messages,unpriced_messages,cost,price_unit,usage_cost,attributed_cost,unattributed_cost,difference,note".to_string(),
            format!("customer,Falcon Flights,{s},2025-12,0,1,1,0,1,0,0.00790,USD,,,,,"),
            "reconciliation,,,2025-12,,,,,,,,USD,0.00790,0.00790,0.00000,0.00000,".to_string(),
            format!("customer,Falcon Flights,{s},2026-01,1,2,5,0,3,0,0.03950,USD,,,,,"),
            "customer,Heron Health,,2026-01,0,2,2,2,1,1,0.02000,USD,,,,,".to_string(),
            "unattributed,(unmapped),,2026-01,0,1,1,0,1,0,0.00790,USD,,,,,".to_string(),
            "unattributed,(unknown number),,2026-01,0,1,1,0,1,0,0.00790,USD,,,,,".to_string(),
            "reconciliation,,,2026-01,,,,,,,,USD,0.08320,0.05950,0.01580,0.00790,1 message without a price (not priced yet, or not billed)".to_string(),
            format!("customer,Falcon Flights,{s},2026-02,0,1,1,0,1,0,0.00790,USD,,,,,"),
            "reconciliation,,,2026-02,,,,,,,,USD,0.00790,0.00790,0.00000,0.00000,".to_string(),
        ]
    );
    // The terminal table: customers by spend, the unattributed traffic, the total.
    let lines: Vec<&str> = run.stdout.lines().collect();
    let falcon = lines
        .iter()
        .position(|l| l.contains("Falcon Flights"))
        .unwrap();
    let heron = lines
        .iter()
        .position(|l| l.contains("Heron Health"))
        .unwrap();
    assert!(falcon < heron, "{}", run.stdout);
    let total = lines.iter().find(|l| l.contains("total")).unwrap();
    assert!(
        total.contains("0.09110") && total.contains(" 9 "),
        "{total}"
    );
    assert!(
        unwrapped(&run.stdout).contains("Parent sms+mms usage 0.09900 USD; priced messages 0.09110 USD; difference 0.00790 USD (1 message without a price)"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_table_folds_customers_past_top_into_one_row() {
    let run = run_usage(&builder(), &["--top", "1"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines.iter().any(|l| l.contains("Falcon Flights")),
        "{}",
        run.stdout
    );
    assert!(
        !lines.iter().any(|l| l.contains("Heron Health")),
        "{}",
        run.stdout
    );
    let others = lines
        .iter()
        .find(|l| l.contains("(1 other customer)"))
        .unwrap();
    assert!(others.contains("0.02000"), "{others}");
    let total = lines.iter().find(|l| l.contains("total")).unwrap();
    assert!(
        total.contains("2 customers") && total.contains("0.09110"),
        "{total}"
    );
}

#[test]
fn a_period_keeps_records_inside_and_reports_those_crossing_its_edges() {
    let run = run_usage(
        &builder(),
        &["--start", "2026-01-01", "--end", "2026-01-31"],
    );
    let s = sub();
    assert_eq!(
        run.csv("usage_summary.csv"),
        vec![
            SUMMARY_HEADER.to_string(),
            format!("{PARENT},Owlie Notifications,calls,2026-01-01,2026-01-31,3,12,minutes,2.23450,USD"),
            format!("{PARENT},Owlie Notifications,mms,2026-01-01,2026-01-31,1,1,messages,0.02000,USD"),
            format!("{PARENT},Owlie Notifications,sms,2026-01-01,2026-01-31,6,6,segments,0.06320,USD"),
            format!("{PARENT},Owlie Notifications,totalprice,2026-01-01,2026-01-31,,2.31770,usd,2.31770,USD"),
            format!("{s},Falcon Flights,calls,2026-01-01,2026-01-31,1,2,minutes,-12.3450,USD"),
            format!("{s},Falcon Flights,mms,2026-01-01,2026-01-31,1,1,messages,,USD"),
            format!("{s},Falcon Flights,sms,2026-01-01,2026-01-31,5,5,segments,0.12345678901234567890,USD"),
        ]
    );
    assert_eq!(
        run.csv("usage_straddling.csv"),
        vec![
            "account_sid,friendly_name,category,start_date,end_date,count,usage,usage_unit,price,price_unit,period_start,period_end".to_string(),
            format!("{PARENT},Owlie Notifications,phonenumbers,2025-12-15,2026-01-14,3,3,phone-numbers,3.45,USD,2026-01-01,2026-01-31"),
        ]
    );
    assert!(
        run.stderr
            .contains("phonenumbers 2025-12-15..2026-01-14 crosses the period"),
        "{}",
        run.stderr
    );
    // Messages of the last second of January count; those of Dec 31 and Feb 1 do not.
    let attribution = run.csv("usage_attribution.csv");
    assert!(
        attribution[1..].iter().all(|r| r.contains(",2026-01,")),
        "{attribution:?}"
    );
    assert_eq!(attribution.len(), 1 + 5);
}

#[test]
fn a_period_of_two_days_across_a_month_end_sums_no_monthly_record() {
    let run = run_usage(
        &builder(),
        &["--start", "2026-01-31", "--end", "2026-02-01"],
    );
    assert_eq!(
        run.csv("usage_summary.csv"),
        vec![SUMMARY_HEADER.to_string()]
    );
    // Every January and February record crosses one of the edges.
    assert_eq!(run.csv("usage_straddling.csv").len(), 1 + 8);
    let attribution = run.csv("usage_attribution.csv");
    assert_eq!(
        attribution[1..],
        [
            "customer,Heron Health,,2026-01,0,1,1,0,0,1,,USD,,,,,".to_string(),
            "reconciliation,,,2026-01,,,,,,,,USD,,0.00000,0.00000,,no sms/mms usage record of the parent for the month; 1 message without a price (not priced yet, or not billed)".to_string(),
            format!("customer,Falcon Flights,{},2026-02,0,1,1,0,1,0,0.00790,USD,,,,,", sub()),
            "reconciliation,,,2026-02,,,,,,,,USD,,0.00790,0.00000,,no sms/mms usage record of the parent for the month".to_string(),
        ]
    );
}

#[test]
fn audit_writes_the_same_usage_files() {
    let b = builder();
    let run = run_usage(&b, &[]);
    let dir = tempfile::tempdir().unwrap();
    let snap = b.write(&dir.path().join("snap"));
    let map = write_map(dir.path());
    subaudit(dir.path())
        .arg("audit")
        .arg("--snapshot")
        .arg(&snap)
        .arg("--map")
        .arg(&map)
        .args(["--out", "report"])
        .assert()
        .success();
    for name in [
        "usage_summary.csv",
        "usage_pivot.csv",
        "usage_attribution.csv",
        "usage_straddling.csv",
    ] {
        assert_eq!(
            std::fs::read_to_string(dir.path().join("report").join(name)).unwrap(),
            std::fs::read_to_string(run.file(name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn start_after_end_and_bad_dates_are_usage_errors() {
    let (dir, code, stderr) = fail_usage(
        &builder(),
        &["--start", "2026-02-01", "--end", "2026-01-31"],
    );
    assert_eq!(code, BAD_INPUT);
    assert!(
        stderr.contains("--start 2026-02-01 is after --end 2026-01-31"),
        "{stderr}"
    );
    assert_nothing_written(&dir.path().join("out"));
    let (dir, code, stderr) = fail_usage(&builder(), &["--start", "2026-13-01"]);
    assert_eq!(code, BAD_INPUT);
    assert!(
        stderr.contains("\"2026-13-01\" is not a date: expected YYYY-MM-DD"),
        "{stderr}"
    );
    assert_nothing_written(&dir.path().join("out"));
    let (_, code, stderr) = fail_usage(&builder(), &["--category", "sms,,mms"]);
    assert_eq!(code, BAD_INPUT);
    assert!(
        stderr.contains("--category holds an empty name"),
        "{stderr}"
    );
}

#[test]
fn an_unparseable_amount_names_the_file_line_and_field() {
    let mut b = builder();
    b.usage[4]["price"] = json!("2,23450");
    b.usage[7]["start_date"] = json!("Jan 1");
    let (dir, code, stderr) = fail_usage(&b, &[]);
    assert_eq!(code, BAD_INPUT, "{stderr}");
    assert!(
        stderr.contains("usage_records.jsonl:5: price \"2,23450\" is not an exact decimal number"),
        "{stderr}"
    );
    assert!(
        stderr.contains("usage_records.jsonl:8: start_date \"Jan 1\" is not a date"),
        "{stderr}"
    );
    assert_nothing_written(&dir.path().join("out"));
}

#[test]
fn a_message_price_finer_than_the_scale_is_refused() {
    let mut b = builder();
    b.messages[0]["price"] = json!("-0.0079001");
    let (dir, code, stderr) = fail_usage(&b, &[]);
    assert_eq!(code, BAD_INPUT, "{stderr}");
    assert!(
        stderr.contains("messages.jsonl:1: price \"-0.0079001\" has 7 decimals"),
        "{stderr}"
    );
    assert_nothing_written(&dir.path().join("out"));
}

#[test]
fn overlapping_records_would_double_count_and_are_refused() {
    let mut b = builder();
    b.usage.push(usage_record(
        PARENT,
        "sms",
        "2026-01-05",
        "2026-01-05",
        Some("1"),
        Some("1"),
        "segments",
        Some("0.00790"),
    ));
    let (dir, code, stderr) = fail_usage(&b, &[]);
    assert_eq!(code, BAD_INPUT, "{stderr}");
    assert!(
        stderr.contains("usage_records.jsonl:14: usage record"),
        "{stderr}"
    );
    assert!(stderr.contains("overlaps the record at"), "{stderr}");
    assert_nothing_written(&dir.path().join("out"));
}

#[test]
fn sample_usage_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = repo_root();
    let output = subaudit(dir.path())
        .arg("usage")
        .arg("--snapshot")
        .arg(root.join("sample-data/owlie"))
        .arg("--map")
        .arg(root.join("sample-data/owlie/mapping.csv"))
        .args(["--out", "out/usage_summary.csv"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read = |name: &str| std::fs::read_to_string(dir.path().join("out").join(name)).unwrap();
    insta::assert_snapshot!("sample_usage_summary", read("usage_summary.csv"));
    insta::assert_snapshot!("sample_usage_pivot", read("usage_pivot.csv"));
    insta::assert_snapshot!("sample_usage_attribution", read("usage_attribution.csv"));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        unwrapped(&stdout).contains("Parent sms+mms usage 87.62850 USD; priced messages 87.18190 USD; difference 0.44660 USD (239 messages without a price)"),
        "{stdout}"
    );
}

/// The terminal's prose lines joined again where they were wrapped at its width.
fn unwrapped(stdout: &str) -> String {
    stdout.replace('\n', " ")
}

/// At 80 columns `plan` and `usage` fit: the header and summary lines wrap between words, the
/// tables wrap names between words or leave columns out, no line is wider, and the parent's
/// sid is abbreviated, never broken.
#[test]
fn plan_and_usage_fit_80_columns() {
    let dir = tempfile::tempdir().unwrap();
    let sample = repo_root().join("sample-data/owlie");
    for args in [
        vec!["plan", "--out", "p/plan.json"],
        vec!["usage", "--out", "u/usage_summary.csv"],
    ] {
        let out = subaudit(dir.path())
            .args(&args)
            .arg("--snapshot")
            .arg(&sample)
            .arg("--map")
            .arg(sample.join("mapping.csv"))
            .env("COLUMNS", "80")
            .assert()
            .success();
        let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        for line in stdout.lines() {
            assert!(
                line.chars().count() <= 80,
                "{args:?}: {line:?} is wider than 80"
            );
        }
        if args[0] == "plan" {
            assert!(stdout.contains("(AC4167…3a05)"), "{stdout}");
        }
    }
}
