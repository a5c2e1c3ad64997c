//! Hand-made snapshots and helpers to run the binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
pub use subaudit::exit_code::{BAD_INPUT, FINDINGS, OK, RUNTIME};
use subaudit::snapshot::{Resource, SnapshotWriter, Window};

pub const PARENT: &str = "AC00000000000000000000000000000000";

/// A sid with the given prefix and a number in its 32 hex digits.
pub fn sid(prefix: &str, n: u64) -> String {
    format!("{prefix}{n:032x}")
}

/// Runs `subaudit ARGS` in `dir` and returns its outcome to assert on.
pub fn run(dir: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    subaudit(dir).args(args).assert()
}

/// The one "no output was written" check: `path` does not exist, or is an empty folder (no
/// file, no hidden staging or temporary file).
pub fn assert_nothing_written(path: &Path) {
    let left: Vec<_> = std::fs::read_dir(path)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "output was written: {left:?}");
}

/// `subaudit` in `dir`, to add arguments, environment or input to.
pub fn subaudit(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("subaudit").expect("the subaudit binary is built");
    cmd.current_dir(dir);
    // Terminal tables fit COLUMNS when set: outputs compared with snapshots use the default.
    cmd.env_remove("COLUMNS");
    cmd
}

/// The repository root (for sample-data).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Twilio's RFC 2822 time for `2026-01-DD hh:mm:ss` UTC, the way the 2010 API writes it.
pub fn jan(day: u32, h: u32, m: u32, s: u32) -> String {
    let t = Utc.with_ymd_and_hms(2026, 1, day, h, m, s).unwrap();
    subaudit::time::to_rfc2822(&t)
}

/// A hand-made snapshot: the parent plus whatever the test adds, written with the library's
/// own writer.
pub struct SnapshotBuilder {
    pub accounts: Vec<Value>,
    pub numbers: Vec<Value>,
    pub services: Vec<Value>,
    pub service_numbers: Vec<Value>,
    pub campaigns: Vec<Value>,
    pub messages: Vec<Value>,
    pub usage: Vec<Value>,
    /// The services' short codes and alphanumeric senders: `None` leaves them out of the
    /// snapshot (as snapshots made before they were pulled do).
    pub short_codes: Option<Vec<Value>>,
    pub alpha_senders: Option<Vec<Value>>,
}

impl Default for SnapshotBuilder {
    fn default() -> Self {
        SnapshotBuilder {
            accounts: vec![account(PARENT, "Owlie Notifications", "active", None)],
            numbers: vec![],
            services: vec![],
            service_numbers: vec![],
            campaigns: vec![],
            messages: vec![],
            usage: vec![],
            short_codes: None,
            alpha_senders: None,
        }
    }
}

pub fn account(sid: &str, name: &str, status: &str, owner: Option<&str>) -> Value {
    json!({
        "sid": sid, "friendly_name": name, "status": status,
        "owner_account_sid": owner.unwrap_or(sid), "type": "Full",
        "auth_token": "secret-token-must-never-be-stored",
        "date_created": "Thu, 01 Jan 2026 00:00:00 +0000",
        "date_updated": "Thu, 01 Jan 2026 00:00:00 +0000",
        "uri": format!("/2010-04-01/Accounts/{sid}.json"),
        "subresource_uris": {}
    })
}

pub fn number(sid: &str, phone: &str) -> Value {
    json!({
        "sid": sid, "account_sid": PARENT, "phone_number": phone,
        "friendly_name": phone, "origin": "twilio", "address_requirements": "none",
        "address_sid": null, "bundle_sid": null, "identity_sid": null,
        "emergency_address_sid": null, "emergency_status": "Inactive",
        "trunk_sid": null, "voice_application_sid": null, "sms_application_sid": null,
        "sms_url": "", "voice_url": "", "status": "in-use",
        "capabilities": {"sms": true, "mms": true, "voice": true, "fax": false}
    })
}

pub fn service(sid: &str, name: &str) -> Value {
    json!({"sid": sid, "account_sid": PARENT, "friendly_name": name,
           "us_app_to_person_registered": false})
}

pub fn service_number(service_sid: &str, number_sid: &str, phone: &str) -> Value {
    json!({"sid": number_sid, "service_sid": service_sid, "account_sid": PARENT,
           "phone_number": phone, "country_code": "US"})
}

/// A message record as the 2010 API lists it; `direction` is Twilio's (`inbound`,
/// `outbound-api`...). Name the fields a test cares about, `..Msg::default()` for the rest.
#[derive(Debug, Clone, Copy, Default)]
pub struct Msg<'a> {
    pub sid: &'a str,
    pub direction: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub body: Option<&'a str>,
    /// Twilio's RFC 2822 time (see `jan`); also `date_created` and `date_updated`.
    pub date_sent: &'a str,
    pub service: Option<&'a str>,
    pub error_code: Option<i64>,
}

impl Msg<'_> {
    pub fn json(&self) -> Value {
        let Msg {
            sid,
            direction,
            from,
            to,
            body,
            date_sent,
            service,
            error_code,
        } = *self;
        json!({
            "sid": sid, "account_sid": PARENT, "messaging_service_sid": service,
            "from": from, "to": to, "body": body, "direction": direction,
            "status": if error_code.is_some() { "failed" } else if direction == "inbound" { "received" } else { "delivered" },
            "error_code": error_code, "error_message": null,
            "num_segments": "1", "num_media": "0", "price": "-0.00790", "price_unit": "USD",
            "date_created": date_sent, "date_sent": date_sent, "date_updated": date_sent,
            "api_version": "2010-04-01",
            "uri": format!("/2010-04-01/Accounts/{PARENT}/Messages/{sid}.json"),
            "subresource_uris": {}
        })
    }
}

impl SnapshotBuilder {
    /// Writes the snapshot into `dir` and returns it.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let window = Window {
            since: Utc.with_ymd_and_hms(2025, 12, 1, 0, 0, 0).unwrap(),
            until: Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap(),
        };
        let mut writer = SnapshotWriter::create(dir, PARENT, window, false).unwrap();
        let all = [
            (Resource::Accounts, &self.accounts),
            (Resource::IncomingPhoneNumbers, &self.numbers),
            (Resource::MessagingServices, &self.services),
            (Resource::ServicePhoneNumbers, &self.service_numbers),
            (Resource::A2pCampaigns, &self.campaigns),
            (Resource::Messages, &self.messages),
            (Resource::UsageRecords, &self.usage),
        ];
        for (resource, records) in all {
            for record in records {
                writer.write(resource, record.clone()).unwrap();
            }
        }
        let optional = [
            (Resource::ServiceShortCodes, &self.short_codes),
            (Resource::ServiceAlphaSenders, &self.alpha_senders),
        ];
        for (resource, records) in optional {
            if let Some(records) = records {
                writer.include(resource).unwrap();
                for record in records {
                    writer.write(resource, record.clone()).unwrap();
                }
            }
        }
        writer.finish("tests").unwrap();
        dir.to_path_buf()
    }
}

/// Reads a CSV file into rows of fields (header included).
pub fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// A JSON file (plan.json, a journal's line...), its path named when it cannot be read.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A number's entry in plan.json's `numbers`.
pub fn plan_number<'a>(plan: &'a Value, sid: &str) -> &'a Value {
    plan["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["number_sid"] == sid)
        .unwrap_or_else(|| panic!("{sid} not in the plan"))
}

/// A Usage API record (`api.v2010.account.usage.usage_record`) with amounts as Twilio sends
/// them: strings, or null.
#[allow(clippy::too_many_arguments)]
pub fn usage_record(
    account_sid: &str,
    category: &str,
    start_date: &str,
    end_date: &str,
    count: Option<&str>,
    usage: Option<&str>,
    usage_unit: &str,
    price: Option<&str>,
) -> Value {
    json!({
        "account_sid": account_sid, "api_version": "2010-04-01",
        "as_of": "2026-02-01T00:00:00+00:00", "category": category,
        "count": count, "count_unit": usage_unit, "description": category,
        "end_date": end_date, "price": price, "price_unit": "usd",
        "start_date": start_date, "subresource_uris": {},
        "uri": format!("/2010-04-01/Accounts/{account_sid}/Usage/Records.json?Category={category}"),
        "usage": usage, "usage_unit": usage_unit
    })
}

/// Twilio's RFC 2822 time for any UTC date and time.
pub fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> String {
    let t = Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap();
    subaudit::time::to_rfc2822(&t)
}

/// Every file under `dir` with its bytes (folders by their files), to compare a folder before
/// and after a run.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, at: &Path, out: &mut std::collections::BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(at) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if path.is_dir() {
                out.insert(rel.join(""), Vec::new());
                walk(root, &path, out);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Starts `twilio-sim` on a free port with the parent's credentials (`parent` is the snapshot's
/// parent sid): the child and the URL it printed on its first line.
pub fn spawn_twilio_sim(
    snapshot: &Path,
    parent: &str,
    token: &str,
    extra: &[&str],
) -> (std::process::Child, String) {
    use std::io::BufRead;
    #[allow(deprecated)]
    let bin = assert_cmd::cargo::cargo_bin("twilio-sim");
    let mut child = std::process::Command::new(bin)
        .args([
            "--snapshot",
            snapshot.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
        ])
        .args(["--account-sid", parent, "--auth-token", token])
        .args(extra)
        .env_remove("TWILIO_ACCOUNT_SID")
        .env_remove("TWILIO_AUTH_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("twilio-sim starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("http://127.0.0.1:"),
        "twilio-sim printed {line:?}"
    );
    (child, line.trim().to_string())
}

/// `subaudit COMMAND --snapshot snap --map map.csv --out OUT EXTRA...` in `dir`: a command on
/// the hand-made snapshot (`snap`) and mapping (`map.csv`) that the topic tests lay out there.
pub fn on_snap(dir: &Path, command: &str, out: &str, extra: &[&str]) -> Command {
    let mut cmd = subaudit(dir);
    cmd.args([
        command,
        "--snapshot",
        "snap",
        "--map",
        "map.csv",
        "--out",
        out,
    ])
    .args(extra);
    cmd
}
