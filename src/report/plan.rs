//! The plan's outputs: `plan.json` (the plan as is), `plan.csv` (one row per number, for a
//! spreadsheet review) and `plan.sh` (the steps as a reviewable curl script).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::audit::plan::{
    Auth, CustomerPlan, Part, PlaceholderSource, Plan, Severity, Step, StepKind, Template,
    RESEED_DIR, SUPPRESSION_HEADER,
};
use crate::error::Result;
use std::io::Write as _;

use crate::output::{
    push_csv_record, write_atomic, write_atomic_with, write_csv, write_json, write_side_by_side,
    Staging,
};

pub const JSON_FILE: &str = "plan.json";
pub const CSV_FILE: &str = "plan.csv";
pub const SHELL_FILE: &str = "plan.sh";

pub const CSV_HEADER: [&str; 13] = [
    "phone_number",
    "number_sid",
    "friendly_name",
    "action",
    "target_customer",
    "target_account_sid",
    "target_account_status",
    "worst_severity",
    "blockers",
    "warnings",
    "finding_codes",
    "opt_outs_lost",
    "recent_messages",
];

#[derive(Serialize)]
struct CsvRow<'a> {
    phone_number: &'a str,
    number_sid: &'a str,
    friendly_name: &'a str,
    action: &'static str,
    target_customer: &'a str,
    target_account_sid: &'a str,
    target_account_status: &'a str,
    worst_severity: &'static str,
    blockers: usize,
    warnings: usize,
    finding_codes: String,
    opt_outs_lost: usize,
    recent_messages: u64,
}

pub fn write_plan_json(path: &Path, plan: &Plan) -> Result<()> {
    write_json(path, plan)
}

pub fn write_plan_csv(path: &Path, plan: &Plan) -> Result<()> {
    let rows: Vec<CsvRow> = plan
        .numbers
        .iter()
        .map(|n| CsvRow {
            phone_number: &n.phone_number,
            number_sid: &n.number_sid,
            friendly_name: n.friendly_name.as_deref().unwrap_or(""),
            action: n.action.as_str(),
            target_customer: n.target_customer.as_deref().unwrap_or(""),
            target_account_sid: n.target_account_sid.as_deref().unwrap_or(""),
            target_account_status: n.target_account_status.as_deref().unwrap_or(""),
            worst_severity: n.worst_severity.map_or("none", Severity::as_str),
            blockers: n.count(Severity::Blocker),
            warnings: n.count(Severity::Warning),
            finding_codes: n.codes().join(";"),
            opt_outs_lost: n.opt_outs_lost,
            recent_messages: n.recent_messages,
        })
        .collect();
    write_csv(path, &CSV_HEADER, &rows)
}

pub fn write_plan_shell(path: &Path, plan: &Plan) -> Result<()> {
    write_atomic(path, render_shell(plan).as_bytes())?;
    #[cfg(unix)]
    {
        // Reviewable first, but runnable as `./plan.sh` once reviewed.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| crate::Error::write(path, e))?;
    }
    Ok(())
}

/// Text safe inside a shell comment: one line, no control characters.
fn comment(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A literal as a double-quoted shell word: `\`, `"`, `$` and `` ` `` escaped, so that data
/// (a customer name) never expands.
fn quote_text(text: &str, out: &mut String) {
    for c in text.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// A template as one double-quoted shell word; placeholders become `${NAME}` expansions.
pub fn shell_word(template: &Template) -> String {
    let mut out = String::from("\"");
    for part in &template.parts {
        match part {
            Part::Text(t) => quote_text(t, &mut out),
            Part::Var(v) => {
                let _ = write!(out, "${{{v}}}");
            }
        }
    }
    out.push('"');
    out
}

fn literal(text: &str) -> String {
    shell_word(&Template::text(text))
}

const PRELUDE: &str = r#"set -euo pipefail

: "${TWILIO_ACCOUNT_SID:?export TWILIO_ACCOUNT_SID, the parent account sid}"
: "${TWILIO_AUTH_TOKEN:?export TWILIO_AUTH_TOKEN, the parent auth token}"
if [ "$TWILIO_ACCOUNT_SID" != "$PARENT_SID" ]; then
  echo "plan.sh: TWILIO_ACCOUNT_SID is $TWILIO_ACCOUNT_SID, but this plan is for the parent $PARENT_SID" >&2
  exit 1
fi
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "plan.sh: needs $tool" >&2; exit 1; }
done

# twilio METHOD URL USER PASSWORD [curl options]: one request; prints the response body and
# fails on an HTTP error. The credentials reach curl on its standard input, not on its
# command line, so that they do not show in the process list.
twilio() {
  local method=$1 url=$2 user=$3 password=$4
  shift 4
  printf 'user = "%s:%s"\n' "$user" "$password" |
    curl --silent --show-error --fail-with-body --config - -X "$method" "$url" "$@"
}

# parent METHOD URL [curl options]: a request with the parent's credentials.
parent() {
  local method=$1 url=$2
  shift 2
  twilio "$method" "$url" "$TWILIO_ACCOUNT_SID" "$TWILIO_AUTH_TOKEN" "$@"
}

# subaccount_token SID: a subaccount's auth token, read with the parent's credentials. It
# stays in this shell's memory; nothing writes it anywhere.
subaccount_token() {
  parent GET "https://api.twilio.com/2010-04-01/Accounts/$1.json" | jq -er .auth_token
}

# need NAME HINT: stop unless the variable NAME is set (a value only you can provide).
need() {
  if [ -z "${!1:-}" ]; then
    echo "plan.sh: $1 is not set: $2" >&2
    exit 1
  fi
}

# step N TEXT: say what happens next.
step() {
  echo "step $1: $2" >&2
}

# reseed FILE FIRST LAST SENDER ACCOUNT TOKEN: re-seeds lines FIRST..LAST of a re-seed file
# (one Consents item a line, beside this script) for SENDER, in requests of at most 25 items
# and at most 100 requests a minute. Consents Bulk answers 201 even when items fail: every
# item's error_code is checked, and the step fails naming the contact ids that failed.
reseed() {
  local file=$PLAN_DIR/$1 first=$2 last=$3 sender=$4 user=$5 password=$6
  local batch response failed sent=0
  [ -r "$file" ] || { echo "plan.sh: $file is missing: it comes with this script" >&2; exit 1; }
  while IFS= read -r batch; do
    response=$(twilio POST "https://accounts.twilio.com/v1/Consents/Bulk" "$user" "$password" \
      --data-urlencode "Items=$batch")
    failed=$(jq -rn --argjson sent "$batch" --argjson response "$response" '
      ($response.items // [] | if type == "object" then [.[]] else . end
        | map(select((.error_code // 0) == 0) | .correlation_id)) as $ok
      | [$sent[] | select(.correlation_id as $c | $ok | index($c) | not) as $item
         | ($response.items // [] | if type == "object" then [.[]] else . end
            | map(select(.correlation_id == $item.correlation_id)) | first) as $r
         | "\($item.contact_id) (error \($r.error_code // "none: no result for the item"))"]
      | join(", ")')
    if [ -n "$failed" ]; then
      echo "plan.sh: Consents Bulk did not re-seed these contacts of $1: $failed" >&2
      exit 1
    fi
    sent=$((sent + 1))
    # Consents Bulk takes 100 requests a minute.
    sleep 0.6
  done < <(sed -n "${first},${last}p" "$file" |
    jq -c --arg sender "$sender" '.sender_id = $sender' |
    jq -cn '[inputs] as $all | range(0; $all | length; 25) as $i | $all[$i:$i + 25]')
  if [ "$sent" -ne $(((last - first + 25) / 25)) ]; then
    echo "plan.sh: $1 lines $first-$last did not read as Consents items (re-seeded $sent request(s)); check the file" >&2
    exit 1
  fi
  echo "re-seeded lines $first-$last of $1 in $sent request(s)" >&2
}
"#;

/// plan.sh: the steps as curl commands, one shell function per customer.
pub fn render_shell(plan: &Plan) -> String {
    let mut s = String::new();
    let parent_name = comment(&plan.parent_friendly_name);
    let _ = writeln!(s, "#!/usr/bin/env bash");
    let _ = writeln!(
        s,
        "# Migration plan: numbers of {parent_name} ({}) into per-customer subaccounts.",
        plan.parent_account_sid
    );
    let _ = writeln!(
        s,
        "# Made by subaudit from the snapshot of {} to {}; plan.json holds the same steps and",
        plan.window.since, plan.window.until
    );
    let _ = writeln!(
        s,
        "# every finding. Review every step before running it: transfers are not undone by this script."
    );
    s.push_str(
        "#\n\
# Run with the parent's credentials in the environment (never written into this file):\n\
#   export TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=...\n\
#   bash plan.sh                      # every customer, in order\n\
#   bash plan.sh C_FALCON_FLIGHTS     # only the named customers (the functions below)\n\
# Needs curl and jq. It stops at the first failed request: fix the cause, then run the rest\n\
# of that customer's part by hand or re-run the customers not yet done.\n\
# Values known only at run time are shell variables: new subaccount and service sids are read\n\
# from the responses; bundles and addresses the subaccounts need must be created by you and\n\
# exported first (the script stops and names the variable).\n\
# Pause each customer's sending while its part runs: between the transfer and the re-seed of\n\
# its opt-outs, a message could reach someone who opted out.\n",
    );
    let blocked: Vec<_> = plan.numbers.iter().filter(|n| n.blocked).collect();
    if !blocked.is_empty() {
        let _ = writeln!(
            s,
            "#\n# Not in this script ({} blocked number{}: resolve the blockers listed in plan.json, then run\n# subaudit plan again):",
            blocked.len(),
            if blocked.len() == 1 { "" } else { "s" }
        );
        for n in blocked {
            let blockers: Vec<&str> = n
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Blocker)
                .map(|f| f.code.as_str())
                .collect();
            let target = n
                .target_customer
                .as_deref()
                .map(|c| format!(" -> {}", comment(c)))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "#   {} ({}){target}: {}",
                n.phone_number,
                n.number_sid,
                blockers.join(", ")
            );
        }
    }
    s.push('\n');
    let _ = writeln!(s, "PARENT_SID={}", literal(&plan.parent_account_sid));
    // The re-seed files sit beside the script.
    let _ = writeln!(
        s,
        "PLAN_DIR=$(cd \"$(dirname \"${{BASH_SOURCE[0]}}\")\" && pwd)"
    );
    s.push_str(PRELUDE);

    let active: Vec<&CustomerPlan> = plan
        .customers
        .iter()
        .filter(|c| plan.steps.iter().any(|st| st.customer_key == c.key))
        .collect();
    for customer in &active {
        render_customer(&mut s, plan, customer);
    }

    s.push_str("\nCUSTOMERS=(");
    for (i, c) in active.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&c.key);
    }
    s.push_str(")\n");
    s.push_str(
        r#"if [ "$#" -gt 0 ]; then selected=("$@"); else selected=("${CUSTOMERS[@]}"); fi
for customer in "${selected[@]}"; do
  case " ${CUSTOMERS[*]} " in
    *" $customer "*) ;;
    *) echo "plan.sh: no customer $customer in this plan (it has: ${CUSTOMERS[*]})" >&2; exit 2 ;;
  esac
done
for customer in "${selected[@]}"; do
  echo "== $customer" >&2
  "$customer"
done
echo "plan.sh: done" >&2
"#,
    );
    s
}

fn render_customer(s: &mut String, plan: &Plan, customer: &CustomerPlan) {
    let key = &customer.key;
    let name = comment(&customer.customer);
    let account_var = format!("{key}_ACCOUNT_SID");
    let token_var = format!("{key}_AUTH_TOKEN");
    let where_to = match &customer.account_sid {
        Some(sid) => format!("the existing subaccount {sid}"),
        None => "a new subaccount".to_string(),
    };
    let _ = writeln!(
        s,
        "\n# ---- {name}: {} number{} into {where_to} ----",
        customer.numbers_moving,
        if customer.numbers_moving == 1 {
            ""
        } else {
            "s"
        }
    );
    let _ = writeln!(
        s,
        "# {} warning{} in plan.json for these numbers; {} opt-out{} to re-seed.",
        customer.warnings,
        if customer.warnings == 1 { "" } else { "s" },
        customer.opt_outs_lost,
        if customer.opt_outs_lost == 1 { "" } else { "s" }
    );
    let _ = writeln!(s, "{key}() {{");
    let _ = writeln!(s, "  local response");
    let steps: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|st| &st.customer_key == key)
        .collect();
    let mut credentials_ready = false;
    let ready = |s: &mut String| {
        // The subaccount exists from here: its token, then the values only the user has.
        let _ = writeln!(
            s,
            "  {token_var}=\"${{{token_var}:-$(subaccount_token \"${account_var}\")}}\""
        );
        for var in &customer.required {
            let desc = plan
                .placeholders
                .iter()
                .find(|p| &p.name == var && p.source == PlaceholderSource::Required)
                .map(|p| comment(&p.description))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "  need {var} {}",
                shell_word(
                    &Template::text(format!("{desc}. Create it in subaccount "))
                        .push_var(&account_var)
                        .push_text(format!(", then run: {var}=... {account_var}="))
                        .push_var(&account_var)
                        .push_text(format!(" bash plan.sh {key}"))
                )
            );
        }
    };
    if let Some(sid) = &customer.account_sid {
        let _ = writeln!(s, "  {account_var}={}", literal(sid));
        ready(s);
        credentials_ready = true;
    }
    for st in steps {
        let _ = writeln!(
            s,
            "\n  # Step {} ({}): {}",
            st.order,
            st.kind.as_str(),
            comment(&st.description)
        );
        let _ = writeln!(
            s,
            "  step {} {}",
            st.order,
            literal(&format!("{}: {}", st.kind.as_str(), st.description))
        );
        let call = request_command(st);
        match st.kind {
            StepKind::CreateSubaccount => {
                // A second run (after creating the bundle, say) passes the sid: no new account.
                let _ = writeln!(s, "  if [ -z \"${{{account_var}:-}}\" ]; then");
                let _ = writeln!(s, "    response=$({call})");
                for c in &st.captures {
                    let _ = writeln!(
                        s,
                        "    {}=$(jq -er .{} <<<\"$response\")",
                        c.variable, c.field
                    );
                }
                let _ = writeln!(
                    s,
                    "    echo \"created subaccount {}: ${account_var}\" >&2",
                    quote_inner(&customer.customer)
                );
                let _ = writeln!(s, "  fi");
                ready(s);
                credentials_ready = true;
            }
            _ if !st.captures.is_empty() => {
                let _ = writeln!(s, "  response=$({call})");
                for c in &st.captures {
                    let _ = writeln!(
                        s,
                        "  {}=$(jq -er .{} <<<\"$response\")",
                        c.variable, c.field
                    );
                }
            }
            StepKind::ReseedOptOuts => {
                let Some(part) = &st.reseed else {
                    continue;
                };
                let total = plan
                    .reseed_files
                    .iter()
                    .find(|f| f.path == part.reseed_file)
                    .map_or(part.items, |f| f.len());
                let (first, last) = (
                    part.first_line.unwrap_or(1),
                    part.last_line.unwrap_or(total),
                );
                let _ = writeln!(
                    s,
                    "  reseed {} {first} {last} {} \"${{{account_var}}}\" \"${{{token_var}}}\"",
                    literal(&part.reseed_file),
                    shell_word(&part.sender_id)
                );
            }
            _ => {
                let _ = writeln!(s, "  {call}");
            }
        }
    }
    debug_assert!(credentials_ready);
    let _ = writeln!(s, "}}");
}

/// Text for inside an already double-quoted shell string.
fn quote_inner(text: &str) -> String {
    let mut out = String::new();
    quote_text(text, &mut out);
    out
}

/// The curl call of a step, through the script's `parent` / `twilio` helpers.
fn request_command(st: &Step) -> String {
    let r = &st.request;
    let mut cmd = match r.auth {
        Auth::Parent => format!("parent {} {}", r.method, shell_word(&r.url)),
        Auth::Subaccount => format!(
            "twilio {} {} \"${{{k}_ACCOUNT_SID}}\" \"${{{k}_AUTH_TOKEN}}\"",
            r.method,
            shell_word(&r.url),
            k = st.customer_key
        ),
    };
    for f in &r.form {
        let value = Template::text(format!("{}=", f.name));
        let mut value = value;
        value.parts.extend(f.value.parts.iter().cloned());
        let _ = write!(cmd, " \\\n      --data-urlencode {}", shell_word(&value));
    }
    cmd
}

/// The terminal summary per customer: numbers moving, blockers, warnings, opt-outs lost; then
/// the numbers that stay (conflicts, unmapped) and the totals. Fitted to the terminal: names
/// wrap between words, and "blocked" then "warnings" are left out when it is still too narrow.
pub fn summary_table(plan: &Plan) -> comfy_table::Table {
    const HEADER: [&str; 7] = [
        "customer",
        "target account",
        "numbers moving",
        "blocked",
        "blockers",
        "warnings",
        "opt-outs lost",
    ];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for c in &plan.customers {
        let account = match &c.account_sid {
            Some(sid) if c.account_status == "active" => super::table::short_sid(sid),
            Some(sid) => format!("{} ({})", super::table::short_sid(sid), c.account_status),
            None => "(to create)".to_string(),
        };
        rows.push(vec![
            c.customer.clone(),
            account,
            c.numbers_moving.to_string(),
            c.numbers_blocked.to_string(),
            c.blockers.to_string(),
            c.warnings.to_string(),
            c.opt_outs_lost.to_string(),
        ]);
    }
    let conflicts: Vec<_> = plan
        .numbers
        .iter()
        .filter(|n| n.action == crate::audit::plan::Action::Stay && n.blocked)
        .collect();
    if !conflicts.is_empty() {
        rows.push(vec![
            "(mapping conflict: stays)".to_string(),
            numbers_text(conflicts.len()),
            "0".to_string(),
            conflicts.len().to_string(),
            conflicts
                .iter()
                .map(|n| n.count(Severity::Blocker))
                .sum::<usize>()
                .to_string(),
            conflicts
                .iter()
                .map(|n| n.count(Severity::Warning))
                .sum::<usize>()
                .to_string(),
            "0".to_string(),
        ]);
    }
    let unmapped = plan
        .numbers
        .iter()
        .filter(|n| n.action == crate::audit::plan::Action::Stay && !n.blocked)
        .count();
    if unmapped > 0 {
        let mut row = vec![
            "(unmapped: stays in parent)".to_string(),
            numbers_text(unmapped),
        ];
        row.extend(std::iter::repeat_n("0".to_string(), 5));
        rows.push(row);
    }
    let sum = &plan.summary;
    rows.push(vec![
        "total".to_string(),
        format!("{} customers", plan.customers.len()),
        sum.moving.to_string(),
        sum.blocked.to_string(),
        sum.blockers.to_string(),
        sum.warnings.to_string(),
        sum.opt_outs_lost.to_string(),
    ]);
    super::table::wrapping_table(
        &HEADER,
        &HEADER[2..],
        &rows,
        &[3, 5],
        super::table::terminal_width(),
    )
}

fn numbers_text(n: usize) -> String {
    format!("{n} number{}", if n == 1 { "" } else { "s" })
}

/// One line under the table: what the plan holds in all.
pub fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    format!(
        "plan: {} numbers, {} to transfer ({} blocked), {} stay; {} blockers, {} warnings, {} info; {} steps",
        s.numbers, s.transfer, s.blocked, s.stay, s.blockers, s.warnings, s.infos, s.steps
    )
}

/// Writes each moving customer's suppression list, `<customer>.suppression.csv`, into `dir`
/// (the per-customer opt-out folder, beside `<customer>.csv`): a header-only file for a
/// customer with nothing to suppress, like the opt-out files.
pub fn write_suppression(dir: &Path, plan: &Plan) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::write(dir, e))?;
    let mut written = HashSet::new();
    let mut files = Vec::new();
    for c in &plan.customers {
        let name = c
            .suppression_file
            .rsplit('/')
            .next()
            .unwrap_or(&c.suppression_file);
        // Two subaccounts under one customer name share the customer's files.
        if written.insert(name) {
            files.push((c, name));
        }
    }
    write_side_by_side(&files, |&(c, name)| {
        write_atomic_with(&dir.join(name), |out| {
            let mut lines = crate::output::chunk_buffer();
            push_csv_record(&mut lines, &SUPPRESSION_HEADER);
            for row in plan.suppression_rows(&c.customer) {
                row.push_csv(&mut lines);
                crate::output::write_full_chunk(out, &mut lines)?;
            }
            out.write_all(&lines)
        })
    })
}

/// Stages each customer's suppression list as an entry of its own, `optouts/<customer>.
/// suppression.csv` (the names plan.json gives): `plan` alone writes what its plan.json names,
/// and leaves the other files of `optouts/` (an audit's opt-out files) as they are. Returns
/// the names written.
pub fn stage_suppression(staging: &mut Staging, plan: &Plan) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for c in &plan.customers {
        if !names.contains(&c.suppression_file) {
            names.push(c.suppression_file.clone());
        }
    }
    let Some(first) = names.first() else {
        return Ok(names);
    };
    let dir = staging.path(first);
    let dir = dir.parent().unwrap_or(&dir).to_path_buf();
    for name in &names {
        staging.path(name);
    }
    write_suppression(&dir, plan)?;
    Ok(names)
}

/// Writes the plan's files into a staged set: `<stem>.json`, `<stem>.csv` and `<stem>.sh`
/// (`stem` is `plan` in a report folder). Returns the names written.
pub fn stage(staging: &mut Staging, stem: &str, plan: &Plan) -> Result<Vec<String>> {
    let (json, csv, shell) = (
        format!("{stem}.json"),
        format!("{stem}.csv"),
        format!("{stem}.sh"),
    );
    write_plan_json(&staging.path(&json), plan)?;
    write_plan_csv(&staging.path(&csv), plan)?;
    write_plan_shell(&staging.path(&shell), plan)?;
    // The re-seed folder always matches the plan: replaced whole, empty when nothing is lost.
    let reseed = staging.path(RESEED_DIR);
    std::fs::create_dir(&reseed).map_err(|e| crate::Error::write(&reseed, e))?;
    write_side_by_side(&plan.reseed_files, |file| {
        let name = file
            .path
            .strip_prefix(&format!("{RESEED_DIR}/"))
            .unwrap_or(&file.path);
        write_atomic_with(&reseed.join(name), |out| {
            let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
            plan.write_reseed_file(file, &mut out)?;
            std::io::Write::flush(&mut out)
        })
    })?;
    Ok(vec![json, csv, shell, RESEED_DIR.to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_never_expands_and_placeholders_do() {
        let t =
            Template::text("a \"$(rm -rf /)\" `x` \\ ${TWILIO_AUTH_TOKEN} ").push_var("C_A_SID");
        assert_eq!(
            shell_word(&t),
            r#""a \"\$(rm -rf /)\" \`x\` \\ \${TWILIO_AUTH_TOKEN} ${C_A_SID}""#
        );
        assert_eq!(comment("a\nb\rc"), "a b c");
    }
}
