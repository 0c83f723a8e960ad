//! Requests as a browser on Windows makes them to the sign-in endpoints: JSON bodies, the
//! page's `Origin` (the same-origin guard wants it), a real user-agent string (Conditional
//! Access reads the platform from it), and the session cookie when there is one.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, ORIGIN, SET_COOKIE, USER_AGENT};
use serde_json::Value;

pub const WINDOWS_EDGE: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";

pub const SESSION_COOKIE: &str = "portcullis_session";

#[derive(Clone)]
pub struct Browser {
    pub http: reqwest::Client,
    /// Where requests go (may be `127.0.0.1` while `origin` says `localhost`).
    pub base: String,
    /// The server's public URL: the page origin and the WebAuthn origin.
    pub origin: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub session_cookie: Option<String>,
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers.get_all(SET_COOKIE).iter().find_map(|v| {
        let pair = v.to_str().ok()?.split(';').next()?;
        pair.strip_prefix(SESSION_COOKIE)?
            .strip_prefix('=')
            .map(str::to_string)
    })
}

impl Browser {
    pub fn new(base: &str, origin: &str) -> anyhow::Result<Browser> {
        let http = reqwest::Client::builder()
            // Redirects are part of what is measured: each one is followed by hand.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(1024)
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(Browser {
            http,
            base: base.trim_end_matches('/').to_string(),
            origin: origin.trim_end_matches('/').to_string(),
        })
    }

    async fn finish(response: reqwest::Response) -> Result<Reply, reqwest::Error> {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        Ok(Reply {
            session_cookie: session_cookie(&headers),
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }

    pub async fn post(
        &self,
        path: &str,
        session: Option<&str>,
        body: &Value,
    ) -> Result<Reply, reqwest::Error> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(USER_AGENT, WINDOWS_EDGE)
            .header(ORIGIN, &self.origin)
            .json(body);
        if let Some(token) = session {
            request = request.header("cookie", format!("{SESSION_COOKIE}={token}"));
        }
        Self::finish(request.send().await?).await
    }

    pub async fn get(&self, path_and_query: &str) -> Result<Reply, reqwest::Error> {
        let request = self
            .http
            .get(format!("{}{path_and_query}", self.base))
            .header(USER_AGENT, WINDOWS_EDGE);
        Self::finish(request.send().await?).await
    }

    pub async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<Reply, reqwest::Error> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(USER_AGENT, WINDOWS_EDGE)
            .form(form);
        Self::finish(request.send().await?).await
    }
}
