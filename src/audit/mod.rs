//! The audit rules, all offline over a snapshot: keywords and opt-outs, the mapping and its
//! proposal, the migration plan, usage and its attribution to customers.

pub mod attribution;
pub mod evidence;
pub mod keywords;
pub mod mapping;
pub mod optouts;
pub mod plan;
pub mod proposal;
pub mod usage;
pub mod usage_report;

use std::collections::HashMap;
use std::sync::Arc;

use crate::audit::attribution::{AttributionScan, AttributionWorker};
use crate::audit::evidence::ImportedEvent;
use crate::audit::keywords::Keywords;
use crate::audit::mapping::ResolvedMapping;
use crate::audit::optouts::{
    lost_opt_outs, EvidenceScan, LostRows, OptOutAnalysis, ViolationSearch,
};
use crate::audit::plan::{Plan, Traffic, TrafficCounts, TrafficScan};
use crate::audit::usage::Period;
use crate::audit::usage_report::{UsageRecords, UsageReport};
use crate::error::Result;
use crate::snapshot::Snapshot;

/// What an audit looks at besides the snapshot and the mapping.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    pub keywords: Keywords,
    /// The user's own evidence events (`--evidence`), merged with the log's.
    pub imported: Vec<ImportedEvent>,
    /// List every opt-out in force in the parent in `lost`, moving or not.
    pub all: bool,
    /// The usage period and the pivot's categories.
    pub period: Period,
    pub categories: Vec<String>,
    /// Customers shown by name in the usage tables (the rest are folded into one row).
    pub top: usize,
}

/// The whole audit of a snapshot against a mapping: everything the reports show, computed
/// before the first file is written.
pub struct Audit<'a> {
    pub snapshot: &'a Snapshot,
    pub analysis: OptOutAnalysis,
    /// The lost opt-outs (every one in force with `all`).
    pub lost: Arc<LostRows>,
    /// The customers whose numbers move, each with its per-customer opt-out file.
    pub customers: Vec<String>,
    pub plan: Plan,
    pub usage: UsageReport,
    pub options: AuditOptions,
}

/// Computes the audit: one read of the messages, on every core, feeds the opt-out evidence,
/// the plan's recent traffic and the usage attribution.
pub fn run<'a>(
    snapshot: &'a Snapshot,
    mapping: &ResolvedMapping,
    options: &AuditOptions,
) -> Result<Audit<'a>> {
    let usage_records = UsageRecords::prepare(snapshot, options.period, &options.categories)?;
    let traffic_scan = TrafficScan::new(snapshot);
    let attribution_scan = AttributionScan::new(snapshot, mapping, options.period);
    let (parts, messages_read) = snapshot.fold_messages(
        || {
            (
                EvidenceScan::default(),
                TrafficCounts::default(),
                AttributionWorker::default(),
            )
        },
        |(evidence, traffic, attribution), at, message| {
            evidence.visit(at, message, &options.keywords)?;
            // The time is read once for both: attribution needs it of every message.
            let time = at.event_time(message)?;
            traffic_scan.visit(traffic, message, || Some(time));
            attribution_scan.visit_at(attribution, at, message, time)
        },
    )?;
    let (mut evidence, mut traffic, mut attribution) = (Vec::new(), Vec::new(), Vec::new());
    for (e, t, a) in parts {
        evidence.push(e);
        traffic.push(t);
        attribution.push(a);
    }
    let (mut analysis, search) =
        optouts::finish_opt_outs(evidence, messages_read, &options.imported);
    // Pass 2 (the violations, read again from the messages on every core) runs beside the
    // attribution, the lost rows and the plan, which need none of it.
    let (violations, rest) = std::thread::scope(|scope| {
        let violations = scope.spawn(|| search.run(snapshot));
        let rest = (|| -> Result<_> {
            let traffic = traffic_scan.merge(traffic);
            let attribution = attribution_scan.finish(
                snapshot,
                attribution,
                messages_read,
                &usage_records.parsed,
                &usage_records.summary.included,
            )?;
            let lost = Arc::new(lost_opt_outs(snapshot, &analysis, mapping, options.all));
            // With `all` the rows include numbers that stay: the plan reads the moving ones
            // only.
            let plan = plan::build(snapshot, mapping, lost.clone(), &traffic);
            Ok((attribution, lost, plan))
        })();
        let violations = violations
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (violations, rest)
    });
    analysis.violations = violations?;
    let (attribution, lost, plan) = rest?;
    let usage = usage_records.with(attribution);
    Ok(Audit {
        snapshot,
        customers: mapping.moving_customers(),
        analysis,
        lost,
        plan,
        usage,
        options: options.clone(),
    })
}

/// The migration plan alone (`subaudit plan`): the opt-out analysis for the rows the moves
/// lose (with the user's imported evidence), and the recent traffic.
pub fn plan_only(
    snapshot: &Snapshot,
    mapping: &ResolvedMapping,
    keywords: &Keywords,
    imported: &[ImportedEvent],
) -> Result<Plan> {
    // The plan needs no violations: pass 2 is not run.
    let (analysis, _, traffic) = opt_outs_and_traffic(snapshot, keywords, imported)?;
    let lost = lost_opt_outs(snapshot, &analysis, mapping, false);
    Ok(plan::build(snapshot, mapping, Arc::new(lost), &traffic))
}

/// The opt-out analysis (without its violations: the search for them is returned to run
/// when wanted) and the plan's recent traffic from one read of the messages (what `plan` and
/// `optouts --per-customer` need; `audit` folds in usage attribution as well).
pub fn opt_outs_and_traffic(
    snapshot: &Snapshot,
    keywords: &Keywords,
    imported: &[ImportedEvent],
) -> Result<(OptOutAnalysis, ViolationSearch, HashMap<String, Traffic>)> {
    let traffic_scan = TrafficScan::new(snapshot);
    let (parts, messages_read) = snapshot.fold_messages(
        || (EvidenceScan::default(), TrafficCounts::default()),
        |(evidence, traffic), at, message| {
            traffic_scan.visit_message(traffic, message);
            evidence.visit(at, message, keywords)
        },
    )?;
    let (evidence, traffic): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
    let (analysis, search) = optouts::finish_opt_outs(evidence, messages_read, imported);
    Ok((analysis, search, traffic_scan.merge(traffic)))
}
