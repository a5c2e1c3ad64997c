//! Renderers: the audit's results as CSV, JSON, shell and HTML files. The files reach the disk
//! through [`crate::output`].

pub mod html;
pub mod optouts;
pub mod plan;
pub mod proposal;
pub mod summary;
pub mod table;
pub mod usage;

use std::path::Path;

use crate::audit::Audit;
use crate::error::Result;
use crate::output::Staging;

/// The names `write` puts into a report folder (files, and the `optouts/` folder).
pub fn entry_names() -> Vec<&'static str> {
    vec![
        optouts::LOST_FILE,
        optouts::PER_CUSTOMER_DIR,
        optouts::POSSIBLE_FILE,
        optouts::VIOLATIONS_FILE,
        plan::JSON_FILE,
        plan::CSV_FILE,
        plan::SHELL_FILE,
        usage::SUMMARY_FILE,
        usage::PIVOT_FILE,
        usage::ATTRIBUTION_FILE,
        usage::STRADDLING_FILE,
        html::HTML_FILE,
    ]
}

/// The result of a scoped thread; its panic goes on in the caller.
fn join<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Writes every report of an audit into `dir` as one unit (see [`Staging`]): the opt-out
/// files, the plan, the usage files and `report.html`. A failure leaves the previous set as
/// it was. Returns the names written.
pub fn write(audit: &Audit, dir: &Path) -> Result<Vec<String>> {
    let mut staging = Staging::new(dir)?;
    let lost_file = staging.path(optouts::LOST_FILE);
    let per_customer = staging.path(optouts::PER_CUSTOMER_DIR);
    let (lost, customers) = (&*audit.lost, &audit.customers);
    // The big files are written side by side: writing them waits on the disk (each file is
    // synced before it is renamed) more than on the cores.
    let page = std::thread::scope(|scope| -> Result<_> {
        let lost_files = scope.spawn(|| {
            optouts::write_lost_and_per_customer(
                optouts::LostCsvOut::File(&lost_file),
                &per_customer,
                customers,
                lost,
            )
        });
        let suppression = scope.spawn(|| plan::write_suppression(&per_customer, &audit.plan));
        optouts::write_possible(&staging.path(optouts::POSSIBLE_FILE), &audit.analysis)?;
        optouts::write_violations(&staging.path(optouts::VIOLATIONS_FILE), &audit.analysis)?;
        plan::stage(&mut staging, "plan", &audit.plan)?;
        usage::stage(
            &mut staging,
            usage::SUMMARY_FILE,
            audit.snapshot,
            &audit.usage,
        )?;
        // The page is made while the big files are still being written: every name it lists
        // is known by now, the per-customer files' names from the customers alone (as
        // `write_lost_and_per_customer` names them).
        let names = staging.names().to_vec();
        let page = html::render(&html::Page {
            plan: &audit.plan,
            analysis: &audit.analysis,
            lost: &audit.lost,
            attribution: &audit.usage.attribution,
            period: audit.options.period,
            customer_files: &optouts::per_customer_names(customers),
            files: &names.iter().map(String::as_str).collect::<Vec<_>>(),
        });
        join(suppression)?;
        join(lost_files)?;
        Ok(page)
    })?;
    crate::output::write_atomic(&staging.path(html::HTML_FILE), page.as_bytes())?;
    let names = staging.names().to_vec();
    staging.commit()?;
    Ok(names)
}
