//! The `config.*` RPC methods, answered by the [`ConfigWatcher`](super::watcher::ConfigWatcher).

use ractor::ActorRef;
use ractor::rpc::CallResult;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ConfigError;
use super::watcher::{ConfigMsg, schema_response};
use crate::gateway::{CallContext, MethodRegistry, MethodResult};
use crate::protocol::{ErrorShape, scopes};
use crate::store::Store;

/// Finds the running ConfigWatcher (its ref changes when its supervisor restarts it).
pub type WatcherLookup = std::sync::Arc<dyn Fn() -> Option<ActorRef<ConfigMsg>> + Send + Sync>;

/// Registers `config.get`, `config.schema`, `config.set`, `config.patch`, `config.apply`.
/// Scopes as in OpenClaw 2026.9.6 (`src/gateway/methods/core-descriptors.ts`): reading
/// needs `operator.read` (secrets are redacted), writing needs `operator.admin`. Every
/// accepted write is recorded in `audit`'s audit log (the changed paths, never values).
pub fn register(
    registry: &mut MethodRegistry,
    watcher: WatcherLookup,
    version: &str,
    audit: Store,
) {
    let w = watcher.clone();
    registry.method(
        "config.get",
        scopes::READ,
        move |_c: CallContext, _p: Value| {
            let w = w();
            async move {
                let Some(w) = w else {
                    return Err(unavailable());
                };
                match w.call(|reply| ConfigMsg::Get { reply }, None).await {
                    Ok(CallResult::Success(snap)) => {
                        Ok(serde_json::to_value(snap).expect("snapshot serialises"))
                    }
                    _ => Err(unavailable()),
                }
            }
        },
    );
    let version = version.to_owned();
    registry.method(
        "config.schema",
        scopes::READ,
        move |_c: CallContext, _p: Value| std::future::ready(Ok(schema_response(&version))),
    );
    for (name, patch) in [
        ("config.set", false),
        ("config.patch", true),
        ("config.apply", false),
    ] {
        let (w, store) = (watcher.clone(), audit.clone());
        registry.side_effecting(name, scopes::ADMIN, move |c: CallContext, p: Value| {
            let (w, store) = (w(), store.clone());
            async move {
                let Some(w) = w else {
                    return Err(unavailable());
                };
                let result = write(&w, name, patch, p).await;
                if let Ok(v) = &result {
                    record_change(&store, &c, name, v);
                }
                result
            }
        });
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WriteParams {
    raw: String,
    base_hash: Option<String>,
    // config.apply's extras, accepted for OpenClaw clients.
    #[allow(dead_code)]
    session_key: Option<String>,
    #[allow(dead_code)]
    note: Option<String>,
    #[allow(dead_code)]
    restart_delay_ms: Option<u64>,
}

async fn write(w: &ActorRef<ConfigMsg>, method: &str, patch: bool, params: Value) -> MethodResult {
    let p: WriteParams = serde_json::from_value(params).map_err(|e| {
        ErrorShape::invalid_request(format!(
            "invalid {method} params: {e} (expected {{raw, baseHash}})"
        ))
    })?;
    if p.raw.trim().is_empty() {
        return Err(ErrorShape::invalid_request(format!(
            "invalid {method} params: raw must not be empty"
        )));
    }
    let result = w
        .call(
            |reply| {
                if patch {
                    ConfigMsg::Patch {
                        raw: p.raw,
                        base_hash: p.base_hash,
                        reply,
                    }
                } else {
                    ConfigMsg::Set {
                        raw: p.raw,
                        base_hash: p.base_hash,
                        reply,
                    }
                }
            },
            None,
        )
        .await;
    match result {
        Ok(CallResult::Success(Ok(r))) => {
            let mut v = serde_json::to_value(&r).expect("result serialises");
            if !r.diff.restart_required.is_empty() {
                v["restart"] = json!({
                    "required": true,
                    "keys": r.diff.restart_required,
                    "message": format!("restart the gateway to apply {}", r.diff.restart_required.join(", ")),
                });
            }
            Ok(v)
        }
        Ok(CallResult::Success(Err(e))) => Err(to_error(e)),
        _ => Err(unavailable()),
    }
}

/// Audits an accepted write: the method, the client, the paths that changed.
fn record_change(store: &Store, c: &CallContext, method: &str, result: &Value) {
    let paths = |k: &str| -> Vec<String> {
        result["diff"][k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_owned))
            .collect()
    };
    let mut rec = crate::audit::AuditRecord::config_change(
        crate::audit::ACTOR_OPERATOR,
        &paths("changed"),
        &paths("restartRequired"),
    );
    rec.detail["method"] = json!(method);
    rec.detail["client"] = json!(c.client.id);
    rec.detail["connId"] = json!(&*c.conn_id);
    crate::audit::record(store, rec);
}

fn to_error(e: ConfigError) -> ErrorShape {
    let message = e.to_string();
    match e {
        ConfigError::Invalid { issues, .. } => {
            ErrorShape::invalid_request(message).with_details(json!({ "issues": issues }))
        }
        ConfigError::StaleBaseHash { current, .. } => ErrorShape::invalid_request(message)
            .with_details(json!({ "code": "STALE_BASE_HASH", "currentHash": current })),
        ConfigError::MissingBaseHash => ErrorShape::invalid_request(message)
            .with_details(json!({ "code": "BASE_HASH_REQUIRED" })),
        _ => ErrorShape::unavailable(message),
    }
}

fn unavailable() -> ErrorShape {
    ErrorShape::unavailable("the config service is restarting; retry in a moment").retry_after(500)
}
