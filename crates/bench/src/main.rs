//! # portcullis-bench — the load generator
//!
//! Performs complete sign-ins against a Portcullis server (passkey, the figure the targets are
//! about; password with an authenticator app; a new person's pass and first passkey) and
//! reports throughput,
//! latency (p50/p95/p99, per leg too), errors by kind, the server's resident memory (peak under
//! load and idle), its startup-to-ready time on an existing database, and this machine's ES256
//! verification rate measured with `ring` in the same run, so the sign-in rate reads as a
//! fraction of the physical floor. BENCHMARKS.md says how to run it and what it found.
//!
//! With `--postgres URL --nodes N` it starts N server processes on one scratch database (each
//! on its own port, all with the first one's public URL, as behind a load balancer), spreads
//! the workers across them, and reports the aggregate: throughput and latency over every
//! sign-in, server CPU summed over the nodes, and each node's memory.
//!
//! It owns the generator's side only: provisioning through the admin API and the sign-in
//! endpoints, the software passkeys, the OIDC relying party's checks, and the measurements.
//! What it must never do: reach into the server's database or internals (everything goes over
//! HTTP, as a browser and an application would), skip a check a real relying party makes on
//! what it gets back, or run as part of the test suite (figures come from benchmarks, never
//! from timed tests).

mod floor;
mod http;
mod passkey;
mod provision;
mod server;
mod signin;
mod totp;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use portcullis_client::AdminClient;
use portcullis_client::Credentials;

use crate::http::{Browser, Tab};
use crate::provision::{BenchUser, Method};
use crate::server::{ChildServer, ChildSpec};
use crate::signin::{LegTimes, Mode, Oidc};

/// Complete passkey sign-ins against Portcullis, measured.
#[derive(Parser, Debug)]
#[command(name = "portcullis-bench", version)]
struct Args {
    /// A running server to load (its public URL). Without it, the generator starts a server
    /// of its own as a child process on a scratch database.
    #[arg(long)]
    target: Option<String>,
    /// bootstrap.json of the --target server (otherwise PORTCULLIS_CLIENT_ID and
    /// PORTCULLIS_CLIENT_SECRET).
    #[arg(long)]
    bootstrap: Option<PathBuf>,
    /// Run the child server on a scratch database created on this PostgreSQL server (e.g.
    /// postgres://postgres@127.0.0.1:5432/test) instead of SQLite.
    #[arg(long)]
    postgres: Option<String>,
    /// Start this `portcullis` binary (`serve`) as the child instead of the generator's own
    /// copy of the server.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Keep the child's data folder here instead of a temporary one.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// People to provision; at least --concurrency, since one person never has two sign-ins
    /// in flight. Default: 256 for passkey; 2048 for password (each person's app shows a new
    /// code every 30 s, so N people allow at most N/30 sign-ins a second); 1536 for
    /// tap-registration (each person signs in once; the measured window ends when the people
    /// run out).
    #[arg(long)]
    users: Option<usize>,
    /// Sign-ins in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 5.0)]
    warm_up: f64,
    /// What the people sign in with.
    #[arg(long, value_enum, default_value = "passkey")]
    mode: Mode,
    /// Conditional Access policies created for the run.
    #[arg(long, default_value_t = 50)]
    policies: usize,
    /// Sign in through `/signin/flows` only, even if the server offers OIDC.
    #[arg(long)]
    no_oidc: bool,
    /// Server processes to start on the one --postgres database (worker w signs in through
    /// node w mod N). The last line's rss-mb is the largest node's.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// After the load, read this many pages of `auditLogs/signIns?$top=100` one after another
    /// (and then as many at once), and report their size, time and the server's memory while
    /// it wrote them. 0 skips it.
    #[arg(long, default_value_t = 5)]
    log_pages: usize,
}

fn main() -> anyhow::Result<()> {
    let raw: Vec<String> = std::env::args().collect();
    if raw.get(1).map(String::as_str) == Some(server::SERVE_ARG) {
        return server::serve_child(&raw[2..]);
    }
    let mut args = Args::parse();
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(args.nodes > 0, "--nodes must be at least 1");
    anyhow::ensure!(
        args.nodes == 1 || (args.postgres.is_some() && args.target.is_none()),
        "--nodes above 1 needs --postgres (the nodes share one database) and no --target"
    );
    anyhow::ensure!(
        args.concurrency >= args.nodes,
        "--concurrency must be at least --nodes: every node gets a worker"
    );
    let users = *args.users.get_or_insert(match args.mode {
        Mode::Passkey => 256,
        Mode::Password => 2048,
        Mode::TapRegistration => 1536,
    });
    anyhow::ensure!(
        users >= args.concurrency,
        "--users must be at least --concurrency: one person never has two sign-ins in flight"
    );
    anyhow::ensure!(
        args.mode != Mode::TapRegistration || args.policies >= 5,
        "tap-registration needs --policies 5 or more: policy 4 is the one that holds the new \
         people to phishing-resistant MFA and so sends them to register a passkey"
    );
    // The generator shares the machine with the server, like a real client would not
    // (BENCHMARKS.md says so), so it keeps to one worker thread: it needs about a quarter of
    // a core, and a second thread only adds wake-ups across cores that the server pays for.
    // (The ES256 floor is measured on threads of its own, one per core.)
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// Where the server is and how to watch its memory.
// One value per run: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Target {
    Child {
        server: ChildServer,
        spec: ChildSpec,
        first_start: Duration,
        /// Nodes 2..N, each with its own data folder (its log and key files), started on the
        /// database the first one made.
        others: Vec<(ChildServer, ChildSpec, tempfile::TempDir)>,
        _data: Option<tempfile::TempDir>,
        _scratch: Option<portcullis_store::testing::ScratchDatabase>,
    },
    External,
}

async fn run(args: Args) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("machine: {cores} cores, {}", cpu_model());
    println!("load average at start: {}", load_average());
    let run = run_id();
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;

    let (browser, admin_credentials, mut target) = match &args.target {
        Some(url) => {
            let credentials = match &args.bootstrap {
                Some(path) => {
                    let mut c = Credentials::from_bootstrap_file(path)?;
                    c.url = url.trim_end_matches('/').to_string();
                    c
                }
                None => Credentials::from_env()?.context(
                    "--target needs --bootstrap FILE or PORTCULLIS_CLIENT_ID/PORTCULLIS_CLIENT_SECRET",
                )?,
            };
            (Browser::new(url, url)?, credentials, Target::External)
        }
        None => {
            let (data, dir) = match &args.data_dir {
                Some(d) => (None, d.clone()),
                None => {
                    let t = tempfile::tempdir()?;
                    let p = t.path().to_path_buf();
                    (Some(t), p)
                }
            };
            let (scratch, database_url, secret_key) = match &args.postgres {
                Some(base) => {
                    let db = portcullis_store::testing::ScratchDatabase::postgres(base)
                        .await
                        .context("creating a scratch PostgreSQL database")?;
                    let url = db.url().to_string();
                    let key = {
                        use base64::Engine as _;
                        let mut k = [0u8; 32];
                        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut k)
                            .map_err(|_| anyhow::anyhow!("no randomness"))?;
                        base64::engine::general_purpose::STANDARD.encode(k)
                    };
                    (Some(db), Some(url), Some(key))
                }
                None => (None, None, None),
            };
            let port = server::free_port()?;
            let spec = ChildSpec {
                server_bin: args.server_bin.clone(),
                data_dir: dir.clone(),
                port,
                public_port: port,
                database_url,
                secret_key,
            };
            let server = ChildServer::start(&spec, &probe).await?;
            let first_start = server.startup;
            let credentials = Credentials::from_bootstrap_file(dir.join("bootstrap.json"))
                .map(|mut c| {
                    c.url = spec.listen_url();
                    c
                })
                .context("reading the child's bootstrap.json")?;
            (
                Browser::new(&spec.listen_url(), &spec.public_url())?,
                credentials,
                Target::Child {
                    server,
                    spec,
                    first_start,
                    others: Vec::new(),
                    _data: data,
                    _scratch: scratch,
                },
            )
        }
    };
    let database = match (&args.target, &args.postgres) {
        (Some(_), _) => "as configured on the target",
        (None, Some(_)) => "PostgreSQL (scratch database)",
        (None, None) => "SQLite (scratch data folder)",
    };
    println!("database: {database}");
    if args.nodes > 1 {
        println!(
            "nodes: {} server processes on the one database, workers spread evenly",
            args.nodes
        );
    }

    let admin = AdminClient::with_credentials(admin_credentials)
        .await
        .context("connecting to the admin API")?;
    let began = Instant::now();
    let users = args.users.unwrap_or_default();
    let tenant = provision::tenant(&admin, &browser, &run, users, args.policies, args.mode).await?;
    let with = match args.mode {
        Mode::Passkey => "a passkey each",
        Mode::Password => "a password and an authenticator app each",
        Mode::TapRegistration => "a one-time Temporary Access Pass each",
    };
    println!(
        "provisioned {} people with {with} and {} Conditional Access policies in {:.1} s",
        tenant.users.len(),
        tenant.policies,
        began.elapsed().as_secs_f64()
    );

    // The measured server starts afresh on the database just filled: startup on an existing
    // database, idle memory, and a peak that provisioning (argon2) did not set. Same port, so
    // the same public URL: the passkeys' origin and the token issuer stay valid.
    let mut startup = None;
    let mut first_start = None;
    let mut pids = Vec::new();
    // Fresh connections for the fresh server; one browser per node.
    let mut browsers = vec![Browser::new(&browser.base, &browser.origin)?];
    if let Target::Child {
        server,
        spec,
        first_start: first,
        others,
        ..
    } = &mut target
    {
        first_start = Some(*first);
        server.restart(spec, &probe).await?;
        startup = Some(server.startup);
        pids.push(server.pid());
        for _ in 1..args.nodes {
            let data = tempfile::tempdir()?;
            let node = ChildSpec {
                data_dir: data.path().to_path_buf(),
                port: server::free_port()?,
                ..spec.clone()
            };
            let started = ChildServer::start(&node, &probe).await?;
            pids.push(started.pid());
            browsers.push(Browser::new(&node.listen_url(), &node.public_url())?);
            others.push((started, node, data));
        }
    }
    let browser = browsers[0].clone();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = if pids.is_empty() {
        server::rss_from_metrics(&probe, &browser.base).await
    } else {
        let each: Vec<u64> = pids
            .iter()
            .filter_map(|pid| server::rss(*pid).map(|(rss, _)| rss))
            .collect();
        each.iter().max().copied()
    };

    let oidc = if args.no_oidc {
        None
    } else {
        Oidc::discover(&browser).await?
    };
    let method = match args.mode {
        Mode::Passkey => "passkey options -> assertion",
        Mode::Password => "identify -> password -> authenticator app code",
        Mode::TapRegistration => {
            "identify -> pass -> more information required -> new passkey registered -> assertion proves it"
        }
    };
    println!(
        "sign-in path: {}",
        if oidc.is_some() {
            format!("OIDC authorize (PKCE) -> {method} -> code -> token -> ID token validated")
        } else {
            format!("POST /signin/flows -> {method} -> granted (no OIDC on this server)")
        }
    );

    let load = Load {
        browsers,
        client_id: tenant.client_id.clone(),
        oidc: oidc.map(Arc::new),
        mode: args.mode,
    };
    let measured = load
        .run(
            tenant.users,
            args.concurrency,
            Duration::from_secs_f64(args.warm_up),
            Duration::from_secs_f64(args.duration),
            &pids,
            &probe,
        )
        .await?;

    let peak_rss = measured.peak_rss.iter().copied().max().unwrap_or(0);
    // Each node's high-water mark; the largest is the one the last line reports.
    let hwms: Vec<u64> = pids
        .iter()
        .map(|pid| server::rss(*pid).map_or(0, |(_, hwm)| hwm))
        .collect();
    let log_pages = if args.log_pages > 0 {
        Some(read_log_pages(&admin, args.log_pages, pids.first().copied()).await?)
    } else {
        None
    };
    let hwm = hwms.iter().copied().max();
    if let Target::Child { server, others, .. } = target {
        server.stop()?;
        for (node, _, _) in others {
            node.stop()?;
        }
    }
    // Measured after the server stopped, on every core, so it is the machine's rate and
    // not what is left beside a loaded server.
    let per_core = floor::verify_rate_one_core(Duration::from_millis(1500));
    let machine = floor::verify_rate_machine(cores, Duration::from_millis(1500));

    measured.report(args.concurrency, args.mode, users);
    if let Some(s) = first_start {
        println!(
            "startup to ready, new database (creates the tenant): {:.0} ms",
            s.as_secs_f64() * 1e3
        );
    }
    match startup {
        Some(s) => println!(
            "startup to ready, existing database: {:.0} ms",
            s.as_secs_f64() * 1e3
        ),
        None => println!("startup to ready: not measured (--target)"),
    }
    match idle_rss {
        Some(b) => println!("server idle RSS: {:.1} MB", mb(b)),
        None => println!("server idle RSS: unknown"),
    }
    println!(
        "server peak RSS under load (sampled): {:.1} MB",
        mb(peak_rss)
    );
    if let Some(hwm) = hwm {
        println!(
            "server VmHWM (whole life of the measured process): {:.1} MB",
            mb(hwm)
        );
    }
    if pids.len() > 1 {
        for (i, (peak, hwm)) in measured.peak_rss.iter().zip(&hwms).enumerate() {
            println!(
                "  node {}: peak RSS under load {:.1} MB, VmHWM {:.1} MB",
                i + 1,
                mb(*peak),
                mb(*hwm)
            );
        }
    }
    if let Some(pages) = &log_pages {
        pages.report();
    }
    println!(
        "ES256 verify with ring: {per_core:.0}/s on one core, {machine:.0}/s on {cores} cores at once"
    );
    println!("load average at end: {}", load_average());
    let rate = measured.throughput();
    let rss_mb = mb(hwm.unwrap_or(peak_rss));
    println!(
        "{}: {:.0} p50-ms: {:.1} p99-ms: {:.1} rss-mb: {:.1} es256-verify-per-s: {:.0} ratio: {:.3}",
        args.mode.rate_name(),
        rate,
        measured.percentile_ms(50.0),
        measured.percentile_ms(99.0),
        rss_mb,
        machine,
        rate / machine
    );
    Ok(())
}

/// Pages of the sign-in log read after the load: what an administrator's script or the portal
/// asks for, at the size the run's policies make each entry.
struct LogPages {
    /// Bytes of each page's JSON (as re-serialised by the generator, without whitespace).
    bytes: Vec<usize>,
    /// Each sequential read's time, sorted.
    sequential: Vec<Duration>,
    /// Entries on the first page.
    entries: usize,
    /// Reads at once in the burst, and how long the burst took.
    burst: (usize, Duration),
    /// The server's resident memory: just before the reads, and its high-water mark over
    /// them (VmHWM, reset before the reads when the kernel allows it, else the life peak).
    rss_before: Option<u64>,
    hwm: Option<u64>,
    hwm_reset: bool,
}

async fn read_log_pages(
    admin: &AdminClient,
    pages: usize,
    pid: Option<u32>,
) -> anyhow::Result<LogPages> {
    let rss_before = pid.and_then(server::rss).map(|(rss, _)| rss);
    // Writing 5 to clear_refs resets the process's VmHWM to its current RSS, so the mark
    // read afterwards is the peak of the page reads alone, not of the load before them.
    let hwm_reset =
        pid.is_some_and(|p| std::fs::write(format!("/proc/{p}/clear_refs"), "5").is_ok());
    let query = [("$top", "100".to_string())];
    let mut bytes = Vec::new();
    let mut sequential = Vec::new();
    let mut entries = 0;
    for _ in 0..pages {
        let began = Instant::now();
        let page = admin
            .request(reqwest::Method::GET, "/auditLogs/signIns", &query, None)
            .await
            .context("reading a page of the sign-in log")?;
        sequential.push(began.elapsed());
        entries = page["value"].as_array().map_or(0, Vec::len);
        bytes.push(serde_json::to_vec(&page)?.len());
    }
    let began = Instant::now();
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..pages {
        let admin = admin.clone();
        let query = query.clone();
        burst.spawn(async move {
            admin
                .request(reqwest::Method::GET, "/auditLogs/signIns", &query, None)
                .await
        });
    }
    while let Some(answer) = burst.join_next().await {
        answer?.context("reading a page of the sign-in log at once with others")?;
    }
    let burst = (pages, began.elapsed());
    sequential.sort();
    let hwm = pid.and_then(server::rss).map(|(_, hwm)| hwm);
    Ok(LogPages {
        bytes,
        sequential,
        entries,
        burst,
        rss_before,
        hwm,
        hwm_reset,
    })
}

impl LogPages {
    fn report(&self) {
        let size = self.bytes.iter().max().copied().unwrap_or(0);
        println!(
            "sign-in log, auditLogs/signIns?$top=100: {} entries, {:.2} MB a page; {} read one at a time: median {:.1} ms, slowest {:.1} ms; {} at once: {:.1} ms",
            self.entries,
            mb(size as u64),
            self.sequential.len(),
            ms(percentile(&self.sequential, 50.0)),
            ms(self.sequential.last().copied().unwrap_or_default()),
            self.burst.0,
            ms(self.burst.1),
        );
        if let (Some(before), Some(hwm)) = (self.rss_before, self.hwm) {
            println!(
                "server RSS while writing those pages: {:.1} MB before, {:.1} MB at most ({})",
                mb(before),
                mb(hwm),
                if self.hwm_reset {
                    "VmHWM reset before the reads"
                } else {
                    "VmHWM could not be reset: this is the process's life peak"
                }
            );
        }
    }
}

/// What every worker shares.
#[derive(Clone)]
struct Load {
    /// One per node; worker w uses node w mod N.
    browsers: Vec<Browser>,
    client_id: String,
    oidc: Option<Arc<Oidc>>,
    mode: Mode,
}

/// The figures of the measured window.
struct Measured {
    window: Duration,
    /// Each successful sign-in's total time, sorted.
    totals: Vec<Duration>,
    /// Each leg's times, sorted.
    legs: Vec<Vec<Duration>>,
    errors: BTreeMap<String, u64>,
    warm_up_errors: u64,
    /// When the people ran out before the window's end (tap-registration), the window was
    /// cut there.
    cut_short: bool,
    /// Times a worker waited for a person's next authenticator code (password).
    code_waits: u64,
    /// Each node's peak resident memory sampled in the window (one entry for --target).
    peak_rss: Vec<u64>,
    /// Sign-ins completed in the window through each node.
    per_node: Vec<usize>,
    /// CPU seconds the servers (summed over the nodes) and the generator used in the
    /// measured window.
    server_cpu: Option<f64>,
    generator_cpu: Option<f64>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Measured {
    fn throughput(&self) -> f64 {
        self.totals.len() as f64 / self.window.as_secs_f64()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        ms(percentile(&self.totals, p))
    }

    fn report(&self, concurrency: usize, mode: Mode, people: usize) {
        let failed: u64 = self.errors.values().sum();
        println!();
        if self.cut_short {
            println!(
                "the {people} people ran out before the window's end; the window was cut where they did"
            );
        }
        if mode == Mode::Password {
            println!(
                "{people} people, one authenticator code each per 30 s: at most {:.0} sign-ins/s \
                 once every code of the first 30 s is used (runs shorter than that are not bound \
                 by it); workers waited for a fresh code {} times",
                people as f64 / totp::STEP_SECONDS as f64,
                self.code_waits
            );
        }
        println!(
            "measured {:.1} s at concurrency {concurrency}: {} sign-ins completed, {} failed ({} failed during warm-up)",
            self.window.as_secs_f64(),
            self.totals.len(),
            failed,
            self.warm_up_errors
        );
        println!("throughput: {:.0} complete sign-ins/s", self.throughput());
        if self.per_node.len() > 1 {
            let each: Vec<String> = self
                .per_node
                .iter()
                .enumerate()
                .map(|(i, n)| format!("node {}: {n}", i + 1))
                .collect();
            println!("sign-ins completed by node: {}", each.join(", "));
        }
        println!(
            "latency (complete sign-in): p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.percentile_ms(50.0),
            self.percentile_ms(95.0),
            self.percentile_ms(99.0),
            ms(self.totals.last().copied().unwrap_or_default())
        );
        for (name, times) in mode.legs().iter().zip(&self.legs) {
            if times.iter().all(Duration::is_zero) {
                continue;
            }
            println!(
                "  {name:>9}: p50 {:.1} ms, p99 {:.1} ms",
                ms(percentile(times, 50.0)),
                ms(percentile(times, 99.0))
            );
        }
        let n = self.totals.len().max(1) as f64;
        let window = self.window.as_secs_f64();
        if let Some(cpu) = self.server_cpu {
            let nodes = if self.peak_rss.len() > 1 {
                format!(" (summed over {} nodes)", self.peak_rss.len())
            } else {
                String::new()
            };
            println!(
                "server CPU{nodes}: {:.2} cores busy, {:.2} ms per sign-in",
                cpu / window,
                cpu * 1e3 / n
            );
        }
        if let Some(cpu) = self.generator_cpu {
            println!(
                "generator CPU: {:.2} cores busy, {:.2} ms per sign-in",
                cpu / window,
                cpu * 1e3 / n
            );
        }
        if self.errors.is_empty() {
            println!("errors: none");
        } else {
            println!("errors by kind:");
            for (kind, n) in &self.errors {
                println!("  {n:>7}  {kind}");
            }
        }
    }
}

/// One worker's results, each with the instant it ended, so the window can be cut.
#[derive(Default)]
struct Worker {
    done: Vec<(Instant, Duration, LegTimes)>,
    failed: Vec<(Instant, String)>,
    warm_up_errors: u64,
    code_waits: u64,
}

/// Set when the first worker runs out of people: the others stop, and the window ends there.
#[derive(Default)]
struct RanOut {
    at: Mutex<Option<Instant>>,
    flag: AtomicBool,
    notify: tokio::sync::Notify,
}

impl RanOut {
    fn now(&self) {
        let mut at = self.at.lock().unwrap_or_else(|e| e.into_inner());
        at.get_or_insert_with(Instant::now);
        self.flag.store(true, Ordering::Relaxed);
        self.notify.notify_waiters();
    }

    fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    fn at(&self) -> Option<Instant> {
        *self.at.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Until `deadline`, or until the people ran out.
    async fn sleep_until(&self, deadline: Instant) {
        let notified = self.notify.notified();
        if self.is_set() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => {}
            _ = notified => {}
        }
    }
}

impl Load {
    /// Runs `concurrency` workers for warm-up + duration. Worker `w` signs in as users `w`,
    /// `w + concurrency`, … in turn, so no passkey is ever used by two sign-ins at once (its
    /// counter would go backwards, and the server would rightly refuse it as a clone), and a
    /// person's next authenticator code is the one that has waited longest. A person whose
    /// pass is used up ends the run: the window is cut there.
    async fn run(
        &self,
        users: Vec<BenchUser>,
        concurrency: usize,
        warm_up: Duration,
        duration: Duration,
        pids: &[u32],
        probe: &reqwest::Client,
    ) -> anyhow::Result<Measured> {
        let mut shares: Vec<Vec<BenchUser>> = (0..concurrency).map(|_| Vec::new()).collect();
        for (i, user) in users.into_iter().enumerate() {
            shares[i % concurrency].push(user);
        }
        let start = Instant::now();
        let measure_from = start + warm_up;
        let measure_to = measure_from + duration;
        let ran_out = Arc::new(RanOut::default());
        let mut tasks = Vec::new();
        for (w, mut mine) in shares.into_iter().enumerate() {
            let load = self.clone();
            let ran_out = ran_out.clone();
            tasks.push(tokio::spawn(async move {
                let mut out = Worker::default();
                let mut tab = Tab::new(&load.browsers[w % load.browsers.len()]);
                let mut next = 0;
                loop {
                    if Instant::now() >= measure_to || ran_out.is_set() {
                        break;
                    }
                    let index = next;
                    next = (next + 1) % mine.len();
                    let user = &mut mine[index];
                    match &user.method {
                        Method::FirstPass(None) => {
                            ran_out.now();
                            break;
                        }
                        Method::PasswordAndApp { app, .. } if !app.ready_in().is_zero() => {
                            out.code_waits += 1;
                            ran_out.sleep_until(Instant::now() + app.ready_in()).await;
                            if Instant::now() >= measure_to || ran_out.is_set() {
                                break;
                            }
                        }
                        _ => {}
                    }
                    let began = Instant::now();
                    let result =
                        signin::sign_in(&mut tab, &load.client_id, user, load.oidc.as_deref())
                            .await;
                    let ended = Instant::now();
                    match result {
                        Ok(legs) if ended >= measure_from => {
                            out.done.push((ended, ended - began, legs))
                        }
                        Ok(_) => {}
                        Err(kind) if ended >= measure_from => out.failed.push((ended, kind)),
                        Err(kind) => {
                            if out.warm_up_errors == 0 {
                                eprintln!("warm-up error (first of this worker): {kind}");
                            }
                            out.warm_up_errors += 1;
                        }
                    }
                }
                out
            }));
        }
        // CPU used in the window: the fairest figure on a machine others share, since it does
        // not depend on how much of the CPU the run was given.
        // Summed over the nodes; `None` when any node's could not be read (or for --target).
        let servers_cpu = |pids: &[u32]| -> Option<f64> {
            if pids.is_empty() {
                return None;
            }
            pids.iter()
                .map(|p| server::cpu_seconds(&p.to_string()))
                .sum::<Option<f64>>()
        };
        let cpu = {
            let ran_out = ran_out.clone();
            let pids = pids.to_vec();
            tokio::spawn(async move {
                tokio::time::sleep_until(measure_from.into()).await;
                let server = servers_cpu(&pids);
                let generator = server::cpu_seconds("self");
                ran_out.sleep_until(measure_to).await;
                let server = server.zip(servers_cpu(&pids));
                let generator = generator.zip(server::cpu_seconds("self"));
                (server.map(|(a, b)| b - a), generator.map(|(a, b)| b - a))
            })
        };
        // Memory sampled through the measured window, per node.
        let peaks: Arc<Vec<AtomicU64>> =
            Arc::new((0..pids.len().max(1)).map(|_| AtomicU64::new(0)).collect());
        let sampler = {
            let peaks = peaks.clone();
            let probe = probe.clone();
            let base = self.browsers[0].base.clone();
            let ran_out = ran_out.clone();
            let pids = pids.to_vec();
            tokio::spawn(async move {
                tokio::time::sleep_until(measure_from.into()).await;
                while Instant::now() < measure_to && !ran_out.is_set() {
                    if pids.is_empty()
                        && let Some(v) = server::rss_from_metrics(&probe, &base).await
                    {
                        peaks[0].fetch_max(v, Ordering::Relaxed);
                    }
                    for (peak, pid) in peaks.iter().zip(&pids) {
                        if let Some((v, _)) = server::rss(*pid) {
                            peak.fetch_max(v, Ordering::Relaxed);
                        }
                    }
                    let pause = if pids.is_empty() { 500 } else { 50 };
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            })
        };
        let mut workers = Vec::new();
        for t in tasks {
            workers.push(t.await?);
        }
        let window_end = ran_out.at().map_or(measure_to, |t| t.min(measure_to));
        anyhow::ensure!(
            window_end > measure_from,
            "the {} people were used up {:.1} s into the {:.1} s warm-up: give more --users",
            workers
                .iter()
                .map(|w| w.done.len() + w.failed.len())
                .sum::<usize>(),
            (window_end - start).as_secs_f64(),
            warm_up.as_secs_f64()
        );
        let counted = |ended: &Instant| *ended <= window_end;
        let mut totals = Vec::new();
        let mut legs: Vec<Vec<Duration>> = self.mode.legs().iter().map(|_| Vec::new()).collect();
        let mut errors: BTreeMap<String, u64> = BTreeMap::new();
        let mut warm_up_errors = 0;
        let mut code_waits = 0;
        let nodes = self.browsers.len();
        let mut per_node = vec![0usize; nodes];
        for (i, w) in workers.into_iter().enumerate() {
            for (_, total, times) in w.done.into_iter().filter(|(e, _, _)| counted(e)) {
                per_node[i % nodes] += 1;
                totals.push(total);
                for (i, d) in times.into_iter().enumerate() {
                    if let Some(leg) = legs.get_mut(i) {
                        leg.push(d);
                    }
                }
            }
            for (_, kind) in w.failed.into_iter().filter(|(e, _)| counted(e)) {
                *errors.entry(kind).or_default() += 1;
            }
            warm_up_errors += w.warm_up_errors;
            code_waits += w.code_waits;
        }
        sampler.await?;
        let (server_cpu, generator_cpu) = cpu.await?;
        totals.sort();
        for l in &mut legs {
            l.sort();
        }
        Ok(Measured {
            window: window_end - measure_from,
            totals,
            legs,
            errors,
            warm_up_errors,
            cut_short: window_end < measure_to,
            code_waits,
            peak_rss: peaks.iter().map(|p| p.load(Ordering::Relaxed)).collect(),
            per_node,
            server_cpu,
            generator_cpu,
        })
    }
}
