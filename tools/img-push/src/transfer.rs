//! How far an Engine push has got, for people: bytes sent per layer and overall, the rate
//! and an estimate of the time left. Pure: stream events and instants in, numbers and text
//! out; `upload.rs` draws them as bars on a terminal, or prints [`Transfer::line`] every
//! [`PLAIN_EVERY`] when stderr is not one (CI).
//!
//! The Engine's push stream says `Pushing` with `progressDetail {current, total}` for the
//! layer being sent. The Engine also names the layer (`id`), but bollard's `PushImageInfo`
//! does not keep that field, so a layer is told apart by its size (`total`): two layers of
//! exactly the same size share one entry, and the overall figure then counts one of them.

use std::time::{Duration, Instant};

/// How often a plain line is printed while bytes are being sent (the first one is printed
/// as soon as the first bytes go out).
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// One layer being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerBytes {
    /// Bytes sent so far.
    pub sent: u64,
    /// The layer's size.
    pub total: u64,
}

/// The state of one push, as far as people see it.
#[derive(Debug, Clone, Default)]
pub struct Transfer {
    layers: Vec<LayerBytes>,
    /// Layers the Engine is going to push (`Preparing`), and those in the registry now.
    pub layer_count: u64,
    pub layers_done: u64,
    first_bytes_at: Option<Instant>,
    last_line_at: Option<Instant>,
}

impl Transfer {
    /// Takes a `Pushing` event; returns the index of the layer it is about (for its bar)
    /// and whether that layer is new.
    pub fn bytes(&mut self, current: u64, total: u64, now: Instant) -> (usize, bool) {
        self.first_bytes_at.get_or_insert(now);
        let current = current.min(total);
        match self.layers.iter().position(|l| l.total == total) {
            Some(index) => {
                let layer = &mut self.layers[index];
                layer.sent = layer.sent.max(current);
                (index, false)
            }
            None => {
                self.layers.push(LayerBytes {
                    sent: current,
                    total,
                });
                (self.layers.len() - 1, true)
            }
        }
    }

    /// The layer at `index`.
    pub fn layer(&self, index: usize) -> LayerBytes {
        self.layers[index]
    }

    /// Bytes sent and bytes to send, over every layer that has started sending (the sizes
    /// of layers not started yet are not known).
    pub fn overall(&self) -> LayerBytes {
        self.layers
            .iter()
            .fold(LayerBytes { sent: 0, total: 0 }, |sum, l| LayerBytes {
                sent: sum.sent + l.sent,
                total: sum.total + l.total,
            })
    }

    /// Bytes a second since the first bytes went out; `None` before that, or too early to say.
    pub fn rate(&self, now: Instant) -> Option<f64> {
        let seconds = now.duration_since(self.first_bytes_at?).as_secs_f64();
        (seconds >= 0.2).then(|| self.overall().sent as f64 / seconds)
    }

    /// The time left to send what is known, at the rate so far.
    pub fn estimate(&self, now: Instant) -> Option<Duration> {
        let rate = self.rate(now).filter(|r| *r > 0.0)?;
        let overall = self.overall();
        let left = overall.total.saturating_sub(overall.sent) as f64 / rate;
        Some(Duration::from_secs_f64(left))
    }

    /// Whether a plain line is due: as soon as bytes go out, then every [`PLAIN_EVERY`].
    /// Marks it printed when it is.
    pub fn plain_line_due(&mut self, now: Instant) -> bool {
        if self.first_bytes_at.is_none() {
            return false;
        }
        let due = self
            .last_line_at
            .is_none_or(|last| now.duration_since(last) >= PLAIN_EVERY);
        if due {
            self.last_line_at = Some(now);
        }
        due
    }

    /// `48% (116.2 MB of 242.0 MB), 2/5 layers done, 35.2 MB/s, about 4s left`.
    pub fn line(&self, now: Instant) -> String {
        let overall = self.overall();
        let percent = match overall.total {
            0 => 0,
            total => overall.sent * 100 / total,
        };
        let mut text = format!(
            "{percent}% ({} of {}), {}/{} layers done",
            human_bytes(overall.sent),
            human_bytes(overall.total),
            self.layers_done,
            self.layer_count
        );
        if let Some(rate) = self.rate(now) {
            text.push_str(&format!(", {}/s", human_bytes(rate as u64)));
        }
        if let Some(left) = self.estimate(now) {
            text.push_str(&format!(", about {} left", human_duration(left)));
        }
        text
    }
}

/// Bytes as people read them: `512 B`, `3.4 kB`, `242.0 MB`, `1.2 GB` (powers of 1000, as
/// `docker push` shows them).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `4s`, `2m05s`, `1h02m`.
fn human_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64().ceil() as u64;
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_told_apart_by_size_and_summed() {
        let start = Instant::now();
        let mut transfer = Transfer {
            layer_count: 3,
            ..Transfer::default()
        };
        assert_eq!(transfer.bytes(1_000_000, 10_000_000, start), (0, true));
        assert_eq!(transfer.bytes(500, 2_000, start), (1, true));
        assert_eq!(transfer.bytes(4_000_000, 10_000_000, start), (0, false));
        // A late event with less progress does not move a layer back.
        transfer.bytes(3_000_000, 10_000_000, start);
        assert_eq!(
            transfer.overall(),
            LayerBytes {
                sent: 4_000_500,
                total: 10_002_000
            }
        );
        assert_eq!(
            transfer.layer(0),
            LayerBytes {
                sent: 4_000_000,
                total: 10_000_000
            }
        );
    }

    #[test]
    fn the_line_gives_percent_bytes_layers_rate_and_estimate() {
        let start = Instant::now();
        let mut transfer = Transfer {
            layer_count: 5,
            layers_done: 2,
            ..Transfer::default()
        };
        transfer.bytes(0, 242_000_000, start);
        let later = start + Duration::from_secs(4);
        transfer.bytes(116_000_000, 242_000_000, later);
        assert_eq!(
            transfer.line(later),
            "47% (116.0 MB of 242.0 MB), 2/5 layers done, 29.0 MB/s, about 5s left"
        );
    }

    #[test]
    fn plain_lines_start_with_the_first_bytes_then_come_every_few_seconds() {
        let start = Instant::now();
        let mut transfer = Transfer::default();
        assert!(!transfer.plain_line_due(start), "nothing sent yet");
        transfer.bytes(10, 100, start);
        assert!(transfer.plain_line_due(start));
        assert!(!transfer.plain_line_due(start + Duration::from_secs(1)));
        assert!(transfer.plain_line_due(start + PLAIN_EVERY));
        assert!(!transfer.plain_line_due(start + PLAIN_EVERY + Duration::from_secs(1)));
    }

    #[test]
    fn sizes_and_durations_read_as_docker_shows_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3_400), "3.4 kB");
        assert_eq!(human_bytes(242_000_000), "242.0 MB");
        assert_eq!(human_bytes(1_200_000_000), "1.2 GB");
        assert_eq!(human_duration(Duration::from_millis(3_200)), "4s");
        assert_eq!(human_duration(Duration::from_secs(125)), "2m05s");
        assert_eq!(human_duration(Duration::from_secs(3_720)), "1h02m");
    }
}
