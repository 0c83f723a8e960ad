//! Which web origins a browser may call the provider's application endpoints from (CORS):
//! the origins of every registered single-page-application redirect URI, and the origins the
//! operator configures beside them. A single-page app exchanges its code and calls userinfo
//! from its own origin, so without this it cannot sign in at all.
//!
//! What it owns: the list and its freshness. What it must never do: allow every origin, or
//! let a caller make it read the directory on every request. The list is read at most once
//! per [`REFRESH`] while only known origins arrive, and an unknown origin makes it read again
//! only when the list is older than [`RECHECK`], so a newly registered app works within seconds
//! and a flood of made-up origins costs one read per [`RECHECK`] per node.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use webauthn_rs::prelude::Url;

use crate::Result;
use crate::directory::store::DirectoryStore;
use crate::kernel::query::every_page;

/// How long a read list is used for known origins.
pub const REFRESH: Duration = Duration::from_secs(60);
/// How old the list must be before an unknown origin makes it read again.
pub const RECHECK: Duration = Duration::from_secs(5);

/// The origin of a URL as browsers send it in `Origin` (`https://app.example.com`,
/// `http://localhost:3000`), or `None` for a URL with no web origin.
pub fn origin_of(url: &str) -> Option<String> {
    let origin = Url::parse(url.trim()).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

struct Read {
    at: Instant,
    origins: Arc<HashSet<String>>,
}

/// The allowed origins of one node.
pub struct BrowserOrigins {
    configured: HashSet<String>,
    read: Mutex<Option<Read>>,
}

impl BrowserOrigins {
    /// `configured`: origins allowed beside the registered apps' (the `cors_allowed_origins`
    /// setting), each normalised as a browser sends it.
    pub fn new(configured: &[String]) -> Self {
        BrowserOrigins {
            configured: configured.iter().filter_map(|o| origin_of(o)).collect(),
            read: Mutex::new(None),
        }
    }

    /// The list and its age; when it is older than [`RECHECK`] and `claim` is set, its time is
    /// moved to now, so that callers arriving while this one reads keep using it instead of
    /// reading too.
    fn cached(&self, claim: bool) -> Option<(Duration, Arc<HashSet<String>>)> {
        let mut read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        let found = read.as_mut()?;
        let age = found.at.elapsed();
        if claim && age >= RECHECK {
            found.at = Instant::now();
        }
        Some((age, found.origins.clone()))
    }

    /// Whether a browser page at `origin` may call the endpoints.
    pub async fn allows(&self, store: &dyn DirectoryStore, origin: &str) -> Result<bool> {
        if self.configured.contains(origin) {
            return Ok(true);
        }
        if let Some((age, origins)) = self.cached(false) {
            if origins.contains(origin) && age < REFRESH {
                return Ok(true);
            }
            if age < RECHECK {
                return Ok(origins.contains(origin));
            }
        }
        if let Some((age, origins)) = self.cached(true)
            && age < RECHECK
        {
            // Another caller claimed the read a moment ago.
            return Ok(origins.contains(origin));
        }
        let apps = every_page(usize::MAX, 999, |q| async move {
            store.list_applications(&q).await
        })
        .await?;
        let origins: HashSet<String> = apps
            .iter()
            .flat_map(|a| a.spa.redirect_uris.iter())
            .filter_map(|u| origin_of(u))
            .collect();
        let allowed = origins.contains(origin);
        *self.read.lock().unwrap_or_else(|p| p.into_inner()) = Some(Read {
            at: Instant::now(),
            origins: Arc::new(origins),
        });
        Ok(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origins_are_what_browsers_send() {
        assert_eq!(
            origin_of("https://App.Example.com/callback?x=1").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            origin_of("http://localhost:3000/cb").as_deref(),
            Some("http://localhost:3000")
        );
        assert_eq!(
            origin_of("https://example.com:443/").as_deref(),
            Some("https://example.com")
        );
        assert_eq!(origin_of("com.example.app:/callback"), None);
        assert_eq!(origin_of("not a url"), None);
    }
}
