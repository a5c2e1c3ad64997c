//! `twilio-sim` as the twin of Twilio for writes: one test per rule the migration relies on
//! (docs/twin.md), each through HTTP as a client would see it.

use std::path::{Path, PathBuf};
use std::process::Child;

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::support::*;

const TOKEN: &str = "twin-parent-token-51c2";
const SUB: &str = "AC000000000000000000000000000000c3";
const SUSPENDED: &str = "AC000000000000000000000000000000d4";
const STRANGER: &str = "AC000000000000000000000000000000e5";
const MG_A: &str = "MG000000000000000000000000000000a1";
const MG_QUIET: &str = "MG000000000000000000000000000000b2";

/// A running twin, killed on drop.
struct Twin {
    child: Child,
    url: String,
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Drop for Twin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Credentials for a request: the parent's, or an account's own (sid, token).
#[derive(Clone)]
enum Auth {
    Parent,
    Account(String, String),
    None,
}

impl Twin {
    fn start(snapshot: &Path, extra: &[&str]) -> Twin {
        Twin::start_as(snapshot, PARENT, extra)
    }

    /// A twin of a snapshot whose parent is not the test snapshots' `PARENT`.
    fn start_as(snapshot: &Path, parent: &str, extra: &[&str]) -> Twin {
        let (child, url) = spawn_twilio_sim(snapshot, parent, TOKEN, extra);
        Twin {
            child,
            url,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: reqwest::Client::new(),
        }
    }

    /// One request; the HTTP status and the JSON body (null when empty).
    fn call(&self, method: &str, path: &str, auth: &Auth, form: &[(&str, &str)]) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let mut request = self.client.request(method.parse().unwrap(), url).form(form);
        request = match auth {
            Auth::Parent => request.basic_auth(PARENT, Some(TOKEN)),
            Auth::Account(sid, token) => request.basic_auth(sid, Some(token)),
            Auth::None => request,
        };
        self.runtime.block_on(async {
            let response = request.send().await.expect("the twin answers");
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let body = if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
            };
            (status, body)
        })
    }

    fn get(&self, path: &str, auth: &Auth) -> Value {
        let (status, body) = self.call("GET", path, auth, &[]);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    fn post(&self, path: &str, auth: &Auth, form: &[(&str, &str)]) -> (u16, Value) {
        self.call("POST", path, auth, form)
    }

    /// Creates a subaccount; its sid and its own credentials.
    fn create_subaccount(&self, name: &str) -> (String, Auth) {
        let (status, body) = self.post(
            "/2010-04-01/Accounts.json",
            &Auth::Parent,
            &[("FriendlyName", name)],
        );
        assert_eq!(status, 201, "{body}");
        let sid = body["sid"].as_str().unwrap().to_string();
        let token = body["auth_token"].as_str().unwrap().to_string();
        (sid.clone(), Auth::Account(sid, token))
    }

    fn transfer(&self, owner: &str, pn: &str, form: &[(&str, &str)]) -> (u16, Value) {
        self.post(
            &format!("/2010-04-01/Accounts/{owner}/IncomingPhoneNumbers/{pn}.json"),
            &Auth::Parent,
            form,
        )
    }

    fn inbound(&self, from: &str, to: &str, body: &str) -> Value {
        let (status, answer) = self.post(
            "/__twin/inbound",
            &Auth::None,
            &[("From", from), ("To", to), ("Body", body)],
        );
        assert_eq!(status, 200, "{answer}");
        answer
    }

    /// The phone numbers an account lists.
    fn numbers_of(&self, account: &str) -> Vec<String> {
        let body = self.get(
            &format!("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json?PageSize=1000"),
            &Auth::Parent,
        );
        body["incoming_phone_numbers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["phone_number"].as_str().unwrap().to_string())
            .collect()
    }
}

fn code(body: &Value) -> i64 {
    body["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

/// The parent with two services (one without an inbound URL), a subaccount, a suspended
/// subaccount, and numbers carrying each transfer risk; STOPs in the history on a number and
/// on a service.
fn world(dir: &Path) -> PathBuf {
    let mut b = SnapshotBuilder::default();
    b.accounts
        .push(account(SUB, "Falcon Flights", "active", Some(PARENT)));
    b.accounts.push(account(
        SUSPENDED,
        "Old Customer",
        "suspended",
        Some(PARENT),
    ));
    let mut plain = number(&sid("PN", 1), "+14155550101");
    plain["sms_url"] = json!("https://hooks.example.com/sms/plain");
    b.numbers.push(plain);
    b.numbers.push(number(&sid("PN", 2), "+14155550102"));
    let mut bundled = number(&sid("PN", 3), "+14155550103");
    bundled["bundle_sid"] = json!(sid("BU", 1));
    b.numbers.push(bundled);
    let mut addressed = number(&sid("PN", 4), "+14155550104");
    addressed["address_requirements"] = json!("local");
    b.numbers.push(addressed);
    let mut hosted = number(&sid("PN", 5), "+14155550105");
    hosted["origin"] = json!("hosted");
    b.numbers.push(hosted);
    b.numbers.push(number(&sid("PN", 6), "+14155550106"));
    let mut identity = number(&sid("PN", 7), "+14155550107");
    identity["identity_sid"] = json!(sid("RI", 1));
    b.numbers.push(identity);
    let mut quiet_own_hook = number(&sid("PN", 8), "+14155550108");
    quiet_own_hook["sms_url"] = json!("https://hooks.example.com/sms/own");
    b.numbers.push(quiet_own_hook);
    b.numbers.push(number(&sid("PN", 9), "+18005550109"));
    let mut svc = service(MG_A, "Alerts");
    svc["inbound_request_url"] = json!("https://hooks.example.com/alerts");
    svc["inbound_method"] = json!("POST");
    b.services.push(svc);
    let mut quiet = service(MG_QUIET, "Quiet");
    quiet["inbound_request_url"] = json!(null);
    b.services.push(quiet);
    b.service_numbers
        .push(service_number(MG_A, &sid("PN", 2), "+14155550102"));
    b.service_numbers
        .push(service_number(MG_QUIET, &sid("PN", 8), "+14155550108"));
    // History: a STOP on the plain number, a STOP to the service, a STOP then START.
    b.messages.push(
        Msg {
            sid: &sid("SM", 1),
            direction: "inbound",
            from: "+15550000001",
            to: "+14155550101",
            body: Some("stop"),
            date_sent: &jan(5, 10, 0, 0),
            ..Msg::default()
        }
        .json(),
    );
    b.messages.push(
        Msg {
            sid: &sid("SM", 2),
            direction: "inbound",
            from: "+15550000002",
            to: "+14155550102",
            body: Some("STOP"),
            date_sent: &jan(6, 10, 0, 0),
            service: Some(MG_A),
            ..Msg::default()
        }
        .json(),
    );
    b.messages.push(
        Msg {
            sid: &sid("SM", 3),
            direction: "inbound",
            from: "+15550000003",
            to: "+14155550101",
            body: Some("STOP"),
            date_sent: &jan(7, 10, 0, 0),
            ..Msg::default()
        }
        .json(),
    );
    b.messages.push(
        Msg {
            sid: &sid("SM", 4),
            direction: "inbound",
            from: "+15550000003",
            to: "+14155550101",
            body: Some("START"),
            date_sent: &jan(8, 10, 0, 0),
            ..Msg::default()
        }
        .json(),
    );
    // A STOP to the toll-free number.
    b.messages.push(
        Msg {
            sid: &sid("SM", 6),
            direction: "inbound",
            from: "+15550000006",
            to: "+18005550109",
            body: Some("STOP"),
            date_sent: &jan(10, 10, 0, 0),
            ..Msg::default()
        }
        .json(),
    );
    // A WhatsApp sender on number 6.
    b.messages.push(
        Msg {
            sid: &sid("SM", 5),
            direction: "outbound-api",
            from: "whatsapp:+14155550106",
            to: "whatsapp:+15550000009",
            body: Some("hi"),
            date_sent: &jan(9, 10, 0, 0),
            ..Msg::default()
        }
        .json(),
    );
    b.write(&dir.join("snap"))
}

fn setup(extra: &[&str]) -> (TempDir, Twin) {
    let dir = TempDir::new().unwrap();
    let snapshot = world(dir.path());
    let twin = Twin::start(&snapshot, extra);
    (dir, twin)
}

#[test]
fn a_created_subaccount_is_listed_and_its_own_credentials_reach_only_it() {
    let (_dir, twin) = setup(&[]);
    let (sub, sub_auth) = twin.create_subaccount("Heron Health");
    let listed = twin.get("/2010-04-01/Accounts.json", &Auth::Parent);
    let sids: Vec<&str> = listed["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["sid"].as_str().unwrap())
        .collect();
    assert!(sids.contains(&sub.as_str()), "{sids:?}");
    let own = twin.get(&format!("/2010-04-01/Accounts/{sub}.json"), &sub_auth);
    assert_eq!(own["owner_account_sid"], PARENT);
    assert_eq!(own["status"], "active");
    // The subaccount's token does not reach the parent nor create subaccounts.
    let (status, _) = twin.call(
        "GET",
        &format!("/2010-04-01/Accounts/{PARENT}/IncomingPhoneNumbers.json"),
        &sub_auth,
        &[],
    );
    assert_eq!(status, 401);
    let (status, _) = twin.post(
        "/2010-04-01/Accounts.json",
        &sub_auth,
        &[("FriendlyName", "x")],
    );
    assert_eq!(status, 403);
}

#[test]
fn a_transfer_moves_the_number_between_the_accounts_lists() {
    let (_dir, twin) = setup(&[]);
    let pn = sid("PN", 1);
    let (status, body) = twin.transfer(PARENT, &pn, &[("AccountSid", SUB)]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["account_sid"], SUB);
    assert!(twin.numbers_of(SUB).contains(&"+14155550101".to_string()));
    assert!(!twin
        .numbers_of(PARENT)
        .contains(&"+14155550101".to_string()));
    // The old path is gone: a blind retry of the same write is a 404, not a second move.
    let (status, _) = twin.transfer(PARENT, &pn, &[("AccountSid", SUB)]);
    assert_eq!(status, 404);
}

#[test]
fn only_the_parent_moves_numbers_and_only_to_an_active_child() {
    let (_dir, twin) = setup(&[]);
    let (sub, sub_auth) = twin.create_subaccount("Heron Health");
    let pn = sid("PN", 1);
    // A subaccount suspended by the parent stops taking numbers; reactivated, it takes them.
    let path = format!("/2010-04-01/Accounts/{sub}.json");
    assert_eq!(
        twin.post(&path, &sub_auth, &[("Status", "suspended")]).0,
        403
    );
    let (status, body) = twin.post(&path, &Auth::Parent, &[("Status", "suspended")]);
    assert_eq!((status, body["status"].as_str()), (200, Some("suspended")));
    assert_eq!(
        code(&twin.transfer(PARENT, &pn, &[("AccountSid", &sub)]).1),
        21472
    );
    assert_eq!(
        twin.post(&path, &Auth::Parent, &[("Status", "active")]).0,
        200
    );
    assert_eq!(
        code(&twin.transfer(PARENT, &pn, &[("AccountSid", STRANGER)]).1),
        21473
    );
    assert_eq!(
        code(&twin.transfer(PARENT, &pn, &[("AccountSid", SUSPENDED)]).1),
        21472
    );
    // Move it to the new subaccount, then try to move it on with the subaccount's credentials.
    assert_eq!(twin.transfer(PARENT, &pn, &[("AccountSid", &sub)]).0, 200);
    let (status, body) = twin.post(
        &format!("/2010-04-01/Accounts/{sub}/IncomingPhoneNumbers/{pn}.json"),
        &sub_auth,
        &[("AccountSid", SUB)],
    );
    assert_eq!((status, code(&body)), (400, 21474), "{body}");
}

#[test]
fn numbers_with_a_bundle_address_or_identity_need_the_gaining_accounts() {
    let (_dir, twin) = setup(&[]);
    let (pn3, pn4, pn7) = (sid("PN", 3), sid("PN", 4), sid("PN", 7));
    assert_eq!(
        code(&twin.transfer(PARENT, &pn3, &[("AccountSid", SUB)]).1),
        21649
    );
    assert_eq!(
        code(&twin.transfer(PARENT, &pn4, &[("AccountSid", SUB)]).1),
        21613
    );
    assert_eq!(twin.transfer(PARENT, &pn7, &[("AccountSid", SUB)]).0, 400);
    let bundle = sid("BU", 9);
    let (status, body) =
        twin.transfer(PARENT, &pn3, &[("AccountSid", SUB), ("BundleSid", &bundle)]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["bundle_sid"], bundle.as_str());
    let address = sid("AD", 9);
    assert_eq!(
        twin.transfer(
            PARENT,
            &pn4,
            &[("AccountSid", SUB), ("AddressSid", &address)]
        )
        .0,
        200
    );
    let identity = sid("RI", 9);
    assert_eq!(
        twin.transfer(
            PARENT,
            &pn7,
            &[("AccountSid", SUB), ("IdentitySid", &identity)]
        )
        .0,
        200
    );
}

#[test]
fn hosted_numbers_whatsapp_senders_and_service_members_do_not_move() {
    let (_dir, twin) = setup(&[]);
    assert_eq!(
        code(
            &twin
                .transfer(PARENT, &sid("PN", 5), &[("AccountSid", SUB)])
                .1
        ),
        22121
    );
    let (status, body) = twin.transfer(PARENT, &sid("PN", 6), &[("AccountSid", SUB)]);
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("WhatsApp"),
        "{body}"
    );
    // In a service: refused until it leaves the service.
    let pn2 = sid("PN", 2);
    let (status, body) = twin.transfer(PARENT, &pn2, &[("AccountSid", SUB)]);
    assert_eq!(status, 400, "{body}");
    let (status, _) = twin.call(
        "DELETE",
        &format!("/v1/Services/{MG_A}/PhoneNumbers/{pn2}"),
        &Auth::Parent,
        &[],
    );
    assert_eq!(status, 204);
    assert_eq!(twin.transfer(PARENT, &pn2, &[("AccountSid", SUB)]).0, 200);
    assert!(twin.numbers_of(PARENT).iter().all(|p| p != "+14155550102"));
}

#[test]
fn a_service_is_created_with_every_setting_updated_and_given_numbers() {
    let (_dir, twin) = setup(&[]);
    let (sub, sub_auth) = twin.create_subaccount("Heron Health");
    let (status, created) = twin.post(
        "/v1/Services",
        &sub_auth,
        &[
            ("FriendlyName", "Heron alerts"),
            ("InboundRequestUrl", "https://hooks.example.com/heron"),
            ("InboundMethod", "GET"),
            ("FallbackUrl", "https://hooks.example.com/fallback"),
            ("FallbackMethod", "POST"),
            ("StatusCallback", "https://hooks.example.com/status"),
            ("StickySender", "false"),
            ("AreaCodeGeomatch", "false"),
            ("SmartEncoding", "false"),
            ("MmsConverter", "false"),
            ("ValidityPeriod", "600"),
            ("Usecase", "notifications"),
            ("UseInboundWebhookOnNumber", "true"),
        ],
    );
    assert_eq!(status, 201, "{created}");
    let mg = created["sid"].as_str().unwrap().to_string();
    assert_eq!(created["account_sid"], sub.as_str());
    assert_eq!(created["inbound_method"], "GET");
    assert_eq!(created["sticky_sender"], false);
    assert_eq!(created["validity_period"], 600);
    assert_eq!(created["use_inbound_webhook_on_number"], true);
    // Bad values are refused with the field named; FriendlyName is required.
    let (status, body) = twin.post(
        "/v1/Services",
        &sub_auth,
        &[("FriendlyName", "x"), ("ValidityPeriod", "0")],
    );
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("ValidityPeriod"));
    assert_eq!(twin.post("/v1/Services", &sub_auth, &[]).0, 400);
    // Update.
    let (status, updated) = twin.post(
        &format!("/v1/Services/{mg}"),
        &sub_auth,
        &[("UseInboundWebhookOnNumber", "false")],
    );
    assert_eq!(status, 200);
    assert_eq!(updated["use_inbound_webhook_on_number"], false);
    assert_eq!(
        updated["inbound_request_url"],
        "https://hooks.example.com/heron"
    );
    // The subaccount lists its own service only; the parent does not see it in its list.
    let listed = twin.get("/v1/Services", &sub_auth);
    assert_eq!(listed["services"].as_array().unwrap().len(), 1);
    let parent_list = twin.get("/v1/Services", &Auth::Parent);
    assert!(parent_list["services"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["sid"] != mg.as_str()));
    // A number of another account cannot join; a number in another service: 21712.
    let pn1 = sid("PN", 1);
    let (status, _) = twin.post(
        &format!("/v1/Services/{mg}/PhoneNumbers"),
        &sub_auth,
        &[("PhoneNumberSid", &pn1)],
    );
    assert_eq!(status, 400);
    assert_eq!(twin.transfer(PARENT, &pn1, &[("AccountSid", &sub)]).0, 200);
    let (status, member) = twin.post(
        &format!("/v1/Services/{mg}/PhoneNumbers"),
        &sub_auth,
        &[("PhoneNumberSid", &pn1)],
    );
    assert_eq!(status, 201, "{member}");
    assert_eq!(member["service_sid"], mg.as_str());
    let (status, _) = twin.post(
        &format!("/v1/Services/{mg}/PhoneNumbers"),
        &sub_auth,
        &[("PhoneNumberSid", &pn1)],
    );
    assert_eq!(status, 400);
    let pn2 = sid("PN", 2);
    let (status, body) = twin.post(
        &format!("/v1/Services/{MG_A}/PhoneNumbers"),
        &Auth::Parent,
        &[("PhoneNumberSid", &pn2)],
    );
    assert_eq!((status, code(&body)), (400, 21712));
    let members = twin.get(&format!("/v1/Services/{mg}/PhoneNumbers"), &sub_auth);
    assert_eq!(members["phone_numbers"][0]["phone_number"], "+14155550101");
    // Removing it: 204, then 404.
    let path = format!("/v1/Services/{mg}/PhoneNumbers/{pn1}");
    assert_eq!(twin.call("DELETE", &path, &sub_auth, &[]).0, 204);
    assert_eq!(twin.call("DELETE", &path, &sub_auth, &[]).0, 404);
}

#[test]
fn the_snapshots_opt_outs_block_sends_from_a_number_and_through_a_service() {
    let (_dir, twin) = setup(&[]);
    let messages = format!("/2010-04-01/Accounts/{PARENT}/Messages.json");
    // A STOP to the plain number: refused from the number, 400 and 21610, no record.
    let (status, body) = twin.post(
        &messages,
        &Auth::Parent,
        &[
            ("From", "+14155550101"),
            ("To", "+15550000001"),
            ("Body", "hi"),
        ],
    );
    assert_eq!((status, code(&body)), (400, 21610));
    // STOP then START: opted back in.
    let (status, body) = twin.post(
        &messages,
        &Auth::Parent,
        &[
            ("From", "+14155550101"),
            ("To", "+15550000003"),
            ("Body", "hi"),
        ],
    );
    assert_eq!(status, 201, "{body}");
    // A STOP to the service: through the service accepted, and the message failed with 21610.
    let (status, body) = twin.post(
        &messages,
        &Auth::Parent,
        &[
            ("MessagingServiceSid", MG_A),
            ("To", "+15550000002"),
            ("Body", "hi"),
        ],
    );
    assert_eq!(status, 201);
    assert_eq!(body["status"], "failed");
    assert_eq!(body["error_code"], 21610);
    let listed = twin.get(&format!("{messages}?To=%2B15550000002"), &Auth::Parent);
    assert_eq!(listed["messages"][0]["sid"], body["sid"]);
    // The service's opt-out also holds from its number directly.
    let (status, _) = twin.post(
        &messages,
        &Auth::Parent,
        &[
            ("From", "+14155550102"),
            ("To", "+15550000002"),
            ("Body", "hi"),
        ],
    );
    assert_eq!(status, 400);
}

#[test]
fn opt_outs_stay_with_the_account_and_consents_bulk_reseeds_them() {
    let (_dir, twin) = setup(&[]);
    let (sub, sub_auth) = twin.create_subaccount("Heron Health");
    assert_eq!(
        twin.transfer(PARENT, &sid("PN", 1), &[("AccountSid", &sub)])
            .0,
        200
    );
    let messages = format!("/2010-04-01/Accounts/{sub}/Messages.json");
    let send = || {
        twin.post(
            &messages,
            &sub_auth,
            &[
                ("From", "+14155550101"),
                ("To", "+15550000001"),
                ("Body", "hi"),
            ],
        )
    };
    // The STOP stayed in the parent: the subaccount may send (the loss the audit reports).
    assert_eq!(send().0, 201);
    let item = |contact: &str, sender: &str| {
        json!({"contact_id": contact, "correlation_id": "0123456789abcdef0123456789abcdef",
               "sender_id": sender, "status": "opt-out", "source": "opt-out-message",
               "date_of_consent": "2026-01-05T10:00:00Z"})
    };
    let items = json!([
        item("+15550000001", "+14155550101"),
        item("15550000001", "+14155550101"),
        item("+15550000001", "+14155550199")
    ]);
    let (status, body) = twin.post(
        "/v1/Consents/Bulk",
        &sub_auth,
        &[("Items", &items.to_string())],
    );
    assert_eq!(status, 201, "{body}");
    let codes: Vec<i64> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["error_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes[0], 0);
    assert_ne!(
        codes[1], 0,
        "a contact_id that is not E.164 is an item error"
    );
    assert_ne!(
        codes[2], 0,
        "a sender that is not the account's is an item error"
    );
    assert_eq!(code(&send().1), 21610);
    // More than 25 items: refused whole.
    let many = Value::Array(
        (0..26)
            .map(|_| item("+15550000001", "+14155550101"))
            .collect(),
    );
    assert_eq!(
        twin.post(
            "/v1/Consents/Bulk",
            &sub_auth,
            &[("Items", &many.to_string())]
        )
        .0,
        400
    );
}

#[test]
fn a_toll_free_opt_out_follows_the_number_into_the_subaccount() {
    let (_dir, twin) = setup(&[]);
    let (sub, sub_auth) = twin.create_subaccount("Heron Health");
    assert_eq!(
        twin.transfer(PARENT, &sid("PN", 9), &[("AccountSid", &sub)])
            .0,
        200
    );
    let messages = format!("/2010-04-01/Accounts/{sub}/Messages.json");
    let send = |to: &str| {
        twin.post(
            &messages,
            &sub_auth,
            &[("From", "+18005550109"), ("To", to), ("Body", "hi")],
        )
    };
    // The carrier network keeps blocking: Twilio's list stayed in the parent, the block did not.
    assert_eq!(code(&send("+15550000006").1), 21610);
    assert_eq!(send("+15550000001").0, 201);
    // START to the number lifts it.
    assert_eq!(
        twin.inbound("+15550000006", "+18005550109", "START")["opt_state"],
        "opt-in"
    );
    assert_eq!(send("+15550000006").0, 201);
}

#[test]
fn consents_bulk_takes_100_requests_a_minute_per_account() {
    let (_dir, twin) = setup(&[]);
    let items = json!([{"contact_id": "+15550000001", "correlation_id": "0123456789abcdef0123456789abcdef",
                        "sender_id": "+14155550101", "status": "opt-out", "source": "opt-out-message"}]);
    let items = items.to_string();
    for n in 0..100 {
        let (status, body) = twin.post("/v1/Consents/Bulk", &Auth::Parent, &[("Items", &items)]);
        assert_eq!(status, 201, "request {n}: {body}");
    }
    let (status, body) = twin.post("/v1/Consents/Bulk", &Auth::Parent, &[("Items", &items)]);
    assert_eq!((status, code(&body)), (429, 20429));
}

#[test]
fn inbound_keywords_change_the_state_in_twilios_scopes() {
    let (_dir, twin) = setup(&[]);
    let messages = format!("/2010-04-01/Accounts/{PARENT}/Messages.json");
    // A STOP to a number in a service opts out of the whole service.
    let answer = twin.inbound("+15550000077", "+14155550102", " Stop ");
    assert_eq!(answer["opt_state"], "opt-out");
    assert_eq!(answer["messaging_service_sid"], MG_A);
    let (status, body) = twin.post(
        &messages,
        &Auth::Parent,
        &[
            ("MessagingServiceSid", MG_A),
            ("To", "+15550000077"),
            ("Body", "hi"),
        ],
    );
    assert_eq!((status, body["error_code"].as_i64()), (201, Some(21610)));
    // Not a keyword: no change.
    assert_eq!(
        twin.inbound("+15550000077", "+14155550102", "stop please")["opt_state"],
        "opt-out"
    );
    // START opts back in.
    assert_eq!(
        twin.inbound("+15550000077", "+14155550102", "start")["opt_state"],
        "opt-in"
    );
    let (_, body) = twin.post(
        &messages,
        &Auth::Parent,
        &[
            ("MessagingServiceSid", MG_A),
            ("To", "+15550000077"),
            ("Body", "hi"),
        ],
    );
    assert_eq!(body["error_code"], Value::Null);
    // A STOP to a number outside any service: only that pair.
    twin.inbound("+15550000078", "+14155550101", "UNSUBSCRIBE");
    let from = |n: &str| {
        twin.post(
            &messages,
            &Auth::Parent,
            &[("From", n), ("To", "+15550000078"), ("Body", "hi")],
        )
        .0
    };
    assert_eq!(from("+14155550101"), 400);
    assert_eq!(from("+14155550103"), 201);
}

#[test]
fn inbound_texts_are_routed_or_dropped_as_the_service_says() {
    let (_dir, twin) = setup(&[]);
    // In a service with an inbound URL: the service's URL.
    let a = twin.inbound("+15550000088", "+14155550102", "hello");
    assert_eq!(
        (a["routed_to"].as_str(), a["dropped"].as_bool()),
        (Some("https://hooks.example.com/alerts"), Some(false))
    );
    // Outside any service: the number's sms_url.
    let b = twin.inbound("+15550000088", "+14155550101", "hello");
    assert_eq!(b["routed_to"], "https://hooks.example.com/sms/plain");
    // In a service with no inbound URL: dropped, counted, not logged.
    let c = twin.inbound("+15550000088", "+14155550108", "hello");
    assert_eq!(
        (c["routed_to"].clone(), c["dropped"].as_bool()),
        (Value::Null, Some(true))
    );
    // ... unless the service uses the number's own webhook.
    let (status, _) = twin.post(
        &format!("/v1/Services/{MG_QUIET}"),
        &Auth::Parent,
        &[("UseInboundWebhookOnNumber", "true")],
    );
    assert_eq!(status, 200);
    let d = twin.inbound("+15550000088", "+14155550108", "hello");
    assert_eq!(d["routed_to"], "https://hooks.example.com/sms/own");
    let log = twin.get("/__twin/inbound", &Auth::None);
    assert_eq!(log["dropped"], 1);
    let urls: Vec<&str> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        [
            "https://hooks.example.com/alerts",
            "https://hooks.example.com/sms/plain",
            "https://hooks.example.com/sms/own"
        ]
    );
    let listed = twin.get(
        &format!("/2010-04-01/Accounts/{PARENT}/Messages.json?From=%2B15550000088"),
        &Auth::Parent,
    );
    assert_eq!(
        listed["messages"].as_array().unwrap().len(),
        3,
        "the dropped one is not logged"
    );
}

#[test]
fn a_write_can_take_effect_and_still_answer_500() {
    let (_dir, twin) = setup(&["--fault-write-5xx-after-effect", "1.0"]);
    let (status, _) = twin.post(
        "/2010-04-01/Accounts.json",
        &Auth::Parent,
        &[("FriendlyName", "Heron Health")],
    );
    assert_eq!(status, 500);
    let listed = twin.get(
        "/2010-04-01/Accounts.json?FriendlyName=Heron%20Health",
        &Auth::Parent,
    );
    assert_eq!(
        listed["accounts"].as_array().unwrap().len(),
        1,
        "the write happened"
    );
}

#[test]
fn a_write_can_take_effect_and_lose_its_answer() {
    let (_dir, twin) = setup(&["--fault-write-drop-after-effect", "1.0"]);
    let request = twin
        .client
        .post(format!("{}/2010-04-01/Accounts.json", twin.url))
        .basic_auth(PARENT, Some(TOKEN))
        .form(&[("FriendlyName", "Heron Health")]);
    let answer = twin.runtime.block_on(request.send());
    assert!(
        answer.is_err(),
        "the connection closed unanswered: {answer:?}"
    );
    // Reads are answered; the write happened.
    let listed = twin.get(
        "/2010-04-01/Accounts.json?FriendlyName=Heron%20Health",
        &Auth::Parent,
    );
    assert_eq!(listed["accounts"].as_array().unwrap().len(), 1);
}

impl Twin {
    /// A POST whose answer may never come: `None` when the connection closed unanswered or
    /// nothing came within `wait` (a held write).
    fn post_unanswered(&self, path: &str, form: &[(&str, &str)], wait: u64) -> Option<u16> {
        let request = self
            .client
            .post(format!("{}{path}", self.url))
            .basic_auth(PARENT, Some(TOKEN))
            .timeout(std::time::Duration::from_millis(wait))
            .form(form);
        self.runtime
            .block_on(async { request.send().await })
            .ok()
            .map(|r| r.status().as_u16())
    }

    fn accounts_named(&self, name: &str) -> usize {
        let listed = self.get(
            &format!(
                "/2010-04-01/Accounts.json?FriendlyName={}",
                name.replace(' ', "%20")
            ),
            &Auth::Parent,
        );
        listed["accounts"].as_array().unwrap().len()
    }

    /// `GET /__twin/writes`: (kind, took_effect, answer) of each write served.
    fn writes(&self) -> Vec<(String, bool, String)> {
        self.get("/__twin/writes", &Auth::None)["writes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["kind"].as_str().unwrap().to_string(),
                    w["took_effect"].as_bool().unwrap(),
                    w["answer"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// `--fault-write-first-attempt`: each distinct write meets the fault the first time only;
/// the same request sent again is served (and, sent blindly, does the work twice).
#[test]
fn every_write_meets_the_first_attempt_fault_once() {
    let heron = [("FriendlyName", "Heron Health")];
    let (_dir, twin) = setup(&["--fault-write-first-attempt", "drop-after-effect"]);
    assert_eq!(
        twin.post_unanswered("/2010-04-01/Accounts.json", &heron, 30_000),
        None
    );
    assert_eq!(twin.accounts_named("Heron Health"), 1, "it took effect");
    let (status, _) = twin.post("/2010-04-01/Accounts.json", &Auth::Parent, &heron);
    assert_eq!(status, 201, "the second attempt is answered");
    assert_eq!(
        twin.accounts_named("Heron Health"),
        2,
        "a blind resend acts again"
    );
    let other = [("FriendlyName", "Ibis Insurance")];
    assert_eq!(
        twin.post_unanswered("/2010-04-01/Accounts.json", &other, 30_000),
        None
    );
    let created = ("create-account".to_string(), true);
    assert_eq!(
        twin.writes(),
        vec![
            (created.0.clone(), created.1, "dropped".to_string()),
            (created.0.clone(), created.1, "answered".to_string()),
            (created.0.clone(), created.1, "dropped".to_string()),
        ]
    );

    let (_dir, twin) = setup(&["--fault-write-first-attempt", "drop-before-effect"]);
    assert_eq!(
        twin.post_unanswered("/2010-04-01/Accounts.json", &heron, 30_000),
        None
    );
    assert_eq!(twin.accounts_named("Heron Health"), 0, "it did not happen");
    assert_eq!(
        twin.post("/2010-04-01/Accounts.json", &Auth::Parent, &heron)
            .0,
        201
    );
    assert_eq!(twin.accounts_named("Heron Health"), 1);

    let (_dir, twin) = setup(&["--fault-write-first-attempt", "5xx-after-effect"]);
    assert_eq!(
        twin.post("/2010-04-01/Accounts.json", &Auth::Parent, &heron)
            .0,
        500
    );
    assert_eq!(twin.accounts_named("Heron Health"), 1, "it took effect");
    assert_eq!(
        twin.post("/2010-04-01/Accounts.json", &Auth::Parent, &heron)
            .0,
        201
    );
}

/// `--fault-write-hold-*-effect KIND[:N]`: the chosen write is never answered, after or
/// before it took effect; the writes around it are served.
#[test]
fn a_held_write_is_never_answered_and_the_others_are() {
    let (_dir, twin) = setup(&[
        "--fault-write-hold-after-effect",
        "create-account:2",
        "--fault-write-hold-before-effect",
        "create-service",
    ]);
    let (sub, sub_auth) = twin.create_subaccount("Heron Health");
    assert_eq!(
        twin.post_unanswered(
            "/2010-04-01/Accounts.json",
            &[("FriendlyName", "Ibis Insurance")],
            500
        ),
        None,
        "the second create-account is held"
    );
    assert_eq!(twin.accounts_named("Ibis Insurance"), 1, "after its effect");
    twin.create_subaccount("Jay Jewellers");
    let request = twin
        .client
        .post(format!("{}/v1/Services", twin.url))
        .basic_auth(
            &sub,
            Some(match &sub_auth {
                Auth::Account(_, token) => token.as_str(),
                _ => unreachable!(),
            }),
        )
        .timeout(std::time::Duration::from_millis(500))
        .form(&[("FriendlyName", "Heron Alerts")]);
    let answer = twin.runtime.block_on(async { request.send().await });
    assert!(answer.is_err(), "held: {answer:?}");
    let services = twin.get("/v1/Services", &sub_auth);
    assert!(
        services["services"].as_array().unwrap().is_empty(),
        "before its effect"
    );
    let writes = twin.writes();
    let held: Vec<&(String, bool, String)> = writes.iter().filter(|w| w.2 == "held").collect();
    assert_eq!(
        held,
        [
            &("create-account".to_string(), true, "held".to_string()),
            &("create-service".to_string(), false, "held".to_string()),
        ]
    );
    assert_eq!(writes.len(), 4);

    #[allow(deprecated)]
    let out = assert_cmd::Command::cargo_bin("twilio-sim")
        .unwrap()
        .args(["--snapshot", "x", "--auth-token", "t"])
        .args(["--fault-write-hold-after-effect", "create-acount"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("create-account, update-account"),
        "{stderr}"
    );
}

#[test]
fn the_snapshot_folder_is_never_written() {
    let dir = TempDir::new().unwrap();
    let snapshot = world(dir.path());
    let before = fingerprint(&snapshot);
    {
        let twin = Twin::start(&snapshot, &[]);
        twin.create_subaccount("Heron Health");
        assert_eq!(
            twin.transfer(PARENT, &sid("PN", 1), &[("AccountSid", SUB)])
                .0,
            200
        );
        twin.inbound("+15550000001", "+14155550101", "START");
    }
    assert_eq!(fingerprint(&snapshot), before);
}

/// Every file's name, size and content.
fn fingerprint(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (path.display().to_string(), std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// The twin's starting state is the audit's rule: every opt-out `subaudit optouts --all` lists
/// for the sample is refused by the twin when the parent sends, and other users are not.
#[test]
fn the_twin_blocks_every_opt_out_the_audit_lists_for_the_sample() {
    let dir = TempDir::new().unwrap();
    let sample = repo_root().join("sample-data/owlie");
    let csv = dir.path().join("all.csv");
    subaudit(dir.path())
        .args(["optouts", "--all", "--snapshot"])
        .arg(&sample)
        .arg("--out")
        .arg(&csv)
        .assert()
        .success();
    let rows = read_csv(&csv);
    let column = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    let (user, number, scope, service) = (
        column("end_user"),
        column("twilio_number"),
        column("scope"),
        column("messaging_service_sid"),
    );
    let mut checks: Vec<(String, String, bool)> = rows[1..]
        .iter()
        .map(|r| {
            let by_service = r[scope] == "service";
            let sender = if by_service { &r[service] } else { &r[number] };
            (sender.clone(), r[user].clone(), by_service)
        })
        .collect();
    checks.sort();
    checks.dedup();
    assert!(checks.len() > 100, "the sample has opt-outs of both scopes");
    let parent = subaudit::snapshot::read_manifest(&sample)
        .unwrap()
        .parent_account_sid;
    let twin = Twin::start_as(&sample, &parent, &[]);
    let messages = format!("/2010-04-01/Accounts/{parent}/Messages.json");
    let auth = Auth::Account(parent.clone(), TOKEN.to_string());
    for (sender, end_user, by_service) in &checks {
        let key = if *by_service {
            "MessagingServiceSid"
        } else {
            "From"
        };
        let (status, body) = twin.post(
            &messages,
            &auth,
            &[(key, sender), ("To", end_user), ("Body", "hi")],
        );
        let refused = if *by_service {
            status == 201 && body["error_code"] == 21610
        } else {
            status == 400 && body["code"] == 21610
        };
        assert!(refused, "{sender} -> {end_user}: {status} {body}");
    }
    // A user the audit does not list is not blocked.
    let (sender, _, by_service) = &checks[0];
    let key = if *by_service {
        "MessagingServiceSid"
    } else {
        "From"
    };
    let (status, body) = twin.post(
        &messages,
        &auth,
        &[(key, sender), ("To", "+15559990000"), ("Body", "hi")],
    );
    assert_eq!(
        (status, body["error_code"].clone()),
        (201, Value::Null),
        "{body}"
    );
}
