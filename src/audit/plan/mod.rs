//! The migration plan: every number's target, every known way its transfer breaks (docs: "What
//! can break when a number moves") as a graded finding, and the ordered API requests that
//! perform the moves.
//!
//! Building the plan is pure over its inputs (snapshot, resolved mapping, the opt-out engine's
//! lost rows, recent traffic), so the rules are unit-tested without files. The one streaming
//! pass it needs, [`TrafficScan`], is separate.
//!
//! This module holds the plan's model and [`build`]; `request` the request templates,
//! `traffic` the recent-traffic scan, `findings` the graded risks, `steps` one function per
//! step kind.

mod advice;
mod findings;
mod request;
mod steps;
mod traffic;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use super::mapping::{NumberTarget, ResolvedMapping, Target};
use super::optouts::{services_by_number, LostOptOut, LostRows};
use crate::snapshot::Snapshot;
use crate::time::rfc3339;

use findings::plan_number;
pub use request::{
    Auth, Capture, FormField, Part, Placeholder, PlaceholderSource, Request, Template,
};
use steps::build_steps;
pub use steps::{reseed_seconds, service_settings, RESEED_DIR};
pub use traffic::{recent_since, Traffic, TrafficCounts, TrafficScan, RECENT_DAYS};

/// The folder of the per-customer opt-out files, beside plan.json in a report folder.
pub const SUPPRESSION_DIR: &str = "optouts";

/// Items per Consents Bulk request: Twilio's documented maximum.
pub const CONSENTS_PER_REQUEST: usize = 25;

pub const API_BASE: &str = "https://api.twilio.com/2010-04-01";
pub const MESSAGING_BASE: &str = "https://messaging.twilio.com/v1";
pub const CONSENTS_BULK_URL: &str = "https://accounts.twilio.com/v1/Consents/Bulk";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Blocker,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Blocker => "blocker",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stable finding codes (documented in docs/finding-codes.md; scripts match on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    Unmapped,
    InMessagingService,
    A2pCampaign,
    TollFreeVerification,
    RegulatoryBundle,
    AddressRequired,
    EmergencyAddress,
    SipTrunk,
    TwimlApp,
    HostedNumber,
    TargetSuspended,
    TargetClosed,
    TargetNotChild,
    RecentTraffic,
    OptOutsLost,
    MappingConflict,
    WebhookSignature,
    ParentHostedHandler,
    WhatsappSender,
    ServiceSettingsDiffer,
    IdentityRequired,
    HistoryStays,
    ServiceSharedSenders,
}

impl Code {
    pub const ALL: [Code; 23] = [
        Code::Unmapped,
        Code::InMessagingService,
        Code::A2pCampaign,
        Code::TollFreeVerification,
        Code::RegulatoryBundle,
        Code::AddressRequired,
        Code::EmergencyAddress,
        Code::SipTrunk,
        Code::TwimlApp,
        Code::HostedNumber,
        Code::TargetSuspended,
        Code::TargetClosed,
        Code::TargetNotChild,
        Code::RecentTraffic,
        Code::OptOutsLost,
        Code::MappingConflict,
        Code::WebhookSignature,
        Code::ParentHostedHandler,
        Code::WhatsappSender,
        Code::ServiceSettingsDiffer,
        Code::IdentityRequired,
        Code::HistoryStays,
        Code::ServiceSharedSenders,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unmapped => "unmapped",
            Code::InMessagingService => "in-messaging-service",
            Code::A2pCampaign => "a2p-campaign",
            Code::TollFreeVerification => "toll-free-verification",
            Code::RegulatoryBundle => "regulatory-bundle",
            Code::AddressRequired => "address-required",
            Code::EmergencyAddress => "emergency-address",
            Code::SipTrunk => "sip-trunk",
            Code::TwimlApp => "twiml-app",
            Code::HostedNumber => "hosted-number",
            Code::TargetSuspended => "target-suspended",
            Code::TargetClosed => "target-closed",
            Code::TargetNotChild => "target-not-child",
            Code::RecentTraffic => "recent-traffic",
            Code::OptOutsLost => "opt-outs-lost",
            Code::MappingConflict => "mapping-conflict",
            Code::WebhookSignature => "webhook-signature",
            Code::ParentHostedHandler => "parent-hosted-handler",
            Code::WhatsappSender => "whatsapp-sender",
            Code::ServiceSettingsDiffer => "service-settings-differ",
            Code::IdentityRequired => "identity-required",
            Code::HistoryStays => "history-stays",
            Code::ServiceSharedSenders => "service-shared-senders",
        }
    }

    /// Blockers stop the number's move; warnings need work before or right after it, or
    /// something breaks (compliance, voice, opt-outs); info is for the record. One exception
    /// is graded per number: `a2p-campaign` is a blocker for a US long code that would leave
    /// its campaign without a named service of the subaccount (docs/finding-codes.md).
    pub fn severity(self) -> Severity {
        match self {
            Code::HostedNumber
            | Code::TargetSuspended
            | Code::TargetClosed
            | Code::TargetNotChild
            | Code::MappingConflict
            | Code::WhatsappSender => Severity::Blocker,
            Code::InMessagingService
            | Code::A2pCampaign
            | Code::TollFreeVerification
            | Code::RegulatoryBundle
            | Code::AddressRequired
            | Code::EmergencyAddress
            | Code::SipTrunk
            | Code::TwimlApp
            | Code::OptOutsLost
            | Code::WebhookSignature
            | Code::ParentHostedHandler
            | Code::ServiceSettingsDiffer
            | Code::IdentityRequired => Severity::Warning,
            // Nothing breaks: an unmapped number stays where it is; live traffic only asks for
            // a quiet window.
            Code::Unmapped
            | Code::RecentTraffic
            | Code::HistoryStays
            | Code::ServiceSharedSenders => Severity::Info,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl Finding {
    fn new(code: Code, message: String) -> Finding {
        Finding {
            code,
            severity: code.severity(),
            message,
        }
    }

    fn blocker(code: Code, message: String) -> Finding {
        Finding {
            code,
            severity: Severity::Blocker,
            message,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Transfer,
    Stay,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Transfer => "transfer",
            Action::Stay => "stay",
        }
    }
}

/// One number of the parent and what happens to it.
#[derive(Debug, Clone, Serialize)]
pub struct NumberPlan {
    pub number_sid: String,
    pub phone_number: String,
    pub friendly_name: Option<String>,
    pub action: Action,
    /// Null when the number is unmapped or mapped to different customers.
    pub target_customer: Option<String>,
    /// Null when the target subaccount does not exist yet (the plan creates it).
    pub target_account_sid: Option<String>,
    /// The subaccount's own Messaging Service named in the mapping, which the number joins.
    pub target_messaging_service_sid: Option<String>,
    /// `active`, `suspended`, `closed` (the existing subaccount's status) or `to-create`.
    pub target_account_status: Option<String>,
    /// A transfer that cannot proceed until its blockers are resolved: it gets no steps.
    pub blocked: bool,
    /// The mapping lines naming this number.
    pub mapping_lines: Vec<usize>,
    /// The parent Messaging Services it sits in today.
    pub messaging_service_sids: Vec<String>,
    pub opt_outs_lost: usize,
    pub recent_messages: u64,
    pub worst_severity: Option<Severity>,
    pub findings: Vec<Finding>,
}

impl NumberPlan {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    pub fn codes(&self) -> Vec<&'static str> {
        self.findings.iter().map(|f| f.code.as_str()).collect()
    }

    /// Moves in this plan: a transfer without blockers.
    pub fn moves(&self) -> bool {
        self.action == Action::Transfer && !self.blocked
    }
}

/// A step's kind, as plan.json names it: written by `plan`, read by `apply` and `verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    CreateSubaccount,
    RemoveFromService,
    TransferNumber,
    CreateMessagingService,
    AddToService,
    ReseedOptOuts,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::CreateSubaccount => "create-subaccount",
            StepKind::RemoveFromService => "remove-from-service",
            StepKind::TransferNumber => "transfer-number",
            StepKind::CreateMessagingService => "create-messaging-service",
            StepKind::AddToService => "add-to-service",
            StepKind::ReseedOptOuts => "reseed-opt-outs",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub order: usize,
    pub kind: StepKind,
    pub customer: String,
    /// The shell name of the customer's part of plan.sh (also the prefix of its variables).
    pub customer_key: String,
    pub number_sid: Option<String>,
    pub phone_number: Option<String>,
    pub description: String,
    pub request: Request,
    /// Placeholders the request uses.
    pub placeholders: Vec<String>,
    pub captures: Vec<Capture>,
    /// create-messaging-service: the parent service whose settings the new one copies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_service_sid: Option<String>,
    /// add-to-service: whether the service is one the plan creates or one the mapping names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_sid_source: Option<ServiceSidSource>,
    /// reseed-opt-outs: what the step sends, read from a file beside the plan.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub reseed: Option<ReseedPart>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceSidSource {
    /// The plan's create-messaging-service step makes it; the url holds its capture variable.
    Created,
    /// The mapping's `messaging_service_sid`: the url holds that literal MG sid.
    Named,
}

/// The part of a re-seed file one reseed-opt-outs step sends: Consents items, one JSON object
/// a line, for one sender; the request's `Items` value `<batch>` stands for up to 25 of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReseedPart {
    /// Relative to the plan's folder: `reseed/<customer>.jsonl`.
    pub reseed_file: String,
    pub items: usize,
    /// ceil(items / 25): one Consents Bulk request each.
    pub batches: usize,
    /// The sender every item of the step names (`sender_id`): a number, an MG sid, or the
    /// placeholder of the service the plan creates.
    pub sender_id: Template,
    /// 1-based lines of the file, set when the step covers only part of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_line: Option<usize>,
}

/// One re-seed file: written beside plan.json by the report, not part of plan.json itself.
/// Its lines are made as they are written ([`Plan::write_reseed_file`]): each is a lost row
/// and the sender it is re-seeded for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReseedFile {
    /// Relative to the plan's folder.
    pub path: String,
    /// The senders its items name.
    senders: Vec<Template>,
    /// One Consents item per line: (sender, lost row).
    items: Vec<(u32, u32)>,
}

impl ReseedFile {
    /// Its lines (Consents items).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// One target (customer, subaccount) and its totals, for the summary table and plan.sh.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerPlan {
    pub customer: String,
    /// Prefix of the customer's shell variables and name of its function in plan.sh.
    pub key: String,
    pub account_sid: Option<String>,
    /// `active`, `suspended`, `closed` or `to-create`.
    pub account_status: String,
    pub numbers_mapped: usize,
    pub numbers_moving: usize,
    pub numbers_blocked: usize,
    pub blockers: usize,
    pub warnings: usize,
    pub opt_outs_lost: usize,
    /// Placeholders the user must export before the customer's transfers (bundles, addresses).
    pub required: Vec<String>,
    /// The customer's re-seed file (relative to the plan's folder), when it has opt-outs to
    /// re-seed.
    pub reseed_file: Option<String>,
    /// Consents items in it, and the requests they take.
    pub reseed_items: usize,
    pub reseed_batches: usize,
    /// At Consents Bulk's 100 requests a minute.
    pub reseed_estimate_seconds: u64,
    /// Lost opt-outs of end users that are not E.164 (WhatsApp, short codes, alphanumeric
    /// ids), one per (sender, end user): Consents Bulk cannot take them; the suppression file
    /// lists them with the reason.
    pub reseed_skipped: usize,
    /// The customer's suppression list (relative to the report folder `audit` writes, or to
    /// the `optouts --per-customer` folder's parent): one row per (sender, end user) the
    /// re-seed sends, and per opt-out it cannot send, with the reason.
    pub suppression_file: String,
}

/// One row of `optouts/<customer>.suppression.csv`: an opt-out as the Consents re-seed sends
/// it (one per target sender and end user, the earliest opt-out kept), or one the plan does
/// not re-seed, with the reason. Made as it is written, from a [`Suppression`] entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuppressionRow<'a> {
    /// The parent's sender the opt-out belongs to: its Messaging Service (service scope) or
    /// the Twilio number (number scope).
    pub sender: &'a str,
    pub end_user: &'a str,
    pub opted_out_at: &'a str,
    /// `service` or `number`.
    pub scope: &'static str,
    /// The moving number whose lost row this is.
    pub twilio_number: &'a str,
    /// The item's `sender_id` in the subaccount: the number, the named service's MG sid, or
    /// the placeholder of the service the plan creates. Empty when the number does not move.
    pub target_sender_id: &'a str,
    /// The target sender as a person knows it: the new service's FriendlyName, the named
    /// service, or the number.
    pub target_sender_name: &'a str,
    /// The Consents item's `correlation_id` (also for rows not sent, to trace them).
    pub correlation_id: String,
    /// `yes` when plan.sh re-seeds it, else `no`.
    pub reseeded: &'static str,
    /// Why not, starting with a stable code (`not-e164`, `number-blocked`); empty when re-seeded.
    pub reason: std::borrow::Cow<'a, str>,
}

impl SuppressionRow<'_> {
    /// Appends the row as a CSV record, byte for byte as `csv::Writer` serializes it.
    pub fn push_csv(&self, out: &mut Vec<u8>) {
        crate::output::push_csv_record(
            out,
            &[
                self.sender,
                self.end_user,
                self.opted_out_at,
                self.scope,
                self.twilio_number,
                self.target_sender_id,
                self.target_sender_name,
                &self.correlation_id,
                self.reseeded,
                &self.reason,
            ],
        );
    }
}

/// Whether a suppression entry is re-seeded, and why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reseeded {
    Yes,
    NotE164,
    /// The number is blocked: the reason's index in [`Suppression::reasons`].
    Blocked(u32),
}

/// No target sender (an opt-out of a blocked number).
const NO_SENDER: u32 = u32::MAX;

/// One suppression row, compact: a lost row, its customer (index in the plan's customers),
/// its target sender (index in [`Suppression::senders`]) and whether it is re-seeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SuppressionEntry {
    row: u32,
    customer: u32,
    sender: u32,
    what: Reseeded,
}

/// The rows of the customers' suppression files, per customer in plan order, as entries
/// that the rows are made from when written.
#[derive(Debug, Clone, Default)]
pub struct Suppression {
    entries: Vec<SuppressionEntry>,
    /// Per customer (index in the plan's customers), its entries.
    by_customer: Vec<std::ops::Range<usize>>,
    /// Target senders: (sender_id, name).
    senders: Vec<(String, String)>,
    reasons: Vec<String>,
}

impl Suppression {
    fn reason(&mut self, text: String) -> u32 {
        self.reasons.push(text);
        self.reasons.len() as u32 - 1
    }

    fn sender(&mut self, id: String, name: String) -> usize {
        self.senders.push((id, name));
        self.senders.len() - 1
    }

    fn sender_id(&self, sender: usize) -> &str {
        &self.senders[sender].0
    }

    fn push_customer(&mut self, customer: u32, rows: Vec<SuppressionEntry>) {
        let customer = customer as usize;
        if self.by_customer.len() <= customer {
            self.by_customer.resize(customer + 1, 0..0);
        }
        let start = self.entries.len();
        self.entries.extend(rows);
        self.by_customer[customer] = start..self.entries.len();
    }
}

pub const SUPPRESSION_HEADER: [&str; 10] = [
    "sender",
    "end_user",
    "opted_out_at",
    "scope",
    "twilio_number",
    "target_sender_id",
    "target_sender_name",
    "correlation_id",
    "reseeded",
    "reason",
];

#[derive(Debug, Clone, Serialize)]
pub struct PlanSummary {
    pub numbers: usize,
    pub transfer: usize,
    pub moving: usize,
    pub blocked: usize,
    pub stay: usize,
    pub blockers: usize,
    pub warnings: usize,
    pub infos: usize,
    pub opt_outs_lost: usize,
    pub steps: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanWindow {
    pub since: String,
    pub until: String,
    /// Start of the "recent traffic" period (`until` minus 30 days).
    pub recent_since: String,
}

/// The whole plan, as `plan.json` holds it.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub parent_account_sid: String,
    pub parent_friendly_name: String,
    pub window: PlanWindow,
    pub summary: PlanSummary,
    pub customers: Vec<CustomerPlan>,
    pub numbers: Vec<NumberPlan>,
    pub placeholders: Vec<Placeholder>,
    pub steps: Vec<Step>,
    /// The re-seed files the steps reference.
    #[serde(skip)]
    pub reseed_files: Vec<ReseedFile>,
    /// The rows of the customers' suppression files.
    #[serde(skip)]
    pub suppression: Suppression,
    /// The lost rows the re-seed and suppression files are made from.
    #[serde(skip)]
    pub lost: Arc<LostRows>,
}

impl Plan {
    /// The worst severity any finding has.
    pub fn worst(&self) -> Option<Severity> {
        self.numbers.iter().filter_map(|n| n.worst_severity).max()
    }

    /// The rows of the suppression file of the customers named `customer` (two subaccounts
    /// under one name share the file), in plan order.
    pub fn suppression_rows<'a>(
        &'a self,
        customer: &'a str,
    ) -> impl Iterator<Item = SuppressionRow<'a>> + 'a {
        let suppression = &self.suppression;
        self.customers
            .iter()
            .zip(&suppression.by_customer)
            .filter(move |(c, _)| c.customer == customer)
            .flat_map(move |(_, range)| suppression.entries[range.clone()].iter())
            .map(move |entry| {
                let row = self.lost.get(entry.row as usize);
                let (target_id, target_name) = match suppression.senders.get(entry.sender as usize)
                {
                    Some((id, name)) => (id.as_str(), name.as_str()),
                    None => ("", ""),
                };
                SuppressionRow {
                    sender: steps::parent_sender(&row),
                    end_user: row.end_user,
                    opted_out_at: row.opted_out_at,
                    scope: row.scope,
                    twilio_number: row.twilio_number,
                    target_sender_id: target_id,
                    target_sender_name: target_name,
                    correlation_id: steps::correlation_id(&row),
                    reseeded: if entry.what == Reseeded::Yes {
                        "yes"
                    } else {
                        "no"
                    },
                    reason: match entry.what {
                        Reseeded::Yes => "".into(),
                        Reseeded::NotE164 => steps::not_e164_reason(row.end_user).into(),
                        Reseeded::Blocked(i) => suppression.reasons[i as usize].as_str().into(),
                    },
                }
            })
    }

    /// Writes the lines of a re-seed file (one Consents item JSON object each) to `out`.
    pub fn write_reseed_file(
        &self,
        file: &ReseedFile,
        out: &mut impl std::io::Write,
    ) -> std::io::Result<()> {
        let senders: Vec<String> = file.senders.iter().map(Template::to_string).collect();
        let mut lines = crate::output::chunk_buffer();
        for &(sender, row) in &file.items {
            let row = self.lost.get(row as usize);
            steps::write_consent_item(&mut lines, &row, &senders[sender as usize]);
            lines.push(b'\n');
            crate::output::write_full_chunk(out, &mut lines)?;
        }
        out.write_all(&lines)
    }

    /// The lines of a re-seed file, each without its line end.
    pub fn reseed_lines(&self, file: &ReseedFile) -> Vec<String> {
        let mut bytes = Vec::new();
        self.write_reseed_file(file, &mut bytes)
            .expect("writing to memory");
        String::from_utf8(bytes)
            .expect("JSON is UTF-8")
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Builds the plan. `lost` are the opt-out engine's rows ([`super::optouts::lost_opt_outs`],
/// with or without `all`: the plan reads the moving numbers' rows only).
pub fn build(
    snapshot: &Snapshot,
    mapping: &ResolvedMapping,
    lost: Arc<LostRows>,
    traffic: &HashMap<String, Traffic>,
) -> Plan {
    let memberships = services_by_number(snapshot);
    // Row numbers per moving number (4 bytes a row).
    let mut lost_by_number: HashMap<&str, Vec<u32>> = HashMap::new();
    for (i, row) in lost.moving() {
        lost_by_number
            .entry(row.twilio_number_sid)
            .or_default()
            .push(i as u32);
    }
    let keys = customer_keys(mapping);
    let ctx = Context {
        snapshot,
        memberships: &memberships,
        traffic,
        recent_since: recent_since(snapshot),
    };

    let mut numbers: Vec<NumberPlan> = snapshot
        .numbers
        .iter()
        .map(|number| {
            let lost_count = lost_by_number.get(number.sid.as_str()).map_or(0, Vec::len);
            plan_number(&ctx, number, mapping.target(&number.sid), lost_count)
        })
        .collect();
    // Grouped for review: customers by name, then conflicts, then numbers that stay.
    numbers.sort_by(|a, b| {
        let group = |n: &NumberPlan| match (n.action, &n.target_customer) {
            (Action::Transfer, _) => 0,
            (Action::Stay, _) if n.blocked => 1,
            _ => 2,
        };
        group(a)
            .cmp(&group(b))
            .then_with(|| match (&a.target_customer, &b.target_customer) {
                (Some(x), Some(y)) => crate::model::customer_order(x, y),
                (x, y) => x.is_some().cmp(&y.is_some()),
            })
            .then_with(|| a.phone_number.cmp(&b.phone_number))
    });

    service_settings_differ(snapshot, &mut numbers);
    let mut customers = customer_plans(snapshot, mapping, &numbers, &keys);
    let built = build_steps(snapshot, &numbers, &mut customers, &lost, &lost_by_number);
    let (steps, placeholders, reseed_files, suppression) = (
        built.steps,
        built.placeholders,
        built.files,
        built.suppression,
    );

    let count = |s: Severity| numbers.iter().map(|n| n.count(s)).sum::<usize>();
    let summary = PlanSummary {
        numbers: numbers.len(),
        transfer: numbers
            .iter()
            .filter(|n| n.action == Action::Transfer)
            .count(),
        moving: numbers.iter().filter(|n| n.moves()).count(),
        blocked: numbers.iter().filter(|n| n.blocked).count(),
        stay: numbers.iter().filter(|n| n.action == Action::Stay).count(),
        blockers: count(Severity::Blocker),
        warnings: count(Severity::Warning),
        infos: count(Severity::Info),
        opt_outs_lost: numbers.iter().map(|n| n.opt_outs_lost).sum(),
        steps: steps.len(),
    };
    let parent = snapshot.parent();
    Plan {
        parent_account_sid: parent.sid.clone(),
        parent_friendly_name: parent.name().to_string(),
        window: PlanWindow {
            since: rfc3339(&snapshot.manifest.window.since),
            until: rfc3339(&snapshot.manifest.window.until),
            recent_since: rfc3339(&ctx.recent_since),
        },
        summary,
        customers,
        numbers,
        placeholders,
        steps,
        reseed_files,
        suppression,
        lost,
    }
}

struct Context<'a> {
    snapshot: &'a Snapshot,
    memberships: &'a HashMap<String, Vec<String>>,
    traffic: &'a HashMap<String, Traffic>,
    recent_since: DateTime<Utc>,
}

/// A target's identity: customer name and subaccount (one customer name could name two
/// subaccounts on different lines).
fn target_id(t: &Target) -> (String, Option<String>) {
    (t.customer.clone(), t.account_sid.clone())
}

/// Shell-safe, unique keys per target: `C_` and the name in upper case, other characters as
/// `_`. The prefix keeps them clear of the script's own variables (a customer named "Twilio"
/// must not become TWILIO_AUTH_TOKEN).
fn customer_keys(mapping: &ResolvedMapping) -> BTreeMap<(String, Option<String>), String> {
    let mut ids: BTreeSet<(String, Option<String>)> = BTreeSet::new();
    for t in mapping.targets.values() {
        if let NumberTarget::Move(t) = t {
            ids.insert(target_id(t));
        }
    }
    let mut ordered: Vec<_> = ids.into_iter().collect();
    ordered.sort_by(|a, b| crate::model::customer_order(&a.0, &b.0).then_with(|| a.1.cmp(&b.1)));
    let mut used = BTreeSet::new();
    let mut out = BTreeMap::new();
    for id in ordered {
        let base = shell_key(&id.0);
        let mut key = base.clone();
        let mut n = 2;
        while !used.insert(key.clone()) {
            key = format!("{base}_{n}");
            n += 1;
        }
        out.insert(id, key);
    }
    out
}

pub fn shell_key(name: &str) -> String {
    let mut key = String::from("C_");
    let mut last_underscore = true;
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            key.push(c.to_ascii_uppercase());
            last_underscore = false;
        } else if !last_underscore {
            key.push('_');
            last_underscore = true;
        }
    }
    while key.ends_with('_') && key.len() > 2 {
        key.pop();
    }
    if key == "C_" {
        key.push('X');
    }
    key
}

fn account_status(snapshot: &Snapshot, sid: Option<&str>) -> String {
    match sid {
        None => "to-create".to_string(),
        Some(sid) => snapshot
            .account(sid)
            .and_then(|a| a.status.clone())
            .unwrap_or_else(|| "not-in-snapshot".to_string()),
    }
}

/// The service-settings-differ finding: a customer whose numbers leave parent services with
/// different settings gets one new service per parent service; each such number says so.
fn service_settings_differ(snapshot: &Snapshot, numbers: &mut [NumberPlan]) {
    let mut parents: BTreeMap<(String, Option<String>), Vec<String>> = BTreeMap::new();
    for n in numbers
        .iter()
        .filter(|n| n.moves() && n.target_messaging_service_sid.is_none())
    {
        if let (Some(customer), Some(mg)) = (&n.target_customer, n.messaging_service_sids.first()) {
            let list = parents
                .entry((customer.clone(), n.target_account_sid.clone()))
                .or_default();
            if !list.contains(mg) {
                list.push(mg.clone());
            }
        }
    }
    for ((customer, account), list) in parents {
        if !steps::settings_differ(snapshot, &list) {
            continue;
        }
        let names: Vec<String> = list
            .iter()
            .map(|sid| {
                let name = snapshot
                    .services
                    .iter()
                    .find(|s| &s.sid == sid)
                    .and_then(|s| s.friendly_name.as_deref())
                    .unwrap_or("");
                format!("{name:?} ({sid})")
            })
            .collect();
        for n in numbers.iter_mut().filter(|n| {
            n.moves()
                && n.target_messaging_service_sid.is_none()
                && n.target_customer.as_deref() == Some(customer.as_str())
                && n.target_account_sid == account
                && !n.messaging_service_sids.is_empty()
        }) {
            n.findings.push(Finding::new(
                Code::ServiceSettingsDiffer,
                format!(
                    "{customer:?}'s numbers come from parent services whose settings differ ({}): the plan creates one service per parent service in the subaccount, each named \"{customer} (<parent service>)\" with its parent's settings, rather than merge them; merge them yourself afterwards if one set of settings fits all",
                    names.join(", ")
                ),
            ));
            n.findings
                .sort_by(|a, b| b.severity.cmp(&a.severity).then(a.code.cmp(&b.code)));
            n.worst_severity = n.findings.iter().map(|f| f.severity).max();
        }
    }
}

fn customer_plans(
    snapshot: &Snapshot,
    mapping: &ResolvedMapping,
    numbers: &[NumberPlan],
    keys: &BTreeMap<(String, Option<String>), String>,
) -> Vec<CustomerPlan> {
    // Named as `optouts/<customer>.csv` is: both files of a customer share the stem.
    let stems: HashMap<String, String> =
        crate::output::customer_file_stems(&mapping.moving_customers())
            .into_iter()
            .collect();
    let mut out: Vec<CustomerPlan> = keys
        .iter()
        .map(|((customer, account_sid), key)| {
            let own: Vec<&NumberPlan> = numbers
                .iter()
                .filter(|n| match mapping.target(&n.number_sid) {
                    Some(NumberTarget::Move(t)) => {
                        &t.customer == customer && &t.account_sid == account_sid
                    }
                    _ => false,
                })
                .collect();
            CustomerPlan {
                customer: customer.clone(),
                key: key.clone(),
                account_sid: account_sid.clone(),
                account_status: account_status(snapshot, account_sid.as_deref()),
                numbers_mapped: own.len(),
                numbers_moving: own.iter().filter(|n| n.moves()).count(),
                numbers_blocked: own.iter().filter(|n| n.blocked).count(),
                blockers: own.iter().map(|n| n.count(Severity::Blocker)).sum(),
                warnings: own.iter().map(|n| n.count(Severity::Warning)).sum(),
                opt_outs_lost: own.iter().map(|n| n.opt_outs_lost).sum(),
                required: Vec::new(),
                reseed_file: None,
                reseed_items: 0,
                reseed_batches: 0,
                reseed_estimate_seconds: 0,
                reseed_skipped: 0,
                suppression_file: format!(
                    "{SUPPRESSION_DIR}/{}.suppression.csv",
                    stems
                        .get(customer)
                        .cloned()
                        .unwrap_or_else(|| crate::output::safe_file_stem(customer))
                ),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        crate::model::customer_order(&a.customer, &b.customer).then_with(|| a.key.cmp(&b.key))
    });
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests;
