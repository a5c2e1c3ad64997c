//! The migration plan: every number's target, every known way its transfer breaks (DOMAIN.md
//! "What can break when a number moves") as a graded finding, and the ordered API requests
//! that perform the moves.
//!
//! Building the plan is pure over its inputs (snapshot, resolved mapping, the opt-out engine's
//! lost rows, recent traffic), so the rules are unit-tested without files. The one streaming
//! pass it needs, [`recent_traffic`], is separate.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Serialize, Serializer};

use super::mapping::{NumberTarget, ResolvedMapping, Target};
use super::optouts::{services_by_number, LostOptOut};
use crate::error::Result;
use crate::model::IncomingPhoneNumber;
use crate::snapshot::Snapshot;
use crate::time::parse_twilio_time;
use crate::time::rfc3339;

/// How far back from the snapshot's window end traffic counts as "recent".
pub const RECENT_DAYS: i64 = 30;
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

/// The stable finding codes (documented in the README; scripts match on them).
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
}

impl Code {
    pub const ALL: [Code; 16] = [
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
        }
    }

    /// Blockers stop the number's move; warnings need work before or right after it, or
    /// something breaks (compliance, voice, opt-outs); info is for the record.
    pub fn severity(self) -> Severity {
        match self {
            Code::HostedNumber
            | Code::TargetSuspended
            | Code::TargetClosed
            | Code::TargetNotChild
            | Code::MappingConflict => Severity::Blocker,
            Code::InMessagingService
            | Code::A2pCampaign
            | Code::TollFreeVerification
            | Code::RegulatoryBundle
            | Code::AddressRequired
            | Code::EmergencyAddress
            | Code::SipTrunk
            | Code::TwimlApp
            | Code::OptOutsLost => Severity::Warning,
            // Nothing breaks: an unmapped number stays where it is; live traffic only asks for
            // a quiet window.
            Code::Unmapped | Code::RecentTraffic => Severity::Info,
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

/// A value known only while the plan runs, or one the user must supply.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlaceholderSource {
    /// Read from an earlier step's response.
    Captured,
    /// Read with the parent's credentials when the script runs (a subaccount's auth token).
    Fetched,
    /// The user creates the resource and exports its sid before running the customer's part.
    Required,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placeholder {
    /// A shell variable name; requests write it as `${NAME}`.
    pub name: String,
    pub customer: String,
    pub source: PlaceholderSource,
    pub description: String,
}

/// Text with placeholders, kept apart from literal text so that a renderer can never mistake
/// data (a customer named `${TWILIO_AUTH_TOKEN}`) for a variable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Var(String),
}

impl Template {
    pub fn text(text: impl Into<String>) -> Template {
        Template {
            parts: vec![Part::Text(text.into())],
        }
    }
    pub fn var(name: impl Into<String>) -> Template {
        Template {
            parts: vec![Part::Var(name.into())],
        }
    }
    pub fn push_text(mut self, text: impl Into<String>) -> Template {
        self.parts.push(Part::Text(text.into()));
        self
    }
    pub fn push_var(mut self, name: impl Into<String>) -> Template {
        self.parts.push(Part::Var(name.into()));
        self
    }
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Text(_) => None,
        })
    }
}

impl fmt::Display for Template {
    /// Placeholders as `${NAME}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(t) => f.write_str(t)?,
                Part::Var(v) => write!(f, "${{{v}}}")?,
            }
        }
        Ok(())
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    /// The parent's credentials (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN).
    Parent,
    /// The gaining subaccount's sid and auth token.
    Subaccount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FormField {
    pub name: &'static str,
    pub value: Template,
}

/// The exact HTTP request a step sends (form-encoded body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    pub method: &'static str,
    pub url: Template,
    pub auth: Auth,
    /// In order; a name may repeat (Consents Bulk's `Items`).
    pub form: Vec<FormField>,
}

impl Request {
    /// Every placeholder the request uses, each once, in order of appearance.
    pub fn placeholders(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let all = self
            .url
            .vars()
            .chain(self.form.iter().flat_map(|f| f.value.vars()));
        for v in all {
            if !out.iter().any(|o| o == v) {
                out.push(v.to_string());
            }
        }
        out
    }
}

/// A response field a later step needs, and the variable it goes into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capture {
    pub variable: String,
    /// The JSON field of the response.
    pub field: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
}

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
}

impl Plan {
    /// The worst severity any finding has.
    pub fn worst(&self) -> Option<Severity> {
        self.numbers.iter().filter_map(|n| n.worst_severity).max()
    }
}

/// Messages on a number (as sender or recipient) in the recent period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Traffic {
    pub messages: u64,
    pub last: Option<DateTime<Utc>>,
}

/// The start of the recent period: 30 days before the snapshot's window end.
pub fn recent_since(snapshot: &Snapshot) -> DateTime<Utc> {
    snapshot.manifest.window.until - Duration::days(RECENT_DAYS)
}

/// One streaming pass: the messages each of the parent's numbers sent or received in the 30
/// days before the window end, by PN sid.
pub fn recent_traffic(snapshot: &Snapshot) -> Result<HashMap<String, Traffic>> {
    let scan = TrafficScan::new(snapshot);
    let (parts, _) = snapshot.fold_messages(HashMap::new, |out, _, m| {
        scan.visit(out, m);
        Ok(())
    })?;
    Ok(TrafficScan::merge(parts))
}

/// Recent traffic per number in two halves, so that `audit` can count it in the same read of
/// the messages as its other stages.
pub struct TrafficScan<'a> {
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    by_phone: HashMap<&'a str, &'a str>,
}

impl<'a> TrafficScan<'a> {
    pub fn new(snapshot: &'a Snapshot) -> Self {
        TrafficScan {
            since: recent_since(snapshot),
            until: snapshot.manifest.window.until,
            by_phone: snapshot
                .numbers
                .iter()
                .map(|n| (n.phone_number.as_str(), n.sid.as_str()))
                .collect(),
        }
    }

    /// Counts one message on the numbers it is on, if it is recent.
    pub fn visit(
        &self,
        out: &mut HashMap<String, Traffic>,
        message: &crate::model::MessageRef<'_>,
    ) {
        // Look the numbers up before parsing the time: most lines are cheap to skip.
        let ours = [message.from.as_deref(), message.to.as_deref()]
            .into_iter()
            .flatten()
            .filter_map(|p| self.by_phone.get(p).copied());
        let mut time = None;
        for pn in ours {
            let t = match time {
                Some(t) => t,
                None => match message.event_time_text().and_then(parse_twilio_time) {
                    Some(t) => {
                        time = Some(t);
                        t
                    }
                    // A message without a readable time cannot be placed: not recent.
                    None => return,
                },
            };
            if t < self.since || t >= self.until {
                return;
            }
            let entry = out.entry(pn.to_string()).or_default();
            entry.messages += 1;
            entry.last = entry.last.max(Some(t));
        }
    }

    /// Adds up the workers' counts.
    pub fn merge(parts: Vec<HashMap<String, Traffic>>) -> HashMap<String, Traffic> {
        let mut out: HashMap<String, Traffic> = HashMap::new();
        for part in parts {
            for (pn, t) in part {
                let entry = out.entry(pn).or_default();
                entry.messages += t.messages;
                entry.last = entry.last.max(t.last);
            }
        }
        out
    }
}

/// Builds the plan. `lost` are the opt-out engine's rows for the mapped moves
/// ([`super::optouts::lost_opt_outs`] without `all`).
pub fn build(
    snapshot: &Snapshot,
    mapping: &ResolvedMapping,
    lost: &[LostOptOut],
    traffic: &HashMap<String, Traffic>,
) -> Plan {
    let memberships = services_by_number(snapshot);
    let mut lost_by_number: HashMap<&str, Vec<&LostOptOut>> = HashMap::new();
    for row in lost {
        lost_by_number
            .entry(&*row.twilio_number_sid)
            .or_default()
            .push(row);
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
        (
            group(a),
            a.target_customer.as_deref().map(str::to_lowercase),
            &a.phone_number,
        )
            .cmp(&(
                group(b),
                b.target_customer.as_deref().map(str::to_lowercase),
                &b.phone_number,
            ))
    });

    let mut customers = customer_plans(snapshot, mapping, &numbers, &keys);
    let (steps, placeholders) = build_steps(snapshot, &numbers, &mut customers, &lost_by_number);

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
    ordered.sort_by(|a, b| (a.0.to_lowercase(), &a.1).cmp(&(b.0.to_lowercase(), &b.1)));
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
            .unwrap_or_else(|| "unknown".to_string()),
    }
}

fn plan_number(
    ctx: &Context<'_>,
    number: &IncomingPhoneNumber,
    target: Option<&NumberTarget>,
    opt_outs_lost: usize,
) -> NumberPlan {
    let services = ctx
        .memberships
        .get(&number.sid)
        .cloned()
        .unwrap_or_default();
    let recent = ctx.traffic.get(&number.sid).copied().unwrap_or_default();
    let mut plan = NumberPlan {
        number_sid: number.sid.clone(),
        phone_number: number.phone_number.clone(),
        friendly_name: number.friendly_name.clone(),
        action: Action::Stay,
        target_customer: None,
        target_account_sid: None,
        target_account_status: None,
        blocked: false,
        mapping_lines: Vec::new(),
        messaging_service_sids: services.clone(),
        opt_outs_lost: 0,
        recent_messages: recent.messages,
        worst_severity: None,
        findings: Vec::new(),
    };
    let mut findings = Vec::new();
    match target {
        None => {
            // It stays where it is: no transfer risk applies.
            findings.push(Finding::new(
                Code::Unmapped,
                "not in the mapping: it stays in the parent account; add a line for it to the mapping if it belongs to a customer".to_string(),
            ));
        }
        Some(NumberTarget::Conflict(targets)) => {
            plan.mapping_lines = targets
                .iter()
                .flat_map(|t| t.lines.iter().copied())
                .collect();
            plan.mapping_lines.sort_unstable();
            let names: Vec<String> = targets
                .iter()
                .map(|t| {
                    let lines: Vec<String> = t.lines.iter().map(usize::to_string).collect();
                    let account = t
                        .account_sid
                        .as_deref()
                        .map(|s| format!(" {s}"))
                        .unwrap_or_default();
                    format!("{:?}{account} (line {})", t.customer, lines.join(", "))
                })
                .collect();
            findings.push(Finding::new(
                Code::MappingConflict,
                format!(
                    "mapped to {} different targets: {}; it stays in the parent until the mapping names one target: delete the other lines",
                    targets.len(),
                    names.join(", ")
                ),
            ));
            // Where it would go is open, but what the number itself carries is known: list it
            // now so that it is not a surprise once the conflict is settled.
            findings.extend(number_risks(ctx, number, &services, None));
            findings.extend(traffic_finding(ctx, &recent));
        }
        Some(NumberTarget::Move(t)) => {
            plan.action = Action::Transfer;
            plan.target_customer = Some(t.customer.clone());
            plan.target_account_sid = t.account_sid.clone();
            plan.target_account_status =
                Some(account_status(ctx.snapshot, t.account_sid.as_deref()));
            plan.mapping_lines = t.lines.clone();
            plan.opt_outs_lost = opt_outs_lost;
            findings.extend(target_findings(ctx, t));
            findings.extend(number_risks(ctx, number, &services, Some(t)));
            findings.extend(traffic_finding(ctx, &recent));
            if opt_outs_lost > 0 {
                findings.push(Finding::new(
                    Code::OptOutsLost,
                    format!(
                        "{opt_outs_lost} opt-out{} in force would be lost: Twilio keeps opt-outs per account. They are listed in optouts/{}.csv; the plan re-seeds them in the subaccount (Consents Bulk, a pilot API: if your account lacks it, import them another way); send nothing from the number until that is done",
                        plural(opt_outs_lost),
                        crate::output::safe_file_stem(&t.customer)
                    ),
                ));
            }
        }
    }
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.code.cmp(&b.code)));
    plan.blocked = findings.iter().any(|f| f.severity == Severity::Blocker);
    plan.worst_severity = findings.iter().map(|f| f.severity).max();
    plan.findings = findings;
    plan
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Findings about the gaining account.
fn target_findings(ctx: &Context<'_>, t: &Target) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(sid) = t.account_sid.as_deref() else {
        return out;
    };
    let Some(account) = ctx.snapshot.account(sid) else {
        return out;
    };
    let parent = ctx.snapshot.parent_sid();
    if let Some(owner) = account
        .owner_account_sid
        .as_deref()
        .filter(|o| *o != parent)
    {
        out.push(Finding::new(
            Code::TargetNotChild,
            format!(
                "target account {sid} ({:?}) is owned by {owner}, not by this parent {parent}: Twilio refuses the transfer (error 21473); map the number to one of the parent's subaccounts, or leave subaccount_sid empty to create one",
                account.name()
            ),
        ));
    }
    match account.status.as_deref() {
        Some("suspended") => out.push(Finding::new(
            Code::TargetSuspended,
            format!(
                "target subaccount {sid} ({:?}) is suspended: the transfer cannot proceed; reactivate it first (POST {API_BASE}/Accounts/{sid}.json with Status=active) and run the plan again, or map the number elsewhere",
                account.name()
            ),
        )),
        Some("closed") => out.push(Finding::new(
            Code::TargetClosed,
            format!(
                "target subaccount {sid} ({:?}) is closed, and a closed account cannot be reopened: map the number to another subaccount, or to a new customer name with subaccount_sid empty so that the plan creates a new subaccount",
                account.name()
            ),
        )),
        _ => {}
    }
    out
}

/// Findings about what the number carries with it; `target` is None for a conflict.
fn number_risks(
    ctx: &Context<'_>,
    number: &IncomingPhoneNumber,
    services: &[String],
    target: Option<&Target>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let snapshot = ctx.snapshot;
    let customer = target.map_or("the customer", |t| t.customer.as_str());
    for sid in services {
        let service = snapshot.services.iter().find(|s| &s.sid == sid);
        let name = service
            .and_then(|s| s.friendly_name.as_deref())
            .unwrap_or("");
        let inbound = service
            .and_then(|s| s.inbound_request_url.as_deref())
            .filter(|u| !u.is_empty())
            .map(|u| format!(" (inbound webhook {u})"))
            .unwrap_or_default();
        out.push(Finding::new(
            Code::InMessagingService,
            format!(
                "in the parent's Messaging Service {name:?} ({sid}): it must leave that service before the transfer (a number can be in one service only, error 21712), and the service's opt-outs and campaign stop covering it; the plan removes it and adds it to a new service of {customer} in the subaccount: copy the settings you rely on{inbound} to the new service"
            ),
        ));
        let campaigns: Vec<_> = snapshot
            .campaigns
            .iter()
            .filter(|c| &c.messaging_service_sid == sid)
            .collect();
        let registered = service.and_then(|s| s.us_app_to_person_registered) == Some(true);
        if !campaigns.is_empty() || registered {
            let what = if campaigns.is_empty() {
                "is registered for US A2P 10DLC".to_string()
            } else {
                let list: Vec<String> = campaigns
                    .iter()
                    .map(|c| {
                        let id = c.campaign_id.as_deref().unwrap_or(c.sid.as_str());
                        match c.us_app_to_person_usecase.as_deref() {
                            Some(u) => format!("{id} ({u})"),
                            None => id.to_string(),
                        }
                    })
                    .collect();
                format!("carries the US A2P 10DLC campaign {}", list.join(", "))
            };
            out.push(Finding::new(
                Code::A2pCampaign,
                format!(
                    "its parent service {name:?} ({sid}) {what}: the registration does not follow the number; register a brand and campaign for {customer} in the subaccount and attach it to the new service before sending to US numbers, or carriers filter the traffic"
                ),
            ));
        }
    }
    if number.is_toll_free() {
        out.push(Finding::new(
            Code::TollFreeVerification,
            "toll-free number: its toll-free verification stays with the parent; submit a new verification for it from the subaccount right after the transfer and hold sending until it is approved, or carriers block the messages".to_string(),
        ));
    }
    if let Some(bundle) = number.bundle_sid.as_deref().filter(|s| !s.is_empty()) {
        out.push(Finding::new(
            Code::RegulatoryBundle,
            format!(
                "regulatory bundle {bundle} belongs to the parent: create an equivalent bundle in the subaccount and have it approved before the transfer, which sends it as BundleSid (a placeholder in the transfer step; error 21649 otherwise)"
            ),
        ));
    }
    let requirement = number
        .address_requirements
        .as_deref()
        .filter(|r| !r.is_empty() && *r != "none");
    let address = number.address_sid.as_deref().filter(|s| !s.is_empty());
    if requirement.is_some() || address.is_some() {
        let what = match (requirement, address) {
            (Some(r), Some(a)) => format!("address requirement {r:?} (address {a} of the parent)"),
            (Some(r), None) => format!("address requirement {r:?}"),
            (None, Some(a)) => format!("address {a} of the parent"),
            (None, None) => unreachable!(),
        };
        out.push(Finding::new(
            Code::AddressRequired,
            format!(
                "{what}: create a matching address in the subaccount before the transfer, which sends it as AddressSid (a placeholder in the transfer step; error 21613 otherwise)"
            ),
        ));
    }
    let emergency_sid = number
        .emergency_address_sid
        .as_deref()
        .filter(|s| !s.is_empty());
    let emergency_active = number
        .emergency_status
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("active"));
    if emergency_sid.is_some() || emergency_active {
        out.push(Finding::new(
            Code::EmergencyAddress,
            format!(
                "emergency calling is {} (emergency address {}): the address belongs to the parent; create the emergency address in the subaccount and register it on the number right after the transfer (EmergencyAddressSid), or emergency calls lose their address",
                if emergency_active { "active" } else { "configured" },
                emergency_sid.unwrap_or("none")
            ),
        ));
    }
    if let Some(trunk) = number.trunk_sid.as_deref().filter(|s| !s.is_empty()) {
        out.push(Finding::new(
            Code::SipTrunk,
            format!(
                "routed to SIP trunk {trunk} of the parent: voice breaks after the move; create a trunk in the subaccount with the same termination and origination and attach the number to it (TrunkSid) right after the transfer"
            ),
        ));
    }
    let apps: Vec<String> = [
        ("voice", number.voice_application_sid.as_deref()),
        ("sms", number.sms_application_sid.as_deref()),
    ]
    .into_iter()
    .filter_map(|(kind, sid)| sid.filter(|s| !s.is_empty()).map(|s| format!("{kind} {s}")))
    .collect();
    if !apps.is_empty() {
        out.push(Finding::new(
            Code::TwimlApp,
            format!(
                "uses TwiML app{} of the parent ({}): the app does not follow the number; create the app in the subaccount and point the number at it (VoiceApplicationSid / SmsApplicationSid) right after the transfer",
                plural(apps.len()),
                apps.join(", ")
            ),
        ));
    }
    if number.origin.as_deref() == Some("hosted") {
        out.push(Finding::new(
            Code::HostedNumber,
            "hosted number (origin \"hosted\"): Twilio cannot transfer it by API (error 22121); ask Twilio support to move the hosted number order to the subaccount, or leave it in the parent (delete its mapping line)".to_string(),
        ));
    }
    out
}

fn traffic_finding(ctx: &Context<'_>, recent: &Traffic) -> Option<Finding> {
    let last = recent.last?;
    Some(Finding::new(
        Code::RecentTraffic,
        format!(
            "{} message{} in the {RECENT_DAYS} days before the snapshot ends (since {}), the last at {}: the number is in use; move it in a quiet window and pause sending for the customer while its part of the plan runs",
            recent.messages,
            plural(recent.messages as usize),
            rfc3339(&ctx.recent_since),
            rfc3339(&last)
        ),
    ))
}

fn customer_plans(
    snapshot: &Snapshot,
    mapping: &ResolvedMapping,
    numbers: &[NumberPlan],
    keys: &BTreeMap<(String, Option<String>), String>,
) -> Vec<CustomerPlan> {
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
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (a.customer.to_lowercase(), &a.key).cmp(&(b.customer.to_lowercase(), &b.key))
    });
    out
}

fn field(name: &'static str, value: Template) -> FormField {
    FormField { name, value }
}

/// A Consents Bulk item, as the JSON text Twilio takes in each `Items` field. The sender is a
/// template: it may be the customer's new service, known only at run time.
fn consent_item(row: &LostOptOut, sender: &Template) -> Template {
    let correlation = correlation_id(row);
    // Only the opt-out keyword is the end user's own message; a 21610 failure is Twilio's
    // record of an opt-out whose source it does not tell.
    let source = if row.evidence == "inbound-keyword" {
        "opt-out-message"
    } else {
        "others"
    };
    let mut t = Template::text(format!(
        "{{\"contact_id\":{},\"correlation_id\":\"{correlation}\",\"sender_id\":\"",
        serde_json::Value::String(row.end_user.to_string())
    ));
    for part in &sender.parts {
        t.parts.push(part.clone());
    }
    t.push_text(format!(
        "\",\"status\":\"opt-out\",\"source\":\"{source}\",\"date_of_consent\":\"{}\"}}",
        row.opted_out_at
    ))
}

/// 32 hex characters, unique per item: the evidence message's sid digits, which trace the
/// item back to the message that proved the opt-out; a hash where the sid has another shape.
fn correlation_id(row: &LostOptOut) -> String {
    let sid = &row.evidence_message_sid;
    if sid.len() == 34 && sid[2..].bytes().all(|b| b.is_ascii_hexdigit()) {
        return sid[2..].to_ascii_lowercase();
    }
    // FNV-1a, twice with different seeds: stable across versions, unlike std's hasher.
    let text = format!("{}|{}|{}", row.end_user, row.twilio_number, sid);
    let fnv = |seed: u64| {
        text.bytes().fold(seed, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3)
        })
    };
    format!(
        "{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x84222325_cbf29ce4)
    )
}

fn build_steps(
    snapshot: &Snapshot,
    numbers: &[NumberPlan],
    customers: &mut [CustomerPlan],
    lost_by_number: &HashMap<&str, Vec<&LostOptOut>>,
) -> (Vec<Step>, Vec<Placeholder>) {
    let parent = snapshot.parent_sid();
    let mut steps: Vec<Step> = Vec::new();
    let mut placeholders: Vec<Placeholder> = Vec::new();
    let by_sid: HashMap<&str, &IncomingPhoneNumber> = snapshot
        .numbers
        .iter()
        .map(|n| (n.sid.as_str(), n))
        .collect();
    let service_name = |sid: &str| {
        snapshot
            .services
            .iter()
            .find(|s| s.sid == sid)
            .and_then(|s| s.friendly_name.clone())
            .unwrap_or_default()
    };

    for customer in customers.iter_mut() {
        let own: Vec<&NumberPlan> = numbers
            .iter()
            .filter(|n| {
                n.moves()
                    && n.target_customer.as_deref() == Some(customer.customer.as_str())
                    && n.target_account_sid == customer.account_sid
            })
            .collect();
        if own.is_empty() {
            continue;
        }
        let key = customer.key.clone();
        let name = customer.customer.clone();
        let account_var = format!("{key}_ACCOUNT_SID");
        let token_var = format!("{key}_AUTH_TOKEN");
        let service_var = format!("{key}_SERVICE_SID");
        let push = |steps: &mut Vec<Step>,
                    kind: StepKind,
                    number: Option<&NumberPlan>,
                    description: String,
                    request: Request,
                    captures: Vec<Capture>| {
            steps.push(Step {
                order: steps.len() + 1,
                kind,
                customer: name.clone(),
                customer_key: key.clone(),
                number_sid: number.map(|n| n.number_sid.clone()),
                phone_number: number.map(|n| n.phone_number.clone()),
                description,
                placeholders: request.placeholders(),
                request,
                captures,
            });
        };
        let account: Template = match &customer.account_sid {
            Some(sid) => Template::text(sid.clone()),
            None => Template::var(&account_var),
        };

        // 1. The subaccount, where none exists.
        if customer.account_sid.is_none() {
            push(
                &mut steps,
                StepKind::CreateSubaccount,
                None,
                format!(
                    "create the subaccount {name:?}; its sid and auth token come from the response"
                ),
                Request {
                    method: "POST",
                    url: Template::text(format!("{API_BASE}/Accounts.json")),
                    auth: Auth::Parent,
                    form: vec![field("FriendlyName", Template::text(name.clone()))],
                },
                vec![
                    Capture {
                        variable: account_var.clone(),
                        field: "sid",
                    },
                    Capture {
                        variable: token_var.clone(),
                        field: "auth_token",
                    },
                ],
            );
            placeholders.push(Placeholder {
                name: account_var.clone(),
                customer: name.clone(),
                source: PlaceholderSource::Captured,
                description: format!(
                    "the sid of the new subaccount {name:?}, from the create-subaccount step"
                ),
            });
            placeholders.push(Placeholder {
                name: token_var.clone(),
                customer: name.clone(),
                source: PlaceholderSource::Captured,
                description: format!("the auth token of the new subaccount {name:?}, from the create-subaccount step; kept in the script's memory only"),
            });
        } else {
            placeholders.push(Placeholder {
                name: token_var.clone(),
                customer: name.clone(),
                source: PlaceholderSource::Fetched,
                description: format!("the auth token of subaccount {}, read with the parent's credentials when the script runs (or exported by you); kept in the script's memory only", customer.account_sid.as_deref().unwrap_or("")),
            });
        }

        // Placeholders for the subaccount's own bundles and addresses: one per distinct
        // parent resource, since numbers sharing a parent bundle can share the new one.
        let mut bundle_vars: BTreeMap<String, String> = BTreeMap::new();
        let mut address_vars: BTreeMap<String, String> = BTreeMap::new();
        let next_var = |map: &mut BTreeMap<String, String>, what: &str, parent_sid: String| {
            let n = map.len() + 1;
            map.entry(parent_sid)
                .or_insert_with(|| {
                    if n == 1 {
                        format!("{key}_{what}")
                    } else {
                        format!("{key}_{what}_{n}")
                    }
                })
                .clone()
        };

        // 2-3. Per number: leave the parent's services, then the transfer.
        let mut in_service: Vec<&NumberPlan> = Vec::new();
        for n in &own {
            let number = by_sid[n.number_sid.as_str()];
            for mg in &n.messaging_service_sids {
                push(
                    &mut steps,
                    StepKind::RemoveFromService,
                    Some(n),
                    format!(
                        "remove {} from the parent's Messaging Service {:?} ({mg})",
                        n.phone_number,
                        service_name(mg)
                    ),
                    Request {
                        method: "DELETE",
                        url: Template::text(format!(
                            "{MESSAGING_BASE}/Services/{mg}/PhoneNumbers/{}",
                            n.number_sid
                        )),
                        auth: Auth::Parent,
                        form: vec![],
                    },
                    vec![],
                );
            }
            if !n.messaging_service_sids.is_empty() {
                in_service.push(n);
            }
            let mut form = vec![field("AccountSid", account.clone())];
            let mut needs = Vec::new();
            if let Some(bundle) = number.bundle_sid.as_deref().filter(|s| !s.is_empty()) {
                let var = next_var(&mut bundle_vars, "BUNDLE_SID", bundle.to_string());
                needs.push(format!("BundleSid from ${{{var}}}"));
                form.push(field("BundleSid", Template::var(&var)));
            }
            let needs_address = number.address_sid.as_deref().is_some_and(|s| !s.is_empty())
                || number
                    .address_requirements
                    .as_deref()
                    .is_some_and(|r| !r.is_empty() && r != "none");
            if needs_address {
                let parent_address = number.address_sid.clone().unwrap_or_else(|| {
                    format!(
                        "requirement:{}",
                        number.address_requirements.as_deref().unwrap_or("")
                    )
                });
                let var = next_var(&mut address_vars, "ADDRESS_SID", parent_address);
                needs.push(format!("AddressSid from ${{{var}}}"));
                form.push(field("AddressSid", Template::var(&var)));
            }
            let extra = if needs.is_empty() {
                String::new()
            } else {
                format!(
                    " ({}: the subaccount's own, which you create first)",
                    needs.join(", ")
                )
            };
            push(
                &mut steps,
                StepKind::TransferNumber,
                Some(n),
                format!(
                    "transfer {} ({}) from the parent to {name:?}{extra}",
                    n.phone_number, n.number_sid
                ),
                Request {
                    method: "POST",
                    url: Template::text(format!(
                        "{API_BASE}/Accounts/{parent}/IncomingPhoneNumbers/{}.json",
                        n.number_sid
                    )),
                    auth: Auth::Parent,
                    form,
                },
                vec![],
            );
        }
        for (what, map) in [
            ("regulatory bundle", &bundle_vars),
            ("address", &address_vars),
        ] {
            for (parent_sid, var) in map {
                let replaces = if parent_sid.starts_with("requirement:") {
                    String::new()
                } else {
                    format!(" (replacing the parent's {parent_sid})")
                };
                placeholders.push(Placeholder {
                    name: var.clone(),
                    customer: name.clone(),
                    source: PlaceholderSource::Required,
                    description: format!(
                        "the sid of an {what} you create in the subaccount of {name:?}{replaces}"
                    ),
                });
                customer.required.push(var.clone());
            }
        }

        // 4. The customer's own service, for the numbers that were in one.
        if !in_service.is_empty() {
            push(
                &mut steps,
                StepKind::CreateMessagingService,
                None,
                format!("create the Messaging Service {name:?} in the subaccount (its sid comes from the response); then copy the settings you rely on from the parent's service"),
                Request {
                    method: "POST",
                    url: Template::text(format!("{MESSAGING_BASE}/Services")),
                    auth: Auth::Subaccount,
                    form: vec![field("FriendlyName", Template::text(name.clone()))],
                },
                vec![Capture {
                    variable: service_var.clone(),
                    field: "sid",
                }],
            );
            placeholders.push(Placeholder {
                name: service_var.clone(),
                customer: name.clone(),
                source: PlaceholderSource::Captured,
                description: format!("the sid of the new Messaging Service of {name:?}, from the create-messaging-service step"),
            });
            for n in &in_service {
                push(
                    &mut steps,
                    StepKind::AddToService,
                    Some(n),
                    format!(
                        "add {} to the new Messaging Service of {name:?}",
                        n.phone_number
                    ),
                    Request {
                        method: "POST",
                        url: Template::text(format!("{MESSAGING_BASE}/Services/"))
                            .push_var(&service_var)
                            .push_text("/PhoneNumbers"),
                        auth: Auth::Subaccount,
                        form: vec![field(
                            "PhoneNumberSid",
                            Template::text(n.number_sid.clone()),
                        )],
                    },
                    vec![],
                );
            }
        }

        // 5. Re-seed the lost opt-outs in the subaccount. A number now in the customer's
        // service sends through it, so its opt-outs go to the service; a number outside any
        // service keeps number-scoped opt-outs.
        let mut items: BTreeMap<(String, String), (&LostOptOut, Template)> = BTreeMap::new();
        for n in &own {
            let sender = if n.messaging_service_sids.is_empty() {
                Template::text(n.phone_number.clone())
            } else {
                Template::var(&service_var)
            };
            for row in lost_by_number
                .get(n.number_sid.as_str())
                .into_iter()
                .flatten()
            {
                let k = (sender.to_string(), row.end_user.to_string());
                // One item per (sender, end user): the earliest opt-out stands.
                match items.get(&k) {
                    Some((kept, _)) if kept.opted_out_at <= row.opted_out_at => {}
                    _ => {
                        items.insert(k, (row, sender.clone()));
                    }
                }
            }
        }
        let items: Vec<Template> = items
            .values()
            .map(|(row, sender)| consent_item(row, sender))
            .collect();
        let chunks = items.len().div_ceil(CONSENTS_PER_REQUEST);
        for (i, chunk) in items.chunks(CONSENTS_PER_REQUEST).enumerate() {
            push(
                &mut steps,
                StepKind::ReseedOptOuts,
                None,
                format!(
                    "re-seed {} lost opt-out{} in the subaccount of {name:?} (request {} of {chunks}, at most {CONSENTS_PER_REQUEST} items each)",
                    chunk.len(),
                    plural(chunk.len()),
                    i + 1
                ),
                Request {
                    method: "POST",
                    url: Template::text(CONSENTS_BULK_URL),
                    auth: Auth::Subaccount,
                    form: chunk.iter().map(|t| field("Items", t.clone())).collect(),
                },
                vec![],
            );
        }
    }
    (steps, placeholders)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{A2pCampaign, Account, MessagingService, ServicePhoneNumber};
    use crate::snapshot::{Manifest, Window};
    use chrono::TimeZone;

    const PARENT: &str = "AC00000000000000000000000000000000";

    fn sid(prefix: &str, n: u64) -> String {
        format!("{prefix}{n:032x}")
    }

    fn account(sid: &str, name: &str, status: &str) -> Account {
        Account {
            sid: sid.into(),
            owner_account_sid: Some(PARENT.into()),
            friendly_name: Some(name.into()),
            status: Some(status.into()),
            account_type: Some("Full".into()),
        }
    }

    fn number(n: u64) -> IncomingPhoneNumber {
        IncomingPhoneNumber {
            sid: sid("PN", n),
            phone_number: format!("+1415555{:04}", n),
            account_sid: Some(PARENT.into()),
            origin: Some("twilio".into()),
            address_requirements: Some("none".into()),
            emergency_status: Some("Inactive".into()),
            ..Default::default()
        }
    }

    fn snapshot(numbers: Vec<IncomingPhoneNumber>, accounts: Vec<Account>) -> Snapshot {
        let t = |m| Utc.with_ymd_and_hms(2026, m, 1, 0, 0, 0).unwrap();
        let mut all = vec![account(PARENT, "Owlie", "active")];
        all.extend(accounts);
        Snapshot {
            dir: "snap".into(),
            manifest: Manifest {
                format: crate::snapshot::FORMAT_NAME.into(),
                format_version: crate::snapshot::FORMAT_VERSION,
                parent_account_sid: PARENT.into(),
                window: Window {
                    since: t(1),
                    until: t(3),
                },
                created_at: t(3),
                created_by: "test".into(),
                complete: true,
                outbound_bodies_kept: false,
                resources: Default::default(),
            },
            accounts: all,
            numbers,
            services: vec![],
            service_numbers: vec![],
            campaigns: vec![],
            usage_records: vec![],
        }
    }

    fn moving(pairs: &[(u64, &str, Option<&str>)]) -> ResolvedMapping {
        let mut m = ResolvedMapping::default();
        for (i, (n, customer, account)) in pairs.iter().enumerate() {
            m.targets.insert(
                sid("PN", *n),
                NumberTarget::Move(Target {
                    customer: customer.to_string(),
                    account_sid: account.map(str::to_string),
                    lines: vec![i + 2],
                }),
            );
        }
        m
    }

    fn codes(plan: &Plan, n: u64) -> Vec<&'static str> {
        plan.numbers
            .iter()
            .find(|p| p.number_sid == sid("PN", n))
            .unwrap()
            .codes()
    }

    #[test]
    fn every_code_has_a_fixed_severity_and_the_five_blockers_are_the_issues() {
        let blockers: Vec<_> = Code::ALL
            .iter()
            .filter(|c| c.severity() == Severity::Blocker)
            .map(|c| c.as_str())
            .collect();
        assert_eq!(
            blockers,
            [
                "hosted-number",
                "target-suspended",
                "target-closed",
                "target-not-child",
                "mapping-conflict"
            ]
        );
        assert_eq!(Code::Unmapped.severity(), Severity::Info);
        assert_eq!(Code::OptOutsLost.severity(), Severity::Warning);
        assert_eq!(
            serde_json::to_string(&Code::A2pCampaign).unwrap(),
            "\"a2p-campaign\""
        );
        assert!(Severity::Blocker > Severity::Warning && Severity::Warning > Severity::Info);
    }

    #[test]
    fn an_unmapped_number_stays_with_one_info_finding() {
        let mut n = number(1);
        n.origin = Some("hosted".into());
        let snap = snapshot(vec![n], vec![]);
        let plan = build(&snap, &ResolvedMapping::default(), &[], &HashMap::new());
        assert_eq!(plan.numbers[0].action, Action::Stay);
        assert_eq!(codes(&plan, 1), ["unmapped"]);
        assert!(!plan.numbers[0].blocked);
        assert!(plan.steps.is_empty());
    }

    #[test]
    fn number_fields_raise_their_findings() {
        let mut a = number(1);
        a.bundle_sid = Some(sid("BU", 1));
        a.address_sid = Some(sid("AD", 1));
        a.address_requirements = Some("local".into());
        let mut b = number(2);
        b.emergency_status = Some("Active".into());
        b.trunk_sid = Some(sid("TK", 1));
        b.sms_application_sid = Some(sid("AP", 1));
        let mut c = number(3);
        c.phone_number = "+18005550103".into();
        let mut d = number(4);
        d.address_requirements = Some("any".into());
        let snap = snapshot(vec![a, b, c, d], vec![]);
        let map = moving(&[
            (1, "A", None),
            (2, "A", None),
            (3, "A", None),
            (4, "A", None),
        ]);
        let plan = build(&snap, &map, &[], &HashMap::new());
        assert_eq!(codes(&plan, 1), ["regulatory-bundle", "address-required"]);
        assert_eq!(
            codes(&plan, 2),
            ["emergency-address", "sip-trunk", "twiml-app"]
        );
        assert_eq!(codes(&plan, 3), ["toll-free-verification"]);
        assert_eq!(codes(&plan, 4), ["address-required"]);
        // The transfer carries placeholders for the subaccount's own bundle and address.
        let transfer = plan
            .steps
            .iter()
            .find(|s| {
                s.kind == StepKind::TransferNumber && s.number_sid.as_deref() == Some(&sid("PN", 1))
            })
            .unwrap();
        let form: Vec<String> = transfer
            .request
            .form
            .iter()
            .map(|f| format!("{}={}", f.name, f.value))
            .collect();
        assert_eq!(
            form,
            [
                "AccountSid=${C_A_ACCOUNT_SID}",
                "BundleSid=${C_A_BUNDLE_SID}",
                "AddressSid=${C_A_ADDRESS_SID}"
            ]
        );
        let d_transfer = plan
            .steps
            .iter()
            .find(|s| {
                s.kind == StepKind::TransferNumber && s.number_sid.as_deref() == Some(&sid("PN", 4))
            })
            .unwrap();
        assert_eq!(
            d_transfer.request.form[1].value.to_string(),
            "${C_A_ADDRESS_SID_2}"
        );
        assert_eq!(
            plan.customers[0].required,
            ["C_A_BUNDLE_SID", "C_A_ADDRESS_SID", "C_A_ADDRESS_SID_2"]
        );
    }

    #[test]
    fn target_status_and_ownership_block_the_move_and_it_gets_no_steps() {
        let suspended = sid("AC", 1);
        let closed = sid("AC", 2);
        let foreign = sid("AC", 3);
        let mut other = account(&foreign, "Elsewhere", "active");
        other.owner_account_sid = Some(sid("AC", 99));
        let mut hosted = number(4);
        hosted.origin = Some("hosted".into());
        let snap = snapshot(
            vec![number(1), number(2), number(3), hosted],
            vec![
                account(&suspended, "S", "suspended"),
                account(&closed, "C", "closed"),
                other,
            ],
        );
        let map = moving(&[
            (1, "S", Some(&suspended)),
            (2, "C", Some(&closed)),
            (3, "E", Some(&foreign)),
            (4, "H", None),
        ]);
        let plan = build(&snap, &map, &[], &HashMap::new());
        assert_eq!(codes(&plan, 1), ["target-suspended"]);
        assert_eq!(codes(&plan, 2), ["target-closed"]);
        assert_eq!(codes(&plan, 3), ["target-not-child"]);
        assert_eq!(codes(&plan, 4), ["hosted-number"]);
        assert!(plan
            .numbers
            .iter()
            .all(|n| n.blocked && n.action == Action::Transfer));
        assert!(
            plan.steps.is_empty(),
            "blocked numbers get no steps: {:?}",
            plan.steps
        );
        assert_eq!(plan.worst(), Some(Severity::Blocker));
        assert_eq!(plan.summary.moving, 0);
    }

    #[test]
    fn a_conflict_stays_with_a_blocker_naming_the_lines() {
        let snap = snapshot(vec![number(1)], vec![]);
        let mut map = ResolvedMapping::default();
        let t = |c: &str, l| Target {
            customer: c.into(),
            account_sid: None,
            lines: vec![l],
        };
        map.targets.insert(
            sid("PN", 1),
            NumberTarget::Conflict(vec![t("A", 2), t("B", 7)]),
        );
        let plan = build(&snap, &map, &[], &HashMap::new());
        let n = &plan.numbers[0];
        assert_eq!(n.action, Action::Stay);
        assert_eq!(n.target_customer, None);
        assert!(n.blocked);
        assert_eq!(n.mapping_lines, [2, 7]);
        assert_eq!(n.codes(), ["mapping-conflict"]);
        assert!(
            n.findings[0]
                .message
                .contains("\"A\" (line 2), \"B\" (line 7)"),
            "{}",
            n.findings[0].message
        );
        assert!(plan.steps.is_empty());
    }

    #[test]
    fn service_numbers_leave_and_join_a_new_service_and_campaigns_are_named() {
        let mut snap = snapshot(vec![number(1), number(2)], vec![]);
        let mg = sid("MG", 1);
        snap.services.push(MessagingService {
            sid: mg.clone(),
            account_sid: Some(PARENT.into()),
            friendly_name: Some("Alerts".into()),
            us_app_to_person_registered: Some(true),
            inbound_request_url: None,
        });
        snap.service_numbers.push(ServicePhoneNumber {
            sid: sid("PN", 1),
            service_sid: mg.clone(),
            phone_number: Some("+14155550001".into()),
            account_sid: Some(PARENT.into()),
        });
        snap.campaigns.push(A2pCampaign {
            sid: sid("QE", 1),
            messaging_service_sid: mg.clone(),
            campaign_status: Some("VERIFIED".into()),
            campaign_id: Some("CX1".into()),
            us_app_to_person_usecase: Some("MIXED".into()),
        });
        let existing = sid("AC", 5);
        snap.accounts.push(account(&existing, "Falcon", "active"));
        let map = moving(&[
            (1, "Falcon", Some(&existing)),
            (2, "Falcon", Some(&existing)),
        ]);
        let plan = build(&snap, &map, &[], &HashMap::new());
        assert_eq!(codes(&plan, 1), ["in-messaging-service", "a2p-campaign"]);
        assert_eq!(codes(&plan, 2), Vec::<&str>::new());
        let kinds: Vec<&str> = plan.steps.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "remove-from-service",
                "transfer-number",
                "transfer-number",
                "create-messaging-service",
                "add-to-service"
            ],
            "an existing subaccount is not created; only the service number joins the new service"
        );
        assert_eq!(plan.steps[1].request.form[0].value.to_string(), existing);
        assert_eq!(
            plan.steps[4].request.url.to_string(),
            "https://messaging.twilio.com/v1/Services/${C_FALCON_SERVICE_SID}/PhoneNumbers"
        );
        assert_eq!(
            plan.steps.iter().map(|s| s.order).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
    }

    fn lost_row(n: u64, user: &str, at: &str, evidence_sid: &str) -> LostOptOut {
        LostOptOut {
            end_user: user.into(),
            twilio_number: format!("+1415555{:04}", n).into(),
            twilio_number_sid: sid("PN", n).into(),
            scope: "number",
            messaging_service_sid: "".into(),
            opted_out_at: at.into(),
            keyword: "STOP".into(),
            evidence: "inbound-keyword",
            evidence_message_sid: evidence_sid.into(),
            target_customer: "A".into(),
            target_account_sid: "".into(),
        }
    }

    #[test]
    fn lost_opt_outs_are_counted_and_reseeded_in_chunks_of_25() {
        let snap = snapshot(vec![number(1)], vec![]);
        let map = moving(&[(1, "A", None)]);
        let lost: Vec<LostOptOut> = (0..30)
            .map(|i| {
                lost_row(
                    1,
                    &format!("+1212555{i:04}"),
                    "2026-01-02T03:04:05Z",
                    &sid("SM", i),
                )
            })
            .collect();
        let plan = build(&snap, &map, &lost, &HashMap::new());
        assert_eq!(codes(&plan, 1), ["opt-outs-lost"]);
        assert_eq!(plan.numbers[0].opt_outs_lost, 30);
        let reseeds: Vec<&Step> = plan
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::ReseedOptOuts)
            .collect();
        assert_eq!(reseeds.len(), 2);
        assert_eq!(reseeds[0].request.form.len(), 25);
        assert_eq!(reseeds[1].request.form.len(), 5);
        assert_eq!(reseeds[0].request.auth, Auth::Subaccount);
        let item: serde_json::Value =
            serde_json::from_str(&reseeds[0].request.form[0].value.to_string()).unwrap();
        assert_eq!(
            item,
            serde_json::json!({"contact_id": "+12125550000", "correlation_id": format!("{:032x}", 0),
                "sender_id": "+14155550001", "status": "opt-out", "source": "opt-out-message",
                "date_of_consent": "2026-01-02T03:04:05Z"})
        );
        assert_eq!(plan.steps[0].kind, StepKind::CreateSubaccount);
    }

    #[test]
    fn recent_traffic_is_info_and_shell_keys_are_safe() {
        let snap = snapshot(vec![number(1)], vec![]);
        let map = moving(&[(1, "A", None)]);
        let mut traffic = HashMap::new();
        let last = Utc.with_ymd_and_hms(2026, 2, 20, 0, 0, 0).unwrap();
        traffic.insert(
            sid("PN", 1),
            Traffic {
                messages: 3,
                last: Some(last),
            },
        );
        let plan = build(&snap, &map, &[], &traffic);
        assert_eq!(codes(&plan, 1), ["recent-traffic"]);
        assert_eq!(plan.numbers[0].findings[0].severity, Severity::Info);
        assert!(plan.numbers[0].findings[0]
            .message
            .starts_with("3 messages in the 30 days"));
        assert_eq!(shell_key("Falcon Flights"), "C_FALCON_FLIGHTS");
        assert_eq!(shell_key("Twilio"), "C_TWILIO");
        assert_eq!(shell_key("  Ärzte & Co. "), "C_RZTE_CO");
        assert_eq!(shell_key("$$"), "C_X");
    }

    #[test]
    fn correlation_ids_are_32_hex_characters() {
        let mut row = lost_row(1, "+12125550000", "2026-01-02T03:04:05Z", "SMabc");
        assert_eq!(correlation_id(&row).len(), 32);
        row.evidence_message_sid = sid("SM", 255).into();
        assert_eq!(correlation_id(&row), format!("{:032x}", 255));
    }
}
