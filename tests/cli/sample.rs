//! The shipped sample snapshot and its generator.

use std::fs;

use predicates::str::contains;
use tempfile::TempDir;

use crate::support::*;

#[test]
fn the_generator_is_deterministic_and_writes_the_shipped_sample() {
    let dir = TempDir::new().unwrap();
    subaudit(dir.path())
        .args(["sample", "--out", "owlie"])
        .assert()
        .success()
        .stdout(contains("120 numbers of 50 customers"));
    let shipped = repo_root().join("sample-data/owlie");
    for name in [
        "manifest.json",
        "accounts.jsonl",
        "incoming_phone_numbers.jsonl",
        "messaging_services.jsonl",
        "messaging_service_phone_numbers.jsonl",
        "a2p_campaigns.jsonl",
        "messages.jsonl",
        "usage_records.jsonl",
        "mapping.csv",
        "evidence.csv",
    ] {
        let made = fs::read(dir.path().join("owlie").join(name)).unwrap();
        let kept = fs::read(shipped.join(name)).unwrap();
        assert!(made == kept, "{name} differs from sample-data/owlie: regenerate it with `subaudit sample --out sample-data/owlie`");
    }
}

#[test]
fn the_readme_audit_command_runs_on_the_sample() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("report");
    let assert = subaudit(&repo_root())
        .args([
            "audit",
            "--snapshot",
            "sample-data/owlie",
            "--map",
            "sample-data/owlie/mapping.csv",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(stdout.contains("Owlie Notifications"), "{stdout}");
    // The per-customer files are exactly the lost rows, split.
    let lost = read_csv(&out.join("optouts_lost.csv"));
    assert!(
        lost.len() > 100,
        "the sample loses opt-outs: {}",
        lost.len()
    );
    let mut split = 0;
    for entry in fs::read_dir(out.join("optouts")).unwrap() {
        let rows = read_csv(&entry.unwrap().path());
        assert_eq!(rows[0], lost[0]);
        split += rows.len() - 1;
    }
    assert_eq!(split, lost.len() - 1);
    // The sample carries every kind of evidence.
    let text = fs::read_to_string(out.join("optouts_lost.csv")).unwrap();
    assert!(text.contains(",number,") && text.contains(",service,"));
    assert!(text.contains("error-21610") && text.contains("inbound-keyword"));
    assert!(read_csv(&out.join("optouts_possible.csv")).len() > 1);
    // The page a reviewer opens first: the blockers of the sample are on it.
    let page = fs::read_to_string(out.join("report.html")).unwrap();
    assert!(page.contains("Migration audit of Owlie Notifications"));
    for code in [
        "hosted-number",
        "target-suspended",
        "target-closed",
        "mapping-conflict",
    ] {
        assert!(
            page.contains(&format!("<td class=\"nowrap\"><code>{code}</code></td>")),
            "{code} missing from report.html"
        );
    }
}

/// The whole terminal summary and the two review files of the sample, as a reviewer sees them.
#[test]
fn the_sample_audit_output_is_stable() {
    let dir = TempDir::new().unwrap();
    let snapshot = repo_root().join("sample-data/owlie");
    let assert = subaudit(dir.path())
        .arg("audit")
        .arg("--snapshot")
        .arg(&snapshot)
        .arg("--map")
        .arg(snapshot.join("mapping.csv"))
        .args(["--out", "report"])
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    insta::assert_snapshot!("sample_audit_stdout", stdout);
    let report = dir.path().join("report");
    insta::assert_snapshot!(
        "sample_optout_violations",
        fs::read_to_string(report.join("optout_violations.csv")).unwrap()
    );
    insta::assert_snapshot!(
        "sample_optouts_possible",
        fs::read_to_string(report.join("optouts_possible.csv")).unwrap()
    );
}
