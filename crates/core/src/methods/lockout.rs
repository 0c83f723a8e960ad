//! Smart lockout: failed sign-in attempts counted per account (and method) and per source
//! address, in the database so every node sees the same count. Past a threshold the key is
//! locked for a minute, and each further failure doubles the lock (up to an hour), counted
//! from the latest failure — guessing gets slower and slower, while a person who mistypes a few
//! times is never locked.
//!
//! A guess is counted before it is compared: [`begin`] takes a failure slot under each key in
//! one conditional statement per key, and only an attempt holding its slots compares the
//! secret. A wrong secret keeps them ([`Attempt::failed`]); a right one gives them back
//! ([`Attempt::succeeded`], [`Attempt::released`]). So at most a threshold's number of guesses
//! are ever compared per key and lock, however many arrive at once on however many nodes — a
//! burst cannot slip between a check and a count, because there is no separate check.
//!
//! The per-source count catches one address spraying many accounts (which stays under each
//! account's threshold); it is higher than an account's so a shared office address is not
//! locked by a few people's typos. A success clears the account's count, never the source's.
//! As in Entra, a source an account has signed in from before is familiar to it: a source lock
//! (earned by guesses at other accounts) does not refuse that account there, while the account's
//! own lock still does. Each account keeps its [`FAMILIAR_SOURCES`] most recent sources.
//!
//! What it must never do: tell whether an account exists (unknown accounts count under the
//! source just the same), lock on a success, or compare a secret without holding its slots.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::Result;
use crate::kernel::Deps;
use crate::methods::store::{FailureCount, LockRule, MethodStore, SlotTaking};

/// Failures of one account's method before it locks (Entra's default is 10).
pub const ACCOUNT_THRESHOLD: u32 = 10;
/// Failures from one source address, across accounts, before it locks.
pub const SOURCE_THRESHOLD: u32 = 50;
/// The first lock; each further failure doubles it.
pub const FIRST_LOCK: Duration = Duration::minutes(1);
pub const LONGEST_LOCK: Duration = Duration::hours(1);
/// A count restarts this long after it began.
pub const COUNTING_WINDOW: Duration = Duration::hours(24);
/// How many sources (the most recent) each account keeps as familiar.
pub const FAMILIAR_SOURCES: u32 = 20;

/// The rule a key with `threshold` locks by: the first lock at the threshold, twice as long
/// with each failure past it, never longer than [`LONGEST_LOCK`].
pub fn rule(threshold: u32) -> LockRule {
    let mut locks: Vec<Duration> = vec![FIRST_LOCK];
    while let Some(&last) = locks.last()
        && last < LONGEST_LOCK
    {
        locks.push((last * 2_i32).min(LONGEST_LOCK));
    }
    LockRule {
        threshold,
        window: COUNTING_WINDOW,
        locks,
    }
}

/// Until when a count locks its key, if it does.
pub fn locked_until(count: &FailureCount, threshold: u32) -> Option<OffsetDateTime> {
    rule(threshold)
        .lock_for(count.count)
        .map(|lock| count.last_failure + lock)
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
    user_id: Option<Uuid>,
    ip_address: Option<String>,
}

impl LockoutKeys {
    /// `method` names what is being guessed (`password`, `tap`, `totp`), so a wrong pass does
    /// not lock a person's password and the reverse.
    pub fn new(method: &str, user_id: Option<Uuid>, ip_address: Option<&str>) -> Self {
        LockoutKeys {
            account: user_id.map(|id| format!("{method}:{id}")),
            source: ip_address.map(|ip| format!("source:{ip}")),
            user_id,
            ip_address: ip_address.map(str::to_string),
        }
    }

    /// For a first factor given with a username: a name that matches no account is counted and
    /// locked under the name itself, exactly as an account would be, so that the 11th wrong
    /// guess at a made-up name answers "locked" just as it would for a real one and lockout does
    /// not tell which accounts exist.
    pub fn for_name(
        method: &str,
        user_id: Option<Uuid>,
        typed_name: &str,
        ip_address: Option<&str>,
    ) -> Self {
        let account = match user_id {
            Some(id) => format!("{method}:{id}"),
            None => format!("{method}:name:{}", typed_name.trim().to_lowercase()),
        };
        LockoutKeys {
            account: Some(account),
            source: ip_address.map(|ip| format!("source:{ip}")),
            user_id,
            ip_address: ip_address.map(str::to_string),
        }
    }
}

/// A slot held under one key.
#[derive(Debug, Clone)]
struct Held {
    key: String,
    taken: FailureCount,
    threshold: u32,
    by_source: bool,
}

/// An attempt allowed to compare its secret: the failure slots it holds. Dropped without an
/// outcome (a fault, a cancelled request), the slots stay counted as failures — the safe side.
#[must_use = "an attempt ends as failed, succeeded or released"]
#[derive(Debug)]
pub struct Attempt {
    keys: LockoutKeys,
    held: Vec<Held>,
}

/// Takes a failure slot under each of `keys` before a secret is compared: the attempt, or the
/// lock that refuses it (then nothing stays counted). The account's slot is taken first, so a
/// locked account does not use up its source's count; a slot taken under one key is given back
/// when another key refuses. A source lock does not refuse an account the source is familiar
/// to: that attempt is judged by its account's count alone.
pub async fn begin<S: MethodStore + ?Sized>(
    deps: &Deps<S>,
    keys: &LockoutKeys,
) -> Result<std::result::Result<Attempt, Lock>> {
    let now = deps.clock.now();
    let mut attempt = Attempt {
        keys: keys.clone(),
        held: Vec::new(),
    };
    let each = keys
        .account
        .iter()
        .map(|k| (k, ACCOUNT_THRESHOLD, false))
        .chain(keys.source.iter().map(|k| (k, SOURCE_THRESHOLD, true)));
    for (key, threshold, by_source) in each {
        match deps
            .store
            .take_failure_slot(key, now, &rule(threshold))
            .await?
        {
            SlotTaking::Taken(taken) => attempt.held.push(Held {
                key: key.clone(),
                taken,
                threshold,
                by_source,
            }),
            SlotTaking::Locked(count) => {
                if by_source && familiar(deps, keys).await? {
                    continue;
                }
                attempt.give_back(deps).await?;
                // The lock may have ended (or been cleared) between the refusal and the read:
                // the attempt was still refused, so the person is told to wait a moment.
                let until = count
                    .and_then(|c| locked_until(&c, threshold))
                    .filter(|until| *until > now)
                    .unwrap_or(now + Duration::seconds(1));
                return Ok(Err(Lock { until, by_source }));
            }
        }
    }
    Ok(Ok(attempt))
}

/// Whether the source is familiar to the account. Asked for an unknown account too (under the
/// nil id, which has no sources), so that a locked source answers unknown and known accounts
/// in the same time.
async fn familiar<S: MethodStore + ?Sized>(deps: &Deps<S>, keys: &LockoutKeys) -> Result<bool> {
    let Some(ip) = &keys.ip_address else {
        return Ok(false);
    };
    let user = keys.user_id.unwrap_or(Uuid::nil());
    Ok(deps.store.is_familiar_source(user, ip).await? && keys.user_id.is_some())
}

impl Attempt {
    /// The secret was wrong: the slots stay counted. The lock this failure brought, if any.
    pub fn failed(self) -> Option<Lock> {
        latest(self.held.iter().filter_map(|h| {
            locked_until(&h.taken, h.threshold).map(|until| Lock {
                until,
                by_source: h.by_source,
            })
        }))
    }

    /// The secret was right and the person is signed in: the account's failures are forgotten,
    /// the source's slot is given back (its other failures stay counted), and the source
    /// becomes familiar to the account.
    pub async fn succeeded<S: MethodStore + ?Sized>(self, deps: &Deps<S>) -> Result<()> {
        if let Some(account) = &self.keys.account {
            deps.store.clear_failures(account).await?;
        }
        for held in self.held.iter().filter(|h| h.by_source) {
            deps.store
                .return_failure_slot(&held.key, &held.taken)
                .await?;
        }
        if let (Some(user_id), Some(ip)) = (self.keys.user_id, &self.keys.ip_address) {
            deps.store
                .remember_familiar_source(user_id, ip, deps.clock.now(), FAMILIAR_SOURCES)
                .await?;
        }
        Ok(())
    }

    /// The secret was right but the sign-in went no further (a disabled account, an expired or
    /// used pass, a replayed code): not a guess, so every slot is given back, and nothing is
    /// forgotten or learnt.
    pub async fn released<S: MethodStore + ?Sized>(mut self, deps: &Deps<S>) -> Result<()> {
        self.give_back(deps).await
    }

    async fn give_back<S: MethodStore + ?Sized>(&mut self, deps: &Deps<S>) -> Result<()> {
        for held in self.held.drain(..) {
            deps.store
                .return_failure_slot(&held.key, &held.taken)
                .await?;
        }
        Ok(())
    }
}

fn latest(locks: impl Iterator<Item = Lock>) -> Option<Lock> {
    locks.max_by_key(|l| l.until)
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
    fn the_rule_handed_to_the_store_is_the_same_schedule() {
        let r = rule(ACCOUNT_THRESHOLD);
        let minutes: Vec<i64> = r.locks.iter().map(|d| d.whole_minutes()).collect();
        assert_eq!(minutes, [1, 2, 4, 8, 16, 32, 60]);
        assert_eq!(r.lock_for(ACCOUNT_THRESHOLD - 1), None);
        assert_eq!(r.lock_for(ACCOUNT_THRESHOLD), Some(FIRST_LOCK));
        assert_eq!(r.lock_for(u32::MAX), Some(LONGEST_LOCK));
        assert_eq!(
            (r.threshold, r.window),
            (ACCOUNT_THRESHOLD, COUNTING_WINDOW)
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
