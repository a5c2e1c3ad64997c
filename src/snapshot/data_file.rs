//! A data file on disk is JSON lines, plain (`messages.jsonl`) or compressed with zstd
//! (`messages.jsonl.zst`): every reader goes through [`DataReader`], which tells them apart by
//! the name, and every writer through [`DataWriter`]. See docs/snapshot-format.md
//! ("Compressed files").

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The suffix of a zstd-compressed data file.
pub const ZSTD_SUFFIX: &str = ".zst";

/// zstd's default level: about 1/8 of the JSON at a cost the pull's network time hides.
const ZSTD_LEVEL: i32 = 3;

/// Whether `path` names a compressed data file.
pub fn is_compressed(path: &Path) -> bool {
    path.as_os_str()
        .to_str()
        .is_some_and(|p| p.ends_with(ZSTD_SUFFIX))
}

/// `x.jsonl.zst` for `x.jsonl`, `x.jsonl` for `x.jsonl.zst`.
pub fn other_form(path: &Path) -> PathBuf {
    let text = path.to_string_lossy();
    match text.strip_suffix(ZSTD_SUFFIX) {
        Some(plain) => PathBuf::from(plain),
        None => PathBuf::from(format!("{text}{ZSTD_SUFFIX}")),
    }
}

/// Removes `x.jsonl.zst` beside a new `x.jsonl`, or `x.jsonl` beside a new `x.jsonl.zst`:
/// a writer calls it once its file is in place, so that a file an earlier run left in the other
/// form cannot make the snapshot ambiguous.
pub fn remove_other_form(path: &Path) -> Result<()> {
    let other = other_form(path);
    match std::fs::remove_file(&other) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::write(&other, e)),
        _ => Ok(()),
    }
}

/// The file that holds a listed data file: the name the manifest gives, or the same name with
/// or without `.zst` (a user may compress a snapshot's files with `zstd --rm`, or unpack them
/// with `unzstd --rm`, without editing the manifest). Both present is refused: which one holds
/// the records is anybody's guess. Neither present answers the listed path (the caller reports
/// it missing).
pub fn locate(listed: PathBuf) -> Result<PathBuf> {
    let (plain, compressed) = if is_compressed(&listed) {
        (other_form(&listed), listed.clone())
    } else {
        (listed.clone(), other_form(&listed))
    };
    match (plain.is_file(), compressed.is_file()) {
        (true, true) => Err(Error::Input(format!(
            "{} and {} both exist: the snapshot is ambiguous (which one holds the records?); move one of them out of the snapshot folder",
            plain.display(),
            compressed.display()
        ))),
        (true, false) => Ok(plain),
        (false, true) => Ok(compressed),
        (false, false) => Ok(listed),
    }
}

/// Reads a data file's bytes, decompressing a `.zst` one.
pub enum DataReader {
    Plain(File),
    Zstd(Box<zstd::stream::read::Decoder<'static, BufReader<File>>>),
}

impl DataReader {
    pub fn open(path: &Path) -> Result<DataReader> {
        let file = File::open(path).map_err(|e| Error::read(path, e))?;
        if !is_compressed(path) {
            return Ok(DataReader::Plain(file));
        }
        let decoder = zstd::stream::read::Decoder::new(file).map_err(|e| Error::read(path, e))?;
        Ok(DataReader::Zstd(Box::new(decoder)))
    }
}

impl Read for DataReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            DataReader::Plain(file) => file.read(buf),
            // zstd's own words ("Unknown frame descriptor", "incomplete frame") do not say
            // what to do about it.
            DataReader::Zstd(decoder) => decoder.read(buf).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("not a valid zstd file, damaged or cut short ({e}); pull the snapshot again"),
                )
            }),
        }
    }
}

/// Writes a data file's bytes, compressing them when asked. `finish` must be called: it
/// ends the zstd frame and hands back the file.
pub enum DataWriter<W: Write> {
    Plain(BufWriter<W>),
    // The buffer in front gathers serde_json's many small writes into blocks for zstd.
    Zstd(BufWriter<zstd::stream::write::Encoder<'static, W>>),
}

impl<W: Write> DataWriter<W> {
    pub fn new(inner: W, compress: bool) -> io::Result<DataWriter<W>> {
        Ok(if compress {
            let mut encoder = zstd::stream::write::Encoder::new(inner, ZSTD_LEVEL)?;
            // A checksum of the content: a damaged file is an error, never other records.
            encoder.include_checksum(true)?;
            DataWriter::Zstd(BufWriter::with_capacity(1 << 17, encoder))
        } else {
            DataWriter::Plain(BufWriter::with_capacity(1 << 16, inner))
        })
    }

    /// Flushes everything, ends the compressed frame, and returns the file.
    pub fn finish(self) -> io::Result<W> {
        match self {
            DataWriter::Plain(writer) => writer.into_inner().map_err(|e| e.into_error()),
            DataWriter::Zstd(writer) => writer.into_inner().map_err(|e| e.into_error())?.finish(),
        }
    }
}

impl<W: Write> Write for DataWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            DataWriter::Plain(w) => w.write(buf),
            DataWriter::Zstd(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            DataWriter::Plain(w) => w.write_all(buf),
            DataWriter::Zstd(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            DataWriter::Plain(w) => w.flush(),
            DataWriter::Zstd(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &[u8], compress: bool) {
        let mut writer = DataWriter::new(File::create(path).unwrap(), compress).unwrap();
        writer.write_all(text).unwrap();
        writer.finish().unwrap();
    }

    fn read(path: &Path) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        DataReader::open(path)?
            .read_to_end(&mut out)
            .map_err(|e| Error::read(path, e))?;
        Ok(out)
    }

    #[test]
    fn a_compressed_file_reads_back_as_written_and_is_smaller() {
        let dir = tempfile::tempdir().unwrap();
        let text: Vec<u8> = (0..5000)
            .flat_map(|n| format!("{{\"sid\":\"SM{n:032}\",\"body\":\"STOP\"}}\n").into_bytes())
            .collect();
        let plain = dir.path().join("m.jsonl");
        let packed = dir.path().join("m.jsonl.zst");
        write(&plain, &text, false);
        write(&packed, &text, true);
        assert_eq!(read(&plain).unwrap(), text);
        assert_eq!(read(&packed).unwrap(), text);
        assert!(std::fs::metadata(&packed).unwrap().len() * 5 < text.len() as u64);
    }

    #[test]
    fn damaged_or_cut_short_compressed_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let text: Vec<u8> = (0..20000)
            .flat_map(|n| format!("{{\"sid\":\"SM{n:032}\"}}\n").into_bytes())
            .collect();
        let packed = dir.path().join("m.jsonl.zst");
        write(&packed, &text, true);
        let bytes = std::fs::read(&packed).unwrap();
        // Cut short: the end of the frame is missing.
        std::fs::write(&packed, &bytes[..bytes.len() / 2]).unwrap();
        let err = read(&packed).unwrap_err().to_string();
        assert!(
            err.contains("m.jsonl.zst") && err.contains("not a valid zstd file"),
            "{err}"
        );
        // Not zstd at all (a plain file given the .zst name).
        std::fs::write(&packed, &text).unwrap();
        let err = read(&packed).unwrap_err().to_string();
        assert!(
            err.contains("m.jsonl.zst") && err.contains("not a valid zstd file"),
            "{err}"
        );
        // Bytes flipped inside the frame: zstd's checksum or its block syntax catches it.
        let mut flipped = bytes.clone();
        for b in &mut flipped[bytes.len() / 3..bytes.len() / 3 + 64] {
            *b ^= 0x5a;
        }
        std::fs::write(&packed, &flipped).unwrap();
        let err = read(&packed).unwrap_err().to_string();
        assert!(err.contains("not a valid zstd file"), "{err}");
    }

    #[test]
    fn locate_finds_either_form_and_refuses_both() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("messages.jsonl");
        let packed = dir.path().join("messages.jsonl.zst");
        assert_eq!(locate(plain.clone()).unwrap(), plain, "neither: as listed");
        std::fs::write(&packed, b"").unwrap();
        assert_eq!(locate(plain.clone()).unwrap(), packed);
        assert_eq!(locate(packed.clone()).unwrap(), packed);
        std::fs::write(&plain, b"").unwrap();
        let err = locate(plain.clone()).unwrap_err().to_string();
        assert!(
            err.contains("both exist") && err.contains("messages.jsonl.zst"),
            "{err}"
        );
        std::fs::remove_file(&packed).unwrap();
        assert_eq!(locate(packed).unwrap(), plain);
    }
}
