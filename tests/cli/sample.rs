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
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".suppression.csv") {
            continue;
        }
        let rows = read_csv(&path);
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

/// Without `--snapshot`, outside the repository: the binary makes the demo sample into the
/// cache folder (once), says so on stderr, and gives the same result as the shipped sample.
#[test]
fn without_snapshot_outside_the_repository_the_demo_sample_is_generated_and_announced() {
    let work = TempDir::new().unwrap();
    let cache = TempDir::new().unwrap();
    let demo = |dir: &std::path::Path| {
        let assert = subaudit(dir)
            .env("XDG_CACHE_HOME", cache.path())
            .args(["optouts", "--all"])
            .assert()
            .success();
        let out = assert.get_output();
        (
            String::from_utf8(out.stdout.clone()).unwrap(),
            String::from_utf8(out.stderr.clone()).unwrap(),
        )
    };
    let (csv, stderr) = demo(work.path());
    let made: Vec<_> = fs::read_dir(cache.path().join("subaudit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(made.len(), 1, "one sample, no staging left: {made:?}");
    let sample = &made[0];
    assert!(sample.join("manifest.json").is_file());
    assert!(sample.join("mapping.csv").is_file());
    let note: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("demo sample"))
        .collect();
    assert_eq!(note.len(), 1, "{stderr}");
    assert!(
        note[0].contains(&sample.display().to_string()) && note[0].contains("--snapshot DIR"),
        "{stderr}"
    );

    // The same opt-outs as the shipped sample's.
    let shipped = subaudit(&repo_root())
        .args(["optouts", "--all", "--snapshot", "sample-data/owlie"])
        .assert()
        .success();
    assert_eq!(
        csv,
        String::from_utf8(shipped.get_output().stdout.clone()).unwrap()
    );

    // A second run reads the cached sample as it is.
    let written = fs::metadata(sample.join("messages.jsonl"))
        .unwrap()
        .modified()
        .unwrap();
    let (again, _) = demo(work.path());
    assert_eq!(again, csv);
    assert_eq!(
        fs::metadata(sample.join("messages.jsonl"))
            .unwrap()
            .modified()
            .unwrap(),
        written
    );
    // In the repository the shipped folder is used, and named.
    let (_, stderr) = demo(&repo_root());
    assert!(
        stderr.contains("demo sample in sample-data/owlie"),
        "{stderr}"
    );
    // --snapshot given: no note.
    let given = subaudit(work.path())
        .args(["optouts", "--all", "--snapshot"])
        .arg(repo_root().join("sample-data/owlie"))
        .assert()
        .success();
    assert!(!String::from_utf8_lossy(&given.get_output().stderr).contains("demo sample"));
}

/// Making the demo sample clears what earlier builds left in the cache: another build's
/// sample and a crashed run's staging folder, once they are ten minutes old. A recent one (a
/// run may still read it) and anything not named like a sample stay.
#[test]
fn a_new_demo_sample_clears_older_builds_samples_from_the_cache() {
    let work = TempDir::new().unwrap();
    let cache = TempDir::new().unwrap();
    let root = cache.path().join("subaudit");
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let old = |name: &str| {
        let dir = root.join(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("manifest.json"), "{}").unwrap();
        fs::File::open(&dir)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        dir
    };
    let old_sample = old("sample-0.0.1-00000000deadbeef");
    let crashed = old(".sample-Ab12Cd");
    let kept_other = old("notes");
    let recent = root.join("sample-0.0.2-00000000feedface");
    fs::create_dir_all(&recent).unwrap();
    subaudit(work.path())
        .env("XDG_CACHE_HOME", cache.path())
        .args(["optouts", "--all"])
        .assert()
        .success();
    assert!(!old_sample.exists() && !crashed.exists());
    assert!(kept_other.exists() && recent.exists());
    let samples = fs::read_dir(&root)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy().to_string();
            name.starts_with("sample-") && e.as_ref().unwrap().path() != recent
        })
        .count();
    assert_eq!(samples, 1, "the new sample alone besides the recent one");
}
