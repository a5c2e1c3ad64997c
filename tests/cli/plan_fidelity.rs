//! The plan against real Twilio (issue 8): findings raised by hand-made snapshots, the copied
//! service settings, and the suppression lists beside the opt-out export.

use std::path::Path;

use serde_json::{json, Value};

use crate::support::*;

fn finding<'a>(plan: &'a Value, sid: &str, code: &str) -> Option<&'a Value> {
    plan_number(plan, sid)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
}

fn steps<'a>(plan: &'a Value, kind: &str) -> Vec<&'a Value> {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == kind)
        .collect()
}

/// Writes the snapshot and the mapping, runs `plan` and returns plan.json.
fn plan_of(dir: &Path, builder: &SnapshotBuilder, map: &str) -> Value {
    builder.write(&dir.join("snap"));
    std::fs::write(dir.join("map.csv"), map).unwrap();
    on_snap(dir, "plan", "out/plan.json", &[])
        .assert()
        .success();
    read_json(&dir.join("out/plan.json"))
}

const FALCON: u64 = 1;

fn with_falcon() -> SnapshotBuilder {
    let mut b = SnapshotBuilder::default();
    b.accounts.push(account(
        &sid("AC", FALCON),
        "Falcon Flights",
        "active",
        Some(PARENT),
    ));
    b
}

fn phone(n: u64) -> String {
    format!("+1415555{n:04}")
}

/// Every mapping line sends its number to Falcon Flights' existing subaccount.
fn map_to_falcon(numbers: &[u64]) -> String {
    let mut map = String::from("number,customer,subaccount_sid\n");
    for n in numbers {
        map.push_str(&format!(
            "{},Falcon Flights,{}\n",
            phone(*n),
            sid("AC", FALCON)
        ));
    }
    map
}

#[test]
fn handlers_the_parent_hosts_are_named_per_webhook_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = with_falcon();
    let flow = format!(
        "https://webhooks.twilio.com/v1/Accounts/{PARENT}/Flows/FW0123456789abcdef0123456789abcdef"
    );
    let other_parent_flow = format!(
        "https://webhooks.twilio.com/v1/Accounts/{}/Flows/FW0123456789abcdef0123456789abcdef",
        sid("AC", 77)
    );
    for n in 1..=4 {
        b.numbers.push(number(&sid("PN", n), &phone(n)));
    }
    b.numbers[0]["sms_url"] = json!("https://owlie-1234.twil.io/incoming-sms");
    b.numbers[1]["voice_url"] = json!(flow);
    b.numbers[2]["sms_fallback_url"] =
        json!("https://handler.twilio.com/twiml/EH0123456789abcdef0123456789abcdef");
    // The app's own server, and another account's flow: not the parent's handlers.
    b.numbers[3]["sms_url"] = json!("https://app.example.com/twilio/sms");
    b.numbers[3]["voice_url"] = json!(other_parent_flow);
    let plan = plan_of(dir.path(), &b, &map_to_falcon(&[1, 2, 3, 4]));

    let expect = [
        (
            1,
            "sms_url",
            "https://owlie-1234.twil.io/incoming-sms",
            "a Function",
        ),
        (2, "voice_url", flow.as_str(), "a Studio Flow"),
        (
            3,
            "sms_fallback_url",
            "https://handler.twilio.com/twiml/EH0123456789abcdef0123456789abcdef",
            "a TwiML Bin",
        ),
    ];
    for (n, field, url, what) in expect {
        let f = finding(&plan, &sid("PN", n), "parent-hosted-handler")
            .unwrap_or_else(|| panic!("{} has no parent-hosted-handler", phone(n)));
        assert_eq!(f["severity"], "warning");
        let message = f["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{field} {url} ({what})")),
            "{message}"
        );
        // A warning: the number still moves.
        assert_eq!(plan_number(&plan, &sid("PN", n))["blocked"], false);
    }
    assert!(finding(&plan, &sid("PN", 4), "parent-hosted-handler").is_none());
    assert_eq!(steps(&plan, "transfer-number").len(), 4);
}

#[test]
fn whatsapp_traffic_on_a_number_blocks_its_move() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = with_falcon();
    b.numbers.push(number(&sid("PN", 1), &phone(1)));
    b.numbers.push(number(&sid("PN", 2), &phone(2)));
    let (wa_number, wa_user) = (format!("whatsapp:{}", phone(1)), "whatsapp:+12125550100");
    b.messages.push(
        Msg {
            sid: &sid("SM", 1),
            direction: "inbound",
            from: wa_user,
            to: &wa_number,
            body: Some("hello"),
            date_sent: &jan(10, 9, 0, 0),
            ..Msg::default()
        }
        .json(),
    );
    b.messages.push(
        Msg {
            sid: &sid("SM", 2),
            direction: "outbound-api",
            from: &wa_number,
            to: wa_user,
            body: Some("hi"),
            date_sent: &jan(10, 9, 1, 0),
            ..Msg::default()
        }
        .json(),
    );
    // Plain SMS on the other number: no WhatsApp sender there.
    b.messages.push(
        Msg {
            sid: &sid("SM", 3),
            direction: "outbound-api",
            from: &phone(2),
            to: "+12125550100",
            body: Some("hi"),
            date_sent: &jan(10, 9, 2, 0),
            ..Msg::default()
        }
        .json(),
    );
    let plan = plan_of(dir.path(), &b, &map_to_falcon(&[1, 2]));

    let f = finding(&plan, &sid("PN", 1), "whatsapp-sender").expect("whatsapp-sender");
    assert_eq!(f["severity"], "blocker");
    let message = f["message"].as_str().unwrap();
    assert!(message.contains("2 messages"), "{message}");
    assert!(message.contains("Twilio Support"), "{message}");
    let n1 = plan_number(&plan, &sid("PN", 1));
    assert_eq!(n1["blocked"], true);
    assert_eq!(n1["worst_severity"], "blocker");
    assert!(finding(&plan, &sid("PN", 2), "whatsapp-sender").is_none());
    // The blocked number gets no step; the other one moves.
    let transfers = steps(&plan, "transfer-number");
    assert_eq!(transfers.len(), 1);
    assert_eq!(transfers[0]["number_sid"], sid("PN", 2));
    assert_eq!(plan["summary"]["blocked"], 1);
}

#[test]
fn parent_services_with_different_settings_give_one_new_service_each() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = with_falcon();
    let (alerts, promo, same) = (sid("MG", 1), sid("MG", 2), sid("MG", 3));
    let settings = |sid: &str, name: &str, url: &str| {
        let mut s = service(sid, name);
        s["inbound_request_url"] = json!(url);
        s["inbound_method"] = json!("POST");
        s["sticky_sender"] = json!(true);
        s["validity_period"] = json!(14400);
        s
    };
    b.services.push(settings(
        &alerts,
        "Owlie Alerts",
        "https://app.example.com/alerts",
    ));
    b.services.push(settings(
        &promo,
        "Owlie Promo",
        "https://app.example.com/promo",
    ));
    for n in 1..=3 {
        b.numbers.push(number(&sid("PN", n), &phone(n)));
    }
    b.service_numbers
        .push(service_number(&alerts, &sid("PN", 1), &phone(1)));
    b.service_numbers
        .push(service_number(&promo, &sid("PN", 2), &phone(2)));
    b.service_numbers
        .push(service_number(&promo, &sid("PN", 3), &phone(3)));
    // A third service whose settings equal the first's, for another customer: one service.
    b.services.push(settings(
        &same,
        "Owlie Alerts 2",
        "https://app.example.com/alerts",
    ));
    b.numbers.push(number(&sid("PN", 4), &phone(4)));
    b.numbers.push(number(&sid("PN", 5), &phone(5)));
    b.service_numbers
        .push(service_number(&alerts, &sid("PN", 4), &phone(4)));
    b.service_numbers
        .push(service_number(&same, &sid("PN", 5), &phone(5)));
    let map = format!(
        "{}{},Heron Health,\n{},Heron Health,\n",
        map_to_falcon(&[1, 2, 3]),
        phone(4),
        phone(5)
    );
    let plan = plan_of(dir.path(), &b, &map);

    // Falcon: two services, named apart, each copying its parent's settings.
    let created: Vec<&Value> = steps(&plan, "create-messaging-service")
        .into_iter()
        .filter(|s| s["customer"] == "Falcon Flights")
        .collect();
    assert_eq!(created.len(), 2);
    let form = |step: &Value, name: &str| {
        step["request"]["form"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .map(|f| f["value"].as_str().unwrap().to_string())
    };
    assert_eq!(created[0]["source_service_sid"], alerts);
    assert_eq!(created[1]["source_service_sid"], promo);
    assert_eq!(
        form(created[0], "FriendlyName").unwrap(),
        "Falcon Flights (Owlie Alerts)"
    );
    assert_eq!(
        form(created[1], "FriendlyName").unwrap(),
        "Falcon Flights (Owlie Promo)"
    );
    assert_eq!(
        form(created[0], "InboundRequestUrl").unwrap(),
        "https://app.example.com/alerts"
    );
    assert_eq!(
        form(created[1], "InboundRequestUrl").unwrap(),
        "https://app.example.com/promo"
    );
    for step in &created {
        assert_eq!(form(step, "InboundMethod").unwrap(), "POST");
        assert_eq!(form(step, "StickySender").unwrap(), "true");
        assert_eq!(form(step, "ValidityPeriod").unwrap(), "14400");
    }
    assert_eq!(
        created[0]["captures"][0]["variable"],
        "C_FALCON_FLIGHTS_SERVICE_1_SID"
    );
    assert_eq!(
        created[1]["captures"][0]["variable"],
        "C_FALCON_FLIGHTS_SERVICE_2_SID"
    );
    // Each number joins the service made from its own parent service.
    let added: Vec<(String, String)> = steps(&plan, "add-to-service")
        .iter()
        .filter(|s| s["customer"] == "Falcon Flights")
        .map(|s| {
            (
                s["number_sid"].as_str().unwrap().to_string(),
                s["request"]["url"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let url = |n: u64| {
        format!("https://messaging.twilio.com/v1/Services/${{C_FALCON_FLIGHTS_SERVICE_{n}_SID}}/PhoneNumbers")
    };
    assert_eq!(
        added,
        [
            (sid("PN", 1), url(1)),
            (sid("PN", 2), url(2)),
            (sid("PN", 3), url(2))
        ]
    );
    for n in 1..=3 {
        let f = finding(&plan, &sid("PN", n), "service-settings-differ")
            .unwrap_or_else(|| panic!("{} has no service-settings-differ", phone(n)));
        assert_eq!(f["severity"], "warning");
        let message = f["message"].as_str().unwrap();
        assert!(
            message.contains(&alerts) && message.contains(&promo),
            "{message}"
        );
    }

    // Heron: two parent services with equal settings make one service, and no finding.
    let heron: Vec<&Value> = steps(&plan, "create-messaging-service")
        .into_iter()
        .filter(|s| s["customer"] == "Heron Health")
        .collect();
    assert_eq!(heron.len(), 1);
    assert_eq!(form(heron[0], "FriendlyName").unwrap(), "Heron Health");
    assert_eq!(
        heron[0]["captures"][0]["variable"],
        "C_HERON_HEALTH_SERVICE_SID"
    );
    for n in [4, 5] {
        assert!(finding(&plan, &sid("PN", n), "service-settings-differ").is_none());
    }
}

#[test]
fn an_identity_sid_becomes_a_placeholder_of_the_transfer_and_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = with_falcon();
    let identity = sid("RI", 1);
    b.numbers.push(number(&sid("PN", 1), &phone(1)));
    b.numbers.push(number(&sid("PN", 2), &phone(2)));
    b.numbers[0]["identity_sid"] = json!(identity);
    let plan = plan_of(dir.path(), &b, &map_to_falcon(&[1, 2]));

    let f = finding(&plan, &sid("PN", 1), "identity-required").expect("identity-required");
    assert_eq!(f["severity"], "warning");
    assert!(f["message"].as_str().unwrap().contains(&identity));
    assert!(finding(&plan, &sid("PN", 2), "identity-required").is_none());
    let transfers = steps(&plan, "transfer-number");
    let t1 = transfers
        .iter()
        .find(|s| s["number_sid"] == sid("PN", 1))
        .unwrap();
    assert_eq!(
        t1["request"]["form"],
        json!([{"name": "AccountSid", "value": sid("AC", FALCON)},
               {"name": "IdentitySid", "value": "${C_FALCON_FLIGHTS_IDENTITY_SID}"}])
    );
    assert!(t1["placeholders"]
        .as_array()
        .unwrap()
        .contains(&json!("C_FALCON_FLIGHTS_IDENTITY_SID")));
    let t2 = transfers
        .iter()
        .find(|s| s["number_sid"] == sid("PN", 2))
        .unwrap();
    assert_eq!(t2["request"]["form"].as_array().unwrap().len(), 1);
    let falcon = &plan["customers"][0];
    assert_eq!(falcon["required"], json!(["C_FALCON_FLIGHTS_IDENTITY_SID"]));
    let placeholder = plan["placeholders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "C_FALCON_FLIGHTS_IDENTITY_SID")
        .expect("the placeholder is described");
    assert!(placeholder["description"]
        .as_str()
        .unwrap()
        .contains(&identity));
    // plan.sh stops until the user exports it.
    let script = std::fs::read_to_string(dir.path().join("out/plan.sh")).unwrap();
    assert!(script.contains("need C_FALCON_FLIGHTS_IDENTITY_SID"));
}

/// The suppression list beside each customer's opt-out file: one row per (sender, end user)
/// as the Consents re-seed sends it, and the opt-outs it cannot send with the reason.
#[test]
fn suppression_lists_say_what_the_reseed_sends_and_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = with_falcon();
    let alerts = sid("MG", 1);
    b.services.push(service(&alerts, "Owlie Alerts"));
    for n in 1..=4 {
        b.numbers.push(number(&sid("PN", n), &phone(n)));
    }
    // 3 is a hosted number: blocked, it stays.
    b.numbers[2]["origin"] = json!("hosted");
    b.service_numbers
        .push(service_number(&alerts, &sid("PN", 1), &phone(1)));
    b.service_numbers
        .push(service_number(&alerts, &sid("PN", 4), &phone(4)));
    let mut sm = 0;
    let mut push = |b: &mut SnapshotBuilder,
                    direction: &str,
                    from: &str,
                    to: &str,
                    body: Option<&str>,
                    service: Option<&str>,
                    error: Option<i64>| {
        sm += 1;
        b.messages.push(
            Msg {
                sid: &sid("SM", sm),
                direction,
                from,
                to,
                body,
                date_sent: &jan(5 + sm as u32, 10, 0, 0),
                service,
                error_code: error,
            }
            .json(),
        );
    };
    // Service scope, through number 4 (which stays): lost by number 1 leaving the service.
    push(
        &mut b,
        "inbound",
        "+12125550100",
        &phone(4),
        Some("STOP"),
        Some(&alerts),
        None,
    );
    push(
        &mut b,
        "inbound",
        "whatsapp:+12125550101",
        &format!("whatsapp:{}", phone(4)),
        Some("STOP"),
        Some(&alerts),
        None,
    );
    // Number scope on number 2 (no service): an E.164 user, a short code, an alphanumeric id.
    push(
        &mut b,
        "inbound",
        "+12125550102",
        &phone(2),
        Some("STOP"),
        None,
        None,
    );
    push(
        &mut b,
        "inbound",
        "22395",
        &phone(2),
        Some("STOP"),
        None,
        None,
    );
    push(
        &mut b,
        "outbound-api",
        &phone(2),
        "OWLIEALRT",
        Some("hi"),
        None,
        Some(21610),
    );
    // The blocked number's own opt-out.
    push(
        &mut b,
        "inbound",
        "+12125550103",
        &phone(3),
        Some("STOP"),
        None,
        None,
    );
    b.write(&dir.path().join("snap"));
    std::fs::write(dir.path().join("map.csv"), map_to_falcon(&[1, 2, 3])).unwrap();
    on_snap(dir.path(), "audit", "report", &[])
        .assert()
        .success();

    let rows = read_csv(
        &dir.path()
            .join("report/optouts/Falcon_Flights.suppression.csv"),
    );
    assert_eq!(
        rows[0],
        [
            "sender",
            "end_user",
            "opted_out_at",
            "scope",
            "twilio_number",
            "target_sender_id",
            "target_sender_name",
            "correlation_id",
            "reseeded",
            "reason"
        ]
    );
    let find = |end_user: &str| {
        rows.iter()
            .find(|r| r[1] == end_user)
            .unwrap_or_else(|| panic!("{end_user} not in {rows:?}"))
    };
    assert_eq!(rows.len(), 7, "{rows:?}");
    let via_service = "${C_FALCON_FLIGHTS_SERVICE_SID}";
    let r = find("+12125550100");
    let p1 = phone(1);
    assert_eq!(
        r[..9].iter().map(String::as_str).collect::<Vec<_>>(),
        [
            alerts.as_str(),
            "+12125550100",
            "2026-01-06T10:00:00Z",
            "service",
            p1.as_str(),
            via_service,
            "Falcon Flights",
            r[7].as_str(),
            "yes"
        ]
    );
    assert_eq!(r[7].len(), 32);
    assert_eq!(r[9], "");
    let r = find("whatsapp:+12125550101");
    assert_eq!(
        (r[0].as_str(), r[5].as_str(), r[8].as_str()),
        (alerts.as_str(), via_service, "no")
    );
    assert!(r[9].starts_with("not-e164: whatsapp address"), "{r:?}");
    let r = find("+12125550102");
    assert_eq!(
        (
            r[0].as_str(),
            r[3].as_str(),
            r[5].as_str(),
            r[6].as_str(),
            r[8].as_str()
        ),
        (
            phone(2).as_str(),
            "number",
            phone(2).as_str(),
            phone(2).as_str(),
            "yes"
        )
    );
    let r = find("22395");
    assert_eq!(r[8], "no");
    assert!(r[9].starts_with("not-e164: short code"), "{r:?}");
    let r = find("OWLIEALRT");
    assert_eq!(r[8], "no");
    assert!(
        r[9].starts_with("not-e164: alphanumeric sender id"),
        "{r:?}"
    );
    let r = find("+12125550103");
    assert_eq!((r[5].as_str(), r[8].as_str()), ("", "no"));
    assert!(
        r[9].starts_with("number-blocked: ") && r[9].contains("hosted-number"),
        "{r:?}"
    );

    // The re-seed sends exactly the rows marked yes, with the same correlation ids.
    let reseed =
        std::fs::read_to_string(dir.path().join("report/reseed/Falcon_Flights.jsonl")).unwrap();
    let mut sent: Vec<(String, String, String)> = reseed
        .lines()
        .map(|l| {
            let item: Value = serde_json::from_str(l).unwrap();
            (
                item["sender_id"].as_str().unwrap().to_string(),
                item["contact_id"].as_str().unwrap().to_string(),
                item["correlation_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    sent.sort();
    let mut marked: Vec<(String, String, String)> = rows[1..]
        .iter()
        .filter(|r| r[8] == "yes")
        .map(|r| (r[5].clone(), r[1].clone(), r[7].clone()))
        .collect();
    marked.sort();
    assert_eq!(sent, marked);

    // plan.json counts the skipped users and points at the file.
    let plan = read_json(&dir.path().join("report/plan.json"));
    let falcon = &plan["customers"][0];
    assert_eq!(falcon["reseed_skipped"], 3);
    assert_eq!(
        falcon["suppression_file"],
        "optouts/Falcon_Flights.suppression.csv"
    );
    // The columns of the other opt-out files do not change.
    let lost = read_csv(&dir.path().join("report/optouts/Falcon_Flights.csv"));
    assert_eq!(lost[0].len(), 11);

    // `optouts --per-customer` writes the same list.
    on_snap(
        dir.path(),
        "optouts",
        "lost.csv",
        &["--per-customer", "per"],
    )
    .assert()
    .success();
    assert_eq!(
        std::fs::read(dir.path().join("per/Falcon_Flights.suppression.csv")).unwrap(),
        std::fs::read(
            dir.path()
                .join("report/optouts/Falcon_Flights.suppression.csv")
        )
        .unwrap()
    );
}

fn short_code(n: u64, service: &str, code: &str) -> Value {
    json!({"sid": sid("SC", n), "account_sid": PARENT, "service_sid": service,
           "short_code": code, "country_code": "US",
           "capabilities": {"sms_outbound": true, "voice_inbound": false},
           "date_created": "2025-01-01T00:00:00Z", "date_updated": "2025-01-01T00:00:00Z",
           "url": format!("https://messaging.twilio.com/v1/Services/{service}/ShortCodes/{}", sid("SC", n))})
}

fn alpha_sender(n: u64, service: &str, name: &str) -> Value {
    json!({"sid": sid("AI", n), "account_sid": PARENT, "service_sid": service,
           "alpha_sender": name, "capabilities": ["SMS"],
           "date_created": "2025-01-01T00:00:00Z", "date_updated": "2025-01-01T00:00:00Z",
           "url": format!("https://messaging.twilio.com/v1/Services/{service}/AlphaSenders/{}", sid("AI", n))})
}

/// Two parent services: Owlie Alerts also holds two short codes and an alphanumeric sender,
/// Owlie Promo only numbers. `senders` false leaves them out, as an older snapshot does.
fn shared_senders(senders: bool) -> SnapshotBuilder {
    let mut b = with_falcon();
    let (alerts, promo) = (sid("MG", 1), sid("MG", 2));
    b.services.push(service(&alerts, "Owlie Alerts"));
    b.services.push(service(&promo, "Owlie Promo"));
    for n in 1..=2 {
        b.numbers.push(number(&sid("PN", n), &phone(n)));
    }
    b.service_numbers
        .push(service_number(&alerts, &sid("PN", 1), &phone(1)));
    b.service_numbers
        .push(service_number(&promo, &sid("PN", 2), &phone(2)));
    if senders {
        b.short_codes = Some(vec![
            short_code(1, &alerts, "22395"),
            short_code(2, &alerts, "89901"),
        ]);
        b.alpha_senders = Some(vec![alpha_sender(1, &alerts, "OWLIE")]);
    }
    b
}

fn assert_shared_senders_finding(plan: &Value) {
    let f = finding(plan, &sid("PN", 1), "service-shared-senders").expect("service-shared-senders");
    assert_eq!(f["severity"], "info");
    let message = f["message"].as_str().unwrap();
    for part in [
        "\"Owlie Alerts\"",
        sid("MG", 1).as_str(),
        "short codes 22395, 89901",
        "alphanumeric sender OWLIE",
        "stay behind",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    // The number leaving a service without other senders gets none.
    assert!(finding(plan, &sid("PN", 2), "service-shared-senders").is_none());
}

#[test]
fn a_number_leaving_a_service_with_short_codes_or_alpha_senders_says_they_stay_behind() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_of(dir.path(), &shared_senders(true), &map_to_falcon(&[1, 2]));
    assert_shared_senders_finding(&plan);
    // Info only: the number moves.
    assert_eq!(plan_number(&plan, &sid("PN", 1))["blocked"], false);

    // A snapshot made before the senders were pulled still loads: unknown, so no finding.
    let old = tempfile::tempdir().unwrap();
    let plan = plan_of(old.path(), &shared_senders(false), &map_to_falcon(&[1, 2]));
    assert!(finding(&plan, &sid("PN", 1), "service-shared-senders").is_none());
    let manifest = read_json(&old.path().join("snap/manifest.json"));
    assert!(manifest["resources"]
        .get("messaging_service_short_codes")
        .is_none());
}

/// The twin serves a service's short codes and alphanumeric senders from its snapshot, paged
/// like Twilio's v1 lists; `pull` fetches them into the snapshot and the plan sees them.
#[test]
fn pull_fetches_the_services_short_codes_and_alpha_senders_from_the_twin() {
    const TOKEN: &str = "shared-senders-token-7f3a";
    let dir = tempfile::tempdir().unwrap();
    let source = shared_senders(true).write(&dir.path().join("source"));
    let (mut child, url) = spawn_twilio_sim(&source, PARENT, TOKEN, &[]);
    let get = |path: &str| -> Value {
        let out = std::process::Command::new("curl")
            .args(["--silent", "--fail", "--user", &format!("{PARENT}:{TOKEN}")])
            .arg(format!("{url}{path}"))
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "GET {path}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let alerts = sid("MG", 1);
    let first = get(&format!("/v1/Services/{alerts}/ShortCodes?PageSize=1"));
    assert_eq!(first["short_codes"].as_array().unwrap().len(), 1);
    assert_eq!(first["short_codes"][0]["short_code"], "22395");
    assert_eq!(first["meta"]["key"], "short_codes");
    let next = first["meta"]["next_page_url"]
        .as_str()
        .expect("a second page");
    let path = &next[next.find("/v1/").unwrap()..];
    let second = get(path);
    assert_eq!(second["short_codes"][0]["short_code"], "89901");
    assert!(second["meta"]["next_page_url"].is_null());
    let alpha = get(&format!("/v1/Services/{alerts}/AlphaSenders"));
    assert_eq!(alpha["alpha_senders"][0]["alpha_sender"], "OWLIE");
    assert_eq!(alpha["meta"]["key"], "alpha_senders");
    let none = get(&format!("/v1/Services/{}/ShortCodes", sid("MG", 2)));
    assert_eq!(none["short_codes"], json!([]));

    let pulled = subaudit(dir.path())
        .args([
            "pull",
            "--out",
            "pulled",
            "--since",
            "2025-12-01",
            "--until",
            "2026-02-01",
            "--quiet",
        ])
        .env_remove("TWILIO_API_KEY")
        .env_remove("TWILIO_API_SECRET")
        .env_remove("TWILIO_REGION")
        .env_remove("TWILIO_EDGE")
        .env("TWILIO_ACCOUNT_SID", PARENT)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("SUBAUDIT_TWILIO_BASE_URL", &url)
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let manifest = read_json(&dir.path().join("pulled/manifest.json"));
    assert_eq!(
        manifest["resources"]["messaging_service_short_codes"]["count"],
        2
    );
    assert_eq!(
        manifest["resources"]["messaging_service_alpha_senders"]["count"],
        1
    );
    std::fs::write(dir.path().join("map.csv"), map_to_falcon(&[1, 2])).unwrap();
    subaudit(dir.path())
        .args([
            "plan",
            "--snapshot",
            "pulled",
            "--map",
            "map.csv",
            "--out",
            "out/plan.json",
        ])
        .assert()
        .success();
    assert_shared_senders_finding(&read_json(&dir.path().join("out/plan.json")));
}
