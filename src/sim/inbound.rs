//! Inbound routing, driven by the twin-only endpoint `/__twin/inbound` (not Twilio's: it stands
//! for an end user texting a number):
//!
//! - `POST /__twin/inbound` (form From, To, Body): applies the keyword rule to the owning
//!   account's opt-out state (a number in a service: the service's scope; otherwise the pair),
//!   then routes the message: a number in a service with no `inbound_request_url` (and not
//!   `use_inbound_webhook_on_number`) drops it, unlogged, as the spec says; otherwise the twin
//!   records the URL it would call (the service's, or the number's `sms_url`) and logs the
//!   message as Twilio would.
//! - `GET /__twin/inbound`: the dropped count and the deliveries so far.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde::Serialize;
use serde_json::{json, Value};

use super::services::{flag, setting};
use super::state::{time_2010, World};
use super::{bad_request, error, json_response, not_found, Sim};
use crate::audit::optouts::Scope;
use crate::sid::is_e164;

#[derive(Debug, Default, Serialize)]
pub struct InboundLog {
    pub dropped: u64,
    pub deliveries: Vec<Delivery>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub from: String,
    pub to: String,
    pub account_sid: String,
    pub messaging_service_sid: Option<String>,
    pub url: String,
    pub method: String,
    pub date: String,
}

pub(super) fn handle(
    sim: &Sim,
    method: &Method,
    path: &str,
    form: &[(String, String)],
) -> Response {
    if path != "/__twin/inbound" {
        return not_found(path);
    }
    match *method {
        Method::GET => {
            let world = sim.read_world();
            json_response(
                StatusCode::OK,
                serde_json::to_string(&world.inbound).expect("the log serializes"),
            )
        }
        Method::POST => {
            let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            let (Some(from), Some(to)) = (field("From"), field("To")) else {
                return bad_request("POST /__twin/inbound needs the form fields From and To");
            };
            let mut world = sim.write_world();
            match receive(&mut world, from, to, field("Body").unwrap_or("")) {
                Ok(answer) => json_response(StatusCode::OK, answer.to_string()),
                Err(e) => e,
            }
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            20004,
            "GET or POST /__twin/inbound",
        ),
    }
}

fn receive(world: &mut World, from: &str, to: &str, body: &str) -> Result<Value, Response> {
    if !is_e164(from) {
        return Err(bad_request(&format!(
            "From {from:?} is not an E.164 number"
        )));
    }
    let data = &world.data;
    let number = data
        .number_by_phone(to)
        .ok_or_else(|| not_found(&format!("no Twilio number {to} in the twin")))?;
    let account = number.account.clone();
    let toll_free = number.toll_free.then(|| to.to_string());
    let number_record: Value = serde_json::from_str(&number.raw).unwrap_or(Value::Null);
    let number_setting = |k: &str| {
        number_record
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let service = data
        .service_of_number(&number.sid)
        .and_then(|mg| data.service(mg));
    let service_sid = service.map(|s| s.sid.clone());
    // (url, method) Twilio would call; None with `dropped` when the service drops it.
    let (route, dropped) = match service {
        Some(s) if flag(s, "use_inbound_webhook_on_number") => (
            number_setting("sms_url").map(|u| (u, number_setting("sms_method"))),
            false,
        ),
        Some(s) => match setting(s, "inbound_request_url") {
            Some(url) => (Some((url, setting(s, "inbound_method"))), false),
            None => (None, true),
        },
        None => (
            number_setting("sms_url").map(|u| (u, number_setting("sms_method"))),
            false,
        ),
    };
    let scope = match &service_sid {
        Some(mg) => Scope::Service(mg.clone()),
        None => Scope::Number(to.to_string()),
    };
    let keyword =
        world
            .optouts
            .apply_inbound(&account, scope.clone(), from, body, toll_free.as_deref());
    let opted_out = world.optouts.is_opted_out(&account, &scope, from);
    let now = Utc::now();
    let sid = world.new_sid("SM");
    if dropped {
        world.inbound.dropped += 1;
    } else {
        let record = json!({
            "account_sid": account,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": time_2010(&now),
            "date_sent": time_2010(&now),
            "date_updated": time_2010(&now),
            "direction": "inbound",
            "error_code": null,
            "error_message": null,
            "from": from,
            "messaging_service_sid": service_sid,
            "num_media": "0",
            "num_segments": "1",
            "price": null,
            "price_unit": "USD",
            "sid": sid,
            "status": "received",
            "subresource_uris": {
                "media": format!("/2010-04-01/Accounts/{account}/Messages/{sid}/Media.json")
            },
            "to": to,
            "uri": format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json"),
        });
        world.record_message(now, &record);
    }
    let method = route
        .as_ref()
        .map(|(_, m)| m.clone().unwrap_or_else(|| "POST".into()));
    if let Some((url, _)) = &route {
        world.inbound.deliveries.push(Delivery {
            from: from.to_string(),
            to: to.to_string(),
            account_sid: account.clone(),
            messaging_service_sid: service_sid.clone(),
            url: url.clone(),
            method: method.clone().unwrap_or_default(),
            date: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
    }
    // The sender's state in the message's scope afterwards: "opt-out" while opted out,
    // "opt-in" when this message opted them back in, null otherwise.
    let opt_state = if opted_out {
        Some("opt-out")
    } else if keyword == Some(false) {
        Some("opt-in")
    } else {
        None
    };
    Ok(json!({
        "message_sid": sid,
        "account_sid": account,
        "messaging_service_sid": service_sid,
        "routed_to": route.map(|(u, _)| u),
        "method": method,
        "dropped": dropped,
        "opt_state": opt_state,
    }))
}
