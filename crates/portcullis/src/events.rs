//! Events out: every sign-in log entry and audit entry, as one JSON object per line, to a file
//! (or standard output) and to a webhook, so a SIEM can follow them.
//!
//! The store tells [`Events`] what each commit stored once it is durable (see
//! [`CommitObserver`]); `Events` puts the entries in one bounded in-memory queue per sink and
//! returns at once. One task per sink drains its queue. A full queue drops its oldest entries
//! and counts them in `portcullis_events_dropped_total`, so a slow or dead receiver costs
//! memory up to the bound and never a sign-in. Delivery is best effort, per node: what is
//! queued when a node stops is lost, and a webhook batch whose answer was lost is sent again.
//! The database's logs stay the source of truth.
//!
//! Each line is an envelope: `{"type":"signIn"|"directoryAudit","id":…,"data":{…}}`, where
//! `data` is Graph's `signIn` or `directoryAudit` object and `id` is its id (a receiver
//! removes duplicates by it). A webhook receives a batch of lines per POST
//! (`application/x-ndjson`), signed: `Portcullis-Signature: t=<unix seconds>,v1=<hex>` where
//! the hex is HMAC-SHA256 with the shared secret over `<t>.<body>`.
//!
//! What it must never do: block, fail or slow the commit it is told about.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use portcullis_core::store::{CommitObserver, CommittedEvent};
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

/// The metric counting entries dropped: pushed out of a full queue, or given up on after the
/// last delivery attempt.
pub const DROPPED_METRIC: &str = "portcullis_events_dropped_total";
/// The metric counting entries delivered.
pub const DELIVERED_METRIC: &str = "portcullis_events_delivered_total";

/// The header carrying a webhook body's signature.
pub const SIGNATURE_HEADER: &str = "Portcullis-Signature";

/// Entries written or sent at most at once.
const BATCH: usize = 100;
/// Attempts at one webhook batch before it is dropped.
const WEBHOOK_ATTEMPTS: u32 = 10;
/// The first retry's delay; each further one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long one webhook call may take before it counts as failed.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Which sink a queue feeds, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    File,
    Webhook,
}

impl SinkKind {
    fn label(self) -> &'static str {
        match self {
            SinkKind::File => "file",
            SinkKind::Webhook => "webhook",
        }
    }
}

/// A bounded first-in first-out queue that drops its oldest entry to take a new one when full.
pub struct EventQueue {
    kind: SinkKind,
    capacity: usize,
    items: Mutex<VecDeque<CommittedEvent>>,
    ready: Notify,
}

impl EventQueue {
    pub fn new(kind: SinkKind, capacity: usize) -> EventQueue {
        EventQueue {
            kind,
            capacity: capacity.max(1),
            items: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
        }
    }

    /// Adds entries at the back, dropping from the front past the capacity; the number dropped.
    pub fn push(&self, events: Vec<CommittedEvent>) -> usize {
        let mut dropped = 0;
        {
            let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
            for event in events {
                if items.len() >= self.capacity {
                    items.pop_front();
                    dropped += 1;
                }
                items.push_back(event);
            }
        }
        if dropped > 0 {
            count_dropped(self.kind, dropped);
        }
        self.ready.notify_one();
        dropped
    }

    /// Entries waiting now.
    pub fn len(&self) -> usize {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Up to `max` entries from the front, waiting until there is at least one.
    pub async fn next_batch(&self, max: usize) -> Vec<CommittedEvent> {
        loop {
            {
                let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
                if !items.is_empty() {
                    let n = items.len().min(max);
                    return items.drain(..n).collect();
                }
            }
            // A push between the check and here leaves a permit, so this never sleeps on one.
            self.ready.notified().await;
        }
    }
}

fn count_dropped(kind: SinkKind, n: usize) {
    metrics::counter!(DROPPED_METRIC, "sink" => kind.label()).increment(n as u64);
}

/// The [`CommitObserver`] the store tells: hands each commit's entries to every sink's queue.
pub struct Events {
    queues: Vec<Arc<EventQueue>>,
}

impl CommitObserver for Events {
    fn committed(&self, events: Vec<CommittedEvent>) {
        if let Some((last, rest)) = self.queues.split_last() {
            for queue in rest {
                queue.push(events.clone());
            }
            last.push(events);
        }
    }
}

/// Where the events go, from configuration.
#[derive(Debug, Clone, Default)]
pub struct EventSettings {
    /// A file appended to, or `-` for standard output.
    pub file: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub queue_capacity: usize,
}

/// Opens the sinks and starts one task per sink. `None` when no sink is configured. A file
/// that cannot be opened stops the start: an administrator who asked for events gets them or
/// an error.
pub fn start(settings: &EventSettings) -> anyhow::Result<Option<Arc<Events>>> {
    let mut queues = Vec::new();
    if let Some(file) = &settings.file {
        let out = open_file_sink(file)?;
        let queue = Arc::new(EventQueue::new(SinkKind::File, settings.queue_capacity));
        tokio::spawn(write_lines(queue.clone(), out));
        queues.push(queue);
    }
    if let Some(url) = &settings.webhook_url {
        let secret = settings
            .webhook_secret
            .as_deref()
            .context("events_webhook_secret is required with events_webhook_url")?;
        let client = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the events webhook client")?;
        let queue = Arc::new(EventQueue::new(SinkKind::Webhook, settings.queue_capacity));
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        tokio::spawn(post_batches(queue.clone(), client, url.clone(), key));
        queues.push(queue);
    }
    if queues.is_empty() {
        return Ok(None);
    }
    Ok(Some(Arc::new(Events { queues })))
}

/// Where the file sink writes.
enum Output {
    /// Written on a blocking thread: a slow reader of the pipe holds up that thread only.
    Stdout,
    File(tokio::fs::File),
}

impl Output {
    async fn write(&mut self, body: Vec<u8>) -> std::io::Result<()> {
        match self {
            Output::Stdout => tokio::task::spawn_blocking(move || {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                out.write_all(&body)?;
                out.flush()
            })
            .await
            .map_err(std::io::Error::other)?,
            Output::File(file) => {
                file.write_all(&body).await?;
                file.flush().await
            }
        }
    }
}

fn open_file_sink(file: &str) -> anyhow::Result<Output> {
    if file == "-" {
        return Ok(Output::Stdout);
    }
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Sign-in entries name people and their addresses.
        options.mode(0o600);
    }
    let opened = options
        .open(file)
        .with_context(|| format!("events_file: cannot open {file} for appending"))?;
    Ok(Output::File(tokio::fs::File::from_std(opened)))
}

/// One entry as its line's JSON (without the newline).
pub fn envelope(event: &CommittedEvent) -> serde_json::Value {
    match event {
        CommittedEvent::SignIn(entry) => serde_json::json!({
            "type": "signIn",
            "id": entry.id,
            "data": entry,
        }),
        CommittedEvent::DirectoryAudit(entry) => serde_json::json!({
            "type": "directoryAudit",
            "id": entry.id,
            "data": entry,
        }),
    }
}

/// The entries as JSON lines, each ending in a newline.
fn lines(events: &[CommittedEvent]) -> Vec<u8> {
    let mut body = Vec::with_capacity(events.len() * 1024);
    for event in events {
        // A value made of serde_json's own types always writes.
        if serde_json::to_writer(&mut body, &envelope(event)).is_ok() {
            body.push(b'\n');
        }
    }
    body
}

async fn write_lines(queue: Arc<EventQueue>, mut out: Output) {
    loop {
        let batch = queue.next_batch(BATCH).await;
        match out.write(lines(&batch)).await {
            Ok(()) => {
                metrics::counter!(DELIVERED_METRIC, "sink" => "file").increment(batch.len() as u64)
            }
            Err(e) => {
                count_dropped(SinkKind::File, batch.len());
                tracing::warn!(error = %e, dropped = batch.len(), "cannot write events to events_file");
            }
        }
    }
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 over "<t>.<body>">`.
pub fn signature(key: &ring::hmac::Key, unix_seconds: i64, body: &[u8]) -> String {
    let mut context = ring::hmac::Context::with_key(key);
    context.update(unix_seconds.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    format!(
        "t={unix_seconds},v1={}",
        hex::encode(context.sign().as_ref())
    )
}

/// The delay before retry number `attempt` (1 for the first retry): doubling from
/// [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`], then a random part of its upper half taken off, so
/// that nodes retrying after one outage do not all call at once.
pub fn backoff(attempt: u32, random: u32) -> Duration {
    let doubled = FIRST_BACKOFF.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let ceiling = doubled.min(MAX_BACKOFF);
    let half = ceiling / 2;
    let jitter_millis = u64::from(random) % (half.as_millis() as u64 + 1);
    half + Duration::from_millis(jitter_millis)
}

fn random_u32() -> u32 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 4];
    // Jitter only: a failure to read randomness leaves the middle of the range.
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    u32::from_le_bytes(bytes)
}

async fn post_batches(
    queue: Arc<EventQueue>,
    client: reqwest::Client,
    url: String,
    key: ring::hmac::Key,
) {
    loop {
        let batch = queue.next_batch(BATCH).await;
        let body = bytes::Bytes::from(lines(&batch));
        let mut attempt = 0;
        loop {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let sent = client
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
                .header(SIGNATURE_HEADER, signature(&key, now, &body))
                .body(body.clone())
                .send()
                .await;
            let failure = match sent {
                Ok(answer) if answer.status().is_success() => {
                    metrics::counter!(DELIVERED_METRIC, "sink" => "webhook")
                        .increment(batch.len() as u64);
                    break;
                }
                Ok(answer) => format!("answered {}", answer.status()),
                Err(e) => e.to_string(),
            };
            attempt += 1;
            if attempt >= WEBHOOK_ATTEMPTS {
                count_dropped(SinkKind::Webhook, batch.len());
                tracing::warn!(error = %failure, dropped = batch.len(), attempts = attempt,
                    "events webhook: giving up on a batch");
                break;
            }
            let delay = backoff(attempt, random_u32());
            tracing::debug!(error = %failure, retry_in_ms = delay.as_millis() as u64,
                "events webhook: delivery failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::directory::audit::DirectoryAudit;

    fn audit(name: &str) -> CommittedEvent {
        CommittedEvent::DirectoryAudit(Box::new(DirectoryAudit {
            id: uuid::Uuid::nil(),
            category: "UserManagement".to_string(),
            correlation_id: uuid::Uuid::nil(),
            result: "success".to_string(),
            result_reason: String::new(),
            activity_display_name: name.to_string(),
            activity_date_time: time::OffsetDateTime::UNIX_EPOCH,
            logged_by_service: "Core Directory".to_string(),
            operation_type: "Add".to_string(),
            initiated_by: Default::default(),
            target_resources: Vec::new(),
            additional_details: Vec::new(),
        }))
    }

    fn name(event: &CommittedEvent) -> String {
        match event {
            CommittedEvent::DirectoryAudit(a) => a.activity_display_name.clone(),
            CommittedEvent::SignIn(_) => "signIn".to_string(),
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_its_oldest_entries_and_counts_them() {
        let queue = EventQueue::new(SinkKind::Webhook, 3);
        assert_eq!(queue.push(vec![audit("a"), audit("b")]), 0);
        assert_eq!(queue.push(vec![audit("c"), audit("d"), audit("e")]), 2);
        assert_eq!(queue.len(), 3);
        let batch = queue.next_batch(2).await;
        assert_eq!(batch.iter().map(name).collect::<Vec<_>>(), ["c", "d"]);
        let batch = queue.next_batch(10).await;
        assert_eq!(batch.iter().map(name).collect::<Vec<_>>(), ["e"]);
        assert!(queue.is_empty());
    }

    #[tokio::test]
    async fn a_waiting_reader_wakes_when_an_entry_arrives() {
        let queue = Arc::new(EventQueue::new(SinkKind::File, 10));
        let reader = tokio::spawn({
            let queue = queue.clone();
            async move { queue.next_batch(10).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        queue.push(vec![audit("late")]);
        let batch = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("the reader woke")
            .expect("the reader finished");
        assert_eq!(batch.iter().map(name).collect::<Vec<_>>(), ["late"]);
    }

    #[test]
    fn backoff_doubles_up_to_the_ceiling_and_jitters_within_its_upper_half() {
        assert_eq!(backoff(1, 0), Duration::from_millis(250));
        assert_eq!(backoff(1, 250), Duration::from_millis(500));
        assert_eq!(backoff(2, 0), Duration::from_millis(500));
        assert_eq!(backoff(3, 0), Duration::from_secs(1));
        assert_eq!(backoff(30, 0), MAX_BACKOFF / 2);
        assert!(backoff(30, u32::MAX) <= MAX_BACKOFF);
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_the_timestamp_a_dot_and_the_body() {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"shared secret");
        let header = signature(&key, 1_700_000_000, b"{\"a\":1}\n");
        let expected = ring::hmac::sign(&key, b"1700000000.{\"a\":1}\n");
        assert_eq!(
            header,
            format!("t=1700000000,v1={}", hex::encode(expected.as_ref()))
        );
    }
}
