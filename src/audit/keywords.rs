//! Keyword classification of message bodies, docs/opt-out-rule.md,
//! steps 1 and 2.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// Twilio's default opt-out keywords (REVOKE and OPTOUT since the 2025 FCC rule).
pub const DEFAULT_OPT_OUT: [&str; 8] = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
];
/// REVOKE and OPTOUT became Twilio defaults on this instant (2025-05-14T00:00:00Z, the FCC
/// opt-out rule): before it they opted out only where a service had added them, so they count
/// then only when the user passes them as extra keywords (docs/opt-out-rule.md, step 1).
pub const DATED_OPT_OUT: [&str; 2] = ["REVOKE", "OPTOUT"];
/// The instant DATED_OPT_OUT became defaults, in Unix seconds.
pub const DATED_OPT_OUT_SINCE: i64 = 1_747_180_800;

pub const DEFAULT_OPT_IN: [&str; 3] = ["START", "YES", "UNSTOP"];
pub const DEFAULT_HELP: [&str; 2] = ["HELP", "INFO"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordClass {
    OptOut,
    OptIn,
    Help,
}

/// The keyword sets in force: Twilio's defaults plus the user's extras (Advanced Opt-Out
/// keywords, which no API reads).
#[derive(Debug, Clone)]
pub struct Keywords {
    opt_out: BTreeSet<String>,
    opt_in: BTreeSet<String>,
    help: BTreeSet<String>,
    /// Opt-out keywords with their reduced words, for the possible-opt-out search.
    opt_out_words: Vec<(String, Vec<String>)>,
    /// Default opt-out keywords that count only from DATED_OPT_OUT_SINCE on (those of
    /// DATED_OPT_OUT the user did not pass as extras).
    dated: BTreeSet<String>,
}

impl Default for Keywords {
    fn default() -> Self {
        Keywords::new(&[], &[]).expect("the defaults are valid")
    }
}

/// Step 1's normal form: surrounding white space trimmed, upper case.
pub fn normalize(body: &str) -> String {
    body.trim().to_uppercase()
}

/// Step 2's reduced form: letters and digits kept (upper case), every run of anything else
/// one space, as a list of words.
pub fn reduce_to_words(body: &str) -> Vec<String> {
    words_of(&body.to_uppercase()).map(str::to_string).collect()
}

/// The words of an upper-cased body (see `reduce_to_words`), as slices of it.
fn words_of(upper: &str) -> impl Iterator<Item = &str> {
    upper
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

impl Keywords {
    /// Twilio's defaults plus extras, normalised like bodies (see `add_extras`).
    pub fn new(extra_opt_out: &[String], extra_opt_in: &[String]) -> Result<Keywords> {
        Keywords::with_help(extra_opt_out, extra_opt_in, &[])
    }

    /// `new` with extra help keywords too (they change no state, but are no near misses).
    pub fn with_help(
        extra_opt_out: &[String],
        extra_opt_in: &[String],
        extra_help: &[String],
    ) -> Result<Keywords> {
        let defaults = |words: &[&str]| words.iter().map(|s| s.to_string()).collect();
        let mut opt_out: BTreeSet<String> = defaults(&DEFAULT_OPT_OUT);
        let mut opt_in: BTreeSet<String> = defaults(&DEFAULT_OPT_IN);
        let mut help: BTreeSet<String> = defaults(&DEFAULT_HELP);
        add_extras(
            extra_opt_out,
            "--opt-out-keyword",
            &mut opt_out,
            [&opt_in, &help],
        )?;
        add_extras(
            extra_opt_in,
            "--opt-in-keyword",
            &mut opt_in,
            [&opt_out, &help],
        )?;
        add_extras(extra_help, "--help-keyword", &mut help, [&opt_out, &opt_in])?;
        let mut dated: BTreeSet<String> = defaults(&DATED_OPT_OUT);
        for extra in extra_opt_out {
            dated.remove(&normalize(extra));
        }
        let opt_out_words = opt_out
            .iter()
            .map(|k| (k.clone(), reduce_to_words(k)))
            .filter(|(_, w)| !w.is_empty())
            .collect();
        Ok(Keywords {
            opt_out,
            opt_in,
            help,
            opt_out_words,
            dated,
        })
    }

    /// Step 1: the class and the normalised keyword when the whole body is a keyword.
    pub fn classify(&self, body: &str) -> Option<(KeywordClass, String)> {
        let normal = normalize(body);
        let class = if self.opt_out.contains(&normal) {
            KeywordClass::OptOut
        } else if self.opt_in.contains(&normal) {
            KeywordClass::OptIn
        } else if self.help.contains(&normal) {
            KeywordClass::Help
        } else {
            return None;
        };
        Some((class, normal))
    }

    /// Whether an opt-out keyword counts at `time`: REVOKE and OPTOUT only from
    /// DATED_OPT_OUT_SINCE on, unless the user passed them as extras.
    pub fn in_force(&self, keyword: &str, time: &DateTime<Utc>) -> bool {
        !self.dated.contains(keyword) || time.timestamp() >= DATED_OPT_OUT_SINCE
    }

    /// Whether this keyword's force depends on the time (so the caller needs the message's).
    pub fn is_dated(&self, keyword: &str) -> bool {
        self.dated.contains(keyword)
    }

    /// Step 2: why a body that is not an exact keyword may still be an opt-out, if it is one.
    /// Call it only for bodies `classify` did not match (or whose keyword was not in force).
    /// `time` is the message's; without one every keyword counts.
    pub fn possible_opt_out(&self, body: &str, time: Option<&DateTime<Utc>>) -> Option<String> {
        // Slices of one upper-cased copy: a String per word cost ~3,400 instructions a body,
        // on every inbound message that is not a keyword.
        let upper = body.to_uppercase();
        let words: Vec<&str> = words_of(&upper).collect();
        if words.is_empty() {
            return None;
        }
        for (keyword, keyword_words) in &self.opt_out_words {
            if contains_run(&words, keyword_words) && time.is_none_or(|t| self.in_force(keyword, t))
            {
                return Some(format!(
                    "contains opt-out keyword {}",
                    keyword_words.join(" ")
                ));
            }
        }
        if contains_run(&words, &["OPT", "OUT"]) {
            return Some("contains the phrase OPT OUT".to_string());
        }
        None
    }

    pub fn opt_out_keywords(&self) -> impl Iterator<Item = &str> {
        self.opt_out.iter().map(String::as_str)
    }
}

/// Adds the user's extras to one class. An empty extra, or one already in another class, is
/// an error: the same word cannot both opt out and opt in.
fn add_extras(
    extras: &[String],
    flag: &str,
    class: &mut BTreeSet<String>,
    others: [&BTreeSet<String>; 2],
) -> Result<()> {
    for raw in extras {
        let word = normalize(raw);
        if word.is_empty() {
            return Err(Error::Input(format!(
                "{flag}: an empty keyword is not valid; give a word such as ARRET"
            )));
        }
        if others.iter().any(|other| other.contains(&word)) {
            return Err(Error::Input(format!(
                "{flag} {raw:?}: {word} is already a keyword of another class (opt-out, opt-in or help)"
            )));
        }
        class.insert(word);
    }
    Ok(())
}

/// Whether `needle` stands in `words` as consecutive whole words.
fn contains_run<N: AsRef<str>>(words: &[&str], needle: &[N]) -> bool {
    !needle.is_empty()
        && words
            .windows(needle.len())
            .any(|w| w.iter().zip(needle).all(|(word, n)| *word == n.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_keywords_ignore_case_and_surrounding_white_space() {
        let k = Keywords::default();
        for body in [
            "STOP",
            "stop",
            "sToP",
            "  Stop\n",
            "\tUNSUBSCRIBE ",
            "optout",
            "Revoke",
        ] {
            assert_eq!(
                k.classify(body).map(|c| c.0),
                Some(KeywordClass::OptOut),
                "{body:?}"
            );
        }
        assert_eq!(
            k.classify(" start ").unwrap(),
            (KeywordClass::OptIn, "START".to_string())
        );
        assert_eq!(k.classify("Yes").unwrap().0, KeywordClass::OptIn);
        assert_eq!(k.classify("unstop").unwrap().0, KeywordClass::OptIn);
        assert_eq!(k.classify("help").unwrap().0, KeywordClass::Help);
        assert_eq!(k.classify("INFO").unwrap().0, KeywordClass::Help);
    }

    #[test]
    fn near_misses_are_not_keywords_but_possible_opt_outs() {
        let k = Keywords::default();
        for body in [
            "Stop please",
            "STOP.",
            "stop!",
            "S T O P",
            "pls stop",
            "opt out",
            "Opt-out now",
        ] {
            assert_eq!(k.classify(body), None, "{body:?}");
        }
        assert_eq!(
            k.possible_opt_out("Stop please", None).unwrap(),
            "contains opt-out keyword STOP"
        );
        assert_eq!(
            k.possible_opt_out("STOP.", None).unwrap(),
            "contains opt-out keyword STOP"
        );
        assert_eq!(
            k.possible_opt_out("please, end!", None).unwrap(),
            "contains opt-out keyword END"
        );
        assert_eq!(
            k.possible_opt_out("Opt-out now", None).unwrap(),
            "contains the phrase OPT OUT"
        );
        // Not a whole word, or no keyword at all: nothing to review.
        assert_eq!(k.possible_opt_out("Stopping by later", None), None);
        assert_eq!(k.possible_opt_out("weekend plans", None), None);
        assert_eq!(k.possible_opt_out("S T O P", None), None);
        assert_eq!(k.possible_opt_out("  ", None), None);
    }

    #[test]
    fn extra_keywords_join_their_class() {
        let k = Keywords::new(&["arret".into(), " Baja ".into()], &["Alta".into()]).unwrap();
        assert_eq!(
            k.classify("ARRET").unwrap(),
            (KeywordClass::OptOut, "ARRET".to_string())
        );
        assert_eq!(k.classify("baja").unwrap().0, KeywordClass::OptOut);
        assert_eq!(k.classify("alta").unwrap().0, KeywordClass::OptIn);
        assert_eq!(
            k.possible_opt_out("baja por favor", None).unwrap(),
            "contains opt-out keyword BAJA"
        );
    }

    #[test]
    fn extra_help_keywords_change_nothing_and_are_no_near_misses() {
        let k = Keywords::with_help(&[], &[], &["Aide".into()]).unwrap();
        assert_eq!(
            k.classify(" aide ").unwrap(),
            (KeywordClass::Help, "AIDE".to_string())
        );
        assert!(Keywords::with_help(&[], &[], &["stop".into()]).is_err());
    }

    #[test]
    fn an_extra_cannot_be_both_opt_out_and_opt_in() {
        let err = Keywords::new(&["start".into()], &[]).unwrap_err();
        assert!(err.to_string().contains("--opt-out-keyword"), "{err}");
        assert!(Keywords::new(&[" ".into()], &[]).is_err());
    }

    #[test]
    fn revoke_and_optout_are_possible_opt_outs_only_from_the_day_they_became_defaults() {
        use chrono::TimeZone;
        let k = Keywords::default();
        let before = Utc.with_ymd_and_hms(2025, 5, 13, 23, 59, 59).unwrap();
        let since = Utc.with_ymd_and_hms(2025, 5, 14, 0, 0, 0).unwrap();
        assert!(!k.in_force("REVOKE", &before));
        assert!(k.in_force("REVOKE", &since));
        assert!(k.in_force("STOP", &before));
        assert_eq!(k.possible_opt_out("please revoke", Some(&before)), None);
        assert_eq!(
            k.possible_opt_out("please revoke", Some(&since)).unwrap(),
            "contains opt-out keyword REVOKE"
        );
        let extra = Keywords::new(&["optout".to_string()], &[]).unwrap();
        assert!(extra.in_force("OPTOUT", &before));
        assert!(!extra.in_force("REVOKE", &before));
    }
}
