//! Writes a record received from Twilio as one snapshot line, sanitized by the rule of
//! [`sanitize_record`] (no `auth_token` anywhere; outbound message bodies null unless kept),
//! without building a `Value` of the whole record: the members are copied through as
//! received when their text is already what serializing the parsed record would write, and
//! parsed and written again otherwise. The line is byte for byte the one
//! `serde_json::to_writer` of the sanitized `Value` writes; the tests hold the two together.

use std::borrow::Cow;
use std::io::Write;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::snapshot::{sanitize_record, Resource};

/// A record's members in their order, values unparsed. A member name with escapes cannot be
/// borrowed: such a record (Twilio writes none) takes the general path.
struct Members<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(24));
                while let Some(key) = map.next_key::<&'de str>()? {
                    out.push((key, map.next_value()?));
                }
                Ok(Members(out))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// Whether a value's text is exactly what serde_json writes for it once parsed: `null`,
/// `true`, `false`, an integer that fits 64 bits, a string without escapes. Floats, escaped
/// strings, objects and arrays are parsed and written again (rare in Twilio's records, and
/// nested objects may hold an `auth_token`).
fn copies_through(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    match bytes.first() {
        Some(b'"') => !bytes.contains(&b'\\'),
        Some(b'n' | b't' | b'f') => true,
        Some(b'-' | b'0'..=b'9') => {
            let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
            digits.len() <= 18 && digits.iter().all(u8::is_ascii_digit) && raw != "-0"
        }
        _ => false,
    }
}

/// Writes `raw` (one record's JSON text) sanitized, then a newline. An error names what is
/// wrong with the record.
pub fn write_record(
    out: &mut impl Write,
    resource: Resource,
    raw: &str,
    keep_outbound_bodies: bool,
) -> std::io::Result<()> {
    let members: Members = match serde_json::from_str(raw) {
        Ok(m) => m,
        // Not an object, or a name with escapes: the general path.
        Err(_) => return write_value(out, resource, raw, keep_outbound_bodies),
    };
    let members = members.0;
    // A repeated name (serde_json keeps the last value in the first one's place) or a
    // top-level token (removing it moves the last member into its place): the general path.
    let general = members.iter().enumerate().any(|(i, (k, _))| {
        *k == "auth_token" || members[..i].iter().any(|(earlier, _)| earlier == k)
    });
    if general {
        return write_value(out, resource, raw, keep_outbound_bodies);
    }
    let drop_body = resource == Resource::Messages
        && !keep_outbound_bodies
        && members.iter().any(|(k, v)| {
            *k == "direction"
                && serde_json::from_str::<Cow<str>>(v.get())
                    .is_ok_and(|d| d.starts_with("outbound"))
        });
    out.write_all(b"{")?;
    let mut first = true;
    for (key, value) in &members {
        if !first {
            out.write_all(b",")?;
        }
        first = false;
        // A name borrowed from the text has no escapes, and JSON text holds no raw control
        // characters: quoted as it is, it is what serializing it writes.
        out.write_all(b"\"")?;
        out.write_all(key.as_bytes())?;
        out.write_all(b"\":")?;
        if drop_body && *key == "body" {
            out.write_all(b"null")?;
        } else if copies_through(value.get()) {
            out.write_all(value.get().as_bytes())?;
        } else {
            let mut parsed: Value = serde_json::from_str(value.get()).map_err(invalid)?;
            // The same rule, applied to a member (only `auth_token` reaches inside).
            sanitize_record(Resource::Accounts, &mut parsed, true);
            serde_json::to_writer(&mut *out, &parsed).map_err(invalid)?;
        }
    }
    out.write_all(b"}\n")
}

fn invalid(e: serde_json::Error) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}

/// The general path: parse, sanitize, write.
fn write_value(
    out: &mut impl Write,
    resource: Resource,
    raw: &str,
    keep_outbound_bodies: bool,
) -> std::io::Result<()> {
    let mut value: Value = serde_json::from_str(raw).map_err(invalid)?;
    sanitize_record(resource, &mut value, keep_outbound_bodies);
    serde_json::to_writer(&mut *out, &value).map_err(invalid)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line the general path writes.
    fn by_value(resource: Resource, text: &str, keep: bool) -> String {
        let mut value: Value = serde_json::from_str(text).unwrap();
        sanitize_record(resource, &mut value, keep);
        format!("{}\n", serde_json::to_string(&value).unwrap())
    }

    fn by_raw(resource: Resource, text: &str, keep: bool) -> String {
        let mut out = Vec::new();
        write_record(&mut out, resource, text, keep).unwrap();
        String::from_utf8(out).unwrap()
    }

    const RECORDS: &[&str] = &[
        // Outbound: the body goes, whatever it holds.
        r#"{"sid":"SM1","body":"hello \"you\"","direction":"outbound-api","error_code":21610,"price":"-0.00790","num_segments":"2","subresource_uris":{"media":"/x.json"}}"#,
        // Inbound keeps its body, escapes and all.
        r#"{"sid":"SM2","body":"St\u00f6p\n","direction":"inbound","error_code":null,"price":null}"#,
        r#"{"sid":"SM3","body":"STOP","direction":"inbound","price":-0.0079,"big":123456789012345678901,"neg":-12,"z":-0,"e":1e3}"#,
        // Secrets at the top and nested, in arrays too; spaces between tokens.
        r#"{ "sid" : "AC1", "auth_token" : "secret", "nested" : {"auth_token":"s2","keep":[1, {"auth_token":"s3"}]}, "uri": "/x" }"#,
        r#"{"sid":"SM8","direction":"inbound","sub":{"a":1,"auth_token":"s","b":2,"c":[]},"uri":"/y"}"#,
        // An escaped member name, a repeated one, unicode text.
        r#"{"sid":"SM4","dire\u0063tion":"outbound-call","body":"x"}"#,
        r#"{"sid":"SM5","body":"a","body":"b","direction":"inbound"}"#,
        r#"{"sid":"SM6","body":"ünïcødé ✓","direction":"outbound-reply","flag":true,"other":false}"#,
        r#"{"sid":"SM7","direction":null,"body":"kept"}"#,
        r#"{}"#,
    ];

    #[test]
    fn lines_are_those_of_the_value_path_byte_for_byte() {
        for text in RECORDS {
            for resource in [Resource::Messages, Resource::Accounts] {
                for keep in [false, true] {
                    assert_eq!(
                        by_raw(resource, text, keep),
                        by_value(resource, text, keep),
                        "{resource:?} keep={keep}: {text}"
                    );
                }
            }
        }
    }

    #[test]
    fn outbound_bodies_and_tokens_never_reach_the_line() {
        let line = by_raw(Resource::Messages, RECORDS[0], false);
        assert!(line.contains(r#""body":null"#), "{line}");
        let line = by_raw(Resource::Accounts, RECORDS[3], false);
        assert!(
            !line.contains("auth_token") && !line.contains("secret"),
            "{line}"
        );
        let line = by_raw(Resource::Messages, RECORDS[1], false);
        assert!(line.contains("St\u{f6}p"), "{line}");
    }
}
