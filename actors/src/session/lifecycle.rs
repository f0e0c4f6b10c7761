//! A session's lifecycle as a pure state machine, beside the actor that follows it:
//!
//! ```text
//! CREATED -> ACTIVE -> PAUSED -> RESUMING -> ACTIVE ... -> CLOSING -> CLOSED
//!              ^  \______________________________^   (crash: ACTIVE -> RESUMING)
//! ```
//!
//! The SessionActor asks this module for every change and records each transition in the
//! store (`lifecycle` table) with the session's metadata, so `sessions.list` shows where a
//! session is and the log shows how it got there. Policies that decide *when* to reset
//! (daily at an hour, after idle minutes, `/new`) are pure functions here too.

use serde::{Deserialize, Serialize};

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Known but never run a turn.
    #[default]
    Created,
    /// Live: an actor holds its hot context.
    Active,
    /// Idle: the actor stopped, everything is in the store.
    Paused,
    /// Reloading its hot context from the store.
    Resuming,
    /// Being reset or deleted: its transcript is being archived.
    Closing,
    /// Over: a new message starts a fresh session under the same key.
    Closed,
}

/// What happens to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// The actor runs (first start, or resumed context loaded).
    Activate,
    /// Idle long enough: the actor stops.
    Pause,
    /// A message (or a caller) for a paused session.
    Resume,
    /// The actor stopped without pausing (crash, gateway restart): reload from the store.
    Recover,
    /// Reset or delete begins.
    Close,
    /// The archive is written.
    Finish,
}

/// A transition the machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {from:?} session cannot take {event:?}")]
pub struct Invalid {
    pub from: Phase,
    pub event: Event,
}

impl Phase {
    /// The phase after `event`, or why it cannot happen.
    pub fn on(self, event: Event) -> Result<Phase, Invalid> {
        use Event as E;
        use Phase as P;
        match (self, event) {
            (P::Created | P::Resuming, E::Activate) => Ok(P::Active),
            (P::Active, E::Pause) => Ok(P::Paused),
            (P::Paused, E::Resume) => Ok(P::Resuming),
            (P::Active | P::Resuming, E::Recover) => Ok(P::Resuming),
            (P::Created | P::Active | P::Paused | P::Resuming, E::Close) => Ok(P::Closing),
            (P::Closing, E::Finish) => Ok(P::Closed),
            (from, event) => Err(Invalid { from, event }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Created => "created",
            Phase::Active => "active",
            Phase::Paused => "paused",
            Phase::Resuming => "resuming",
            Phase::Closing => "closing",
            Phase::Closed => "closed",
        }
    }
}

/// One recorded transition (a row of the store's `lifecycle` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    pub from: Phase,
    pub to: Phase,
    pub event: Event,
    pub ts: u64,
    /// Why, in words: "idle", "/new", "daily reset at 04:00", "crash"...
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// Walks `events` from `from`, collecting the transitions (or the first invalid one).
pub fn walk(
    from: Phase,
    events: &[Event],
    ts: u64,
    reason: &str,
) -> Result<(Phase, Vec<Transition>), Invalid> {
    let mut at = from;
    let mut out = Vec::with_capacity(events.len());
    for &event in events {
        let to = at.on(event)?;
        out.push(Transition {
            from: at,
            to,
            event,
            ts,
            reason: reason.to_owned(),
        });
        at = to;
    }
    Ok((at, out))
}

/// When sessions reset on their own (`session.reset`), OpenClaw's shape:
/// `{mode: "daily" | "idle" | "off", atHour: 0-23, idleMinutes?}`; with both a daily hour and
/// idle minutes, whichever comes first resets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetPolicy {
    /// Local hour of the daily reset (None: no daily reset).
    pub at_hour: Option<u32>,
    /// Reset after this many idle minutes (None: never).
    pub idle_minutes: Option<u64>,
    /// Messages that start a new session: `/new`, `/reset` by default.
    pub triggers: Vec<String>,
}

impl Default for ResetPolicy {
    fn default() -> Self {
        ResetPolicy {
            at_hour: Some(4),
            idle_minutes: None,
            triggers: vec!["/new".into(), "/reset".into()],
        }
    }
}

impl ResetPolicy {
    /// From the configuration (`session.reset {mode, atHour, idleMinutes}`,
    /// `session.idleMinutes`, `session.resetTriggers`); missing keys take the defaults
    /// (daily at 04:00, triggers `/new` and `/reset`). Mode idle without minutes waits 60.
    pub fn from_config(config: &serde_json::Value) -> ResetPolicy {
        let session = config.get("session");
        let reset = session.and_then(|s| s.get("reset"));
        let num = |v: Option<&serde_json::Value>| v.and_then(serde_json::Value::as_u64);
        let idle = num(reset.and_then(|r| r.get("idleMinutes")))
            .or_else(|| num(session.and_then(|s| s.get("idleMinutes"))));
        let at_hour = num(reset.and_then(|r| r.get("atHour")))
            .map(|h| h.min(23) as u32)
            .unwrap_or(4);
        let mode = reset
            .and_then(|r| r.get("mode"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("daily");
        let (at_hour, idle_minutes) = match mode {
            "off" => (None, None),
            "idle" => (None, Some(idle.unwrap_or(60))),
            _ => (Some(at_hour), idle),
        };
        let triggers = session
            .and_then(|s| s.get("resetTriggers"))
            .and_then(serde_json::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(serde_json::Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_else(|| ResetPolicy::default().triggers);
        ResetPolicy {
            at_hour,
            idle_minutes,
            triggers,
        }
    }

    /// Why a session last active at `last_ms` is stale at `now_ms` (None: it is not).
    /// `utc_offset_s` is the gateway host's offset from UTC (the daily hour is local).
    pub fn stale(&self, last_ms: u64, now_ms: u64, utc_offset_s: i64) -> Option<String> {
        if last_ms >= now_ms {
            return None;
        }
        if let Some(m) = self.idle_minutes
            && now_ms - last_ms >= m.saturating_mul(60_000)
        {
            return Some(format!("idle for more than {m} min"));
        }
        if let Some(h) = self.at_hour {
            let boundary = last_boundary(now_ms, h, utc_offset_s);
            if last_ms < boundary {
                return Some(format!("daily reset at {h:02}:00"));
            }
        }
        None
    }

    /// The rest of the message when `text` is a reset trigger (`/new` -> Some(""),
    /// `/new tell me a joke` -> Some("tell me a joke")), None otherwise.
    pub fn trigger<'a>(&self, text: &'a str) -> Option<&'a str> {
        let t = text.trim_start();
        self.triggers.iter().find_map(|trig| {
            let rest = t.strip_prefix(trig.as_str())?;
            if rest.is_empty() || rest.starts_with(char::is_whitespace) {
                Some(rest.trim())
            } else {
                None
            }
        })
    }
}

/// The most recent moment (ms since epoch) at local hour `hour` that is not after `now_ms`.
pub fn last_boundary(now_ms: u64, hour: u32, utc_offset_s: i64) -> u64 {
    const DAY: i64 = 86_400_000;
    let local = now_ms as i64 + utc_offset_s * 1000;
    let day_start = local.div_euclid(DAY) * DAY;
    let mut b = day_start + i64::from(hour.min(23)) * 3_600_000;
    if b > local {
        b -= DAY;
    }
    (b - utc_offset_s * 1000).max(0) as u64
}

/// The gateway host's offset from UTC in seconds now (from the C library's time zone).
pub fn local_utc_offset_s() -> i64 {
    // SAFETY: time(NULL) and localtime_r with valid pointers to stack values.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_path_is_allowed_and_nothing_else() {
        use Event::*;
        let (end, ts) = walk(
            Phase::Created,
            &[
                Activate, Pause, Resume, Activate, Recover, Activate, Close, Finish,
            ],
            1,
            "",
        )
        .unwrap();
        assert_eq!(end, Phase::Closed);
        let path: Vec<Phase> = ts.iter().map(|t| t.to).collect();
        assert_eq!(
            path,
            [
                Phase::Active,
                Phase::Paused,
                Phase::Resuming,
                Phase::Active,
                Phase::Resuming,
                Phase::Active,
                Phase::Closing,
                Phase::Closed
            ]
        );
        let all_phases = [
            Phase::Created,
            Phase::Active,
            Phase::Paused,
            Phase::Resuming,
            Phase::Closing,
            Phase::Closed,
        ];
        let all_events = [Activate, Pause, Resume, Recover, Close, Finish];
        let mut allowed = 0;
        for p in all_phases {
            for e in all_events {
                if p.on(e).is_ok() {
                    allowed += 1;
                }
            }
        }
        assert_eq!(allowed, 11, "the table above has 11 allowed transitions");
        assert_eq!(
            Phase::Closed.on(Activate),
            Err(Invalid {
                from: Phase::Closed,
                event: Activate
            })
        );
        assert!(Phase::Paused.on(Pause).is_err(), "no double pause");
        assert!(
            Phase::Active.on(Resume).is_err(),
            "an active session is not resumed"
        );
        assert!(
            walk(Phase::Created, &[Pause], 0, "").is_err(),
            "walk stops at the first invalid event"
        );
    }

    const H: u64 = 3_600_000;
    const DAY: u64 = 24 * H;

    #[test]
    fn the_daily_boundary_is_the_last_local_hour_not_in_the_future() {
        let day10 = 10 * DAY;
        // UTC: at 05:00 the 04:00 boundary is today's; at 03:00 it is yesterday's.
        assert_eq!(last_boundary(day10 + 5 * H, 4, 0), day10 + 4 * H);
        assert_eq!(last_boundary(day10 + 3 * H, 4, 0), day10 - DAY + 4 * H);
        assert_eq!(
            last_boundary(day10 + 4 * H, 4, 0),
            day10 + 4 * H,
            "exactly at"
        );
        // UTC+2: local 04:00 is 02:00 UTC.
        assert_eq!(last_boundary(day10 + 3 * H, 4, 7200), day10 + 2 * H);
        // UTC-5: local 04:00 is 09:00 UTC; at 08:00 UTC it was yesterday's.
        assert_eq!(
            last_boundary(day10 + 8 * H, 4, -5 * 3600),
            day10 - DAY + 9 * H
        );
    }

    #[test]
    fn a_session_is_stale_after_the_daily_hour_or_idle_minutes_whichever_first() {
        let day10 = 10 * DAY;
        let daily = ResetPolicy::default();
        assert_eq!(
            daily.stale(day10 + 3 * H, day10 + 5 * H, 0).as_deref(),
            Some("daily reset at 04:00")
        );
        assert_eq!(daily.stale(day10 + 4 * H + 1, day10 + 23 * H, 0), None);
        let idle = ResetPolicy {
            at_hour: None,
            idle_minutes: Some(30),
            ..Default::default()
        };
        assert_eq!(idle.stale(day10, day10 + 29 * 60_000, 0), None);
        assert_eq!(
            idle.stale(day10, day10 + 30 * 60_000, 0).as_deref(),
            Some("idle for more than 30 min")
        );
        let both = ResetPolicy {
            at_hour: Some(4),
            idle_minutes: Some(600),
            ..Default::default()
        };
        assert!(
            both.stale(day10 + 5 * H, day10 + 16 * H, 0).is_some(),
            "idle first"
        );
        assert!(
            both.stale(day10 + 3 * H, day10 + 5 * H, 0).is_some(),
            "daily first"
        );
        let off = ResetPolicy {
            at_hour: None,
            idle_minutes: None,
            ..Default::default()
        };
        assert_eq!(off.stale(0, 100 * DAY, 0), None);
    }

    #[test]
    fn the_policy_reads_openclaw_keys_with_defaults() {
        use serde_json::json;
        assert_eq!(ResetPolicy::from_config(&json!({})), ResetPolicy::default());
        let p = ResetPolicy::from_config(
            &json!({"session": {"reset": {"mode": "daily", "atHour": 6, "idleMinutes": 90}}}),
        );
        assert_eq!((p.at_hour, p.idle_minutes), (Some(6), Some(90)));
        let p = ResetPolicy::from_config(
            &json!({"session": {"reset": {"mode": "idle"}, "idleMinutes": 15}}),
        );
        assert_eq!((p.at_hour, p.idle_minutes), (None, Some(15)));
        let p = ResetPolicy::from_config(
            &json!({"session": {"reset": {"mode": "off"}, "resetTriggers": ["/fresh"]}}),
        );
        assert_eq!((p.at_hour, p.idle_minutes), (None, None));
        assert_eq!(p.triggers, vec!["/fresh".to_owned()]);
    }

    #[test]
    fn triggers_match_whole_words_and_keep_the_rest() {
        let p = ResetPolicy::default();
        assert_eq!(p.trigger("/new"), Some(""));
        assert_eq!(p.trigger("  /reset  "), Some(""));
        assert_eq!(p.trigger("/new tell me a joke"), Some("tell me a joke"));
        assert_eq!(p.trigger("/newer things"), None);
        assert_eq!(p.trigger("what is /new"), None);
        assert_eq!(p.trigger("hello"), None);
    }
}
