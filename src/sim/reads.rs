//! The read side: Twilio's list and fetch endpoints over the twin's current state, both
//! paging styles with opaque tokens, the Messages and Usage Records filters (docs/simulator.md).

use axum::response::Response;
use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::{json, Map, Value};

use super::{
    bad_request, check_account, not_found, services, Handled, Principal, Request, Sim, SimData,
    World,
};

pub(super) fn route(sim: &Sim, world: &World, principal: &Principal, req: &Request) -> Handled {
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let data = &world.data;
    match segments.as_slice() {
        ["2010-04-01", "Accounts.json"] => {
            let items: Vec<&str> = data
                .accounts
                .iter()
                // Listing accounts is the parent's own resource: a key sees them too (reading
                // a subaccount's resources is what it may not do). A subaccount sees itself.
                .filter(|a| match principal {
                    Principal::Subaccount(own) => &a.sid == own,
                    _ => true,
                })
                .filter(|a| {
                    req.param("FriendlyName")
                        .is_none_or(|n| a.friendly_name == n)
                })
                .filter(|a| req.param("Status").is_none_or(|s| a.status == s))
                .map(|a| a.raw.as_str())
                .collect();
            page_2010(sim, req, "accounts", &items)
        }
        ["2010-04-01", "Accounts", account] if account.ends_with(".json") => {
            let sid = account.trim_end_matches(".json");
            check_account(data, principal, sid, &req.path)?;
            let a = data.account(sid).ok_or_else(|| not_found(&req.path))?;
            Ok(a.raw.clone())
        }
        ["2010-04-01", "Accounts", sid, rest @ ..] => {
            check_account(data, principal, sid, &req.path)?;
            match rest {
                ["IncomingPhoneNumbers.json"] => {
                    let items: Vec<&str> = data
                        .numbers
                        .iter()
                        .filter(|n| n.account == *sid)
                        .filter(|n| req.param("PhoneNumber").is_none_or(|p| n.phone_number == p))
                        .map(|n| n.raw.as_str())
                        .collect();
                    page_2010(sim, req, "incoming_phone_numbers", &items)
                }
                ["IncomingPhoneNumbers", pn] if pn.ends_with(".json") => data
                    .number(pn.trim_end_matches(".json"))
                    .filter(|n| n.account == *sid)
                    .map(|n| n.raw.clone())
                    .ok_or_else(|| not_found(&req.path)),
                ["Messages.json"] => messages(sim, world, sid, req),
                ["Messages", sm] if sm.ends_with(".json") => {
                    let sm = sm.trim_end_matches(".json");
                    world
                        .created_messages
                        .iter()
                        .chain(data.messages_between(i64::MIN, i64::MAX))
                        .find(|m| &*m.sid == sm && &*m.account == *sid)
                        .map(|m| m.raw.to_string())
                        .ok_or_else(|| not_found(&req.path))
                }
                ["Usage", "Records.json"] | ["Usage", "Records", "Monthly.json"] => {
                    usage(sim, data, sid, req)
                }
                _ => Err(not_found(&req.path)),
            }
        }
        ["v1", "Services"] => {
            let account = principal.account(&data.parent);
            let items: Vec<&str> = data
                .services
                .iter()
                .filter(|s| s.account == account)
                .map(|s| s.raw.as_str())
                .collect();
            page_v1(sim, req, "services", &items)
        }
        ["v1", "Services", mg] => {
            services::check_access(data, principal, mg, &req.path)?;
            Ok(data.service(mg).map(|s| s.raw.clone()).unwrap_or_default())
        }
        ["v1", "Services", mg, "PhoneNumbers", pn] => {
            services::check_access(data, principal, mg, &req.path)?;
            data.service_numbers
                .iter()
                .find(|m| m.service == *mg && m.number_sid == *pn)
                .map(|m| m.raw.clone())
                .ok_or_else(|| not_found(&req.path))
        }
        ["v1", "Services", mg, rest @ ..] => {
            services::check_access(data, principal, mg, &req.path)?;
            let (key, items): (&str, Vec<&str>) = match rest {
                ["PhoneNumbers"] => (
                    "phone_numbers",
                    data.service_numbers
                        .iter()
                        .filter(|m| m.service == *mg)
                        .map(|m| m.raw.as_str())
                        .collect(),
                ),
                ["Compliance", "Usa2p"] => (
                    "compliance",
                    data.campaigns
                        .iter()
                        .filter(|(owner, _)| owner == mg)
                        .map(|(_, raw)| raw.as_str())
                        .collect(),
                ),
                ["ShortCodes"] => (
                    "short_codes",
                    data.short_codes
                        .iter()
                        .filter(|(owner, _)| owner == mg)
                        .map(|(_, raw)| raw.as_str())
                        .collect(),
                ),
                ["AlphaSenders"] => (
                    "alpha_senders",
                    data.alpha_senders
                        .iter()
                        .filter(|(owner, _)| owner == mg)
                        .map(|(_, raw)| raw.as_str())
                        .collect(),
                ),
                _ => return Err(not_found(&req.path)),
            };
            page_v1(sim, req, key, &items)
        }
        _ => Err(not_found(&req.path)),
    }
}

/// PageSize (default 50, 1..=1000), capped by the fault switch, and the offset from the
/// opaque PageToken (or a bare Page number).
fn paging(sim: &Sim, req: &Request) -> std::result::Result<(usize, usize, usize), Response> {
    let requested = match req.param("PageSize") {
        None => 50,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=1000).contains(&n) => n as usize,
            _ => {
                return Err(bad_request(&format!(
                    "Invalid PageSize {text:?}: must be an integer between 1 and 1000"
                )))
            }
        },
    };
    let size = sim
        .faults
        .max_page_size
        .map_or(requested, |cap| requested.min(cap.max(1)));
    let page = match req.param("Page") {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| bad_request(&format!("Invalid Page {t:?}")))?,
    };
    let offset = match req.param("PageToken") {
        Some(token) => decode_token(token).ok_or_else(|| bad_request("Invalid PageToken"))?,
        None => page * size,
    };
    Ok((size, page, offset))
}

/// Tokens are opaque to clients: `PA` + base64 of the offset.
fn encode_token(offset: usize) -> String {
    format!(
        "PA{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o{offset}"))
    )
}

fn decode_token(token: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.strip_prefix("PA")?)
        .ok()?;
    String::from_utf8(raw).ok()?.strip_prefix('o')?.parse().ok()
}

/// The request's own filters, in their order, for the links (paging parameters appended).
fn link_query(req: &Request, size: usize, page: usize, token: Option<&str>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &req.query {
        if !matches!(k.as_str(), "PageSize" | "Page" | "PageToken") {
            q.append_pair(k, v);
        }
    }
    q.append_pair("PageSize", &size.to_string());
    q.append_pair("Page", &page.to_string());
    if let Some(t) = token {
        q.append_pair("PageToken", t);
    }
    q.finish()
}

/// The items of the page that starts at `offset`.
fn page_slice<S>(items: &[S], offset: usize, size: usize) -> &[S] {
    items
        .get(offset.min(items.len())..(offset + size).min(items.len()))
        .unwrap_or(&[])
}

/// The previous and next page links (None at either end), with opaque tokens: the same in
/// both paging styles, which differ only in how `link` writes a URL.
fn neighbour_links(
    size: usize,
    page: usize,
    offset: usize,
    len: usize,
    link: &dyn Fn(usize, Option<&str>) -> String,
) -> (Option<String>, Option<String>) {
    let next = (offset + size < len).then(|| link(page + 1, Some(&encode_token(offset + size))));
    let previous = (offset > 0).then(|| {
        link(
            page.saturating_sub(1),
            Some(&encode_token(offset.saturating_sub(size))),
        )
    });
    (previous, next)
}

/// A 2010 list page: relative `*_uri` links, `next_page_uri` null on the last page.
fn page_2010<S: AsRef<str>>(sim: &Sim, req: &Request, key: &str, items: &[S]) -> Handled {
    let (size, page, offset) = paging(sim, req)?;
    let slice = page_slice(items, offset, size);
    let link = |page: usize, token: Option<&str>| {
        format!("{}?{}", req.path, link_query(req, size, page, token))
    };
    let (previous, next) = neighbour_links(size, page, offset, items.len(), &link);
    let mut head = Map::new();
    head.insert("first_page_uri".into(), json!(link(0, None)));
    head.insert(
        "end".into(),
        json!((offset + slice.len()).saturating_sub(1)),
    );
    head.insert("previous_page_uri".into(), json!(previous));
    head.insert("uri".into(), json!(link(page, req.param("PageToken"))));
    head.insert("page_size".into(), json!(size));
    head.insert("start".into(), json!(offset));
    head.insert("next_page_uri".into(), json!(next));
    head.insert("page".into(), json!(page));
    Ok(assemble(key, slice, Value::Object(head), None))
}

/// A v1 list page: absolute links under `meta`.
pub(super) fn page_v1<S: AsRef<str>>(sim: &Sim, req: &Request, key: &str, items: &[S]) -> Handled {
    let (size, page, offset) = paging(sim, req)?;
    let slice = page_slice(items, offset, size);
    let link = |page: usize, token: Option<&str>| {
        format!(
            "http://{}{}?{}",
            req.host,
            req.path,
            link_query(req, size, page, token)
        )
    };
    let (previous, next) = neighbour_links(size, page, offset, items.len(), &link);
    let meta = json!({
        "page": page,
        "page_size": size,
        "first_page_url": link(0, None),
        "previous_page_url": previous,
        "url": link(page, req.param("PageToken")),
        "next_page_url": next,
        "key": key,
    });
    Ok(assemble(key, slice, meta, Some("meta")))
}

/// `{"key": [raw, raw, ...], <head fields>}` without re-parsing the records.
fn assemble<S: AsRef<str>>(key: &str, items: &[S], head: Value, head_key: Option<&str>) -> String {
    let total: usize = items.iter().map(|s| s.as_ref().len() + 1).sum();
    let mut out = String::with_capacity(total + 512);
    out.push('{');
    out.push_str(&serde_json::to_string(key).expect("a key serializes"));
    out.push_str(":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item.as_ref());
    }
    out.push(']');
    match head_key {
        Some(k) => {
            out.push_str(&format!(",\"{k}\":"));
            out.push_str(&head.to_string());
        }
        None => {
            if let Value::Object(map) = head {
                for (k, v) in map {
                    out.push(',');
                    out.push_str(&serde_json::to_string(&k).expect("a key serializes"));
                    out.push(':');
                    out.push_str(&v.to_string());
                }
            }
        }
    }
    out.push('}');
    out
}

/// A `DateSent` filter value: a day (`YYYY-MM-DD`) or an instant (`YYYY-MM-DDTHH:MM:SSZ`).
enum DateValue {
    Day(NaiveDate),
    Instant(i64),
}

fn parse_date_value(key: &str, text: &str) -> std::result::Result<DateValue, Response> {
    let text = text.trim();
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(DateValue::Day(day));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(DateValue::Instant(t.timestamp()));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S") {
        return Ok(DateValue::Instant(t.and_utc().timestamp()));
    }
    Err(bad_request(&format!(
        "Invalid {key} {text:?}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"
    )))
}

fn day_start(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp()
}

/// Messages, newest first, with `To`, `From`, `DateSent`, `DateSent>` (on or after) and
/// `DateSent<` (on or before) — all inclusive, a bare day meaning the whole day.
fn messages(sim: &Sim, world: &World, account: &str, req: &Request) -> Handled {
    let mut lo = i64::MIN;
    let mut hi = i64::MAX;
    let mut dated = false;
    for (key, value) in &req.query {
        let (from, to) = match key.as_str() {
            "DateSent" => match parse_date_value(key, value)? {
                DateValue::Day(d) => (day_start(d), day_start(d) + 86_399),
                DateValue::Instant(t) => (t, t),
            },
            "DateSent>" => match parse_date_value(key, value)? {
                DateValue::Day(d) => (day_start(d), i64::MAX),
                DateValue::Instant(t) => (t, i64::MAX),
            },
            "DateSent<" => match parse_date_value(key, value)? {
                DateValue::Day(d) => (i64::MIN, day_start(d) + 86_399),
                DateValue::Instant(t) => (i64::MIN, t),
            },
            _ => continue,
        };
        dated = true;
        lo = lo.max(from);
        hi = hi.min(to);
    }
    if dated {
        // Messages never sent (no date_sent) match no date filter.
        lo = lo.max(i64::MIN + 1);
    }
    let to = req.param("To");
    let from = req.param("From");
    // The twin's own messages are newer than the snapshot's: they come first, newest first.
    let created = world
        .created_messages
        .iter()
        .rev()
        .filter(|m| m.ts >= lo && m.ts <= hi);
    let items: Vec<&str> = created
        .chain(world.data.messages_between(lo, hi))
        .filter(|m| &*m.account == account)
        .filter(|m| to.is_none_or(|t| &*m.to == t))
        .filter(|m| from.is_none_or(|f| &*m.from == f))
        .map(|m| &*m.raw)
        .collect();
    page_2010(sim, req, "messages", &items)
}

/// Usage records: `Category`, `StartDate`, `EndDate` (periods overlapping the range) and
/// `IncludeSubaccounts` (default true: an account's figures include its subaccounts').
fn usage(sim: &Sim, data: &SimData, account: &str, req: &Request) -> Handled {
    let day = |key: &str| -> std::result::Result<Option<NaiveDate>, Response> {
        match req.param(key) {
            None => Ok(None),
            Some(t) => NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d")
                .map(Some)
                .map_err(|_| bad_request(&format!("Invalid {key} {t:?}: expected YYYY-MM-DD"))),
        }
    };
    let start = day("StartDate")?;
    let end = day("EndDate")?;
    let include = match req.param("IncludeSubaccounts") {
        None => true,
        Some(t) if t.eq_ignore_ascii_case("true") => true,
        Some(t) if t.eq_ignore_ascii_case("false") => false,
        Some(t) => {
            return Err(bad_request(&format!(
                "Invalid IncludeSubaccounts {t:?}: expected true or false"
            )))
        }
    };
    let category = req.param("Category");
    let records = data.usage_for(account, include);
    let items: Vec<String> = records
        .into_iter()
        .filter(|r| category.is_none_or(|c| r.category == c))
        .filter(|r| start.is_none_or(|s| r.end_date.is_none_or(|e| e >= s)))
        .filter(|r| end.is_none_or(|e| r.start_date.is_none_or(|s| s <= e)))
        .map(|r| r.raw)
        .collect();
    page_2010(sim, req, "usage_records", &items)
}
