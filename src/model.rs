//! Typed views of the Twilio resources the audit reads.
//!
//! The snapshot keeps Twilio's own JSON objects untouched; these structs pick out only the
//! fields the audit rules need (serde ignores the rest), with the names and types of Twilio's
//! OpenAPI spec (`twilio_api_v2010.json`, `twilio_messaging_v1.json`).

use serde::{Deserialize, Deserializer};

/// `api.v2010.account`. `auth_token` is deliberately absent: it is a secret and never read.
#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub sid: String,
    #[serde(default)]
    pub owner_account_sid: Option<String>,
    #[serde(default)]
    pub friendly_name: Option<String>,
    /// `active`, `suspended` or `closed`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, rename = "type")]
    pub account_type: Option<String>,
}

impl Account {
    pub fn name(&self) -> &str {
        self.friendly_name.as_deref().unwrap_or("")
    }
}

/// `api.v2010.account.incoming_phone_number`, the fields the transfer risks look at.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IncomingPhoneNumber {
    pub sid: String,
    pub phone_number: String,
    #[serde(default)]
    pub account_sid: Option<String>,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub address_sid: Option<String>,
    /// `none`, `any`, `local`, `foreign`.
    #[serde(default)]
    pub address_requirements: Option<String>,
    #[serde(default)]
    pub bundle_sid: Option<String>,
    #[serde(default)]
    pub identity_sid: Option<String>,
    #[serde(default)]
    pub emergency_address_sid: Option<String>,
    /// `Active` or `Inactive`.
    #[serde(default)]
    pub emergency_status: Option<String>,
    #[serde(default)]
    pub trunk_sid: Option<String>,
    #[serde(default)]
    pub voice_application_sid: Option<String>,
    #[serde(default)]
    pub sms_application_sid: Option<String>,
    /// `twilio` or `hosted`.
    #[serde(default)]
    pub origin: Option<String>,
    #[serde(default)]
    pub sms_url: Option<String>,
    #[serde(default)]
    pub sms_fallback_url: Option<String>,
    #[serde(default)]
    pub voice_fallback_url: Option<String>,
    #[serde(default)]
    pub voice_url: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    /// Not in every API version's response; toll-free is also derived from the number itself.
    #[serde(default, rename = "type")]
    pub number_type: Option<String>,
}

impl IncomingPhoneNumber {
    /// Toll-free by Twilio's `type` field when present, else by the North American toll-free
    /// area codes (800, 833, 844, 855, 866, 877, 888).
    pub fn is_toll_free(&self) -> bool {
        if let Some(t) = &self.number_type {
            if t.eq_ignore_ascii_case("toll-free") || t.eq_ignore_ascii_case("tollfree") {
                return true;
            }
        }
        let n = self.phone_number.as_str();
        n.len() == 12
            && n.starts_with("+1")
            && matches!(
                &n[2..5],
                "800" | "833" | "844" | "855" | "866" | "877" | "888"
            )
    }
}

/// `messaging.v1.service`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessagingService {
    pub sid: String,
    #[serde(default)]
    pub account_sid: Option<String>,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub us_app_to_person_registered: Option<bool>,
    #[serde(default)]
    pub inbound_request_url: Option<String>,
    // The settings a customer's new service copies (docs/plan.md, "The customer's new
    // Messaging Service"); Twilio's names, as the pull stores its raw objects.
    #[serde(default)]
    pub inbound_method: Option<String>,
    #[serde(default)]
    pub fallback_url: Option<String>,
    #[serde(default)]
    pub fallback_method: Option<String>,
    #[serde(default)]
    pub status_callback: Option<String>,
    #[serde(default)]
    pub sticky_sender: Option<bool>,
    #[serde(default)]
    pub area_code_geomatch: Option<bool>,
    #[serde(default)]
    pub smart_encoding: Option<bool>,
    #[serde(default)]
    pub mms_converter: Option<bool>,
    #[serde(default)]
    pub validity_period: Option<i64>,
    #[serde(default)]
    pub usecase: Option<String>,
    #[serde(default)]
    pub use_inbound_webhook_on_number: Option<bool>,
}

/// `messaging.v1.service.phone_number`: a number's membership in a service.
#[derive(Debug, Clone, Deserialize)]
pub struct ServicePhoneNumber {
    /// The PN sid of the incoming phone number.
    pub sid: String,
    pub service_sid: String,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub account_sid: Option<String>,
}

/// `messaging.v1.service.short_code`: a short code in a Messaging Service.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceShortCode {
    pub sid: String,
    pub service_sid: String,
    #[serde(default)]
    pub short_code: Option<String>,
    #[serde(default)]
    pub country_code: Option<String>,
    #[serde(default)]
    pub account_sid: Option<String>,
}

/// `messaging.v1.service.alpha_sender`: an alphanumeric sender ID in a Messaging Service.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceAlphaSender {
    pub sid: String,
    pub service_sid: String,
    #[serde(default)]
    pub alpha_sender: Option<String>,
    #[serde(default)]
    pub account_sid: Option<String>,
}

/// `messaging.v1.service.us_app_to_person`: an A2P 10DLC campaign of a service.
#[derive(Debug, Clone, Deserialize)]
pub struct A2pCampaign {
    pub sid: String,
    pub messaging_service_sid: String,
    #[serde(default)]
    pub campaign_status: Option<String>,
    #[serde(default)]
    pub campaign_id: Option<String>,
    #[serde(default)]
    pub us_app_to_person_usecase: Option<String>,
}

/// `api.v2010.account.message`, borrowed from the line being read: the engine reads tens of
/// millions of these and keeps none of them whole.
#[derive(Debug, PartialEq, Eq, Deserialize)]
pub struct MessageRef<'a> {
    #[serde(borrow)]
    pub sid: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    pub account_sid: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub messaging_service_sid: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub from: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub to: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub body: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub direction: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub status: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, deserialize_with = "int_or_string")]
    pub error_code: Option<i64>,
    #[serde(default, borrow)]
    pub num_segments: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub num_media: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, deserialize_with = "decimal_cow")]
    pub price: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub price_unit: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub date_sent: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub date_created: Option<std::borrow::Cow<'a, str>>,
}

/// Twilio's values of a message's `direction` (the spec's `message_enum_direction`).
pub const DIRECTIONS: [&str; 4] = ["inbound", "outbound-api", "outbound-call", "outbound-reply"];

impl MessageRef<'_> {
    /// What is wrong with the fields the opt-out rule reads, if anything: a `sid`, and a
    /// `direction` that is one of Twilio's values (a message without one would silently drop
    /// out of the rule).
    pub fn problem(&self) -> Option<String> {
        if self.sid.trim().is_empty() {
            return Some("message has an empty \"sid\"".to_string());
        }
        // Checked on every message: nothing is allocated unless something is wrong.
        let expected = || DIRECTIONS.join(", ");
        match self.direction.as_deref() {
            None => Some(format!(
                "message {} has no \"direction\"; expected one of {}",
                self.sid,
                expected()
            )),
            Some(d) if !DIRECTIONS.contains(&d) => Some(format!(
                "message {}: \"direction\" {d:?} is not one of Twilio's values ({}; lower case)",
                self.sid,
                expected()
            )),
            Some(_) => None,
        }
    }

    pub fn is_inbound(&self) -> bool {
        self.direction.as_deref() == Some("inbound")
    }
    pub fn is_outbound(&self) -> bool {
        self.direction
            .as_deref()
            .is_some_and(|d| d.starts_with("outbound"))
    }
    /// The event time of docs/opt-out-rule.md step 3: `date_sent`, else `date_created`.
    pub fn event_time_text(&self) -> Option<&str> {
        self.date_sent
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(self.date_created.as_deref().filter(|s| !s.is_empty()))
    }
    pub fn service_sid(&self) -> Option<&str> {
        self.messaging_service_sid
            .as_deref()
            .filter(|s| !s.is_empty())
    }
}

/// `api.v2010.account.usage.usage_record`. Amounts stay text until parsed as decimals.
#[derive(Debug, Clone, Deserialize)]
pub struct UsageRecord {
    pub account_sid: String,
    pub category: String,
    #[serde(default, deserialize_with = "decimal_text")]
    pub count: Option<String>,
    #[serde(default)]
    pub count_unit: Option<String>,
    #[serde(default, deserialize_with = "decimal_text")]
    pub usage: Option<String>,
    #[serde(default)]
    pub usage_unit: Option<String>,
    #[serde(default, deserialize_with = "decimal_text")]
    pub price: Option<String>,
    #[serde(default)]
    pub price_unit: Option<String>,
    pub start_date: String,
    pub end_date: String,
    #[serde(default)]
    pub as_of: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Twilio sends `error_code` as an integer, some tools as a string: accept both.
fn int_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrString<'a> {
        Int(i64),
        #[serde(borrow)]
        Str(std::borrow::Cow<'a, str>),
    }
    match Option::<IntOrString>::deserialize(d)? {
        None => Ok(None),
        Some(IntOrString::Int(i)) => Ok(Some(i)),
        Some(IntOrString::Str(s)) if s.trim().is_empty() => Ok(None),
        Some(IntOrString::Str(s)) => {
            s.trim().parse().map(Some).map_err(|_| {
                serde::de::Error::custom(format!("error_code {s:?} is not an integer"))
            })
        }
    }
}

/// [`decimal_text`] for a record borrowed from its line (the fast reader borrows the text).
fn decimal_cow<'de, 'a, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<std::borrow::Cow<'a, str>>, D::Error> {
    Ok(decimal_text(d)?.map(std::borrow::Cow::Owned))
}

/// Amounts arrive as strings ("-0.00750"), though the spec says number for some: keep the
/// text, so that it is parsed once, as a decimal, never through a float. (A JSON number has
/// already been through serde_json's f64 and comes back in shortest form; Twilio sends text.)
fn decimal_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            return Err(serde::de::Error::custom(format!(
                "expected a decimal string or number, got {other}"
            )))
        }
    })
}

/// The one order of customer names in every output (CSV rows, terminal tables, report.html,
/// per-customer files): case-folded, so that "alpha Dental" sorts beside "Alpha Health" and
/// before "Beta Pets"; names equal but for case then in byte order, so the order is total.
pub fn customer_order(a: &str, b: &str) -> std::cmp::Ordering {
    let folded = |s: &str| {
        s.chars()
            .flat_map(char::to_lowercase)
            .collect::<Vec<char>>()
    };
    folded(a).cmp(&folded(b)).then_with(|| a.cmp(b))
}
