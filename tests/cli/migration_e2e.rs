//! The migration end to end on the twin, from the sample snapshot: audit -> apply (faults, a
//! kill, resume) -> pull -> verify, then sends and inbound texts through the twin.

use std::path::Path;

use assert_cmd::Command;

use crate::migrate::apply;
use crate::support::*;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command as StdCommand, Stdio};

use serde_json::{json, Value};
use subaudit::client::{Client, ClientConfig, Credentials, Hosts, Product, WriteOutcome};

const TOKEN: &str = "twin-parent-token-5c1e";
const SAMPLE_PARENT: &str = "AC4167c593eb1e01abd9fe399d07823a05";
/// Customers of the e2e run: new subaccounts, numbers in and outside a parent service, none
/// blocked (every sample customer with an existing subaccount has a blocked number). A subset keeps the Consents requests under the twin's 100 a
/// minute, so that the test takes seconds (`apply` would wait out the minute otherwise).
const CUSTOMERS: [&str; 3] = ["Egret Clinics", "Godwit Logistics", "Dunlin Pets"];
/// The kinds of write whose first (after it took effect) the e2e twin never answers: `apply`
/// is killed waiting for each, then run again.
const HELD_KINDS: [&str; 6] = [
    "create-account",
    "remove-from-service",
    "update-number",
    "create-service",
    "add-to-service",
    "consents-bulk",
];
/// Applied from a copy of the plan whose re-seed lacks one batch.
const BROKEN: &str = "Rook Cleaners";

struct Twin {
    child: Child,
    url: String,
}

impl Drop for Twin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_twin(snapshot: &Path, extra: &[&str]) -> Twin {
    let (child, url) = spawn_twilio_sim(snapshot, SAMPLE_PARENT, TOKEN, extra);
    Twin { child, url }
}

/// Requests to the twin, with the library's own client (no retries of writes).
struct Api {
    runtime: tokio::runtime::Runtime,
    parent: Client,
}

impl Api {
    fn new(twin: &Twin) -> Api {
        let creds = Credentials::resolve(Some(SAMPLE_PARENT), Some(TOKEN), None, None).unwrap();
        let config = ClientConfig {
            retry_base: std::time::Duration::from_millis(5),
            ..ClientConfig::default()
        };
        Api {
            runtime: tokio::runtime::Runtime::new().unwrap(),
            parent: Client::new(creds, Hosts::single(&twin.url).unwrap(), config).unwrap(),
        }
    }

    fn get(&self, client: &Client, path: &str) -> Value {
        let url = client.url(Product::Api, path);
        self.runtime.block_on(client.get_json(&url)).unwrap()
    }

    fn post(&self, client: &Client, path: &str, form: &[(&str, &str)]) -> (bool, Value) {
        let url = client.url(Product::Api, path);
        let form: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // The twin injects faults into these probes too: a probe is sent again (it only
        // asks whether a send is refused).
        for _ in 0..30 {
            match self
                .runtime
                .block_on(client.write_once(reqwest::Method::POST, &url, &form))
            {
                WriteOutcome::Done(v) => return (true, v),
                WriteOutcome::Refused(e) => {
                    return (false, json!({"code": e.code, "status": e.status}))
                }
                _ => continue,
            }
        }
        panic!("POST {path}: kept failing");
    }

    /// The subaccount's own client (its token read with the parent's credentials).
    fn account(&self, sid: &str) -> Client {
        let acc = self.get(&self.parent, &format!("/2010-04-01/Accounts/{sid}.json"));
        let token = acc["auth_token"].as_str().unwrap();
        self.parent
            .with_credentials(Credentials::resolve(Some(sid), Some(token), None, None).unwrap())
    }

    /// Sends from `from` (a number of `client`'s account) to `to`: true when refused with
    /// 21610 (HTTP 400, or a failed message with error_code 21610).
    fn refused_21610(&self, client: &Client, from: &str, to: &str) -> bool {
        let account = client.credentials().account_sid.clone();
        let (ok, v) = self.post(
            client,
            &format!("/2010-04-01/Accounts/{account}/Messages.json"),
            &[("To", to), ("From", from), ("Body", "Your order shipped")],
        );
        if ok {
            v["error_code"].as_i64() == Some(21610) && v["status"] == "failed"
        } else {
            v["code"].as_i64() == Some(21610)
        }
    }
}

struct LostRow {
    end_user: String,
    number: String,
    number_sid: String,
    customer: String,
}

fn lost_rows(report: &Path) -> Vec<LostRow> {
    let rows = read_csv(&report.join("optouts_lost.csv"));
    let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
    let (u, n, s, c) = (
        col("end_user"),
        col("twilio_number"),
        col("twilio_number_sid"),
        col("target_customer"),
    );
    rows[1..]
        .iter()
        .map(|r| LostRow {
            end_user: r[u].clone(),
            number: r[n].clone(),
            number_sid: r[s].clone(),
            customer: r[c].clone(),
        })
        .filter(|r| r.end_user.starts_with('+'))
        .collect()
}

fn journal_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn sample_apply(dir: &Path, plan: &Path, twin: &Twin, customers: &[&str]) -> Command {
    let mut cmd = apply(dir, plan, &twin.url);
    cmd.env("TWILIO_ACCOUNT_SID", SAMPLE_PARENT)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .arg("--quiet");
    for c in customers {
        cmd.args(["--customer", c]);
    }
    cmd
}

/// `apply` of `customers` as a process of its own (to be killed).
fn apply_process(d: &Path, plan_path: &Path, twin: &Twin, customers: &[&str]) -> StdCommand {
    #[allow(deprecated)]
    let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("subaudit"));
    cmd.current_dir(d)
        .args(["apply", "--plan"])
        .arg(plan_path)
        .args(["--retry-base-ms", "5", "--quiet"])
        .env_remove("TWILIO_API_KEY")
        .env_remove("TWILIO_API_SECRET")
        .env("TWILIO_ACCOUNT_SID", SAMPLE_PARENT)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("SUBAUDIT_TWILIO_BASE_URL", &twin.url)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for c in customers {
        cmd.args(["--customer", c]);
    }
    cmd
}

/// The twin's log of the writes it served (`GET /__twin/writes`).
fn twin_writes(api: &Api) -> Vec<Value> {
    api.get(&api.parent, "/__twin/writes")["writes"]
        .as_array()
        .unwrap()
        .clone()
}

/// A write the twin held (`--fault-write-hold-*`) and the journal's last entry when `apply`
/// was killed waiting for it.
struct Kill {
    write: Value,
    journal_last: Value,
}

/// Runs `apply` until it exits 0 (at most three runs that fail), killing it (SIGKILL) each
/// time the twin holds one of its writes: a real interruption at a known point, the journal
/// as the dead run left it. Waits on the twin's log, never on a clock.
fn apply_killed_at_each_hold(
    d: &Path,
    plan_path: &Path,
    twin: &Twin,
    api: &Api,
    customers: &[&str],
) -> Vec<Kill> {
    let journal = plan_path.with_file_name("plan.journal.jsonl");
    let held = |writes: &[Value]| writes.iter().filter(|w| w["answer"] == "held").count();
    let mut kills = Vec::new();
    let mut failed_runs = 0;
    let started = std::time::Instant::now();
    loop {
        let before = held(&twin_writes(api));
        let mut child = apply_process(d, plan_path, twin, customers)
            .spawn()
            .unwrap();
        loop {
            assert!(
                started.elapsed().as_secs() < 300,
                "apply neither finished nor met a held write"
            );
            if let Some(status) = child.try_wait().unwrap() {
                if status.success() {
                    return kills;
                }
                failed_runs += 1;
                assert!(failed_runs < 3, "apply failed three times ({status})");
                break;
            }
            let writes = twin_writes(api);
            if held(&writes) > before {
                child.kill().unwrap();
                child.wait().unwrap();
                let text = std::fs::read_to_string(&journal).unwrap();
                kills.push(Kill {
                    write: writes
                        .iter()
                        .rfind(|w| w["answer"] == "held")
                        .unwrap()
                        .clone(),
                    journal_last: serde_json::from_str(text.lines().last().unwrap()).unwrap(),
                });
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// The writes that took effect more than once (same account, method, path and form).
fn repeated_effects(writes: &[Value]) -> Vec<Value> {
    let key = |w: &Value| json!([w["account"], w["method"], w["path"], w["form"]]).to_string();
    let effects: Vec<&Value> = writes.iter().filter(|w| w["took_effect"] == true).collect();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for w in &effects {
        *seen.entry(key(w)).or_default() += 1;
    }
    effects
        .into_iter()
        .filter(|w| seen[&key(w)] > 1)
        .cloned()
        .collect()
}

/// The journal's entries (its header left out).
fn journal_entries(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The value of a field of a plan step's request form.
fn form_value<'a>(step: &'a Value, name: &str) -> &'a str {
    step["request"]["form"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap()["value"]
        .as_str()
        .unwrap()
}

/// `audit` of the sample into `d/report`: the plan's path and its JSON.
fn audit_sample(d: &Path, sample: &Path) -> (std::path::PathBuf, Value) {
    subaudit(d)
        .args(["audit", "--snapshot"])
        .arg(sample)
        .args(["--map"])
        .arg(sample.join("mapping.csv"))
        .args(["--out", "report"])
        .assert()
        .success();
    let plan_path = d.join("report/plan.json");
    let plan = read_json(&plan_path);
    (plan_path, plan)
}

#[test]
fn a_migration_on_the_twin_survives_faults_and_kills_mid_write_and_loses_no_opt_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sample = repo_root().join("sample-data/owlie");
    let (plan_path, plan) = audit_sample(d, &sample);
    let lost = lost_rows(&d.join("report"));
    let selected: BTreeSet<&str> = CUSTOMERS.iter().copied().collect();

    // The broken copy: the same plan, one batch of the broken customer's re-seed left out.
    let broken_dir = d.join("broken");
    copy_dir(&d.join("report"), &broken_dir);
    let skipped_users = drop_one_batch(&broken_dir, &plan, BROKEN);
    assert_eq!(skipped_users.len(), 25, "one whole batch is left out");

    let twin = start_twin(
        &sample,
        &[
            "--rate-429",
            "0.05",
            "--rate-500",
            "0.03",
            "--drop-rate",
            "0.03",
            "--fault-write-5xx-after-effect",
            "0.08",
            "--fault-write-hold-after-effect",
            &HELD_KINDS.join(","),
            "--seed",
            "7",
        ],
    );
    let api = Api::new(&twin);

    // Before the move, the parent refuses every send to the opt-outs the move would lose.
    let moving: Vec<&LostRow> = lost
        .iter()
        .filter(|r| selected.contains(r.customer.as_str()))
        .collect();
    assert!(moving.len() > 100, "{} opt-outs", moving.len());
    for r in &moving {
        assert!(
            api.refused_21610(&api.parent, &r.number, &r.end_user),
            "parent send from {} to {} was not refused",
            r.number,
            r.end_user
        );
    }

    // Apply, killed (SIGKILL) each time the twin holds the first write of a kind after it
    // took effect (the run dies with the write done and its answer not journaled), and run
    // again until done.
    let journal = d.join("report/plan.journal.jsonl");
    let writes_before = twin_writes(&api).len();
    let kills = apply_killed_at_each_hold(d, &plan_path, &twin, &api, &CUSTOMERS);
    let held: BTreeSet<&str> = kills
        .iter()
        .map(|k| k.write["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        held,
        BTreeSet::from(HELD_KINDS),
        "a kill at each kind of write"
    );
    for kill in &kills {
        let step_kind = match kill.write["kind"].as_str().unwrap() {
            "create-account" => "create-subaccount",
            "update-number" => "transfer-number",
            "create-service" => "create-messaging-service",
            "consents-bulk" => continue, // batches have no sending line
            other => other,
        };
        assert_eq!(
            (
                kill.journal_last["kind"].as_str(),
                kill.journal_last["status"].as_str()
            ),
            (Some(step_kind), Some("sending")),
            "killed while the write was in flight: {}",
            kill.journal_last
        );
    }
    // Nothing done twice: no write took effect twice but a Consents batch, which no API reads
    // back (the batch a run died in, or one whose answer was lost, is sent again as is).
    let applied = twin_writes(&api)[writes_before..].to_vec();
    let repeated: Vec<Value> = repeated_effects(&applied)
        .into_iter()
        .filter(|w| w["kind"] != "consents-bulk")
        .collect();
    assert!(repeated.is_empty(), "done twice: {repeated:?}");
    // Every step, and every batch of a re-seed, settled exactly once across the runs.
    let mut settled: BTreeMap<(u64, Option<u64>), usize> = BTreeMap::new();
    for e in journal_entries(&journal) {
        if e["status"] == "done" || e["status"] == "skipped" {
            let key = (e["order"].as_u64().unwrap(), e["batch"].as_u64());
            *settled.entry(key).or_default() += 1;
        }
    }
    assert!(
        settled.values().all(|&n| n == 1),
        "settled twice: {settled:?}"
    );
    for step in plan["steps"].as_array().unwrap() {
        if selected.contains(step["customer"].as_str().unwrap()) {
            let order = step["order"].as_u64().unwrap();
            assert!(
                settled.contains_key(&(order, None)),
                "step {order} not settled"
            );
        }
    }
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(!text.contains(TOKEN) && !text.contains("auth_token\":\""));

    // One subaccount and one service per customer, however many runs and faults.
    for name in ["Egret Clinics", "Godwit Logistics", "Dunlin Pets"] {
        let list = api.get(
            &api.parent,
            &format!(
                "/2010-04-01/Accounts.json?FriendlyName={}",
                name.replace(' ', "%20")
            ),
        );
        assert_eq!(list["accounts"].as_array().unwrap().len(), 1, "{name}");
    }

    // The broken run: another customer, from the copy missing one batch.
    sample_apply(d, &broken_dir.join("plan.json"), &twin, &[BROKEN])
        .assert()
        .code(0);

    // A fresh pull, then verify.
    let until = "2026-10-31"; // the sample's last day (its window ends at 2026-11-01T00:00:00Z)
    subaudit(d)
        .args([
            "pull",
            "--out",
            "after",
            "--since",
            "2025-10-01",
            "--until",
            until,
        ])
        .args(["--retry-base-ms", "5", "--max-retries", "12", "--quiet"])
        .env("TWILIO_ACCOUNT_SID", SAMPLE_PARENT)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("SUBAUDIT_TWILIO_BASE_URL", &twin.url)
        .env_remove("TWILIO_API_KEY")
        .assert()
        .success();
    let out = subaudit(d)
        .args([
            "verify",
            "--plan",
            "report/plan.json",
            "--snapshot",
            "after",
            "--out",
            "verify.csv",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let rows = read_csv(&d.join("verify.csv"));
    let moved: Vec<&Vec<String>> = rows[1..]
        .iter()
        .filter(|r| selected.contains(r[2].as_str()))
        .collect();
    let planned_moves = plan["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| {
            selected.contains(n["target_customer"].as_str().unwrap_or_default())
                && n["action"] == "transfer"
                && n["blocked"] == false
        })
        .count();
    assert!(planned_moves >= 6, "the selected customers move numbers");
    assert_eq!(moved.len(), planned_moves);
    assert!(moved.iter().all(|r| r[5] == "ok"), "{moved:?}");
    assert!(rows[1..]
        .iter()
        .any(|r| r[2] == "Kite Pharmacy" && r[5] == "not-applied"));

    let out = subaudit(d)
        .args([
            "verify",
            "--plan",
            "broken/plan.json",
            "--snapshot",
            "after",
            "--out",
            "broken.csv",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for user in &skipped_users {
        assert!(
            stdout.contains(user.as_str()),
            "verify names {user}:\n{stdout}"
        );
    }

    // After the move, each subaccount refuses every send to the opt-outs its numbers lost,
    // and inbound texts reach the URL the parent's service (or the number) used.
    let numbers: BTreeMap<String, Value> =
        std::fs::read_to_string(sample.join("incoming_phone_numbers.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|v| (v["sid"].as_str().unwrap().to_string(), v))
            .collect();
    let services: BTreeMap<String, Value> =
        std::fs::read_to_string(sample.join("messaging_services.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|v| (v["sid"].as_str().unwrap().to_string(), v))
            .collect();
    let mut clients: BTreeMap<String, Client> = BTreeMap::new();
    for r in &moving {
        let row = moved.iter().find(|v| v[1] == r.number_sid).unwrap();
        let account = row[3].clone();
        let client = clients
            .entry(account.clone())
            .or_insert_with(|| api.account(&account))
            .clone();
        assert!(
            api.refused_21610(&client, &r.number, &r.end_user),
            "{account} sent from {} to {}: the opt-out was lost",
            r.number,
            r.end_user
        );
    }
    for n in plan["numbers"].as_array().unwrap() {
        if !selected.contains(n["target_customer"].as_str().unwrap_or_default())
            || n["blocked"] == true
        {
            continue;
        }
        let sid = n["number_sid"].as_str().unwrap();
        let expected = match n["messaging_service_sids"]
            .as_array()
            .and_then(|a| a.first())
        {
            Some(mg) => services[mg.as_str().unwrap()]["inbound_request_url"].clone(),
            None => numbers[sid]["sms_url"].clone(),
        };
        let (ok, v) = api.post(
            &api.parent,
            "/__twin/inbound",
            &[
                ("From", "+12065550999"),
                ("To", n["phone_number"].as_str().unwrap()),
                ("Body", "hello"),
            ],
        );
        assert!(ok, "{v}");
        assert_eq!(v["dropped"], false, "{sid}: {v}");
        assert_eq!(v["routed_to"], expected, "{sid}: {v}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Leaves the first 25 items of the customer's first re-seed step out of the copy (from its
/// reseed file, or its inline Items), and returns their contacts.
fn drop_one_batch(dir: &Path, plan: &Value, customer: &str) -> Vec<String> {
    let step = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["customer"] == customer
                && s["kind"] == "reseed-opt-outs"
                && s.get("items")
                    .and_then(Value::as_u64)
                    .is_none_or(|n| n > 25)
        })
        .expect("a reseed step");
    let contact = |item: &str| -> String {
        serde_json::from_str::<Value>(item).unwrap()["contact_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    if let Some(file) = step.get("reseed_file").and_then(Value::as_str) {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let first = step.get("first_line").and_then(Value::as_u64).unwrap_or(1) as usize - 1;
        let dropped: Vec<String> = lines[first..first + 25]
            .iter()
            .map(|l| contact(l))
            .collect();
        let kept: Vec<&str> = lines[..first]
            .iter()
            .chain(lines[first + 25..].iter())
            .copied()
            .collect();
        std::fs::write(&path, kept.join("\n") + "\n").unwrap();
        // Later steps of the same file shift up by a batch.
        let mut plan = plan.clone();
        for s in plan["steps"].as_array_mut().unwrap() {
            if s.get("reseed_file").and_then(Value::as_str) == Some(file) {
                for key in ["first_line", "last_line"] {
                    if let Some(n) = s.get(key).and_then(Value::as_u64) {
                        if n as usize > first + 25 {
                            s[key] = (n - 25).into();
                        } else if key == "last_line" && n as usize > first {
                            s[key] = (n - 25).max(first as u64).into();
                        }
                    }
                }
            }
        }
        std::fs::write(
            dir.join("plan.json"),
            serde_json::to_vec_pretty(&plan).unwrap(),
        )
        .unwrap();
        dropped
    } else {
        let mut plan = plan.clone();
        let order = step["order"].clone();
        // Inline items: one step is one batch of 25; the copy leaves the step out.
        let steps = plan["steps"].as_array_mut().unwrap();
        let at = steps.iter().position(|s| s["order"] == order).unwrap();
        let removed = steps.remove(at);
        let dropped: Vec<String> = removed["request"]["form"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| contact(f["value"].as_str().unwrap()))
            .collect();
        std::fs::write(
            dir.join("plan.json"),
            serde_json::to_vec_pretty(&plan).unwrap(),
        )
        .unwrap();
        dropped
    }
}

/// Writes that take effect and then lose their answer (the twin closes the connection): every
/// write `apply` sends meets it on its first attempt (`--fault-write-first-attempt`, whatever
/// the order of the requests), and `apply` reads the state back instead of sending blindly
/// again. Nothing is done twice (the twin's log: one effect per write but the Consents
/// batches, sent again as documented; one subaccount and one service per customer), nothing
/// is left undone (every number moved and in its service, every lost opt-out blocks in the
/// subaccount), and a rerun on the journal sends nothing.
#[test]
fn writes_whose_connection_drops_after_they_took_effect_are_reconciled_not_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sample = repo_root().join("sample-data/owlie");
    let (plan_path, plan) = audit_sample(d, &sample);
    let twin = start_twin(
        &sample,
        &["--fault-write-first-attempt", "drop-after-effect"],
    );
    let api = Api::new(&twin);
    let out = sample_apply(d, &plan_path, &twin, &CUSTOMERS)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "one run reconciles every lost answer: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let journal = d.join("report/plan.journal.jsonl");
    let entries = journal_entries(&journal);
    let sent: Vec<&Value> = entries.iter().filter(|e| e["status"] == "done").collect();
    let kinds: BTreeSet<&str> = sent.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.len(), 6, "every kind of step sent: {kinds:?}");
    for e in sent {
        let note = e["note"].as_str().unwrap_or_default();
        let expected = match (e["kind"].as_str(), e.get("batch")) {
            // The step line of a re-seed sums up its batches.
            (Some("reseed-opt-outs"), None) => continue,
            (Some("reseed-opt-outs"), Some(_)) => "Consents cannot be read back",
            _ => "the answer was lost",
        };
        assert!(note.contains(expected), "{e}");
    }
    let writes = twin_writes(&api);
    let repeated = repeated_effects(&writes);
    assert!(
        repeated.iter().all(|w| w["kind"] == "consents-bulk"),
        "done twice: {repeated:?}"
    );
    let batches = entries.iter().filter(|e| e.get("batch").is_some()).count();
    assert_eq!(
        repeated.len(),
        2 * batches,
        "each batch sent twice, no more"
    );

    let selected: BTreeSet<&str> = CUSTOMERS.iter().copied().collect();
    let mut accounts: BTreeMap<String, Client> = BTreeMap::new();
    for name in CUSTOMERS {
        let list = api.get(
            &api.parent,
            &format!(
                "/2010-04-01/Accounts.json?FriendlyName={}",
                name.replace(' ', "%20")
            ),
        );
        let found = list["accounts"].as_array().unwrap();
        assert_eq!(found.len(), 1, "{name}: one subaccount");
        let sid = found[0]["sid"].as_str().unwrap();
        accounts.insert(name.to_string(), api.account(sid));
    }
    for step in plan["steps"].as_array().unwrap() {
        let customer = step["customer"].as_str().unwrap();
        if !selected.contains(customer) {
            continue;
        }
        let client = &accounts[customer];
        let account = client.credentials().account_sid.clone();
        match step["kind"].as_str().unwrap() {
            "transfer-number" => {
                let pn = step["number_sid"].as_str().unwrap();
                api.get(
                    client,
                    &format!("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers/{pn}.json"),
                );
            }
            "create-messaging-service" => {
                let name = form_value(step, "FriendlyName");
                let url = client.url(Product::Messaging, "/v1/Services");
                let list = api.runtime.block_on(client.get_json(&url)).unwrap();
                let same: Vec<&Value> = list["services"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| s["friendly_name"] == name)
                    .collect();
                assert_eq!(same.len(), 1, "{customer}: one service {name}");
                let url = client.url(
                    Product::Messaging,
                    &format!(
                        "/v1/Services/{}/PhoneNumbers",
                        same[0]["sid"].as_str().unwrap()
                    ),
                );
                let members = api.runtime.block_on(client.get_json(&url)).unwrap();
                assert!(
                    !members["phone_numbers"].as_array().unwrap().is_empty(),
                    "{customer}: the service holds its numbers"
                );
            }
            _ => {}
        }
    }
    let lost = lost_rows(&d.join("report"));
    let moving: Vec<&LostRow> = lost
        .iter()
        .filter(|r| selected.contains(r.customer.as_str()))
        .collect();
    assert!(!moving.is_empty());
    for r in &moving {
        assert!(
            api.refused_21610(&accounts[&r.customer], &r.number, &r.end_user),
            "{}: a send from {} to {} was not refused: the opt-out was lost",
            r.customer,
            r.number,
            r.end_user
        );
    }

    // The journal resumes: a rerun finds every step settled and sends nothing.
    let before = journal_lines(&journal);
    let writes_before = twin_writes(&api).len();
    sample_apply(d, &plan_path, &twin, &CUSTOMERS)
        .assert()
        .code(0);
    let after: Vec<Value> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .skip(before)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        after
            .iter()
            .all(|e| e["status"] != "sending" && e["status"] != "done"),
        "the rerun sent again: {after:?}"
    );
    assert_eq!(twin_writes(&api).len(), writes_before, "the rerun wrote");
}

/// A customer's own Messaging Service of the name the plan gives the new one is never adopted:
/// not when the create is lost before it took effect (every write's first attempt is dropped
/// unserved: the state read back holds only the customer's service, and `apply` sends the
/// create again), and not when `apply` dies while the create is in flight (the twin holds it
/// unserved; the run is killed and run again: the journal's `sending` line lists the
/// customer's service, and the resumed run creates its own rather than put the moved numbers
/// into the customer's).
#[test]
fn a_lost_create_never_adopts_the_customers_same_named_service() {
    const CUSTOMER: &str = "Egret Clinics";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sample = repo_root().join("sample-data/owlie");
    let (plan_path, plan) = audit_sample(d, &sample);
    let step = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["customer"] == CUSTOMER && s["kind"] == "create-messaging-service")
        .unwrap();
    let name = form_value(step, "FriendlyName").to_string();
    // The customer's own create is the first and second to reach the twin (dropped, then
    // served); apply's is the third (dropped) and fourth (held).
    let twin = start_twin(
        &sample,
        &[
            "--fault-write-first-attempt",
            "drop-before-effect",
            "--fault-write-hold-before-effect",
            "create-service:4",
        ],
    );
    let api = Api::new(&twin);
    // The customer already has its subaccount (apply reuses it) and a service of that name.
    let (_, account) = api.post(
        &api.parent,
        "/2010-04-01/Accounts.json",
        &[("FriendlyName", CUSTOMER)],
    );
    let client = api.account(account["sid"].as_str().unwrap());
    let theirs = loop {
        let url = client.url(Product::Messaging, "/v1/Services");
        let form = [("FriendlyName".to_string(), name.clone())];
        let answer = api
            .runtime
            .block_on(client.write_once(reqwest::Method::POST, &url, &form));
        if let WriteOutcome::Done(v) = answer {
            break v["sid"].as_str().unwrap().to_string();
        }
    };
    let kills = apply_killed_at_each_hold(d, &plan_path, &twin, &api, &[CUSTOMER]);
    assert_eq!(kills.len(), 1, "apply sent the create again after the drop");
    let dead = &kills[0].journal_last;
    assert_eq!(
        (dead["kind"].as_str(), dead["status"].as_str()),
        (Some("create-messaging-service"), Some("sending")),
        "killed while the create was in flight: {dead}"
    );
    assert_eq!(dead["existed"], json!([theirs]));
    let creates: Vec<(bool, String)> = twin_writes(&api)
        .iter()
        .filter(|w| w["kind"] == "create-service")
        .map(|w| {
            (
                w["took_effect"].as_bool().unwrap(),
                w["answer"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let create = |effect: bool, answer: &str| (effect, answer.to_string());
    assert_eq!(
        creates,
        [
            create(false, "dropped"),
            create(true, "answered"),
            create(false, "dropped"),
            create(false, "held"),
            create(true, "answered"),
        ],
        "theirs (dropped, sent again), apply's (dropped, sent again, held), the resumed run's"
    );

    let journal = journal_entries(&d.join("report/plan.journal.jsonl"));
    let created: Vec<&Value> = journal
        .iter()
        .filter(|e| e["kind"] == "create-messaging-service" && e["status"] == "done")
        .collect();
    assert_eq!(created.len(), 1, "{journal:?}");
    let ours = created[0]["captured"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    assert_ne!(ours, &theirs, "the customer's service was adopted");
    let members = |mg: &str| {
        let url = client.url(
            Product::Messaging,
            &format!("/v1/Services/{mg}/PhoneNumbers"),
        );
        let list = api.runtime.block_on(client.get_json(&url)).unwrap();
        list["phone_numbers"].as_array().unwrap().len()
    };
    assert_eq!(
        members(&theirs),
        0,
        "the customer's service got our numbers"
    );
    assert!(members(ours.as_str().unwrap()) > 0);
}
