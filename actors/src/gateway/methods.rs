//! The gateway's own methods: `health`, `status`, `system-presence`, `logs.tail`.
//!
//! Other capabilities register theirs from the composition root (see
//! [`MethodRegistry`](super::MethodRegistry)).

use std::sync::Arc;

use ractor::rpc::CallResult;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    CallContext, GatewayInfo, GatewayMsg, HealthFn, MethodRegistry, MethodResult, tail_file,
};
use crate::protocol::{ErrorShape, scopes};

/// Events the gateway itself emits.
pub const GATEWAY_EVENTS: [&str; 5] = [
    "connect.challenge",
    "tick",
    "health",
    "presence",
    "shutdown",
];

/// Registers the gateway's own methods and events.
pub fn register(registry: &mut MethodRegistry, info: &GatewayInfo, health: HealthFn) {
    let h = health.clone();
    registry.method(
        "health",
        // A liveness probe needs no scope (OpenClaw exempts it too).
        scopes::NONE,
        move |_ctx: CallContext, _p: Value| {
            let started = tokio::time::Instant::now();
            let mut body = h();
            if let Some(obj) = body.as_object_mut() {
                obj.insert(
                    "durationMs".into(),
                    json!(started.elapsed().as_millis() as u64),
                );
            }
            std::future::ready(Ok(body))
        },
    );
    let info_status = info.clone();
    registry.method(
        "status",
        scopes::READ,
        move |ctx: CallContext, _p: Value| {
            let info = info_status.clone();
            async move { status(ctx, info).await }
        },
    );
    registry.method(
        "system-presence",
        scopes::READ,
        |ctx: CallContext, _p: Value| async move {
            match ctx
                .gateway
                .call(|reply| GatewayMsg::Presence { reply }, None)
                .await
            {
                Ok(CallResult::Success(list)) => {
                    Ok(serde_json::to_value(list).expect("presence serialises"))
                }
                _ => Err(ErrorShape::unavailable("gateway is shutting down")),
            }
        },
    );
    let log_file = info.log_file.clone();
    registry.method(
        "logs.tail",
        scopes::READ,
        move |_ctx: CallContext, p: Value| {
            let log_file = log_file.clone();
            async move { logs_tail(log_file, p).await }
        },
    );
    for e in GATEWAY_EVENTS {
        registry.event(e);
    }
}

/// The `health` body before other capabilities add to it.
pub fn default_health(info: GatewayInfo) -> HealthFn {
    let info = Arc::new(info);
    Arc::new(move || {
        json!({
            "ok": true,
            "ts": super::now_ms(),
            "durationMs": 0,
            "channels": {},
            "channelOrder": [],
            "channelLabels": {},
            "heartbeatSeconds": 0,
            "defaultAgentId": info.session_defaults.default_agent_id,
            "agents": [],
            "sessions": { "path": info.state_dir.clone().unwrap_or_default(), "count": 0, "recent": [] },
        })
    })
}

async fn status(ctx: CallContext, info: GatewayInfo) -> MethodResult {
    let st = match ctx
        .gateway
        .call(|reply| GatewayMsg::Status { reply }, None)
        .await
    {
        Ok(CallResult::Success(s)) => s,
        _ => return Err(ErrorShape::unavailable("gateway is shutting down")),
    };
    Ok(json!({
        "version": info.version,
        "uptimeMs": st.uptime_ms,
        "gateway": {
            "listen": st.local_addr.to_string(),
            "authMode": st.auth_mode,
            "connections": st.connections,
        },
        "configPath": info.config_path,
        "stateDir": info.state_dir,
        "sessionDefaults": info.session_defaults,
        "stateVersion": st.state_version,
        "heartbeat": { "enabled": false },
        "sessions": { "count": 0, "recent": [] },
        "channelSummary": [],
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LogsTailParams {
    cursor: Option<u64>,
    limit: Option<usize>,
    max_bytes: Option<u64>,
}

async fn logs_tail(log_file: Option<std::path::PathBuf>, params: Value) -> MethodResult {
    let params: LogsTailParams = if params.is_null() {
        LogsTailParams {
            cursor: None,
            limit: None,
            max_bytes: None,
        }
    } else {
        serde_json::from_value(params)
            .map_err(|e| ErrorShape::invalid_request(format!("invalid logs.tail params: {e}")))?
    };
    let limit = params.limit.unwrap_or(500);
    let max_bytes = params.max_bytes.unwrap_or(250_000);
    if !(1..=5000).contains(&limit) || !(1..=1_000_000).contains(&max_bytes) {
        return Err(ErrorShape::invalid_request(
            "invalid logs.tail params: limit must be 1-5000 and maxBytes 1-1000000",
        ));
    }
    let Some(path) = log_file else {
        return Err(ErrorShape::unavailable(
            "this gateway writes no log file (started without a state directory)",
        ));
    };
    let tail =
        tokio::task::spawn_blocking(move || tail_file(&path, params.cursor, limit, max_bytes))
            .await
            .map_err(|e| ErrorShape::unavailable(format!("log reader failed: {e}")))?
            .map_err(|e| ErrorShape::unavailable(format!("cannot read the log file: {e}")))?;
    Ok(serde_json::to_value(tail).expect("logs tail serialises"))
}
