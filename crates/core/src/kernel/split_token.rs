//! Split tokens: the bearer secrets that stand for a row (authorization codes, refresh tokens,
//! session cookies, sign-in flow ids) are `ID.SECRET`, where `ID` is the row's time-ordered id
//! (RFC 9562 version 7, lowercase hyphenated) and `SECRET` a random string kept only as its
//! SHA-256.
//!
//! Why: a token found by the hash of the whole of it keys its row (or a unique index) by a
//! random value, so every insert dirties a random B-tree leaf — 39% of the pages the SQLite
//! writer wrote per sign-in (BENCHMARKS.md). Found by its id, the row appends at the right edge
//! of its primary key and the hash needs no index at all. The id is not secret (a session's id
//! is the `sid` of every ID token issued in it): the secret part alone is what proves the
//! bearer, and it is compared in constant time ([`crate::kernel::crypto::verify_secret`], with
//! `subtle`). Secrets have 190+ bits of entropy, so one SHA-256 is the right hash (see
//! [`crate::kernel::crypto`]).
//!
//! Tokens issued before split tokens (migration 0013) have no id part. Such a token is looked
//! up the way it was then ([`TokenKey::Legacy`]) until it expires, and a row stored for one
//! has no secret hash; [`PresentedToken::matches`] never lets a token of one kind open a row
//! of the other. Once the longest-lived of them (refresh tokens, 14 days) are gone, the legacy
//! path can go too.
//!
//! What this module must never do: store, log or compare a secret other than through its
//! hash; it knows nothing of what a token grants.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::kernel::crypto::{hash_secret, verify_secret};
use crate::kernel::entropy::Entropy;

/// Between the id and the secret. The secret's alphabet may hold it too, but the id never
/// does, so the first one splits.
const SEPARATOR: char = '.';

/// Length of a version-7 id in its hyphenated form.
const ID_LEN: usize = 36;

/// How a presented token finds the row it names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TokenKey {
    /// A split token: its row's id.
    Id(Uuid),
    /// A token from before split tokens: what its row was keyed by then (the SHA-256 of the
    /// whole token, or for a sign-in flow the flow's own id, lowercase hyphenated).
    Legacy(String),
}

impl TokenKey {
    /// The key as the row's key column holds it.
    pub fn as_text(&self) -> String {
        match self {
            TokenKey::Id(id) => id.hyphenated().to_string(),
            TokenKey::Legacy(key) => key.clone(),
        }
    }

    /// Reads a key column back: an id for rows of split tokens, the legacy key otherwise.
    pub fn from_text(text: &str) -> TokenKey {
        match parse_id(text) {
            Some(id) => TokenKey::Id(id),
            None => TokenKey::Legacy(text.to_string()),
        }
    }
}

/// How a token without an id part was looked up before split tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyLookup {
    /// By the SHA-256 of the whole token (codes, refresh tokens, sessions).
    HashOfWholeToken,
    /// The token was the row's id (sign-in flows, random UUIDs).
    PlainId,
}

/// A token just issued: the text to hand out once, and what the row keeps.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub id: Uuid,
    /// `ID.SECRET`, for the client; never stored.
    pub text: String,
    /// SHA-256 (hex) of the secret part.
    pub secret_hash: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A new split token issued at `at`, with a secret of `secret_len` characters.
pub fn issue(entropy: &dyn Entropy, at: OffsetDateTime, secret_len: usize) -> IssuedToken {
    let id = entropy.ordered_uuid(at);
    let secret = entropy.secret_text(secret_len);
    IssuedToken {
        id,
        text: format!("{}{SEPARATOR}{secret}", id.hyphenated()),
        secret_hash: hash_secret(&secret),
    }
}

/// A version-7 id in exactly the form tokens carry it; anything else is no id.
fn parse_id(text: &str) -> Option<Uuid> {
    if text.len() != ID_LEN {
        return None;
    }
    let id = Uuid::try_parse(text).ok()?;
    (id.get_version_num() == 7 && id.hyphenated().to_string() == text).then_some(id)
}

/// A token as a client presented it, parsed but not yet believed.
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedToken<'a> {
    key: TokenKey,
    secret: Option<&'a str>,
}

impl std::fmt::Debug for PresentedToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedToken")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<'a> PresentedToken<'a> {
    /// Reads `text`: `ID.SECRET` with a well-formed version-7 id is a split token (whatever
    /// the secret part looks like: a wrong one simply fails [`Self::matches`]); anything else
    /// is taken as a token of the old kind and looked up as `legacy` says.
    pub fn parse(text: &'a str, legacy: LegacyLookup) -> Self {
        if let Some((id, secret)) = text.split_once(SEPARATOR)
            && let Some(id) = parse_id(id)
        {
            return PresentedToken {
                key: TokenKey::Id(id),
                secret: Some(secret),
            };
        }
        let key = match legacy {
            LegacyLookup::HashOfWholeToken => hash_secret(text),
            // A flow id was read as a UUID in any of its spellings; rows keep it hyphenated.
            LegacyLookup::PlainId => Uuid::try_parse(text.trim())
                .map(|id| id.hyphenated().to_string())
                .unwrap_or_default(),
        };
        PresentedToken {
            key: TokenKey::Legacy(key),
            secret: None,
        }
    }

    /// What to look the row up by.
    pub fn key(&self) -> &TokenKey {
        &self.key
    }

    /// The row id for tables whose legacy key is an id too (sign-in flows); `None` when the
    /// token cannot name a row at all.
    pub fn row_id(&self) -> Option<Uuid> {
        match &self.key {
            TokenKey::Id(id) => Some(*id),
            TokenKey::Legacy(text) => Uuid::try_parse(text).ok(),
        }
    }

    /// Whether the row found by [`Self::key`], which keeps `stored_secret_hash`, was issued
    /// for this token. A split token needs a row with a secret hash equal to its secret's
    /// (compared in constant time); a legacy token, found by what only its bearer can know or
    /// by its own id, needs a legacy row — so the id of a split token never opens a row by
    /// itself, and a split token never opens a legacy row that shares its id.
    pub fn matches(&self, stored_secret_hash: Option<&str>) -> bool {
        match (self.secret, stored_secret_hash) {
            (Some(secret), Some(expected)) => verify_secret(secret, expected),
            (None, None) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::entropy::SystemEntropy;

    fn at() -> OffsetDateTime {
        time::macros::datetime!(2026-12-06 09:00:00 UTC)
    }

    #[test]
    fn an_issued_token_opens_its_row_and_nothing_else_does() {
        let issued = issue(&SystemEntropy, at(), 43);
        assert_eq!(issued.id.get_version_num(), 7);
        assert_eq!(issued.text.len(), 36 + 1 + 43);
        let presented = PresentedToken::parse(&issued.text, LegacyLookup::HashOfWholeToken);
        assert_eq!(presented.key(), &TokenKey::Id(issued.id));
        assert!(presented.matches(Some(&issued.secret_hash)));
        assert!(!presented.matches(None), "never a legacy row");

        let secret = &issued.text[37..];
        let id = issued.id.hyphenated().to_string();
        let truncated = format!("{id}.{}", &secret[..42]);
        let extended = format!("{id}.{secret}x");
        let changed = format!("{id}.{}A", &secret[..42]);
        let changed = if changed == issued.text {
            format!("{id}.{}B", &secret[..42])
        } else {
            changed
        };
        let bare = format!("{id}.");
        for wrong in [&truncated, &extended, &changed, &bare] {
            let p = PresentedToken::parse(wrong, LegacyLookup::HashOfWholeToken);
            assert_eq!(p.key(), &TokenKey::Id(issued.id), "{wrong}");
            assert!(!p.matches(Some(&issued.secret_hash)), "{wrong}");
        }
        // Without its secret part, or with the id spelled otherwise, it is no split token:
        // looked up as a legacy token, it finds nothing.
        for other in [
            id.clone(),
            issued.text.to_uppercase(),
            issued.text.replacen('-', "", 4),
            format!("{{{id}}}.{secret}"),
        ] {
            let p = PresentedToken::parse(&other, LegacyLookup::HashOfWholeToken);
            assert!(matches!(p.key(), TokenKey::Legacy(_)), "{other}");
            assert!(!p.matches(Some(&issued.secret_hash)), "{other}");
        }
        // A random (version 4) id is no split token's.
        let v4 = format!("{}.{secret}", Uuid::new_v4().hyphenated());
        assert!(matches!(
            PresentedToken::parse(&v4, LegacyLookup::HashOfWholeToken).key(),
            TokenKey::Legacy(_)
        ));
    }

    #[test]
    fn legacy_tokens_are_found_as_they_were() {
        let old = SystemEntropy.secret_text(43);
        let p = PresentedToken::parse(&old, LegacyLookup::HashOfWholeToken);
        assert_eq!(p.key(), &TokenKey::Legacy(hash_secret(&old)));
        assert!(p.matches(None));
        assert!(
            !p.matches(Some(&hash_secret(&old))),
            "never a split token's row"
        );

        let flow = Uuid::new_v4();
        for spelling in [
            flow.hyphenated().to_string(),
            flow.simple().to_string(),
            flow.hyphenated().to_string().to_uppercase(),
        ] {
            let p = PresentedToken::parse(&spelling, LegacyLookup::PlainId);
            assert_eq!(p.row_id(), Some(flow), "{spelling}");
            assert!(p.matches(None));
        }
        assert_eq!(
            PresentedToken::parse("not a flow", LegacyLookup::PlainId).row_id(),
            None
        );
    }

    #[test]
    fn key_columns_read_back() {
        let issued = issue(&SystemEntropy, at(), 10);
        let key = TokenKey::Id(issued.id);
        assert_eq!(TokenKey::from_text(&key.as_text()), key);
        let legacy = TokenKey::Legacy(hash_secret("old"));
        assert_eq!(TokenKey::from_text(&legacy.as_text()), legacy);
    }
}
