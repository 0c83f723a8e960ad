//! Smart lockout: failed sign-in attempts counted per account (and method) and per source
//! address, in the database so every node sees the same count. Past a threshold the key is
//! locked for a minute, and each further failure doubles the lock (up to an hour), counted
//! from the latest failure — guessing gets slower and slower, while a person who mistypes a few
//! times is never locked.
//!
//! The per-source count catches one address spraying many accounts (which stays under each
//! account's threshold); it is higher than an account's so a shared office address is not
//! locked by a few people's typos. A success clears the account's count, never the source's.
//!
//! What it must never do: tell whether an account exists (unknown accounts count under the
//! source just the same), or lock on a success.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::Result;
use crate::kernel::Deps;
use crate::methods::store::FailureCount;
use crate::methods::store::MethodStore;

/// Failures of one account's method before it locks (Entra's default is 10).
pub const ACCOUNT_THRESHOLD: u32 = 10;
/// Failures from one source address, across accounts, before it locks.
pub const SOURCE_THRESHOLD: u32 = 50;
/// The first lock; each further failure doubles it.
pub const FIRST_LOCK: Duration = Duration::minutes(1);
pub const LONGEST_LOCK: Duration = Duration::hours(1);
/// A count restarts this long after it began.
pub const COUNTING_WINDOW: Duration = Duration::hours(24);

/// Until when a count locks its key, if it does.
pub fn locked_until(count: &FailureCount, threshold: u32) -> Option<OffsetDateTime> {
    if count.count < threshold {
        return None;
    }
    let doublings = (count.count - threshold).min(6);
    let lock = (FIRST_LOCK * 2_i32.pow(doublings)).min(LONGEST_LOCK);
    Some(count.last_failure + lock)
}

/// A lock in force: until when, and whether it is the source address's rather than the
/// account's (the message differs; the error code, 50053, does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    pub until: OffsetDateTime,
    pub by_source: bool,
}

impl Lock {
    /// What the person is told, with the wait rounded up to whole minutes.
    pub fn message(&self, now: OffsetDateTime) -> String {
        let minutes = ((self.until - now).whole_seconds().max(1) + 59) / 60;
        let wait = if minutes == 1 {
            "1 minute".to_string()
        } else {
            format!("{minutes} minutes")
        };
        if self.by_source {
            format!("Too many sign-in attempts have come from your network. Try again in {wait}.")
        } else {
            format!(
                "Your account is temporarily locked to prevent unauthorized use. Try again in {wait}."
            )
        }
    }

    pub fn retry_after_secs(&self, now: OffsetDateTime) -> u64 {
        u64::try_from((self.until - now).whole_seconds().max(1)).unwrap_or(1)
    }
}

/// The counters one attempt is judged by.
#[derive(Debug, Clone)]
pub struct LockoutKeys {
    account: Option<String>,
    source: Option<String>,
}

impl LockoutKeys {
    /// `method` names what is being guessed (`password`, `tap`, `totp`), so a wrong pass does
    /// not lock a person's password and the reverse.
    pub fn new(method: &str, user_id: Option<Uuid>, ip_address: Option<&str>) -> Self {
        LockoutKeys {
            account: user_id.map(|id| format!("{method}:{id}")),
            source: ip_address.map(|ip| format!("source:{ip}")),
        }
    }

    fn each(&self) -> impl Iterator<Item = (&str, u32, bool)> {
        self.account
            .iter()
            .map(|k| (k.as_str(), ACCOUNT_THRESHOLD, false))
            .chain(
                self.source
                    .iter()
                    .map(|k| (k.as_str(), SOURCE_THRESHOLD, true)),
            )
    }
}

fn latest(locks: impl Iterator<Item = Lock>) -> Option<Lock> {
    locks.max_by_key(|l| l.until)
}

/// The lock in force for these keys now, if any.
pub async fn check<S: MethodStore + ?Sized>(
    deps: &Deps<S>,
    keys: &LockoutKeys,
) -> Result<Option<Lock>> {
    let now = deps.clock.now();
    let mut locks = Vec::new();
    for (key, threshold, by_source) in keys.each() {
        if let Some(count) = deps.store.failures(key).await?
            && let Some(until) = locked_until(&count, threshold)
            && now < until
        {
            locks.push(Lock { until, by_source });
        }
    }
    Ok(latest(locks.into_iter()))
}

/// Counts a failure under each key; the lock it brings, if any.
pub async fn fail<S: MethodStore + ?Sized>(
    deps: &Deps<S>,
    keys: &LockoutKeys,
) -> Result<Option<Lock>> {
    let now = deps.clock.now();
    let mut locks = Vec::new();
    for (key, threshold, by_source) in keys.each() {
        let count = deps.store.record_failure(key, now, COUNTING_WINDOW).await?;
        if let Some(until) = locked_until(&count, threshold) {
            locks.push(Lock { until, by_source });
        }
    }
    Ok(latest(locks.into_iter()))
}

/// A success forgets the account's failures (the source's stay counted).
pub async fn succeed<S: MethodStore + ?Sized>(deps: &Deps<S>, keys: &LockoutKeys) -> Result<()> {
    if let Some(account) = &keys.account {
        deps.store.clear_failures(account).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(n: u32, last: OffsetDateTime) -> FailureCount {
        FailureCount {
            count: n,
            window_start: last - Duration::minutes(5),
            last_failure: last,
        }
    }

    #[test]
    fn the_lock_starts_at_the_threshold_and_doubles_with_each_failure_up_to_an_hour() {
        let t = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        assert_eq!(locked_until(&count(9, t), 10), None);
        assert_eq!(
            locked_until(&count(10, t), 10),
            Some(t + Duration::minutes(1))
        );
        assert_eq!(
            locked_until(&count(11, t), 10),
            Some(t + Duration::minutes(2))
        );
        assert_eq!(
            locked_until(&count(13, t), 10),
            Some(t + Duration::minutes(8))
        );
        assert_eq!(
            locked_until(&count(40, t), 10),
            Some(t + Duration::hours(1))
        );
    }

    #[test]
    fn the_message_says_how_long_to_wait_and_whose_lock_it_is() {
        let t = OffsetDateTime::UNIX_EPOCH;
        let account = Lock {
            until: t + Duration::seconds(61),
            by_source: false,
        };
        assert!(account.message(t).contains("Your account"));
        assert!(account.message(t).contains("2 minutes"));
        let source = Lock {
            until: t + Duration::seconds(30),
            by_source: true,
        };
        assert!(source.message(t).contains("your network"));
        assert!(source.message(t).contains("1 minute."));
    }
}
