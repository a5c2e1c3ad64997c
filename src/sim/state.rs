//! The twin's state: the snapshot as loaded, plus everything the writes changed since, all in
//! memory behind one lock (the snapshot folder is never written).

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::data::{SimData, SimMessage};
use super::inbound::InboundLog;
use super::optout_state::OptOutState;
use super::writes::WriteLog;
use crate::error::Result;

pub struct World {
    pub data: SimData,
    /// Messages created through the twin (sends and inbound texts), oldest first.
    pub created_messages: Vec<SimMessage>,
    pub optouts: OptOutState,
    pub inbound: InboundLog,
    /// Every write served, in order (`GET /__twin/writes`).
    pub writes: WriteLog,
    /// Consents Bulk requests per account in the last minute (Twilio's 100 a minute).
    pub consent_requests: HashMap<String, VecDeque<Instant>>,
    /// Sids handed out so far (part of every new sid, so they never repeat).
    sid_counter: u64,
}

impl World {
    pub fn load(dir: &Path) -> Result<World> {
        let data = SimData::load(dir)?;
        let optouts = OptOutState::seed(dir, &data)?;
        Ok(World {
            data,
            created_messages: Vec::new(),
            optouts,
            inbound: InboundLog::default(),
            writes: WriteLog::default(),
            consent_requests: HashMap::new(),
            sid_counter: 0,
        })
    }

    /// A fresh sid with Twilio's shape (`prefix` + 32 hex digits). The `7717` marker keeps it
    /// apart from any snapshot sid a test builds from small numbers.
    pub fn new_sid(&mut self, prefix: &str) -> String {
        self.sid_counter += 1;
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64;
        format!(
            "{prefix}7717{:012x}{:016x}",
            self.sid_counter & 0xffff_ffff_ffff,
            nanos
        )
    }

    /// Records a message the twin created, so that GET Messages lists it.
    pub fn record_message(&mut self, time: DateTime<Utc>, record: &Value) {
        let text = |k: &str| record.get(k).and_then(Value::as_str).unwrap_or("");
        self.created_messages.push(SimMessage {
            ts: time.timestamp(),
            sid: text("sid").into(),
            account: text("account_sid").into(),
            from: text("from").into(),
            to: text("to").into(),
            raw: record.to_string().into(),
        });
    }
}

/// Time as the 2010 API writes it (RFC 2822, GMT).
pub fn time_2010(t: &DateTime<Utc>) -> String {
    crate::time::to_rfc2822(t)
}

/// Time as the v1 APIs write it (ISO 8601, UTC).
pub fn time_v1(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
