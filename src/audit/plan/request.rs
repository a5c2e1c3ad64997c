//! The requests a plan's steps send, as templates whose placeholders stay apart from data.

use std::fmt;

use serde::{Serialize, Serializer};

/// A value known only while the plan runs, or one the user must supply.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlaceholderSource {
    /// Read from an earlier step's response.
    Captured,
    /// Read with the parent's credentials when the script runs (a subaccount's auth token).
    Fetched,
    /// The user creates the resource and exports its sid before running the customer's part.
    Required,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placeholder {
    /// A shell variable name; requests write it as `${NAME}`.
    pub name: String,
    pub customer: String,
    pub source: PlaceholderSource,
    pub description: String,
}

/// Text with placeholders, kept apart from literal text so that a renderer can never mistake
/// data (a customer named `${TWILIO_AUTH_TOKEN}`) for a variable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Var(String),
}

impl Template {
    pub fn text(text: impl Into<String>) -> Template {
        Template {
            parts: vec![Part::Text(text.into())],
        }
    }
    pub fn var(name: impl Into<String>) -> Template {
        Template {
            parts: vec![Part::Var(name.into())],
        }
    }
    pub fn push_text(mut self, text: impl Into<String>) -> Template {
        self.parts.push(Part::Text(text.into()));
        self
    }
    pub fn push_var(mut self, name: impl Into<String>) -> Template {
        self.parts.push(Part::Var(name.into()));
        self
    }
    pub fn push_parts(mut self, other: &Template) -> Template {
        self.parts.extend(other.parts.iter().cloned());
        self
    }
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Text(_) => None,
        })
    }
}

impl fmt::Display for Template {
    /// Placeholders as `${NAME}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(t) => f.write_str(t)?,
                Part::Var(v) => write!(f, "${{{v}}}")?,
            }
        }
        Ok(())
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Whose credentials a step's request uses, as plan.json names it (read back by `apply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    /// The parent's credentials (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN).
    Parent,
    /// The gaining subaccount's sid and auth token.
    Subaccount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FormField {
    pub name: &'static str,
    pub value: Template,
}

/// The exact HTTP request a step sends (form-encoded body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    pub method: &'static str,
    pub url: Template,
    pub auth: Auth,
    /// In order; a name may repeat (Consents Bulk's `Items`).
    pub form: Vec<FormField>,
}

impl Request {
    /// Every placeholder the request uses, each once, in order of appearance.
    pub fn placeholders(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let all = self
            .url
            .vars()
            .chain(self.form.iter().flat_map(|f| f.value.vars()));
        for v in all {
            if !out.iter().any(|o| o == v) {
                out.push(v.to_string());
            }
        }
        out
    }
}

/// A response field a later step needs, and the variable it goes into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capture {
    pub variable: String,
    /// The JSON field of the response.
    pub field: &'static str,
}
