//! Recent traffic per number: the one streaming pass over the messages the plan needs.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::error::Result;
use crate::snapshot::Snapshot;
use crate::time::parse_twilio_time;

/// How far back from the snapshot's window end traffic counts as "recent".
pub const RECENT_DAYS: i64 = 30;

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
