//! `subaudit apply` and `subaudit verify`: what they refuse, the dry run, and (with the twin)
//! the migration end to end.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

use crate::support::*;

const MG: &str = "MG000000000000000000000000000000aa";
const PN_1: &str = "PN00000000000000000000000000000001";
const PN_2: &str = "PN00000000000000000000000000000002";

/// A parent with two numbers in one service, an opt-out on each, both mapped to a new
/// customer "Acme Corp"; returns the plan's path.
fn small_plan(dir: &Path) -> PathBuf {
    let mut b = SnapshotBuilder::default();
    let mut service = service(MG, "Owlie Alerts");
    service["inbound_request_url"] = "https://hooks.owlie.io/inbound".into();
    service["inbound_method"] = "POST".into();
    b.services.push(service);
    for (pn, phone) in [(PN_1, "+14155550101"), (PN_2, "+14155550102")] {
        b.numbers.push(number(pn, phone));
        b.service_numbers.push(service_number(MG, pn, phone));
    }
    for (n, user, phone, body, day) in [
        (1, "+12065550001", "+14155550101", "STOP", 5),
        (2, "+12065550002", "+14155550102", "stop", 6),
    ] {
        b.messages.push(
            Msg {
                sid: &sid("SM", n),
                direction: "inbound",
                from: user,
                to: phone,
                body: Some(body),
                date_sent: &jan(day, 10, 0, 0),
                service: Some(MG),
                ..Msg::default()
            }
            .json(),
        );
    }
    let snapshot = b.write(&dir.join("snap"));
    std::fs::write(
        dir.join("mapping.csv"),
        "number,customer\n+14155550101,Acme Corp\n+14155550102,Acme Corp\n",
    )
    .unwrap();
    subaudit(dir)
        .args(["audit", "--snapshot"])
        .arg(&snapshot)
        .args(["--map", "mapping.csv", "--out", "report"])
        .assert()
        .success();
    dir.join("report/plan.json")
}

pub fn clear_twilio_env(cmd: &mut Command) {
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

/// `subaudit apply` with the parent's credentials, sending to `base` (nothing listens on
/// port 9: a request would fail the test).
pub fn apply(dir: &Path, plan: &Path, base: &str) -> Command {
    let mut cmd = subaudit(dir);
    clear_twilio_env(&mut cmd);
    cmd.args(["apply", "--plan"])
        .arg(plan)
        .args(["--retry-base-ms", "5"])
        .env("TWILIO_ACCOUNT_SID", PARENT)
        .env("TWILIO_AUTH_TOKEN", "parent-token-never-written")
        .env("SUBAUDIT_TWILIO_BASE_URL", base);
    cmd
}

const NOWHERE: &str = "http://127.0.0.1:9";

#[test]
fn apply_refuses_what_is_not_a_plan_another_parent_and_another_plans_journal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("notes.json"), r#"{"hello": "world"}"#).unwrap();
    apply(d, &d.join("notes.json"), NOWHERE)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a subaudit plan"));

    let plan = small_plan(d);
    apply(d, &plan, NOWHERE)
        .env("TWILIO_ACCOUNT_SID", sid("AC", 0xbeef))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("credentials are for"));

    let journal = d.join("report/plan.journal.jsonl");
    std::fs::write(
        &journal,
        format!(
            "{{\"journal\":\"subaudit-apply-journal\",\"version\":1,\"plan_fingerprint\":\"fnv1a64:0000000000000000:1\",\"parent_account_sid\":\"{PARENT}\",\"time\":\"2026-01-01T00:00:00Z\"}}\n"
        ),
    )
    .unwrap();
    apply(d, &plan, NOWHERE)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("another plan"));
    std::fs::remove_file(&journal).unwrap();

    apply(d, &plan, NOWHERE)
        .args(["--customer", "Nobody Inc"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("Acme Corp"));
    apply(d, &plan, NOWHERE)
        .args(["--set", "lower=x"])
        .assert()
        .code(2);
}

#[test]
fn a_dry_run_prints_every_request_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plan = small_plan(d);
    let out = apply(d, &plan, NOWHERE)
        .args(["--dry-run", "--customer", "acme corp"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    for expected in [
        "create-subaccount",
        "remove-from-service",
        "transfer-number",
        "create-messaging-service",
        "add-to-service",
        "reseed-opt-outs",
        "FriendlyName=Acme Corp",
        &format!("/v1/Services/{MG}/PhoneNumbers/{PN_1}"),
        "http://127.0.0.1:9/2010-04-01/Accounts.json",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from:\n{out}");
    }
    assert!(!out.contains("parent-token-never-written"));
    assert!(!d.join("report/plan.journal.jsonl").exists());
}
