//! Twilio's time formats in, RFC 3339 UTC out.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

/// Parses Twilio's RFC 2822 (`Mon, 16 Aug 2010 03:45:01 +0000`, the 2010 API) or RFC 3339
/// (bulk export, v1 APIs) into UTC.
pub fn parse_twilio_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc2822(text)
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Twilio's RFC 2822 form, as the 2010 API writes it (`+0000`).
pub fn to_rfc2822(time: &DateTime<Utc>) -> String {
    time.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// RFC 3339, UTC, whole seconds, `Z`: the one time format of every output.
pub fn rfc3339(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `YYYY-MM-DD`, as Usage Records and the Messages filters take it.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_twilio_formats_as_utc() {
        let a = parse_twilio_time("Fri, 02 Jan 2026 03:04:05 +0000").unwrap();
        let b = parse_twilio_time("2026-01-02T03:04:05Z").unwrap();
        let c = parse_twilio_time("2026-01-01T22:04:05-05:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(to_rfc2822(&a), "Fri, 02 Jan 2026 03:04:05 +0000");
        assert_eq!(parse_twilio_time("yesterday"), None);
    }
}
