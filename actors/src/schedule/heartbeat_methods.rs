//! `heartbeat.status`, `heartbeat.run` and OpenClaw's `last-heartbeat`: the heartbeats
//! over the gateway. Each is one call to the Heartbeat actor; the `heartbeat` event is
//! declared here.

use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use ractor::rpc::CallResult;
use serde_json::{Value, json};

use super::heartbeat::{HeartbeatError, HeartbeatMsg};
use crate::gateway::{CallContext, MethodRegistry};
use crate::protocol::{ErrorShape, scopes};

/// The running Heartbeat actor (a restarted one has a new ref).
pub type HeartbeatLookup = Arc<dyn Fn() -> Option<ActorRef<HeartbeatMsg>> + Send + Sync>;

const STATUS_TIMEOUT: Duration = Duration::from_secs(10);
/// `heartbeat.run` waits for the turn: as long as the agent's own deadline may be.
const RUN_TIMEOUT: Duration = Duration::from_secs(3600);

fn unavailable() -> ErrorShape {
    ErrorShape::unavailable("the heartbeats are restarting; retry shortly")
}

pub fn register(registry: &mut MethodRegistry, lookup: HeartbeatLookup) {
    registry.event("heartbeat");
    let l = lookup.clone();
    registry.method(
        "heartbeat.status",
        scopes::READ,
        move |_cc: CallContext, p: Value| {
            let l = l.clone();
            async move {
                let agent = p.get("agentId").and_then(Value::as_str).map(str::to_owned);
                let hb = l().ok_or_else(unavailable)?;
                match hb
                    .call(|reply| HeartbeatMsg::Status { reply }, Some(STATUS_TIMEOUT))
                    .await
                {
                    Ok(CallResult::Success(list)) => {
                        let list: Vec<_> = list
                            .into_iter()
                            .filter(|s| agent.as_deref().is_none_or(|a| a == s.agent_id))
                            .collect();
                        Ok(json!({"count": list.len(), "agents": list}))
                    }
                    _ => Err(unavailable()),
                }
            }
        },
    );
    let l = lookup.clone();
    registry.method(
        "last-heartbeat",
        scopes::READ,
        move |_cc: CallContext, _p: Value| {
            let l = l.clone();
            async move {
                let hb = l().ok_or_else(unavailable)?;
                match hb
                    .call(|reply| HeartbeatMsg::Status { reply }, Some(STATUS_TIMEOUT))
                    .await
                {
                    // OpenClaw answers the latest heartbeat event, or null.
                    Ok(CallResult::Success(list)) => Ok(list
                        .into_iter()
                        .filter_map(|s| s.last)
                        .max_by_key(|e| e.ts)
                        .map(|e| serde_json::to_value(e).unwrap_or_default())
                        .unwrap_or(Value::Null)),
                    _ => Err(unavailable()),
                }
            }
        },
    );
    let l = lookup;
    registry.side_effecting(
        "heartbeat.run",
        scopes::WRITE,
        move |_cc: CallContext, p: Value| {
            let l = l.clone();
            async move {
                let agent = p.get("agentId").and_then(Value::as_str).map(str::to_owned);
                let force = p.get("force").and_then(Value::as_bool).unwrap_or(false);
                let hb = l().ok_or_else(unavailable)?;
                match hb
                    .call(
                        |reply| HeartbeatMsg::Run {
                            agent,
                            force,
                            reply,
                        },
                        Some(RUN_TIMEOUT),
                    )
                    .await
                {
                    Ok(CallResult::Success(Ok(event))) => {
                        Ok(serde_json::to_value(event).unwrap_or_default())
                    }
                    Ok(CallResult::Success(Err(e @ HeartbeatError::UnknownAgent { .. }))) => {
                        Err(ErrorShape::invalid_request(e.to_string()))
                    }
                    Ok(CallResult::Success(Err(e))) => Err(ErrorShape::unavailable(e.to_string())),
                    _ => Err(unavailable()),
                }
            }
        },
    );
}
