use super::steps::correlation_id;
use super::*;
use crate::model::IncomingPhoneNumber;
use crate::model::{A2pCampaign, Account, MessagingService, ServicePhoneNumber};
use crate::snapshot::{Manifest, Window};
use chrono::TimeZone;
use chrono::Utc;

const PARENT: &str = "AC00000000000000000000000000000000";

fn sid(prefix: &str, n: u64) -> String {
    format!("{prefix}{n:032x}")
}

fn account(sid: &str, name: &str, status: &str) -> Account {
    Account {
        sid: sid.into(),
        owner_account_sid: Some(PARENT.into()),
        friendly_name: Some(name.into()),
        status: Some(status.into()),
        account_type: Some("Full".into()),
    }
}

fn number(n: u64) -> IncomingPhoneNumber {
    IncomingPhoneNumber {
        sid: sid("PN", n),
        phone_number: format!("+1415555{:04}", n),
        account_sid: Some(PARENT.into()),
        origin: Some("twilio".into()),
        address_requirements: Some("none".into()),
        emergency_status: Some("Inactive".into()),
        ..Default::default()
    }
}

fn snapshot(numbers: Vec<IncomingPhoneNumber>, accounts: Vec<Account>) -> Snapshot {
    let t = |m| Utc.with_ymd_and_hms(2026, m, 1, 0, 0, 0).unwrap();
    let mut all = vec![account(PARENT, "Owlie", "active")];
    all.extend(accounts);
    Snapshot {
        dir: "snap".into(),
        manifest: Manifest {
            format: crate::snapshot::FORMAT_NAME.into(),
            format_version: crate::snapshot::FORMAT_VERSION,
            parent_account_sid: PARENT.into(),
            window: Window {
                since: t(1),
                until: t(3),
            },
            created_at: t(3),
            created_by: "test".into(),
            complete: true,
            outbound_bodies_kept: false,
            resources: Default::default(),
        },
        accounts: all,
        numbers,
        subaccount_numbers: vec![],
        service_short_codes: None,
        service_alpha_senders: None,
        services: vec![],
        service_numbers: vec![],
        campaigns: vec![],
        usage_records: vec![],
    }
}

fn moving(pairs: &[(u64, &str, Option<&str>)]) -> ResolvedMapping {
    let mut m = ResolvedMapping::default();
    for (i, (n, customer, account)) in pairs.iter().enumerate() {
        m.targets.insert(
            sid("PN", *n),
            NumberTarget::Move(Target {
                customer: customer.to_string(),
                account_sid: account.map(str::to_string),
                messaging_service_sid: None,
                lines: vec![i + 2],
            }),
        );
    }
    m
}

/// The number's codes without the two every transfer gets (webhook-signature, and
/// history-stays when it has traffic): those are checked on their own.
fn codes(plan: &Plan, n: u64) -> Vec<&'static str> {
    plan.numbers
        .iter()
        .find(|p| p.number_sid == sid("PN", n))
        .unwrap()
        .codes()
        .into_iter()
        .filter(|c| *c != "webhook-signature" && *c != "history-stays")
        .collect()
}

#[test]
fn every_code_has_a_fixed_severity_and_the_six_blockers_are_the_issues() {
    let blockers: Vec<_> = Code::ALL
        .iter()
        .filter(|c| c.severity() == Severity::Blocker)
        .map(|c| c.as_str())
        .collect();
    assert_eq!(
        blockers,
        [
            "hosted-number",
            "target-suspended",
            "target-closed",
            "target-not-child",
            "mapping-conflict",
            "whatsapp-sender"
        ]
    );
    assert_eq!(Code::Unmapped.severity(), Severity::Info);
    assert_eq!(Code::OptOutsLost.severity(), Severity::Warning);
    assert_eq!(
        serde_json::to_string(&Code::A2pCampaign).unwrap(),
        "\"a2p-campaign\""
    );
    assert!(Severity::Blocker > Severity::Warning && Severity::Warning > Severity::Info);
}

#[test]
fn an_unmapped_number_stays_with_one_info_finding() {
    let mut n = number(1);
    n.origin = Some("hosted".into());
    let snap = snapshot(vec![n], vec![]);
    let plan = build(
        &snap,
        &ResolvedMapping::default(),
        Default::default(),
        &HashMap::new(),
    );
    assert_eq!(plan.numbers[0].action, Action::Stay);
    assert_eq!(codes(&plan, 1), ["unmapped"]);
    assert!(!plan.numbers[0].blocked);
    assert!(plan.steps.is_empty());
}

#[test]
fn number_fields_raise_their_findings() {
    let mut a = number(1);
    a.bundle_sid = Some(sid("BU", 1));
    a.address_sid = Some(sid("AD", 1));
    a.address_requirements = Some("local".into());
    let mut b = number(2);
    b.emergency_status = Some("Active".into());
    b.trunk_sid = Some(sid("TK", 1));
    b.sms_application_sid = Some(sid("AP", 1));
    let mut c = number(3);
    c.phone_number = "+18005550103".into();
    let mut d = number(4);
    d.address_requirements = Some("any".into());
    let snap = snapshot(vec![a, b, c, d], vec![]);
    let map = moving(&[
        (1, "A", None),
        (2, "A", None),
        (3, "A", None),
        (4, "A", None),
    ]);
    let plan = build(&snap, &map, Default::default(), &HashMap::new());
    assert_eq!(codes(&plan, 1), ["regulatory-bundle", "address-required"]);
    assert_eq!(
        codes(&plan, 2),
        ["emergency-address", "sip-trunk", "twiml-app"]
    );
    assert_eq!(codes(&plan, 3), ["toll-free-verification"]);
    assert_eq!(codes(&plan, 4), ["address-required"]);
    // The transfer carries placeholders for the subaccount's own bundle and address.
    let transfer = plan
        .steps
        .iter()
        .find(|s| {
            s.kind == StepKind::TransferNumber && s.number_sid.as_deref() == Some(&sid("PN", 1))
        })
        .unwrap();
    let form: Vec<String> = transfer
        .request
        .form
        .iter()
        .map(|f| format!("{}={}", f.name, f.value))
        .collect();
    assert_eq!(
        form,
        [
            "AccountSid=${C_A_ACCOUNT_SID}",
            "BundleSid=${C_A_BUNDLE_SID}",
            "AddressSid=${C_A_ADDRESS_SID}"
        ]
    );
    let d_transfer = plan
        .steps
        .iter()
        .find(|s| {
            s.kind == StepKind::TransferNumber && s.number_sid.as_deref() == Some(&sid("PN", 4))
        })
        .unwrap();
    assert_eq!(
        d_transfer.request.form[1].value.to_string(),
        "${C_A_ADDRESS_SID_2}"
    );
    assert_eq!(
        plan.customers[0].required,
        ["C_A_BUNDLE_SID", "C_A_ADDRESS_SID", "C_A_ADDRESS_SID_2"]
    );
}

#[test]
fn target_status_and_ownership_block_the_move_and_it_gets_no_steps() {
    let suspended = sid("AC", 1);
    let closed = sid("AC", 2);
    let foreign = sid("AC", 3);
    let mut other = account(&foreign, "Elsewhere", "active");
    other.owner_account_sid = Some(sid("AC", 99));
    let mut hosted = number(4);
    hosted.origin = Some("hosted".into());
    let snap = snapshot(
        vec![number(1), number(2), number(3), hosted],
        vec![
            account(&suspended, "S", "suspended"),
            account(&closed, "C", "closed"),
            other,
        ],
    );
    let map = moving(&[
        (1, "S", Some(&suspended)),
        (2, "C", Some(&closed)),
        (3, "E", Some(&foreign)),
        (4, "H", None),
    ]);
    let plan = build(&snap, &map, Default::default(), &HashMap::new());
    assert_eq!(codes(&plan, 1), ["target-suspended"]);
    assert_eq!(codes(&plan, 2), ["target-closed"]);
    assert_eq!(codes(&plan, 3), ["target-not-child"]);
    assert_eq!(codes(&plan, 4), ["hosted-number"]);
    assert!(plan
        .numbers
        .iter()
        .all(|n| n.blocked && n.action == Action::Transfer));
    assert!(
        plan.steps.is_empty(),
        "blocked numbers get no steps: {:?}",
        plan.steps
    );
    assert_eq!(plan.worst(), Some(Severity::Blocker));
    assert_eq!(plan.summary.moving, 0);
}

#[test]
fn a_conflict_stays_with_a_blocker_naming_the_lines() {
    let snap = snapshot(vec![number(1)], vec![]);
    let mut map = ResolvedMapping::default();
    let t = |c: &str, l| Target {
        customer: c.into(),
        account_sid: None,
        messaging_service_sid: None,
        lines: vec![l],
    };
    map.targets.insert(
        sid("PN", 1),
        NumberTarget::Conflict(vec![t("A", 2), t("B", 7)]),
    );
    let plan = build(&snap, &map, Default::default(), &HashMap::new());
    let n = &plan.numbers[0];
    assert_eq!(n.action, Action::Stay);
    assert_eq!(n.target_customer, None);
    assert!(n.blocked);
    assert_eq!(n.mapping_lines, [2, 7]);
    assert_eq!(n.codes(), ["mapping-conflict"]);
    assert!(
        n.findings[0]
            .message
            .contains("\"A\" (line 2), \"B\" (line 7)"),
        "{}",
        n.findings[0].message
    );
    assert!(plan.steps.is_empty());
}

#[test]
fn service_numbers_leave_and_join_a_new_service_and_campaigns_are_named() {
    // Not a US long code: its campaign finding stays a warning (the US case is tested below).
    let mut uk = number(1);
    uk.phone_number = "+447700900001".into();
    let mut au = number(2);
    au.phone_number = "+61400000002".into();
    let mut snap = snapshot(vec![uk, au], vec![]);
    let mg = sid("MG", 1);
    snap.services.push(MessagingService {
        sid: mg.clone(),
        account_sid: Some(PARENT.into()),
        friendly_name: Some("Alerts".into()),
        us_app_to_person_registered: Some(true),
        ..Default::default()
    });
    snap.service_numbers.push(ServicePhoneNumber {
        sid: sid("PN", 1),
        service_sid: mg.clone(),
        phone_number: Some("+14155550001".into()),
        account_sid: Some(PARENT.into()),
    });
    snap.campaigns.push(A2pCampaign {
        sid: sid("QE", 1),
        messaging_service_sid: mg.clone(),
        campaign_status: Some("VERIFIED".into()),
        campaign_id: Some("CX1".into()),
        us_app_to_person_usecase: Some("MIXED".into()),
    });
    let existing = sid("AC", 5);
    snap.accounts.push(account(&existing, "Falcon", "active"));
    let map = moving(&[
        (1, "Falcon", Some(&existing)),
        (2, "Falcon", Some(&existing)),
    ]);
    let plan = build(&snap, &map, Default::default(), &HashMap::new());
    assert_eq!(codes(&plan, 1), ["in-messaging-service", "a2p-campaign"]);
    assert_eq!(codes(&plan, 2), Vec::<&str>::new());
    let kinds: Vec<&str> = plan.steps.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "remove-from-service",
            "transfer-number",
            "transfer-number",
            "create-messaging-service",
            "add-to-service"
        ],
        "an existing subaccount is not created; only the service number joins the new service"
    );
    assert_eq!(plan.steps[1].request.form[0].value.to_string(), existing);
    assert_eq!(
        plan.steps[4].request.url.to_string(),
        "https://messaging.twilio.com/v1/Services/${C_FALCON_SERVICE_SID}/PhoneNumbers"
    );
    assert_eq!(
        plan.steps.iter().map(|s| s.order).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
}

fn lost_row(lost: &mut LostRows, n: u64, user: &str, at: &str, evidence_sid: &str) {
    lost.push(LostOptOut {
        end_user: user,
        twilio_number: &format!("+1415555{:04}", n),
        twilio_number_sid: &sid("PN", n),
        scope: "number",
        messaging_service_sid: "",
        opted_out_at: at,
        keyword: "STOP",
        evidence: "inbound-keyword",
        evidence_message_sid: evidence_sid,
        target_customer: "A",
        target_account_sid: "",
    });
}

#[test]
fn lost_opt_outs_are_counted_and_reseeded_in_chunks_of_25() {
    let snap = snapshot(vec![number(1)], vec![]);
    let map = moving(&[(1, "A", None)]);
    let mut lost = LostRows::default();
    for i in 0..30 {
        lost_row(
            &mut lost,
            1,
            &format!("+1212555{i:04}"),
            "2026-01-02T03:04:05Z",
            &sid("SM", i),
        );
    }
    let plan = build(&snap, &map, Arc::new(lost), &HashMap::new());
    assert_eq!(codes(&plan, 1), ["opt-outs-lost"]);
    assert_eq!(plan.numbers[0].opt_outs_lost, 30);
    let reseeds: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::ReseedOptOuts)
        .collect();
    assert_eq!(reseeds.len(), 1, "one step per customer and sender");
    let part = reseeds[0].reseed.as_ref().unwrap();
    assert_eq!((part.items, part.batches), (30, 2));
    assert_eq!((part.first_line, part.last_line), (None, None));
    assert_eq!(part.reseed_file, "reseed/A.jsonl");
    assert_eq!(reseeds[0].request.auth, Auth::Subaccount);
    assert_eq!(reseeds[0].request.form.len(), 1);
    assert_eq!(plan.customers[0].reseed_estimate_seconds, 2);
    assert_eq!(plan.reseed_files.len(), 1);
    assert_eq!(plan.reseed_files[0].len(), 30);
    let lines = plan.reseed_lines(&plan.reseed_files[0]);
    assert_eq!(lines.len(), 30);
    let item: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(
        item,
        serde_json::json!({"contact_id": "+12125550000", "correlation_id": format!("{:032x}", 0),
            "sender_id": "+14155550001", "status": "opt-out", "source": "opt-out-message",
            "date_of_consent": "2026-01-02T03:04:05Z"})
    );
    assert_eq!(plan.steps[0].kind, StepKind::CreateSubaccount);
}

#[test]
fn recent_traffic_is_info_and_shell_keys_are_safe() {
    let snap = snapshot(vec![number(1)], vec![]);
    let map = moving(&[(1, "A", None)]);
    let mut traffic = HashMap::new();
    let last = Utc.with_ymd_and_hms(2026, 2, 20, 0, 0, 0).unwrap();
    traffic.insert(
        sid("PN", 1),
        Traffic {
            messages: 3,
            last: Some(last),
            total: 3,
            whatsapp: 0,
        },
    );
    let plan = build(&snap, &map, Default::default(), &traffic);
    assert_eq!(codes(&plan, 1), ["recent-traffic"]);
    let recent = plan.numbers[0]
        .findings
        .iter()
        .find(|f| f.code == Code::RecentTraffic)
        .unwrap();
    assert_eq!(recent.severity, Severity::Info);
    assert!(recent.message.starts_with("3 messages in the 30 days"));
    assert_eq!(shell_key("Falcon Flights"), "C_FALCON_FLIGHTS");
    assert_eq!(shell_key("Twilio"), "C_TWILIO");
    assert_eq!(shell_key("  Ärzte & Co. "), "C_RZTE_CO");
    assert_eq!(shell_key("$$"), "C_X");
}

/// One lost row of number 1, for the tests of a single row's renderings.
fn one_lost_row() -> LostRows {
    let mut lost = LostRows::default();
    lost_row(
        &mut lost,
        1,
        "+12125550000",
        "2026-01-02T03:04:05Z",
        "SMabc",
    );
    lost
}

#[test]
fn consent_items_are_rendered_as_serde_json_renders_them() {
    #[derive(serde::Serialize)]
    struct ConsentItem<'a> {
        contact_id: &'a str,
        correlation_id: &'a str,
        sender_id: &'a str,
        status: &'static str,
        source: &'static str,
        date_of_consent: &'a str,
    }
    let lost = one_lost_row();
    let base = lost.get(0);
    let upper = format!("SM{}", "AB12".repeat(8));
    let users = ["+12125550000", "whatsapp:+4915\"1\\2", "ID\u{1}\n\t\u{7f}é"];
    let sids = [
        "SMabc",
        upper.as_str(),
        "ev.csv:3",
        "SÄ1234567890123456789012345678901",
    ];
    for (i, (user, sid)) in users.iter().flat_map(|u| sids.map(|s| (u, s))).enumerate() {
        let mut row = base;
        row.end_user = user;
        row.evidence_message_sid = sid;
        if i % 2 == 1 {
            row.evidence = "error-21610";
        }
        let sender = if i % 3 == 0 {
            "${C_X_SERVICE_SID}"
        } else {
            "+1\"800"
        };
        let mut ours = Vec::new();
        super::steps::write_consent_item(&mut ours, &row, sender);
        let expected = serde_json::to_string(&ConsentItem {
            contact_id: row.end_user,
            correlation_id: &correlation_id(&row),
            sender_id: sender,
            status: "opt-out",
            source: if row.evidence == "inbound-keyword" {
                "opt-out-message"
            } else {
                "others"
            },
            date_of_consent: row.opted_out_at,
        })
        .unwrap();
        assert_eq!(String::from_utf8(ours).unwrap(), expected);
    }
}

#[test]
fn suppression_rows_render_as_the_csv_crate_serializes_them() {
    let awkward = [
        "",
        " a",
        "x,y",
        "say \"no\"",
        "l\nf",
        "c\r",
        "Ärzte & Co.",
        "plain",
    ];
    let mut expected = Vec::new();
    let mut ours = Vec::new();
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(&mut expected);
    for (i, text) in awkward.iter().enumerate() {
        let other = awkward[(i * 3 + 1) % awkward.len()];
        let row = SuppressionRow {
            sender: text,
            end_user: other,
            opted_out_at: "2026-01-02T03:04:05Z",
            scope: "service",
            twilio_number: other,
            target_sender_id: "${C_X_SERVICE_SID}",
            target_sender_name: text,
            correlation_id: format!("{text}{other}"),
            reseeded: "no",
            reason: (*text).into(),
        };
        writer.serialize(&row).unwrap();
        row.push_csv(&mut ours);
    }
    writer.flush().unwrap();
    drop(writer);
    assert_eq!(
        String::from_utf8(ours).unwrap(),
        String::from_utf8(expected).unwrap()
    );
}

#[test]
fn correlation_ids_are_32_hex_characters() {
    let lost = one_lost_row();
    let mut row = lost.get(0);
    assert_eq!(correlation_id(&row).len(), 32);
    let sid = sid("SM", 255);
    row.evidence_message_sid = &sid;
    assert_eq!(correlation_id(&row), format!("{:032x}", 255));
}

#[test]
fn every_transfer_warns_of_webhook_signatures_and_traffic_keeps_its_history() {
    let snap = snapshot(vec![number(1), number(2)], vec![]);
    let map = moving(&[(1, "A", None)]);
    let mut traffic = HashMap::new();
    traffic.insert(
        sid("PN", 1),
        Traffic {
            total: 4,
            whatsapp: 1,
            ..Default::default()
        },
    );
    let plan = build(&snap, &map, Default::default(), &traffic);
    let n1 = plan
        .numbers
        .iter()
        .find(|n| n.number_sid == sid("PN", 1))
        .unwrap();
    assert_eq!(
        n1.codes(),
        ["whatsapp-sender", "webhook-signature", "history-stays"]
    );
    assert!(n1.blocked, "a WhatsApp sender blocks the move");
    let n2 = plan
        .numbers
        .iter()
        .find(|n| n.number_sid == sid("PN", 2))
        .unwrap();
    assert_eq!(n2.codes(), ["unmapped"], "a number that stays gets neither");
}

#[test]
fn a_us_long_code_leaving_a_campaign_is_blocked_unless_the_mapping_names_a_service() {
    let mut snap = snapshot(vec![number(1), number(2)], vec![]);
    let mg = sid("MG", 1);
    snap.services.push(MessagingService {
        sid: mg.clone(),
        account_sid: Some(PARENT.into()),
        friendly_name: Some("Alerts".into()),
        us_app_to_person_registered: Some(true),
        inbound_request_url: Some("https://hooks.example.com/in".into()),
        ..Default::default()
    });
    for n in [1, 2] {
        snap.service_numbers.push(ServicePhoneNumber {
            sid: sid("PN", n),
            service_sid: mg.clone(),
            phone_number: Some(format!("+1415555{n:04}")),
            account_sid: Some(PARENT.into()),
        });
    }
    let mut map = moving(&[(1, "A", None), (2, "A", None)]);
    let named = sid("MG", 9);
    if let Some(NumberTarget::Move(t)) = map.targets.get_mut(&sid("PN", 2)) {
        t.messaging_service_sid = Some(named.clone());
    }
    let plan = build(&snap, &map, Default::default(), &HashMap::new());
    let n1 = plan
        .numbers
        .iter()
        .find(|n| n.number_sid == sid("PN", 1))
        .unwrap();
    let a2p = n1
        .findings
        .iter()
        .find(|f| f.code == Code::A2pCampaign)
        .unwrap();
    assert_eq!(a2p.severity, Severity::Blocker);
    assert!(
        a2p.message.contains("messaging_service_sid"),
        "{}",
        a2p.message
    );
    assert!(n1.blocked);
    let n2 = plan
        .numbers
        .iter()
        .find(|n| n.number_sid == sid("PN", 2))
        .unwrap();
    let a2p = n2
        .findings
        .iter()
        .find(|f| f.code == Code::A2pCampaign)
        .unwrap();
    assert_eq!(a2p.severity, Severity::Warning);
    assert!(!n2.blocked);
    // The named service: the number joins it, nothing is created or copied.
    let kinds: Vec<(&str, Option<ServiceSidSource>)> = plan
        .steps
        .iter()
        .map(|s| (s.kind.as_str(), s.service_sid_source))
        .collect();
    assert_eq!(
        kinds,
        [
            ("create-subaccount", None),
            ("remove-from-service", None),
            ("transfer-number", None),
            ("add-to-service", Some(ServiceSidSource::Named))
        ]
    );
    assert_eq!(
        plan.steps[3].request.url.to_string(),
        format!("https://messaging.twilio.com/v1/Services/{named}/PhoneNumbers")
    );
}

#[test]
fn identity_and_parent_hosted_handlers_are_named() {
    let mut a = number(1);
    a.identity_sid = Some(sid("RI", 1));
    a.sms_url = Some("https://my-app-1234.twil.io/sms".into());
    a.voice_url = Some(format!(
        "https://webhooks.twilio.com/v1/Accounts/{PARENT}/Flows/FW1"
    ));
    let snap = snapshot(vec![a], vec![]);
    let plan = build(
        &snap,
        &moving(&[(1, "A", None)]),
        Default::default(),
        &HashMap::new(),
    );
    assert_eq!(
        codes(&plan, 1),
        ["parent-hosted-handler", "identity-required"]
    );
    let transfer = plan
        .steps
        .iter()
        .find(|s| s.kind == StepKind::TransferNumber)
        .unwrap();
    assert_eq!(transfer.request.form[1].name, "IdentitySid");
    assert_eq!(
        transfer.request.form[1].value.to_string(),
        "${C_A_IDENTITY_SID}"
    );
    assert_eq!(plan.customers[0].required, ["C_A_IDENTITY_SID"]);
}

#[test]
fn parent_services_with_different_settings_give_one_named_service_each() {
    let mut snap = snapshot(vec![number(1), number(2)], vec![]);
    for (n, name, url) in [
        (1, "Alerts", "https://a.example.com"),
        (2, "Reminders", "https://b.example.com"),
    ] {
        snap.services.push(MessagingService {
            sid: sid("MG", n),
            account_sid: Some(PARENT.into()),
            friendly_name: Some(name.into()),
            inbound_request_url: Some(url.into()),
            sticky_sender: Some(true),
            ..Default::default()
        });
        snap.service_numbers.push(ServicePhoneNumber {
            sid: sid("PN", n),
            service_sid: sid("MG", n),
            phone_number: None,
            account_sid: Some(PARENT.into()),
        });
    }
    let customer = "A customer whose name is long enough to need shortening, surely";
    let plan = build(
        &snap,
        &moving(&[(1, customer, None), (2, customer, None)]),
        Default::default(),
        &HashMap::new(),
    );
    assert!(codes(&plan, 1).contains(&"service-settings-differ"));
    let creates: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::CreateMessagingService)
        .collect();
    assert_eq!(creates.len(), 2);
    let names: Vec<String> = creates
        .iter()
        .map(|s| s.request.form[0].value.to_string())
        .collect();
    assert!(names.iter().all(|n| n.chars().count() <= 64), "{names:?}");
    assert!(
        names[0].ends_with(" (Alerts)") && names[1].ends_with(" (Reminders)"),
        "{names:?}"
    );
    assert_eq!(
        creates[0].source_service_sid.as_deref(),
        Some(sid("MG", 1).as_str())
    );
    assert_eq!(
        creates[0].captures[0].variable,
        "C_A_CUSTOMER_WHOSE_NAME_IS_LONG_ENOUGH_TO_NEED_SHORTENING_SURELY_SERVICE_1_SID"
    );
    let form: Vec<(&str, String)> = creates[1]
        .request
        .form
        .iter()
        .map(|f| (f.name, f.value.to_string()))
        .collect();
    assert_eq!(
        form[1..],
        [
            ("InboundRequestUrl", "https://b.example.com".to_string()),
            ("StickySender", "true".to_string())
        ]
    );
}
