//! Reading the messages on every core: the file is cut into blocks of whole lines, each block
//! parsed by a worker into its own state; the caller merges the states. Tens of millions of
//! lines parse in parallel while memory holds only a few blocks.

use std::io::Read;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};

use super::{check_count, DataReader, LineRef, Resource, Snapshot};
use crate::error::{Error, Result};
use crate::model::MessageRef;

/// Bytes per block handed to a worker.
const BLOCK: usize = 4 << 20;

struct Block {
    bytes: Vec<u8>,
    /// Line number of the block's first line (1-based).
    first_line: usize,
}

/// How many workers to use: the machine's cores, at most 8.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

impl Snapshot {
    /// Folds every message into per-worker states made by `init`, in no particular order;
    /// returns the states (the caller merges them) and the number of messages. An error names
    /// the first line in file order that failed (not UTF-8, not a message record, or refused
    /// by `visit`), and the manifest counts are checked.
    pub fn fold_messages<S, I, F>(&self, init: I, visit: F) -> Result<(Vec<S>, u64)>
    where
        S: Send,
        I: Fn() -> S + Sync,
        F: Fn(&mut S, LineRef<'_>, &MessageRef<'_>) -> Result<()> + Sync,
    {
        self.fold_messages_sifted(init, |_| true, visit)
    }

    /// `fold_messages` for a second read of messages a first one has checked whole: a line
    /// for which `sift` (given its raw bytes) answers false is only counted, neither checked
    /// nor parsed nor visited. `sift` must answer true for every line `visit` could use.
    pub fn fold_messages_sifted<S, I, W, F>(
        &self,
        init: I,
        sift: W,
        visit: F,
    ) -> Result<(Vec<S>, u64)>
    where
        S: Send,
        I: Fn() -> S + Sync,
        W: Fn(&[u8]) -> bool + Sync,
        F: Fn(&mut S, LineRef<'_>, &MessageRef<'_>) -> Result<()> + Sync,
    {
        let workers = default_workers();
        let mut states: Vec<S> = (0..workers).map(|_| init()).collect();
        let mut total = 0;
        for (path, expected) in self.data_files(Resource::Messages)? {
            let count = fold_file(&path, BLOCK, &mut states, &sift, &visit)?;
            check_count(&path, Resource::Messages, expected, count)?;
            total += count;
        }
        Ok((states, total))
    }
}

fn fold_file<S, W, F>(
    path: &Path,
    block_size: usize,
    states: &mut [S],
    sift: &W,
    visit: &F,
) -> Result<u64>
where
    S: Send,
    W: Fn(&[u8]) -> bool + Sync,
    F: Fn(&mut S, LineRef<'_>, &MessageRef<'_>) -> Result<()> + Sync,
{
    let (sender, receiver) = mpsc::sync_channel::<Block>(states.len() * 2);
    let receiver = Arc::new(Mutex::new(receiver));
    // Parsed blocks' buffers go back to the reader, which fills them again: no allocation,
    // page faults or zero-filling of fresh 4 MiB buffers per block.
    let (recycle, recycled) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let handles: Vec<_> = states
            .iter_mut()
            .map(|state| {
                let receiver = Arc::clone(&receiver);
                let recycle = recycle.clone();
                scope.spawn(move || -> (u64, Option<(usize, Error)>) {
                    let mut count = 0u64;
                    let mut error: Option<(usize, Error)> = None;
                    loop {
                        let next = receiver.lock().expect("no worker panics holding it").recv();
                        let Ok(block) = next else {
                            return (count, error);
                        };
                        // After an error only earlier lines matter: the first bad line in
                        // file order is the one reported, whichever worker meets it.
                        if error
                            .as_ref()
                            .is_some_and(|(line, _)| block.first_line > *line)
                        {
                            continue;
                        }
                        match parse_block(path, &block, state, sift, visit) {
                            Ok(n) => count += n,
                            Err((line, e)) => {
                                if error.as_ref().is_none_or(|(l, _)| line < *l) {
                                    error = Some((line, e));
                                }
                            }
                        }
                        // The reader may have finished: then the buffer is simply dropped.
                        let _ = recycle.send(block.bytes);
                    }
                })
            })
            .collect();
        drop(recycle);
        let read = read_blocks(path, block_size, &sender, &recycled);
        drop(sender);
        let mut count = 0;
        let mut first_error: Option<(usize, Error)> = None;
        for handle in handles {
            let (n, error) = handle.join().expect("message workers do not panic");
            count += n;
            if let Some((line, e)) = error {
                if first_error.as_ref().is_none_or(|(l, _)| line < *l) {
                    first_error = Some((line, e));
                }
            }
        }
        read?;
        match first_error {
            Some((_, e)) => Err(e),
            None => Ok(count),
        }
    })
}

/// Reads the file in blocks that end on a line break and sends them with their first line's
/// number. Buffers come back through `recycled` once parsed.
fn read_blocks(
    path: &Path,
    block_size: usize,
    sender: &mpsc::SyncSender<Block>,
    recycled: &mpsc::Receiver<Vec<u8>>,
) -> Result<()> {
    let mut file = DataReader::open(path)?;
    let mut carry: Vec<u8> = Vec::new();
    let mut next_line = 1usize;
    loop {
        // A recycled buffer is already initialised over about a block: `resize` only writes
        // what it lacks. The carried part of a line moves to its front.
        let mut bytes = recycled.try_recv().unwrap_or_default();
        let start = carry.len();
        if bytes.len() < start {
            bytes.resize(start, 0);
        }
        bytes[..start].copy_from_slice(&carry);
        carry.clear();
        bytes.resize(start + block_size, 0);
        let n = read_full(&mut file, &mut bytes[start..]).map_err(|e| Error::read(path, e))?;
        bytes.truncate(start + n);
        let at_end = n == 0;
        if !at_end {
            // Cut after the last line break; the rest starts the next block.
            match memchr::memrchr(b'\n', &bytes) {
                Some(cut) => {
                    carry.extend_from_slice(&bytes[cut + 1..]);
                    bytes.truncate(cut + 1);
                }
                None => {
                    carry = bytes;
                    continue;
                }
            }
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let lines =
            memchr::memchr_iter(b'\n', &bytes).count() + usize::from(!bytes.ends_with(b"\n"));
        let block = Block {
            bytes,
            first_line: next_line,
        };
        next_line += lines;
        if sender.send(block).is_err() || at_end {
            return Ok(());
        }
    }
}

fn read_full(file: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Parses a block's lines (blank ones skipped, as `for_each_line` does; those `sift` turns
/// away only counted); on failure, the line number and the error.
fn parse_block<S, W, F>(
    path: &Path,
    block: &Block,
    state: &mut S,
    sift: &W,
    visit: &F,
) -> Result<u64, (usize, Error)>
where
    W: Fn(&[u8]) -> bool,
    F: Fn(&mut S, LineRef<'_>, &MessageRef<'_>) -> Result<()>,
{
    let mut count = 0;
    for (i, raw) in lines(&block.bytes).enumerate() {
        if !sift(raw) {
            count += u64::from(!is_blank(raw));
            continue;
        }
        let line = block.first_line + i;
        let fail = |e: Error| (line, e);
        let text = std::str::from_utf8(raw)
            .map_err(|_| fail(Error::at_line(path, line, "line is not valid UTF-8")))?;
        let text = text.trim_end_matches('\r');
        if text.trim().is_empty() {
            continue;
        }
        // The usual line is read on the fast path; serde_json reads the rest and reports errors.
        let message = match super::message_line::parse(text) {
            Some(message) => message,
            None => serde_json::from_str::<MessageRef>(text).map_err(|e| {
                fail(Error::at_line(
                    path,
                    line,
                    format!("not a valid message record: {e}"),
                ))
            })?,
        };
        if let Some(problem) = message.problem() {
            return Err(fail(Error::at_line(path, line, problem)));
        }
        count += 1;
        visit(state, LineRef { path, line }, &message).map_err(fail)?;
    }
    Ok(count)
}

/// Whether a line is blank as the full read sees it (nothing but white space once read as
/// UTF-8); a line that is not UTF-8 is not blank (the full read reports it).
fn is_blank(raw: &[u8]) -> bool {
    raw.first() != Some(&b'{') && std::str::from_utf8(raw).is_ok_and(|t| t.trim().is_empty())
}

/// The lines of a block, as `split(|&b| b == b'\n')` gives them (an empty last one after a
/// final line break), found with memchr.
fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let breaks = memchr::memchr_iter(b'\n', bytes).map(Some).chain([None]);
    breaks.map(move |end| {
        let end = end.unwrap_or(bytes.len());
        let line = &bytes[start..end];
        start = end + 1;
        line
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(n: usize) -> String {
        format!("{{\"sid\":\"SM{n:032}\",\"direction\":\"inbound\",\"body\":\"hi {n}\"}}\n")
    }

    fn run(text: &str, block: usize) -> Result<(Vec<(usize, String)>, u64)> {
        run_sifted(text, block, |_| true)
    }

    fn run_sifted(
        text: &str,
        block: usize,
        sift: impl Fn(&[u8]) -> bool + Sync,
    ) -> Result<(Vec<(usize, String)>, u64)> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        let mut states: Vec<Vec<(usize, String)>> = vec![Vec::new(); 3];
        let count = fold_file(file.path(), block, &mut states, &sift, &|seen: &mut Vec<
            (usize, String),
        >,
                                                                        at: LineRef<
            '_,
        >,
                                                                        m: &MessageRef<
            '_,
        >| {
            seen.push((at.line, m.sid.to_string()));
            Ok(())
        })?;
        let mut seen: Vec<_> = states.into_iter().flatten().collect();
        seen.sort();
        Ok((seen, count))
    }

    #[test]
    fn blocks_cut_on_line_breaks_and_keep_line_numbers() {
        let mut text = String::new();
        for n in 1..=50 {
            text.push_str(&line(n));
            if n % 7 == 0 {
                text.push('\n'); // a blank line: skipped, but counted as a line
            }
        }
        text.push_str(line(51).trim_end()); // no final line break
        for block in [16, 100, 333, 1 << 20] {
            let (seen, count) = run(&text, block).unwrap();
            assert_eq!(count, 51, "block {block}");
            let (first_line, first_sid) = &seen[0];
            assert_eq!(
                (*first_line, first_sid.as_str()),
                (1, "SM00000000000000000000000000000001")
            );
            // Line 8 is line(8)'s, after the blank line that follows line(7).
            assert!(
                seen.contains(&(9, format!("SM{:032}", 8))),
                "block {block}: {seen:?}"
            );
            assert_eq!(seen.last().unwrap().0, 58);
        }
    }

    #[test]
    fn lines_the_sift_turns_away_are_counted_but_not_read() {
        let mut text = String::new();
        for n in 1..=30 {
            text.push_str(&line(n));
            if n % 4 == 0 {
                text.push_str(" \u{3000}\r\n"); // blank (Unicode white space): not a message
            }
        }
        let wanted = |raw: &[u8]| raw.ends_with(b"5\"}");
        for block in [40, 1 << 20] {
            let (seen, count) = run_sifted(&text, block, wanted).unwrap();
            assert_eq!(count, 30, "block {block}");
            let sids: Vec<&str> = seen.iter().map(|(_, sid)| &sid[30..]).collect();
            assert_eq!(sids, ["0005", "0015", "0025"], "block {block}");
            // Line numbers still count the lines turned away and the blank ones.
            assert_eq!(seen[0].0, 6);
        }
    }

    #[test]
    fn lines_are_split_as_the_slice_split_does() {
        for text in ["", "\n", "a", "a\n", "a\nb", "a\n\nb\n", "\n\nx"] {
            let ours: Vec<&[u8]> = lines(text.as_bytes()).collect();
            let std: Vec<&[u8]> = text.as_bytes().split(|&b| b == b'\n').collect();
            assert_eq!(ours, std, "{text:?}");
        }
    }

    #[test]
    fn the_first_bad_line_in_file_order_is_reported() {
        let mut text = String::new();
        for n in 1..=40 {
            if n == 12 || n == 30 {
                text.push_str("{broken\n");
            } else {
                text.push_str(&line(n));
            }
        }
        for block in [64, 1 << 20] {
            let err = run(&text, block).unwrap_err().to_string();
            assert!(
                err.contains(":12: not a valid message record"),
                "block {block}: {err}"
            );
        }
    }
}
