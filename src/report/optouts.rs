//! The opt-out outputs: `optouts_lost.csv`, `optouts/<customer>.csv`, `optouts_possible.csv`,
//! `optout_violations.csv`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::audit::optouts::{
    LostRows, OptOutAnalysis, LOST_HEADER, POSSIBLE_HEADER, VIOLATION_HEADER,
};
use crate::error::{Error, Result};
use crate::output::{customer_file_stems, write_csv};

pub const LOST_FILE: &str = "optouts_lost.csv";
pub const PER_CUSTOMER_DIR: &str = "optouts";
pub const POSSIBLE_FILE: &str = "optouts_possible.csv";
pub const VIOLATIONS_FILE: &str = "optout_violations.csv";

pub fn write_lost(path: &Path, rows: &LostRows) -> Result<()> {
    write_csv(path, &LOST_HEADER, rows.iter())
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
/// earlier run for customers no longer moving do not linger. Returns the file name per
/// customer.
pub fn write_per_customer(
    dir: &Path,
    customers: &[String],
    rows: &LostRows,
) -> Result<BTreeMap<String, String>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    let mut names = BTreeMap::new();
    // Row numbers per customer (4 bytes a row), the rows themselves read as they are written.
    let mut by_customer: std::collections::HashMap<&str, Vec<u32>> =
        std::collections::HashMap::new();
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
