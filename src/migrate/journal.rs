//! The journal `apply` writes beside the plan (`plan.journal.jsonl`): append-only, one JSON
//! object a line, each flushed and synced to disk before the next request goes out, so that a
//! run killed at any moment leaves a record a rerun can trust. It never holds a token.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plan::StepKind;
use crate::error::{Error, Result};

pub const JOURNAL_FORMAT: &str = "subaudit-apply-journal";

/// The first line: which plan the journal belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub journal: String,
    pub version: u32,
    pub plan_fingerprint: String,
    pub parent_account_sid: String,
    pub time: String,
}

/// What happened to a step (or one batch of a reseed step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// About to send the write: a rerun that finds no outcome after it reads the state back.
    Sending,
    /// The write took effect (possibly learned by reading the state back).
    Done,
    /// Nothing to send: the state was already as the step wants it.
    Skipped,
    /// Twilio refused, or the state was not what the plan expected: the customer stopped.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRequest {
    pub method: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub form: Vec<(String, String)>,
}

/// One Consents item's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemResult {
    pub contact_id: String,
    pub sender_id: String,
    pub correlation_id: String,
    /// 0 = success; null when the response did not name the item.
    pub error_code: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub time: String,
    pub order: usize,
    pub kind: StepKind,
    pub customer: String,
    pub customer_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_sid: Option<String>,
    /// Reseed steps: the batch (1-based) this entry is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<JournalRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Captured sids (never a token).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub captured: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemResult>,
    /// A create-messaging-service's `sending` entry: the services of that name the account
    /// held before the create. They are never adopted as the one this run created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub existed: Vec<String>,
}

impl Entry {
    pub fn settled(&self) -> bool {
        matches!(self.status, Status::Done | Status::Skipped)
    }
}

/// The journal, as read back and as appended to.
pub struct Journal {
    path: PathBuf,
    file: Option<File>,
    pub entries: Vec<Entry>,
}

impl Journal {
    /// Reads what a journal holds, without opening it for writing (verify, dry runs).
    /// `None` when there is no journal yet.
    pub fn read(path: &Path, fingerprint: &str) -> Result<Option<Journal>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::read(path, e)),
        };
        let ends_complete = text.ends_with('\n');
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() <= 1 && !ends_complete {
            // Killed while writing the header: nothing was applied.
            return Ok(None);
        }
        let mut entries = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let n = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            if n == 1 {
                let header: Header = serde_json::from_str(line)
                    .ok()
                    .filter(|h: &Header| h.journal == JOURNAL_FORMAT)
                    .ok_or_else(|| {
                        Error::at_line(path, 1, "not an apply journal of subaudit; move it away")
                    })?;
                if header.plan_fingerprint != fingerprint {
                    return Err(Error::Input(format!(
                        "{}: this journal was written for another plan ({}, the plan is {fingerprint}): a plan that changed after an apply started cannot resume it; move the journal away only if you know what was applied",
                        path.display(),
                        header.plan_fingerprint
                    )));
                }
                continue;
            }
            match serde_json::from_str::<Entry>(line) {
                Ok(e) => entries.push(e),
                // A run killed while writing leaves a partial last line: it never happened.
                Err(_) if n == lines.len() && !ends_complete => {}
                Err(e) => {
                    return Err(Error::at_line(
                        path,
                        n,
                        format!("unreadable journal entry ({e})"),
                    ))
                }
            }
        }
        Ok(Some(Journal {
            path: path.to_path_buf(),
            file: None,
            entries,
        }))
    }

    /// Opens (or starts) the journal for appending.
    /// The journal stays locked (an advisory lock on the file) while this value lives, so a
    /// second `apply` of the same plan is refused instead of sending the same writes twice.
    pub fn open(path: &Path, fingerprint: &str, parent: &str) -> Result<Journal> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::write(path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Input(format!(
                    "{}: another `subaudit apply` of this plan is running (it holds the journal's lock); wait for it to end: two runs would send the same writes twice",
                    path.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::write(path, e)),
        }
        let existing = Journal::read(path, fingerprint)?;
        // A run killed while writing leaves a partial last line: it never counted, so it is
        // cut off before appending (the one change to what was written).
        if let Ok(bytes) = std::fs::read(path) {
            if !bytes.is_empty() && bytes.last() != Some(&b'\n') {
                let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                OpenOptions::new()
                    .write(true)
                    .open(path)
                    .and_then(|f| f.set_len(keep as u64))
                    .map_err(|e| Error::write(path, e))?;
            }
        }
        let mut journal = match existing {
            Some(mut j) => {
                j.file = Some(file);
                j
            }
            None => {
                let header = Header {
                    journal: JOURNAL_FORMAT.into(),
                    version: 1,
                    plan_fingerprint: fingerprint.into(),
                    parent_account_sid: parent.into(),
                    time: now(),
                };
                write_line(&mut file, path, &header)?;
                Journal {
                    path: path.to_path_buf(),
                    file: Some(file),
                    entries: Vec::new(),
                }
            }
        };
        journal.path = path.to_path_buf();
        Ok(journal)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an entry, flushed and synced before this returns.
    pub fn append(&mut self, entry: Entry) -> Result<()> {
        let file = self
            .file
            .as_mut()
            .expect("append is only called on a journal opened for writing");
        write_line(file, &self.path, &entry)?;
        self.entries.push(entry);
        Ok(())
    }

    /// The entries of one step (all batches), in order.
    pub fn of_step(&self, order: usize) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(move |e| e.order == order)
    }

    /// The last settled entry of a step (or of one batch), if any.
    pub fn settled(&self, order: usize, batch: Option<usize>) -> Option<&Entry> {
        self.of_step(order)
            .filter(|e| e.batch == batch && e.settled())
            .last()
    }

    /// Whether a write of this step (or batch) was sent and its outcome never recorded.
    pub fn was_sending(&self, order: usize, batch: Option<usize>) -> bool {
        self.sending(order, batch).is_some()
    }

    /// The last `sending` entry of this step (or batch), if any.
    pub fn sending(&self, order: usize, batch: Option<usize>) -> Option<&Entry> {
        self.of_step(order)
            .filter(|e| e.batch == batch && e.status == Status::Sending)
            .last()
    }

    /// Every sid captured so far, by variable.
    pub fn captured(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for e in &self.entries {
            for (k, v) in &e.captured {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }
}

fn write_line<T: Serialize>(file: &mut File, path: &Path, value: &T) -> Result<()> {
    let mut line = serde_json::to_vec(value)
        .map_err(|e| Error::Runtime(format!("cannot encode a journal entry: {e}")))?;
    line.push(b'\n');
    file.write_all(&line)
        .and_then(|_| file.flush())
        .and_then(|_| file.sync_data())
        .map_err(|e| Error::write(path, e))
}

pub fn now() -> String {
    crate::time::rfc3339(&chrono::Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(order: usize, status: Status) -> Entry {
        Entry {
            time: now(),
            order,
            kind: StepKind::TransferNumber,
            customer: "A".into(),
            customer_key: "C_A".into(),
            number_sid: None,
            batch: None,
            status,
            request: None,
            http_status: None,
            error_code: None,
            error_message: None,
            captured: BTreeMap::from([("C_A_ACCOUNT_SID".into(), "AC1".into())]),
            note: None,
            items: vec![],
            existed: vec![],
        }
    }

    #[test]
    fn a_journal_resumes_past_a_torn_line_and_refuses_another_plan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.journal.jsonl");
        let mut j = Journal::open(&path, "fp1", "AC0").unwrap();
        j.append(entry(1, Status::Sending)).unwrap();
        j.append(entry(1, Status::Done)).unwrap();
        drop(j);
        // A kill while writing the next line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"time\":\"2026")
            .unwrap();
        let mut j = Journal::open(&path, "fp1", "AC0").unwrap();
        assert_eq!(j.entries.len(), 2);
        assert!(j.settled(1, None).is_some());
        assert!(j.was_sending(1, None));
        assert_eq!(j.captured()["C_A_ACCOUNT_SID"], "AC1");
        j.append(entry(2, Status::Skipped)).unwrap();
        let j = Journal::read(&path, "fp1").unwrap().unwrap();
        assert_eq!(j.entries.len(), 3);
        let e = Journal::read(&path, "fp2").err().unwrap();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("another plan"), "{e}");
    }

    #[test]
    fn a_second_apply_of_the_same_plan_is_refused_while_the_first_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.journal.jsonl");
        let first = Journal::open(&path, "fp1", "AC0").unwrap();
        let second = Journal::open(&path, "fp1", "AC0").err().unwrap();
        assert_eq!(second.exit_code(), 2);
        assert!(
            second.to_string().contains("another `subaudit apply`"),
            "{second}"
        );
        // Reading (verify, dry runs) is not blocked, and the journal is untouched.
        assert!(Journal::read(&path, "fp1").unwrap().is_some());
        drop(first);
        Journal::open(&path, "fp1", "AC0").unwrap();
    }
}
