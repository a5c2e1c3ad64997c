//! `subaudit map`'s proposal: which customer each number probably belongs to, from what the
//! snapshot shows (friendly names, webhook URL hosts and paths, the Messaging Service), each
//! with its reason and a confidence, for a person to review.
//!
//! Every clue is reduced to a key (lower-case letters and digits: "Falcon Flights",
//! `falcon-flights` and `falconflights.example.com` all give `falconflights`), so clues from
//! different places agree. A key counts as a customer when it matches a subaccount's friendly
//! name, recurs over several numbers, or comes from a number's own name or webhooks. Words
//! that name no one (`sms`, `hooks`, `alerts`, the parent's own name...) are dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::model::{Account, IncomingPhoneNumber};
use crate::snapshot::Snapshot;

/// Words of URLs and friendly names that never name a customer.
const GENERIC: [&str; 52] = [
    "sms",
    "mms",
    "voice",
    "call",
    "calls",
    "inbound",
    "incoming",
    "outbound",
    "hooks",
    "hook",
    "webhook",
    "webhooks",
    "api",
    "www",
    "twilio",
    "twiml",
    "callback",
    "callbacks",
    "status",
    "app",
    "apps",
    "default",
    "main",
    "support",
    "line",
    "alerts",
    "alert",
    "reminders",
    "reminder",
    "bookings",
    "booking",
    "notifications",
    "notification",
    "messaging",
    "message",
    "messages",
    "service",
    "services",
    "number",
    "phone",
    "test",
    "staging",
    "prod",
    "com",
    "io",
    "net",
    "org",
    "co",
    "example",
    "http",
    "https",
    "v1",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

/// Where a clue was found; the weight says how much it tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Source {
    FriendlyName,
    SmsUrl,
    VoiceUrl,
    Service,
}

impl Source {
    fn weight(self) -> u32 {
        match self {
            Source::FriendlyName => 3,
            Source::SmsUrl | Source::VoiceUrl => 2,
            Source::Service => 1,
        }
    }
}

#[derive(Debug, Clone)]
struct Clue {
    key: String,
    /// How the customer's name was written there, and how good that spelling is (a friendly
    /// name's "Falcon Flights" beats a slug's "Falcon Flights" beats a host's "falconflights").
    spelling: String,
    quality: u8,
    source: Source,
    /// For the reason: what was read.
    evidence: String,
}

/// A proposed line of the mapping file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProposedRow {
    pub number: String,
    pub customer: String,
    pub subaccount_sid: String,
    pub number_sid: String,
    pub friendly_name: String,
    pub reason: String,
    pub confidence: Confidence,
}

/// The columns of `mapping.proposed.csv`; the first three are the mapping file's.
pub const PROPOSAL_HEADER: [&str; 7] = [
    "number",
    "customer",
    "subaccount_sid",
    "number_sid",
    "friendly_name",
    "reason",
    "confidence",
];

/// A number no customer was found for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmatched {
    pub number: String,
    pub number_sid: String,
    pub friendly_name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct Proposal {
    /// Sorted by customer, then number.
    pub rows: Vec<ProposedRow>,
    /// In snapshot order.
    pub unmatched: Vec<Unmatched>,
}

/// Lower-case letters and digits only.
pub fn key_of(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect()
}

struct Vocabulary {
    /// The parent's own name, word by word ("owlie", "notifications").
    parent_words: BTreeSet<String>,
}

impl Vocabulary {
    fn is_noise(&self, word: &str) -> bool {
        let w = word.to_lowercase();
        GENERIC.contains(&w.as_str())
            || self.parent_words.contains(&w)
            || w.chars().all(|c| c.is_ascii_digit())
            || w.chars().count() < 2
    }

    /// The words that name someone: leading and trailing noise dropped (`owlie-falcon-flights-1`
    /// gives `falcon flights`). None when nothing but noise is left.
    fn name_words<'a>(&self, text: &'a str) -> Option<Vec<&'a str>> {
        let all = words(text);
        let start = all.iter().position(|w| !self.is_noise(w))?;
        let end = all.iter().rposition(|w| !self.is_noise(w))?;
        Some(all[start..=end].to_vec())
    }

    /// A friendly name's clue: the part before " - " (or "|", ":", "/"), cleaned.
    fn clue_from_friendly_name(&self, name: &str) -> Option<Clue> {
        let name = name.trim();
        // "(415) 555-0100" or "+14155550100": the number itself, not a name.
        if name
            .chars()
            .all(|c| c.is_ascii_digit() || " ()+-.".contains(c))
        {
            return None;
        }
        let head = [" - ", " – ", " | ", ": ", " / "]
            .iter()
            .filter_map(|sep| name.find(sep))
            .min()
            .map_or(name, |i| &name[..i]);
        let words = self.name_words(head)?;
        let has_spaces = head.trim().contains(' ');
        let (spelling, quality) = if has_spaces {
            (words.join(" "), 3)
        } else {
            (title_case(&words), 2)
        };
        Some(Clue {
            key: key_of(&words.concat()),
            spelling,
            quality,
            source: Source::FriendlyName,
            evidence: format!("friendly name {name:?}"),
        })
    }

    /// A webhook URL's clues: the last path segment that names someone, and the first host
    /// label that does (`falconflights.example.com`, not `hooks.owlie.io`).
    fn clues_from_url(&self, url: &str, source: Source, field: &str) -> Vec<Clue> {
        let Ok(parsed) = url::Url::parse(url.trim()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(segments) = parsed.path_segments() {
            let segments: Vec<&str> = segments.filter(|s| !s.is_empty()).collect();
            if let Some(words) = segments.iter().rev().find_map(|s| self.name_words(s)) {
                // A long hex or digit run is an id, not a name.
                if !words.iter().any(|w| w.len() >= 16) {
                    out.push(Clue {
                        key: key_of(&words.concat()),
                        spelling: title_case(&words),
                        quality: if words.len() > 1 { 2 } else { 1 },
                        source,
                        evidence: format!("{field} path {}", parsed.path()),
                    });
                }
            }
        }
        if let Some(host) = parsed.host_str() {
            let labels: Vec<&str> = host.split('.').collect();
            // The last label is the top-level domain.
            let named = labels[..labels.len().saturating_sub(1)]
                .iter()
                .find(|l| self.name_words(l).is_some());
            if let Some(label) = named {
                let words = self.name_words(label).unwrap_or_default();
                out.push(Clue {
                    key: key_of(label),
                    spelling: if words.len() > 1 {
                        title_case(&words)
                    } else {
                        label.to_string()
                    },
                    quality: if words.len() > 1 { 2 } else { 1 },
                    source,
                    evidence: format!("{field} host {host}"),
                });
            }
        }
        out
    }
}

fn title_case(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn clues_of(
    vocabulary: &Vocabulary,
    snapshot: &Snapshot,
    number: &IncomingPhoneNumber,
    services: &[String],
) -> Vec<Clue> {
    let mut clues = Vec::new();
    if let Some(name) = number.friendly_name.as_deref() {
        clues.extend(vocabulary.clue_from_friendly_name(name));
    }
    if let Some(url) = number.sms_url.as_deref() {
        clues.extend(vocabulary.clues_from_url(url, Source::SmsUrl, "sms_url"));
    }
    if let Some(url) = number.voice_url.as_deref() {
        clues.extend(vocabulary.clues_from_url(url, Source::VoiceUrl, "voice_url"));
    }
    for sid in services {
        let name = snapshot
            .services
            .iter()
            .find(|s| &s.sid == sid)
            .and_then(|s| s.friendly_name.as_deref())
            .unwrap_or("");
        if let Some(mut clue) = vocabulary.clue_from_friendly_name(name) {
            clue.source = Source::Service;
            clue.evidence = format!("Messaging Service {name:?}");
            clues.push(clue);
        }
    }
    clues
}

/// Proposes a mapping for every number the parent holds.
pub fn propose(snapshot: &Snapshot) -> Proposal {
    let parent = snapshot.parent();
    let vocabulary = Vocabulary {
        parent_words: words(parent.name())
            .iter()
            .map(|w| w.to_lowercase())
            .collect(),
    };
    let memberships = super::optouts::services_by_number(snapshot);
    let no_services = Vec::new();
    let own: Vec<&IncomingPhoneNumber> = snapshot
        .numbers
        .iter()
        .filter(|n| {
            n.account_sid
                .as_deref()
                .is_none_or(|a| a == snapshot.parent_sid())
        })
        .collect();
    let clues: Vec<Vec<Clue>> = own
        .iter()
        .map(|n| {
            let services = memberships.get(&n.sid).unwrap_or(&no_services);
            clues_of(&vocabulary, snapshot, n, services)
        })
        .collect();

    let mut subaccounts: HashMap<String, Vec<&Account>> = HashMap::new();
    for account in snapshot.subaccounts() {
        let key = key_of(account.name());
        if !key.is_empty() {
            subaccounts.entry(key).or_default().push(account);
        }
    }
    // On how many numbers each key shows up (from the number's own name or webhooks), and
    // its best spelling anywhere.
    let mut recurrence: HashMap<&str, BTreeSet<usize>> = HashMap::new();
    let mut spelling: HashMap<&str, (u8, &str)> = HashMap::new();
    for (i, list) in clues.iter().enumerate() {
        for clue in list {
            if clue.source != Source::Service {
                recurrence.entry(&clue.key).or_default().insert(i);
            }
            let best = spelling.entry(&clue.key).or_insert((0, &clue.spelling));
            if clue.quality > best.0 {
                *best = (clue.quality, &clue.spelling);
            }
        }
    }

    let mut proposal = Proposal::default();
    for (number, list) in own.iter().zip(&clues) {
        // A shared service names no one unless its name is a known customer's.
        let usable: Vec<&Clue> = list
            .iter()
            .filter(|c| {
                c.source != Source::Service
                    || subaccounts.contains_key(&c.key)
                    || recurrence.contains_key(c.key.as_str())
            })
            .collect();
        let mut by_key: BTreeMap<&str, Vec<&Clue>> = BTreeMap::new();
        for clue in &usable {
            by_key.entry(&clue.key).or_default().push(clue);
        }
        let score = |key: &str, clues: &[&Clue]| {
            let sources: BTreeSet<Source> = clues.iter().map(|c| c.source).collect();
            let weight: u32 = sources.iter().map(|s| s.weight()).sum();
            (subaccounts.contains_key(key), weight, sources.len())
        };
        let best = by_key
            .iter()
            .max_by(|a, b| score(a.0, a.1).cmp(&score(b.0, b.1)).then(b.0.cmp(a.0)));
        let friendly_name = number
            .friendly_name
            .as_deref()
            .unwrap_or("")
            .replace(['\n', '\r'], " ");
        let Some((key, chosen)) = best else {
            let mut looked = vec![format!("friendly name {friendly_name:?}")];
            for (field, url) in [
                ("sms_url", &number.sms_url),
                ("voice_url", &number.voice_url),
            ] {
                if let Some(url) = url.as_deref().filter(|u| !u.is_empty()) {
                    looked.push(format!("{field} {url}"));
                }
            }
            proposal.unmatched.push(Unmatched {
                number: number.phone_number.clone(),
                number_sid: number.sid.clone(),
                friendly_name,
                reason: format!("no customer name in {}", looked.join(", ")),
            });
            continue;
        };
        let (is_subaccount, _, source_count) = score(key, chosen);
        let recurring = recurrence.get(key).map_or(0, BTreeSet::len);
        let rivals: Vec<&str> = by_key.keys().filter(|k| *k != key).copied().collect();

        let mut reasons: Vec<String> = Vec::new();
        let mut seen = BTreeSet::new();
        for clue in chosen {
            if seen.insert(clue.evidence.clone()) {
                reasons.push(clue.evidence.clone());
            }
        }
        let (customer, subaccount_sid) = match subaccounts.get(*key).map(Vec::as_slice) {
            Some([account]) => {
                let status = account.status.as_deref().unwrap_or("active");
                let note = if status == "active" {
                    String::new()
                } else {
                    format!(", which is {status}: the plan blocks a move into it")
                };
                reasons.push(format!(
                    "matches subaccount {:?} ({}){note}",
                    account.name(),
                    account.sid
                ));
                (account.name().to_string(), account.sid.clone())
            }
            Some(many) => {
                let sids: Vec<&str> = many.iter().map(|a| a.sid.as_str()).collect();
                reasons.push(format!(
                    "several subaccounts are named {:?} ({}): fill in subaccount_sid",
                    many[0].name(),
                    sids.join(", ")
                ));
                (many[0].name().to_string(), String::new())
            }
            None => {
                reasons.push(format!(
                    "no subaccount yet (the plan creates one); name seen on {recurring} number{}",
                    if recurring == 1 { "" } else { "s" }
                ));
                let name = spelling.get(key).map_or(*key, |(_, s)| *s);
                (name.to_string(), String::new())
            }
        };
        let rival_names: Vec<&str> = rivals
            .iter()
            .map(|k| spelling.get(k).map_or(*k, |(_, s)| *s))
            .collect();
        if !rival_names.is_empty() {
            reasons.push(format!("but also points at {}", rival_names.join(", ")));
        }
        let confidence = if !rivals.is_empty() {
            Confidence::Low
        } else if (is_subaccount && chosen.iter().any(|c| c.source != Source::Service))
            || source_count >= 2
        {
            Confidence::High
        } else if recurring >= 2 || is_subaccount {
            Confidence::Medium
        } else {
            Confidence::Low
        };
        proposal.rows.push(ProposedRow {
            number: number.phone_number.clone(),
            customer,
            subaccount_sid,
            number_sid: number.sid.clone(),
            friendly_name,
            reason: reasons.join("; "),
            confidence,
        });
    }
    proposal.rows.sort_by(|a, b| {
        crate::model::customer_order(&a.customer, &b.customer).then_with(|| a.number.cmp(&b.number))
    });
    proposal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocabulary() -> Vocabulary {
        Vocabulary {
            parent_words: ["owlie", "notifications"].map(String::from).into(),
        }
    }

    #[test]
    fn friendly_names_give_the_customer_part() {
        let v = vocabulary();
        let clue = v
            .clue_from_friendly_name("Falcon Flights - alerts")
            .unwrap();
        assert_eq!(
            (clue.key.as_str(), clue.spelling.as_str(), clue.quality),
            ("falconflights", "Falcon Flights", 3)
        );
        let clue = v.clue_from_friendly_name("owlie-falcon-flights-1").unwrap();
        assert_eq!(
            (clue.key.as_str(), clue.spelling.as_str()),
            ("falconflights", "Falcon Flights")
        );
        assert_eq!(
            v.clue_from_friendly_name("Heron Health reminders")
                .unwrap()
                .spelling,
            "Heron Health"
        );
        assert!(v.clue_from_friendly_name("(415) 555-0100").is_none());
        assert!(v.clue_from_friendly_name("+14155550100").is_none());
        assert!(v.clue_from_friendly_name("Owlie support line").is_none());
    }

    #[test]
    fn urls_give_path_slugs_and_customer_hosts_but_not_shared_hooks() {
        let v = vocabulary();
        let clues = v.clues_from_url(
            "https://hooks.owlie.io/sms/falcon-flights",
            Source::SmsUrl,
            "sms_url",
        );
        assert_eq!(clues.len(), 1);
        assert_eq!(
            (clues[0].key.as_str(), clues[0].spelling.as_str()),
            ("falconflights", "Falcon Flights")
        );
        let clues = v.clues_from_url(
            "https://falconflights.example.com/twilio/sms",
            Source::SmsUrl,
            "sms_url",
        );
        assert_eq!(clues.len(), 1);
        assert_eq!(
            (clues[0].key.as_str(), clues[0].evidence.as_str()),
            ("falconflights", "sms_url host falconflights.example.com")
        );
        assert!(v
            .clues_from_url(
                "https://hooks.owlie.io/sms/inbound",
                Source::SmsUrl,
                "sms_url"
            )
            .is_empty());
        assert!(v.clues_from_url("", Source::SmsUrl, "sms_url").is_empty());
        assert!(v
            .clues_from_url(
                "https://hooks.owlie.io/sms/0123456789abcdef0123",
                Source::SmsUrl,
                "sms_url"
            )
            .is_empty());
    }
}
