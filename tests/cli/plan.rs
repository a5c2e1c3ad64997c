//! The migration plan end to end: `subaudit plan` and the plan files `audit` writes.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Value};

use crate::support::*;

/// The number's codes without the two every transfer gets (webhook-signature, and
/// history-stays when it has traffic), which are checked on their own.
fn codes(plan: &Value, sid: &str) -> Vec<String> {
    plan_number(plan, sid)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .filter(|c| c != "webhook-signature" && c != "history-stays")
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
    // The campaign's number is not a US long code: its a2p-campaign stays a warning (a US
    // one is a blocker unless the mapping names a service: see the unit tests).
    let phone = |n: u64| {
        if n == 1 {
            "+447700900001".to_string()
        } else {
            format!("+1415555{n:04}")
        }
    };
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
    let out = on_snap(dir.path(), "plan", "out/plan.json", &[])
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

    let all: BTreeSet<String> = (1..=12)
        .flat_map(|n| {
            plan_number(&plan, &pn(n))["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["code"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    // These five are raised by their own hand-made snapshots in plan_fidelity.rs (and the
    // plan's unit tests, src/audit/plan/tests.rs).
    let unit_tested = [
        "parent-hosted-handler",
        "whatsapp-sender",
        "service-settings-differ",
        "identity-required",
        "service-shared-senders",
    ];
    let expected: BTreeSet<String> = subaudit::audit::plan::Code::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .filter(|c| !unit_tested.contains(&c.as_str()))
        .collect();
    assert_eq!(all, expected, "every code is covered");

    // Severities, actions, targets.
    let n1 = plan_number(&plan, &pn(1));
    assert_eq!(n1["action"], "transfer");
    assert_eq!(n1["target_customer"], "Falcon Flights");
    assert_eq!(n1["target_account_sid"], sid("AC", ACTIVE));
    assert_eq!(n1["opt_outs_lost"], 1);
    assert_eq!(n1["findings"][0]["severity"], "warning");
    assert_eq!(n1["findings"][4]["severity"], "info");
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
            "transfer-number",
            "transfer-number",
            "transfer-number",
            "transfer-number",
            "transfer-number",
            "remove-from-service",
            "transfer-number",
            "create-messaging-service",
            "add-to-service",
            "reseed-opt-outs"
        ],
        "numbers in phone order; each leaves its service right before its transfer"
    );
    assert_eq!(steps[5]["request"]["method"], "DELETE");
    assert_eq!(
        steps[5]["request"]["url"],
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
    assert_eq!(
        reseed["request"]["form"],
        json!([{"name": "Items", "value": "<batch>"}])
    );
    assert_eq!(reseed["reseed_file"], "reseed/Falcon_Flights.jsonl");
    assert_eq!(reseed["sender_id"], "${C_FALCON_FLIGHTS_SERVICE_SID}");
    let file = std::fs::read_to_string(dir.path().join("out/reseed/Falcon_Flights.jsonl")).unwrap();
    assert_eq!(
        file.lines().count() as u64,
        reseed["items"].as_u64().unwrap()
    );
    let item: Value = serde_json::from_str(file.lines().next().unwrap()).unwrap();
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
            "1",
            "hosted-number;webhook-signature"
        ]
    );
    let row1 = rows.iter().find(|r| r[1] == pn(1)).unwrap();
    assert_eq!(
        row1[10],
        "in-messaging-service;a2p-campaign;opt-outs-lost;webhook-signature;recent-traffic;history-stays"
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
        "number,customer,subaccount_sid,messaging_service_sid\n+14155550009,A,,\n+14155550002,B,,\n+14155550001,C,,MG12\n+14155550001,D,{PARENT},\n",
    );
    std::fs::write(dir.path().join("map.csv"), map).unwrap();
    let out = on_snap(dir.path(), "plan", "out/plan.json", &[])
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
        stderr.contains("map.csv:4: messaging_service_sid \"MG12\" is not a Messaging Service sid"),
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
    let out = on_snap(dir.path(), "audit", "report", &["--fail-on", "blocker"])
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
    on_snap(dir.path(), "audit", "all", &["--all"])
        .assert()
        .success();
    let all = read_json(&dir.path().join("all/plan.json"));
    assert_eq!(
        all["summary"]["opt_outs_lost"],
        plan["summary"]["opt_outs_lost"]
    );
}

#[test]
fn sample_plan_summary_codes_and_one_customer_match_their_snapshots() {
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
    let plan = read_json(&dir.path().join("plan.json"));
    let steps = plan["steps"].as_array().unwrap();
    assert_eq!(text.matches("\n  step ").count(), steps.len());

    // Every re-seed step's lines are in its file, and the files hold nothing else.
    let mut lines_per_file: std::collections::BTreeMap<String, u64> = Default::default();
    for step in steps.iter().filter(|s| s["kind"] == "reseed-opt-outs") {
        *lines_per_file
            .entry(step["reseed_file"].as_str().unwrap().to_string())
            .or_default() += step["items"].as_u64().unwrap();
    }
    assert!(!lines_per_file.is_empty());
    for (file, items) in &lines_per_file {
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        assert_eq!(text.lines().count() as u64, *items, "{file}");
    }
    let files = std::fs::read_dir(dir.path().join("reseed"))
        .unwrap()
        .count();
    assert_eq!(files, lines_per_file.len());

    let mut per_code: std::collections::BTreeMap<String, usize> = Default::default();
    for n in plan["numbers"].as_array().unwrap() {
        for f in n["findings"].as_array().unwrap() {
            *per_code
                .entry(f["code"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    let first = plan["customers"][0]["key"].clone();
    let one_customer: Vec<&Value> = steps
        .iter()
        .filter(|s| s["customer_key"] == first)
        .collect();
    insta::assert_snapshot!(
        "sample_plan_reduced",
        serde_json::to_string_pretty(&json!({
            "summary": plan["summary"],
            "customers": plan["customers"],
            "findings_per_code": per_code,
            "steps_of_first_customer": one_customer,
        }))
        .unwrap()
    );
}

/// A small hand-made fixture whose whole plan is snapshotted: one customer into an existing
/// subaccount with one number in a parent service, one new customer with a number outside
/// any service; each loses an opt-out.
fn small_fixture() -> (SnapshotBuilder, String) {
    let mut b = SnapshotBuilder::default();
    let existing = sid("AC", 1);
    b.accounts
        .push(account(&existing, "Falcon Flights", "active", Some(PARENT)));
    let mg = sid("MG", 1);
    let mut parent_service = service(&mg, "Owlie Alerts");
    parent_service["inbound_request_url"] = json!("https://hooks.example.com/in");
    parent_service["inbound_method"] = json!("POST");
    parent_service["sticky_sender"] = json!(true);
    parent_service["validity_period"] = json!(14400);
    parent_service["usecase"] = json!("notifications");
    b.services.push(parent_service);
    b.numbers.push(number(&sid("PN", 1), "+14155550101"));
    b.numbers.push(number(&sid("PN", 2), "+14155550102"));
    b.service_numbers
        .push(service_number(&mg, &sid("PN", 1), "+14155550101"));
    b.messages.push(
        Msg {
            sid: &sid("SM", 1),
            direction: "inbound",
            from: "+12125550001",
            to: "+14155550101",
            body: Some("STOP"),
            date_sent: "Fri, 02 Jan 2026 10:00:00 +0000",
            service: Some(&mg),
            error_code: None,
        }
        .json(),
    );
    b.messages.push(
        Msg {
            sid: &sid("SM", 2),
            direction: "inbound",
            from: "+12125550002",
            to: "+14155550102",
            body: Some("stop"),
            date_sent: "Fri, 02 Jan 2026 11:00:00 +0000",
            service: None,
            error_code: None,
        }
        .json(),
    );
    let map = format!(
        "number,customer,subaccount_sid\n+14155550101,Falcon Flights,{existing}\n+14155550102,Heron Health,\n"
    );
    (b, map)
}

#[test]
fn small_fixture_plan_files_match_their_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let (builder, map) = small_fixture();
    builder.write(&dir.path().join("snap"));
    std::fs::write(dir.path().join("map.csv"), map).unwrap();
    on_snap(dir.path(), "plan", "plan.json", &[])
        .assert()
        .success();
    bash_syntax_ok(&dir.path().join("plan.sh"));
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    insta::assert_snapshot!("small_plan_json", read("plan.json"));
    insta::assert_snapshot!("small_plan_csv", read("plan.csv"));
    insta::assert_snapshot!("small_plan_sh", read("plan.sh"));
    insta::assert_snapshot!(
        "small_plan_reseed",
        format!(
            "{}{}",
            read("reseed/Falcon_Flights.jsonl"),
            read("reseed/Heron_Health.jsonl")
        )
    );
}

/// Answers Consents Bulk like Twilio: 201, one result per item, with an error for the items
/// whose contact is `failing`.
struct ConsentsStub {
    failing: Option<&'static str>,
}

impl wiremock::Respond for ConsentsStub {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let items: Vec<Value> = url::form_urlencoded::parse(&request.body)
            .filter(|(k, _)| k == "Items")
            .flat_map(|(_, v)| serde_json::from_str::<Vec<Value>>(&v).unwrap())
            .collect();
        let results: Vec<Value> = items
            .iter()
            .map(|item| {
                let bad = Some(item["contact_id"].as_str().unwrap()) == self.failing;
                json!({
                    "correlation_id": item["correlation_id"],
                    "error_code": if bad { 21211 } else { 0 },
                    "error_messages": if bad { json!(["invalid contact_id"]) } else { json!([]) },
                })
            })
            .collect();
        wiremock::ResponseTemplate::new(201).set_body_json(json!({ "items": results }))
    }
}

/// Runs the small fixture's plan.sh for Heron Health against a stub Twilio; its URLs are
/// pointed at the stub.
fn run_plan_sh_against(failing: Option<&'static str>) -> std::process::Output {
    use wiremock::matchers::{method, path};
    let dir = tempfile::tempdir().unwrap();
    let (builder, map) = small_fixture();
    builder.write(&dir.path().join("snap"));
    std::fs::write(dir.path().join("map.csv"), map).unwrap();
    on_snap(dir.path(), "plan", "out/plan.json", &[])
        .assert()
        .success();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(async {
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(method("POST"))
            .and(path("/v1/Consents/Bulk"))
            .respond_with(ConsentsStub { failing })
            .mount(&server)
            .await;
        wiremock::Mock::given(method("POST"))
            .and(path("/2010-04-01/Accounts.json"))
            .respond_with(
                wiremock::ResponseTemplate::new(201)
                    .set_body_json(json!({"sid": sid("AC", 9), "auth_token": "new-token"})),
            )
            .mount(&server)
            .await;
        wiremock::Mock::given(method("POST"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({})))
            .mount(&server)
            .await;
        server
    });
    let script_path = dir.path().join("out/plan.sh");
    let script = std::fs::read_to_string(&script_path)
        .unwrap()
        .replace("https://accounts.twilio.com", &server.uri())
        .replace("https://api.twilio.com", &server.uri())
        .replace("https://messaging.twilio.com", &server.uri());
    std::fs::write(&script_path, script).unwrap();
    let out = std::process::Command::new("bash")
        .arg(&script_path)
        .arg("C_HERON_HEALTH")
        .env("TWILIO_ACCOUNT_SID", PARENT)
        .env("TWILIO_AUTH_TOKEN", "parent-token")
        .output()
        .unwrap();
    drop(server);
    out
}

#[test]
fn plan_sh_fails_the_reseed_step_naming_the_contacts_consents_bulk_refused() {
    let out = run_plan_sh_against(Some("+12125550002"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("did not re-seed these contacts of reseed/Heron_Health.jsonl: +12125550002 (error 21211)"),
        "{stderr}"
    );
    assert!(!stderr.contains("plan.sh: done"), "{stderr}");

    let out = run_plan_sh_against(None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("re-seeded lines 1-1 of reseed/Heron_Health.jsonl in 1 request(s)"),
        "{stderr}"
    );
}

#[test]
fn a_well_formed_sid_of_no_subaccount_blocks_only_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let (builder, _) = small_fixture();
    builder.write(&dir.path().join("snap"));
    let stranger = sid("AC", 0xdead);
    let map = format!(
        "number,customer,subaccount_sid\n+14155550101,Falcon Flights,{stranger}\n+14155550102,Heron Health,\n"
    );
    std::fs::write(dir.path().join("map.csv"), map).unwrap();
    on_snap(dir.path(), "plan", "plan.json", &[])
        .assert()
        .success();
    let plan = read_json(&dir.path().join("plan.json"));
    let blocked = plan_number(&plan, &sid("PN", 1));
    assert_eq!(blocked["blocked"], true);
    assert_eq!(blocked["target_account_status"], "not-in-snapshot");
    assert_eq!(blocked["findings"][0]["code"], "target-not-child");
    let message = blocked["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(&stranger) && message.contains("line 2"),
        "{message}"
    );
    assert_eq!(plan_number(&plan, &sid("PN", 2))["blocked"], false);
    let steps = plan["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["number_sid"] != sid("PN", 1)));
    assert!(steps.iter().any(|s| s["number_sid"] == sid("PN", 2)));
}

/// Every file under `root` (paths relative to it) with its bytes.
fn files_under(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let name = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                files.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn audit_all_lists_more_opt_outs_and_plans_the_same_moves() {
    let dir = tempfile::tempdir().unwrap();
    let sample = repo_root().join("sample-data/owlie");
    for (out, extra) in [("moving", None), ("all", Some("--all"))] {
        subaudit(dir.path())
            .args(["audit", "--snapshot"])
            .arg(&sample)
            .arg("--map")
            .arg(sample.join("mapping.csv"))
            .args(["--out", out])
            .args(extra)
            .assert()
            .success();
    }
    let (moving, all) = (
        files_under(&dir.path().join("moving")),
        files_under(&dir.path().join("all")),
    );
    let rows = |files: &std::collections::BTreeMap<String, Vec<u8>>| {
        files["optouts_lost.csv"]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    };
    assert!(
        rows(&all) > rows(&moving),
        "--all lists the numbers that stay too"
    );
    // The rows are made once, with --all too, and the plan reads the moving numbers' among
    // them: the plan, its re-seed files and every per-customer file are the same bytes.
    assert_eq!(
        moving.keys().collect::<Vec<_>>(),
        all.keys().collect::<Vec<_>>()
    );
    assert!(moving.keys().any(|k| k.starts_with("reseed/")));
    for (name, bytes) in &moving {
        if name != "optouts_lost.csv" && name != "report.html" {
            assert!(all[name] == *bytes, "{name} differs with --all");
        }
    }
}

/// `plan` alone writes every file its plan.json names: each customer's suppression list
/// (byte for byte what `audit` writes) and each re-seed file. Run into a folder holding an
/// audit's report, it replaces those files and leaves the audit's opt-out files alone.
#[test]
fn plan_alone_writes_every_file_its_plan_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sample = repo_root().join("sample-data/owlie");
    let map = sample.join("mapping.csv");
    let (snap, map) = (sample.to_str().unwrap(), map.to_str().unwrap());
    let on_sample = |command: &str, out: &str| {
        run(
            d,
            &[command, "--snapshot", snap, "--map", map, "--out", out],
        )
        .success();
    };
    on_sample("plan", "alone/plan.json");
    on_sample("audit", "report");
    let plan = read_json(&d.join("alone/plan.json"));
    let customers = plan["customers"].as_array().unwrap();
    assert!(customers.len() > 10);
    let mut named = 0;
    for c in customers {
        let list = c["suppression_file"].as_str().unwrap();
        let ours =
            std::fs::read(d.join("alone").join(list)).unwrap_or_else(|e| panic!("{list}: {e}"));
        assert_eq!(
            ours,
            std::fs::read(d.join("report").join(list)).unwrap(),
            "{list}"
        );
        named += 1;
    }
    for step in plan["steps"].as_array().unwrap() {
        if let Some(file) = step["reseed_file"].as_str() {
            assert!(d.join("alone").join(file).is_file(), "{file}");
        }
    }
    assert!(named > 0);

    // Into the audit's folder: the audit's opt-out files stay, the lists are the plan's.
    let before = files_under(&d.join("report/optouts"));
    on_sample("plan", "report/plan.json");
    assert_eq!(files_under(&d.join("report/optouts")), before);
}
