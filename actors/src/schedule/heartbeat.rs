//! Heartbeats: every `heartbeat.every` an agent's main session gets a turn that reads
//! HEARTBEAT.md and decides whether anything needs the user. A reply of `HEARTBEAT_OK`
//! (plus at most `ackMaxChars`) stays in the transcript; anything else goes to the
//! heartbeat's target chat.
//!
//! Parent: the root supervisor (permanent; a crash restarts it, and its schedule starts
//! afresh from the restart: a tick is never run twice, one may be late). It has no
//! children: each heartbeat turn is a task that talks to the Sessions actor and reports
//! back with `Finished`, so ticks, status calls and manual runs are never blocked by a
//! model call.
//!
//! The cost guard (pure, in `heartbeat_config`): a tick calls the model only when
//! HEARTBEAT.md has content that changed since the last heartbeat that called the model,
//! or a system event is queued for the agent; and only while today's (UTC) heartbeat
//! token spend is under `dailyTokenBudget`. The first tick of a day that finds the budget
//! spent tells the user once. State (content hash, spend, queued events, latest outcome)
//! lives in the store, so a restart keeps it.
//!
//! Emits the `heartbeat` gateway event (OpenClaw's payload) after every tick.

use std::collections::BTreeMap;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::{debug, info, instrument, warn};

use super::heartbeat_config::{
    AgentHeartbeat, Decision, HeartbeatFile, QueuedEvent, Target, budget_notice, date_of, day_of,
    decide, heartbeat_message, read_heartbeat_file,
};
use super::heartbeat_turn::{Job, tell, turn};
use crate::agent::run::EventSink;
use crate::channels::actor::ChannelDirectory;
use crate::session::methods::SessionsLookup;
use crate::store::Store;

pub use super::heartbeat_setup::{HeartbeatSetup, SystemEvents};

pub struct HeartbeatActor;

/// Where the time of day comes from: the Scheduler's clock (the system clock, or under
/// paused time a fixed epoch plus tokio time, so days pass with `tokio::time`).
pub use super::cron_runner::{Clock, SystemClock, TokioClock};

pub struct HeartbeatArgs {
    pub store: Store,
    pub sessions: SessionsLookup,
    /// The agents that run heartbeats (`heartbeat_config::resolve`).
    pub agents: Vec<AgentHeartbeat>,
    /// `heartbeat.run` without an agent runs this one's.
    pub default_agent: String,
    /// The channel accounts: which one sends to a channel target, and who sends the
    /// budget notice.
    pub channels: ChannelDirectory,
    /// Where the `heartbeat` event goes (the gateway's clients).
    pub events: Option<EventSink>,
    pub clock: Arc<dyn Clock>,
}

/// What a tick came to, in OpenClaw's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeartbeatStatus {
    /// The model answered something that is not an acknowledgement (delivered to the
    /// target, unless `silent`).
    Sent,
    /// The model answered nothing.
    OkEmpty,
    /// The model answered `HEARTBEAT_OK`: kept in the transcript, not delivered.
    OkToken,
    /// No model call (`reason` says why).
    Skipped,
    /// The turn failed (`reason` says why).
    Failed,
}

/// One tick's outcome: OpenClaw's `heartbeat` event payload plus Pincer's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatEvent {
    pub ts: u64,
    pub status: HeartbeatStatus,
    pub agent_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The reply was not delivered anywhere (an acknowledgement, or no target chat).
    #[serde(default)]
    pub silent: bool,
    /// ok | alert | error, for a status light.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicator_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Tokens (input + output) the turn used.
    #[serde(default)]
    pub tokens: u64,
}

impl HeartbeatEvent {
    pub(super) fn new(
        ts: u64,
        agent: &str,
        status: HeartbeatStatus,
        reason: Option<String>,
    ) -> Self {
        HeartbeatEvent {
            ts,
            status,
            agent_id: agent.to_owned(),
            reason,
            channel: None,
            account_id: None,
            to: None,
            preview: None,
            duration_ms: None,
            silent: !matches!(status, HeartbeatStatus::Sent),
            indicator_type: match status {
                HeartbeatStatus::OkEmpty | HeartbeatStatus::OkToken => Some("ok".into()),
                HeartbeatStatus::Sent => Some("alert".into()),
                HeartbeatStatus::Failed => Some("error".into()),
                HeartbeatStatus::Skipped => None,
            },
            session_key: None,
            run_id: None,
            model: None,
            tokens: 0,
        }
    }
}

/// An agent's heartbeat row in the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HeartbeatRow {
    /// sha256 of HEARTBEAT.md when the last heartbeat called the model and got an answer.
    pub last_hash: Option<String>,
    /// The UTC day (since 1970-01-01) `tokens_today` counts.
    pub day: u64,
    pub tokens_today: u64,
    /// The day the user was last told heartbeats are paused for the budget.
    pub notified_day: Option<u64>,
    /// Heartbeats that called the model, and ticks that did not.
    pub runs: u64,
    pub skips: u64,
    pub last: Option<HeartbeatEvent>,
}

impl HeartbeatRow {
    /// Starts a new day's count when `now_ms` is past the row's day.
    fn roll(&mut self, now_ms: u64) {
        let today = day_of(now_ms);
        if self.day != today {
            self.day = today;
            self.tokens_today = 0;
        }
    }
}

/// One agent's heartbeat, for `heartbeat.status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    pub agent_id: String,
    pub enabled: bool,
    pub every: String,
    pub every_ms: Option<u64>,
    pub target: String,
    pub model: Option<String>,
    pub ack_max_chars: usize,
    pub daily_token_budget: u64,
    /// `YYYY-MM-DD` (UTC) of `tokens_today`.
    pub day: String,
    pub tokens_today: u64,
    /// Today's budget is spent: ticks make no model call until 00:00 UTC.
    pub paused: bool,
    /// A heartbeat turn is running now.
    pub running: bool,
    pub queued_events: usize,
    pub next_due_ms: Option<u64>,
    pub runs: u64,
    pub skips: u64,
    pub last: Option<HeartbeatEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeartbeatError {
    #[error("agent {agent:?} runs no heartbeats; agents with heartbeats: {known}")]
    UnknownAgent { agent: String, known: String },
    #[error("a heartbeat of agent {0} is running already; wait for it to finish")]
    Busy(String),
    #[error("the heartbeat state could not be read or written: {0}")]
    Store(String),
}

impl HeartbeatError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Busy(_) | Self::Store(_))
    }
}

type RunReply = RpcReplyPort<Result<HeartbeatEvent, HeartbeatError>>;

pub enum HeartbeatMsg {
    /// Every agent's heartbeat state.
    Status {
        reply: RpcReplyPort<Vec<AgentStatus>>,
    },
    /// Runs an agent's heartbeat now (`None`: the default agent's), through the cost guard
    /// unless `force`; the budget always applies. Replies with the outcome once the turn
    /// has ended.
    Run {
        agent: Option<String>,
        force: bool,
        reply: RunReply,
    },
    Internal(Internal),
}

pub enum Internal {
    /// An agent's heartbeat is due.
    Tick { agent: String },
    /// A heartbeat turn ended.
    Finished {
        agent: String,
        /// HEARTBEAT.md's hash as the turn saw it (`None`: no content).
        hash: Option<String>,
        event: Box<HeartbeatEvent>,
        reply: Option<RunReply>,
    },
}

struct AgentEntry {
    hb: AgentHeartbeat,
    running: bool,
    /// When the next tick is due (tokio time).
    next_due: Option<Instant>,
    /// The last heartbeat turn's id time: each turn's origin id must be new.
    last_turn_ms: u64,
}

pub struct HeartbeatState {
    store: Store,
    sessions: SessionsLookup,
    channels: ChannelDirectory,
    events: Option<EventSink>,
    clock: Arc<dyn Clock>,
    default_agent: String,
    agents: BTreeMap<String, AgentEntry>,
}

impl Actor for HeartbeatActor {
    type Msg = HeartbeatMsg;
    type State = HeartbeatState;
    type Arguments = HeartbeatArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<HeartbeatMsg>,
        args: HeartbeatArgs,
    ) -> Result<HeartbeatState, ActorProcessingErr> {
        let mut agents = BTreeMap::new();
        let now = Instant::now();
        for hb in args.agents {
            let next_due = hb.config.every.map(|every| {
                let agent = hb.agent.clone();
                myself.send_after(every, move || {
                    HeartbeatMsg::Internal(Internal::Tick { agent })
                });
                now + every
            });
            info!(agent = %hb.agent, every = %hb.config.every_text, target = %hb.config.target.describe(), "heartbeats scheduled");
            agents.insert(
                hb.agent.clone(),
                AgentEntry {
                    hb,
                    running: false,
                    next_due,
                    last_turn_ms: 0,
                },
            );
        }
        Ok(HeartbeatState {
            store: args.store,
            sessions: args.sessions,
            channels: args.channels,
            events: args.events,
            clock: args.clock,
            default_agent: args.default_agent,
            agents,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<HeartbeatMsg>,
        msg: HeartbeatMsg,
        state: &mut HeartbeatState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            HeartbeatMsg::Status { reply } => {
                let _ = reply.send(state.statuses());
            }
            HeartbeatMsg::Run {
                agent,
                force,
                reply,
            } => state.on_run(&myself, agent, force, reply),
            HeartbeatMsg::Internal(Internal::Tick { agent }) => state.on_tick(&myself, &agent),
            HeartbeatMsg::Internal(Internal::Finished {
                agent,
                hash,
                event,
                reply,
            }) => state.on_finished(&agent, hash, *event, reply),
        }
        Ok(())
    }
}

impl HeartbeatState {
    fn on_run(
        &mut self,
        myself: &ActorRef<HeartbeatMsg>,
        agent: Option<String>,
        force: bool,
        reply: RunReply,
    ) {
        let agent = agent.unwrap_or_else(|| self.default_agent.clone());
        if !self.agents.contains_key(&agent) {
            let known: Vec<&str> = self.agents.keys().map(String::as_str).collect();
            let _ = reply.send(Err(HeartbeatError::UnknownAgent {
                agent,
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            }));
            return;
        }
        self.beat(myself, &agent, force, Some(reply));
    }

    fn on_tick(&mut self, myself: &ActorRef<HeartbeatMsg>, agent: &str) {
        let Some(entry) = self.agents.get_mut(agent) else {
            return;
        };
        // The next tick is due one period after this one was (not after it ran), so the
        // schedule does not drift.
        if let Some(every) = entry.hb.config.every {
            let due = entry.next_due.unwrap_or_else(Instant::now) + every;
            entry.next_due = Some(due);
            let a = agent.to_owned();
            myself.send_after(due.saturating_duration_since(Instant::now()), move || {
                HeartbeatMsg::Internal(Internal::Tick { agent: a })
            });
        }
        self.beat(myself, agent, false, None);
    }

    /// Runs the cost guard and the budget check; starts a turn when both let it.
    #[instrument(skip_all, fields(actor = "heartbeats", agent = %agent))]
    fn beat(
        &mut self,
        myself: &ActorRef<HeartbeatMsg>,
        agent: &str,
        force: bool,
        reply: Option<RunReply>,
    ) {
        let Some(entry) = self.agents.get(agent) else {
            return;
        };
        if entry.running {
            debug!("a heartbeat is still running; this tick is dropped");
            if let Some(r) = reply {
                let _ = r.send(Err(HeartbeatError::Busy(agent.to_owned())));
            }
            return;
        }
        let now = self.clock.now_ms();
        let loaded = self.load(agent).and_then(|row| {
            let events = self
                .store
                .heartbeat_events::<QueuedEvent>(agent)
                .map_err(|e| HeartbeatError::Store(e.to_string()))?;
            Ok((row, events))
        });
        let (mut row, events) = match loaded {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "heartbeat skipped: its state is unreadable");
                if let Some(r) = reply {
                    let _ = r.send(Err(e));
                }
                return;
            }
        };
        row.roll(now);
        let hb = &entry.hb;
        let file = read_heartbeat_file(&hb.workspace);
        let decision = decide(
            &file,
            row.last_hash.as_deref(),
            events.len(),
            force,
            row.tokens_today,
            hb.config.daily_token_budget,
        );
        match decision {
            Decision::Skip(reason) => {
                debug!(reason, "heartbeat skipped: nothing to do");
                let event =
                    HeartbeatEvent::new(now, agent, HeartbeatStatus::Skipped, Some(reason.into()));
                row.skips += 1;
                self.record(agent, row, event, reply);
            }
            Decision::OverBudget => {
                let budget = hb.config.daily_token_budget;
                let at = hb.source.as_str();
                if row.notified_day != Some(row.day) {
                    row.notified_day = Some(row.day);
                    let text = budget_notice(agent, row.tokens_today, budget, at);
                    warn!(
                        spent = row.tokens_today,
                        budget,
                        "heartbeats paused until tomorrow (UTC): the daily token budget is spent"
                    );
                    self.notify(agent, &hb.config.target, text);
                }
                let event = HeartbeatEvent::new(
                    now,
                    agent,
                    HeartbeatStatus::Skipped,
                    Some("budget-exhausted".into()),
                );
                row.skips += 1;
                self.record(agent, row, event, reply);
            }
            Decision::Run => {
                let (hash, message_file) = match &file {
                    HeartbeatFile::Content { hash, .. } => (Some(hash.clone()), file.clone()),
                    _ => (None, HeartbeatFile::Empty),
                };
                let texts: Vec<String> = events.iter().map(|(_, e)| e.text.clone()).collect();
                let turn_ms = now.max(entry.last_turn_ms + 1);
                let job = Job {
                    agent: agent.to_owned(),
                    target: hb.config.target.clone(),
                    text: heartbeat_message(&hb.config.prompt, &message_file, &texts),
                    model: hb.config.model.clone(),
                    ack_max_chars: hb.config.ack_max_chars,
                    message_id: format!("heartbeat:{agent}:{turn_ms}"),
                    event_ids: events.iter().map(|(id, _)| *id).collect(),
                    hash,
                };
                let entry = self.agents.get_mut(agent).expect("checked above");
                entry.running = true;
                entry.last_turn_ms = turn_ms;
                info!(
                    events = job.event_ids.len(),
                    force, "heartbeat: calling the model"
                );
                let (store, sessions, channels, clock) = (
                    self.store.clone(),
                    self.sessions.clone(),
                    self.channels.clone(),
                    self.clock.clone(),
                );
                let me = myself.clone();
                tokio::spawn(async move {
                    let started = clock.now_ms();
                    let (agent, hash) = (job.agent.clone(), job.hash.clone());
                    let mut event = turn(&store, &sessions, &channels, job).await;
                    event.ts = clock.now_ms();
                    event.duration_ms = Some(event.ts.saturating_sub(started));
                    let _ = me.cast(HeartbeatMsg::Internal(Internal::Finished {
                        agent,
                        hash,
                        event: Box::new(event),
                        reply,
                    }));
                });
            }
        }
    }

    fn on_finished(
        &mut self,
        agent: &str,
        hash: Option<String>,
        event: HeartbeatEvent,
        reply: Option<RunReply>,
    ) {
        if let Some(e) = self.agents.get_mut(agent) {
            e.running = false;
        }
        let mut row = match self.load(agent) {
            Ok(r) => r,
            Err(e) => {
                warn!(%agent, error = %e, "heartbeat outcome not recorded");
                HeartbeatRow::default()
            }
        };
        row.roll(self.clock.now_ms());
        row.tokens_today += event.tokens;
        row.runs += 1;
        if event.status != HeartbeatStatus::Failed {
            row.last_hash = hash;
        }
        match event.status {
            HeartbeatStatus::Failed => {
                warn!(%agent, reason = event.reason.as_deref().unwrap_or(""), "heartbeat failed")
            }
            s => {
                info!(%agent, status = ?s, tokens = event.tokens, silent = event.silent, "heartbeat done")
            }
        }
        self.record(agent, row, event, reply);
    }

    fn load(&self, agent: &str) -> Result<HeartbeatRow, HeartbeatError> {
        self.store
            .heartbeat_state::<HeartbeatRow>(agent)
            .map(Option::unwrap_or_default)
            .map_err(|e| HeartbeatError::Store(e.to_string()))
    }

    /// Saves the row with its latest outcome, tells the clients and the caller.
    fn record(
        &mut self,
        agent: &str,
        mut row: HeartbeatRow,
        event: HeartbeatEvent,
        reply: Option<RunReply>,
    ) {
        row.last = Some(event.clone());
        if let Err(e) = self.store.set_heartbeat_state(agent, &row) {
            warn!(%agent, error = %e, "could not save the heartbeat state");
        }
        if let Some(sink) = &self.events {
            sink(
                "heartbeat",
                serde_json::to_value(&event).unwrap_or_default(),
            );
        }
        if let Some(r) = reply {
            let _ = r.send(Ok(event));
        }
    }

    /// Tells the user heartbeats are paused (a task: it asks for the main session).
    fn notify(&self, agent: &str, target: &Target, text: String) {
        tokio::spawn(tell(
            self.store.clone(),
            self.sessions.clone(),
            self.channels.clone(),
            agent.to_owned(),
            target.clone(),
            text,
        ));
    }

    fn statuses(&self) -> Vec<AgentStatus> {
        let now = self.clock.now_ms();
        let instant = Instant::now();
        self.agents
            .values()
            .map(|e| {
                let c = &e.hb.config;
                let mut row = self
                    .store
                    .heartbeat_state::<HeartbeatRow>(&e.hb.agent)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                row.roll(now);
                let queued = self
                    .store
                    .heartbeat_events::<QueuedEvent>(&e.hb.agent)
                    .map(|v| v.len())
                    .unwrap_or(0);
                AgentStatus {
                    agent_id: e.hb.agent.clone(),
                    enabled: c.every.is_some(),
                    every: c.every_text.clone(),
                    every_ms: c.every.map(|d| d.as_millis() as u64),
                    target: c.target.describe(),
                    model: c.model.clone(),
                    ack_max_chars: c.ack_max_chars,
                    daily_token_budget: c.daily_token_budget,
                    day: date_of(row.day),
                    tokens_today: row.tokens_today,
                    paused: c.daily_token_budget > 0 && row.tokens_today >= c.daily_token_budget,
                    running: e.running,
                    queued_events: queued,
                    next_due_ms: e
                        .next_due
                        .map(|d| now + d.saturating_duration_since(instant).as_millis() as u64),
                    runs: row.runs,
                    skips: row.skips,
                    last: row.last,
                }
            })
            .collect()
    }
}
