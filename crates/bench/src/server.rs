//! The server under test, when the generator starts it: a child process running
//! [`portcullis::server::start`] (the generator's own executable, re-run with a hidden
//! `__serve` argument, or a `portcullis` binary given with `--server-bin`), so that its memory
//! is its own and can be read from `/proc/PID/status`, and its startup can be timed from
//! `exec` to the first successful `/readyz`.
//!
//! The child stops when its standard input closes: when the generator drops it, exits or dies,
//! no server is left behind.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// The hidden first argument that turns the generator into the server under test.
pub const SERVE_ARG: &str = "__serve";

/// The server's rate-limit settings the generator lifts (see [`ChildServer::start`]).
const BENCH_RATE_LIMITS: &[&str] = &[
    "PORTCULLIS_RATE_LIMIT_PER_ADDRESS_PER_MINUTE",
    "PORTCULLIS_RATE_LIMIT_STARTS_PER_ADDRESS_PER_MINUTE",
    "PORTCULLIS_RATE_LIMIT_PER_ACCOUNT_PER_MINUTE",
    "PORTCULLIS_RATE_LIMIT_TOKEN_PER_MINUTE",
];

/// A command put in front of the server's, e.g. `valgrind --tool=callgrind`.
pub const WRAPPER_ENV: &str = "PORTCULLIS_BENCH_SERVER_WRAPPER";

/// Runs the server in this process until standard input closes. Arguments: data dir, listen
/// address, public URL, and optionally a database URL.
pub fn serve_child(args: &[String]) -> anyhow::Result<()> {
    portcullis::prepare_process();
    let mut flags: BTreeMap<&'static str, String> = BTreeMap::new();
    for (key, value) in ["data_dir", "listen", "public_url", "database_url"]
        .into_iter()
        .zip(args)
    {
        flags.insert(key, value.clone());
    }
    flags
        .entry("log_level")
        .or_insert_with(|| "warn".to_string());
    let config = portcullis::config::resolve(None, std::env::vars(), &flags)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        portcullis::init_logging(&config);
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let mut server =
            portcullis::server::start(&config, listener, portcullis::server::Overrides::default())
                .await?;
        let stop = server.take_shutdown();
        // A blocking read on its own thread: the runtime's threads stay free for requests.
        std::thread::spawn(move || {
            let mut sink = [0u8; 64];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            if let Some(stop) = stop {
                let _ = stop.send(());
            }
        });
        server.wait().await
    })
}

/// Where and how to start the child.
#[derive(Clone)]
pub struct ChildSpec {
    pub server_bin: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub port: u16,
    /// The port of the public URL: this node's own, or (with `--nodes`) the first node's, so
    /// that every node has the same issuer and WebAuthn origin, as behind a load balancer.
    pub public_port: u16,
    pub database_url: Option<String>,
    pub secret_key: Option<String>,
}

impl ChildSpec {
    pub fn public_url(&self) -> String {
        // `localhost`, not the IP: it is the WebAuthn RP ID browsers accept.
        format!("http://localhost:{}", self.public_port)
    }

    pub fn listen_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A started server and how long it took to answer `/readyz`.
pub struct ChildServer {
    child: Child,
    pub startup: Duration,
}

/// A free TCP port on the loopback interface (free when asked; the child binds it at once).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl ChildServer {
    pub async fn start(spec: &ChildSpec, http: &reqwest::Client) -> anyhow::Result<ChildServer> {
        let listen = format!("127.0.0.1:{}", spec.port);
        let program = match &spec.server_bin {
            Some(bin) => bin.clone(),
            None => std::env::current_exe()?,
        };
        // A profiler in front of the server, e.g. `valgrind --tool=callgrind`: BENCHMARKS.md
        // says how the profile in it was taken.
        let wrapper: Vec<String> = std::env::var(WRAPPER_ENV)
            .map(|w| w.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let mut command = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        match &spec.server_bin {
            Some(_) => {
                command
                    .arg("serve")
                    .arg("--data-dir")
                    .arg(&spec.data_dir)
                    .arg("--listen")
                    .arg(&listen)
                    .arg("--public-url")
                    .arg(spec.public_url())
                    .arg("--log-level")
                    .arg("warn");
                if let Some(url) = &spec.database_url {
                    command.arg("--database-url").arg(url);
                }
            }
            None => {
                command
                    .arg(SERVE_ARG)
                    .arg(&spec.data_dir)
                    .arg(&listen)
                    .arg(spec.public_url());
                if let Some(url) = &spec.database_url {
                    command.arg(url);
                }
            }
        }
        // The server refuses PORTCULLIS_* variables it does not know.
        command.env_remove(WRAPPER_ENV);
        if let Some(key) = &spec.secret_key {
            command.env("PORTCULLIS_SECRET_KEY", key);
        }
        // The generator is one source address signing in as fast as the server answers, with
        // one application: the anonymous endpoints' per-address and per-client limits would
        // measure themselves. They stay in the path (each call is still checked), lifted out of
        // reach. Variables already set (to measure with limits) are kept.
        for name in BENCH_RATE_LIMITS {
            if std::env::var_os(name).is_none() {
                command.env(name, "1000000000");
            }
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let began = Instant::now();
        let mut child = command.spawn().context("cannot start the server")?;
        let ready = format!("{}/readyz", spec.listen_url());
        loop {
            if let Ok(r) = http.get(&ready).send().await
                && r.status().is_success()
            {
                break;
            }
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("the server exited before it was ready: {status}");
            }
            if began.elapsed() > Duration::from_secs(600) {
                let _ = child.kill();
                anyhow::bail!("the server was not ready within 600 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(ChildServer {
            startup: began.elapsed(),
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes the child's standard input (it shuts down gracefully) and waits for it.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stop_in_place()
    }

    fn stop_in_place(&mut self) -> anyhow::Result<()> {
        drop(self.child.stdin.take());
        let began = Instant::now();
        while self.child.try_wait()?.is_none() {
            if began.elapsed() > Duration::from_secs(30) {
                self.child.kill()?;
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Stops this server and starts it again on the same database and port.
    pub async fn restart(
        &mut self,
        spec: &ChildSpec,
        http: &reqwest::Client,
    ) -> anyhow::Result<()> {
        self.stop_in_place()?;
        *self = ChildServer::start(spec, http).await?;
        Ok(())
    }
}

/// Resident memory of a process in bytes: `(VmRSS, VmHWM)` from `/proc/PID/status` (Linux).
pub fn rss(pid: u32) -> Option<(u64, u64)> {
    let text =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The server's own resident memory gauge from `/metrics`, for a server this generator did not
/// start.
pub async fn rss_from_metrics(http: &reqwest::Client, base: &str) -> Option<u64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with("process_resident_memory_bytes "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

/// CPU time a process has used so far (user + system), from `/proc/PID/stat`; `self` for the
/// generator's own. Clock ticks are 100 a second on Linux.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / 100.0)
}
