//! Retries: how many, and how long to wait before each (dramatiq's policy).

use std::time::Duration;

use crate::client::ActorOptions;
use crate::engine::Message;

/// Retries of a failed message before it is dead-lettered, by default (dramatiq's).
pub const DEFAULT_MAX_RETRIES: u32 = 20;
/// The first retry's backoff, by default (dramatiq's).
pub const DEFAULT_MIN_BACKOFF: Duration = Duration::from_secs(15);
/// The longest backoff, by default (dramatiq's: 7 days).
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long one attempt may run, by default (dramatiq's: 10 minutes).
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(600);

/// The retry settings that apply to one message: its own options first, then its actor's,
/// then the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Backoff before the first retry.
    pub min_backoff: Duration,
    /// Cap on the backoff.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The policy for `message` of an actor with `options`.
    pub fn for_message(message: &Message, options: &ActorOptions) -> Self {
        let ms = |key: &str| message.option_millis(key).map(Duration::from_millis);
        RetryPolicy {
            max_retries: message
                .options
                .get("max_retries")
                .and_then(|v| v.as_u64())
                .map(|n| n.min(u64::from(u32::MAX)) as u32)
                .or(options.max_retries)
                .unwrap_or(DEFAULT_MAX_RETRIES),
            min_backoff: ms("min_backoff")
                .or(options.min_backoff)
                .unwrap_or(DEFAULT_MIN_BACKOFF),
            max_backoff: ms("max_backoff")
                .or(options.max_backoff)
                .unwrap_or(DEFAULT_MAX_BACKOFF),
        }
    }

    /// After `retries` earlier failures: the delay before the next attempt, or `None` if the
    /// retries are exhausted.
    pub fn next_delay(&self, retries: u32) -> Option<Duration> {
        (retries < self.max_retries).then(|| self.backoff(retries))
    }

    /// `min_backoff · 2^retries`, capped at `max_backoff`, with jitter down to half of it.
    pub fn backoff(&self, retries: u32) -> Duration {
        let base = self
            .min_backoff
            .checked_mul(1u32.checked_shl(retries.min(31)).unwrap_or(u32::MAX))
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff);
        let half = base / 2;
        half + half.mul_f64(jitter())
    }
}

/// A number in [0, 1) that differs from call to call.
fn jitter() -> f64 {
    (uuid::Uuid::new_v4().as_u128() as u64 >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let p = RetryPolicy {
            max_retries: 3,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5),
        };
        for retries in 0..3 {
            let b = p.next_delay(retries).unwrap();
            let full = Duration::from_secs(1 << retries).min(Duration::from_secs(5));
            assert!(b >= full / 2 && b <= full, "{retries}: {b:?}");
        }
        assert_eq!(p.next_delay(3), None);
        assert!(p.backoff(40) <= Duration::from_secs(5));
    }
}
