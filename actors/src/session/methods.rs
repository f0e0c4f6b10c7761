//! Control-plane methods for chat, runs, sessions, models and agents.

use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use ractor::rpc::CallResult;
use serde_json::{Value, json};

use super::{Entry, SessionMeta, SessionsMsg};
use crate::agent::config::AgentsConfig;
use crate::agent::run::Approvals;
use crate::gateway::{CallContext, MethodRegistry};
use crate::protocol::{ErrorShape, scopes};
use crate::store::Store;

/// Finds the running Sessions actor (its ref changes when it is restarted).
pub type SessionsLookup = Arc<dyn Fn() -> Option<ActorRef<SessionsMsg>> + Send + Sync>;

pub struct ChatContext {
    pub sessions: SessionsLookup,
    pub store: Store,
    pub agents: AgentsConfig,
    pub approvals: Arc<Approvals>,
    /// The AgentActors, for what each agent is doing (`agents.list`).
    pub directory: Option<crate::agent::actor::AgentDirectory>,
}

fn unavailable() -> ErrorShape {
    ErrorShape::unavailable("sessions are restarting; retry shortly").retry_after(200)
}

fn bad(msg: impl Into<String>) -> ErrorShape {
    ErrorShape::invalid_request(msg)
}

fn str_param<'a>(p: &'a Value, name: &str) -> Option<&'a str> {
    p.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

async fn main_key(s: &ActorRef<SessionsMsg>, agent: Option<String>) -> Result<String, ErrorShape> {
    match s
        .call(|reply| SessionsMsg::MainKey { agent, reply }, None)
        .await
    {
        Ok(CallResult::Success(k)) => Ok(k),
        _ => Err(unavailable()),
    }
}

/// The Sessions actor and the `sessionKey` param, or the default agent's main session.
async fn session_and_key(
    ctx: &ChatContext,
    p: &Value,
) -> Result<(ActorRef<SessionsMsg>, String), ErrorShape> {
    let s = (ctx.sessions)().ok_or_else(unavailable)?;
    let key = match str_param(p, "sessionKey") {
        Some(k) => k.to_owned(),
        None => main_key(&s, None).await?,
    };
    Ok((s, key))
}

/// Accepts a message; `{runId, status: started|queued, sessionKey}`.
/// A message (or a compaction) to hand to a session.
#[derive(Default)]
pub(super) struct Outgoing<'a> {
    pub key: Option<String>,
    pub agent: Option<String>,
    pub text: String,
    pub thinking: Option<&'a str>,
    pub stream: Option<super::TextStream>,
    pub compact: bool,
    pub mode: Option<&'a str>,
}

pub(super) async fn send(ctx: &ChatContext, out: Outgoing<'_>) -> Result<Value, ErrorShape> {
    let Outgoing {
        key,
        agent,
        text,
        thinking,
        stream,
        compact,
        mode,
    } = out;
    if let Some(m) = mode
        && crate::agent::config::Mode::parse(m).is_none()
    {
        return Err(bad(format!(
            "mode must be fast, standard or deep, not {m:?}"
        )));
    }
    let s = (ctx.sessions)().ok_or_else(unavailable)?;
    let key = match key {
        Some(k) => k,
        None => main_key(&s, agent).await?,
    };
    let thinking = match thinking {
        None => None,
        Some(t) => Some(serde_json::from_value(json!(t)).map_err(|_| {
            bad(format!(
                "thinking must be off, low, medium or high, not {t:?}"
            ))
        })?),
    };
    let res = s
        .call(
            |reply| SessionsMsg::Send {
                key: key.clone(),
                text,
                thinking,
                stream,
                compact,
                mode: mode.map(str::to_owned),
                origin: None,
                opts: Default::default(),
                reply,
            },
            Some(Duration::from_secs(10)),
        )
        .await;
    match res {
        Ok(CallResult::Success(Ok((run_id, status)))) => {
            Ok(json!({"runId": run_id, "status": status, "sessionKey": key}))
        }
        Ok(CallResult::Success(Err(e))) => Err(bad(e)),
        _ => Err(unavailable()),
    }
}

pub(super) async fn wait(
    ctx: &ChatContext,
    key: String,
    run_id: String,
    timeout: Duration,
) -> Result<Value, ErrorShape> {
    let s = (ctx.sessions)().ok_or_else(unavailable)?;
    match s
        .call(
            |reply| SessionsMsg::Wait { key, run_id, reply },
            Some(timeout),
        )
        .await
    {
        Ok(CallResult::Success(summary)) => Ok(serde_json::to_value(summary).expect("serialises")),
        Ok(CallResult::Timeout) => Ok(json!({"status": "timeout"})),
        _ => Err(unavailable()),
    }
}

pub fn register(registry: &mut MethodRegistry, ctx: Arc<ChatContext>) {
    let c = ctx.clone();
    registry.side_effecting(
        "chat.send",
        scopes::WRITE,
        move |_cc: CallContext, p: Value| {
            let c = c.clone();
            async move {
                let key = str_param(&p, "sessionKey").map(str::to_owned);
                let text = str_param(&p, "message")
                    .ok_or_else(|| {
                        bad("chat.send needs {sessionKey?, message, thinking?}: message is missing")
                    })?
                    .to_owned();
                send(
                    &c,
                    Outgoing {
                        key,
                        agent: str_param(&p, "agentId").map(str::to_owned),
                        text,
                        thinking: str_param(&p, "thinking"),
                        mode: str_param(&p, "mode"),
                        ..Default::default()
                    },
                )
                .await
            }
        },
    );
    let c = ctx.clone();
    registry.side_effecting("agent", scopes::WRITE, move |cc: CallContext, p: Value| {
        let c = c.clone();
        async move {
            let text = str_param(&p, "message")
                .ok_or_else(|| bad("agent needs {message, agentId?, sessionKey?, thinking?, timeout?}: message is missing"))?
                .to_owned();
            let accepted = send(
                &c,
                Outgoing {
                    key: str_param(&p, "sessionKey").map(str::to_owned),
                    agent: str_param(&p, "agentId").map(str::to_owned),
                    text,
                    thinking: str_param(&p, "thinking"),
                    mode: str_param(&p, "mode"),
                    ..Default::default()
                },
            )
            .await?;
            let timeout = p.get("timeout").and_then(Value::as_u64).unwrap_or(600);
            let key = accepted["sessionKey"].as_str().unwrap_or_default().to_owned();
            let run_id = accepted["runId"].as_str().unwrap_or_default().to_owned();
            // Two answers on one id, as OpenClaw's clients expect: accepted now, the
            // result when the run ends (`--expect-final` waits for the second).
            cc.answer_early(json!({
                "runId": run_id, "status": "accepted", "sessionKey": key,
                "acceptedAt": crate::gateway::now_ms(),
            }));
            let summary = wait(&c, key, run_id.clone(), Duration::from_secs(timeout)).await?;
            Ok(json!({"runId": run_id, "status": summary["status"], "summary": summary}))
        }
    });
    let c = ctx.clone();
    registry.method(
        "agent.wait",
        scopes::READ,
        move |_cc: CallContext, p: Value| {
            let c = c.clone();
            async move {
                let run_id = str_param(&p, "runId")
                    .ok_or_else(|| bad("agent.wait needs {runId, sessionKey?, timeoutMs?}"))?
                    .to_owned();
                let (_, key) = session_and_key(&c, &p).await?;
                let ms = p.get("timeoutMs").and_then(Value::as_u64).unwrap_or(30_000);
                wait(&c, key, run_id, Duration::from_millis(ms)).await
            }
        },
    );
    let c = ctx.clone();
    registry.method(
        "chat.history",
        scopes::READ,
        move |_cc: CallContext, p: Value| {
            let c = c.clone();
            async move {
                let (_, key) = session_and_key(&c, &p).await?;
                let limit = p
                    .get("limit")
                    .and_then(Value::as_u64)
                    .unwrap_or(200)
                    .min(10_000) as usize;
                let rows: Vec<(u64, Entry)> = c
                    .store
                    .transcript(&key, Some(limit))
                    .map_err(|e| ErrorShape::unavailable(e.to_string()))?;
                let messages: Vec<Value> = rows
                    .into_iter()
                    .map(|(seq, e)| {
                        let mut v = serde_json::to_value(&e).expect("serialises");
                        v["seq"] = json!(seq);
                        v["timestamp"] = json!(e.ts);
                        v
                    })
                    .collect();
                Ok(json!({"sessionKey": key, "messages": messages}))
            }
        },
    );
    let c = ctx.clone();
    registry.method(
        "chat.abort",
        scopes::WRITE,
        move |_cc: CallContext, p: Value| {
            let c = c.clone();
            async move {
                let (s, key) = session_and_key(&c, &p).await?;
                let run_id = str_param(&p, "runId").map(str::to_owned);
                match s
                    .call(
                        |reply| SessionsMsg::Abort { key, run_id, reply },
                        Some(Duration::from_secs(5)),
                    )
                    .await
                {
                    Ok(CallResult::Success(aborted)) => Ok(json!({"ok": true, "aborted": aborted})),
                    _ => Err(unavailable()),
                }
            }
        },
    );
    let c = ctx.clone();
    registry.method(
        "sessions.list",
        scopes::READ,
        move |_cc: CallContext, _p: Value| {
            let c = c.clone();
            async move {
                let mut rows: Vec<(String, SessionMeta)> = c
                    .store
                    .sessions()
                    .map_err(|e| ErrorShape::unavailable(e.to_string()))?;
                rows.sort_by_key(|(_, m)| std::cmp::Reverse(m.updated_at));
                let sessions: Vec<Value> = rows
                    .into_iter()
                    .map(|(key, m)| {
                        json!({"key": key, "agentId": m.agent_id, "updatedAt": m.updated_at,
                           "createdAt": m.created_at, "turns": m.turns, "usage": m.usage,
                           "model": m.last_model, "label": m.label, "phase": m.phase})
                    })
                    .collect();
                Ok(json!({"count": sessions.len(), "sessions": sessions}))
            }
        },
    );
    let c = ctx.clone();
    registry.method(
        "sessions.preview",
        scopes::READ,
        move |_cc: CallContext, p: Value| {
            let c = c.clone();
            async move {
                let keys: Vec<String> = match p.get("keys").and_then(Value::as_array) {
                    Some(k) => k
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect(),
                    None => vec![session_and_key(&c, &p).await?.1],
                };
                let limit = p.get("limit").and_then(Value::as_u64).unwrap_or(3).min(50) as usize;
                let mut previews = Vec::new();
                for key in keys {
                    let rows: Vec<(u64, Entry)> = c
                        .store
                        .transcript(&key, Some(limit))
                        .map_err(|e| ErrorShape::unavailable(e.to_string()))?;
                    let items: Vec<Value> = rows
                        .into_iter()
                        .map(|(_, e)| {
                            let text: String = e.content.chars().take(200).collect();
                            json!({"role": e.role, "text": text, "ts": e.ts})
                        })
                        .collect();
                    previews.push(json!({"key": key, "items": items}));
                }
                Ok(json!({"previews": previews}))
            }
        },
    );
    let c = ctx.clone();
    registry.side_effecting(
        "sessions.patch",
        scopes::ADMIN,
        move |_cc: CallContext, p: Value| {
            let c = c.clone();
            async move {
                let key = str_param(&p, "key")
                    .or_else(|| str_param(&p, "sessionKey"))
                    .ok_or_else(|| bad("sessions.patch needs {key, label}"))?
                    .to_owned();
                let label = match p.get("label") {
                    Some(Value::String(l)) => Some(l.clone()),
                    Some(Value::Null) | None => None,
                    Some(other) => {
                        return Err(bad(format!("label must be a string or null, not {other}")));
                    }
                };
                let s = (c.sessions)().ok_or_else(unavailable)?;
                match s
                    .call(
                        |reply| SessionsMsg::Patch { key, label, reply },
                        Some(Duration::from_secs(10)),
                    )
                    .await
                {
                    Ok(CallResult::Success(Ok(meta))) => {
                        Ok(json!({"ok": true, "key": meta.key, "label": meta.label}))
                    }
                    Ok(CallResult::Success(Err(e))) => Err(bad(e)),
                    _ => Err(unavailable()),
                }
            }
        },
    );
    for (name, delete) in [("sessions.reset", false), ("sessions.delete", true)] {
        let c = ctx.clone();
        registry.side_effecting(name, scopes::ADMIN, move |_cc: CallContext, p: Value| {
            let c = c.clone();
            async move {
                let key = str_param(&p, "key")
                    .or_else(|| str_param(&p, "sessionKey"))
                    .ok_or_else(|| bad(format!("{name} needs {{key}}")))?
                    .to_owned();
                let s = (c.sessions)().ok_or_else(unavailable)?;
                match s.call(|reply| SessionsMsg::Reset { key: key.clone(), delete, reply }, Some(Duration::from_secs(10))).await {
                    Ok(CallResult::Success(Ok(existed))) => Ok(json!({"ok": true, "key": key, if delete { "deleted" } else { "reset" }: existed})),
                    Ok(CallResult::Success(Err(e))) => Err(ErrorShape::unavailable(e)),
                    _ => Err(unavailable()),
                }
            }
        });
    }
    let c = ctx.clone();
    registry.side_effecting(
        "sessions.compact",
        scopes::ADMIN,
        move |_cc: CallContext, p: Value| {
            let c = c.clone();
            async move {
                let (_, key) = session_and_key(&c, &p).await?;
                let accepted = send(
                    &c,
                    Outgoing {
                        key: Some(key.clone()),
                        compact: true,
                        ..Default::default()
                    },
                )
                .await?;
                let run_id = accepted["runId"].as_str().unwrap_or_default().to_owned();
                let summary = wait(&c, key.clone(), run_id, Duration::from_secs(300)).await?;
                let meta: Option<SessionMeta> = c
                    .store
                    .session(&key)
                    .map_err(|e| ErrorShape::unavailable(e.to_string()))?;
                Ok(json!({"ok": summary["status"] == "ok", "key": key,
                          "error": summary["error"],
                          "summary": meta.as_ref().and_then(|m| m.summary.clone()),
                          "compactions": meta.map(|m| m.compactions).unwrap_or(0)}))
            }
        },
    );
    let c = ctx.clone();
    registry.method("models.list", scopes::READ, move |_cc: CallContext, _p: Value| {
        let c = c.clone();
        async move {
            let mut models = Vec::new();
            for p in c.agents.providers.values() {
                for m in &p.models {
                    models.push(json!({"id": m.id, "name": m.name.clone().unwrap_or_else(|| m.id.clone()),
                        "provider": p.id, "api": p.api.as_str(), "contextWindow": m.context_window,
                        "source": p.source}));
                }
            }
            Ok(json!({"models": models}))
        }
    });
    let c = ctx.clone();
    registry.method(
        "agents.prompt",
        scopes::READ,
        move |_cc: CallContext, p: Value| {
            let c = c.clone();
            async move { prompt_report(&c, &p) }
        },
    );
    let c = ctx;
    registry.method(
        "exec.approval.resolve",
        scopes::APPROVALS,
        move |cc: CallContext, p: Value| {
            let c = c.clone();
            async move {
                let id = str_param(&p, "id")
                    .ok_or_else(|| bad("exec.approval.resolve needs {id, decision}"))?;
                let allow = match str_param(&p, "decision") {
                    Some("allow-once" | "allow-always" | "allow") => true,
                    Some("deny") => false,
                    other => {
                        return Err(bad(format!(
                            "decision must be allow-once, allow-always or deny, not {other:?}"
                        )));
                    }
                };
                if c.approvals
                    .resolve_by(id, allow, &format!("operator:{}", cc.client.id))
                {
                    Ok(json!({"ok": true}))
                } else {
                    Err(bad(format!(
                        "no pending approval {id:?} (it may have timed out)"
                    )))
                }
            }
        },
    );
}

/// What a turn of this agent in this session would send, part by part.
fn prompt_report(c: &ChatContext, p: &Value) -> Result<Value, ErrorShape> {
    let agent_id = str_param(p, "agentId")
        .map(str::to_owned)
        .or_else(|| {
            str_param(p, "sessionKey")
                .and_then(super::agent_of)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| c.agents.default_agent.clone());
    let spec = c
        .agents
        .agent(&agent_id)
        .ok_or_else(|| bad(format!("no agent {agent_id:?}")))?;
    let main = format!("agent:{agent_id}:{}", c.agents.main_key);
    let key = str_param(p, "sessionKey").unwrap_or(&main).to_owned();
    let tools: Vec<_> = crate::agent::run::AgentRuntime::allowed_tools(spec)
        .iter()
        .map(|t| t.spec())
        .collect();
    let prompt = crate::agent::prompt::assemble(crate::agent::prompt::PromptInput {
        agent_id: &spec.id,
        agent_name: &spec.name,
        workspace: &spec.workspace,
        main_session: key == main,
        bootstrap_max_chars: spec.bootstrap_max_chars,
        tools,
        now: "now",
    });
    let history: Vec<crate::agent::model::Message> = c
        .store
        .transcript::<Entry>(&key, Some(spec.history_turns.max(1) * 8))
        .map_err(|e| ErrorShape::unavailable(e.to_string()))?
        .into_iter()
        .filter_map(|(_, e)| e.to_message())
        .collect();
    let mut parts = prompt.parts.clone();
    parts.push(crate::agent::prompt::history_part(&history));
    let total: usize = parts.iter().map(|x| x.chars).sum();
    Ok(json!({
        "agentId": agent_id,
        "sessionKey": key,
        "parts": parts,
        "fixedChars": prompt.fixed_chars(),
        "totalChars": total,
        "tools": prompt.tools.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        "system": prompt.system,
    }))
}

/// Events these methods cause.
pub const EVENTS: [&str; 4] = [
    "chat",
    "agent",
    "exec.approval.requested",
    "exec.approval.resolved",
];
