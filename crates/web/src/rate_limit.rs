//! Rate limits on what an anonymous caller can reach: the authorization endpoint, the sign-in
//! page, the sign-in flow and its steps, passkey sign-in, `/auth/…` sign-in and the token and
//! revocation endpoints. A caller past a limit is answered 429 with `Retry-After`, in the shape
//! of the surface it called (Graph JSON, an OAuth error, a page), and the refusal is counted in
//! `portcullis_rate_limited_total{endpoint, limit}`.
//!
//! Four limits, each a token bucket (GCRA, the `governor` crate) refilled evenly over a minute:
//! - [`Limit::Address`]: every limited call from one source address, token endpoint aside;
//! - [`Limit::Starts`]: of those, the calls that store a row (a sign-in flow or a passkey
//!   ceremony), so that the rows one source can have pending are bounded: at most the bucket
//!   plus its refill over a row's lifetime, per node;
//! - [`Limit::Account`]: calls naming one username, from any address, so that rotating
//!   addresses does not multiply what one account can be sent;
//! - [`Limit::Client`]: the token and revocation endpoints, per source address and per
//!   `client_id` (an application's backend redeems every person's code from one address).
//!
//! The address is [`crate::client_address`]'s, read once by the request middleware; an IPv6
//! address counts by its /64, the block one subscriber is given, so stepping through one's own
//! block is still one source.
//!
//! The buckets are per node and in memory, deliberately. Shared through the database, every
//! anonymous call would be one more write queued on SQLite's single writer, which is what
//! bounds sign-ins/s (BENCHMARKS.md); a bucket here costs a hash and a compare-and-swap. The
//! price: behind a load balancer spreading one source over N nodes, the source gets N times the
//! limit. Guesses at secrets are not left to these limits: smart lockout counts them in the
//! database, shared by every node, before anything is compared.
//!
//! Memory: a key's state outlives its last call only until its bucket would be full again, and
//! [`RateLimits::forget_idle`] (run every few seconds) drops keys whose bucket is full. A caller
//! that sends one call per address keeps a key for one refill interval (a tenth of a second at
//! the default address limit), so an attacker rotating through a million addresses holds about
//! as many keys as it sends calls in that interval plus one sweep period, whatever the number
//! of addresses — bounded by the rate the server can answer at, not by the address space.
//!
//! What it must never do: take a forwarding header's word for the address (only
//! [`crate::client_address`] decides it), tell a caller anything but when to come back, or
//! keep a key for longer than its bucket needs.

use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use portcullis_core::Error;

use crate::AppState;

/// How many calls each limit allows per minute, per node. Each is also the burst: a bucket
/// starts full, and one call comes back every `60 / n` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Calls to the browser-facing sign-in endpoints from one source address.
    pub per_address_per_minute: u32,
    /// Of those, calls that store a sign-in flow or a passkey ceremony.
    pub starts_per_address_per_minute: u32,
    /// Calls naming one username, from anywhere.
    pub per_account_per_minute: u32,
    /// Token and revocation calls from one source address, and naming one client, each.
    pub token_per_minute: u32,
}

impl Default for RateLimitSettings {
    /// Sized for an office behind one NAT address: a passkey sign-in is about four calls of
    /// which two store a row, so a source may sign in 150 people a minute (and as many at
    /// once), while a flood from it stores at most a few hundred rows per node.
    fn default() -> Self {
        RateLimitSettings {
            per_address_per_minute: 600,
            starts_per_address_per_minute: 300,
            per_account_per_minute: 30,
            token_per_minute: 6_000,
        }
    }
}

/// Which limit refused a call (the `limit` label of the metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Address,
    Starts,
    Account,
    Client,
}

impl Limit {
    pub const fn label(self) -> &'static str {
        match self {
            Limit::Address => "address",
            Limit::Starts => "starts",
            Limit::Account => "account",
            Limit::Client => "client",
        }
    }
}

/// The anonymous endpoints, by what they do: the `endpoint` label of the metric, whether a call
/// stores a row, and the shape a refusal takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /oauth2/v2.0/authorize`: stores a sign-in flow.
    Authorize,
    /// `GET /signin`: stores a flow when it is not given one.
    SignInPage,
    /// `POST /signin/flows`: stores a flow.
    FlowStart,
    /// The flow's other steps.
    FlowStep,
    /// `POST /signin/flows/{id}/passkey/options`: stores a ceremony.
    FlowPasskeyOptions,
    /// `POST /auth/passkey/options`: stores a ceremony.
    PasskeyOptions,
    /// `POST /auth/passkey/verify`.
    PasskeyVerify,
    /// `POST /auth/tap`, `/auth/password`, `/auth/totp`.
    SignIn,
    /// `POST /oauth2/v2.0/token`, `/oauth2/v2.0/revoke`.
    Token,
}

/// How a refusal is written for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Surface {
    Json,
    OAuth,
    Page,
}

impl Endpoint {
    pub const ALL: &'static [Endpoint] = &[
        Endpoint::Authorize,
        Endpoint::SignInPage,
        Endpoint::FlowStart,
        Endpoint::FlowStep,
        Endpoint::FlowPasskeyOptions,
        Endpoint::PasskeyOptions,
        Endpoint::PasskeyVerify,
        Endpoint::SignIn,
        Endpoint::Token,
    ];

    /// The family the metric counts it under.
    pub const fn label(self) -> &'static str {
        match self {
            Endpoint::Authorize => "authorize",
            Endpoint::SignInPage => "sign_in_page",
            Endpoint::FlowStart | Endpoint::FlowStep | Endpoint::FlowPasskeyOptions => {
                "sign_in_flow"
            }
            Endpoint::PasskeyOptions | Endpoint::PasskeyVerify => "passkey",
            Endpoint::SignIn => "sign_in",
            Endpoint::Token => "token",
        }
    }

    /// Whether this call stores a row that lives until it expires (when nothing takes it).
    fn starts(self, parts: &Parts) -> bool {
        match self {
            Endpoint::Authorize
            | Endpoint::FlowStart
            | Endpoint::FlowPasskeyOptions
            | Endpoint::PasskeyOptions => true,
            // The page continues a flow it is given and starts one otherwise.
            Endpoint::SignInPage => !parts.uri.query().is_some_and(|query| {
                query
                    .split('&')
                    .any(|pair| pair.split('=').next() == Some("flow"))
            }),
            Endpoint::FlowStep | Endpoint::PasskeyVerify | Endpoint::SignIn | Endpoint::Token => {
                false
            }
        }
    }

    const fn surface(self) -> Surface {
        match self {
            Endpoint::Authorize | Endpoint::SignInPage => Surface::Page,
            Endpoint::Token => Surface::OAuth,
            Endpoint::FlowStart
            | Endpoint::FlowStep
            | Endpoint::FlowPasskeyOptions
            | Endpoint::PasskeyOptions
            | Endpoint::PasskeyVerify
            | Endpoint::SignIn => Surface::Json,
        }
    }
}

/// A call refused by a limit: which, where, and when the caller may come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub endpoint: Endpoint,
    pub limit: Limit,
    /// Whole seconds, rounded up, at least one.
    pub retry_after_secs: u64,
}

impl Refused {
    /// The refusal as core's error (Graph JSON and pages render it with `Retry-After`).
    pub fn error(self) -> Error {
        Error::TooManyRequests {
            retry_after_secs: self.retry_after_secs,
        }
    }

    /// The refusal in the shape of the surface its endpoint belongs to (`observe` adds
    /// `Connection: close` to every 429).
    pub fn response(self) -> Response {
        match self.endpoint.surface() {
            Surface::Json => crate::error::ApiError(self.error()).into_response(),
            Surface::OAuth => crate::oauth::too_many_requests(self.retry_after_secs),
            Surface::Page => crate::pages::failure_page(&self.error()),
        }
    }
}

impl From<Refused> for crate::error::ApiError {
    fn from(refused: Refused) -> Self {
        crate::error::ApiError(refused.error())
    }
}

/// A source address as the limits count it: IPv4 as it is, IPv6 by its /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    pub fn of(address: IpAddr) -> Source {
        match address.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                Source(IpAddr::V6(bits.into()))
            }
            v4 => Source(v4),
        }
    }
}

type Bucket<K> = RateLimiter<K, DashMapStateStore<K>, DefaultClock>;

/// The node's buckets. Cheap to share (`Arc`); every check is lock-free but for one shard of a
/// concurrent map.
pub struct RateLimits {
    address: Bucket<Source>,
    starts: Bucket<Source>,
    /// Keyed by a hash of the name, not the name: a key costs eight bytes however long the
    /// name an attacker sends. The hasher's key is random per process, so collisions cannot be
    /// aimed at.
    account: Bucket<u64>,
    client_address: Bucket<Source>,
    client: Bucket<u64>,
    names: std::hash::RandomState,
    clock: DefaultClock,
}

fn quota(per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN))
}

impl RateLimits {
    pub fn new(settings: RateLimitSettings) -> RateLimits {
        fn bucket<K: Hash + Eq + Clone>(per_minute: u32, clock: &DefaultClock) -> Bucket<K> {
            Bucket::dashmap_with_clock(quota(per_minute), clock.clone())
        }
        let clock = DefaultClock::default();
        RateLimits {
            address: bucket(settings.per_address_per_minute, &clock),
            starts: bucket(settings.starts_per_address_per_minute, &clock),
            account: bucket(settings.per_account_per_minute, &clock),
            client_address: bucket(settings.token_per_minute, &clock),
            client: bucket(settings.token_per_minute, &clock),
            names: std::hash::RandomState::new(),
            clock,
        }
    }

    /// Admits a call to `endpoint` from `address`, storing a row or not (`starts`).
    pub fn admit_source(
        &self,
        endpoint: Endpoint,
        address: IpAddr,
        starts: bool,
    ) -> Result<(), Refused> {
        let source = Source::of(address);
        if endpoint == Endpoint::Token {
            return self.check(&self.client_address, &source, endpoint, Limit::Client);
        }
        self.check(&self.address, &source, endpoint, Limit::Address)?;
        if starts {
            self.check(&self.starts, &source, endpoint, Limit::Starts)?;
        }
        Ok(())
    }

    /// Admits a call naming the account `username` (compared without case or surrounding
    /// space, as sign-in compares names).
    pub fn admit_account(&self, endpoint: Endpoint, username: &str) -> Result<(), Refused> {
        let key = self.names.hash_one(username.trim().to_lowercase());
        self.check(&self.account, &key, endpoint, Limit::Account)
    }

    /// Admits a token or revocation call naming `client_id`.
    pub fn admit_client(&self, client_id: &str) -> Result<(), Refused> {
        let key = self.names.hash_one(client_id.trim());
        self.check(&self.client, &key, Endpoint::Token, Limit::Client)
    }

    fn check<K: Hash + Eq + Clone>(
        &self,
        bucket: &Bucket<K>,
        key: &K,
        endpoint: Endpoint,
        limit: Limit,
    ) -> Result<(), Refused> {
        bucket.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            metrics::counter!(
                "portcullis_rate_limited_total",
                "endpoint" => endpoint.label(),
                "limit" => limit.label()
            )
            .increment(1);
            Refused {
                endpoint,
                limit,
                retry_after_secs: whole_seconds(wait),
            }
        })
    }

    /// Drops every key whose bucket is full again (indistinguishable from a key never seen)
    /// and gives the memory back; the number of keys still held.
    pub fn forget_idle(&self) -> usize {
        fn sweep<K: Hash + Eq + Clone>(bucket: &Bucket<K>) -> usize {
            bucket.retain_recent();
            bucket.shrink_to_fit();
            bucket.len()
        }
        sweep(&self.address)
            + sweep(&self.starts)
            + sweep(&self.account)
            + sweep(&self.client_address)
            + sweep(&self.client)
    }

    /// Keys held now, across all limits.
    pub fn keys_held(&self) -> usize {
        self.address.len()
            + self.starts.len()
            + self.account.len()
            + self.client_address.len()
            + self.client.len()
    }
}

/// Seconds to wait, rounded up and at least one: `Retry-After: 0` would invite the caller back
/// at once, into the same refusal.
fn whole_seconds(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// The client's address, as the request middleware decided it (see [`crate::client_address`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// Names an anonymous endpoint for [`WithinLimit`].
pub trait Limited {
    const ENDPOINT: Endpoint;
}

/// Marker types, one per [`Endpoint`], for [`WithinLimit`]'s parameter.
pub mod endpoint {
    use super::{Endpoint, Limited};

    macro_rules! markers {
        ($($name:ident),* $(,)?) => {$(
            #[doc = concat!("[`Endpoint::", stringify!($name), "`]")]
            pub struct $name;
            impl Limited for $name {
                const ENDPOINT: Endpoint = Endpoint::$name;
            }
        )*};
    }

    markers!(
        Authorize,
        SignInPage,
        FlowStart,
        FlowStep,
        FlowPasskeyOptions,
        PasskeyOptions,
        PasskeyVerify,
        SignIn,
        Token,
    );
}

/// A handler that takes `WithinLimit<E>` runs only when the caller's source address is within
/// the limits of endpoint `E`; otherwise the caller gets 429 in `E`'s shape. Put it first among
/// the handler's arguments, so a refused call reads no cookie and no body.
pub struct WithinLimit<E: Limited>(PhantomData<E>);

impl<E: Limited> FromRequestParts<AppState> for WithinLimit<E> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        // No address (a request that did not come over a socket) is not a source to count.
        if let Some(ClientAddress(address)) = parts.extensions.get::<ClientAddress>().copied() {
            let limits: &Arc<RateLimits> = &state.sign_in().rate_limits;
            limits
                .admit_source(E::ENDPOINT, address, E::ENDPOINT.starts(parts))
                .map_err(Refused::response)?;
        }
        Ok(WithinLimit(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn small() -> RateLimits {
        RateLimits::new(RateLimitSettings {
            per_address_per_minute: 10,
            starts_per_address_per_minute: 4,
            per_account_per_minute: 3,
            token_per_minute: 5,
        })
    }

    #[test]
    fn a_source_gets_its_burst_then_a_refusal_that_says_when() {
        let limits = small();
        let a = ip("192.0.2.1");
        for _ in 0..10 {
            limits.admit_source(Endpoint::FlowStep, a, false).unwrap();
        }
        let refused = limits
            .admit_source(Endpoint::FlowStep, a, false)
            .unwrap_err();
        assert_eq!(refused.limit, Limit::Address);
        // One call comes back every six seconds.
        assert!((1..=6).contains(&refused.retry_after_secs), "{refused:?}");
        // Another source is not affected.
        limits
            .admit_source(Endpoint::FlowStep, ip("192.0.2.2"), false)
            .unwrap();
    }

    #[test]
    fn starts_have_their_own_smaller_bucket() {
        let limits = small();
        let a = ip("192.0.2.1");
        for _ in 0..4 {
            limits
                .admit_source(Endpoint::PasskeyOptions, a, true)
                .unwrap();
        }
        let refused = limits
            .admit_source(Endpoint::PasskeyOptions, a, true)
            .unwrap_err();
        assert_eq!(refused.limit, Limit::Starts);
        // Calls that store nothing still have the rest of the address's bucket.
        limits
            .admit_source(Endpoint::PasskeyVerify, a, false)
            .unwrap();
    }

    #[test]
    fn an_ipv6_subscriber_is_one_source_across_its_64() {
        let limits = small();
        for i in 0..10 {
            let address = ip(&format!("2001:db8:1:2::{i:x}"));
            limits
                .admit_source(Endpoint::SignIn, address, false)
                .unwrap();
        }
        assert!(
            limits
                .admit_source(Endpoint::SignIn, ip("2001:db8:1:2:ffff::1"), false)
                .is_err()
        );
        limits
            .admit_source(Endpoint::SignIn, ip("2001:db8:1:3::1"), false)
            .unwrap();
        assert_eq!(
            Source::of(ip("::ffff:192.0.2.1")),
            Source::of(ip("192.0.2.1"))
        );
    }

    #[test]
    fn an_account_is_limited_whatever_the_spelling() {
        let limits = small();
        for name in ["joni@contoso.com", "JONI@contoso.com", " joni@Contoso.com "] {
            limits.admit_account(Endpoint::SignIn, name).unwrap();
        }
        let refused = limits
            .admit_account(Endpoint::SignIn, "joni@contoso.com")
            .unwrap_err();
        assert_eq!(refused.limit, Limit::Account);
        limits
            .admit_account(Endpoint::SignIn, "grady@contoso.com")
            .unwrap();
    }

    #[test]
    fn the_token_endpoint_counts_by_address_and_by_client_apart_from_the_rest() {
        let limits = small();
        let a = ip("192.0.2.1");
        for _ in 0..5 {
            limits.admit_source(Endpoint::Token, a, false).unwrap();
        }
        let refused = limits.admit_source(Endpoint::Token, a, false).unwrap_err();
        assert_eq!(
            (refused.limit, refused.endpoint),
            (Limit::Client, Endpoint::Token)
        );
        // The browser endpoints' bucket for the address is untouched.
        limits.admit_source(Endpoint::FlowStep, a, false).unwrap();
        for _ in 0..5 {
            limits.admit_client("app").unwrap();
        }
        assert!(limits.admit_client("app").is_err());
        limits.admit_client("other-app").unwrap();
    }

    #[test]
    fn the_sign_in_page_starts_only_without_a_flow() {
        let parts = |uri: &str| {
            axum::http::Request::get(uri)
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        assert!(Endpoint::SignInPage.starts(&parts("/signin")));
        assert!(Endpoint::SignInPage.starts(&parts("/signin?returnTo=/admin")));
        assert!(!Endpoint::SignInPage.starts(&parts("/signin?flow=abc")));
        assert!(!Endpoint::SignInPage.starts(&parts("/signin?returnTo=/x&flow=abc")));
        assert!(!Endpoint::FlowStep.starts(&parts("/signin/flows/x/identify")));
    }

    /// A million sources, one call each, as an attacker rotating addresses sends them: once
    /// their buckets have refilled, a sweep leaves no key behind, so what is held never grows
    /// with the number of addresses used.
    #[test]
    fn keys_of_rotated_addresses_are_forgotten_once_their_bucket_refills() {
        let limits = RateLimits::new(RateLimitSettings {
            per_address_per_minute: 6_000,
            starts_per_address_per_minute: 6_000,
            per_account_per_minute: 6_000,
            token_per_minute: 6_000,
        });
        let started = std::time::Instant::now();
        let calls = 1_000_000u32;
        for i in 0..calls {
            let address = IpAddr::from((0x0a00_0000u32 + i).to_be_bytes());
            limits
                .admit_source(Endpoint::FlowStep, address, false)
                .unwrap();
        }
        let elapsed = started.elapsed();
        eprintln!(
            "{calls} checks from distinct sources in {elapsed:?} ({:.0} ns each), {} keys held",
            elapsed.as_nanos() as f64 / f64::from(calls),
            limits.keys_held()
        );
        assert_eq!(limits.keys_held(), calls as usize);
        // At 6,000 a minute one call comes back every 10 ms; after that, every key is idle.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(limits.forget_idle(), 0);
        assert_eq!(limits.keys_held(), 0);
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(100)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1_001)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(6)), 6);
    }

    #[test]
    fn every_endpoint_has_a_label_and_a_surface() {
        for endpoint in Endpoint::ALL {
            assert!(!endpoint.label().is_empty());
            let _ = endpoint.surface();
        }
    }
}
