//! Credentials, read the way the Twilio CLI reads them, and never shown: `Debug` redacts the
//! secret, and nothing else formats it.

use std::fmt;

use crate::error::{Error, Result};

/// Which kind of secret authenticates the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// Account SID + auth token: reaches the account's subaccounts too.
    AuthToken,
    /// API key (SK...) + secret: reaches only the account that owns the key.
    ApiKey,
}

/// Basic-auth credentials for one account.
#[derive(Clone)]
pub struct Credentials {
    /// The account the requests are for (the parent).
    pub account_sid: String,
    /// `AC...` for an auth token, `SK...` for an API key.
    username: String,
    secret: String,
    pub kind: CredentialKind,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("account_sid", &self.account_sid)
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .field("kind", &self.kind)
            .finish()
    }
}

impl Credentials {
    /// From the CLI's variables (or flags). The API key wins when both kinds are set, as in the
    /// Twilio CLI.
    pub fn resolve(
        account_sid: Option<&str>,
        auth_token: Option<&str>,
        api_key: Option<&str>,
        api_secret: Option<&str>,
    ) -> Result<Credentials> {
        let nonempty =
            |v: Option<&str>| v.map(str::trim).filter(|s| !s.is_empty()).map(String::from);
        let account_sid = nonempty(account_sid).ok_or_else(|| {
            Error::Input(
                "no account SID: set TWILIO_ACCOUNT_SID (or pass --account-sid) to the parent account's SID, AC followed by 32 hex digits".into(),
            )
        })?;
        if !crate::sid::is_sid(&account_sid, "AC") {
            return Err(Error::Input(format!(
                "TWILIO_ACCOUNT_SID {account_sid:?} is not an account SID (AC followed by 32 hex digits)"
            )));
        }
        match (nonempty(api_key), nonempty(api_secret)) {
            (Some(key), Some(secret)) => {
                if !crate::sid::is_sid(&key, "SK") {
                    return Err(Error::Input(format!(
                        "TWILIO_API_KEY {key:?} is not an API key SID (SK followed by 32 hex digits)"
                    )));
                }
                return Ok(Credentials {
                    account_sid,
                    username: key,
                    secret,
                    kind: CredentialKind::ApiKey,
                });
            }
            (Some(_), None) => {
                return Err(Error::Input(
                    "TWILIO_API_KEY is set but TWILIO_API_SECRET is not: set both, or neither and TWILIO_AUTH_TOKEN".into(),
                ))
            }
            _ => {}
        }
        let secret = nonempty(auth_token).ok_or_else(|| {
            Error::Input(
                "no secret: set TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET) for the parent account".into(),
            )
        })?;
        Ok(Credentials {
            username: account_sid.clone(),
            account_sid,
            secret,
            kind: CredentialKind::AuthToken,
        })
    }

    /// An account's own sid and auth token (a subaccount's, read at run time; never stored).
    pub fn for_account(account_sid: &str, auth_token: &str) -> Credentials {
        Credentials {
            account_sid: account_sid.to_string(),
            username: account_sid.to_string(),
            secret: auth_token.to_string(),
            kind: CredentialKind::AuthToken,
        }
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    /// Only the HTTP layer calls this, to build the Authorization header.
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC: &str = "AC0123456789abcdef0123456789abcdef";
    const SK: &str = "SK0123456789abcdef0123456789abcdef";

    #[test]
    fn api_key_wins_and_debug_redacts() {
        let c = Credentials::resolve(Some(AC), Some("tok-secret"), Some(SK), Some("key-secret"))
            .unwrap();
        assert_eq!(c.kind, CredentialKind::ApiKey);
        assert_eq!(c.username(), SK);
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("key-secret") && !shown.contains("tok-secret"),
            "{shown}"
        );
        assert!(shown.contains("<redacted>"));
        let c = Credentials::resolve(Some(AC), Some("tok-secret"), None, None).unwrap();
        assert_eq!(c.kind, CredentialKind::AuthToken);
        assert!(!format!("{c:?}").contains("tok-secret"));
    }

    #[test]
    fn missing_or_malformed_credentials_are_input_errors() {
        let e = Credentials::resolve(None, Some("x"), None, None).unwrap_err();
        assert!(e.to_string().contains("TWILIO_ACCOUNT_SID"));
        assert_eq!(e.exit_code(), 2);
        let e = Credentials::resolve(Some(AC), None, None, None).unwrap_err();
        assert!(e.to_string().contains("TWILIO_AUTH_TOKEN"));
        let e = Credentials::resolve(Some("ACnope"), Some("x"), None, None).unwrap_err();
        assert!(!e.to_string().contains("\"x\""));
        let e = Credentials::resolve(Some(AC), None, Some(SK), None).unwrap_err();
        assert!(e.to_string().contains("TWILIO_API_SECRET"));
    }
}
