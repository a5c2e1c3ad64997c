//! Usage summaries from the snapshot's Usage API records: one row per (account, category)
//! over a period, and the finance pivot (one row per account, a column per category).
//!
//! Conventions (docs/usage.md says the same for users):
//! - Amounts (`count`, `usage`, `price`) are exact decimals parsed from Twilio's text, never
//!   floats. A value that cannot be represented exactly is an error, not a rounding.
//! - The period is a pair of inclusive dates, like Twilio's `StartDate`/`EndDate`. Without
//!   bounds it is the whole snapshot: every record counts. A record counts when its whole
//!   `[start_date, end_date]` lies inside the period; one that only overlaps it *straddles* the
//!   boundary and is reported (never split pro rata, never summed).
//! - A sum with a null part is unknown: if any summed record has a null amount, the sum is
//!   null (an empty cell), and the nulls are reported. A null never becomes 0.
//! - Usage records of the same account and category that overlap in time would be counted
//!   twice: that is an input error.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use crate::error::{Error, Result};
use crate::model::UsageRecord;
use crate::snapshot::{for_each_line, Resource, Snapshot};
use crate::time::parse_date;

/// The categories of the pivot when `--category` is not given.
pub const DEFAULT_CATEGORIES: [&str; 5] = ["sms", "mms", "calls", "phonenumbers", "totalprice"];

/// Twilio's own grand total category: never added into the pivot's `total`.
pub const TOTAL_PRICE: &str = "totalprice";

/// `usage_summary.csv`, exactly these columns in this order.
pub const SUMMARY_HEADER: [&str; 10] = [
    "account_sid",
    "friendly_name",
    "category",
    "start_date",
    "end_date",
    "count",
    "usage",
    "usage_unit",
    "price",
    "price_unit",
];

/// `usage_straddling.csv`: the records left out because they cross the period's boundary.
pub const STRADDLING_HEADER: [&str; 12] = [
    "account_sid",
    "friendly_name",
    "category",
    "start_date",
    "end_date",
    "count",
    "usage",
    "usage_unit",
    "price",
    "price_unit",
    "period_start",
    "period_end",
];

/// Parses a decimal amount exactly: plain decimal text (`-12.3450`, `+3`, `0.5`) or, for
/// amounts that reached the snapshot as JSON numbers, scientific notation. Text with more
/// significant digits than a 96-bit decimal holds is refused rather than rounded.
pub fn parse_amount(text: &str) -> Option<Decimal> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if t.contains(['e', 'E']) {
        return Decimal::from_scientific(t).ok();
    }
    let unsigned = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (unsigned.contains('.') && frac.is_empty())
    {
        return None;
    }
    let value = Decimal::from_str(t).ok()?;
    // rust_decimal rounds digits it cannot hold: compare with the text to refuse that.
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let negative = t.starts_with('-') && !(int.is_empty() && frac.is_empty());
    let mut canonical = String::new();
    if negative {
        canonical.push('-');
    }
    canonical.push_str(if int.is_empty() { "0" } else { int });
    if !frac.is_empty() {
        canonical.push('.');
        canonical.push_str(frac);
    }
    (value.normalize().to_string() == canonical).then_some(value)
}

/// A sum of amounts that remembers nulls: known only if every part is known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AmountSum {
    pub sum: Decimal,
    /// Parts with a value.
    pub known: usize,
    /// Parts that were null.
    pub nulls: usize,
}

impl AmountSum {
    pub fn add(&mut self, value: Option<Decimal>) -> Option<()> {
        match value {
            Some(v) => {
                self.sum = self.sum.checked_add(v)?;
                self.known += 1;
            }
            None => self.nulls += 1,
        }
        Some(())
    }

    /// The sum, or None when any part was null or there were no parts.
    pub fn value(&self) -> Option<Decimal> {
        (self.nulls == 0 && self.known > 0).then_some(self.sum)
    }

    pub fn parts(&self) -> usize {
        self.known + self.nulls
    }

    /// The CSV cell: the exact sum, or empty when unknown.
    pub fn cell(&self) -> String {
        self.value().map(|v| v.to_string()).unwrap_or_default()
    }
}

/// The period: inclusive dates, either side open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Period {
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
}

/// Where a record lies with respect to the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Inside,
    Straddles,
    Outside,
}

impl Period {
    pub fn new(start: Option<NaiveDate>, end: Option<NaiveDate>) -> Result<Period> {
        if let (Some(s), Some(e)) = (start, end) {
            if s > e {
                return Err(Error::Input(format!(
                    "--start {s} is after --end {e}: the period runs from --start to --end, both days included"
                )));
            }
        }
        Ok(Period { start, end })
    }

    pub fn contains(&self, day: NaiveDate) -> bool {
        self.start.is_none_or(|s| s <= day) && self.end.is_none_or(|e| day <= e)
    }

    /// A record `[start, end]` (inclusive) is inside when both ends are, outside when it ends
    /// before the period starts or starts after it ends, and straddles otherwise.
    pub fn place(&self, start: NaiveDate, end: NaiveDate) -> Placement {
        if self.contains(start) && self.contains(end) {
            Placement::Inside
        } else if self.end.is_some_and(|e| start > e) || self.start.is_some_and(|s| end < s) {
            Placement::Outside
        } else {
            Placement::Straddles
        }
    }

    pub fn start_text(&self) -> String {
        self.start.map(|d| d.to_string()).unwrap_or_default()
    }

    pub fn end_text(&self) -> String {
        self.end.map(|d| d.to_string()).unwrap_or_default()
    }

    /// For messages: `YYYY-MM-DD to YYYY-MM-DD`, `the whole snapshot` without bounds.
    pub fn describe(&self) -> String {
        match (self.start, self.end) {
            (None, None) => "the whole snapshot".to_string(),
            (s, e) => format!(
                "{} to {}",
                s.map_or("the start".to_string(), |d| d.to_string()),
                e.map_or("the end".to_string(), |d| d.to_string())
            ),
        }
    }
}

/// A usage record with its dates and amounts parsed.
#[derive(Debug, Clone)]
pub struct ParsedRecord<'a> {
    /// Position among the snapshot's usage records (0-based), for error messages.
    pub index: usize,
    pub record: &'a UsageRecord,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub count: Option<Decimal>,
    pub usage: Option<Decimal>,
    pub price: Option<Decimal>,
}

impl ParsedRecord<'_> {
    /// `YYYYMM` of the calendar month holding the whole record, if it fits in one.
    pub fn month(&self) -> Option<i32> {
        (self.start.year() == self.end.year() && self.start.month() == self.end.month())
            .then(|| self.start.year() * 100 + self.start.month() as i32)
    }
}

/// The file and line of each usage record, in snapshot order (read again from disk: only
/// needed for error messages).
pub fn record_locations(snapshot: &Snapshot) -> Vec<(PathBuf, usize)> {
    let mut out = Vec::new();
    for (path, _) in snapshot
        .data_files(Resource::UsageRecords)
        .unwrap_or_default()
    {
        let _ = for_each_line(&path, |line, _| {
            out.push((path.clone(), line));
            Ok(())
        });
    }
    out
}

fn location(locations: &[(PathBuf, usize)], index: usize) -> String {
    match locations.get(index) {
        Some((path, line)) => format!("{}:{line}", path.display()),
        None => format!("usage record {}", index + 1),
    }
}

/// Parses every usage record's dates and amounts; all problems are reported together, each
/// with its file and line.
pub fn parse_records(snapshot: &Snapshot) -> Result<Vec<ParsedRecord<'_>>> {
    let mut out = Vec::with_capacity(snapshot.usage_records.len());
    let mut problems: Vec<(usize, String)> = Vec::new();
    for (index, record) in snapshot.usage_records.iter().enumerate() {
        let mut problem = |message: String| problems.push((index, message));
        let mut date = |field: &str, text: &str| {
            let parsed = parse_date(text);
            if parsed.is_none() {
                problem(format!(
                    "{field} {text:?} is not a date (expected YYYY-MM-DD, as the Usage API writes it)"
                ));
            }
            parsed
        };
        let start = date("start_date", &record.start_date);
        let end = date("end_date", &record.end_date);
        let mut amount = |field: &str, text: &Option<String>| match text {
            None => None,
            Some(t) => {
                let value = parse_amount(t);
                if value.is_none() {
                    problems.push((
                        index,
                        format!(
                            "{field} {t:?} is not an exact decimal number (expected text such as \"-12.3450\", or null)"
                        ),
                    ));
                }
                value
            }
        };
        let count = amount("count", &record.count);
        let usage = amount("usage", &record.usage);
        let price = amount("price", &record.price);
        if let (Some(s), Some(e)) = (start, end) {
            if s > e {
                problems.push((index, format!("start_date {s} is after end_date {e}")));
                continue;
            }
            let bad_amount = [
                (&record.count, count),
                (&record.usage, usage),
                (&record.price, price),
            ]
            .iter()
            .any(|(text, value)| text.is_some() && value.is_none());
            if !bad_amount {
                out.push(ParsedRecord {
                    index,
                    record,
                    start: s,
                    end: e,
                    count,
                    usage,
                    price,
                });
            }
        }
    }
    if problems.is_empty() {
        return Ok(out);
    }
    let locations = record_locations(snapshot);
    Err(Error::Many(
        problems
            .into_iter()
            .map(|(i, m)| format!("{}: {m}", location(&locations, i)))
            .collect(),
    ))
}

/// One row of `usage_summary.csv`.
#[derive(Debug, Clone)]
pub struct SummaryRow {
    pub account_sid: String,
    pub friendly_name: String,
    pub category: String,
    /// The earliest start and latest end of the records summed.
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub count: AmountSum,
    pub usage: AmountSum,
    pub usage_unit: String,
    pub price: AmountSum,
    pub price_unit: String,
    pub records: usize,
}

impl SummaryRow {
    pub fn cells(&self) -> [String; 10] {
        [
            self.account_sid.clone(),
            self.friendly_name.clone(),
            self.category.clone(),
            self.start_date.to_string(),
            self.end_date.to_string(),
            self.count.cell(),
            self.usage.cell(),
            self.usage_unit.clone(),
            self.price.cell(),
            self.price_unit.clone(),
        ]
    }
}

/// The summary: rows in account order (the parent, then subaccounts as the snapshot lists
/// them, then any other account sid), categories alphabetical; plus what was left out.
#[derive(Debug, Clone, Default)]
pub struct UsageSummary {
    pub period: Period,
    pub rows: Vec<SummaryRow>,
    /// Records crossing the period's boundary: reported, not summed.
    pub straddling: Vec<usize>,
    /// Records inside the period (indexes into the snapshot's usage records).
    pub included: Vec<usize>,
    /// Human-readable warnings (nulls, straddling records) for stderr.
    pub warnings: Vec<String>,
}

fn same_unit(a: &str, b: &str) -> bool {
    a.is_empty() || b.is_empty() || a.eq_ignore_ascii_case(b)
}

/// Sums the records inside the period per (account, category).
pub fn summarize(
    snapshot: &Snapshot,
    records: &[ParsedRecord<'_>],
    period: Period,
) -> Result<UsageSummary> {
    let mut groups: BTreeMap<(String, String), Vec<&ParsedRecord>> = BTreeMap::new();
    let mut summary = UsageSummary {
        period,
        ..Default::default()
    };
    for r in records {
        match period.place(r.start, r.end) {
            Placement::Inside => {
                summary.included.push(r.index);
                groups
                    .entry((r.record.account_sid.clone(), r.record.category.clone()))
                    .or_default()
                    .push(r);
            }
            Placement::Straddles => summary.straddling.push(r.index),
            Placement::Outside => {}
        }
    }
    let mut problems = Vec::new();
    let mut locations: Option<Vec<(PathBuf, usize)>> = None;
    let mut at = |i: usize| {
        let l = locations.get_or_insert_with(|| record_locations(snapshot));
        location(l, i)
    };
    for ((account, category), group) in &mut groups {
        group.sort_by_key(|r| (r.start, r.end, r.index));
        let first = group[0];
        let mut row = SummaryRow {
            account_sid: account.clone(),
            friendly_name: snapshot
                .account(account)
                .map(|a| a.name().to_string())
                .unwrap_or_default(),
            category: category.clone(),
            start_date: first.start,
            end_date: first.end,
            count: AmountSum::default(),
            usage: AmountSum::default(),
            usage_unit: String::new(),
            price: AmountSum::default(),
            price_unit: String::new(),
            records: group.len(),
        };
        let mut previous: Option<&ParsedRecord> = None;
        for r in group.iter() {
            if let Some(p) = previous {
                if r.start <= p.end {
                    problems.push(format!(
                        "{}: usage record {account} {category} {}..{} overlaps the record at {} ({}..{}): summing both would count the overlap twice; keep one granularity (e.g. only monthly records) per account and category",
                        at(r.index), r.start, r.end, at(p.index), p.start, p.end
                    ));
                }
            }
            previous = Some(r);
            row.start_date = row.start_date.min(r.start);
            row.end_date = row.end_date.max(r.end);
            if row.count.add(r.count).is_none()
                || row.usage.add(r.usage).is_none()
                || row.price.add(r.price).is_none()
            {
                problems.push(format!(
                    "{}: the sum of {account} {category} amounts overflows an exact decimal",
                    at(r.index)
                ));
            }
            for (unit, seen, field) in [
                (&r.record.usage_unit, &mut row.usage_unit, "usage_unit"),
                (&r.record.price_unit, &mut row.price_unit, "price_unit"),
            ] {
                let unit = unit.as_deref().unwrap_or("").trim();
                if !same_unit(unit, seen) {
                    problems.push(format!(
                        "{}: {field} {unit:?} differs from {seen:?} in other {account} {category} records: amounts in different units cannot be summed",
                        at(r.index)
                    ));
                } else if seen.is_empty() {
                    // Currencies as ISO 4217 spells them: the Usage API writes "usd", the
                    // Messages API "USD"; every output says "USD".
                    *seen = if field == "price_unit" {
                        unit.to_ascii_uppercase()
                    } else {
                        unit.to_string()
                    };
                }
            }
        }
        for (sum, field) in [
            (&row.count, "count"),
            (&row.usage, "usage"),
            (&row.price, "price"),
        ] {
            if sum.nulls > 0 {
                summary.warnings.push(format!(
                    "{account} {category}: {field} is null in {} of {} records: its sum is left empty (unknown), not 0",
                    sum.nulls,
                    sum.parts()
                ));
            }
        }
        summary.rows.push(row);
    }
    if !problems.is_empty() {
        return Err(Error::Many(problems));
    }
    for &i in &summary.straddling {
        let r = &snapshot.usage_records[i];
        summary.warnings.push(format!(
            "{} {} {}..{} crosses the period ({}..{}): not summed (see usage_straddling.csv)",
            r.account_sid,
            r.category,
            r.start_date,
            r.end_date,
            period.start_text(),
            period.end_text()
        ));
    }
    let order = |sid: &str| {
        snapshot
            .accounts
            .iter()
            .position(|a| a.sid == sid)
            .unwrap_or(usize::MAX)
    };
    summary.rows.sort_by(|a, b| {
        (order(&a.account_sid), &a.account_sid, &a.category).cmp(&(
            order(&b.account_sid),
            &b.account_sid,
            &b.category,
        ))
    });
    Ok(summary)
}

/// The straddling records as CSV cells.
pub fn straddling_cells(snapshot: &Snapshot, summary: &UsageSummary) -> Vec<[String; 12]> {
    summary
        .straddling
        .iter()
        .map(|&i| {
            let r = &snapshot.usage_records[i];
            let text = |v: &Option<String>| v.clone().unwrap_or_default();
            [
                r.account_sid.clone(),
                snapshot
                    .account(&r.account_sid)
                    .map(|a| a.name().to_string())
                    .unwrap_or_default(),
                r.category.clone(),
                r.start_date.clone(),
                r.end_date.clone(),
                text(&r.count),
                text(&r.usage),
                text(&r.usage_unit),
                text(&r.price),
                text(&r.price_unit).to_ascii_uppercase(),
                summary.period.start_text(),
                summary.period.end_text(),
            ]
        })
        .collect()
}

/// Checks a `--category` list: names trimmed, none empty, none twice.
pub fn check_categories(categories: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for c in categories {
        let c = c.trim();
        if c.is_empty() {
            return Err(Error::Input(
                "--category holds an empty name: give Usage API categories separated by commas, e.g. --category sms,mms,calls,phonenumbers,totalprice".into(),
            ));
        }
        if out.iter().any(|o| o == c) {
            return Err(Error::Input(format!("--category names {c:?} twice")));
        }
        out.push(c.to_string());
    }
    if out.is_empty() {
        return Ok(DEFAULT_CATEGORIES.iter().map(|c| c.to_string()).collect());
    }
    Ok(out)
}

/// The categories the pivot's `total` adds: the chosen ones except `totalprice` (Twilio's
/// total over every category) and except a sub-category of another chosen one (Twilio names
/// them `parent-child`: `sms-inbound` is part of `sms`), so nothing is counted twice.
pub fn total_categories(categories: &[String]) -> Vec<String> {
    categories
        .iter()
        .filter(|c| c.as_str() != TOTAL_PRICE)
        .filter(|c| {
            !categories
                .iter()
                .any(|p| p != *c && c.starts_with(&format!("{p}-")))
        })
        .cloned()
        .collect()
}

/// One cell of the pivot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PivotCell {
    /// No record of the category in the period.
    Absent,
    /// Records exist but some price is null: the sum is unknown.
    Unknown,
    Value(Decimal),
}

impl PivotCell {
    pub fn text(&self) -> String {
        match self {
            PivotCell::Value(v) => v.to_string(),
            _ => String::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PivotRow {
    pub account_sid: String,
    pub friendly_name: String,
    pub price_unit: String,
    pub cells: Vec<PivotCell>,
    /// The sum of the `total_categories`; Unknown if any of them is.
    pub total: PivotCell,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Pivot {
    pub categories: Vec<String>,
    pub total_of: Vec<String>,
    pub rows: Vec<PivotRow>,
}

impl Pivot {
    pub fn header(&self) -> Vec<String> {
        let mut h = vec![
            "account_sid".to_string(),
            "friendly_name".to_string(),
            "price_unit".to_string(),
        ];
        h.extend(self.categories.iter().cloned());
        h.push("total".to_string());
        h.push("notes".to_string());
        h
    }

    pub fn cells(&self) -> Vec<Vec<String>> {
        self.rows
            .iter()
            .map(|r| {
                let mut cells = vec![
                    r.account_sid.clone(),
                    r.friendly_name.clone(),
                    r.price_unit.clone(),
                ];
                cells.extend(r.cells.iter().map(PivotCell::text));
                cells.push(r.total.text());
                cells.push(r.notes.join("; "));
                cells
            })
            .collect()
    }
}

/// The finance pivot: one row per account of the snapshot (and per other account with
/// records), the price of each chosen category, and the total.
pub fn pivot(snapshot: &Snapshot, summary: &UsageSummary, categories: &[String]) -> Result<Pivot> {
    let total_of = total_categories(categories);
    let mut accounts: Vec<(String, String)> = snapshot
        .accounts
        .iter()
        .map(|a| (a.sid.clone(), a.name().to_string()))
        .collect();
    for row in &summary.rows {
        if !accounts.iter().any(|(sid, _)| *sid == row.account_sid) {
            accounts.push((row.account_sid.clone(), row.friendly_name.clone()));
        }
    }
    let mut rows = Vec::new();
    for (sid, name) in accounts {
        let mut price_unit = String::new();
        let mut cells = Vec::new();
        let mut notes = Vec::new();
        let mut total = Some(Decimal::ZERO);
        let mut any = false;
        for category in categories {
            let found = summary
                .rows
                .iter()
                .find(|r| r.account_sid == sid && &r.category == category);
            let cell = match found {
                None => PivotCell::Absent,
                Some(r) => {
                    if !same_unit(&r.price_unit, &price_unit) {
                        return Err(Error::Input(format!(
                            "account {sid}: category {category} is priced in {:?} but others in {price_unit:?}: the pivot cannot add different currencies",
                            r.price_unit
                        )));
                    }
                    if price_unit.is_empty() {
                        price_unit = r.price_unit.clone();
                    }
                    match r.price.value() {
                        Some(v) => PivotCell::Value(v),
                        None => {
                            notes.push(format!(
                                "{category} price null in {} of {} records",
                                r.price.nulls,
                                r.price.parts()
                            ));
                            PivotCell::Unknown
                        }
                    }
                }
            };
            if total_of.contains(category) {
                match cell {
                    PivotCell::Absent => {}
                    PivotCell::Unknown => total = None,
                    PivotCell::Value(v) => {
                        any = true;
                        total = total.and_then(|t| t.checked_add(v));
                    }
                }
            }
            cells.push(cell);
        }
        let total = match total {
            None => {
                notes.push("total unknown (a price is null)".to_string());
                PivotCell::Unknown
            }
            Some(_) if !any => PivotCell::Absent,
            Some(t) => PivotCell::Value(t),
        };
        if cells.iter().all(|c| *c == PivotCell::Absent) {
            notes.push("no usage records of these categories in the period".to_string());
        }
        rows.push(PivotRow {
            account_sid: sid,
            friendly_name: name,
            price_unit,
            cells,
            total,
            notes,
        });
    }
    Ok(Pivot {
        categories: categories.to_vec(),
        total_of,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn date(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    #[test]
    fn amounts_parse_exactly_or_not_at_all() {
        assert_eq!(parse_amount("-12.3450"), Some(d("-12.3450")));
        assert_eq!(parse_amount("-12.3450").unwrap().to_string(), "-12.3450");
        assert_eq!(parse_amount(" 7 "), Some(d("7")));
        assert_eq!(parse_amount("+0.5"), Some(d("0.5")));
        assert_eq!(parse_amount("-0.000"), Some(d("0")));
        assert_eq!(parse_amount("1e-5"), Some(d("0.00001")));
        // 28 significant digits fit; more would be rounded, so they are refused.
        assert_eq!(
            parse_amount("1234567890.123456789012345678")
                .unwrap()
                .to_string(),
            "1234567890.123456789012345678"
        );
        assert_eq!(parse_amount("0.12345678901234567890123456789"), None);
        for bad in ["", "abc", "1,5", "1.", ".5", "--1", "1.2.3", "NaN", "0x10"] {
            assert_eq!(parse_amount(bad), None, "{bad}");
        }
    }

    #[test]
    fn sums_are_exact_and_a_null_part_makes_them_unknown() {
        let mut s = AmountSum::default();
        for v in ["0.1", "0.2", "-12.3450", "0.0000000001"] {
            s.add(parse_amount(v)).unwrap();
        }
        assert_eq!(s.value().unwrap().to_string(), "-12.0449999999");
        assert_eq!(s.cell(), "-12.0449999999");
        s.add(None).unwrap();
        assert_eq!(s.value(), None);
        assert_eq!(s.cell(), "");
        assert_eq!((s.known, s.nulls), (4, 1));
        let mut all_null = AmountSum::default();
        all_null.add(None).unwrap();
        assert_eq!(all_null.cell(), "");
        assert_eq!(
            AmountSum::default().value(),
            None,
            "no parts is not 0 either"
        );
        let mut big = AmountSum::default();
        big.add(Some(Decimal::MAX)).unwrap();
        assert!(
            big.add(Some(Decimal::ONE)).is_none(),
            "overflow is reported"
        );
    }

    #[test]
    fn period_edges_are_inclusive_and_straddlers_are_neither_in_nor_out() {
        let p = Period::new(Some(date("2026-01-01")), Some(date("2026-01-31"))).unwrap();
        assert_eq!(
            p.place(date("2026-01-01"), date("2026-01-31")),
            Placement::Inside
        );
        assert_eq!(
            p.place(date("2026-01-31"), date("2026-01-31")),
            Placement::Inside
        );
        assert_eq!(
            p.place(date("2025-12-31"), date("2025-12-31")),
            Placement::Outside
        );
        assert_eq!(
            p.place(date("2026-02-01"), date("2026-02-28")),
            Placement::Outside
        );
        assert_eq!(
            p.place(date("2025-12-31"), date("2026-01-01")),
            Placement::Straddles
        );
        assert_eq!(
            p.place(date("2026-01-31"), date("2026-02-01")),
            Placement::Straddles
        );
        assert_eq!(
            p.place(date("2025-12-01"), date("2026-02-28")),
            Placement::Straddles
        );
        let open = Period::new(Some(date("2026-01-15")), None).unwrap();
        assert_eq!(
            open.place(date("2030-01-01"), date("2030-01-31")),
            Placement::Inside
        );
        assert_eq!(
            open.place(date("2026-01-01"), date("2026-01-31")),
            Placement::Straddles
        );
        let all = Period::default();
        assert_eq!(
            all.place(date("1999-01-01"), date("2099-01-01")),
            Placement::Inside
        );
        assert!(Period::new(Some(date("2026-02-01")), Some(date("2026-01-31"))).is_err());
        assert!(Period::new(Some(date("2026-02-01")), Some(date("2026-02-01"))).is_ok());
    }

    #[test]
    fn the_total_never_adds_totalprice_or_a_subcategory_twice() {
        let c = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            total_categories(&c(&DEFAULT_CATEGORIES)),
            c(&["sms", "mms", "calls", "phonenumbers"])
        );
        assert_eq!(
            total_categories(&c(&[
                "sms",
                "sms-inbound",
                "sms-inbound-longcode",
                "mms-outbound"
            ])),
            c(&["sms", "mms-outbound"])
        );
        assert_eq!(total_categories(&c(&["totalprice"])), Vec::<String>::new());
    }

    #[test]
    fn category_lists_are_checked() {
        assert_eq!(check_categories(&[]).unwrap().len(), 5);
        assert_eq!(
            check_categories(&[" sms".into(), "mms ".into()]).unwrap(),
            vec!["sms".to_string(), "mms".to_string()]
        );
        assert!(check_categories(&["sms".into(), "".into()]).is_err());
        assert!(check_categories(&["sms".into(), "sms".into()]).is_err());
    }
}
