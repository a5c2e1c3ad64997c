//! The one way outputs reach the disk: whole files, written to a temporary file beside the
//! target and renamed into place, so that no reader ever sees half a file. Every stage that
//! writes (pull, snapshot, sample, report) uses these helpers; they know nothing of the audit.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically (temp file in the same folder, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// Lets `fill` write the file's content into a temporary file beside `path`, then renames it
/// into place; on any error the temporary file is removed and `path` is untouched.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = new_temp_file(dir).map_err(|e| Error::write(path, e))?;
    fill(temp.as_file_mut()).map_err(|e| Error::write(path, e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| Error::write(path, e))?;
    temp.persist(path)
        .map_err(|e| Error::write(path, e.error))?;
    Ok(())
}

/// A temporary file in `dir` that becomes a normal readable file (0644 before umask) once
/// renamed, not tempfile's private 0600.
pub fn new_temp_file(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".subaudit-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    builder.tempfile_in(dir)
}

/// Checks, before any work and without creating anything, that `dir` can be the output
/// folder: it is a folder we can write to, or the nearest existing folder above it is. A bad
/// `--out` then fails fast with exit code 2 and leaves nothing behind. The folder itself is
/// created when the outputs are written (`create_out_dir`).
pub fn check_out_dir(dir: &Path) -> Result<()> {
    check_writable(dir, dir)
}

/// Checks that `dir` (existing or to be created) can hold `target`; errors name `target`.
fn check_writable(target: &Path, dir: &Path) -> Result<()> {
    let bad = |why: String| {
        Error::Input(format!(
            "{}: cannot write the output there ({why}); pass --out with a path you can write to",
            target.display()
        ))
    };
    let mut existing = dir.to_path_buf();
    loop {
        if existing.as_os_str().is_empty() {
            existing = PathBuf::from(".");
        }
        match std::fs::metadata(&existing) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => {
                return Err(bad(format!(
                    "{} is a file, not a folder",
                    existing.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match existing.parent() {
                Some(parent) => existing = parent.to_path_buf(),
                None => return Err(bad(e.to_string())),
            },
            Err(e) => return Err(bad(e.to_string())),
        }
    }
    new_temp_file(&existing).map_err(|e| bad(e.to_string()))?;
    Ok(())
}

/// Creates the output folder (and parents) when the outputs are ready to be written.
pub fn create_out_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))
}

/// `check_out_dir`, then creates the folder: for commands with nothing to validate first.
pub fn prepare_out_dir(dir: &Path) -> Result<()> {
    check_out_dir(dir)?;
    create_out_dir(dir)
}

/// `check_out_file`, then creates its folder.
pub fn prepare_out_file(path: &Path) -> Result<()> {
    check_out_file(path)?;
    create_parent_dir(path)
}

/// Creates the folder an output file goes into (nothing to do for a bare file name).
pub fn create_parent_dir(path: &Path) -> Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => create_out_dir(parent),
        _ => Ok(()),
    }
}

/// Checks that the folder of an output file exists and is writable.
pub fn check_out_file(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Err(Error::Input(format!(
            "{}: is a folder; --out takes a file path here",
            path.display()
        )));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    check_writable(path, &dir)
}

/// Serializes rows to CSV in memory, with a header even when there are no rows.
pub fn csv_bytes<R: Serialize>(header: &[&str], rows: &[R]) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    write_csv_to(&mut bytes, header, rows).map_err(|e| Error::failed("cannot render CSV", e))?;
    Ok(bytes)
}

/// Writes a header (even with no rows) and the rows as CSV to `out`.
pub fn write_csv_to<W: std::io::Write, R: Serialize>(
    out: W,
    header: &[&str],
    rows: &[R],
) -> std::result::Result<(), csv::Error> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    writer.write_record(header)?;
    for row in rows {
        writer.serialize(row)?;
    }
    writer.flush()?;
    Ok(())
}

/// Writes rows as a CSV file atomically, streaming them to the temporary file (an output of
/// millions of rows is never held twice in memory).
pub fn write_csv<R: Serialize>(path: &Path, header: &[&str], rows: &[R]) -> Result<()> {
    write_atomic_with(path, |file| {
        write_csv_to(
            std::io::BufWriter::with_capacity(1 << 16, file),
            header,
            rows,
        )
        .map_err(|e| match e.into_kind() {
            csv::ErrorKind::Io(io) => io,
            other => std::io::Error::other(format!("{other:?}")),
        })
    })
}

/// Writes a value as pretty JSON atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    use std::io::Write;
    write_atomic_with(path, |file| {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
        serde_json::to_writer_pretty(&mut out, value).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
        out.flush()
    })
}

/// A file name from a customer name: letters, digits, `-`, `_` and `.` kept, anything else
/// becomes `_`; never empty, never hidden.
pub fn safe_file_stem(name: &str) -> String {
    let mut stem: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    while stem.starts_with('.') {
        stem.replace_range(0..1, "_");
    }
    if stem.is_empty() {
        stem.push('_');
    }
    stem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_file_stem_keeps_names_readable_and_paths_out() {
        assert_eq!(safe_file_stem("Falcon Flights"), "Falcon_Flights");
        assert_eq!(safe_file_stem("../etc/passwd"), "_._etc_passwd");
        assert_eq!(safe_file_stem("  "), "_");
        assert_eq!(safe_file_stem("Ärzte & Co."), "Ärzte___Co.");
    }
}
