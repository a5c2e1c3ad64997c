//! Twilio's time formats in, RFC 3339 UTC out.

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};

/// Parses Twilio's RFC 2822 (`Mon, 16 Aug 2010 03:45:01 +0000`, the 2010 API) or RFC 3339
/// (bulk export, v1 APIs) into UTC.
pub fn parse_twilio_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    // The 2010 API's own form is read directly (tens of millions of messages); any other
    // form, or a weekday that does not match the date, goes through chrono.
    if let Some(time) = parse_twilio_rfc2822(text) {
        return Some(time);
    }
    DateTime::parse_from_rfc2822(text)
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Exactly `Www, DD Mon YYYY HH:MM:SS +0000`, with the weekday of the date.
fn parse_twilio_rfc2822(text: &str) -> Option<DateTime<Utc>> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    const DAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    let b: &[u8; 31] = text.as_bytes().try_into().ok()?;
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    if &b[3..5] != b", "
        || b[7] != b' '
        || b[11] != b' '
        || b[16] != b' '
        || b[19] != b':'
        || b[22] != b':'
        || &b[25..] != b" +0000"
    {
        return None;
    }
    let month = MONTHS.iter().position(|m| m[..] == b[8..11])? as u32 + 1;
    let date = NaiveDate::from_ymd_opt(number(12..16)? as i32, month, number(5..7)?)?;
    if DAYS[date.weekday().num_days_from_monday() as usize][..] != b[0..3] {
        return None;
    }
    let (hour, minute, second) = (number(17..19)?, number(20..22)?, number(23..25)?);
    if second > 59 {
        return None;
    }
    Some(date.and_hms_opt(hour, minute, second)?.and_utc())
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

    #[test]
    fn the_fast_rfc2822_reader_agrees_with_chrono() {
        let chrono_reads = |text: &str| {
            DateTime::parse_from_rfc2822(text)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        };
        let mut day = NaiveDate::from_ymd_opt(2023, 12, 25).unwrap();
        for i in 0..800u32 {
            let time = day
                .and_hms_opt(i % 24, (i * 7) % 60, (i * 13) % 60)
                .unwrap()
                .and_utc();
            let text = to_rfc2822(&time);
            assert_eq!(parse_twilio_rfc2822(&text), Some(time), "{text}");
            assert_eq!(chrono_reads(&text), Some(time), "{text}");
            day = day.succ_opt().unwrap();
        }
        // Declined, and left to chrono: another weekday, offset or shape.
        for text in [
            "Thu, 01 Oct 2025 07:44:29 +0000",
            "Wed, 01 Oct 2025 07:44:29 +0100",
            "Wed, 1 Oct 2025 07:44:29 +0000",
            "Wed, 01 Oct 2025 07:44:29 GMT",
            "Wed, 01 Oct 2025 24:00:00 +0000",
            "Wed, 01 Oct 2025 07:44:60 +0000",
            "Wed, 31 Sep 2025 07:44:29 +0000",
            "Wed, 01 Okt 2025 07:44:29 +0000",
            "Wed; 01 Oct 2025 07:44:29 +0000",
        ] {
            assert_eq!(parse_twilio_rfc2822(text), None, "{text}");
        }
        assert_eq!(
            parse_twilio_time("Wed, 01 Oct 2025 07:44:29 +0100"),
            chrono_reads("Wed, 01 Oct 2025 07:44:29 +0100")
        );
    }
}
