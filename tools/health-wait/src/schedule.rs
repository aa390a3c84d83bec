//! When to try again and when a target counts as healthy. Pure: observations in,
//! decisions out.

use common::retry::{Backoff, Jitter};
use std::time::Duration;

/// Jitter on health checks only shortens the delay (by up to 20 %), never lengthens it, so
/// the time to notice a recovery stays bounded by the delay.
pub const HEALTH_JITTER: Jitter = Jitter::shorter_by(0.2);

/// The schedule between attempts on one target: `interval`, growing by `factor` after each
/// failure in a row, up to `max`.
pub fn backoff(interval: Duration, max: Duration, factor: f64) -> Backoff {
    Backoff {
        first: interval,
        factor,
        max: max.max(interval),
        jitter: HEALTH_JITTER,
    }
}

/// What one attempt saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The target answered as required.
    Success,
    /// It did not; the reason is short ("connection refused", "status 503").
    Failure(String),
}

/// What to do after an observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The target has had its required successes in a row: stop checking it.
    Healthy,
    /// Try again after the delay.
    RetryAfter(Duration),
}

/// A change worth one line on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateChange {
    /// The first failure, or a failure for a different reason than the last one.
    Failing(String),
    /// A success after failures (or the first success) while more are still required.
    Recovering { successes: u32, required: u32 },
    /// Healthy now.
    Healthy,
}

/// The state of one target across attempts.
#[derive(Debug, Clone)]
pub struct Tracker {
    required_successes: u32,
    backoff: Backoff,
    attempts: u32,
    consecutive_successes: u32,
    consecutive_failures: u32,
    last_failure: Option<String>,
}

impl Tracker {
    /// A tracker that needs `required_successes` successes in a row (at least 1).
    pub fn new(required_successes: u32, backoff: Backoff) -> Tracker {
        Tracker {
            required_successes: required_successes.max(1),
            backoff,
            attempts: 0,
            consecutive_successes: 0,
            consecutive_failures: 0,
            last_failure: None,
        }
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Takes one observation; returns the decision and the state change to report, if any.
    pub fn observe(&mut self, attempt: &Attempt, jitter: f64) -> (Decision, Option<StateChange>) {
        self.attempts += 1;
        match attempt {
            Attempt::Success => {
                self.consecutive_successes += 1;
                self.consecutive_failures = 0;
                self.last_failure = None;
                if self.consecutive_successes >= self.required_successes {
                    return (Decision::Healthy, Some(StateChange::Healthy));
                }
                let change = (self.consecutive_successes == 1).then_some(StateChange::Recovering {
                    successes: 1,
                    required: self.required_successes,
                });
                (Decision::RetryAfter(self.backoff.delay(1, jitter)), change)
            }
            Attempt::Failure(reason) => {
                self.consecutive_successes = 0;
                self.consecutive_failures += 1;
                let change = (self.last_failure.as_deref() != Some(reason.as_str()))
                    .then(|| StateChange::Failing(reason.clone()));
                self.last_failure = Some(reason.clone());
                let delay = self.backoff.delay(self.consecutive_failures, jitter);
                (Decision::RetryAfter(delay), change)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Backoff = Backoff {
        first: Duration::from_secs(1),
        max: Duration::from_secs(5),
        factor: 2.0,
        jitter: HEALTH_JITTER,
    };

    #[test]
    fn backoff_grows_then_caps_and_jitter_only_shortens() {
        let delays: Vec<u64> = (1..=5).map(|n| BACKOFF.delay(n, 0.0).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 5, 5]);
        assert_eq!(BACKOFF.delay(1, 0.999).as_millis(), 800);
        assert!(BACKOFF.delay(1000, 0.5) <= BACKOFF.max);
    }

    #[test]
    fn one_success_is_enough_by_default() {
        let mut tracker = Tracker::new(1, BACKOFF);
        let fail = Attempt::Failure("connection refused".into());
        assert_eq!(
            tracker.observe(&fail, 0.0),
            (
                Decision::RetryAfter(Duration::from_secs(1)),
                Some(StateChange::Failing("connection refused".into()))
            )
        );
        // The same reason again is not news.
        assert_eq!(tracker.observe(&fail, 0.0).1, None);
        assert_eq!(
            tracker.observe(&Attempt::Success, 0.0),
            (Decision::Healthy, Some(StateChange::Healthy))
        );
        assert_eq!(tracker.attempts(), 3);
    }

    #[test]
    fn a_flapping_target_needs_its_successes_in_a_row() {
        let mut tracker = Tracker::new(3, BACKOFF);
        let fail = Attempt::Failure("status 503".into());
        let ok = Attempt::Success;
        assert!(matches!(
            tracker.observe(&ok, 0.0).0,
            Decision::RetryAfter(_)
        ));
        assert!(matches!(
            tracker.observe(&ok, 0.0).0,
            Decision::RetryAfter(_)
        ));
        // A failure resets the count.
        assert!(matches!(
            tracker.observe(&fail, 0.0).0,
            Decision::RetryAfter(_)
        ));
        assert_eq!(
            tracker.observe(&ok, 0.0).1,
            Some(StateChange::Recovering {
                successes: 1,
                required: 3
            })
        );
        assert!(matches!(
            tracker.observe(&ok, 0.0).0,
            Decision::RetryAfter(_)
        ));
        assert_eq!(tracker.observe(&ok, 0.0).0, Decision::Healthy);
        assert_eq!(tracker.attempts(), 6);
    }

    #[test]
    fn a_new_failure_reason_is_reported() {
        let mut tracker = Tracker::new(1, BACKOFF);
        tracker.observe(&Attempt::Failure("connection refused".into()), 0.0);
        let (_, change) = tracker.observe(&Attempt::Failure("status 503".into()), 0.0);
        assert_eq!(change, Some(StateChange::Failing("status 503".into())));
    }

    #[test]
    fn successes_reset_the_backoff() {
        let mut tracker = Tracker::new(2, BACKOFF);
        let fail = Attempt::Failure("x".into());
        for _ in 0..4 {
            tracker.observe(&fail, 0.0);
        }
        assert_eq!(
            tracker.observe(&Attempt::Success, 0.0).0,
            Decision::RetryAfter(Duration::from_secs(1))
        );
    }
}
