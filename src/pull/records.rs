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

use crate::client::PageRead;
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
    write_noted(out, resource, raw, &plain(raw), keep_outbound_bodies)
}

/// [`write_record`] for a record already read by [`read_page`]: its note says whether it is
/// copied through whole.
pub fn write_noted(
    out: &mut impl Write,
    resource: Resource,
    raw: &str,
    note: &Option<Plain>,
    keep_outbound_bodies: bool,
) -> std::io::Result<()> {
    match note {
        Some(plain) => write_plain(out, resource, raw, plain, keep_outbound_bodies),
        None => write_members(out, resource, raw, keep_outbound_bodies),
    }
}

/// A record whose text is its line ([`plain`]): copied whole, the outbound body nulled.
fn write_plain(
    out: &mut impl Write,
    resource: Resource,
    raw: &str,
    plain: &Plain,
    keep_outbound_bodies: bool,
) -> std::io::Result<()> {
    let drops_bodies = resource == Resource::Messages && !keep_outbound_bodies;
    match plain
        .body
        .clone()
        .filter(|_| drops_bodies && plain.outbound)
    {
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
    }
}

/// The member by member path: each member copied through when its text is what serializing
/// it again writes, parsed and written again otherwise; the general path for the rest.
fn write_members(
    out: &mut impl Write,
    resource: Resource,
    raw: &str,
    keep_outbound_bodies: bool,
) -> std::io::Result<()> {
    let drops_bodies = resource == Resource::Messages && !keep_outbound_bodies;
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
pub struct Plain {
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

/// Nesting deeper than this is left to serde_json (which refuses past 128 levels, counting
/// the page and the list too).
const MAX_DEPTH: usize = 100;

/// Reads a page of records in one pass (the pull's [`PageReader`]): checks that the page is
/// JSON text, finds each record of the list under `key` and the `next_page_uri`, and notes of
/// each record what [`plain`] would say of it, so the copy needs no second reading. Pages
/// written as Twilio writes them (no white space between tokens, no escapes outside the
/// records) are read here; for anything else (white space, a control character, a `meta`
/// member, a repeated top-level name, nesting past [`MAX_DEPTH`], text that is not JSON) it
/// returns `None` and the client's general reading takes the page. A record with escapes, a
/// float, a repeated name or an `auth_token` is still found, noted `None`: it takes the
/// member by member path, which parses it.
///
/// [`PageReader`]: crate::client::PageReader
pub fn read_page(body: &str, key: &str) -> Option<PageRead<Option<Plain>>> {
    let bytes = body.as_bytes();
    // JSON text holds no raw control character in a string, and this reading takes no white
    // space between tokens: tab, line feed and carriage return are below 0x20, and a space
    // is refused where it stands.
    if has_control_byte(bytes) {
        return None;
    }
    let mut scan = Scan {
        text: body,
        at: 0,
        names: Vec::with_capacity(64),
        plain: true,
        body: None,
        outbound: false,
    };
    scan.eat(b'{')?;
    let mut page_names: Vec<&str> = Vec::new();
    let (mut records, mut next) = (None, None);
    if !scan.eat_if(b'}') {
        loop {
            let (name, escaped) = scan.string()?;
            if escaped || page_names.contains(&name) || name == "meta" {
                return None;
            }
            page_names.push(name);
            scan.eat(b':')?;
            if name == key {
                records = Some(scan.records()?);
            } else if name == "next_page_uri" {
                next = match scan.peek()? {
                    b'"' => match scan.string()? {
                        (_, true) => return None,
                        (link, false) => (!link.is_empty()).then(|| link.to_string()),
                    },
                    _ => {
                        scan.literal("null")?;
                        None
                    }
                };
            } else {
                scan.plain = true;
                scan.value(1)?;
                if !scan.plain {
                    return None;
                }
            }
            if !scan.eat_if(b',') {
                scan.eat(b'}')?;
                break;
            }
        }
    }
    (scan.at == bytes.len()).then_some(())?;
    Some(PageRead {
        records: records?,
        next,
    })
}

/// Whether any byte is below 0x20, 32 bytes at a time without a branch each (a byte-wise
/// loop that stops at the first was 10% of the pull's CPU).
fn has_control_byte(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(32);
    let found = chunks
        .by_ref()
        .any(|chunk| chunk.iter().fold(false, |any, &b| any | (b < 0x20)));
    found || chunks.remainder().iter().any(|&b| b < 0x20)
}

/// The state of [`read_page`]: the place read, and what is known of the record being read.
struct Scan<'a> {
    text: &'a str,
    at: usize,
    /// The member names of every open object of the record (to find a repeated one).
    names: Vec<&'a str>,
    /// Whether the record read so far is its own line ([`plain`]).
    plain: bool,
    /// The place of the record's top-level `body` value (in the page).
    body: Option<std::ops::Range<usize>>,
    outbound: bool,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.eat_if(byte).then_some(())
    }

    fn eat_if(&mut self, byte: u8) -> bool {
        let here = self.peek() == Some(byte);
        self.at += usize::from(here);
        here
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let here = self.text.as_bytes()[self.at..].starts_with(word.as_bytes());
        self.at += word.len();
        here.then_some(())
    }

    /// The records of the list, each with its note.
    fn records(&mut self) -> Option<Vec<(std::ops::Range<usize>, Option<Plain>)>> {
        self.eat(b'[')?;
        let mut out = Vec::with_capacity(1000);
        if self.eat_if(b']') {
            return Some(out);
        }
        loop {
            let start = self.at;
            self.plain = true;
            self.body = None;
            self.outbound = false;
            match self.peek()? {
                b'{' => self.object(1, true)?,
                // Not an object: the general path writes what it is.
                _ => {
                    self.value(1)?;
                    self.plain = false;
                }
            }
            let note = self.plain.then(|| Plain {
                body: self.body.take().map(|b| b.start - start..b.end - start),
                outbound: self.outbound,
            });
            out.push((start..self.at, note));
            if !self.eat_if(b',') {
                self.eat(b']')?;
                return Some(out);
            }
        }
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(depth + 1, false),
            b'[' => self.array(depth + 1),
            b'"' => {
                let (_, escaped) = self.string()?;
                self.plain &= !escaped;
                Some(())
            }
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => self.number(),
        }
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        (depth <= MAX_DEPTH).then_some(())?;
        self.eat(b'[')?;
        if self.eat_if(b']') {
            return Some(());
        }
        loop {
            self.value(depth)?;
            if !self.eat_if(b',') {
                return self.eat(b']');
            }
        }
    }

    /// An object; `top` for the record itself, whose `body` and `direction` are noted.
    fn object(&mut self, depth: usize, top: bool) -> Option<()> {
        (depth <= MAX_DEPTH).then_some(())?;
        self.eat(b'{')?;
        if self.eat_if(b'}') {
            return Some(());
        }
        let first_name = self.names.len();
        loop {
            let (name, escaped) = self.string()?;
            if escaped || name == "auth_token" || self.names[first_name..].contains(&name) {
                self.plain = false;
            }
            self.names.push(name);
            self.eat(b':')?;
            let start = self.at;
            match (top, name) {
                (true, "body") => {
                    // A container for a body is written again by the member path.
                    self.plain &= !matches!(self.peek()?, b'{' | b'[');
                    self.value(depth)?;
                    self.body = Some(start..self.at);
                }
                (true, "direction") if self.peek()? == b'"' => {
                    let (text, escaped) = self.string()?;
                    self.plain &= !escaped;
                    self.outbound = text.starts_with("outbound");
                }
                _ => self.value(depth)?,
            }
            if !self.eat_if(b',') {
                self.names.truncate(first_name);
                return self.eat(b'}');
            }
        }
    }

    /// A string: its text between the quotes, and whether it holds escapes (each checked).
    fn string(&mut self) -> Option<(&'a str, bool)> {
        self.eat(b'"')?;
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut escaped = false;
        loop {
            let at = self.at + memchr::memchr2(b'"', b'\\', &bytes[self.at..])?;
            if bytes[at] == b'"' {
                self.at = at + 1;
                return Some((&self.text[start..at], escaped));
            }
            escaped = true;
            self.at = at + 2;
            match *bytes.get(at + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                b'u' => {
                    let hex = bytes.get(at + 2..at + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.at = at + 6;
                }
                _ => return None,
            }
        }
    }

    /// A number by JSON's grammar; only an integer that [`copies_through`] keeps the record
    /// plain.
    fn number(&mut self) -> Option<()> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let digits = |at: &mut usize| {
            let from = *at;
            while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            (*at > from).then_some(())
        };
        let mut at = start + usize::from(bytes.get(start) == Some(&b'-'));
        match bytes.get(at)? {
            b'0' => at += 1,
            b'1'..=b'9' => digits(&mut at)?,
            _ => return None,
        }
        let mut integer = true;
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            digits(&mut at)?;
            integer = false;
        }
        if matches!(bytes.get(at), Some(b'e' | b'E')) {
            at += 1;
            at += usize::from(matches!(bytes.get(at), Some(b'+' | b'-')));
            digits(&mut at)?;
            integer = false;
        }
        self.at = at;
        self.plain &= integer && copies_through(&self.text[start..at]);
        Some(())
    }
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

    /// The records without white space between tokens (all but two): a page of them is read
    /// in one pass.
    fn compact() -> Vec<&'static str> {
        let compact: Vec<_> = RECORDS
            .iter()
            .copied()
            .filter(|r| !r.contains(" : ") && !r.contains(" ]"))
            .collect();
        assert_eq!(compact.len(), RECORDS.len() - 2);
        compact
    }

    /// A page of the 2010 API around `records`.
    fn page_of(records: &[&str], next: &str) -> String {
        format!(
            r#"{{"end":1,"first_page_uri":"/x?Page=0","messages":[{}],"next_page_uri":{next},"page":0,"page_size":1000,"previous_page_uri":null,"start":0,"uri":"/x"}}"#,
            records.join(",")
        )
    }

    #[test]
    fn a_page_is_read_in_one_pass_noting_what_plain_says_of_each_record() {
        let records = compact();
        let page = page_of(&records, r#""/next?Page=1""#);
        let read = read_page(&page, "messages").expect("read in one pass");
        assert_eq!(read.next.as_deref(), Some("/next?Page=1"));
        assert_eq!(read.records.len(), records.len());
        for ((range, note), text) in read.records.iter().zip(&records) {
            assert_eq!(&page[range.clone()], *text);
            assert_eq!(*note, plain(text), "{text}");
        }
        // The same places as the general reading finds, whatever the records hold.
        let general: Value = serde_json::from_str(&page).unwrap();
        assert_eq!(general["messages"].as_array().unwrap().len(), records.len());
        // Not records: noted for the general path. No next page: null or empty.
        for next in ["null", r#""""#] {
            let page = page_of(&["1", r#""x""#, "[]", "{}"], next);
            let read = read_page(&page, "messages").unwrap();
            assert_eq!(read.next, None);
            let notes: Vec<_> = read.records.into_iter().map(|(_, n)| n).collect();
            assert_eq!(notes, [None, None, None, plain("{}")]);
        }
        assert!(read_page(r#"{"messages":[]}"#, "messages").is_some_and(|r| r.records.is_empty()));
    }

    #[test]
    fn a_control_byte_is_found_wherever_it_stands() {
        let clean = vec![b' '; 100];
        assert!(!has_control_byte(&clean));
        for at in 0..clean.len() {
            for byte in [0x00, 0x09, 0x0a, 0x1f] {
                let mut text = clean.clone();
                text[at] = byte;
                assert!(has_control_byte(&text), "{byte:#x} at {at}");
            }
        }
    }

    #[test]
    fn a_page_it_cannot_vouch_for_goes_to_the_general_reading() {
        // Valid JSON, left to the general reading: white space, escapes outside the
        // records, `meta`, a repeated top-level name, no list, the list not an array, deep
        // nesting, a link that is not a string.
        let deep = format!("{}1{}", "[".repeat(120), "]".repeat(120));
        let valid = [
            r#"{"messages": []}"#.to_string(),
            "{\"messages\":[]}\n".to_string(),
            "{\"messages\":[{\"a\":\"x\ty\"}]}"
                .replace('\t', "\\t")
                .replace("x\\ty", "x\ty"),
            r#"{"uri":"/a\/b","messages":[]}"#.to_string(),
            r#"{"meta":{"next_page_url":null},"messages":[]}"#.to_string(),
            r#"{"messages":[],"messages":[]}"#.to_string(),
            r#"{"other":[]}"#.to_string(),
            r#"{"messages":{}}"#.to_string(),
            format!(r#"{{"messages":[{{"a":{deep}}}]}}"#),
            r#"{"messages":[],"next_page_uri":1}"#.to_string(),
            "[]".to_string(),
        ];
        for page in &valid {
            if serde_json::from_str::<Value>(page).is_err() {
                // Only the tab case is not JSON (a raw control character in a string).
                assert!(page.contains('\t'), "{page}");
            }
            assert!(read_page(page, "messages").is_none(), "{page}");
        }
        // Not JSON at all: never read as a page.
        let broken = [
            "",
            "{",
            r#"{"messages":[]}x"#,
            r#"{"messages":[],}"#,
            r#"{"messages":[1,]}"#,
            r#"{"messages":[{"a":1,}]}"#,
            r#"{"messages":[{"a":01}]}"#,
            r#"{"messages":[{"a":-}]}"#,
            r#"{"messages":[{"a":1.}]}"#,
            r#"{"messages":[{"a":1e}]}"#,
            r#"{"messages":[{"a":.5}]}"#,
            r#"{"messages":[{"a":tru}]}"#,
            r#"{"messages":[{"a":nullx}]}"#,
            r#"{"messages":[{"a":"x\q"}]}"#,
            r#"{"messages":[{"a":"x\u12"}]}"#,
            r#"{"messages":[{"a":"x\u12g4"}]}"#,
            r#"{"messages":[{"a":"x}]}"#,
            r#"{"messages":[{"a"1}]}"#,
            r#"{"messages":[{1:1}]}"#,
            r#"{"messages":[{"a":1]}"#,
            r#"{"messages":[{"a":[1}]}"#,
            r#"{"messages":[{"a":1}}"#,
            r#"{"messages":[{"a":1}],"next_page_uri":nul}"#,
            r#"{"messages":[{"a":1}],"x":}"#,
        ];
        for page in broken {
            assert!(serde_json::from_str::<Value>(page).is_err(), "{page}");
            assert!(read_page(page, "messages").is_none(), "{page}");
        }
        // Valid numbers and escapes in a record keep the page, the record noted for the
        // member path.
        for record in [
            r#"{"a":-0.5e+3}"#,
            r#"{"a":0}"#,
            r#"{"a":"\u00e9\"\\\/\b\f\n\r\t"}"#,
            r#"{"a":1E5}"#,
        ] {
            let page = page_of(&[record], "null");
            serde_json::from_str::<Value>(&page).unwrap();
            let read = read_page(&page, "messages").expect(record);
            assert_eq!(read.records[0].1, plain(record), "{record}");
        }
    }

    #[test]
    fn a_noted_record_is_written_as_write_record_writes_it() {
        let page = page_of(&compact(), "null");
        let read = read_page(&page, "messages").unwrap();
        for (range, note) in &read.records {
            let text = &page[range.clone()];
            for resource in [Resource::Messages, Resource::Accounts] {
                for keep in [false, true] {
                    let mut out = Vec::new();
                    write_noted(&mut out, resource, text, note, keep).unwrap();
                    assert_eq!(
                        String::from_utf8(out).unwrap(),
                        by_raw(resource, text, keep)
                    );
                }
            }
        }
    }
}
