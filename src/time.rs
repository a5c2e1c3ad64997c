//! Twilio's time formats in, RFC 3339 UTC out.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

/// Parses Twilio's RFC 2822 (`Mon, 16 Aug 2010 03:45:01 +0000`, the 2010 API) or RFC 3339
/// (bulk export, v1 APIs) into UTC.
pub fn parse_twilio_time(text: &str) -> Option<DateTime<Utc>> {
    // The 2010 API's own form is read directly (tens of millions of messages); any other
    // form, or a weekday that does not match the date, goes through chrono.
    match twilio_rfc2822_seconds(text) {
        Some(second) => DateTime::from_timestamp(second, 0),
        None => parse_with_chrono(text),
    }
}

/// [`parse_twilio_time`] in whole seconds since 1970 (rounded down), without building the
/// time on the usual path: the opt-out engine reads one per message.
pub fn parse_twilio_seconds(text: &str) -> Option<i64> {
    twilio_rfc2822_seconds(text).or_else(|| parse_with_chrono(text).map(|t| t.timestamp()))
}

/// The forms the direct reader declines (RFC 3339, another offset or weekday), by chrono.
fn parse_with_chrono(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc2822(text)
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `Wed, 01 Oct 2025 07:44:29 +0000` (surrounding white space allowed) in seconds since
/// 1970; `None` for anything else, a weekday that is not the date's included.
fn twilio_rfc2822_seconds(text: &str) -> Option<i64> {
    // 1970-01-01, day 0, was a Thursday.
    const DAYS_FROM_THURSDAY: [&[u8; 3]; 7] =
        [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    let b: &[u8; 31] = match text.as_bytes().try_into() {
        Ok(b) => b,
        Err(_) => text.trim().as_bytes().try_into().ok()?,
    };
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    // Compared as arrays: slices would call memcmp for each.
    let word = |at: usize| -> [u8; 3] { [b[at], b[at + 1], b[at + 2]] };
    if [b[3], b[4]] != *b", "
        || b[7] != b' '
        || b[11] != b' '
        || b[16] != b' '
        || b[19] != b':'
        || b[22] != b':'
        || [b[25], b[26], b[27], b[28], b[29], b[30]] != *b" +0000"
    {
        return None;
    }
    let month = match &word(8) {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    let (year, day) = (number(12..16)?, number(5..7)?);
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if *DAYS_FROM_THURSDAY[days.rem_euclid(7) as usize] != word(0) {
        return None;
    }
    let (hour, minute, second) = (number(17..19)?, number(20..22)?, number(23..25)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(days * 86_400 + i64::from(hour * 3_600 + minute * 60 + second))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date of the proleptic Gregorian calendar (as chrono counts
/// them), by Howard Hinnant's `days_from_civil`: years counted from March, in 400-year eras.
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

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
    use chrono::Datelike;

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
        // Two years of days around a leap day, then one day in every 97 from year 0 to 9999
        // (every weekday, month, leap rule and era boundary).
        let recent =
            (0..800).map(|i| NaiveDate::from_ymd_opt(2023, 12, 25).unwrap() + chrono::Days::new(i));
        let first = NaiveDate::from_ymd_opt(0, 1, 1).unwrap();
        let far = (0..37_600).map(|i| first + chrono::Days::new(i * 97));
        for (i, day) in recent.chain(far).enumerate() {
            let i = i as u32;
            let time = day
                .and_hms_opt(i % 24, (i * 7) % 60, (i * 13) % 60)
                .unwrap()
                .and_utc();
            let text = to_rfc2822(&time);
            assert_eq!(
                twilio_rfc2822_seconds(&text),
                Some(time.timestamp()),
                "{text}"
            );
            assert_eq!(parse_twilio_time(&text), Some(time), "{text}");
            if time.year() >= 1900 {
                assert_eq!(chrono_reads(&text), Some(time), "{text}");
            }
        }
        assert_eq!(
            parse_twilio_seconds(" Wed, 01 Oct 2025 07:44:29 +0000\n"),
            Some(1_759_304_669)
        );
        assert_eq!(
            parse_twilio_seconds("2025-10-01T07:44:29.999Z"),
            Some(1_759_304_669)
        );
        // Declined, and left to chrono: another weekday, offset or shape.
        for text in [
            "Thu, 01 Oct 2025 07:44:29 +0000",
            "Wed, 01 Oct 2025 07:44:29 +0100",
            "Wed, 1 Oct 2025 07:44:29 +0000",
            "Wed, 01 Oct 2025 07:44:29 GMT",
            "Wed, 01 Oct 2025 24:00:00 +0000",
            "Wed, 01 Oct 2025 07:44:60 +0000",
            "Wed, 31 Sep 2025 07:44:29 +0000",
            "Thu, 29 Feb 2025 07:44:29 +0000",
            "Sat, 00 Oct 2025 07:44:29 +0000",
            "Wed, 01 Okt 2025 07:44:29 +0000",
            "Wed; 01 Oct 2025 07:44:29 +0000",
        ] {
            assert_eq!(twilio_rfc2822_seconds(text), None, "{text}");
        }
        assert_eq!(
            parse_twilio_time("Wed, 01 Oct 2025 07:44:29 +0100"),
            chrono_reads("Wed, 01 Oct 2025 07:44:29 +0100")
        );
    }
}
