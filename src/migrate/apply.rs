//! Runs a plan's steps against Twilio, journaled and resumable (docs/migration.md).
//!
//! Every write is preceded by a read of the state it would change (a rerun skips what is
//! already so), sent once, and after an answer that leaves its effect in doubt (5xx, timeout,
//! dropped connection) the state is read back before anything is sent again. Customers run in
//! order; one stops at its first failure, the others go on.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use url::Url;

use super::journal::{Entry, ItemResult, Journal, JournalRequest, Status};
use super::plan::{is_secret_var, journal_path, substitute, Auth, LoadedPlan, PlanStep, StepKind};
use crate::client::{Client, Credentials, Product, WriteOutcome};
use crate::error::{Error, Result};

/// Consents Bulk: at most this many items a request and requests a minute per account.
pub const CONSENTS_BATCH: usize = 25;
pub const CONSENTS_PER_MINUTE: usize = 100;
/// Sends of one write whose effect the state shows did not happen, before giving up.
const MAX_UNKNOWN: u32 = 5;
/// 429 answers to one write before giving up.
const MAX_THROTTLED: u32 = 30;

#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Customers to run (name, case-insensitive, or key); empty: all.
    pub customers: Vec<String>,
    pub dry_run: bool,
    /// `--set NAME=VALUE`: placeholder values (wins over captured values and the environment).
    pub sets: BTreeMap<String, String>,
    /// First wait after a 429 or an uncertain write; doubles per attempt, up to 30 s.
    pub retry_base: Duration,
    pub quiet: bool,
}

/// How one customer's part ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Work left for blockers or missing placeholders; nothing failed.
    Left(Vec<String>),
    /// A request failed or the state was not the plan's: the customer stopped.
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct CustomerReport {
    pub customer: String,
    pub key: String,
    pub steps: usize,
    pub done: usize,
    pub skipped: usize,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    pub customers: Vec<CustomerReport>,
}

impl ApplyReport {
    /// 0 every selected customer done; 3 work left, nothing failed; 1 a request failed.
    pub fn exit_code(&self) -> i32 {
        if self
            .customers
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Failed(_)))
        {
            crate::exit_code::RUNTIME
        } else if self
            .customers
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Left(_)))
        {
            super::EXIT_WORK_LEFT
        } else {
            crate::exit_code::OK
        }
    }
}

/// Why a step did not complete.
#[derive(Debug)]
enum StepError {
    /// Twilio refused, or kept failing: the customer stops (exit 1).
    Failed {
        message: String,
        http_status: Option<u16>,
        code: Option<i64>,
    },
    /// The account is not as the plan found it: the customer stops (exit 1).
    Changed(String),
    /// Placeholders without a value: work left (exit 3).
    Missing(Vec<String>),
}

impl StepError {
    fn failed(message: impl Into<String>) -> StepError {
        StepError::Failed {
            message: message.into(),
            http_status: None,
            code: None,
        }
    }
}

impl From<crate::client::ApiError> for StepError {
    fn from(e: crate::client::ApiError) -> Self {
        StepError::Failed {
            message: e.message,
            http_status: e.status,
            code: e.code,
        }
    }
}

/// A step that completed: sent (`Done`) or found already so (`Skipped`).
struct StepOk {
    status: Status,
    note: Option<String>,
    captured: BTreeMap<String, String>,
    http_status: Option<u16>,
}

/// One write request and how to learn its effect when its answer is lost.
struct Write<'a> {
    client: &'a Client,
    method: Method,
    url: &'a Url,
    form: &'a [(String, String)],
    read_back: ReadBack,
}

/// How to learn whether a write whose answer was lost took effect.
enum ReadBack {
    /// It did when this resource exists.
    Exists(Client, Url),
    /// It did when this number is no longer in this service.
    NotInService(Client, String, String),
    /// It did when the number is in this service.
    InService(Client, String, String),
    /// A subaccount of this name exists.
    SubaccountNamed(String),
    /// A service of this name exists in the account, other than those listed (the ones that
    /// were there before the write: a same-named service of the customer's is not ours).
    ServiceNamed(Client, String, HashSet<String>),
    /// No API reads it back, and sending it again sets the same state (Consents).
    Resend,
}

/// Validates the selection and runs the plan. The caller has checked nothing: this refuses a
/// plan of another parent and a journal of another plan (exit 2) before sending anything.
pub fn apply(plan: &LoadedPlan, client: Client, options: &ApplyOptions) -> Result<ApplyReport> {
    let parent = &plan.plan.parent_account_sid;
    if &client.credentials().account_sid != parent {
        return Err(Error::Input(format!(
            "{}: the plan is for the parent account {parent}, but the credentials are for {}: use the parent's credentials (TWILIO_ACCOUNT_SID)",
            plan.path.display(),
            client.credentials().account_sid
        )));
    }
    let selected = select_customers(plan, &options.customers)?;
    let path = journal_path(&plan.path);
    let journal = if options.dry_run {
        Journal::read(&path, &plan.fingerprint)?
    } else {
        Some(Journal::open(&path, &plan.fingerprint, parent)?)
    };
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Error::Runtime(format!("cannot start the async runtime: {e}")))?;
    let mut runner = Runner::new(plan, client, journal, options, &selected);
    runtime.block_on(async {
        let mut report = ApplyReport::default();
        for (key, name) in &selected {
            let outcome = runner.run_customer(key, name).await?;
            report.customers.push(outcome);
        }
        Ok(report)
    })
}

/// `(key, name)` of the customers to run, in the plan's order.
fn select_customers(plan: &LoadedPlan, wanted: &[String]) -> Result<Vec<(String, String)>> {
    let all = plan.customer_keys();
    if wanted.is_empty() {
        return Ok(all);
    }
    let mut unknown = Vec::new();
    let mut picked: HashSet<String> = HashSet::new();
    for w in wanted {
        let w = w.trim();
        match all
            .iter()
            .find(|(k, n)| k == w || n.trim().eq_ignore_ascii_case(w))
        {
            Some((k, _)) => {
                picked.insert(k.clone());
            }
            None => unknown.push(w.to_string()),
        }
    }
    if !unknown.is_empty() {
        let names: Vec<&str> = all.iter().map(|(_, n)| n.as_str()).collect();
        return Err(Error::Input(format!(
            "--customer {}: not in the plan; its customers are: {}",
            unknown.join(", "),
            names.join(", ")
        )));
    }
    Ok(all
        .into_iter()
        .filter(|(k, _)| picked.contains(k))
        .collect())
}

struct Runner<'a> {
    plan: &'a LoadedPlan,
    parent: Client,
    journal: Option<Journal>,
    options: &'a ApplyOptions,
    /// Sids captured by steps (this run's and the journal's).
    captured: BTreeMap<String, String>,
    /// Auth tokens, in memory only.
    secrets: HashMap<String, String>,
    sub_clients: HashMap<String, Client>,
    /// Consents requests in the last minute, per account.
    consents_sent: HashMap<String, VecDeque<Instant>>,
    /// Every variable some step captures.
    capturable: HashSet<String>,
    progress: Progress,
}

impl<'a> Runner<'a> {
    fn new(
        plan: &'a LoadedPlan,
        parent: Client,
        journal: Option<Journal>,
        options: &'a ApplyOptions,
        selected: &[(String, String)],
    ) -> Runner<'a> {
        let captured = journal.as_ref().map(Journal::captured).unwrap_or_default();
        let capturable = plan
            .plan
            .steps
            .iter()
            .flat_map(|s| s.captures.iter().map(|c| c.variable.clone()))
            .collect();
        let keys: HashSet<&str> = selected.iter().map(|(k, _)| k.as_str()).collect();
        let mut remaining_writes = 0usize;
        let mut remaining_batches = 0usize;
        for s in plan
            .plan
            .steps
            .iter()
            .filter(|s| keys.contains(s.customer_key.as_str()))
        {
            let settled = journal
                .as_ref()
                .is_some_and(|j| j.settled(s.order, None).is_some());
            if settled {
                continue;
            }
            if s.kind == StepKind::ReseedOptOuts {
                remaining_batches += plan
                    .reseed_items(s)
                    .map(|i| i.len().div_ceil(CONSENTS_BATCH))
                    .unwrap_or(0);
            } else {
                remaining_writes += 1;
            }
        }
        Runner {
            plan,
            parent,
            journal,
            options,
            captured,
            secrets: HashMap::new(),
            sub_clients: HashMap::new(),
            consents_sent: HashMap::new(),
            capturable,
            progress: Progress::new(options.quiet, remaining_writes, remaining_batches),
        }
    }

    /// A placeholder's value: --set, then captured, then the environment.
    fn value(&self, name: &str) -> Option<String> {
        if let Some(v) = self.options.sets.get(name) {
            return Some(v.clone());
        }
        if let Some(v) = self.captured.get(name).or_else(|| self.secrets.get(name)) {
            return Some(v.clone());
        }
        if name.starts_with("C_") {
            return std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        }
        None
    }

    fn resolve(&self, text: &str) -> std::result::Result<String, StepError> {
        substitute(text, &|n| self.value(n)).map_err(StepError::Missing)
    }

    /// The text with secrets left as `${NAME}`, for the journal and the terminal.
    fn shown(&self, text: &str) -> String {
        substitute(text, &|n| {
            if is_secret_var(n) {
                None
            } else {
                self.value(n)
            }
        })
        .unwrap_or_else(|_| text.to_string())
    }

    fn url(&self, text: &str) -> std::result::Result<Url, StepError> {
        let resolved = self.resolve(text)?;
        rebase(&self.parent, &resolved).map_err(StepError::failed)
    }

    async fn run_customer(&mut self, key: &str, name: &str) -> Result<CustomerReport> {
        let steps: Vec<PlanStep> = self
            .plan
            .plan
            .steps
            .iter()
            .filter(|s| s.customer_key == key)
            .cloned()
            .collect();
        let mut report = CustomerReport {
            customer: name.to_string(),
            key: key.to_string(),
            steps: steps.len(),
            done: 0,
            skipped: 0,
            outcome: Outcome::Done,
        };
        let mut left: Vec<String> = self
            .plan
            .plan
            .numbers
            .iter()
            .filter(|n| n.blocked && n.target_customer.as_deref() == Some(name))
            .map(|n| format!("{} is blocked (see the plan's findings)", n.phone_number))
            .collect();
        let held = self.held_numbers(&steps);
        for (number, missing) in &held {
            left.push(format!(
                "{number}: set {} (--set NAME=VALUE or the environment) to move it",
                missing.join(", ")
            ));
        }
        let held_phones: HashSet<String> = steps
            .iter()
            .filter(|s| s.number_sid.as_ref().is_some_and(|n| held.contains_key(n)))
            .filter_map(|s| s.phone_number.clone())
            .collect();
        let total = steps.len();
        for (i, step) in steps.iter().enumerate() {
            if step
                .number_sid
                .as_ref()
                .is_some_and(|n| held.contains_key(n))
                || (step.kind == StepKind::ReseedOptOuts
                    && self.reseed_sender_held(step, &held_phones))
            {
                continue;
            }
            if self.options.dry_run {
                self.print_dry_run(step)?;
                continue;
            }
            let already = self
                .journal
                .as_ref()
                .and_then(|j| j.settled(step.order, None))
                .is_some();
            if already {
                report.skipped += 1;
                continue;
            }
            let started = Instant::now();
            match self.run_step(step).await? {
                Ok(ok) => {
                    let counted_done = ok.status == Status::Done;
                    self.progress
                        .step(name, i + 1, total, step, ok.note.as_deref(), started);
                    let entry = self.entry(
                        step,
                        None,
                        ok.status,
                        None,
                        ok.http_status,
                        None,
                        ok.captured,
                        ok.note,
                    );
                    self.append(entry)?;
                    if counted_done {
                        report.done += 1;
                    } else {
                        report.skipped += 1;
                    }
                }
                Err(StepError::Missing(names)) => {
                    left.push(format!(
                        "step {} ({}) needs {}: pass --set NAME=VALUE or set them in the environment",
                        step.order,
                        step.kind.as_str(),
                        names.join(", ")
                    ));
                    self.progress.stopped(name, &left_steps(&steps[i..]));
                    report.outcome = Outcome::Left(left);
                    return Ok(report);
                }
                Err(error) => {
                    let (message, http_status, code) = match error {
                        StepError::Failed {
                            message,
                            http_status,
                            code,
                        } => (message, http_status, code),
                        StepError::Changed(m) => (m, None, None),
                        StepError::Missing(_) => unreachable!("handled above"),
                    };
                    let entry = self.entry(
                        step,
                        None,
                        Status::Failed,
                        Some(message.clone()),
                        http_status,
                        code,
                        BTreeMap::new(),
                        None,
                    );
                    self.append(entry)?;
                    let text = format!(
                        "step {} ({}{}) failed: {message}; {}",
                        step.order,
                        step.kind.as_str(),
                        step.phone_number
                            .as_deref()
                            .map(|p| format!(", {p}"))
                            .unwrap_or_default(),
                        left_steps(&steps[i..])
                    );
                    self.progress.failed(name, &text);
                    report.outcome = Outcome::Failed(text);
                    return Ok(report);
                }
            }
        }
        if !left.is_empty() {
            self.progress.stopped(name, &left.join("; "));
            report.outcome = Outcome::Left(left);
        } else {
            self.progress
                .customer_done(name, report.done, report.skipped);
        }
        Ok(report)
    }

    /// Numbers whose steps need a value nobody captures and nobody gave (a bundle sid...):
    /// they are left whole, before any of their steps runs (a number removed from its service
    /// and then not moved would sit in the parent outside any service).
    fn held_numbers(&self, steps: &[PlanStep]) -> BTreeMap<String, Vec<String>> {
        let mut held: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for step in steps {
            let Some(number) = &step.number_sid else {
                continue;
            };
            for name in step.placeholders() {
                if self.capturable.contains(&name)
                    || name.ends_with("_AUTH_TOKEN")
                    || self.value(&name).is_some()
                {
                    continue;
                }
                let names = held.entry(number.clone()).or_default();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        held
    }

    fn reseed_sender_held(&self, step: &PlanStep, held_phones: &HashSet<String>) -> bool {
        if held_phones.is_empty() {
            return false;
        }
        self.plan
            .reseed_items(step)
            .ok()
            .and_then(|items| items.first().cloned())
            .and_then(|first| serde_json::from_str::<Value>(&first).ok())
            .and_then(|v| v.get("sender_id").and_then(Value::as_str).map(String::from))
            .is_some_and(|sender| held_phones.contains(&sender))
    }

    fn print_dry_run(&self, step: &PlanStep) -> Result<()> {
        let mut out = format!(
            "step {} {} [{}] {} {}",
            step.order,
            step.kind.as_str(),
            step.customer,
            step.request.method,
            rebase_text(&self.parent, &self.shown(&step.request.url))
        );
        if step.kind == StepKind::ReseedOptOuts {
            let items = self.plan.reseed_items(step)?;
            out.push_str(&format!(
                " ({} items in {} requests of at most {CONSENTS_BATCH})",
                items.len(),
                items.len().div_ceil(CONSENTS_BATCH)
            ));
        } else {
            for f in &step.request.form {
                out.push_str(&format!(" {}={}", f.name, self.shown(&f.value)));
            }
        }
        let done = self
            .journal
            .as_ref()
            .and_then(|j| j.settled(step.order, None))
            .is_some();
        if done {
            out.push_str(" (done per the journal)");
        }
        println!("{out}");
        Ok(())
    }

    /// A journal entry of `step` (its request shown without secrets; secret captures left out).
    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        step: &PlanStep,
        batch: Option<usize>,
        status: Status,
        error_message: Option<String>,
        http_status: Option<u16>,
        error_code: Option<i64>,
        captured: BTreeMap<String, String>,
        note: Option<String>,
    ) -> Entry {
        let request = (step.kind != StepKind::ReseedOptOuts).then(|| JournalRequest {
            method: step.request.method.clone(),
            url: self.shown(&step.request.url),
            form: step
                .request
                .form
                .iter()
                .map(|f| (f.name.clone(), self.shown(&f.value)))
                .collect(),
        });
        let captured: BTreeMap<String, String> = captured
            .into_iter()
            .filter(|(k, _)| !is_secret_var(k))
            .collect();
        for (k, v) in &captured {
            self.captured.insert(k.clone(), v.clone());
        }
        Entry {
            time: super::journal::now(),
            order: step.order,
            kind: step.kind,
            customer: step.customer.clone(),
            customer_key: step.customer_key.clone(),
            number_sid: step.number_sid.clone(),
            batch,
            status,
            request,
            http_status,
            error_code,
            error_message,
            captured,
            note,
            items: Vec::new(),
            existed: Vec::new(),
        }
    }

    fn append(&mut self, entry: Entry) -> Result<()> {
        match self.journal.as_mut() {
            Some(j) => j.append(entry),
            None => Ok(()),
        }
    }

    fn journal_sending(&self, order: usize, batch: Option<usize>) -> bool {
        self.journal
            .as_ref()
            .is_some_and(|j| j.was_sending(order, batch))
    }

    async fn run_step(
        &mut self,
        step: &PlanStep,
    ) -> Result<std::result::Result<StepOk, StepError>> {
        let result = match step.kind {
            StepKind::CreateSubaccount => self.create_subaccount(step).await,
            StepKind::RemoveFromService => self.remove_from_service(step).await,
            StepKind::TransferNumber => self.transfer_number(step).await,
            StepKind::CreateMessagingService => self.create_service(step).await,
            StepKind::AddToService => self.add_to_service(step).await,
            StepKind::ReseedOptOuts => return self.reseed(step).await,
        };
        Ok(result)
    }

    /// The form with placeholders resolved.
    fn form(&self, step: &PlanStep) -> std::result::Result<Vec<(String, String)>, StepError> {
        step.request
            .form
            .iter()
            .map(|f| Ok((f.name.clone(), self.resolve(&f.value)?)))
            .collect()
    }

    /// The one write of a single-request step ([`Runner::write`]); a journal that cannot be
    /// written stops the customer like a failed request.
    async fn write_step(
        &mut self,
        step: &PlanStep,
        request: Write<'_>,
    ) -> std::result::Result<(Value, Option<String>, Option<u16>), StepError> {
        self.write(step, None, request)
            .await
            .map_err(|e| StepError::failed(e.to_string()))?
    }

    /// Writes `Sending` to the journal, then the request, with read-back after doubt.
    async fn write(
        &mut self,
        step: &PlanStep,
        batch: Option<usize>,
        request: Write<'_>,
    ) -> Result<std::result::Result<(Value, Option<String>, Option<u16>), StepError>> {
        let Write {
            client,
            method,
            url,
            form,
            read_back,
        } = request;
        if batch.is_none() {
            let mut sending = self.entry(
                step,
                None,
                Status::Sending,
                None,
                None,
                None,
                BTreeMap::new(),
                None,
            );
            if let ReadBack::ServiceNamed(_, _, before) = &read_back {
                sending.existed = before.iter().cloned().collect();
                sending.existed.sort();
            }
            self.append(sending)?;
        }
        let mut unknown = 0u32;
        let mut throttled = 0u32;
        loop {
            match client.write_once(method.clone(), url, form).await {
                WriteOutcome::Done(v) => {
                    let sent = unknown + throttled + 1;
                    let why = if unknown == 0 {
                        "earlier ones throttled (429: not processed)"
                    } else if matches!(read_back, ReadBack::Resend) {
                        "earlier answers lost or throttled; Consents cannot be read back, and the same items sent again set the same state"
                    } else {
                        "earlier answers lost or throttled; the state read back showed no effect"
                    };
                    let note = (sent > 1).then(|| format!("sent {sent} times ({why})"));
                    return Ok(Ok((v, note, None)));
                }
                WriteOutcome::Refused(e) => return Ok(Err(e.into())),
                WriteOutcome::Throttled { retry_after } => {
                    throttled += 1;
                    if throttled > MAX_THROTTLED {
                        return Ok(Err(StepError::failed(format!(
                            "{method} {url}: Twilio kept answering 429 (too many requests); run the same command again later, it resumes"
                        ))));
                    }
                    let wait = retry_after.unwrap_or_else(|| self.backoff(throttled));
                    tokio::time::sleep(wait).await;
                }
                WriteOutcome::Unknown(reason) => {
                    unknown += 1;
                    match self.read_back(&read_back).await {
                        Ok(Some(v)) => {
                            return Ok(Ok((
                                v,
                                Some(format!(
                                    "the answer was lost ({reason}); the state read back shows the write took effect"
                                )),
                                None,
                            )))
                        }
                        Ok(None) => {}
                        Err(e) => return Ok(Err(e)),
                    }
                    if unknown >= MAX_UNKNOWN {
                        let state = if matches!(read_back, ReadBack::Resend) {
                            "it may have taken effect (Consents cannot be read back); the same items sent again set the same state"
                        } else {
                            "the state read back shows it did not take effect"
                        };
                        return Ok(Err(StepError::failed(format!(
                            "{method} {url} failed {unknown} times (last: {reason}); {state}; run the same command again later, it resumes"
                        ))));
                    }
                    tokio::time::sleep(self.backoff(unknown)).await;
                }
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.options
            .retry_base
            .saturating_mul(1u32 << attempt.min(10))
            .min(Duration::from_secs(30))
    }

    /// `Some(value)` when the write is found to have taken effect.
    async fn read_back(&self, how: &ReadBack) -> std::result::Result<Option<Value>, StepError> {
        match how {
            ReadBack::Exists(client, url) => Ok(client.get_optional(url).await?),
            ReadBack::NotInService(client, mg, pn) => {
                Ok((!in_service(client, mg, pn).await?).then_some(Value::Null))
            }
            ReadBack::InService(client, mg, pn) => {
                Ok(in_service(client, mg, pn).await?.then_some(Value::Null))
            }
            ReadBack::SubaccountNamed(name) => self.find_subaccount(name).await,
            ReadBack::ServiceNamed(client, name, before) => {
                find_service(client, name, before).await
            }
            ReadBack::Resend => Ok(None),
        }
    }

    /// The parent's one open subaccount of this friendly name; several are an error.
    async fn find_subaccount(&self, name: &str) -> std::result::Result<Option<Value>, StepError> {
        let mut url = self.parent.url(Product::Api, "/2010-04-01/Accounts.json");
        url.query_pairs_mut()
            .append_pair("FriendlyName", name)
            .append_pair("PageSize", "1000");
        let parent = &self.plan.plan.parent_account_sid;
        let found: Vec<Value> = self
            .parent
            .pages(url, "accounts")
            .collect_all()
            .await?
            .into_iter()
            .filter(|a| {
                let text = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or_default();
                text("friendly_name") == name
                    && text("sid") != parent
                    && text("owner_account_sid") == parent
                    && text("status") != "closed"
            })
            .collect();
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.into_iter().next()),
            _ => {
                let sids: Vec<&str> = found
                    .iter()
                    .filter_map(|a| a.get("sid").and_then(Value::as_str))
                    .collect();
                Err(StepError::Changed(format!(
                    "several subaccounts are named {name:?} ({}): pick one with --set <KEY>_ACCOUNT_SID=AC...",
                    sids.join(", ")
                )))
            }
        }
    }

    async fn create_subaccount(
        &mut self,
        step: &PlanStep,
    ) -> std::result::Result<StepOk, StepError> {
        let sid_var = step
            .capture("sid")
            .map(String::from)
            .unwrap_or_else(|| format!("{}_ACCOUNT_SID", step.customer_key));
        let token_var = step
            .capture("auth_token")
            .map(String::from)
            .unwrap_or_else(|| format!("{}_AUTH_TOKEN", step.customer_key));
        if let Some(sid) = self.value(&sid_var) {
            return Ok(skipped(
                format!("the subaccount {sid} is given ({sid_var}): not created"),
                [(sid_var, sid)],
            ));
        }
        let name = self.resolve(step.form_value("FriendlyName").unwrap_or(&step.customer))?;
        if let Some(existing) = self.find_subaccount(&name).await? {
            let sid = text_field(&existing, "sid");
            if let Some(token) = existing.get("auth_token").and_then(Value::as_str) {
                self.secrets.insert(token_var, token.to_string());
            }
            return Ok(skipped(
                format!("a subaccount named {name:?} exists ({sid}): reused, not created again"),
                [(sid_var, sid)],
            ));
        }
        let url = self.url(&step.request.url)?;
        let form = self.form(step)?;
        let parent = self.parent.clone();
        let (v, note, status) = self
            .write_step(
                step,
                Write {
                    client: &parent,
                    method: Method::POST,
                    url: &url,
                    form: &form,
                    read_back: ReadBack::SubaccountNamed(name),
                },
            )
            .await?;
        let sid = text_field(&v, "sid");
        if !crate::sid::is_sid(&sid, "AC") {
            return Err(StepError::failed(format!(
                "the create-subaccount response holds no account sid ({url})"
            )));
        }
        if let Some(token) = v.get("auth_token").and_then(Value::as_str) {
            self.secrets.insert(token_var, token.to_string());
        }
        Ok(done(note, status, [(sid_var, sid)]))
    }

    async fn remove_from_service(
        &mut self,
        step: &PlanStep,
    ) -> std::result::Result<StepOk, StepError> {
        let url = self.url(&step.request.url)?;
        let (mg, pn) = service_and_number(&url)?;
        let parent = self.parent.clone();
        if !in_service(&parent, &mg, &pn).await? {
            if self.journal_sending(step.order, None) {
                return Ok(skipped(
                    format!("{pn} is no longer in {mg}: an earlier run's request took effect"),
                    [],
                ));
            }
            return Err(StepError::Changed(format!(
                "{} is no longer in the Messaging Service {mg}, where the plan found it: someone changed the account since the snapshot; take a new snapshot and plan",
                step.phone_number.as_deref().unwrap_or(&pn)
            )));
        }
        let read_back = ReadBack::NotInService(parent.clone(), mg, pn);
        let (_, note, status) = self
            .write_step(
                step,
                Write {
                    client: &parent,
                    method: Method::DELETE,
                    url: &url,
                    form: &[],
                    read_back,
                },
            )
            .await?;
        Ok(done(note, status, []))
    }

    async fn transfer_number(&mut self, step: &PlanStep) -> std::result::Result<StepOk, StepError> {
        let url = self.url(&step.request.url)?;
        let form = self.form(step)?;
        let target = form
            .iter()
            .find(|(n, _)| n == "AccountSid")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| StepError::failed("the transfer step has no AccountSid"))?;
        let pn = step
            .number_sid
            .clone()
            .ok_or_else(|| StepError::failed("the transfer step names no number"))?;
        let parent_sid = self.plan.plan.parent_account_sid.clone();
        let in_target = self.parent.url(
            Product::Api,
            &format!("/2010-04-01/Accounts/{target}/IncomingPhoneNumbers/{pn}.json"),
        );
        if self.parent.get_optional(&in_target).await?.is_some() {
            return Ok(skipped(format!("{pn} is already in {target}"), []));
        }
        let in_parent = self.parent.url(
            Product::Api,
            &format!("/2010-04-01/Accounts/{parent_sid}/IncomingPhoneNumbers/{pn}.json"),
        );
        let Some(now) = self.parent.get_optional(&in_parent).await? else {
            return Err(StepError::Changed(format!(
                "{} ({pn}) is no longer in the parent account {parent_sid}, nor in {target}: it was moved or released since the snapshot; take a new snapshot and plan",
                step.phone_number.as_deref().unwrap_or_default()
            )));
        };
        let account = text_field(&now, "account_sid");
        if !account.is_empty() && account != parent_sid {
            return Err(StepError::Changed(format!(
                "{pn} belongs to {account} now, not to the parent {parent_sid} where the plan found it"
            )));
        }
        // The plan removed it from the parent's services first; a service membership left
        // now means the account changed since the snapshot (a number is in one service only).
        let services: Vec<String> = self
            .plan
            .plan
            .numbers
            .iter()
            .find(|n| n.number_sid == pn)
            .map(|n| n.messaging_service_sids.clone())
            .unwrap_or_default();
        for mg in services {
            if in_service(&self.parent, &mg, &pn).await? {
                return Err(StepError::Changed(format!(
                    "{pn} is still in the parent's Messaging Service {mg}: its remove-from-service step did not run or was undone"
                )));
            }
        }
        let parent = self.parent.clone();
        let (_, note, status) = self
            .write_step(
                step,
                Write {
                    client: &parent,
                    method: Method::POST,
                    url: &url,
                    form: &form,
                    read_back: ReadBack::Exists(parent.clone(), in_target),
                },
            )
            .await?;
        Ok(done(note, status, []))
    }

    /// The customer's subaccount client (its own sid and auth token; the token is read with
    /// the parent's credentials when this run did not create the subaccount).
    async fn subaccount(&mut self, step: &PlanStep) -> std::result::Result<Client, StepError> {
        let key = &step.customer_key;
        let sid = self
            .value(&format!("{key}_ACCOUNT_SID"))
            .or_else(|| {
                self.plan
                    .plan
                    .customers
                    .iter()
                    .find(|c| &c.key == key)
                    .and_then(|c| c.account_sid.clone())
            })
            .ok_or_else(|| StepError::Missing(vec![format!("{key}_ACCOUNT_SID")]))?;
        if let Some(c) = self.sub_clients.get(&sid) {
            return Ok(c.clone());
        }
        let token_var = format!("{key}_AUTH_TOKEN");
        let token = match self.value(&token_var) {
            Some(t) => t,
            None => {
                let url = self
                    .parent
                    .url(Product::Api, &format!("/2010-04-01/Accounts/{sid}.json"));
                let account = self.parent.get_json(&url).await?;
                let token = account
                    .get("auth_token")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        StepError::failed(format!(
                            "GET /2010-04-01/Accounts/{sid}.json holds no auth_token: set {token_var} in the environment"
                        ))
                    })?
                    .to_string();
                self.secrets.insert(token_var, token.clone());
                token
            }
        };
        let client = self
            .parent
            .with_credentials(Credentials::for_account(&sid, &token));
        self.sub_clients.insert(sid, client.clone());
        Ok(client)
    }

    async fn client_for(&mut self, step: &PlanStep) -> std::result::Result<Client, StepError> {
        match step.request.auth {
            Auth::Parent => Ok(self.parent.clone()),
            Auth::Subaccount => self.subaccount(step).await,
        }
    }

    async fn create_service(&mut self, step: &PlanStep) -> std::result::Result<StepOk, StepError> {
        let sid_var = step
            .capture("sid")
            .map(String::from)
            .unwrap_or_else(|| format!("{}_SERVICE_SID", step.customer_key));
        if let Some(sid) = self.value(&sid_var) {
            return Ok(skipped(
                format!("the service {sid} is known ({sid_var}): not created"),
                [(sid_var, sid)],
            ));
        }
        let client = self.client_for(step).await?;
        let name = self.resolve(step.form_value("FriendlyName").unwrap_or(&step.customer))?;
        // Only a service this journal was creating is adopted: a same-named service the
        // customer had before is theirs, not ours.
        let sending = self
            .journal
            .as_ref()
            .and_then(|j| j.sending(step.order, None));
        if let Some(existed) = sending.map(|e| e.existed.iter().cloned().collect::<HashSet<_>>()) {
            if let Some(found) = find_service(&client, &name, &existed).await? {
                let sid = text_field(&found, "sid");
                return Ok(skipped(
                    format!("an earlier run created the service {sid}: reused"),
                    [(sid_var, sid)],
                ));
            }
        }
        let url = self.url(&step.request.url)?;
        let form = self.form(step)?;
        let before = services_named(&client, &name)
            .await?
            .iter()
            .map(|s| text_field(s, "sid"))
            .collect();
        let (v, note, status) = self
            .write_step(
                step,
                Write {
                    client: &client,
                    method: Method::POST,
                    url: &url,
                    form: &form,
                    read_back: ReadBack::ServiceNamed(client.clone(), name, before),
                },
            )
            .await?;
        let sid = text_field(&v, "sid");
        if !crate::sid::is_sid(&sid, "MG") {
            return Err(StepError::failed(format!(
                "the create-messaging-service response holds no service sid ({url})"
            )));
        }
        Ok(done(note, status, [(sid_var, sid)]))
    }

    async fn add_to_service(&mut self, step: &PlanStep) -> std::result::Result<StepOk, StepError> {
        let url = self.url(&step.request.url)?;
        let form = self.form(step)?;
        let client = self.client_for(step).await?;
        let mg = url
            .path_segments()
            .and_then(|mut s| s.nth(2).map(String::from))
            .unwrap_or_default();
        let pn = form
            .iter()
            .find(|(n, _)| n == "PhoneNumberSid")
            .map(|(_, v)| v.clone())
            .or_else(|| step.number_sid.clone())
            .unwrap_or_default();
        if in_service(&client, &mg, &pn).await? {
            return Ok(skipped(format!("{pn} is already in {mg}"), []));
        }
        let read_back = ReadBack::InService(client.clone(), mg, pn);
        let (_, note, status) = self
            .write_step(
                step,
                Write {
                    client: &client,
                    method: Method::POST,
                    url: &url,
                    form: &form,
                    read_back,
                },
            )
            .await?;
        Ok(done(note, status, []))
    }

    /// Consents Bulk, batch by batch (25 items, at most 100 requests a minute per account),
    /// each batch journaled with every item's result; batches the journal holds are skipped.
    async fn reseed(&mut self, step: &PlanStep) -> Result<std::result::Result<StepOk, StepError>> {
        let items = self.plan.reseed_items(step)?;
        let client = match self.client_for(step).await {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let account = client.credentials().account_sid.clone();
        let url = match self.url(&step.request.url) {
            Ok(u) => u,
            Err(e) => return Ok(Err(e)),
        };
        let mut failed: Vec<String> = Vec::new();
        let batches: Vec<&[String]> = items.chunks(CONSENTS_BATCH).collect();
        let total = batches.len();
        let mut sent = 0;
        for (i, batch) in batches.into_iter().enumerate() {
            let n = i + 1;
            if let Some(done) = self
                .journal
                .as_ref()
                .and_then(|j| j.settled(step.order, Some(n)))
            {
                failed.extend(item_failures(&done.items));
                continue;
            }
            let mut resolved = Vec::with_capacity(batch.len());
            for item in batch {
                match self.resolve(item) {
                    Ok(v) => resolved.push(v),
                    Err(e) => return Ok(Err(e)),
                }
            }
            let form: Vec<(String, String)> = resolved
                .iter()
                .map(|v| ("Items".to_string(), v.clone()))
                .collect();
            self.pace(&account).await;
            let answer = self
                .write(
                    step,
                    Some(n),
                    Write {
                        client: &client,
                        method: Method::POST,
                        url: &url,
                        form: &form,
                        read_back: ReadBack::Resend,
                    },
                )
                .await?;
            let (v, note, status) = match answer {
                Ok(x) => x,
                Err(e) => return Ok(Err(e)),
            };
            let results = item_results(&resolved, &v);
            let errors = item_failures(&results);
            let entry = Entry {
                time: super::journal::now(),
                order: step.order,
                kind: step.kind,
                customer: step.customer.clone(),
                customer_key: step.customer_key.clone(),
                number_sid: None,
                batch: Some(n),
                status: Status::Done,
                request: Some(JournalRequest {
                    method: step.request.method.clone(),
                    url: url.to_string(),
                    form: Vec::new(),
                }),
                http_status: status,
                error_code: None,
                error_message: None,
                captured: BTreeMap::new(),
                note,
                items: results,
                existed: Vec::new(),
            };
            self.append(entry)?;
            sent += 1;
            self.progress.batch(&step.customer, n, total);
            if !errors.is_empty() {
                return Ok(Err(StepError::failed(format!(
                    "Consents Bulk answered item errors in batch {n} of {total}: {}",
                    errors.join(", ")
                ))));
            }
        }
        if !failed.is_empty() {
            return Ok(Err(StepError::failed(format!(
                "Consents Bulk item errors recorded earlier: {}",
                failed.join(", ")
            ))));
        }
        Ok(Ok(StepOk {
            status: if sent > 0 {
                Status::Done
            } else {
                Status::Skipped
            },
            note: Some(format!("{} items in {total} requests", items.len())),
            captured: BTreeMap::new(),
            http_status: None,
        }))
    }

    /// Waits so that an account gets at most 100 Consents requests in any minute.
    async fn pace(&mut self, account: &str) {
        let sent = self.consents_sent.entry(account.to_string()).or_default();
        let minute = Duration::from_secs(60);
        while sent.front().is_some_and(|t| t.elapsed() >= minute) {
            sent.pop_front();
        }
        if sent.len() >= CONSENTS_PER_MINUTE {
            if let Some(oldest) = sent.front() {
                let wait = minute.saturating_sub(oldest.elapsed());
                if !self.options.quiet {
                    eprintln!(
                        "  Consents Bulk allows {CONSENTS_PER_MINUTE} requests a minute: waiting {}s",
                        wait.as_secs()
                    );
                }
                tokio::time::sleep(wait).await;
            }
            sent.pop_front();
        }
        sent.push_back(Instant::now());
    }
}

fn skipped<const N: usize>(note: String, captured: [(String, String); N]) -> StepOk {
    StepOk {
        status: Status::Skipped,
        note: Some(note),
        captured: captured.into_iter().collect(),
        http_status: None,
    }
}

fn done<const N: usize>(
    note: Option<String>,
    http_status: Option<u16>,
    captured: [(String, String); N],
) -> StepOk {
    StepOk {
        status: Status::Done,
        note,
        captured: captured.into_iter().collect(),
        http_status,
    }
}

fn text_field(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn left_steps(rest: &[PlanStep]) -> String {
    match (rest.first(), rest.last()) {
        (Some(a), Some(b)) if rest.len() > 1 => {
            format!("{} steps left ({}..{})", rest.len(), a.order, b.order)
        }
        (Some(a), _) => format!("1 step left ({})", a.order),
        _ => "no steps left".into(),
    }
}

/// The plan's URL (`https://api.twilio.com/...`) on the client's hosts (region, edge, or
/// `--twilio-base-url`).
pub fn rebase(client: &Client, text: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    let label = url
        .host_str()
        .and_then(|h| h.split('.').next())
        .unwrap_or_default();
    let product = match label {
        "api" => Product::Api,
        "messaging" => Product::Messaging,
        "accounts" => Product::Accounts,
        other => return Err(format!("{text}: unknown Twilio host {other:?}")),
    };
    let mut out = client.url(product, url.path());
    out.set_query(url.query());
    Ok(out)
}

/// Like [`rebase`], on text that may still hold `${NAME}` placeholders (for display).
fn rebase_text(client: &Client, text: &str) -> String {
    let Some(rest) = text.split_once("://").map(|(_, r)| r) else {
        return text.to_string();
    };
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let product = match host.split('.').next().unwrap_or_default() {
        "api" => Product::Api,
        "messaging" => Product::Messaging,
        "accounts" => Product::Accounts,
        _ => return text.to_string(),
    };
    format!("{}{path}", client.hosts().origin(product))
}

/// `(MG, PN)` of `/v1/Services/{MG}/PhoneNumbers/{PN}`.
fn service_and_number(url: &Url) -> std::result::Result<(String, String), StepError> {
    let segs: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
    match segs.as_slice() {
        ["v1", "Services", mg, "PhoneNumbers", pn] => Ok((mg.to_string(), pn.to_string())),
        _ => Err(StepError::failed(format!(
            "{url}: not a service's phone number"
        ))),
    }
}

/// Whether the number is in the service now.
async fn in_service(client: &Client, mg: &str, pn: &str) -> std::result::Result<bool, StepError> {
    let url = client.url(
        Product::Messaging,
        &format!("/v1/Services/{mg}/PhoneNumbers/{pn}"),
    );
    Ok(client.get_optional(&url).await?.is_some())
}

/// The account's service of this friendly name (the newest when several), leaving out `except`.
async fn find_service(
    client: &Client,
    name: &str,
    except: &HashSet<String>,
) -> std::result::Result<Option<Value>, StepError> {
    Ok(services_named(client, name)
        .await?
        .into_iter()
        .filter(|s| !except.contains(&text_field(s, "sid")))
        .max_by_key(|s| {
            s.get("date_created")
                .and_then(Value::as_str)
                .and_then(crate::time::parse_twilio_time)
        }))
}

/// The account's Messaging Services of this friendly name.
async fn services_named(client: &Client, name: &str) -> std::result::Result<Vec<Value>, StepError> {
    let mut url = client.url(Product::Messaging, "/v1/Services");
    url.query_pairs_mut().append_pair("PageSize", "1000");
    let services = client.pages(url, "services").collect_all().await?;
    Ok(services
        .into_iter()
        .filter(|s| s.get("friendly_name").and_then(Value::as_str) == Some(name))
        .collect())
}

/// Each item's result, matched by `correlation_id`.
fn item_results(items: &[String], response: &Value) -> Vec<ItemResult> {
    let answers: HashMap<String, Option<i64>> = response
        .get("items")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| {
                    let id = r.get("correlation_id")?.as_str()?.to_string();
                    Some((id, r.get("error_code").and_then(Value::as_i64)))
                })
                .collect()
        })
        .unwrap_or_default();
    items
        .iter()
        .map(|text| {
            let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            let correlation_id = text_field(&v, "correlation_id");
            ItemResult {
                contact_id: text_field(&v, "contact_id"),
                sender_id: text_field(&v, "sender_id"),
                error_code: answers.get(&correlation_id).copied().flatten(),
                correlation_id,
            }
        })
        .collect()
}

/// `contact (error N)` for every item that did not succeed.
fn item_failures(results: &[ItemResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| r.error_code != Some(0))
        .map(|r| match r.error_code {
            Some(code) => format!("{} (error {code})", r.contact_id),
            None => format!("{} (no result in the response)", r.contact_id),
        })
        .collect()
}

/// Progress on stderr: steps done per customer, with an estimate that knows the Consents
/// rate limit.
struct Progress {
    quiet: bool,
    started: Instant,
    writes_left: usize,
    batches_left: usize,
    write_time: Duration,
    writes_done: u32,
}

impl Progress {
    fn new(quiet: bool, writes_left: usize, batches_left: usize) -> Progress {
        Progress {
            quiet,
            started: Instant::now(),
            writes_left,
            batches_left,
            write_time: Duration::ZERO,
            writes_done: 0,
        }
    }

    fn eta(&self) -> String {
        let per_write = if self.writes_done > 0 {
            self.write_time / self.writes_done
        } else {
            Duration::from_millis(500)
        };
        // Consents: 100 requests a minute at most, so 0.6 s a batch at best.
        let per_batch = per_write.max(Duration::from_millis(600));
        let secs = per_write.as_secs_f64() * self.writes_left as f64
            + per_batch.as_secs_f64() * self.batches_left as f64;
        format!("about {} left", human_secs(secs))
    }

    fn step(
        &mut self,
        customer: &str,
        n: usize,
        total: usize,
        step: &PlanStep,
        note: Option<&str>,
        started: Instant,
    ) {
        if step.kind != StepKind::ReseedOptOuts {
            self.writes_left = self.writes_left.saturating_sub(1);
            self.write_time += started.elapsed();
            self.writes_done += 1;
        }
        if self.quiet {
            return;
        }
        eprintln!(
            "[{customer}] {n}/{total} {} {}{}; {}",
            step.kind.as_str(),
            step.phone_number.as_deref().unwrap_or(""),
            note.map(|n| format!(": {n}")).unwrap_or_default(),
            self.eta()
        );
    }

    fn batch(&mut self, customer: &str, n: usize, total: usize) {
        self.batches_left = self.batches_left.saturating_sub(1);
        if !self.quiet && (n == total || n.is_multiple_of(10)) {
            eprintln!("[{customer}] re-seed request {n}/{total}; {}", self.eta());
        }
    }

    fn stopped(&self, customer: &str, why: &str) {
        if !self.quiet {
            eprintln!("[{customer}] work left: {why}");
        }
    }

    fn failed(&self, customer: &str, why: &str) {
        eprintln!("[{customer}] stopped: {why}");
    }

    fn customer_done(&self, customer: &str, done: usize, skipped: usize) {
        if !self.quiet {
            eprintln!(
                "[{customer}] done: {done} steps sent, {skipped} already so ({}s since start)",
                self.started.elapsed().as_secs()
            );
        }
    }
}

fn human_secs(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
