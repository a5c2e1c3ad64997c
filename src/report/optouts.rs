//! The opt-out outputs: `optouts_lost.csv`, `optouts/<customer>.csv`, `optouts_possible.csv`,
//! `optout_violations.csv`.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, Write};
use std::ops::Range;
use std::path::Path;

use crate::audit::optouts::{
    LostRows, OptOutAnalysis, LOST_HEADER, POSSIBLE_HEADER, VIOLATION_HEADER,
};
use crate::error::{Error, Result};
use crate::output::{
    csv_bytes, customer_file_stems, is_special_file, write_atomic_with, write_csv,
};

pub const LOST_FILE: &str = "optouts_lost.csv";
pub const PER_CUSTOMER_DIR: &str = "optouts";
pub const POSSIBLE_FILE: &str = "optouts_possible.csv";
pub const VIOLATIONS_FILE: &str = "optout_violations.csv";

/// Where each customer's rows lie in a written `optouts_lost.csv`: byte ranges, in row order.
/// The per-customer files copy them from there instead of rendering the rows again.
pub type CustomerRuns = HashMap<String, Vec<Range<u64>>>;

/// Counts the bytes written through it; its flush leaves the inner writer's buffer alone.
struct Counted<W: Write> {
    inner: W,
    at: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(bytes)?;
        self.at += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes `optouts_lost.csv` and tells where each customer's rows went.
pub fn write_lost(path: &Path, rows: &LostRows) -> Result<CustomerRuns> {
    let mut runs = CustomerRuns::new();
    write_atomic_with(path, |file| {
        let out = Counted {
            inner: std::io::BufWriter::with_capacity(1 << 16, file),
            at: 0,
        };
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(out);
        csv.write_record(LOST_HEADER)?;
        // Flushed after each row (into the buffered file): the count is the row's end.
        csv.flush()?;
        for row in rows.iter() {
            let at = csv.get_ref().at;
            csv.serialize(row)?;
            csv.flush()?;
            let end = csv.get_ref().at;
            match runs.get_mut(row.target_customer).and_then(|r| r.last_mut()) {
                Some(run) if run.end == at => run.end = end,
                _ => runs
                    .entry(row.target_customer.to_string())
                    .or_default()
                    .push(at..end),
            }
        }
        let mut out = csv.into_inner().map_err(|e| e.into_error())?;
        out.inner.flush()
    })?;
    Ok(runs)
}

pub fn write_possible(path: &Path, analysis: &OptOutAnalysis) -> Result<()> {
    write_csv(path, &POSSIBLE_HEADER, &analysis.possible)
}

pub fn write_violations(path: &Path, analysis: &OptOutAnalysis) -> Result<()> {
    write_csv(path, &VIOLATION_HEADER, &analysis.violations)
}

/// One file per customer in `customers` (a header-only file for a customer that loses
/// nothing, so that every moving customer has its re-import file), named from the customer
/// (made safe; a clash gets `-2`, `-3`...: [`customer_file_stems`]), into the new folder `dir`. Callers stage the
/// folder ([`crate::output::Staging`]), so that it replaces an earlier one whole: files of an
/// earlier run for customers no longer moving do not linger. With `written`, the
/// `optouts_lost.csv` just written from the same rows and where each customer's rows lie in
/// it, the files copy those bytes; else the rows are rendered. Returns the file name per
/// customer.
pub fn write_per_customer(
    dir: &Path,
    customers: &[String],
    rows: &LostRows,
    written: Option<(&Path, &CustomerRuns)>,
) -> Result<BTreeMap<String, String>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    let mut names = BTreeMap::new();
    if let Some((lost_file, runs)) = written.filter(|(path, _)| !is_special_file(path)) {
        let header = csv_bytes(&LOST_HEADER, std::iter::empty::<()>())?;
        for (customer, stem) in customer_file_stems(customers) {
            let name = format!("{stem}.csv");
            let own = runs.get(customer.as_str()).map_or(&[][..], Vec::as_slice);
            write_atomic_with(&dir.join(&name), |out| {
                out.write_all(&header)?;
                let mut from = std::fs::File::open(lost_file)?;
                for run in own {
                    from.seek(std::io::SeekFrom::Start(run.start))?;
                    let copied = std::io::copy(&mut (&mut from).take(run.end - run.start), out)?;
                    if copied != run.end - run.start {
                        return Err(std::io::Error::other(format!(
                            "{} ended before byte {}",
                            lost_file.display(),
                            run.end
                        )));
                    }
                }
                Ok(())
            })?;
            names.insert(customer, name);
        }
        return Ok(names);
    }
    // Row numbers per customer (4 bytes a row), the rows themselves read as they are written.
    let mut by_customer: HashMap<&str, Vec<u32>> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        by_customer
            .entry(row.target_customer)
            .or_default()
            .push(i as u32);
    }
    for (customer, stem) in customer_file_stems(customers) {
        let name = format!("{stem}.csv");
        let own = by_customer
            .get(customer.as_str())
            .map_or(&[][..], Vec::as_slice);
        write_csv(
            &dir.join(&name),
            &LOST_HEADER,
            own.iter().map(|&i| rows.get(i as usize)),
        )?;
        names.insert(customer, name);
    }
    Ok(names)
}
