//! The fast path for reading one message line: a single scan of the JSON object that picks out
//! the fields of [`MessageRef`] as slices of the line and checks the syntax of everything else.
//!
//! It accepts only the common shape (no escapes in any string, text fields as strings or null,
//! `error_code` as an integer or null, no repeated field the record reads) and answers `None`
//! for anything else. The caller then parses that line with serde_json, which gives the same
//! record or the error naming the line: the fast path never changes what is accepted, only how
//! quickly the usual lines are read (profiling showed serde's generic path, with its buffered
//! `error_code` and `price` values, as the largest cost of reading the messages).

use std::borrow::Cow;

use crate::model::MessageRef;

/// Nesting deeper than this is left to serde_json (whose own limit is 128 levels).
const MAX_DEPTH: usize = 100;

/// Reads `line` (one JSON object) on the fast path; `None` leaves it to serde_json.
pub fn parse(line: &str) -> Option<MessageRef<'_>> {
    let mut quotes = [0u32; MAX_QUOTES];
    let count = quote_positions(line.as_bytes(), &mut quotes)?;
    let mut s = Scanner {
        text: line,
        bytes: line.as_bytes(),
        at: 0,
        quotes: &quotes[..count],
        next_quote: 0,
    };
    let mut f = Fields::default();
    s.space();
    s.expect(b'{')?;
    s.space();
    if s.peek() == Some(b'}') {
        s.at += 1;
    } else {
        loop {
            s.space();
            let key = s.string()?;
            s.space();
            s.expect(b':')?;
            s.space();
            f.read(key, &mut s)?;
            s.space();
            match s.bump()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.space();
    if s.at != s.bytes.len() {
        return None;
    }
    f.finish()
}

/// The text fields of [`MessageRef`] are numbered 0 to 12 (see `Fields::read`), then these.
const TEXT_FIELDS: usize = 13;
const PRICE: usize = TEXT_FIELDS;
const ERROR_CODE: usize = PRICE + 1;

#[derive(Default)]
struct Fields<'a> {
    /// Bit per field already read: a repeated field is serde's error to report.
    seen: u32,
    text: [Option<&'a str>; TEXT_FIELDS],
    price: Option<&'a str>,
    error_code: Option<i64>,
}

impl<'a> Fields<'a> {
    fn read(&mut self, key: &str, s: &mut Scanner<'a, '_>) -> Option<()> {
        let Some(field) = field_of(key.as_bytes()) else {
            // Most values the record does not read are strings or null: skipped here, without
            // the general skip's call.
            return match s.peek()? {
                b'"' => s.string().map(drop),
                b'n' => s.literal(b"null"),
                _ => s.skip_value(0),
            };
        };
        if self.seen & (1 << field) != 0 {
            return None;
        }
        self.seen |= 1 << field;
        match field {
            // serde keeps a price's text; blank text is no price. A JSON number goes through
            // f64 there: left to it.
            PRICE => self.price = s.text_or_null()?.filter(|p| !p.trim().is_empty()),
            ERROR_CODE => self.error_code = s.integer_or_null()?,
            i => self.text[i] = s.text_or_null()?,
        }
        Some(())
    }

    fn finish(self) -> Option<MessageRef<'a>> {
        // Field by field: `array::map` over the thirteen texts cost ~120 instructions a line.
        let [sid, account_sid, messaging_service_sid, from, to, body, direction, status, num_segments, num_media, price_unit, date_sent, date_created] =
            self.text;
        let text = |v: Option<&'a str>| v.map(Cow::Borrowed);
        Some(MessageRef {
            // A record without a sid is serde's error to report.
            sid: Cow::Borrowed(sid?),
            account_sid: text(account_sid),
            messaging_service_sid: text(messaging_service_sid),
            from: text(from),
            to: text(to),
            body: text(body),
            direction: text(direction),
            status: text(status),
            error_code: self.error_code,
            num_segments: text(num_segments),
            num_media: text(num_media),
            price: text(self.price),
            price_unit: text(price_unit),
            date_sent: text(date_sent),
            date_created: text(date_created),
        })
    }
}

/// The field number of a key (see `Fields::read`), `None` for a key the record does not read.
/// Keys are told apart by length first, then compared as fixed-size arrays (a few integer
/// comparisons, where matching `&str`s called memcmp for every key of every line).
fn field_of(key: &[u8]) -> Option<usize> {
    fn is<const N: usize>(key: &[u8], name: &[u8; N]) -> bool {
        <&[u8; N]>::try_from(key).is_ok_and(|k| k == name)
    }
    let field = match key.len() {
        2 if is(key, b"to") => 4,
        3 if is(key, b"sid") => 0,
        4 if is(key, b"from") => 3,
        4 if is(key, b"body") => 5,
        5 if is(key, b"price") => PRICE,
        6 if is(key, b"status") => 7,
        9 if is(key, b"direction") => 6,
        9 if is(key, b"num_media") => 9,
        9 if is(key, b"date_sent") => 11,
        10 if is(key, b"price_unit") => 10,
        10 if is(key, b"error_code") => ERROR_CODE,
        11 if is(key, b"account_sid") => 1,
        12 if is(key, b"num_segments") => 8,
        12 if is(key, b"date_created") => 12,
        21 if is(key, b"messaging_service_sid") => 2,
        _ => return None,
    };
    Some(field)
}

/// Quotes a line may hold for the fast path (128 strings); a line with more is left to serde.
const MAX_QUOTES: usize = 256;

/// The positions of the quotes of `bytes`, in order, into `out`, and how many there are.
/// None (the line is left to serde) when the line holds a backslash (an escape) or a control
/// character (an error inside a string; outside one only tabs and CRs are white space, which
/// serde reads as well), or more than `MAX_QUOTES` quotes. In a line without escapes every
/// quote opens or closes a string: the scanner takes each string's end from here instead of
/// looking for it byte by byte (16 bytes at a time, see `masks16`).
fn quote_positions(bytes: &[u8], out: &mut [u32; MAX_QUOTES]) -> Option<usize> {
    u32::try_from(bytes.len()).ok()?;
    let mut count = 0;
    let mut push = |base: usize, chunk: &[u8; 16]| -> Option<()> {
        let (mut quotes, stops) = masks16(chunk);
        if stops != 0 {
            return None;
        }
        while quotes != 0 {
            // Fits: the line's length does.
            *out.get_mut(count)? = (base + quotes.trailing_zeros() as usize) as u32;
            count += 1;
            quotes &= quotes - 1;
        }
        Some(())
    };
    let mut chunks = bytes.chunks_exact(16);
    let mut base = 0;
    for chunk in &mut chunks {
        push(base, chunk.try_into().expect("16 bytes"))?;
        base += 16;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        // Padded with spaces: neither quotes nor stops.
        let mut last = [b' '; 16];
        last[..rest.len()].copy_from_slice(rest);
        push(base, &last)?;
    }
    Some(count)
}

/// For 16 bytes: bit i of the first mask is set when byte i is a quote, of the second when it
/// is a backslash or a control character. SSE2 (every x86-64 has it) through safe_arch's safe
/// wrappers: one comparison covers 16 bytes.
#[cfg(target_arch = "x86_64")]
fn masks16(bytes: &[u8; 16]) -> (u16, u16) {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, min_u8_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    let v = load_unaligned_m128i(bytes);
    let splat = |b: u8| set_splat_i8_m128i(b as i8);
    let quotes = cmp_eq_mask_i8_m128i(v, splat(b'"'));
    let backslashes = cmp_eq_mask_i8_m128i(v, splat(b'\\'));
    // Below 0x20 (unsigned): the byte equals its minimum with 0x1f.
    let controls = cmp_eq_mask_i8_m128i(min_u8_m128i(v, splat(0x1f)), v);
    let stops = bitor_m128i(backslashes, controls);
    // The mask holds 16 bits: the casts keep them all.
    (
        move_mask_i8_m128i(quotes) as u16,
        move_mask_i8_m128i(stops) as u16,
    )
}

/// The same masks, a byte at a time, where SSE2 is not there.
#[cfg(not(target_arch = "x86_64"))]
fn masks16(bytes: &[u8; 16]) -> (u16, u16) {
    let (mut quotes, mut stops) = (0u16, 0u16);
    for (i, &b) in bytes.iter().enumerate() {
        quotes |= u16::from(b == b'"') << i;
        stops |= u16::from(b < 0x20 || b == b'\\') << i;
    }
    (quotes, stops)
}

struct Scanner<'a, 'q> {
    /// The line; `bytes` is the same line, scanned byte by byte. Values are sliced from
    /// `text`, which is UTF-8 already: no second check per field.
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// Where the line's quotes are (`quote_positions`), and the next one not yet read.
    quotes: &'q [u32],
    next_quote: usize,
}

impl<'a> Scanner<'a, '_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.bump()? == byte).then_some(())
    }

    /// JSON's white space.
    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\t' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string (the line has no escapes or control characters), as a slice of the line. Its
    /// quotes are the next two of the line: every earlier quote was read as part of a string,
    /// since nothing else the scanner accepts holds one.
    fn string(&mut self) -> Option<&'a str> {
        let open = *self.quotes.get(self.next_quote)? as usize;
        if open != self.at {
            return None;
        }
        let close = *self.quotes.get(self.next_quote + 1)? as usize;
        self.next_quote += 2;
        self.at = close + 1;
        // Both ends are next to ASCII quotes, so on character boundaries.
        self.text.get(open + 1..close)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    fn text_or_null(&mut self) -> Option<Option<&'a str>> {
        match self.peek()? {
            b'"' => self.string().map(Some),
            b'n' => self.literal(b"null").map(|()| None),
            _ => None,
        }
    }

    /// An integer that fits an i64, or null; a fraction, exponent or text is left to serde.
    fn integer_or_null(&mut self) -> Option<Option<i64>> {
        match self.peek()? {
            b'n' => self.literal(b"null").map(|()| None),
            b'-' | b'0'..=b'9' => {
                let start = self.at;
                self.number()?;
                let text = self.text.get(start..self.at)?;
                if text.contains(['.', 'e', 'E']) {
                    return None;
                }
                text.parse().ok().map(Some)
            }
            _ => None,
        }
    }

    /// A JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.bump()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }

    /// Checks and skips a value the record does not read.
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'n' => self.literal(b"null"),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'-' | b'0'..=b'9' => self.number(),
            b'{' => {
                self.at += 1;
                self.space();
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.space();
                    self.string()?;
                    self.space();
                    self.expect(b':')?;
                    self.space();
                    self.skip_value(depth + 1)?;
                    self.space();
                    match self.bump()? {
                        b',' => continue,
                        b'}' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.at += 1;
                self.space();
                if self.peek() == Some(b']') {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.space();
                    self.skip_value(depth + 1)?;
                    self.space();
                    match self.bump()? {
                        b',' => continue,
                        b']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path either declines or agrees with serde_json, field for field.
    fn agrees(line: &str) -> bool {
        let fast = parse(line);
        let slow = serde_json::from_str::<MessageRef>(line);
        match (&fast, &slow) {
            (Some(f), Ok(s)) => {
                assert_eq!(f, s, "{line}");
                true
            }
            (Some(f), Err(e)) => panic!("fast path accepted {line:?} as {f:?}; serde: {e}"),
            (None, _) => false,
        }
    }

    #[test]
    fn quotes_are_found_where_the_byte_by_byte_scan_finds_them() {
        let naive = |b: &[u8]| -> Option<Vec<u32>> {
            if b.iter().any(|&c| c == b'\\' || c < 0x20) {
                return None;
            }
            let quotes: Vec<u32> = (0..b.len() as u32)
                .filter(|&i| b[i as usize] == b'"')
                .collect();
            (quotes.len() <= MAX_QUOTES).then_some(quotes)
        };
        let fast = |b: &[u8]| {
            let mut out = [0u32; MAX_QUOTES];
            quote_positions(b, &mut out).map(|n| out[..n].to_vec())
        };
        // Every position and kind of byte, around the 16-byte steps and the padded tail,
        // next to bytes a signed comparison could misread (0x1f, 0x20, 0x7f, 0x80, 0xff).
        for len in 0..50 {
            for fill in [b'a', 0x20, 0x21, 0x7f, 0x80, 0xe9, 0xff] {
                let base = vec![fill; len];
                assert_eq!(fast(&base), naive(&base), "{fill:#x} x{len}");
                for at in 0..len {
                    for stop in [b'"', b'\\', 0x00, 0x1f, b'\n', b'\t'] {
                        let mut bytes = base.clone();
                        bytes[at] = stop;
                        assert_eq!(fast(&bytes), naive(&bytes), "{bytes:?}");
                        if at + 17 < len {
                            bytes[at + 17] = b'"';
                            assert_eq!(fast(&bytes), naive(&bytes), "{bytes:?}");
                        }
                    }
                }
            }
        }
        // Too many quotes for the fast path: left to serde.
        let many = "\"\"".repeat(MAX_QUOTES / 2);
        assert_eq!(fast(many.as_bytes()).map(|q| q.len()), Some(MAX_QUOTES));
        assert_eq!(fast(format!("{many}\"").as_bytes()), None);
    }

    #[test]
    fn lines_with_a_byte_changed_added_or_removed_are_declined_or_read_as_serde_reads_them() {
        let base = r#"{"sid":"SM1","account_sid":"AC1","direction":"inbound","body":"STOP now","error_code":null,"price":"-0.0079","subresource_uris":{"media":"/x","n":[1,true]},"to":"+1555","from":"+1666","num_media":"0"}"#;
        let mut fast = 0;
        for at in 0..base.len() {
            let (head, tail) = base.split_at(at);
            fast += usize::from(agrees(&format!("{head}{}", &tail[1..])));
            for byte in "\"{}[]:,n1-. \tx".chars() {
                fast += usize::from(agrees(&format!("{head}{byte}{}", &tail[1..])));
                fast += usize::from(agrees(&format!("{head}{byte}{tail}")));
            }
        }
        // Most changes break the line; those that don't are mostly read fast.
        assert!(fast > 500, "{fast} read fast");
    }

    #[test]
    fn keys_are_told_apart_exactly() {
        let read = [
            "sid",
            "account_sid",
            "messaging_service_sid",
            "from",
            "to",
            "body",
            "direction",
            "status",
            "num_segments",
            "num_media",
            "price_unit",
            "date_sent",
            "date_created",
        ];
        for (i, key) in read.iter().enumerate() {
            assert_eq!(field_of(key.as_bytes()), Some(i), "{key}");
        }
        assert_eq!(field_of(b"price"), Some(PRICE));
        assert_eq!(field_of(b"error_code"), Some(ERROR_CODE));
        for other in [
            "",
            "t",
            "To",
            "tO",
            "uri",
            "sids",
            "date_updated",
            "error_message",
            "prices",
        ] {
            assert_eq!(field_of(other.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn every_sample_line_is_read_fast_and_as_serde_reads_it() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("sample-data/owlie/messages.jsonl"),
        )
        .unwrap();
        let mut fast = 0;
        let mut lines = 0;
        for line in text.lines() {
            lines += 1;
            if agrees(line) {
                fast += 1;
            } else {
                assert!(
                    line.contains('\\'),
                    "only escapes are left to serde: {line}"
                );
            }
        }
        assert!(fast * 100 > lines * 95, "{fast} of {lines} lines read fast");
    }

    #[test]
    fn unusual_lines_are_left_to_serde_and_usual_ones_agree() {
        let base = r#""sid":"SM1","direction":"inbound","body":"STOP""#;
        for line in [
            // Read fast.
            format!("{{{base}}}"),
            format!(" {{ {base} , \"error_code\" : 21610 , \"price\" : \"-0.0079\" }} "),
            format!("{{{base},\"error_code\":-3,\"price\":\"  \",\"x\":[1,-2.5e+3,{{}},[],true,false,null,{{\"a\":{{\"b\":[0]}}}}]}}"),
            format!("{{{base},\"uri\":\"x\",\"uri\":\"y\"}}"),
            format!("{{{base},\"from\":null,\"to\":\"+1555\",\"date_sent\":null,\"date_created\":\"Wed, 01 Oct 2025 07:44:29 +0000\"}}"),
            format!("{{{base},\"body\":\"caf\u{e9} \u{1f600}\"}}"),
            // Left to serde (an error, or a value the fast path does not build).
            "{}".to_string(),
            format!("{{{base},\"sid\":\"SM2\"}}"),
            format!("{{{base},\"error_code\":\"21610\"}}"),
            format!("{{{base},\"error_code\":21610.0}}"),
            format!("{{{base},\"error_code\":99999999999999999999}}"),
            format!("{{{base},\"error_code\":012}}"),
            format!("{{{base},\"price\":-0.5}}"),
            format!("{{{base},\"body\":\"say \\\"stop\\\"\"}}"),
            format!("{{{base},\"body\":7}}"),
            format!("{{{base},\"x\":01}}"),
            format!("{{{base},\"x\":1.}}"),
            format!("{{{base},\"x\":[1,]}}"),
            format!("{{{base},\"x\":nul}}"),
            format!("{{{base},\"x\":\"tab\there\"}}"),
            format!("{{{base}}} x"),
            format!("{{{base},}}"),
            format!("{{{base}"),
            format!("[{{{base}}}]"),
            r#"{"sid":null,"direction":"inbound"}"#.to_string(),
            format!("{{{base},\"x\":{}}}", "[".repeat(200) + &"]".repeat(200)),
        ] {
            agrees(&line);
        }
        assert!(parse(&format!(
            "{{{base},\"error_code\":-3,\"x\":[1,-2.5e+3,{{}}]}}"
        ))
        .is_some());
        assert_eq!(
            parse(&format!("{{{base},\"price\":\" \"}}")).unwrap().price,
            None
        );
        assert!(parse(&format!("{{{base},\"sid\":\"SM2\"}}")).is_none());
        assert!(parse(&format!("{{{base},\"x\":01}}")).is_none());
    }
}
