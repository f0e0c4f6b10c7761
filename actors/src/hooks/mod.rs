//! Webhook triggers on the gateway port, as OpenClaw has them: external systems (mail,
//! CI, monitoring) wake the main session or run an isolated agent turn.
//!
//! - `POST <path>/wake {text, mode?}`: a system event (`System: <text>`) for the default
//!   agent's main session, answered 200 `{ok, mode}` once it is durable in the inbox.
//! - `POST <path>/agent {message, name?, agentId?, sessionKey?, deliver?, channel?, to?,
//!   thinking?, timeoutSeconds?, ...}`: a turn in a new `hook:<uuid>` session (or
//!   `agent:<id>:hook:<uuid>` for another agent), answered 202 `{ok, runId, sessionKey}`
//!   at once; with `deliver` and `channel`/`to` the final reply goes to that chat through
//!   the outbox, like a channel reply.
//! - `POST <path>/<name>`: the first of `hooks.mappings` whose `match` takes it.
//!
//! Every request needs `hooks.token` (`Authorization: Bearer`, or `x-openclaw-token`):
//! 401 otherwise; a body over `hooks.maxBodyBytes` is 413, bad JSON or fields 400; none of
//! these reaches a session. Disabled (the default): no routes, so 404.
//!
//! No actor of its own: each request is one call to the Sessions actor, plus a task that
//! aborts the turn after `timeoutSeconds`.

pub mod mapping;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use ractor::rpc::CallResult;
use serde_json::{Value, json};
use tracing::{debug, info, warn};

use crate::channels::ChannelOrigin;
use crate::channels::actor::ChannelDirectory;
use crate::session::SessionsMsg;
use crate::session::methods::SessionsLookup;

pub use mapping::{Action, AgentRequest, HooksConfig, WakeMode};

/// What the hook routes need: the resolved `hooks` config and the ways into the sessions.
pub struct HooksCtx {
    /// `None`: hooks are disabled and no route is served.
    pub config: Option<HooksConfig>,
    pub sessions: SessionsLookup,
    pub default_agent: String,
    pub main_key: String,
    /// Configured agent ids (an unknown `agentId` falls back to the default agent).
    pub agents: Vec<String>,
    /// The running channel accounts, to pick the account a reply goes out on.
    pub channels: ChannelDirectory,
    /// Where `next-heartbeat` wakes wait for the agent's next heartbeat (`None`: they
    /// run now).
    pub system_events: Option<crate::schedule::heartbeat::SystemEvents>,
}

impl HooksCtx {
    /// Reads `hooks` from the whole config; enabling them without a token is an error.
    pub fn new(
        config: &Value,
        sessions: SessionsLookup,
        default_agent: String,
        main_key: String,
        agents: Vec<String>,
        channels: ChannelDirectory,
    ) -> Result<HooksCtx, String> {
        let config = HooksConfig::from_config(config)?;
        if let Some(c) = &config {
            info!(path = %c.base_path, mappings = c.mappings.len(), "webhook triggers enabled");
        }
        Ok(HooksCtx {
            config,
            sessions,
            default_agent,
            main_key,
            agents,
            channels,
            system_events: None,
        })
    }

    /// Lets `next-heartbeat` wakes wait for the next heartbeat.
    pub fn with_system_events(mut self, events: crate::schedule::heartbeat::SystemEvents) -> Self {
        self.system_events = Some(events);
        self
    }
}

/// A failed request: its status and the message the caller sees.
type Refusal = (StatusCode, String);

fn reply(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn refuse((status, error): Refusal) -> Response {
    reply(status, json!({"ok": false, "error": error}))
}

/// The hook routes under `hooks.path`; none when hooks are disabled.
pub fn routes(ctx: HooksCtx) -> Router {
    let Some(cfg) = &ctx.config else {
        return Router::new();
    };
    let (base, limit) = (cfg.base_path.clone(), cfg.max_body_bytes);
    Router::new()
        .route(&format!("{base}/{{*name}}"), post(handle))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(Arc::new(ctx))
}

async fn handle(
    State(ctx): State<Arc<HooksCtx>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<bytes::Bytes, BytesRejection>,
) -> Response {
    let cfg = ctx.config.as_ref().expect("routes exist only when enabled");
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("token=")))
    {
        warn!(%remote, hook = %name, "hook request refused: token in the query string");
        return refuse((
            StatusCode::BAD_REQUEST,
            "hook token must be sent in the Authorization or x-openclaw-token header, not the query string".into(),
        ));
    }
    let given = mapping::request_token(
        header(header::AUTHORIZATION.as_str()),
        header("x-openclaw-token"),
    );
    let ok = given
        .as_deref()
        .is_some_and(|t| mapping::constant_time_eq(t.as_bytes(), cfg.token.as_bytes()));
    if !ok {
        let why = if given.is_some() {
            "wrong token"
        } else {
            "no token"
        };
        warn!(%remote, hook = %name, reason = why, "hook request refused");
        return refuse((StatusCode::UNAUTHORIZED, "unauthorized".into()));
    }
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            warn!(%remote, hook = %name, max = cfg.max_body_bytes, "hook request refused: body too large");
            return refuse((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "payload too large (hooks.maxBodyBytes is {})",
                    cfg.max_body_bytes
                ),
            ));
        }
        Err(e) => return refuse((StatusCode::BAD_REQUEST, e.body_text())),
    };
    let payload: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return refuse((
                    StatusCode::BAD_REQUEST,
                    "the body must be a JSON object".into(),
                ));
            }
            Err(e) => {
                return refuse((StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")));
            }
        }
    };
    let name = name.trim_matches('/').to_owned();
    let action = match name.as_str() {
        "wake" => mapping::wake_payload(&payload),
        "agent" => mapping::agent_payload(&payload),
        other => match mapping::mapped(&cfg.mappings, other, &payload) {
            Some(a) => a,
            None => {
                return refuse((
                    StatusCode::NOT_FOUND,
                    format!("no hook {other:?}: not wake, agent or a hooks.mappings path"),
                ));
            }
        },
    };
    let action = match action {
        Ok(a) => a,
        Err(e) => return refuse((StatusCode::BAD_REQUEST, e)),
    };
    let result = match action {
        Action::Wake { text, mode } => wake(&ctx, &name, &text, mode)
            .await
            .map(|()| (StatusCode::OK, json!({"ok": true, "mode": mode.as_str()}))),
        Action::Agent(req) => agent(&ctx, cfg, &name, req).await.map(|(run_id, key)| {
            (
                StatusCode::ACCEPTED,
                json!({"ok": true, "runId": run_id, "sessionKey": key}),
            )
        }),
    };
    match result {
        Ok((status, body)) => reply(status, body),
        Err(r) => refuse(r),
    }
}

fn unavailable() -> Refusal {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the sessions are restarting; retry shortly".into(),
    )
}

/// Hands a message to a session; `(runId, started|queued)`.
async fn send(
    ctx: &HooksCtx,
    key: &str,
    text: String,
    thinking: Option<crate::agent::model::Thinking>,
    origin: Option<ChannelOrigin>,
    model: Option<String>,
) -> Result<String, Refusal> {
    let sessions = (ctx.sessions)().ok_or_else(unavailable)?;
    let res = sessions
        .call(
            |reply| SessionsMsg::Send {
                key: key.to_owned(),
                text,
                thinking,
                stream: None,
                compact: false,
                mode: None,
                origin,
                opts: crate::session::TurnOptions {
                    model,
                    ..Default::default()
                },
                reply,
            },
            Some(Duration::from_secs(10)),
        )
        .await;
    match res {
        Ok(CallResult::Success(Ok((run_id, _)))) => Ok(run_id),
        Ok(CallResult::Success(Err(e))) => Err((StatusCode::BAD_REQUEST, e)),
        _ => Err(unavailable()),
    }
}

/// The default agent's main session hears of the event: now, or with `next-heartbeat`
/// at the agent's next heartbeat (queued durably; it makes that heartbeat call the model
/// even when HEARTBEAT.md is unchanged). An agent without heartbeats hears of it now.
async fn wake(ctx: &HooksCtx, hook: &str, text: &str, mode: WakeMode) -> Result<(), Refusal> {
    if mode == WakeMode::NextHeartbeat
        && let Some(events) = &ctx.system_events
    {
        match events
            .queue(&ctx.default_agent, text, &format!("hooks:{hook}"))
            .await
        {
            Ok(true) => {
                info!(%hook, agent = %ctx.default_agent, "hook event queued for the next heartbeat");
                return Ok(());
            }
            Ok(false) => {}
            Err(e) => {
                warn!(%hook, error = %e, "could not queue a hook event for the next heartbeat");
                return Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "could not queue the event for the next heartbeat ({e}); retry shortly"
                    ),
                ));
            }
        }
    }
    let key = format!("agent:{}:{}", ctx.default_agent, ctx.main_key);
    let run_id = send(ctx, &key, format!("System: {text}"), None, None, None).await?;
    info!(%hook, session = %key, %run_id, mode = mode.as_str(), "hook woke the main session");
    Ok(())
}

/// Starts an isolated turn; `(runId, sessionKey)`.
async fn agent(
    ctx: &HooksCtx,
    cfg: &HooksConfig,
    hook: &str,
    req: AgentRequest,
) -> Result<(String, String), Refusal> {
    let bad = |m: String| (StatusCode::BAD_REQUEST, m);
    let agent = match req.agent_id.as_deref().map(str::to_lowercase) {
        Some(a) => {
            if !cfg.agent_allowed(&a) {
                return Err(bad("agentId is not allowed by hooks.allowedAgentIds".into()));
            }
            if ctx.agents.contains(&a) {
                a
            } else {
                ctx.default_agent.clone()
            }
        }
        None => {
            if !cfg.agent_allowed(&ctx.default_agent) {
                return Err(bad("agentId is not allowed by hooks.allowedAgentIds".into()));
            }
            ctx.default_agent.clone()
        }
    };
    if req.key_from_request && !cfg.allow_request_session_key {
        return Err(bad("sessionKey is disabled for external /hooks/agent payloads; set hooks.allowRequestSessionKey=true to enable".into()));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let key = session_key(req.session_key.as_deref(), &agent, &ctx.default_agent, &id);
    let thinking = match req.thinking.as_deref() {
        None => None,
        Some(t) => Some(serde_json::from_value(json!(t)).map_err(|_| {
            bad(format!(
                "thinking must be off, low, medium or high, not {t:?}"
            ))
        })?),
    };
    if let Some(m) = &req.model {
        crate::agent::config::ModelRef::parse(m)
            .map_err(|e| bad(format!("model {m:?}: {e} (use provider/model)")))?;
    }
    let origin = if req.deliver {
        delivery(ctx, &req.channel, req.to.as_deref(), &key, &id)
    } else {
        None
    };
    let run_id = send(ctx, &key, req.message, thinking, origin.clone(), req.model).await?;
    info!(%hook, session = %key, %run_id, deliver = origin.is_some(), wake_mode = req.wake_mode.as_str(), "hook started an agent turn");
    let sessions = ctx.sessions.clone();
    let (k, r, name, timeout) = (key.clone(), run_id.clone(), req.name, req.timeout_seconds);
    tokio::spawn(async move {
        follow(sessions, k, r, name, timeout).await;
    });
    Ok((run_id, key))
}

/// Labels the hook session with the hook's name and aborts the turn after its timeout.
async fn follow(
    sessions: SessionsLookup,
    key: String,
    run_id: String,
    name: String,
    timeout: Option<u64>,
) {
    let Some(s) = sessions() else { return };
    let _ = s
        .call(
            |reply| SessionsMsg::Patch {
                key: key.clone(),
                label: Some(name),
                reply,
            },
            Some(Duration::from_secs(5)),
        )
        .await;
    let Some(secs) = timeout else { return };
    let waited = s
        .call(
            |reply| SessionsMsg::Wait {
                key: key.clone(),
                run_id: run_id.clone(),
                reply,
            },
            Some(Duration::from_secs(secs)),
        )
        .await;
    if matches!(waited, Ok(CallResult::Timeout)) {
        let aborted = s
            .call(
                |reply| SessionsMsg::Abort {
                    key: key.clone(),
                    run_id: Some(run_id.clone()),
                    reply,
                },
                Some(Duration::from_secs(5)),
            )
            .await;
        warn!(session = %key, %run_id, timeout_s = secs, aborted = matches!(aborted, Ok(CallResult::Success(true))), "hook turn timed out");
    }
}

/// The session key: the given one (inside the agent's namespace when it is not the
/// default agent's), else a new `hook:<uuid>`.
pub fn session_key(given: Option<&str>, agent: &str, default_agent: &str, uuid: &str) -> String {
    let base = given
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map_or_else(|| format!("hook:{uuid}"), str::to_owned);
    if base.starts_with("agent:") || agent == default_agent {
        base
    } else {
        format!("agent:{agent}:{base}")
    }
}

/// Where the reply goes: the channel's `default` account when it runs, else its first
/// running one. `last` (the main session's last chat) is not tracked yet: no delivery.
fn delivery(
    ctx: &HooksCtx,
    channel: &str,
    to: Option<&str>,
    key: &str,
    id: &str,
) -> Option<ChannelOrigin> {
    let Some(to) = to else {
        debug!(session = %key, %channel, "hook reply not delivered: no `to`");
        return None;
    };
    if channel == "last" {
        warn!(session = %key, "hook reply not delivered: channel \"last\" is not supported yet; name the channel");
        return None;
    }
    let statuses = ctx.channels.statuses();
    let running: Vec<_> = statuses
        .iter()
        .filter(|s| s.channel == channel && s.state != "disabled" && s.state != "error")
        .collect();
    let account = running
        .iter()
        .find(|s| s.account_id == "default")
        .or_else(|| running.first())
        .map(|s| s.account_id.clone());
    let Some(account) = account else {
        warn!(session = %key, %channel, "hook reply not delivered: no such channel account is configured");
        return None;
    };
    Some(ChannelOrigin {
        channel: channel.to_owned(),
        account,
        to: to.to_owned(),
        thread: None,
        // Unique per request: a reused session key is not a redelivery.
        message_id: format!("hook:{id}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_sessions_live_in_the_agent_namespace() {
        assert_eq!(session_key(None, "main", "main", "u1"), "hook:u1");
        assert_eq!(session_key(None, "ops", "main", "u1"), "agent:ops:hook:u1");
        assert_eq!(
            session_key(Some("hook:gh:7"), "ops", "main", "u1"),
            "agent:ops:hook:gh:7"
        );
        assert_eq!(
            session_key(Some("agent:x:y"), "ops", "main", "u1"),
            "agent:x:y"
        );
        assert_eq!(session_key(Some(" "), "main", "main", "u1"), "hook:u1");
    }
}
