//! Opt-out state per account, with Twilio's scopes (README "Opt-out rule"): a Messaging
//! Service (every number in it) or a pair (Twilio number, end user).
//!
//! Seeded from the snapshot's history with the audit's own engine (`audit::optouts::analyze_opt_outs`),
//! since that rule is what Twilio applied; changed afterwards by inbound keywords, Consents
//! Bulk items and nothing else.
//!
//! Toll-free numbers also carry the carrier network's block (README "Opt-out rule"): kept per
//! (number, end user) whichever account owns the number, set and lifted by keywords texted to
//! that number only.

use std::collections::HashSet;
use std::path::Path;

use super::data::SimData;
use crate::audit::keywords::{KeywordClass, Keywords};
use crate::audit::optouts::{analyze_opt_outs, Scope};
use crate::error::Result;
use crate::snapshot::{OpenOptions, Snapshot};

#[derive(Debug, Default)]
pub struct OptOutState {
    /// (account, scope, end user) pairs that are opted out.
    opted_out: HashSet<(String, Scope, String)>,
    /// (toll-free number, end user) pairs the carrier network blocks.
    network: HashSet<(String, String)>,
    keywords: Keywords,
}

impl OptOutState {
    /// The opt-outs in force at the end of the snapshot's log, each kept by the account that
    /// owned its scope (the service's account, or the number's) when the snapshot was taken.
    pub fn seed(dir: &Path, data: &SimData) -> Result<OptOutState> {
        let snapshot = Snapshot::open(
            dir,
            OpenOptions {
                allow_incomplete: true,
            },
        )?;
        let keywords = Keywords::default();
        // Only the opt-outs in force: pass 2 (violations) is not run.
        let (analysis, _) = analyze_opt_outs(&snapshot, &keywords, &[])?;
        let mut state = OptOutState {
            opted_out: HashSet::new(),
            network: HashSet::new(),
            keywords,
        };
        for opt_out in analysis.opt_outs {
            let on_toll_free = data
                .number_by_phone(&opt_out.began.twilio_number)
                .is_some_and(|n| n.toll_free);
            if on_toll_free {
                state.network.insert((
                    opt_out.began.twilio_number.clone(),
                    opt_out.end_user.clone(),
                ));
            }
            let account = match &opt_out.scope {
                Scope::Service(sid) => data.service(sid).map(|s| s.account.clone()),
                Scope::Number(phone) => data.number_by_phone(phone).map(|n| n.account.clone()),
            }
            .unwrap_or_else(|| data.parent.clone());
            state
                .opted_out
                .insert((account, opt_out.scope, opt_out.end_user));
        }
        Ok(state)
    }

    pub fn set(&mut self, account: &str, scope: Scope, end_user: &str, opted_out: bool) {
        let key = (account.to_string(), scope, end_user.to_string());
        if opted_out {
            self.opted_out.insert(key);
        } else {
            self.opted_out.remove(&key);
        }
    }

    pub fn is_opted_out(&self, account: &str, scope: &Scope, end_user: &str) -> bool {
        // The set's key owns its strings; a lookup builds one (cheap next to a request).
        self.opted_out
            .contains(&(account.to_string(), scope.clone(), end_user.to_string()))
    }

    /// Whether a send from `number` (in `service`, if any) of `account` to `end_user` is
    /// blocked: an opt-out of the pair, or of the service the number is in or sends through.
    pub fn blocks(
        &self,
        account: &str,
        number: Option<&str>,
        service: Option<&str>,
        end_user: &str,
    ) -> bool {
        number.is_some_and(|n| {
            self.is_opted_out(account, &Scope::Number(n.to_string()), end_user)
                || self
                    .network
                    .contains(&(n.to_string(), end_user.to_string()))
        }) || service
            .is_some_and(|s| self.is_opted_out(account, &Scope::Service(s.to_string()), end_user))
    }

    /// Applies an inbound body's keyword (the rule's step 1, Twilio's defaults) and says what
    /// it was: Some(true) opt-out, Some(false) opt-in, None no state keyword. `toll_free` is
    /// the number texted when it is toll-free (the network's block follows it).
    pub fn apply_inbound(
        &mut self,
        account: &str,
        scope: Scope,
        end_user: &str,
        body: &str,
        toll_free: Option<&str>,
    ) -> Option<bool> {
        let opted_out = match self.keywords.classify(body)?.0 {
            KeywordClass::OptOut => true,
            KeywordClass::OptIn => false,
            KeywordClass::Help => return None,
        };
        self.set(account, scope, end_user, opted_out);
        if let Some(number) = toll_free {
            let key = (number.to_string(), end_user.to_string());
            if opted_out {
                self.network.insert(key);
            } else {
                self.network.remove(&key);
            }
        }
        Some(opted_out)
    }

    /// How many (account, scope, end user) opt-outs are in force.
    pub fn len(&self) -> usize {
        self.opted_out.len()
    }

    pub fn is_empty(&self) -> bool {
        self.opted_out.is_empty()
    }
}
