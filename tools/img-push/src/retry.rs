//! When to try again: the retry budget and the backoff schedule (pure but for the wait).
//!
//! Kept apart so that one shared schedule can replace it in one place.

use std::time::Duration;

/// How often and how patiently to retry transient failures.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Retries after the first attempt.
    pub retries: u32,
    /// The first wait; it doubles after each retry (capped at 30 s).
    pub first_delay: Duration,
}

impl Retry {
    /// Waits before retry `attempt` (1-based), logging why.
    pub async fn wait(&self, attempt: u32, what: &str, why: &str) {
        let delay = backoff(attempt, self.first_delay, rand::random::<f64>());
        tracing::warn!(
            "{what}: {why}; retry {attempt}/{} in {:.1}s",
            self.retries,
            delay.as_secs_f64()
        );
        tokio::time::sleep(delay).await;
    }
}

/// How long to wait before retry number `attempt` (1-based): `first`, doubling, at most 30 s,
/// with up to a quarter of jitter added (`jitter` in `0.0..1.0`) so parallel jobs spread out.
pub fn backoff(attempt: u32, first: Duration, jitter: f64) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    let base = first.saturating_mul(factor).min(Duration::from_secs(30));
    base + base.mul_f64(jitter.clamp(0.0, 1.0) / 4.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let first = Duration::from_millis(500);
        assert_eq!(backoff(1, first, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(3, first, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(20, first, 0.0), Duration::from_secs(30));
        assert_eq!(backoff(1, first, 1.0), Duration::from_millis(625));
    }
}
