//! Bulk Export (`bulkexports.twilio.com/v1/Exports/Messages`, docs/twin.md): the days already
//! exported, custom export jobs that export more days, and each day's file behind a 307
//! redirect: gzip JSON lines of the account's messages of that UTC day, in Bulk Export's own
//! shape (ISO 8601 times; no `uri`, `subresource_uris`, `api_version`, `price_unit`,
//! `error_message`).
//!
//! A job completes after `--bulk-job-polls` fetches of it; its days then become available,
//! except the `--bulk-unavailable-days`, which fail (as a day whose export Twilio could not
//! produce, or whose file expired). `--no-bulk-export` answers as an account without it.
//! The file download stands for the storage host Twilio redirects to: no credentials, and the
//! same fault flags as every request.

use std::collections::BTreeMap;
use std::io::Write;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Days, NaiveDate, Utc};
use clap::Args;
use serde_json::{json, Map, Value};

use super::reads::page_v1;
use super::{bad_request, error, not_found, Principal, Request, Sim, World};

/// The twin's Bulk Export switches.
#[derive(Debug, Clone, Args)]
pub struct BulkArgs {
    /// Answer as an account without Bulk Export (every Exports endpoint 404s).
    #[arg(long)]
    pub no_bulk_export: bool,
    /// Fetches of a custom job before it reports its days complete.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub bulk_job_polls: u32,
    /// Days (YYYY-MM-DD, comma-separated) whose export fails: a job lists them as failed and
    /// they never become available.
    #[arg(long, value_delimiter = ',', value_name = "DAYS")]
    pub bulk_unavailable_days: Vec<NaiveDate>,
    /// Days (YYYY-MM-DD, comma-separated) already exported when the twin starts (the daily
    /// automatic export of an account that has it).
    #[arg(long, value_delimiter = ',', value_name = "DAYS")]
    pub bulk_exported_days: Vec<NaiveDate>,
}

impl Default for BulkArgs {
    fn default() -> Self {
        BulkArgs {
            no_bulk_export: false,
            bulk_job_polls: 2,
            bulk_unavailable_days: Vec::new(),
            bulk_exported_days: Vec::new(),
        }
    }
}

/// Jobs and exported days, per account.
#[derive(Debug, Default)]
pub struct Exports {
    /// (account, day) -> when its file was made.
    days: BTreeMap<(String, NaiveDate), DateTime<Utc>>,
    jobs: Vec<Job>,
    seeded: bool,
}

#[derive(Debug, Clone)]
struct Job {
    sid: String,
    account: String,
    friendly_name: String,
    start: NaiveDate,
    end: NaiveDate,
    polls: u32,
    webhook_url: Option<String>,
    webhook_method: Option<String>,
    email: Option<String>,
}

type Handled = std::result::Result<Response, Response>;

/// The Exports endpoints (GET, POST, DELETE under `/v1/Exports`).
pub(super) fn route(
    sim: &Sim,
    world: &mut World,
    principal: &Principal,
    method: &str,
    req: &Request,
) -> Handled {
    let config = &sim.bulk_args;
    if config.no_bulk_export {
        return Err(error(
            StatusCode::NOT_FOUND,
            20404,
            "Bulk Export is not enabled for this account",
        ));
    }
    let account = principal.account(&world.data.parent).to_string();
    let mut exports = sim.exports.lock().unwrap_or_else(|e| e.into_inner());
    if !exports.seeded {
        exports.seeded = true;
        for day in &config.bulk_exported_days {
            if !config.bulk_unavailable_days.contains(day) {
                exports
                    .days
                    .insert((world.data.parent.clone(), *day), Utc::now());
            }
        }
    }
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let base = format!("http://{}/v1/Exports", req.host);
    match (method, segments.as_slice()) {
        ("GET", ["v1", "Exports", "Messages"]) => ok(json!({
            "resource_type": "Messages",
            "url": format!("{base}/Messages"),
            "links": {
                "days": format!("{base}/Messages/Days"),
                "export_custom_jobs": format!("{base}/Messages/Jobs"),
                "jobs": format!("{base}/Jobs"),
            }
        })),
        ("GET", ["v1", "Exports", "Messages", "Days"]) => {
            if let Some(size) = req.param("PageSize") {
                if !size.parse::<u32>().is_ok_and(|n| (1..=400).contains(&n)) {
                    return Err(bad_request(&format!(
                        "Invalid PageSize {size:?}: must be an integer between 1 and 400"
                    )));
                }
            }
            let items: Vec<String> = exports
                .days
                .iter()
                .filter(|((owner, _), _)| *owner == account)
                .rev()
                .map(|((_, day), made)| {
                    json!({
                        "day": day.to_string(),
                        "size": day_file(world, &account, *day).len(),
                        "resource_type": "Messages",
                        "create_date": made.format("%Y-%m-%d").to_string(),
                        "friendly_name": "Messages export",
                    })
                    .to_string()
                })
                .collect();
            page_v1(sim, req, "days", &items).map(|body| ok_text(StatusCode::OK, body))
        }
        ("GET", ["v1", "Exports", "Messages", "Days", day]) => {
            let day = parse_day("Day", day)?;
            if !exports.days.contains_key(&(account.clone(), day)) {
                return Err(not_found(&req.path));
            }
            let url = format!(
                "http://{}/__twin/bulk-files/{account}/{day}.json.gz",
                req.host
            );
            let mut response = ok_text(
                StatusCode::TEMPORARY_REDIRECT,
                json!({ "redirect_to": url }).to_string(),
            );
            response.headers_mut().insert(
                header::LOCATION,
                url.parse().expect("a URL is a header value"),
            );
            Ok(response)
        }
        ("GET", ["v1", "Exports", "Messages", "Jobs"]) => {
            let items: Vec<String> = exports
                .jobs
                .iter()
                .filter(|j| j.account == account)
                .map(|j| job_json(j, config, &base).to_string())
                .collect();
            page_v1(sim, req, "jobs", &items).map(|body| ok_text(StatusCode::OK, body))
        }
        ("POST", ["v1", "Exports", "Messages", "Jobs"]) => {
            let field = |name: &str| req.field(name).map(str::trim).filter(|v| !v.is_empty());
            let (Some(start), Some(end), Some(name)) =
                (field("StartDay"), field("EndDay"), field("FriendlyName"))
            else {
                return Err(bad_request(
                    "StartDay, EndDay and FriendlyName are required",
                ));
            };
            let (start, end) = (parse_day("StartDay", start)?, parse_day("EndDay", end)?);
            let latest = Utc::now().date_naive() - Days::new(2);
            if end < start || end > latest {
                return Err(bad_request(&format!(
                    "EndDay must be on or after StartDay and at least 2 days before today ({latest} at the latest)"
                )));
            }
            let job = Job {
                sid: world.new_sid("JS"),
                account: account.clone(),
                friendly_name: name.to_string(),
                start,
                end,
                polls: 0,
                webhook_url: field("WebhookUrl").map(String::from),
                webhook_method: field("WebhookMethod").map(String::from),
                email: field("Email").map(String::from),
            };
            let body = job_json(&job, config, &base);
            exports.jobs.push(job);
            Ok(ok_text(StatusCode::CREATED, body.to_string()))
        }
        ("GET", ["v1", "Exports", "Jobs", sid]) => {
            let job = exports
                .jobs
                .iter_mut()
                .find(|j| j.sid == *sid && j.account == account)
                .ok_or_else(|| not_found(&req.path))?;
            job.polls += 1;
            let job = job.clone();
            if job.polls >= config.bulk_job_polls {
                for day in days(job.start, job.end) {
                    if !config.bulk_unavailable_days.contains(&day) {
                        exports
                            .days
                            .entry((job.account.clone(), day))
                            .or_insert_with(Utc::now);
                    }
                }
            }
            ok(job_json(&job, config, &base))
        }
        ("DELETE", ["v1", "Exports", "Jobs", sid]) => {
            let before = exports.jobs.len();
            exports
                .jobs
                .retain(|j| !(j.sid == *sid && j.account == account));
            if exports.jobs.len() == before {
                return Err(not_found(&req.path));
            }
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(not_found(&req.path)),
    }
}

/// `/__twin/bulk-files/{account}/{day}.json.gz`: the day's file (no credentials: it stands for
/// the storage host a real redirect points at).
pub(super) fn file(sim: &Sim, world: &World, path: &str) -> Response {
    let rest = path.trim_start_matches("/__twin/bulk-files/");
    let Some((account, name)) = rest.split_once('/') else {
        return not_found(path);
    };
    let Some(day) = name
        .strip_suffix(".json.gz")
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    else {
        return not_found(path);
    };
    let exports = sim.exports.lock().unwrap_or_else(|e| e.into_inner());
    if !exports.days.contains_key(&(account.to_string(), day)) {
        return not_found(path);
    }
    drop(exports);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/gzip")],
        day_file(world, account, day),
    )
        .into_response()
}

/// The gzip JSON-lines file of an account's messages of one UTC day (by `date_sent`, else
/// `date_created`, as the list's filter sees them), oldest first.
fn day_file(world: &World, account: &str, day: NaiveDate) -> Vec<u8> {
    let start = day
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp();
    let end = start + 86_399;
    let mut lines = Vec::new();
    let snapshot = world.data.messages_between(start, end).iter().rev();
    let created = world
        .created_messages
        .iter()
        .filter(|m| m.ts >= start && m.ts <= end);
    for m in snapshot.chain(created).filter(|m| &*m.account == account) {
        if let Ok(Value::Object(record)) = serde_json::from_str::<Value>(&m.raw) {
            lines.extend_from_slice(export_shape(record).to_string().as_bytes());
            lines.push(b'\n');
        }
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&lines).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

/// A Message record as Bulk Export writes it: ISO 8601 UTC times, no `uri`,
/// `subresource_uris`, `api_version`, `price_unit` or `error_message`.
fn export_shape(mut record: Map<String, Value>) -> Value {
    for key in [
        "uri",
        "subresource_uris",
        "api_version",
        "price_unit",
        "error_message",
    ] {
        record.shift_remove(key);
    }
    for key in ["date_created", "date_updated", "date_sent"] {
        if let Some(Value::String(text)) = record.get(key) {
            if let Some(t) = crate::time::parse_twilio_time(text) {
                record.insert(
                    key.to_string(),
                    Value::String(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                );
            }
        }
    }
    Value::Object(record)
}

/// A job as Twilio shows it: `details` groups its days by status.
fn job_json(job: &Job, config: &BulkArgs, base: &str) -> Value {
    let complete = job.polls >= config.bulk_job_polls;
    let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for day in days(job.start, job.end) {
        let status = match (complete, config.bulk_unavailable_days.contains(&day)) {
            (false, _) => "SUBMITTED",
            (true, true) => "FAILED",
            (true, false) => "COMPLETED",
        };
        groups.entry(status).or_default().push(day.to_string());
    }
    let details: Vec<Value> = groups
        .into_iter()
        .map(|(status, days)| json!({"status": status, "count": days.len(), "days": days}))
        .collect();
    json!({
        "resource_type": "Messages",
        "friendly_name": job.friendly_name,
        "details": details,
        "start_day": job.start.to_string(),
        "end_day": job.end.to_string(),
        "job_sid": job.sid,
        "webhook_url": job.webhook_url,
        "webhook_method": job.webhook_method,
        "email": job.email,
        "url": format!("{base}/Jobs/{}", job.sid),
        "job_queue_position": if complete { "0" } else { "1" },
        "estimated_completion_time": Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
    })
}

fn days(first: NaiveDate, last: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    first.iter_days().take_while(move |d| *d <= last)
}

fn parse_day(name: &str, text: &str) -> std::result::Result<NaiveDate, Response> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| bad_request(&format!("Invalid {name} {text:?}: expected YYYY-MM-DD")))
}

fn ok(body: Value) -> Handled {
    Ok(ok_text(StatusCode::OK, body.to_string()))
}

fn ok_text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
