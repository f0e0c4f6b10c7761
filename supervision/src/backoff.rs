//! Exponential backoff with jitter, reset after a stable period. Pure: the caller passes
//! the attempt number and a random fraction, so every boundary is testable.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first restart; zero restarts at once.
    pub initial: Duration,
    /// Upper bound of any delay (before jitter).
    pub max: Duration,
    /// Growth per consecutive failure (2.0 doubles).
    pub multiplier: f64,
    /// Fraction of the delay added at random: 0.1 means up to +10%.
    pub jitter: f64,
    /// A child that stayed up this long starts again from `initial`.
    pub reset_after: Duration,
}

impl Default for Backoff {
    /// 100 ms, doubling, capped at 30 s, up to +10% jitter, reset after 60 s up.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.1,
            reset_after: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// Restart at once, every time.
    pub const fn none() -> Self {
        Self {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            multiplier: 1.0,
            jitter: 0.0,
            reset_after: Duration::ZERO,
        }
    }

    /// The delay before restart number `attempt` (0 = first restart). `random` is a
    /// number in [0, 1) that scales the jitter.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        if self.initial.is_zero() {
            return Duration::ZERO;
        }
        let base = self.initial.as_secs_f64() * self.multiplier.powi(attempt.min(64) as i32);
        let capped = base.min(self.max.as_secs_f64());
        let jitter = capped * self.jitter * random.clamp(0.0, 1.0);
        Duration::from_secs_f64(capped + jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_jitters_within_bounds() {
        let b = Backoff {
            jitter: 0.0,
            ..Backoff::default()
        };
        assert_eq!(b.delay(0, 0.5), Duration::from_millis(100));
        assert_eq!(b.delay(1, 0.5), Duration::from_millis(200));
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(800));
        assert_eq!(b.delay(20, 0.5), Duration::from_secs(30), "capped");
        let j = Backoff::default();
        assert_eq!(j.delay(0, 0.0), Duration::from_millis(100));
        let most = j.delay(0, 0.999_999);
        assert!(
            most > Duration::from_millis(109) && most < Duration::from_millis(110),
            "{most:?}"
        );
        assert_eq!(Backoff::none().delay(5, 0.9), Duration::ZERO);
    }
}
