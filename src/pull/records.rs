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
    let drops_bodies = resource == Resource::Messages && !keep_outbound_bodies;
    if let Some(plain) = plain(raw) {
        return match plain.body.filter(|_| drops_bodies && plain.outbound) {
            Some(body) => {
                out.write_all(&raw.as_bytes()[..body.start])?;
                out.write_all(b"null")?;
                out.write_all(&raw.as_bytes()[body.end..])?;
                out.write_all(b"\n")
            }
            None => {
                out.write_all(raw.as_bytes())?;
                out.write_all(b"\n")
            }
        };
    }
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
    let drop_body = drops_bodies
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

/// What [`plain`] found in a record whose text is already its line.
#[derive(Debug, PartialEq)]
struct Plain {
    /// The place of the top-level `body` value, when there is one and it is not a container.
    body: Option<std::ops::Range<usize>>,
    /// The top-level `direction` is a string starting with `outbound`.
    outbound: bool,
}

/// Whether a record's text is, byte for byte, what parsing and serializing it again writes,
/// read in one pass without building anything: no white space between tokens, strings
/// without escapes, integers that fit 64 bits ([`copies_through`]), and at no depth an
/// `auth_token` or a repeated member name. Twilio's records are written that way, so they
/// are copied through whole (the outbound body nulled in place). `None` for anything else
/// (including text that is not JSON): the member by member path takes it.
fn plain(raw: &str) -> Option<Plain> {
    let bytes = raw.as_bytes();
    // Each open container: whether it is an object, and where its member names begin in
    // `names` (the names of every open object, one allocation for the record).
    let mut open: Vec<(bool, usize)> = Vec::with_capacity(8);
    let mut names: Vec<&str> = Vec::with_capacity(32);
    let mut expect_name = false;
    let mut member: Option<&str> = None;
    let mut found = Plain {
        body: None,
        outbound: false,
    };
    let mut i = 0;
    while i < bytes.len() {
        let at_top = open.len() == 1;
        match bytes[i] {
            b'{' | b'[' => {
                if open.is_empty() && (i > 0 || bytes[i] != b'{') {
                    return None;
                }
                if at_top && member == Some("body") {
                    return None;
                }
                let object = bytes[i] == b'{';
                open.push((object, names.len()));
                expect_name = object;
                i += 1;
            }
            b'}' | b']' => {
                let (_, first_name) = open.pop()?;
                names.truncate(first_name);
                expect_name = false;
                i += 1;
                if open.is_empty() {
                    return (i == bytes.len()).then_some(found);
                }
            }
            b',' => {
                expect_name = matches!(open.last(), Some((true, _)));
                i += 1;
            }
            b':' => i += 1,
            b'"' => {
                let end = i + 1 + memchr::memchr2(b'"', b'\\', &bytes[i + 1..])?;
                if bytes[end] == b'\\' {
                    return None;
                }
                let text = &raw[i + 1..end];
                if expect_name {
                    let &(object, first_name) = open.last()?;
                    if !object || text == "auth_token" || names[first_name..].contains(&text) {
                        return None;
                    }
                    names.push(text);
                    if at_top {
                        member = Some(text);
                    }
                    expect_name = false;
                } else if at_top {
                    match member {
                        Some("body") => found.body = Some(i..end + 1),
                        Some("direction") => found.outbound = text.starts_with("outbound"),
                        _ => {}
                    }
                }
                i = end + 1;
            }
            b'n' | b't' | b'f' | b'-' | b'0'..=b'9' => {
                let end = bytes[i..]
                    .iter()
                    .position(
                        |b| !matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'+' | b'.' | b'E'),
                    )
                    .map_or(bytes.len(), |n| i + n);
                let token = &raw[i..end];
                let exact = match bytes[i] {
                    b'n' | b't' | b'f' => matches!(token, "null" | "true" | "false"),
                    _ => token.bytes().any(|b| b.is_ascii_digit()) && copies_through(token),
                };
                if !exact {
                    return None;
                }
                if at_top && member == Some("body") {
                    found.body = Some(i..end);
                }
                i = end;
            }
            _ => return None,
        }
    }
    None
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
        // Written as Twilio writes them (the copied-through path): nested objects and
        // arrays, every kind of scalar, the body before or after the direction.
        r#"{"account_sid":"AC1","body":"Your code is 42","direction":"outbound-api","error_code":null,"num_media":"0","price":"-0.00790","flag":true,"n":-12,"subresource_uris":{"media":"/M.json","list":[1,[],{},null]},"uri":"/x"}"#,
        r#"{"direction":"outbound-reply","sid":"SM9","body":"late body"}"#,
        r#"{"direction":"inbound","body":"STOP","error_code":21610}"#,
        r#"{"body":12,"direction":"outbound-api"}"#,
        r#"{"body":null,"direction":"outbound-api"}"#,
        // Close to it, but not: a repeated name in a nested object, a secret in an array, a
        // float or a big number nested, an object for a body, a number that is not one.
        r#"{"sid":"SM10","x":{"a":1,"a":2},"direction":"inbound"}"#,
        r#"{"sid":"SM11","x":[{"auth_token":"s"}],"direction":"inbound"}"#,
        r#"{"sid":"SM12","x":{"p":1.50},"y":[123456789012345678901],"direction":"inbound"}"#,
        r#"{"sid":"SM13","body":{"text":"hi"},"direction":"outbound-api"}"#,
        r#"{"sid":"SM14","x":[1,2 ],"direction":"inbound"}"#,
    ];

    #[test]
    fn records_written_as_twilio_writes_them_are_copied_through_whole() {
        // A message as the list returns it takes the one-pass path, its outbound body found.
        let message = RECORDS[10];
        let found = plain(message).expect("copied through");
        assert!(found.outbound);
        assert_eq!(&message[found.body.unwrap()], r#""Your code is 42""#);
        for text in [RECORDS[13], RECORDS[14]] {
            let body = plain(text).unwrap().body.unwrap();
            assert_eq!(&text[body.clone()], &text[8..body.end], "{text}");
        }
        assert!(plain(RECORDS[7]).is_some_and(|p| p.outbound));
        // Whatever serializing again would change, or a secret, takes the member path.
        for text in &RECORDS[..7] {
            assert_eq!(plain(text), None, "{text}");
        }
        for text in &RECORDS[15..] {
            assert_eq!(plain(text), None, "{text}");
        }
        let not_json = [
            "",
            "[]",
            "{",
            r#"{"a":nul}"#,
            r#"{"a":-}"#,
            r#"{"a":1}x"#,
            r#"{"a":"x"}{"b":1}"#,
        ];
        for text in not_json {
            assert_eq!(plain(text), None, "{text}");
        }
    }

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
