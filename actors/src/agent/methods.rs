//! `agents.list`: the configured agents over the gateway, in OpenClaw's shape
//! (`{defaultId, mainKey, scope, agents: [{id, name, identity?}]}`) with Pincer's extras
//! for each agent (workspace, model chain, tool policy) and what its AgentActor is doing.

use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use serde_json::{Value, json};

use super::actor::{AgentDirectory, AgentMsg, AgentStatus};
use super::config::AgentsConfig;
use crate::gateway::{CallContext, MethodRegistry};
use crate::protocol::scopes;

/// How sessions are scoped, as OpenClaw's `agents.list` reports it: Pincer keys direct
/// chats per sender (`session.dmScope` decides which of them share `agent:<id>:main`).
pub const SESSION_SCOPE: &str = "per-sender";

/// What `agents.list` answers from.
pub struct AgentsInfo {
    pub config: AgentsConfig,
    /// `agents.list[]` as written in the config, for what the resolved specs do not
    /// keep (`identity`).
    pub entries: Vec<Value>,
    /// The running AgentActors (`None`: report the configuration only).
    pub directory: Option<AgentDirectory>,
}

impl AgentsInfo {
    /// From the resolved agents and the config file's value.
    pub fn new(config: AgentsConfig, value: &Value, directory: Option<AgentDirectory>) -> Self {
        let entries = value
            .pointer("/agents/list")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Self {
            config,
            entries,
            directory,
        }
    }
}

pub fn register(registry: &mut MethodRegistry, info: Arc<AgentsInfo>) {
    registry.method(
        "agents.list",
        scopes::READ,
        move |_cc: CallContext, _p: Value| {
            let info = info.clone();
            async move {
                let mut statuses = Vec::new();
                for a in &info.config.agents {
                    if let Some(st) = status(info.directory.as_ref(), &a.id).await {
                        statuses.push(st);
                    }
                }
                Ok(list_payload(&info.config, &info.entries, &statuses))
            }
        },
    );
}

/// What the agent's actor is doing; `None` while it restarts (or without actors).
async fn status(dir: Option<&AgentDirectory>, id: &str) -> Option<AgentStatus> {
    let actor = dir?.actor(id)?;
    match actor
        .call(
            |reply| AgentMsg::Status { reply },
            Some(Duration::from_secs(2)),
        )
        .await
    {
        Ok(CallResult::Success(st)) => Some(st),
        _ => None,
    }
}

/// The `agents.list` payload: each configured agent with its identity (as configured),
/// workspace, model chain and tool policy, and its actor's counters when known.
pub fn list_payload(config: &AgentsConfig, entries: &[Value], statuses: &[AgentStatus]) -> Value {
    let agents: Vec<Value> = config
        .agents
        .iter()
        .map(|a| {
            let models: Vec<String> = a.models.iter().map(ToString::to_string).collect();
            let mut v = json!({
                "id": a.id,
                "name": a.name,
                "default": a.id == config.default_agent,
                "workspace": a.workspace.display().to_string(),
                "model": models.first(),
                "fallbacks": models.iter().skip(1).collect::<Vec<_>>(),
                "models": models,
                "toolProfile": a.tool_profile,
                "tools": {"profile": a.tool_profile, "allow": a.tools_allow, "deny": a.tools_deny},
                "workspaceAccess": a.workspace_access,
            });
            let identity = entries
                .iter()
                .find(|e| e["id"] == a.id.as_str())
                .and_then(|e| e.get("identity"))
                .filter(|i| i.is_object());
            if let Some(i) = identity {
                v["identity"] = i.clone();
            }
            if let Some(st) = statuses.iter().find(|s| s.id == a.id) {
                v["running"] = json!(st.running);
                v["waiting"] = json!(st.waiting);
                v["maxConcurrent"] = json!(st.max_concurrent);
                v["turnsAdmitted"] = json!(st.admitted);
            }
            v
        })
        .collect();
    json!({
        "defaultId": config.default_agent,
        "mainKey": config.main_key,
        "scope": SESSION_SCOPE,
        "agents": agents,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn resolve(cfg: Value) -> AgentsConfig {
        let env = |k: &str| (k == "OPENAI_API_KEY").then(|| "k".to_owned());
        super::super::config::resolve(&cfg, Path::new("/state"), &env).unwrap()
    }

    #[test]
    fn lists_each_agent_with_identity_models_and_tools_in_openclaws_shape() {
        let cfg = json!({"agents": {"list": [
            {"id": "main", "identity": {"name": "Claw", "emoji": "🦀"}},
            {"id": "ops", "name": "Ops", "default": true,
             "model": {"primary": "openai/a", "fallbacks": ["openai/b"]},
             "tools": {"profile": "minimal", "deny": ["exec"]}},
        ]}, "session": {"mainKey": "home"}});
        let config = resolve(cfg.clone());
        let info = AgentsInfo::new(config, &cfg, None);
        let status = AgentStatus {
            id: "ops".into(),
            running: 1,
            waiting: 2,
            max_concurrent: 4,
            admitted: 9,
        };
        let v = list_payload(&info.config, &info.entries, &[status]);
        assert_eq!(v["defaultId"], "ops");
        assert_eq!(v["mainKey"], "home");
        assert_eq!(v["scope"], "per-sender");
        let main = &v["agents"][0];
        assert_eq!(main["identity"], json!({"name": "Claw", "emoji": "🦀"}));
        assert_eq!(main["default"], false);
        assert_eq!(main["workspace"], "/state/workspace");
        assert!(main.get("running").is_none(), "no actor, no counters");
        let ops = &v["agents"][1];
        assert_eq!(ops["name"], "Ops");
        assert!(ops.get("identity").is_none());
        assert_eq!(ops["workspace"], "/state/workspace-ops");
        assert_eq!(ops["models"], json!(["openai/a", "openai/b"]));
        assert_eq!(ops["model"], "openai/a");
        assert_eq!(ops["fallbacks"], json!(["openai/b"]));
        assert_eq!(
            ops["tools"],
            json!({"profile": "minimal", "allow": [], "deny": ["exec"]})
        );
        assert_eq!(
            (ops["running"].as_u64(), ops["waiting"].as_u64()),
            (Some(1), Some(2))
        );
    }
}
