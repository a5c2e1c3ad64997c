//! Per-customer attribution of the parent's message traffic, and its reconciliation against
//! the parent's own `sms` and `mms` usage records.
//!
//! Messages are streamed once; each keeps only compact columns (bucket index, month, direction
//! flags, segments, media, price as a fixed-point integer), gathered in chunks of at most
//! [`CHUNK_ROWS`] rows. Each chunk goes through polars' lazy engine (group-by bucket and
//! month), and the small per-chunk results are merged exactly in i128. Memory therefore stays
//! bounded by one chunk whatever the number of messages.
//!
//! Signs: Twilio writes a message's `price` as a negative number (money the account pays);
//! the Usage API writes `price` as a positive one. Every output shows **cost = −price**, so
//! costs are positive and comparable with usage prices.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use polars::prelude::*;
use rust_decimal::Decimal;

use super::mapping::{NumberTarget, ResolvedMapping};
use super::usage::{AmountSum, ParsedRecord, Period};
use crate::error::{Error, Result};
use crate::model::MessageRef;
use crate::snapshot::{LineRef, Snapshot};

/// Message prices are kept as integers of 10^-PRICE_SCALE currency units. A price with more
/// (non-zero) decimals than this is refused rather than rounded.
pub const PRICE_SCALE: u32 = 6;
/// Largest message price accepted, in currency units (guards the i64 sums of a chunk).
pub const MAX_PRICE_UNITS: i64 = 1_000_000;
/// Rows per polars chunk: about 40 MB of columns.
pub const CHUNK_ROWS: usize = 1 << 20;

/// The usage categories the message traffic is reconciled against.
pub const RECONCILED_CATEGORIES: [&str; 2] = ["sms", "mms"];

/// `usage_attribution.csv`.
pub const ATTRIBUTION_HEADER: [&str; 17] = [
    "kind",
    "customer",
    "target_account_sid",
    "month",
    "inbound_messages",
    "outbound_messages",
    "segments",
    "media",
    "priced_messages",
    "unpriced_messages",
    "cost",
    "price_unit",
    "usage_cost",
    "attributed_cost",
    "unattributed_cost",
    "difference",
    "note",
];

/// Who a message's Twilio number belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BucketKind {
    /// A target customer of the mapping.
    Customer,
    /// A parent number the mapping does not move.
    Unmapped,
    /// A number the mapping sends to two customers (the plan blocks it).
    Conflict,
    /// The message's Twilio-side number is not among the snapshot's numbers (released?).
    UnknownNumber,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub kind: BucketKind,
    /// The customer name, or `(unmapped)`, `(conflict)`, `(unknown number)`.
    pub name: String,
    pub account_sid: Option<String>,
}

pub const UNMAPPED: u32 = 0;
pub const CONFLICT: u32 = 1;
pub const UNKNOWN_NUMBER: u32 = 2;

/// Totals of one bucket in one month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub messages: i64,
    pub inbound: i64,
    pub outbound: i64,
    pub segments: i64,
    pub media: i64,
    pub priced: i64,
    pub unpriced: i64,
    /// Sum of the known prices, in 10^-PRICE_SCALE units (negative: Twilio's sign).
    pub price_units: i128,
}

impl Totals {
    /// Adds another cell's totals (all fields).
    pub fn add(&mut self, o: &Totals) {
        self.messages += o.messages;
        self.inbound += o.inbound;
        self.outbound += o.outbound;
        self.segments += o.segments;
        self.media += o.media;
        self.priced += o.priced;
        self.unpriced += o.unpriced;
        self.price_units += o.price_units;
    }
}

/// The reconciliation of one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthReconciliation {
    /// `YYYYMM`.
    pub month: i32,
    /// The parent's `sms` + `mms` usage price for the month; unknown when a price is null or
    /// when there is no such record.
    pub usage: AmountSum,
    pub attributed: Decimal,
    pub unattributed: Decimal,
    /// usage − (attributed + unattributed), when the usage is known.
    pub difference: Option<Decimal>,
    pub unpriced_messages: i64,
}

#[derive(Debug, Clone)]
pub struct Attribution {
    pub buckets: Vec<Bucket>,
    /// (bucket, month `YYYYMM`) -> totals, only where there were messages.
    pub cells: BTreeMap<(u32, i32), Totals>,
    pub reconciliation: Vec<MonthReconciliation>,
    /// The currency of the message prices (as Twilio writes it, e.g. `USD`).
    pub price_unit: String,
    /// Decimals shown for costs: the most any message price had (at most PRICE_SCALE).
    pub display_scale: u32,
    pub messages_read: u64,
    pub messages_in_period: u64,
    pub warnings: Vec<String>,
}

/// `YYYY-MM` from `YYYYMM`.
pub fn month_text(month: i32) -> String {
    format!("{:04}-{:02}", month / 100, month % 100)
}

/// Parses a message price exactly into 10^-PRICE_SCALE units. Returns the units and the
/// number of decimals the text had.
pub fn price_units(text: &str) -> std::result::Result<(i64, u32), String> {
    match plain_price_units(text) {
        Some(plain) => Ok(plain),
        None => any_price_units(text),
    }
}

/// `price_units` for any text: through an exact Decimal.
fn any_price_units(text: &str) -> std::result::Result<(i64, u32), String> {
    let value = super::usage::parse_amount(text).ok_or_else(|| {
        format!(
            "price {text:?} is not a decimal number (expected text such as \"-0.00790\", or null)"
        )
    })?;
    let normal = value.normalize();
    if normal.scale() > PRICE_SCALE {
        return Err(format!(
            "price {text:?} has {} decimals; subaudit keeps message prices exact to {PRICE_SCALE} decimals and will not round",
            normal.scale()
        ));
    }
    let mut scaled = normal;
    scaled.rescale(PRICE_SCALE);
    let units = scaled.mantissa();
    let limit = MAX_PRICE_UNITS as i128 * 10i128.pow(PRICE_SCALE);
    if units.abs() > limit {
        return Err(format!(
            "price {text:?} is beyond ±{MAX_PRICE_UNITS} per message: not a message price"
        ));
    }
    Ok((units as i64, value.scale().min(PRICE_SCALE)))
}

/// The usual price text (`-0.00790`: a sign, at most 7 integer digits, at most PRICE_SCALE
/// decimals, nothing else) read straight into units: a Decimal per message costs more than
/// the rest of the attribution. Anything else, errors included, takes the general path.
fn plain_price_units(text: &str) -> Option<(i64, u32)> {
    let bytes = text.as_bytes();
    let (negative, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let (int, frac) = match digits.iter().position(|&b| b == b'.') {
        Some(dot) if dot + 1 < digits.len() => (&digits[..dot], &digits[dot + 1..]),
        Some(_) => return None,
        None => (digits, &[][..]),
    };
    if int.is_empty() || int.len() > 7 || frac.len() > PRICE_SCALE as usize {
        return None;
    }
    let mut units: i64 = 0;
    for &digit in int.iter().chain(frac) {
        if !digit.is_ascii_digit() {
            return None;
        }
        units = units * 10 + i64::from(digit - b'0');
    }
    let scale = frac.len() as u32;
    units *= 10i64.pow(PRICE_SCALE - scale);
    if units > MAX_PRICE_UNITS * 10i64.pow(PRICE_SCALE) {
        return None;
    }
    Some((if negative { -units } else { units }, scale))
}

/// Converts a sum of units back to a decimal with `scale` decimals (exact: no price had more).
pub fn units_to_decimal(units: i128, scale: u32) -> Decimal {
    let mut d = Decimal::from_i128_with_scale(units, PRICE_SCALE);
    d.rescale(scale.min(PRICE_SCALE));
    d
}

fn count_field(at: LineRef<'_>, field: &str, value: Option<&str>) -> Result<Option<u32>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse::<u32>().map(Some).map_err(|_| {
            Error::at_line(
                at.path,
                at.line,
                format!(
                    "{field} {v:?} is not a whole number (Twilio writes it as text, e.g. \"1\")"
                ),
            )
        }),
    }
}

/// What one worker gathers from its share of the messages.
#[derive(Default)]
pub struct AttributionWorker {
    chunk: Chunk,
    cells: BTreeMap<(u32, i32), Totals>,
    price_unit: Option<String>,
    display_scale: u32,
    in_period: u64,
}

/// The columns of one chunk of messages.
#[derive(Default)]
struct Chunk {
    bucket: Vec<u32>,
    month: Vec<i32>,
    inbound: Vec<u32>,
    outbound: Vec<u32>,
    segments: Vec<Option<u32>>,
    media: Vec<Option<u32>>,
    price: Vec<Option<i64>>,
}

impl Chunk {
    fn len(&self) -> usize {
        self.bucket.len()
    }

    /// Groups the chunk by bucket and month in polars' lazy engine and merges the result.
    fn flush(&mut self, into: &mut BTreeMap<(u32, i32), Totals>) -> Result<()> {
        if self.len() == 0 {
            return Ok(());
        }
        let chunk = std::mem::take(self);
        let height = chunk.bucket.len();
        let polars_error = |e: PolarsError| Error::failed("polars", e);
        let df = DataFrame::new(
            height,
            vec![
                Column::new("bucket".into(), chunk.bucket),
                Column::new("month".into(), chunk.month),
                Column::new("inbound".into(), chunk.inbound),
                Column::new("outbound".into(), chunk.outbound),
                Column::new("segments".into(), chunk.segments),
                Column::new("media".into(), chunk.media),
                Column::new("price".into(), chunk.price),
            ],
        )
        .map_err(polars_error)?;
        let grouped = aggregate(df.lazy()).collect().map_err(polars_error)?;
        let get = |name: &str| -> Result<Vec<i64>> {
            let column = grouped.column(name).map_err(polars_error)?;
            let column = column.cast(&DataType::Int64).map_err(polars_error)?;
            let values = column.i64().map_err(polars_error)?;
            Ok(values.iter().map(|v| v.unwrap_or(0)).collect())
        };
        let (bucket, month) = (get("bucket")?, get("month")?);
        let (messages, inbound, outbound) = (get("messages")?, get("inbound")?, get("outbound")?);
        let (segments, media) = (get("segments")?, get("media")?);
        let (priced, unpriced, price) = (get("priced")?, get("unpriced")?, get("price")?);
        for i in 0..grouped.height() {
            let totals = Totals {
                messages: messages[i],
                inbound: inbound[i],
                outbound: outbound[i],
                segments: segments[i],
                media: media[i],
                priced: priced[i],
                unpriced: unpriced[i],
                price_units: price[i] as i128,
            };
            into.entry((bucket[i] as u32, month[i] as i32))
                .or_default()
                .add(&totals);
        }
        Ok(())
    }
}

/// The group-by of a chunk: per (bucket, month), message counts and sums. Counts are cast to
/// Int64 before summing, so no narrow integer overflows; `price` sums only known prices,
/// `priced`/`unpriced` count them.
fn aggregate(frame: LazyFrame) -> LazyFrame {
    frame.group_by([col("bucket"), col("month")]).agg([
        len().cast(DataType::Int64).alias("messages"),
        col("inbound").cast(DataType::Int64).sum().alias("inbound"),
        col("outbound")
            .cast(DataType::Int64)
            .sum()
            .alias("outbound"),
        col("segments")
            .cast(DataType::Int64)
            .sum()
            .alias("segments"),
        col("media").cast(DataType::Int64).sum().alias("media"),
        col("price").count().cast(DataType::Int64).alias("priced"),
        col("price")
            .null_count()
            .cast(DataType::Int64)
            .alias("unpriced"),
        col("price").sum().alias("price"),
    ])
}

/// The buckets: the three unattributed ones first, then the mapping's customers by name.
fn buckets(mapping: &ResolvedMapping) -> Vec<Bucket> {
    let mut out = vec![
        Bucket {
            kind: BucketKind::Unmapped,
            name: "(unmapped)".into(),
            account_sid: None,
        },
        Bucket {
            kind: BucketKind::Conflict,
            name: "(conflict)".into(),
            account_sid: None,
        },
        Bucket {
            kind: BucketKind::UnknownNumber,
            name: "(unknown number)".into(),
            account_sid: None,
        },
    ];
    for customer in mapping.moving_customers() {
        let account_sid = mapping.targets.values().find_map(|t| match t {
            NumberTarget::Move(t) if t.customer == customer => t.account_sid.clone(),
            _ => None,
        });
        out.push(Bucket {
            kind: BucketKind::Customer,
            name: customer,
            account_sid,
        });
    }
    out
}

/// Streams the parent's messages, attributes each to a bucket and month, and reconciles the
/// months against the parent's `sms`/`mms` usage records inside the period.
pub fn attribute(
    snapshot: &Snapshot,
    mapping: &ResolvedMapping,
    period: Period,
    records: &[ParsedRecord<'_>],
    included: &[usize],
) -> Result<Attribution> {
    let scan = AttributionScan::new(snapshot, mapping, period);
    // On every core: each worker fills its own columns, groups them in polars every
    // CHUNK_ROWS rows, and keeps exact totals; `finish` merges the workers' totals.
    let (workers, messages_read) =
        snapshot.fold_messages(AttributionWorker::default, |w, at, m| scan.visit(w, at, m))?;
    scan.finish(snapshot, workers, messages_read, records, included)
}

/// The attribution in two halves, so that `audit` can run `visit` in the same read of the
/// messages as its other stages: which bucket each number is in, and the period.
pub struct AttributionScan<'a> {
    period: Period,
    buckets: Vec<Bucket>,
    by_phone: foldhash::HashMap<&'a str, u32>,
}

impl<'a> AttributionScan<'a> {
    pub fn new(snapshot: &'a Snapshot, mapping: &ResolvedMapping, period: Period) -> Self {
        let buckets = buckets(mapping);
        let customer_index: HashMap<&str, u32> = buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| b.kind == BucketKind::Customer)
            .map(|(i, b)| (b.name.as_str(), i as u32))
            .collect();
        let mut by_phone = foldhash::HashMap::default();
        for number in &snapshot.numbers {
            let bucket = match mapping.target(&number.sid) {
                Some(NumberTarget::Move(t)) => customer_index[t.customer.as_str()],
                Some(NumberTarget::Conflict(_)) => CONFLICT,
                None => UNMAPPED,
            };
            by_phone.insert(number.phone_number.as_str(), bucket);
        }
        AttributionScan {
            period,
            buckets,
            by_phone,
        }
    }

    /// Adds one message to a worker's columns.
    pub fn visit(
        &self,
        w: &mut AttributionWorker,
        at: LineRef<'_>,
        m: &MessageRef<'_>,
    ) -> Result<()> {
        self.visit_at(w, at, m, at.event_time(m)?)
    }

    /// `visit` with the message's event time already read (`audit` reads it once for all
    /// its stages).
    pub fn visit_at(
        &self,
        w: &mut AttributionWorker,
        at: LineRef<'_>,
        m: &MessageRef<'_>,
        time: DateTime<Utc>,
    ) -> Result<()> {
        let day = time.date_naive();
        if !self.period.contains(day) {
            return Ok(());
        }
        w.in_period += 1;
        use chrono::Datelike;
        let month = day.year() * 100 + day.month() as i32;
        // The Twilio side of the message: `to` when inbound, `from` otherwise.
        let ours = if m.is_inbound() {
            m.to.as_deref()
        } else {
            m.from.as_deref()
        };
        let bucket = ours
            .and_then(|n| self.by_phone.get(n.trim()))
            .copied()
            .unwrap_or(UNKNOWN_NUMBER);
        let price = match m.price.as_deref() {
            None => None,
            Some(text) => {
                let (units, scale) =
                    price_units(text).map_err(|e| Error::at_line(at.path, at.line, e))?;
                w.display_scale = w.display_scale.max(scale);
                let unit = m.price_unit.as_deref().unwrap_or("").trim();
                match &w.price_unit {
                        None if !unit.is_empty() => w.price_unit = Some(unit.to_string()),
                        Some(seen) if !unit.is_empty() && !seen.eq_ignore_ascii_case(unit) => {
                            return Err(Error::at_line(
                                at.path,
                                at.line,
                                format!("price_unit {unit:?} differs from {seen:?} of earlier messages: costs in different currencies cannot be added"),
                            ))
                        }
                        _ => {}
                    }
                Some(units)
            }
        };
        w.chunk.bucket.push(bucket);
        w.chunk.month.push(month);
        w.chunk.inbound.push(m.is_inbound() as u32);
        w.chunk.outbound.push(m.is_outbound() as u32);
        w.chunk
            .segments
            .push(count_field(at, "num_segments", m.num_segments.as_deref())?);
        w.chunk
            .media
            .push(count_field(at, "num_media", m.num_media.as_deref())?);
        w.chunk.price.push(price);
        if w.chunk.len() >= CHUNK_ROWS {
            let AttributionWorker { chunk, cells, .. } = w;
            chunk.flush(cells)?;
        }
        Ok(())
    }

    /// Merges the workers and reconciles the months.
    pub fn finish(
        self,
        snapshot: &Snapshot,
        workers: Vec<AttributionWorker>,
        messages_read: u64,
        records: &[ParsedRecord<'_>],
        included: &[usize],
    ) -> Result<Attribution> {
        let buckets = self.buckets;
        let mut cells: BTreeMap<(u32, i32), Totals> = BTreeMap::new();
        let mut price_unit: Option<String> = None;
        let mut display_scale = 0u32;
        let mut in_period = 0u64;
        for mut w in workers {
            w.chunk.flush(&mut w.cells)?;
            for (key, t) in w.cells {
                cells.entry(key).or_default().add(&t);
            }
            display_scale = display_scale.max(w.display_scale);
            in_period += w.in_period;
            match (&price_unit, w.price_unit) {
                (_, None) => {}
                (None, Some(unit)) => price_unit = Some(unit),
                (Some(seen), Some(unit)) if !seen.eq_ignore_ascii_case(&unit) => {
                    return Err(Error::Input(format!(
                        "messages are priced in both {seen:?} and {unit:?}: costs in different currencies cannot be added"
                    )))
                }
                _ => {}
            }
        }

        let price_unit = price_unit.unwrap_or_default();
        let mut warnings = Vec::new();
        // The parent's sms/mms usage per month, from the records inside the period.
        let parent = snapshot.parent_sid();
        let included: BTreeSet<usize> = included.iter().copied().collect();
        let mut usage: BTreeMap<i32, AmountSum> = BTreeMap::new();
        let mut multi_month = 0usize;
        for r in records.iter().filter(|r| included.contains(&r.index)) {
            if r.record.account_sid != parent
                || !RECONCILED_CATEGORIES.contains(&r.record.category.as_str())
            {
                continue;
            }
            let Some(month) = r.month() else {
                multi_month += 1;
                continue;
            };
            let unit = r.record.price_unit.as_deref().unwrap_or("").trim();
            if !unit.is_empty() && !price_unit.is_empty() && !unit.eq_ignore_ascii_case(&price_unit)
            {
                return Err(Error::Input(format!(
                    "the parent's {} usage for {} is priced in {unit:?} but its messages in {price_unit:?}: cannot reconcile different currencies",
                    r.record.category,
                    month_text(month)
                )));
            }
            usage
                .entry(month)
                .or_default()
                .add(r.price)
                .ok_or_else(|| {
                    Error::Input("the parent's sms/mms usage overflows an exact decimal".into())
                })?;
        }
        if multi_month > 0 {
            warnings.push(format!(
                "{multi_month} of the parent's sms/mms usage records span more than one calendar month: left out of the monthly reconciliation"
            ));
        }
        let months: BTreeSet<i32> = cells
            .keys()
            .map(|(_, m)| *m)
            .chain(usage.keys().copied())
            .collect();
        let mut reconciliation = Vec::new();
        for month in months {
            let mut attributed = 0i128;
            let mut unattributed = 0i128;
            let mut unpriced = 0i64;
            for ((b, _), t) in cells.iter().filter(|((_, m), _)| *m == month) {
                if buckets[*b as usize].kind == BucketKind::Customer {
                    attributed += t.price_units;
                } else {
                    unattributed += t.price_units;
                }
                unpriced += t.unpriced;
            }
            // Costs are −price.
            let attributed = units_to_decimal(-attributed, display_scale);
            let unattributed = units_to_decimal(-unattributed, display_scale);
            let usage = usage.get(&month).copied().unwrap_or_default();
            let difference = usage.value().map(|u| u - attributed - unattributed);
            reconciliation.push(MonthReconciliation {
                month,
                usage,
                attributed,
                unattributed,
                difference,
                unpriced_messages: unpriced,
            });
        }
        Ok(Attribution {
            buckets,
            cells,
            reconciliation,
            price_unit,
            display_scale,
            messages_read,
            messages_in_period: in_period,
            warnings,
        })
    }
}

impl Attribution {
    /// The cost (−price) of known prices, as shown.
    pub fn cost(&self, totals: &Totals) -> Decimal {
        units_to_decimal(-totals.price_units, self.display_scale)
    }

    /// Totals per bucket over every month.
    pub fn per_bucket(&self) -> Vec<Totals> {
        let mut out = vec![Totals::default(); self.buckets.len()];
        for ((b, _), t) in &self.cells {
            out[*b as usize].add(t);
        }
        out
    }

    /// The rows of `usage_attribution.csv`: per month, the customers by name, then the
    /// unattributed buckets, then the month's reconciliation row.
    pub fn csv_rows(&self) -> Vec<[String; 17]> {
        let mut rows = Vec::new();
        for rec in &self.reconciliation {
            let month = rec.month;
            let mut order: Vec<usize> = (0..self.buckets.len()).collect();
            order.sort_by(|a, b| {
                let (a, b) = (&self.buckets[*a], &self.buckets[*b]);
                a.kind
                    .cmp(&b.kind)
                    .then_with(|| crate::model::customer_order(&a.name, &b.name))
            });
            for b in order {
                let Some(t) = self.cells.get(&(b as u32, month)) else {
                    continue;
                };
                let bucket = &self.buckets[b];
                let kind = if bucket.kind == BucketKind::Customer {
                    "customer"
                } else {
                    "unattributed"
                };
                rows.push([
                    kind.to_string(),
                    bucket.name.clone(),
                    bucket.account_sid.clone().unwrap_or_default(),
                    month_text(month),
                    t.inbound.to_string(),
                    t.outbound.to_string(),
                    t.segments.to_string(),
                    t.media.to_string(),
                    t.priced.to_string(),
                    t.unpriced.to_string(),
                    if t.priced > 0 {
                        self.cost(t).to_string()
                    } else {
                        String::new()
                    },
                    self.price_unit.clone(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
            }
            let mut note = Vec::new();
            if rec.usage.parts() == 0 {
                note.push("no sms/mms usage record of the parent for the month".to_string());
            } else if rec.usage.nulls > 0 {
                note.push(format!(
                    "the parent's sms/mms usage price is null in {} of {} records",
                    rec.usage.nulls,
                    rec.usage.parts()
                ));
            }
            if rec.unpriced_messages > 0 {
                note.push(format!(
                    "{} message{} without a price (not priced yet, or not billed)",
                    rec.unpriced_messages,
                    if rec.unpriced_messages == 1 { "" } else { "s" }
                ));
            }
            rows.push([
                "reconciliation".to_string(),
                String::new(),
                String::new(),
                month_text(month),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                self.price_unit.clone(),
                rec.usage.cell(),
                rec.attributed.to_string(),
                rec.unattributed.to_string(),
                rec.difference.map(|d| d.to_string()).unwrap_or_default(),
                note.join("; "),
            ]);
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_become_exact_fixed_point_units() {
        assert_eq!(price_units("-0.00790"), Ok((-7900, 5)));
        assert_eq!(price_units("-12.3450"), Ok((-12_345_000, 4)));
        assert_eq!(price_units("0"), Ok((0, 0)));
        assert_eq!(
            price_units("-0.0079000000"),
            Ok((-7900, 6)),
            "zeros past the scale are fine"
        );
        let err = price_units("-0.0000001").unwrap_err();
        assert!(err.contains("7 decimals"), "{err}");
        assert!(price_units("abc").unwrap_err().contains("not a decimal"));
        assert!(price_units("-2000000").unwrap_err().contains("beyond"));
    }

    #[test]
    fn the_plain_price_reading_agrees_with_the_exact_one() {
        let mut texts: Vec<String> = [
            "-0.00790",
            "0.0079",
            "+0.5",
            "-0",
            "0",
            "+0",
            "7",
            "-1234567",
            "1234567.123456",
            "-1000000",
            "1000000.000000",
            "1000000.000001",
            "-1000000.1",
            "12345678",
            "0.1234567",
            "-0.0000001",
            "1.",
            ".5",
            "-.5",
            "",
            "-",
            "+",
            "1.2.3",
            " 1.5",
            "1.5 ",
            "1,5",
            "1e3",
            "0x10",
            "--1",
            "+-1",
            "00000001.5",
            "0001",
            "1.50",
            "-0.000",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        // Every sign, integer part and decimal part of a few shapes.
        for sign in ["", "-", "+"] {
            for int in ["0", "1", "09", "123", "9999999"] {
                for frac in ["", ".0", ".5", ".00790", ".123456", ".1234560", ".999999"] {
                    texts.push(format!("{sign}{int}{frac}"));
                }
            }
        }
        for text in &texts {
            if let Some(plain) = plain_price_units(text) {
                assert_eq!(Ok(plain), any_price_units(text), "{text:?}");
            }
        }
        assert_eq!(plain_price_units("-0.00790"), Some((-7900, 5)));
        assert_eq!(
            plain_price_units("1000000.000001"),
            None,
            "beyond the limit"
        );
    }

    #[test]
    fn units_convert_back_exactly_at_the_display_scale() {
        assert_eq!(units_to_decimal(7900 * 3, 5).to_string(), "0.02370");
        assert_eq!(units_to_decimal(-1, 6).to_string(), "-0.000001");
        assert_eq!(units_to_decimal(12_345_000, 4).to_string(), "12.3450");
    }

    #[test]
    fn the_lazy_group_by_sums_per_bucket_and_month_and_counts_null_prices() {
        let mut chunk = Chunk {
            bucket: vec![3, 3, 3, 0],
            month: vec![202601, 202601, 202602, 202601],
            inbound: vec![1, 0, 0, 0],
            outbound: vec![0, 1, 1, 1],
            segments: vec![Some(1), Some(3), None, Some(2)],
            media: vec![Some(0), Some(1), Some(0), Some(0)],
            price: vec![Some(-7900), None, Some(-20000), Some(-15800)],
        };
        let mut cells = BTreeMap::new();
        chunk.flush(&mut cells).unwrap();
        assert_eq!(chunk.len(), 0);
        let jan = cells[&(3, 202601)];
        assert_eq!(
            jan,
            Totals {
                messages: 2,
                inbound: 1,
                outbound: 1,
                segments: 4,
                media: 1,
                priced: 1,
                unpriced: 1,
                price_units: -7900
            }
        );
        assert_eq!(cells[&(3, 202602)].segments, 0);
        assert_eq!(cells[&(0, 202601)].price_units, -15800);
        // A second chunk merges into the same cells.
        let mut again = Chunk {
            bucket: vec![3],
            month: vec![202601],
            inbound: vec![1],
            outbound: vec![0],
            segments: vec![Some(1)],
            media: vec![Some(0)],
            price: vec![None],
        };
        again.flush(&mut cells).unwrap();
        assert_eq!(cells[&(3, 202601)].messages, 3);
        assert_eq!(cells[&(3, 202601)].unpriced, 2);
        assert_eq!(cells[&(3, 202601)].price_units, -7900);
    }
}
