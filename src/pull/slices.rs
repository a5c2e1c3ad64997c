//! How the pull cuts the message window into slices: by the traffic the usage records show,
//! so that each slice holds about one page of messages and the slices run side by side.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::midnight;
use crate::time::parse_date;

/// Messages a slice aims at, at most: a page (`PageSize` 1000) less a margin, so that real
/// traffic's spread around the plan's even estimate seldom spills a slice into a second page.
/// The first slices fetched measure that spread, and the rest aim lower where it is wide
/// ([`calibration`]).
pub const MESSAGES_PER_SLICE: f64 = 960.0;
const SECONDS_PER_DAY: i64 = 86_400;
/// The share of [`MESSAGES_PER_SLICE`] the probes (the first slices fetched) aim at. They are
/// cut before anything says how far the usage counts stray from the messages listed (billing
/// counts may leave some messages out: the generator's drift by 1 to 5 %), and a probe that
/// spills into a second page costs a request more: at 960 a page of probes held 1,010
/// messages each and 10 of the 16 spilled; at 0.9 of it they hold about 910.
pub const PROBE_SHARE: f64 = 0.9;

/// A part of the message window, `start <= t < end`, fetched as one job into one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// A whole UTC day fetched as Bulk Export's file of that day (the Messages list when the
    /// file cannot be had).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bulk: bool,
}

impl Slice {
    /// The UTC day `day` as one Bulk Export file.
    pub fn bulk_day(day: NaiveDate) -> Slice {
        Slice {
            start: midnight(day),
            end: midnight(day + Days::new(1)),
            bulk: true,
        }
    }

    /// The file of the slice's messages, named by its start (sorted names are time order).
    pub fn file(&self) -> String {
        format!("messages/{}.jsonl", self.start.format("%Y-%m-%dT%H%M%SZ"))
    }
}

/// Usage of one period: its first and last day (inclusive) and its message count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeriodCount {
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub messages: f64,
}

/// The parent's messages per usage period (one per period any record names):
/// `sms-inbound` + `sms-outbound` where the period has both, else `sms`; `mms` likewise. The
/// counts only place the slices (an estimate: Twilio may count segments), so a float serves.
pub fn message_counts(records: &[Value]) -> Vec<PeriodCount> {
    let mut by_period: BTreeMap<(NaiveDate, NaiveDate), BTreeMap<&str, f64>> = BTreeMap::new();
    for record in records {
        let date = |field: &str| {
            record
                .get(field)
                .and_then(Value::as_str)
                .and_then(parse_date)
        };
        let (Some(first), Some(last)) = (date("start_date"), date("end_date")) else {
            continue;
        };
        let counts = by_period.entry((first, last)).or_default();
        let Some(category) = record.get("category").and_then(Value::as_str) else {
            continue;
        };
        let count = match record.get("count") {
            Some(Value::String(text)) => text.trim().parse::<f64>().ok(),
            Some(Value::Number(n)) => n.as_f64(),
            _ => None,
        };
        if let Some(count) = count.filter(|c| c.is_finite() && *c >= 0.0) {
            *counts.entry(category).or_default() += count;
        }
    }
    by_period
        .into_iter()
        .map(|((first, last), counts)| {
            let kind = |base: &str| {
                let part = |direction: &str| counts.get(format!("{base}-{direction}").as_str());
                match (part("inbound"), part("outbound")) {
                    (Some(i), Some(o)) => i + o,
                    _ => counts.get(base).copied().unwrap_or(0.0),
                }
            };
            PeriodCount {
                first,
                last,
                messages: kind("sms") + kind("mms"),
            }
        })
        .collect()
}

/// Cuts `[since, until)` into slices of about `per_slice` messages each, the counts of each
/// period spread evenly over its days and seconds. A day no period covers gets a slice of its
/// own (nothing is known about it); days with no traffic join their neighbours. Without any
/// counts, one slice per day.
pub fn plan(
    since: NaiveDate,
    until: NaiveDate,
    periods: &[PeriodCount],
    per_slice: f64,
) -> Vec<Slice> {
    plan_until(since, midnight(until), periods, per_slice)
}

/// The slices fetched after the probes, before the rest is cut again: half as many as the
/// probes. While the last probes are still out, the first ones' slots would be idle (the
/// small resources take a few); these take them.
pub fn fillers(probes: usize) -> usize {
    probes / 2
}

/// [`plan`] with its newest `probes` slices, and the [`fillers`] before them, cut at
/// [`PROBE_SHARE`] of `per_slice`: those are fetched first, and the probes calibrate the rest
/// ([`calibration`]). A plan of at most twice as many slices as probes is not calibrated: it
/// is [`plan`]'s.
pub fn plan_with_probes(
    since: NaiveDate,
    until: NaiveDate,
    periods: &[PeriodCount],
    per_slice: f64,
    probes: usize,
) -> Vec<Slice> {
    let whole = plan(since, until, periods, per_slice);
    if probes == 0 || whole.len() <= 2 * probes {
        return whole;
    }
    let narrow = plan(since, until, periods, per_slice * PROBE_SHARE);
    let newest = &narrow[narrow.len().saturating_sub(probes + fillers(probes))..];
    let mut slices = plan_until(since, newest[0].start, periods, per_slice);
    slices.extend_from_slice(newest);
    slices
}

/// [`plan`] for `[since, end)`, where `end` may fall inside a day (the rest of a window whose
/// newest part was planned already).
pub fn plan_until(
    since: NaiveDate,
    end: DateTime<Utc>,
    periods: &[PeriodCount],
    per_slice: f64,
) -> Vec<Slice> {
    plan_between(midnight(since), end, periods, per_slice)
}

/// [`plan`] for `[from, end)`, where both may fall inside a day.
pub fn plan_between(
    from: DateTime<Utc>,
    end: DateTime<Utc>,
    periods: &[PeriodCount],
    per_slice: f64,
) -> Vec<Slice> {
    let since = from.date_naive();
    let mut per_day: BTreeMap<NaiveDate, f64> = BTreeMap::new();
    for p in periods {
        let days = (p.last - p.first).num_days() + 1;
        if days < 1 || !p.messages.is_finite() || p.messages < 0.0 {
            continue;
        }
        let share = p.messages / days as f64;
        for day in p.first.iter_days().take(days as usize) {
            if day >= since && midnight(day) < end {
                *per_day.entry(day).or_default() += share;
            }
        }
    }
    let mut slices = Vec::new();
    let mut start = from;
    let mut filled = 0.0;
    let cut = |slices: &mut Vec<Slice>, start: &mut DateTime<Utc>, at: DateTime<Utc>| {
        let at = at.min(end);
        if at > *start {
            slices.push(Slice {
                start: *start,
                end: at,
                bulk: false,
            });
            *start = at;
        }
    };
    for day in since.iter_days().take_while(|d| midnight(*d) < end) {
        let day_start = midnight(day);
        let Some(&expected) = per_day.get(&day) else {
            cut(&mut slices, &mut start, day_start);
            cut(&mut slices, &mut start, midnight(day + Days::new(1)));
            filled = 0.0;
            continue;
        };
        // Where in the day (0..1) the counting stands: the first day may start inside.
        let mut at =
            (from.max(day_start) - day_start).num_seconds() as f64 / SECONDS_PER_DAY as f64;
        while expected > 0.0 && filled + expected * (1.0 - at) >= per_slice {
            at += (per_slice - filled) / expected;
            let second = ((at * SECONDS_PER_DAY as f64) as i64).clamp(1, SECONDS_PER_DAY);
            cut(
                &mut slices,
                &mut start,
                day_start + chrono::Duration::seconds(second),
            );
            filled = 0.0;
        }
        filled += expected * (1.0 - at);
    }
    cut(&mut slices, &mut start, end);
    slices
}

/// The messages `periods` lead one to expect in `slice`, spread as [`plan`] spreads them;
/// `None` when some of the slice lies in a day no period covers (nothing is known there).
pub fn expected(slice: &Slice, periods: &[PeriodCount]) -> Option<f64> {
    let mut total = 0.0;
    let mut covered = 0;
    for p in periods {
        let days = ((p.last - p.first).num_days() + 1) as f64;
        let from = midnight(p.first).max(slice.start);
        let to = midnight(p.last + Days::new(1)).min(slice.end);
        if to > from {
            let seconds = (to - from).num_seconds();
            covered += seconds;
            total += p.messages / days * seconds as f64 / SECONDS_PER_DAY as f64;
        }
    }
    (covered >= (slice.end - slice.start).num_seconds()).then_some(total)
}

/// Page-sized slices fetched last ([`plan_in_pairs`]), in rounds of `slots` requests.
const LAST_ROUNDS_OF_SINGLE_PAGES: usize = 2;

/// [`plan_between`] in slices of two pages, but for the oldest part, the last
/// [`LAST_ROUNDS_OF_SINGLE_PAGES`] rounds for `slots` requests in flight, which stays
/// page-sized. A slice costs `ceil(messages / 1000)` requests, and a page-sized one pays the
/// margin for how far its estimate strays (`per_slice` below a page) on every page: aimed at
/// 915, it holds about 890, 11 % more requests than pages. A slice of two pages pays it once
/// for both (aimed at two pages less the margin times the square root of two: independent
/// strays add up so). Its second page is asked for once the first is read and goes before any
/// new request, so the two pages take two rounds at most; fetched newest first, the pairs end
/// before the page-sized slices that close the pull (a second page there would add a round).
/// Slices aimed below half a page (`--slice-messages`) stay as they are. Oldest first.
pub fn plan_in_pairs(
    from: DateTime<Utc>,
    end: DateTime<Utc>,
    periods: &[PeriodCount],
    per_slice: f64,
    slots: usize,
) -> Vec<Slice> {
    let singles = plan_between(from, end, periods, per_slice);
    let last = LAST_ROUNDS_OF_SINGLE_PAGES * slots.max(1);
    let whole = Slice {
        start: from,
        end,
        bulk: false,
    };
    // Pairs only trim the margin of slices aimed near a page; smaller slices were asked for.
    let near_a_page = (PAGE / 2.0..PAGE).contains(&per_slice);
    if !near_a_page || singles.len() <= 2 * last || expected(&whole, periods).is_none() {
        return singles;
    }
    let split = singles[last - 1].end;
    let aim = 2.0 * PAGE - (PAGE - per_slice) * 2f64.sqrt();
    let mut slices = singles[..last].to_vec();
    slices.extend(plan_between(split, end, periods, aim));
    slices
}

/// What fetching a slice's first page showed of its real size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observed {
    /// Records on the first page.
    pub records: usize,
    /// Whether a next page followed.
    pub more: bool,
    /// The oldest time on the page (Twilio lists newest first), when `more`.
    pub oldest: Option<DateTime<Utc>>,
}

impl Observed {
    /// The slice's messages: exact when one page held them all; else the first page's rate
    /// over the part of the slice it covered, extended to the whole slice.
    pub fn messages(&self, slice: &Slice) -> f64 {
        let records = self.records as f64;
        match (self.more, self.oldest) {
            (false, _) => records,
            (true, Some(oldest)) if oldest > slice.start && oldest < slice.end => {
                let covered = (slice.end - oldest).num_seconds().max(1) as f64;
                records * (slice.end - slice.start).num_seconds() as f64 / covered
            }
            // A page of one second, or no time to read: at least this many.
            (true, _) => records * 2.0,
        }
    }
}

/// What the first slices fetched (the probes) tell about the usage counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// Observed messages over expected ones.
    pub ratio: f64,
    /// The messages the rest of the slices aim at: a page, less a margin for how far one
    /// slice strays from its estimate, at most what was asked for.
    pub per_slice: f64,
}

/// Records a page holds at most (`PageSize` 1000).
const PAGE: f64 = 1000.0;

/// How much the usage counts over- or understate the messages, from the slices fetched so
/// far: observed messages over expected ones, where enough were expected to tell (a page's
/// worth); `None` otherwise. Twilio's usage may count segments, lag, or include messages
/// the list does not show: the ratio corrects the plan of the rest of the window. It is held
/// within [1/5, 5]: probes are the newest slices, and a quiet or busy stretch there must not
/// make the rest of the window one huge slice or thousands of tiny ones.
///
/// The margin: a slice that spills into a second page costs a request and a round trip more,
/// one aimed lower costs more slices. The probes' own ratios scatter about as much as a
/// slice's estimate strays; the slices aim 2.5 such scatters below a page, so that about one
/// in a hundred spills (the median absolute deviation measures the scatter, so that one odd
/// probe, such as today's unfinished day, does not set it).
pub fn calibration(
    probes: &[(Slice, Observed)],
    periods: &[PeriodCount],
    per_slice: f64,
) -> Option<Calibration> {
    let (mut expected_total, mut observed_total) = (0.0, 0.0);
    let mut ratios = Vec::new();
    for (slice, observed) in probes {
        if let Some(e) = expected(slice, periods) {
            let o = observed.messages(slice);
            expected_total += e;
            observed_total += o;
            if e >= per_slice / 4.0 && e > 0.0 {
                ratios.push(o / e);
            }
        }
    }
    if expected_total < per_slice {
        return None;
    }
    let ratio = (observed_total / expected_total).clamp(0.2, 5.0);
    let scatter = match relative_scatter(&mut ratios) {
        Some(s) => s,
        // Too few probes to tell: the margin of the first plan.
        None => return Some(Calibration { ratio, per_slice }),
    };
    let aimed = (PAGE / (1.0 + 2.5 * scatter)).max(PAGE / 4.0);
    Some(Calibration {
        ratio,
        per_slice: aimed.min(per_slice),
    })
}

/// The scatter of `values` relative to their median (median absolute deviation, scaled to
/// a standard deviation); `None` for fewer than four values.
fn relative_scatter(values: &mut [f64]) -> Option<f64> {
    if values.len() < 4 {
        return None;
    }
    let median = |v: &mut [f64]| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        (v[(n - 1) / 2] + v[n / 2]) / 2.0
    };
    let mid = median(values);
    if mid <= 0.0 {
        return None;
    }
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - mid).abs()).collect();
    Some(1.4826 * median(&mut deviations) / mid)
}

/// The periods with their counts multiplied by `ratio`.
pub fn scaled(periods: &[PeriodCount], ratio: f64) -> Vec<PeriodCount> {
    periods
        .iter()
        .map(|p| PeriodCount {
            messages: p.messages * ratio,
            ..*p
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn period(first: &str, last: &str, messages: f64) -> PeriodCount {
        PeriodCount {
            first: day(first),
            last: day(last),
            messages,
        }
    }

    /// The slices cover the window exactly, in order, without gaps or overlaps.
    fn assert_covers(slices: &[Slice], since: &str, until: &str) {
        assert_eq!(slices.first().unwrap().start, midnight(day(since)));
        assert_eq!(slices.last().unwrap().end, midnight(day(until)));
        for pair in slices.windows(2) {
            assert_eq!(pair[0].end, pair[1].start, "{pair:?}");
        }
        assert!(slices.iter().all(|s| s.start < s.end), "{slices:?}");
    }

    /// Every slice holds a page at most, and no more slices than the pages needed (plus one
    /// for rounding at the end).
    fn assert_a_page_each(slices: &[Slice], periods: &[PeriodCount], total: f64) {
        for s in slices {
            let e = expected(s, periods).unwrap();
            assert!(e <= 1000.5, "{s:?}: {e}");
        }
        assert!(
            slices.len() as f64 <= (total / 1000.0).ceil() + 1.0,
            "{slices:?}"
        );
    }

    #[test]
    fn a_day_of_5000_messages_is_cut_into_slices_of_a_page() {
        let periods = [
            period("2026-03-01", "2026-03-09", 0.0),
            period("2026-03-10", "2026-03-10", 5000.0),
            period("2026-03-11", "2026-03-31", 0.0),
        ];
        let slices = plan(day("2026-03-01"), day("2026-04-01"), &periods, 1000.0);
        assert_covers(&slices, "2026-03-01", "2026-04-01");
        assert_a_page_each(&slices, &periods, 5000.0);
        let busy = midnight(day("2026-03-10"))..midnight(day("2026-03-11"));
        let overlapping = slices
            .iter()
            .filter(|s| s.start < busy.end && s.end > busy.start)
            .count();
        assert!(overlapping >= 5, "{slices:?}");
        // The nine empty days before it are no slices of their own.
        assert!(slices[0].end > busy.start, "{slices:?}");
    }

    #[test]
    fn empty_weeks_join_their_neighbours_and_months_spread_evenly() {
        // 30,000 messages in April, nothing in May (empty weeks), 500 in June.
        let periods = [
            period("2026-04-01", "2026-04-30", 30_000.0),
            period("2026-05-01", "2026-05-31", 0.0),
            period("2026-06-01", "2026-06-30", 500.0),
        ];
        let slices = plan(day("2026-04-01"), day("2026-07-01"), &periods, 1000.0);
        assert_covers(&slices, "2026-04-01", "2026-07-01");
        assert_a_page_each(&slices, &periods, 30_500.0);
        // A slice a day in April; May and June go together.
        assert_eq!(slices[1].start, midnight(day("2026-04-02")));
        assert_eq!(slices[29].start, midnight(day("2026-04-30")));
        assert!(slices
            .iter()
            .all(|s| s.start <= midnight(day("2026-05-01"))));
    }

    #[test]
    fn the_window_edges_cut_periods_that_overrun_it() {
        // A month record that starts before the window and one that ends after it: only the
        // days inside count, and the first and last slices sit on the window's edges.
        let periods = [
            period("2026-01-01", "2026-01-31", 31_000.0),
            period("2026-02-01", "2026-02-28", 2_800.0),
        ];
        let slices = plan(day("2026-01-30"), day("2026-02-02"), &periods, 1000.0);
        assert_covers(&slices, "2026-01-30", "2026-02-02");
        // 1000 on each January day, then 100 on February 1.
        assert_eq!(slices.len(), 3, "{slices:?}");
        assert_eq!(slices[1].start, midnight(day("2026-01-31")));
        assert_eq!(slices[2].start, midnight(day("2026-02-01")));
    }

    #[test]
    fn days_no_period_covers_get_a_slice_each() {
        let periods = [period("2026-01-01", "2026-01-03", 30.0)];
        let slices = plan(day("2026-01-01"), day("2026-01-07"), &periods, 1000.0);
        assert_covers(&slices, "2026-01-01", "2026-01-07");
        // The three known days together, then Jan 4, 5, 6 on their own.
        assert_eq!(slices.len(), 4, "{slices:?}");
        assert_eq!(slices[1].start, midnight(day("2026-01-04")));
        // No counts at all: a slice per day.
        assert_eq!(
            plan(day("2026-01-01"), day("2026-01-07"), &[], 1000.0).len(),
            6
        );
    }

    #[test]
    fn probes_that_agree_let_the_slices_aim_near_a_page_and_scattered_ones_lower() {
        // 1000 messages a day by the usage counts; each probe is one day held by one page.
        let periods = [period("2026-03-01", "2026-03-31", 31_000.0)];
        let probes = |counts: &[usize]| -> Vec<(Slice, Observed)> {
            counts
                .iter()
                .enumerate()
                .map(|(i, &records)| {
                    let first = day("2026-03-01") + Days::new(i as u64);
                    let slice = Slice {
                        start: midnight(first),
                        end: midnight(first + Days::new(1)),
                        bulk: false,
                    };
                    let observed = Observed {
                        records,
                        more: false,
                        oldest: None,
                    };
                    (slice, observed)
                })
                .collect()
        };
        // The counts are segments (about 1.7 a message) and the days agree within 1%: the
        // ratio corrects the counts and the slices aim at the most asked for. One odd day
        // (today's, unfinished) changes neither much.
        let mut agreeing: Vec<usize> = (0..16).map(|i| 585 + i % 10).collect();
        agreeing[0] = 100;
        let c = calibration(&probes(&agreeing), &periods, 960.0).unwrap();
        assert!((0.55..0.6).contains(&c.ratio), "{c:?}");
        assert_eq!(c.per_slice, 960.0);
        // Days scattered by about 20%: the slices aim well below a page.
        let scattered: Vec<usize> = (0..16).map(|i| [470, 590, 710][i % 3]).collect();
        let c = calibration(&probes(&scattered), &periods, 960.0).unwrap();
        assert!((550.0..800.0).contains(&c.per_slice), "{c:?}");
        // Never above what was asked for; too few probes to tell keep it.
        let c = calibration(&probes(&scattered), &periods, 500.0).unwrap();
        assert_eq!(c.per_slice, 500.0);
        let c = calibration(&probes(&[470, 710, 590]), &periods, 960.0).unwrap();
        assert_eq!(c.per_slice, 960.0);
    }

    #[test]
    fn the_probes_aim_lower_than_the_rest_and_the_slices_still_tile_the_window() {
        // 30,000 messages a month: a page's worth every day.
        let periods = [
            period("2026-01-01", "2026-01-31", 31_000.0),
            period("2026-02-01", "2026-02-28", 28_000.0),
        ];
        let slices = plan_with_probes(day("2026-01-01"), day("2026-03-01"), &periods, 960.0, 16);
        assert_covers(&slices, "2026-01-01", "2026-03-01");
        // The 16 probes and the 8 fillers fetched with them.
        let (rest, probes) = slices.split_at(slices.len() - 24);
        for (i, probe) in probes.iter().enumerate() {
            let e = expected(probe, &periods).unwrap();
            // Counts 5 % short of the messages still leave each probe within a page; the
            // newest holds what is left at the window's end.
            let least = if i == probes.len() - 1 { 0.0 } else { 850.0 };
            assert!(
                (least..=864.5).contains(&e) && e * 1.05 < 1000.0,
                "{probe:?}: {e}"
            );
        }
        // The rest aims at the whole 960, but for the last one before the probes.
        for s in &rest[..rest.len() - 1] {
            let e = expected(s, &periods).unwrap();
            assert!((955.0..=960.5).contains(&e), "{s:?}: {e}");
        }
        // No more slices than the plain plan's, plus what the probes' margin costs.
        let plain = plan(day("2026-01-01"), day("2026-03-01"), &periods, 960.0);
        assert!(
            slices.len() <= plain.len() + 4,
            "{} {}",
            slices.len(),
            plain.len()
        );
        // A plan too small to calibrate is the plain one.
        let small = plan_with_probes(day("2026-01-01"), day("2026-01-10"), &periods, 960.0, 16);
        assert_eq!(
            small,
            plan(day("2026-01-01"), day("2026-01-10"), &periods, 960.0)
        );
    }

    #[test]
    fn a_plan_may_start_inside_a_day() {
        // 1000 a day; from noon of the 1st: half a day, then a day a slice.
        let periods = [period("2026-03-01", "2026-03-31", 31_000.0)];
        let noon = midnight(day("2026-03-01")) + chrono::Duration::hours(12);
        let slices = plan_between(noon, midnight(day("2026-03-05")), &periods, 1000.0);
        assert_eq!(slices[0].start, noon);
        assert_eq!(
            slices[0].end,
            midnight(day("2026-03-02")) + chrono::Duration::hours(12)
        );
        assert_eq!(slices.last().unwrap().end, midnight(day("2026-03-05")));
        assert!(
            slices.windows(2).all(|w| w[0].end == w[1].start),
            "{slices:?}"
        );
        assert_eq!(slices.len(), 4, "{slices:?}");
    }

    #[test]
    fn the_rest_goes_in_slices_of_two_pages_but_the_last_rounds() {
        // 200 pages of messages over 200 days, 16 slots, slices aimed at 915 a page: the
        // oldest 32 slices (2 rounds) stay at 915, the rest aim at two pages less the margin
        // (85 a page) times sqrt(2).
        let periods = [period("2026-01-01", "2026-07-19", 200_000.0)];
        let (from, end) = (midnight(day("2026-01-01")), midnight(day("2026-07-20")));
        let slices = plan_in_pairs(from, end, &periods, 915.0, 16);
        assert_eq!(slices[0].start, from);
        assert_eq!(slices.last().unwrap().end, end);
        assert!(
            slices.windows(2).all(|w| w[0].end == w[1].start),
            "{slices:?}"
        );
        for s in &slices[..32] {
            let e = expected(s, &periods).unwrap();
            assert!((914.5..=915.5).contains(&e), "{s:?}: {e}");
        }
        let aim = 2_000.0 - 85.0 * 2f64.sqrt();
        for s in &slices[32..slices.len() - 1] {
            let e = expected(s, &periods).unwrap();
            assert!((aim - 1.0..=aim + 1.0).contains(&e), "{s:?}: {e}");
        }
        // Requests: two a pair and one a single: 214 against 219 page-sized slices.
        let requests = 32 + 2 * (slices.len() - 32);
        let singles = plan_between(from, end, &periods, 915.0).len();
        assert!(requests + 5 <= singles, "{requests} {singles}");
        // Too few rounds, a page or more asked for, or no counts: page-sized slices only.
        let few = plan_between(from, midnight(day("2026-02-10")), &periods, 915.0);
        assert_eq!(
            plan_in_pairs(from, midnight(day("2026-02-10")), &periods, 915.0, 16),
            few
        );
        assert_eq!(
            plan_in_pairs(from, end, &periods, 1000.0, 16),
            plan_between(from, end, &periods, 1000.0)
        );
        assert_eq!(plan_in_pairs(from, end, &[], 915.0, 16).len(), 200);
        assert_eq!(
            plan_in_pairs(from, end, &periods, 400.0, 16),
            plan_between(from, end, &periods, 400.0)
        );
    }

    #[test]
    fn slice_files_sort_in_time_order() {
        let slices = plan(day("2026-01-01"), day("2026-01-03"), &[], 1000.0);
        assert_eq!(slices[0].file(), "messages/2026-01-01T000000Z.jsonl");
        assert_eq!(slices[1].file(), "messages/2026-01-02T000000Z.jsonl");
    }
}
