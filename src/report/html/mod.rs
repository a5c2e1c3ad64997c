//! `report.html`: the page each reader opens first. One self-contained file (no script, no
//! outside resource: it works from a file:// URL and as an e-mail attachment) in three parts:
//! engineering (blockers first, findings grouped by code, one folding section per customer),
//! compliance (opt-outs lost per customer, the opt-outs by month, the horizon, violations,
//! possible opt-outs) and finance (cost per customer and month, the monthly reconciliation,
//! the customer table with exact amounts).
//!
//! Templates are maud's `html!` macro: the markup reads like the page, is checked at compile
//! time, and every value inserted is escaped unless wrapped in `PreEscaped`.

mod chart;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::audit::attribution::{month_text, Attribution, BucketKind, Totals};
use crate::audit::optouts::{Evidence, LostRows, OptOutAnalysis};
use crate::audit::plan::{NumberPlan, Plan, Severity};
use crate::audit::usage::Period;
use crate::model::customer_order;
use crate::plural;
use chart::{Bar, Row, Series, StackedBars};

pub const HTML_FILE: &str = "report.html";
/// Rows listed on the page for long lists (possible opt-outs, violations); the CSV has all.
const MAX_ROWS: usize = 200;
/// Customers drawn by name in the cost chart; the others are one series.
const CHART_CUSTOMERS: usize = 6;

/// Everything the page shows. `customer_files` maps a customer to its file in `optouts/`.
pub struct Page<'a> {
    pub plan: &'a Plan,
    pub analysis: &'a OptOutAnalysis,
    pub lost: &'a LostRows,
    pub attribution: &'a Attribution,
    pub period: Period,
    pub customer_files: &'a BTreeMap<String, String>,
    /// The files written beside the page, linked at its end.
    pub files: &'a [&'a str],
}

const STYLE: &str = include_str!("style.css");

/// Renders the page.
pub fn render(page: &Page<'_>) -> String {
    let plan = page.plan;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "subaudit: " (plan.parent_friendly_name) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "Migration audit of " (plan.parent_friendly_name) }
                    p.muted {
                        "Parent account " code { (plan.parent_account_sid) } ". Messages from "
                        (plan.window.since) " to " (plan.window.until) " (UTC, the end excluded). "
                        "Written by " (crate::created_by()) "."
                    }
                    nav {
                        a href="#engineering" { "Engineering" }
                        a href="#compliance" { "Compliance" }
                        a href="#finance" { "Finance" }
                        a href="#files" { "Files" }
                    }
                }
                (summary(page))
                (engineering(page))
                (compliance(page))
                (finance(page))
                section #files {
                    h2 { "Files" }
                    ul.files {
                        @for file in page.files {
                            li { a href=(file) { (file) } " " span.muted { (file_purpose(file)) } }
                        }
                    }
                }
            }
        }
    }
    .into_string()
}

fn summary(page: &Page<'_>) -> Markup {
    let s = &page.plan.summary;
    let a = page.analysis;
    let cards: [(&str, usize, &str, bool); 8] = [
        ("numbers in the parent", s.numbers, "#engineering", false),
        ("numbers moving", s.moving, "#customers", false),
        ("numbers blocked", s.blocked, "#blockers", s.blocked > 0),
        ("warnings", s.warnings, "#findings", false),
        ("opt-outs in force", a.opt_outs.len(), "#in-force", false),
        (
            "opt-out rows lost",
            page.lost.len(),
            "#lost",
            !page.lost.is_empty(),
        ),
        ("possible opt-outs", a.possible.len(), "#possible", false),
        (
            "violations",
            a.violations.len(),
            "#violations",
            !a.violations.is_empty(),
        ),
    ];
    html! {
        section.cards aria-label="Totals" {
            @for (label, value, href, alert) in cards {
                a.card.alert[alert] href=(href) { b { (value) } (label) }
            }
        }
    }
}

/// A finding's own specifics: its message up to the advice (which follows the first ": ").
fn finding_detail(message: &str) -> &str {
    message.split_once(": ").map_or(message, |(head, _)| head)
}

fn customer_of(number: &NumberPlan) -> String {
    match (&number.target_customer, number.action) {
        (Some(c), _) => c.clone(),
        (None, _) if number.mapping_lines.len() > 1 => "(mapping conflict)".to_string(),
        _ => "(stays in the parent)".to_string(),
    }
}

fn engineering(page: &Page<'_>) -> Markup {
    let plan = page.plan;
    let blockers: Vec<(&NumberPlan, &crate::audit::plan::Finding)> = plan
        .numbers
        .iter()
        .flat_map(|n| {
            n.findings
                .iter()
                .filter(|f| f.severity == Severity::Blocker)
                .map(move |f| (n, f))
        })
        .collect();
    // Findings grouped by code, worst severity first, then in the plan's code order.
    type CodeGroups<'p> = BTreeMap<
        (std::cmp::Reverse<Severity>, crate::audit::plan::Code),
        Vec<(&'p NumberPlan, &'p str)>,
    >;
    let mut by_code: CodeGroups<'_> = BTreeMap::new();
    for n in &plan.numbers {
        for f in &n.findings {
            by_code
                .entry((std::cmp::Reverse(f.severity), f.code))
                .or_default()
                .push((n, f.message.as_str()));
        }
    }
    let mut customers: Vec<&crate::audit::plan::CustomerPlan> = plan.customers.iter().collect();
    customers.sort_by(|x, y| customer_order(&x.customer, &y.customer));
    let conflicts: Vec<&NumberPlan> = plan
        .numbers
        .iter()
        .filter(|n| n.target_customer.is_none() && n.mapping_lines.len() > 1)
        .collect();
    let unmapped: Vec<&NumberPlan> = plan
        .numbers
        .iter()
        .filter(|n| n.target_customer.is_none() && n.mapping_lines.len() <= 1)
        .collect();
    html! {
        section #engineering {
            h2 { "Engineering: what blocks the move, what needs work" }
            h3 #blockers { "Blockers" }
            @if blockers.is_empty() {
                p { "None: every mapped number can move." }
            } @else {
                p {
                    (plural(plan.summary.blocked, "number is", "numbers are")) " blocked by "
                    (plural(blockers.len(), "blocker finding", "blocker findings"))
                    ". A blocked number gets no step in the plan until its blockers are settled."
                }
                div.scroll {
                    table.blockers.stack {
                        thead { tr { th { "number" } th { "customer" } th { "code" } th { "what is wrong, what to do" } } }
                        tbody {
                            @for (n, f) in &blockers {
                                tr {
                                    td.nowrap { (n.phone_number) }
                                    td { (customer_of(n)) }
                                    td.nowrap { code { (f.code.as_str()) } }
                                    td { (f.message) }
                                }
                            }
                        }
                    }
                }
            }
            h3 #findings { "Findings by code" }
            p.muted { "The advice is said once per code; each number's line gives its specifics (plan.csv and plan.json have the full messages)." }
            @for ((severity, code), numbers) in &by_code {
                details.code open[severity.0 >= Severity::Warning] {
                    summary {
                        code { (code.as_str()) } " "
                        span class=(format!("sev {}", severity.0.as_str())) { (severity.0.as_str()) }
                        " " (plural(numbers.len(), "number", "numbers"))
                    }
                    p.advice { (code.advice()) }
                    div.scroll {
                        table.stack {
                            thead { tr { th { "number" } th { "customer" } th { "specifics" } } }
                            tbody {
                                @for (n, message) in numbers {
                                    tr {
                                        td.nowrap { (n.phone_number) }
                                        td { (customer_of(n)) }
                                        td title=(message) { (finding_detail(message)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 #customers { "Per customer" }
            @for c in &customers {
                @let numbers: Vec<&NumberPlan> = plan.numbers.iter().filter(|n| n.target_customer.as_deref() == Some(c.customer.as_str())).collect();
                details.customer {
                    summary {
                        strong { (c.customer) } " "
                        span.muted {
                            (c.account_sid.as_deref().unwrap_or("subaccount to create")) " · "
                            (plural(c.numbers_moving, "number moving", "numbers moving"))
                            @if c.numbers_blocked > 0 { " · " span.sev.blocker { (c.numbers_blocked) " blocked" } }
                            " · " (plural(c.warnings, "warning", "warnings"))
                            " · " (plural(c.opt_outs_lost, "opt-out lost", "opt-outs lost"))
                        }
                    }
                    (numbers_table(&numbers))
                }
            }
            @if !conflicts.is_empty() {
                details.customer {
                    summary { strong { "Mapping conflicts" } " " span.muted { (plural(conflicts.len(), "number stays", "numbers stay")) " until the mapping names one target" } }
                    (numbers_table(&conflicts))
                }
            }
            @if !unmapped.is_empty() {
                details.customer {
                    summary { strong { "Unmapped" } " " span.muted { (plural(unmapped.len(), "number stays", "numbers stay")) " in the parent" } }
                    (numbers_table(&unmapped))
                }
            }
        }
    }
}

fn numbers_table(numbers: &[&NumberPlan]) -> Markup {
    html! {
        div.scroll {
            table {
                thead { tr { th { "number" } th { "name" } th { "action" } th { "worst" } th { "findings" } th.n { "opt-outs lost" } } }
                tbody {
                    @for n in numbers {
                        tr {
                            td.nowrap { (n.phone_number) }
                            td { (n.friendly_name.as_deref().unwrap_or("")) }
                            td { (if n.blocked { "blocked" } else { n.action.as_str() }) }
                            td { @if let Some(w) = n.worst_severity { span class=(format!("sev {}", w.as_str())) { (w.as_str()) } } }
                            td { (n.codes().join(", ")) }
                            td.n { (n.opt_outs_lost) }
                        }
                    }
                }
            }
        }
    }
}

/// Months from the first to the last of a window, as `YYYYMM`.
fn months_between(since: NaiveDate, until_inclusive: NaiveDate) -> Vec<i32> {
    let mut out = Vec::new();
    let (mut y, mut m) = (since.year(), since.month() as i32);
    let last = until_inclusive.year() * 100 + until_inclusive.month() as i32;
    while y * 100 + m <= last {
        out.push(y * 100 + m);
        m += 1;
        if m > 12 {
            m = 1;
            y += 1;
        }
    }
    out
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The window's first day and last day (the end is exclusive), if the plan's times parse.
fn window_days(plan: &Plan) -> Option<(NaiveDate, NaiveDate)> {
    let since = parse_time(&plan.window.since)?;
    let until = parse_time(&plan.window.until)?;
    let last = (until - chrono::Duration::nanoseconds(1)).date_naive();
    Some((since.date_naive(), last.max(since.date_naive())))
}

fn month_bounds(month: i32) -> (NaiveDate, NaiveDate) {
    let (y, m) = (month / 100, (month % 100) as u32);
    let first = NaiveDate::from_ymd_opt(y, m, 1).unwrap_or_default();
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    }
    .unwrap_or_default();
    (first, next.pred_opt().unwrap_or(first))
}

/// A month only partly inside the snapshot's window or the usage period.
fn is_partial(month: i32, window: Option<(NaiveDate, NaiveDate)>, period: Period) -> bool {
    let (first, last) = month_bounds(month);
    let outside_window = window.is_some_and(|(s, e)| first < s || last > e);
    let outside_period =
        period.start.is_some_and(|s| first < s) || period.end.is_some_and(|e| last > e);
    outside_window || outside_period
}

fn compliance(page: &Page<'_>) -> Markup {
    let analysis = page.analysis;
    let plan = page.plan;
    // Lost rows per customer, split by scope.
    let mut per_customer: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    for row in page.lost.iter() {
        let name = row.target_customer.to_string();
        let entry = per_customer.entry((name.to_lowercase(), name)).or_default();
        if row.scope == "service" {
            entry.1 += 1;
        } else {
            entry.0 += 1;
        }
    }
    let scope_series = [
        Series {
            name: "number scope".into(),
            class: "s0",
        },
        Series {
            name: "Messaging Service scope".into(),
            class: "s1",
        },
    ];
    let rows: Vec<Row> = per_customer
        .iter()
        .map(|((_, name), (number, service))| Row {
            name: match page.customer_files.get(name) {
                Some(file) if !name.is_empty() => {
                    html! { a href=(format!("optouts/{file}")) { (name) } }
                }
                _ if name.is_empty() => html! { "(not moving)" },
                _ => html! { (name) },
            },
            segments: vec![*number as f64, *service as f64],
            text: (number + service).to_string(),
        })
        .collect();

    // Opt-outs in force by the month they began, by evidence.
    let window = window_days(plan);
    let mut by_month: BTreeMap<i32, [usize; 3]> = BTreeMap::new();
    if let Some((s, e)) = window {
        for m in months_between(s, e) {
            by_month.insert(m, [0; 3]);
        }
    }
    for o in &analysis.opt_outs {
        let t = o.began.time;
        let month = t.year() * 100 + t.month() as i32;
        let entry = by_month.entry(month).or_default();
        match o.began.evidence {
            Evidence::InboundKeyword => entry[0] += 1,
            Evidence::Error21610 => entry[1] += 1,
            Evidence::Imported => entry[2] += 1,
        }
    }
    let mut evidence_series = vec![
        Series {
            name: "a keyword from the end user".into(),
            class: "s0",
        },
        Series {
            name: "only a 21610 refusal".into(),
            class: "s3",
        },
    ];
    // The third kind only appears when the user imported evidence (`--evidence`).
    if by_month.values().any(|counts| counts[2] > 0) {
        evidence_series.push(Series {
            name: "your imported records".into(),
            class: "s2",
        });
    }
    let timeline: Vec<Bar> = by_month
        .iter()
        .map(|(m, counts)| Bar {
            label: month_text(*m),
            segments: counts[..evidence_series.len()]
                .iter()
                .map(|c| (*c as f64, c.to_string()))
                .collect(),
            marker: None,
            partial: is_partial(*m, window, Period::default()),
        })
        .collect();
    let refusal_only = analysis
        .opt_outs
        .iter()
        .filter(|o| o.began.evidence == Evidence::Error21610)
        .count();

    let customer_of_number: HashMap<&str, String> = plan
        .numbers
        .iter()
        .map(|n| (n.phone_number.as_str(), customer_of(n)))
        .collect();
    html! {
        section #compliance {
            h2 { "Compliance: every STOP kept" }
            p.horizon {
                strong { "Horizon: " } "the message logs begin at " (plan.window.since)
                ". Opt-outs received before that are not in the logs and this report cannot see them. "
                (plural(refusal_only, "opt-out is", "opt-outs are"))
                " known only from a later 21610 refusal, which proves an opt-out began earlier. "
                @if analysis.imported == 0 {
                    "If you keep older evidence (your app's STOP webhooks or 21610 API errors), add it to the audit."
                } @else {
                    (plural(analysis.imported as usize, "event", "events"))
                    " from your own records (--evidence) are included; the opt-outs they began cite "
                    code { "FILE:LINE" } "."
                }
            }
            p #in-force {
                strong { (analysis.opt_outs.len()) } " opt-outs are " em { "in force" }
                " in the parent: one per scope (a number, or a whole Messaging Service) and end user. "
                "The planned moves lose " strong #lost { (page.lost.len()) } " rows: one per moving number and end user. "
                "A Messaging Service opt-out is lost once for each number of the service that moves, "
                "so the lost rows can outnumber the opt-outs in force."
            }
            h3 { "Opt-outs lost per customer" }
            @if rows.is_empty() {
                p { "None: no planned move loses an opt-out." }
            } @else {
                p.muted { "Each name links to the customer's file in optouts/ (the rows to re-import in the subaccount)." }
                (chart::bar_list("lost-per-customer", "Opt-outs lost per customer", &scope_series, &rows))
            }
            h3 { "Opt-outs in force, by the month they began" }
            (chart::stacked_bars(&StackedBars {
                id: "opt-out-timeline",
                title: "Opt-outs in force by the month they began",
                series: &evidence_series,
                bars: &timeline,
                unit: "",
                marker_name: None,
            }))
            h3 #violations { "Violations" }
            @if analysis.violations.is_empty() {
                p { "None: no message was sent into an opt-out in the same scope." }
            } @else {
                p {
                    (plural(analysis.violations.len(), "message was", "messages were"))
                    " sent to an end user after an opt-out in the same scope and before any opt-in."
                    @if analysis.violations.len() > MAX_ROWS { " The first " (MAX_ROWS) " are below; " a href="optout_violations.csv" { "optout_violations.csv" } " has them all." }
                }
                div.scroll {
                    table.stack {
                        thead { tr { th { "sent at" } th { "customer" } th { "from" } th { "to" } th { "status" } th { "opt-out it broke" } } }
                        tbody {
                            @for v in analysis.violations.iter().take(MAX_ROWS) {
                                tr {
                                    td.nowrap { (v.sent_at) }
                                    td { (customer_of_number.get(v.twilio_number.as_str()).map_or("(number not in the snapshot)", String::as_str)) }
                                    td.nowrap { (v.twilio_number) }
                                    td.nowrap { (v.end_user) }
                                    td { (v.status) }
                                    td {
                                        @if v.keyword.is_empty() { "21610 refusal" } @else { code { (v.keyword) } }
                                        " at " (v.opted_out_at) ", " (v.scope) " scope"
                                        @if !v.messaging_service_sid.is_empty() { " " (v.messaging_service_sid) }
                                        br; span.muted { (v.evidence_message_sid) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 #possible { "Possible opt-outs to review" }
            @if analysis.possible.is_empty() {
                p { "None." }
            } @else {
                p {
                    (plural(analysis.possible.len(), "inbound message contains", "inbound messages contain"))
                    " an opt-out word without being a keyword. They are never applied: a person decides. "
                    @if analysis.possible.len() > MAX_ROWS { "The first " (MAX_ROWS) " are below; " }
                    a href="optouts_possible.csv" { "optouts_possible.csv" } " has them all."
                }
                div.scroll {
                    table.stack {
                        thead { tr { th { "received at" } th { "customer" } th { "end user" } th { "to" } th { "body" } } }
                        tbody {
                            @for p in analysis.possible.iter().take(MAX_ROWS) {
                                tr {
                                    td.nowrap { (p.received_at) }
                                    td { (customer_of_number.get(p.twilio_number.as_str()).map_or("(number not in the snapshot)", String::as_str)) }
                                    td.nowrap { (p.end_user) }
                                    td.nowrap { (p.twilio_number) }
                                    td.body { (p.body) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn to_f64(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

fn finance(page: &Page<'_>) -> Markup {
    let at = page.attribution;
    let unit = at.price_unit.as_str();
    let per_bucket = at.per_bucket();
    let window = window_days(page.plan);
    let months: Vec<i32> = at.reconciliation.iter().map(|r| r.month).collect();

    // Customers by cost over the period; the top ones by name in the chart.
    let mut customers: Vec<usize> = (0..at.buckets.len())
        .filter(|b| at.buckets[*b].kind == BucketKind::Customer && per_bucket[*b].messages > 0)
        .collect();
    customers.sort_by(|a, b| {
        per_bucket[*b]
            .price_units
            .abs()
            .cmp(&per_bucket[*a].price_units.abs())
            .then_with(|| customer_order(&at.buckets[*a].name, &at.buckets[*b].name))
    });
    let top: Vec<usize> = customers.iter().copied().take(CHART_CUSTOMERS).collect();
    let mut series: Vec<Series> = top
        .iter()
        .enumerate()
        .map(|(i, b)| Series {
            name: at.buckets[*b].name.clone(),
            class: ["s0", "s1", "s2", "s3", "s4", "s5"][i],
        })
        .collect();
    let others = customers.len().saturating_sub(CHART_CUSTOMERS);
    if others > 0 {
        series.push(Series {
            name: format!("{} other customers", others),
            class: "s6",
        });
    }
    series.push(Series {
        name: "unattributed (numbers that stay, conflicts, unknown)".into(),
        class: "s7",
    });
    let cost_bars: Vec<Bar> = months
        .iter()
        .map(|m| {
            let cell = |b: usize| at.cells.get(&(b as u32, *m)).copied().unwrap_or_default();
            let mut segments: Vec<(f64, String)> = top
                .iter()
                .map(|b| {
                    let c = at.cost(&cell(*b));
                    (to_f64(c), format!("{c} {unit}"))
                })
                .collect();
            let mut rest = Totals::default();
            let mut unattributed = Totals::default();
            for b in 0..at.buckets.len() {
                if top.contains(&b) {
                    continue;
                }
                if at.buckets[b].kind == BucketKind::Customer {
                    rest.add(&cell(b));
                } else {
                    unattributed.add(&cell(b));
                }
            }
            if others > 0 {
                let c = at.cost(&rest);
                segments.push((to_f64(c), format!("{c} {unit}")));
            }
            let c = at.cost(&unattributed);
            segments.push((to_f64(c), format!("{c} {unit}")));
            Bar {
                label: month_text(*m),
                segments,
                marker: None,
                partial: is_partial(*m, window, page.period),
            }
        })
        .collect();

    let rec_series = [
        Series {
            name: "attributed to customers".into(),
            class: "s0",
        },
        Series {
            name: "unattributed".into(),
            class: "s7",
        },
        Series {
            name: "not priced in the logs (usage minus priced messages)".into(),
            class: "hatch",
        },
    ];
    let rec_bars: Vec<Bar> = at
        .reconciliation
        .iter()
        .map(|r| {
            let remainder = r
                .difference
                .filter(|d| *d > Decimal::ZERO)
                .unwrap_or(Decimal::ZERO);
            Bar {
                label: month_text(r.month),
                segments: vec![
                    (to_f64(r.attributed), format!("{} {unit}", r.attributed)),
                    (to_f64(r.unattributed), format!("{} {unit}", r.unattributed)),
                    (to_f64(remainder), format!("{remainder} {unit}")),
                ],
                marker: r.usage.value().map(|u| (to_f64(u), format!("{u} {unit}"))),
                partial: is_partial(r.month, window, page.period),
            }
        })
        .collect();

    let mut by_name: Vec<usize> = (0..at.buckets.len())
        .filter(|b| per_bucket[*b].messages > 0)
        .collect();
    by_name.sort_by(|a, b| {
        let (a, b) = (&at.buckets[*a], &at.buckets[*b]);
        a.kind
            .cmp(&b.kind)
            .then_with(|| customer_order(&a.name, &b.name))
    });
    let mut total = Totals::default();
    for b in &by_name {
        total.add(&per_bucket[*b]);
    }
    html! {
        section #finance {
            h2 { "Finance: usage per customer" }
            p.muted {
                "From the parent's message logs, " (page.period.describe()) ". Costs are what the messages' prices say (Twilio's sign turned: positive is money paid), exact to the cent and beyond; "
                "messages without a price are counted, never taken as 0."
            }
            h3 { "Cost per month" }
            (chart::stacked_bars(&StackedBars {
                id: "cost-per-month",
                title: "Cost per customer per month",
                series: &series,
                bars: &cost_bars,
                unit,
                marker_name: None,
            }))
            h3 { "Reconciliation per month" }
            p.muted { "The parent's own sms and mms usage records against the priced messages of its logs. The hatched part is usage no priced message explains: messages Twilio had not priced yet when the snapshot was taken, or not billed." }
            (chart::stacked_bars(&StackedBars {
                id: "reconciliation",
                title: "Reconciliation per month",
                series: &rec_series,
                bars: &rec_bars,
                unit,
                marker_name: Some("the parent's sms+mms usage"),
            }))
            div.scroll {
                table {
                    thead { tr { th { "month" } th.n { "parent usage" } th.n { "attributed" } th.n { "unattributed" } th.n { "difference" } th.n { "unpriced messages" } } }
                    tbody {
                        @for r in &at.reconciliation {
                            tr {
                                td.nowrap { (month_text(r.month)) @if is_partial(r.month, window, page.period) { " (partial)" } }
                                td.n { @if let Some(u) = r.usage.value() { (u) } @else { span.muted { "unknown" } } }
                                td.n { (r.attributed) }
                                td.n { (r.unattributed) }
                                td.n { @if let Some(d) = r.difference { (d) } }
                                td.n { (r.unpriced_messages) }
                            }
                        }
                    }
                }
            }
            p { (super::usage::reconciliation_line(at)) }
            h3 { "Customers" }
            div.scroll {
                table {
                    thead { tr { th { "customer" } th { "subaccount" } th.n { "messages" } th.n { "segments" } th.n { "cost (" (unit) ")" } th.n { "unpriced" } } }
                    tbody {
                        @for b in &by_name {
                            @let bucket = &at.buckets[*b];
                            @let t = &per_bucket[*b];
                            tr {
                                td { (bucket.name) }
                                td.nowrap { @if bucket.kind == BucketKind::Customer { (bucket.account_sid.as_deref().unwrap_or("(to create)")) } @else { span.muted { "unattributed" } } }
                                td.n { (t.messages) }
                                td.n { (t.segments) }
                                td.n { (at.cost(t)) }
                                td.n { (t.unpriced) }
                            }
                        }
                    }
                    tfoot {
                        tr { th { "total" } th {} th.n { (total.messages) } th.n { (total.segments) } th.n { (at.cost(&total)) } th.n { (total.unpriced) } }
                    }
                }
            }
        }
    }
}

/// What each file beside the page is for.
fn file_purpose(file: &str) -> &'static str {
    match file {
        "optouts_lost.csv" => "every opt-out the moves lose, one row per (number, end user)",
        "optouts" => {
            "the same rows per customer: the file to re-import in that customer's subaccount"
        }
        "optouts_possible.csv" => "near-miss inbound messages for a person to review",
        "optout_violations.csv" => "messages sent after an opt-out in the same scope",
        "plan.json" => "the migration plan, for subaudit apply",
        "plan.csv" => "one row per number, for a spreadsheet review",
        "plan.sh" => "the plan as a commented curl script",
        "usage_summary.csv" => "usage records per account and category",
        "usage_pivot.csv" => "the finance view: price per account and category",
        "usage_attribution.csv" => {
            "the parent's traffic per customer and month, and the reconciliation"
        }
        "usage_straddling.csv" => "usage records only partly inside the period (never summed)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_of_a_window_and_partial_ones() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            months_between(d("2025-11-15"), d("2026-02-01")),
            [202511, 202512, 202601, 202602]
        );
        let window = Some((d("2025-11-15"), d("2026-02-28")));
        assert!(is_partial(202511, window, Period::default()));
        assert!(!is_partial(202512, window, Period::default()));
        assert!(!is_partial(202602, window, Period::default()));
        let q = Period {
            start: Some(d("2026-01-01")),
            end: Some(d("2026-01-20")),
        };
        assert!(is_partial(202601, None, q));
    }

    #[test]
    fn a_finding_shows_its_specifics_and_the_advice_is_said_once() {
        assert_eq!(
            finding_detail(
                "regulatory bundle BU1 belongs to the parent: create an equivalent bundle"
            ),
            "regulatory bundle BU1 belongs to the parent"
        );
    }
}
