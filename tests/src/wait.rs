//! Waiting (async) for something to become true, with a deadline that fails the test naming what it
//! waited for.
//!
//! ```no_run
//! # async fn example(port: u16) {
//! use std::time::Duration;
//! use shipkit_tests::wait::wait_for;
//! let ready = wait_for(Duration::from_secs(30), "the service", || async { Some(port) }).await;
//! # let _ = ready;
//! # }
//! ```

use std::future::Future;
use std::time::{Duration, Instant};

/// How often the conditions are checked.
pub const POLL: Duration = Duration::from_millis(250);

/// Polls `check` every [`POLL`] until it returns `Some`, or panics naming `what` after `within`.
pub async fn wait_for<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_for_returns_the_first_value() {
        let mut calls = 0;
        let value = wait_for(Duration::from_secs(5), "the third call", || {
            calls += 1;
            let now = calls;
            async move { (now == 3).then_some(now) }
        })
        .await;
        assert_eq!(value, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for nothing at all")]
    async fn wait_for_fails_naming_what_it_waited_for() {
        wait_for(Duration::from_millis(300), "nothing at all", || async {
            None::<()>
        })
        .await;
    }
}
