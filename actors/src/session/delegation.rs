//! Agent-to-agent delegation: `sessions_spawn` runs a task in a specialist's sub-agent
//! session and announces its result back; `sessions_send` messages another session, with
//! reply-back ping-pong. Both are typed messages between SessionActors carrying a
//! correlation id, a priority and a deadline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use ractor::ActorRef;
use ractor::rpc::CallResult;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{info, warn};

use super::{Entry, Pending, RunSummary, SessionMeta, SessionsMsg, TurnOptions, agent_of};
use crate::agent::actor::AgentDirectory;
use crate::agent::config::AgentSpec;
use crate::agent::tools::sessions::{Caller, SessionTools};
use crate::audit::AuditRecord;
use crate::channels::ChannelOrigin;
use crate::gateway::now_ms;
use crate::store::Store;

/// What a delegated message carries besides its text: where its result goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delegation {
    pub correlation_id: String,
    /// The session that delegated: the result is announced (or the reply sent) there.
    pub requester: String,
    pub kind: DelegationKind,
    /// The chat the requester was answering: its answer to the announcement goes there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_origin: Option<ChannelOrigin>,
    /// How deep in spawns the receiving session is (1: a sub-agent of a top session).
    #[serde(default)]
    pub depth: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum DelegationKind {
    /// A `sessions_spawn` task: its result is announced to the requester.
    Spawn {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// A `sessions_send` message or a reply in its ping-pong: exchange `turn` of at most
    /// `max_turns`; the reply goes back to the requester unless it is `REPLY_SKIP`.
    Send { turn: u32, max_turns: u32 },
    /// An announcement or reply arriving in the requester: nothing goes back.
    Result,
}

/// A sub-agent's reply that announces nothing.
pub const ANNOUNCE_SKIP: &str = "ANNOUNCE_SKIP";
/// A reply that ends a `sessions_send` ping-pong.
pub const REPLY_SKIP: &str = "REPLY_SKIP";

/// How long `sessions_send` waits for the reply when the call does not say.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Carries out the session tools for every session: checks what the calling agent may
/// do, sends the typed messages, keeps the count of sub-agent runs in flight.
#[derive(Clone)]
pub struct Delegator(Arc<Inner>);

struct Inner {
    sessions: ActorRef<SessionsMsg>,
    store: Store,
    agents: AgentDirectory,
    default_agent: String,
    main_key: String,
    /// Sub-agent runs spawned and not yet announced: correlation id -> child session.
    in_flight: Mutex<HashMap<String, String>>,
}

impl Delegator {
    pub fn new(
        sessions: ActorRef<SessionsMsg>,
        store: Store,
        agents: AgentDirectory,
        default_agent: String,
        main_key: String,
    ) -> Self {
        Delegator(Arc::new(Inner {
            sessions,
            store,
            agents,
            default_agent,
            main_key,
            in_flight: Mutex::new(HashMap::new()),
        }))
    }

    /// A spawned run announced its result (or ended without announcing).
    pub fn landed(&self, correlation_id: &str) {
        self.0.in_flight.lock().unwrap().remove(correlation_id);
    }

    /// The Sessions actor it sends through.
    pub fn sessions(&self) -> &ActorRef<SessionsMsg> {
        &self.0.sessions
    }
}

impl SessionTools for Delegator {
    fn call(
        &self,
        caller: Caller,
        tool: &'static str,
        args: Value,
    ) -> BoxFuture<'static, Result<Value, String>> {
        let d = self.clone();
        async move {
            let rt =
                d.0.agents
                    .runtime(&caller.agent_id)
                    .ok_or_else(|| format!("agent {} is not configured", caller.agent_id))?;
            let spec = &rt.spec;
            match tool {
                "sessions_spawn" => d.spawn(&caller, spec, &args).await,
                "sessions_send" => d.send(&caller, spec, &args).await,
                "sessions_list" => d.list(&caller, spec, &args),
                "sessions_history" => d.history(&caller, spec, &args),
                "agents_list" => Ok(d.agents_list(&caller, spec)),
                other => Err(format!("unknown session tool {other}")),
            }
        }
        .boxed()
    }
}

fn str_arg<'a>(args: &'a Value, key: &str) -> Result<Option<&'a str>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim())),
        Some(other) => Err(format!("`{key}` must be a string, not {other}")),
    }
}

fn int_arg(args: &Value, key: &str) -> Result<Option<i64>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .map(Some)
            .ok_or_else(|| format!("`{key}` must be an integer, not {v}")),
    }
}

/// The agent a session key belongs to.
fn key_agent<'a>(key: &'a str, default_agent: &'a str) -> &'a str {
    agent_of(key).unwrap_or(default_agent)
}

/// What a session key is, for `sessions_list`.
pub fn session_kind(key: &str, main_key: &str) -> &'static str {
    let rest = match agent_of(key) {
        Some(id) => &key[("agent:".len() + id.len() + 1).min(key.len())..],
        None => key,
    };
    if rest == main_key {
        "main"
    } else if rest.starts_with("subagent:") {
        "subagent"
    } else if rest.starts_with("cron:") {
        "cron"
    } else if key.starts_with("hook:") || rest.starts_with("hook:") {
        "hook"
    } else if rest.contains(":group:") {
        "group"
    } else if rest.contains(":channel:") {
        "channel"
    } else {
        "other"
    }
}

impl Delegator {
    fn audit(&self, rec: AuditRecord) {
        if let Err(e) = self.0.store.audit_append(&rec) {
            warn!(error = %e, kind = %rec.kind, "could not write the audit record");
        }
    }

    async fn spawn(
        &self,
        caller: &Caller,
        spec: &AgentSpec,
        args: &Value,
    ) -> Result<Value, String> {
        let task = str_arg(args, "task")?
            .ok_or("missing required parameter `task` (what the sub-agent should do)")?;
        let target = str_arg(args, "agentId")?
            .unwrap_or(&caller.agent_id)
            .to_owned();
        let label = str_arg(args, "label")?.map(str::to_owned);
        let model = str_arg(args, "model")?.map(str::to_owned);
        if let Some(m) = &model {
            crate::agent::config::ModelRef::parse(m)
                .map_err(|e| format!("model {m:?}: {e} (use provider/model)"))?;
        }
        let timeout = int_arg(args, "runTimeoutSeconds")?;
        if timeout.is_some_and(|t| t < 1) {
            return Err("`runTimeoutSeconds` must be at least 1".into());
        }
        let priority = int_arg(args, "priority")?.unwrap_or(0).clamp(-100, 100) as i32;
        let refuse = |why: String| {
            self.audit(AuditRecord {
                ts: now_ms(),
                kind: "delegation.spawn".into(),
                actor: caller.session_key.clone(),
                target: Some(target.clone()),
                agents: vec![caller.agent_id.clone(), target.clone()],
                correlation_id: None,
                outcome: "denied".into(),
                detail: json!({"reason": why}),
            });
            Err(why)
        };
        if !self.0.agents.contains(&target) {
            return refuse(format!(
                "there is no agent {target:?} (agents: {}); see agents_list",
                self.0.agents.ids().join(", ")
            ));
        }
        if !spec.subagents.may_spawn(&caller.agent_id, &target) {
            return refuse(format!(
                "agent {} may not spawn runs of agent {target}: add it to agents.list[].subagents.allowAgents of {}",
                caller.agent_id, caller.agent_id
            ));
        }
        if caller.depth >= spec.subagents.max_spawn_depth {
            return refuse(format!(
                "a sub-agent at depth {} cannot spawn its own (subagents.maxSpawnDepth = {}); do the work yourself or report back",
                caller.depth, spec.subagents.max_spawn_depth
            ));
        }
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let child = format!("agent:{target}:subagent:{correlation_id}");
        {
            let mut flights = self.0.in_flight.lock().unwrap();
            if flights.len() >= spec.subagents.max_concurrent {
                drop(flights);
                return refuse(format!(
                    "{} sub-agent runs are already in flight (subagents.maxConcurrent = {}); wait for a result to be announced",
                    spec.subagents.max_concurrent, spec.subagents.max_concurrent
                ));
            }
            flights.insert(correlation_id.clone(), child.clone());
        }
        let text = format!(
            "[Task from agent {} (session {}), correlation id {correlation_id}{}]\nYou are a sub-agent: do this task and reply with the result. Your final reply is announced back to the requester; reply {ANNOUNCE_SKIP} to announce nothing.\n\n{task}",
            caller.agent_id,
            caller.session_key,
            label
                .as_deref()
                .map(|l| format!(", label {l:?}"))
                .unwrap_or_default(),
        );
        let opts = TurnOptions {
            model,
            priority,
            deadline_ms: timeout.map(|t| now_ms() + t as u64 * 1000),
            heartbeat_ack_max_chars: None,
            delegation: Some(Delegation {
                correlation_id: correlation_id.clone(),
                requester: caller.session_key.clone(),
                kind: DelegationKind::Spawn {
                    label: label.clone(),
                },
                reply_origin: caller.origin.clone(),
                depth: caller.depth + 1,
            }),
            // In the task's own commit (its runId filled in there): one commit, not two.
            audit: Some(AuditRecord {
                ts: now_ms(),
                kind: "delegation.spawn".into(),
                actor: caller.session_key.clone(),
                target: Some(child.clone()),
                agents: vec![caller.agent_id.clone(), target.clone()],
                correlation_id: Some(correlation_id.clone()),
                outcome: "accepted".into(),
                detail: json!({"label": label, "priority": priority, "runTimeoutSeconds": timeout}),
            }),
        };
        let sent = self.send_message(&child, text, opts).await;
        let run_id = match sent {
            Ok(r) => r,
            Err(e) => {
                self.landed(&correlation_id);
                return refuse(format!("could not start the sub-agent: {e}"));
            }
        };
        info!(requester = %caller.session_key, child = %child, %correlation_id, "sub-agent spawned");
        Ok(json!({
            "status": "accepted",
            "runId": run_id,
            "childSessionKey": child,
            "correlationId": correlation_id,
        }))
    }

    /// Hands a message to a session; its run id.
    async fn send_message(
        &self,
        key: &str,
        text: String,
        opts: TurnOptions,
    ) -> Result<String, String> {
        let r = self
            .0
            .sessions
            .call(
                |reply| SessionsMsg::Send {
                    key: key.to_owned(),
                    text,
                    thinking: None,
                    stream: None,
                    compact: false,
                    mode: None,
                    origin: None,
                    opts,
                    reply,
                },
                Some(Duration::from_secs(30)),
            )
            .await;
        match r {
            Ok(CallResult::Success(Ok((run_id, _)))) => Ok(run_id),
            Ok(CallResult::Success(Err(e))) => Err(e),
            _ => Err("the sessions are restarting; try again shortly".into()),
        }
    }

    /// Whether `caller` may reach sessions of agent `target`.
    fn check_reach(&self, caller: &Caller, spec: &AgentSpec, key: &str) -> Result<String, String> {
        let target = key_agent(key, &self.0.default_agent).to_owned();
        if !spec.agent_to_agent.may_reach(&caller.agent_id, &target) {
            return Err(format!(
                "agent {} may not reach sessions of agent {target}: agent-to-agent messaging is {} (tools.agentToAgent.enabled, tools.agentToAgent.allow)",
                caller.agent_id,
                if spec.agent_to_agent.enabled {
                    format!("limited to {:?}", spec.agent_to_agent.allow)
                } else {
                    "off".to_owned()
                }
            ));
        }
        Ok(target)
    }

    async fn send(&self, caller: &Caller, spec: &AgentSpec, args: &Value) -> Result<Value, String> {
        let key = str_arg(args, "sessionKey")?
            .ok_or("missing required parameter `sessionKey` (see sessions_list)")?
            .to_owned();
        let message = str_arg(args, "message")?
            .ok_or("missing required parameter `message`")?
            .to_owned();
        let wait = match int_arg(args, "timeoutSeconds")? {
            None => DEFAULT_SEND_TIMEOUT,
            Some(t) if t < 0 => return Err("`timeoutSeconds` must be 0 or more".into()),
            Some(t) => Duration::from_secs(t as u64),
        };
        if key == caller.session_key {
            return Err("that is this session; message another one".into());
        }
        let target = match self.check_reach(caller, spec, &key) {
            Ok(t) => t,
            Err(e) => {
                self.audit(AuditRecord {
                    ts: now_ms(),
                    kind: "agent.send".into(),
                    actor: caller.session_key.clone(),
                    target: Some(key.clone()),
                    agents: vec![
                        caller.agent_id.clone(),
                        key_agent(&key, &self.0.default_agent).to_owned(),
                    ],
                    correlation_id: None,
                    outcome: "denied".into(),
                    detail: json!({"reason": e}),
                });
                return Err(e);
            }
        };
        if !self.0.agents.contains(&target) {
            return Err(format!(
                "session {key:?} names agent {target:?}, which is not configured"
            ));
        }
        let known = super::keys::is_main(&key, &target, &self.0.main_key)
            || self
                .0
                .store
                .session::<SessionMeta>(&key)
                .map_err(|e| e.to_string())?
                .is_some();
        if !known {
            return Err(format!(
                "there is no session {key:?}; sessions_list shows the ones you can reach"
            ));
        }
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let max = if wait.is_zero() {
            spec.agent_to_agent.max_ping_pong_turns
        } else {
            0
        };
        let text = format!(
            "[Message from agent {} (session {}), correlation id {correlation_id}]\n{}\n\n{message}",
            caller.agent_id,
            caller.session_key,
            if wait.is_zero() && max > 0 {
                format!("Your reply goes back to it; reply {REPLY_SKIP} to send none.")
            } else if wait.is_zero() {
                "Your reply stays here (it does not go back).".to_owned()
            } else {
                "Your reply is returned to it.".to_owned()
            },
        );
        let opts = TurnOptions {
            delegation: Some(Delegation {
                correlation_id: correlation_id.clone(),
                requester: caller.session_key.clone(),
                kind: DelegationKind::Send {
                    turn: 0,
                    max_turns: max,
                },
                reply_origin: None,
                depth: caller.depth,
            }),
            ..Default::default()
        };
        let run_id = self.send_message(&key, text, opts).await?;
        self.audit(AuditRecord {
            ts: now_ms(),
            kind: "agent.send".into(),
            actor: caller.session_key.clone(),
            target: Some(key.clone()),
            agents: vec![caller.agent_id.clone(), target.clone()],
            correlation_id: Some(correlation_id.clone()),
            outcome: "accepted".into(),
            detail: json!({"runId": run_id, "wait": !wait.is_zero(), "maxPingPongTurns": max}),
        });
        if wait.is_zero() {
            return Ok(json!({
                "status": "accepted",
                "runId": run_id,
                "sessionKey": key,
                "correlationId": correlation_id,
            }));
        }
        let waited = self
            .0
            .sessions
            .call(
                |reply| SessionsMsg::Wait {
                    key: key.clone(),
                    run_id: run_id.clone(),
                    reply,
                },
                Some(wait),
            )
            .await;
        Ok(match waited {
            Ok(CallResult::Success(RunSummary {
                status,
                text,
                error,
                ..
            })) => json!({
                "status": if status == "ok" { "ok" } else { "error" },
                "reply": text,
                "error": error,
                "runId": run_id,
                "sessionKey": key,
                "correlationId": correlation_id,
            }),
            _ => json!({
                "status": "timeout",
                "runId": run_id,
                "sessionKey": key,
                "correlationId": correlation_id,
                "note": format!("no reply within {}s; the session is still working on it: read it later with sessions_history", wait.as_secs()),
            }),
        })
    }

    fn list(&self, caller: &Caller, spec: &AgentSpec, args: &Value) -> Result<Value, String> {
        let limit = int_arg(args, "limit")?.unwrap_or(20).clamp(1, 200) as usize;
        let active = int_arg(args, "activeMinutes")?;
        let kinds: Vec<String> = args
            .get("kinds")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let now = now_ms();
        let mut rows: Vec<(String, SessionMeta)> = self
            .0
            .store
            .sessions::<SessionMeta>()
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|(k, m)| {
                m.phase != super::lifecycle::Phase::Closed
                    && spec
                        .agent_to_agent
                        .may_reach(&caller.agent_id, key_agent(k, &self.0.default_agent))
                    && active.is_none_or(|a| now.saturating_sub(m.updated_at) <= a as u64 * 60_000)
                    && (kinds.is_empty()
                        || kinds.iter().any(|x| x == session_kind(k, &self.0.main_key)))
            })
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.1.updated_at));
        rows.truncate(limit);
        let sessions: Vec<Value> = rows
            .into_iter()
            .map(|(k, m)| {
                json!({
                    "key": k,
                    "agentId": m.agent_id,
                    "kind": session_kind(&k, &self.0.main_key),
                    "label": m.label,
                    "updatedAt": m.updated_at,
                    "turns": m.turns,
                    "model": m.last_model,
                    "self": k == caller.session_key,
                })
            })
            .collect();
        Ok(json!({"count": sessions.len(), "sessions": sessions}))
    }

    fn history(&self, caller: &Caller, spec: &AgentSpec, args: &Value) -> Result<Value, String> {
        let key = str_arg(args, "sessionKey")?
            .ok_or("missing required parameter `sessionKey` (see sessions_list)")?
            .to_owned();
        self.check_reach(caller, spec, &key)?;
        let limit = int_arg(args, "limit")?.unwrap_or(20).clamp(1, 500) as usize;
        let tools = args
            .get("includeTools")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let entries = self
            .0
            .store
            .transcript::<Entry>(&key, Some(limit * 4))
            .map_err(|e| e.to_string())?;
        if entries.is_empty()
            && self
                .0
                .store
                .session::<SessionMeta>(&key)
                .map_err(|e| e.to_string())?
                .is_none()
        {
            return Err(format!(
                "there is no session {key:?}; sessions_list shows the ones you can reach"
            ));
        }
        let mut messages: Vec<Value> = entries
            .into_iter()
            .filter(|(_, e)| {
                tools || (e.role != "tool" && !(e.role == "assistant" && e.content.is_empty()))
            })
            .map(|(_, e)| {
                let mut content = e.content;
                if content.len() > 4000 {
                    let mut end = 4000;
                    while !content.is_char_boundary(end) {
                        end -= 1;
                    }
                    content.truncate(end);
                    content.push_str(" [cut]");
                }
                let mut v = json!({"role": e.role, "content": content, "ts": e.ts});
                if let Some(n) = e.name {
                    v["name"] = json!(n);
                }
                v
            })
            .collect();
        let skip = messages.len().saturating_sub(limit);
        messages.drain(..skip);
        Ok(json!({"sessionKey": key, "messages": messages}))
    }

    fn agents_list(&self, caller: &Caller, spec: &AgentSpec) -> Value {
        let agents: Vec<Value> = self
            .0
            .agents
            .ids()
            .into_iter()
            .filter(|id| spec.subagents.may_spawn(&caller.agent_id, id))
            .filter_map(|id| self.0.agents.runtime(&id))
            .map(|rt| {
                json!({
                    "id": rt.spec.id,
                    "name": rt.spec.name,
                    "self": rt.spec.id == caller.agent_id,
                    "toolProfile": rt.spec.tool_profile,
                })
            })
            .collect();
        json!({
            "agents": agents,
            "maxConcurrent": spec.subagents.max_concurrent,
            "inFlight": self
                .0
                .in_flight
                .lock()
                .unwrap()
                .values()
                .cloned()
                .collect::<Vec<_>>(),
        })
    }
}

/// What a finished delegated turn sends on, staged in the same commit as the turn: a
/// spawned run's result for its requester, or the next reply of a ping-pong. `None`
/// when nothing goes back.
pub fn follow_up(
    own_key: &str,
    own_agent: &str,
    delegation: &Delegation,
    text: &str,
    error: Option<&str>,
    crashes: u32,
    now: u64,
) -> Option<(String, Pending)> {
    let reply = text.trim();
    match &delegation.kind {
        DelegationKind::Result => None,
        DelegationKind::Spawn { label } => {
            if error.is_none() && reply == ANNOUNCE_SKIP {
                return None;
            }
            let status = outcome(error);
            let body = match error {
                Some(e) => e.to_owned(),
                None if reply.is_empty() => "(no reply)".to_owned(),
                None => reply.to_owned(),
            };
            let what = label
                .as_deref()
                .map(|l| format!("{l:?} by agent {own_agent}"))
                .unwrap_or_else(|| format!("by agent {own_agent}"));
            let note = if crashes > 0 {
                format!("\nnote: the sub-agent's run crashed {crashes} time(s) and was run again")
            } else {
                String::new()
            };
            let text = format!(
                "[Sub-agent result] task {what} (session {own_key})\ncorrelation id: {}\nstatus: {status}{note}\n\n{body}",
                delegation.correlation_id
            );
            let origin = delegation.reply_origin.clone().map(|mut o| {
                o.message_id = format!("announce:{}", delegation.correlation_id);
                o
            });
            let mut p = Pending::new(text, origin, now);
            p.delegation = Some(Delegation {
                correlation_id: delegation.correlation_id.clone(),
                requester: own_key.to_owned(),
                kind: DelegationKind::Result,
                reply_origin: None,
                depth: 0,
            });
            Some((delegation.requester.clone(), p))
        }
        DelegationKind::Send { turn, max_turns } => {
            if error.is_some() || reply.is_empty() || reply == REPLY_SKIP || *turn >= *max_turns {
                return None;
            }
            let text = format!(
                "[Reply from agent {own_agent} (session {own_key}), correlation id {}, exchange {} of at most {max_turns}]\nYour reply goes back to it; reply {REPLY_SKIP} to end the conversation.\n\n{reply}",
                delegation.correlation_id,
                turn + 1,
            );
            let mut p = Pending::new(text, None, now);
            p.delegation = Some(Delegation {
                correlation_id: delegation.correlation_id.clone(),
                requester: own_key.to_owned(),
                kind: DelegationKind::Send {
                    turn: turn + 1,
                    max_turns: *max_turns,
                },
                reply_origin: None,
                depth: delegation.depth,
            });
            Some((delegation.requester.clone(), p))
        }
    }
}

/// ok | timeout | error, for a finished delegated run.
pub fn outcome(error: Option<&str>) -> &'static str {
    match error {
        None => "ok",
        Some(e) if e.starts_with(super::DEADLINE_EXCEEDED) => "timeout",
        Some(_) => "error",
    }
}
