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
/// into place; on any error the temporary file is removed and `path` is untouched. The data
/// is on the disk (synced) before the rename, so a crash never leaves a half-written file
/// under the name; a big file is sent to the disk while it is being written
/// ([`AtomicFile`]), so that the final sync waits only for its tail.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut AtomicFile) -> std::io::Result<()>,
) -> Result<()> {
    if is_special_file(path) {
        // A device or a FIFO (`--out /dev/null`, `--out >(gzip)`): written in place, never
        // renamed over, which would replace the device with a regular file.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Error::write(path, e))?;
        let mut out = AtomicFile::new(file, false);
        return fill(&mut out).map_err(|e| Error::write(path, e));
    }
    let mut pending = PendingFile::create(path)?;
    // On an error `pending` is dropped: the temporary file is removed.
    fill(&mut pending.out).map_err(|e| Error::write(path, e))?;
    pending.finish()
}

/// Where writing `path` lands: the file a symlink names (through a chain of links, relative
/// ones resolved from the link's folder; the named file may not exist yet), else `path`.
/// Renaming a new file over `path` itself would replace the user's link with a regular file.
pub fn link_target(path: &Path) -> PathBuf {
    let mut at = path.to_path_buf();
    // Past 40 links the system itself gives up (ELOOP); the open then reports it.
    for _ in 0..40 {
        let Ok(target) = std::fs::read_link(&at) else {
            return at;
        };
        at = match at.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
    }
    at
}

/// A file of [`write_atomic_with`] taken apart: written under a temporary name beside
/// `path`, then [`PendingFile::finish`] syncs it and renames it into place, maybe on another
/// thread while the next file is written. Dropped unfinished, the temporary file is removed.
pub struct PendingFile {
    out: AtomicFile,
    temp: tempfile::TempPath,
    path: PathBuf,
}

impl PendingFile {
    /// A temporary file beside `path` (a regular file's path: devices are written in place
    /// by [`write_atomic_with`]). When `path` is a symlink, the file it names is the one
    /// replaced: the link stays.
    pub fn create(path: &Path) -> Result<PendingFile> {
        let path = &link_target(path);
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let temp = new_temp_file(dir).map_err(|e| Error::write(path, e))?;
        let (file, temp) = temp.into_parts();
        Ok(PendingFile {
            out: AtomicFile::new(file, true),
            temp,
            path: path.to_path_buf(),
        })
    }

    /// Where the file goes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs the file and renames it into place.
    pub fn finish(self) -> Result<()> {
        let PendingFile {
            mut out,
            temp,
            path,
        } = self;
        out.finish().map_err(|e| Error::write(&path, e))?;
        temp.persist(&path)
            .map_err(|e| Error::write(&path, e.error))?;
        Ok(())
    }
}

impl std::io::Write for PendingFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.out.write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// How many files [`write_side_by_side`] writes at once.
pub const FILES_SIDE_BY_SIDE: usize = 8;

/// Calls `write` for every item, [`FILES_SIDE_BY_SIDE`] at a time on their own threads, for
/// many files each written whole by [`write_atomic_with`] (temporary file, sync, rename): while
/// one file's sync waits for the disk the next ones are written, and the disk takes several
/// files' syncs at once far faster than one after another (here 100 files of 10 MB: 3.2 s
/// with 8 side by side, 5.3-6.3 s one after another). After a failure no further item is
/// started; the error returned is that of the first failing item in `items`' order.
pub fn write_side_by_side<T: Sync>(
    items: &[T],
    write: impl Fn(&T) -> Result<()> + Sync,
) -> Result<()> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let threads = FILES_SIDE_BY_SIDE.min(items.len());
    if threads <= 1 {
        return items.iter().try_for_each(write);
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let worker = || {
        let mut errors = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            if let Err(e) = write(item) {
                failed.store(true, Ordering::Relaxed);
                errors.push((i, e));
            }
        }
        errors
    };
    let mut errors: Vec<(usize, Error)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    errors.sort_by_key(|(i, _)| *i);
    match errors.into_iter().next() {
        Some((_, error)) => Err(error),
        None => Ok(()),
    }
}

/// Bytes written to an [`AtomicFile`] between two syncs started in the background.
const SYNC_AHEAD_BYTES: u64 = 32 << 20;

/// How many rendered bytes a writer gathers before it hands them to the file in one write:
/// few enough to stay in the core's cache (L2) until the kernel copies them. perf, `optouts`
/// at 10M messages (1 GB of CSV): the writes took 1.7 CPU-s from 8 MiB buffers, 0.55 s from
/// these.
pub const WRITE_CHUNK: usize = 256 << 10;

/// A buffer to render rows into and hand to a file a [`WRITE_CHUNK`] at a time, with room for
/// the row that crosses the mark.
pub fn chunk_buffer() -> Vec<u8> {
    Vec::with_capacity(WRITE_CHUNK + (1 << 16))
}

/// Hands `buf` to `out` once it holds a [`WRITE_CHUNK`], and empties it.
pub fn write_full_chunk(out: &mut impl std::io::Write, buf: &mut Vec<u8>) -> std::io::Result<()> {
    if buf.len() >= WRITE_CHUNK {
        out.write_all(buf)?;
        buf.clear();
    }
    Ok(())
}

/// The file a [`write_atomic_with`] fill writes. Every [`SYNC_AHEAD_BYTES`] it asks a helper
/// thread to sync what has been written so far (on a second handle of the same file), so that
/// the disk works while the rest is rendered and written; [`AtomicFile::finish`] waits for the
/// helper, then syncs the tail. A small file never starts the helper.
pub struct AtomicFile {
    file: std::fs::File,
    sync_ahead: bool,
    unsynced: u64,
    helper: Option<SyncHelper>,
}

struct SyncHelper {
    wake: std::sync::mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl AtomicFile {
    fn new(file: std::fs::File, sync_ahead: bool) -> AtomicFile {
        AtomicFile {
            file,
            sync_ahead,
            unsynced: 0,
            helper: None,
        }
    }

    fn wrote(&mut self, n: u64) -> std::io::Result<()> {
        self.unsynced += n;
        if self.sync_ahead && self.unsynced >= SYNC_AHEAD_BYTES {
            self.unsynced = 0;
            self.start_sync()?;
        }
        Ok(())
    }

    fn start_sync(&mut self) -> std::io::Result<()> {
        if self.helper.is_none() {
            let file = self.file.try_clone()?;
            // One wake-up may wait: a sync asked for while one runs covers everything so far.
            let (wake, asked) = std::sync::mpsc::sync_channel::<()>(1);
            let thread = std::thread::Builder::new()
                .name("sync-ahead".into())
                .spawn(move || {
                    while asked.recv().is_ok() {
                        file.sync_data()?;
                    }
                    Ok(())
                })?;
            self.helper = Some(SyncHelper { wake, thread });
        }
        if let Some(helper) = &self.helper {
            // Full: a sync is already asked for and will cover these bytes too. Gone: the
            // helper failed; `finish` reports its error.
            let _ = helper.wake.try_send(());
        }
        Ok(())
    }

    /// Waits for the helper's syncs, then syncs the whole file.
    fn finish(&mut self) -> std::io::Result<()> {
        if let Some(SyncHelper { wake, thread }) = self.helper.take() {
            drop(wake);
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        }
        self.file.sync_all()
    }
}

impl std::io::Write for AtomicFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(bytes)?;
        self.wrote(n as u64)?;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // On an error: the helper ends with its channel; its result no longer matters.
        if let Some(SyncHelper { wake, thread }) = self.helper.take() {
            drop(wake);
            let _ = thread.join();
        }
    }
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
    /// Folders beside the files that symlinked entries name (removed on commit or drop).
    side_folders: Vec<PathBuf>,
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
            side_folders: Vec::new(),
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

    /// Where to write the entry `name` now (a file or a folder in the destination: directly,
    /// or in a subfolder, `optouts/x.csv`, whose other files are left alone); `commit` moves
    /// it to `dest/name`. The caller creates a subfolder in the staging folder.
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
    /// it is not ours to replace. An entry that is a symlink stays a link: the file or folder
    /// it names ([`link_target`]) is the one replaced, and the new entry is first moved
    /// beside it (copied when it lies on another file system). On a failure while moving,
    /// the entries already moved are taken out again and the previous ones restored.
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
        let previous = self.staging.join(".previous");
        // Each entry: where the new one is, where it goes, where the old one is set aside.
        let mut moves: Vec<(PathBuf, PathBuf, PathBuf)> = Vec::new();
        for name in &staged {
            let entry = self.dest.join(name);
            let target = link_target(&entry);
            let new_is_dir = self.staging.join(name).is_dir();
            // Through a link the kind of what it names counts (a dangling link: nothing yet).
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
            if target == entry {
                moves.push((self.staging.join(name), target, previous.join(name)));
            } else {
                // Renames stay inside one folder: a side folder beside the named file holds
                // the new entry and, while moving, the old one.
                let dir = match target.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                let side = tempfile::Builder::new()
                    .prefix(".subaudit-staging-")
                    .tempdir_in(dir)
                    .map_err(|e| Error::write(&target, e))?
                    .keep();
                self.side_folders.push(side.clone());
                let new = side.join("new");
                move_or_copy(&self.staging.join(name), &new, &mut rename)
                    .map_err(|e| Error::write(&target, e))?;
                moves.push((new, target, side.join("previous")));
            }
        }
        std::fs::create_dir(&previous).map_err(|e| Error::write(&self.dest, e))?;
        let mut set_aside: Vec<usize> = Vec::new();
        let mut moved_in: Vec<usize> = Vec::new();
        let mut failure = None;
        for (i, (new, target, aside)) in moves.iter().enumerate() {
            // An entry in a subfolder: the folder is made when missing (removed again on a
            // failure), and so is its place among the entries set aside.
            if let Err(e) = self.create_parent(target) {
                failure = Some(e);
                break;
            }
            if std::fs::symlink_metadata(target).is_ok() {
                if let Some(dir) = aside.parent() {
                    if let Err(e) = std::fs::create_dir_all(dir) {
                        failure = Some(Error::write(target, e));
                        break;
                    }
                }
                if let Err(e) = rename(target, aside) {
                    failure = Some(Error::write(target, e));
                    break;
                }
                set_aside.push(i);
            }
            if let Err(e) = rename(new, target) {
                failure = Some(Error::write(target, e));
                break;
            }
            moved_in.push(i);
        }
        if let Some(error) = failure {
            // Undo: the new entries go back (removed on drop), the old ones return.
            for &i in moved_in.iter().rev() {
                let (new, target, _) = &moves[i];
                let _ = std::fs::rename(target, new);
            }
            for &i in set_aside.iter().rev() {
                let (_, target, aside) = &moves[i];
                let _ = std::fs::rename(aside, target);
            }
            return Err(error);
        }
        self.done = true;
        let _ = std::fs::remove_dir_all(&self.staging);
        for side in &self.side_folders {
            let _ = std::fs::remove_dir_all(side);
        }
        Ok(())
    }
}

impl Staging {
    /// Creates the missing folders above `target` up to the destination (noted in `created`).
    fn create_parent(&mut self, target: &Path) -> Result<()> {
        let mut missing = Vec::new();
        let mut at = target.parent();
        while let Some(dir) = at {
            if dir.as_os_str().is_empty() || std::fs::symlink_metadata(dir).is_ok() {
                break;
            }
            missing.push(dir.to_path_buf());
            at = dir.parent();
        }
        for dir in missing.into_iter().rev() {
            std::fs::create_dir(&dir).map_err(|e| Error::write(&dir, e))?;
            self.created.push(dir);
        }
        Ok(())
    }
}

/// Renames `from` to `to`; across file systems (a link naming a file on another disk),
/// copies it (a file synced, a folder entry by entry) and removes `from`.
fn move_or_copy(
    from: &Path,
    to: &Path,
    rename: &mut impl FnMut(&Path, &Path) -> std::io::Result<()>,
) -> std::io::Result<()> {
    match rename(from, to) {
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            copy_entry(from, to)?;
            std::fs::remove_dir_all(from).or_else(|_| std::fs::remove_file(from))
        }
        other => other,
    }
}

fn copy_entry(from: &Path, to: &Path) -> std::io::Result<()> {
    if from.is_dir() {
        std::fs::create_dir(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_entry(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(from, to)?;
        std::fs::File::open(to)?.sync_all()
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
        for side in &self.side_folders {
            let _ = std::fs::remove_dir_all(side);
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
/// spelling of the same file is caught too; see [`replaces_a_file`] for what is not checked.
pub fn refuse_overwriting_inputs(outputs: &[PathBuf], inputs: &Inputs) -> Result<()> {
    let snapshot = inputs.snapshot.map(|p| (p, canonical(p)));
    let files: Vec<(&str, &Path, PathBuf)> = inputs
        .files
        .iter()
        .map(|(option, path)| (*option, *path, canonical(path)))
        .collect();
    for output in outputs {
        if !replaces_a_file(output) {
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

/// Refuses, before any work, an output file that would land inside `folder`, an output
/// folder that is replaced whole (`optouts --per-customer`): the folder's commit would take
/// the file away again. `outputs` are (option, path); see [`replaces_a_file`].
pub fn refuse_outputs_inside(
    folder_option: &str,
    folder: &Path,
    outputs: &[(&str, &Path)],
) -> Result<()> {
    let inside = canonical(folder);
    for (option, output) in outputs {
        if !replaces_a_file(output) {
            continue;
        }
        if canonical(output).starts_with(&inside) {
            return Err(Error::Input(format!(
                "{}: {option} would be written inside {folder_option} {}, which is replaced \
                 whole; choose a path outside it (nothing was written)",
                output.display(),
                folder.display()
            )));
        }
    }
    Ok(())
}

/// False for `-` (standard output) and a device or FIFO: written in place, they replace no
/// file, so they are never compared with inputs or folders.
fn replaces_a_file(output: &Path) -> bool {
    output.as_os_str() != "-" && !is_special_file(output)
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

/// Appends one CSV field to `out` exactly as `csv::Writer` writes it with the default settings
/// every CSV of the project is written with: as is, or quoted (a quote doubled) when it holds
/// the delimiter, the quote, CR or LF; nothing else is quoted (not a leading space, not
/// non-ASCII text). For the files of millions of rows, which are rendered into big buffers
/// without serde and a writer call per field.
pub fn push_csv_field(out: &mut Vec<u8>, field: &[u8]) {
    // Without an early exit, so that the check runs over many bytes at once.
    let needs_quotes = field.iter().fold(false, |any, &b| {
        any | matches!(b, b',' | b'"' | b'\r' | b'\n')
    });
    if !needs_quotes {
        out.extend_from_slice(field);
        return;
    }
    out.push(b'"');
    for part in field.split_inclusive(|&b| b == b'"') {
        out.extend_from_slice(part);
        if part.last() == Some(&b'"') {
            out.push(b'"');
        }
    }
    out.push(b'"');
}

/// Appends one CSV record and its line end (`\n`) to `out`, byte for byte as
/// `csv::Writer::write_record` (and `serialize` of a struct of these fields) writes it. A
/// record with no bytes at all (no field, or one empty field) is written `""`, as the csv crate
/// does, so that it still reads back as a record.
pub fn push_csv_record<F: AsRef<[u8]>>(out: &mut Vec<u8>, fields: &[F]) {
    match fields {
        [] => out.extend_from_slice(b"\"\"\n"),
        [only] if only.as_ref().is_empty() => out.extend_from_slice(b"\"\"\n"),
        _ => {
            for (i, field) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_csv_field(out, field.as_ref());
            }
            out.push(b'\n');
        }
    }
}

/// Appends `text` as a JSON string to `out`, byte for byte as serde_json writes it: `"` and
/// `\` escaped, control characters as `\b \t \n \f \r` or `\u00XX` (lowercase hex), anything
/// else (DEL, non-ASCII) as is. For the re-seed files of millions of lines.
pub fn push_json_str(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(&bytes[plain..i]);
        plain = i + 1;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]),
        }
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
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
pub(crate) mod tests {
    use super::*;

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    /// The names in `dir`, sorted.
    pub(crate) fn entries(dir: &Path) -> Vec<String> {
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

    /// Commits with the `n`th rename failing ("disk full"): the commit fails with that error.
    fn commit_failing_at_rename(staging: Staging, n: usize) {
        let mut calls = 0;
        let err = staging
            .commit_with(|from, to| {
                calls += 1;
                if calls == n {
                    return Err(std::io::Error::other("disk full"));
                }
                std::fs::rename(from, to)
            })
            .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
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
        commit_failing_at_rename(staging, 4);
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

    /// A folder on another file system than the temporary folder the tests stage in
    /// (`/dev/shm`, a tmpfs on Linux), or `None` (said on stderr) where there is none.
    #[cfg(unix)]
    pub(crate) fn other_device_dir() -> Option<tempfile::TempDir> {
        use std::os::unix::fs::MetadataExt;
        let dev = |p: &Path| std::fs::metadata(p).ok().map(|m| m.dev());
        let shm = Path::new("/dev/shm");
        if dev(shm).is_some() && dev(shm) != dev(&std::env::temp_dir()) {
            if let Ok(dir) = tempfile::tempdir_in(shm) {
                return Some(dir);
            }
        }
        eprintln!(
            "note: /dev/shm is missing or on the temporary folder's file system: the move across file systems is not exercised here"
        );
        None
    }

    /// The previous set with `a.csv` and `sub/` as links to a file and a folder in
    /// `elsewhere` (holding "old linked a" and `old.csv`).
    #[cfg(unix)]
    fn linked_previous_set(elsewhere: &Path) -> tempfile::TempDir {
        let dir = previous_set();
        std::fs::write(elsewhere.join("a.csv"), "old linked a").unwrap();
        std::fs::create_dir(elsewhere.join("sub")).unwrap();
        std::fs::write(elsewhere.join("sub/old.csv"), "old").unwrap();
        for name in ["a.csv", "sub"] {
            let entry = dir.path().join(name);
            std::fs::remove_dir_all(&entry)
                .or_else(|_| std::fs::remove_file(&entry))
                .unwrap();
            std::os::unix::fs::symlink(elsewhere.join(name), entry).unwrap();
        }
        dir
    }

    /// The links are links still, the files they name hold the new set, nothing else is
    /// left beside them.
    #[cfg(unix)]
    fn assert_linked_set_replaced(dir: &Path, elsewhere: &Path) {
        for link in ["a.csv", "sub"] {
            let meta = std::fs::symlink_metadata(dir.join(link)).unwrap();
            assert!(meta.file_type().is_symlink(), "{link}");
        }
        assert_eq!(read(&elsewhere.join("a.csv")), "new a");
        assert_eq!(entries(&elsewhere.join("sub")), ["new.csv"]);
        assert_eq!(entries(elsewhere), ["a.csv", "sub"]);
        assert_eq!(entries(dir), ["a.csv", "b.csv", "notes.txt", "sub"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_linked_entry_on_another_file_system_is_copied_beside_the_file_it_names() {
        // Faked: moves out of the staging folder cross devices, moves beside the named file
        // do not (whatever the machine's file systems).
        let elsewhere = tempfile::tempdir().unwrap();
        let dir = linked_previous_set(elsewhere.path());
        let staged = dir.path().to_path_buf();
        stage_new_set(dir.path())
            .commit_with(|from, to| {
                if from.starts_with(&staged) && !to.starts_with(&staged) {
                    return Err(std::io::ErrorKind::CrossesDevices.into());
                }
                std::fs::rename(from, to)
            })
            .unwrap();
        assert_linked_set_replaced(dir.path(), elsewhere.path());
        // Real, where the machine has another file system at hand.
        if let Some(elsewhere) = other_device_dir() {
            let dir = linked_previous_set(elsewhere.path());
            stage_new_set(dir.path()).commit().unwrap();
            assert_linked_set_replaced(dir.path(), elsewhere.path());
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_failed_move_restores_the_file_a_linked_entry_names_and_leaves_nothing_beside_it() {
        let same_device = tempfile::tempdir().unwrap();
        for elsewhere in std::iter::once(same_device).chain(other_device_dir()) {
            let dir = linked_previous_set(elsewhere.path());
            std::fs::remove_dir_all(elsewhere.path().join("sub")).unwrap();
            std::fs::remove_file(dir.path().join("sub")).unwrap();
            std::fs::create_dir(dir.path().join("sub")).unwrap();
            std::fs::write(dir.path().join("sub/old.csv"), "old sub").unwrap();
            let staging = stage_new_set(dir.path());
            // a.csv moved (or copied) beside the file it names, that file set aside, a.csv
            // in; then setting sub aside fails.
            commit_failing_at_rename(staging, 4);
            assert_eq!(read(&elsewhere.path().join("a.csv")), "old linked a");
            assert_eq!(entries(elsewhere.path()), ["a.csv"]);
            let link = std::fs::symlink_metadata(dir.path().join("a.csv")).unwrap();
            assert!(link.file_type().is_symlink());
            assert_eq!(entries(dir.path()), ["a.csv", "notes.txt", "sub"]);
            assert_eq!(entries(&dir.path().join("sub")), ["old.csv"]);
        }
    }

    #[test]
    fn an_entry_in_a_subfolder_replaces_its_own_file_only_and_a_failure_removes_the_folder_made() {
        let dir = previous_set();
        let mut staging = Staging::new(dir.path()).unwrap();
        let new = staging.path("sub/new.csv");
        std::fs::create_dir_all(new.parent().unwrap()).unwrap();
        write_atomic(&new, b"new sub file").unwrap();
        staging.commit().unwrap();
        assert_eq!(entries(&dir.path().join("sub")), ["new.csv", "old.csv"]);
        assert_eq!(read(&dir.path().join("sub/new.csv")), "new sub file");
        // Into a subfolder not there yet, and the move fails: the folder goes again.
        let mut staging = Staging::new(dir.path()).unwrap();
        let new = staging.path("more/x.csv");
        std::fs::create_dir_all(new.parent().unwrap()).unwrap();
        write_atomic(&new, b"x").unwrap();
        staging
            .commit_with(|_, _| Err(std::io::Error::other("disk full")))
            .unwrap_err();
        assert_eq!(entries(dir.path()), ["a.csv", "notes.txt", "sub"]);
    }

    /// Awkward fields: separators, quotes, line ends, empty, spaces, non-ASCII, and mixes.
    const AWKWARD: [&str; 22] = [
        "",
        " ",
        "plain",
        " leading space",
        "trailing space ",
        "a,b",
        ",",
        "\"",
        "\"\"",
        "say \"hi\"",
        "\"quoted\"",
        "line\nbreak",
        "\r",
        "cr\r\nlf",
        "\n",
        "tab\there",
        "Ärzte & Co.",
        "日本語,テキスト",
        "emoji 🙂 \"x\"",
        "#comment",
        "semi;colon",
        "back\\slash'quote",
    ];

    fn csv_crate(records: &[Vec<&str>]) -> Vec<u8> {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_writer(Vec::new());
        for record in records {
            writer.write_record(record).unwrap();
        }
        writer.into_inner().unwrap()
    }

    fn ours(records: &[Vec<&str>]) -> Vec<u8> {
        let mut out = Vec::new();
        for record in records {
            push_csv_record(&mut out, record);
        }
        out
    }

    #[test]
    fn the_csv_encoder_writes_every_awkward_field_as_the_csv_crate_does() {
        // Each field alone, in first, middle and last place, and every pair.
        let mut records: Vec<Vec<&str>> = Vec::new();
        for a in AWKWARD {
            records.push(vec![a]);
            records.push(vec![a, "x"]);
            records.push(vec!["x", a, "y"]);
            records.push(vec!["x", a]);
            for b in AWKWARD {
                records.push(vec![a, b]);
            }
        }
        records.push(vec![]);
        records.push(vec!["", ""]);
        records.push(AWKWARD.to_vec());
        for record in &records {
            assert_eq!(
                String::from_utf8_lossy(&ours(std::slice::from_ref(record))),
                String::from_utf8_lossy(&csv_crate(std::slice::from_ref(record))),
                "record {record:?}"
            );
        }
        // And as one whole file.
        assert_eq!(ours(&records), csv_crate(&records));
    }

    #[test]
    fn the_csv_encoder_matches_serde_serialization_of_a_row() {
        #[derive(Serialize)]
        struct Row<'a> {
            a: &'a str,
            b: &'a str,
            c: String,
        }
        let mut expected = Vec::new();
        let mut ours_bytes = Vec::new();
        for (i, a) in AWKWARD.iter().enumerate() {
            let b = AWKWARD[(i * 7 + 3) % AWKWARD.len()];
            let c = format!("{a}{b}");
            write_csv_to(
                &mut expected,
                &["a", "b", "c"],
                [Row { a, b, c: c.clone() }],
            )
            .unwrap();
            push_csv_record(&mut ours_bytes, &["a", "b", "c"]);
            push_csv_record(&mut ours_bytes, &[*a, b, c.as_str()]);
        }
        assert_eq!(
            String::from_utf8_lossy(&ours_bytes),
            String::from_utf8_lossy(&expected)
        );
    }

    #[test]
    fn the_json_string_encoder_writes_what_serde_json_writes() {
        let mut texts: Vec<String> = AWKWARD.iter().map(|t| t.to_string()).collect();
        texts.extend((0u8..=0x7f).map(|b| format!("a{}b", b as char)));
        texts.push("\\\"\u{2028}\u{7f}\u{0}".to_string());
        texts.push("+15550001111".to_string());
        for text in &texts {
            let mut ours = Vec::new();
            push_json_str(&mut ours, text);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(text).unwrap(),
                "{text:?}"
            );
        }
    }

    /// A fill that writes more than two sync-ahead steps, then maybe fails.
    fn big_fill(fail: bool) -> impl FnOnce(&mut AtomicFile) -> std::io::Result<()> {
        move |file| {
            use std::io::Write;
            let block = vec![b'x'; 1 << 20];
            for _ in 0..(2 * SYNC_AHEAD_BYTES / (1 << 20) + 3) {
                file.write_all(&block)?;
            }
            if fail {
                return Err(std::io::Error::other("disk full"));
            }
            file.write_all(b"end")
        }
    }

    #[test]
    fn a_big_file_synced_ahead_lands_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.csv");
        std::fs::write(&path, "old").unwrap();
        write_atomic_with(&path, big_fill(false)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, 2 * SYNC_AHEAD_BYTES + (3 << 20) + 3);
        assert!(bytes.ends_with(b"xend"));
        assert_eq!(entries(dir.path()), ["big.csv"]);
    }

    #[test]
    fn a_failure_mid_write_leaves_the_old_file_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.csv");
        std::fs::write(&path, "old").unwrap();
        let err = write_atomic_with(&path, big_fill(true)).unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert!(err.to_string().contains("big.csv"), "{err}");
        assert_eq!(read(&path), "old");
        assert_eq!(entries(dir.path()), ["big.csv"]);
        // A new file: nothing at all is left.
        let new = dir.path().join("new.csv");
        write_atomic_with(&new, big_fill(true)).unwrap_err();
        assert_eq!(entries(dir.path()), ["big.csv"]);
    }

    #[test]
    fn files_written_side_by_side_land_whole_and_a_failure_leaves_no_half_file() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..3 * FILES_SIDE_BY_SIDE)
            .map(|i| format!("f{i:02}.csv"))
            .collect();
        write_side_by_side(&names, |name| {
            write_atomic_with(&dir.path().join(name), |file| {
                use std::io::Write;
                file.write_all(name.as_bytes())
            })
        })
        .unwrap();
        assert_eq!(entries(dir.path()), names);
        for name in &names {
            assert_eq!(read(&dir.path().join(name)), *name);
        }
        // Two files fail mid-write (one of them big enough to be synced ahead): the error is
        // the first failing file's in order, the failing files keep their old content, every
        // other file is the old or the new one whole, and no temporary file is left.
        let failing = ["f03.csv", "f05.csv"];
        let err = write_side_by_side(&names, |name| {
            let fail = failing.contains(&name.as_str());
            if name == "f05.csv" {
                return write_atomic_with(&dir.path().join(name), big_fill(true));
            }
            write_atomic_with(&dir.path().join(name), |file| {
                use std::io::Write;
                file.write_all(b"new")?;
                if fail {
                    return Err(std::io::Error::other("disk full"));
                }
                Ok(())
            })
        })
        .unwrap_err();
        assert!(err.to_string().contains("f03.csv"), "{err}");
        assert_eq!(entries(dir.path()), names);
        for name in &names {
            let content = read(&dir.path().join(name));
            if failing.contains(&name.as_str()) {
                assert_eq!(content, *name);
            } else {
                assert!(content == *name || content == "new", "{name}: {content}");
            }
        }
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
