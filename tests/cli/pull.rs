//! `subaudit pull` end to end: a snapshot served by `twilio-sim`, pulled back, compared record
//! for record; with faults injected; killed midway and resumed; and the errors a user meets.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command as StdCommand, Stdio};

use assert_cmd::Command;
use predicates::prelude::PredicateBooleanExt;
use serde_json::{json, Value};
use subaudit::snapshot::{OpenOptions, Resource, Snapshot};

use crate::support::*;

const TOKEN: &str = "sim-parent-token-7f3a";
const SUB_A: &str = "AC000000000000000000000000000000a1";
const SUB_B: &str = "AC000000000000000000000000000000b2";

/// A running simulator, killed on drop.
struct Sim {
    child: Child,
    url: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sim(snapshot: &Path, extra: &[&str]) -> Sim {
    let (child, url) = spawn_twilio_sim(snapshot, PARENT, TOKEN, extra);
    Sim { child, url }
}

fn clear_twilio_env(cmd: &mut Command) {
    for var in [
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_API_KEY",
        "TWILIO_API_SECRET",
        "TWILIO_REGION",
        "TWILIO_EDGE",
        "SUBAUDIT_TWILIO_BASE_URL",
    ] {
        cmd.env_remove(var);
    }
}

/// `subaudit pull` against the simulator, with the test snapshot's window and fast retries.
fn pull(dir: &Path, sim: &Sim, out: &str) -> Command {
    pull_between(dir, sim, out, "2025-12-01", "2026-01-31")
}

fn pull_between(dir: &Path, sim: &Sim, out: &str, since: &str, until: &str) -> Command {
    let mut cmd = subaudit(dir);
    clear_twilio_env(&mut cmd);
    cmd.args(["pull", "--out", out, "--since", since, "--until", until])
        .args(["--retry-base-ms", "5", "--max-retries", "12"])
        .env("TWILIO_ACCOUNT_SID", PARENT)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("SUBAUDIT_TWILIO_BASE_URL", &sim.url);
    cmd
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> String {
    use chrono::TimeZone;
    subaudit::time::to_rfc2822(&chrono::Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap())
}

fn usage(account: &str, category: &str, start: &str, end: &str, count: &str, price: &str) -> Value {
    json!({
        "account_sid": account, "api_version": "2010-04-01", "as_of": "2026-02-01T00:00:00+00:00",
        "category": category, "count": count, "count_unit": "messages",
        "description": "SMS Messages", "end_date": end, "price": price, "price_unit": "usd",
        "start_date": start, "subresource_uris": {}, "uri": format!("/2010-04-01/Accounts/{account}/Usage/Records/Monthly?Category={category}"),
        "usage": count, "usage_unit": "segments"
    })
}

/// A small account with every resource, and messages on both edges of days (00:00:00,
/// 23:59:59), sharing seconds, outbound with bodies (to be dropped), a null date_sent aside.
fn rich_snapshot(dir: &Path) -> std::path::PathBuf {
    let mut b = SnapshotBuilder::default();
    b.accounts
        .push(account(SUB_A, "Falcon Flights", "active", Some(PARENT)));
    b.accounts
        .push(account(SUB_B, "Old Customer", "closed", Some(PARENT)));
    let mg1 = sid("MG", 1);
    let mg2 = sid("MG", 2);
    b.services.push(service(&mg1, "Owlie Alerts"));
    b.services.push(service(&mg2, "Owlie Marketing"));
    for n in 1..=12u64 {
        let phone = format!("+1415555{:04}", n);
        b.numbers.push(number(&sid("PN", n), &phone));
        if n <= 8 {
            let mg = if n % 2 == 0 { &mg1 } else { &mg2 };
            b.service_numbers
                .push(service_number(mg, &sid("PN", n), &phone));
        }
    }
    b.campaigns.push(json!({
        "sid": sid("QE", 1), "messaging_service_sid": mg1, "campaign_status": "VERIFIED",
        "campaign_id": "CABCDEF", "us_app_to_person_usecase": "MIXED", "brand_registration_sid": sid("BN", 1)
    }));
    let mut n = 0u64;
    for (month, days) in [(12u32, 31u32), (1, 31)] {
        let year = if month == 12 { 2025 } else { 2026 };
        for day in 1..=days {
            for (h, m, s) in [(0, 0, 0), (0, 0, 0), (9, 30, 15), (23, 59, 59)] {
                if (day + h) % 5 == 0 {
                    continue; // some days thinner than others
                }
                n += 1;
                let inbound = n.is_multiple_of(3);
                let user = format!("+1202555{:04}", n % 40);
                let twilio = format!("+1415555{:04}", 1 + n % 12);
                let (from, to, dir, body) = if inbound {
                    (
                        user.clone(),
                        twilio.clone(),
                        "inbound",
                        if n.is_multiple_of(2) { "STOP" } else { "hello" },
                    )
                } else {
                    (
                        twilio.clone(),
                        user.clone(),
                        "outbound-api",
                        "Your code is 1234",
                    )
                };
                let service = n.is_multiple_of(4).then_some(mg1.as_str());
                let error = (n.is_multiple_of(17) && !inbound).then_some(21610);
                b.messages.push(
                    Msg {
                        sid: &sid("SM", n),
                        direction: dir,
                        from: &from,
                        to: &to,
                        body: Some(body),
                        date_sent: &utc(year, month, day, h, m, s),
                        service,
                        error_code: error,
                    }
                    .json(),
                );
            }
        }
    }
    for (start, end) in [("2025-12-01", "2025-12-31"), ("2026-01-01", "2026-01-31")] {
        b.usage
            .push(usage(PARENT, "sms", start, end, "120", "-0.95"));
        b.usage
            .push(usage(PARENT, "sms-inbound", start, end, "40", "-0.31"));
        b.usage.push(usage(SUB_A, "sms", start, end, "30", "-0.24"));
    }
    b.write(dir)
}

/// Every record of every resource, as sorted JSON text (order within a file may differ).
fn records(dir: &Path) -> BTreeMap<&'static str, Vec<String>> {
    let snapshot = Snapshot::open(dir, OpenOptions::default()).unwrap();
    let mut out = BTreeMap::new();
    for resource in Resource::ALL {
        let mut lines = Vec::new();
        for (path, _) in snapshot.data_files(resource).unwrap() {
            for line in std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
            {
                let v: Value = serde_json::from_str(line).unwrap();
                lines.push(v.to_string());
            }
        }
        lines.sort();
        out.insert(resource.name(), lines);
    }
    out
}

fn assert_same_snapshot(original: &Path, pulled: &Path) {
    let (a, b) = (records(original), records(pulled));
    for resource in Resource::ALL {
        let name = resource.name();
        assert_eq!(a[name].len(), b[name].len(), "{name}: record counts differ");
        assert!(a[name] == b[name], "{name}: records differ");
    }
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(pulled.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["complete"], json!(true));
    // No secret reached the disk: neither the simulator's account tokens nor ours.
    for entry in walk(pulled) {
        let text = std::fs::read_to_string(&entry).unwrap();
        assert!(
            !text.contains("auth_token") && !text.contains(TOKEN),
            "{}",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn pull_from_the_simulator_gives_back_the_same_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let original = rich_snapshot(&tmp.path().join("original"));
    // Short pages, so that every list pages several times.
    let sim = start_sim(&original, &["--max-page-size", "3"]);
    let out = pull(tmp.path(), &sim, "pulled").assert().success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("pull: done"), "{stderr}");
    // Not a terminal: plain progress lines with the time left, counts with their right noun.
    assert!(
        stderr.contains("pull: messages: 1/1 slices, ETA 0s;"),
        "{stderr}"
    );
    assert!(stderr.contains("pull: accounts: 3 records"), "{stderr}");
    assert!(
        !stderr.contains(" 1 records") && !stderr.contains(" 1 retries"),
        "{stderr}"
    );
    // The end names the folder and the commands to paste next.
    assert_eq!(
        String::from_utf8_lossy(&out.get_output().stdout),
        "Snapshot written to pulled\nNext: propose a mapping, review it, then audit:\n  \
         subaudit map --snapshot pulled --out mapping.proposed.csv\n  \
         subaudit audit --snapshot pulled --map mapping.proposed.csv --out report/\n"
    );
    assert!(!stderr.contains(TOKEN));
    let pulled = tmp.path().join("pulled");
    assert_same_snapshot(&original, &pulled);
    // The usage records (120 messages a month) put the whole window in one slice: one file,
    // named by its start, as pull.json planned it.
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(pulled.join("manifest.json")).unwrap())
            .unwrap();
    let files: Vec<&str> = manifest["resources"]["messages"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["messages/2025-12-01T000000Z.jsonl"]);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(pulled.join("pull.json")).unwrap()).unwrap();
    assert_eq!(
        state["message_slices"],
        json!([{"start": "2025-12-01T00:00:00Z", "end": "2026-02-01T00:00:00Z"}])
    );
    // The pulled snapshot feeds the audit.
    subaudit(tmp.path())
        .args([
            "optouts",
            "--snapshot",
            "pulled",
            "--all",
            "--out",
            "optouts.csv",
        ])
        .assert()
        .success();
    // Run again: nothing to do.
    pull(tmp.path(), &sim, "pulled")
        .assert()
        .success()
        .stderr(predicates::str::contains("nothing to do"));
}

#[test]
fn pull_survives_latency_429s_500s_and_dropped_connections() {
    let tmp = tempfile::tempdir().unwrap();
    let original = rich_snapshot(&tmp.path().join("original"));
    let sim = start_sim(
        &original,
        &[
            "--latency-ms",
            "5",
            "--rate-429",
            "0.15",
            "--retry-after",
            "0",
            "--rate-500",
            "0.05",
            "--drop-rate",
            "0.03",
            "--max-page-size",
            "4",
            "--seed",
            "42",
        ],
    );
    let out = pull(tmp.path(), &sim, "pulled")
        .args(["--concurrency", "6"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let done = stderr
        .lines()
        .find(|l| l.starts_with("pull: done"))
        .unwrap_or_default();
    assert!(
        done.contains(" retries") && !done.contains(" 0 retries"),
        "faults were injected, retries expected: {stderr}"
    );
    assert_same_snapshot(&original, &tmp.path().join("pulled"));
}

#[test]
fn a_pull_killed_midway_resumes_to_the_same_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let original = rich_snapshot(&tmp.path().join("original"));
    let sim = start_sim(&original, &["--latency-ms", "40", "--max-page-size", "2"]);
    #[allow(deprecated)]
    let bin = assert_cmd::cargo::cargo_bin("subaudit");
    let out_dir = tmp.path().join("pulled");
    let mut child = StdCommand::new(bin)
        .current_dir(tmp.path())
        .args([
            "pull",
            "--out",
            "pulled",
            "--since",
            "2025-12-01",
            "--until",
            "2026-01-31",
            "--concurrency",
            "2",
            // About a slice a day (the usage records say 120 messages a month).
            "--slice-messages",
            "4",
            "--quiet",
        ])
        .env_remove("TWILIO_API_KEY")
        .env_remove("TWILIO_API_SECRET")
        .env("TWILIO_ACCOUNT_SID", PARENT)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("SUBAUDIT_TWILIO_BASE_URL", &sim.url)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until some slices are written, then kill -9.
    let slices_written = |dir: &Path| -> usize {
        std::fs::read_to_string(dir.join("manifest.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|m| m["resources"]["messages"]["files"].as_array().map(Vec::len))
            .unwrap_or(0)
    };
    for _ in 0..6000 {
        if slices_written(&out_dir) >= 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["complete"], json!(false), "killed before the end");
    let done_before = slices_written(&out_dir);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("pull.json")).unwrap()).unwrap();
    // About a slice a day as the usage records count (120 messages a month), or fewer once
    // the first slices fetched found about 100 a month and the rest was cut again.
    let slices = state["message_slices"].as_array().unwrap().len();
    assert!((40..70).contains(&slices), "{slices}");
    assert!((3..slices).contains(&done_before), "{done_before}");
    // Analysis refuses the incomplete snapshot.
    subaudit(tmp.path())
        .args(["optouts", "--snapshot", "pulled", "--all", "--out", "o.csv"])
        .assert()
        .code(BAD_INPUT)
        .stderr(predicates::str::contains("incomplete"));
    // Same arguments, without the window: the pull remembers it.
    let mut again = subaudit(tmp.path());
    clear_twilio_env(&mut again);
    let out = again
        .args(["pull", "--out", "pulled", "--retry-base-ms", "5"])
        .env("TWILIO_ACCOUNT_SID", PARENT)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("SUBAUDIT_TWILIO_BASE_URL", &sim.url)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains(&format!("resuming: {done_before} of {slices} slices")),
        "{stderr}"
    );
    assert_same_snapshot(&original, &out_dir);
    assert!(walk(&out_dir)
        .iter()
        .all(|p| p.extension().is_none_or(|e| e != "part")));
}

#[test]
fn rejected_credentials_are_a_clear_error_without_the_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let original = rich_snapshot(&tmp.path().join("original"));
    let sim = start_sim(&original, &[]);
    pull(tmp.path(), &sim, "pulled")
        .env("TWILIO_AUTH_TOKEN", "wrong-secret-123")
        .assert()
        .code(RUNTIME)
        .stderr(predicates::str::contains("the credentials were rejected"))
        .stderr(predicates::str::contains("wrong-secret-123").not());
}

#[test]
fn an_api_key_cannot_read_subaccounts() {
    let tmp = tempfile::tempdir().unwrap();
    let original = rich_snapshot(&tmp.path().join("original"));
    let key = sid("SK", 9);
    let sim = start_sim(
        &original,
        &["--api-key", &key, "--api-secret", "key-secret-456"],
    );
    pull(tmp.path(), &sim, "pulled")
        .env("TWILIO_API_KEY", &key)
        .env("TWILIO_API_SECRET", "key-secret-456")
        .assert()
        .code(RUNTIME)
        .stderr(predicates::str::contains(
            "an API key cannot read subaccounts' resources",
        ))
        .stderr(predicates::str::contains("key-secret-456").not());
}

#[test]
fn bad_arguments_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = subaudit(tmp.path());
    clear_twilio_env(&mut cmd);
    cmd.args(["pull", "--out", "x"])
        .assert()
        .code(BAD_INPUT)
        .stderr(predicates::str::contains("TWILIO_ACCOUNT_SID"));
    let mut cmd = subaudit(tmp.path());
    clear_twilio_env(&mut cmd);
    cmd.args(["pull", "--out", "x", "--resources", "calls"])
        .env("TWILIO_ACCOUNT_SID", PARENT)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .assert()
        .code(BAD_INPUT)
        .stderr(predicates::str::contains("unknown resource \"calls\""));
    let mut cmd = subaudit(tmp.path());
    clear_twilio_env(&mut cmd);
    cmd.args([
        "pull",
        "--out",
        "x",
        "--since",
        "2026-02-01",
        "--until",
        "2026-01-01",
    ])
    .env("TWILIO_ACCOUNT_SID", PARENT)
    .env("TWILIO_AUTH_TOKEN", TOKEN)
    .assert()
    .code(BAD_INPUT)
    .stderr(predicates::str::contains(
        "--since 2026-02-01 is after --until 2026-01-01: both days are included",
    ));
}

#[test]
fn subset_of_resources() {
    let tmp = tempfile::tempdir().unwrap();
    let original = rich_snapshot(&tmp.path().join("original"));
    let sim = start_sim(&original, &[]);
    pull(tmp.path(), &sim, "pulled")
        .args(["--resources", "accounts,incoming_phone_numbers"])
        .assert()
        .success();
    // The two resources come back whole; the others are not in the manifest at all, so the
    // analysis refuses the snapshot rather than reading "no messages".
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("pulled/manifest.json")).unwrap(),
    )
    .unwrap();
    let listed: Vec<&str> = manifest["resources"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(listed, ["accounts", "incoming_phone_numbers"]);
    for (resource, file) in [
        ("accounts", "accounts.jsonl"),
        ("incoming_phone_numbers", "incoming_phone_numbers.jsonl"),
    ] {
        let mut a = data_lines(&original.join(file));
        let mut b = data_lines(&tmp.path().join("pulled").join(file));
        a.sort();
        b.sort();
        assert_eq!(a, b, "{resource}");
    }
    subaudit(tmp.path())
        .args(["optouts", "--snapshot", "pulled"])
        .assert()
        .code(BAD_INPUT)
        .stderr(predicates::str::contains(
            "the snapshot holds no \"messaging_services\" (a pull with --resources leaves resources out)",
        ));
}

fn data_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap().to_string())
        .collect()
}

#[test]
fn doctor_reports_what_the_credentials_reach() {
    let tmp = tempfile::tempdir().unwrap();
    let original = rich_snapshot(&tmp.path().join("original"));
    let key = sid("SK", 9);
    let sim = start_sim(
        &original,
        &["--api-key", &key, "--api-secret", "key-secret-456"],
    );
    let doctor = || {
        let mut cmd = subaudit(tmp.path());
        clear_twilio_env(&mut cmd);
        cmd.arg("doctor")
            .env("TWILIO_ACCOUNT_SID", PARENT)
            .env("SUBAUDIT_TWILIO_BASE_URL", &sim.url);
        cmd
    };
    doctor()
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "ok    subaccounts: 2 (1 active, 0 suspended, 1 closed)",
        ))
        .stdout(predicates::str::contains(
            "ok    subaccounts' resources: reachable",
        ));
    doctor()
        .env("TWILIO_API_KEY", &key)
        .env("TWILIO_API_SECRET", "key-secret-456")
        .assert()
        .code(RUNTIME)
        .stdout(predicates::str::contains(
            "FAIL  subaccounts' resources: an API key cannot read subaccounts' resources",
        ));
    doctor()
        .env("TWILIO_AUTH_TOKEN", "nope")
        .assert()
        .code(RUNTIME)
        .stdout(predicates::str::contains(
            "FAIL  account: the credentials were rejected",
        ))
        .stdout(predicates::str::contains("nothing else was checked"))
        .stdout(predicates::str::contains("ok ").not());
}

/// Against a closed port, doctor says in one line that it reached nothing and checked nothing,
/// exits 1, and prints no `ok` (nothing was verified).
#[test]
fn doctor_against_an_unreachable_host_says_so_once() {
    let tmp = tempfile::tempdir().unwrap();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }; // closed again here
    let url = format!("http://127.0.0.1:{port}");
    let mut cmd = subaudit(tmp.path());
    clear_twilio_env(&mut cmd);
    let out = cmd
        .arg("doctor")
        .env("TWILIO_ACCOUNT_SID", PARENT)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("SUBAUDIT_TWILIO_BASE_URL", &url)
        .assert()
        .code(RUNTIME);
    let output = out.get_output();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("error: cannot reach {url}: "))
            && lines[0].ends_with("; nothing was checked"),
        "{stderr}"
    );
    assert!(!stderr.contains(TOKEN));
}

#[test]
fn the_owlie_sample_round_trips_through_the_simulator_with_faults() {
    let tmp = tempfile::tempdir().unwrap();
    let original = repo_root().join("sample-data/owlie");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(original.join("manifest.json")).unwrap())
            .unwrap();
    let parent = manifest["parent_account_sid"].as_str().unwrap().to_string();
    let day = |k: &str| manifest["window"][k].as_str().unwrap()[..10].to_string();
    // The manifest's window ends at the midnight after its last day; --until names that day.
    let last_day = (chrono::NaiveDate::parse_from_str(&day("until"), "%Y-%m-%d").unwrap()
        - chrono::Days::new(1))
    .to_string();
    #[allow(deprecated)]
    let bin = assert_cmd::cargo::cargo_bin("twilio-sim");
    let mut child = StdCommand::new(bin)
        .args([
            "--snapshot",
            original.to_str().unwrap(),
            "--auth-token",
            TOKEN,
        ])
        .args([
            "--rate-429",
            "0.15",
            "--retry-after",
            "0",
            "--rate-500",
            "0.05",
            "--drop-rate",
            "0.02",
            "--max-page-size",
            "200",
        ])
        .env_remove("TWILIO_ACCOUNT_SID")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut url = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let sim = Sim {
        child,
        url: url.trim().to_string(),
    };
    let mut cmd = subaudit(tmp.path());
    clear_twilio_env(&mut cmd);
    cmd.args([
        "pull",
        "--out",
        "pulled",
        "--since",
        &day("since"),
        "--until",
        &last_day,
        "--quiet",
    ])
    .args([
        "--retry-base-ms",
        "5",
        "--max-retries",
        "12",
        "--concurrency",
        "8",
    ])
    .env("TWILIO_ACCOUNT_SID", &parent)
    .env("TWILIO_AUTH_TOKEN", TOKEN)
    .env("SUBAUDIT_TWILIO_BASE_URL", &sim.url)
    .assert()
    .success()
    .stderr("");
    assert_same_snapshot(&original, &tmp.path().join("pulled"));
}

/// Every file of an audit's output folder, its text with `replace` pairs applied.
fn report_files(dir: &Path, replace: &[(String, String)]) -> BTreeMap<String, String> {
    walk(dir)
        .into_iter()
        .map(|p| {
            let mut text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).to_string();
            for (from, to) in replace {
                text = text.replace(from.as_str(), to);
            }
            (p.strip_prefix(dir).unwrap().display().to_string(), text)
        })
        .collect()
}

#[test]
fn a_pull_through_bulk_export_gives_the_audit_of_a_pull_through_the_list() {
    let tmp = tempfile::tempdir().unwrap();
    let original = repo_root().join("sample-data/owlie");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(original.join("manifest.json")).unwrap())
            .unwrap();
    let parent = manifest["parent_account_sid"].as_str().unwrap().to_string();
    // The sample's last two months (--until is inclusive: the window's last second too).
    assert_eq!(manifest["window"]["until"], json!("2026-11-01T00:00:00Z"));
    let (since, until) = ("2026-09-01", "2026-10-31".to_string());
    // Faults on every request (the day files' downloads too), job creations that take effect
    // and answer 500, a few days already exported, two days whose export fails.
    let (child, url) = spawn_twilio_sim(
        &original,
        &parent,
        TOKEN,
        &[
            "--rate-429",
            "0.1",
            "--retry-after",
            "0",
            "--rate-500",
            "0.05",
            "--drop-rate",
            "0.02",
            "--fault-write-5xx-after-effect",
            "0.5",
            "--max-page-size",
            "200",
            "--bulk-exported-days",
            "2026-09-01,2026-09-20,2026-10-31",
            "--bulk-unavailable-days",
            "2026-09-10,2026-10-13",
            "--seed",
            "7",
        ],
    );
    let sim = Sim { child, url };
    let pull_with = |out: &str, source: &str| {
        let mut cmd = subaudit(tmp.path());
        clear_twilio_env(&mut cmd);
        cmd.args(["pull", "--out", out, "--since", since])
            .args(["--until", &until, "--source", source])
            .args(["--retry-base-ms", "5", "--max-retries", "12"])
            .args(["--concurrency", "8", "--bulk-poll-ms", "5"])
            .env("TWILIO_ACCOUNT_SID", &parent)
            .env("TWILIO_AUTH_TOKEN", TOKEN)
            .env("SUBAUDIT_TWILIO_BASE_URL", &sim.url)
            .assert()
            .success()
    };
    pull_with("by-list", "list");
    let out = pull_with("by-bulk", "bulk-export");
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    // Every day of the window but the two that fail comes as an export file.
    assert!(
        stderr.contains("bulk export: 59 of 61 days as export files"),
        "{stderr}"
    );
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("by-bulk/pull.json")).unwrap(),
    )
    .unwrap();
    let slices = state["message_slices"].as_array().unwrap();
    assert_eq!(
        slices.iter().filter(|s| s["bulk"] == json!(true)).count(),
        59
    );
    // A day whose export failed comes through the list.
    assert!(slices
        .iter()
        .any(|s| s["start"] == json!("2026-09-10T00:00:00Z") && s["bulk"].is_null()));
    // The same messages (the export's records brought back to the list's shape, minus what
    // the export lacks), and no outbound body or secret on disk.
    let messages = |dir: &str| {
        let mut by_sid = BTreeMap::new();
        let snapshot = Snapshot::open(&tmp.path().join(dir), OpenOptions::default()).unwrap();
        for (path, _) in snapshot.data_files(Resource::Messages).unwrap() {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let mut v: Value = serde_json::from_str(line).unwrap();
                let map = v.as_object_mut().unwrap();
                for absent in ["uri", "subresource_uris", "api_version", "error_message"] {
                    map.remove(absent);
                }
                by_sid.insert(map["sid"].as_str().unwrap().to_string(), v);
            }
        }
        by_sid
    };
    let (by_list, by_bulk) = (messages("by-list"), messages("by-bulk"));
    assert!(by_list.len() > 500, "{}", by_list.len());
    assert!(by_list == by_bulk, "the messages differ");
    assert!(by_bulk
        .values()
        .filter(|m| m["direction"].as_str().unwrap().starts_with("outbound"))
        .all(|m| m["body"].is_null()));
    // The same audit, file for file.
    let audit = |snapshot: &str, out: &str| {
        subaudit(tmp.path())
            .args(["audit", "--snapshot", snapshot, "--out", out])
            .args(["--map", original.join("mapping.csv").to_str().unwrap()])
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(
        audit("by-list", "report-list"),
        audit("by-bulk", "report-bulk")
    );
    let created = |dir: &str| {
        let m: Value = serde_json::from_str(
            &std::fs::read_to_string(tmp.path().join(dir).join("manifest.json")).unwrap(),
        )
        .unwrap();
        m["created_at"].as_str().unwrap().to_string()
    };
    let same = |dir: &str| {
        vec![
            (dir.to_string(), "SNAPSHOT".to_string()),
            (created(dir), "CREATED".to_string()),
        ]
    };
    let list_reports = report_files(&tmp.path().join("report-list"), &same("by-list"));
    let bulk_reports = report_files(&tmp.path().join("report-bulk"), &same("by-bulk"));
    assert!(!list_reports.is_empty());
    for (name, text) in &list_reports {
        assert!(bulk_reports.get(name) == Some(text), "{name} differs");
    }
    assert_eq!(list_reports.len(), bulk_reports.len());
}

/// The sids of a pulled snapshot's messages, each with how often it was written.
fn message_sids(dir: &Path) -> BTreeMap<String, usize> {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for file in manifest["resources"]["messages"]["files"]
        .as_array()
        .unwrap()
    {
        let path = dir.join(file["path"].as_str().unwrap());
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            *out.entry(v["sid"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    out
}

#[test]
fn volume_slices_neither_lose_nor_repeat_a_message() {
    // December 2025 to February 2026: 5,000 messages on 10 January (every 17 s, and one on
    // each of its edges), nothing from 11 January to 14 February (empty weeks), a few a day
    // elsewhere, and the window's first and last seconds both used. The usage records count
    // segments (twice the messages), as some accounts' do.
    let tmp = tempfile::tempdir().unwrap();
    let mut b = SnapshotBuilder::default();
    b.numbers.push(number(&sid("PN", 1), "+14155550001"));
    let mut n = 0u64;
    let mut push = |b: &mut SnapshotBuilder, t: String| {
        n += 1;
        let user = format!("+1202555{:04}", n % 500);
        b.messages.push(
            Msg {
                sid: &sid("SM", n),
                direction: if n.is_multiple_of(3) {
                    "inbound"
                } else {
                    "outbound-api"
                },
                from: "+14155550001",
                to: &user,
                body: Some("hi"),
                date_sent: &t,
                service: None,
                error_code: None,
            }
            .json(),
        );
    };
    push(&mut b, utc(2025, 12, 1, 0, 0, 0));
    push(&mut b, utc(2026, 2, 28, 23, 59, 59));
    push(&mut b, utc(2026, 1, 10, 0, 0, 0));
    push(&mut b, utc(2026, 1, 10, 23, 59, 59));
    for i in 0..4_998u32 {
        let s = 1 + i * 17;
        push(&mut b, utc(2026, 1, 10, s / 3600, s / 60 % 60, s % 60));
    }
    for (month, days) in [(12u32, 31u32), (1, 31), (2, 28)] {
        let year = if month == 12 { 2025 } else { 2026 };
        for day in 1..=days {
            let empty = month == 1 && day > 10 || month == 2 && day < 15;
            if empty || (month, day) == (1, 10) {
                continue;
            }
            for h in [3, 12, 18] {
                push(&mut b, utc(year, month, day, h, 0, 0));
            }
        }
    }
    let count = |first: u32, last: u32, month: u32| {
        b.messages
            .iter()
            .filter(|m| {
                let t =
                    subaudit::time::parse_twilio_time(m["date_sent"].as_str().unwrap()).unwrap();
                use chrono::Datelike;
                t.month() == month && (first..=last).contains(&t.day())
            })
            .count()
    };
    // Usage records whose periods place the busy day (the plan spreads a period's count
    // evenly over it).
    let periods = [
        ("2025-12-01", "2025-12-31", count(1, 31, 12)),
        ("2026-01-01", "2026-01-09", count(1, 9, 1)),
        ("2026-01-10", "2026-01-10", count(10, 10, 1)),
        ("2026-01-11", "2026-01-31", count(11, 31, 1)),
        ("2026-02-01", "2026-02-28", count(1, 28, 2)),
    ];
    for (start, end, messages) in periods {
        let segments = (2 * messages).to_string();
        b.usage
            .push(usage(PARENT, "sms", start, end, &segments, "-1.00"));
    }
    let total = b.messages.len();
    let original = b.write(&tmp.path().join("original"));
    let sim = start_sim(&original, &["--max-page-size", "1000"]);
    let pull_window = |out: &str, extra: &[&str]| {
        pull_between(tmp.path(), &sim, out, "2025-12-01", "2026-02-28")
            .args([
                "--resources",
                "messages,usage_records",
                "--concurrency",
                "4",
            ])
            .args(extra)
            .assert()
            .success()
    };
    // By volume (the default), and as one slice for the whole window.
    let out = pull_window("sliced", &[]);
    pull_window("whole", &["--slice-messages", "10000000"]);
    let (sliced, whole) = (
        message_sids(&tmp.path().join("sliced")),
        message_sids(&tmp.path().join("whole")),
    );
    assert_eq!(whole.len(), total);
    assert!(whole.values().all(|&c| c == 1));
    assert_eq!(sliced, whole, "slices lost or repeated messages");
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("sliced/pull.json")).unwrap(),
    )
    .unwrap();
    let slices: Vec<(String, String)> = state["message_slices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["start"].as_str().unwrap().into(),
                s["end"].as_str().unwrap().into(),
            )
        })
        .collect();
    // The slices tile the window, edge to edge.
    assert_eq!(slices.first().unwrap().0, "2025-12-01T00:00:00Z");
    assert_eq!(slices.last().unwrap().1, "2026-03-01T00:00:00Z");
    assert!(slices.windows(2).all(|w| w[0].1 == w[1].0), "{slices:?}");
    // The busy day is cut into about a page each (after the probes found half the usage
    // count), and the empty weeks are no slices of their own.
    let busy = slices
        .iter()
        .filter(|(s, e)| s.as_str() < "2026-01-11" && e.as_str() > "2026-01-10")
        .count();
    assert!((6..=12).contains(&busy), "{busy}: {slices:?}");
    assert!(
        slices.len() <= total / 900 + 8,
        "{} slices for {total} messages: {slices:?}",
        slices.len()
    );
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("pull: done"), "{stderr}");
}

/// `--since D --until D` fetches the whole UTC day D, both edges (00:00:00 and 23:59:59)
/// included, and nothing of the days around it; the manifest's window ends at the next midnight.
#[test]
fn since_and_until_are_both_inclusive_whole_days() {
    let tmp = tempfile::tempdir().unwrap();
    let original = rich_snapshot(&tmp.path().join("original"));
    let sim = start_sim(&original, &[]);
    let mut cmd = subaudit(tmp.path());
    clear_twilio_env(&mut cmd);
    cmd.args([
        "pull",
        "--out",
        "day",
        "--since",
        "2026-01-11",
        "--until",
        "2026-01-11",
        "--quiet",
    ])
    .args(["--retry-base-ms", "5"])
    .env("TWILIO_ACCOUNT_SID", PARENT)
    .env("TWILIO_AUTH_TOKEN", TOKEN)
    .env("SUBAUDIT_TWILIO_BASE_URL", &sim.url)
    .assert()
    .success();
    let sent = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = records(dir)["messages"]
            .iter()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["date_sent"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        v.sort();
        v
    };
    let expected: Vec<String> = sent(&original)
        .into_iter()
        .filter(|d| d.contains(" 11 Jan 2026 "))
        .collect();
    assert!(expected.iter().any(|d| d.contains("00:00:00")));
    assert!(expected.iter().any(|d| d.contains("23:59:59")));
    assert_eq!(sent(&tmp.path().join("day")), expected);
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("day/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["window"]["since"], json!("2026-01-11T00:00:00Z"));
    assert_eq!(manifest["window"]["until"], json!("2026-01-12T00:00:00Z"));
}

/// A slice of many pages (`--slice-messages` above a page) is fetched page after page; one
/// that meets 500s and dropped connections between its pages still gives every message once.
#[test]
fn a_slice_of_many_pages_that_meets_faults_between_its_pages_loses_and_repeats_nothing() {
    // 30,000 messages over March and April 2026 (one every 173 s), usage counting them
    // exactly, in slices of about 8,000 messages: eight pages each.
    let tmp = tempfile::tempdir().unwrap();
    let mut b = SnapshotBuilder::default();
    b.numbers.push(number(&sid("PN", 1), "+14155550001"));
    let start = utc(2026, 3, 1, 0, 0, 0);
    let start = subaudit::time::parse_twilio_time(&start).unwrap();
    for n in 0..30_000u64 {
        let t = start + chrono::Duration::seconds(n as i64 * 173);
        b.messages.push(
            Msg {
                sid: &sid("SM", n + 1),
                direction: "outbound-api",
                from: "+14155550001",
                to: &format!("+1202555{:04}", n % 700),
                body: Some("hi"),
                date_sent: &subaudit::time::to_rfc2822(&t),
                service: None,
                error_code: None,
            }
            .json(),
        );
    }
    let in_month = |month: u32| {
        b.messages
            .iter()
            .filter(|m| {
                use chrono::Datelike;
                let t =
                    subaudit::time::parse_twilio_time(m["date_sent"].as_str().unwrap()).unwrap();
                t.month() == month
            })
            .count()
    };
    let (march, april) = (in_month(3), in_month(4));
    b.usage.push(usage(
        PARENT,
        "sms",
        "2026-03-01",
        "2026-03-31",
        &march.to_string(),
        "-1.00",
    ));
    b.usage.push(usage(
        PARENT,
        "sms",
        "2026-04-01",
        "2026-04-30",
        &april.to_string(),
        "-1.00",
    ));
    let original = b.write(&tmp.path().join("original"));
    let sim = start_sim(
        &original,
        &["--rate-500", "0.1", "--drop-rate", "0.05", "--seed", "7"],
    );
    let out = pull_between(tmp.path(), &sim, "pulled", "2026-03-01", "2026-04-30")
        .args([
            "--resources",
            "messages,usage_records",
            "--concurrency",
            "2",
            "--slice-messages",
            "8000",
        ])
        .assert()
        .success();
    let pulled = tmp.path().join("pulled");
    let sids = message_sids(&pulled);
    assert_eq!(sids.len(), 30_000, "messages lost");
    assert!(sids.values().all(|&c| c == 1), "messages repeated");
    // Slices of many pages: files of many pages each.
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(pulled.join("manifest.json")).unwrap())
            .unwrap();
    let largest = manifest["resources"]["messages"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["count"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(
        largest > 5_000,
        "no slice of many pages: largest file {largest}"
    );
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let done = stderr
        .lines()
        .find(|l| l.starts_with("pull: done"))
        .unwrap_or_default();
    assert!(
        !done.contains(" 0 retries"),
        "faults were injected, retries expected: {stderr}"
    );
}

/// A pull in a folder is resumed with its own window: a different one is refused with the
/// window to give, and a pull begun when `--until` named the day after the last one (the same
/// command now asks for a day more) says so.
#[test]
fn a_different_window_is_refused_with_the_window_to_resume_with() {
    let tmp = tempfile::tempdir().unwrap();
    let original = rich_snapshot(&tmp.path().join("original"));
    let sim = start_sim(&original, &[]);
    pull(tmp.path(), &sim, "pulled").assert().success();
    // As an older subaudit wrote it for `--until 2026-01-31`: the window ends at that midnight.
    let state_path = tmp.path().join("pulled/pull.json");
    let mut state: Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    assert_eq!(state["until"], json!("2026-02-01"));
    state["until"] = json!("2026-01-31");
    std::fs::write(&state_path, serde_json::to_string_pretty(&state).unwrap()).unwrap();
    pull(tmp.path(), &sim, "pulled")
        .assert()
        .code(BAD_INPUT)
        .stderr(predicates::str::contains(
            "holds a pull of 2025-12-01 to 2026-01-30, both days included (it was started with --until 2026-01-31",
        ))
        .stderr(predicates::str::contains(
            "run it with --since 2025-12-01 --until 2026-01-30 or with neither",
        ));
    // Another window altogether: no word of older versions.
    pull_between(tmp.path(), &sim, "pulled", "2025-12-02", "2026-01-30")
        .assert()
        .code(BAD_INPUT)
        .stderr(
            predicates::str::contains("holds a pull of 2025-12-01 to 2026-01-30")
                .and(predicates::str::contains("subaudit before").not()),
        );
    // The window it names is accepted: the snapshot is complete, nothing to do.
    pull_between(tmp.path(), &sim, "pulled", "2025-12-01", "2026-01-30")
        .assert()
        .success()
        .stderr(predicates::str::contains("nothing to do"));
}

/// The parent's own numbers and Messaging Services are asked for at once, beside the accounts
/// list and the usage that plans the slices (that round would leave the slots idle); the
/// subaccounts' wait for the accounts list. Every request, whoever's credentials it carries,
/// counts against `--concurrency`.
#[test]
fn the_parents_own_lists_go_out_with_the_accounts_list_within_the_concurrency() {
    let tmp = tempfile::tempdir().unwrap();
    let original = rich_snapshot(&tmp.path().join("original"));
    let sim = start_sim(&original, &["--latency-ms", "150"]);
    let out = pull(tmp.path(), &sim, "pulled")
        .args(["--concurrency", "4"])
        .env("SUBAUDIT_TRACE_REQUESTS", "1")
        .assert()
        .success();
    assert_same_snapshot(&original, &tmp.path().join("pulled"));
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    // `trace <slot taken ms> <body read ms> <status> <method> <url>`
    let requests: Vec<(f64, f64, &str)> = stderr
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.strip_prefix("trace ")?.split(' ').collect();
            Some((f[0].parse().ok()?, f[1].parse().ok()?, f[4]))
        })
        .collect();
    let find = |part: &str| {
        requests
            .iter()
            .find(|r| r.2.contains(part))
            .unwrap_or_else(|| panic!("no request for {part}: {stderr}"))
    };
    let accounts_answered = find("/Accounts.json").1;
    let parent_numbers = find(&format!("/Accounts/{PARENT}/IncomingPhoneNumbers.json")).0;
    let parent_services = find("/v1/Services?").0;
    let sub_numbers = find(&format!("/Accounts/{SUB_A}/IncomingPhoneNumbers.json")).0;
    assert!(
        parent_numbers < accounts_answered && parent_services < accounts_answered,
        "{stderr}"
    );
    assert!(sub_numbers >= accounts_answered, "{stderr}");
    // In flight at once, at each request's start: never more than 4.
    for (start, _, url) in &requests {
        let in_flight = requests
            .iter()
            .filter(|(s, e, _)| s <= start && start < e)
            .count();
        assert!(in_flight <= 4, "{in_flight} in flight at {url}: {stderr}");
    }
}
