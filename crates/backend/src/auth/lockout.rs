//! Account lockout: login attempts per lowercased e-mail are counted in PostgreSQL
//! (`login_attempts`) within a window of `LOGIN_LOCKOUT_SECONDS`. The attempt that reaches
//! `LOGIN_LOCKOUT_THRESHOLD` locks the e-mail for `LOGIN_LOCKOUT_SECONDS × 2^(n-1)` (n =
//! lockouts in the last 24 h), capped at `LOGIN_LOCKOUT_MAX_SECONDS`; a success clears it all.
//!
//! Invariants:
//! - An attempt is counted, under the row's lock, *before* its password is hashed, so at most
//!   `threshold` passwords are verified per window however many requests arrive at once, and a
//!   burst raises the doubling level by one, not once per request.
//! - It never fails open: when the counter cannot be read the login fails (a login needs
//!   PostgreSQL to find the user anyway).
//! - Unknown e-mails are counted the same way, so a lockout never reveals whether an account
//!   exists.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;

use crate::auth::config::AuthConfig;

/// The lockout's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Attempts per window; the one that reaches it starts a lockout. 0 disables the lockout.
    pub threshold: u32,
    /// The counting window and the first lockout's length.
    pub base: Duration,
    /// The longest lockout.
    pub max: Duration,
}

impl Rules {
    /// The rules of `cfg`.
    #[must_use]
    pub fn of(cfg: &AuthConfig) -> Self {
        Self {
            threshold: u32::try_from(cfg.lockout_threshold).unwrap_or(u32::MAX),
            base: cfg.lockout_base,
            max: cfg.lockout_max,
        }
    }

    /// The length of the `level`-th lockout in a row (1-based): doubling, capped.
    #[must_use]
    pub fn lock_length(&self, level: u32) -> Duration {
        let factor = 1u32
            .checked_shl(level.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// What the counter says about one login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Locked: refuse without checking the password.
    Locked {
        /// Seconds until the lockout ends (at least 1).
        retry_after: u64,
    },
    /// Check the password.
    Check {
        /// `Some(length)` when this attempt started a lockout, which stands unless it succeeds.
        locks: Option<Duration>,
    },
}

/// One e-mail's counter, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Counter {
    /// Attempts in the current window.
    pub attempts: i32,
    /// End of the current window.
    pub window_ends: DateTime<Utc>,
    /// Lockouts in a row.
    pub level: i32,
    /// When the level resets.
    pub level_ends: DateTime<Utc>,
    /// End of the current lockout.
    pub locked_until: Option<DateTime<Utc>>,
}

impl Counter {
    /// Counts one attempt at `now`: the counter after it, and what to do with the attempt.
    #[must_use]
    pub fn attempt(self, now: DateTime<Utc>, rules: &Rules) -> (Counter, Attempt) {
        if rules.threshold == 0 {
            return (self, Attempt::Check { locks: None });
        }
        if let Some(until) = self.locked_until.filter(|u| *u > now) {
            let ms = (until - now).num_milliseconds().max(1);
            let retry_after = u64::try_from(ms).unwrap_or(1).div_ceil(1000);
            return (self, Attempt::Locked { retry_after });
        }
        let mut next = self;
        next.locked_until = None;
        if self.window_ends <= now {
            next.attempts = 0;
            next.window_ends = now + delta(rules.base);
        }
        next.attempts = next.attempts.saturating_add(1);
        if u32::try_from(next.attempts).unwrap_or(0) < rules.threshold {
            return (next, Attempt::Check { locks: None });
        }
        next.level = if self.level_ends <= now {
            1
        } else {
            self.level.saturating_add(1)
        };
        next.level_ends = now + TimeDelta::days(1);
        let length = rules.lock_length(u32::try_from(next.level).unwrap_or(1));
        next.locked_until = Some(now + delta(length));
        next.attempts = 0;
        (
            next,
            Attempt::Check {
                locks: Some(length),
            },
        )
    }

    /// When the row stops mattering.
    fn expires_at(&self) -> DateTime<Utc> {
        let ends = self.window_ends.max(self.level_ends);
        self.locked_until.map_or(ends, |l| ends.max(l))
    }
}

/// A counter as read under its row lock, with the database's clock.
#[derive(sqlx::FromRow)]
struct Stored {
    #[sqlx(flatten)]
    counter: Counter,
    now: DateTime<Utc>,
    inserted: bool,
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// Counts a login attempt for `email` before its password is checked.
///
/// # Errors
/// The database failed; the login must then fail too (the guard never fails open).
pub async fn attempt(db: &PgPool, rules: &Rules, email: &str) -> Result<Attempt, sqlx::Error> {
    if rules.threshold == 0 {
        return Ok(Attempt::Check { locks: None });
    }
    let email = email.to_lowercase();
    let mut tx = db.begin().await?;
    // Inserts the row or locks the existing one, so concurrent attempts queue here.
    let row: Stored = sqlx::query_as(
        "INSERT INTO login_attempts AS a (email) VALUES ($1) \
         ON CONFLICT (email) DO UPDATE SET email = a.email \
         RETURNING attempts, window_ends, level, level_ends, locked_until, \
                   now() AS now, (xmax = 0) AS inserted",
    )
    .bind(&email)
    .fetch_one(&mut *tx)
    .await?;
    let (counter, now, inserted) = (row.counter, row.now, row.inserted);
    let (next, outcome) = counter.attempt(now, rules);
    if next != counter {
        sqlx::query(
            "UPDATE login_attempts SET attempts = $2, window_ends = $3, level = $4, \
             level_ends = $5, locked_until = $6, expires_at = $7 WHERE email = $1",
        )
        .bind(&email)
        .bind(next.attempts)
        .bind(next.window_ends)
        .bind(next.level)
        .bind(next.level_ends)
        .bind(next.locked_until)
        .bind(next.expires_at())
        .execute(&mut *tx)
        .await?;
    }
    if inserted {
        // Unknown e-mails leave rows too; a new one pays for removing a few stale ones.
        sqlx::query(
            "DELETE FROM login_attempts WHERE email IN \
             (SELECT email FROM login_attempts WHERE expires_at < $1 LIMIT 100)",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

/// A successful login (or password reset) clears the counter, the lock and the doubling level.
///
/// # Errors
/// The database failed.
pub async fn clear(db: &PgPool, email: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_attempts WHERE email = $1")
        .bind(email.to_lowercase())
        .execute(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            threshold: 3,
            base: Duration::from_secs(10),
            max: Duration::from_secs(35),
        }
    }

    fn fresh(now: DateTime<Utc>) -> Counter {
        Counter {
            attempts: 0,
            window_ends: now,
            level: 0,
            level_ends: now,
            locked_until: None,
        }
    }

    fn secs(s: i64) -> TimeDelta {
        TimeDelta::seconds(s)
    }

    #[test]
    fn the_attempt_that_reaches_the_threshold_locks_and_later_ones_are_refused_unchecked() {
        let now = Utc::now();
        let mut c = fresh(now);
        let mut outcomes = Vec::new();
        for _ in 0..6 {
            let (next, out) = c.attempt(now, &rules());
            outcomes.push(out);
            c = next;
        }
        let check = Attempt::Check { locks: None };
        let locks = Attempt::Check {
            locks: Some(Duration::from_secs(10)),
        };
        let locked = Attempt::Locked { retry_after: 10 };
        assert_eq!(
            outcomes,
            [check, check, locks, locked, locked, locked],
            "a burst raises the level once"
        );
        assert_eq!(c.level, 1);
    }

    #[test]
    fn lockouts_in_a_row_double_up_to_the_cap_and_the_level_resets_after_a_day() {
        let r = rules();
        assert_eq!(r.lock_length(1), Duration::from_secs(10));
        assert_eq!(r.lock_length(2), Duration::from_secs(20));
        assert_eq!(r.lock_length(3), Duration::from_secs(35));
        assert_eq!(r.lock_length(200), Duration::from_secs(35));
        let mut now = Utc::now();
        let mut c = fresh(now);
        let mut lengths = Vec::new();
        for _ in 0..3 {
            for _ in 0..3 {
                let (next, out) = c.attempt(now, &r);
                if let Attempt::Check { locks: Some(l) } = out {
                    lengths.push(l.as_secs());
                }
                c = next;
            }
            now += secs(40);
        }
        assert_eq!(lengths, [10, 20, 35]);
        now += TimeDelta::days(1);
        for _ in 0..3 {
            c = c.attempt(now, &r).0;
        }
        assert_eq!(c.level, 1, "a day without lockouts starts doubling anew");
    }

    #[test]
    fn attempts_outside_the_window_start_a_new_count() {
        let mut now = Utc::now();
        let mut c = fresh(now);
        for _ in 0..2 {
            c = c.attempt(now, &rules()).0;
        }
        now += secs(11);
        let (c, out) = c.attempt(now, &rules());
        assert_eq!(out, Attempt::Check { locks: None });
        assert_eq!(c.attempts, 1);
    }

    #[test]
    fn a_threshold_of_zero_never_locks() {
        let r = Rules {
            threshold: 0,
            ..rules()
        };
        let now = Utc::now();
        let mut c = fresh(now);
        for _ in 0..100 {
            let (next, out) = c.attempt(now, &r);
            assert_eq!(out, Attempt::Check { locks: None });
            c = next;
        }
    }
}
