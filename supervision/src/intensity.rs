//! Restart intensity: at most `max_restarts` within `within`; one more and the supervisor
//! gives up and escalates to its own parent. Pure, over `tokio::time::Instant`.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intensity {
    pub max_restarts: u32,
    pub within: Duration,
}

impl Default for Intensity {
    /// 5 restarts in 10 s, a bit more forgiving than OTP's 1 in 5 s for a daemon whose
    /// children talk to flaky networks.
    fn default() -> Self {
        Self {
            max_restarts: 5,
            within: Duration::from_secs(10),
        }
    }
}

/// The restarts inside the current window.
#[derive(Debug, Default)]
pub struct RestartWindow {
    times: VecDeque<Instant>,
}

impl RestartWindow {
    /// Records a restart at `now`; `false` when it exceeds the intensity.
    pub fn allow(&mut self, intensity: Intensity, now: Instant) -> bool {
        while let Some(&t) = self.times.front() {
            if now.duration_since(t) >= intensity.within {
                self.times.pop_front();
            } else {
                break;
            }
        }
        self.times.push_back(now);
        self.times.len() as u32 <= intensity.max_restarts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn n_restarts_in_the_window_pass_the_next_one_does_not() {
        let i = Intensity {
            max_restarts: 3,
            within: Duration::from_secs(10),
        };
        let mut w = RestartWindow::default();
        let t0 = Instant::now();
        assert!(w.allow(i, t0));
        assert!(w.allow(i, t0 + Duration::from_secs(1)));
        assert!(w.allow(i, t0 + Duration::from_secs(2)));
        assert!(
            !w.allow(i, t0 + Duration::from_millis(9_999)),
            "a 4th inside 10 s"
        );
        let mut w = RestartWindow::default();
        assert!(w.allow(i, t0));
        assert!(w.allow(i, t0 + Duration::from_secs(1)));
        assert!(w.allow(i, t0 + Duration::from_secs(2)));
        assert!(
            w.allow(i, t0 + Duration::from_secs(10)),
            "the first one left the window at 10 s"
        );
    }
}
