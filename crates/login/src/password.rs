//! Credentials: the password (kept only in its hashed wire form) and web login keys.

use md5::{Digest, Md5};
use std::fmt;
use uuid::Uuid;

use crate::LoginError;

/// A login password, held only in the form sent on the wire: `"$1$"` + lowercase hex MD5.
///
/// The plain text is hashed at construction and not kept. Neither form ever shows in
/// `Debug` (which prints `<redacted>`), there is no `Display`, and the crate's errors and logs
/// never include it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// From what a user typed, or from a stored hash: a `"$1$"` followed by 32 hex digits is
    /// taken as already hashed (as libomv and the viewers do), anything else is hashed.
    pub fn new(text: &str) -> Self {
        Self::from_hash(text).unwrap_or_else(|_| Self::from_plaintext(text))
    }

    /// Always hashes `plaintext`, even if it looks like a hash.
    pub fn from_plaintext(plaintext: &str) -> Self {
        Self(format!("$1${}", md5_hex(plaintext.as_bytes())))
    }

    /// From an already hashed password: `"$1$"` + 32 hex digits, or the 32 hex digits alone.
    ///
    /// # Errors
    /// [`LoginError::InvalidParams`] when the text is not such a hash.
    pub fn from_hash(hash: &str) -> Result<Self, LoginError> {
        let hex = hash.strip_prefix("$1$").unwrap_or(hash);
        if hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(format!("$1${}", hex.to_ascii_lowercase())))
        } else {
            Err(LoginError::InvalidParams(
                "a password hash is \"$1$\" followed by 32 hex digits".into(),
            ))
        }
    }

    /// The wire form (`"$1$"` + MD5 hex), e.g. to store for a "remember me" login.
    ///
    /// Treat it like the password itself: OpenSimulator accepts it in place of the password.
    pub fn expose_hash(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Lowercase hex MD5 of `bytes` (OpenSimulator's `Util.Md5Hash`).
pub(crate) fn md5_hex(bytes: &[u8]) -> String {
    format!("{:x}", Md5::digest(bytes))
}

/// How the account proves who it is.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credential {
    /// The `passwd` member.
    Password(Password),
    /// The `web_login_key` member (a token from a web login page), sent instead of `passwd`.
    /// OpenSimulator rejects the zero UUID.
    WebLoginKey(Uuid),
}

impl Credential {
    /// The strings that must never appear in errors or logs.
    pub(crate) fn secrets(&self) -> Vec<String> {
        match self {
            Self::Password(p) => {
                let wire = p.expose_hash().to_owned();
                let hex = wire.trim_start_matches("$1$").to_owned();
                vec![wire, hex]
            }
            Self::WebLoginKey(k) => vec![k.hyphenated().to_string(), k.simple().to_string()],
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Password(<redacted>)"),
            Self::WebLoginKey(_) => f.write_str("WebLoginKey(<redacted>)"),
        }
    }
}

impl From<Password> for Credential {
    fn from(p: Password) -> Self {
        Self::Password(p)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hashes_like_opensim() {
        // md5("password"), the account of the shared captures.
        let p = Password::new("password");
        assert_eq!(p.expose_hash(), "$1$5f4dcc3b5aa765d61d8327deb882cf99");
        assert_eq!(Password::new(p.expose_hash()), p);
        assert_eq!(
            Password::from_hash("5F4DCC3B5AA765D61D8327DEB882CF99").unwrap(),
            p
        );
        // A plain text that only looks like a hash can still be forced through MD5.
        assert_ne!(Password::from_plaintext(p.expose_hash()), p);
        // Not 32 hex digits: a plain text, hashed.
        assert_eq!(Password::new("$1$short").expose_hash().len(), 35);
        assert!(Password::from_hash("$1$short").is_err());
        assert_eq!(format!("{p:?}"), "<redacted>");
    }
}
