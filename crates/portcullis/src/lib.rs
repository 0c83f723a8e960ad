//! # portcullis — the composition root
//!
//! This crate turns configuration into a running identity provider. It owns the configuration
//! (file, environment, flags), logging setup, the `serve`, `migrate`, `check-config`,
//! `backup`, `restore` and `healthcheck` commands, and the wiring of core, store and web. It decides nothing about identity itself:
//! every rule lives in core, every query in the store, every route in web.
//!
//! What it must never do: hold domain logic, or start the server any other way than
//! [`server::start`] — the test kit uses that same function, so what is tested is what runs.

pub mod backup;
pub mod config;
pub mod connections;
pub mod events;
pub mod healthcheck;
pub mod server;

/// The allocator of every program built on this crate (the server, the load generator's child
/// server, the tests' in-process servers). With glibc's, a tenth of the server's time under
/// sign-in load went to `malloc` and `free` and to the locks between the request threads and
/// the SQLite writer thread freeing each other's memory (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Process settings a server needs before it allocates much; call first thing in `main`.
///
/// Transparent huge pages off: where the kernel backs every suitably aligned region with 2 MiB
/// pages (`always`, as on the machines here), each of the allocator's mostly empty regions
/// counts 2 MiB resident, and an idle server measured 31 MB instead of 21 MB (BENCHMARKS.md).
/// Throughput was the same either way. The allocator's own arena is reserved before `main`
/// runs, so mimalloc is built with `no_thp`, which makes the same call in its own start-up:
/// with it an idle server measured 27.9–28.6 MB, without it 31.5–32.5 MB, the difference
/// being the arena's first pages backed by a huge page (BENCHMARKS.md).
pub fn prepare_process() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE only sets a flag on this process; a refusal (an old kernel)
    // leaves things as they were, which is harmless.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Hands back to the system the memory that starting up used and freed (migrations, the
/// templates, the API document, the signing keys): the allocator returns freed memory only when
/// it is next called, and an idle server calls it rarely. An idle server measured 27.9–28.6 MB
/// with this and 30.9–31.2 MB without (BENCHMARKS.md). Call once the server is ready.
pub fn settle_memory() {
    // SAFETY: mi_collect only walks and trims the allocator's own free lists; it may be called
    // at any time from any thread.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}

use config::{Config, LogFormat};

/// Sets up structured logging: human-readable by default, JSON with `log_format = "json"`.
pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human => builder.compact().try_init(),
    };
}
