//! Recent traffic per number: the one streaming pass over the messages the plan needs.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::snapshot::Snapshot;
use crate::time::parse_twilio_time;

/// How far back from the snapshot's window end traffic counts as "recent".
pub const RECENT_DAYS: i64 = 30;

/// Messages on a number (as sender or recipient): in the recent period, in the whole snapshot,
/// and those with a `whatsapp:` address on the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Traffic {
    /// In the recent period.
    pub messages: u64,
    pub last: Option<DateTime<Utc>>,
    /// In the whole snapshot.
    pub total: u64,
    /// With the number as `whatsapp:+1...`: a WhatsApp sender sits on the number.
    pub whatsapp: u64,
}

/// The start of the recent period: 30 days before the snapshot's window end.
pub fn recent_since(snapshot: &Snapshot) -> DateTime<Utc> {
    snapshot.manifest.window.until - Duration::days(RECENT_DAYS)
}

/// Recent traffic per number: the messages each of the parent's numbers sent or received in the
/// 30 days before the window end, by PN sid; counted in the same read of the messages as the
/// other stages (`audit::run`, `audit::opt_outs_and_traffic`), in two halves.
pub struct TrafficScan<'a> {
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    /// Each of the parent's numbers by phone number, as an index into `sids` and into a
    /// worker's [`TrafficCounts`]: counting allocates nothing per message.
    by_phone: foldhash::HashMap<&'a str, u32>,
    sids: Vec<&'a str>,
}

/// One worker's counts, one slot per number of [`TrafficScan`].
#[derive(Debug, Default)]
pub struct TrafficCounts(Vec<Traffic>);

impl<'a> TrafficScan<'a> {
    pub fn new(snapshot: &'a Snapshot) -> Self {
        let sids: Vec<&str> = snapshot.numbers.iter().map(|n| n.sid.as_str()).collect();
        TrafficScan {
            since: recent_since(snapshot),
            until: snapshot.manifest.window.until,
            by_phone: snapshot
                .numbers
                .iter()
                .enumerate()
                .map(|(i, n)| (n.phone_number.as_str(), i as u32))
                .collect(),
            sids,
        }
    }

    /// Counts one message on the numbers it is on (a `whatsapp:` address counts for its
    /// number too), and as recent if it is. `time` gives the message's event time (None: it
    /// has none readable); it is asked only for a message on one of the numbers.
    pub fn visit(
        &self,
        out: &mut TrafficCounts,
        message: &crate::model::MessageRef<'_>,
        time: impl FnOnce() -> Option<DateTime<Utc>>,
    ) {
        // Look the numbers up before parsing the time: most lines are cheap to skip.
        let mut ours: [Option<(u32, bool)>; 2] = [None, None];
        for (slot, address) in ours
            .iter_mut()
            .zip([message.from.as_deref(), message.to.as_deref()])
        {
            let Some(address) = address else { continue };
            let (bare, whatsapp) = match address.strip_prefix("whatsapp:") {
                Some(bare) => (bare, true),
                None => (address, false),
            };
            if let Some(&number) = self.by_phone.get(bare) {
                *slot = Some((number, whatsapp));
            }
        }
        if ours.iter().all(Option::is_none) {
            return;
        }
        // A message without a readable time cannot be placed: not recent.
        let recent = time().filter(|t| *t >= self.since && *t < self.until);
        if out.0.is_empty() {
            out.0 = vec![Traffic::default(); self.sids.len()];
        }
        for (number, whatsapp) in ours.into_iter().flatten() {
            let entry = &mut out.0[number as usize];
            entry.total += 1;
            entry.whatsapp += u64::from(whatsapp);
            if let Some(t) = recent {
                entry.messages += 1;
                entry.last = entry.last.max(Some(t));
            }
        }
    }

    /// `visit` reading the message's time itself.
    pub fn visit_message(&self, out: &mut TrafficCounts, message: &crate::model::MessageRef<'_>) {
        self.visit(out, message, || {
            message.event_time_text().and_then(parse_twilio_time)
        });
    }

    /// Adds up the workers' counts, by PN sid, for the numbers with at least one message.
    pub fn merge(&self, parts: Vec<TrafficCounts>) -> HashMap<String, Traffic> {
        let mut sums = vec![Traffic::default(); self.sids.len()];
        for part in parts {
            for (sum, t) in sums.iter_mut().zip(part.0) {
                sum.messages += t.messages;
                sum.last = sum.last.max(t.last);
                sum.total += t.total;
                sum.whatsapp += t.whatsapp;
            }
        }
        self.sids
            .iter()
            .zip(sums)
            .filter(|(_, t)| t.total > 0)
            .map(|(sid, t)| (sid.to_string(), t))
            .collect()
    }
}
