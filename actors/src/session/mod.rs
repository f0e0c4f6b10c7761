//! Sessions: one SessionActor per session key, under the Sessions actor that finds or
//! spawns them and restarts a crashed one (which resumes from the store). A session runs
//! one turn at a time in a RunActor linked to it; messages arriving meanwhile wait in its
//! queue, and every accepted message is in the store's inbox until its turn is recorded.
//!
//! ```text
//! Sessions (restarts crashed sessions; resumes sessions with waiting messages at start)
//! └── SessionActor per key   hot history, queue, transcript writes, chat events
//!     └── RunActor           one turn (temporary): model calls and tools, under a deadline
//! ```

pub mod delegation;
pub mod keys;
pub mod lifecycle;
pub mod methods;
pub mod openai;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use pincer_supervision::fault::{FaultHandle, Injectable};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::agent::actor::{AgentDirectory, Priority};
use crate::agent::model::{Message, Thinking, ToolCall, Usage};
use crate::agent::prompt::{self, PromptInput};
use crate::agent::run::{AgentRuntime, EventSink, TurnEvent, TurnInput, TurnOutput, run_turn};
use crate::channels::{ChannelOrigin, DeliverSink, OutboxRow};
use crate::gateway::now_ms;
use crate::store::Store;
use lifecycle::{Event, Phase, ResetPolicy, Transition};

/// One transcript row (the warm layer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// user | assistant | tool | error
    pub role: String,
    #[serde(default)]
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
    pub ts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl Entry {
    /// A row with only a role and text.
    pub fn new(role: &str, content: impl Into<String>, ts: u64, run_id: Option<String>) -> Self {
        Entry {
            role: role.to_owned(),
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
            is_error: false,
            ts,
            run_id,
            usage: None,
            model: None,
        }
    }

    fn from_message(m: &Message, ts: u64, run_id: &str) -> Self {
        let base = Entry::new("", "", ts, Some(run_id.to_owned()));
        match m {
            Message::User { content } => Entry {
                role: "user".into(),
                content: content.clone(),
                ..base
            },
            Message::Assistant {
                content,
                tool_calls,
            } => Entry {
                role: "assistant".into(),
                content: content.clone(),
                tool_calls: tool_calls.clone(),
                ..base
            },
            Message::Tool {
                call_id,
                name,
                content,
                is_error,
            } => Entry {
                role: "tool".into(),
                content: content.clone(),
                tool_call_id: Some(call_id.clone()),
                name: Some(name.clone()),
                is_error: *is_error,
                ..base
            },
        }
    }

    /// The model-facing message; error rows are not sent back to the model.
    pub fn to_message(&self) -> Option<Message> {
        Some(match self.role.as_str() {
            "user" => Message::User {
                content: self.content.clone(),
            },
            "assistant" => Message::Assistant {
                content: self.content.clone(),
                tool_calls: self.tool_calls.clone(),
            },
            "tool" => Message::Tool {
                call_id: self.tool_call_id.clone().unwrap_or_default(),
                name: self.name.clone().unwrap_or_default(),
                content: self.content.clone(),
                is_error: self.is_error,
            },
            _ => return None,
        })
    }
}

/// A message accepted for a session and not yet answered (the inbox row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    pub run_id: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    pub received_at: u64,
    /// How often a turn for it has crashed (a retried turn gives up after a second crash).
    #[serde(default)]
    pub attempts: u32,
    /// fast | standard | deep for this turn only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Not a message: compact the history now (`sessions.compact`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compact: bool,
    /// Served before lower ones when the agent has a queue (delegations may raise it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: Priority,
    /// The chat it came from: the reply goes back there through the outbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<ChannelOrigin>,
    /// Models for this turn only (`provider/model`), tried before the agent's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Unix ms past which the turn is aborted with a timeout result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// A heartbeat: a reply of `HEARTBEAT_OK` with at most this many other characters is
    /// kept in the transcript but not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_ack_max_chars: Option<usize>,
    /// Delegated by another session: where the result goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation: Option<delegation::Delegation>,
}

/// How a message's turn runs beyond its text (scheduler, heartbeats, hooks, delegation).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TurnOptions {
    /// `provider/model` for this turn only.
    pub model: Option<String>,
    /// Served before lower ones when the agent has a queue.
    pub priority: Priority,
    /// Unix ms past which the turn is aborted with a timeout result.
    pub deadline_ms: Option<u64>,
    /// A heartbeat: a `HEARTBEAT_OK` reply with at most this many other characters is
    /// not delivered.
    pub heartbeat_ack_max_chars: Option<usize>,
    pub delegation: Option<delegation::Delegation>,
    /// Written in the message's own commit, its `detail.runId` set to the run's id.
    pub audit: Option<crate::audit::AuditRecord>,
}

impl Pending {
    /// A message received now, with default options.
    pub fn new(text: String, origin: Option<ChannelOrigin>, received_at: u64) -> Self {
        Pending {
            run_id: uuid::Uuid::new_v4().to_string(),
            text,
            thinking: None,
            received_at,
            attempts: 0,
            mode: None,
            compact: false,
            priority: 0,
            origin,
            model: None,
            deadline_ms: None,
            heartbeat_ack_max_chars: None,
            delegation: None,
        }
    }

    /// Applies a message's options (all but `audit`, which is written beside the
    /// message, not kept in it).
    pub fn with(mut self, opts: TurnOptions) -> Self {
        self.model = opts.model;
        self.priority = opts.priority;
        self.deadline_ms = opts.deadline_ms;
        self.heartbeat_ack_max_chars = opts.heartbeat_ack_max_chars;
        self.delegation = opts.delegation;
        self
    }
}

fn is_zero(p: &Priority) -> bool {
    *p == 0
}

/// A session's metadata row.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionMeta {
    pub key: String,
    pub agent_id: String,
    pub created_at: u64,
    pub updated_at: u64,
    pub turns: u64,
    #[serde(default)]
    pub usage: Usage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The cold layer: a summary of the history compacted away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default)]
    pub compactions: u32,
    /// Where the session is in its lifecycle (see `lifecycle`).
    #[serde(default)]
    pub phase: Phase,
    /// The chat its last answered message came from (heartbeats' `target: "last"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_origin: Option<ChannelOrigin>,
    /// A sub-agent session: how deep in spawns it is (0: not a sub-agent).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub spawn_depth: u32,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// The result of a finished run, for `agent.wait` and the `agent` method.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub run_id: String,
    pub session_key: String,
    /// ok | error | aborted
    pub status: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub usage: Usage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Milliseconds spent waiting for the model; the rest of the run's time is the
    /// gateway's (and the tools').
    pub model_ms: f64,
}

/// Where a caller wants a run's text deltas.
pub type TextStream = tokio::sync::mpsc::UnboundedSender<String>;

/// Agents by id (their actors and current runtimes), shared by every session.
pub type Agents = AgentDirectory;

/// What the Sessions actor needs.
pub struct SessionsArgs {
    pub store: Store,
    pub agents: Agents,
    pub default_agent: String,
    pub main_key: String,
    pub events: EventSink,
    /// Faults for `session` and `run` actors (tests and `--inject-fault`).
    pub faults: FaultHandle,
    /// Messages that arrive during a turn are answered together in the next one
    /// (`session.queueMode` "collect"), instead of one turn each ("followup").
    pub collect: bool,
    /// When sessions start afresh (`session.reset`, `session.resetTriggers`).
    pub reset: ResetPolicy,
    /// Told about each reply put in the outbox for a chat (the Channels actor).
    pub deliver: Option<DeliverSink>,
}

struct Shared {
    store: Store,
    agents: Agents,
    default_agent: String,
    main_key: String,
    events: EventSink,
    faults: FaultHandle,
    collect: bool,
    reset: ResetPolicy,
    deliver: Option<DeliverSink>,
    /// The session tools' machinery (`sessions_spawn`...).
    delegator: delegation::Delegator,
}

/// One message of a [`SessionsMsg::SendMany`].
pub struct SendItem {
    pub key: String,
    pub text: String,
    pub origin: Option<ChannelOrigin>,
    pub reply: RpcReplyPort<Result<(String, &'static str), String>>,
    /// Receives the reply's text deltas as they stream (closed when the run ends): what a
    /// chat's draft preview follows.
    pub stream: Option<TextStream>,
}

// A message is moved once per turn: boxing the large variants would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum SessionsMsg {
    /// Accepts a message for a session: durable in the inbox before the reply.
    Send {
        key: String,
        text: String,
        thinking: Option<Thinking>,
        /// Receives the reply's text deltas as they stream (closed when the run ends).
        stream: Option<TextStream>,
        /// Not a message: compact the session's history (`text` is ignored).
        compact: bool,
        /// fast | standard | deep for this turn only.
        mode: Option<String>,
        /// From a chat: the reply goes back there, and a redelivery of the same platform
        /// message is answered `("", "duplicate")` and dropped.
        origin: Option<ChannelOrigin>,
        /// Model, priority, deadline, heartbeat and delegation settings.
        opts: TurnOptions,
        reply: RpcReplyPort<Result<(String, &'static str), String>>,
    },
    /// `Send` for a batch of chat messages (a platform's page of updates): staged in one
    /// commit and made durable by one shared fsync; each item gets its own reply.
    SendMany { items: Vec<SendItem> },
    Abort {
        key: String,
        run_id: Option<String>,
        reply: RpcReplyPort<bool>,
    },
    /// Waits for a run to finish.
    Wait {
        key: String,
        run_id: String,
        reply: RpcReplyPort<RunSummary>,
    },
    /// Closes a session: `delete` removes everything, otherwise its transcript is
    /// archived and the next message starts a fresh session under the same key.
    Reset {
        key: String,
        delete: bool,
        reply: RpcReplyPort<Result<bool, String>>,
    },
    /// The default agent's main session key.
    MainKey {
        agent: Option<String>,
        reply: RpcReplyPort<String>,
    },
    /// Live sessions (for `status`).
    Live { reply: RpcReplyPort<Vec<String>> },
    /// Sets a session's label (`None` clears it); the live actor's copy too.
    Patch {
        key: String,
        label: Option<String>,
        reply: RpcReplyPort<Result<SessionMeta, String>>,
    },
    /// Makes a session live (resuming it from the store); replies once it runs.
    Resume {
        key: String,
        reply: RpcReplyPort<Result<(), String>>,
    },
    /// Pauses a session: its actor stops, its state stays in the store. Replies once it
    /// has stopped (`false` when it was not live or is busy).
    Pause {
        key: String,
        reply: RpcReplyPort<bool>,
    },
    /// A session's idle timer fired: pause it if it is still idle.
    Idle { key: String },
    /// A message already in `key`'s inbox (at `seq`), staged by another session's turn
    /// commit (a delegation's result or reply): hand it to the session.
    Deliver {
        key: String,
        seq: u64,
        pending: Box<Pending>,
    },
    /// Archive a finished sub-agent session once it has been quiet for `after`.
    ArchiveLater { key: String, after: Duration },
    /// Archive a sub-agent session now if it is idle (else try again later).
    Archive { key: String },
}

/// A session idle this long is paused (its actor stops; the store keeps everything and
/// the next message resumes it), so thousands of quiet chats cost no memory.
pub const IDLE_PAUSE: Duration = Duration::from_secs(30 * 60);

pub struct SessionsActor;

pub struct SessionsState {
    shared: Arc<Shared>,
    live: HashMap<String, ActorRef<SessionMsg>>,
    /// Restarts per key: (window start, count).
    restarts: HashMap<String, (tokio::time::Instant, u32)>,
}

/// A session that crashes more than this within a minute is left stopped (its messages
/// stay in the inbox for the next start), so a poison message cannot spin the CPU.
const MAX_SESSION_RESTARTS: u32 = 5;

impl SessionsState {
    async fn session(
        &mut self,
        myself: &ActorRef<SessionsMsg>,
        key: &str,
    ) -> Result<ActorRef<SessionMsg>, String> {
        if let Some(s) = self.live.get(key) {
            return Ok(s.clone());
        }
        let agent_id = agent_of(key)
            .unwrap_or(&self.shared.default_agent)
            .to_owned();
        if !self.shared.agents.contains(&agent_id) {
            return Err(format!(
                "session key {key:?} names agent {agent_id:?}, which is not configured (agents: {})",
                self.shared.agents.ids().join(", ")
            ));
        }
        let actor = Injectable {
            inner: SessionActor,
            name: "session".into(),
            faults: self.shared.faults.clone(),
        };
        let args = SessionArgs {
            key: key.to_owned(),
            agent_id,
            shared: self.shared.clone(),
            sessions: myself.clone(),
        };
        let (r, _) = Actor::spawn_linked(None, actor, args, myself.get_cell())
            .await
            .map_err(|e| format!("could not start session {key}: {e}"))?;
        self.live.insert(key.to_owned(), r.clone());
        Ok(r)
    }
}

/// The agent id of `agent:<id>:...` keys.
pub fn agent_of(key: &str) -> Option<&str> {
    let mut parts = key.splitn(3, ':');
    match (parts.next(), parts.next()) {
        (Some("agent"), Some(id)) if !id.is_empty() => Some(id),
        _ => None,
    }
}

/// Pauses a live session when it is idle: it records the transition, then stops while
/// the Sessions actor waits, so no message can reach a stopping session.
async fn pause(state: &mut SessionsState, key: &str, s: ActorRef<SessionMsg>) -> bool {
    let ok = s
        .call(
            |r| SessionMsg::Pause { reply: r },
            Some(Duration::from_secs(5)),
        )
        .await;
    if !matches!(ok, Ok(ractor::rpc::CallResult::Success(true))) {
        return false;
    }
    state.live.remove(key);
    let _ = s
        .stop_and_wait(Some("paused".into()), Some(Duration::from_secs(5)))
        .await;
    info!(session = %key, "idle; paused (state stays in the store)");
    true
}

/// Archives a finished sub-agent session: stopped if live and idle, its transcript moved
/// to the archive. A busy one (or one with waiting messages) is tried again later.
async fn archive_subagent(state: &mut SessionsState, myself: &ActorRef<SessionsMsg>, key: &str) {
    let retry = || {
        let key = key.to_owned();
        myself.send_after(Duration::from_secs(60), move || SessionsMsg::Archive {
            key,
        });
    };
    if let Some(s) = state.live.get(key).cloned()
        && !pause(state, key, s).await
    {
        return retry();
    }
    let store = &state.shared.store;
    if store.inbox::<Pending>(key).is_ok_and(|i| !i.is_empty()) {
        return retry();
    }
    match store.session::<SessionMeta>(key) {
        Ok(Some(meta)) if meta.phase != Phase::Closed => {
            match archive(store, meta, &[], "sub-agent finished") {
                Ok(_) => info!(session = %key, "sub-agent session archived"),
                Err(e) => {
                    warn!(session = %key, error = %e, "could not archive the sub-agent session")
                }
            }
        }
        Ok(_) => {}
        Err(e) => warn!(session = %key, error = %e, "could not read the sub-agent session"),
    }
}

/// A session left stopped after crashing over and over: the delegated messages in its
/// inbox are answered to their requesters with an error (and taken out), so a principal
/// is told instead of waiting for a result that will not come.
fn abandon_delegated(state: &SessionsState, key: &str, reason: &str) {
    let store = &state.shared.store;
    let Ok(inbox) = store.inbox::<Pending>(key) else {
        return;
    };
    let agent = agent_of(key).unwrap_or(&state.shared.default_agent);
    let error = format!(
        "the session {key} kept crashing ({reason}) and was stopped; this task was abandoned"
    );
    let mut remove = Vec::new();
    let mut forward = Vec::new();
    for (seq, p) in &inbox {
        let Some(d) = &p.delegation else { continue };
        remove.push(*seq);
        if let Some(f) =
            delegation::follow_up(key, agent, d, "", Some(&error), p.attempts, now_ms())
        {
            forward.push(f);
        }
        if matches!(d.kind, delegation::DelegationKind::Spawn { .. }) {
            state.shared.delegator.landed(&d.correlation_id);
        }
    }
    if remove.is_empty() {
        return;
    }
    match store.inbox_forward(key, &remove, &forward) {
        Ok(staged) => {
            for ((to, seq), (_, p)) in staged.into_iter().zip(forward) {
                warn!(session = %key, requester = %to, "told the requester its delegated task was abandoned");
                let _ = state
                    .shared
                    .delegator
                    .sessions()
                    .cast(SessionsMsg::Deliver {
                        key: to,
                        seq,
                        pending: Box::new(p),
                    });
            }
        }
        Err(e) => warn!(session = %key, error = %e, "could not answer the abandoned delegations"),
    }
}

/// Sub-agent sessions left from before a restart: archived when their time has come,
/// scheduled otherwise.
fn sweep_subagents(state: &SessionsState, myself: &ActorRef<SessionsMsg>) {
    let Ok(all) = state.shared.store.sessions::<SessionMeta>() else {
        return;
    };
    let now = now_ms();
    for (key, meta) in all {
        if meta.phase == Phase::Closed
            || delegation::session_kind(&key, &state.shared.main_key) != "subagent"
        {
            continue;
        }
        let after = state
            .shared
            .agents
            .runtime(&meta.agent_id)
            .map(|rt| rt.spec.subagents.archive_after)
            .unwrap_or(Duration::from_secs(3600));
        let age = Duration::from_millis(now.saturating_sub(meta.updated_at));
        let wait = after.saturating_sub(age);
        myself.send_after(wait, move || SessionsMsg::Archive { key });
    }
}

/// Closes a session for a reset: its transcript and metadata go to the archive in one
/// durable commit with the CLOSING and CLOSED transitions (and any not yet written).
fn archive(
    store: &Store,
    mut meta: SessionMeta,
    earlier: &[Transition],
    reason: &str,
) -> Result<u64, String> {
    let now = now_ms();
    let mut transitions = earlier.to_vec();
    let from = if meta.phase == Phase::Closed {
        Phase::Active
    } else {
        meta.phase
    };
    let (phase, closing) = lifecycle::walk(from, &[Event::Close, Event::Finish], now, reason)
        .map_err(|e| e.to_string())?;
    transitions.extend(closing);
    meta.phase = phase;
    store
        .archive_session(&meta.key.clone(), now, &meta, &[], &transitions)
        .map_err(|e| e.to_string())
}

impl Actor for SessionsActor {
    type Msg = SessionsMsg;
    type State = SessionsState;
    type Arguments = SessionsArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SessionsMsg>,
        args: SessionsArgs,
    ) -> Result<SessionsState, ActorProcessingErr> {
        let delegator = delegation::Delegator::new(
            myself.clone(),
            args.store.clone(),
            args.agents.clone(),
            args.default_agent.clone(),
            args.main_key.clone(),
        );
        let mut state = SessionsState {
            shared: Arc::new(Shared {
                store: args.store,
                agents: args.agents,
                default_agent: args.default_agent,
                main_key: args.main_key,
                events: args.events,
                faults: args.faults,
                collect: args.collect,
                reset: args.reset,
                deliver: args.deliver,
                delegator,
            }),
            live: HashMap::new(),
            restarts: HashMap::new(),
        };
        sweep_subagents(&state, &myself);
        // Messages accepted before a crash or restart are answered now.
        let waiting = state.shared.store.inbox_keys()?;
        for key in waiting {
            match state.session(&myself, &key).await {
                Ok(_) => info!(session = %key, "resuming a session with waiting messages"),
                Err(e) => warn!(session = %key, error = %e, "cannot resume session"),
            }
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<SessionsMsg>,
        msg: SessionsMsg,
        state: &mut SessionsState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SessionsMsg::Send {
                key,
                text,
                thinking,
                stream,
                compact,
                mode,
                origin,
                mut opts,
                reply,
            } => {
                let session = match state.session(&myself, &key).await {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return Ok(());
                    }
                };
                let audit = opts.audit.take();
                let pending = Pending {
                    thinking,
                    compact,
                    mode,
                    ..Pending::new(text, origin, now_ms())
                }
                .with(opts);
                // Durable before it is acknowledged: staged here (quick), acknowledged by
                // the session once a shared durable commit has it, while its turn starts.
                let store = &state.shared.store;
                let staged = match &pending.origin {
                    Some(o) => {
                        let staged = store.inbox_stage_seen(
                            &key,
                            &pending,
                            (&o.account_key(), &o.message_id),
                            pending.received_at,
                        );
                        // A chat message's record (none has one today) in a commit of its own.
                        if let (Ok(Some(_)), Some(mut rec)) = (&staged, audit) {
                            rec.detail["runId"] = pending.run_id.clone().into();
                            if let Err(e) = store.audit_append(&rec) {
                                warn!(session = %key, error = %e, "could not write the audit record");
                            }
                        }
                        staged
                    }
                    None => match audit {
                        Some(mut rec) => {
                            rec.detail["runId"] = pending.run_id.clone().into();
                            store.inbox_stage_audited(&key, &pending, &rec).map(Some)
                        }
                        None => store.inbox_stage(&key, &pending).map(Some),
                    },
                };
                let seq = match staged {
                    Ok(Some(seq)) => seq,
                    Ok(None) => {
                        let _ = reply.send(Ok((String::new(), "duplicate")));
                        return Ok(());
                    }
                    Err(e) => {
                        let _ = reply.send(Err(format!("could not store the message: {e}")));
                        return Ok(());
                    }
                };
                // A delegated task (sessions_spawn, sessions_send) needs no fsync of its
                // own: the requester's turn that made it ends in a durable commit, and redb
                // commits land in order, so that commit (or the task's own turn's, if it
                // comes first) has the task too; a crash before either replays the
                // requester's turn, which asks again. Everything else (channel messages,
                // hooks, cron) is durable before it is acknowledged.
                let stored = if pending.delegation.is_none() {
                    Some(state.shared.store.sync())
                } else {
                    // Still asked for, not waited on: the fsync then overlaps the child's
                    // model call, and its turn's own commit has less left to flush.
                    drop(state.shared.store.sync());
                    None
                };
                let _ = session.cast(SessionMsg::Enqueue {
                    seq,
                    pending,
                    stream,
                    reply: Some(reply),
                    stored,
                });
            }
            SessionsMsg::SendMany { items } => {
                let now = now_ms();
                let mut staged = Vec::with_capacity(items.len());
                for item in items {
                    match state.session(&myself, &item.key).await {
                        Ok(session) => {
                            let pending = Pending::new(item.text, item.origin, now);
                            staged.push((item.key, session, pending, (item.reply, item.stream)));
                        }
                        Err(e) => {
                            let _ = item.reply.send(Err(e));
                        }
                    }
                }
                let seen: Vec<Option<(String, &str)>> = staged
                    .iter()
                    .map(|(_, _, p, _)| {
                        p.origin
                            .as_ref()
                            .map(|o| (o.account_key(), o.message_id.as_str()))
                    })
                    .collect();
                let rows: Vec<crate::store::StageItem<'_, Pending>> = staged
                    .iter()
                    .zip(&seen)
                    .map(|((key, _, p, _), seen)| {
                        (
                            key.as_str(),
                            p,
                            seen.as_ref().map(|(a, m)| (a.as_str(), *m)),
                        )
                    })
                    .collect();
                match state.shared.store.inbox_stage_many(&rows, now) {
                    Ok(seqs) => {
                        drop(rows);
                        let stored = state.shared.store.sync();
                        for ((_, session, pending, (reply, stream)), seq) in
                            staged.into_iter().zip(seqs)
                        {
                            match seq {
                                Some(seq) => {
                                    let _ = session.cast(SessionMsg::Enqueue {
                                        seq,
                                        pending,
                                        stream,
                                        reply: Some(reply),
                                        stored: Some(stored.clone()),
                                    });
                                }
                                None => {
                                    let _ = reply.send(Ok((String::new(), "duplicate")));
                                }
                            }
                        }
                    }
                    Err(e) => {
                        drop(rows);
                        for (_, _, _, (reply, _)) in staged {
                            let _ = reply.send(Err(format!("could not store the message: {e}")));
                        }
                    }
                }
            }
            SessionsMsg::Abort { key, run_id, reply } => match state.live.get(&key) {
                Some(s) => {
                    let _ = s.cast(SessionMsg::Abort { run_id, reply });
                }
                None => {
                    let _ = reply.send(false);
                }
            },
            SessionsMsg::Wait { key, run_id, reply } => match state.session(&myself, &key).await {
                Ok(s) => {
                    let _ = s.cast(SessionMsg::Wait { run_id, reply });
                }
                Err(e) => {
                    let _ = reply.send(RunSummary {
                        run_id,
                        session_key: key,
                        status: "error".into(),
                        text: String::new(),
                        error: Some(e),
                        usage: Usage::default(),
                        model: None,
                        model_ms: 0.0,
                    });
                }
            },
            SessionsMsg::Reset { key, delete, reply } => {
                if let Some(s) = state.live.remove(&key) {
                    let _ = s
                        .stop_and_wait(Some("reset".into()), Some(Duration::from_secs(5)))
                        .await;
                }
                let store = &state.shared.store;
                let result = if delete {
                    store.delete_session(&key).map_err(|e| e.to_string())
                } else {
                    match store.session::<SessionMeta>(&key) {
                        Ok(Some(meta)) => archive(store, meta, &[], "sessions.reset").map(|_| true),
                        Ok(None) => Ok(false),
                        Err(e) => Err(e.to_string()),
                    }
                };
                let _ = reply.send(result);
            }
            SessionsMsg::Idle { key } => {
                if let Some(s) = state.live.get(&key).cloned() {
                    pause(state, &key, s).await;
                }
            }
            SessionsMsg::MainKey { agent, reply } => {
                let agent = agent.unwrap_or_else(|| state.shared.default_agent.clone());
                let _ = reply.send(format!("agent:{agent}:{}", state.shared.main_key));
            }
            SessionsMsg::Live { reply } => {
                let _ = reply.send(state.live.keys().cloned().collect());
            }
            SessionsMsg::Patch { key, label, reply } => match state.live.get(&key) {
                Some(s) => {
                    let _ = s.cast(SessionMsg::Patch { label, reply });
                }
                None => {
                    let store = &state.shared.store;
                    let result = match store.session::<SessionMeta>(&key) {
                        Ok(Some(mut meta)) => {
                            meta.label = label;
                            store
                                .append_turn::<_, Entry>(&key, &meta, &[])
                                .map(|_| meta)
                                .map_err(|e| e.to_string())
                        }
                        Ok(None) => Err(format!("no session {key:?}")),
                        Err(e) => Err(e.to_string()),
                    };
                    let _ = reply.send(result);
                }
            },
            SessionsMsg::Resume { key, reply } => {
                let _ = reply.send(state.session(&myself, &key).await.map(|_| ()));
            }
            SessionsMsg::Deliver { key, seq, pending } => {
                match state.session(&myself, &key).await {
                    Ok(s) => {
                        let _ = s.cast(SessionMsg::Enqueue {
                            seq,
                            pending: *pending,
                            stream: None,
                            reply: None,
                            stored: None,
                        });
                    }
                    // It stays in the inbox: the next start of that session answers it.
                    Err(e) => {
                        warn!(session = %key, error = %e, "could not hand over a delegated message")
                    }
                }
            }
            SessionsMsg::ArchiveLater { key, after } => {
                myself.send_after(after, move || SessionsMsg::Archive { key });
            }
            SessionsMsg::Archive { key } => {
                archive_subagent(state, &myself, &key).await;
            }
            SessionsMsg::Pause { key, reply } => {
                let paused = match state.live.get(&key).cloned() {
                    Some(s) => pause(state, &key, s).await,
                    None => false,
                };
                let _ = reply.send(paused);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SessionsMsg>,
        evt: SupervisionEvent,
        state: &mut SessionsState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, failure) = match &evt {
            SupervisionEvent::ActorFailed(cell, e) => (cell.clone(), Some(e.to_string())),
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell.clone(), None),
            _ => return Ok(()),
        };
        let Some(key) = state
            .live
            .iter()
            .find(|(_, r)| r.get_id() == cell.get_id())
            .map(|(k, _)| k.clone())
        else {
            return Ok(());
        };
        state.live.remove(&key);
        let Some(reason) = failure else {
            return Ok(());
        };
        let now = tokio::time::Instant::now();
        let entry = state.restarts.entry(key.clone()).or_insert((now, 0));
        if now.duration_since(entry.0) > Duration::from_secs(60) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 > MAX_SESSION_RESTARTS {
            warn!(session = %key, %reason, "session keeps crashing; left stopped until the next message or start");
            abandon_delegated(state, &key, &reason);
            return Ok(());
        }
        warn!(session = %key, %reason, "session crashed; restarting it from the store");
        if let Err(e) = state.session(&myself, &key).await {
            warn!(session = %key, error = %e, "could not restart the session");
        }
        Ok(())
    }
}

/// The token a heartbeat turn answers when nothing needs the user's attention.
pub const HEARTBEAT_OK: &str = "HEARTBEAT_OK";

/// Whether a heartbeat's reply is an acknowledgement to swallow: `HEARTBEAT_OK` at its
/// start or end, with at most `max_chars` characters of anything else.
pub fn is_heartbeat_ack(text: &str, max_chars: usize) -> bool {
    let t = text.trim();
    let rest = if let Some(r) = t.strip_prefix(HEARTBEAT_OK) {
        r
    } else if let Some(r) = t.strip_suffix(HEARTBEAT_OK) {
        r
    } else {
        return false;
    };
    rest.trim().chars().count() <= max_chars
}

/// What a chat is sent for a turn: its text, or what went wrong (nothing when it was
/// aborted or said nothing).
fn chat_reply(text: &str, error: Option<&str>) -> Option<String> {
    match error {
        Some("aborted") => None,
        Some(e) => Some(format!("⚠️ {e}")),
        None if text.trim().is_empty() => None,
        None => Some(text.to_owned()),
    }
}

#[allow(clippy::large_enum_variant)]
pub enum SessionMsg {
    Enqueue {
        seq: u64,
        pending: Pending,
        stream: Option<TextStream>,
        /// Answered once the message is durable (started or queued), or with the error.
        reply: Option<RpcReplyPort<Result<(String, &'static str), String>>>,
        /// The commit that makes the message durable, when it is still on its way.
        stored: Option<crate::store::Durable>,
    },
    /// Progress from the running turn.
    Progress {
        run_id: String,
        event: TurnEvent,
    },
    /// The turn finished (the RunActor sends this, then stops).
    Finished {
        run_id: String,
        output: Box<TurnOutput>,
    },
    Abort {
        run_id: Option<String>,
        reply: RpcReplyPort<bool>,
    },
    Wait {
        run_id: String,
        reply: RpcReplyPort<RunSummary>,
    },
    IsBusy {
        reply: RpcReplyPort<bool>,
    },
    Patch {
        label: Option<String>,
        reply: RpcReplyPort<Result<SessionMeta, String>>,
    },
    /// The idle timer fired: pause when nothing happened since `generation`.
    Idle {
        generation: u64,
    },
    /// Asked by the Sessions actor before it stops this one: records PAUSED and answers
    /// true when the session is idle (false, and nothing changes, when it is busy).
    Pause {
        reply: RpcReplyPort<bool>,
    },
}

pub struct SessionActor;

pub struct SessionArgs {
    key: String,
    agent_id: String,
    shared: Arc<Shared>,
    sessions: ActorRef<SessionsMsg>,
}

struct Running {
    run_id: String,
    seq: u64,
    /// What the turn answers: the first message, with the text of any collected ones.
    pending: Pending,
    /// The inbox messages this turn answers (the first, then those collected into it).
    parts: Vec<(u64, Pending)>,
    actor: ActorRef<RunMsg>,
    /// Chat event sequence of this run.
    event_seq: u64,
    aborted: bool,
    /// When the run started (ms since the epoch), for the lifecycle events.
    started_at: u64,
}

pub struct SessionState {
    key: String,
    agent: Arc<AgentRuntime>,
    shared: Arc<Shared>,
    meta: SessionMeta,
    /// The hot layer: recent messages sent to the model.
    history: VecDeque<Message>,
    queue: VecDeque<(u64, Pending)>,
    running: Option<Running>,
    waiters: HashMap<String, Vec<RpcReplyPort<RunSummary>>>,
    finished: VecDeque<RunSummary>,
    /// Bumped by every message; the idle timer only pauses an unchanged session.
    generation: u64,
    /// Callers streaming a run's text (the OpenAI-compatible endpoint).
    streams: HashMap<String, TextStream>,
    /// The Sessions actor (asked to pause this session when it is idle).
    sessions: ActorRef<SessionsMsg>,
    /// Whether the store has this session's metadata row (a brand-new session is written
    /// with its first turn, not before).
    persisted: bool,
    /// Lifecycle transitions not yet written (those of a session not yet persisted).
    transitions: Vec<Transition>,
    /// The message being enqueued, while its durable commit is in flight.
    unstored: Option<(u64, crate::store::Durable)>,
}

impl Actor for SessionActor {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = SessionArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<SessionMsg>,
        args: SessionArgs,
    ) -> Result<SessionState, ActorProcessingErr> {
        let agent = args
            .shared
            .agents
            .runtime(&args.agent_id)
            .ok_or_else(|| format!("agent {} is not configured", args.agent_id))?;
        let store = &args.shared.store;
        let now = now_ms();
        let stored = store.session::<SessionMeta>(&args.key)?;
        let persisted = stored.is_some();
        let mut meta = stored.unwrap_or_else(|| fresh_meta(&args.key, &args.agent_id, now));
        // PAUSED -> RESUMING -> ACTIVE; a session that stopped without pausing (a crash, a
        // gateway restart) is recovered the same way.
        let (events, reason): (&[Event], &str) = match meta.phase {
            Phase::Created => (&[Event::Activate], "started"),
            Phase::Paused => (&[Event::Resume, Event::Activate], "resumed"),
            Phase::Active | Phase::Resuming => {
                (&[Event::Recover, Event::Activate], "recovered after a stop")
            }
            Phase::Closing | Phase::Closed => {
                meta = fresh_meta(&args.key, &args.agent_id, now);
                (&[Event::Activate], "started after a reset")
            }
        };
        let (phase, transitions) = lifecycle::walk(meta.phase, events, now, reason)?;
        meta.phase = phase;
        let keep = agent.spec.history_turns.max(1) * 8;
        let history: VecDeque<Message> = store
            .transcript::<Entry>(&args.key, Some(keep))?
            .into_iter()
            .filter_map(|(_, e)| e.to_message())
            .collect();
        let history = trim_to_turn_start(history);
        let queue: VecDeque<(u64, Pending)> = store.inbox::<Pending>(&args.key)?.into();
        Ok(SessionState {
            key: args.key,
            agent,
            shared: args.shared,
            meta,
            history,
            queue,
            running: None,
            waiters: HashMap::new(),
            finished: VecDeque::new(),
            generation: 0,
            streams: HashMap::new(),
            sessions: args.sessions,
            persisted,
            transitions,
            unstored: None,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<SessionMsg>,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        myself.send_after(IDLE_PAUSE, || SessionMsg::Idle { generation: 0 });
        if state.persisted {
            let t = std::mem::take(&mut state.transitions);
            if let Err(e) =
                state
                    .shared
                    .store
                    .record_lifecycle(&state.key, Some(&state.meta), &t, false)
            {
                warn!(session = %state.key, error = %e, "could not record the session's lifecycle");
            }
        }
        state.start_next(&myself).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SessionMsg>,
        msg: SessionMsg,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(
            msg,
            SessionMsg::Idle { .. } | SessionMsg::IsBusy { .. } | SessionMsg::Pause { .. }
        ) {
            state.generation += 1;
            let generation = state.generation;
            myself.send_after(IDLE_PAUSE, move || SessionMsg::Idle { generation });
        }
        match msg {
            SessionMsg::Patch { label, reply } => {
                state.meta.label = label;
                let result = state
                    .shared
                    .store
                    .append_turn::<_, Entry>(&state.key, &state.meta, &[])
                    .map(|_| state.meta.clone())
                    .map_err(|e| e.to_string());
                let _ = reply.send(result);
            }
            SessionMsg::IsBusy { reply } => {
                let _ = reply.send(state.running.is_some() || !state.queue.is_empty());
            }
            SessionMsg::Idle { generation } => {
                if generation == state.generation && state.idle() {
                    let _ = state.sessions.cast(SessionsMsg::Idle {
                        key: state.key.clone(),
                    });
                }
            }
            SessionMsg::Pause { reply } => {
                if !state.idle() {
                    let _ = reply.send(false);
                    return Ok(());
                }
                match lifecycle::walk(state.meta.phase, &[Event::Pause], now_ms(), "idle") {
                    Ok((phase, t)) => {
                        state.meta.phase = phase;
                        state.transitions.extend(t);
                        if state.persisted {
                            let t = std::mem::take(&mut state.transitions);
                            if let Err(e) = state.shared.store.record_lifecycle(
                                &state.key,
                                Some(&state.meta),
                                &t,
                                false,
                            ) {
                                warn!(session = %state.key, error = %e, "could not record the pause");
                            }
                        }
                        let _ = reply.send(true);
                    }
                    Err(e) => {
                        warn!(session = %state.key, error = %e, "not pausing");
                        let _ = reply.send(false);
                    }
                }
            }
            SessionMsg::Enqueue {
                seq,
                pending,
                stream,
                reply,
                stored,
            } => {
                let run_id = pending.run_id.clone();
                if let Some(tx) = stream {
                    state.streams.insert(run_id.clone(), tx);
                }
                let busy = state.running.is_some() || !state.queue.is_empty();
                if !state.queue.iter().any(|(s, _)| *s == seq)
                    && state.running.as_ref().is_none_or(|r| r.seq != seq)
                {
                    state.queue.push_back((seq, pending));
                }
                // The turn starts while the message reaches the disk (its tools wait).
                state.unstored = stored.clone().map(|d| (seq, d));
                state.start_next(&myself).await;
                state.unstored = None;
                if let Some(stored) = stored
                    && let Err(e) = stored.wait().await
                {
                    // Never acknowledged, so never answered either.
                    warn!(session = %state.key, error = %e, "a message could not be stored");
                    state.queue.retain(|(s, _)| *s != seq);
                    if let Some(r) = state
                        .running
                        .as_mut()
                        .filter(|r| r.parts.iter().any(|(s, _)| *s == seq))
                    {
                        r.aborted = true;
                        r.actor.kill();
                    }
                    state.streams.remove(&run_id);
                    let _ = state.shared.store.inbox_remove(&state.key, &[seq]);
                    if let Some(r) = reply {
                        let _ = r.send(Err(format!("could not store the message: {e}")));
                    }
                    return Ok(());
                }
                if let Some(r) = reply {
                    let _ = r.send(Ok((run_id, if busy { "queued" } else { "started" })));
                }
            }
            SessionMsg::Progress { run_id, event } => state.on_progress(&run_id, event),
            SessionMsg::Finished { run_id, output } => {
                if state.running.as_ref().is_some_and(|r| r.run_id == run_id) {
                    let running = state.running.take().expect("checked");
                    state.finish(running, *output).await;
                    state.start_next(&myself).await;
                }
            }
            SessionMsg::Abort { run_id, reply } => {
                let hit = state
                    .running
                    .as_mut()
                    .filter(|r| run_id.as_deref().is_none_or(|id| id == r.run_id));
                match hit {
                    Some(r) => {
                        r.aborted = true;
                        r.actor.kill();
                        let _ = reply.send(true);
                    }
                    None => {
                        let _ = reply.send(false);
                    }
                }
            }
            SessionMsg::Wait { run_id, reply } => {
                if let Some(done) = state.finished.iter().find(|s| s.run_id == run_id) {
                    let _ = reply.send(done.clone());
                } else {
                    state.waiters.entry(run_id).or_default().push(reply);
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SessionMsg>,
        evt: SupervisionEvent,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        // Only the running RunActor is linked here.
        let (cell, reason) = match &evt {
            SupervisionEvent::ActorFailed(cell, e) => (cell.clone(), Some(e.to_string())),
            SupervisionEvent::ActorTerminated(cell, _, r) => (cell.clone(), r.clone()),
            _ => return Ok(()),
        };
        let failed = matches!(evt, SupervisionEvent::ActorFailed(..)) || reason.is_some();
        // A run that stopped normally has sent `Finished` (supervision events can arrive
        // before it): only a crash, a kill or an abort is handled here.
        let Some(running) = state
            .running
            .take_if(|r| r.actor.get_id() == cell.get_id() && (failed || r.aborted))
        else {
            return Ok(());
        };
        if running.aborted {
            let out = TurnOutput {
                error: Some("aborted".into()),
                ..Default::default()
            };
            state.finish(running, out).await;
        } else {
            // The run crashed (or was killed) mid-turn: its message is still in the
            // inbox. Retry once, then fail visibly.
            let reason = reason.unwrap_or_else(|| "stopped".into());
            if running.pending.attempts < 1 {
                warn!(session = %state.key, run_id = %running.run_id, %reason, "run crashed mid-turn; retrying it");
                for (seq, mut p) in running.parts.iter().cloned().rev() {
                    p.attempts += 1;
                    state.queue.push_front((seq, p));
                }
            } else {
                let out = TurnOutput {
                    error: Some(format!(
                        "the turn failed twice ({reason}); the message was not answered, send it again"
                    )),
                    ..Default::default()
                };
                state.finish(running, out).await;
            }
        }
        state.start_next(&myself).await;
        Ok(())
    }
}

/// Where a turn's reply goes: the origin of each chat among its messages (the first
/// message of each chat, which the reply answers), in order.
fn reply_origins(parts: &[(u64, Pending)]) -> Vec<ChannelOrigin> {
    let mut out: Vec<ChannelOrigin> = Vec::new();
    for o in parts.iter().filter_map(|(_, p)| p.origin.as_ref()) {
        if !out.iter().any(|x| {
            x.channel == o.channel && x.account == o.account && x.to == o.to && x.thread == o.thread
        }) {
            out.push(o.clone());
        }
    }
    out
}

/// The delegations among a turn's messages.
fn delegations(parts: &[(u64, Pending)]) -> Vec<delegation::Delegation> {
    parts
        .iter()
        .filter_map(|(_, p)| p.delegation.clone())
        .collect()
}

/// Drops leading tool results and assistant tool calls whose turn start was cut off by
/// the history window, so the model always sees whole exchanges.
fn trim_to_turn_start(mut h: VecDeque<Message>) -> VecDeque<Message> {
    while h
        .front()
        .is_some_and(|m| !matches!(m, Message::User { .. }))
    {
        h.pop_front();
    }
    h
}

fn fresh_meta(key: &str, agent_id: &str, now: u64) -> SessionMeta {
    SessionMeta {
        key: key.to_owned(),
        agent_id: agent_id.to_owned(),
        created_at: now,
        updated_at: now,
        ..Default::default()
    }
}

impl SessionState {
    /// After a delegated turn is on disk: the audit log, the in-flight count, and the
    /// sub-agent session's archiving.
    fn delegated_done(&self, delegations: &[delegation::Delegation], out: &TurnOutput) {
        use delegation::DelegationKind;
        for d in delegations {
            let (kind, outcome) = match &d.kind {
                DelegationKind::Result => continue,
                DelegationKind::Spawn { .. } => {
                    self.shared.delegator.landed(&d.correlation_id);
                    let _ = self.sessions.cast(SessionsMsg::ArchiveLater {
                        key: self.key.clone(),
                        after: self.agent.spec.subagents.archive_after,
                    });
                    let skipped =
                        out.error.is_none() && out.text.trim() == delegation::ANNOUNCE_SKIP;
                    (
                        "delegation.result",
                        if skipped {
                            "skipped"
                        } else {
                            delegation::outcome(out.error.as_deref())
                        },
                    )
                }
                DelegationKind::Send { .. } => {
                    ("agent.reply", delegation::outcome(out.error.as_deref()))
                }
            };
            let rec = crate::audit::AuditRecord {
                ts: now_ms(),
                kind: kind.into(),
                actor: self.key.clone(),
                target: Some(d.requester.clone()),
                agents: vec![
                    self.agent.spec.id.clone(),
                    agent_of(&d.requester)
                        .unwrap_or(&self.shared.default_agent)
                        .to_owned(),
                ],
                correlation_id: Some(d.correlation_id.clone()),
                outcome: outcome.into(),
                detail: json!({"error": out.error, "usage": out.usage}),
            };
            if let Err(e) = self.shared.store.audit_append(&rec) {
                warn!(session = %self.key, error = %e, "could not write the audit record");
            }
        }
    }

    fn idle(&self) -> bool {
        self.running.is_none() && self.queue.is_empty() && self.waiters.is_empty()
    }

    /// Closes this session and starts a fresh one under the same key: the transcript is
    /// archived, the hot context dropped; `seqs` are inbox rows this answers.
    fn start_afresh(&mut self, reason: &str, seqs: &[u64]) -> Result<(), String> {
        let now = now_ms();
        if !self.persisted {
            // Nothing was written yet: nothing to archive.
            self.shared
                .store
                .inbox_remove(&self.key, seqs)
                .map_err(|e| e.to_string())?;
        } else {
            let earlier = std::mem::take(&mut self.transitions);
            let (phase, closing) =
                lifecycle::walk(self.meta.phase, &[Event::Close, Event::Finish], now, reason)
                    .map_err(|e| e.to_string())?;
            let mut all = earlier;
            all.extend(closing);
            let mut old = self.meta.clone();
            old.phase = phase;
            self.shared
                .store
                .archive_session(&self.key, now, &old, seqs, &all)
                .map_err(|e| e.to_string())?;
            info!(session = %self.key, %reason, turns = old.turns, "session reset; transcript archived");
        }
        self.meta = fresh_meta(&self.key, &self.agent.spec.id, now);
        let (phase, t) = lifecycle::walk(Phase::Created, &[Event::Activate], now, reason)
            .map_err(|e| e.to_string())?;
        self.meta.phase = phase;
        self.transitions = t;
        self.persisted = false;
        self.history.clear();
        Ok(())
    }

    /// Answers a message without a turn (a reset command): waiters, streams and a final
    /// chat event, as a run would.
    /// Hands new outbox rows to the channels.
    fn deliver(&self, ids: &[u64], origin: &ChannelOrigin) {
        if let Some(d) = &self.shared.deliver {
            for id in ids {
                d(*id, origin);
            }
        }
    }

    fn answer_directly(&mut self, pending: &Pending, text: String, error: Option<String>) {
        if let Some(o) = &pending.origin
            && let Some(reply) = chat_reply(&text, error.as_deref())
        {
            let row = OutboxRow::new(o.clone(), reply, &self.key, &pending.run_id);
            match self.shared.store.outbox_push(&row) {
                Ok(id) => self.deliver(&[id], o),
                Err(e) => warn!(session = %self.key, error = %e, "could not queue a reply"),
            }
        }
        let summary = RunSummary {
            run_id: pending.run_id.clone(),
            session_key: self.key.clone(),
            status: if error.is_some() { "error" } else { "ok" }.into(),
            text,
            error,
            usage: Usage::default(),
            model: None,
            model_ms: 0.0,
        };
        if let Some(tx) = self.streams.remove(&pending.run_id)
            && !summary.text.is_empty()
        {
            let _ = tx.send(summary.text.clone());
        }
        for w in self.waiters.remove(&pending.run_id).unwrap_or_default() {
            let _ = w.send(summary.clone());
        }
        let now = now_ms();
        self.emit_lifecycle(
            &summary.run_id,
            1,
            json!({"phase": "start", "startedAt": now}),
        );
        let mut data = json!({
            "phase": if summary.error.is_some() { "error" } else { "end" },
            "startedAt": now, "endedAt": now, "aborted": false,
        });
        if let Some(e) = &summary.error {
            data["error"] = json!(e);
        }
        self.emit_lifecycle(&summary.run_id, 2, data);
        self.emit_final(&summary, 3);
        self.finished.push_back(summary);
        while self.finished.len() > 32 {
            self.finished.pop_front();
        }
    }

    fn emit_chat(&self, payload: Value) {
        (self.shared.events)("chat", payload);
    }

    async fn start_next(&mut self, myself: &ActorRef<SessionMsg>) {
        if self.running.is_some() {
            return;
        }
        let (seq, first) = loop {
            let Some((seq, mut first)) = self.queue.pop_front() else {
                return;
            };
            if first.compact {
                break (seq, first);
            }
            // `/new` and `/reset` start a fresh session; with more text, the rest is the
            // fresh session's first message.
            if let Some(rest) = self.shared.reset.trigger(&first.text).map(str::to_owned) {
                let answered: &[u64] = if rest.is_empty() { &[seq] } else { &[] };
                let result = self.start_afresh(first.text.trim(), answered);
                if rest.is_empty() || result.is_err() {
                    let (text, error) = match result {
                        Ok(()) => ("Started a new session.".to_owned(), None),
                        Err(e) => (
                            String::new(),
                            Some(format!("could not reset the session: {e}")),
                        ),
                    };
                    self.answer_directly(&first, text, error);
                    continue;
                }
                first.text = rest;
            } else if self.meta.turns > 0
                && let Some(reason) = self.shared.reset.stale(
                    self.meta.updated_at,
                    now_ms(),
                    lifecycle::local_utc_offset_s(),
                )
                && let Err(e) = self.start_afresh(&reason, &[])
            {
                warn!(session = %self.key, error = %e, "could not reset a stale session; going on with it");
            }
            break (seq, first);
        };
        // Messages that arrived during the previous turn are answered together.
        let mut parts = vec![(seq, first.clone())];
        if self.shared.collect && !first.compact {
            while let Some((s, p)) = self.queue.pop_front() {
                if p.compact || self.shared.reset.trigger(&p.text).is_some() {
                    self.queue.push_front((s, p));
                    break;
                }
                parts.push((s, p));
            }
        }
        // The agent's current settings (a reconfigured agent applies from the next turn).
        if let Some(rt) = self.shared.agents.runtime(&self.agent.spec.id) {
            self.agent = rt;
        }
        let mut pending = first;
        // The reply goes to the chat of the latest message that came from one.
        pending.origin = parts.iter().rev().find_map(|(_, p)| p.origin.clone());
        if parts.len() > 1 {
            pending.text = parts
                .iter()
                .map(|(_, p)| p.text.as_str())
                .collect::<Vec<_>>()
                .join("\n\n");
        }
        // A sub-agent's task sets how deep in spawns this session is.
        if let Some(d) = parts.iter().find_map(|(_, p)| {
            p.delegation
                .as_ref()
                .filter(|d| matches!(d.kind, delegation::DelegationKind::Spawn { .. }))
        }) {
            self.meta.spawn_depth = d.depth;
        }
        let main_session = keys::is_main(&self.key, &self.agent.spec.id, &self.shared.main_key);
        let prompt = prompt::assemble(PromptInput {
            agent_id: &self.agent.spec.id,
            agent_name: &self.agent.spec.name,
            workspace: &self.agent.spec.workspace,
            main_session,
            bootstrap_max_chars: self.agent.spec.bootstrap_max_chars,
            tools: Vec::new(),
            now: &format_now(),
        });
        let input = TurnInput {
            session_key: self.key.clone(),
            history: self.history.iter().cloned().collect(),
            message: pending.text.clone(),
            system: prompt.system,
            thinking: pending.thinking,
            summary: self.meta.summary.clone(),
            mode: pending
                .mode
                .as_deref()
                .and_then(crate::agent::config::Mode::parse),
            compact: if pending.compact {
                crate::agent::run::Compact::Only
            } else {
                crate::agent::run::Compact::Auto
            },
            stored: self
                .unstored
                .as_ref()
                .filter(|(seq, _)| parts.iter().any(|(s, _)| s == seq))
                .map(|(_, d)| d.clone()),
            models: None,
            sessions: Some(crate::agent::tools::sessions::SessionsCtx {
                tools: Arc::new(self.shared.delegator.clone()),
                caller: crate::agent::tools::sessions::Caller {
                    session_key: self.key.clone(),
                    agent_id: self.agent.spec.id.clone(),
                    run_id: pending.run_id.clone(),
                    origin: pending
                        .origin
                        .clone()
                        .or_else(|| self.meta.last_origin.clone()),
                    depth: self.meta.spawn_depth,
                },
            }),
        };
        let args = RunArgs {
            run_id: pending.run_id.clone(),
            agent: self.agent.clone(),
            agents: self.shared.agents.clone(),
            priority: pending.priority,
            model: pending.model.clone(),
            deadline_ms: pending.deadline_ms,
            input: std::sync::Mutex::new(Some(input)),
            session: myself.clone(),
        };
        let actor = Injectable {
            inner: RunActor,
            name: "run".into(),
            faults: self.shared.faults.clone(),
        };
        match Actor::spawn_linked(None, actor, args, myself.get_cell()).await {
            Ok((r, _)) => {
                let started_at = now_ms();
                // OpenClaw's run lifecycle: clients show a run as busy from here (the
                // messages collected into this turn too: they get its answer).
                for run_id in std::iter::once(&pending.run_id)
                    .chain(parts.iter().skip(1).map(|(_, p)| &p.run_id))
                {
                    self.emit_lifecycle(
                        run_id,
                        1,
                        json!({"phase": "start", "startedAt": started_at}),
                    );
                }
                self.running = Some(Running {
                    run_id: pending.run_id.clone(),
                    seq,
                    pending,
                    parts,
                    actor: r,
                    event_seq: 1,
                    aborted: false,
                    started_at,
                });
            }
            Err(e) => {
                warn!(session = %self.key, error = %e, "could not start a run");
                let out = TurnOutput {
                    error: Some(format!("could not start the turn: {e}")),
                    ..Default::default()
                };
                let seqs: Vec<u64> = parts.iter().map(|(s, _)| *s).collect();
                let origins = reply_origins(&parts);
                let delegations = delegations(&parts);
                self.record(&seqs, &pending, &origins, &delegations, out)
                    .await;
            }
        }
    }

    fn on_progress(&mut self, run_id: &str, event: TurnEvent) {
        let Some(r) = self.running.as_mut().filter(|r| r.run_id == run_id) else {
            return;
        };
        r.event_seq += 1;
        let seq = r.event_seq;
        let key = self.key.clone();
        match event {
            TurnEvent::Text(text) => {
                if let Some(tx) = self.streams.get(run_id) {
                    let _ = tx.send(text.clone());
                }
                self.emit_chat(json!({
                "runId": run_id, "sessionKey": key, "seq": seq, "state": "delta",
                "message": {"role": "assistant", "content": [{"type": "text", "text": text}], "timestamp": now_ms()},
                }))
            }
            other => {
                let (stream, data) = match other {
                    TurnEvent::Thinking(t) => ("thinking", json!({"text": t})),
                    TurnEvent::ToolStarted {
                        id,
                        name,
                        arguments,
                    } => (
                        "tool",
                        json!({"phase": "start", "toolCallId": id, "name": name, "args": arguments}),
                    ),
                    TurnEvent::ToolFinished {
                        id,
                        name,
                        content,
                        is_error,
                    } => (
                        "tool",
                        json!({"phase": "result", "toolCallId": id, "name": name, "result": content, "isError": is_error}),
                    ),
                    TurnEvent::Failover { layer, detail } => (
                        "lifecycle",
                        json!({"phase": "failover", "layer": layer, "detail": detail}),
                    ),
                    TurnEvent::Text(_) => unreachable!("handled above"),
                };
                (self.shared.events)(
                    "agent",
                    json!({"runId": run_id, "sessionKey": key, "seq": seq, "stream": stream, "ts": now_ms(), "data": data}),
                );
            }
        }
    }

    async fn finish(&mut self, running: Running, out: TurnOutput) {
        let event_seq = running.event_seq + 2;
        let seqs: Vec<u64> = running.parts.iter().map(|(s, _)| *s).collect();
        let origins = reply_origins(&running.parts);
        let delegations = delegations(&running.parts);
        let summary = self
            .record(&seqs, &running.pending, &origins, &delegations, out)
            .await;
        // Messages collected into this turn get the same answer under their own run ids.
        let mut summaries = vec![summary.clone()];
        for (_, p) in running.parts.iter().skip(1) {
            let s = RunSummary {
                run_id: p.run_id.clone(),
                ..summary.clone()
            };
            for w in self.waiters.remove(&p.run_id).unwrap_or_default() {
                let _ = w.send(s.clone());
            }
            self.streams.remove(&p.run_id);
            self.finished.push_back(s.clone());
            summaries.push(s);
        }
        let ended_at = now_ms();
        for summary in summaries {
            let mut data = json!({
                "phase": if summary.status == "error" { "error" } else { "end" },
                "startedAt": running.started_at, "endedAt": ended_at,
                "aborted": summary.status == "aborted",
            });
            if let Some(e) = &summary.error {
                data["error"] = json!(e);
            }
            self.emit_lifecycle(&summary.run_id, event_seq - 1, data);
            self.emit_final(&summary, event_seq);
        }
    }

    /// An `agent` event on the `lifecycle` stream (`phase` start | end | error | failover).
    fn emit_lifecycle(&self, run_id: &str, seq: u64, data: Value) {
        (self.shared.events)(
            "agent",
            json!({"runId": run_id, "sessionKey": self.key, "seq": seq, "stream": "lifecycle", "ts": now_ms(), "data": data}),
        );
    }

    fn emit_final(&self, summary: &RunSummary, event_seq: u64) {
        let state = match summary.status.as_str() {
            "ok" => "final",
            "aborted" => "aborted",
            _ => "error",
        };
        let mut payload = json!({
            "runId": summary.run_id, "sessionKey": self.key, "seq": event_seq, "state": state,
            "usage": summary.usage,
        });
        if state == "final" {
            payload["message"] = json!({"role": "assistant", "content": [{"type": "text", "text": summary.text}], "timestamp": now_ms()});
            payload["stopReason"] = json!("end");
        } else if let Some(e) = &summary.error {
            payload["errorMessage"] = json!(e);
        }
        self.emit_chat(payload);
    }

    /// Appends the turn to the transcript and clears its inbox row in one durable commit,
    /// then answers. The commit is shared with other sessions' turns ending meanwhile
    /// (`Store::complete_turn_shared`): an inline one would block this tokio worker, and
    /// every actor on it, for the fsync.
    async fn record(
        &mut self,
        seqs: &[u64],
        pending: &Pending,
        origins: &[ChannelOrigin],
        delegations: &[delegation::Delegation],
        out: TurnOutput,
    ) -> RunSummary {
        let now = now_ms();
        let run_id = pending.run_id.clone();
        let aborted = out.error.as_deref() == Some("aborted");
        let mut entries = Vec::new();
        if let Some((summary, n)) = &out.compacted {
            // The cold layer: the summary replaces the oldest hot messages.
            let n = (*n).min(self.history.len());
            self.history.drain(..n);
            self.meta.summary = Some(summary.clone());
            self.meta.compactions += 1;
            entries.push(Entry::new(
                "summary",
                summary.clone(),
                now,
                Some(run_id.clone()),
            ));
        }
        let mut msgs = Vec::new();
        if !pending.compact {
            entries.push(Entry::from_message(
                &Message::User {
                    content: pending.text.clone(),
                },
                pending.received_at,
                &run_id,
            ));
            msgs.push(Message::User {
                content: pending.text.clone(),
            });
        }
        for m in &out.messages {
            entries.push(Entry::from_message(m, now, &run_id));
            msgs.push(m.clone());
        }
        if let Some(last) = entries.iter_mut().rev().find(|e| e.role == "assistant") {
            last.usage = Some(out.usage);
            last.model = out.model.clone();
        }
        if let Some(e) = &out.error {
            entries.push(Entry {
                is_error: true,
                ..Entry::new("error", e.clone(), now, Some(run_id.clone()))
            });
        }
        if !pending.compact {
            self.meta.turns += 1;
        }
        self.meta.updated_at = now;
        self.meta.usage += out.usage;
        if out.model.is_some() {
            self.meta.last_model = out.model.clone();
        }
        let transitions = std::mem::take(&mut self.transitions);
        // One reply per chat the turn answered: messages from several chats can share a
        // session (dmScope main) and be collected into one turn.
        // A heartbeat that found nothing to do stays out of the chat.
        let ack = pending
            .heartbeat_ack_max_chars
            .is_some_and(|max| out.error.is_none() && is_heartbeat_ack(&out.text, max));
        if let Some(o) = origins.last() {
            self.meta.last_origin = Some(o.clone());
        }
        let outbox: Vec<OutboxRow> = origins
            .iter()
            .filter(|_| !pending.compact && !ack)
            .filter_map(|o| {
                let text = chat_reply(&out.text, out.error.as_deref())?;
                Some(OutboxRow::new(o.clone(), text, &self.key, &run_id))
            })
            .collect();
        // A delegated message's result goes on (to the requester) in the same commit.
        let follow_ups: Vec<(String, Pending)> = if pending.compact {
            Vec::new()
        } else {
            delegations
                .iter()
                .filter_map(|d| {
                    delegation::follow_up(
                        &self.key,
                        &self.agent.spec.id,
                        d,
                        &out.text,
                        out.error.as_deref(),
                        pending.attempts,
                        now,
                    )
                })
                .collect()
        };
        let committed = self
            .shared
            .store
            .complete_turn_shared(
                self.key.clone(),
                seqs.to_vec(),
                self.meta.clone(),
                entries,
                transitions,
                outbox,
                follow_ups.clone(),
            )
            .await;
        match committed {
            // A reply leaves for its chat only once its turn is on disk: a crash before
            // that re-runs the turn instead of answering twice.
            Ok((_, ids, staged)) => {
                self.persisted = true;
                for (id, o) in ids.iter().zip(origins) {
                    self.deliver(&[*id], o);
                }
                for ((key, seq), (_, p)) in staged.into_iter().zip(follow_ups) {
                    let _ = self.sessions.cast(SessionsMsg::Deliver {
                        key,
                        seq,
                        pending: Box::new(p),
                    });
                }
                self.delegated_done(delegations, &out);
            }
            Err(e) => warn!(session = %self.key, error = %e, "could not record the turn"),
        }
        // The history keeps whole exchanges only: a failed turn leaves just the user's
        // message out, so the next turn does not see half a tool loop.
        if out.error.is_none() {
            self.history.extend(msgs);
            let max = self.agent.spec.history_turns.max(1) * 8;
            while self.history.len() > max {
                self.history.pop_front();
            }
            let h = std::mem::take(&mut self.history);
            self.history = trim_to_turn_start(h);
        }
        let summary = RunSummary {
            run_id: run_id.clone(),
            session_key: self.key.clone(),
            status: if aborted {
                "aborted".into()
            } else if out.error.is_some() {
                "error".into()
            } else {
                "ok".into()
            },
            model_ms: out.model_time.as_secs_f64() * 1e3,
            text: out.text,
            error: out.error,
            usage: out.usage,
            model: out.model,
        };
        self.streams.remove(&run_id);
        for w in self.waiters.remove(&run_id).unwrap_or_default() {
            let _ = w.send(summary.clone());
        }
        self.finished.push_back(summary.clone());
        while self.finished.len() > 32 {
            self.finished.pop_front();
        }
        summary
    }
}

fn format_now() -> String {
    let secs = now_ms() / 1000;
    let (d, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(d as i64);
    format!(
        "{y:04}-{m:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// How the error of a run aborted at its delegation's deadline starts.
pub const DEADLINE_EXCEEDED: &str = "deadline exceeded";

pub enum RunMsg {
    Start,
}

pub struct RunActor;

pub struct RunArgs {
    run_id: String,
    agent: Arc<AgentRuntime>,
    /// Where the turn asks its AgentActor for a slot (and the runtime to run on).
    agents: AgentDirectory,
    priority: Priority,
    /// `provider/model` for this turn only.
    model: Option<String>,
    /// Unix ms: the turn is aborted past it (a delegation's deadline).
    deadline_ms: Option<u64>,
    input: std::sync::Mutex<Option<TurnInput>>,
    session: ActorRef<SessionMsg>,
}

impl Actor for RunActor {
    type Msg = RunMsg;
    type State = RunArgs;
    type Arguments = RunArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RunMsg>,
        args: RunArgs,
    ) -> Result<RunArgs, ActorProcessingErr> {
        myself.cast(RunMsg::Start)?;
        Ok(args)
    }

    async fn handle(
        &self,
        myself: ActorRef<RunMsg>,
        _msg: RunMsg,
        state: &mut RunArgs,
    ) -> Result<(), ActorProcessingErr> {
        let Some(mut input) = state.input.lock().unwrap().take() else {
            return Ok(());
        };
        let bad_model = match state
            .model
            .as_deref()
            .map(crate::agent::config::ModelRef::parse)
        {
            Some(Ok(m)) => {
                input.models = Some(vec![m]);
                None
            }
            Some(Err(e)) => Some(format!("this turn's model {:?}: {e}", state.model)),
            None => None,
        };
        let session = state.session.clone();
        let run_id = state.run_id.clone();
        let emit = {
            let (session, run_id) = (session.clone(), run_id.clone());
            move |event: TurnEvent| {
                let _ = session.cast(SessionMsg::Progress {
                    run_id: run_id.clone(),
                    event,
                });
            }
        };
        let mut deadline = state.agent.spec.timeout;
        // A delegation's deadline, when it is sooner than the agent's own.
        let delegated = state
            .deadline_ms
            .map(|d| Duration::from_millis(d.saturating_sub(now_ms())));
        let by_delegation = delegated.is_some_and(|d| d < deadline);
        if let Some(d) = delegated {
            deadline = deadline.min(d);
        }
        // The wait for a slot counts toward the deadline: a turn stuck behind others ends
        // with the same clear error as a slow one.
        let (agents, id, priority) = (&state.agents, &state.agent.spec.id, state.priority);
        let admitted_turn = async {
            if let Some(e) = bad_model {
                return TurnOutput {
                    error: Some(e),
                    ..Default::default()
                };
            }
            match agents.admit(id, &run_id, priority).await {
                Ok(admission) => run_turn(&admission.runtime, input, &emit).await,
                Err(e) => TurnOutput {
                    error: Some(e),
                    ..Default::default()
                },
            }
        };
        let output = match tokio::time::timeout(deadline, admitted_turn).await {
            Ok(out) => out,
            Err(_) if by_delegation => TurnOutput {
                error: Some(format!(
                    "{DEADLINE_EXCEEDED}: the delegation's deadline passed after {:.1}s and the run was aborted",
                    deadline.as_secs_f64()
                )),
                ..Default::default()
            },
            Err(_) => TurnOutput {
                error: Some(format!(
                    "the turn took longer than its deadline of {}s (agents.defaults.timeoutSeconds)",
                    deadline.as_secs()
                )),
                ..Default::default()
            },
        };
        let _ = session.cast(SessionMsg::Finished {
            run_id,
            output: Box::new(output),
        });
        myself.stop(None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_collecting_several_chats_answers_each_chat_once() {
        let msg = |chat: &str, id: &str| Pending {
            run_id: id.into(),
            ..Pending::new(
                "hi".into(),
                Some(ChannelOrigin {
                    channel: "telegram".into(),
                    account: "a".into(),
                    to: chat.into(),
                    thread: None,
                    message_id: id.into(),
                }),
                0,
            )
        };
        let mut no_origin = msg("x", "r0");
        no_origin.origin = None;
        let parts = vec![
            (1, no_origin),
            (2, msg("1", "m1")),
            (3, msg("2", "m2")),
            (4, msg("1", "m3")),
        ];
        let to: Vec<(String, String)> = reply_origins(&parts)
            .into_iter()
            .map(|o| (o.to, o.message_id))
            .collect();
        assert_eq!(
            to,
            [("1".into(), "m1".into()), ("2".into(), "m2".into())],
            "one reply per chat, answering its first message"
        );
    }

    #[test]
    fn heartbeat_acks_are_recognised() {
        assert!(is_heartbeat_ack("HEARTBEAT_OK", 0));
        assert!(is_heartbeat_ack("  HEARTBEAT_OK\n", 0));
        assert!(is_heartbeat_ack("All quiet. HEARTBEAT_OK", 20));
        assert!(is_heartbeat_ack("HEARTBEAT_OK nothing due", 12));
        assert!(!is_heartbeat_ack("HEARTBEAT_OK nothing due", 5));
        assert!(!is_heartbeat_ack("Your flight leaves in 2 hours.", 300));
        assert!(!is_heartbeat_ack("I said HEARTBEAT_OK earlier, but", 300));
    }

    #[test]
    fn keys_name_their_agent_and_dates_format() {
        assert_eq!(agent_of("agent:main:main"), Some("main"));
        assert_eq!(agent_of("agent:coder:telegram:dm:42"), Some("coder"));
        assert_eq!(agent_of("hook:123"), None);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_416), (2025, 11, 24));
    }

    #[test]
    fn history_starts_at_a_user_message() {
        let h: VecDeque<Message> = vec![
            Message::Tool {
                call_id: "1".into(),
                name: "read".into(),
                content: "x".into(),
                is_error: false,
            },
            Message::User {
                content: "hi".into(),
            },
        ]
        .into();
        let t = trim_to_turn_start(h);
        assert_eq!(t.len(), 1);
    }
}
