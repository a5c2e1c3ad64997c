//! The terminal summary of `subaudit audit`: the totals, the blocked customers first, the top
//! customers, then where the reports are and what to do next. The detail is in report.html.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::table::{fitting_table, short_sid, terminal_width, wrap};
use crate::audit::attribution::BucketKind;
use crate::audit::plan::Severity;
use crate::audit::Audit;
use crate::model::customer_order;
use crate::plural;

/// The snapshot's window as a reader counts it: whole UTC days, both ends included, like every
/// date flag (the manifest's `until` is the exclusive instant after the last day); an instant
/// that is not a midnight is shown as it is.
fn window_text(since: &str, until: &str) -> String {
    let parse = |t: &str| DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc));
    let midnight = |t: &DateTime<Utc>| t.time() == chrono::NaiveTime::MIN;
    match (parse(since), parse(until)) {
        (Ok(from), Ok(to)) if midnight(&from) && midnight(&to) && to > from => {
            let last = (to - chrono::Duration::days(1)).date_naive();
            format!(
                "{} to {} (UTC, both days included)",
                from.date_naive(),
                last
            )
        }
        _ => format!("from {since} until {until} (excluded)"),
    }
}

/// The summary text, `top` customers by name (the others counted), fitted to the terminal.
pub fn audit_summary(audit: &Audit, out_dir: &Path, top: usize) -> String {
    let plan = &audit.plan;
    let s = &plan.summary;
    let a = &audit.analysis;
    let width = terminal_width();
    let mut text = String::new();
    let mut say = |line: String| {
        text.push_str(&wrap(&line, width));
        text.push('\n');
    };
    say(format!(
        "subaudit audit of {} ({}), messages {}",
        plan.parent_friendly_name,
        short_sid(&plan.parent_account_sid),
        window_text(&plan.window.since, &plan.window.until)
    ));
    say(format!(
        "{}: {} moving, {} blocked, {} staying; {}, {}",
        plural(s.numbers, "number", "numbers"),
        s.moving,
        s.blocked,
        s.stay,
        plural(s.blockers, "blocker", "blockers"),
        plural(s.warnings, "warning", "warnings"),
    ));
    say(format!(
        "Opt-outs: {} in force, {} lost by the moves, {} to review, {}",
        a.opt_outs.len(),
        plural(audit.lost.len(), "row", "rows"),
        plural(a.possible.len(), "possible one", "possible ones"),
        plural(a.violations.len(), "violation", "violations"),
    ));
    // What the logs cannot show (rule: the horizon): a STOP before the window, and sends the API
    // refused (they leave no message).
    let imported = audit.analysis.imported;
    if imported == 0 {
        say(format!(
            "Opt-outs before {} are not in the logs, nor sends the API refused (they leave no message): check your own STOP records for end users texted before then",
            plan.window.since
        ));
    } else {
        say(format!(
            "Opt-outs before {} are not in the logs, nor sends the API refused (they leave no message): {} from your own records added (--evidence)",
            plan.window.since,
            plural(imported as usize, "event", "events")
        ));
    }
    say(super::usage::reconciliation_line(&audit.usage.attribution));

    // Cost per customer, from the attribution.
    let at = &audit.usage.attribution;
    let per_bucket = at.per_bucket();
    let cost_of = |name: &str| {
        at.buckets
            .iter()
            .position(|b| b.kind == BucketKind::Customer && b.name == name)
            .map(|b| at.cost(&per_bucket[b]).to_string())
            .unwrap_or_default()
    };
    let unit = if at.price_unit.is_empty() {
        "cost".to_string()
    } else {
        format!("cost {}", at.price_unit)
    };

    let mut blocked: Vec<_> = plan
        .customers
        .iter()
        .filter(|c| c.numbers_blocked > 0)
        .collect();
    blocked.sort_by(|x, y| customer_order(&x.customer, &y.customer));
    let conflicts = plan
        .numbers
        .iter()
        .filter(|n| n.target_customer.is_none() && n.blocked)
        .count();
    if !blocked.is_empty() || conflicts > 0 {
        let _ = writeln!(text, "\nBlocked:");
        let mut rows: Vec<Vec<String>> = blocked
            .iter()
            .map(|c| {
                let mut codes: Vec<&str> = plan
                    .numbers
                    .iter()
                    .filter(|n| n.target_customer.as_deref() == Some(c.customer.as_str()))
                    .flat_map(|n| n.findings.iter())
                    .filter(|f| f.severity == Severity::Blocker)
                    .map(|f| f.code.as_str())
                    .collect();
                codes.sort_unstable();
                codes.dedup();
                vec![
                    c.customer.clone(),
                    c.numbers_blocked.to_string(),
                    codes.join(", "),
                ]
            })
            .collect();
        if conflicts > 0 {
            rows.push(vec![
                "(mapping conflict)".to_string(),
                conflicts.to_string(),
                "mapping-conflict".to_string(),
            ]);
        }
        let table = fitting_table(
            &["customer", "numbers", "why"],
            &["numbers"],
            &rows,
            &[],
            width,
        );
        let _ = writeln!(text, "{table}");
    }

    let mut customers: Vec<_> = plan
        .customers
        .iter()
        .filter(|c| c.numbers_blocked == 0 || c.numbers_moving > 0)
        .collect();
    customers.sort_by(|x, y| {
        y.opt_outs_lost
            .cmp(&x.opt_outs_lost)
            .then_with(|| customer_order(&x.customer, &y.customer))
    });
    if !customers.is_empty() {
        let shown = customers.len().min(top);
        let _ = writeln!(
            text,
            "\nTop {} by opt-outs lost:",
            plural(shown, "customer", "customers")
        );
        let rows: Vec<Vec<String>> = customers
            .iter()
            .take(top)
            .map(|c| {
                vec![
                    c.customer.clone(),
                    c.account_sid
                        .as_deref()
                        .map_or("(to create)".to_string(), short_sid),
                    c.numbers_moving.to_string(),
                    c.warnings.to_string(),
                    c.opt_outs_lost.to_string(),
                    cost_of(&c.customer),
                ]
            })
            .collect();
        let header = [
            "customer",
            "subaccount",
            "numbers moving",
            "warnings",
            "opt-outs lost",
            unit.as_str(),
        ];
        let table = fitting_table(
            &header,
            &["numbers moving", "warnings", "opt-outs lost", unit.as_str()],
            &rows,
            &[1, 3, 5],
            width,
        );
        let _ = writeln!(text, "{table}");
        if customers.len() > shown {
            let _ = writeln!(
                text,
                "({} more: --top N shows more, report.html has them all)",
                customers.len() - shown
            );
        }
    }
    let next = if s.blockers > 0 {
        "Next: settle the blockers (fix the mapping, or the subaccounts), then run the same audit again".to_string()
    } else {
        format!(
            "Next: review {} and {}, then run the plan: bash {}",
            out_dir.join("plan.csv").display(),
            out_dir.join("optouts").display(),
            out_dir.join("plan.sh").display()
        )
    };
    text.push('\n');
    for line in [
        format!("Reports written to {}", out_dir.display()),
        format!("Open {}", out_dir.join(super::html::HTML_FILE).display()),
        next,
    ] {
        text.push_str(&wrap(&line, width));
        text.push('\n');
    }
    text
}
