//! `verify`: after `apply` and a fresh pull, is every moved number where the plan put it, and
//! was every opt-out it lost re-seeded? (docs/migration.md)

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::journal::{Entry, Journal};
use super::plan::{journal_path, LoadedPlan, PlanNumber, StepKind};
use crate::error::{Error, Result};
use crate::snapshot::{for_each_line, Resource, Snapshot};

/// The inbound settings a customer's new service must share with the parent's service.
pub const INBOUND_SETTINGS: [&str; 5] = [
    "inbound_request_url",
    "inbound_method",
    "fallback_url",
    "fallback_method",
    "use_inbound_webhook_on_number",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyRow {
    pub phone_number: String,
    pub number_sid: String,
    pub customer: String,
    pub target_account_sid: String,
    pub messaging_service_sid: String,
    /// `ok`, `problem`, `not-applied`, `blocked`.
    pub status: String,
    /// Each problem, `; `-separated.
    pub problems: String,
}

pub const VERIFY_HEADER: [&str; 7] = [
    "phone_number",
    "number_sid",
    "customer",
    "target_account_sid",
    "messaging_service_sid",
    "status",
    "problems",
];

#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub rows: Vec<VerifyRow>,
}

impl VerifyReport {
    /// 0 when every applied number is `ok`, 3 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.rows.iter().any(|r| r.status == "problem") {
            super::EXIT_WORK_LEFT
        } else {
            crate::exit_code::OK
        }
    }
}

/// Every record of a resource, raw, whatever account it belongs to.
fn raw_records(snapshot: &Snapshot, resource: Resource) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for (path, _) in snapshot.data_files(resource)? {
        for_each_line(&path, |n, line| {
            let v: Value = serde_json::from_str(line)
                .map_err(|e| Error::at_line(&path, n, format!("not JSON: {e}")))?;
            out.push(v);
            Ok(())
        })?;
    }
    Ok(out)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// A form value of a journaled request.
fn journal_form<'a>(e: &'a Entry, name: &str) -> Option<&'a str> {
    e.request
        .as_ref()?
        .form
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The service sid in a journaled `/v1/Services/{MG}/...` URL.
fn journal_service(e: &Entry) -> Option<String> {
    let url = url::Url::parse(&e.request.as_ref()?.url).ok()?;
    let segs: Vec<&str> = url.path_segments()?.collect();
    match segs.as_slice() {
        ["v1", "Services", mg, ..] if mg.starts_with("MG") => Some(mg.to_string()),
        _ => None,
    }
}

fn is_e164(user: &str) -> bool {
    user.len() > 1 && user.starts_with('+') && user[1..].chars().all(|c| c.is_ascii_digit())
}

/// The lost opt-outs per number sid: `optouts_lost.csv` beside the plan (the audit writes
/// both), else the plan's reseed items keyed by their sender.
fn expected_opt_outs(plan: &LoadedPlan) -> Result<Option<HashMap<String, Vec<String>>>> {
    let path = plan.dir.join("optouts_lost.csv");
    if !path.is_file() {
        return Ok(None);
    }
    let mut reader = csv::Reader::from_path(&path)
        .map_err(|e| Error::Input(format!("{}: cannot read ({e})", path.display())))?;
    let headers = reader
        .headers()
        .map_err(|e| Error::Input(format!("{}: no header ({e})", path.display())))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(user), Some(number)) = (col("end_user"), col("twilio_number_sid")) else {
        return Err(Error::Input(format!(
            "{}: expected the columns end_user and twilio_number_sid (the audit's optouts_lost.csv)",
            path.display()
        )));
    };
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let record =
            record.map_err(|e| Error::at_line(&path, i + 2, format!("bad CSV row: {e}")))?;
        let (Some(u), Some(n)) = (record.get(user), record.get(number)) else {
            continue;
        };
        out.entry(n.to_string()).or_default().push(u.to_string());
    }
    Ok(Some(out))
}

/// Checks the AFTER snapshot against the plan and its journal.
pub fn verify(plan: &LoadedPlan, after_dir: &Path, after: &Snapshot) -> Result<VerifyReport> {
    let parent = &plan.plan.parent_account_sid;
    if after.parent_sid() != parent {
        return Err(Error::Input(format!(
            "{}: the snapshot is of the account {}, the plan of {parent}: pull the plan's parent",
            after_dir.display(),
            after.parent_sid()
        )));
    }
    let jpath = journal_path(&plan.path);
    let journal = Journal::read(&jpath, &plan.fingerprint)?;
    let entries: Vec<Entry> = journal.map(|j| j.entries).unwrap_or_default();
    let settled = |order: usize| {
        entries
            .iter()
            .rev()
            .find(|e| e.order == order && e.batch.is_none() && e.settled())
    };

    let numbers = raw_records(after, Resource::IncomingPhoneNumbers)?;
    let services = raw_records(after, Resource::MessagingServices)?;
    let memberships = raw_records(after, Resource::ServicePhoneNumbers)?;
    let number_account: HashMap<&str, &str> = numbers
        .iter()
        .map(|n| (text(n, "sid"), text(n, "account_sid")))
        .collect();
    let service_by_sid: HashMap<&str, &Value> =
        services.iter().map(|s| (text(s, "sid"), s)).collect();
    let mut services_of: HashMap<&str, Vec<&str>> = HashMap::new();
    for m in &memberships {
        services_of
            .entry(text(m, "sid"))
            .or_default()
            .push(text(m, "service_sid"));
    }

    // Re-seeded (contact, sender) pairs without an item error, from the journal.
    let reseeded: HashSet<(String, String)> = entries
        .iter()
        .filter(|e| e.kind == StepKind::ReseedOptOuts && e.batch.is_some() && e.settled())
        .flat_map(|e| e.items.iter())
        .filter(|i| i.error_code == Some(0))
        .map(|i| (i.contact_id.clone(), i.sender_id.clone()))
        .collect();
    let expected = expected_opt_outs(plan)?;
    // Without optouts_lost.csv: the plan's reseed items, by sender.
    let mut items_by_sender: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if expected.is_none() {
        for step in plan
            .plan
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::ReseedOptOuts)
        {
            for item in plan.reseed_items(step)? {
                let v: Value = serde_json::from_str(&item).unwrap_or(Value::Null);
                let sender = resolve_captured(text(&v, "sender_id"), &entries);
                items_by_sender
                    .entry(sender)
                    .or_default()
                    .push(text(&v, "contact_id").to_string());
            }
        }
    }

    let mut report = VerifyReport::default();
    for number in plan.plan.numbers.iter().filter(|n| n.action == "transfer") {
        let customer = number.target_customer.clone().unwrap_or_default();
        let mut row = VerifyRow {
            phone_number: number.phone_number.clone(),
            number_sid: number.number_sid.clone(),
            customer: customer.clone(),
            target_account_sid: number.target_account_sid.clone().unwrap_or_default(),
            messaging_service_sid: String::new(),
            status: "ok".into(),
            problems: String::new(),
        };
        if number.blocked {
            row.status = "blocked".into();
            row.problems = "blocked in the plan: not moved".into();
            report.rows.push(row);
            continue;
        }
        let steps_of = |kind: StepKind| {
            plan.plan.steps.iter().filter(move |s| {
                s.kind == kind && s.number_sid.as_deref() == Some(&number.number_sid)
            })
        };
        let transfer = steps_of(StepKind::TransferNumber).find_map(|s| settled(s.order));
        let Some(transfer) = transfer else {
            row.status = "not-applied".into();
            row.problems = "the journal records no transfer of this number".into();
            report.rows.push(row);
            continue;
        };
        let target = journal_form(transfer, "AccountSid")
            .unwrap_or_default()
            .to_string();
        row.target_account_sid = target.clone();
        let mut problems = Vec::new();
        match number_account.get(number.number_sid.as_str()) {
            None => problems.push(
                "not in the snapshot's numbers: the pull did not list it in any account (pull after the apply, with this version)".to_string()
            ),
            Some(acc) if *acc != target => problems.push(format!(
                "in the account {acc}, not in the target {target}"
            )),
            Some(_) => {}
        }
        let now_in: Vec<&str> = services_of
            .get(number.number_sid.as_str())
            .cloned()
            .unwrap_or_default();
        let add_steps: Vec<_> = steps_of(StepKind::AddToService).collect();
        let mut sender_service: Option<String> = None;
        if add_steps.is_empty() {
            for mg in &now_in {
                problems.push(format!(
                    "in the Messaging Service {mg}; the plan keeps it outside any service"
                ));
            }
        } else {
            match add_steps.iter().find_map(|s| settled(s.order)) {
                None => problems.push("the journal records no add-to-service".into()),
                Some(added) => {
                    let mg = journal_service(added).unwrap_or_default();
                    row.messaging_service_sid = mg.clone();
                    if !now_in.contains(&mg.as_str()) {
                        problems.push(format!("not in its Messaging Service {mg}"));
                    }
                    if let Some(p) = settings_problem(
                        plan,
                        number,
                        &add_steps[0].request.url,
                        &mg,
                        &service_by_sid,
                    ) {
                        problems.push(p);
                    }
                    sender_service = Some(mg);
                }
            }
        }
        // Every lost opt-out re-seeded without an item error, for the sender it now uses.
        let senders: Vec<String> = sender_service
            .into_iter()
            .chain(std::iter::once(number.phone_number.clone()))
            .collect();
        let users: Vec<String> = match &expected {
            Some(map) => map.get(&number.number_sid).cloned().unwrap_or_default(),
            None => senders
                .iter()
                .flat_map(|s| items_by_sender.get(s).cloned().unwrap_or_default())
                .collect(),
        };
        let mut missing: Vec<String> = users
            .into_iter()
            .filter(|u| is_e164(u))
            .filter(|u| {
                !senders
                    .iter()
                    .any(|s| reseeded.contains(&(u.clone(), s.clone())))
            })
            .collect();
        missing.sort();
        missing.dedup();
        if !missing.is_empty() {
            problems.push(format!(
                "{} lost opt-out(s) not re-seeded: {}",
                missing.len(),
                missing.join(" ")
            ));
        }
        if !problems.is_empty() {
            row.status = "problem".into();
            row.problems = problems.join("; ");
        }
        report.rows.push(row);
    }
    Ok(report)
}

/// `${C_X_SERVICE_SID}` resolved from the journal's captures; other text as is.
fn resolve_captured(text: &str, entries: &[Entry]) -> String {
    let captured: BTreeMap<&str, &str> = entries
        .iter()
        .flat_map(|e| e.captured.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect();
    super::plan::substitute(text, &|n| captured.get(n).map(|v| v.to_string()))
        .unwrap_or_else(|_| text.to_string())
}

/// Whether the customer's new service has the parent service's inbound settings.
fn settings_problem(
    plan: &LoadedPlan,
    number: &PlanNumber,
    add_url: &str,
    mg: &str,
    services: &HashMap<&str, &Value>,
) -> Option<String> {
    // The create step whose captured variable the add-to-service URL uses.
    let create = plan.plan.steps.iter().find(|s| {
        s.kind == StepKind::CreateMessagingService
            && s.captures
                .iter()
                .any(|c| add_url.contains(&format!("${{{}}}", c.variable)))
    })?;
    let source = create
        .source_service_sid
        .clone()
        .or_else(|| number.messaging_service_sids.first().cloned())?;
    let Some(new) = services.get(mg) else {
        return Some(format!(
            "its Messaging Service {mg} is not in the snapshot (pull after the apply, with this version)"
        ));
    };
    let Some(old) = services.get(source.as_str()) else {
        return Some(format!(
            "the parent's service {source} is not in the snapshot: cannot compare inbound settings"
        ));
    };
    let differ: Vec<String> = INBOUND_SETTINGS
        .iter()
        .filter(|k| norm(new.get(**k)) != norm(old.get(**k)))
        .map(|k| {
            format!(
                "{k} {} (parent's service {source}: {})",
                show(new.get(*k)),
                show(old.get(*k))
            )
        })
        .collect();
    (!differ.is_empty()).then(|| format!("service {mg} differs: {}", differ.join(", ")))
}

/// Unset, null and empty text are the same setting.
fn norm(v: Option<&Value>) -> Option<&Value> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        other => other,
    }
}

fn show(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "unset".into(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(other) => other.to_string(),
    }
}
