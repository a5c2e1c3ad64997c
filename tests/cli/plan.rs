//! The migration plan end to end: `subaudit plan` and the plan files `audit` writes.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Value};

use crate::support::*;

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn plan_number<'a>(plan: &'a Value, sid: &str) -> &'a Value {
    plan["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["number_sid"] == sid)
        .unwrap_or_else(|| panic!("{sid} not in the plan"))
}

fn codes(plan: &Value, sid: &str) -> Vec<String> {
    plan_number(plan, sid)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

fn bash_syntax_ok(script: &Path) {
    let out = std::process::Command::new("bash")
        .arg("-n")
        .arg(script)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "bash -n {}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

const ACTIVE: u64 = 1;
const SUSPENDED: u64 = 2;
const CLOSED: u64 = 3;
const FOREIGN: u64 = 4;

/// One number per finding code, and the accounts the target findings need.
fn every_risk() -> (SnapshotBuilder, String) {
    let mut b = SnapshotBuilder::default();
    b.accounts.push(account(
        &sid("AC", ACTIVE),
        "Falcon Flights",
        "active",
        Some(PARENT),
    ));
    b.accounts.push(account(
        &sid("AC", SUSPENDED),
        "Kestrel Kitchens",
        "suspended",
        Some(PARENT),
    ));
    b.accounts.push(account(
        &sid("AC", CLOSED),
        "Magpie Media",
        "closed",
        Some(PARENT),
    ));
    b.accounts.push(account(
        &sid("AC", FOREIGN),
        "Elsewhere",
        "active",
        Some(&sid("AC", 99)),
    ));
    let mg = sid("MG", 1);
    b.services.push(service(&mg, "Owlie Alerts"));
    b.campaigns.push(json!({"sid": sid("QE", 1), "messaging_service_sid": mg, "account_sid": PARENT,
        "campaign_id": "CX0001", "campaign_status": "VERIFIED", "us_app_to_person_usecase": "MIXED"}));
    let phone = |n: u64| format!("+1415555{n:04}");
    for n in 1..=12u64 {
        let mut record = number(&sid("PN", n), &phone(n));
        match n {
            2 => {
                record["phone_number"] = json!("+18005550002");
                record["type"] = json!("toll-free");
            }
            3 => {
                record["bundle_sid"] = json!(sid("BU", 3));
                record["address_sid"] = json!(sid("AD", 3));
                record["address_requirements"] = json!("local");
            }
            4 => {
                record["emergency_address_sid"] = json!(sid("AD", 4));
                record["emergency_status"] = json!("Active");
            }
            5 => record["trunk_sid"] = json!(sid("TK", 5)),
            6 => record["voice_application_sid"] = json!(sid("AP", 6)),
            7 => record["origin"] = json!("hosted"),
            _ => {}
        }
        b.numbers.push(record);
    }
    b.service_numbers
        .push(service_number(&mg, &sid("PN", 1), &phone(1)));
    // An opt-out through the service, and traffic in the last 30 days (the window ends
    // 2026-02-01).
    b.messages.push(
        Msg {
            sid: &sid("SM", 1),
            direction: "outbound-api",
            from: &phone(1),
            to: "+12125550100",
            body: None,
            date_sent: &jan(5, 10, 0, 0),
            service: Some(&mg),
            ..Msg::default()
        }
        .json(),
    );
    b.messages.push(
        Msg {
            sid: &sid("SM", 2),
            direction: "inbound",
            from: "+12125550100",
            to: &phone(1),
            body: Some("STOP"),
            date_sent: &jan(5, 10, 1, 0),
            service: Some(&mg),
            ..Msg::default()
        }
        .json(),
    );
    let map = format!(
        "number,customer,subaccount_sid\n\
{p1},Falcon Flights,\n+18005550002,Falcon Flights,\n{p3},Falcon Flights,\n{p4},Falcon Flights,\n\
{p5},Falcon Flights,\n{p6},Falcon Flights,\n{p7},Heron Health,\n{p8},Kestrel Kitchens,{s2}\n\
{p9},Magpie Media,\n{p10},Elsewhere,{s4}\n{p11},Falcon Flights,\n{p11},Heron Health,\n",
        p1 = phone(1),
        p3 = phone(3),
        p4 = phone(4),
        p5 = phone(5),
        p6 = phone(6),
        p7 = phone(7),
        p8 = phone(8),
        p9 = phone(9),
        p10 = phone(10),
        p11 = phone(11),
        s2 = sid("AC", SUSPENDED),
        s4 = sid("AC", FOREIGN),
    );
    (b, map)
}

#[test]
fn every_finding_code_is_raised_by_a_hand_made_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (builder, map) = every_risk();
    builder.write(&dir.path().join("snap"));
    std::fs::write(dir.path().join("map.csv"), map).unwrap();
    let out = subaudit(dir.path())
        .args([
            "plan",
            "--snapshot",
            "snap",
            "--map",
            "map.csv",
            "--out",
            "out/plan.json",
        ])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(stdout.contains("Falcon Flights"), "{stdout}");
    let plan = read_json(&dir.path().join("out/plan.json"));
    assert_eq!(plan["parent_account_sid"], PARENT);

    let pn = |n| sid("PN", n);
    assert_eq!(
        codes(&plan, &pn(1)),
        [
            "in-messaging-service",
            "a2p-campaign",
            "opt-outs-lost",
            "recent-traffic"
        ]
    );
    assert_eq!(codes(&plan, &pn(2)), ["toll-free-verification"]);
    assert_eq!(
        codes(&plan, &pn(3)),
        ["regulatory-bundle", "address-required"]
    );
    assert_eq!(codes(&plan, &pn(4)), ["emergency-address"]);
    assert_eq!(codes(&plan, &pn(5)), ["sip-trunk"]);
    assert_eq!(codes(&plan, &pn(6)), ["twiml-app"]);
    assert_eq!(codes(&plan, &pn(7)), ["hosted-number"]);
    assert_eq!(codes(&plan, &pn(8)), ["target-suspended"]);
    assert_eq!(codes(&plan, &pn(9)), ["target-closed"]);
    assert_eq!(codes(&plan, &pn(10)), ["target-not-child"]);
    assert_eq!(codes(&plan, &pn(11)), ["mapping-conflict"]);
    assert_eq!(codes(&plan, &pn(12)), ["unmapped"]);

    let all: BTreeSet<String> = (1..=12).flat_map(|n| codes(&plan, &pn(n))).collect();
    let expected: BTreeSet<String> = subaudit::audit::plan::Code::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    assert_eq!(all, expected, "every code is covered");

    // Severities, actions, targets.
    let n1 = plan_number(&plan, &pn(1));
    assert_eq!(n1["action"], "transfer");
    assert_eq!(n1["target_customer"], "Falcon Flights");
    assert_eq!(n1["target_account_sid"], sid("AC", ACTIVE));
    assert_eq!(n1["opt_outs_lost"], 1);
    assert_eq!(n1["findings"][0]["severity"], "warning");
    assert_eq!(n1["findings"][3]["severity"], "info");
    let n7 = plan_number(&plan, &pn(7));
    assert_eq!(
        (n7["action"].as_str(), n7["blocked"].as_bool()),
        (Some("transfer"), Some(true))
    );
    assert_eq!(
        n7["target_account_sid"],
        Value::Null,
        "Heron Health has no subaccount yet"
    );
    let n11 = plan_number(&plan, &pn(11));
    assert_eq!(n11["action"], "stay");
    assert_eq!(n11["target_customer"], Value::Null);
    assert_eq!(n11["findings"][0]["severity"], "blocker");
    let msg = n11["findings"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("(line 12)") && msg.contains("(line 13)"),
        "{msg}"
    );
    assert_eq!(plan_number(&plan, &pn(12))["action"], "stay");
    for n in [7, 8, 9, 10, 11] {
        let f = &plan_number(&plan, &pn(n))["findings"][0];
        assert_eq!(f["severity"], "blocker", "{f}");
    }

    // Steps: blocked numbers get none; the active subaccount is not created again; the
    // order is safe.
    let steps = plan["steps"].as_array().unwrap();
    let touched: BTreeSet<&str> = steps
        .iter()
        .filter_map(|s| s["number_sid"].as_str())
        .collect();
    for n in 7..=12 {
        assert!(!touched.contains(pn(n).as_str()), "{} has steps", pn(n));
    }
    let kinds: Vec<&str> = steps.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "remove-from-service",
            "transfer-number",
            "transfer-number",
            "transfer-number",
            "transfer-number",
            "transfer-number",
            "transfer-number",
            "create-messaging-service",
            "add-to-service",
            "reseed-opt-outs"
        ]
    );
    assert_eq!(steps[0]["request"]["method"], "DELETE");
    assert_eq!(
        steps[0]["request"]["url"],
        format!(
            "https://messaging.twilio.com/v1/Services/{}/PhoneNumbers/{}",
            sid("MG", 1),
            pn(1)
        )
    );
    let transfer3 = steps
        .iter()
        .find(|s| s["kind"] == "transfer-number" && s["number_sid"] == pn(3))
        .unwrap();
    assert_eq!(
        transfer3["request"],
        json!({"method": "POST",
            "url": format!("https://api.twilio.com/2010-04-01/Accounts/{PARENT}/IncomingPhoneNumbers/{}.json", pn(3)),
            "auth": "parent",
            "form": [{"name": "AccountSid", "value": sid("AC", ACTIVE)},
                     {"name": "BundleSid", "value": "${C_FALCON_FLIGHTS_BUNDLE_SID}"},
                     {"name": "AddressSid", "value": "${C_FALCON_FLIGHTS_ADDRESS_SID}"}]})
    );
    let reseed = steps.last().unwrap();
    assert_eq!(
        reseed["request"]["url"],
        "https://accounts.twilio.com/v1/Consents/Bulk"
    );
    let item: Value =
        serde_json::from_str(reseed["request"]["form"][0]["value"].as_str().unwrap()).unwrap();
    assert_eq!(item["contact_id"], "+12125550100");
    assert_eq!(item["sender_id"], "${C_FALCON_FLIGHTS_SERVICE_SID}");
    assert_eq!(item["date_of_consent"], "2026-01-05T10:01:00Z");

    // plan.csv and plan.sh beside plan.json.
    let rows = read_csv(&dir.path().join("out/plan.csv"));
    assert_eq!(
        rows[0],
        subaudit::report::plan::CSV_HEADER
            .map(String::from)
            .to_vec()
    );
    assert_eq!(rows.len(), 13);
    let row7 = rows.iter().find(|r| r[1] == pn(7)).unwrap();
    assert_eq!(
        &row7[3..11],
        [
            "transfer",
            "Heron Health",
            "",
            "to-create",
            "blocker",
            "1",
            "0",
            "hosted-number"
        ]
    );
    let row1 = rows.iter().find(|r| r[1] == pn(1)).unwrap();
    assert_eq!(
        row1[10],
        "in-messaging-service;a2p-campaign;opt-outs-lost;recent-traffic"
    );
    let script = dir.path().join("out/plan.sh");
    bash_syntax_ok(&script);
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains("set -euo pipefail"));
    assert!(text.contains("need C_FALCON_FLIGHTS_BUNDLE_SID"));
    assert!(
        !text.contains("secret-token"),
        "no credentials in the script"
    );
}

#[test]
fn fail_on_sets_exit_code_3_after_writing_the_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = SnapshotBuilder::default();
    b.numbers.push(number(&sid("PN", 1), "+18005550001"));
    b.numbers.push(number(&sid("PN", 2), "+14155550002"));
    b.write(&dir.path().join("snap"));
    std::fs::write(
        dir.path().join("warn.csv"),
        "number,customer\n+18005550001,Wren Dental\n",
    )
    .unwrap();
    let mut hosted = SnapshotBuilder::default();
    let mut record = number(&sid("PN", 1), "+14155550001");
    record["origin"] = json!("hosted");
    hosted.numbers.push(record);
    hosted.write(&dir.path().join("hosted"));
    std::fs::write(
        dir.path().join("hosted.csv"),
        "number,customer\n+14155550001,Wren Dental\n",
    )
    .unwrap();

    let run = |snap: &str, map: &str, out: &str, fail_on: Option<&str>| {
        let mut cmd = subaudit(dir.path());
        cmd.args(["plan", "--snapshot", snap, "--map", map, "--out", out]);
        if let Some(f) = fail_on {
            cmd.args(["--fail-on", f]);
        }
        let code = cmd.output().unwrap().status.code().unwrap();
        assert!(dir.path().join(out).is_file(), "{out} written");
        assert!(dir.path().join(out).with_extension("csv").is_file());
        assert!(dir.path().join(out).with_extension("sh").is_file());
        code
    };
    // Only a warning (toll-free verification) and infos.
    assert_eq!(run("snap", "warn.csv", "a.json", None), OK);
    assert_eq!(run("snap", "warn.csv", "b.json", Some("blocker")), OK);
    assert_eq!(run("snap", "warn.csv", "c.json", Some("warning")), FINDINGS);
    // A blocker fails both.
    assert_eq!(
        run("hosted", "hosted.csv", "d.json", Some("blocker")),
        FINDINGS
    );
    assert_eq!(
        run("hosted", "hosted.csv", "e.json", Some("warning")),
        FINDINGS
    );
    subaudit(dir.path())
        .args([
            "plan",
            "--snapshot",
            "snap",
            "--map",
            "warn.csv",
            "--fail-on",
            "info",
        ])
        .assert()
        .code(BAD_INPUT);
}

#[test]
fn bad_mapping_lines_are_reported_with_their_numbers_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = SnapshotBuilder::default();
    b.accounts.push(account(
        &sid("AC", 1),
        "Falcon Flights",
        "active",
        Some(PARENT),
    ));
    b.numbers.push(number(&sid("PN", 1), "+14155550001"));
    let mut foreign = number(&sid("PN", 2), "+14155550002");
    foreign["account_sid"] = json!(sid("AC", 1));
    b.numbers.push(foreign);
    b.write(&dir.path().join("snap"));
    let map = format!(
        "number,customer,subaccount_sid\n+14155550009,A,\n+14155550002,B,\n+14155550001,C,{}\n+14155550001,D,{PARENT}\n",
        sid("AC", 7)
    );
    std::fs::write(dir.path().join("map.csv"), map).unwrap();
    let out = subaudit(dir.path())
        .args([
            "plan",
            "--snapshot",
            "snap",
            "--map",
            "map.csv",
            "--out",
            "out/plan.json",
        ])
        .assert()
        .code(BAD_INPUT);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("map.csv:2: number +14155550009 is not among the parent's"),
        "{stderr}"
    );
    assert!(
        stderr.contains("map.csv:3: number +14155550002 belongs to account"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "map.csv:4: subaccount_sid {} is not one of the parent's subaccounts",
            sid("AC", 7)
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("map.csv:5: subaccount_sid")
            && stderr.contains("is the parent account itself"),
        "{stderr}"
    );
    assert!(!dir.path().join("out/plan.json").exists());
    assert!(!dir.path().join("out/plan.sh").exists());
}

#[test]
fn audit_writes_the_plan_beside_the_opt_out_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let (builder, map) = every_risk();
    builder.write(&dir.path().join("snap"));
    std::fs::write(dir.path().join("map.csv"), map).unwrap();
    let out = subaudit(dir.path())
        .args([
            "audit",
            "--snapshot",
            "snap",
            "--map",
            "map.csv",
            "--out",
            "report",
            "--fail-on",
            "blocker",
        ])
        .assert()
        .code(FINDINGS);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    for column in ["numbers moving", "blockers", "warnings", "opt-outs lost"] {
        assert!(stdout.contains(column), "{stdout}");
    }
    for file in [
        "optouts_lost.csv",
        "optouts_possible.csv",
        "optout_violations.csv",
        "plan.json",
        "plan.csv",
        "plan.sh",
    ] {
        assert!(dir.path().join("report").join(file).is_file(), "{file}");
    }
    let plan = read_json(&dir.path().join("report/plan.json"));
    assert_eq!(codes(&plan, &sid("PN", 11)), ["mapping-conflict"]);
    // With --all the opt-out export lists more, but the plan still counts only moving numbers.
    subaudit(dir.path())
        .args([
            "audit",
            "--snapshot",
            "snap",
            "--map",
            "map.csv",
            "--out",
            "all",
            "--all",
        ])
        .assert()
        .success();
    let all = read_json(&dir.path().join("all/plan.json"));
    assert_eq!(
        all["summary"]["opt_outs_lost"],
        plan["summary"]["opt_outs_lost"]
    );
}

/// Keeps the first `Items` of each Consents Bulk request and says how many were left out:
/// the sample re-seeds thousands of opt-outs, which would make the snapshots megabytes.
fn shorten_items_json(plan: &mut Value) {
    for step in plan["steps"].as_array_mut().unwrap() {
        if step["kind"] == "reseed-opt-outs" {
            let form = step["request"]["form"].as_array_mut().unwrap();
            let more = form.len() - 1;
            form.truncate(1);
            form.push(json!({"name": "(test)", "value": format!("{more} more Items")}));
        }
    }
}

fn shorten_items_shell(script: &str) -> String {
    let mut out = Vec::new();
    let mut skipped = 0;
    let mut previous_items = false;
    for line in script.lines() {
        let items = line.trim_start().starts_with("--data-urlencode \"Items=");
        if items && previous_items {
            skipped += 1;
            continue;
        }
        if skipped > 0 {
            out.push(format!("      # ({skipped} more Items)"));
            skipped = 0;
        }
        previous_items = items;
        out.push(line.to_string());
    }
    out.join("\n")
}

#[test]
fn sample_plan_files_match_their_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let sample = repo_root().join("sample-data/owlie");
    subaudit(dir.path())
        .args(["plan", "--snapshot"])
        .arg(&sample)
        .arg("--map")
        .arg(sample.join("mapping.csv"))
        .args(["--out", "plan.json"])
        .assert()
        .success();
    let script = dir.path().join("plan.sh");
    bash_syntax_ok(&script);
    let text = std::fs::read_to_string(&script).unwrap();
    let mut plan = read_json(&dir.path().join("plan.json"));

    // What the shortened snapshots leave out still matches between the files.
    let items_json: usize = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "reseed-opt-outs")
        .map(|s| s["request"]["form"].as_array().unwrap().len())
        .sum();
    let items_shell = text
        .lines()
        .filter(|l| l.contains("--data-urlencode \"Items="))
        .count();
    assert_eq!(items_json, items_shell);
    let steps = plan["steps"].as_array().unwrap().len();
    assert_eq!(text.matches("\n  step ").count(), steps);

    shorten_items_json(&mut plan);
    insta::assert_snapshot!(
        "sample_plan_json",
        serde_json::to_string_pretty(&plan).unwrap()
    );
    insta::assert_snapshot!(
        "sample_plan_csv",
        std::fs::read_to_string(dir.path().join("plan.csv")).unwrap()
    );
    insta::assert_snapshot!("sample_plan_sh", shorten_items_shell(&text));
}
