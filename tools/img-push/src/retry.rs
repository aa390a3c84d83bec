//! When to try again: the retry budget; the schedule is `common::retry`'s, shared by every
//! tool.

use common::retry::{Backoff, Jitter};
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
    /// The schedule: `first_delay`, doubling, at most 30 s, with up to a quarter of jitter
    /// added so parallel jobs spread out.
    pub fn backoff(&self) -> Backoff {
        Backoff::doubling(
            self.first_delay,
            Duration::from_secs(30),
            Jitter::longer_by(0.25),
        )
    }

    /// Waits before retry `attempt` (1-based), logging why.
    pub async fn wait(&self, attempt: u32, what: &str, why: &str) {
        let delay = self.backoff().next(attempt);
        tracing::warn!(
            "{what}: {why}; retry {attempt}/{} in {:.1}s",
            self.retries,
            delay.as_secs_f64()
        );
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let retry = Retry {
            retries: 5,
            first_delay: Duration::from_millis(500),
        };
        let delay = |attempt, unit| retry.backoff().delay(attempt, unit);
        assert_eq!(delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(delay(3, 0.0), Duration::from_secs(2));
        assert_eq!(delay(20, 0.0), Duration::from_secs(30));
        assert_eq!(delay(1, 1.0), Duration::from_millis(625));
    }
}
