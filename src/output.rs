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
    if is_special_file(path) {
        // A device or a FIFO (`--out /dev/null`, `--out >(gzip)`): written in place, never
        // renamed over, which would replace the device with a regular file.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Error::write(path, e))?;
        return fill(&mut file).map_err(|e| Error::write(path, e));
    }
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

/// True when `path` exists (after symlinks) and is neither a regular file nor a folder: a
/// character or block device, a FIFO, a socket.
pub fn is_special_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
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

/// A set of outputs that reaches its folder as one unit: every entry (file or folder) is
/// written into a hidden staging folder inside the destination, and only when all are written
/// does `commit` move them over the previous ones, which are set aside first and restored
/// if a move fails. A reader sees the old set or the new set, never a mix. Dropped without
/// `commit` (an error on the way), it removes the staging folder and every folder it created,
/// so a failed run leaves nothing behind.
#[derive(Debug)]
pub struct Staging {
    dest: PathBuf,
    staging: PathBuf,
    /// Folders created for the destination, outermost first (removed again on failure).
    created: Vec<PathBuf>,
    names: Vec<String>,
    done: bool,
}

impl Staging {
    /// Creates `dest` when missing (and its parents) and a staging folder inside it.
    pub fn new(dest: &Path) -> Result<Staging> {
        let dest = if dest.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dest.to_path_buf()
        };
        let mut missing = Vec::new();
        let mut at = dest.as_path();
        while !at.as_os_str().is_empty() && std::fs::symlink_metadata(at).is_err() {
            missing.push(at.to_path_buf());
            match at.parent() {
                Some(parent) => at = parent,
                None => break,
            }
        }
        let mut staging = Staging {
            dest: dest.clone(),
            staging: PathBuf::new(),
            created: Vec::new(),
            names: Vec::new(),
            done: false,
        };
        for dir in missing.into_iter().rev() {
            std::fs::create_dir(&dir).map_err(|e| Error::write(&dir, e))?;
            staging.created.push(dir);
        }
        let temp = tempfile::Builder::new()
            .prefix(".subaudit-staging-")
            .tempdir_in(&dest)
            .map_err(|e| Error::write(&dest, e))?;
        staging.staging = temp.keep();
        Ok(staging)
    }

    /// The folder the set lands in.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Where to write the entry `name` now (a file or a folder directly in the destination);
    /// `commit` moves it to `dest/name`.
    pub fn path(&mut self, name: &str) -> PathBuf {
        if !self.names.iter().any(|n| n == name) {
            self.names.push(name.to_string());
        }
        self.staging.join(name)
    }

    /// The entries staged so far, in the order they were first named.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Moves every staged entry into the destination, replacing the previous ones. A folder
    /// where a file goes (or a file where a folder goes) is refused before anything moves:
    /// it is not ours to replace. On a failure while moving, the entries already moved are
    /// taken out again and the previous ones restored.
    pub fn commit(self) -> Result<()> {
        self.commit_with(|from, to| std::fs::rename(from, to))
    }

    fn commit_with(
        mut self,
        mut rename: impl FnMut(&Path, &Path) -> std::io::Result<()>,
    ) -> Result<()> {
        let staged: Vec<String> = self
            .names
            .iter()
            .filter(|n| std::fs::symlink_metadata(self.staging.join(n)).is_ok())
            .cloned()
            .collect();
        for name in &staged {
            let target = self.dest.join(name);
            let new_is_dir = self.staging.join(name).is_dir();
            if let Ok(old) = std::fs::symlink_metadata(&target) {
                if old.is_dir() != new_is_dir {
                    let (old_kind, new_kind) = if old.is_dir() {
                        ("a folder", "a file")
                    } else {
                        ("a file", "a folder")
                    };
                    return Err(Error::Input(format!(
                        "{}: {old_kind} is in the way where {new_kind} of this report goes; move it away or choose another output folder (nothing was written)",
                        target.display()
                    )));
                }
            }
        }
        let previous = self.staging.join(".previous");
        std::fs::create_dir(&previous).map_err(|e| Error::write(&self.dest, e))?;
        let mut set_aside: Vec<&str> = Vec::new();
        let mut moved_in: Vec<&str> = Vec::new();
        let mut failure = None;
        for name in &staged {
            let target = self.dest.join(name);
            if std::fs::symlink_metadata(&target).is_ok() {
                if let Err(e) = rename(&target, &previous.join(name)) {
                    failure = Some(Error::write(&target, e));
                    break;
                }
                set_aside.push(name);
            }
            if let Err(e) = rename(&self.staging.join(name), &target) {
                failure = Some(Error::write(&target, e));
                break;
            }
            moved_in.push(name);
        }
        if let Some(error) = failure {
            // Undo: the new entries go back to staging (removed on drop), the old ones return.
            for name in moved_in.iter().rev() {
                let _ = std::fs::rename(self.dest.join(name), self.staging.join(name));
            }
            for name in set_aside.iter().rev() {
                let _ = std::fs::rename(previous.join(name), self.dest.join(name));
            }
            return Err(error);
        }
        self.done = true;
        let _ = std::fs::remove_dir_all(&self.staging);
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if !self.staging.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
        for dir in self.created.iter().rev() {
            let _ = std::fs::remove_dir(dir); // only when empty
        }
    }
}

/// What a run reads, so that no output replaces it: the snapshot folder and input files, each
/// with the option that named it (for the message).
#[derive(Debug, Default)]
pub struct Inputs<'a> {
    pub snapshot: Option<&'a Path>,
    pub files: Vec<(&'a str, &'a Path)>,
}

/// Refuses (exit 2, before any work) an output that would replace an input: an output file
/// or folder that is an input file or holds one, or that lies inside the snapshot folder or
/// is that folder. Paths are compared canonical (symlinks and `..` resolved), so another
/// spelling of the same file is caught too. Devices and FIFOs are written in place and are
/// not checked.
pub fn refuse_overwriting_inputs(outputs: &[PathBuf], inputs: &Inputs) -> Result<()> {
    let snapshot = inputs.snapshot.map(|p| (p, canonical(p)));
    let files: Vec<(&str, &Path, PathBuf)> = inputs
        .files
        .iter()
        .map(|(option, path)| (*option, *path, canonical(path)))
        .collect();
    for output in outputs {
        if output.as_os_str() == "-" || is_special_file(output) {
            continue;
        }
        let out = canonical(output);
        let refuse = |what: String| {
            Err(Error::Input(format!(
                "{}: this output would replace {what}; choose another output path (nothing was written)",
                output.display()
            )))
        };
        if let Some((given, snap)) = &snapshot {
            if out.starts_with(snap) || snap.starts_with(&out) {
                return refuse(format!("the snapshot {} or a file in it", given.display()));
            }
        }
        for (option, given, file) in &files {
            if file.starts_with(&out) {
                return refuse(format!("the input {} ({option})", given.display()));
            }
        }
    }
    Ok(())
}

/// `path` made absolute with symlinks resolved; for a path that does not exist yet, its
/// nearest existing folder resolved and the rest appended.
fn canonical(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut rest = Vec::new();
    let mut at = absolute.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(at) {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                at = parent;
            }
            _ => return absolute,
        }
    }
}

/// The folder and the file name of an output file path (`.` for a bare name).
pub fn split_file_path(path: &Path) -> Result<(PathBuf, String)> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        Error::Input(format!(
            "{}: an output path must end in a file or folder name (UTF-8)",
            path.display()
        ))
    })?;
    Ok((dir, name.to_string()))
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
pub fn csv_bytes<R: Serialize>(
    header: &[&str],
    rows: impl IntoIterator<Item = R>,
) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    write_csv_to(&mut bytes, header, rows).map_err(|e| Error::failed("cannot render CSV", e))?;
    Ok(bytes)
}

/// Writes a header (even with no rows) and the rows as CSV to `out`.
pub fn write_csv_to<W: std::io::Write, R: Serialize>(
    out: W,
    header: &[&str],
    rows: impl IntoIterator<Item = R>,
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
/// millions of rows is never held in memory: `rows` may make each as it is written).
pub fn write_csv<R: Serialize>(
    path: &Path,
    header: &[&str],
    rows: impl IntoIterator<Item = R>,
) -> Result<()> {
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

/// Longest stem [`safe_file_stem`] returns, in bytes: with an extension and a `-2` it stays
/// far below the 255 bytes most file systems allow in a name.
pub const MAX_STEM_BYTES: usize = 100;

/// A file name from a customer name: letters, digits, `-`, `_` and `.` kept, anything else
/// becomes `_`; never empty, never hidden. A stem longer than [`MAX_STEM_BYTES`] is cut (at a
/// character boundary) and ends in `-` and 8 hex digits of a hash of the whole name: still
/// readable, the same on every run, and two long names that share their start stay apart.
pub fn safe_file_stem(name: &str) -> String {
    let stem = readable_stem(name);
    if stem.len() <= MAX_STEM_BYTES {
        return stem;
    }
    let mut cut = MAX_STEM_BYTES - 9;
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{:08x}", &stem[..cut], fnv1a32(name.trim().as_bytes()))
}

/// The file stem of each customer's files in a folder (`optouts/<stem>.csv` and
/// `optouts/<stem>.suppression.csv`): [`safe_file_stem`] of the name, and `-2`, `-3`... where
/// names clash once case is folded (some file systems do), in the order given. A stem is taken
/// only when neither of its file names is already taken by another customer's.
pub fn customer_file_stems(customers: &[String]) -> Vec<(String, String)> {
    let mut used = std::collections::HashSet::new();
    customers
        .iter()
        .map(|customer| {
            let base = safe_file_stem(customer);
            let mut stem = base.clone();
            let mut n = 2;
            let taken = |used: &std::collections::HashSet<String>, stem: &str| {
                used.contains(&format!("{stem}.csv").to_lowercase())
                    || used.contains(&format!("{stem}.suppression.csv").to_lowercase())
            };
            while taken(&used, &stem) {
                stem = format!("{base}-{n}");
                n += 1;
            }
            used.insert(format!("{stem}.csv").to_lowercase());
            used.insert(format!("{stem}.suppression.csv").to_lowercase());
            (customer.clone(), stem)
        })
        .collect()
}

/// FNV-1a, 32 bits: a stable hash (std's hasher may change between releases).
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h: u32, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

fn readable_stem(name: &str) -> String {
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

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// A previous set: `a.csv`, `sub/old.csv`, and a file of the user's that is not ours.
    fn previous_set() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.csv"), "old a").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/old.csv"), "old sub").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        dir
    }

    fn stage_new_set(dest: &Path) -> Staging {
        let mut staging = Staging::new(dest).unwrap();
        write_atomic(&staging.path("a.csv"), b"new a").unwrap();
        let sub = staging.path("sub");
        std::fs::create_dir(&sub).unwrap();
        write_atomic(&sub.join("new.csv"), b"new sub").unwrap();
        write_atomic(&staging.path("b.csv"), b"new b").unwrap();
        staging
    }

    #[test]
    fn a_staged_set_replaces_the_previous_one_whole() {
        let dir = previous_set();
        stage_new_set(dir.path()).commit().unwrap();
        assert_eq!(entries(dir.path()), ["a.csv", "b.csv", "notes.txt", "sub"]);
        assert_eq!(read(&dir.path().join("a.csv")), "new a");
        assert_eq!(entries(&dir.path().join("sub")), ["new.csv"]);
        assert_eq!(read(&dir.path().join("notes.txt")), "mine");
    }

    #[test]
    fn a_failure_while_moving_restores_the_previous_set() {
        let dir = previous_set();
        let staging = stage_new_set(dir.path());
        // a.csv aside, a.csv in, sub aside, then the move of the new sub fails.
        let mut calls = 0;
        let err = staging
            .commit_with(|from, to| {
                calls += 1;
                if calls == 4 {
                    return Err(std::io::Error::other("disk full"));
                }
                std::fs::rename(from, to)
            })
            .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(entries(dir.path()), ["a.csv", "notes.txt", "sub"]);
        assert_eq!(read(&dir.path().join("a.csv")), "old a");
        assert_eq!(entries(&dir.path().join("sub")), ["old.csv"]);
    }

    #[test]
    fn an_uncommitted_set_leaves_nothing_not_even_the_folders_it_made() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x/y/report");
        drop(stage_new_set(&dest));
        assert!(entries(dir.path()).is_empty());
        // In an existing folder only the staging folder goes.
        let dir = previous_set();
        drop(stage_new_set(dir.path()));
        assert_eq!(entries(dir.path()), ["a.csv", "notes.txt", "sub"]);
    }

    #[test]
    fn a_folder_in_the_way_of_a_file_is_refused_before_anything_moves() {
        let dir = previous_set();
        std::fs::create_dir(dir.path().join("b.csv")).unwrap();
        let err = stage_new_set(dir.path()).commit().unwrap_err();
        assert_eq!(err.exit_code(), crate::exit_code::BAD_INPUT);
        assert!(err.to_string().contains("a folder is in the way"), "{err}");
        assert_eq!(read(&dir.path().join("a.csv")), "old a");
        assert_eq!(entries(dir.path()), ["a.csv", "b.csv", "notes.txt", "sub"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_device_is_written_in_place_never_replaced() {
        write_atomic(Path::new("/dev/null"), b"x").unwrap();
        let meta = std::fs::metadata("/dev/null").unwrap();
        assert!(!meta.is_file(), "/dev/null is still a device");
    }

    #[test]
    fn safe_file_stem_keeps_names_readable_and_paths_out() {
        assert_eq!(safe_file_stem("Falcon Flights"), "Falcon_Flights");
        assert_eq!(safe_file_stem("../etc/passwd"), "_._etc_passwd");
        assert_eq!(safe_file_stem("  "), "_");
        assert_eq!(safe_file_stem("Ärzte & Co."), "Ärzte___Co.");
        // Long names: cut, with a stable hash of the whole name.
        let a = safe_file_stem(&format!("{} A", "Ä".repeat(150)));
        let b = safe_file_stem(&format!("{} B", "Ä".repeat(150)));
        assert!(
            a.len() <= MAX_STEM_BYTES && b.len() <= MAX_STEM_BYTES,
            "{a}"
        );
        assert_ne!(a, b);
        assert!(a.starts_with("ÄÄÄÄ"), "{a}");
        assert_eq!(a, safe_file_stem(&format!("{} A", "Ä".repeat(150))));
        assert_eq!(fnv1a32(b"a"), 0xe40c292c);
    }
}
