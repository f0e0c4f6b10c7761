//! The session tools, OpenClaw's names and parameters: `sessions_spawn` (a task for a
//! sub-agent, non-blocking; its result is announced back), `sessions_send` (a message to
//! another session, waiting for the reply or not), `sessions_list`, `sessions_history`
//! and `agents_list`.
//!
//! A tool here only describes itself and forwards the call: what a call may do (which
//! agents it may reach, how many sub-agents may run) and how it is carried out is
//! [`crate::session::delegation`], behind the [`SessionTools`] the session puts in the
//! call's context.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use super::{Risk, Tool, ToolContext, ToolOutput, boxed, schema};
use crate::agent::model::ToolSpec;
use crate::channels::ChannelOrigin;

/// Who is calling: the session whose turn runs the tool.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub session_key: String,
    pub agent_id: String,
    pub run_id: String,
    /// The chat this turn answers (an announced result is answered there too).
    pub origin: Option<ChannelOrigin>,
    /// How deep in spawns this session is (0: not a sub-agent).
    pub depth: u32,
}

/// Carries out the session tools (implemented by `session::delegation::Delegator`).
pub trait SessionTools: Send + Sync + 'static {
    /// Runs `tool` for `caller`; `Ok` is the JSON result the model sees, `Err` says what
    /// was refused or failed and why.
    fn call(
        &self,
        caller: Caller,
        tool: &'static str,
        args: Value,
    ) -> BoxFuture<'static, Result<Value, String>>;
}

/// What a session tool call works with.
#[derive(Clone)]
pub struct SessionsCtx {
    pub tools: Arc<dyn SessionTools>,
    pub caller: Caller,
}

macro_rules! session_tool {
    ($ty:ident, $name:literal, $group:literal, $risk:expr, $desc:literal, $props:expr, $req:expr) => {
        pub struct $ty;

        impl Tool for $ty {
            fn name(&self) -> &'static str {
                $name
            }
            fn group(&self) -> &'static str {
                $group
            }
            fn risk(&self) -> Risk {
                $risk
            }
            fn spec(&self) -> ToolSpec {
                ToolSpec {
                    name: $name.into(),
                    description: $desc.into(),
                    parameters: schema($props, $req),
                }
            }
            fn call(&self, ctx: ToolContext, args: Value) -> BoxFuture<'static, ToolOutput> {
                boxed($name, forward(ctx, $name, args))
            }
        }
    };
}

session_tool!(
    SessionsSpawn,
    "sessions_spawn",
    "group:sessions",
    Risk::Medium,
    "Start a sub-agent on a task; returns at once. Its result arrives later as a message (correlationId).",
    json!({
        "task": {"type": "string", "description": "everything it needs to know"},
        "agentId": {"type": "string", "description": "default: you"},
        "label": {"type": "string"},
        "model": {"type": "string"},
        "runTimeoutSeconds": {"type": "integer"},
        "priority": {"type": "integer"},
    }),
    &["task"]
);

session_tool!(
    SessionsSend,
    "sessions_send",
    "group:sessions",
    Risk::Medium,
    "Message another session; wait timeoutSeconds (default 30) for the reply, or 0: it comes back later.",
    json!({
        "sessionKey": {"type": "string"},
        "message": {"type": "string"},
        "timeoutSeconds": {"type": "integer"},
    }),
    &["sessionKey", "message"]
);

session_tool!(
    SessionsList,
    "sessions_list",
    "group:sessions",
    Risk::Low,
    "List the sessions you can reach, most recent first.",
    json!({
        "limit": {"type": "integer"},
        "activeMinutes": {"type": "integer"},
        "kinds": {"type": "array", "items": {"type": "string"}, "description": "main group channel subagent cron hook other"},
    }),
    &[]
);

session_tool!(
    SessionsHistory,
    "sessions_history",
    "group:sessions",
    Risk::Low,
    "Read the recent transcript of a session you can reach.",
    json!({
        "sessionKey": {"type": "string"},
        "limit": {"type": "integer"},
        "includeTools": {"type": "boolean"},
    }),
    &["sessionKey"]
);

session_tool!(
    AgentsList,
    "agents_list",
    "group:agents",
    Risk::Low,
    "List the agents sessions_spawn may start (agentId values).",
    json!({}),
    &[]
);

async fn forward(ctx: ToolContext, tool: &'static str, args: Value) -> ToolOutput {
    if let Err(e) = super::args::Args::new(tool, &args) {
        return ToolOutput::error(e);
    }
    let Some(s) = ctx.sessions else {
        return ToolOutput::error(format!(
            "{tool}: not available here (this turn has no session to act for)"
        ));
    };
    match s.tools.call(s.caller, tool, args).await {
        Ok(v) => ToolOutput::ok(serde_json::to_string_pretty(&v).unwrap_or_default()),
        Err(e) => ToolOutput::error(format!("{tool}: {e}")),
    }
}
