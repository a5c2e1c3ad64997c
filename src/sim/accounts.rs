//! 2010 API writes: create a subaccount; update an IncomingPhoneNumber, including the transfer
//! to another account of the family (docs/twin.md lists the rules and their sources).

use axum::http::StatusCode;
use chrono::Utc;
use serde_json::{json, Value};

use super::data::SimAccount;
use super::state::{time_2010, World};
use super::{bad_request, error, not_found, Principal, Request, Written};
use crate::sid::is_sid;

/// `POST /2010-04-01/Accounts.json` (FriendlyName): a new active subaccount of the parent,
/// answered 201 with its auth token, which the twin accepts from then on.
pub(super) fn create_subaccount(
    world: &mut World,
    principal: &Principal,
    req: &Request,
) -> Written {
    if *principal != Principal::ParentToken {
        // Subaccounts cannot create subaccounts; API keys cannot manage accounts.
        return Err(error(
            StatusCode::FORBIDDEN,
            20003,
            "Only the parent account's own credentials can create subaccounts",
        ));
    }
    let now = Utc::now();
    let sid = world.new_sid("AC");
    let friendly_name = match req.field("FriendlyName") {
        Some(name) if name.chars().count() > 64 => {
            return Err(bad_request("FriendlyName is longer than 64 characters"))
        }
        Some(name) => name.to_string(),
        // Twilio's documented default.
        None => format!("SubAccount Created at {}", now.format("%Y-%m-%d %I:%M %P")),
    };
    let auth_token = world.new_sid("").chars().skip(2).collect::<String>();
    let parent = world.data.parent.clone();
    let uri = |rest: &str| format!("/2010-04-01/Accounts/{sid}{rest}");
    let record = json!({
        "auth_token": auth_token,
        "date_created": time_2010(&now),
        "date_updated": time_2010(&now),
        "friendly_name": friendly_name,
        "owner_account_sid": parent,
        "sid": sid,
        "status": "active",
        "subresource_uris": {
            "incoming_phone_numbers": uri("/IncomingPhoneNumbers.json"),
            "messages": uri("/Messages.json"),
            "usage": uri("/Usage.json"),
        },
        "type": "Full",
        "uri": uri(".json"),
    });
    let raw = record.to_string();
    world.data.accounts.push(SimAccount {
        sid,
        owner: Some(parent),
        friendly_name,
        status: "active".into(),
        auth_token,
        raw: raw.clone(),
    });
    Ok((StatusCode::CREATED, raw))
}

/// `POST /2010-04-01/Accounts/{AC}.json` (FriendlyName, Status): renames an account, or
/// suspends, reactivates or closes a subaccount (the parent's token only; closing is final).
pub(super) fn update_account(
    world: &mut World,
    principal: &Principal,
    sid: &str,
    req: &Request,
) -> Written {
    let status = req.field("Status");
    if let Some(s) = status {
        if !matches!(s, "active" | "suspended" | "closed") {
            return Err(bad_request(&format!(
                "Invalid Status {s:?}: expected active, suspended or closed"
            )));
        }
        if sid == world.data.parent || *principal != Principal::ParentToken {
            return Err(error(
                StatusCode::FORBIDDEN,
                20003,
                "Only the parent's credentials change a subaccount's status",
            ));
        }
    }
    let name = req.field("FriendlyName");
    if name.is_some_and(|n| n.chars().count() > 64) {
        return Err(bad_request("FriendlyName is longer than 64 characters"));
    }
    let account = world
        .data
        .accounts
        .iter_mut()
        .find(|a| a.sid == sid)
        .ok_or_else(|| not_found(&req.path))?;
    if account.status == "closed" && status.is_some_and(|s| s != "closed") {
        return Err(bad_request("A closed account cannot be reopened"));
    }
    let mut record: Value = serde_json::from_str(&account.raw)
        .map_err(|_| bad_request("the twin holds an unreadable account record"))?;
    if let Some(s) = status {
        account.status = s.to_string();
        record["status"] = json!(s);
    }
    if let Some(n) = name {
        account.friendly_name = n.to_string();
        record["friendly_name"] = json!(n);
    }
    record["date_updated"] = json!(time_2010(&Utc::now()));
    account.raw = record.to_string();
    Ok((StatusCode::OK, account.raw.clone()))
}

/// The form fields of an IncomingPhoneNumber update that change a field of the record as is.
const PLAIN_FIELDS: [(&str, &str); 14] = [
    ("FriendlyName", "friendly_name"),
    ("SmsUrl", "sms_url"),
    ("SmsMethod", "sms_method"),
    ("SmsFallbackUrl", "sms_fallback_url"),
    ("SmsFallbackMethod", "sms_fallback_method"),
    ("SmsApplicationSid", "sms_application_sid"),
    ("VoiceUrl", "voice_url"),
    ("VoiceMethod", "voice_method"),
    ("VoiceFallbackUrl", "voice_fallback_url"),
    ("VoiceFallbackMethod", "voice_fallback_method"),
    ("VoiceApplicationSid", "voice_application_sid"),
    ("StatusCallback", "status_callback"),
    ("StatusCallbackMethod", "status_callback_method"),
    ("TrunkSid", "trunk_sid"),
];

/// `POST /2010-04-01/Accounts/{AC}/IncomingPhoneNumbers/{PN}.json`: updates the number; with
/// `AccountSid` naming another account, transfers it under Twilio's rules.
pub(super) fn update_number(
    world: &mut World,
    principal: &Principal,
    owner: &str,
    pn: &str,
    req: &Request,
) -> Written {
    let index = world
        .data
        .numbers
        .iter()
        .position(|n| n.sid == pn && n.account == owner)
        .ok_or_else(|| not_found(&req.path))?;
    let mut record: Value = serde_json::from_str(&world.data.numbers[index].raw)
        .map_err(|_| bad_request("the twin holds an unreadable number record"))?;
    for sid_field in ["BundleSid", "AddressSid", "IdentitySid", "AccountSid"] {
        let prefix = match sid_field {
            "BundleSid" => "BU",
            "AddressSid" => "AD",
            "IdentitySid" => "RI",
            _ => "AC",
        };
        if let Some(value) = req.field(sid_field) {
            if !is_sid(value, prefix) {
                return Err(bad_request(&format!(
                    "Invalid {sid_field} {value:?}: expected {prefix} and 32 hex digits"
                )));
            }
        }
    }
    let target = req.field("AccountSid").filter(|t| *t != owner);
    if let Some(target) = target {
        check_transfer(world, principal, owner, target, &record, req)?;
        record["account_sid"] = json!(target);
        record["uri"] = json!(format!(
            "/2010-04-01/Accounts/{target}/IncomingPhoneNumbers/{pn}.json"
        ));
    }
    for (form, field) in [
        ("BundleSid", "bundle_sid"),
        ("AddressSid", "address_sid"),
        ("IdentitySid", "identity_sid"),
    ] {
        if let Some(value) = req.field(form) {
            record[field] = json!(value);
        }
    }
    for (form, field) in PLAIN_FIELDS {
        if let Some(value) = req.field(form) {
            record[field] = json!(value);
        }
    }
    record["date_updated"] = json!(time_2010(&Utc::now()));
    let raw = record.to_string();
    let number = &mut world.data.numbers[index];
    if let Some(target) = target {
        number.account = target.to_string();
    }
    number.raw = raw.clone();
    Ok((StatusCode::OK, raw))
}

fn text<'a>(record: &'a Value, key: &str) -> Option<&'a str> {
    record
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Twilio's transfer rules, in the order a careful reading of its errors suggests: who asks,
/// where to, then what the number carries.
fn check_transfer(
    world: &World,
    principal: &Principal,
    owner: &str,
    target: &str,
    record: &Value,
    req: &Request,
) -> Result<(), axum::response::Response> {
    let data = &world.data;
    let refuse = |code: u32, message: &str| Err(error(StatusCode::BAD_REQUEST, code, message));
    if *principal != Principal::ParentToken {
        return refuse(
            21474,
            "API User must be the parent account to transfer phone numbers.",
        );
    }
    let related = |sid: &str| sid == data.parent || data.is_subaccount(sid);
    if !related(target) || !related(owner) {
        return refuse(
            21473,
            "AccountSid you are transferring to is not related to the originating owner of the phone number",
        );
    }
    let status = data.account(target).map_or("", |a| a.status.as_str());
    if status != "active" {
        return refuse(
            21472,
            &format!("Account is not active: {target} is {status}"),
        );
    }
    if text(record, "origin") == Some("hosted") {
        return refuse(22121, "Unable to Transfer Hosted Number");
    }
    let pn = text(record, "sid").unwrap_or_default();
    if let Some(service) = data.service_of_number(pn) {
        // Twilio documents nothing here; the twin refuses (docs/twin.md) so that a migration
        // which forgets to take the number out of its service first is caught.
        return refuse(
            20001,
            &format!(
                "The phone number is still in Messaging Service {service}: remove it from the service before transferring it"
            ),
        );
    }
    let phone = text(record, "phone_number").unwrap_or_default();
    // Both ends count: the end user's address is whatsapp: too, but only the Twilio number
    // is ever transferred.
    if data.whatsapp_senders.contains(phone) {
        // No documented error code either: the generic invalid-request one.
        return refuse(
            20001,
            &format!(
                "{phone} is a WhatsApp sender: Twilio Support must move the WhatsApp sender before the number moves"
            ),
        );
    }
    if text(record, "bundle_sid").is_some() && req.field("BundleSid").is_none() {
        return refuse(
            21649,
            "Bundle required: this number needs a BundleSid of the gaining account",
        );
    }
    let needs_address = text(record, "address_sid").is_some()
        || text(record, "address_requirements").is_some_and(|r| r != "none");
    if needs_address && req.field("AddressSid").is_none() {
        return refuse(
            21613,
            "PhoneNumber Requires an Address: this number needs an AddressSid of the gaining account",
        );
    }
    if text(record, "identity_sid").is_some() && req.field("IdentitySid").is_none() {
        return refuse(
            20001,
            "This number needs an IdentitySid of the gaining account",
        );
    }
    Ok(())
}
