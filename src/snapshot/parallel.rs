//! Reading the messages on every core: the file is cut into blocks of whole lines, each block
//! parsed by a worker into its own state; the caller merges the states. Tens of millions of
//! lines parse in parallel while memory holds only a few blocks.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use super::{check_count, is_compressed, DataReader, LineRef, Resource, Snapshot};
use crate::error::{Error, Result};
use crate::model::MessageRef;

/// Bytes per block handed to a worker.
const BLOCK: usize = 4 << 20;

/// How far ahead of the workers a mapped file is asked for when it is not in memory. At 10M
/// messages with the page cache dropped: 14.7-15.7 s two blocks ahead, 13.6 s eight (32 MiB),
/// 13.9-14.1 s thirty-two; reading into buffers (before the map) took 18.9-22.3 s.
const READ_AHEAD_BLOCKS: usize = 8;

struct Block {
    bytes: Vec<u8>,
    /// The block's place in the file (0 for the first).
    index: usize,
    /// Where the block starts among the snapshot's message bytes (see [`LineRef::position`]);
    /// None in a compressed file.
    position: Option<u64>,
}

/// How many workers to use: the machine's cores, at most 8.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

impl Snapshot {
    /// Folds every message into per-worker states made by `init`, in no particular order;
    /// returns the states (the caller merges them) and the number of messages. An error names
    /// the first line in file order that failed (not UTF-8, not a message record, or refused
    /// by `visit`), and the manifest counts are checked. `visit` gets a line's true number
    /// only when it fails: it is called a second time with it, on a fresh state, once the
    /// lines before are counted (use `at.line` for errors only).
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
        for (path, expected, base) in self.message_files()? {
            let count = fold_file(&path, base, true, BLOCK, &mut states, &init, &sift, &visit)?;
            check_count(&path, Resource::Messages, expected, count)?;
            total += count;
        }
        Ok((states, total))
    }

    /// The message files with their expected counts and where each starts among the
    /// snapshot's message bytes (the plain files' lengths added up in listed order); None for
    /// a compressed file, whose lines cannot be read again in place.
    fn message_files(&self) -> Result<Vec<(PathBuf, u64, Option<u64>)>> {
        let mut base = 0u64;
        let mut out = Vec::new();
        for (path, expected) in self.data_files(Resource::Messages)? {
            if is_compressed(&path) {
                out.push((path, expected, None));
                continue;
            }
            let len = std::fs::metadata(&path)
                .map_err(|e| Error::read(&path, e))?
                .len();
            out.push((path, expected, Some(base)));
            base += len;
        }
        Ok(out)
    }

    /// Whether every message line has a position to be read again at (no message file is
    /// compressed).
    pub fn messages_are_seekable(&self) -> Result<bool> {
        Ok(self
            .message_files()?
            .iter()
            .all(|(_, _, base)| base.is_some()))
    }

    /// Reads again the message lines that start at `positions` (sorted, each a
    /// [`LineRef::position`] a fold gave), on every core, and visits each as a fold does:
    /// only those lines are read, a few at a time. `visit` gets the line's number only when
    /// it fails: it is called a second time with the true number (counted then) and that
    /// call's error is reported. Returns the per-worker states.
    pub fn fold_messages_at<S, I, F>(&self, positions: &[u64], init: I, visit: F) -> Result<Vec<S>>
    where
        S: Send,
        I: Fn() -> S + Sync,
        F: Fn(&mut S, LineRef<'_>, &MessageRef<'_>) -> Result<()> + Sync,
    {
        let mut files = Vec::new();
        for (path, _, base) in self.message_files()? {
            let Some(base) = base else {
                return Err(Error::Input(format!(
                    "{}: a compressed file cannot be read at a position",
                    path.display()
                )));
            };
            files.push((path, base));
        }
        let workers = default_workers().min(positions.len()).max(1);
        let chunk = positions.len().div_ceil(workers).max(1);
        let mut states: Vec<S> = (0..workers).map(|_| init()).collect();
        let results: Vec<Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = states
                .iter_mut()
                .zip(positions.chunks(chunk))
                .map(|(state, positions)| {
                    let files = &files;
                    let visit = &visit;
                    scope.spawn(move || reread_lines(files, positions, state, visit))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("message workers do not panic"))
                .collect()
        });
        // Each chunk stops at its first error: the earliest chunk's is the first in file order.
        results.into_iter().collect::<Result<Vec<()>>>()?;
        Ok(states)
    }
}

/// A worker's account of the blocks it parsed.
#[derive(Default)]
struct Parsed {
    messages: u64,
    /// Lines per block, by the block's index: the line numbers of an error are counted from
    /// them (blocks are cut without counting lines, the workers find them anyway).
    lines: Vec<(usize, usize)>,
    error: Option<BlockError>,
}

impl Parsed {
    /// Parses one block into `state`, unless an earlier block of this worker failed.
    fn take<S, W, F>(
        &mut self,
        path: &Path,
        block: BlockRef<'_>,
        state: &mut S,
        sift: &W,
        visit: &F,
    ) where
        W: Fn(&[u8]) -> bool,
        F: Fn(&mut S, LineRef<'_>, &MessageRef<'_>) -> Result<()>,
    {
        // After an error only earlier lines matter: the first bad line in file order is the
        // one reported, whichever worker meets it.
        if self.error.as_ref().is_some_and(|e| block.index >= e.block) {
            return;
        }
        match parse_block(path, block, state, sift, visit) {
            Ok((messages, lines)) => {
                self.messages += messages;
                self.lines.push((block.index, lines));
            }
            Err(failed) => self.error = Some(failed),
        }
    }
}

/// The first line of a block that failed: its index in the block (0-based), its bytes and
/// position, and the error it gave with a line number counted from the block's start.
struct BlockError {
    block: usize,
    line: usize,
    raw: Vec<u8>,
    position: Option<u64>,
    error: Error,
}

/// A block of whole lines as a worker parses it.
#[derive(Clone, Copy)]
struct BlockRef<'b> {
    bytes: &'b [u8],
    /// The block's place in the file (0 for the first).
    index: usize,
    /// Where the block starts among the snapshot's message bytes (see [`LineRef::position`]);
    /// None in a compressed file.
    position: Option<u64>,
}

/// Folds one message file on every worker: a plain file is mapped into memory and parsed in
/// place when `map` says so (always, but in the tests, which read both ways), a compressed one
/// (or a file that cannot be mapped) read in blocks by this thread.
#[allow(clippy::too_many_arguments)]
fn fold_file<S, I, W, F>(
    path: &Path,
    base: Option<u64>,
    map: bool,
    block_size: usize,
    states: &mut [S],
    init: &I,
    sift: &W,
    visit: &F,
) -> Result<u64>
where
    S: Send,
    I: Fn() -> S,
    W: Fn(&[u8]) -> bool + Sync,
    F: Fn(&mut S, LineRef<'_>, &MessageRef<'_>) -> Result<()> + Sync,
{
    let mapped = match base {
        Some(base) if map => map_file(path)?.map(|map| (map, base)),
        _ => None,
    };
    let parsed = match &mapped {
        Some((map, base)) => fold_mapped(path, map, *base, block_size, states, sift, visit),
        None => fold_read(path, base, block_size, states, sift, visit)?,
    };
    settle(path, parsed, init, visit)
}

/// The plain file mapped into memory; None when it is empty or cannot be mapped (then it is
/// read instead).
fn map_file(path: &Path) -> Result<Option<memmap2::Mmap>> {
    let file = std::fs::File::open(path).map_err(|e| Error::read(path, e))?;
    let metadata = file.metadata().map_err(|e| Error::read(path, e))?;
    if metadata.len() == 0 || !metadata.is_file() {
        return Ok(None);
    }
    // SAFETY: the map is only read, and only while this fold runs. A snapshot's files are
    // written whole and renamed into place (docs/snapshot-format.md): a pull into the same
    // folder replaces the file and leaves the mapped one as it was. Cutting the file short
    // in place while it is read would end the process (SIGBUS), as it does for any program
    // that maps files (ripgrep, git); the docs say not to.
    let map = unsafe { memmap2::Mmap::map(&file) };
    Ok(map.ok())
}

/// Blocks of a mapped file, parsed in place: no copy from the page cache into buffers, and
/// no reader thread. Block `i` runs from the first line that starts at or after
/// `i * block_size` to the first that starts at or after the next block's start, so each
/// line is in exactly one block (an empty block when a line is longer than a block).
fn fold_mapped<S, W, F>(
    path: &Path,
    map: &memmap2::Mmap,
    base: u64,
    block_size: usize,
    states: &mut [S],
    sift: &W,
    visit: &F,
) -> Vec<Parsed>
where
    S: Send,
    W: Fn(&[u8]) -> bool + Sync,
    F: Fn(&mut S, LineRef<'_>, &MessageRef<'_>) -> Result<()> + Sync,
{
    let bytes: &[u8] = map;
    let len = bytes.len();
    let blocks = len.div_ceil(block_size);
    // The `i`th stretch of `block_size` bytes of the file (empty past its end).
    let stretch = |i: usize| {
        let from = i.saturating_mul(block_size).min(len);
        (from, (i + 1).saturating_mul(block_size).min(len))
    };
    let line_start = |i: usize| -> usize {
        let (at, _) = stretch(i);
        if at == 0 || at == len {
            return at;
        }
        memchr::memchr(b'\n', &bytes[at - 1..]).map_or(len, |n| at + n)
    };
    // Workers ask the kernel for the block [`READ_AHEAD_BLOCKS`] ahead of the one they take,
    // so that a file the page cache does not hold is read while they parse. Asking costs a
    // lookup of every page (~6% of a read at 1M messages), so only when the block's first page
    // is not held.
    let ahead = |i: usize| {
        let (from, to) = stretch(i);
        if from < to && !page_is_resident(map, from) {
            let _ = map.advise_range(memmap2::Advice::WillNeed, from, to - from);
        }
    };
    // Parsed pages leave the map (not the page cache): mapped pages count in the process's
    // resident memory, and the whole file would. The `i`th stretch of `block_size` bytes is
    // read by block `i`, by block `i - 1` (the head of the stretch, up to its first line
    // start) and by block `i + 1` (the byte before that block's start, to find its first
    // line), so it is let go once those three are parsed. Sooner, a read in it would map it
    // back, a 2 MiB page of the cache at a time.
    let readers_left: Vec<std::sync::atomic::AtomicU8> = (0..blocks)
        .map(|i| {
            let readers = 1 + u8::from(i > 0) + u8::from(i + 1 < blocks);
            std::sync::atomic::AtomicU8::new(readers)
        })
        .collect();
    let release = |i: usize| {
        if readers_left[i].fetch_sub(1, std::sync::atomic::Ordering::AcqRel) != 1 {
            return;
        }
        let (from, to) = stretch(i);
        if from < to {
            // SAFETY: the map is read-only and backed by the file: a page dropped here would
            // be read again from the file, were it read.
            let _ = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from)
            };
        }
    };
    let done = |i: usize| {
        for stretch in i.saturating_sub(1)..(i + 2).min(blocks) {
            release(stretch);
        }
    };
    for i in 0..READ_AHEAD_BLOCKS {
        ahead(i);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = states
            .iter_mut()
            .map(|state| {
                let next = &next;
                scope.spawn(move || -> Parsed {
                    let mut parsed = Parsed::default();
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if index >= blocks {
                            return parsed;
                        }
                        ahead(index + READ_AHEAD_BLOCKS);
                        let (start, end) = (line_start(index), line_start(index + 1));
                        if start == end {
                            parsed.lines.push((index, 0));
                            done(index);
                            continue;
                        }
                        let block = BlockRef {
                            bytes: &bytes[start..end],
                            index,
                            position: Some(base + start as u64),
                        };
                        parsed.take(path, block, state, sift, visit);
                        done(index);
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("message workers do not panic"))
            .collect()
    })
}

/// Whether the page of `map` that holds byte `offset` is in memory (mincore); true when the
/// kernel cannot tell, so that nothing is asked for in vain.
fn page_is_resident(map: &memmap2::Mmap, offset: usize) -> bool {
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let start = offset - offset % page.max(1);
    let mut held = [0u8; 1];
    // SAFETY: the map starts on a page boundary, so `start` is one too, and the byte at it is
    // inside the map; mincore writes one byte per page of the range: one here.
    let answer = unsafe {
        libc::mincore(
            map.as_ptr().add(start) as *mut libc::c_void,
            1,
            held.as_mut_ptr(),
        )
    };
    answer != 0 || held[0] & 1 == 1
}

/// Blocks read by this thread and handed to the workers (a compressed file, or one that
/// cannot be mapped).
fn fold_read<S, W, F>(
    path: &Path,
    base: Option<u64>,
    block_size: usize,
    states: &mut [S],
    sift: &W,
    visit: &F,
) -> Result<Vec<Parsed>>
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
                scope.spawn(move || -> Parsed {
                    let mut parsed = Parsed::default();
                    loop {
                        let next = receiver.lock().expect("no worker panics holding it").recv();
                        let Ok(block) = next else {
                            return parsed;
                        };
                        let view = BlockRef {
                            bytes: &block.bytes,
                            index: block.index,
                            position: block.position,
                        };
                        parsed.take(path, view, state, sift, visit);
                        // The reader may have finished: then the buffer is simply dropped.
                        let _ = recycle.send(block.bytes);
                    }
                })
            })
            .collect();
        drop(recycle);
        let read = read_blocks(path, base, block_size, &sender, &recycled);
        drop(sender);
        let parsed = handles
            .into_iter()
            .map(|h| h.join().expect("message workers do not panic"))
            .collect();
        read.map(|()| parsed)
    })
}

/// The workers' accounts joined: the number of messages, or the first line in file order
/// that failed, with its true line number.
fn settle<S, I, F>(path: &Path, parsed: Vec<Parsed>, init: &I, visit: &F) -> Result<u64>
where
    I: Fn() -> S,
    F: Fn(&mut S, LineRef<'_>, &MessageRef<'_>) -> Result<()>,
{
    let mut count = 0;
    let mut lines = Vec::new();
    let mut first_error: Option<BlockError> = None;
    for parsed in parsed {
        count += parsed.messages;
        lines.extend(parsed.lines);
        if let Some(e) = parsed.error {
            if first_error
                .as_ref()
                .is_none_or(|f| (e.block, e.line) < (f.block, f.line))
            {
                first_error = Some(e);
            }
        }
    }
    let Some(failed) = first_error else {
        return Ok(count);
    };
    // The failing line again, with its number counted now: every earlier block was parsed
    // (a worker skips only blocks after its own first error).
    let line = 1
        + failed.line
        + lines
            .iter()
            .filter(|(block, _)| *block < failed.block)
            .map(|(_, n)| n)
            .sum::<usize>();
    let at = LineRef {
        path,
        line,
        position: failed.position,
    };
    let again = parse_line(path, line, &failed.raw)
        .and_then(|message| message.map_or(Ok(()), |m| visit(&mut init(), at, &m)));
    Err(again.err().unwrap_or(failed.error))
}

/// Reads the file in blocks that end on a line break and sends them with their index and
/// position (`base`, where the file starts, plus the block's offset in it).
/// Buffers come back through `recycled` once parsed.
fn read_blocks(
    path: &Path,
    base: Option<u64>,
    block_size: usize,
    sender: &mpsc::SyncSender<Block>,
    recycled: &mpsc::Receiver<Vec<u8>>,
) -> Result<()> {
    let mut file = DataReader::open(path)?;
    let mut carry: Vec<u8> = Vec::new();
    let mut index = 0;
    let mut next_offset = 0u64;
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
        let len = bytes.len() as u64;
        let block = Block {
            bytes,
            index,
            position: base.map(|base| base + next_offset),
        };
        index += 1;
        next_offset += len;
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
/// away only counted): the messages and the lines, or the first line that failed. Lines are
/// numbered from the block's start here: `fold_file` numbers a failing line again.
fn parse_block<S, W, F>(
    path: &Path,
    block: BlockRef<'_>,
    state: &mut S,
    sift: &W,
    visit: &F,
) -> Result<(u64, usize), BlockError>
where
    W: Fn(&[u8]) -> bool,
    F: Fn(&mut S, LineRef<'_>, &MessageRef<'_>) -> Result<()>,
{
    let mut messages = 0;
    let mut lines = 0;
    for (i, (offset, raw)) in lines_of(block.bytes).enumerate() {
        lines = i + 1;
        if !sift(raw) {
            messages += u64::from(!is_blank(raw));
            continue;
        }
        let position = block.position.map(|p| p + offset as u64);
        let fail = |error: Error| BlockError {
            block: block.index,
            line: i,
            raw: raw.to_vec(),
            position,
            error,
        };
        let Some(message) = parse_line(path, i + 1, raw).map_err(fail)? else {
            continue;
        };
        messages += 1;
        let at = LineRef {
            path,
            line: i + 1,
            position,
        };
        visit(state, at, &message).map_err(fail)?;
    }
    // After a final line break `lines_of` gives an empty last line, which is not one.
    if block.bytes.ends_with(b"\n") {
        lines -= 1;
    }
    Ok((messages, lines))
}

/// A line as a message record; None for a blank line. Errors name the line.
fn parse_line<'t>(path: &Path, line: usize, raw: &'t [u8]) -> Result<Option<MessageRef<'t>>> {
    // Byte by byte: the same as `trim_end_matches('\r')`, without its char by char read.
    let kept = raw
        .iter()
        .rposition(|&b| b != b'\r')
        .map_or(0, |last| last + 1);
    // simdutf8 checks a line of ~700 bytes in half of std's instructions; it accepts exactly
    // what std accepts.
    let text = simdutf8::basic::from_utf8(&raw[..kept])
        .map_err(|_| Error::at_line(path, line, "line is not valid UTF-8"))?;
    if is_blank(raw) {
        return Ok(None);
    }
    // The usual line is read on the fast path; serde_json reads the rest and reports errors.
    let message = match super::message_line::parse(text) {
        Some(message) => message,
        None => serde_json::from_str::<MessageRef>(text)
            .map_err(|e| Error::at_line(path, line, format!("not a valid message record: {e}")))?,
    };
    if let Some(problem) = message.problem() {
        return Err(Error::at_line(path, line, problem));
    }
    Ok(Some(message))
}

/// Lines read again are fetched a span at a time: the next wanted lines join the span while
/// each starts within `REREAD_GAP` bytes of the one before (one read of the bytes between
/// costs less than another system call), and the span reaches `REREAD_TAIL` bytes past the
/// last line's start (most message lines are shorter; a longer one is read again whole).
const REREAD_GAP: u64 = 4 << 10;
const REREAD_TAIL: u64 = 2 << 10;
const REREAD_SPAN_MAX: u64 = 1 << 20;

/// One worker's share of `fold_messages_at`: the lines at `positions` (sorted) of `files`
/// (path and where it starts, in order).
fn reread_lines<S, F>(
    files: &[(PathBuf, u64)],
    positions: &[u64],
    state: &mut S,
    visit: &F,
) -> Result<()>
where
    F: Fn(&mut S, LineRef<'_>, &MessageRef<'_>) -> Result<()>,
{
    let mut open: Option<(usize, std::fs::File, u64)> = None;
    let mut span = Span::default();
    for (i, &position) in positions.iter().enumerate() {
        let Some(index) = files
            .partition_point(|(_, base)| *base <= position)
            .checked_sub(1)
        else {
            return Err(Error::Input(format!(
                "no message file holds position {position}"
            )));
        };
        let (path, base) = (&files[index].0, files[index].1);
        if open.as_ref().is_none_or(|(f, _, _)| *f != index) {
            let file = std::fs::File::open(path).map_err(|e| Error::read(path, e))?;
            let len = file.metadata().map_err(|e| Error::read(path, e))?.len();
            open = Some((index, file, len));
            span = Span::default();
        }
        let (_, file, len) = open.as_ref().expect("opened above");
        let offset = position - base;
        // Where the span should end: past the following wanted lines of this file that are
        // close enough.
        let mut last = offset;
        for &next in &positions[i + 1..] {
            let next = next.wrapping_sub(base);
            if next >= *len || next - last > REREAD_GAP || next - offset > REREAD_SPAN_MAX {
                break;
            }
            last = next;
        }
        let raw = span
            .line_at(file, *len, offset, last + REREAD_TAIL)
            .map_err(|e| Error::read(path, e))?;
        let mut handle = |line: usize| -> Result<()> {
            let Some(message) = parse_line(path, line, raw)? else {
                return Ok(());
            };
            let at = LineRef {
                path,
                line,
                position: Some(position),
            };
            visit(state, at, &message)
        };
        if let Err(first) = handle(0) {
            // The error path only: count the lines before this one for the message.
            let line = line_number_at(path, offset)?;
            handle(line)?;
            return Err(first);
        }
    }
    Ok(())
}

/// A span of a file's bytes in memory, `bytes` starting at offset `start`.
#[derive(Default)]
struct Span {
    bytes: Vec<u8>,
    start: u64,
}

impl Span {
    /// The line (without its line break) that starts at `offset` of a file of `len` bytes,
    /// reading from `offset` to about `end` when the span does not hold it whole.
    fn line_at(
        &mut self,
        file: &std::fs::File,
        len: u64,
        offset: u64,
        end: u64,
    ) -> std::io::Result<&[u8]> {
        use std::os::unix::fs::FileExt;
        let mut want = end.saturating_sub(offset).max(REREAD_TAIL);
        loop {
            let held = self.start + self.bytes.len() as u64;
            if offset >= self.start && offset < held {
                let from = (offset - self.start) as usize;
                match memchr::memchr(b'\n', &self.bytes[from..]) {
                    Some(n) => return Ok(&self.bytes[from..from + n]),
                    None if held >= len => return Ok(&self.bytes[from..]),
                    // Cut short: read a longer span from the line's start.
                    None => want = want.max(2 * (held - offset)),
                }
            } else if offset >= len {
                return Ok(&[]);
            }
            let size = want.min(len - offset) as usize;
            self.bytes.resize(size, 0);
            file.read_exact_at(&mut self.bytes, offset)?;
            self.start = offset;
        }
    }
}

/// The 1-based number of the line that starts at byte `offset` of a plain file.
fn line_number_at(path: &Path, offset: u64) -> Result<usize> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::read(path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = offset;
    let mut breaks = 0usize;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = read_full(&mut file, &mut buf[..want]).map_err(|e| Error::read(path, e))?;
        if n == 0 {
            break;
        }
        breaks += memchr::memchr_iter(b'\n', &buf[..n]).count();
        left -= n as u64;
    }
    Ok(breaks + 1)
}

/// Whether a line is blank as the full read sees it (nothing but white space once read as
/// UTF-8); a line that is not UTF-8 is not blank (the full read reports it). A message line
/// starts with `{`: it is told apart without reading the rest (the test is on every line).
fn is_blank(raw: &[u8]) -> bool {
    raw.first() != Some(&b'{') && std::str::from_utf8(raw).is_ok_and(|t| t.trim().is_empty())
}

/// The lines of a block with their offsets in it, as `split(|&b| b == b'\n')` gives them (an
/// empty last one after a final line break), found with memchr.
fn lines_of(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut start = 0;
    let breaks = memchr::memchr_iter(b'\n', bytes).map(Some).chain([None]);
    breaks.map(move |end| {
        let end = end.unwrap_or(bytes.len());
        let line = (start, &bytes[start..end]);
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

    fn run(text: &str, block: usize, refuse: &[usize]) -> Result<(Vec<String>, u64)> {
        run_sifted(text, block, |_| true, refuse)
    }

    /// Folds `text` in blocks of `block` bytes; the sids seen (sorted) and the count. The
    /// messages numbered in `refuse` fail, naming their line.
    fn run_sifted(
        text: &str,
        block: usize,
        sift: impl Fn(&[u8]) -> bool + Sync,
        refuse: &[usize],
    ) -> Result<(Vec<String>, u64)> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        let refused: Vec<String> = refuse.iter().map(|n| format!("SM{n:032}")).collect();
        // Mapped and read in blocks, the file must give the same messages, count and error.
        let results: Vec<Result<(Vec<String>, u64)>> = [true, false]
            .into_iter()
            .map(|map| {
                let mut states: Vec<Vec<String>> = vec![Vec::new(); 3];
                let count = fold_file(
                    file.path(),
                    Some(0),
                    map,
                    block,
                    &mut states,
                    &Vec::new,
                    &sift,
                    &|seen: &mut Vec<String>, at: LineRef<'_>, m: &MessageRef<'_>| {
                        if refused.iter().any(|r| *r == m.sid) {
                            return Err(Error::at_line(at.path, at.line, "refused"));
                        }
                        seen.push(m.sid.to_string());
                        Ok(())
                    },
                )?;
                let mut seen: Vec<_> = states.into_iter().flatten().collect();
                seen.sort();
                Ok((seen, count))
            })
            .collect();
        let [mapped, read] = <[_; 2]>::try_from(results).ok().unwrap();
        match (&mapped, &read) {
            (Ok(m), Ok(r)) => assert_eq!(m, r, "block {block}"),
            (Err(m), Err(r)) => assert_eq!(m.to_string(), r.to_string(), "block {block}"),
            _ => panic!("block {block}: mapped {mapped:?}, read {read:?}"),
        }
        mapped
    }

    /// The line an error names (`path:LINE: refused`).
    fn refused_line(result: Result<(Vec<String>, u64)>) -> usize {
        let text = result.unwrap_err().to_string();
        let number = text
            .strip_suffix(": refused")
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap();
        number.parse().unwrap()
    }

    #[test]
    fn files_of_nothing_but_blank_lines_or_nothing_hold_no_messages() {
        // An empty file cannot be mapped (it is read); blank lines are counted, not parsed.
        for text in ["", "\n", "\n\n \r\n"] {
            for block in [1, 16, 1 << 20] {
                let (seen, count) = run(text, block, &[]).unwrap();
                assert_eq!((seen.len(), count), (0, 0), "{text:?}, block {block}");
            }
        }
    }

    #[test]
    fn blocks_cut_on_line_breaks_and_errors_name_their_lines() {
        let mut text = String::new();
        for n in 1..=50 {
            text.push_str(&line(n));
            if n % 7 == 0 {
                text.push('\n'); // a blank line: skipped, but counted as a line
            }
        }
        text.push_str(line(51).trim_end()); // no final line break
        for block in [16, 100, 333, 1 << 20] {
            let (seen, count) = run(&text, block, &[]).unwrap();
            assert_eq!(count, 51, "block {block}");
            assert_eq!(seen.len(), 51, "block {block}");
            assert_eq!(seen[0], "SM00000000000000000000000000000001");
            // Message 8 is on line 9, after the blank line that follows message 7; the last
            // one (51, no line break) on line 58. Of several failures, the first in file
            // order is reported, whichever worker meets it.
            for (refuse, line) in [
                (&[1][..], 1),
                (&[8], 9),
                (&[51], 58),
                (&[40, 8, 51], 9),
                (&[50, 49], 55),
            ] {
                assert_eq!(
                    refused_line(run(&text, block, refuse)),
                    line,
                    "block {block}, refused {refuse:?}"
                );
            }
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
            let (seen, count) = run_sifted(&text, block, wanted, &[]).unwrap();
            assert_eq!(count, 30, "block {block}");
            let sids: Vec<&str> = seen.iter().map(|sid| &sid[30..]).collect();
            assert_eq!(sids, ["0005", "0015", "0025"], "block {block}");
            // Line numbers still count the lines turned away and the blank ones.
            assert_eq!(refused_line(run_sifted(&text, block, wanted, &[5])), 6);
            assert_eq!(refused_line(run_sifted(&text, block, wanted, &[25])), 31);
        }
    }

    /// Folds `files` (text, one file each) as the snapshot lays them end to end, noting every
    /// line's position and sid.
    fn positions_of(paths: &[PathBuf], block: usize) -> Vec<(u64, String)> {
        let both = [true, false].map(|map| {
            let mut seen = Vec::new();
            let mut base = 0;
            for path in paths {
                let mut states: Vec<Vec<(u64, String)>> = vec![Vec::new(); 2];
                fold_file(
                    path,
                    Some(base),
                    map,
                    block,
                    &mut states,
                    &Vec::new,
                    &|_: &[u8]| true,
                    &|s: &mut Vec<(u64, String)>, at: LineRef<'_>, m: &MessageRef<'_>| {
                        s.push((at.position.unwrap(), m.sid.to_string()));
                        Ok(())
                    },
                )
                .unwrap();
                seen.extend(states.into_iter().flatten());
                base += std::fs::metadata(path).unwrap().len();
            }
            seen.sort();
            seen
        });
        let [mapped, read] = both;
        assert_eq!(
            mapped, read,
            "block {block}: mapped and read give the same positions"
        );
        mapped
    }

    fn reread(paths: &[PathBuf], positions: &[u64]) -> Result<Vec<String>> {
        let mut base = 0;
        let files: Vec<(PathBuf, u64)> = paths
            .iter()
            .map(|p| {
                let start = base;
                base += std::fs::metadata(p).unwrap().len();
                (p.clone(), start)
            })
            .collect();
        let mut sids = Vec::new();
        reread_lines(
            &files,
            positions,
            &mut sids,
            &|s: &mut Vec<String>, at: LineRef<'_>, m: &MessageRef<'_>| {
                if m.body.as_deref() == Some("fail") {
                    return Err(Error::at_line(at.path, at.line, "refused"));
                }
                s.push(m.sid.to_string());
                Ok(())
            },
        )?;
        Ok(sids)
    }

    #[test]
    fn lines_read_again_at_their_positions_are_the_lines_the_fold_saw() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!(
            "{{\"sid\":\"SMlong\",\"direction\":\"inbound\",\"body\":\"{}\"}}\n",
            "x".repeat(9000) // longer than a span's tail: read again whole
        );
        let mut first = String::new();
        for n in 1..=300 {
            first.push_str(&line(n));
            if n % 50 == 0 {
                first.push_str(&long);
                first.push_str("\r\n"); // blank: no position is handed out for it
            }
        }
        let second = format!("{}{}", line(301), line(302).trim_end()); // no final break
        let paths = [dir.path().join("a.jsonl"), dir.path().join("b.jsonl")];
        std::fs::write(&paths[0], &first).unwrap();
        std::fs::write(&paths[1], &second).unwrap();
        for block in [97, 4096, 1 << 20] {
            let seen = positions_of(&paths, block);
            assert_eq!(seen.len(), 308, "block {block}");
            let positions: Vec<u64> = seen.iter().map(|(p, _)| *p).collect();
            let sids: Vec<String> = seen.iter().map(|(_, s)| s.clone()).collect();
            // Every line, in order: neighbours share a span, long lines are read whole.
            assert_eq!(reread(&paths, &positions).unwrap(), sids, "block {block}");
            // A few far apart, and the last line of each file.
            let some: Vec<u64> = [0, 7, 49, 50, 150, 303, 306, 307]
                .iter()
                .map(|&i| positions[i])
                .collect();
            let expected: Vec<String> = [0, 7, 49, 50, 150, 303, 306, 307]
                .iter()
                .map(|&i| sids[i].clone())
                .collect();
            assert_eq!(reread(&paths, &some).unwrap(), expected, "block {block}");
        }
    }

    #[test]
    fn a_line_read_again_that_fails_is_reported_with_its_line_number() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for n in 1..=20 {
            text.push_str(&line(n));
            if n == 3 {
                text.push('\n');
            }
        }
        text.push_str("{\"sid\":\"SMbad\",\"direction\":\"inbound\",\"body\":\"fail\"}\n");
        let paths = [dir.path().join("m.jsonl")];
        std::fs::write(&paths[0], &text).unwrap();
        let positions: Vec<u64> = positions_of(&paths, 1 << 20)
            .iter()
            .map(|(p, _)| *p)
            .collect();
        let err = reread(&paths, &positions).unwrap_err().to_string();
        assert!(err.contains("m.jsonl:22: refused"), "{err}");
    }

    #[test]
    fn lines_are_split_as_the_slice_split_does() {
        for text in ["", "\n", "a", "a\n", "a\nb", "a\n\nb\n", "\n\nx"] {
            let ours: Vec<&[u8]> = lines_of(text.as_bytes()).map(|(_, l)| l).collect();
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
            let err = run(&text, block, &[]).unwrap_err().to_string();
            assert!(
                err.contains(":12: not a valid message record"),
                "block {block}: {err}"
            );
        }
    }
}
