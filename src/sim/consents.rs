//! Consents Bulk (`POST https://accounts.twilio.com/v1/Consents/Bulk`, a pilot): up to 25
//! items a request, 100 requests a minute per account (429 above), answered 201 with one
//! result per item whose `error_code` is 0 on success. Each accepted item sets the account's
//! opt-out state for its sender (a Messaging Service or a number of the account).

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::state::World;
use super::{bad_request, error, Request, Written};
use crate::audit::optouts::Scope;
use crate::sid::{is_e164, is_sid};

pub const MAX_ITEMS: usize = 25;
pub const REQUESTS_PER_MINUTE: usize = 100;
/// The item error Twilio's spec example shows for invalid items.
const ITEM_INVALID: u32 = 30646;

pub(super) fn bulk(world: &mut World, account: &str, req: &Request) -> Written {
    let now = Instant::now();
    let window = world
        .consent_requests
        .entry(account.to_string())
        .or_default();
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
    {
        window.pop_front();
    }
    if window.len() >= REQUESTS_PER_MINUTE {
        return Err(error(
            StatusCode::TOO_MANY_REQUESTS,
            20429,
            "Too Many Requests: Consents Bulk takes 100 requests a minute",
        ));
    }
    // The items: one Items field holding a JSON array, or one JSON object per repeated field
    // (how Twilio's helper libraries send a list).
    let mut items: Vec<Value> = Vec::new();
    for value in req.fields("Items") {
        match serde_json::from_str::<Value>(value) {
            Ok(Value::Array(list)) => items.extend(list),
            Ok(item @ Value::Object(_)) => items.push(item),
            _ => {
                return Err(bad_request(
                    "Invalid Items: expected a JSON array of consent objects",
                ))
            }
        }
    }
    if items.is_empty() {
        return Err(bad_request("Missing required parameter Items"));
    }
    if items.len() > MAX_ITEMS {
        return Err(bad_request(&format!(
            "Items holds {} entries: at most {MAX_ITEMS} a request",
            items.len()
        )));
    }
    window.push_back(now);
    let results: Vec<Value> = items
        .iter()
        .map(|item| {
            let correlation_id = item.get("correlation_id").cloned().unwrap_or(Value::Null);
            let problems = check_item(world, account, item);
            if problems.is_empty() {
                let text = |k: &str| item[k].as_str().unwrap_or_default().to_string();
                let sender = text("sender_id");
                let scope = if sender.starts_with("MG") {
                    Scope::Service(sender)
                } else {
                    Scope::Number(sender)
                };
                let opted_out = text("status") == "opt-out";
                world
                    .optouts
                    .set(account, scope, &text("contact_id"), opted_out);
                json!({"correlation_id": correlation_id, "error_code": 0, "error_messages": []})
            } else {
                json!({
                    "correlation_id": correlation_id,
                    "error_code": ITEM_INVALID,
                    "error_messages": problems,
                })
            }
        })
        .collect();
    Ok((StatusCode::CREATED, json!({ "items": results }).to_string()))
}

/// What is wrong with one item, in the spec's error-message style (empty: nothing).
fn check_item(world: &World, account: &str, item: &Value) -> Vec<&'static str> {
    let text = |k: &str| item.get(k).and_then(Value::as_str);
    let mut problems = Vec::new();
    if !text("contact_id").is_some_and(is_e164) {
        problems.push("INVALID_CONTACT_ID");
    }
    if text("correlation_id").is_none_or(|c| c.len() != 32) {
        problems.push("INVALID_CORRELATION_ID");
    }
    let data = &world.data;
    let sender_ok = text("sender_id").is_some_and(|s| {
        if is_sid(s, "MG") {
            data.service(s).is_some_and(|svc| svc.account == account)
        } else {
            data.number_by_phone(s)
                .is_some_and(|n| n.account == account)
        }
    });
    if !sender_ok {
        problems.push("INVALID_SENDER_ID");
    }
    if !matches!(text("status"), Some("opt-in" | "opt-out")) {
        problems.push("INVALID_STATUS");
    }
    if text("source").is_none_or(str::is_empty) {
        problems.push("INVALID_SOURCE");
    }
    if let Some(date) = item.get("date_of_consent") {
        let valid = date.is_null()
            || date
                .as_str()
                .is_some_and(|d| chrono::DateTime::parse_from_rfc3339(d).is_ok());
        if !valid {
            problems.push("INVALID_DATE_OF_CONSENT");
        }
    }
    problems
}
