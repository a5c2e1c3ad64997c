//! Sends: `POST /2010-04-01/Accounts/{AC}/Messages.json` with To and From or
//! MessagingServiceSid, blocked by the account's opt-out state the way Twilio blocks them
//! (README "Opt-out rule": 400 and 21610 from a number; a failed message with 21610 through a
//! service).

use axum::http::StatusCode;
use chrono::Utc;
use serde_json::{json, Value};

use super::state::{time_2010, World};
use super::{bad_request, error, not_found, Request, Written};
use crate::sid::is_e164;

/// Twilio's "Attempt to send to unsubscribed recipient".
const UNSUBSCRIBED: u32 = 21610;

pub(super) fn send(world: &mut World, account: &str, req: &Request) -> Written {
    let to = req
        .field("To")
        .ok_or_else(|| bad_request("Missing required parameter To"))?;
    if !is_e164(to) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            21211,
            &format!("Invalid 'To' Phone Number: {to}"),
        ));
    }
    if req.field("Body").is_none()
        && req.field("MediaUrl").is_none()
        && req.field("ContentSid").is_none()
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            21602,
            "Message body is required",
        ));
    }
    let data = &world.data;
    // The sender: a number of the account, or the service (whose first number sends).
    let (from, service) = match (req.field("From"), req.field("MessagingServiceSid")) {
        (Some(from), service) => {
            let number = data
                .number_by_phone(from)
                .filter(|n| n.account == account)
                .ok_or_else(|| {
                    error(
                        StatusCode::BAD_REQUEST,
                        21606,
                        &format!("The From phone number {from} is not a valid, SMS-capable inbound phone number or short code for your account."),
                    )
                })?;
            let service = service
                .map(str::to_string)
                .or_else(|| data.service_of_number(&number.sid).map(str::to_string));
            (number.phone_number.clone(), service)
        }
        (None, Some(mg)) => {
            let owned = data.service(mg).filter(|s| s.account == account);
            if owned.is_none() {
                return Err(not_found(&format!("/v1/Services/{mg}")));
            }
            let sender = data
                .service_numbers
                .iter()
                .filter(|m| m.service == mg)
                .find_map(|m| data.number(&m.number_sid))
                .map(|n| n.phone_number.clone())
                .ok_or_else(|| {
                    error(
                        StatusCode::BAD_REQUEST,
                        21703,
                        &format!("Messaging Service {mg} has no phone number to send from"),
                    )
                })?;
            (sender, Some(mg.to_string()))
        }
        (None, None) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                21603,
                "A 'From' or 'MessagingServiceSid' parameter is required to send a message",
            ))
        }
    };
    let blocked = world
        .optouts
        .blocks(account, Some(&from), service.as_deref(), to);
    let through_service = req.field("From").is_none();
    if blocked && !through_service {
        // Refused by the API itself: no Message record.
        return Err(error(
            StatusCode::BAD_REQUEST,
            UNSUBSCRIBED,
            "Attempt to send to unsubscribed recipient",
        ));
    }
    let now = Utc::now();
    let sid = world.new_sid("SM");
    let (status, error_code, error_message, date_sent) = if blocked {
        (
            "failed",
            json!(UNSUBSCRIBED),
            json!("Attempt to send to unsubscribed recipient"),
            Value::Null,
        )
    } else if through_service {
        ("accepted", Value::Null, Value::Null, Value::Null)
    } else {
        ("queued", Value::Null, Value::Null, Value::Null)
    };
    let body = req.field("Body").unwrap_or("");
    let record = json!({
        "account_sid": account,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": time_2010(&now),
        "date_sent": date_sent,
        "date_updated": time_2010(&now),
        "direction": "outbound-api",
        "error_code": error_code,
        "error_message": error_message,
        // Twilio fills `from` in once the service has picked its sender; the twin picks at once.
        "from": from,
        "messaging_service_sid": service,
        "num_media": "0",
        "num_segments": "1",
        "price": null,
        "price_unit": "USD",
        "sid": sid,
        "status": status,
        "subresource_uris": {
            "media": format!("/2010-04-01/Accounts/{account}/Messages/{sid}/Media.json")
        },
        "to": to,
        "uri": format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json"),
    });
    world.record_message(now, &record);
    Ok((StatusCode::CREATED, record.to_string()))
}
