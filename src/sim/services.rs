//! Messaging v1 writes: create and update a Messaging Service, add and remove its numbers,
//! with the request fields and response shapes of Twilio's spec.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde_json::{json, Map, Value};

use super::data::{SimData, SimService, SimServiceNumber};
use super::state::{time_v1, World};
use super::{bad_request, error, not_found, Principal, Request, Written};
use crate::sid::is_sid;

const BASE: &str = "https://messaging.twilio.com/v1/Services";

/// What a settable form field holds, for validation and for the record's JSON type.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Url,
    Method,
    Bool,
    ValidityPeriod,
    ScanMessageContent,
}

/// Every settable field of the spec's CreateServiceRequest / UpdateServiceRequest, with the
/// record field it sets.
const SETTABLE: [(&str, &str, Kind); 16] = [
    ("FriendlyName", "friendly_name", Kind::Text),
    ("InboundRequestUrl", "inbound_request_url", Kind::Url),
    ("InboundMethod", "inbound_method", Kind::Method),
    ("FallbackUrl", "fallback_url", Kind::Url),
    ("FallbackMethod", "fallback_method", Kind::Method),
    ("StatusCallback", "status_callback", Kind::Url),
    ("StickySender", "sticky_sender", Kind::Bool),
    ("MmsConverter", "mms_converter", Kind::Bool),
    ("SmartEncoding", "smart_encoding", Kind::Bool),
    (
        "ScanMessageContent",
        "scan_message_content",
        Kind::ScanMessageContent,
    ),
    ("FallbackToLongCode", "fallback_to_long_code", Kind::Bool),
    ("AreaCodeGeomatch", "area_code_geomatch", Kind::Bool),
    ("ValidityPeriod", "validity_period", Kind::ValidityPeriod),
    (
        "SynchronousValidation",
        "synchronous_validation",
        Kind::Bool,
    ),
    ("Usecase", "usecase", Kind::Text),
    (
        "UseInboundWebhookOnNumber",
        "use_inbound_webhook_on_number",
        Kind::Bool,
    ),
];

/// A form value as the record's JSON value, or a 400 naming the field and what is valid.
fn parse_field(name: &str, kind: Kind, value: &str) -> Result<Value, Response> {
    let invalid = |valid: &str| bad_request(&format!("Invalid {name} {value:?}: {valid}"));
    match kind {
        Kind::Text => {
            if name == "FriendlyName" && value.chars().count() > 64 {
                return Err(invalid("at most 64 characters"));
            }
            Ok(json!(value))
        }
        Kind::Url => {
            if value.is_empty() {
                // An empty value clears the URL.
                return Ok(Value::Null);
            }
            url::Url::parse(value)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .map(|_| json!(value))
                .ok_or_else(|| invalid("expected an http(s) URL"))
        }
        Kind::Method => match value.to_ascii_uppercase().as_str() {
            m @ ("GET" | "POST") => Ok(json!(m)),
            _ => Err(invalid("expected GET or POST")),
        },
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "true" => Ok(json!(true)),
            "false" => Ok(json!(false)),
            _ => Err(invalid("expected true or false")),
        },
        Kind::ValidityPeriod => match value.parse::<i64>() {
            Ok(n) if (1..=36_000).contains(&n) => Ok(json!(n)),
            _ => Err(invalid("expected an integer from 1 to 36000")),
        },
        Kind::ScanMessageContent => match value {
            "inherit" | "enable" | "disable" => Ok(json!(value)),
            _ => Err(invalid("expected inherit, enable or disable")),
        },
    }
}

/// The form's settable fields as (record field, value), all validated before any change.
fn settings(req: &Request) -> Result<Vec<(&'static str, Value)>, Response> {
    SETTABLE
        .iter()
        .filter_map(|(form, field, kind)| {
            req.field(form)
                .map(|v| parse_field(form, *kind, v).map(|value| (*field, value)))
        })
        .collect()
}

/// The parent's token reaches its children's services too; anyone else only their own
/// account's. Another account's service answers 404, as Twilio's does.
pub(super) fn check_access(
    data: &SimData,
    principal: &Principal,
    mg: &str,
    path: &str,
) -> Result<(), Response> {
    let service = data.service(mg).ok_or_else(|| not_found(path))?;
    let allowed = match principal {
        Principal::ParentToken => {
            service.account == data.parent || data.is_subaccount(&service.account)
        }
        Principal::ParentKey => service.account == data.parent,
        Principal::Subaccount(own) => service.account == *own,
    };
    if allowed {
        Ok(())
    } else {
        Err(not_found(path))
    }
}

/// `POST /v1/Services`: a new service of `account` with Twilio's defaults for what the form
/// leaves out. 201.
pub(super) fn create(world: &mut World, account: &str, req: &Request) -> Written {
    if req.field("FriendlyName").is_none() {
        return Err(bad_request("Missing required parameter FriendlyName"));
    }
    let changes = settings(req)?;
    let now = time_v1(&Utc::now());
    let sid = world.new_sid("MG");
    let mut record = json!({
        "account_sid": account,
        "area_code_geomatch": true,
        "date_created": now,
        "date_updated": now,
        "fallback_method": "POST",
        "fallback_to_long_code": false,
        "fallback_url": null,
        "friendly_name": "",
        "inbound_method": "POST",
        "inbound_request_url": null,
        "links": {
            "phone_numbers": format!("{BASE}/{sid}/PhoneNumbers"),
            "short_codes": format!("{BASE}/{sid}/ShortCodes"),
            "alpha_senders": format!("{BASE}/{sid}/AlphaSenders"),
            "messages": format!("{BASE}/{sid}/Messages"),
            "us_app_to_person": format!("{BASE}/{sid}/Compliance/Usa2p"),
            "us_app_to_person_usecases": format!("{BASE}/{sid}/Compliance/Usa2p/Usecases"),
            "channel_senders": format!("{BASE}/{sid}/ChannelSenders"),
        },
        "mms_converter": true,
        "scan_message_content": "inherit",
        "sid": sid,
        "smart_encoding": true,
        "status_callback": null,
        "sticky_sender": true,
        "synchronous_validation": true,
        "url": format!("{BASE}/{sid}"),
        "us_app_to_person_registered": false,
        "use_inbound_webhook_on_number": false,
        "usecase": "undeclared",
        "validity_period": 36000,
    });
    apply(&mut record, changes);
    let raw = record.to_string();
    world.data.services.push(SimService {
        sid,
        account: account.to_string(),
        raw: raw.clone(),
    });
    Ok((StatusCode::CREATED, raw))
}

fn apply(record: &mut Value, changes: Vec<(&'static str, Value)>) {
    if let Value::Object(map) = record {
        for (field, value) in changes {
            map.insert(field.to_string(), value);
        }
    }
}

/// `POST /v1/Services/{MG}`: changes the fields the form names. 200.
pub(super) fn update(world: &mut World, mg: &str, req: &Request) -> Written {
    let changes = settings(req)?;
    let service = world
        .data
        .services
        .iter_mut()
        .find(|s| s.sid == mg)
        .ok_or_else(|| not_found(&req.path))?;
    let mut record: Value = serde_json::from_str(&service.raw).unwrap_or(Value::Object(Map::new()));
    apply(&mut record, changes);
    record["date_updated"] = json!(time_v1(&Utc::now()));
    service.raw = record.to_string();
    Ok((StatusCode::OK, service.raw.clone()))
}

/// Whether a service field is true in the stored record.
pub(super) fn flag(service: &SimService, field: &str) -> bool {
    serde_json::from_str::<Value>(&service.raw)
        .ok()
        .and_then(|v| v.get(field).and_then(Value::as_bool))
        .unwrap_or(false)
}

/// A text field of the stored service record (None when null or empty).
pub(super) fn setting(service: &SimService, field: &str) -> Option<String> {
    serde_json::from_str::<Value>(&service.raw)
        .ok()
        .and_then(|v| v.get(field).and_then(Value::as_str).map(str::to_string))
        .filter(|s| !s.is_empty())
}

/// `POST /v1/Services/{MG}/PhoneNumbers` (PhoneNumberSid): the number must belong to the
/// service's account and be in no service yet (21712). 201.
pub(super) fn add_number(world: &mut World, mg: &str, req: &Request) -> Written {
    let pn = req
        .field("PhoneNumberSid")
        .ok_or_else(|| bad_request("Missing required parameter PhoneNumberSid"))?;
    if !is_sid(pn, "PN") {
        return Err(bad_request(&format!(
            "Invalid PhoneNumberSid {pn:?}: expected PN and 32 hex digits"
        )));
    }
    let data = &world.data;
    let account = data
        .service(mg)
        .map(|s| s.account.clone())
        .unwrap_or_default();
    let number = data
        .number(pn)
        .filter(|n| n.account == account)
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                21606,
                &format!("Phone number {pn} does not belong to the service's account {account}"),
            )
        })?;
    if let Some(other) = data.service_of_number(pn) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            21712,
            &format!("Phone Number or Short Code is already associated with another Messaging Service ({other})"),
        ));
    }
    let number_record: Value = serde_json::from_str(&number.raw).unwrap_or(Value::Null);
    let capabilities: Vec<&str> = [("sms", "SMS"), ("mms", "MMS"), ("voice", "Voice")]
        .into_iter()
        .filter(|(k, _)| number_record["capabilities"][k].as_bool() == Some(true))
        .map(|(_, name)| name)
        .collect();
    let country = if number.phone_number.starts_with("+1") {
        "US"
    } else {
        ""
    };
    let now = time_v1(&Utc::now());
    let record = json!({
        "account_sid": account,
        "capabilities": capabilities,
        "country_code": country,
        "date_created": now,
        "date_updated": now,
        "phone_number": number.phone_number,
        "service_sid": mg,
        "sid": pn,
        "url": format!("{BASE}/{mg}/PhoneNumbers/{pn}"),
    });
    let raw = record.to_string();
    world.data.service_numbers.push(SimServiceNumber {
        service: mg.to_string(),
        number_sid: pn.to_string(),
        raw: raw.clone(),
    });
    Ok((StatusCode::CREATED, raw))
}

/// `DELETE /v1/Services/{MG}/PhoneNumbers/{PN}`: 204, or 404 when it is not in the service.
pub(super) fn remove_number(world: &mut World, mg: &str, pn: &str, path: &str) -> Written {
    let members = &mut world.data.service_numbers;
    let before = members.len();
    members.retain(|m| !(m.service == mg && m.number_sid == pn));
    if members.len() == before {
        return Err(not_found(path));
    }
    Ok((StatusCode::NO_CONTENT, String::new()))
}
