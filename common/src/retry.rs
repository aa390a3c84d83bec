//! One retry schedule for every tool: capped exponential growth with jitter. Pure: the
//! random part is an argument, so the schedule is tested exactly; [`Backoff::next`] draws it.

use std::time::Duration;

/// The range a delay is multiplied by, drawn afresh each time so that parallel jobs do not
/// retry (or poll) in step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jitter {
    /// The multiplier at `unit` 0.
    pub from: f64,
    /// The multiplier at `unit` 1.
    pub to: f64,
}

impl Jitter {
    /// No jitter: every delay exactly as scheduled.
    pub const NONE: Jitter = Jitter { from: 1.0, to: 1.0 };

    /// Up to `fraction` longer, never shorter (retrying a registry: never sooner than asked).
    pub const fn longer_by(fraction: f64) -> Jitter {
        Jitter {
            from: 1.0,
            to: 1.0 + fraction,
        }
    }

    /// Up to `fraction` shorter, never longer (health checks: the time to notice a recovery
    /// stays bounded by the delay).
    pub const fn shorter_by(fraction: f64) -> Jitter {
        Jitter {
            from: 1.0,
            to: 1.0 - fraction,
        }
    }

    /// Up to `fraction` either way (polling: the average pace is the one asked for).
    pub const fn around(fraction: f64) -> Jitter {
        Jitter {
            from: 1.0 - fraction,
            to: 1.0 + fraction,
        }
    }

    /// The multiplier at `unit` in `[0, 1]` (clamped).
    fn multiplier(self, unit: f64) -> f64 {
        let unit = if unit.is_nan() {
            0.0
        } else {
            unit.clamp(0.0, 1.0)
        };
        self.from + (self.to - self.from) * unit
    }
}

/// The delay before each attempt: `first × factor^(attempt − 1)`, at most `max`, times the
/// jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The delay after the first failure.
    pub first: Duration,
    /// How much the delay grows per attempt (1: a steady pace).
    pub factor: f64,
    /// The delay never grows past this (before jitter).
    pub max: Duration,
    pub jitter: Jitter,
}

impl Backoff {
    /// Doubling from `first` up to `max`.
    pub fn doubling(first: Duration, max: Duration, jitter: Jitter) -> Backoff {
        Backoff {
            first,
            factor: 2.0,
            max,
            jitter,
        }
    }

    /// The same delay every time (a poll interval).
    pub fn steady(every: Duration, jitter: Jitter) -> Backoff {
        Backoff {
            first: every,
            factor: 1.0,
            max: every,
            jitter,
        }
    }

    /// The delay before the next try after `attempt` tries (1-based; 0 counts as 1), with
    /// the jitter at `unit` in `[0, 1]`.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let grown = self.first.as_secs_f64() * self.factor.max(0.0).powi(exponent);
        let capped = grown.min(self.max.as_secs_f64()).max(0.0);
        Duration::from_secs_f64(capped * self.jitter.multiplier(unit).max(0.0))
    }

    /// [`Backoff::delay`] with a random jitter.
    pub fn next(&self, attempt: u32) -> Duration {
        self.delay(attempt, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubling_grows_then_caps() {
        let b = Backoff::doubling(ms(500), Duration::from_secs(30), Jitter::NONE);
        assert_eq!(b.delay(0, 0.5), ms(500));
        assert_eq!(b.delay(1, 0.5), ms(500));
        assert_eq!(b.delay(3, 0.5), Duration::from_secs(2));
        assert_eq!(b.delay(20, 0.5), Duration::from_secs(30));
        assert_eq!(b.delay(u32::MAX, 0.5), Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_in_its_range() {
        let longer = Backoff::doubling(ms(500), Duration::from_secs(30), Jitter::longer_by(0.25));
        assert_eq!(longer.delay(1, 0.0), ms(500));
        assert_eq!(longer.delay(1, 1.0), ms(625));
        let shorter = Backoff {
            jitter: Jitter::shorter_by(0.2),
            ..longer
        };
        assert_eq!(shorter.delay(1, 0.0), ms(500));
        assert_eq!(shorter.delay(1, 1.0), ms(400));
        let steady = Backoff::steady(Duration::from_secs(5), Jitter::around(0.2));
        assert_eq!(steady.delay(9, 0.0), Duration::from_secs(4));
        assert_eq!(steady.delay(9, 1.0), Duration::from_secs(6));
        assert_eq!(
            steady.delay(9, 7.0),
            Duration::from_secs(6),
            "unit is clamped"
        );
        for attempt in 1..10 {
            let d = steady.next(attempt);
            assert!(
                d >= Duration::from_secs(4) && d <= Duration::from_secs(6),
                "{d:?}"
            );
        }
    }

    #[test]
    fn a_growing_schedule_with_another_factor() {
        let b = Backoff {
            first: ms(100),
            factor: 1.5,
            max: Duration::from_secs(1),
            jitter: Jitter::NONE,
        };
        assert_eq!(b.delay(2, 0.0), ms(150));
        assert_eq!(b.delay(3, 0.0), ms(225));
        assert_eq!(b.delay(50, 0.0), Duration::from_secs(1));
    }
}
