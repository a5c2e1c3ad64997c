//! The opt-out outputs: `optouts_lost.csv`, `optouts/<customer>.csv`, `optouts_possible.csv`,
//! `optout_violations.csv`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use crate::audit::optouts::{
    LostRows, OptOutAnalysis, LOST_HEADER, POSSIBLE_HEADER, VIOLATION_HEADER,
};
use crate::error::{Error, Result};
use crate::output::{
    chunk_buffer, csv_bytes, customer_file_stems, push_csv_field, push_csv_record,
    write_atomic_with, write_csv, write_full_chunk, PendingFile, FILES_SIDE_BY_SIDE, WRITE_CHUNK,
};

pub const LOST_FILE: &str = "optouts_lost.csv";
pub const PER_CUSTOMER_DIR: &str = "optouts";
pub const POSSIBLE_FILE: &str = "optouts_possible.csv";
pub const VIOLATIONS_FILE: &str = "optout_violations.csv";

/// One part of a row per index, in two pieces (the fields of a lost row interleave those of
/// its opt-out and of its target), rendered as CSV once for every row that shares it.
#[derive(Default)]
struct Pieces {
    bytes: Vec<u8>,
    /// Where each index's first piece ends and its second ends (the next one starts there).
    ends: Vec<[usize; 2]>,
}

impl Pieces {
    fn push(&mut self, first: &[&str], second: &[&str], last_ends_row: bool) {
        for field in first {
            push_csv_field(&mut self.bytes, field.as_bytes());
            self.bytes.push(b',');
        }
        let mid = self.bytes.len();
        for (i, field) in second.iter().enumerate() {
            push_csv_field(&mut self.bytes, field.as_bytes());
            let ends_row = last_ends_row && i + 1 == second.len();
            self.bytes.push(if ends_row { b'\n' } else { b',' });
        }
        self.ends.push([mid, self.bytes.len()]);
    }

    fn get(&self, i: u32) -> (&[u8], &[u8]) {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1][1] };
        let [mid, end] = self.ends[i];
        (&self.bytes[start..mid], &self.bytes[mid..end])
    }
}

/// `optouts_lost.csv` rendered without serde, byte for byte as `csv::Writer` writes it: the
/// fields of each opt-out and of each target are rendered once (a service's opt-out stands on
/// every number of the service, so rows run to millions while opt-outs and numbers stay few),
/// and a row is four copies into a big buffer.
struct LostCsv<'a> {
    rows: &'a LostRows,
    /// Per opt-out: `end_user,` then `scope,` ... `evidence_message_sid,`.
    texts: Pieces,
    /// Per target: `twilio_number,twilio_number_sid,` then `target_customer,target_account_sid\n`.
    targets: Pieces,
}

impl<'a> LostCsv<'a> {
    fn new(rows: &'a LostRows) -> LostCsv<'a> {
        let (targets, texts) = rows.counts();
        let mut csv = LostCsv {
            rows,
            texts: Pieces::default(),
            targets: Pieces::default(),
        };
        if targets == 0 || texts == 0 {
            return csv;
        }
        for text in 0..texts as u32 {
            let row = rows.compose(0, text);
            csv.texts.push(
                &[row.end_user],
                &[
                    row.scope,
                    row.messaging_service_sid,
                    row.opted_out_at,
                    row.keyword,
                    row.evidence,
                    row.evidence_message_sid,
                ],
                false,
            );
        }
        for target in 0..targets as u32 {
            let row = rows.compose(target, 0);
            csv.targets.push(
                &[row.twilio_number, row.twilio_number_sid],
                &[row.target_customer, row.target_account_sid],
                true,
            );
        }
        csv
    }

    fn push_row(&self, (target, text): (u32, u32), out: &mut Vec<u8>) {
        let (user, opt_out) = self.texts.get(text);
        let (number, customer) = self.targets.get(target);
        out.extend_from_slice(user);
        out.extend_from_slice(number);
        out.extend_from_slice(opt_out);
        out.extend_from_slice(customer);
    }

    /// Writes the header and the rows `which` (indices, in order) to `out`, in writes of
    /// about [`WRITE_CHUNK`].
    fn write(
        &self,
        out: &mut impl Write,
        which: impl Iterator<Item = usize>,
    ) -> std::io::Result<()> {
        let pairs = self.rows.pairs();
        let mut buf = chunk_buffer();
        push_csv_record(&mut buf, &LOST_HEADER);
        for i in which {
            self.push_row(pairs[i], &mut buf);
            write_full_chunk(out, &mut buf)?;
        }
        out.write_all(&buf)
    }
}

/// Writes `optouts_lost.csv`.
pub fn write_lost(path: &Path, rows: &LostRows) -> Result<()> {
    let csv = LostCsv::new(rows);
    write_atomic_with(path, |file| csv.write(file, 0..rows.len()))
}

/// Where [`write_lost_and_per_customer`] writes `optouts_lost.csv`: a file (temp -> sync ->
/// rename; a device in place), or a stream such as standard output.
pub enum LostCsvOut<'a> {
    File(&'a Path),
    Stream(&'a mut dyn Write),
}

/// Writes `optouts_lost.csv` to `lost` and, from the same rendered rows as they are
/// made, each customer's `optouts/<customer>.csv` into the new folder `dir` (named as
/// [`per_customer_names`] names them; a header-only file for a customer that loses nothing).
/// A customer's file is handed to one of [`FILES_SIDE_BY_SIDE`] threads to be synced and
/// renamed as soon as its last row is written, while the next customer's rows are written:
/// the disk takes the per-customer files while `optouts_lost.csv` is still being written,
/// instead of after it. Every file still goes temp -> sync -> rename. Callers stage `dir`
/// ([`crate::output::Staging`]) so that it replaces an earlier one whole: files of customers
/// no longer moving do not linger. Returns the file name per customer.
pub fn write_lost_and_per_customer(
    lost: LostCsvOut<'_>,
    dir: &Path,
    customers: &[String],
    rows: &LostRows,
) -> Result<BTreeMap<String, String>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    let names = per_customer_names(customers);
    let files: Vec<&String> = names.values().collect();
    let index: HashMap<&str, usize> = names
        .keys()
        .enumerate()
        .map(|(i, customer)| (customer.as_str(), i))
        .collect();
    let (targets, _) = rows.counts();
    let file_of_target: Vec<Option<usize>> = (0..targets as u32)
        .map(|t| index.get(rows.customer_of(t)).copied())
        .collect();
    // Rows still to write per file: a file is complete when its count reaches zero.
    let mut rows_left = vec![0usize; files.len()];
    for &(target, _) in rows.pairs() {
        if let Some(i) = file_of_target[target as usize] {
            rows_left[i] += 1;
        }
    }
    let header = csv_bytes(&LOST_HEADER, std::iter::empty::<()>())?;
    let open = |i: usize| -> Result<PendingFile> {
        let mut file = PendingFile::create(&dir.join(files[i]))?;
        file.write_all(&header)
            .map_err(|e| Error::write(file.path(), e))?;
        Ok(file)
    };
    let csv = LostCsv::new(rows);
    let (done, finished) = std::sync::mpsc::channel::<(usize, PendingFile)>();
    let finished = std::sync::Mutex::new(finished);
    let mut errors: Vec<(usize, Error)> = std::thread::scope(|scope| {
        let finishers: Vec<_> = (0..FILES_SIDE_BY_SIDE.min(files.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut errors = Vec::new();
                    // The lock is held while waiting only: one thread takes the next file.
                    loop {
                        let next = match finished.lock() {
                            Ok(queue) => queue.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        let Ok((i, file)) = next else { break };
                        if let Err(e) = file.finish() {
                            errors.push((i, e));
                        }
                    }
                    errors
                })
            })
            .collect();
        let mut errors = Vec::new();
        let written = (|| -> Result<()> {
            for (i, _) in rows_left.iter().enumerate().filter(|(_, &n)| n == 0) {
                // Gone: a finisher failed; its error is reported.
                let _ = done.send((i, open(i)?));
            }
            // A per-customer file's error, kept to be returned as it is (the fill of
            // `optouts_lost.csv` can only give an io::Error).
            let mut failure: Option<Error> = None;
            let mut fill = |mut lost: &mut dyn Write| {
                let mut split = Split {
                    open: &open,
                    done: &done,
                    rows_left: &mut rows_left,
                    current: None,
                    buf: chunk_buffer(),
                };
                let result = csv.write_split(&mut lost, &file_of_target, &mut split);
                result.map_err(|e| match e {
                    SplitError::Lost(e) => e,
                    SplitError::Customer(e) => {
                        failure = Some(e);
                        std::io::Error::other("a per-customer file failed")
                    }
                })
            };
            let lost = match lost {
                LostCsvOut::File(path) => write_atomic_with(path, |file| fill(file)),
                LostCsvOut::Stream(stream) => fill(stream)
                    .and_then(|()| stream.flush())
                    .map_err(|e| Error::failed("cannot write to standard output", e)),
            };
            match (failure, lost) {
                (Some(e), _) => Err(e),
                (None, lost) => lost,
            }
        })();
        if let Err(e) = written {
            errors.push((0, e));
        }
        drop(done);
        for finisher in finishers {
            errors.extend(
                finisher
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    .into_iter()
                    .map(|(i, e)| (i + 1, e)),
            );
        }
        errors
    });
    // The writing's own error first, then the first failing file in order.
    errors.sort_by_key(|(i, _)| *i);
    match errors.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(names),
    }
}

/// An error of [`LostCsv::write_split`]: writing `optouts_lost.csv`, or a customer's file.
enum SplitError {
    Lost(std::io::Error),
    Customer(Error),
}

/// The per-customer side of [`LostCsv::write_split`]: the file being written (its index and
/// file) and its buffered rows, the rows not yet written per file, and where a complete
/// file goes to be finished.
struct Split<'a, O> {
    open: &'a O,
    done: &'a std::sync::mpsc::Sender<(usize, PendingFile)>,
    rows_left: &'a mut Vec<usize>,
    current: Option<(usize, PendingFile)>,
    buf: Vec<u8>,
}

impl<O: Fn(usize) -> Result<PendingFile>> Split<'_, O> {
    /// Makes file `i` the one rows go to (opened when first met).
    fn switch_to(&mut self, i: usize, opened: &mut HashMap<usize, PendingFile>) -> Result<()> {
        if self.current.as_ref().is_some_and(|(c, _)| *c == i) {
            return Ok(());
        }
        self.put_aside(opened)?;
        let file = match opened.remove(&i) {
            Some(file) => file,
            None => (self.open)(i)?,
        };
        self.current = Some((i, file));
        Ok(())
    }

    /// Writes what is buffered to the current file, and hands the file on when complete.
    fn flush(&mut self) -> Result<()> {
        let Some((i, file)) = &mut self.current else {
            return Ok(());
        };
        file.write_all(&self.buf)
            .map_err(|e| Error::write(file.path(), e))?;
        self.buf.clear();
        if self.rows_left[*i] == 0 {
            if let Some(complete) = self.current.take() {
                // Gone: a finisher failed; its error is reported.
                let _ = self.done.send(complete);
            }
        }
        Ok(())
    }

    /// [`Split::flush`], and an incomplete file is kept in `opened` (a customer's rows may
    /// come in several runs).
    fn put_aside(&mut self, opened: &mut HashMap<usize, PendingFile>) -> Result<()> {
        self.flush()?;
        if let Some((i, file)) = self.current.take() {
            opened.insert(i, file);
        }
        Ok(())
    }
}

impl LostCsv<'_> {
    /// Writes the header and every row to `out`, and each row of a target with a file
    /// (`file_of_target`) to its customer's file too, through `split`.
    fn write_split<O: Fn(usize) -> Result<PendingFile>>(
        &self,
        out: &mut impl Write,
        file_of_target: &[Option<usize>],
        split: &mut Split<'_, O>,
    ) -> std::result::Result<(), SplitError> {
        let mut buf = chunk_buffer();
        push_csv_record(&mut buf, &LOST_HEADER);
        let mut opened: HashMap<usize, PendingFile> = HashMap::new();
        for &pair in self.rows.pairs() {
            self.push_row(pair, &mut buf);
            if let Some(i) = file_of_target[pair.0 as usize] {
                split
                    .switch_to(i, &mut opened)
                    .map_err(SplitError::Customer)?;
                self.push_row(pair, &mut split.buf);
                split.rows_left[i] -= 1;
                if split.buf.len() >= WRITE_CHUNK || split.rows_left[i] == 0 {
                    split.flush().map_err(SplitError::Customer)?;
                }
            }
            write_full_chunk(out, &mut buf).map_err(SplitError::Lost)?;
        }
        split.put_aside(&mut opened).map_err(SplitError::Customer)?;
        out.write_all(&buf).map_err(SplitError::Lost)
    }
}

/// Writes `optouts_lost.csv`'s content to `out` (standard output, say).
pub fn write_lost_to(out: &mut impl Write, rows: &LostRows) -> std::io::Result<()> {
    LostCsv::new(rows).write(out, 0..rows.len())?;
    out.flush()
}

pub fn write_possible(path: &Path, analysis: &OptOutAnalysis) -> Result<()> {
    write_csv(path, &POSSIBLE_HEADER, &analysis.possible)
}

pub fn write_violations(path: &Path, analysis: &OptOutAnalysis) -> Result<()> {
    write_csv(path, &VIOLATION_HEADER, &analysis.violations)
}

/// The file name of each customer's `optouts/<customer>.csv`, as
/// [`write_lost_and_per_customer`] names them: made safe, a clash gets `-2`, `-3`...
/// ([`customer_file_stems`]).
pub fn per_customer_names(customers: &[String]) -> BTreeMap<String, String> {
    customer_file_stems(customers)
        .into_iter()
        .map(|(customer, stem)| (customer, format!("{stem}.csv")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::optouts::LostOptOut;
    use crate::output::tests::entries;

    /// Rows with awkward text in every field, two customers interleaved with the unmapped.
    fn awkward_rows() -> LostRows {
        let texts = [
            "",
            " x",
            "a,b",
            "say \"no\"",
            "l\nf",
            "c\r\n",
            "Ärzte",
            "+15550001111",
        ];
        let customers = ["Falcon, Inc.", "", "Ärzte \"A\""];
        let mut rows = LostRows::default();
        for i in 0..40 {
            let t = |k: usize| texts[(i * 3 + k * 5) % texts.len()];
            rows.push(LostOptOut {
                end_user: t(0),
                twilio_number: t(1),
                twilio_number_sid: t(2),
                scope: if i % 2 == 0 { "number" } else { "service" },
                messaging_service_sid: t(3),
                opted_out_at: t(4),
                keyword: t(5),
                evidence: "inbound-keyword",
                evidence_message_sid: t(6),
                target_customer: customers[(i / 4) % customers.len()],
                target_account_sid: t(7),
            });
        }
        rows
    }

    #[test]
    fn a_per_customer_file_that_cannot_land_fails_the_write_and_leaves_no_temporary_file() {
        let rows = awkward_rows();
        let dir = tempfile::tempdir().unwrap();
        let customers: Vec<String> = ["Falcon, Inc.", "Ärzte \"A\"", "Nobody"]
            .map(String::from)
            .to_vec();
        let names = per_customer_names(&customers);
        let split = dir.path().join("split");
        // A folder where one customer's file goes: its rename fails.
        let blocked = &names["Ärzte \"A\""];
        std::fs::create_dir_all(split.join(blocked)).unwrap();
        let lost = dir.path().join(LOST_FILE);
        let err = write_lost_and_per_customer(LostCsvOut::File(&lost), &split, &customers, &rows)
            .unwrap_err();
        assert!(err.to_string().contains(blocked.as_str()), "{err}");
        // Only finished files and the folder in the way: no temporary file.
        for name in entries(&split) {
            assert!(names.values().any(|n| *n == name), "{name} left behind");
        }
        assert!(entries(dir.path())
            .iter()
            .all(|n| !n.starts_with(".subaudit")));
    }

    #[test]
    fn the_lost_file_and_the_per_customer_files_are_what_the_csv_crate_writes() {
        let rows = awkward_rows();
        let dir = tempfile::tempdir().unwrap();
        let lost = dir.path().join(LOST_FILE);
        write_lost(&lost, &rows).unwrap();
        let expected = csv_bytes(&LOST_HEADER, rows.iter()).unwrap();
        assert_eq!(
            String::from_utf8(std::fs::read(&lost).unwrap()).unwrap(),
            String::from_utf8(expected).unwrap()
        );
        let mut stdout = Vec::new();
        write_lost_to(&mut stdout, &rows).unwrap();
        assert_eq!(stdout, std::fs::read(&lost).unwrap());
        // Beside optouts_lost.csv, and beside the CSV sent to a stream (standard output),
        // from the same rows as they are made: the same bytes.
        let customers: Vec<String> = ["Falcon, Inc.", "Ärzte \"A\"", "Nobody"]
            .map(String::from)
            .to_vec();
        let rendered = dir.path().join("rendered");
        let mut streamed = Vec::new();
        let names = write_lost_and_per_customer(
            LostCsvOut::Stream(&mut streamed),
            &rendered,
            &customers,
            &rows,
        )
        .unwrap();
        assert_eq!(names, per_customer_names(&customers));
        assert_eq!(streamed, std::fs::read(&lost).unwrap());
        let split = dir.path().join("split");
        let split_lost = dir.path().join("split-lost.csv");
        assert_eq!(
            names,
            write_lost_and_per_customer(LostCsvOut::File(&split_lost), &split, &customers, &rows)
                .unwrap()
        );
        assert_eq!(
            std::fs::read(&split_lost).unwrap(),
            std::fs::read(&lost).unwrap()
        );
        assert_eq!(entries(&split), names.values().cloned().collect::<Vec<_>>());
        for (customer, name) in &names {
            let own = rows.iter().filter(|r| r.target_customer == customer);
            let expected = csv_bytes(&LOST_HEADER, own).unwrap();
            assert_eq!(std::fs::read(split.join(name)).unwrap(), expected, "{name}");
            assert_eq!(
                std::fs::read(rendered.join(name)).unwrap(),
                expected,
                "{name}"
            );
        }
    }
}
