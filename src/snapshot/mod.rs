//! The snapshot store: a folder holding what a pull fetched, as Twilio's own JSON objects, one
//! per line, plus `manifest.json`. See docs/snapshot-format.md.
//!
//! Loading validates: a missing file, a line that is not a JSON object of the resource, or a
//! count that differs from the manifest is an error naming the file and line. Messages are
//! only ever streamed (tens of millions of lines), never held in memory.

mod data_file;
mod message_line;
mod parallel;
mod writer;

pub use data_file::{is_compressed, remove_other_form, DataReader, DataWriter, ZSTD_SUFFIX};
pub use parallel::default_workers;

pub use writer::{sanitize_record, write_manifest, SnapshotWriter};

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{
    A2pCampaign, Account, IncomingPhoneNumber, MessageRef, MessagingService, ServiceAlphaSender,
    ServicePhoneNumber, ServiceShortCode, UsageRecord,
};

pub const MANIFEST_FILE: &str = "manifest.json";
pub const FORMAT_NAME: &str = "subaudit-snapshot";
pub const FORMAT_VERSION: u32 = 1;

/// The resources a snapshot holds, in the order a pull fetches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Accounts,
    IncomingPhoneNumbers,
    MessagingServices,
    ServicePhoneNumbers,
    A2pCampaigns,
    Messages,
    UsageRecords,
    /// Optional (see [`Resource::OPTIONAL`]): a service's short codes.
    ServiceShortCodes,
    /// Optional: a service's alphanumeric sender IDs.
    ServiceAlphaSenders,
}

impl Resource {
    pub const ALL: [Resource; 7] = [
        Resource::Accounts,
        Resource::IncomingPhoneNumbers,
        Resource::MessagingServices,
        Resource::ServicePhoneNumbers,
        Resource::A2pCampaigns,
        Resource::Messages,
        Resource::UsageRecords,
    ];

    /// Resources a snapshot may lack: snapshots of earlier versions do not hold them, and
    /// they still load. Absent means unknown (the findings that need them are not raised);
    /// present and empty means none.
    pub const OPTIONAL: [Resource; 2] =
        [Resource::ServiceShortCodes, Resource::ServiceAlphaSenders];

    /// The key in the manifest and the default file stem.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Accounts => "accounts",
            Resource::IncomingPhoneNumbers => "incoming_phone_numbers",
            Resource::MessagingServices => "messaging_services",
            Resource::ServicePhoneNumbers => "messaging_service_phone_numbers",
            Resource::A2pCampaigns => "a2p_campaigns",
            Resource::Messages => "messages",
            Resource::UsageRecords => "usage_records",
            Resource::ServiceShortCodes => "messaging_service_short_codes",
            Resource::ServiceAlphaSenders => "messaging_service_alpha_senders",
        }
    }

    pub fn from_name(name: &str) -> Option<Resource> {
        Resource::ALL
            .into_iter()
            .chain(Resource::OPTIONAL)
            .find(|r| r.name() == name)
    }

    pub fn default_file(self) -> String {
        format!("{}.jsonl", self.name())
    }
}

/// One data file of a resource and the number of records (non-blank lines) in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the snapshot folder, `/`-separated.
    pub path: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceEntry {
    /// Total records over all files.
    #[serde(default)]
    pub count: u64,
    /// Data files, read in this order. Messages may be split into slices (one file per day).
    /// A hand-written manifest may leave it out: then `<resource>.jsonl` holds `count`.
    #[serde(default)]
    pub files: Vec<FileEntry>,
}

/// The time window the messages (and usage records) were fetched for: `since <= t < until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// What a hand-written manifest may leave out has a default: the format, the creation
/// fields, `complete` (true) and `outbound_bodies_kept` (false).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(default = "default_format")]
    pub format: String,
    #[serde(default = "default_format_version")]
    pub format_version: u32,
    pub parent_account_sid: String,
    pub window: Window,
    #[serde(default)]
    pub created_at: DateTime<Utc>,
    /// `subaudit <version>` (or the generator that wrote it).
    #[serde(default)]
    pub created_by: String,
    /// False while a pull is under way or after it died; analysis refuses it unless told.
    #[serde(default = "default_complete")]
    pub complete: bool,
    /// Whether outbound message bodies were kept (personal data: off unless asked).
    #[serde(default)]
    pub outbound_bodies_kept: bool,
    pub resources: BTreeMap<String, ResourceEntry>,
}

fn default_format() -> String {
    FORMAT_NAME.to_string()
}
fn default_format_version() -> u32 {
    FORMAT_VERSION
}
fn default_complete() -> bool {
    true
}

impl Manifest {
    pub fn resource(&self, resource: Resource) -> Option<&ResourceEntry> {
        self.resources.get(resource.name())
    }
}

/// Options for opening a snapshot.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    /// Accept a snapshot whose manifest says `complete: false`.
    pub allow_incomplete: bool,
}

/// A validated snapshot with its small resources loaded; messages stay on disk.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// The parent first, then subaccounts as listed.
    pub accounts: Vec<Account>,
    pub numbers: Vec<IncomingPhoneNumber>,
    /// The subaccounts' numbers a pull lists too (where a migration put them); not analysed.
    pub subaccount_numbers: Vec<IncomingPhoneNumber>,
    pub services: Vec<MessagingService>,
    pub service_numbers: Vec<ServicePhoneNumber>,
    pub campaigns: Vec<A2pCampaign>,
    pub usage_records: Vec<UsageRecord>,
    /// The parent services' short codes and alphanumeric senders; `None` when the snapshot
    /// does not hold them (made before they were pulled): unknown, not none.
    pub service_short_codes: Option<Vec<ServiceShortCode>>,
    pub service_alpha_senders: Option<Vec<ServiceAlphaSender>>,
}

/// Where a streamed record came from, for error messages and for the outputs that cite it.
#[derive(Debug, Clone, Copy)]
pub struct LineRef<'a> {
    pub path: &'a Path,
    /// The 1-based line number. The folds of the messages count lines only for an error: a
    /// visit that fails is called again with the true number, which its error names.
    pub line: usize,
    /// Where the line starts among the snapshot's message bytes (its byte offset in the
    /// plain message files laid end to end in listed order), for reading it again with
    /// [`Snapshot::fold_messages_at`]; None in a compressed file, which has no such place.
    pub position: Option<u64>,
}

impl LineRef<'_> {
    /// The message's event time (docs/opt-out-rule.md step 3: `date_sent`, else `date_created`), or an
    /// error naming this line.
    pub fn event_time(&self, message: &MessageRef<'_>) -> Result<DateTime<Utc>> {
        let text = message.event_time_text().ok_or_else(|| {
            Error::at_line(
                self.path,
                self.line,
                "message has neither \"date_sent\" nor \"date_created\"",
            )
        })?;
        crate::time::parse_twilio_time(text).ok_or_else(|| {
            Error::at_line(
                self.path,
                self.line,
                format!("message time {text:?} is neither RFC 2822 (Twilio's \"Mon, 02 Jan 2026 03:04:05 +0000\") nor RFC 3339"),
            )
        })
    }
}

impl Snapshot {
    pub fn open(dir: &Path, options: OpenOptions) -> Result<Snapshot> {
        let manifest = read_manifest(dir)?;
        if !manifest.complete && !options.allow_incomplete {
            return Err(Error::Input(format!(
                "{}: the snapshot is incomplete (a pull did not finish): run the same `subaudit pull` again to resume it, or pass --allow-incomplete to analyse what is there",
                dir.join(MANIFEST_FILE).display()
            )));
        }
        // Check every file up front, so that a missing message slice fails before any work.
        for resource in Resource::ALL {
            manifest.resource(resource).ok_or_else(|| {
                Error::Input(format!(
                    "{}: the snapshot holds no \"{}\" (a pull with --resources leaves resources out); the audit needs every resource ({}): pull again without --resources",
                    dir.join(MANIFEST_FILE).display(),
                    resource.name(),
                    Resource::ALL.map(Resource::name).join(", ")
                ))
            })?;
            for (path, _) in data_files_in(dir, &manifest, resource)? {
                if !path.is_file() {
                    return Err(Error::Input(format!(
                        "{}: file is missing (listed in {} for \"{}\")",
                        path.display(),
                        MANIFEST_FILE,
                        resource.name()
                    )));
                }
            }
        }
        let mut snapshot = Snapshot {
            dir: dir.to_path_buf(),
            accounts: Vec::new(),
            numbers: Vec::new(),
            subaccount_numbers: Vec::new(),
            services: Vec::new(),
            service_numbers: Vec::new(),
            campaigns: Vec::new(),
            usage_records: Vec::new(),
            service_short_codes: None,
            service_alpha_senders: None,
            manifest,
        };
        snapshot.accounts = snapshot.load_all(Resource::Accounts)?;
        snapshot.numbers = snapshot.load_all(Resource::IncomingPhoneNumbers)?;
        snapshot.services = snapshot.load_all(Resource::MessagingServices)?;
        snapshot.service_numbers = snapshot.load_all(Resource::ServicePhoneNumbers)?;
        // A pull also lists the subaccounts' numbers and services (where a migration put
        // them: `verify` reads them raw); the analysis is of the parent's own.
        let parent_sid = snapshot.manifest.parent_account_sid.clone();
        let own = |account: &Option<String>| account.as_deref().is_none_or(|a| a == parent_sid);
        let (numbers, others) = std::mem::take(&mut snapshot.numbers)
            .into_iter()
            .partition(|n| own(&n.account_sid));
        snapshot.numbers = numbers;
        snapshot.subaccount_numbers = others;
        snapshot.services.retain(|s| own(&s.account_sid));
        snapshot.service_numbers.retain(|m| own(&m.account_sid));
        snapshot.campaigns = snapshot.load_all(Resource::A2pCampaigns)?;
        snapshot.usage_records = snapshot.load_all(Resource::UsageRecords)?;
        if snapshot
            .manifest
            .resource(Resource::ServiceShortCodes)
            .is_some()
        {
            let mut all: Vec<ServiceShortCode> = snapshot.load_all(Resource::ServiceShortCodes)?;
            all.retain(|s| own(&s.account_sid));
            snapshot.service_short_codes = Some(all);
        }
        if snapshot
            .manifest
            .resource(Resource::ServiceAlphaSenders)
            .is_some()
        {
            let mut all: Vec<ServiceAlphaSender> =
                snapshot.load_all(Resource::ServiceAlphaSenders)?;
            all.retain(|s| own(&s.account_sid));
            snapshot.service_alpha_senders = Some(all);
        }
        let parent = snapshot.manifest.parent_account_sid.clone();
        if !snapshot.accounts.iter().any(|a| a.sid == parent) {
            return Err(Error::Input(format!(
                "{}: the parent account {parent} named in {MANIFEST_FILE} is not among the accounts",
                snapshot.dir.join(Resource::Accounts.default_file()).display()
            )));
        }
        Ok(snapshot)
    }

    pub fn parent_sid(&self) -> &str {
        &self.manifest.parent_account_sid
    }

    pub fn parent(&self) -> &Account {
        self.accounts
            .iter()
            .find(|a| a.sid == self.manifest.parent_account_sid)
            .expect("Snapshot::open checked the parent is present")
    }

    /// Accounts other than the parent.
    pub fn subaccounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts
            .iter()
            .filter(move |a| a.sid != self.manifest.parent_account_sid)
    }

    pub fn account(&self, sid: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.sid == sid)
    }

    pub fn data_files(&self, resource: Resource) -> Result<Vec<(PathBuf, u64)>> {
        data_files_in(&self.dir, &self.manifest, resource)
    }

    fn load_all<T: DeserializeOwned>(&self, resource: Resource) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for (path, expected) in self.data_files(resource)? {
            let mut count = 0u64;
            for_each_line(&path, |line_no, line| {
                let record = serde_json::from_str::<T>(line).map_err(|e| {
                    Error::at_line(
                        &path,
                        line_no,
                        format!("not a valid {} record: {e}", resource.name()),
                    )
                })?;
                out.push(record);
                count += 1;
                Ok(())
            })?;
            check_count(&path, resource, expected, count)?;
        }
        Ok(out)
    }
}

pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    if !dir.is_dir() {
        return Err(Error::Input(format!(
            "{}: no such snapshot folder (expected a folder holding {MANIFEST_FILE}, as written by `subaudit pull` or `subaudit sample`)",
            dir.display()
        )));
    }
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Input(format!(
                "{}: file is missing: a snapshot folder holds a {MANIFEST_FILE} (is {} a snapshot?)",
                path.display(),
                dir.display()
            ))
        } else {
            Error::read(&path, e)
        }
    })?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        Error::at_line(
            &path,
            e.line(),
            format!("not a valid snapshot manifest: {e}"),
        )
    })?;
    if manifest.format != FORMAT_NAME || manifest.format_version != FORMAT_VERSION {
        return Err(Error::Input(format!(
            "{}: format \"{}\" version {} is not supported (this subaudit reads \"{FORMAT_NAME}\" version {FORMAT_VERSION})",
            path.display(),
            manifest.format,
            manifest.format_version
        )));
    }
    if !crate::sid::is_sid(&manifest.parent_account_sid, "AC") {
        return Err(Error::Input(format!(
            "{}: parent_account_sid {:?} is not an account sid (AC followed by 32 hex digits)",
            path.display(),
            manifest.parent_account_sid
        )));
    }
    Ok(manifest)
}

/// The data files of a resource with their record counts, in reading order.
fn data_files_in(
    dir: &Path,
    manifest: &Manifest,
    resource: Resource,
) -> Result<Vec<(PathBuf, u64)>> {
    let Some(entry) = manifest.resource(resource) else {
        return Ok(Vec::new());
    };
    if entry.files.is_empty() {
        let path = data_file::locate(dir.join(resource.default_file()))?;
        return Ok(if path.is_file() || entry.count > 0 {
            vec![(path, entry.count)]
        } else {
            Vec::new()
        });
    }
    entry
        .files
        .iter()
        .map(|f| {
            Ok((
                data_file::locate(resolve_data_path(dir, &f.path)?)?,
                f.count,
            ))
        })
        .collect()
}

/// A manifest path must stay inside the snapshot folder.
fn resolve_data_path(dir: &Path, relative: &str) -> Result<PathBuf> {
    let rel = Path::new(relative);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(Error::Input(format!(
            "{}: file path {relative:?} must be relative to the snapshot folder, without '..'",
            dir.join(MANIFEST_FILE).display()
        )));
    }
    Ok(dir.join(rel))
}

fn check_count(path: &Path, resource: Resource, expected: u64, found: u64) -> Result<()> {
    if expected != found {
        return Err(Error::Input(format!(
            "{}: holds {found} {} records but {MANIFEST_FILE} says {expected}: the snapshot is damaged or was edited; pull it again",
            path.display(),
            resource.name()
        )));
    }
    Ok(())
}

/// Calls `visit(line_number, line)` for each non-blank line (1-based numbers), reusing one
/// buffer; a `.zst` file is decompressed on the way. A line that is not UTF-8 is an error
/// naming the line.
pub fn for_each_line(path: &Path, mut visit: impl FnMut(usize, &str) -> Result<()>) -> Result<()> {
    let mut reader = BufReader::with_capacity(1 << 20, DataReader::open(path)?);
    let mut buf = Vec::with_capacity(4096);
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::read(path, e))?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        let text = std::str::from_utf8(&buf)
            .map_err(|_| Error::at_line(path, line_no, "line is not valid UTF-8"))?;
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        visit(line_no, text)?;
    }
}
