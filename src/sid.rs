//! Shapes of Twilio identifiers and phone numbers.

/// A Twilio sid: a two-letter prefix and 32 hex digits (`AC`, `PN`, `MG`, `SM`, ...).
pub fn is_sid(text: &str, prefix: &str) -> bool {
    text.len() == 34 && text.starts_with(prefix) && text[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// E.164: `+`, a non-zero first digit, at most 15 digits in all.
pub fn is_e164(text: &str) -> bool {
    let Some(digits) = text.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_need_prefix_and_32_hex_digits() {
        assert!(is_sid("AC0123456789abcdef0123456789abcdef", "AC"));
        assert!(!is_sid("PN0123456789abcdef0123456789abcdef", "AC"));
        assert!(!is_sid("AC0123456789abcdef0123456789abcde", "AC"));
        assert!(!is_sid("AC0123456789abcdef0123456789abcdeg", "AC"));
    }

    #[test]
    fn e164_needs_plus_and_digits() {
        assert!(is_e164("+14155550100"));
        assert!(!is_e164("14155550100"));
        assert!(!is_e164("+1 415 555 0100"));
        assert!(!is_e164("+0123"));
        assert!(!is_e164("+1234567890123456"));
    }
}
