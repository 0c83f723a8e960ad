//! # portcullis-bench — the load generator
//!
//! Performs complete passkey sign-ins against a Portcullis server and reports throughput,
//! latency (p50/p95/p99, per leg too), errors by kind, the server's resident memory (peak under
//! load and idle), its startup-to-ready time on an existing database, and this machine's ES256
//! verification rate measured with `ring` in the same run, so the sign-in rate reads as a
//! fraction of the physical floor. BENCHMARKS.md says how to run it and what it found.
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

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use portcullis_client::AdminClient;
use portcullis_client::Credentials;

use crate::http::Browser;
use crate::provision::BenchUser;
use crate::server::{ChildServer, ChildSpec};
use crate::signin::{Oidc, STEPS, StepTimes};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// Complete passkey sign-ins (the figure the targets are about).
    Passkey,
}

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
    /// People to provision, each with one passkey; at least --concurrency, since one passkey
    /// never has two sign-ins in flight.
    #[arg(long, default_value_t = 256)]
    users: usize,
    /// Sign-ins in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 5.0)]
    warm_up: f64,
    #[arg(long, value_enum, default_value = "passkey")]
    mode: Mode,
    /// Conditional Access policies created for the run.
    #[arg(long, default_value_t = 50)]
    policies: usize,
    /// Sign in through `/signin/flows` only, even if the server offers OIDC.
    #[arg(long)]
    no_oidc: bool,
}

fn main() -> anyhow::Result<()> {
    let raw: Vec<String> = std::env::args().collect();
    if raw.get(1).map(String::as_str) == Some(server::SERVE_ARG) {
        return server::serve_child(&raw[2..]);
    }
    let args = Args::parse();
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(
        args.users >= args.concurrency,
        "--users must be at least --concurrency: one passkey never has two sign-ins in flight"
    );
    // The generator's own threads: it shares the machine with the server, like a real client
    // would not; BENCHMARKS.md says so.
    let runtime = tokio::runtime::Builder::new_multi_thread()
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
            let spec = ChildSpec {
                server_bin: args.server_bin.clone(),
                data_dir: dir.clone(),
                port: server::free_port()?,
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

    let admin = AdminClient::with_credentials(admin_credentials)
        .await
        .context("connecting to the admin API")?;
    let began = Instant::now();
    let tenant = provision::tenant(&admin, &browser, &run, args.users, args.policies).await?;
    println!(
        "provisioned {} users with passkeys and {} Conditional Access policies in {:.1} s",
        tenant.users.len(),
        tenant.policies,
        began.elapsed().as_secs_f64()
    );

    // The measured server starts afresh on the database just filled: startup on an existing
    // database, idle memory, and a peak that provisioning (argon2) did not set. Same port, so
    // the same public URL: the passkeys' origin and the token issuer stay valid.
    let mut startup = None;
    let mut first_start = None;
    let mut pid = None;
    if let Target::Child {
        server,
        spec,
        first_start: first,
        ..
    } = &mut target
    {
        first_start = Some(*first);
        server.restart(spec, &probe).await?;
        startup = Some(server.startup);
        pid = Some(server.pid());
    }
    // Fresh connections for the fresh server.
    let browser = Browser::new(&browser.base, &browser.origin)?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = match pid {
        Some(pid) => server::rss(pid).map(|(rss, _)| rss),
        None => server::rss_from_metrics(&probe, &browser.base).await,
    };

    let oidc = if args.no_oidc {
        None
    } else {
        Oidc::discover(&browser).await?
    };
    println!(
        "sign-in path: {}",
        if oidc.is_some() {
            "OIDC authorize (PKCE) -> passkey options -> assertion -> code -> token -> ID token validated"
        } else {
            "POST /signin/flows -> passkey options -> assertion -> granted (no OIDC on this server)"
        }
    );
    let Mode::Passkey = args.mode;

    let load = Load {
        browser: browser.clone(),
        client_id: tenant.client_id.clone(),
        oidc: oidc.map(Arc::new),
    };
    let measured = load
        .run(
            tenant.users,
            args.concurrency,
            Duration::from_secs_f64(args.warm_up),
            Duration::from_secs_f64(args.duration),
            pid,
            &probe,
        )
        .await?;

    let (peak_rss, hwm) = match pid {
        Some(pid) => {
            let (_, hwm) = server::rss(pid).unwrap_or((0, 0));
            (measured.peak_rss, Some(hwm))
        }
        None => (measured.peak_rss, None),
    };
    if let Target::Child { server, .. } = target {
        server.stop()?;
    }
    // Measured after the server stopped, on every core, so it is the machine's rate and
    // not what is left beside a loaded server.
    let per_core = floor::verify_rate_one_core(Duration::from_millis(1500));
    let machine = floor::verify_rate_machine(cores, Duration::from_millis(1500));

    measured.report(args.concurrency);
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
    println!(
        "ES256 verify with ring: {per_core:.0}/s on one core, {machine:.0}/s on {cores} cores at once"
    );
    println!("load average at end: {}", load_average());
    let rate = measured.throughput();
    let rss_mb = mb(hwm.unwrap_or(peak_rss));
    println!(
        "passkey-signins-per-s: {:.0} p50-ms: {:.1} p99-ms: {:.1} rss-mb: {:.1} es256-verify-per-s: {:.0} ratio: {:.3}",
        rate,
        measured.percentile_ms(50.0),
        measured.percentile_ms(99.0),
        rss_mb,
        machine,
        rate / machine
    );
    Ok(())
}

/// What every worker shares.
#[derive(Clone)]
struct Load {
    browser: Browser,
    client_id: String,
    oidc: Option<Arc<Oidc>>,
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
    peak_rss: u64,
    /// CPU seconds the server and the generator used in the measured window.
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

    fn report(&self, concurrency: usize) {
        let failed: u64 = self.errors.values().sum();
        println!();
        println!(
            "measured {:.1} s at concurrency {concurrency}: {} sign-ins completed, {} failed ({} failed during warm-up)",
            self.window.as_secs_f64(),
            self.totals.len(),
            failed,
            self.warm_up_errors
        );
        println!("throughput: {:.0} complete sign-ins/s", self.throughput());
        println!(
            "latency (complete sign-in): p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.percentile_ms(50.0),
            self.percentile_ms(95.0),
            self.percentile_ms(99.0),
            ms(self.totals.last().copied().unwrap_or_default())
        );
        for (name, times) in STEPS.iter().zip(&self.legs) {
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
            println!(
                "server CPU: {:.2} cores busy, {:.2} ms per sign-in",
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

/// One worker's results.
#[derive(Default)]
struct Worker {
    totals: Vec<Duration>,
    legs: Vec<StepTimes>,
    errors: BTreeMap<String, u64>,
    warm_up_errors: u64,
}

impl Load {
    /// Runs `concurrency` workers for warm-up + duration. Worker `w` signs in as users `w`,
    /// `w + concurrency`, … in turn, so no passkey is ever used by two sign-ins at once (its
    /// counter would go backwards, and the server would rightly refuse it as a clone).
    async fn run(
        &self,
        users: Vec<BenchUser>,
        concurrency: usize,
        warm_up: Duration,
        duration: Duration,
        pid: Option<u32>,
        probe: &reqwest::Client,
    ) -> anyhow::Result<Measured> {
        let mut shares: Vec<Vec<BenchUser>> = (0..concurrency).map(|_| Vec::new()).collect();
        for (i, user) in users.into_iter().enumerate() {
            shares[i % concurrency].push(user);
        }
        let start = Instant::now();
        let measure_from = start + warm_up;
        let measure_to = measure_from + duration;
        let mut tasks = Vec::new();
        for mut mine in shares {
            let load = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut out = Worker::default();
                let mut next = 0;
                loop {
                    let began = Instant::now();
                    if began >= measure_to {
                        break;
                    }
                    let index = next;
                    next = (next + 1) % mine.len();
                    let user = &mut mine[index];
                    let result =
                        signin::sign_in(&load.browser, &load.client_id, user, load.oidc.as_deref())
                            .await;
                    let ended = Instant::now();
                    let counted = ended >= measure_from && ended <= measure_to;
                    match result {
                        Ok(legs) if counted => {
                            out.totals.push(ended - began);
                            out.legs.push(legs);
                        }
                        Ok(_) => {}
                        Err(kind) if counted => *out.errors.entry(kind).or_default() += 1,
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
        let cpu = {
            tokio::spawn(async move {
                tokio::time::sleep_until(measure_from.into()).await;
                let server = pid.and_then(|p| server::cpu_seconds(&p.to_string()));
                let generator = server::cpu_seconds("self");
                tokio::time::sleep_until(measure_to.into()).await;
                let server = server.zip(pid.and_then(|p| server::cpu_seconds(&p.to_string())));
                let generator = generator.zip(server::cpu_seconds("self"));
                (server.map(|(a, b)| b - a), generator.map(|(a, b)| b - a))
            })
        };
        // Memory sampled through the measured window.
        let peak = Arc::new(AtomicU64::new(0));
        let sampler = {
            let peak = peak.clone();
            let probe = probe.clone();
            let base = self.browser.base.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(measure_from.into()).await;
                while Instant::now() < measure_to {
                    let now = match pid {
                        Some(pid) => server::rss(pid).map(|(rss, _)| rss),
                        None => server::rss_from_metrics(&probe, &base).await,
                    };
                    if let Some(v) = now {
                        peak.fetch_max(v, Ordering::Relaxed);
                    }
                    let pause = if pid.is_some() { 50 } else { 500 };
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            })
        };
        let mut totals = Vec::new();
        let mut legs: Vec<Vec<Duration>> = STEPS.iter().map(|_| Vec::new()).collect();
        let mut errors: BTreeMap<String, u64> = BTreeMap::new();
        let mut warm_up_errors = 0;
        for t in tasks {
            let w = t.await?;
            totals.extend(w.totals);
            for l in w.legs {
                for (i, d) in l.iter().enumerate() {
                    legs[i].push(*d);
                }
            }
            for (k, n) in w.errors {
                *errors.entry(k).or_default() += n;
            }
            warm_up_errors += w.warm_up_errors;
        }
        sampler.await?;
        let (server_cpu, generator_cpu) = cpu.await?;
        totals.sort();
        for l in &mut legs {
            l.sort();
        }
        Ok(Measured {
            window: duration,
            totals,
            legs,
            errors,
            warm_up_errors,
            peak_rss: peak.load(Ordering::Relaxed),
            server_cpu,
            generator_cpu,
        })
    }
}
