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

    /// Counts one message on the numbers it is on (a `whatsapp:` address counts for its
    /// number too), and as recent if it is.
    pub fn visit(
        &self,
        out: &mut HashMap<String, Traffic>,
        message: &crate::model::MessageRef<'_>,
    ) {
        // Look the numbers up before parsing the time: most lines are cheap to skip.
        let mut ours: [Option<(&str, bool)>; 2] = [None, None];
        for (slot, address) in ours
            .iter_mut()
            .zip([message.from.as_deref(), message.to.as_deref()])
        {
            let Some(address) = address else { continue };
            let (bare, whatsapp) = match address.strip_prefix("whatsapp:") {
                Some(bare) => (bare, true),
                None => (address, false),
            };
            if let Some(pn) = self.by_phone.get(bare) {
                *slot = Some((pn, whatsapp));
            }
        }
        if ours.iter().all(Option::is_none) {
            return;
        }
        // A message without a readable time cannot be placed: not recent.
        let recent = message
            .event_time_text()
            .and_then(parse_twilio_time)
            .filter(|t| *t >= self.since && *t < self.until);
        for (pn, whatsapp) in ours.into_iter().flatten() {
            let entry = out.entry(pn.to_string()).or_default();
            entry.total += 1;
            entry.whatsapp += u64::from(whatsapp);
            if let Some(t) = recent {
                entry.messages += 1;
                entry.last = entry.last.max(Some(t));
            }
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
                entry.total += t.total;
                entry.whatsapp += t.whatsapp;
            }
        }
        out
    }
}
