//! The usage report as one piece: the Usage API records summed per account, the finance
//! pivot, and the parent's messages attributed to the target customers.

use crate::audit::attribution::{attribute, Attribution};
use crate::audit::mapping::ResolvedMapping;
use crate::audit::usage::{
    parse_records, pivot, summarize, ParsedRecord, Period, Pivot, UsageSummary,
};
use crate::error::Result;
use crate::snapshot::Snapshot;

/// Everything the usage outputs hold.
pub struct UsageReport {
    pub summary: UsageSummary,
    pub pivot: Pivot,
    pub attribution: Attribution,
}

/// Computes the summary, the pivot and the attribution (one read of the messages).
pub fn usage_report(
    snapshot: &Snapshot,
    mapping: &ResolvedMapping,
    period: Period,
    categories: &[String],
) -> Result<UsageReport> {
    let records = UsageRecords::prepare(snapshot, period, categories)?;
    let attribution = attribute(
        snapshot,
        mapping,
        period,
        &records.parsed,
        &records.summary.included,
    )?;
    Ok(records.with(attribution))
}

/// The usage-record half of the report (no message read): the summary and the pivot, and
/// the parsed records the attribution reconciles against.
pub struct UsageRecords<'a> {
    pub parsed: Vec<ParsedRecord<'a>>,
    pub summary: UsageSummary,
    pub pivot: Pivot,
}

impl<'a> UsageRecords<'a> {
    pub fn prepare(snapshot: &'a Snapshot, period: Period, categories: &[String]) -> Result<Self> {
        let parsed = parse_records(snapshot)?;
        let summary = summarize(snapshot, &parsed, period)?;
        let pivot = pivot(snapshot, &summary, categories)?;
        Ok(UsageRecords {
            parsed,
            summary,
            pivot,
        })
    }

    /// The whole report, with the attribution of the messages.
    pub fn with(self, attribution: Attribution) -> UsageReport {
        UsageReport {
            summary: self.summary,
            pivot: self.pivot,
            attribution,
        }
    }
}
