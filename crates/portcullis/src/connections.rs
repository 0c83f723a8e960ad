//! Serving HTTP/1.1 connections with limits, so that slow or idle clients cannot starve others:
//! a new connection has [`ConnectionLimits::header_read`] to send its request headers, a
//! kept-alive one [`ConnectionLimits::keep_alive`] to send its next request, a request's body
//! [`ConnectionLimits::request_body`] to arrive, and at most
//! [`ConnectionLimits::max_connections`] are served at once.
//!
//! axum's own `serve` offers none of these knobs, so this is its accept loop rebuilt on hyper's
//! HTTP/1.1 connection builder (the same one axum uses underneath). It keeps what `serve` gave:
//! the peer address reaches handlers as `ConnectInfo<SocketAddr>`, and a graceful shutdown stops
//! accepting, lets requests in flight finish and closes idle connections.
//!
//! What it must never do: decide anything about a request. It moves bytes and enforces time and
//! count limits; the router decides.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::rt::{Sleep, Timer};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// The limits every connection is served under.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A new connection must deliver its first request's headers in full within this.
    pub header_read: Duration,
    /// A kept-alive connection must deliver its next request's headers within this of the last
    /// response; otherwise it is closed.
    pub keep_alive: Duration,
    /// A request's body must arrive in full within this of its headers.
    pub request_body: Duration,
    /// Connections served at once. Past it the server stops accepting: further connections
    /// wait in the kernel's listen backlog and are served as slots free, and no file
    /// descriptor is spent on them meanwhile.
    pub max_connections: usize,
}

impl ConnectionLimits {
    pub fn from_config(config: &crate::config::Config) -> ConnectionLimits {
        ConnectionLimits {
            header_read: Duration::from_secs(config.header_read_timeout_seconds),
            keep_alive: Duration::from_secs(config.keep_alive_timeout_seconds),
            request_body: Duration::from_secs(config.request_body_timeout_seconds),
            max_connections: config.max_connections(),
        }
    }
}

/// Serves `app` on `listener` under `limits` until `shutdown` completes, then stops accepting
/// and waits for the connections in flight to finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        // A slot before an accept: at the cap, new connections stay in the backlog instead of
        // being accepted into a descriptor the server cannot afford.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                metrics::counter!("portcullis_connections_at_capacity_total").increment(1);
                tracing::debug!(
                    max_connections = limits.max_connections,
                    "connection limit reached; new connections wait until one closes"
                );
                tokio::select! {
                    slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or a connection reset before it was taken: neither is
                    // the listener's fault. Pausing keeps a persistent error from spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let body_limit = limits.request_body;
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let mut request = request.map(|body| BodyWithDeadline::new(body, body_limit));
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(ConnectionTimer::new(limits.keep_alive))
            .header_read_timeout(limits.header_read)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        metrics::gauge!("portcullis_connections_open").increment(1.0);
        tokio::spawn(async move {
            let outcome = connection.await;
            metrics::gauge!("portcullis_connections_open").decrement(1.0);
            drop(slot);
            if let Err(e) = outcome {
                if e.is_timeout() {
                    metrics::counter!("portcullis_connections_timed_out_total").increment(1);
                    tracing::debug!(%peer, "connection closed: request headers too slow or idle too long");
                } else {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

type Request<B> = axum::http::Request<B>;

/// hyper's header read timer, with one difference: hyper starts the same timer for a new
/// connection's first request and for every later one on a kept-alive connection (where it is
/// also the wait while the connection sits idle). The first gets the header read timeout
/// hyper was configured with; each later one gets the keep-alive timeout instead.
struct ConnectionTimer {
    tokio: TokioTimer,
    first: AtomicBool,
    keep_alive: Duration,
}

impl ConnectionTimer {
    fn new(keep_alive: Duration) -> ConnectionTimer {
        ConnectionTimer {
            tokio: TokioTimer::new(),
            first: AtomicBool::new(true),
            keep_alive,
        }
    }
}

impl Timer for ConnectionTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.tokio.sleep(duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        if self.first.swap(false, Ordering::Relaxed) {
            self.tokio.sleep_until(deadline)
        } else {
            self.tokio.sleep_until(Instant::now() + self.keep_alive)
        }
    }
}

/// A request body that fails once its deadline passes. The deadline is for the whole body, not
/// each piece of it: a client trickling a byte at a time cannot hold the connection longer.
/// The handler reading it gets an error (a 400), and hyper closes the connection, since the
/// rest of the body was never read.
struct BodyWithDeadline {
    body: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl BodyWithDeadline {
    fn new(body: Incoming, limit: Duration) -> BodyWithDeadline {
        BodyWithDeadline {
            body,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

/// The error a body past its deadline reports.
#[derive(Debug)]
struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimedOut {}

impl http_body::Body for BodyWithDeadline {
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        // Data already here is taken even at the deadline; only waiting past it fails.
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    metrics::counter!("portcullis_request_bodies_timed_out_total").increment(1);
                    Poll::Ready(Some(Err(Box::new(BodyTimedOut))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
