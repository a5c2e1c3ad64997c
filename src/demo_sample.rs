//! The demo sample commands read when no `--snapshot` is given: the repository's
//! `sample-data/owlie` when run from its root, otherwise the same sample made by the generator
//! ([`crate::sample`]) into a cache folder, so that the demo works wherever the binary is.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sample::{generate, SampleOptions};

/// Where the repository keeps the sample, relative to its root.
pub const REPO_SAMPLE: &str = "sample-data/owlie";

/// The options the shipped sample is made with (`subaudit sample`'s defaults).
pub const SAMPLE_OPTIONS: SampleOptions = SampleOptions {
    seed: 7,
    messages: 6000,
    compress: false,
};

/// The demo sample's folder: `sample-data/owlie` under the working folder when it holds a
/// snapshot, else a copy generated once into the cache folder ([`cache_root`]).
pub fn locate() -> Result<PathBuf> {
    let repo = PathBuf::from(REPO_SAMPLE);
    if repo.join("manifest.json").is_file() {
        return Ok(repo);
    }
    ensure_generated(&cache_root())
}

/// `$XDG_CACHE_HOME/subaudit`, else `$HOME/.cache/subaudit`, else the temporary folder's
/// `subaudit-cache`.
pub fn cache_root() -> PathBuf {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("XDG_CACHE_HOME") {
        PathBuf::from(dir).join("subaudit")
    } else if let Some(home) = non_empty("HOME") {
        PathBuf::from(home).join(".cache").join("subaudit")
    } else {
        std::env::temp_dir().join("subaudit-cache")
    }
}

/// The generated sample under `root`, made first if missing. It is written into a hidden
/// folder beside its final place and renamed there when complete, so a reader never sees a
/// half-written sample and two runs racing to make it both end with a whole one.
pub fn ensure_generated(root: &Path) -> Result<PathBuf> {
    let dir = root.join(format!("sample-{}", build_key()));
    if dir.join("manifest.json").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(root).map_err(|e| Error::write(root, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".sample-")
        .tempdir_in(root)
        .map_err(|e| Error::write(root, e))?;
    let made = staging.path().join("owlie");
    generate(&made, SAMPLE_OPTIONS)?;
    match std::fs::rename(&made, &dir) {
        Ok(()) => {
            remove_stale_samples(root, &dir);
            Ok(dir)
        }
        // Another run finished first: its sample is the same, bytes for bytes.
        Err(_) if dir.join("manifest.json").is_file() => Ok(dir),
        Err(e) => Err(Error::failed(
            format!("cannot move the generated sample to {}", dir.display()),
            e,
        )),
    }
}

/// How old another build's sample (or a crashed run's staging folder) must be before a newly
/// made sample replaces it: long enough that no run still reading it is cut short.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Removes the samples of other builds (and staging folders left by crashed runs) under
/// `root`, so that the cache holds one sample, not one per build ever run. Best effort: a
/// folder that cannot be removed is left, and nothing but `sample-*`/`.sample-*` is touched.
fn remove_stale_samples(root: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = name.starts_with("sample-") || name.starts_with(".sample-");
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE_AFTER);
        if ours && stale && path != keep && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// The version plus a fingerprint of this executable (size and modification time), so that a
/// rebuilt binary whose generator changed makes its own sample instead of reading an old one.
fn build_key() -> String {
    let version = env!("CARGO_PKG_VERSION");
    let fingerprint = std::env::current_exe()
        .and_then(std::fs::metadata)
        .ok()
        .map(|meta| {
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            // FNV-1a over (size, mtime): short, stable, no extra crate.
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
            for byte in meta
                .len()
                .to_le_bytes()
                .into_iter()
                .chain(modified.to_le_bytes())
            {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
            hash
        });
    match fingerprint {
        Some(hash) => format!("{version}-{hash:016x}"),
        None => version.to_string(),
    }
}
