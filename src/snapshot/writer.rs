//! Writes a snapshot: one JSON-lines file per resource, then the manifest, each through a
//! temporary file renamed into place, so that a folder never holds a half-written file under
//! its final name. Records are sanitized on the way in: secrets never reach the disk.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tempfile::NamedTempFile;

use super::{
    DataWriter, FileEntry, Manifest, Resource, ResourceEntry, Window, FORMAT_NAME, FORMAT_VERSION,
    MANIFEST_FILE, ZSTD_SUFFIX,
};
use crate::error::{Error, Result};

/// Removes what must never be stored: every `auth_token` (Twilio returns subaccounts' tokens
/// in list responses), and outbound message bodies unless the user asked to keep them
/// (they are personal data; inbound bodies carry the STOP keywords and are kept).
pub fn sanitize_record(resource: Resource, record: &mut Value, keep_outbound_bodies: bool) {
    strip_key(record, "auth_token");
    if resource == Resource::Messages && !keep_outbound_bodies {
        if let Value::Object(map) = record {
            let outbound = map
                .get("direction")
                .and_then(Value::as_str)
                .is_some_and(|d| d.starts_with("outbound"));
            if outbound {
                if let Some(body) = map.get_mut("body") {
                    *body = Value::Null;
                }
            }
        }
    }
}

fn strip_key(value: &mut Value, key: &str) {
    match value {
        Value::Object(map) => {
            map.remove(key);
            map.values_mut().for_each(|v| strip_key(v, key));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| strip_key(v, key)),
        _ => {}
    }
}

struct OpenFile {
    temp: DataWriter<NamedTempFile>,
    /// Relative to the snapshot folder: `<resource>.jsonl`, `.zst` when compressed.
    name: String,
    count: u64,
}

impl OpenFile {
    fn create(dir: &Path, resource: Resource, compress: bool) -> Result<OpenFile> {
        let mut name = resource.default_file();
        if compress {
            name.push_str(ZSTD_SUFFIX);
        }
        let temp = crate::output::new_temp_file(dir).map_err(|e| Error::write(dir, e))?;
        Ok(OpenFile {
            temp: DataWriter::new(temp, compress).map_err(|e| Error::write(dir, e))?,
            name,
            count: 0,
        })
    }
}

/// Writes a whole snapshot in one go (the sample generator, tests). The live pull writes
/// slices and resumes; it shares `sanitize_record` and the manifest types.
pub struct SnapshotWriter {
    dir: PathBuf,
    parent_account_sid: String,
    window: Window,
    keep_outbound_bodies: bool,
    files: BTreeMap<Resource, OpenFile>,
}

impl SnapshotWriter {
    /// Creates `dir` (and parents). Files of an earlier snapshot there are replaced at `finish`.
    pub fn create(
        dir: &Path,
        parent_account_sid: &str,
        window: Window,
        keep_outbound_bodies: bool,
    ) -> Result<SnapshotWriter> {
        Self::create_with(dir, parent_account_sid, window, keep_outbound_bodies, false)
    }

    /// `create`, writing the messages compressed (`messages.jsonl.zst`) when `compress_messages`.
    pub fn create_with(
        dir: &Path,
        parent_account_sid: &str,
        window: Window,
        keep_outbound_bodies: bool,
        compress_messages: bool,
    ) -> Result<SnapshotWriter> {
        std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
        let mut files = BTreeMap::new();
        for resource in Resource::ALL {
            let compress = compress_messages && resource == Resource::Messages;
            files.insert(resource, OpenFile::create(dir, resource, compress)?);
        }
        Ok(SnapshotWriter {
            dir: dir.to_path_buf(),
            parent_account_sid: parent_account_sid.to_string(),
            window,
            keep_outbound_bodies,
            files,
        })
    }

    /// Lists an optional resource ([`Resource::OPTIONAL`]) in the snapshot even with no
    /// record: known to be empty, not unknown. Resources of [`Resource::ALL`] always are.
    pub fn include(&mut self, resource: Resource) -> Result<()> {
        if !self.files.contains_key(&resource) {
            let file = OpenFile::create(&self.dir, resource, false)?;
            self.files.insert(resource, file);
        }
        Ok(())
    }

    pub fn write(&mut self, resource: Resource, mut record: Value) -> Result<()> {
        sanitize_record(resource, &mut record, self.keep_outbound_bodies);
        self.include(resource)?;
        let file = self
            .files
            .get_mut(&resource)
            .expect("include opened its file");
        serde_json::to_writer(&mut file.temp, &record)
            .map_err(|e| Error::write(&self.dir, e.into()))?;
        file.temp
            .write_all(b"\n")
            .map_err(|e| Error::write(&self.dir, e))?;
        file.count += 1;
        Ok(())
    }

    /// Renames every data file into place, then writes the manifest (last, so that a folder
    /// with a manifest has all its files).
    pub fn finish(self, created_by: &str) -> Result<Manifest> {
        self.finish_at(created_by, Utc::now())
    }

    /// `finish` with a given creation time (the sample generator's output must not depend
    /// on the clock).
    pub fn finish_at(self, created_by: &str, created_at: DateTime<Utc>) -> Result<Manifest> {
        let mut resources = BTreeMap::new();
        for (resource, file) in self.files {
            let name = file.name;
            let path = self.dir.join(&name);
            let temp = file.temp.finish().map_err(|e| Error::write(&path, e))?;
            temp.persist(&path)
                .map_err(|e| Error::write(&path, e.error))?;
            // The other form of the same file, left by an earlier snapshot here, would make
            // this one ambiguous.
            super::data_file::remove_other_form(&path)?;
            resources.insert(
                resource.name().to_string(),
                ResourceEntry {
                    count: file.count,
                    files: vec![FileEntry {
                        path: name,
                        count: file.count,
                    }],
                },
            );
        }
        let manifest = Manifest {
            format: FORMAT_NAME.to_string(),
            format_version: FORMAT_VERSION,
            parent_account_sid: self.parent_account_sid,
            window: self.window,
            created_at,
            created_by: created_by.to_string(),
            complete: true,
            outbound_bodies_kept: self.keep_outbound_bodies,
            resources,
        };
        write_manifest(&self.dir, &manifest)?;
        Ok(manifest)
    }
}

/// Writes `manifest.json` atomically (pretty, so a person can read it).
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    let mut text = serde_json::to_string_pretty(manifest).expect("a manifest always serializes");
    text.push('\n');
    crate::output::write_atomic(&dir.join(MANIFEST_FILE), text.as_bytes())
}
