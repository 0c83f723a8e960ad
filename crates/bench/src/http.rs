//! Requests as a browser on Windows makes them to the sign-in endpoints: JSON bodies, the
//! page's `Origin` (the same-origin guard wants it), a real user-agent string (Conditional
//! Access reads the platform from it), and the session cookie when there is one. `Browser`
//! (reqwest, pooled) serves provisioning and discovery; each worker's `Tab` holds its own
//! connection for the measured sign-ins.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, HOST, HeaderName};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
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

/// A worker's browser tab: one keep-alive HTTP/1.1 connection of its own, as a browser keeps
/// one to the site it is on. For `http://` servers the requests go straight through a hyper
/// connection; reqwest's pool, URL handling and middleware cost the generator about a third
/// of its CPU per sign-in, and on the benchmark machine every cycle the generator spends is
/// one the server under test does not get. `https://` servers go through reqwest (TLS).
pub struct Tab {
    browser: Browser,
    /// `None` when the base URL is not plain `http://`.
    plain: Option<PlainConnection>,
}

/// One HTTP/1.1 connection to `host:port`, opened again when the server closed it.
struct PlainConnection {
    authority: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// What went wrong on the wire, for the report's error kinds.
#[derive(Debug)]
pub enum Transport {
    Timeout,
    Connect,
    Other,
}

impl From<reqwest::Error> for Transport {
    fn from(e: reqwest::Error) -> Transport {
        if e.is_timeout() {
            Transport::Timeout
        } else if e.is_connect() {
            Transport::Connect
        } else {
            Transport::Other
        }
    }
}

impl Transport {
    pub fn kind(&self) -> &'static str {
        match self {
            Transport::Timeout => "timeout",
            Transport::Connect => "connect",
            Transport::Other => "transport",
        }
    }
}

/// As long as reqwest's timeout: a server that stops answering fails the sign-in, not the run.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl PlainConnection {
    async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, Transport> {
        if let Some(sender) = &mut self.sender
            && !sender.is_closed()
            && sender.ready().await.is_ok()
        {
            return Ok(self.sender.as_mut().expect("just checked"));
        }
        self.sender = None;
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|_| Transport::Connect)?;
        // Small requests, each awaited: Nagle's delay would only add latency.
        stream.set_nodelay(true).map_err(|_| Transport::Connect)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Transport::Connect)?;
        tokio::spawn(async move {
            // Ends when the server closes the connection or the tab is dropped; the next
            // request then opens a new one.
            let _ = connection.await;
        });
        Ok(self.sender.insert(sender))
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, &str)],
        body: Bytes,
    ) -> Result<Reply, Transport> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.authority)
            .header(USER_AGENT, WINDOWS_EDGE);
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|_| Transport::Other)?;
        let exchange = async {
            let response = self
                .ready()
                .await?
                .send_request(request)
                .await
                .map_err(|_| Transport::Other)?;
            let (parts, body) = response.into_parts();
            let bytes = body
                .collect()
                .await
                .map_err(|_| Transport::Other)?
                .to_bytes();
            Ok::<_, Transport>(Reply {
                session_cookie: session_cookie(&parts.headers),
                status: parts.status,
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                headers: parts.headers,
            })
        };
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .unwrap_or(Err(Transport::Timeout));
        if outcome.is_err() {
            // The connection may be half-used: start the next request on a new one.
            self.sender = None;
        }
        outcome
    }
}

impl Tab {
    pub fn new(browser: &Browser) -> Tab {
        let plain = browser
            .base
            .strip_prefix("http://")
            .map(|rest| PlainConnection {
                authority: rest.split('/').next().unwrap_or(rest).to_string(),
                sender: None,
            });
        Tab {
            browser: browser.clone(),
            plain,
        }
    }

    /// The page origin (the WebAuthn origin of the passkeys).
    pub fn origin(&self) -> &str {
        &self.browser.origin
    }

    pub async fn get(&mut self, path_and_query: &str) -> Result<Reply, Transport> {
        let Some(plain) = &mut self.plain else {
            return Ok(self.browser.get(path_and_query).await?);
        };
        plain
            .send(Method::GET, path_and_query, &[], Bytes::new())
            .await
    }

    pub async fn post(
        &mut self,
        path: &str,
        session: Option<&str>,
        body: &Value,
    ) -> Result<Reply, Transport> {
        let Some(plain) = &mut self.plain else {
            return Ok(self.browser.post(path, session, body).await?);
        };
        let json = serde_json::to_vec(body).map_err(|_| Transport::Other)?;
        let cookie = session.map(|token| format!("{SESSION_COOKIE}={token}"));
        let mut headers = vec![
            (ORIGIN, self.browser.origin.as_str()),
            (CONTENT_TYPE, "application/json"),
        ];
        if let Some(cookie) = &cookie {
            headers.push((COOKIE, cookie.as_str()));
        }
        plain
            .send(Method::POST, path, &headers, Bytes::from(json))
            .await
    }

    pub async fn post_form(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<Reply, Transport> {
        let Some(plain) = &mut self.plain else {
            return Ok(self.browser.post_form(path, form).await?);
        };
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        plain
            .send(
                Method::POST,
                path,
                &[(CONTENT_TYPE, "application/x-www-form-urlencoded")],
                Bytes::from(body),
            )
            .await
    }
}

/// Percent-encodes a query or form value (RFC 3986 unreserved characters pass).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
