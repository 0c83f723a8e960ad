//! # portcullis — the composition root
//!
//! This crate turns configuration into a running identity provider. It owns the configuration
//! (file, environment, flags), logging setup, the `serve`, `migrate` and `check-config`
//! commands, and the wiring of core, store and web. It decides nothing about identity itself:
//! every rule lives in core, every query in the store, every route in web.
//!
//! What it must never do: hold domain logic, or start the server any other way than
//! [`server::start`] — the test kit uses that same function, so what is tested is what runs.

pub mod config;
pub mod server;

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
