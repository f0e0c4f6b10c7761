//! `sandbox.list`, `sandbox.recreate`, `sandbox.prune`: the Sandboxes actor over the
//! gateway, for `pincer sandbox list|recreate|prune` and OpenClaw-style clients.

use std::time::Duration;

use ractor::rpc::CallResult;
use serde_json::{Value, json};

use super::{SandboxesLookup, SandboxesMsg};
use crate::gateway::{CallContext, MethodRegistry};
use crate::protocol::{ErrorShape, scopes};

/// Creating containers can take a while (a first `recreate` + use); listing is quick.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

pub fn register(registry: &mut MethodRegistry, lookup: SandboxesLookup) {
    let l = lookup.clone();
    registry.method(
        "sandbox.list",
        scopes::READ,
        move |_cc: CallContext, _p: Value| {
            let l = l.clone();
            async move {
                let s = l().ok_or_else(unavailable)?;
                match s
                    .call(|reply| SandboxesMsg::List { reply }, Some(CALL_TIMEOUT))
                    .await
                {
                    Ok(CallResult::Success(Ok(list))) => {
                        Ok(json!({"count": list.len(), "sandboxes": list}))
                    }
                    Ok(CallResult::Success(Err(e))) => Err(ErrorShape::unavailable(e)),
                    _ => Err(unavailable()),
                }
            }
        },
    );
    let l = lookup.clone();
    registry.side_effecting(
        "sandbox.recreate",
        scopes::ADMIN,
        move |_cc: CallContext, p: Value| {
            let l = l.clone();
            async move {
                let filter = ["scope", "agentId", "sessionKey", "name"]
                    .iter()
                    .find_map(|k| p.get(*k).and_then(Value::as_str))
                    .map(str::to_owned);
                let s = l().ok_or_else(unavailable)?;
                match s
                    .call(
                        |reply| SandboxesMsg::Recreate { filter, reply },
                        Some(CALL_TIMEOUT),
                    )
                    .await
                {
                    Ok(CallResult::Success(Ok(removed))) => {
                        Ok(json!({"ok": true, "removed": removed}))
                    }
                    Ok(CallResult::Success(Err(e))) => Err(ErrorShape::unavailable(e)),
                    _ => Err(unavailable()),
                }
            }
        },
    );
    let l = lookup;
    registry.side_effecting(
        "sandbox.prune",
        scopes::ADMIN,
        move |_cc: CallContext, _p: Value| {
            let l = l.clone();
            async move {
                let s = l().ok_or_else(unavailable)?;
                match s
                    .call(|reply| SandboxesMsg::Prune { reply }, Some(CALL_TIMEOUT))
                    .await
                {
                    Ok(CallResult::Success(Ok(removed))) => {
                        Ok(json!({"ok": true, "removed": removed}))
                    }
                    Ok(CallResult::Success(Err(e))) => Err(ErrorShape::unavailable(e)),
                    _ => Err(unavailable()),
                }
            }
        },
    );
}

fn unavailable() -> ErrorShape {
    ErrorShape::unavailable(
        "the sandbox manager is not running (it restarts on its own; try again)",
    )
}
