//! `plan.json` as `apply` and `verify` read it (the format `subaudit plan` writes, see
//! docs/migration.md), the plan's fingerprint, and the `${NAME}` placeholders.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize)]
pub struct PlanFile {
    pub parent_account_sid: String,
    #[serde(default)]
    pub customers: Vec<PlanCustomer>,
    #[serde(default)]
    pub numbers: Vec<PlanNumber>,
    pub steps: Vec<PlanStep>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PlanCustomer {
    pub customer: String,
    pub key: String,
    #[serde(default)]
    pub account_sid: Option<String>,
    #[serde(default)]
    pub reseed_estimate_seconds: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PlanNumber {
    pub number_sid: String,
    pub phone_number: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub target_customer: Option<String>,
    #[serde(default)]
    pub target_account_sid: Option<String>,
    #[serde(default)]
    pub blocked: bool,
    #[serde(default)]
    pub messaging_service_sids: Vec<String>,
}

/// The step kinds and credentials `plan` writes: one enum each for both sides of plan.json.
pub use crate::audit::plan::{Auth, StepKind};

#[derive(Debug, Clone, Deserialize)]
pub struct FormField {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PlanRequest {
    pub method: String,
    pub url: String,
    pub auth: Auth,
    #[serde(default)]
    pub form: Vec<FormField>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Capture {
    pub variable: String,
    pub field: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PlanStep {
    pub order: usize,
    pub kind: StepKind,
    pub customer: String,
    pub customer_key: String,
    #[serde(default)]
    pub number_sid: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub description: String,
    pub request: PlanRequest,
    #[serde(default)]
    pub captures: Vec<Capture>,
    /// create-messaging-service: the parent service whose settings the new one copies.
    #[serde(default)]
    pub source_service_sid: Option<String>,
    /// reseed-opt-outs: the file of Consents items, relative to the plan's folder.
    #[serde(default)]
    pub reseed_file: Option<String>,
    #[serde(default)]
    pub first_line: Option<usize>,
    #[serde(default)]
    pub last_line: Option<usize>,
}

impl PlanStep {
    pub fn form_value(&self, name: &str) -> Option<&str> {
        self.request
            .form
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
    }

    /// The variable a response field goes into (`sid`, `auth_token`).
    pub fn capture(&self, field: &str) -> Option<&str> {
        self.captures
            .iter()
            .find(|c| c.field == field)
            .map(|c| c.variable.as_str())
    }

    /// Every placeholder the request uses.
    pub fn placeholders(&self) -> Vec<String> {
        let mut out = placeholders_in(&self.request.url);
        for f in &self.request.form {
            for v in placeholders_in(&f.value) {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
        }
        out
    }
}

/// A plan read from disk, with what `apply` and `verify` derive from it.
#[derive(Debug, Clone)]
pub struct LoadedPlan {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub plan: PlanFile,
    /// Identifies the plan's content (not a security measure: it tells plans apart).
    pub fingerprint: String,
}

/// The journal beside a plan: `plan.json` -> `plan.journal.jsonl`.
pub fn journal_path(plan: &Path) -> PathBuf {
    let stem = plan
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plan".into());
    plan.with_file_name(format!("{stem}.journal.jsonl"))
}

impl LoadedPlan {
    /// Reads and checks `plan.json`; anything that is not a plan is an input error (exit 2).
    pub fn load(path: &Path) -> Result<LoadedPlan> {
        let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
        let not_a_plan = |why: String| {
            Error::Input(format!(
                "{}: not a subaudit plan ({why}); pass the plan.json that `subaudit plan` or `subaudit audit` wrote",
                path.display()
            ))
        };
        let plan: PlanFile =
            serde_json::from_slice(&bytes).map_err(|e| not_a_plan(e.to_string()))?;
        if !crate::sid::is_sid(&plan.parent_account_sid, "AC") {
            return Err(not_a_plan(format!(
                "parent_account_sid {:?} is not an account sid",
                plan.parent_account_sid
            )));
        }
        let mut last = 0;
        for step in &plan.steps {
            if step.order <= last {
                return Err(not_a_plan(format!(
                    "step order {} does not follow {last}",
                    step.order
                )));
            }
            last = step.order;
            if !matches!(step.request.method.as_str(), "POST" | "DELETE") {
                return Err(not_a_plan(format!(
                    "step {} has method {:?}; a plan step is a POST or a DELETE",
                    step.order, step.request.method
                )));
            }
            if step.kind == StepKind::ReseedOptOuts
                && step.reseed_file.is_none()
                && !step.request.form.iter().any(|f| f.name == "Items")
            {
                return Err(not_a_plan(format!(
                    "reseed step {} has neither a reseed_file nor Items",
                    step.order
                )));
            }
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        Ok(LoadedPlan {
            path: path.to_path_buf(),
            dir,
            plan,
            fingerprint: fingerprint(&bytes),
        })
    }

    /// The Consents items of a reseed step, one JSON object text each, placeholders kept.
    pub fn reseed_items(&self, step: &PlanStep) -> Result<Vec<String>> {
        let Some(file) = &step.reseed_file else {
            return Ok(step
                .request
                .form
                .iter()
                .filter(|f| f.name == "Items")
                .map(|f| f.value.clone())
                .collect());
        };
        let path = self.dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::read(&path, e))?;
        let first = step.first_line.unwrap_or(1);
        let last = step.last_line.unwrap_or(usize::MAX);
        let mut items = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if n < first || n > last || line.trim().is_empty() {
                continue;
            }
            serde_json::from_str::<serde_json::Value>(line).map_err(|e| {
                Error::at_line(&path, n, format!("not a Consents item (JSON object): {e}"))
            })?;
            items.push(line.trim().to_string());
        }
        Ok(items)
    }

    /// The customer's entry by name (case-insensitive) or key.
    pub fn customer_keys(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .plan
            .customers
            .iter()
            .map(|c| (c.key.clone(), c.customer.clone()))
            .collect();
        for s in &self.plan.steps {
            if !out.iter().any(|(k, _)| *k == s.customer_key) {
                out.push((s.customer_key.clone(), s.customer.clone()));
            }
        }
        out
    }
}

/// FNV-1a (64 bits) of the plan's bytes, with their length.
pub fn fingerprint(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}:{}", bytes.len())
}

/// The `${NAME}` placeholders of a text, in order.
pub fn placeholders_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        if is_var_name(name) && !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
        rest = &after[end + 1..];
    }
    out
}

fn is_var_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Replaces every `${NAME}` by its value; the names without a value are the error.
pub fn substitute(
    text: &str,
    value: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) if is_var_name(&after[..end]) => {
                let name = &after[..end];
                match value(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        if !missing.iter().any(|m| m == name) {
                            missing.push(name.to_string());
                        }
                    }
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

/// Whether a variable holds a secret (never journaled, never printed).
pub fn is_secret_var(name: &str) -> bool {
    name.ends_with("_AUTH_TOKEN") || name.ends_with("_SECRET")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_and_substituted() {
        let text =
            "https://x/v1/Services/${C_A_SERVICE_SID}/PhoneNumbers?${C_A_SERVICE_SID}${nope}";
        assert_eq!(placeholders_in(text), vec!["C_A_SERVICE_SID".to_string()]);
        let got = substitute(text, &|n| (n == "C_A_SERVICE_SID").then(|| "MG1".into()));
        assert_eq!(
            got.unwrap(),
            "https://x/v1/Services/MG1/PhoneNumbers?MG1${nope}"
        );
        let missing = substitute("${C_B_BUNDLE_SID}-${C_C}", &|_| None).unwrap_err();
        assert_eq!(missing, vec!["C_B_BUNDLE_SID", "C_C"]);
    }

    #[test]
    fn journal_sits_beside_the_plan() {
        assert_eq!(
            journal_path(Path::new("report/plan.json")),
            PathBuf::from("report/plan.journal.jsonl")
        );
        assert_ne!(fingerprint(b"{}"), fingerprint(b"{ }"));
    }
}
