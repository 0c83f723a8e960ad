//! A real browser for a test: Debian's Chromium, headless, driven over WebDriver through its
//! chromedriver (with `fantoccini`), plus the Chrome DevTools commands chromedriver passes on
//! (`goog/cdp/execute`) for what WebDriver lacks: the virtual passkey authenticator and the
//! user-agent override.
//!
//! Waiting is bounded polling: a condition is checked until it holds or a generous limit runs
//! out. The limit only stops a broken test from hanging; no assertion depends on how fast
//! anything is.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long a condition may take before the test gives up on it (a hang guard, not a check).
const PATIENCE: Duration = Duration::from_secs(45);

const INSTALL_HINT: &str =
    "run `sudo scripts/install-test-deps.sh` (it installs Debian's chromium and chromium-driver)";

/// Windows 11, Edge: the platform the story's policies let in.
pub const WINDOWS_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
/// Android, Chrome: the platform "Passkey test: unsupported platforms" blocks.
pub const ANDROID_UA: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";

fn chromium() -> PathBuf {
    let path = PathBuf::from(
        std::env::var("PORTCULLIS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
    );
    assert!(
        path.exists(),
        "Chromium is not installed at {}: the browser tests need it; {INSTALL_HINT}, or set PORTCULLIS_CHROMIUM",
        path.display()
    );
    path
}

fn chromedriver() -> PathBuf {
    let path = PathBuf::from(
        std::env::var("PORTCULLIS_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into()),
    );
    assert!(
        path.exists(),
        "chromedriver is not installed at {}: the browser tests need it; {INSTALL_HINT}, or set PORTCULLIS_CHROMEDRIVER",
        path.display()
    );
    path
}

/// `target/e2e-screenshots`, in whatever target directory cargo builds this test into
/// (`CARGO_TARGET_DIR` included): cargo tells integration tests their `target/tmp`.
pub fn screenshot_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("e2e-screenshots")
}

/// A chromedriver command that runs a Chrome DevTools Protocol method on the current page.
#[derive(Debug)]
struct Cdp {
    method: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.method, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}

pub struct Browser {
    pub client: Client,
    /// The server's address as the browser opens it (`http://localhost:PORT`).
    pub base: String,
    test: &'static str,
    shots: AtomicU32,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A fresh headless Chromium with its own profile, presenting itself with `user_agent`.
    pub async fn start(test: &'static str, base: &str, user_agent: &str) -> Browser {
        let chromium = chromium();
        let driver_path = chromedriver();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port for chromedriver")
            .port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("chromedriver did not start ({e}); {INSTALL_HINT}"));
        let webdriver = format!("http://127.0.0.1:{port}/");
        let http = reqwest::Client::new();
        let mut ready = false;
        for _ in 0..200 {
            if http
                .get(format!("{webdriver}status"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not answer on port {port}");
        // This test's screenshots from an earlier run go, so the folder shows only this run.
        if let Ok(entries) = std::fs::read_dir(screenshot_dir()) {
            // `<test>-<n>-…` only: "ca-editor" must not take "ca-editor-live"'s.
            let prefix = format!("{test}-");
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name
                    .strip_prefix(&prefix)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
                {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        let profile = tempfile::tempdir().expect("a profile folder");
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--user-agent={user_agent}"),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium, "args": args }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
            .unwrap_or_else(|e| panic!("Chromium did not start under chromedriver: {e}"));
        Browser {
            client,
            base: base.to_string(),
            test,
            shots: AtomicU32::new(0),
            driver,
            _profile: profile,
        }
    }

    pub async fn cdp(&self, method: &'static str, params: Value) -> Value {
        self.client
            .issue_cmd(Cdp { method, params })
            .await
            .unwrap_or_else(|e| panic!("DevTools {method} failed: {e}"))
    }

    /// A virtual passkey authenticator, as the notes describe it: CTAP 2.1, resident keys, user
    /// verification that always succeeds, presence confirmed automatically. `hybrid` is a phone
    /// reached through the browser's QR code; `internal` this device's own.
    pub async fn add_authenticator(&self, transport: &str) -> String {
        self.cdp("WebAuthn.enable", json!({ "enableUI": false }))
            .await;
        let added = self
            .cdp(
                "WebAuthn.addVirtualAuthenticator",
                json!({ "options": {
                    "protocol": "ctap2",
                    "ctap2Version": "ctap2_1",
                    "transport": transport,
                    "hasResidentKey": true,
                    "hasUserVerification": true,
                    "isUserVerified": true,
                    "automaticPresenceSimulation": true,
                }}),
            )
            .await;
        added["authenticatorId"]
            .as_str()
            .expect("an authenticator id")
            .to_string()
    }

    /// The credentials the virtual authenticator holds.
    pub async fn credentials(&self, authenticator: &str) -> Vec<Value> {
        let found = self
            .cdp(
                "WebAuthn.getCredentials",
                json!({ "authenticatorId": authenticator }),
            )
            .await;
        found["credentials"].as_array().cloned().unwrap_or_default()
    }

    /// Presents the browser as another device from now on (headers and `navigator`).
    pub async fn set_user_agent(&self, user_agent: &str) {
        self.cdp(
            "Network.setUserAgentOverride",
            json!({ "userAgent": user_agent }),
        )
        .await;
    }

    pub async fn goto(&self, path: &str) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("could not open {url}: {e}"));
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Runs `script` (a function body; `return` gives its value; promises are awaited).
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `condition` (a JavaScript expression) is true. On giving up it saves a
    /// screenshot and names what it waited for.
    pub async fn until(&self, what: &str, condition: &str) {
        let script = format!("try {{ return !!({condition}); }} catch (e) {{ return false; }}");
        let started = std::time::Instant::now();
        loop {
            // A navigation in progress makes a script fail; that is "not yet".
            if let Ok(Value::Bool(true)) = self.client.execute(&script, Vec::new()).await {
                return;
            }
            if started.elapsed() > PATIENCE {
                self.screenshot("gave-up").await;
                let body = self.text("body").await;
                panic!(
                    "[{}] gave up waiting for {what} at {}; the page says:\n{body}",
                    self.test,
                    self.path().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page shows `text` somewhere a person can see it.
    pub async fn until_text(&self, text: &str) {
        let quoted = serde_json::to_string(text).expect("text quotes");
        self.until(
            &format!("the text {text:?}"),
            &format!(
                "document.readyState === 'complete' && document.body.innerText.includes({quoted})"
            ),
        )
        .await;
    }

    /// Waits for the sign-in page's panel `name` to be the one shown.
    pub async fn until_panel(&self, name: &str) {
        self.until(
            &format!("the sign-in panel {name:?}"),
            &format!(
                "document.querySelector('[data-panel=\"{name}\"]') && !document.querySelector('[data-panel=\"{name}\"]').hidden"
            ),
        )
        .await;
    }

    /// Waits until the browser is at `path` (without query).
    pub async fn until_path(&self, path: &str) {
        self.until(
            &format!("the page {path}"),
            &format!("location.pathname === {path:?} && document.readyState === 'complete'"),
        )
        .await;
    }

    /// The visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Clicks the visible button or link whose text contains `label`, as a person would.
    pub async fn click(&self, label: &str) {
        self.click_within("", label).await;
    }

    /// Clicks the visible button or link whose text contains `label` inside the part of the
    /// page `scope` (an XPath) picks: the tab bar rather than the menu with the same word.
    pub async fn click_within(&self, scope: &str, label: &str) {
        let xpath = format!(
            "{scope}//*[self::button or self::a][contains(normalize-space(.), {})]",
            xpath_literal(label)
        );
        self.click_xpath(&xpath, &format!("{label:?}")).await;
    }

    /// Ticks, unticks or picks the checkbox or radio button labelled `label`, by its label.
    pub async fn choose(&self, label: &str) {
        let xpath = format!("//label[normalize-space(.)={}]", xpath_literal(label));
        self.click_xpath(&xpath, &format!("the option {label:?}"))
            .await;
    }

    /// Follows the link in the row of table `#table` that shows `text`.
    pub async fn open_row(&self, table: &str, text: &str) {
        let xpath = format!(
            "//table[@id={}]//tr[contains(normalize-space(.), {})]//a",
            xpath_literal(table),
            xpath_literal(text)
        );
        self.click_xpath(&xpath, &format!("a row showing {text:?} in #{table}"))
            .await;
    }

    async fn click_xpath(&self, xpath: &str, what: &str) {
        let started = std::time::Instant::now();
        loop {
            if let Ok(found) = self.client.find_all(Locator::XPath(xpath)).await {
                for element in found {
                    if element.is_displayed().await.unwrap_or(false)
                        && element.is_enabled().await.unwrap_or(false)
                        && element.click().await.is_ok()
                    {
                        return;
                    }
                }
            }
            if started.elapsed() > PATIENCE {
                self.screenshot("gave-up").await;
                panic!("[{}] nothing visible to click for {what}", self.test);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The visible text of each row of the table `#table`'s body.
    pub async fn rows(&self, table: &str) -> Vec<String> {
        let quoted = serde_json::to_string(table).expect("id quotes");
        let found = self
            .js(&format!(
                "return [...document.getElementById({quoted}).tBodies[0].rows].map(r => r.innerText);"
            ))
            .await;
        found
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Types into the visible field labelled `label`.
    pub async fn fill(&self, label: &str, value: &str) {
        let xpath = format!("//label[normalize-space(.)={}]", xpath_literal(label));
        let started = std::time::Instant::now();
        loop {
            if let Ok(labels) = self.client.find_all(Locator::XPath(&xpath)).await {
                for l in labels {
                    let Ok(Some(id)) = l.attr("for").await else {
                        continue;
                    };
                    let Ok(input) = self.client.find(Locator::Id(&id)).await else {
                        continue;
                    };
                    if input.is_displayed().await.unwrap_or(false) {
                        input.clear().await.expect("field clears");
                        input.send_keys(value).await.expect("typing works");
                        return;
                    }
                }
            }
            if started.elapsed() > PATIENCE {
                self.screenshot("gave-up").await;
                panic!("[{}] no visible field labelled {label:?}", self.test);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the page as `<test>-<n>-<name>.png` under [`screenshot_dir`].
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let n = self.shots.fetch_add(1, Ordering::SeqCst) + 1;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        let path = dir.join(format!("{}-{n:02}-{name}.png", self.test));
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::write(&path, png).expect("screenshot written");
        path
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test still stops its chromedriver (and with it Chromium).
        let _ = self.driver.kill();
    }
}

/// `text` as an XPath string literal (XPath 1.0 has no escapes; quotes are joined with concat).
fn xpath_literal(text: &str) -> String {
    if !text.contains('"') {
        format!("\"{text}\"")
    } else if !text.contains('\'') {
        format!("'{text}'")
    } else {
        let parts: Vec<String> = text.split('"').map(|p| format!("\"{p}\"")).collect();
        format!("concat({})", parts.join(", '\"', "))
    }
}
