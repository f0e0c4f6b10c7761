//! The side-effect half of a heartbeat: one turn through the Sessions actor (the main
//! session's key, the target chat, the message, its end) and the budget notice, each a
//! task the Heartbeat actor spawns so it never waits for a model.

use std::time::Duration;

use ractor::rpc::CallResult;
use tracing::{info, warn};

use super::heartbeat::{HeartbeatEvent, HeartbeatStatus};
use super::heartbeat_config::Target;
use crate::channels::actor::ChannelDirectory;
use crate::channels::{ChannelOrigin, OutboxRow};
use crate::session::methods::SessionsLookup;
use crate::session::{SessionMeta, SessionsMsg, TurnOptions, is_heartbeat_ack};
use crate::store::Store;

/// How long a heartbeat waits for its turn before it is reported failed (the turn
/// itself keeps the agent's own deadline).
const TURN_WAIT: Duration = Duration::from_secs(3600);
/// How long a call to the Sessions actor may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Characters of a reply kept as the event's `preview`.
const PREVIEW_CHARS: usize = 200;

/// Work a tick hands to its turn task.
pub(super) struct Job {
    pub(super) agent: String,
    pub(super) target: Target,
    pub(super) text: String,
    pub(super) model: Option<String>,
    pub(super) ack_max_chars: usize,
    /// The origin's message id: `heartbeat:<agent>:<ms>`.
    pub(super) message_id: String,
    /// Queued events the turn takes in (removed once the turn is accepted).
    pub(super) event_ids: Vec<u64>,
    pub(super) hash: Option<String>,
}

/// The main session key of an agent, from the Sessions actor.
async fn main_key(sessions: &SessionsLookup, agent: &str) -> Result<String, String> {
    let s = sessions().ok_or("the sessions are restarting")?;
    match s
        .call(
            |reply| SessionsMsg::MainKey {
                agent: Some(agent.to_owned()),
                reply,
            },
            Some(CALL_TIMEOUT),
        )
        .await
    {
        Ok(CallResult::Success(k)) => Ok(k),
        _ => Err("the sessions did not answer".into()),
    }
}

/// The chat a heartbeat's reply (or notice) goes to; `None`: nowhere.
fn origin_for(
    store: &Store,
    channels: &ChannelDirectory,
    target: &Target,
    main_key: &str,
    message_id: String,
) -> Result<Option<ChannelOrigin>, String> {
    match target {
        Target::None => Ok(None),
        Target::Last => {
            let meta = store
                .session::<SessionMeta>(main_key)
                .map_err(|e| e.to_string())?;
            Ok(meta
                .and_then(|m| m.last_origin)
                .map(|o| ChannelOrigin { message_id, ..o }))
        }
        Target::Channel {
            channel,
            to,
            account,
        } => {
            let (channel, account) = crate::channels::send::resolve(
                &channels.statuses(),
                Some(channel),
                account.as_deref(),
            )
            .map_err(|e| e.to_string())?;
            Ok(Some(ChannelOrigin {
                channel,
                account,
                to: to.clone(),
                thread: None,
                message_id,
            }))
        }
    }
}

/// One heartbeat turn: the main session's key, the target chat, the message through the
/// Sessions actor, its end. Never fails: a failure is a `failed` event.
pub(super) async fn turn(
    store: &Store,
    sessions: &SessionsLookup,
    channels: &ChannelDirectory,
    job: Job,
) -> HeartbeatEvent {
    let agent = job.agent.clone();
    let failed =
        |reason: String| HeartbeatEvent::new(0, &agent, HeartbeatStatus::Failed, Some(reason));
    let key = match main_key(sessions, &job.agent).await {
        Ok(k) => k,
        Err(e) => return failed(e),
    };
    let origin = match origin_for(store, channels, &job.target, &key, job.message_id.clone()) {
        Ok(o) => o,
        Err(e) => {
            return failed(format!("heartbeat target {}: {e}", job.target.describe()));
        }
    };
    let Some(s) = sessions() else {
        return failed("the sessions are restarting".into());
    };
    let sent = s
        .call(
            |reply| SessionsMsg::Send {
                key: key.clone(),
                text: job.text,
                thinking: None,
                stream: None,
                compact: false,
                mode: None,
                origin: origin.clone(),
                opts: TurnOptions {
                    model: job.model.clone(),
                    heartbeat_ack_max_chars: Some(job.ack_max_chars),
                    ..Default::default()
                },
                reply,
            },
            Some(CALL_TIMEOUT),
        )
        .await;
    let run_id = match sent {
        Ok(CallResult::Success(Ok((run_id, _)))) if !run_id.is_empty() => run_id,
        Ok(CallResult::Success(Ok(_))) => {
            return failed(format!(
                "the session took {} as a duplicate",
                job.message_id
            ));
        }
        Ok(CallResult::Success(Err(e))) => return failed(e),
        _ => return failed("the sessions did not take the heartbeat".into()),
    };
    // The events are in the session's inbox now (durably): the queue lets them go.
    if let Err(e) = store.heartbeat_remove_events(&job.event_ids) {
        warn!(agent = %job.agent, error = %e, "could not clear the queued system events; they will be repeated");
    }
    let done = s
        .call(
            |reply| SessionsMsg::Wait {
                key: key.clone(),
                run_id: run_id.clone(),
                reply,
            },
            Some(TURN_WAIT),
        )
        .await;
    let summary = match done {
        Ok(CallResult::Success(s)) => s,
        _ => return failed(format!("heartbeat turn {run_id} did not report its end")),
    };
    let tokens = summary.usage.input + summary.usage.output;
    let text = summary.text.trim();
    let (status, reason) = if summary.status != "ok" {
        (
            HeartbeatStatus::Failed,
            Some(
                summary
                    .error
                    .clone()
                    .unwrap_or_else(|| format!("the turn ended {}", summary.status)),
            ),
        )
    } else if text.is_empty() {
        (HeartbeatStatus::OkEmpty, None)
    } else if is_heartbeat_ack(text, job.ack_max_chars) {
        (HeartbeatStatus::OkToken, None)
    } else {
        (
            HeartbeatStatus::Sent,
            origin.is_none().then(|| match job.target {
                Target::None => "target-none".to_owned(),
                _ => "no-last-chat".to_owned(),
            }),
        )
    };
    let mut event = HeartbeatEvent::new(0, &agent, status, reason);
    if status == HeartbeatStatus::Sent {
        event.silent = origin.is_none();
        if let Some(o) = &origin {
            event.channel = Some(o.channel.clone());
            event.account_id = Some(o.account.clone());
            event.to = Some(o.to.clone());
        }
    }
    if !text.is_empty() {
        event.preview = Some(text.chars().take(PREVIEW_CHARS).collect());
    }
    event.session_key = Some(key);
    event.run_id = Some(run_id);
    event.model = summary.model;
    event.tokens = tokens;
    event
}

/// Tells the user heartbeats are paused for the budget: an outbox row for the heartbeat
/// target's chat (only the log when there is none).
pub(super) async fn tell(
    store: Store,
    sessions: SessionsLookup,
    channels: ChannelDirectory,
    agent: String,
    target: Target,
    text: String,
) {
    let key = match main_key(&sessions, &agent).await {
        Ok(k) => k,
        Err(e) => {
            warn!(%agent, error = %e, "could not tell the user heartbeats are paused");
            return;
        }
    };
    let origin = match origin_for(&store, &channels, &target, &key, String::new()) {
        Ok(Some(o)) => o,
        Ok(None) => {
            info!(%agent, target = %target.describe(), "no chat to tell that heartbeats are paused");
            return;
        }
        Err(e) => {
            warn!(%agent, error = %e, "could not tell the user heartbeats are paused");
            return;
        }
    };
    let row = OutboxRow::new(origin.clone(), text, &key, "");
    let pushed = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.outbox_push(&row)).await
    };
    match pushed {
        Ok(Ok(id)) => channels.deliver(id, &origin),
        Ok(Err(e)) => warn!(%agent, error = %e, "could not queue the budget notice"),
        Err(e) => warn!(%agent, error = %e, "could not queue the budget notice"),
    }
}
