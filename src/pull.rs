//! The pull: a parent account from the Twilio REST API (through `client`) into a snapshot
//! folder (the `snapshot` format).
//!
//! Every resource (and every slice of the message window) is one job writing one file: first to
//! `<file>.part`, renamed when complete, then listed in the manifest, which says
//! `complete: false` until the last job is done. A pull that dies is resumed by running it
//! again: listed files are kept, everything else is fetched afresh, so the result is the same
//! snapshot an uninterrupted pull would have written.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

mod bulk;
mod records;
mod slices;

pub use bulk::{BulkWait, Source};
use slices::Observed;
pub use slices::{PeriodCount, Slice, MESSAGES_PER_SLICE};

use crate::client::{trace, Client, Credentials, Product, Stats};
use crate::error::{Error, Result};
use crate::plural;
use crate::snapshot::{
    read_manifest, remove_other_form, sanitize_record, write_manifest, DataWriter, FileEntry,
    Manifest, Resource, ResourceEntry, Window, FORMAT_NAME, FORMAT_VERSION, MANIFEST_FILE,
    ZSTD_SUFFIX,
};

/// The pull's own record of its arguments, so that a resumed pull fetches the same thing.
pub const PULL_STATE_FILE: &str = "pull.json";
/// Twilio keeps message logs this long; the default window.
pub const DEFAULT_DAYS: u64 = 400;
const PAGE_SIZE: &str = "1000";
/// Slice files being synced at once at most ([`Pull::complete_later`]).
const FINISHING_AT_ONCE: usize = 64;

/// What to pull, as the command line gave it.
#[derive(Debug, Clone)]
pub struct PullRequest {
    pub out: PathBuf,
    /// First day (UTC, inclusive); default: `DEFAULT_DAYS` before `until`.
    pub since: Option<NaiveDate>,
    /// Day after the last (UTC, exclusive); default: tomorrow.
    pub until: Option<NaiveDate>,
    /// Sorted, each once.
    pub resources: Vec<Resource>,
    pub keep_outbound_bodies: bool,
    pub source: Source,
    /// Write the message files compressed (`.jsonl.zst`).
    pub compress: bool,
}

/// How hard a pull works: requests in flight, messages a slice aims at, Bulk Export waits.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    pub concurrency: usize,
    pub messages_per_slice: f64,
    pub bulk_wait: BulkWait,
}

/// What a pull was asked for, stored beside the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullState {
    pub parent_account_sid: String,
    pub since: NaiveDate,
    pub until: NaiveDate,
    pub resources: Vec<String>,
    pub keep_outbound_bodies: bool,
    /// Where the messages come from (`list` for a pull.json written before `--source`).
    #[serde(default)]
    pub source: Source,
    /// The account's currency from its usage records, for Bulk Export's records (which lack
    /// `price_unit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_unit: Option<String>,
    /// Message files are written compressed. Each file's name says how it is stored, so a
    /// resumed pull follows the flag it is given now (a snapshot may mix both forms).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compress: bool,
    /// The message window cut into slices: planned once, before the first message is fetched,
    /// so that a resumed pull fetches the same slices. Empty until then.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub message_slices: Vec<Slice>,
}

/// Runs a prepared pull to the end (or to the first error, or Ctrl-C), `concurrency` jobs at
/// a time.
pub fn execute(
    out: &Path,
    state: PullState,
    manifest: Manifest,
    client: Client,
    tuning: Tuning,
    quiet: bool,
) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Error::failed("cannot start the async runtime", e))?;
    let out = out.to_path_buf();
    runtime.block_on(async move {
        let pull = Pull::new(out.clone(), state, manifest, client, quiet);
        tokio::select! {
            result = pull.clone().run(tuning) => result,
            _ = tokio::signal::ctrl_c() => Err(Error::Runtime(format!(
                "interrupted: {} holds what was fetched so far; run the same command again to resume",
                out.display()
            ))),
        }
    })
}

fn midnight(day: NaiveDate) -> chrono::DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

/// Decides between a fresh pull, a resumed one, and nothing to do (`None`). Writes the state
/// file and the initial manifest of a fresh pull.
pub fn prepare(
    request: &PullRequest,
    creds: &Credentials,
) -> Result<Option<(PullState, Manifest)>> {
    let out = &request.out;
    let (since, until, resources) = (request.since, request.until, &request.resources);
    let resource_names: Vec<String> = resources.iter().map(|r| r.name().to_string()).collect();
    if out.join(MANIFEST_FILE).is_file() {
        let state_path = out.join(PULL_STATE_FILE);
        let text = std::fs::read_to_string(&state_path).map_err(|_| {
            Error::Input(format!(
                "{}: holds a snapshot that `subaudit pull` did not write (no {PULL_STATE_FILE}); choose another --out folder",
                out.display()
            ))
        })?;
        let state: PullState = serde_json::from_str(&text).map_err(|e| {
            Error::at_line(
                &state_path,
                e.line(),
                format!("not a valid pull state: {e}"),
            )
        })?;
        let manifest = read_manifest(out)?;
        let differs = |what: &str| {
            Error::Input(format!(
                "{}: holds a pull with a different {what}; run it with the same arguments to resume it, or choose another --out folder",
                out.display()
            ))
        };
        if state.parent_account_sid != creds.account_sid {
            return Err(differs("account (TWILIO_ACCOUNT_SID)"));
        }
        if since.is_some_and(|s| s != state.since) || until.is_some_and(|u| u != state.until) {
            let last = state.until - Days::new(1);
            // Before --until named the last day, it named the day after: the same command
            // now asks for one day more.
            let older = match until == Some(state.until + Days::new(1)) {
                true => format!(
                    " (it was started with --until {}, which a subaudit before --until included its day read as the day after the last)",
                    state.until
                ),
                false => String::new(),
            };
            return Err(Error::Input(format!(
                "{}: holds a pull of {} to {last}, both days included{older}; to resume it, run it with --since {} --until {last} or with neither, or choose another --out folder",
                out.display(),
                state.since,
                state.since
            )));
        }
        if state.resources != resource_names {
            return Err(differs("--resources"));
        }
        if state.keep_outbound_bodies != request.keep_outbound_bodies {
            return Err(differs("--keep-outbound-bodies"));
        }
        if state.source != request.source {
            return Err(differs("--source"));
        }
        if manifest.complete {
            return Ok(None);
        }
        let state = PullState {
            compress: request.compress,
            ..state
        };
        return Ok(Some((state, manifest)));
    }
    if out.is_dir()
        && std::fs::read_dir(out)
            .map_err(|e| Error::read(out, e))?
            .next()
            .is_some()
    {
        return Err(Error::Input(format!(
            "{}: the folder is not empty and holds no pull; choose a new or empty --out folder",
            out.display()
        )));
    }
    crate::output::prepare_out_dir(out)?;
    let until = until.unwrap_or_else(|| Utc::now().date_naive() + Days::new(1));
    let since = since.unwrap_or(until - Days::new(DEFAULT_DAYS));
    if since >= until {
        return Err(Error::Input(format!(
            "--since {since} is after the window's last day, {}",
            until - Days::new(1)
        )));
    }
    let state = PullState {
        parent_account_sid: creds.account_sid.clone(),
        since,
        until,
        resources: resource_names,
        keep_outbound_bodies: request.keep_outbound_bodies,
        source: request.source,
        price_unit: None,
        compress: request.compress,
        message_slices: Vec::new(),
    };
    let manifest = Manifest {
        format: FORMAT_NAME.to_string(),
        format_version: FORMAT_VERSION,
        parent_account_sid: creds.account_sid.clone(),
        window: Window {
            since: midnight(since),
            until: midnight(until),
        },
        created_at: Utc::now(),
        created_by: crate::created_by(),
        complete: false,
        outbound_bodies_kept: request.keep_outbound_bodies,
        // Only what is fetched is listed: a resource left out by --resources must not read
        // as "fetched, none found" (analysis refuses a snapshot that lacks one).
        resources: resources
            .iter()
            .map(|r| (r.name().to_string(), ResourceEntry::default()))
            .collect::<BTreeMap<_, _>>(),
    };
    crate::output::write_json(&out.join(PULL_STATE_FILE), &state)?;
    write_manifest(out, &manifest)?;
    Ok(Some((state, manifest)))
}

/// One unit of work: writes one file (or, for services, three).
#[derive(Debug, Clone)]
enum Job {
    Usage,
    /// A slice of the message window; a probe also reports what its first page showed.
    Messages(Slice, Option<ProbeReport>),
}

type ProbeReport = tokio::sync::mpsc::UnboundedSender<(Slice, Observed)>;

/// The slices of the message window, and the usage counts they were planned from when the
/// plan is fresh (then the first slices fetched calibrate the rest).
struct SlicePlan {
    slices: Vec<Slice>,
    periods: Option<Vec<PeriodCount>>,
}

#[derive(Clone)]
struct Pull {
    inner: Arc<PullInner>,
}

struct PullInner {
    dir: PathBuf,
    state: PullState,
    manifest: Mutex<Manifest>,
    client: Client,
    progress: Progress,
    /// Open subaccounts' auth tokens, from the accounts list: in memory only, to read their
    /// Messaging Services (which the parent's credentials do not reach).
    sub_tokens: Mutex<Vec<(String, String)>>,
    /// The account's currency (from its usage records) for Bulk Export's records.
    price_unit: Mutex<Option<String>>,
    /// The parent's own usage records, when the slices were planned from them in this run:
    /// the usage resource takes them instead of asking again.
    parent_usage: Mutex<Option<Vec<Value>>>,
    /// Changes made to `manifest` (bumped under its lock), and the change the file on disk
    /// holds (its lock is held while writing it): completions that land while one write is
    /// under way are saved by the next single write, not by one write each.
    manifest_changes: AtomicU64,
    manifest_saved: Mutex<u64>,
    /// Slice files being synced and listed ([`Pull::complete_later`]), and a bound on how
    /// many at once (each holds an open file).
    finishing: Mutex<tokio::task::JoinSet<Result<()>>>,
    finish_slots: Arc<tokio::sync::Semaphore>,
    /// Held for writing while a new plan of the slices goes to pull.json ([`Pull::save_plan`]):
    /// the slices are fetched meanwhile, but a slice's file is listed in the manifest only once
    /// the plan that cut it is on disk (a resumed pull must find the slices its files hold).
    plan_saving: Arc<tokio::sync::RwLock<()>>,
    /// A plan could not be saved: no slice file may be listed after that.
    plan_unsaved: AtomicBool,
}

impl Pull {
    fn new(
        dir: PathBuf,
        state: PullState,
        manifest: Manifest,
        client: Client,
        quiet: bool,
    ) -> Pull {
        let stats = client.stats().clone();
        let price_unit = state.price_unit.clone();
        Pull {
            inner: Arc::new(PullInner {
                dir,
                state,
                manifest: Mutex::new(manifest),
                client,
                progress: Progress::new(quiet, stats),
                sub_tokens: Mutex::new(Vec::new()),
                price_unit: Mutex::new(price_unit),
                parent_usage: Mutex::new(None),
                manifest_changes: AtomicU64::new(0),
                manifest_saved: Mutex::new(0),
                finishing: Mutex::new(tokio::task::JoinSet::new()),
                finish_slots: Arc::new(tokio::sync::Semaphore::new(FINISHING_AT_ONCE)),
                plan_saving: Arc::new(tokio::sync::RwLock::new(())),
                plan_unsaved: AtomicBool::new(false),
            }),
        }
    }

    fn wants(&self, r: Resource) -> bool {
        self.inner.state.resources.iter().any(|n| n == r.name())
    }

    fn is_done(&self, r: Resource, path: &str) -> bool {
        let manifest = self.inner.manifest.lock().expect("no panics hold the lock");
        manifest.resource(r).is_some_and(|e| {
            e.files
                .iter()
                .any(|f| f.path.strip_suffix(ZSTD_SUFFIX).unwrap_or(&f.path) == path)
        })
    }

    fn parent(&self) -> &str {
        &self.inner.state.parent_account_sid
    }

    async fn run(self, tuning: Tuning) -> Result<()> {
        let Tuning {
            concurrency,
            messages_per_slice,
            bulk_wait,
        } = tuning;
        let dir = &self.inner.dir;
        remove_parts(dir)?;
        remove_parts(&dir.join("messages"))?;
        // Accounts (usage needs the subaccounts, and this checks the credentials), the plan of
        // the message window (the parent's usage), and what the parent's own credentials reach
        // at once (its numbers, its Messaging Services and their lists), side by side: the
        // round that plans would leave those slots idle. The subaccounts' parts wait for the
        // accounts list.
        let (accounts_known, accounts_seen) = tokio::sync::watch::channel(None);
        let mut workers = tokio::task::JoinSet::new();
        if self.wants(Resource::IncomingPhoneNumbers)
            && !self.is_done(
                Resource::IncomingPhoneNumbers,
                &Resource::IncomingPhoneNumbers.default_file(),
            )
        {
            let (pull, seen) = (self.clone(), accounts_seen.clone());
            workers.spawn(async move { pull.fetch_numbers(seen).await });
        }
        let service_resources = [
            Resource::MessagingServices,
            Resource::ServicePhoneNumbers,
            Resource::A2pCampaigns,
        ];
        if service_resources
            .iter()
            .any(|r| self.wants(*r) && !self.is_done(*r, &r.default_file()))
        {
            let (pull, seen) = (self.clone(), accounts_seen.clone());
            workers.spawn(async move { pull.fetch_services(seen).await });
        }
        let wants_messages = self.wants(Resource::Messages);
        let (accounts, plan) = tokio::join!(self.fetch_accounts(), async {
            match wants_messages {
                true => self
                    .message_slices(messages_per_slice, concurrency, bulk_wait)
                    .await
                    .map(Some),
                false => Ok(None),
            }
        });
        let accounts = Arc::new(accounts?);
        let plan = plan?;
        let mut small = Vec::new();
        if self.wants(Resource::UsageRecords)
            && !self.is_done(
                Resource::UsageRecords,
                &Resource::UsageRecords.default_file(),
            )
        {
            small.push(Job::Usage);
        }
        // Newest first, as Twilio lists.
        let mut pending: Vec<Slice> = Vec::new();
        let mut periods = None;
        if let Some(plan) = plan {
            std::fs::create_dir_all(dir.join("messages"))
                .map_err(|e| Error::write(&dir.join("messages"), e))?;
            pending = plan
                .slices
                .iter()
                .rev()
                .copied()
                .filter(|s| !self.is_done(Resource::Messages, &s.file()))
                .collect();
            self.inner.progress.start_messages(
                plan.slices.len() as u64,
                (plan.slices.len() - pending.len()) as u64,
            );
            // Calibrate only a fresh plan big enough to gain from it.
            periods = plan.periods.filter(|_| pending.len() > 2 * concurrency);
        }

        let (queue, receiver) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        // Twice as many jobs as requests in flight (the client bounds those): while a job
        // reads a page it just received, another one's request takes its slot. A slice's next
        // page still goes before other slices' first ones (the client's continuation lane).
        for _ in 0..2 * concurrency {
            let pull = self.clone();
            let receiver = receiver.clone();
            let accounts = accounts.clone();
            workers.spawn(async move {
                loop {
                    let job = receiver.lock().await.recv().await;
                    let Some(job) = job else {
                        return Ok::<(), Error>(());
                    };
                    pull.run_job(job, &accounts).await?;
                }
            });
        }
        let send = |job: Job| queue.send(job).expect("the workers outlive the queue");
        match periods {
            Some(periods) => {
                // The newest slices first, as probes: what their first pages hold corrects
                // the usage counts before the rest of the window is cut (Twilio's counts may
                // be segments, not messages).
                let probes: Vec<Slice> = pending.drain(..concurrency).collect();
                let (report, mut reports) = tokio::sync::mpsc::unbounded_channel();
                for slice in &probes {
                    send(Job::Messages(*slice, Some(report.clone())));
                }
                drop(report);
                small.into_iter().for_each(send);
                accounts_known.send_replace(Some(accounts.clone()));
                // The slices after the probes, cut like them: they take the slots the probes
                // and the small resources leave while the last probes are still out.
                let fillers: Vec<Slice> = pending.drain(..slices::fillers(concurrency)).collect();
                for slice in &fillers {
                    send(Job::Messages(*slice, None));
                }
                let mut sent = probes.clone();
                sent.extend(fillers);
                let mut observed = Vec::new();
                while observed.len() < probes.len() {
                    tokio::select! {
                        got = reports.recv() => match got {
                            Some(o) => observed.push(o),
                            None => break,
                        },
                        Some(joined) = workers.join_next() => {
                            self.worker_ended(joined, &mut workers)?;
                        }
                    }
                }
                let (rest, plan) = self.recalibrate(
                    &sent,
                    &pending,
                    &observed,
                    &periods,
                    messages_per_slice,
                    concurrency,
                );
                if let Some(state) = plan {
                    self.save_plan(state).await;
                }
                rest.into_iter().for_each(|s| send(Job::Messages(s, None)));
                trace::event("rest of the window queued");
            }
            None => {
                accounts_known.send_replace(Some(accounts.clone()));
                small.into_iter().for_each(send);
                pending
                    .into_iter()
                    .for_each(|s| send(Job::Messages(s, None)));
            }
        }
        drop(queue);
        while let Some(joined) = workers.join_next().await {
            self.worker_ended(joined, &mut workers)?;
        }
        trace::event("every job fetched");
        let mut finishing = std::mem::take(
            &mut *self
                .inner
                .finishing
                .lock()
                .expect("no panics hold the lock"),
        );
        while let Some(joined) = finishing.join_next().await {
            self.worker_ended(joined, &mut finishing)?;
        }
        let manifest = {
            let mut m = self.inner.manifest.lock().expect("no panics hold the lock");
            m.complete = true;
            m.created_at = Utc::now();
            m.clone()
        };
        write_manifest(dir, &manifest)?;
        trace::event("manifest complete");
        self.inner.progress.done(&manifest);
        Ok(())
    }

    /// A worker's end: fine, or the pull's end with its error (the other workers stopped).
    fn worker_ended(
        &self,
        joined: std::result::Result<Result<()>, tokio::task::JoinError>,
        workers: &mut tokio::task::JoinSet<Result<()>>,
    ) -> Result<()> {
        let result = joined
            .map_err(|e| Error::failed("a pull task failed", e))
            .and_then(|r| r);
        if result.is_err() {
            workers.abort_all();
            self.inner.progress.finish();
        }
        result
    }

    /// The slices after those `sent` first (the probes and their fillers; oldest first),
    /// newest first: the rest of the window cut again with the usage counts corrected by what
    /// the probes found, in slices of two pages but for the last rounds for `slots` requests
    /// in flight ([`slices::plan_in_pairs`]); with the pull state to save (a resumed pull fetches the same slices).
    /// The first plan's (`rest`, newest first) when the probes tell nothing.
    fn recalibrate(
        &self,
        sent: &[Slice],
        rest: &[Slice],
        observed: &[(Slice, Observed)],
        periods: &[PeriodCount],
        per_slice: f64,
        slots: usize,
    ) -> (Vec<Slice>, Option<PullState>) {
        let first_plan = || rest.to_vec();
        let (Some(calibration), Some(boundary)) = (
            slices::calibration(observed, periods, per_slice),
            sent.iter().map(|s| s.start).min(),
        ) else {
            return (first_plan(), None);
        };
        let state = &self.inner.state;
        let replanned = slices::plan_in_pairs(
            midnight(state.since),
            boundary,
            &slices::scaled(periods, calibration.ratio),
            calibration.per_slice,
            slots,
        );
        let mut all = replanned.clone();
        all.extend(sent.iter().rev().copied());
        let mut saved = state.clone();
        saved.message_slices = all.clone();
        saved.price_unit = self.price_unit();
        self.inner.progress.replanned(all.len() as u64, calibration);
        (replanned.into_iter().rev().collect(), Some(saved))
    }

    fn price_unit(&self) -> Option<String> {
        self.inner
            .price_unit
            .lock()
            .expect("no panics hold the lock")
            .clone()
    }

    /// Saves a new plan of the slices (`state`) to pull.json on a blocking thread while the
    /// slices are fetched: their files wait for it before they are listed ([`Pull::complete`]),
    /// but no request waits for the disk. Returns once the plan is taken (before any slice of
    /// it may be queued); a failure ends the pull.
    async fn save_plan(&self, state: PullState) {
        let saving = self.inner.plan_saving.clone().write_owned().await;
        let pull = self.clone();
        let path = self.inner.dir.join(PULL_STATE_FILE);
        self.inner
            .finishing
            .lock()
            .expect("no panics hold the lock")
            .spawn(async move {
                let result =
                    tokio::task::spawn_blocking(move || crate::output::write_json(&path, &state))
                        .await
                        .map_err(|e| Error::failed("a pull task failed", e))
                        .and_then(|r| r);
                if result.is_err() {
                    pull.inner.plan_unsaved.store(true, Ordering::SeqCst);
                }
                drop(saving);
                trace::event("plan saved");
                result
            });
    }

    async fn run_job(&self, job: Job, accounts: &[Value]) -> Result<()> {
        match job {
            Job::Usage => self.fetch_usage(accounts).await,
            Job::Messages(slice, _) if slice.bulk => match self.fetch_bulk_day(slice).await? {
                Ok(file) => {
                    self.complete(vec![file]).await?;
                    self.inner.progress.slice_done();
                    Ok(())
                }
                Err(why) => {
                    let day = slice.start.date_naive();
                    self.inner.progress.line(&format!(
                        "bulk export of {day} unavailable ({why}): fetched through the Messages list"
                    ));
                    let list = Slice {
                        bulk: false,
                        ..slice
                    };
                    Box::pin(self.run_job(Job::Messages(list, None), accounts)).await
                }
            },
            Job::Messages(slice, mut probe) => {
                // DateSent> and DateSent< are inclusive and Twilio keeps whole seconds: a
                // slice [start, end) is [start, end - 1s], and slices never overlap.
                let format = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
                let from = format(slice.start);
                let to = format(slice.end - chrono::Duration::seconds(1));
                let url = self.list_url(
                    Product::Api,
                    &format!("/2010-04-01/Accounts/{}/Messages.json", self.parent()),
                    &[("DateSent>", &from), ("DateSent<", &to)],
                );
                // A probe goes before the other requests: the rest of the window waits for
                // every probe's first page.
                let mut pager = match probe {
                    Some(_) => self.inner.client.pages_ahead(url, "messages"),
                    None => self.inner.client.pages(url, "messages"),
                };
                // Each page is copied off the async threads (as it was read, `next_raw_page`)
                // while the next one is fetched: the file goes from one copy to the next.
                let mut copying = Copying::Idle(self.open(Resource::Messages, slice.file())?);
                while let Some(page) = pager.next_raw_page_read(records::read_page).await? {
                    let more = pager.has_next();
                    let report = probe.take();
                    let mut file = copying.file().await?;
                    copying =
                        Copying::Busy(tokio::task::spawn_blocking(move || -> Result<PartFile> {
                            let records = page.records()?;
                            if let Some(report) = report {
                                let oldest = records
                                    .last()
                                    .filter(|_| more)
                                    .and_then(|r| message_time(r));
                                // The receiver may be gone (the pull is ending): nothing to tell.
                                let _ = report.send((
                                    slice,
                                    Observed {
                                        records: records.len(),
                                        more,
                                        oldest,
                                    },
                                ));
                            }
                            file.write_raw_page(&records, page.notes())?;
                            Ok(file)
                        }));
                }
                self.complete_later(copying).await
            }
        }
    }

    /// Syncs and lists a slice's file on a task of its own, so that the worker takes its next
    /// slice at once: a sync can take tens of milliseconds on a busy disk, and a worker
    /// waiting for it leaves a request slot idle. An earlier one's failure ends the pull
    /// here; `run` waits for the rest before the manifest says complete.
    async fn complete_later(&self, file: Copying) -> Result<()> {
        let permit = self
            .inner
            .finish_slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let pull = self.clone();
        let mut finishing = self
            .inner
            .finishing
            .lock()
            .expect("no panics hold the lock");
        while let Some(joined) = finishing.try_join_next() {
            joined.map_err(|e| Error::failed("a pull task failed", e))??;
        }
        finishing.spawn(async move {
            let file = file.file().await?;
            pull.complete(vec![file]).await?;
            pull.inner.progress.slice_done();
            drop(permit);
            Ok(())
        });
        Ok(())
    }

    /// A day's Bulk Export file into the slice's file, streamed a thousand records at a time;
    /// `Ok(Err(why))` when the day cannot be had that way (the list fetches it instead).
    async fn fetch_bulk_day(&self, slice: Slice) -> Result<std::result::Result<PartFile, String>> {
        let day = slice.start.date_naive();
        let price_unit = self.price_unit();
        let gz = match bulk::download_day(&self.inner.client, day, &self.inner.dir).await {
            Ok(gz) => gz,
            Err(why) => return Ok(Err(why)),
        };
        let mut file = self.open(Resource::Messages, slice.file())?;
        let mut batch = Vec::new();
        let mut failed_write = None;
        let read = bulk::read_day(gz, day, price_unit.as_deref(), |record| {
            batch.push(record);
            if batch.len() >= 1000 {
                if let Err(e) = file.write_page(std::mem::take(&mut batch)) {
                    let text = e.to_string();
                    failed_write = Some(e);
                    return Err(text);
                }
            }
            Ok(())
        });
        if let Some(e) = failed_write {
            return Err(e);
        }
        if let Err(why) = read {
            return Ok(Err(why));
        }
        file.write_page(batch)?;
        Ok(Ok(file))
    }

    /// The slices of the message window: pull.json's when resuming; else planned from the
    /// parent's own usage records (messages per month: where the traffic is), so that each
    /// slice holds about one page and the slices are fetched side by side, and saved before
    /// the first message is fetched. Without usage records, one slice per day.
    async fn message_slices(
        &self,
        messages_per_slice: f64,
        probes: usize,
        bulk_wait: BulkWait,
    ) -> Result<SlicePlan> {
        let state = &self.inner.state;
        if !state.message_slices.is_empty() {
            return Ok(SlicePlan {
                slices: state.message_slices.clone(),
                periods: None,
            });
        }
        let started = {
            let manifest = self.inner.manifest.lock().expect("no panics hold the lock");
            manifest
                .resource(Resource::Messages)
                .is_some_and(|e| !e.files.is_empty())
        };
        if started {
            return Err(Error::Input(format!(
                "{}: this pull was started by an earlier subaudit, which cut the messages by day; start it afresh in a new --out folder",
                self.inner.dir.display()
            )));
        }
        let url = self.usage_url(self.parent());
        let (periods, price_unit) = match self
            .inner
            .client
            .pages(url, "usage_records")
            .collect_all()
            .await
        {
            Ok(records) => {
                let counts = slices::message_counts(&records);
                let unit = records
                    .iter()
                    .filter_map(|r| r.get("price_unit")?.as_str())
                    .map(|u| u.trim().to_ascii_uppercase())
                    .find(|u| !u.is_empty());
                *self
                    .inner
                    .parent_usage
                    .lock()
                    .expect("no panics hold the lock") = Some(records);
                (counts, unit)
            }
            Err(e) => {
                self.inner.progress.line(&format!(
                    "usage records unavailable ({e}): the messages are fetched a day at a time"
                ));
                (Vec::new(), None)
            }
        };
        let bulk_days = self.bulk_days(&periods, bulk_wait).await?;
        let (slices, calibrate) = if bulk_days.is_empty() {
            // The newest slices are the probes and their fillers (`run`).
            let slices = slices::plan_with_probes(
                state.since,
                state.until,
                &periods,
                messages_per_slice,
                probes,
            );
            (slices, !periods.is_empty())
        } else {
            // Bulk Export's days as whole-day slices; the days between them by the list.
            let mut slices = Vec::new();
            let mut run_start: Option<NaiveDate> = None;
            for day in state.since.iter_days().take_while(|d| *d < state.until) {
                if bulk_days.contains(&day) {
                    if let Some(first) = run_start.take() {
                        slices.extend(slices::plan_until(
                            first,
                            midnight(day),
                            &periods,
                            messages_per_slice,
                        ));
                    }
                    slices.push(Slice::bulk_day(day));
                } else if run_start.is_none() {
                    run_start = Some(day);
                }
            }
            if let Some(first) = run_start {
                slices.extend(slices::plan_until(
                    first,
                    midnight(state.until),
                    &periods,
                    messages_per_slice,
                ));
            }
            (slices, false)
        };
        let mut saved = state.clone();
        saved.message_slices = slices.clone();
        saved.price_unit = price_unit.clone();
        *self
            .inner
            .price_unit
            .lock()
            .expect("no panics hold the lock") = price_unit;
        self.save_plan(saved).await;
        trace::event("slices planned");
        Ok(SlicePlan {
            slices,
            periods: calibrate.then_some(periods),
        })
    }

    /// The days of the window to fetch through Bulk Export (`--source`): none for `list`;
    /// for `auto`, the days already exported when the account has Bulk Export and the usage
    /// expects a large window; for `bulk-export`, those plus the days its jobs export (up to
    /// two days before today, Twilio's limit). Whatever is not had here comes by the list.
    async fn bulk_days(
        &self,
        periods: &[PeriodCount],
        wait: BulkWait,
    ) -> Result<std::collections::BTreeSet<NaiveDate>> {
        let state = &self.inner.state;
        let client = &self.inner.client;
        let note = |text: &str| self.inner.progress.line(text);
        let none = std::collections::BTreeSet::new();
        let in_window = |d: &NaiveDate| *d >= state.since && *d < state.until;
        match state.source {
            Source::List => Ok(none),
            Source::Auto => {
                let expected: f64 = periods.iter().map(|p| p.messages).sum();
                if expected < bulk::AUTO_MIN_MESSAGES {
                    return Ok(none);
                }
                match bulk::available_days(client).await {
                    Ok(days) => Ok(days.into_iter().filter(in_window).collect()),
                    Err(_) => Ok(none),
                }
            }
            Source::BulkExport => {
                let available = match bulk::available_days(client).await {
                    Ok(days) => days,
                    Err(e) => {
                        note(&format!(
                            "bulk export unavailable ({e}): the messages come through the Messages list"
                        ));
                        return Ok(none);
                    }
                };
                let last = bulk::last_exportable_day();
                let missing: std::collections::BTreeSet<NaiveDate> = state
                    .since
                    .iter_days()
                    .take_while(|d| *d < state.until && *d <= last)
                    .filter(|d| !available.contains(d))
                    .collect();
                let available = if missing.is_empty() {
                    available
                } else {
                    match bulk::export_missing(client, &missing, wait, &note).await {
                        Ok(days) => days,
                        Err(e) => {
                            note(&format!(
                                "bulk export jobs failed ({e}): the days they would export come through the Messages list"
                            ));
                            available
                        }
                    }
                };
                let days: std::collections::BTreeSet<NaiveDate> =
                    available.into_iter().filter(in_window).collect();
                let window_days = (state.until - state.since).num_days();
                note(&format!(
                    "bulk export: {} of {window_days} days as export files, the rest through the Messages list",
                    days.len()
                ));
                Ok(days)
            }
        }
    }

    fn list_url(&self, product: Product, path: &str, filters: &[(&str, &str)]) -> Url {
        let mut url = self.inner.client.url(product, path);
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in filters {
                q.append_pair(k, v);
            }
            q.append_pair("PageSize", PAGE_SIZE);
        }
        url
    }

    /// The parent and its subaccounts; written when asked for, always returned.
    async fn fetch_accounts(&self) -> Result<Vec<Value>> {
        let client = &self.inner.client;
        let url = self.list_url(Product::Api, "/2010-04-01/Accounts.json", &[]);
        let mut all = client.pages(url, "accounts").collect_all().await?;
        let parent = self.parent().to_string();
        let is_parent = |v: &Value| v.get("sid").and_then(Value::as_str) == Some(parent.as_str());
        if !all.iter().any(is_parent) {
            let one = client
                .get_json(&client.url(Product::Api, &format!("/2010-04-01/Accounts/{parent}.json")))
                .await?;
            all.insert(0, one);
        }
        // The parent first (the snapshot's rule), then subaccounts as listed.
        all.sort_by_key(|v| !is_parent(v));
        let tokens: Vec<(String, String)> = all
            .iter()
            .filter(|v| !is_parent(v) && is_open(v))
            .filter_map(|v| {
                let sid = v.get("sid")?.as_str()?;
                let token = v.get("auth_token")?.as_str().filter(|t| !t.is_empty())?;
                Some((sid.to_string(), token.to_string()))
            })
            .collect();
        *self
            .inner
            .sub_tokens
            .lock()
            .expect("no panics hold the lock") = tokens;
        for v in &mut all {
            sanitize_record(Resource::Accounts, v, false);
        }
        if self.wants(Resource::Accounts)
            && !self.is_done(Resource::Accounts, &Resource::Accounts.default_file())
        {
            let mut file = self.open(Resource::Accounts, Resource::Accounts.default_file())?;
            file.write_page(all.clone())?;
            // Synced and listed while the pull goes on: the slices wait for this answer.
            let pull = self.clone();
            self.inner
                .finishing
                .lock()
                .expect("no panics hold the lock")
                .spawn(async move { pull.complete(vec![file]).await });
        }
        Ok(all)
    }

    /// The parent's numbers, then the subaccounts' (parent credentials reach them), so that a
    /// pull after a migration shows where the numbers went; the audit reads only the
    /// parent's. The parent's are asked for at once, the subaccounts' once `accounts` are
    /// known, all side by side, written in that order.
    async fn fetch_numbers(&self, accounts: AccountsSeen) -> Result<()> {
        let list = |sid: &str| {
            let url = self.list_url(
                Product::Api,
                &format!("/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json"),
                &[],
            );
            self.inner.client.pages(url, "incoming_phone_numbers")
        };
        let mut tasks = tokio::task::JoinSet::new();
        let parent = list(self.parent());
        tasks.spawn(async move { (0, parent.collect_all().await) });
        let accounts = accounts_when_known(accounts).await?;
        let subs = accounts
            .iter()
            .filter(|a| a.get("sid").and_then(Value::as_str) != Some(self.parent()) && is_open(a))
            .filter_map(|a| a.get("sid").and_then(Value::as_str));
        for (i, sid) in subs.enumerate() {
            let pager = list(sid);
            tasks.spawn(async move { (i + 1, pager.collect_all().await) });
        }
        let lists = in_order(tasks).await?;
        let mut file = self.open(
            Resource::IncomingPhoneNumbers,
            Resource::IncomingPhoneNumbers.default_file(),
        )?;
        for records in lists {
            file.write_page(records)?;
        }
        self.complete(vec![file]).await
    }

    /// The parent's Messaging Services and the open subaccounts' (with their own
    /// credentials, which the parent's do not reach: a pull after a migration shows the
    /// customers' new services), each with its numbers, campaign, short codes and alpha
    /// senders. The parent's are asked for at once, the subaccounts' once `accounts` are
    /// known.
    async fn fetch_services(&self, accounts: AccountsSeen) -> Result<()> {
        let client = &self.inner.client;
        let url = self.list_url(Product::Messaging, "/v1/Services", &[]);
        let mut services = client.pages(url, "services").collect_all().await?;
        let mut owners: Vec<Client> = vec![client.clone(); services.len()];
        // Each service's lists, fetched side by side, written in service order; asked for
        // once the accounts are known, which the pull tells after its first message slices
        // are queued: those go first (the probes calibrate the rest of the window).
        accounts_when_known(accounts).await?;
        let mut lists = tokio::task::JoinSet::new();
        self.spawn_service_lists(&mut lists, &services, &owners, 0);
        let tokens = self
            .inner
            .sub_tokens
            .lock()
            .expect("no panics hold the lock")
            .clone();
        // Side by side, kept in the accounts' order.
        let subs: Vec<Client> = tokens
            .iter()
            .map(|(sid, token)| client.with_credentials(Credentials::for_account(sid, token)))
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, sub) in subs.iter().enumerate() {
            let url = self.list_url(Product::Messaging, "/v1/Services", &[]);
            let pager = sub.pages(url, "services");
            tasks.spawn(async move { (i, pager.collect_all().await) });
        }
        let parents = services.len();
        for (sub, theirs) in subs.into_iter().zip(in_order(tasks).await?) {
            owners.extend(std::iter::repeat_n(sub, theirs.len()));
            services.extend(theirs);
        }
        self.spawn_service_lists(
            &mut lists,
            &services[parents..],
            &owners[parents..],
            parents,
        );
        let mut service_file = self.open(
            Resource::MessagingServices,
            Resource::MessagingServices.default_file(),
        )?;
        let mut numbers_file = self.open(
            Resource::ServicePhoneNumbers,
            Resource::ServicePhoneNumbers.default_file(),
        )?;
        let mut campaigns_file = self.open(
            Resource::A2pCampaigns,
            Resource::A2pCampaigns.default_file(),
        )?;
        // The services' other senders, which stay behind when a number leaves (the
        // service-shared-senders finding).
        let mut short_codes_file = self.open(
            Resource::ServiceShortCodes,
            Resource::ServiceShortCodes.default_file(),
        )?;
        let mut alpha_senders_file = self.open(
            Resource::ServiceAlphaSenders,
            Resource::ServiceAlphaSenders.default_file(),
        )?;
        service_file.write_page(services)?;
        let mut tasks = lists;
        let mut numbers: BTreeMap<usize, Vec<Value>> = BTreeMap::new();
        let mut campaigns: BTreeMap<usize, Vec<Value>> = BTreeMap::new();
        let mut short_codes: BTreeMap<usize, Vec<Value>> = BTreeMap::new();
        let mut alpha_senders: BTreeMap<usize, Vec<Value>> = BTreeMap::new();
        while let Some(joined) = tasks.join_next().await {
            let (i, key, result) = joined.map_err(|e| Error::failed("a pull task failed", e))?;
            let records = result?;
            let list = match key {
                "phone_numbers" => &mut numbers,
                "short_codes" => &mut short_codes,
                "alpha_senders" => &mut alpha_senders,
                _ => &mut campaigns,
            };
            list.insert(i, records);
        }
        for (_, records) in numbers {
            numbers_file.write_page(records)?;
        }
        for (_, records) in campaigns {
            campaigns_file.write_page(records)?;
        }
        for (_, records) in short_codes {
            short_codes_file.write_page(records)?;
        }
        for (_, records) in alpha_senders {
            alpha_senders_file.write_page(records)?;
        }
        // The services' senders come with the services' numbers.
        let files = [
            service_file,
            numbers_file,
            campaigns_file,
            short_codes_file,
            alpha_senders_file,
        ]
        .into_iter()
        .filter(|f| {
            self.wants(f.resource)
                || (Resource::OPTIONAL.contains(&f.resource)
                    && self.wants(Resource::ServicePhoneNumbers))
        })
        .collect();
        self.complete(files).await
    }

    /// Asks for each of `services`' lists (numbers, campaign, short codes, alpha senders)
    /// with its owner's credentials, each tagged with its service's place (`first` onwards).
    fn spawn_service_lists(
        &self,
        tasks: &mut ServiceLists,
        services: &[Value],
        owners: &[Client],
        first: usize,
    ) {
        for (i, (service, client)) in services.iter().zip(owners).enumerate() {
            let Some(sid) = service.get("sid").and_then(Value::as_str) else {
                continue;
            };
            for (key, path) in [
                ("phone_numbers", format!("/v1/Services/{sid}/PhoneNumbers")),
                ("compliance", format!("/v1/Services/{sid}/Compliance/Usa2p")),
                ("short_codes", format!("/v1/Services/{sid}/ShortCodes")),
                ("alpha_senders", format!("/v1/Services/{sid}/AlphaSenders")),
            ] {
                let url = self.list_url(Product::Messaging, &path, &[]);
                let pager = client.pages(url, key);
                tasks.spawn(async move { (first + i, key, pager.collect_all().await) });
            }
        }
    }

    /// Monthly usage of the parent and of each subaccount, each on its own
    /// (`IncludeSubaccounts=false`: the parent's figures would otherwise include theirs).
    async fn fetch_usage(&self, accounts: &[Value]) -> Result<()> {
        let client = &self.inner.client;
        let parent = self.parent().to_string();
        let mut parent_usage = self
            .inner
            .parent_usage
            .lock()
            .expect("no panics hold the lock")
            .take();
        let mut by_account = BTreeMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, account) in accounts.iter().enumerate() {
            let Some(sid) = account.get("sid").and_then(Value::as_str) else {
                continue;
            };
            let owner = account.get("owner_account_sid").and_then(Value::as_str);
            if sid != parent && owner.is_some_and(|o| o != parent) {
                continue;
            }
            if sid == parent {
                if let Some(records) = parent_usage.take() {
                    by_account.insert(i, records);
                    continue;
                }
            }
            let closed = account.get("status").and_then(Value::as_str) == Some("closed");
            let pager = client.pages(self.usage_url(sid), "usage_records");
            let sid = sid.to_string();
            tasks.spawn(async move { (i, sid, closed, pager.collect_all().await) });
        }
        while let Some(joined) = tasks.join_next().await {
            let (i, sid, closed, result) =
                joined.map_err(|e| Error::failed("a pull task failed", e))?;
            match result {
                Ok(records) => {
                    by_account.insert(i, records);
                }
                // A closed account may no longer answer: its usage is skipped, not fatal.
                Err(e) if closed && matches!(e.status, Some(401 | 403 | 404)) => {
                    self.inner
                        .progress
                        .line(&format!("usage of closed subaccount {sid} skipped: {e}"));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut file = self.open(
            Resource::UsageRecords,
            Resource::UsageRecords.default_file(),
        )?;
        for (_, records) in by_account {
            file.write_page(records)?;
        }
        self.complete(vec![file]).await
    }

    /// An account's own monthly usage records over the window (`IncludeSubaccounts=false`:
    /// the parent's figures would otherwise include its subaccounts').
    fn usage_url(&self, sid: &str) -> Url {
        let state = &self.inner.state;
        self.list_url(
            Product::Api,
            &format!("/2010-04-01/Accounts/{sid}/Usage/Records/Monthly.json"),
            &[
                ("StartDate", &state.since.to_string()),
                ("EndDate", &(state.until - Days::new(1)).to_string()),
                ("IncludeSubaccounts", "false"),
            ],
        )
    }

    fn open(&self, resource: Resource, path: String) -> Result<PartFile> {
        PartFile::create(
            &self.inner.dir,
            resource,
            path,
            self.inner.state.keep_outbound_bodies,
            self.inner.state.compress && resource == Resource::Messages,
            self.inner.progress.records.clone(),
        )
    }

    /// Renames the files into place, then lists them in the manifest, off the async
    /// threads: syncing files to disk blocks, and a blocked async thread would stall every
    /// request in flight.
    async fn complete(&self, files: Vec<PartFile>) -> Result<()> {
        if files.iter().any(|f| f.resource == Resource::Messages) {
            let _saved = self.inner.plan_saving.read().await;
            if self.inner.plan_unsaved.load(Ordering::SeqCst) {
                return Err(Error::Runtime(format!(
                    "{}: the plan of the message slices could not be saved",
                    self.inner.dir.join(PULL_STATE_FILE).display()
                )));
            }
        }
        let pull = self.clone();
        tokio::task::spawn_blocking(move || pull.complete_blocking(files))
            .await
            .map_err(|e| Error::failed("a pull task failed", e))?
    }

    fn complete_blocking(&self, files: Vec<PartFile>) -> Result<()> {
        let mut entries = Vec::new();
        for file in files {
            entries.push(file.finish()?);
        }
        {
            let mut manifest = self.inner.manifest.lock().expect("no panics hold the lock");
            for (resource, entry) in entries {
                let e = manifest
                    .resources
                    .entry(resource.name().to_string())
                    .or_default();
                e.files.retain(|f| f.path != entry.path);
                e.files.push(entry.clone());
                e.files.sort_by(|a, b| a.path.cmp(&b.path));
                e.count = e.files.iter().map(|f| f.count).sum();
                self.inner.progress.resource_done(resource, &entry);
            }
            self.inner.manifest_changes.fetch_add(1, Ordering::SeqCst);
        }
        self.save_manifest()
    }

    /// Writes the manifest unless a write since this thread's change already holds it.
    fn save_manifest(&self) -> Result<()> {
        let wanted = self.inner.manifest_changes.load(Ordering::SeqCst);
        let mut saved = self
            .inner
            .manifest_saved
            .lock()
            .expect("no panics hold the lock");
        if *saved >= wanted {
            return Ok(());
        }
        let (manifest, changes) = {
            let m = self.inner.manifest.lock().expect("no panics hold the lock");
            (
                m.clone(),
                self.inner.manifest_changes.load(Ordering::SeqCst),
            )
        };
        write_manifest(&self.inner.dir, &manifest)?;
        *saved = changes;
        Ok(())
    }
}

/// The accounts list, once fetched (`None` until then).
type AccountsSeen = tokio::sync::watch::Receiver<Option<Arc<Vec<Value>>>>;

/// Each Messaging Service's lists being fetched: its place, the list's key, the records.
type ServiceLists = tokio::task::JoinSet<(
    usize,
    &'static str,
    std::result::Result<Vec<Value>, crate::client::ApiError>,
)>;

/// The accounts list, once the pull has it.
async fn accounts_when_known(mut seen: AccountsSeen) -> Result<Arc<Vec<Value>>> {
    let known = seen
        .wait_for(Option::is_some)
        .await
        .map_err(|_| Error::Runtime("the accounts list was not fetched".into()))?;
    Ok(known.clone().expect("waited for it"))
}

/// The lists fetched by `tasks` (each tagged with its place), in that order; the first error
/// ends it.
async fn in_order(
    mut tasks: tokio::task::JoinSet<(
        usize,
        std::result::Result<Vec<Value>, crate::client::ApiError>,
    )>,
) -> Result<Vec<Vec<Value>>> {
    let mut lists = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined.map_err(|e| Error::failed("a pull task failed", e))?;
        lists.insert(i, result?);
    }
    Ok(lists.into_values().collect())
}

/// A slice's file, or the copy of a page into it under way.
enum Copying {
    Idle(PartFile),
    Busy(tokio::task::JoinHandle<Result<PartFile>>),
}

impl Copying {
    /// The file, once the copy under way (if any) is done.
    async fn file(self) -> Result<PartFile> {
        match self {
            Copying::Idle(file) => Ok(file),
            Copying::Busy(copy) => copy
                .await
                .map_err(|e| Error::failed("a pull task failed", e))?,
        }
    }
}

/// Removes `.part` files an earlier, interrupted pull left behind.
fn remove_parts(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "part") {
            std::fs::remove_file(&path).map_err(|e| Error::write(&path, e))?;
        }
    }
    Ok(())
}

/// A data file being written: records stream in page by page, sanitized; the file gets its
/// final name only once complete.
struct PartFile {
    resource: Resource,
    rel: String,
    part: PathBuf,
    target: PathBuf,
    writer: DataWriter<File>,
    count: u64,
    keep_outbound_bodies: bool,
    records: Arc<AtomicU64>,
}

impl PartFile {
    fn create(
        dir: &Path,
        resource: Resource,
        mut rel: String,
        keep_outbound_bodies: bool,
        compress: bool,
        records: Arc<AtomicU64>,
    ) -> Result<PartFile> {
        if compress {
            rel.push_str(ZSTD_SUFFIX);
        }
        let target = dir.join(&rel);
        let part = dir.join(format!("{rel}.part"));
        let file = File::create(&part).map_err(|e| Error::write(&part, e))?;
        let writer = DataWriter::new(file, compress).map_err(|e| Error::write(&part, e))?;
        Ok(PartFile {
            resource,
            rel,
            part,
            target,
            writer,
            count: 0,
            keep_outbound_bodies,
            records,
        })
    }

    fn write_page(&mut self, page: Vec<Value>) -> Result<()> {
        let n = page.len() as u64;
        for mut record in page {
            sanitize_record(self.resource, &mut record, self.keep_outbound_bodies);
            serde_json::to_writer(&mut self.writer, &record)
                .map_err(|e| Error::write(&self.part, e.into()))?;
            self.writer
                .write_all(b"\n")
                .map_err(|e| Error::write(&self.part, e))?;
        }
        self.count += n;
        self.records.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// A page as received: each record sanitized and written without a `Value` of it, by
    /// what [`records::read_page`] noted of it when it read the page.
    fn write_raw_page(
        &mut self,
        page: &[&str],
        notes: Option<&[Option<records::Plain>]>,
    ) -> Result<()> {
        for (i, record) in page.iter().enumerate() {
            let (out, resource, keep) =
                (&mut self.writer, self.resource, self.keep_outbound_bodies);
            match notes {
                Some(notes) => records::write_noted(out, resource, record, &notes[i], keep),
                None => records::write_record(out, resource, record, keep),
            }
            .map_err(|e| Error::write(&self.part, e))?;
        }
        let n = page.len() as u64;
        self.count += n;
        self.records.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    fn finish(self) -> Result<(Resource, FileEntry)> {
        let file = self
            .writer
            .finish()
            .map_err(|e| Error::write(&self.part, e))?;
        file.sync_all().map_err(|e| Error::write(&self.part, e))?;
        std::fs::rename(&self.part, &self.target).map_err(|e| Error::write(&self.target, e))?;
        remove_other_form(&self.target)?;
        Ok((
            self.resource,
            FileEntry {
                path: self.rel,
                count: self.count,
            },
        ))
    }
}

/// Progress on stderr: a live line on a terminal, plain lines otherwise, nothing with --quiet.
struct Progress {
    quiet: bool,
    bar: Option<indicatif::ProgressBar>,
    records: Arc<AtomicU64>,
    stats: Arc<Stats>,
    slices_total: AtomicU64,
    slices_done: AtomicU64,
    /// Slices an earlier run had fetched (resume).
    slices_resumed: AtomicU64,
    started: Instant,
}

impl Progress {
    fn new(quiet: bool, stats: Arc<Stats>) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] slices {pos}/{len}, ETA {eta} {wide_msg}",
                )
                .expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            quiet,
            bar,
            records: Arc::new(AtomicU64::new(0)),
            stats,
            slices_total: AtomicU64::new(0),
            slices_done: AtomicU64::new(0),
            slices_resumed: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("pull: {text}"),
        }
    }

    fn counters(&self) -> String {
        let records = self.records.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        format!(
            "{}, {}, {}, {:.0} records/s",
            plural(records, "record", "records"),
            plural(self.stats.pages.load(Ordering::Relaxed), "page", "pages"),
            plural(
                self.stats.retries.load(Ordering::Relaxed),
                "retry",
                "retries"
            ),
            records as f64 / secs
        )
    }

    fn start_messages(&self, total: u64, done: u64) {
        self.slices_total.store(total, Ordering::Relaxed);
        self.slices_done.store(done, Ordering::Relaxed);
        self.slices_resumed.store(done, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
        }
        if done > 0 {
            self.line(&format!(
                "resuming: {done} of {} of messages already fetched",
                plural(total, "slice", "slices")
            ));
        }
    }

    fn replanned(&self, total: u64, calibration: slices::Calibration) {
        let done = self.slices_done.load(Ordering::Relaxed);
        self.slices_total.store(total, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
        }
        self.line(&format!(
            "messages: {total} slices of about {:.0} messages (the first ones found {:.2} messages per usage count)",
            calibration.per_slice, calibration.ratio
        ));
    }

    fn slice_done(&self) {
        let done = self.slices_done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.slices_total.load(Ordering::Relaxed);
        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.set_message(self.counters());
            }
            None => {
                // Plain output: about every tenth of the slices.
                let step = (total / 10).max(1);
                if done.is_multiple_of(step) || done == total {
                    self.line(&format!(
                        "messages: {done}/{total} slices, {}; {}",
                        self.eta(done, total),
                        self.counters()
                    ));
                }
            }
        }
    }

    /// The time left at the pace of this run's slices so far (the pace of a resumed run's
    /// earlier slices is unknown: they are left out of the average).
    fn eta(&self, done: u64, total: u64) -> String {
        let fetched_now = done.saturating_sub(self.slices_resumed.load(Ordering::Relaxed));
        if done >= total {
            return "ETA 0s".to_string();
        }
        if fetched_now == 0 {
            return "ETA unknown".to_string();
        }
        let per_slice = self.started.elapsed().as_secs_f64() / fetched_now as f64;
        let left = (per_slice * (total - done) as f64).round() as u64;
        match left {
            0..60 => format!("ETA {left}s"),
            60..3600 => format!("ETA {}m {:02}s", left / 60, left % 60),
            _ => format!("ETA {}h {:02}m", left / 3600, left % 3600 / 60),
        }
    }

    fn resource_done(&self, resource: Resource, entry: &FileEntry) {
        if resource != Resource::Messages {
            self.line(&format!(
                "{}: {}",
                resource.name(),
                plural(entry.count, "record", "records")
            ));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }

    fn done(&self, manifest: &Manifest) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let messages = manifest.resource(Resource::Messages).map_or(0, |e| e.count);
        self.line(&format!(
            "done in {:.1}s: {}; {}",
            self.started.elapsed().as_secs_f64(),
            plural(messages, "message", "messages"),
            self.counters()
        ));
    }
}

/// A message's time as the slices use it: `date_sent`, else `date_created`.
fn message_time(raw: &str) -> Option<chrono::DateTime<Utc>> {
    #[derive(Deserialize)]
    struct Times<'a> {
        #[serde(borrow)]
        date_sent: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow)]
        date_created: Option<std::borrow::Cow<'a, str>>,
    }
    let times: Times = serde_json::from_str(raw).ok()?;
    times
        .date_sent
        .or(times.date_created)
        .and_then(|t| crate::time::parse_twilio_time(&t))
}

/// An account that is not closed (a closed one's resources are gone).
fn is_open(account: &Value) -> bool {
    account.get("status").and_then(Value::as_str) != Some("closed")
}
