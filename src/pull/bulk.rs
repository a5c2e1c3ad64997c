//! Messages through Twilio's Bulk Export (docs/pull.md, "Bulk export"): the days already
//! exported, custom jobs for the missing ones, and each day's gzip JSON-lines file, whose
//! records are brought back to the shape the Messages list gives.

use std::collections::BTreeSet;
use std::io::{BufRead, Seek};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, Utc};
use serde_json::{Map, Value};

use crate::client::{ApiError, Client, Product, WriteOutcome};

/// Where the messages come from (`pull --source`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The Messages list, in slices side by side.
    #[default]
    List,
    /// Bulk Export: days already exported, jobs for the missing ones, the list for the rest.
    BulkExport,
    /// Bulk Export's days already exported when the account has it and the window is large
    /// (no jobs, no waiting); the list for everything else.
    Auto,
}

impl Source {
    pub const NAMES: [&'static str; 3] = ["list", "bulk-export", "auto"];

    pub fn parse(text: &str) -> Option<Source> {
        match text {
            "list" => Some(Source::List),
            "bulk-export" => Some(Source::BulkExport),
            "auto" => Some(Source::Auto),
            _ => None,
        }
    }
}

/// `auto` uses Bulk Export from this many expected messages on (a hundred pages of the list).
pub const AUTO_MIN_MESSAGES: f64 = 100_000.0;

/// How long `bulk-export` waits for its jobs, and how often it asks.
#[derive(Debug, Clone, Copy)]
pub struct BulkWait {
    pub total: Duration,
    pub poll: Duration,
}

/// The last day a custom job may export: two days before today (UTC), as Twilio requires.
pub fn last_exportable_day() -> NaiveDate {
    Utc::now().date_naive() - Days::new(2)
}

fn days_url(client: &Client, tail: &str) -> url::Url {
    client.url(
        Product::BulkExports,
        &format!("/v1/Exports/Messages/Days{tail}"),
    )
}

/// The days exported and available now; `Err` when the account has no Bulk Export (or it
/// cannot be reached).
pub async fn available_days(client: &Client) -> Result<BTreeSet<NaiveDate>, ApiError> {
    let mut url = days_url(client, "");
    url.query_pairs_mut().append_pair("PageSize", "400");
    let records = client.pages(url, "days").collect_all().await?;
    Ok(records
        .iter()
        .filter_map(|d| d.get("day")?.as_str())
        .filter_map(crate::time::parse_date)
        .collect())
}

/// Runs of consecutive days: one job each.
fn runs(days: &BTreeSet<NaiveDate>) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    for &day in days {
        match out.last_mut() {
            Some((_, last)) if *last + Days::new(1) == day => *last = day,
            _ => out.push((day, day)),
        }
    }
    out
}

/// Creates a custom export job for each run of `missing` days, waits for them (at most
/// `wait.total`), and returns the days available then. `note` tells the user what happens.
pub async fn export_missing(
    client: &Client,
    missing: &BTreeSet<NaiveDate>,
    wait: BulkWait,
    note: &(dyn Fn(&str) + Sync),
) -> Result<BTreeSet<NaiveDate>, ApiError> {
    let name = format!("subaudit pull {}", Utc::now().format("%Y%m%dT%H%M%S%.3fZ"));
    let mut jobs = Vec::new();
    for (first, last) in runs(missing) {
        let job = create_job(client, &name, first, last).await?;
        note(&format!(
            "bulk export: job {job} exports {first} to {last}; waiting for it"
        ));
        jobs.push(job);
    }
    let started = Instant::now();
    while !jobs.is_empty() {
        let mut running = Vec::new();
        for job in jobs {
            let url = client.url(Product::BulkExports, &format!("/v1/Exports/Jobs/{job}"));
            let record = client.get_json(&url).await?;
            if !job_finished(&record) {
                running.push(job);
            }
        }
        jobs = running;
        if jobs.is_empty() {
            break;
        }
        if started.elapsed() >= wait.total {
            note(&format!(
                "bulk export: {} job(s) still running after {:.0} s; their days come through the Messages list",
                jobs.len(),
                wait.total.as_secs_f64()
            ));
            break;
        }
        tokio::time::sleep(wait.poll).await;
    }
    available_days(client).await
}

/// A job is finished when none of its days is still waiting or running (`details` groups
/// the days by status: COMPLETED, FAILED, SUBMITTED, RUNNING, ...).
fn job_finished(record: &Value) -> bool {
    let Some(details) = record.get("details").and_then(Value::as_array) else {
        return false;
    };
    details.iter().all(|group| {
        let status = group.get("status").and_then(Value::as_str).unwrap_or("");
        let waiting = group
            .get("days")
            .and_then(Value::as_array)
            .is_some_and(|d| !d.is_empty())
            || group.get("count").and_then(Value::as_u64).unwrap_or(0) > 0;
        !waiting
            || ["completed", "failed", "error", "errored"]
                .contains(&status.to_ascii_lowercase().as_str())
    })
}

/// Creates one job. A POST is never sent twice blindly: after an answer that leaves it in
/// doubt, the account's jobs are listed and ours (by its unique name and days) is taken.
async fn create_job(
    client: &Client,
    name: &str,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<String, ApiError> {
    let url = client.url(Product::BulkExports, "/v1/Exports/Messages/Jobs");
    let form = [
        ("StartDay".to_string(), first.to_string()),
        ("EndDay".to_string(), last.to_string()),
        ("FriendlyName".to_string(), name.to_string()),
    ];
    for attempt in 0..8u32 {
        match client.write_once(reqwest::Method::POST, &url, &form).await {
            WriteOutcome::Done(record) => {
                return record
                    .get("job_sid")
                    .and_then(Value::as_str)
                    .map(String::from)
                    .ok_or_else(|| ApiError {
                        status: None,
                        code: None,
                        message: format!("POST {url}: the answer names no job_sid"),
                    })
            }
            WriteOutcome::Refused(e) => return Err(e),
            WriteOutcome::Throttled { retry_after } => {
                tokio::time::sleep(retry_after.unwrap_or(Duration::from_millis(500 << attempt)))
                    .await;
            }
            WriteOutcome::Unknown(reason) => {
                let mut list = url.clone();
                list.query_pairs_mut().append_pair("PageSize", "1000");
                let jobs = client.pages(list, "jobs").collect_all().await?;
                let ours = jobs.iter().find(|j| {
                    let text = |k: &str| j.get(k).and_then(Value::as_str);
                    text("friendly_name") == Some(name)
                        && text("start_day") == Some(&first.to_string())
                        && text("end_day") == Some(&last.to_string())
                });
                if let Some(sid) = ours.and_then(|j| j.get("job_sid")?.as_str()) {
                    return Ok(sid.to_string());
                }
                // Not created: sending it again is safe.
                let _ = reason;
                tokio::time::sleep(Duration::from_millis(200 << attempt.min(6))).await;
            }
        }
    }
    Err(ApiError {
        status: None,
        code: None,
        message: format!("POST {url}: the export job could not be created after 8 attempts"),
    })
}

/// Downloads one day's file: the 307 from the Days resource (with credentials), then the file
/// where it points (without them), into an unnamed temporary file in `dir` (gone when
/// dropped): a busy day's file is gigabytes, so it is never held in memory. [`read_day`]
/// streams its records.
pub async fn download_day(
    client: &Client,
    day: NaiveDate,
    dir: &std::path::Path,
) -> Result<std::fs::File, String> {
    let target = client
        .get_redirect(&days_url(client, &format!("/{day}")))
        .await
        .map_err(|e| e.to_string())?;
    let mut file = tempfile::tempfile_in(dir)
        .map_err(|e| format!("cannot make a temporary file in {} ({e})", dir.display()))?;
    client
        .get_public_into(&target, &mut file)
        .await
        .map_err(|e| e.to_string())?;
    file.rewind()
        .map_err(|e| format!("cannot read the download of {day} back ({e})"))?;
    Ok(file)
}

/// Each record of a day's file (gzip JSON lines), normalised, in the file's order, to `each`;
/// the text is decompressed line by line, never whole.
pub fn read_day(
    gz: impl std::io::Read,
    day: NaiveDate,
    price_unit: Option<&str>,
    mut each: impl FnMut(Value) -> Result<(), String>,
) -> Result<(), String> {
    let reader = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
        std::io::BufReader::new(gz),
    ));
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("the file of {day} is not gzip JSON lines ({e})"))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Value = serde_json::from_str(&line)
            .map_err(|e| format!("the file of {day}, line {}: not JSON ({e})", i + 1))?;
        let Value::Object(record) = record else {
            return Err(format!("the file of {day}, line {}: not an object", i + 1));
        };
        each(normalise(record, price_unit))?;
    }
    Ok(())
}

/// A Bulk Export record in the shape of the Messages list: times in RFC 2822 (GMT), as the
/// list gives them; `price_unit`, which the file leaves out, from the account's usage records.
/// What the file lacks and nothing tells (`uri`, `subresource_uris`, `api_version`,
/// `error_message`) stays absent; the audit does not read it.
pub fn normalise(mut record: Map<String, Value>, price_unit: Option<&str>) -> Value {
    for key in ["date_created", "date_updated", "date_sent"] {
        if let Some(Value::String(text)) = record.get(key) {
            if let Some(t) = crate::time::parse_twilio_time(text) {
                record.insert(key.to_string(), Value::String(crate::time::to_rfc2822(&t)));
            }
        }
    }
    if let (None, Some(unit)) = (record.get("price_unit"), price_unit) {
        record.insert("price_unit".into(), Value::String(unit.to_string()));
    }
    Value::Object(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_get_the_lists_times_and_the_accounts_currency() {
        let Value::Object(record) = json!({
            "sid": "SM1", "date_created": "2026-03-10T08:15:00Z", "date_sent": "2026-03-10T08:15:01Z",
            "date_updated": "2026-03-10T08:15:03Z", "price": "-0.0079", "body": "STOP"
        }) else {
            unreachable!()
        };
        let v = normalise(record, Some("USD"));
        assert_eq!(v["date_sent"], json!("Tue, 10 Mar 2026 08:15:01 +0000"));
        assert_eq!(v["date_created"], json!("Tue, 10 Mar 2026 08:15:00 +0000"));
        assert_eq!(v["price_unit"], json!("USD"));
        assert_eq!(v["body"], json!("STOP"));
    }

    #[test]
    fn jobs_are_one_per_run_of_days_and_finish_when_nothing_waits() {
        let day = |t: &str| t.parse::<NaiveDate>().unwrap();
        let missing: BTreeSet<_> = ["2026-01-01", "2026-01-02", "2026-01-05"]
            .iter()
            .map(|t| day(t))
            .collect();
        assert_eq!(
            runs(&missing),
            [
                (day("2026-01-01"), day("2026-01-02")),
                (day("2026-01-05"), day("2026-01-05"))
            ]
        );
        let running = json!({"details": [{"status": "COMPLETED", "count": 1, "days": ["2026-01-01"]},
                                          {"status": "SUBMITTED", "count": 1, "days": ["2026-01-02"]}]});
        assert!(!job_finished(&running));
        let done = json!({"details": [{"status": "COMPLETED", "count": 1, "days": ["2026-01-01"]},
                                       {"status": "FAILED", "count": 1, "days": ["2026-01-02"]}]});
        assert!(job_finished(&done));
        assert!(!job_finished(&json!({"details": null})));
    }
}
