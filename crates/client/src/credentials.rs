//! Where the client's client-credentials come from: `bootstrap.json` written at first start,
//! or the `PORTCULLIS_*` environment variables (for CI and for applications other than the
//! bootstrap one).

use std::path::Path;

use serde::Deserialize;

use crate::ClientError;

/// The address the server listens on by default (`portcullis serve` without flags).
pub const DEFAULT_URL: &str = "http://localhost:8080";

pub const ENV_URL: &str = "PORTCULLIS_URL";
pub const ENV_CLIENT_ID: &str = "PORTCULLIS_CLIENT_ID";
pub const ENV_CLIENT_SECRET: &str = "PORTCULLIS_CLIENT_SECRET";

/// An application's client credentials and the server they are for.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The server's base address, without a trailing slash (`http://localhost:8080`).
    pub url: String,
    pub client_id: String,
    pub client_secret: String,
}

// Hand-written so that the secret never lands in a log line or a panic message.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// The parts of bootstrap.json the client reads; the file holds more (tenant id, admin UPN,
/// a note) that the client ignores.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BootstrapFile {
    client_id: String,
    client_secret: String,
    #[serde(default)]
    url: Option<String>,
}

impl Credentials {
    pub fn new(
        url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Credentials {
            url: normalize_url(&url.into()),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        }
    }

    /// Reads `<data dir>/bootstrap.json`. Its `url` is used when present, else [`DEFAULT_URL`].
    pub fn from_bootstrap_file(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ClientError::Credentials(format!(
                "cannot read {}: {e}. Point --data-dir at the server's data folder, or set {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}.",
                path.display()
            ))
        })?;
        // The server writes UTF-8 without a byte-order mark, but an editor may have added one.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let file: BootstrapFile = serde_json::from_str(text).map_err(|e| {
            ClientError::Credentials(format!(
                "{} is not a Portcullis bootstrap file (expected JSON with clientId and clientSecret): {e}",
                path.display()
            ))
        })?;
        Ok(Credentials::new(
            file.url.unwrap_or_else(|| DEFAULT_URL.to_string()),
            file.client_id,
            file.client_secret,
        ))
    }

    /// Credentials from `PORTCULLIS_CLIENT_ID` and `PORTCULLIS_CLIENT_SECRET` (and
    /// `PORTCULLIS_URL`, else [`DEFAULT_URL`]). `Ok(None)` when neither is set; an error when only
    /// one is, because silently falling back to another identity would be surprising.
    pub fn from_env() -> Result<Option<Self>, ClientError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ClientError> {
        let non_empty = |k: &str| var(k).filter(|v| !v.is_empty());
        match (non_empty(ENV_CLIENT_ID), non_empty(ENV_CLIENT_SECRET)) {
            (Some(id), Some(secret)) => Ok(Some(Credentials::new(
                non_empty(ENV_URL).unwrap_or_else(|| DEFAULT_URL.to_string()),
                id,
                secret,
            ))),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ClientError::Credentials(format!(
                "{ENV_CLIENT_ID} is set but {ENV_CLIENT_SECRET} is not."
            ))),
            (None, Some(_)) => Err(ClientError::Credentials(format!(
                "{ENV_CLIENT_SECRET} is set but {ENV_CLIENT_ID} is not."
            ))),
        }
    }

    /// What the CLI uses: credentials from the environment when set, else from
    /// `<data_dir>/bootstrap.json`. An explicit `url` (a flag or `PORTCULLIS_URL`) wins over the
    /// one in the file.
    pub fn resolve(url: Option<&str>, data_dir: &Path) -> Result<Self, ClientError> {
        let mut creds = match Self::from_env()? {
            Some(c) => c,
            None => Self::from_bootstrap_file(data_dir.join("bootstrap.json"))?,
        };
        if let Some(url) = url {
            creds.url = normalize_url(url);
        }
        Ok(creds)
    }
}

/// Trailing slashes would double up when paths are appended.
pub(crate) fn normalize_url(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_file_with_url() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bootstrap.json");
        std::fs::write(
            &path,
            r#"{"note":"keep private","url":"https://id.example.com/","tokenEndpoint":"x","tenantId":"t","clientId":"abc","clientSecret":"s3cret"}"#,
        )
        .unwrap();
        let c = Credentials::from_bootstrap_file(&path).unwrap();
        assert_eq!(
            c,
            Credentials::new("https://id.example.com", "abc", "s3cret")
        );
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn bootstrap_file_without_url_uses_default_and_tolerates_bom() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bootstrap.json");
        std::fs::write(&path, "\u{feff}{\"clientId\":\"a\",\"clientSecret\":\"b\"}").unwrap();
        let c = Credentials::from_bootstrap_file(&path).unwrap();
        assert_eq!(c.url, DEFAULT_URL);
    }

    #[test]
    fn missing_or_malformed_bootstrap_file_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let err = Credentials::from_bootstrap_file(dir.path().join("bootstrap.json")).unwrap_err();
        assert!(err.to_string().contains("--data-dir"), "{err}");
        let path = dir.path().join("bad.json");
        std::fs::write(&path, r#"{"clientId":"a"}"#).unwrap();
        let err = Credentials::from_bootstrap_file(&path).unwrap_err();
        assert!(err.to_string().contains("clientSecret"), "{err}");
    }

    #[test]
    fn environment_needs_both_halves() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(Credentials::from_vars(vars(&[])).unwrap().is_none());
        assert!(Credentials::from_vars(vars(&[(ENV_CLIENT_ID, "a")])).is_err());
        assert!(Credentials::from_vars(vars(&[(ENV_CLIENT_SECRET, "b")])).is_err());
        let c = Credentials::from_vars(vars(&[
            (ENV_CLIENT_ID, "a"),
            (ENV_CLIENT_SECRET, "b"),
            (ENV_URL, "http://h:1/"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c, Credentials::new("http://h:1", "a", "b"));
    }
}
