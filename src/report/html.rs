//! `report.html`: one self-contained page (no script, no outside resource) that a reviewer
//! opens first: the totals, every blocker, the customers, and the violations, with links to
//! the CSV files beside it.

use std::fmt::Write as _;

use crate::audit::optouts::OptOutAnalysis;
use crate::audit::plan::{Plan, Severity};

pub const HTML_FILE: &str = "report.html";
/// Violations listed on the page; the CSV has them all.
const MAX_VIOLATION_ROWS: usize = 200;

/// Extra sections other stages add (e.g. usage), as (title, already-escaped HTML).
pub type Section = (String, String);

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A table from a header and rows of cells (each escaped here); numeric columns align right.
pub fn table(header: &[&str], numeric: &[&str], rows: &[Vec<String>]) -> String {
    let mut html = String::from("<table><thead><tr>");
    for h in header {
        let class = if numeric.contains(h) {
            " class=\"n\""
        } else {
            ""
        };
        let _ = write!(html, "<th{class}>{}</th>", escape(h));
    }
    html.push_str("</tr></thead><tbody>");
    for row in rows {
        html.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let class = if header.get(i).is_some_and(|h| numeric.contains(h)) {
                " class=\"n\""
            } else {
                ""
            };
            let _ = write!(html, "<td{class}>{}</td>", escape(cell));
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
    html
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1d2330}\
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccd}\
table{border-collapse:collapse;margin:.5rem 0}th,td{padding:.25rem .6rem;border-bottom:1px solid #e3e5ea;text-align:left;vertical-align:top}\
th{background:#f3f4f7}.n{text-align:right;font-variant-numeric:tabular-nums}\
.cards{display:flex;flex-wrap:wrap;gap:.75rem}.card{border:1px solid #ccd;border-radius:6px;padding:.5rem .9rem;min-width:8rem}\
.card b{display:block;font-size:1.4rem}.blocker{color:#a4161a}.muted{color:#667}";

/// Renders the page.
pub fn render(
    plan: &Plan,
    analysis: &OptOutAnalysis,
    lost_rows: usize,
    files: &[&str],
    extra: &[Section],
) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>subaudit: {}</title><style>{STYLE}</style></head><body>",
        escape(&plan.parent_friendly_name)
    );
    let _ = write!(
        html,
        "<h1>Migration audit of {} <span class=\"muted\">{}</span></h1><p class=\"muted\">Messages from {} to {} (UTC). Written by {}.</p>",
        escape(&plan.parent_friendly_name),
        escape(&plan.parent_account_sid),
        escape(&plan.window.since),
        escape(&plan.window.until),
        escape(&crate::created_by()),
    );
    let s = &plan.summary;
    let cards = [
        ("numbers", s.numbers.to_string()),
        ("to transfer", s.transfer.to_string()),
        ("blocked", s.blocked.to_string()),
        ("blockers", s.blockers.to_string()),
        ("warnings", s.warnings.to_string()),
        ("opt-outs in force", analysis.opt_outs.len().to_string()),
        ("opt-outs lost", lost_rows.to_string()),
        ("possible opt-outs", analysis.possible.len().to_string()),
        ("violations", analysis.violations.len().to_string()),
    ];
    html.push_str("<div class=\"cards\">");
    for (label, value) in cards {
        let _ = write!(
            html,
            "<div class=\"card\"><b>{}</b>{}</div>",
            escape(&value),
            escape(label)
        );
    }
    html.push_str("</div>");

    html.push_str("<h2>Blockers</h2>");
    let blockers: Vec<Vec<String>> = plan
        .numbers
        .iter()
        .flat_map(|n| {
            n.findings
                .iter()
                .filter(|f| f.severity == Severity::Blocker)
                .map(move |f| {
                    vec![
                        n.phone_number.clone(),
                        n.target_customer.clone().unwrap_or_default(),
                        f.code.as_str().to_string(),
                        f.message.clone(),
                    ]
                })
        })
        .collect();
    if blockers.is_empty() {
        html.push_str("<p>None.</p>");
    } else {
        html.push_str(
            &table(
                &["number", "customer", "code", "what to do"],
                &[],
                &blockers,
            )
            .replace("<table>", "<table class=\"blocker\">"),
        );
    }

    html.push_str("<h2>Customers</h2>");
    let customers: Vec<Vec<String>> = plan
        .customers
        .iter()
        .map(|c| {
            vec![
                c.customer.clone(),
                c.account_sid
                    .clone()
                    .unwrap_or_else(|| "(to create)".into()),
                c.account_status.clone(),
                c.numbers_moving.to_string(),
                c.numbers_blocked.to_string(),
                c.blockers.to_string(),
                c.warnings.to_string(),
                c.opt_outs_lost.to_string(),
            ]
        })
        .collect();
    let numeric = ["moving", "blocked", "blockers", "warnings", "opt-outs lost"];
    html.push_str(&table(
        &[
            "customer",
            "subaccount",
            "status",
            "moving",
            "blocked",
            "blockers",
            "warnings",
            "opt-outs lost",
        ],
        &numeric,
        &customers,
    ));

    html.push_str("<h2>Opt-out violations</h2>");
    if analysis.violations.is_empty() {
        html.push_str("<p>None: no message was sent into an opt-out in the same scope.</p>");
    } else {
        // The page stays light: the first ones here, all of them in the CSV.
        let rows: Vec<Vec<String>> = analysis
            .violations
            .iter()
            .take(MAX_VIOLATION_ROWS)
            .map(|v| {
                vec![
                    v.sent_at.clone(),
                    v.twilio_number.clone(),
                    v.end_user.clone(),
                    v.scope.to_string(),
                    v.opted_out_at.clone(),
                    v.message_sid.clone(),
                ]
            })
            .collect();
        html.push_str(&table(
            &["sent at", "from", "to", "scope", "opted out at", "message"],
            &[],
            &rows,
        ));
        if analysis.violations.len() > MAX_VIOLATION_ROWS {
            let _ = write!(
                html,
                "<p>The first {MAX_VIOLATION_ROWS} of {}: every one is in optout_violations.csv.</p>",
                analysis.violations.len()
            );
        }
    }

    for (title, body) in extra {
        let _ = write!(html, "<h2>{}</h2>{body}", escape(title));
    }

    html.push_str("<h2>Files</h2><ul>");
    for file in files {
        let _ = write!(html, "<li><a href=\"{0}\">{0}</a></li>", escape(file));
    }
    html.push_str("</ul></body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_from_the_data_is_escaped() {
        assert_eq!(
            escape("<b>\"Tom & Jerry's\"</b>"),
            "&lt;b&gt;&quot;Tom &amp; Jerry&#39;s&quot;&lt;/b&gt;"
        );
        let html = table(
            &["name", "n"],
            &["n"],
            &[vec!["<script>".into(), "1".into()]],
        );
        assert!(
            html.contains("<td>&lt;script&gt;</td><td class=\"n\">1</td>"),
            "{html}"
        );
    }
}
