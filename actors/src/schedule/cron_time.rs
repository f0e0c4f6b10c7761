//! When cron jobs fire: cron expressions in a time zone, `every` intervals, `at` times,
//! the missed-run policy, and the CLI's schedule grammar. Pure: times are unix ms handed in.

use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use super::cron::{AtTime, CronError, CronJob, Schedule, invalid};

/// Where a cron expression is evaluated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    /// The gateway host's local zone (`TZ`, else `/etc/localtime`).
    Local,
    Named(chrono_tz::Tz),
}

impl Zone {
    /// `None` is the local zone; a name must be an IANA zone such as `Europe/Paris`.
    pub fn parse(tz: Option<&str>) -> Result<Zone, CronError> {
        match tz.map(str::trim) {
            None | Some("") => Ok(Zone::Local),
            Some(name) => chrono_tz::Tz::from_str(name).map(Zone::Named).map_err(|_| {
                invalid(format!(
                    "time zone {name:?} is not known: give an IANA zone such as Europe/Paris, America/New_York or UTC"
                ))
            }),
        }
    }

    /// The first time strictly after `after_ms` that `cron` matches in this zone.
    pub fn next_after(&self, cron: &Cron, after_ms: u64) -> Option<u64> {
        fn next<Tz: TimeZone>(cron: &Cron, tz: &Tz, after_ms: u64) -> Option<u64> {
            let start = tz.timestamp_millis_opt(after_ms as i64).single()?;
            let t = cron.find_next_occurrence(&start, false).ok()?;
            u64::try_from(t.timestamp_millis()).ok()
        }
        match self {
            Zone::Local => next(cron, &chrono::Local, after_ms),
            Zone::Named(tz) => next(cron, tz, after_ms),
        }
    }

    /// The last time at or before `at_ms` that `cron` matches in this zone.
    pub fn latest_at_or_before(&self, cron: &Cron, at_ms: u64) -> Option<u64> {
        fn prev<Tz: TimeZone>(cron: &Cron, tz: &Tz, at_ms: u64) -> Option<u64> {
            // Whole seconds: croner works in seconds, and a slot is on a second.
            let start = tz
                .timestamp_millis_opt((at_ms - at_ms % 1000) as i64)
                .single()?;
            let t = cron.find_previous_occurrence(&start, true).ok()?;
            u64::try_from(t.timestamp_millis()).ok()
        }
        match self {
            Zone::Local => prev(cron, &chrono::Local, at_ms),
            Zone::Named(tz) => prev(cron, tz, at_ms),
        }
    }
}

/// Parses a 5-field (minute hour day month weekday) or 6-field (seconds first) expression.
pub fn parse_cron(expr: &str) -> Result<Cron, CronError> {
    let fields = expr.split_whitespace().count();
    if fields != 5 && fields != 6 && !expr.trim_start().starts_with('@') {
        return Err(invalid(format!(
            "schedule.expr {expr:?} has {fields} fields: give 5 (minute hour day month weekday, e.g. \"0 7 * * *\") or 6 (seconds first)"
        )));
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| {
            invalid(format!(
                "schedule.expr {expr:?} is not a cron expression: {e} (e.g. \"0 7 * * 1-5\": 07:00 on weekdays)"
            ))
        })
}

/// The first fire of `job` strictly after `after_ms`; `None` when it has no more.
pub fn next_fire(job: &CronJob, after_ms: u64) -> Option<u64> {
    match &job.spec.schedule {
        Schedule::At { at } => (at.0 > after_ms).then_some(at.0),
        Schedule::Every { every_ms, .. } => {
            let (anchor, every) = (job.anchor(), (*every_ms).max(1));
            if after_ms < anchor {
                return Some(anchor);
            }
            Some(anchor + ((after_ms - anchor) / every + 1) * every)
        }
        Schedule::Cron { expr, tz } => {
            let cron = parse_cron(expr).ok()?;
            Zone::parse(tz.as_deref()).ok()?.next_after(&cron, after_ms)
        }
    }
}

/// The last slot of `job` at or before `at_ms` (the newest one missed during downtime).
pub fn latest_due(job: &CronJob, at_ms: u64) -> Option<u64> {
    match &job.spec.schedule {
        Schedule::At { at } => (at.0 <= at_ms).then_some(at.0),
        Schedule::Every { every_ms, .. } => {
            let (anchor, every) = (job.anchor(), (*every_ms).max(1));
            (at_ms >= anchor).then(|| anchor + (at_ms - anchor) / every * every)
        }
        Schedule::Cron { expr, tz } => {
            let cron = parse_cron(expr).ok()?;
            Zone::parse(tz.as_deref())
                .ok()?
                .latest_at_or_before(&cron, at_ms)
        }
    }
}

/// What to do with a job when the scheduler starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPlan {
    /// Nothing scheduled (disabled, or done).
    Idle,
    /// Due at this time, still ahead.
    Due(u64),
    /// A fire passed while the scheduler was down, no longer than the grace period ago:
    /// run once now for the newest missed slot (not once per missed slot).
    CatchUp { slot: u64 },
    /// Missed longer ago than the grace period: recorded as skipped, not run; the job
    /// goes on at `next` (none: an `at` job, which is disabled).
    Skip { slot: u64, next: Option<u64> },
}

/// The missed-run policy: see [`StartPlan`].
pub fn start_plan(job: &CronJob, now_ms: u64, grace_ms: u64) -> StartPlan {
    let Some(due) = job.state.next_run_at_ms.filter(|_| job.spec.enabled) else {
        return StartPlan::Idle;
    };
    if due > now_ms {
        return StartPlan::Due(due);
    }
    let slot = latest_due(job, now_ms).unwrap_or(due).max(due);
    if now_ms - slot <= grace_ms {
        StartPlan::CatchUp { slot }
    } else {
        StartPlan::Skip {
            slot,
            next: next_fire(job, now_ms),
        }
    }
}

/// Parses `90s`, `5m`, `1h30m`, `2d`, `500ms` into milliseconds.
pub fn parse_duration(text: &str) -> Result<u64, CronError> {
    let bad = || {
        invalid(format!(
            "{text:?} is not a duration: use a number and a unit (ms, s, m, h, d), e.g. 90s, 5m, 1h30m"
        ))
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let (mut total, mut rest) = (0u64, s);
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Parses a time: RFC 3339 (`2026-12-03T09:00:00+01:00`), or a date-time without offset
/// (`2026-12-03T09:00`, seconds optional, `T` or a space) read in `tz` (default UTC), or a
/// number of unix milliseconds.
pub fn parse_time(text: &str, tz: Option<&str>) -> Result<u64, CronError> {
    let s = text.trim();
    let bad = || {
        invalid(format!(
            "{s:?} is not a time: give RFC 3339 (2026-12-03T09:00:00+01:00), a date-time read as UTC or in --tz (2026-12-03T09:00), or unix milliseconds"
        ))
    };
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
        return s.parse().map_err(|_| bad());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return u64::try_from(t.timestamp_millis()).map_err(|_| bad());
    }
    let naive = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .ok_or_else(bad)?;
    let local = match tz {
        None => Utc
            .from_local_datetime(&naive)
            .map(|t| t.timestamp_millis()),
        Some(name) => match Zone::parse(Some(name))? {
            Zone::Named(z) => z.from_local_datetime(&naive).map(|t| t.timestamp_millis()),
            Zone::Local => chrono::Local
                .from_local_datetime(&naive)
                .map(|t| t.timestamp_millis()),
        },
    };
    match local.earliest() {
        Some(ms) => u64::try_from(ms).map_err(|_| bad()),
        None => Err(invalid(format!(
            "{s:?} does not exist in {} (the clocks skip it): pick another time",
            tz.unwrap_or("UTC")
        ))),
    }
}

/// The CLI's schedule grammar: `every <duration>`, `at <time>` (or `at +<duration>` from
/// now), or a 5/6-field cron expression (evaluated in `tz`).
pub fn parse_schedule(text: &str, tz: Option<&str>, now_ms: u64) -> Result<Schedule, CronError> {
    let s = text.trim();
    if let Some(d) = s.strip_prefix("every ") {
        return Ok(Schedule::Every {
            every_ms: parse_duration(d)?,
            anchor_ms: None,
        });
    }
    if let Some(t) = s.strip_prefix("at ") {
        return Ok(Schedule::At {
            at: AtTime(parse_at(t, tz, now_ms)?),
        });
    }
    parse_cron(s)?;
    Zone::parse(tz)?;
    Ok(Schedule::Cron {
        expr: s.to_owned(),
        tz: tz.map(str::to_owned),
    })
}

/// `--at`: a time (see [`parse_time`]), or `+<duration>` / `<duration>` from now.
pub fn parse_at(text: &str, tz: Option<&str>, now_ms: u64) -> Result<u64, CronError> {
    let t = text.trim();
    let rel = t.strip_prefix('+').unwrap_or(t);
    if rel.ends_with(|c: char| c.is_ascii_alphabetic())
        && rel.starts_with(|c: char| c.is_ascii_digit())
        && let Ok(d) = parse_duration(rel)
    {
        return Ok(now_ms + d);
    }
    parse_time(t, tz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    // 2026-03-02 (a Monday) 00:00:00 UTC.
    const MON: u64 = 1_772_409_600_000;
    const MIN: u64 = 60_000;
    const HOUR: u64 = 3_600_000;
    const DAY: u64 = 86_400_000;

    fn isolated(schedule: Value) -> CronJob {
        let v = json!({"schedule": schedule, "sessionTarget": "isolated",
            "payload": {"kind": "agentTurn", "message": "go"}});
        CronJob::create(&v, MON, "j1").unwrap()
    }

    #[test]
    fn next_fire_follows_each_schedule_kind() {
        let at = isolated(json!({"kind": "at", "at": "2026-03-02T09:30:00+01:00"}));
        let t = MON + 8 * HOUR + 30 * MIN;
        let every = isolated(json!({"kind": "every", "everyMs": 90_000}));
        let paris = isolated(json!({"kind": "cron", "expr": "0 7 * * 1-5", "tz": "Europe/Paris"}));
        let secs = isolated(json!({"kind": "cron", "expr": "*/15 * * * * *", "tz": "UTC"}));
        // (job, after, expected): strictly after `after`.
        let table: &[(&CronJob, u64, Option<u64>)] = &[
            (&at, MON, Some(t)),
            (&at, t - 1, Some(t)),
            (&at, t, None),
            (&every, MON, Some(MON + 90_000)),
            (&every, MON + 89_999, Some(MON + 90_000)),
            (&every, MON + 90_000, Some(MON + 180_000)),
            (&every, MON + 1_000_000, Some(MON + 1_080_000)),
            // 07:00 in Paris is 06:00 UTC in winter...
            (&paris, MON, Some(MON + 6 * HOUR)),
            (&paris, MON + 6 * HOUR, Some(MON + DAY + 6 * HOUR)),
            // ...Friday, then Monday (weekdays only)...
            (
                &paris,
                MON + 4 * DAY + 6 * HOUR,
                Some(MON + 7 * DAY + 6 * HOUR),
            ),
            // ...and 05:00 UTC after the clocks change (2026-03-29).
            (&paris, MON + 29 * DAY, Some(MON + 29 * DAY + 5 * HOUR)),
            (&secs, MON, Some(MON + 15_000)),
            (&secs, MON + 14_999, Some(MON + 15_000)),
            (&secs, MON + 15_000, Some(MON + 30_000)),
        ];
        for (i, (j, after, want)) in table.iter().enumerate() {
            assert_eq!(
                next_fire(j, *after),
                *want,
                "row {i}: {:?}",
                j.spec.schedule
            );
        }
        assert_eq!(at.state.next_run_at_ms, Some(t), "first due");
        assert_eq!(paris.state.next_run_at_ms, Some(MON + 6 * HOUR));
        let anchored = isolated(json!({"kind": "every", "everyMs": 60_000, "anchorMs": MON + 5}));
        assert_eq!(next_fire(&anchored, MON + 5), Some(MON + 60_005));
        assert_eq!(next_fire(&anchored, MON), Some(MON + 5));
    }

    #[test]
    fn latest_due_finds_the_newest_missed_slot() {
        let every = isolated(json!({"kind": "every", "everyMs": 60_000}));
        let daily = isolated(json!({"kind": "cron", "expr": "0 7 * * *", "tz": "UTC"}));
        assert_eq!(latest_due(&every, MON + 59_999), Some(MON));
        assert_eq!(latest_due(&every, MON + 120_000), Some(MON + 120_000));
        assert_eq!(
            latest_due(&daily, MON + 3 * DAY),
            Some(MON + 2 * DAY + 7 * HOUR)
        );
        assert_eq!(latest_due(&daily, MON + 7 * HOUR), Some(MON + 7 * HOUR));
        assert_eq!(
            latest_due(&daily, MON + 7 * HOUR + 999),
            Some(MON + 7 * HOUR)
        );
    }

    #[test]
    fn missed_runs_catch_up_once_within_the_grace_period_and_are_skipped_past_it() {
        let mut daily = isolated(json!({"kind": "cron", "expr": "0 7 * * *", "tz": "UTC"}));
        let seven = MON + 7 * HOUR;
        assert_eq!(daily.state.next_run_at_ms, Some(seven));
        let grace = 2 * HOUR;
        let table = [
            (seven - 1, StartPlan::Due(seven)),
            (seven, StartPlan::CatchUp { slot: seven }),
            (seven + grace, StartPlan::CatchUp { slot: seven }),
            (
                seven + grace + 1,
                StartPlan::Skip {
                    slot: seven,
                    next: Some(seven + DAY),
                },
            ),
            // Down for three days: one catch-up, for the newest slot.
            (
                seven + 3 * DAY + HOUR,
                StartPlan::CatchUp {
                    slot: seven + 3 * DAY,
                },
            ),
        ];
        for (now, want) in table {
            assert_eq!(start_plan(&daily, now, grace), want, "now {now}");
        }
        daily.spec.enabled = false;
        assert_eq!(start_plan(&daily, seven + 1, grace), StartPlan::Idle);
        let at = isolated(json!({"kind": "at", "at": MON + HOUR}));
        assert_eq!(
            start_plan(&at, MON + 4 * HOUR, grace),
            StartPlan::Skip {
                slot: MON + HOUR,
                next: None
            }
        );
        assert_eq!(
            start_plan(&at, MON + 2 * HOUR, grace),
            StartPlan::CatchUp { slot: MON + HOUR }
        );
    }

    #[test]
    fn daylight_saving_gaps_fire_late_and_repeats_once_and_day_fields_are_either() {
        // 02:30 does not exist in Paris on 2026-03-29 (02:00 -> 03:00) and happens twice
        // on 2026-10-25.
        let j = isolated(json!({"kind": "cron", "expr": "30 2 * * *", "tz": "Europe/Paris"}));
        let mar28 = MON + 26 * DAY + HOUR + 30 * MIN;
        let gap_end = MON + 27 * DAY + HOUR; // 03:00 CEST
        assert_eq!(
            next_fire(&j, mar28),
            Some(gap_end),
            "when the clocks resume"
        );
        assert_eq!(next_fire(&j, gap_end), Some(MON + 28 * DAY + 30 * MIN));
        let oct25 = MON + 237 * DAY;
        let first = oct25 + 30 * MIN; // 02:30 CEST is 00:30 UTC
        assert_eq!(next_fire(&j, oct25 - HOUR), Some(first));
        assert_eq!(
            next_fire(&j, first),
            Some(first + DAY + HOUR),
            "not again at 02:30 CET the same night"
        );
        // Day 1 of the month OR a Monday (2026-03-02 is a Monday, 2026-04-01 a Wednesday).
        let j = isolated(json!({"kind": "cron", "expr": "0 0 1 * MON", "tz": "UTC"}));
        assert_eq!(next_fire(&j, MON), Some(MON + 7 * DAY));
        assert_eq!(next_fire(&j, MON + 28 * DAY), Some(MON + 30 * DAY));
    }

    #[test]
    fn the_cli_grammar_reads_every_at_and_cron() {
        let table: &[(&str, Option<&str>, Schedule)] = &[
            (
                "every 5m",
                None,
                Schedule::Every {
                    every_ms: 300_000,
                    anchor_ms: None,
                },
            ),
            (
                "every 1h30m",
                None,
                Schedule::Every {
                    every_ms: 5_400_000,
                    anchor_ms: None,
                },
            ),
            (
                "at 2026-03-02T09:00",
                None,
                Schedule::At {
                    at: AtTime(MON + 9 * HOUR),
                },
            ),
            (
                "at 2026-03-02 09:00",
                Some("Europe/Paris"),
                Schedule::At {
                    at: AtTime(MON + 8 * HOUR),
                },
            ),
            (
                "at 2026-03-02T09:00:00-05:00",
                Some("Europe/Paris"),
                Schedule::At {
                    at: AtTime(MON + 14 * HOUR),
                },
            ),
            (
                "at 20m",
                None,
                Schedule::At {
                    at: AtTime(MON + 20 * MIN),
                },
            ),
            (
                "at +2h",
                None,
                Schedule::At {
                    at: AtTime(MON + 2 * HOUR),
                },
            ),
            (
                "0 7 * * *",
                Some("UTC"),
                Schedule::Cron {
                    expr: "0 7 * * *".into(),
                    tz: Some("UTC".into()),
                },
            ),
            (
                "30 0 7 * * 1",
                None,
                Schedule::Cron {
                    expr: "30 0 7 * * 1".into(),
                    tz: None,
                },
            ),
        ];
        for (text, tz, want) in table {
            assert_eq!(parse_schedule(text, *tz, MON).unwrap(), *want, "{text}");
        }
        for (text, want) in [
            ("every 5", "is not a duration"),
            ("every m", "is not a duration"),
            ("every 5y", "is not a duration"),
            ("at noon", "is not a time"),
            ("daily", "has 1 fields"),
        ] {
            let e = parse_schedule(text, None, MON).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        assert_eq!(parse_duration("500ms").unwrap(), 500);
        assert_eq!(parse_duration("2d").unwrap(), 2 * DAY);
        assert_eq!(parse_time("1772409600000", None).unwrap(), MON);
        // 02:30 on 2026-03-29 does not exist in Paris.
        let e = parse_time("2026-03-29T02:30", Some("Europe/Paris"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist in Europe/Paris"), "{e}");
    }
}
