//! The deterministic sample generator: Owlie Notifications, the SaaS of the seed story, with
//! ~50 customers, ~120 numbers, three parent Messaging Services and 13 months of traffic.
//!
//! Same seed and sizes, same bytes. It streams messages to disk as it makes them, so the same
//! code writes the few-MB snapshot the repository ships and the multi-million-message ones
//! the benchmarks use.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};

use crate::error::Result;
use crate::output::write_atomic;
use crate::snapshot::{Resource, SnapshotWriter, Window};
use crate::time::to_rfc2822;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct SampleOptions {
    pub seed: u64,
    /// Approximate number of messages.
    pub messages: u64,
    /// Write `messages.jsonl.zst` instead of `messages.jsonl`.
    pub compress: bool,
}

/// What was generated, for the command's summary.
#[derive(Debug, Clone, Copy)]
pub struct SampleSummary {
    pub numbers: usize,
    pub customers: usize,
    pub messages: u64,
    pub usage_records: u64,
}

/// SplitMix64: tiny, fast, and stable across crate versions (the sample must not change when a
/// dependency does).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn sid(&mut self, prefix: &str) -> String {
        format!("{prefix}{:016x}{:016x}", self.next_u64(), self.next_u64())
    }
}

const BIRDS: [&str; 50] = [
    "Falcon", "Heron", "Kestrel", "Magpie", "Puffin", "Osprey", "Robin", "Wren", "Finch", "Swift",
    "Plover", "Egret", "Ibis", "Crane", "Lark", "Starling", "Sparrow", "Pelican", "Condor", "Hawk",
    "Raven", "Tern", "Gannet", "Kite", "Merlin", "Oriole", "Tanager", "Warbler", "Curlew",
    "Dunlin", "Avocet", "Bittern", "Dipper", "Eider", "Fulmar", "Godwit", "Hoopoe", "Jay", "Knot",
    "Linnet", "Martin", "Nightjar", "Petrel", "Quail", "Rook", "Shrike", "Teal", "Vireo",
    "Wagtail", "Stork",
];
const TRADES: [&str; 25] = [
    "Flights",
    "Health",
    "Kitchens",
    "Media",
    "Pets",
    "Outfitters",
    "Realty",
    "Dental",
    "Fitness",
    "Salons",
    "Logistics",
    "Clinics",
    "Rentals",
    "Tutoring",
    "Plumbing",
    "Bakery",
    "Legal",
    "Insurance",
    "Storage",
    "Cleaners",
    "Motors",
    "Travel",
    "Events",
    "Pharmacy",
    "Vets",
];
const AREA_CODES: [&str; 10] = [
    "415", "212", "312", "512", "646", "303", "206", "617", "305", "404",
];
const TOLL_FREE: [&str; 6] = ["833", "844", "855", "866", "877", "888"];
const NUMBERS: usize = 120;
/// Numbers 0..CUSTOMER_NUMBERS belong to customers; the rest are Owlie's own lines.
const CUSTOMER_NUMBERS: usize = 110;
const PRICE_SMS: i64 = 790; // 0.00790 USD in units of 0.00001
const PRICE_MMS: i64 = 2000;
const PRICE_LOCAL_NUMBER: i64 = 115_000;
const PRICE_TOLL_FREE_NUMBER: i64 = 215_000;

fn customer_name(i: usize) -> String {
    format!("{} {}", BIRDS[i], TRADES[i % TRADES.len()])
}

fn slug(name: &str) -> String {
    name.to_lowercase().replace(' ', "-")
}

/// An amount in units of 0.00001 as Twilio's decimal text.
fn money(units: i64) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let a = units.abs();
    format!("{sign}{}.{:05}", a / 100_000, a % 100_000)
}

fn iso(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

struct Number {
    sid: String,
    phone: String,
    customer: Option<usize>,
    toll_free: bool,
    /// Messaging Service today.
    service: Option<usize>,
    /// Messaging Service before `SERVICE_SWITCH` (numbers that changed service).
    earlier_service: Option<usize>,
    contacts: Vec<String>,
}

struct Service {
    sid: String,
    name: &'static str,
}

/// Per-month totals for the parent's usage records, prices in units of 0.00001 USD. A usage
/// record's `count` is the number of messages and its `usage` the segments billed (Twilio's
/// spec: count = "the number of usage events", usage = "the amount of usage").
#[derive(Default, Clone, Copy)]
struct MonthTotals {
    /// Inbound messages (one segment each here).
    sms_in: i64,
    sms_out: i64,
    sms_out_segments: i64,
    sms_in_price: i64,
    sms_out_price: i64,
    mms: i64,
    mms_price: i64,
}

pub fn generate(out: &Path, options: SampleOptions) -> Result<SampleSummary> {
    let mut rng = Rng(options.seed ^ 0x5AB0_D17E);
    let since = Utc.with_ymd_and_hms(2025, 10, 1, 0, 0, 0).unwrap();
    let until = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let service_switch = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    let parent_sid = rng.sid("AC");
    let window = Window { since, until };
    let mut writer =
        SnapshotWriter::create_with(out, &parent_sid, window, false, options.compress)?;
    let created = to_rfc2822(&Utc.with_ymd_and_hms(2019, 5, 14, 9, 30, 0).unwrap());

    // Accounts: the parent and a few existing subaccounts (one suspended, one closed).
    let account_json = |sid: &str, name: &str, status: &str, rng: &mut Rng| {
        json!({
            "auth_token": format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64()),
            "date_created": created, "date_updated": created,
            "friendly_name": name, "owner_account_sid": parent_sid, "sid": sid,
            "status": status,
            "subresource_uris": {
                "incoming_phone_numbers": format!("/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json"),
                "messages": format!("/2010-04-01/Accounts/{sid}/Messages.json"),
                "usage": format!("/2010-04-01/Accounts/{sid}/Usage.json")
            },
            "type": "Full", "uri": format!("/2010-04-01/Accounts/{sid}.json")
        })
    };
    let parent = account_json(&parent_sid, "Owlie Notifications", "active", &mut rng);
    writer.write(Resource::Accounts, parent)?;
    // (customer index or None for an internal account, status)
    let existing: [(Option<usize>, &str); 6] = [
        (Some(0), "active"),
        (Some(1), "active"),
        (Some(2), "suspended"),
        (Some(3), "closed"),
        (Some(4), "active"),
        (None, "active"),
    ];
    let mut subaccounts: Vec<(String, Option<usize>, &str)> = Vec::new();
    for (customer, status) in existing {
        let sid = rng.sid("AC");
        let name = customer.map_or_else(|| "Owlie Staging".to_string(), customer_name);
        writer.write(
            Resource::Accounts,
            account_json(&sid, &name, status, &mut rng),
        )?;
        subaccounts.push((sid, customer, status));
    }

    // Messaging Services of the parent; the first has an A2P 10DLC campaign.
    let services: Vec<Service> = ["Owlie Alerts", "Owlie Reminders", "Owlie Toll-Free"]
        .into_iter()
        .map(|name| Service {
            sid: rng.sid("MG"),
            name,
        })
        .collect();

    // Traffic per number and day; end users grow with it, so that a big snapshot is many
    // conversations rather than the same few people texted hundreds of times.
    let days = (until - since).num_days();
    // Outbound messages per number per day (in thousandths), so that the total lands near
    // the requested count (about 1 in 12 outbound draws a reply).
    let per_day_milli = (options.messages * 1000 * 12 / 13) / (NUMBERS as u64 * days as u64);
    let contact_scale = (per_day_milli / 100).max(1) as usize;

    // Numbers.
    let mut numbers: Vec<Number> = Vec::new();
    let mut customer_contacts: HashMap<usize, Vec<String>> = HashMap::new();
    let mut contact_serial = 0u32;
    // Unique by construction: the serial picks the area code and the subscriber digits.
    let mut new_contact = || {
        contact_serial += 1;
        format!(
            "+1{}{:07}",
            AREA_CODES[contact_serial as usize % AREA_CODES.len()],
            2_000_000 + contact_serial / AREA_CODES.len() as u32
        )
    };
    for n in 0..NUMBERS {
        let customer = (n < CUSTOMER_NUMBERS).then_some(n % 50);
        let toll_free = n % 15 == 7;
        let phone = if toll_free {
            format!("+1{}5550{:03}", TOLL_FREE[n % TOLL_FREE.len()], 100 + n)
        } else {
            format!("+1{}5550{:03}", AREA_CODES[n % AREA_CODES.len()], 100 + n)
        };
        let hosted = n == 42;
        let service = if toll_free {
            Some(2)
        } else if hosted {
            None
        } else {
            match n % 3 {
                0 => Some(0),
                1 => Some(1),
                _ => None,
            }
        };
        let earlier_service = if service == Some(0) && n < 30 {
            Some(1)
        } else {
            service
        };
        // End users: mostly the customer's shared pool (so service-wide opt-outs matter),
        // some only on this number.
        let pool = customer_contacts
            .entry(customer.unwrap_or(1000 + n))
            .or_default();
        while pool.len() < 12 * contact_scale {
            pool.push(new_contact());
        }
        let mut contacts: Vec<String> = pool.iter().take(8 * contact_scale).cloned().collect();
        for _ in 0..4 * contact_scale {
            contacts.push(new_contact());
        }
        numbers.push(Number {
            sid: rng.sid("PN"),
            phone,
            customer,
            toll_free,
            service,
            earlier_service,
            contacts,
        });
    }
    for (n, number) in numbers.iter().enumerate() {
        let record = number_json(n, number, &parent_sid, &created, &mut rng);
        writer.write(Resource::IncomingPhoneNumbers, record)?;
    }

    for (i, service) in services.iter().enumerate() {
        let date = iso(&Utc
            .with_ymd_and_hms(2023, 2, 1 + i as u32, 12, 0, 0)
            .unwrap());
        writer.write(
            Resource::MessagingServices,
            json!({
                "account_sid": parent_sid, "area_code_geomatch": true,
                "date_created": date, "date_updated": date,
                "fallback_method": "POST", "fallback_to_long_code": true, "fallback_url": null,
                "friendly_name": service.name,
                "inbound_method": "POST",
                "inbound_request_url": format!("https://hooks.owlie.io/services/{}", slug(service.name)),
                "links": {
                    "phone_numbers": format!("https://messaging.twilio.com/v1/Services/{}/PhoneNumbers", service.sid),
                    "us_app_to_person": format!("https://messaging.twilio.com/v1/Services/{}/Compliance/Usa2p", service.sid)
                },
                "mms_converter": true, "scan_message_content": "inherit", "sid": service.sid,
                "smart_encoding": true, "status_callback": null, "sticky_sender": true,
                "synchronous_validation": true,
                "url": format!("https://messaging.twilio.com/v1/Services/{}", service.sid),
                "us_app_to_person_registered": i == 0,
                "use_inbound_webhook_on_number": false,
                "usecase": if i == 0 { "notifications" } else { "undeclared" },
                "validity_period": 14400
            }),
        )?;
    }
    for number in &numbers {
        if let Some(s) = number.service {
            let sid = &services[s].sid;
            let date = iso(&Utc.with_ymd_and_hms(2024, 1, 15, 10, 0, 0).unwrap());
            writer.write(
                Resource::ServicePhoneNumbers,
                json!({
                    "account_sid": parent_sid,
                    "capabilities": ["SMS", "MMS", "Voice"],
                    "country_code": "US",
                    "date_created": date, "date_updated": date,
                    "phone_number": number.phone, "service_sid": sid, "sid": number.sid,
                    "url": format!("https://messaging.twilio.com/v1/Services/{sid}/PhoneNumbers/{}", number.sid)
                }),
            )?;
        }
    }
    let campaign_date = iso(&Utc.with_ymd_and_hms(2024, 2, 20, 16, 0, 0).unwrap());
    let campaign_sid = rng.sid("QE");
    writer.write(
        Resource::A2pCampaigns,
        json!({
            "account_sid": parent_sid, "age_gated": false,
            "brand_registration_sid": rng.sid("BN"),
            "campaign_id": "CXQ7R2B", "campaign_status": "VERIFIED",
            "date_created": campaign_date, "date_updated": campaign_date,
            "description": "Appointment and delivery notifications sent by Owlie Notifications on behalf of its business customers.",
            "direct_lending": false, "errors": [], "has_embedded_links": true,
            "has_embedded_phone": false,
            "help_keywords": ["HELP", "INFO"],
            "help_message": "Owlie Notifications: reply STOP to unsubscribe. Help: support@owlie.io",
            "is_externally_registered": false,
            "message_flow": "End users opt in when they book with a customer of Owlie and tick the SMS box.",
            "message_samples": ["Your appointment with Heron Health is tomorrow at 10:00. Reply STOP to opt out.", "Your Falcon Flights booking FF123 is confirmed."],
            "messaging_service_sid": services[0].sid, "mock": false,
            "opt_in_keywords": ["START"], "opt_in_message": "You are subscribed to Owlie alerts. Reply STOP to stop.",
            "opt_out_keywords": ["STOP"], "opt_out_message": "You are unsubscribed. Reply START to resubscribe.",
            "rate_limits": {"att": {"mps": 600, "msg_class": "A"}, "tmobile": {"brand_tier": "TOP"}},
            "sid": campaign_sid, "subscriber_opt_in": true,
            "url": format!("https://messaging.twilio.com/v1/Services/{}/Compliance/Usa2p/{campaign_sid}", services[0].sid),
            "us_app_to_person_usecase": "ACCOUNT_NOTIFICATION"
        }),
    )?;

    let mut opted_out: HashMap<(String, String), bool> = HashMap::new();
    // Some end users opted out before the logs begin (over 400 days ago): only the 21610
    // refusals of later sends through a service show it; those from a number leave no trace
    // in the logs (the API refuses them), only in the app's records (evidence.csv).
    let mut evidence = EvidenceRecords::default();
    for number in &numbers {
        let scope = number
            .earlier_service
            .map_or_else(|| number.phone.clone(), |s| services[s].sid.clone());
        for contact in &number.contacts {
            if rng.chance(15) {
                opted_out.insert((scope.clone(), contact.clone()), true);
                evidence.before_logs.push((
                    number.phone.clone(),
                    number.earlier_service.map(|s| services[s].sid.clone()),
                    contact.clone(),
                ));
            }
        }
    }
    let mut months: HashMap<(i32, u32), MonthTotals> = HashMap::new();
    let mut message_count = 0u64;
    let late_price_from = until - Duration::days(2);
    for day in 0..days {
        let day_start = since + Duration::days(day);
        for number in &numbers {
            let mut budget = per_day_milli;
            let mut count = budget / 1000;
            budget %= 1000;
            if rng.below(1000) < budget {
                count += 1;
            }
            // In time order, so that each end user's state follows its own history.
            let mut times: Vec<i64> = (0..count)
                .map(|_| rng.below(86_400 - 3_600) as i64)
                .collect();
            times.sort_unstable();
            for offset in times {
                let at = day_start + Duration::seconds(offset);
                let contact = rng.pick(&number.contacts).clone();
                let service = if at < service_switch {
                    number.earlier_service
                } else {
                    number.service
                };
                let service_sid = service.map(|s| services[s].sid.clone());
                let scope = service_sid.clone().unwrap_or_else(|| number.phone.clone());
                let key = (scope, contact.clone());
                let is_opted_out = opted_out.get(&key).copied().unwrap_or(false);
                let mms = rng.chance(80);
                let segments: i64 = if mms { 1 } else { 1 + rng.below(3) as i64 };
                let mut msg = OutMessage {
                    sid: rng.sid(if mms { "MM" } else { "SM" }),
                    at,
                    from: number.phone.clone(),
                    to: contact.clone(),
                    service_sid: service_sid.clone(),
                    segments,
                    media: if mms { 1 } else { 0 },
                    status: "delivered",
                    error_code: None,
                    price: Some(-(if mms { PRICE_MMS } else { PRICE_SMS * segments })),
                    date_sent_null: false,
                };
                if is_opted_out && !rng.chance(30) {
                    // Twilio refuses: 21610, no charge, never sent.
                    msg.status = "failed";
                    msg.error_code = Some(21610);
                    msg.price = None;
                    msg.date_sent_null = rng.chance(500);
                } else if rng.chance(25) {
                    msg.status = "undelivered";
                    msg.error_code = Some(*rng.pick(&[30003, 30005, 30007]));
                }
                if msg.error_code == Some(21610) && msg.service_sid.is_none() {
                    // Real Twilio refuses a send from a number to an opted-out user with
                    // HTTP 400 and keeps no message: only the app knows (evidence.csv).
                    evidence
                        .refused
                        .push((at, number.phone.clone(), contact.clone()));
                    continue;
                }
                let billed = msg.price.map_or(0, |p| -p);
                if at >= late_price_from {
                    msg.price = None; // not priced yet at snapshot time
                }
                let totals = months.entry((at.year(), at.month())).or_default();
                if msg.error_code != Some(21610) {
                    if mms {
                        totals.mms += 1;
                        totals.mms_price += billed;
                    } else {
                        totals.sms_out += 1;
                        totals.sms_out_segments += segments;
                        totals.sms_out_price += billed;
                    }
                }
                writer.write(Resource::Messages, outbound_json(&msg, &parent_sid))?;
                message_count += 1;

                // A reply now and then.
                if msg.error_code.is_some() || !rng.chance(85) {
                    continue;
                }
                let reply_at = at + Duration::seconds(5 + rng.below(1800) as i64);
                let body = reply_body(&mut rng, is_opted_out);
                let normal = body.trim().to_uppercase();
                if TWILIO_OPT_OUT.contains(&normal.as_str()) {
                    if service_sid.is_none() {
                        evidence
                            .stopped
                            .push((number.phone.clone(), contact.clone()));
                    }
                    opted_out.insert(key, true);
                } else if TWILIO_OPT_IN.contains(&normal.as_str()) {
                    opted_out.insert(key, false);
                }
                let reply = json!({
                    "account_sid": parent_sid, "api_version": "2010-04-01",
                    "body": body,
                    "date_created": to_rfc2822(&reply_at), "date_sent": to_rfc2822(&reply_at),
                    "date_updated": to_rfc2822(&reply_at),
                    "direction": "inbound", "error_code": null, "error_message": null,
                    "from": contact, "messaging_service_sid": service_sid,
                    "num_media": "0", "num_segments": "1",
                    "price": if reply_at >= late_price_from { Value::Null } else { json!(money(-PRICE_SMS)) },
                    "price_unit": "USD",
                    "sid": rng.sid("SM"), "status": "received",
                    "subresource_uris": {},
                    "to": number.phone, "uri": ""
                });
                let reply = with_uris(reply, &parent_sid);
                let totals = months
                    .entry((reply_at.year(), reply_at.month()))
                    .or_default();
                totals.sms_in += 1;
                totals.sms_in_price += PRICE_SMS;
                writer.write(Resource::Messages, reply)?;
                message_count += 1;
            }
        }
    }

    // Monthly usage records: the parent's from its traffic, the subaccounts' modest.
    let mut usage_records = 0u64;
    let local = numbers.iter().filter(|n| !n.toll_free).count() as i64;
    let toll_free = numbers.len() as i64 - local;
    let mut month = NaiveDate::from_ymd_opt(2025, 10, 1).unwrap();
    let last = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
    while month <= last {
        let next = month.checked_add_months(chrono::Months::new(1)).unwrap();
        let end = next.pred_opt().unwrap();
        let totals = months
            .get(&(month.year(), month.month()))
            .copied()
            .unwrap_or_default();
        let calls = 40 + rng.below(60) as i64;
        let minutes = calls * (2 + rng.below(4) as i64);
        let calls_price = minutes * 1_400;
        let numbers_price = local * PRICE_LOCAL_NUMBER + toll_free * PRICE_TOLL_FREE_NUMBER;
        let sms_price = totals.sms_in_price + totals.sms_out_price;
        let parent_rows = [
            (
                "sms",
                totals.sms_in + totals.sms_out,
                "messages",
                totals.sms_in + totals.sms_out_segments,
                "segments",
                sms_price,
            ),
            (
                "sms-inbound",
                totals.sms_in,
                "messages",
                totals.sms_in,
                "segments",
                totals.sms_in_price,
            ),
            (
                "sms-outbound",
                totals.sms_out,
                "messages",
                totals.sms_out_segments,
                "segments",
                totals.sms_out_price,
            ),
            (
                "mms",
                totals.mms,
                "messages",
                totals.mms,
                "messages",
                totals.mms_price,
            ),
            ("calls", calls, "calls", minutes, "minutes", calls_price),
            (
                "phonenumbers",
                local + toll_free,
                "phone-numbers",
                local + toll_free,
                "phone-numbers",
                numbers_price,
            ),
            (
                "totalprice",
                0,
                "",
                0,
                "usd",
                sms_price + totals.mms_price + calls_price + numbers_price,
            ),
        ];
        for (category, count, count_unit, usage, usage_unit, price) in parent_rows {
            writer.write(
                Resource::UsageRecords,
                usage_json(
                    &parent_sid,
                    category,
                    count,
                    count_unit,
                    usage,
                    usage_unit,
                    price,
                    month,
                    end,
                    until,
                ),
            )?;
            usage_records += 1;
        }
        for (sid, customer, status) in &subaccounts {
            // A closed account stopped in spring; the suspended one has numbers but no traffic.
            let active = match *status {
                "closed" => month < NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
                _ => true,
            };
            let sms = if active && *status != "suspended" {
                200 + rng.below(900) as i64
            } else {
                0
            };
            let numbers_held = if customer.is_some() { 2 } else { 1 };
            let sms_price = sms * PRICE_SMS;
            let numbers_price = if active {
                numbers_held * PRICE_LOCAL_NUMBER
            } else {
                0
            };
            let rows = [
                ("sms", sms, "messages", sms, "segments", sms_price),
                (
                    "phonenumbers",
                    numbers_held,
                    "phone-numbers",
                    numbers_held,
                    "phone-numbers",
                    numbers_price,
                ),
                ("totalprice", 0, "", 0, "usd", sms_price + numbers_price),
            ];
            for (category, count, count_unit, usage, usage_unit, price) in rows {
                writer.write(
                    Resource::UsageRecords,
                    usage_json(
                        sid, category, count, count_unit, usage, usage_unit, price, month, end,
                        until,
                    ),
                )?;
                usage_records += 1;
            }
        }
        month = next;
    }
    writer.finish_at("subaudit sample", until)?;
    write_atomic(
        &out.join("mapping.csv"),
        mapping_csv(&numbers, &subaccounts).as_bytes(),
    )?;
    write_atomic(
        &out.join("evidence.csv"),
        evidence
            .csv(options.seed, since, until, &opted_out)?
            .as_bytes(),
    )?;
    Ok(SampleSummary {
        numbers: numbers.len(),
        customers: 50,
        messages: message_count,
        usage_records,
    })
}

/// What the app of the sample keeps that the logs do not show, for `evidence.csv`.
#[derive(Default)]
struct EvidenceRecords {
    /// Opt-outs before the logs begin: (number, service at the time, end user).
    before_logs: Vec<(String, Option<String>, String)>,
    /// Sends from a number the API refused with 21610: (time, number, end user).
    refused: Vec<(DateTime<Utc>, String, String)>,
    /// Inbound opt-out keywords on a number outside any service: (number, end user).
    stopped: Vec<(String, String)>,
}

impl EvidenceRecords {
    /// A small `evidence.csv` (`--evidence`): STOP webhooks from before the logs (on numbers
    /// and one on a service), 21610 errors the API answered to sends from a number, and one
    /// opt-in from the app's web form that cancels an opt-out of the logs. Its own generator,
    /// so that the messages do not change with it.
    fn csv(
        &self,
        seed: u64,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        state: &HashMap<(String, String), bool>,
    ) -> Result<String> {
        let mut rng = Rng(seed ^ 0xE71D_E7CE);
        // time, end user, number, service, kind, note
        type Row<'a> = (DateTime<Utc>, String, String, String, &'a str, &'a str);
        let mut rows: Vec<Row> = Vec::new();
        let before = |rng: &mut Rng| {
            since - Duration::days(30 + rng.below(300) as i64)
                + Duration::seconds(rng.below(86_400) as i64)
        };
        let on_number = self.before_logs.iter().filter(|(_, s, _)| s.is_none());
        for (number, _, user) in on_number.clone().take(8) {
            let at = before(&mut rng);
            rows.push((
                at,
                user.clone(),
                number.clone(),
                String::new(),
                "opt-out",
                "STOP webhook",
            ));
        }
        if let Some((number, Some(service), user)) =
            self.before_logs.iter().find(|(_, s, _)| s.is_some())
        {
            let at = before(&mut rng);
            rows.push((
                at,
                user.clone(),
                number.clone(),
                service.clone(),
                "opt-out",
                "STOP webhook via the service",
            ));
        }
        // Refused sends to users the rows above do not cover yet: the API's 21610 errors.
        let covered: Vec<(&String, &String)> = on_number.take(8).map(|(n, _, u)| (n, u)).collect();
        let mut refused: Vec<(&String, &String)> = Vec::new();
        for (at, number, user) in &self.refused {
            if refused.len() == 3
                || covered.contains(&(number, user))
                || refused.contains(&(number, user))
            {
                continue;
            }
            refused.push((number, user));
            rows.push((
                *at,
                user.clone(),
                number.clone(),
                String::new(),
                "opt-out",
                "HTTP 400 error 21610 on send",
            ));
        }
        // An opt-in the logs do not show, after every message: cancels a logged STOP.
        if let Some((number, user)) = self
            .stopped
            .iter()
            .find(|(n, u)| state.get(&(n.clone(), u.clone())) == Some(&true))
        {
            rows.push((
                until - Duration::minutes(10),
                user.clone(),
                number.clone(),
                String::new(),
                "opt-in",
                "re-subscribed on the web form",
            ));
        }
        rows.sort_by_key(|row| row.0);
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer
            .write_record(crate::audit::evidence::COLUMNS)
            .map_err(|e| crate::Error::failed("cannot write evidence.csv", e))?;
        for (at, user, number, service, kind, note) in rows {
            let time = crate::time::rfc3339(&at);
            writer
                .write_record([time.as_str(), &user, &number, &service, kind, note])
                .map_err(|e| crate::Error::failed("cannot write evidence.csv", e))?;
        }
        let bytes = writer
            .into_inner()
            .map_err(|e| crate::Error::failed("cannot write evidence.csv", e))?;
        Ok(String::from_utf8(bytes).unwrap_or_default())
    }
}

struct OutMessage {
    sid: String,
    at: DateTime<Utc>,
    from: String,
    to: String,
    service_sid: Option<String>,
    segments: i64,
    media: i64,
    status: &'static str,
    error_code: Option<i64>,
    price: Option<i64>,
    date_sent_null: bool,
}

fn with_uris(mut message: Value, parent_sid: &str) -> Value {
    let sid = message["sid"].as_str().unwrap_or_default().to_string();
    message["uri"] = json!(format!(
        "/2010-04-01/Accounts/{parent_sid}/Messages/{sid}.json"
    ));
    message["subresource_uris"] = json!({
        "media": format!("/2010-04-01/Accounts/{parent_sid}/Messages/{sid}/Media.json")
    });
    message
}

fn outbound_json(m: &OutMessage, parent_sid: &str) -> Value {
    let sent = to_rfc2822(&m.at);
    let error_message = match m.error_code {
        Some(21610) => Some("Attempt to send to unsubscribed recipient"),
        Some(30003) => Some("Unreachable destination handset"),
        Some(30005) => Some("Unknown destination handset"),
        Some(30007) => Some("Message filtered"),
        _ => None,
    };
    let message = json!({
        "account_sid": parent_sid, "api_version": "2010-04-01",
        // Outbound bodies are personal data: a pull drops them unless asked, so the sample
        // has none either.
        "body": null,
        "date_created": sent,
        "date_sent": if m.date_sent_null { Value::Null } else { json!(sent) },
        "date_updated": to_rfc2822(&(m.at + Duration::seconds(3))),
        "direction": "outbound-api",
        "error_code": m.error_code, "error_message": error_message,
        "from": m.from, "messaging_service_sid": m.service_sid,
        "num_media": m.media.to_string(), "num_segments": m.segments.to_string(),
        "price": m.price.map(money), "price_unit": "USD",
        "sid": m.sid, "status": m.status,
        "subresource_uris": {}, "to": m.to, "uri": ""
    });
    with_uris(message, parent_sid)
}

/// Twilio's default keywords, restated here rather than taken from the audit: the generator
/// must not share the code it produces test data for (docs: the opt-out rule).
const TWILIO_OPT_OUT: [&str; 8] = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
];
const TWILIO_OPT_IN: [&str; 3] = ["START", "YES", "UNSTOP"];

fn reply_body(rng: &mut Rng, opted_out: bool) -> String {
    const STOPS: [&str; 14] = [
        "STOP",
        "stop",
        "Stop",
        " STOP ",
        "Stop\n",
        "sToP",
        "Unsubscribe",
        "cancel",
        "QUIT",
        "end",
        "STOPALL",
        "Revoke",
        "OPTOUT",
        "stop ",
    ];
    const STARTS: [&str; 5] = ["START", "start", "Yes", "UNSTOP", "Start"];
    const NEAR: [&str; 8] = [
        "Stop please",
        "STOP!!",
        "please stop texting me",
        "Opt out",
        "unsubscribe me",
        "stop.",
        "Can you stop these?",
        "END this",
    ];
    const HELP: [&str; 3] = ["HELP", "help", "Info"];
    const CHAT: [&str; 10] = [
        "Thanks!",
        "Ok",
        "See you then",
        "Can I reschedule?",
        "Running 10 min late",
        "Got it, thank you",
        "Is this still on?",
        "Who is this?",
        "Perfect",
        "Stopping by later today",
    ];
    let roll = rng.below(100);
    let body = if opted_out {
        if roll < 45 {
            rng.pick(&STARTS)
        } else if roll < 60 {
            rng.pick(&STOPS)
        } else {
            rng.pick(&CHAT)
        }
    } else if roll < 30 {
        rng.pick(&STOPS)
    } else if roll < 40 {
        rng.pick(&NEAR)
    } else if roll < 48 {
        rng.pick(&HELP)
    } else {
        rng.pick(&CHAT)
    };
    body.to_string()
}

fn number_json(n: usize, number: &Number, parent_sid: &str, created: &str, rng: &mut Rng) -> Value {
    let customer = number.customer.map(customer_name);
    let digits = &number.phone[2..];
    let pretty = format!("({}) {}-{}", &digits[0..3], &digits[3..6], &digits[6..]);
    let friendly = match (&customer, n % 10) {
        (Some(c), 0..=3) => format!(
            "{c} - {}",
            ["alerts", "reminders", "support", "bookings"][n % 4]
        ),
        (Some(c), 4..=5) => format!("owlie-{}-{}", slug(c), n / 50 + 1),
        (None, _) => "Owlie support line".to_string(),
        _ => pretty,
    };
    let hook = match (&customer, n % 4) {
        (Some(c), 0 | 1) => format!("https://hooks.owlie.io/sms/{}", slug(c)),
        (Some(c), 2) => format!(
            "https://{}.example.com/twilio/sms",
            slug(c).replace('-', "")
        ),
        _ => "https://hooks.owlie.io/sms/inbound".to_string(),
    };
    let voice_hook = match &customer {
        Some(c) if n.is_multiple_of(3) => format!("https://hooks.owlie.io/voice/{}", slug(c)),
        _ => "https://hooks.owlie.io/voice/inbound".to_string(),
    };
    let with_bundle = [3usize, 28, 53, 78].contains(&n);
    let address_any = n == 64;
    let emergency = [10usize, 60].contains(&n);
    let app = [5usize, 33, 91].contains(&n);
    json!({
        "account_sid": parent_sid,
        "address_requirements": if with_bundle { "local" } else if address_any { "any" } else { "none" },
        "address_sid": if with_bundle || address_any { Some(rng.sid("AD")) } else { None },
        "api_version": "2010-04-01", "beta": false,
        "bundle_sid": if with_bundle { Some(rng.sid("BU")) } else { None },
        "capabilities": {"fax": false, "mms": true, "sms": true, "voice": true},
        "date_created": created, "date_updated": created,
        "emergency_address_sid": if emergency { Some(rng.sid("AD")) } else { None },
        "emergency_address_status": if emergency { "registered" } else { "unregistered" },
        "emergency_status": if emergency { "Active" } else { "Inactive" },
        "friendly_name": friendly,
        "identity_sid": null,
        "origin": if n == 42 { "hosted" } else { "twilio" },
        "phone_number": number.phone,
        "sid": number.sid,
        "sms_application_sid": if app { Some(rng.sid("AP")) } else { None },
        "sms_fallback_method": "POST", "sms_fallback_url": "",
        "sms_method": "POST", "sms_url": if app { String::new() } else { hook },
        "status": "in-use",
        "status_callback": "", "status_callback_method": "POST",
        "trunk_sid": if n == 17 { Some(rng.sid("TK")) } else { None },
        "type": if number.toll_free { "toll-free" } else { "local" },
        "uri": format!("/2010-04-01/Accounts/{parent_sid}/IncomingPhoneNumbers/{}.json", number.sid),
        "voice_application_sid": if app { Some(rng.sid("AP")) } else { None },
        "voice_caller_id_lookup": false,
        "voice_fallback_method": "POST", "voice_fallback_url": "",
        "voice_method": "POST", "voice_receive_mode": "voice",
        "voice_url": if n == 17 || app { String::new() } else { voice_hook }
    })
}

#[allow(clippy::too_many_arguments)]
fn usage_json(
    account_sid: &str,
    category: &str,
    count: i64,
    count_unit: &str,
    usage: i64,
    usage_unit: &str,
    price: i64,
    start: NaiveDate,
    end: NaiveDate,
    as_of: DateTime<Utc>,
) -> Value {
    let description = match category {
        "sms" => "SMS",
        "sms-inbound" => "Inbound SMS",
        "sms-outbound" => "Outbound SMS",
        "mms" => "MMS",
        "calls" => "Voice Minutes",
        "phonenumbers" => "Phone Numbers",
        _ => "Total Price",
    };
    let base = format!("/2010-04-01/Accounts/{account_sid}/Usage/Records/Monthly.json?Category={category}&StartDate={start}&EndDate={end}");
    json!({
        "account_sid": account_sid, "api_version": "2010-04-01",
        "as_of": as_of.format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
        "category": category,
        "count": count.to_string(), "count_unit": count_unit,
        "description": description,
        "end_date": end.to_string(),
        "price": money(price), "price_unit": "usd",
        "start_date": start.to_string(),
        "subresource_uris": {
            "all_time": format!("/2010-04-01/Accounts/{account_sid}/Usage/Records/AllTime.json?Category={category}"),
            "monthly": format!("/2010-04-01/Accounts/{account_sid}/Usage/Records/Monthly.json?Category={category}")
        },
        "uri": base,
        "usage": usage.to_string(), "usage_unit": usage_unit
    })
}

/// The sample mapping: most customer numbers mapped (E.164, some by PN sid), existing
/// subaccounts named by sid or by name in another case, three numbers left out, Owlie's own
/// lines staying, and one number mapped to two customers (a conflict the plan blocks).
fn mapping_csv(numbers: &[Number], subaccounts: &[(String, Option<usize>, &str)]) -> String {
    let mut out = String::from("number,customer,subaccount_sid\n");
    for (n, number) in numbers.iter().enumerate() {
        let Some(customer) = number.customer else {
            continue;
        };
        if [9usize, 64, 99].contains(&n) {
            continue;
        }
        let id = if n % 10 == 5 {
            &number.sid
        } else {
            &number.phone
        };
        let name = customer_name(customer);
        let sid = subaccounts
            .iter()
            .find(|(_, c, _)| *c == Some(customer))
            .map(|(sid, _, _)| sid.as_str());
        let (name, sid) = match customer {
            0 | 3 => (name, sid.unwrap_or("")),
            1 => (name.to_lowercase(), ""),
            _ => (name, ""),
        };
        out.push_str(&format!("{id},{name},{sid}\n"));
    }
    out.push_str(&format!("{},{},\n", numbers[20].phone, customer_name(21)));
    out
}
