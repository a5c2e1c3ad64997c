//! The snapshot, indexed for serving: raw JSON lines plus the few fields the filters need.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::IncomingPhoneNumber;
use crate::snapshot::{for_each_line, OpenOptions, Resource, Snapshot};

pub struct SimAccount {
    pub sid: String,
    pub owner: Option<String>,
    pub friendly_name: String,
    pub status: String,
    /// The token the twin accepts for this account (it is also in `raw`, as Twilio serves it).
    pub auth_token: String,
    pub raw: String,
}

/// An IncomingPhoneNumber and the account that owns it now.
pub struct SimNumber {
    pub account: String,
    pub sid: String,
    pub phone_number: String,
    /// Toll-free numbers carry the carrier network's own opt-out block with them.
    pub toll_free: bool,
    pub raw: String,
}

/// A Messaging Service of any account of the family.
pub struct SimService {
    pub sid: String,
    pub account: String,
    pub raw: String,
}

/// A number's membership in a Messaging Service (the record `/PhoneNumbers` lists).
pub struct SimServiceNumber {
    pub service: String,
    pub number_sid: String,
    pub raw: String,
}

pub struct SimMessage {
    /// `date_sent` (else `date_created`) as Unix seconds; `i64::MIN` when neither.
    pub ts: i64,
    pub sid: Box<str>,
    pub account: Box<str>,
    pub from: Box<str>,
    pub to: Box<str>,
    pub raw: Box<str>,
}

pub struct UsageRow {
    pub account: String,
    pub category: String,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub value: Value,
    pub raw: String,
}

/// A usage record as served.
pub struct UsageOut {
    pub category: String,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub raw: String,
}

pub struct SimData {
    pub parent: String,
    pub accounts: Vec<SimAccount>,
    pub numbers: Vec<SimNumber>,
    pub services: Vec<SimService>,
    pub service_numbers: Vec<SimServiceNumber>,
    /// (service sid, raw)
    pub campaigns: Vec<(String, String)>,
    /// (service sid, raw record) of the services' short codes and alphanumeric senders.
    pub short_codes: Vec<(String, String)>,
    pub alpha_senders: Vec<(String, String)>,
    /// Newest first, as Twilio lists them.
    messages: Vec<SimMessage>,
    usage: Vec<UsageRow>,
    /// Numbers with `whatsapp:` traffic in the logs (WhatsApp senders), as E.164.
    pub whatsapp_senders: HashSet<String>,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

impl SimData {
    pub fn load(dir: &Path) -> Result<SimData> {
        let snapshot = Snapshot::open(
            dir,
            OpenOptions {
                allow_incomplete: true,
            },
        )?;
        let parent = snapshot.parent_sid().to_string();
        let mut data = SimData {
            parent: parent.clone(),
            accounts: Vec::new(),
            numbers: Vec::new(),
            services: Vec::new(),
            service_numbers: Vec::new(),
            campaigns: Vec::new(),
            short_codes: Vec::new(),
            alpha_senders: Vec::new(),
            messages: Vec::new(),
            usage: Vec::new(),
            whatsapp_senders: HashSet::new(),
        };
        for_each_record(&snapshot, Resource::Accounts, |mut v, _| {
            // Twilio lists every account with its auth token: serve one, so that a client
            // that forgot to drop it would be caught.
            let sid = text(&v, "sid");
            let auth_token = format!("simulated-token-{}", &sid[sid.len().saturating_sub(8)..]);
            if let Value::Object(map) = &mut v {
                map.insert("auth_token".into(), Value::String(auth_token.clone()));
            }
            data.accounts.push(SimAccount {
                auth_token,
                sid: text(&v, "sid"),
                owner: v
                    .get("owner_account_sid")
                    .and_then(Value::as_str)
                    .map(String::from),
                friendly_name: text(&v, "friendly_name"),
                status: text(&v, "status"),
                raw: v.to_string(),
            });
            Ok(())
        })?;
        for_each_record(&snapshot, Resource::IncomingPhoneNumbers, |v, raw| {
            let owner = v
                .get("account_sid")
                .and_then(Value::as_str)
                .unwrap_or(&parent)
                .to_string();
            let toll_free = serde_json::from_value::<IncomingPhoneNumber>(v.clone())
                .is_ok_and(|n| n.is_toll_free());
            data.numbers.push(SimNumber {
                account: owner,
                sid: text(&v, "sid"),
                phone_number: text(&v, "phone_number"),
                toll_free,
                raw: raw.to_string(),
            });
            Ok(())
        })?;
        for_each_record(&snapshot, Resource::MessagingServices, |v, raw| {
            let account = v
                .get("account_sid")
                .and_then(Value::as_str)
                .unwrap_or(&parent)
                .to_string();
            data.services.push(SimService {
                sid: text(&v, "sid"),
                account,
                raw: raw.to_string(),
            });
            Ok(())
        })?;
        for_each_record(&snapshot, Resource::ServicePhoneNumbers, |v, raw| {
            data.service_numbers.push(SimServiceNumber {
                service: text(&v, "service_sid"),
                number_sid: text(&v, "sid"),
                raw: raw.to_string(),
            });
            Ok(())
        })?;
        for_each_record(&snapshot, Resource::A2pCampaigns, |v, raw| {
            data.campaigns
                .push((text(&v, "messaging_service_sid"), raw.to_string()));
            Ok(())
        })?;
        for_each_record(&snapshot, Resource::ServiceShortCodes, |v, raw| {
            data.short_codes
                .push((text(&v, "service_sid"), raw.to_string()));
            Ok(())
        })?;
        for_each_record(&snapshot, Resource::ServiceAlphaSenders, |v, raw| {
            data.alpha_senders
                .push((text(&v, "service_sid"), raw.to_string()));
            Ok(())
        })?;
        for_each_record(&snapshot, Resource::Messages, |v, raw| {
            // Twilio does not document how DateSent filters treat a message never sent
            // (date_sent null, e.g. failed with 21610). The simulator's assumption: it is
            // filtered by date_created, so that every message is reachable by day slices.
            let time = |k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .and_then(crate::time::parse_twilio_time)
            };
            let ts = time("date_sent")
                .or_else(|| time("date_created"))
                .map_or(i64::MIN, |t| t.timestamp());
            for address in [text(&v, "from"), text(&v, "to")] {
                if let Some(phone) = address.strip_prefix("whatsapp:") {
                    data.whatsapp_senders.insert(phone.to_string());
                }
            }
            data.messages.push(SimMessage {
                ts,
                sid: text(&v, "sid").into(),
                account: v
                    .get("account_sid")
                    .and_then(Value::as_str)
                    .unwrap_or(&parent)
                    .into(),
                from: text(&v, "from").into(),
                to: text(&v, "to").into(),
                raw: raw.into(),
            });
            Ok(())
        })?;
        data.messages
            .sort_unstable_by(|a, b| b.ts.cmp(&a.ts).then_with(|| b.sid.cmp(&a.sid)));
        for_each_record(&snapshot, Resource::UsageRecords, |v, raw| {
            let day = |k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .and_then(crate::time::parse_date)
            };
            data.usage.push(UsageRow {
                account: text(&v, "account_sid"),
                category: text(&v, "category"),
                start_date: day("start_date"),
                end_date: day("end_date"),
                raw: raw.to_string(),
                value: v,
            });
            Ok(())
        })?;
        Ok(data)
    }

    pub fn message_count(&self) -> usize {
        self.messages.len()
    }

    pub fn account(&self, sid: &str) -> Option<&SimAccount> {
        self.accounts.iter().find(|a| a.sid == sid)
    }

    pub fn number(&self, sid: &str) -> Option<&SimNumber> {
        self.numbers.iter().find(|n| n.sid == sid)
    }

    pub fn number_by_phone(&self, phone: &str) -> Option<&SimNumber> {
        self.numbers.iter().find(|n| n.phone_number == phone)
    }

    pub fn service(&self, sid: &str) -> Option<&SimService> {
        self.services.iter().find(|s| s.sid == sid)
    }

    /// The service a number is in, if any (Twilio allows one).
    pub fn service_of_number(&self, number_sid: &str) -> Option<&str> {
        self.service_numbers
            .iter()
            .find(|m| m.number_sid == number_sid)
            .map(|m| m.service.as_str())
    }

    pub fn is_subaccount(&self, sid: &str) -> bool {
        sid != self.parent
            && self
                .accounts
                .iter()
                .any(|a| a.sid == sid && a.owner.as_deref() == Some(self.parent.as_str()))
    }

    /// Messages with `lo <= date_sent <= hi`, newest first (a binary search: the list is sorted).
    pub fn messages_between(&self, lo: i64, hi: i64) -> &[SimMessage] {
        let start = self.messages.partition_point(|m| m.ts > hi);
        let end = self.messages.partition_point(|m| m.ts >= lo);
        &self.messages[start..end.max(start)]
    }

    /// An account's usage records; with `include_subaccounts`, the parent's figures are summed
    /// with its subaccounts' per (category, period), as Twilio reports them by default.
    pub fn usage_for(&self, account: &str, include_subaccounts: bool) -> Vec<UsageOut> {
        let rolls_up = include_subaccounts && account == self.parent;
        // One group per (category, start, end): the rows Twilio would sum into one record.
        type Period = (String, Option<NaiveDate>, Option<NaiveDate>);
        let mut groups: Vec<(Period, Vec<&UsageRow>)> = Vec::new();
        let mut index: HashMap<Period, usize> = HashMap::new();
        for row in &self.usage {
            let counts = row.account == account || (rolls_up && self.is_subaccount(&row.account));
            if !counts {
                continue;
            }
            let key = (row.category.clone(), row.start_date, row.end_date);
            let i = *index.entry(key).or_insert_with(|| {
                groups.push((
                    (row.category.clone(), row.start_date, row.end_date),
                    Vec::new(),
                ));
                groups.len() - 1
            });
            groups[i].1.push(row);
        }
        groups
            .into_iter()
            .map(|((category, start_date, end_date), rows)| {
                let raw = if rows.len() == 1 && rows[0].account == account {
                    rows[0].raw.clone()
                } else {
                    let template = rows
                        .iter()
                        .find(|r| r.account == account)
                        .unwrap_or(&rows[0]);
                    let mut v = template.value.clone();
                    v["account_sid"] = Value::String(account.to_string());
                    for field in ["count", "usage", "price"] {
                        v[field] = sum_field(&rows, field);
                    }
                    v.to_string()
                };
                UsageOut {
                    category,
                    start_date,
                    end_date,
                    raw,
                }
            })
            .collect()
    }
}

/// Sums a decimal field (text, as Twilio sends it) over rows; null when none has it.
fn sum_field(rows: &[&UsageRow], field: &str) -> Value {
    let mut total: Option<Decimal> = None;
    for row in rows {
        let amount = match row.value.get(field) {
            Some(Value::String(s)) => Decimal::from_str(s.trim()).ok(),
            Some(Value::Number(n)) => Decimal::from_str(&n.to_string()).ok(),
            _ => None,
        };
        if let Some(a) = amount {
            total = Some(total.unwrap_or_default() + a);
        }
    }
    total.map_or(Value::Null, |t| Value::String(t.to_string()))
}

fn for_each_record(
    snapshot: &Snapshot,
    resource: Resource,
    mut visit: impl FnMut(Value, &str) -> Result<()>,
) -> Result<()> {
    for (path, _) in snapshot.data_files(resource)? {
        for_each_line(&path, |line_no, line| {
            let v: Value = serde_json::from_str(line)
                .map_err(|e| Error::at_line(&path, line_no, format!("not JSON: {e}")))?;
            visit(v, line)
        })?;
    }
    Ok(())
}
