//! Cron jobs as data: the job (OpenClaw's shape), its validation, and when it fires.
//! Pure: no I/O and no clock; times are unix milliseconds handed in.
//!
//! ```text
//! {id, name?, description?, agentId?, enabled, deleteAfterRun?,
//!  schedule:      {kind:"at", at} | {kind:"every", everyMs, anchorMs?} | {kind:"cron", expr, tz?}
//!  sessionTarget: "main" (payload systemEvent) | "isolated" (payload agentTurn)
//!  wakeMode:      "now" | "next-heartbeat"
//!  payload:       {kind:"systemEvent", text} | {kind:"agentTurn", message, model?, thinking?, timeoutSeconds?}
//!  delivery?:     {mode?: "announce" | "none", channel, to, accountId?, bestEffort?}
//!  createdAtMs, updatedAtMs, state: {nextRunAtMs, lastRunAtMs, lastStatus, ...}}
//! ```
//!
//! A cron expression has 5 fields (minute hour day-of-month month day-of-week) or 6 (a
//! leading seconds field) and is evaluated in the job's `tz` (an IANA zone), else in the
//! gateway host's local zone. `at` takes RFC 3339; a date-time without an offset is UTC.

use chrono::{LocalResult, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::agent::model::Thinking;

pub use super::cron_time::{
    StartPlan, Zone, latest_due, next_fire, parse_at, parse_cron, parse_duration, parse_schedule,
    parse_time, start_plan,
};

/// The shortest `every` interval taken.
pub const MIN_EVERY_MS: u64 = 1_000;
/// How long an agent turn may run when the payload says nothing (`timeoutSeconds`).
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 600;
/// The longest `timeoutSeconds` taken.
pub const MAX_TIMEOUT_SECONDS: u64 = 86_400;
/// The longest message, system event text, name or description taken.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// An `at` this far in the past is refused when a job is added or changed (a little less
/// is taken as "now": clocks differ).
pub const AT_PAST_TOLERANCE_MS: u64 = 60_000;
/// The longest job id taken (ids become part of session keys).
pub const MAX_ID_LEN: usize = 64;

/// What is wrong with a job or a request about one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// The job or the request is wrong; the text says what to change.
    #[error("{0}")]
    Invalid(String),
    #[error("no cron job {0:?} (`pincer cron list` shows the jobs)")]
    NotFound(String),
    #[error("a cron job with id {0:?} already exists: pick another id or update that job")]
    Exists(String),
    /// The store could not be written or read: worth trying again.
    #[error("the cron store is unavailable: {0}")]
    Store(String),
}

impl CronError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Store(_))
    }
}

pub(super) fn invalid(msg: impl Into<String>) -> CronError {
    CronError::Invalid(msg.into())
}

/// A point in time (unix ms); written as RFC 3339 in UTC, read from RFC 3339, a
/// date-time without offset (UTC) or a number of unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AtTime(pub u64);

impl Serialize for AtTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rfc3339(self.0))
    }
}

impl<'de> Deserialize<'de> for AtTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n.as_u64().map(AtTime).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "schedule.at: {n} is not a time: unix milliseconds are a whole number >= 0"
                ))
            }),
            Value::String(s) => parse_time(&s, None)
                .map(AtTime)
                .map_err(|e| serde::de::Error::custom(format!("schedule.at: {e}"))),
            other => Err(serde::de::Error::custom(format!(
                "schedule.at: {other} is not a time: give RFC 3339 text or unix milliseconds"
            ))),
        }
    }
}

/// `2026-12-03T08:00:00.000Z`.
pub fn rfc3339(ms: u64) -> String {
    match Utc.timestamp_millis_opt(ms as i64) {
        LocalResult::Single(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        _ => ms.to_string(),
    }
}

/// When a job fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Schedule {
    /// Once.
    At { at: AtTime },
    /// Every `every_ms`, counted from `anchor_ms` (default: when the job was created).
    Every {
        every_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        anchor_ms: Option<u64>,
    },
    /// A cron expression in `tz` (default: the gateway host's local zone).
    Cron {
        expr: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tz: Option<String>,
    },
}

/// Which session a job's turn runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionTarget {
    /// The agent's main session (system events).
    Main,
    /// `agent:<agentId>:cron:<jobId>`, started afresh for every run (agent turns).
    Isolated,
}

/// When a main-session system event is acted on. Both run the turn at once in this
/// gateway (kept for OpenClaw compatibility).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WakeMode {
    #[default]
    Now,
    NextHeartbeat,
}

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Payload {
    /// A note for the main session: the agent hears of it as a system event.
    SystemEvent { text: String },
    /// A turn of its own in the isolated session.
    AgentTurn {
        message: String,
        /// `provider/model` for this turn only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thinking: Option<Thinking>,
        /// The turn is aborted past this (default [`DEFAULT_TIMEOUT_SECONDS`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_seconds: Option<u64>,
    },
}

/// Whether the reply goes to a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    #[default]
    Announce,
    None,
}

/// Where the turn's reply goes: a chat on a channel account, like a reply to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Delivery {
    #[serde(default)]
    pub mode: DeliveryMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Default: the channel's `default` account, else its only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// When the chat cannot be reached (no such account), run the turn undelivered
    /// instead of failing the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_effort: Option<bool>,
}

impl Delivery {
    /// `(channel, to)` when the reply is to be delivered.
    pub fn target(&self) -> Option<(&str, &str)> {
        match (self.mode, self.channel.as_deref(), self.to.as_deref()) {
            (DeliveryMode::Announce, Some(c), Some(t)) => Some((c, t)),
            _ => None,
        }
    }
}

/// How a run ended (or that it is under way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Recorded, not finished yet.
    Running,
    Ok,
    Error,
    /// Not run: missed past the grace period, the previous run still going, or a re-fire.
    Skipped,
    /// The scheduler restarted while the run was recorded but not finished; never re-run.
    Interrupted,
}

/// Why a run happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// Its slot came.
    Schedule,
    /// Its slot passed while the scheduler was down (within the grace period).
    CatchUp,
    /// `cron.run`: never changes the schedule.
    Manual,
}

/// One run of a job, as the run history keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronRun {
    pub job_id: String,
    /// The run's number within its job (1, 2, ...).
    pub seq: u64,
    pub trigger: Trigger,
    /// The slot it ran for (for a manual run, when it was asked for).
    pub scheduled_at_ms: u64,
    pub started_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The start of the agent's reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The session's run id of the turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub session_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// Runs kept per job in the store; older ones are dropped as new ones are written.
pub const RUNS_KEPT_PER_JOB: u64 = 200;

/// One change to the stored jobs and runs, for [`Store::cron_apply`](crate::store::Store::cron_apply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronOp {
    /// Inserts or replaces a job.
    PutJob(Box<CronJob>),
    /// Deletes a job; `runs` also deletes its run history.
    RemoveJob { id: String, runs: bool },
    /// Inserts or replaces a run; inserting drops the job's runs older than the newest
    /// [`RUNS_KEPT_PER_JOB`].
    PutRun(Box<CronRun>),
}

/// What the scheduler keeps about a job between runs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobState {
    /// The next scheduled fire (none: disabled or done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at_ms: Option<u64>,
    /// Set while a run is under way: when it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_at_ms: Option<u64>,
    /// Set while a run is under way: its run number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<RunStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_duration_ms: Option<u64>,
    #[serde(default)]
    pub consecutive_errors: u32,
    /// The number of the newest run recorded.
    #[serde(default)]
    pub last_seq: u64,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronJob {
    pub id: String,
    #[serde(flatten)]
    pub spec: JobSpec,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    #[serde(default)]
    pub state: JobState,
}

/// A job as `cron.add` takes it (and as `cron.update` patches it): everything but its
/// id, times and state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Default: the default agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub schedule: Schedule,
    pub session_target: SessionTarget,
    #[serde(default)]
    pub wake_mode: WakeMode,
    pub payload: Payload,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// Default: true for `at` jobs (deleted after a successful run), false otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_after_run: Option<bool>,
}

fn yes() -> bool {
    true
}

/// The keys a job definition may have (a typo is refused by name).
const SPEC_KEYS: &[&str] = &[
    "name",
    "description",
    "agentId",
    "enabled",
    "schedule",
    "sessionTarget",
    "wakeMode",
    "payload",
    "delivery",
    "deleteAfterRun",
];

impl JobSpec {
    /// Reads a definition (`cron.add` params less `id`), refusing unknown keys.
    pub fn from_value(v: &Value) -> Result<JobSpec, CronError> {
        let Value::Object(map) = v else {
            return Err(invalid(
                "a cron job is an object: {name?, schedule, sessionTarget, payload, delivery?, ...}",
            ));
        };
        if let Some(k) = map.keys().find(|k| !SPEC_KEYS.contains(&k.as_str())) {
            return Err(invalid(format!(
                "unknown cron job field {k:?}; the fields are: id, {}",
                SPEC_KEYS.join(", ")
            )));
        }
        for k in ["schedule", "sessionTarget", "payload"] {
            if !map.contains_key(k) {
                return Err(invalid(format!(
                    "the cron job has no {k:?}; see docs/cron.md for the job shape"
                )));
            }
        }
        serde_json::from_value(v.clone()).map_err(|e| invalid(format!("cron job: {e}")))
    }

    /// Whether a successful run deletes the job.
    pub fn deletes_after_run(&self) -> bool {
        self.delete_after_run
            .unwrap_or(matches!(self.schedule, Schedule::At { .. }))
    }

    /// Checks what a definition must hold at `now_ms` (the agent is checked by the caller,
    /// who knows the configured agents).
    pub fn validate(&self, now_ms: u64) -> Result<(), CronError> {
        let text = |field: &str, v: &str| -> Result<(), CronError> {
            if v.trim().is_empty() {
                return Err(invalid(format!("{field} is empty: give the text")));
            }
            if v.len() > MAX_TEXT_BYTES {
                return Err(invalid(format!(
                    "{field} is {} bytes; at most {MAX_TEXT_BYTES} are taken",
                    v.len()
                )));
            }
            Ok(())
        };
        for (field, v) in [("name", &self.name), ("description", &self.description)] {
            if let Some(v) = v {
                text(field, v)?;
            }
        }
        if let Some(a) = &self.agent_id
            && (a.trim().is_empty() || a.contains(':'))
        {
            return Err(invalid(format!(
                "agentId {a:?} is not an agent id (`pincer agents list` shows them)"
            )));
        }
        match &self.schedule {
            Schedule::At { .. } => {}
            Schedule::Every { every_ms, .. } => {
                if *every_ms < MIN_EVERY_MS {
                    return Err(invalid(format!(
                        "schedule.everyMs {every_ms} is too short: at least {MIN_EVERY_MS} (1 s)"
                    )));
                }
            }
            Schedule::Cron { expr, tz } => {
                let zone = Zone::parse(tz.as_deref())?;
                let cron = parse_cron(expr)?;
                if zone.next_after(&cron, now_ms).is_none() {
                    return Err(invalid(format!(
                        "schedule.expr {expr:?} never fires (no such date from now on): check the day and month fields"
                    )));
                }
            }
        }
        match (&self.session_target, &self.payload) {
            (SessionTarget::Main, Payload::SystemEvent { text: t }) => text("payload.text", t)?,
            (SessionTarget::Isolated, Payload::AgentTurn { message, .. }) => {
                text("payload.message", message)?
            }
            (SessionTarget::Main, Payload::AgentTurn { .. }) => {
                return Err(invalid(
                    "sessionTarget \"main\" takes a payload of kind \"systemEvent\" {kind, text}; use sessionTarget \"isolated\" for an agentTurn",
                ));
            }
            (SessionTarget::Isolated, Payload::SystemEvent { .. }) => {
                return Err(invalid(
                    "sessionTarget \"isolated\" takes a payload of kind \"agentTurn\" {kind, message}; use sessionTarget \"main\" for a systemEvent",
                ));
            }
        }
        if let Payload::AgentTurn {
            timeout_seconds: Some(t),
            model,
            ..
        } = &self.payload
        {
            if *t == 0 || *t > MAX_TIMEOUT_SECONDS {
                return Err(invalid(format!(
                    "payload.timeoutSeconds {t} is out of range: 1 to {MAX_TIMEOUT_SECONDS}"
                )));
            }
            if model.as_deref().is_some_and(|m| m.trim().is_empty()) {
                return Err(invalid(
                    "payload.model is empty: give provider/model or leave it out",
                ));
            }
        }
        if let Some(d) = &self.delivery
            && d.mode == DeliveryMode::Announce
        {
            let channel = d.channel.as_deref().map(str::trim).unwrap_or_default();
            let to = d.to.as_deref().map(str::trim).unwrap_or_default();
            if channel.is_empty() || to.is_empty() {
                return Err(invalid(
                    "delivery needs channel and to (e.g. {channel: \"telegram\", to: \"12345\"}), or mode \"none\"",
                ));
            }
            if channel == "last" {
                return Err(invalid(
                    "delivery.channel \"last\" is not supported: name the channel (telegram, slack, sms, discord) and the chat in `to`",
                ));
            }
        }
        Ok(())
    }
}

impl JobSpec {
    /// An `at` job that is (re)armed must be ahead of `now_ms` (a minute's slack).
    fn check_at_ahead(&self, now_ms: u64) -> Result<(), CronError> {
        match &self.schedule {
            Schedule::At { at } if self.enabled && at.0 + AT_PAST_TOLERANCE_MS < now_ms => {
                Err(invalid(format!(
                    "schedule.at {} is in the past (now is {}): give a future time",
                    rfc3339(at.0),
                    rfc3339(now_ms)
                )))
            }
            _ => Ok(()),
        }
    }
}

/// Checks a job id: letters, digits, `-` and `_`, at most [`MAX_ID_LEN`].
pub fn check_id(id: &str) -> Result<(), CronError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "job id {id:?} is not valid: use 1 to {MAX_ID_LEN} letters, digits, - or _"
        )))
    }
}

impl CronJob {
    /// A new job from `cron.add` params (`id` optional), checked, with its first fire.
    pub fn create(params: &Value, now_ms: u64, new_id: &str) -> Result<CronJob, CronError> {
        let mut v = params.clone();
        let id = match v.as_object_mut().and_then(|m| m.remove("id")) {
            Some(Value::String(id)) => id,
            Some(other) => return Err(invalid(format!("id {other} is not a string"))),
            None => new_id.to_owned(),
        };
        check_id(&id)?;
        let spec = JobSpec::from_value(&v)?;
        spec.validate(now_ms)?;
        spec.check_at_ahead(now_ms)?;
        let mut job = CronJob {
            id,
            spec,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            state: JobState::default(),
        };
        job.state.next_run_at_ms = job.first_due(now_ms);
        Ok(job)
    }

    /// This job with `patch` applied (a JSON merge patch over its definition, except that
    /// `schedule` is replaced whole, and so is `payload` when its kind changes), checked,
    /// with its next fire recomputed when the schedule or `enabled` changed.
    pub fn patched(&self, patch: &Value, now_ms: u64) -> Result<CronJob, CronError> {
        let Value::Object(p) = patch else {
            return Err(invalid(
                "patch is an object of the fields to change, e.g. {enabled: false}",
            ));
        };
        if let Some(k) = p.keys().find(|k| !SPEC_KEYS.contains(&k.as_str())) {
            return Err(invalid(format!(
                "cannot patch {k:?}: the fields a patch may change are {}",
                SPEC_KEYS.join(", ")
            )));
        }
        let mut def = serde_json::to_value(&self.spec).expect("a job serialises");
        let mut rest = patch.clone();
        let rest_map = rest.as_object_mut().expect("checked above");
        if let Some(s) = rest_map.remove("schedule") {
            def["schedule"] = s;
        }
        if let Some(pl) = rest_map.get("payload")
            && pl.get("kind").is_some_and(|k| *k != def["payload"]["kind"])
        {
            def["payload"] = pl.clone();
            rest_map.remove("payload");
        }
        crate::config::merge_patch(&mut def, &rest);
        let spec = JobSpec::from_value(&def)?;
        spec.validate(now_ms)?;
        let mut job = CronJob {
            spec,
            updated_at_ms: now_ms,
            ..self.clone()
        };
        if job.spec.schedule != self.spec.schedule || job.spec.enabled != self.spec.enabled {
            job.spec.check_at_ahead(now_ms)?;
            job.state.next_run_at_ms = if job.spec.enabled {
                job.first_due(now_ms)
            } else {
                None
            };
        }
        Ok(job)
    }

    /// The first fire of a new or rescheduled job: an `at` time as given (at once when it
    /// is a moment ago), else the first slot after `now_ms`.
    pub fn first_due(&self, now_ms: u64) -> Option<u64> {
        if !self.spec.enabled {
            return None;
        }
        match &self.spec.schedule {
            Schedule::At { at } => Some(at.0),
            _ => next_fire(self, now_ms),
        }
    }

    pub(super) fn anchor(&self) -> u64 {
        match &self.spec.schedule {
            Schedule::Every {
                anchor_ms: Some(a), ..
            } => *a,
            _ => self.created_at_ms,
        }
    }

    /// `[cron:<id> <name>]`, what a run's message starts with.
    pub fn tag(&self) -> String {
        match &self.spec.name {
            Some(n) => format!("[cron:{} {}]", self.id, n.trim()),
            None => format!("[cron:{}]", self.id),
        }
    }

    /// The message the session gets: a system event for the main session says so.
    pub fn prompt(&self) -> String {
        match &self.spec.payload {
            Payload::SystemEvent { text } => format!("System: {} {}", self.tag(), text.trim()),
            Payload::AgentTurn { message, .. } => format!("{} {}", self.tag(), message.trim()),
        }
    }

    /// The session a run goes to: the agent's main session, or `agent:<agent>:cron:<id>`.
    pub fn session_key(&self, default_agent: &str, main_key: &str) -> String {
        let agent = self.spec.agent_id.as_deref().unwrap_or(default_agent);
        match self.spec.session_target {
            SessionTarget::Main => format!("agent:{agent}:{main_key}"),
            SessionTarget::Isolated => format!("agent:{agent}:cron:{}", self.id),
        }
    }

    /// How long the turn may take, in ms.
    pub fn timeout_ms(&self) -> u64 {
        let secs = match &self.spec.payload {
            Payload::AgentTurn {
                timeout_seconds: Some(t),
                ..
            } => *t,
            _ => DEFAULT_TIMEOUT_SECONDS,
        };
        secs * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // 2026-03-02 (a Monday) 00:00:00 UTC.
    const MON: u64 = 1_772_409_600_000;
    const MIN: u64 = 60_000;
    const HOUR: u64 = 3_600_000;
    const DAY: u64 = 86_400_000;

    fn job(v: Value) -> CronJob {
        CronJob::create(&v, MON, "j1").unwrap()
    }

    fn err(v: Value) -> String {
        CronJob::create(&v, MON, "j1").unwrap_err().to_string()
    }

    #[test]
    fn jobs_read_and_write_openclaw_shapes() {
        let j = job(json!({
            "id": "brief", "name": "Morning brief", "agentId": "ops",
            "schedule": {"kind": "cron", "expr": "0 7 * * *", "tz": "America/Los_Angeles"},
            "sessionTarget": "isolated", "wakeMode": "next-heartbeat",
            "payload": {"kind": "agentTurn", "message": "Summarise", "model": "mock/m",
                        "thinking": "low", "timeoutSeconds": 30},
            "delivery": {"channel": "telegram", "to": "12345"},
        }));
        assert_eq!(j.id, "brief");
        assert_eq!(j.session_key("main", "main"), "agent:ops:cron:brief");
        assert_eq!(j.prompt(), "[cron:brief Morning brief] Summarise");
        assert_eq!(j.timeout_ms(), 30_000);
        assert!(!j.spec.deletes_after_run());
        assert_eq!(
            j.spec.delivery.as_ref().unwrap().target(),
            Some(("telegram", "12345"))
        );
        let v = serde_json::to_value(&j).unwrap();
        assert_eq!(v["schedule"]["tz"], "America/Los_Angeles");
        assert_eq!(v["payload"]["timeoutSeconds"], 30);
        assert_eq!(v["enabled"], true);
        assert_eq!(v["createdAtMs"], MON);
        assert_eq!(v["state"]["nextRunAtMs"], MON + 15 * HOUR);
        let back: CronJob = serde_json::from_value(v).unwrap();
        assert_eq!(back, j);

        let main = job(json!({"schedule": {"kind": "at", "at": "2026-03-02T10:00"},
            "sessionTarget": "main", "payload": {"kind": "systemEvent", "text": "stretch"}}));
        assert_eq!(main.id, "j1");
        assert_eq!(
            main.state.next_run_at_ms,
            Some(MON + 10 * HOUR),
            "no offset: UTC"
        );
        assert_eq!(main.session_key("main", "home"), "agent:main:home");
        assert_eq!(main.prompt(), "System: [cron:j1] stretch");
        assert!(main.spec.deletes_after_run());
        let v = serde_json::to_value(&main).unwrap();
        assert_eq!(v["schedule"]["at"], "2026-03-02T10:00:00.000Z");
        assert_eq!(v["wakeMode"], "now");
    }

    #[test]
    fn invalid_jobs_are_refused_with_what_to_change() {
        let ok = json!({"schedule": {"kind": "every", "everyMs": 60_000},
            "sessionTarget": "isolated", "payload": {"kind": "agentTurn", "message": "m"}});
        let with = |patch: Value| {
            let mut v = ok.clone();
            crate::config::merge_patch(&mut v, &patch);
            err(v)
        };
        let table: &[(Value, &str)] = &[
            (json!({"nmae": "x"}), "unknown cron job field \"nmae\""),
            (json!({"id": "a b"}), "job id \"a b\" is not valid"),
            (
                json!({"schedule": {"everyMs": 10}}),
                "too short: at least 1000",
            ),
            (
                json!({"schedule": {"kind": "every", "everyMs": 5000, "expr": "x"}}),
                "unknown field `expr`",
            ),
            (
                json!({"schedule": {"kind": "cron", "everyMs": null, "expr": "0 7 * *"}}),
                "has 4 fields",
            ),
            (
                json!({"schedule": {"kind": "cron", "everyMs": null, "expr": "0 25 * * *"}}),
                "is not a cron expression",
            ),
            (
                json!({"schedule": {"kind": "cron", "everyMs": null, "expr": "0 0 30 2 *"}}),
                "never fires",
            ),
            (
                json!({"schedule": {"kind": "cron", "everyMs": null, "expr": "0 7 * * *", "tz": "Mars/Olympus"}}),
                "IANA zone",
            ),
            (
                json!({"schedule": {"kind": "at", "everyMs": null, "at": "yesterday"}}),
                "is not a time",
            ),
            (
                json!({"schedule": {"kind": "at", "everyMs": null, "at": "2026-03-01T00:00:00Z"}}),
                "is in the past",
            ),
            (
                json!({"sessionTarget": "main"}),
                "takes a payload of kind \"systemEvent\"",
            ),
            (
                json!({"payload": {"kind": "systemEvent", "message": null, "text": "t"}}),
                "takes a payload of kind \"agentTurn\"",
            ),
            (
                json!({"payload": {"message": " "}}),
                "payload.message is empty",
            ),
            (
                json!({"payload": {"thinking": "extreme"}}),
                "unknown variant `extreme`",
            ),
            (
                json!({"payload": {"timeoutSeconds": 0}}),
                "timeoutSeconds 0 is out of range",
            ),
            (
                json!({"delivery": {"channel": "telegram"}}),
                "delivery needs channel and to",
            ),
            (
                json!({"delivery": {"channel": "last", "to": "1"}}),
                "\"last\" is not supported",
            ),
            (json!({"agentId": "a:b"}), "is not an agent id"),
            (json!({"payload": null}), "has no \"payload\""),
        ];
        for (patch, want) in table {
            let e = with(patch.clone());
            assert!(e.contains(want), "{patch}: {e}");
        }
        assert!(CronJob::create(&ok, MON, "j1").is_ok());
        let e = err(json!([1]));
        assert!(e.contains("a cron job is an object"), "{e}");
        let e = CronJob::create(&json!({"id": 5}), MON, "x").unwrap_err();
        assert!(e.to_string().contains("id 5 is not a string"), "{e}");
        assert!(!e.is_transient());
        assert!(CronError::Store("disk".into()).is_transient());
    }

    #[test]
    fn patches_merge_replace_schedules_and_recompute_the_next_fire() {
        let j = job(
            json!({"name": "n", "schedule": {"kind": "every", "everyMs": 60_000},
            "sessionTarget": "isolated",
            "payload": {"kind": "agentTurn", "message": "m", "model": "a/b"},
            "delivery": {"channel": "telegram", "to": "1"}}),
        );
        let later = MON + 10 * MIN + 5;
        let p = j
            .patched(
                &json!({"payload": {"kind": "agentTurn", "message": "new"},
                "delivery": {"to": "2"}, "name": null}),
                later,
            )
            .unwrap();
        assert_eq!(
            p.spec.payload,
            Payload::AgentTurn {
                message: "new".into(),
                model: Some("a/b".into()),
                thinking: None,
                timeout_seconds: None
            },
            "payload fields merge"
        );
        assert_eq!(
            p.spec.delivery.as_ref().unwrap().target(),
            Some(("telegram", "2"))
        );
        assert_eq!(p.spec.name, None, "null clears");
        assert_eq!(p.updated_at_ms, later);
        assert_eq!(
            p.state.next_run_at_ms, j.state.next_run_at_ms,
            "schedule unchanged"
        );
        let p = j
            .patched(
                &json!({"schedule": {"kind": "cron", "expr": "0 12 * * *", "tz": "UTC"}}),
                later,
            )
            .unwrap();
        assert_eq!(
            p.state.next_run_at_ms,
            Some(MON + 12 * HOUR),
            "replaced whole"
        );
        let off = j.patched(&json!({"enabled": false}), later).unwrap();
        assert_eq!(off.state.next_run_at_ms, None);
        let on = off.patched(&json!({"enabled": true}), later).unwrap();
        assert_eq!(on.state.next_run_at_ms, Some(MON + 11 * MIN));
        let e = j
            .patched(&json!({"state": {}}), later)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot patch \"state\""), "{e}");
        let e = j
            .patched(&json!({"sessionTarget": "main"}), later)
            .unwrap_err()
            .to_string();
        assert!(e.contains("systemEvent"), "{e}");
        let main = j
            .patched(
                &json!({"sessionTarget": "main",
                "payload": {"kind": "systemEvent", "text": "t"}}),
                later,
            )
            .unwrap();
        assert_eq!(
            main.spec.payload,
            Payload::SystemEvent { text: "t".into() },
            "kind change replaces"
        );
        // A one-shot that already ran can be disabled, but not re-armed in the past.
        let mut at = job(json!({"schedule": {"kind": "at", "at": MON + MIN},
            "sessionTarget": "isolated", "payload": {"kind": "agentTurn", "message": "m"}}));
        at.spec.enabled = false;
        assert!(at.patched(&json!({"name": "x"}), MON + DAY).is_ok());
        let e = at
            .patched(&json!({"enabled": true}), MON + DAY)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is in the past"), "{e}");
    }
}
