//! The `portcullis` binary as a person runs it: started as a child process, read from its
//! standard output, signed in to with what it printed. Nothing here reads the server's
//! internals; if the program stops printing the pass, these tests fail.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "binary/admin.rs"]
mod admin;
#[path = "binary/backup.rs"]
mod backup;
#[path = "binary/deploy.rs"]
mod deploy;

const BINARY: &str = env!("CARGO_BIN_EXE_portcullis");

/// A free loopback port: bound, noted, released.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Running {
    child: Child,
    url: String,
    /// Every line printed until the server said it was running.
    printed: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_command(data: &Path, port: u16) -> Command {
    let mut command = Command::new(BINARY);
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(data)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--public-url")
        .arg(format!("http://localhost:{port}"))
        .arg("--log-level")
        .arg("warn")
        .env_remove("PORTCULLIS_CONFIG")
        .env_remove("PORTCULLIS_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Starts `portcullis serve` and reads its output until it says it is running.
fn serve(data: &Path) -> Running {
    serve_with(data, |_| {})
}

/// As [`serve`], with the command changed first (an environment variable, a flag).
fn serve_with(data: &Path, configure: impl FnOnce(&mut Command)) -> Running {
    let port = free_port();
    let mut command = serve_command(data, port);
    configure(&mut command);
    let mut child = command.spawn().expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let (lines, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut printed = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let running = line.starts_with("Portcullis is running at");
                printed.push(line);
                if running {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                let mut errors = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut errors);
                }
                panic!(
                    "the server never said it was running; printed {printed:?}; stderr {errors}"
                );
            }
        }
    }
    Running {
        child,
        url: format!("http://localhost:{port}"),
        printed,
    }
}

/// The value printed after `label` on a line of its own (`  Label:   value`).
fn printed_value(lines: &[String], label: &str) -> Option<String> {
    lines.iter().find_map(|line| {
        line.trim_start()
            .strip_prefix(label)
            .map(|rest| rest.trim().to_string())
    })
}

struct Printed {
    administrator: String,
    pass: String,
}

fn first_start_output(lines: &[String]) -> Option<Printed> {
    Some(Printed {
        administrator: printed_value(lines, "Administrator:")?,
        pass: printed_value(lines, "Temporary Access Pass:")?,
    })
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// Signs in with a pass the way the sign-in page's script does; the session cookie on success.
async fn sign_in_with_pass(url: &str, username: &str, pass: &str) -> (u16, Option<String>) {
    let response = http()
        .post(format!("{url}/auth/tap"))
        .json(&serde_json::json!({"username": username, "temporaryAccessPass": pass}))
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let session = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("portcullis_session="))
        .and_then(|v| v.split(';').next())
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    (status, session)
}

/// The automation credentials in `bootstrap.json` get an access token.
async fn bootstrap_file_works(url: &str, data: &Path) -> bool {
    let text = std::fs::read_to_string(data.join("bootstrap.json")).expect("bootstrap.json");
    let file: serde_json::Value = serde_json::from_str(&text).expect("bootstrap.json is JSON");
    let reply = http()
        .post(format!("{url}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", file["clientId"].as_str().unwrap_or_default()),
            (
                "client_secret",
                file["clientSecret"].as_str().unwrap_or_default(),
            ),
        ])
        .send()
        .await
        .expect("the server answers");
    reply.status().is_success()
}

/// Runs `portcullis ARGS…` to the end: exit code and standard output.
fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BINARY)
        .args(args)
        .env_remove("PORTCULLIS_CLIENT_ID")
        .env_remove("PORTCULLIS_CLIENT_SECRET")
        .env_remove("PORTCULLIS_URL")
        .output()
        .expect("the binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn data_folder() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let data = dir.path().join("data");
    (dir, data)
}

#[tokio::test(flavor = "multi_thread")]
async fn first_start_prints_a_pass_that_signs_the_administrator_in_once() {
    let (_dir, data) = data_folder();
    let server = serve(&data);
    let printed = first_start_output(&server.printed)
        .unwrap_or_else(|| panic!("first start printed no pass: {:?}", server.printed));
    assert_eq!(printed.administrator, "admin@portcullis.local");
    assert!(printed.pass.len() >= 8, "{}", printed.pass);
    let sign_in_line = printed_value(&server.printed, "Sign in at:").expect("a sign-in address");
    assert_eq!(sign_in_line, format!("{}/signin", server.url));
    assert!(
        server
            .printed
            .iter()
            .any(|l| l.contains("(works once, until ")),
        "the pass's expiry is printed: {:?}",
        server.printed
    );
    assert!(bootstrap_file_works(&server.url, &data).await);
    let text = std::fs::read_to_string(data.join("bootstrap.json")).unwrap();
    assert!(
        !text.contains(&printed.pass),
        "the pass is printed, never written to a file"
    );

    let (status, session) =
        sign_in_with_pass(&server.url, &printed.administrator, &printed.pass).await;
    assert_eq!(status, 200);
    assert!(
        session.is_some(),
        "signing in with the printed pass gives a session"
    );
    let (again, none) = sign_in_with_pass(&server.url, &printed.administrator, &printed.pass).await;
    assert_ne!(again, 200, "the printed pass works once");
    assert!(none.is_none());
    drop(server);

    // The second start finds the tenant and hands out nothing.
    let again = serve(&data);
    assert!(
        first_start_output(&again.printed).is_none(),
        "a later start prints no pass: {:?}",
        again.printed
    );
    assert!(bootstrap_file_works(&again.url, &data).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_administrator_whose_pass_is_gone_gets_another_from_the_command_line() {
    let (_dir, data) = data_folder();
    let server = serve(&data);
    let printed = first_start_output(&server.printed).expect("first start printed a pass");
    let data_arg = data.to_str().unwrap();

    let (code, out, err) = run(&[
        "passes",
        "issue",
        &printed.administrator,
        "--lifetime",
        "60",
        "--once",
        "--data-dir",
        data_arg,
        "--url",
        &server.url,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let pass = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Temporary Access Pass"))
        .map(|rest| rest.trim_start_matches(':').trim().to_string())
        .unwrap_or_else(|| panic!("no pass printed: {out}"));
    assert_ne!(pass, printed.pass, "a new pass replaces the first");
    assert!(out.contains("Lifetime (minutes)"), "{out}");

    // The first pass was replaced; the new one signs in, once.
    let (old, _) = sign_in_with_pass(&server.url, &printed.administrator, &printed.pass).await;
    assert_ne!(old, 200);
    let (status, session) = sign_in_with_pass(&server.url, &printed.administrator, &pass).await;
    assert_eq!(status, 200);
    assert!(session.is_some());

    let (code, out, _) = run(&[
        "passes",
        "show",
        &printed.administrator,
        "--json",
        "--data-dir",
        data_arg,
        "--url",
        &server.url,
    ]);
    assert_eq!(code, 0);
    let shown: serde_json::Value = serde_json::from_str(&out).expect("--json prints JSON");
    assert_eq!(
        shown["isUsable"], false,
        "a one-time pass is used up: {shown}"
    );
    assert!(
        shown.get("temporaryAccessPass").is_none_or(|p| p.is_null()),
        "show never reveals the pass: {shown}"
    );

    let (code, out, _) = run(&[
        "passes",
        "revoke",
        &printed.administrator,
        "--data-dir",
        data_arg,
        "--url",
        &server.url,
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = run(&[
        "passes",
        "show",
        &printed.administrator,
        "--data-dir",
        data_arg,
        "--url",
        &server.url,
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("has no Temporary Access Pass"), "{out}");

    let (code, _, err) = run(&[
        "passes",
        "issue",
        "nobody@portcullis.local",
        "--data-dir",
        data_arg,
        "--url",
        &server.url,
    ]);
    assert_ne!(code, 0, "an unknown user is an error");
    assert!(!err.trim().is_empty());
}

/// Kill -9 at moments spread over a first start, then start again: whatever moment it died at,
/// the last pass printed signs the administrator in and bootstrap.json works. (A tenant created
/// without its pass shown, or a pass shown for a tenant never created, fails this.)
#[tokio::test(flavor = "multi_thread")]
async fn a_first_start_killed_at_any_moment_leaves_an_installation_someone_can_enter() {
    // How long a whole first start takes here, to spread the kills across it.
    let (_dir, data) = data_folder();
    let began = Instant::now();
    drop(serve(&data));
    let whole = began.elapsed();

    const KILLS: u32 = 12;
    let mut created_by_killed = 0;
    for i in 0..KILLS {
        let (_dir, data) = data_folder();
        let port = free_port();
        let mut child = serve_command(&data, port)
            .spawn()
            .expect("the binary starts");
        std::thread::sleep(whole * i / KILLS);
        child.kill().expect("kill -9");
        let mut killed_output = String::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut killed_output);
        }
        let _ = child.wait();
        let killed_lines: Vec<String> = killed_output.lines().map(str::to_string).collect();

        let server = serve(&data);
        let last = match first_start_output(&server.printed) {
            Some(printed) => printed,
            None => {
                created_by_killed += 1;
                first_start_output(&killed_lines).unwrap_or_else(|| {
                    panic!(
                        "kill {i}: the tenant exists but no run printed its pass \
                         (killed run printed {killed_lines:?})"
                    )
                })
            }
        };
        let (status, session) =
            sign_in_with_pass(&server.url, &last.administrator, &last.pass).await;
        assert_eq!(
            (status, session.is_some()),
            (200, true),
            "kill {i}: the last pass printed signs the administrator in"
        );
        assert!(
            bootstrap_file_works(&server.url, &data).await,
            "kill {i}: bootstrap.json holds working credentials"
        );
    }
    // Not asserted (timing decides it), but a run that never kills after the commit tests
    // only half of the windows: say so in the output.
    eprintln!("{created_by_killed} of {KILLS} killed starts had committed before the kill");
}

#[test]
fn check_config_opens_the_country_database_it_names() {
    let (dir, data) = data_folder();
    let bad = dir.path().join("GeoLite2-Country.mmdb");
    std::fs::write(&bad, b"not a MaxMind database").unwrap();
    let output = Command::new(BINARY)
        .args(["check-config", "--data-dir"])
        .arg(&data)
        .env_remove("PORTCULLIS_CONFIG")
        .env("PORTCULLIS_GEOIP_COUNTRY_DATABASE", &bad)
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("geoip_country_database"), "{stderr}");

    let fine = Command::new(BINARY)
        .args(["check-config", "--data-dir"])
        .arg(&data)
        .env_remove("PORTCULLIS_CONFIG")
        .env_remove("PORTCULLIS_GEOIP_COUNTRY_DATABASE")
        .output()
        .expect("the binary runs");
    assert!(
        fine.status.success(),
        "{}",
        String::from_utf8_lossy(&fine.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ca_replay_answers_on_the_command_line_and_names_a_missing_file() {
    let (dir, data) = data_folder();
    let server = serve(&data);
    let data_arg = data.to_str().unwrap();
    let (code, out, err) = run(&[
        "ca",
        "replay",
        "--days",
        "7",
        "--json",
        "--data-dir",
        data_arg,
        "--url",
        &server.url,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("--json prints JSON");
    assert_eq!(report["changed"], 0, "{report}");
    assert!(report["evaluated"].is_u64(), "{report}");

    let missing = dir.path().join("no-such-policies.json");
    let (code, out, err) = run(&[
        "ca",
        "replay",
        "--policies",
        missing.to_str().unwrap(),
        "--data-dir",
        data_arg,
        "--url",
        &server.url,
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("no-such-policies.json"), "{err}");
}

#[test]
fn policy_analyze_exits_1_on_a_lockout_and_2_on_bad_input() {
    let (dir, _) = data_folder();
    let policy = dir.path().join("block-everyone.json");
    std::fs::write(
        &policy,
        serde_json::json!({
            "id": "b0000000-0000-4000-8000-000000000001",
            "displayName": "Block everyone",
            "state": "enabled",
            "conditions": {
                "users": {"includeUsers": ["All"]},
                "applications": {"includeApplications": ["All"]},
                "clientAppTypes": ["all"]
            },
            "grantControls": {"operator": "OR", "builtInControls": ["block"]}
        })
        .to_string(),
    )
    .unwrap();
    let (code, out, err) = run(&["policy", "analyze", "--json", policy.to_str().unwrap()]);
    assert_eq!(code, 1, "a high finding exits 1: {out}{err}");
    let analysis: serde_json::Value = serde_json::from_str(&out).expect("--json prints JSON");
    let kinds: Vec<&str> = analysis["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"lockout"), "{kinds:?}");
    assert!(kinds.contains(&"unexcludedBlock"), "{kinds:?}");

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{ not json").unwrap();
    let (code, _, err) = run(&["policy", "analyze", broken.to_str().unwrap()]);
    assert_eq!(code, 2, "bad input exits 2: {err}");
    assert!(err.contains("broken.json"), "{err}");
}

/// The key ids the running server publishes.
async fn published_kids(url: &str) -> Vec<String> {
    let keys: serde_json::Value = http()
        .get(format!("{url}/discovery/v2.0/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_rotate_says_when_the_new_key_signs_and_publishes_it_at_once() {
    let (_dir, data) = data_folder();
    let server = serve(&data);
    let data_arg = data.to_str().unwrap();
    let before = published_kids(&server.url).await;
    assert_eq!(before.len(), 2, "an ES256 and an RS256 key: {before:?}");

    let (code, out, err) = run(&["keys", "rotate", "--data-dir", data_arg]);
    assert_eq!(code, 0, "{out}{err}");
    // One line per algorithm, each naming its new key and when it signs.
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("A new ES256 signing key is published: "),
        "{out}"
    );
    assert!(
        lines[1].starts_with("A new RS256 signing key is published: "),
        "{out}"
    );
    assert!(lines.iter().all(|l| l.contains("signs from")), "{out}");
    let new_kids: Vec<String> = lines
        .iter()
        .map(|line| {
            line.split("published: ")
                .nth(1)
                .and_then(|rest| rest.split('.').next())
                .expect("the new key's id")
                .to_string()
        })
        .collect();
    // A running node reloads its keys every minute; a restart shows the new ones at once.
    drop(server);
    let again = serve(&data);
    let kids = published_kids(&again.url).await;
    for kid in new_kids.iter().chain(&before) {
        assert!(kids.contains(kid), "{kid} in {kids:?}");
    }

    let (code, out, err) = run(&["keys", "rotate", "--immediately", "--data-dir", data_arg]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("is in use").count(), 2, "{out}");
}
