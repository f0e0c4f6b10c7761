//! What runs a fired cron job: the [`CronRunner`] trait (tests pass fakes), the
//! production [`SessionsRunner`] (an agent turn through the Sessions actor, its reply
//! delivered to a chat when the job says so), and the [`Clock`] the Scheduler reads.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use ractor::ActorRef;
use ractor::rpc::CallResult;

use super::cron::{CronJob, Payload, RunStatus, SessionTarget, Trigger, WakeMode};
use super::heartbeat::SystemEvents;
use crate::channels::ChannelOrigin;
use crate::channels::actor::ChannelDirectory;
use crate::session::methods::SessionsLookup;
use crate::session::{SessionsMsg, TurnOptions};

/// Unix milliseconds now.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> u64;
}

/// The system's wall clock (production).
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        crate::gateway::now_ms()
    }
}

/// A wall time taken at creation plus the tokio time elapsed since: advances with tokio's
/// clock, so paused-time tests see exact milliseconds.
pub struct TokioClock {
    base_ms: u64,
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(base_ms: u64) -> Self {
        Self {
            base_ms,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        self.base_ms + self.start.elapsed().as_millis() as u64
    }
}

/// One fire handed to the runner.
#[derive(Debug, Clone)]
pub struct Fire {
    pub job: CronJob,
    pub seq: u64,
    pub trigger: Trigger,
    /// The slot (for a manual run, when it was asked for).
    pub scheduled_ms: u64,
    pub started_ms: u64,
    pub session_key: String,
}

/// How a run went, as the runner reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// ok, error or skipped.
    pub status: RunStatus,
    pub summary: Option<String>,
    pub error: Option<String>,
    pub run_id: Option<String>,
    pub model: Option<String>,
}

impl RunOutcome {
    pub fn ok(summary: impl Into<String>) -> Self {
        Self {
            status: RunStatus::Ok,
            summary: Some(summary.into()),
            error: None,
            run_id: None,
            model: None,
        }
    }

    pub fn error(error: impl Into<String>) -> Self {
        Self {
            status: RunStatus::Error,
            summary: None,
            error: Some(error.into()),
            run_id: None,
            model: None,
        }
    }

    pub fn skipped(why: impl Into<String>) -> Self {
        Self {
            status: RunStatus::Skipped,
            ..Self::ok(why)
        }
    }
}

/// Runs a fired job (production: [`SessionsRunner`]; tests pass fakes).
pub trait CronRunner: Send + Sync + 'static {
    fn run(&self, fire: Fire) -> BoxFuture<'static, RunOutcome>;
}

/// The production runner: a turn through the Sessions actor, its reply delivered to a
/// chat when the job says so.
pub struct SessionsRunner {
    pub sessions: SessionsLookup,
    pub channels: ChannelDirectory,
    pub clock: Arc<dyn Clock>,
    /// Where a main-session event with `wakeMode: "next-heartbeat"` waits for the agent's
    /// next heartbeat (`None`, or an agent without heartbeats: it runs now).
    pub system_events: Option<SystemEvents>,
}

impl CronRunner for SessionsRunner {
    fn run(&self, fire: Fire) -> BoxFuture<'static, RunOutcome> {
        let (sessions, channels, now, events) = (
            (self.sessions)(),
            self.channels.clone(),
            self.clock.now_ms(),
            self.system_events.clone(),
        );
        async move {
            if let Some(events) = events
                && let Some(out) = queue_for_heartbeat(&events, &fire).await
            {
                return out;
            }
            match sessions {
                Some(s) => run_turn(&s, &channels, fire, now).await,
                None => RunOutcome::error("the sessions are restarting; the run was not started"),
            }
        }
        .boxed()
    }
}

/// A `next-heartbeat` system event goes to the agent's heartbeat queue; `None` when it is
/// to run now instead (another kind of job, or the agent has no heartbeats).
async fn queue_for_heartbeat(events: &SystemEvents, fire: &Fire) -> Option<RunOutcome> {
    let job = &fire.job;
    let (Payload::SystemEvent { text }, WakeMode::NextHeartbeat) =
        (&job.spec.payload, job.spec.wake_mode)
    else {
        return None;
    };
    let agent = crate::session::agent_of(&fire.session_key)?;
    let text = format!("{} {}", job.tag(), text.trim());
    match events
        .queue(agent, &text, &format!("cron:{}", job.id))
        .await
    {
        Ok(true) => Some(RunOutcome::ok(format!(
            "queued for agent {agent}'s next heartbeat (wakeMode next-heartbeat)"
        ))),
        Ok(false) => None,
        Err(e) => Some(RunOutcome::error(format!(
            "could not queue the event for the next heartbeat: {e}"
        ))),
    }
}

/// The chat the reply goes to (the account picked as `pincer message send` picks it),
/// `Ok(None)` for none, or why the delivery cannot be made.
fn origin(channels: &ChannelDirectory, fire: &Fire) -> Result<Option<ChannelOrigin>, String> {
    let Some(d) = &fire.job.spec.delivery else {
        return Ok(None);
    };
    let Some((channel, to)) = d.target() else {
        return Ok(None);
    };
    let (channel, account) = crate::channels::send::resolve(
        &channels.statuses(),
        Some(channel),
        d.account_id.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    Ok(Some(ChannelOrigin {
        channel,
        account,
        to: to.to_owned(),
        thread: None,
        // A fire's own id: a second delivery of the same fire is a duplicate to the inbox.
        message_id: format!("cron:{}:{}", fire.job.id, fire.scheduled_ms),
    }))
}

async fn run_turn(
    sessions: &ActorRef<SessionsMsg>,
    channels: &ChannelDirectory,
    fire: Fire,
    now: u64,
) -> RunOutcome {
    const CALL: Duration = Duration::from_secs(10);
    let job = &fire.job;
    let key = fire.session_key.clone();
    let best_effort = job
        .spec
        .delivery
        .as_ref()
        .is_some_and(|d| d.best_effort == Some(true));
    let (origin, note) = match origin(channels, &fire) {
        Ok(o) => (o, None),
        Err(e) if best_effort => (None, Some(format!("not delivered: {e}"))),
        Err(e) => return RunOutcome::error(format!("delivery: {e}")),
    };
    let isolated = job.spec.session_target == SessionTarget::Isolated;
    if isolated {
        // Every run starts afresh: the previous run's transcript goes to the archive.
        let reset = sessions
            .call(
                |reply| SessionsMsg::Reset {
                    key: key.clone(),
                    delete: false,
                    reply,
                },
                Some(CALL),
            )
            .await;
        match reset {
            Ok(CallResult::Success(Ok(_))) => {}
            Ok(CallResult::Success(Err(e))) => {
                return RunOutcome::error(format!("could not start session {key} afresh: {e}"));
            }
            _ => return RunOutcome::error("the sessions did not answer; the run was not started"),
        }
    }
    let (model, thinking) = match &job.spec.payload {
        Payload::AgentTurn {
            model, thinking, ..
        } => (model.clone(), *thinking),
        Payload::SystemEvent { .. } => (None, None),
    };
    let timeout_ms = job.timeout_ms();
    let sent = sessions
        .call(
            |reply| SessionsMsg::Send {
                key: key.clone(),
                text: job.prompt(),
                thinking,
                stream: None,
                compact: false,
                mode: None,
                origin,
                opts: TurnOptions {
                    model,
                    deadline_ms: Some(now + timeout_ms),
                    ..Default::default()
                },
                reply,
            },
            Some(CALL),
        )
        .await;
    let run_id = match sent {
        Ok(CallResult::Success(Ok((_, "duplicate")))) => {
            return RunOutcome::skipped(
                "the session already had this fire's message (a re-fire); not run twice",
            );
        }
        Ok(CallResult::Success(Ok((run_id, _)))) => run_id,
        Ok(CallResult::Success(Err(e))) => return RunOutcome::error(e),
        _ => return RunOutcome::error("the sessions did not answer; the run was not started"),
    };
    if isolated {
        let label = format!("cron: {}", job.spec.name.as_deref().unwrap_or(&job.id));
        let _ = sessions
            .call(
                |reply| SessionsMsg::Patch {
                    key: key.clone(),
                    label: Some(label),
                    reply,
                },
                Some(CALL),
            )
            .await;
    }
    let waited = sessions
        .call(
            |reply| SessionsMsg::Wait {
                key: key.clone(),
                run_id: run_id.clone(),
                reply,
            },
            Some(Duration::from_millis(timeout_ms) + Duration::from_secs(30)),
        )
        .await;
    let mut out = match waited {
        Ok(CallResult::Success(s)) => {
            let out = match s.status.as_str() {
                "ok" => RunOutcome::ok(s.text),
                status => RunOutcome::error(
                    s.error
                        .unwrap_or_else(|| format!("the turn ended with status {status}")),
                ),
            };
            RunOutcome {
                model: s.model,
                ..out
            }
        }
        Ok(CallResult::Timeout) => RunOutcome::error(format!(
            "no result within {} s; the turn may still finish in session {key}",
            timeout_ms / 1000 + 30
        )),
        _ => RunOutcome::error(format!(
            "lost track of the turn (the sessions restarted); see session {key}"
        )),
    };
    out.run_id = Some(run_id);
    if let Some(n) = note {
        out.summary = Some(match out.summary {
            Some(s) => format!("{n}\n{s}"),
            None => n,
        });
    }
    out
}
