//! The usage outputs: `usage_summary.csv`, `usage_pivot.csv`, `usage_attribution.csv`,
//! `usage_straddling.csv`, and the terminal table of the top customers by spend.

use std::path::Path;

use comfy_table::Table;
use rust_decimal::Decimal;

use super::table::new_table;
use crate::audit::attribution::{Attribution, BucketKind, Totals, ATTRIBUTION_HEADER};
use crate::audit::usage::{
    straddling_cells, Pivot, UsageSummary, STRADDLING_HEADER, SUMMARY_HEADER,
};
use crate::audit::usage_report::UsageReport;
use crate::error::Result;
use crate::model::customer_order;
use crate::output::{write_csv, Staging};
use crate::snapshot::Snapshot;

pub const SUMMARY_FILE: &str = "usage_summary.csv";
pub const PIVOT_FILE: &str = "usage_pivot.csv";
pub const ATTRIBUTION_FILE: &str = "usage_attribution.csv";
pub const STRADDLING_FILE: &str = "usage_straddling.csv";

pub fn write_summary(path: &Path, summary: &UsageSummary) -> Result<()> {
    let rows: Vec<[String; 10]> = summary.rows.iter().map(|r| r.cells()).collect();
    write_csv(path, &SUMMARY_HEADER, &rows)
}

pub fn write_straddling(path: &Path, snapshot: &Snapshot, summary: &UsageSummary) -> Result<()> {
    write_csv(
        path,
        &STRADDLING_HEADER,
        straddling_cells(snapshot, summary),
    )
}

pub fn write_pivot(path: &Path, pivot: &Pivot) -> Result<()> {
    let header = pivot.header();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    write_csv(path, &header, pivot.cells())
}

pub fn write_attribution(path: &Path, attribution: &Attribution) -> Result<()> {
    write_csv(path, &ATTRIBUTION_HEADER, attribution.csv_rows())
}

/// The top `top` customers by cost over the period, the rest folded into one row, the
/// unattributed traffic, and the total; then the reconciliation of the whole period.
pub fn top_customers_table(attribution: &Attribution, top: usize) -> Table {
    let unit = if attribution.price_unit.is_empty() {
        "cost".to_string()
    } else {
        format!("cost ({})", attribution.price_unit)
    };
    let header = [
        "customer",
        "target account",
        "messages",
        "segments",
        unit.as_str(),
        "unpriced messages",
    ];
    let mut table = new_table(&header, &header[2..]);
    let per_bucket = attribution.per_bucket();
    let mut customers: Vec<usize> = (0..attribution.buckets.len())
        .filter(|b| {
            attribution.buckets[*b].kind == BucketKind::Customer && per_bucket[*b].messages > 0
        })
        .collect();
    customers.sort_by(|a, b| {
        per_bucket[*b]
            .price_units
            .abs()
            .cmp(&per_bucket[*a].price_units.abs())
            .then_with(|| {
                customer_order(&attribution.buckets[*a].name, &attribution.buckets[*b].name)
            })
    });
    let row = |name: String, account: String, t: &Totals| {
        vec![
            name,
            account,
            t.messages.to_string(),
            t.segments.to_string(),
            attribution.cost(t).to_string(),
            t.unpriced.to_string(),
        ]
    };
    let mut total = Totals::default();
    let mut others = Totals::default();
    let mut other_count = 0;
    for (rank, b) in customers.iter().enumerate() {
        let t = &per_bucket[*b];
        total.add(t);
        if rank < top {
            let bucket = &attribution.buckets[*b];
            table.add_row(row(
                bucket.name.clone(),
                bucket
                    .account_sid
                    .as_deref()
                    .map_or_else(|| "(to create)".to_string(), super::table::short_sid),
                t,
            ));
        } else {
            others.add(t);
            other_count += 1;
        }
    }
    if other_count > 0 {
        table.add_row(row(
            format!(
                "({other_count} other customer{})",
                if other_count == 1 { "" } else { "s" }
            ),
            String::new(),
            &others,
        ));
    }
    for (b, bucket) in attribution.buckets.iter().enumerate() {
        if bucket.kind != BucketKind::Customer && per_bucket[b].messages > 0 {
            total.add(&per_bucket[b]);
            table.add_row(row(
                bucket.name.clone(),
                "(unattributed)".to_string(),
                &per_bucket[b],
            ));
        }
    }
    table.add_row(row(
        "total".to_string(),
        crate::plural(customers.len(), "customer", "customers"),
        &total,
    ));
    super::table::keep_words_whole(&mut table);
    table
}

/// One line reconciling the whole period: the parent's sms+mms usage, the priced messages,
/// the difference; or why it cannot be said.
pub fn reconciliation_line(attribution: &Attribution) -> String {
    let mut usage = Decimal::ZERO;
    let mut known = true;
    let mut messages = Decimal::ZERO;
    let mut unpriced = 0;
    for rec in &attribution.reconciliation {
        match rec.usage.value() {
            Some(v) => usage += v,
            None => known = false,
        }
        messages += rec.attributed + rec.unattributed;
        unpriced += rec.unpriced_messages;
    }
    let unit = &attribution.price_unit;
    if known && !attribution.reconciliation.is_empty() {
        format!(
            "Parent sms+mms usage {usage} {unit}; priced messages {messages} {unit}; difference {} {unit} ({} without a price)",
            usage - messages,
            crate::plural(unpriced, "message", "messages")
        )
    } else {
        format!(
            "Priced messages {messages} {unit} ({unpriced} without a price); the parent's sms+mms usage is unknown for some months (see usage_attribution.csv)"
        )
    }
}

/// Writes the usage files into a staged set: the summary as `summary_name`, the pivot, the
/// attribution and the straddling records under their own names.
pub fn stage(
    staging: &mut Staging,
    summary_name: &str,
    snapshot: &Snapshot,
    usage: &UsageReport,
) -> Result<()> {
    write_summary(&staging.path(summary_name), &usage.summary)?;
    stage_beside_summary(staging, snapshot, usage)
}

/// The usage files other than the summary, into a staged set.
pub fn stage_beside_summary(
    staging: &mut Staging,
    snapshot: &Snapshot,
    usage: &UsageReport,
) -> Result<()> {
    write_pivot(&staging.path(PIVOT_FILE), &usage.pivot)?;
    write_attribution(&staging.path(ATTRIBUTION_FILE), &usage.attribution)?;
    write_straddling(&staging.path(STRADDLING_FILE), snapshot, &usage.summary)
}
