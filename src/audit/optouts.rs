//! The opt-out engine: docs/opt-out-rule.md, steps 3 to 7.
//!
//! One streaming pass over the messages collects the evidence events (inbound keywords and
//! 21610 failures, a small share of all messages), the possible opt-outs, and where each
//! outbound message that could be a violation sits and when it was sent (12 bytes each); the
//! states are derived per (scope, end user); then only the outbound messages sent while an
//! opt-out may be in force for their (scope, end user) are read again, in place, to find those
//! sent into an opt-out (violations). Compressed messages have no place to read at: there a
//! second streaming pass sifts them all.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::evidence::ImportedEvent;
use super::keywords::{KeywordClass, Keywords};
use super::mapping::{NumberTarget, ResolvedMapping};
use crate::error::{Error, Result};
use crate::model::{IncomingPhoneNumber, MessageRef};
use crate::snapshot::{LineRef, Snapshot};
use crate::time::rfc3339;
use crate::time::{parse_twilio_seconds, parse_twilio_time};

/// Twilio's "Attempt to send to unsubscribed recipient".
pub const ERROR_UNSUBSCRIBED: i64 = 21610;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evidence {
    /// An inbound message whose whole body is a keyword.
    InboundKeyword,
    /// An outbound message refused with error 21610.
    #[serde(rename = "error-21610")]
    Error21610,
    /// A row of an evidence file the user gave (`--evidence`).
    Imported,
}

impl Evidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::InboundKeyword => "inbound-keyword",
            Evidence::Error21610 => "error-21610",
            Evidence::Imported => "imported",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    OptOut,
    OptIn,
}

/// One evidence event (step 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub time: DateTime<Utc>,
    /// The message sid; `FILE:LINE` for an imported event.
    pub sid: String,
    /// An imported event's file (its place among the `--evidence` options) and line; None
    /// for a message of the log.
    pub imported: Option<(u32, u32)>,
    pub kind: EventKind,
    pub evidence: Evidence,
    /// The upper-case keyword; None for 21610 evidence.
    pub keyword: Option<String>,
    /// The Twilio number the event was on.
    pub twilio_number: String,
}

impl Event {
    /// Step 5's order: time, then sid (the larger sid is later); at the same time an imported
    /// event comes after the log's, and imported ones in the order of their files and lines.
    fn order(&self, other: &Event) -> Ordering {
        self.time
            .cmp(&other.time)
            .then_with(|| match (self.imported, other.imported) {
                (None, None) => self.sid.cmp(&other.sid),
                (a, b) => a.cmp(&b),
            })
    }

    /// True when the event comes before a log message of this time and sid.
    fn is_before_message(&self, time: DateTime<Utc>, sid: &str) -> bool {
        self.time < time || (self.time == time && self.imported.is_none() && *self.sid < *sid)
    }
}

/// Step 4's scope.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// A Messaging Service sid: the whole service.
    Service(String),
    /// A Twilio number (E.164): the pair (number, end user).
    Number(String),
}

impl Scope {
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Service(_) => "service",
            Scope::Number(_) => "number",
        }
    }
    pub fn service_sid(&self) -> &str {
        match self {
            Scope::Service(sid) => sid,
            Scope::Number(_) => "",
        }
    }
}

/// An opt-out in force at the end of the log: the scope, the end user, and the event that
/// began it (step 5), which every report cites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOut {
    pub scope: Scope,
    pub end_user: String,
    pub began: Event,
}

/// A near-miss inbound message for a person to review (step 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PossibleOptOut {
    pub message_sid: String,
    pub received_at: String,
    pub end_user: String,
    pub twilio_number: String,
    pub messaging_service_sid: String,
    pub body: String,
    pub reason: String,
}

pub const POSSIBLE_HEADER: [&str; 7] = [
    "message_sid",
    "received_at",
    "end_user",
    "twilio_number",
    "messaging_service_sid",
    "body",
    "reason",
];

/// An outbound message sent after an opt-out in the same scope, before any opt-in (step 7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub message_sid: String,
    pub sent_at: String,
    pub twilio_number: String,
    pub end_user: String,
    pub scope: &'static str,
    pub messaging_service_sid: String,
    pub status: String,
    pub opted_out_at: String,
    pub keyword: String,
    pub evidence: &'static str,
    pub evidence_message_sid: String,
}

pub const VIOLATION_HEADER: [&str; 11] = [
    "message_sid",
    "sent_at",
    "twilio_number",
    "end_user",
    "scope",
    "messaging_service_sid",
    "status",
    "opted_out_at",
    "keyword",
    "evidence",
    "evidence_message_sid",
];

/// A row of `optouts_lost.csv` and `optouts/<customer>.csv` (the columns of issue 2, in order),
/// borrowed from the [`LostRows`] that hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LostOptOut<'a> {
    pub end_user: &'a str,
    pub twilio_number: &'a str,
    pub twilio_number_sid: &'a str,
    pub scope: &'static str,
    pub messaging_service_sid: &'a str,
    pub opted_out_at: &'a str,
    pub keyword: &'a str,
    pub evidence: &'static str,
    pub evidence_message_sid: &'a str,
    pub target_customer: &'a str,
    pub target_account_sid: &'a str,
}

pub const LOST_HEADER: [&str; 11] = [
    "end_user",
    "twilio_number",
    "twilio_number_sid",
    "scope",
    "messaging_service_sid",
    "opted_out_at",
    "keyword",
    "evidence",
    "evidence_message_sid",
    "target_customer",
    "target_account_sid",
];

/// Events per end user, per scope; split by scope kind so that lookups borrow `&str`. Hashed
/// with foldhash: the keys are the user's own phone numbers and sids, read by the million.
#[derive(Debug, Default)]
struct EventIndex {
    by_service: FastMap<String, FastMap<String, Vec<Event>>>,
    by_number: FastMap<String, FastMap<String, Vec<Event>>>,
}

type FastMap<K, V> = foldhash::HashMap<K, V>;
type FastSet<T> = foldhash::HashSet<T>;

impl EventIndex {
    /// The events of the service's scope when there is one, else the number's (step 4).
    /// Keys are copied only when they are new: most events land on a known key.
    fn events_mut(
        &mut self,
        service: Option<&str>,
        number: &str,
        end_user: &str,
    ) -> &mut Vec<Event> {
        let (map, key) = match service {
            Some(s) => (&mut self.by_service, s),
            None => (&mut self.by_number, number),
        };
        if !map.contains_key(key) {
            map.insert(key.to_string(), FastMap::default());
        }
        let users = map.get_mut(key).expect("inserted above");
        if !users.contains_key(end_user) {
            users.insert(end_user.to_string(), Vec::new());
        }
        users.get_mut(end_user).expect("inserted above")
    }

    fn events(&self, service: Option<&str>, number: &str, end_user: &str) -> Option<&Vec<Event>> {
        match service {
            Some(s) => self.by_service.get(s)?.get(end_user),
            None => self.by_number.get(number)?.get(end_user),
        }
    }

    /// Adds another worker's events (order is restored by sorting afterwards). The smaller
    /// map goes into the larger one: the first worker's index is taken whole.
    fn merge(&mut self, other: EventIndex) {
        for (mine, mut theirs) in [
            (&mut self.by_service, other.by_service),
            (&mut self.by_number, other.by_number),
        ] {
            if mine.len() < theirs.len() {
                std::mem::swap(mine, &mut theirs);
            }
            for (scope, mut users) in theirs {
                let into = mine.entry(scope).or_default();
                if into.len() < users.len() {
                    std::mem::swap(into, &mut users);
                }
                for (user, events) in users {
                    into.entry(user).or_default().extend(events);
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.by_service.is_empty() && self.by_number.is_empty()
    }

    /// Every (service, Twilio number, end user) with its events, the key as
    /// [`EventIndex::events`] takes it (the number is empty for a service scope).
    fn iter(&self) -> impl Iterator<Item = ((Option<&str>, &str, &str), &[Event])> {
        let services = self.by_service.iter().flat_map(|(s, users)| {
            users
                .iter()
                .map(move |(u, list)| ((Some(s.as_str()), "", u.as_str()), list.as_slice()))
        });
        let numbers = self.by_number.iter().flat_map(|(n, users)| {
            users
                .iter()
                .map(move |(u, list)| ((None, n.as_str(), u.as_str()), list.as_slice()))
        });
        services.chain(numbers)
    }

    /// Step 5 for every (scope, end user): the opt-outs in force, sorted by scope then end
    /// user. Only those are cloned out of the index.
    fn opt_outs(&self) -> Vec<OptOut> {
        let in_force = |map: &FastMap<String, FastMap<String, Vec<Event>>>,
                        scope: fn(String) -> Scope| {
            map.iter()
                .flat_map(|(key, users)| {
                    users.iter().filter_map(move |(end_user, list)| {
                        opt_out_in_force(list).map(|began| OptOut {
                            scope: scope(key.clone()),
                            end_user: end_user.clone(),
                            began: began.clone(),
                        })
                    })
                })
                .collect::<Vec<_>>()
        };
        let mut opt_outs = in_force(&self.by_service, Scope::Service);
        opt_outs.extend(in_force(&self.by_number, Scope::Number));
        // (scope, end user) is unique: an unstable sort gives the one order.
        opt_outs.sort_unstable_by(|a, b| (&a.scope, &a.end_user).cmp(&(&b.scope, &b.end_user)));
        opt_outs
    }
}

/// What the engine found in a snapshot's messages.
#[derive(Debug, Default)]
pub struct OptOutAnalysis {
    /// Opt-outs in force at the end of the log, sorted by scope then end user.
    pub opt_outs: Vec<OptOut>,
    pub possible: Vec<PossibleOptOut>,
    pub violations: Vec<Violation>,
    pub messages_read: u64,
    pub events: u64,
    /// How many of the events came from the user's evidence files (`--evidence`).
    pub imported: u64,
}

/// Step 5: the opt-out in force after `events` (sorted), if the last one is an opt-out, with
/// the event that began it: the first opt-out after the last opt-in.
fn opt_out_in_force(events: &[Event]) -> Option<&Event> {
    let last = events.last()?;
    if last.kind != EventKind::OptOut {
        return None;
    }
    let start = events
        .iter()
        .rposition(|e| e.kind == EventKind::OptIn)
        .map_or(0, |i| i + 1);
    events[start..].iter().find(|e| e.kind == EventKind::OptOut)
}

/// Runs the engine over every message of the snapshot, with the events the user imported
/// (`--evidence`; empty for none).
pub fn analyze(
    snapshot: &Snapshot,
    keywords: &Keywords,
    imported: &[ImportedEvent],
) -> Result<OptOutAnalysis> {
    let (mut analysis, search) = analyze_opt_outs(snapshot, keywords, imported)?;
    analysis.violations = search.run(snapshot)?;
    Ok(analysis)
}

/// [`analyze`] without pass 2 (see [`finish_opt_outs`]).
pub fn analyze_opt_outs(
    snapshot: &Snapshot,
    keywords: &Keywords,
    imported: &[ImportedEvent],
) -> Result<(OptOutAnalysis, ViolationSearch)> {
    // Pass 1, on every core: each worker collects its own evidence.
    let (parts, messages_read) =
        snapshot.fold_messages(EvidenceScan::default, |e, at, m| e.visit(at, m, keywords))?;
    Ok(finish_opt_outs(parts, messages_read, imported))
}

/// One worker's evidence from pass 1 (public so that `audit` can collect it in the same read
/// of the messages as its other stages).
#[derive(Debug, Default)]
pub struct EvidenceScan {
    index: EventIndex,
    possible: Vec<PossibleOptOut>,
    events: u64,
    /// The messages that could be violations.
    candidates: Vec<Noted>,
    /// A message that could be a violation had no position to read it again at (a
    /// compressed file): pass 2 reads the messages again instead.
    unseekable: bool,
}

impl EvidenceScan {
    pub fn visit(
        &mut self,
        at: LineRef<'_>,
        message: &MessageRef<'_>,
        keywords: &Keywords,
    ) -> Result<()> {
        collect_evidence(
            at,
            message,
            keywords,
            &mut self.index,
            &mut self.possible,
            &mut self.events,
        )?;
        if let Some((service, number, end_user)) = violation_key(message) {
            match at
                .position
                .and_then(|p| Candidate::new(p, service, number, end_user))
            {
                Some(candidate) if !self.unseekable => {
                    self.candidates.push(Noted {
                        candidate: candidate.0,
                        second: candidate_second(message),
                    });
                }
                Some(_) => {}
                None => {
                    self.unseekable = true;
                    self.candidates = Vec::new();
                }
            }
        }
        Ok(())
    }
}

/// A message that could be a violation, in 8 bytes (held by the million): where its line
/// starts (`LineRef::position`, low 36 bits) and a 28-bit hash of the (scope, end user) it
/// would be looked up under (high bits). After pass 1 only those whose hash is one of a
/// (scope, end user) with events are read again, and checked exactly: a hash collision
/// costs one line read in vain, never a wrong answer.
#[derive(Debug, Clone, Copy)]
struct Candidate(u64);

const POSITION_BITS: u32 = 36;

impl Candidate {
    /// None when the position does not fit (64 GiB of messages and more).
    fn new(position: u64, service: Option<&str>, number: &str, end_user: &str) -> Option<Self> {
        (position >> POSITION_BITS == 0)
            .then(|| Candidate(key_hash(service, number, end_user) | position))
    }
    fn hash(self) -> u64 {
        self.0 & !((1 << POSITION_BITS) - 1)
    }
    fn position(self) -> u64 {
        self.0 & ((1 << POSITION_BITS) - 1)
    }
}

/// A [`Candidate`] and its time ([`candidate_second`]), in 12 bytes (packed: 16 with the
/// padding): one list of them per worker, about 110 MB at 10M messages.
#[derive(Debug, Clone, Copy)]
#[repr(C, packed(4))]
struct Noted {
    candidate: u64,
    second: u32,
}

/// A candidate's time in whole seconds since 1970 (rounded down), or [`NO_SECOND`] when pass
/// 1 cannot read it (pass 2 then reads the line again whatever the windows say, and reports
/// the bad time if its (scope, end user) has events).
fn candidate_second(message: &MessageRef<'_>) -> u32 {
    message
        .event_time_text()
        .and_then(parse_twilio_seconds)
        .and_then(|second| u32::try_from(second).ok())
        .filter(|&second| second != NO_SECOND)
        .unwrap_or(NO_SECOND)
}

const NO_SECOND: u32 = u32::MAX;

/// When an opt-out may be in force, per candidate hash: from an opt-out to the next opt-in
/// of the same (scope, end user) (step 5: the last event before a message decides), in whole
/// seconds widened outwards, ends included, the windows of the keys that share a hash
/// pooled. Pass 2 reads again only the candidates whose second falls in a window of their
/// hash, or whose time pass 1 could not read: a line outside every window cannot be sent
/// into an opt-out, and one inside is checked exactly. Without the windows pass 2 read every
/// message to an end user with events (575k lines at 10M messages, 13k of them violations).
#[derive(Default)]
struct InForceWindows {
    /// Hash of every key with events -> (first window, count) in `windows`.
    by_hash: FastMap<u64, (u32, u32)>,
    windows: Vec<(u32, u32)>,
}

impl InForceWindows {
    fn of(index: &EventIndex) -> InForceWindows {
        let rounded_down = |t: &DateTime<Utc>| t.timestamp().clamp(0, i64::from(u32::MAX)) as u32;
        let rounded_up = |t: &DateTime<Utc>| {
            let up = t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0);
            up.clamp(0, i64::from(u32::MAX)) as u32
        };
        let mut found: Vec<(u64, u32, u32)> = Vec::new();
        for ((service, number, end_user), events) in index.iter() {
            let hash = key_hash(service, number, end_user);
            // Every key marks its hash (see `must_read`), with a window no second is in.
            found.push((hash, u32::MAX, 0));
            let mut opened = None;
            for event in events {
                match event.kind {
                    EventKind::OptOut => {
                        opened.get_or_insert_with(|| rounded_down(&event.time));
                    }
                    EventKind::OptIn => {
                        if let Some(start) = opened.take() {
                            found.push((hash, start, rounded_up(&event.time)));
                        }
                    }
                }
            }
            if let Some(start) = opened {
                found.push((hash, start, u32::MAX));
            }
        }
        found.sort_unstable();
        found.dedup();
        let mut windows = InForceWindows::default();
        for group in found.chunk_by(|a, b| a.0 == b.0) {
            // Fits: fewer windows than events, and events are counted in u32 lines.
            let first = windows.windows.len() as u32;
            windows
                .windows
                .extend(group.iter().map(|&(_, a, b)| (a, b)));
            windows
                .by_hash
                .insert(group[0].0, (first, group.len() as u32));
        }
        windows
    }

    /// Whether a candidate must be read again: its hash has a window holding its second (a
    /// message's second may carry a fraction: `second + 1` is included), or its time is
    /// unknown and its hash has events.
    fn must_read(&self, candidate: Candidate, second: u32) -> bool {
        let Some(&(first, count)) = self.by_hash.get(&candidate.hash()) else {
            return false;
        };
        if second == NO_SECOND {
            return true;
        }
        self.windows[first as usize..(first + count) as usize]
            .iter()
            .any(|&(start, end)| start <= second.saturating_add(1) && second <= end)
    }
}

/// The hash of a (scope, end user), as [`EventIndex::events`] looks it up (the service when
/// there is one, else the number), in the bits above a [`Candidate`]'s position.
fn key_hash(service: Option<&str>, number: &str, end_user: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = foldhash::fast::FixedState::default().build_hasher();
    let (tag, scope) = match service {
        Some(service) => (0, service),
        None => (1, number),
    };
    hasher.write_u8(tag);
    hasher.write(scope.as_bytes());
    hasher.write_u8(0xff);
    hasher.write(end_user.as_bytes());
    hasher.finish() & !((1 << POSITION_BITS) - 1)
}

/// The key a message would be checked under as a violation (`check_violation`'s conditions):
/// (service, Twilio number, end user) of an outbound message that is not a 21610 failure.
fn violation_key<'m>(message: &'m MessageRef<'_>) -> Option<(Option<&'m str>, &'m str, &'m str)> {
    if !message.is_outbound() || message.error_code == Some(ERROR_UNSUBSCRIBED) {
        return None;
    }
    let (Some(end_user), Some(twilio_number)) = (message.to.as_deref(), message.from.as_deref())
    else {
        return None;
    };
    Some((message.service_sid(), twilio_number, end_user))
}

/// Merges the workers' evidence and the imported events and derives the states: the analysis
/// with no violations yet, and the search that finds them (pass 2), for the caller to run
/// beside other work (or not at all, when only the opt-outs matter).
pub fn finish_opt_outs(
    parts: Vec<EvidenceScan>,
    messages_read: u64,
    imported: &[ImportedEvent],
) -> (OptOutAnalysis, ViolationSearch) {
    let mut index = EventIndex::default();
    let mut possible = Vec::new();
    let mut events = 0u64;
    let mut candidates = Vec::with_capacity(parts.len());
    let mut unseekable = false;
    for part in parts {
        index.merge(part.index);
        possible.extend(part.possible);
        events += part.events;
        unseekable |= part.unseekable;
        candidates.push(part.candidates);
    }
    for event in imported {
        add_imported(&mut index, event);
    }
    events += imported.len() as u64;

    // Duplicated lines (a message fetched twice) must not count twice.
    for users in index
        .by_service
        .values_mut()
        .chain(index.by_number.values_mut())
    {
        for list in users.values_mut() {
            list.sort_by(Event::order);
            list.dedup_by(|a, b| a.sid == b.sid);
        }
    }

    let opt_outs = index.opt_outs();
    possible
        .sort_by(|a, b| (&a.received_at, &a.message_sid).cmp(&(&b.received_at, &b.message_sid)));
    possible.dedup_by(|a, b| a.message_sid == b.message_sid);
    let analysis = OptOutAnalysis {
        opt_outs,
        possible,
        violations: Vec::new(),
        messages_read,
        events,
        imported: imported.len() as u64,
    };
    let search = ViolationSearch {
        index,
        candidates,
        unseekable,
    };
    (analysis, search)
}

/// Pass 2, the outbound messages sent into an opt-out: the events of pass 1 and the
/// messages it noted as candidates.
#[derive(Debug)]
pub struct ViolationSearch {
    index: EventIndex,
    /// Each worker's candidates.
    candidates: Vec<Vec<Noted>>,
    unseekable: bool,
}

impl ViolationSearch {
    /// The violations, sorted by time then message sid.
    pub fn run(self, snapshot: &Snapshot) -> Result<Vec<Violation>> {
        let ViolationSearch {
            index,
            candidates,
            unseekable,
        } = self;
        let check = |found: &mut Vec<Violation>, at: LineRef<'_>, message: &MessageRef<'_>| {
            if let Some(v) = check_violation(at, message, &index)? {
                found.push(v);
            }
            Ok(())
        };
        let found: Vec<Vec<Violation>> = if index.is_empty() {
            // Nothing to look up.
            Vec::new()
        } else if !unseekable && snapshot.messages_are_seekable()? {
            // Pass 1 noted every message that could be a violation: read again only the
            // lines sent while an opt-out may be in force for their (scope, end user) (a
            // small share), in file order.
            let windows = InForceWindows::of(&index);
            let mut positions: Vec<u64> = Vec::new();
            for part in candidates {
                positions.extend(part.into_iter().filter_map(|noted| {
                    let candidate = Candidate(noted.candidate);
                    windows
                        .must_read(candidate, noted.second)
                        .then(|| candidate.position())
                }));
            }
            drop(windows);
            positions.sort_unstable();
            snapshot.fold_messages_at(&positions, Vec::new, check)?
        } else {
            drop(candidates);
            // Compressed messages cannot be read at a place: pass 1 checked every line whole,
            // pass 2 reads them all again but parses only those sent into a scope and to an
            // end user with events (a small share), sifted on the raw bytes.
            let sieve = ViolationSieve::new(&index);
            snapshot
                .fold_messages_sifted(Vec::new, |line| sieve.may_be_violation(line), check)?
                .0
        };
        // The index holds every event of the log: ~0.8 s to free at 10M messages.
        crate::drop_in_background(index);
        let mut violations: Vec<Violation> = found.into_iter().flatten().collect();
        violations.sort_by(|a, b| (&a.sent_at, &a.message_sid).cmp(&(&b.sent_at, &b.message_sid)));
        violations.dedup_by(|a, b| a.message_sid == b.message_sid);
        Ok(violations)
    }
}

fn required<'m>(at: LineRef<'_>, value: Option<&'m str>, field: &str) -> Result<&'m str> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| {
        Error::at_line(
            at.path,
            at.line,
            format!("message has no \"{field}\", which an opt-out event needs"),
        )
    })
}

fn collect_evidence(
    at: LineRef<'_>,
    message: &MessageRef<'_>,
    keywords: &Keywords,
    index: &mut EventIndex,
    possible: &mut Vec<PossibleOptOut>,
    events: &mut u64,
) -> Result<()> {
    // Step 3: which messages are evidence, and who is the end user.
    let (kind, evidence, keyword, end_user, twilio_number) = if message.is_inbound() {
        let Some(body) = message.body.as_deref() else {
            return Ok(());
        };
        // REVOKE and OPTOUT count only from the day they became defaults (rule step 1).
        let classified = match keywords.classify(body) {
            Some((KeywordClass::OptOut, k)) if keywords.is_dated(&k) => {
                let time = at.event_time(message)?;
                keywords
                    .in_force(&k, &time)
                    .then_some((KeywordClass::OptOut, k))
            }
            other => other,
        };
        match classified {
            Some((KeywordClass::OptOut, k)) => (
                EventKind::OptOut,
                Evidence::InboundKeyword,
                Some(k),
                "from",
                "to",
            ),
            Some((KeywordClass::OptIn, k)) => (
                EventKind::OptIn,
                Evidence::InboundKeyword,
                Some(k),
                "from",
                "to",
            ),
            Some((KeywordClass::Help, _)) => return Ok(()),
            None => {
                let time = message.event_time_text().and_then(parse_twilio_time);
                if let Some(reason) = keywords.possible_opt_out(body, time.as_ref()) {
                    let received_at = time.map(|t| rfc3339(&t)).unwrap_or_default();
                    possible.push(PossibleOptOut {
                        message_sid: message.sid.to_string(),
                        received_at,
                        end_user: message.from.as_deref().unwrap_or("").to_string(),
                        twilio_number: message.to.as_deref().unwrap_or("").to_string(),
                        messaging_service_sid: message.service_sid().unwrap_or("").to_string(),
                        body: body.to_string(),
                        reason,
                    });
                }
                return Ok(());
            }
        }
    } else if message.is_outbound() && message.error_code == Some(ERROR_UNSUBSCRIBED) {
        (EventKind::OptOut, Evidence::Error21610, None, "to", "from")
    } else {
        return Ok(());
    };
    let field = |name: &str| match name {
        "from" => message.from.as_deref(),
        _ => message.to.as_deref(),
    };
    let end_user = required(at, field(end_user), end_user)?;
    let twilio_number = required(at, field(twilio_number), twilio_number)?;
    let time = at.event_time(message)?;
    // Step 4: the service when the message names one, else the number.
    let service = message.service_sid();
    index
        .events_mut(service, twilio_number, end_user)
        .push(Event {
            time,
            sid: message.sid.to_string(),
            imported: None,
            kind,
            evidence,
            keyword,
            twilio_number: twilio_number.to_string(),
        });
    *events += 1;
    Ok(())
}

/// An imported row as an event of the rule, scoped exactly as a logged message of the same
/// shape would be (step 4): its service when it names one, else its number.
fn add_imported(index: &mut EventIndex, event: &ImportedEvent) {
    let service = event.messaging_service_sid.as_deref();
    index
        .events_mut(service, &event.twilio_number, &event.end_user)
        .push(Event {
            time: event.time,
            sid: event.reference.clone(),
            imported: Some(event.position),
            kind: event.kind,
            evidence: Evidence::Imported,
            keyword: None,
            twilio_number: event.twilio_number.clone(),
        });
}

/// Pass 2's sieve on raw lines that pass 1 read whole (so valid JSON of message records):
/// it turns a line away only when the line cannot be a violation, because its (scope, end
/// user) has no events. A line holding a backslash may spell anything through escapes: always
/// kept. Otherwise strings are their bytes, so a top-level key is one of the places where its
/// quoted name occurs followed by a colon; where a name occurs as a key more than once (a
/// nested object), the line is kept.
struct ViolationSieve<'i> {
    end_users: FastSet<&'i str>,
    /// (service sid, end user) and (Twilio number, end user) with events.
    service_pairs: FastSet<(&'i str, &'i str)>,
    number_pairs: FastSet<(&'i str, &'i str)>,
    to: memchr::memmem::Finder<'static>,
    from: memchr::memmem::Finder<'static>,
    service: memchr::memmem::Finder<'static>,
}

/// What a line holds under one key, as far as the sieve needs to know.
enum KeyValue<'l> {
    Absent,
    /// The key once, with a string value (None: another value, such as null).
    Once(Option<&'l str>),
    Repeated,
}

impl<'i> ViolationSieve<'i> {
    fn new(index: &'i EventIndex) -> Self {
        let pairs = |map: &'i FastMap<String, FastMap<String, Vec<Event>>>| {
            map.iter()
                .flat_map(|(scope, users)| users.keys().map(move |u| (scope.as_str(), u.as_str())))
                .collect::<FastSet<_>>()
        };
        let service_pairs = pairs(&index.by_service);
        let number_pairs = pairs(&index.by_number);
        let end_users = service_pairs
            .iter()
            .chain(&number_pairs)
            .map(|&(_, user)| user)
            .collect();
        ViolationSieve {
            end_users,
            service_pairs,
            number_pairs,
            to: memchr::memmem::Finder::new(b"\"to\"").into_owned(),
            from: memchr::memmem::Finder::new(b"\"from\"").into_owned(),
            service: memchr::memmem::Finder::new(b"\"messaging_service_sid\"").into_owned(),
        }
    }

    fn may_be_violation(&self, line: &[u8]) -> bool {
        if memchr::memchr(b'\\', line).is_some() {
            return true;
        }
        // The recipient first: most lines go to end users without events.
        let end_user = match key_value(line, &self.to) {
            KeyValue::Once(Some(to)) if self.end_users.contains(to) => to,
            KeyValue::Repeated => return true,
            _ => return false,
        };
        // Step 4's scope, as `MessageRef::service_sid` reads it (an empty sid is none).
        match key_value(line, &self.service) {
            KeyValue::Once(Some(service)) if !service.is_empty() => {
                return self.service_pairs.contains(&(service, end_user))
            }
            KeyValue::Repeated => return true,
            _ => {}
        }
        match key_value(line, &self.from) {
            KeyValue::Once(Some(number)) => self.number_pairs.contains(&(number, end_user)),
            KeyValue::Once(None) | KeyValue::Absent => false,
            KeyValue::Repeated => true,
        }
    }
}

/// The value of the key `finder` finds (its quoted name), in a line without backslashes.
fn key_value<'l>(line: &'l [u8], finder: &memchr::memmem::Finder<'_>) -> KeyValue<'l> {
    let mut found = KeyValue::Absent;
    for at in finder.find_iter(line) {
        let rest = line[at + finder.needle().len()..].trim_ascii_start();
        let Some(rest) = rest.strip_prefix(b":") else {
            continue; // a string value of that text, not a key
        };
        if !matches!(found, KeyValue::Absent) {
            return KeyValue::Repeated;
        }
        let value = rest.trim_ascii_start().strip_prefix(b"\"").map(|value| {
            let value = memchr::memchr(b'"', value).map_or(value, |end| &value[..end]);
            // The line is UTF-8 and the value is cut next to ASCII quotes.
            std::str::from_utf8(value).unwrap_or_default()
        });
        found = KeyValue::Once(value);
    }
    found
}

fn check_violation(
    at: LineRef<'_>,
    message: &MessageRef<'_>,
    index: &EventIndex,
) -> Result<Option<Violation>> {
    let Some((service, twilio_number, end_user)) = violation_key(message) else {
        return Ok(None);
    };
    let Some(events) = index.events(service, twilio_number, end_user) else {
        return Ok(None);
    };
    let time = at.event_time(message)?;
    let sid = message.sid.as_ref();
    // The events strictly before this message, in step 5's order.
    let before = events.partition_point(|e| e.is_before_message(time, sid));
    let Some(began) = opt_out_in_force(&events[..before]) else {
        return Ok(None);
    };
    let scope = match service {
        Some(s) => Scope::Service(s.to_string()),
        None => Scope::Number(twilio_number.to_string()),
    };
    Ok(Some(Violation {
        message_sid: sid.to_string(),
        sent_at: rfc3339(&time),
        twilio_number: twilio_number.to_string(),
        end_user: end_user.to_string(),
        scope: scope.kind(),
        messaging_service_sid: scope.service_sid().to_string(),
        status: message.status.as_deref().unwrap_or("").to_string(),
        opted_out_at: rfc3339(&began.time),
        keyword: began.keyword.clone().unwrap_or_default(),
        evidence: began.evidence.as_str(),
        evidence_message_sid: began.sid.clone(),
    }))
}

/// Which of the parent's Messaging Services each number sits in today, by PN sid.
pub fn services_by_number(snapshot: &Snapshot) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let by_phone: HashMap<&str, &str> = snapshot
        .numbers
        .iter()
        .map(|n| (n.phone_number.as_str(), n.sid.as_str()))
        .collect();
    // Only the parent's own services: opt-outs of a subaccount's service do not move.
    let foreign_services: HashSet<&str> = snapshot
        .services
        .iter()
        .filter(|s| {
            s.account_sid
                .as_deref()
                .is_some_and(|a| a != snapshot.parent_sid())
        })
        .map(|s| s.sid.as_str())
        .collect();
    for membership in &snapshot.service_numbers {
        if foreign_services.contains(membership.service_sid.as_str()) {
            continue;
        }
        // The membership sid is the PN sid; fall back to the phone number if a tool wrote
        // another sid there.
        let pn = if snapshot.numbers.iter().any(|n| n.sid == membership.sid) {
            Some(membership.sid.as_str())
        } else {
            membership
                .phone_number
                .as_deref()
                .and_then(|p| by_phone.get(p).copied())
        };
        if let Some(pn) = pn {
            let list = out.entry(pn.to_string()).or_default();
            if !list.contains(&membership.service_sid) {
                list.push(membership.service_sid.clone());
            }
        }
    }
    out
}

/// Step 6 for one number: the opt-outs it loses, one per end user, in the order of the end
/// users, appended to `out` as indices into `opt_outs`. The number's own scope and each of its
/// parent services' scopes hold their opt-outs sorted by end user (`by_scope`), so they are
/// merged in one pass; where several scopes hold the same end user, the opt-out that began
/// first stands (on a tie, the one listed first: the number's own, then the services in order).
fn lost_for_number(
    number: &IncomingPhoneNumber,
    services: &[String],
    opt_outs: &[OptOut],
    by_scope: &BTreeMap<&Scope, Vec<usize>>,
    out: &mut Vec<usize>,
) {
    let number_scope = Scope::Number(number.phone_number.clone());
    let service_scopes: Vec<Scope> = services.iter().map(|s| Scope::Service(s.clone())).collect();
    let lists: Vec<&[usize]> = std::iter::once(&number_scope)
        .chain(&service_scopes)
        .filter_map(|scope| by_scope.get(scope))
        .map(Vec::as_slice)
        .filter(|list| !list.is_empty())
        .collect();
    if let [only] = lists[..] {
        out.extend_from_slice(only);
        return;
    }
    let user = |i: usize| opt_outs[i].end_user.as_str();
    let mut at = vec![0; lists.len()];
    loop {
        // The next end user: the least at the heads of the lists.
        let next = lists
            .iter()
            .zip(&at)
            .filter_map(|(list, &k)| list.get(k).map(|&i| user(i)))
            .min();
        let Some(next) = next else { break };
        let mut chosen: Option<usize> = None;
        for (list, k) in lists.iter().zip(at.iter_mut()) {
            while let Some(&i) = list.get(*k).filter(|&&i| user(i) == next) {
                *k += 1;
                // Strictly earlier only: on a tie the one seen first stands.
                match chosen {
                    Some(c) if opt_outs[i].began.time >= opt_outs[c].began.time => {}
                    _ => chosen = Some(i),
                }
            }
        }
        out.extend(chosen);
    }
}

/// The text of one opt-out, made once and shared by every row that cites it.
#[derive(Debug, Clone)]
struct OptOutText {
    end_user: Box<str>,
    service: Box<str>,
    opted_out_at: Box<str>,
    keyword: Box<str>,
    evidence_sid: Box<str>,
    scope: &'static str,
    evidence: &'static str,
}

impl OptOutText {
    fn of(opt_out: &OptOut) -> OptOutText {
        OptOutText {
            end_user: opt_out.end_user.as_str().into(),
            service: opt_out.scope.service_sid().into(),
            opted_out_at: rfc3339(&opt_out.began.time).into(),
            keyword: opt_out.began.keyword.as_deref().unwrap_or("").into(),
            evidence_sid: opt_out.began.sid.as_str().into(),
            scope: opt_out.scope.kind(),
            evidence: opt_out.began.evidence.as_str(),
        }
    }
}

/// Where the rows of one number go: its number and target, shared by its rows.
#[derive(Debug, Clone)]
struct RowTarget {
    number: Box<str>,
    number_sid: Box<str>,
    customer: Box<str>,
    account: Box<str>,
    /// The mapping moves the number: its rows are lost (without `all`, every row is).
    moves: bool,
}

/// The lost rows, in their final order, compact: each row is two indices, one into the
/// targets (a number and where it goes) and one into the opt-outs' text. A service opt-out
/// stands on every number of the service, so rows run to millions while the opt-outs and
/// numbers stay few; every writer reads the rows from here, one at a time.
#[derive(Debug, Clone, Default)]
pub struct LostRows {
    targets: Vec<RowTarget>,
    texts: Vec<OptOutText>,
    rows: Vec<(u32, u32)>,
}

impl LostRows {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Row `i` (0-based, in the file's order).
    pub fn get(&self, i: usize) -> LostOptOut<'_> {
        let (target, text) = self.rows[i];
        self.compose(target, text)
    }

    /// The rows in order as pairs of indices (target, opt-out): rows that share an index share
    /// the fields that come from it, so that a writer can render those fields once.
    pub fn pairs(&self) -> &[(u32, u32)] {
        &self.rows
    }

    /// How many targets (a number and where it goes) and opt-outs the pairs index.
    pub fn counts(&self) -> (usize, usize) {
        (self.targets.len(), self.texts.len())
    }

    /// The customer of target `target` (index as in [`LostRows::pairs`]; empty for a number
    /// that stays).
    pub fn customer_of(&self, target: u32) -> &str {
        &self.targets[target as usize].customer
    }

    /// The row of target `target` and opt-out `text` (indices as in [`LostRows::pairs`]).
    pub fn compose(&self, target: u32, text: u32) -> LostOptOut<'_> {
        let (target, text) = (&self.targets[target as usize], &self.texts[text as usize]);
        LostOptOut {
            end_user: &text.end_user,
            twilio_number: &target.number,
            twilio_number_sid: &target.number_sid,
            scope: text.scope,
            messaging_service_sid: &text.service,
            opted_out_at: &text.opted_out_at,
            keyword: &text.keyword,
            evidence: text.evidence,
            evidence_message_sid: &text.evidence_sid,
            target_customer: &target.customer,
            target_account_sid: &target.account,
        }
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = LostOptOut<'_>> + '_ {
        (0..self.rows.len()).map(|i| self.get(i))
    }

    /// The rows of the numbers the mapping moves, with their indices: every row, unless the
    /// rows were made with `all` (which adds the numbers that stay and the scopes no number
    /// holds). What the moves lose is the same rows, in the same order, either way.
    pub fn moving(&self) -> impl Iterator<Item = (usize, LostOptOut<'_>)> + '_ {
        self.rows
            .iter()
            .enumerate()
            .filter(|(_, (target, _))| self.targets[*target as usize].moves)
            .map(|(i, &(target, text))| (i, self.compose(target, text)))
    }

    /// Appends a row made elsewhere (its own target and text); its number moves when the row
    /// names a target customer.
    pub fn push(&mut self, row: LostOptOut<'_>) {
        self.targets.push(RowTarget {
            number: row.twilio_number.into(),
            number_sid: row.twilio_number_sid.into(),
            customer: row.target_customer.into(),
            account: row.target_account_sid.into(),
            moves: !row.target_customer.is_empty(),
        });
        self.texts.push(OptOutText {
            end_user: row.end_user.into(),
            service: row.messaging_service_sid.into(),
            opted_out_at: row.opted_out_at.into(),
            keyword: row.keyword.into(),
            evidence_sid: row.evidence_message_sid.into(),
            scope: row.scope,
            evidence: row.evidence,
        });
        self.rows
            .push((self.targets.len() as u32 - 1, self.texts.len() as u32 - 1));
    }
}

/// Where a run of rows comes from: a number of the snapshot, or (with `all`) a scope no
/// number of the snapshot holds.
enum RowSource<'a> {
    Number(&'a IncomingPhoneNumber, &'a [String]),
    Unheld(&'a [usize]),
}

/// The rows of `optouts_lost.csv`: what the mapped moves would lose (step 6), sorted by
/// target customer, Twilio number, end user (then scope, then the order the sources are
/// listed in). With `all`, every opt-out in force in the parent, moving or not (see the
/// docs). The rows are made in their final order, two indices each (see [`LostRows`]).
pub fn lost_opt_outs(
    snapshot: &Snapshot,
    analysis: &OptOutAnalysis,
    mapping: &ResolvedMapping,
    all: bool,
) -> LostRows {
    let opt_outs = &analysis.opt_outs;
    let mut by_scope: BTreeMap<&Scope, Vec<usize>> = BTreeMap::new();
    for (i, opt_out) in opt_outs.iter().enumerate() {
        by_scope.entry(&opt_out.scope).or_default().push(i);
    }
    // Each scope's opt-outs by end user (the engine lists them so; made sure, it is cheap).
    for list in by_scope.values_mut() {
        if !list.is_sorted_by_key(|&i| &opt_outs[i].end_user) {
            list.sort_by(|&a, &b| opt_outs[a].end_user.cmp(&opt_outs[b].end_user));
        }
    }
    let memberships = services_by_number(snapshot);
    let empty = || Box::<str>::from("");
    // Each source with the target of its rows, in the order the rows were always listed.
    let mut sources: Vec<(RowTarget, RowSource)> = Vec::new();
    for number in &snapshot.numbers {
        let target = match mapping.target(&number.sid) {
            Some(NumberTarget::Move(t)) => Some(t),
            _ => None,
        };
        if target.is_none() && !all {
            continue;
        }
        let services = memberships.get(&number.sid).map_or(&[][..], Vec::as_slice);
        let row_target = RowTarget {
            number: number.phone_number.as_str().into(),
            number_sid: number.sid.as_str().into(),
            customer: target.map_or_else(empty, |t| t.customer.as_str().into()),
            account: target
                .and_then(|t| t.account_sid.as_deref())
                .map_or_else(empty, Into::into),
            moves: target.is_some(),
        };
        sources.push((row_target, RowSource::Number(number, services)));
    }
    if all {
        // Opt-outs whose scope no number of the snapshot holds (a released number, a
        // service with no numbers left): still in force, listed without a number.
        let held_numbers: HashSet<&str> = snapshot
            .numbers
            .iter()
            .map(|n| n.phone_number.as_str())
            .collect();
        let held_services: HashSet<&str> =
            memberships.values().flatten().map(String::as_str).collect();
        for (scope, indices) in &by_scope {
            let held = match scope {
                Scope::Number(n) => held_numbers.contains(n.as_str()),
                Scope::Service(s) => held_services.contains(s.as_str()),
            };
            if held {
                continue;
            }
            let row_target = RowTarget {
                number: match scope {
                    Scope::Number(n) => n.as_str().into(),
                    Scope::Service(_) => empty(),
                },
                number_sid: empty(),
                customer: empty(),
                account: empty(),
                moves: false,
            };
            sources.push((row_target, RowSource::Unheld(indices)));
        }
    }
    // Sources of the same customer and number share a run of rows; a stable sort keeps their
    // listed order, which breaks the ties between their rows.
    sources.sort_by(|(a, _), (b, _)| {
        crate::model::customer_order(&a.customer, &b.customer).then_with(|| a.number.cmp(&b.number))
    });
    // The text of an opt-out is made once, when a row first cites it.
    let mut text_of: Vec<u32> = vec![u32::MAX; opt_outs.len()];
    let mut texts: Vec<OptOutText> = Vec::new();
    let mut rows: Vec<(u32, u32)> = Vec::new();
    let mut chosen: Vec<usize> = Vec::new();
    let mut start = 0;
    while start < sources.len() {
        let key = |i: usize| (&sources[i].0.customer, &sources[i].0.number);
        let end = (start..sources.len())
            .find(|&i| key(i) != key(start))
            .unwrap_or(sources.len());
        let first = rows.len();
        for (target, (_, source)) in sources.iter().enumerate().take(end).skip(start) {
            // The opt-outs of each source, by end user (a number's are one per end user).
            chosen.clear();
            match source {
                RowSource::Number(number, services) => {
                    lost_for_number(number, services, opt_outs, &by_scope, &mut chosen)
                }
                RowSource::Unheld(indices) => chosen.extend_from_slice(indices),
            };
            for &i in &chosen {
                if text_of[i] == u32::MAX {
                    text_of[i] = texts.len() as u32;
                    texts.push(OptOutText::of(&opt_outs[i]));
                }
                rows.push((target as u32, text_of[i]));
            }
        }
        if end - start > 1 {
            rows[first..].sort_by(|a, b| {
                let (a, b) = (&texts[a.1 as usize], &texts[b.1 as usize]);
                (&a.end_user, a.scope).cmp(&(&b.end_user, b.scope))
            });
        }
        start = end;
    }
    rows.shrink_to_fit();
    LostRows {
        targets: sources.into_iter().map(|(target, _)| target).collect(),
        texts,
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event(sec: i64, sid: &str, kind: EventKind) -> Event {
        Event {
            time: Utc.timestamp_opt(1_700_000_000 + sec, 0).unwrap(),
            sid: sid.to_string(),
            imported: None,
            kind,
            evidence: Evidence::InboundKeyword,
            keyword: None,
            twilio_number: "+15550000001".into(),
        }
    }

    #[test]
    fn last_event_decides_and_the_first_opt_out_after_the_last_opt_in_is_cited() {
        use EventKind::*;
        let events = [
            event(1, "SM01", OptOut),
            event(2, "SM02", OptOut),
            event(3, "SM03", OptIn),
            event(4, "SM04", OptOut),
            event(5, "SM05", OptOut),
        ];
        assert_eq!(opt_out_in_force(&events).unwrap().sid, "SM04");
        assert_eq!(opt_out_in_force(&events[..2]).unwrap().sid, "SM01");
        assert_eq!(opt_out_in_force(&events[..3]), None);
        assert_eq!(opt_out_in_force(&[]), None);
    }

    #[test]
    fn the_violation_sieve_keeps_every_line_sent_into_a_scope_with_events() {
        let mut index = EventIndex::default();
        let user = "+15550001111";
        index.events_mut(Some("MG1"), "+1800", user);
        index.events_mut(None, "+1800", user);
        let sieve = ViolationSieve::new(&index);
        let kept = |line: &str| sieve.may_be_violation(line.as_bytes());
        // Kept: the pair has events (through the service, else through the number).
        assert!(kept(
            r#"{"from":"+1","messaging_service_sid":"MG1","to":"+15550001111"}"#
        ));
        assert!(kept(
            r#"{"from":"+1800","messaging_service_sid":null,"to":"+15550001111"}"#
        ));
        assert!(kept(
            r#"{"from":"+1800","messaging_service_sid":"","to":"+15550001111"}"#
        ));
        assert!(kept(r#"{"to" :  "+15550001111" ,"from": "+1800"}"#));
        // A nested key or a value of the key's text does not hide the record's own.
        assert!(kept(
            r#"{"x":{"To":"+1"},"body":"to","from":"+1800","to":"+15550001111"}"#
        ));
        assert!(kept(
            r#"{"x":{"from":"+1"},"from":"+1800","to":"+15550001111"}"#
        ));
        // An escape may spell a key or a number: kept whatever it says.
        assert!(kept(r#"{"sid":"SM1","\u0074o":"+15550001112"}"#));
        assert!(kept(r#"{"sid":"SM1","body":"say \"hi\"","to":"+1555"}"#));
        // Turned away: no events for that end user, or not in that scope.
        assert!(!kept(r#"{"from":"+15550001111","to":"+15550001112"}"#));
        assert!(!kept(
            r#"{"from":"+1800","messaging_service_sid":"MG2","to":"+15550001111"}"#
        ));
        assert!(!kept(r#"{"from":"+1801","to":"+15550001111"}"#));
        assert!(!kept(r#"{"from":null,"to":"+15550001111"}"#));
        assert!(!kept(r#"{"to":"+15550001111"}"#));
        assert!(!kept(r#"{"to":null,"body":"+15550001111"}"#));
        assert!(!kept(r#"{"body":"to","to":"+1555000111"}"#));
        assert!(!kept(r#"{"sid":"SM1"}"#));
    }

    #[test]
    fn a_number_loses_one_opt_out_per_end_user_the_earliest_across_its_scopes() {
        let number = IncomingPhoneNumber {
            phone_number: "+15550000001".into(),
            ..Default::default()
        };
        let services = ["MG1".to_string(), "MG2".to_string()];
        // (scope, end user, began): users spread over the scopes, some in several.
        let spec: [(Scope, &str, i64); 9] = [
            (Scope::Number(number.phone_number.clone()), "+2", 5),
            (Scope::Number(number.phone_number.clone()), "+4", 1),
            (Scope::Service("MG1".into()), "+1", 3),
            (Scope::Service("MG1".into()), "+2", 5),
            (Scope::Service("MG1".into()), "+4", 0),
            (Scope::Service("MG2".into()), "+2", 4),
            (Scope::Service("MG2".into()), "+3", 9),
            (Scope::Service("MG2".into()), "+4", 0),
            (Scope::Service("MG9".into()), "+0", 0),
        ];
        let opt_outs: Vec<OptOut> = spec
            .iter()
            .enumerate()
            .map(|(i, (scope, user, at))| OptOut {
                scope: scope.clone(),
                end_user: user.to_string(),
                began: event(*at, &format!("SM{i}"), EventKind::OptOut),
            })
            .collect();
        let mut by_scope: BTreeMap<&Scope, Vec<usize>> = BTreeMap::new();
        for (i, o) in opt_outs.iter().enumerate() {
            by_scope.entry(&o.scope).or_default().push(i);
        }
        let mut lost = Vec::new();
        lost_for_number(&number, &services, &opt_outs, &by_scope, &mut lost);
        // +1 only MG1; +2 MG2 is earlier; +3 only MG2; +4 MG1 and MG2 tie at 0, earlier than
        // the number's: MG1, listed first. MG9 is not the number's.
        assert_eq!(lost, [2, 5, 6, 4]);
        // A number in no service: its own, as they are.
        let mut lost = Vec::new();
        lost_for_number(&number, &[], &opt_outs, &by_scope, &mut lost);
        assert_eq!(lost, [0, 1]);
    }

    #[test]
    fn same_second_ties_go_to_the_larger_sid() {
        use EventKind::*;
        let mut events = vec![event(1, "SMb", OptIn), event(1, "SMa", OptOut)];
        events.sort_by(Event::order);
        assert_eq!(opt_out_in_force(&events), None, "SMb (opt-in) is later");
        let mut events = vec![event(1, "SMa", OptIn), event(1, "SMb", OptOut)];
        events.sort_by(Event::order);
        assert_eq!(opt_out_in_force(&events).unwrap().sid, "SMb");
    }

    fn imported(sec: i64, file: u32, line: u32, kind: EventKind) -> Event {
        Event {
            sid: format!("ev{file}.csv:{line}"),
            imported: Some((file, line)),
            evidence: Evidence::Imported,
            ..event(sec, "", kind)
        }
    }

    #[test]
    fn an_imported_event_comes_after_the_log_events_of_its_time() {
        use EventKind::*;
        // "zz" would sort after any sid: the imported event still comes after the messages.
        let mut events = vec![
            imported(1, 0, 2, OptOut),
            event(1, "SMff", OptIn),
            event(1, "SM00", OptIn),
            event(0, "SMzz", OptIn),
        ];
        events.sort_by(Event::order);
        let order: Vec<&str> = events.iter().map(|e| e.sid.as_str()).collect();
        assert_eq!(order, ["SMzz", "SM00", "SMff", "ev0.csv:2"]);
        assert_eq!(opt_out_in_force(&events).unwrap().sid, "ev0.csv:2");
        // An outbound message of the same second is not after the imported opt-out.
        assert!(!events[3].is_before_message(events[3].time, "SM00"));
        assert!(events[2].is_before_message(events[3].time, "SMfg"));
        assert!(!events[2].is_before_message(events[3].time, "SMfe"));
        assert!(events[3].is_before_message(events[3].time + chrono::Duration::seconds(1), ""));
    }

    #[test]
    fn imported_events_of_one_time_follow_their_files_then_their_lines() {
        use EventKind::*;
        let mut events = vec![
            imported(1, 1, 2, OptIn),
            imported(1, 0, 9, OptOut),
            imported(1, 0, 3, OptIn),
            imported(0, 1, 5, OptOut),
        ];
        events.sort_by(Event::order);
        let order: Vec<&str> = events.iter().map(|e| e.sid.as_str()).collect();
        assert_eq!(order, ["ev1.csv:5", "ev0.csv:3", "ev0.csv:9", "ev1.csv:2"]);
        assert_eq!(
            opt_out_in_force(&events),
            None,
            "the second file's opt-in is last"
        );
        assert_eq!(opt_out_in_force(&events[..3]).unwrap().sid, "ev0.csv:9");
    }
}

/// The violations found by reading candidates again in place, against the sifted second read
/// that compressed messages take.
#[cfg(test)]
mod one_read_tests {
    use super::*;
    use crate::snapshot::{DataWriter, OpenOptions, Resource, SnapshotWriter, Window};
    use std::io::Write;

    const SVC: &str = "MG00000000000000000000000000000001";

    fn message(sid: &str, dir: &str, from: &str, to: &str, service: &str, extra: &str) -> String {
        let service = if service.is_empty() {
            "null".to_string()
        } else {
            format!("\"{service}\"")
        };
        format!(
            "{{\"sid\":\"{sid}\",\"direction\":\"{dir}\",\"from\":\"{from}\",\"to\":\"{to}\",\"messaging_service_sid\":{service},{extra}}}\n"
        )
    }

    fn at(minute: u32, body: &str) -> String {
        format!("\"date_sent\":\"Mon, 05 Jan 2026 10:{minute:02}:00 +0000\",\"status\":\"delivered\",\"body\":\"{body}\"")
    }

    /// Writes a snapshot whose messages are `lines` exactly (compressed when asked).
    fn snapshot(dir: &std::path::Path, lines: &[String], compress: bool) -> Snapshot {
        let window = Window {
            since: "2026-01-01T00:00:00Z".parse().unwrap(),
            until: "2026-02-01T00:00:00Z".parse().unwrap(),
        };
        let parent = format!("AC{:032}", 1);
        let mut writer = SnapshotWriter::create(dir, &parent, window, true).unwrap();
        let account = serde_json::json!({"sid": parent, "friendly_name": "Parent", "status": "active", "type": "Full"});
        writer.write(Resource::Accounts, account).unwrap();
        let records = lines.iter().filter(|l| !l.trim().is_empty()).count();
        for _ in 0..records {
            writer
                .write(Resource::Messages, serde_json::json!({"sid": "SMx"}))
                .unwrap();
        }
        writer.finish("test").unwrap();
        let text = lines.concat();
        std::fs::remove_file(dir.join("messages.jsonl")).unwrap();
        let name = if compress {
            "messages.jsonl.zst"
        } else {
            "messages.jsonl"
        };
        let file = std::fs::File::create(dir.join(name)).unwrap();
        let mut out = DataWriter::new(file, compress).unwrap();
        out.write_all(text.as_bytes()).unwrap();
        out.finish().unwrap();
        Snapshot::open(dir, OpenOptions::default()).unwrap()
    }

    fn violations(lines: &[String], compress: bool) -> Result<Vec<Violation>> {
        let dir = tempfile::tempdir().unwrap();
        let snap = snapshot(dir.path(), lines, compress);
        assert_eq!(snap.messages_are_seekable().unwrap(), !compress);
        let keywords = Keywords::new(&[], &[]).unwrap();
        Ok(analyze(&snap, &keywords, &[])?.violations)
    }

    #[test]
    fn reading_candidates_again_finds_what_the_sifted_read_finds() {
        let (n1, u1, u2, u3) = (
            "+18005550001",
            "+15550000001",
            "+15550000002",
            "+15550000003",
        );
        let mut lines = vec![
            message("SM01", "inbound", u1, n1, "", &at(1, "stop")),
            // Sent into the number-scope opt-out, twice in the log (fetched twice).
            message("SM02", "outbound-api", n1, u1, "", &at(2, "hello")),
            message("SM02", "outbound-api", n1, u1, "", &at(2, "hello")),
            // A 21610 failure is the block working, not a violation.
            message(
                "SM03",
                "outbound-api",
                n1,
                u1,
                "",
                &format!("{},\"error_code\":21610", at(3, "")),
            ),
            // The service scope, with the end user spelled through escapes.
            message("SM04", "inbound", u2, "+18005550009", SVC, &at(4, " Stop ")),
            message(
                "SM05",
                "outbound-api",
                "+18005550008",
                "+1555000000\\u0032",
                SVC,
                &at(5, "a \\\"quoted\\\" body"),
            ),
            // No events for this end user.
            message("SM06", "outbound-api", n1, u3, "", &at(6, "hi")),
        ];
        // Many lines between, so that the later ones sit in other blocks and spans.
        for n in 0..3000 {
            lines.push(message(
                &format!("SMf{n:05}"),
                "outbound-api",
                n1,
                u3,
                "",
                &at(7, "filler"),
            ));
            if n % 1000 == 0 {
                lines.push("\n".to_string());
            }
        }
        // A long line sent into the opt-out (longer than a read-again span's tail).
        let long = "y".repeat(10_000);
        lines.push(message("SM07", "outbound-api", n1, u1, "", &at(8, &long)));
        lines.push(message("SM08", "inbound", u1, n1, "", &at(9, "START")));
        lines.push(message(
            "SM09",
            "outbound-api",
            n1,
            u1,
            "",
            &at(10, "after opt-in"),
        ));
        // The last line, without a line break, sent into the service's opt-out.
        let last = message(
            "SM10",
            "outbound-api",
            "+18005550007",
            u2,
            SVC,
            &at(11, "last"),
        );
        lines.push(last.trim_end().to_string());

        let plain = violations(&lines, false).unwrap();
        let sifted = violations(&lines, true).unwrap();
        assert_eq!(plain, sifted);
        let sids: Vec<&str> = plain.iter().map(|v| v.message_sid.as_str()).collect();
        assert_eq!(sids, ["SM02", "SM05", "SM07", "SM10"]);
        assert_eq!(plain[1].end_user, u2);
        assert_eq!(plain[1].evidence_message_sid, "SM04");
    }

    /// Pass 2 reads again only the candidates inside an opt-out's window (`InForceWindows`):
    /// messages sent in the same second as the opt-out or the opt-in that ends it are decided
    /// by their sids, so the windows must hold their whole seconds. Compared with the sifted
    /// read of every line (no windows) and with the rule's answer.
    #[test]
    fn messages_at_the_edges_of_an_opt_out_are_read_again() {
        let (n1, u1) = ("+18005550001", "+15550000001");
        let out = |sid: &str, m: u32| message(sid, "outbound-api", n1, u1, "", &at(m, "x"));
        let mut lines = vec![
            out("SM00", 0),
            // The opt-out at 10:01:00 and, in its second, a message before it and one after.
            out("SM05", 1),
            message("SM10", "inbound", u1, n1, "", &at(1, "STOP")),
            out("SM20", 1),
            out("SM25", 2),
            // The opt-in at 10:03:00, with a message just before it and one just after.
            out("SM29", 3),
            message("SM30", "inbound", u1, n1, "", &at(3, "START")),
            out("SM31", 3),
            out("SM40", 4),
            // A second opt-out, never ended: everything after it is sent into it.
            message("SM50", "inbound", u1, n1, "", &at(5, "STOP")),
            out("SM51", 5),
            out("SM60", 59),
        ];
        // Times with a fraction of a second (RFC 3339): just before the opt-out, inside the
        // window, just after the opt-in.
        let fraction = |sid: &str, time: &str| {
            message(
                sid,
                "outbound-api",
                n1,
                u1,
                "",
                &format!("\"date_sent\":\"{time}\""),
            )
        };
        lines.push(fraction("SM11", "2026-01-05T10:00:59.5Z"));
        lines.push(fraction("SM26", "2026-01-05T10:02:30.25Z"));
        lines.push(fraction("SM32", "2026-01-05T10:03:00.5Z"));
        let plain = violations(&lines, false).unwrap();
        let sifted = violations(&lines, true).unwrap();
        assert_eq!(plain, sifted);
        let sids: Vec<&str> = plain.iter().map(|v| v.message_sid.as_str()).collect();
        assert_eq!(sids, ["SM20", "SM25", "SM26", "SM29", "SM51", "SM60"]);
    }

    #[test]
    fn a_candidate_read_again_with_a_bad_time_names_its_line() {
        let (n1, u1) = ("+18005550001", "+15550000001");
        let mut lines = vec![message("SM01", "inbound", u1, n1, "", &at(1, "STOP"))];
        for n in 0..50 {
            lines.push(message(
                &format!("SMf{n:03}"),
                "outbound-api",
                n1,
                "+1555",
                "",
                &at(2, "x"),
            ));
        }
        lines.push(message(
            "SM02",
            "outbound-api",
            n1,
            u1,
            "",
            "\"date_sent\":\"yesterday\"",
        ));
        for compress in [false, true] {
            let err = violations(&lines, compress).unwrap_err().to_string();
            assert!(
                err.contains(":52: message time \"yesterday\""),
                "{compress}: {err}"
            );
        }
    }
}
