//! The agents' view of `pincer.json`: providers with their keys, agents with their model
//! chains, workspaces and policies. Resolved once per config version from the validated
//! JSON, plus the environment (zero configuration: `ANTHROPIC_API_KEY`, `OPENAI_API_KEY`,
//! `GEMINI_API_KEY`). The environment is passed in, never read here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::model::{Api, Thinking};

/// `provider/model`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelRef {
    pub provider: String,
    pub model: String,
}

impl ModelRef {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.split_once('/') {
            Some((p, m)) if !p.is_empty() && !m.is_empty() => Ok(Self {
                provider: p.to_owned(),
                model: m.to_owned(),
            }),
            _ => Err(format!(
                "model {s:?} is not provider/model (e.g. anthropic/claude-sonnet-4-5)"
            )),
        }
    }
}

impl std::fmt::Display for ModelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub id: String,
    pub name: Option<String>,
    pub context_window: Option<u64>,
    pub max_tokens: Option<u32>,
}

impl ModelSpec {
    /// A model known by its id alone (no display name; window and output limits default).
    pub fn with_id(id: &str) -> Self {
        ModelSpec {
            id: id.to_owned(),
            name: None,
            context_window: None,
            max_tokens: None,
        }
    }
}

/// One provider with its keys (auth profiles `<id>:0`, `<id>:1`, ...).
#[derive(Clone, PartialEq)]
pub struct ProviderSpec {
    pub id: String,
    pub api: Api,
    pub base_url: String,
    pub keys: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub models: Vec<ModelSpec>,
    /// Where it came from: `config`, `env ANTHROPIC_API_KEY`, `ollama`.
    pub source: String,
}

impl std::fmt::Debug for ProviderSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSpec")
            .field("id", &self.id)
            .field("api", &self.api)
            .field("base_url", &self.base_url)
            .field("keys", &self.keys.len())
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Fast,
    Standard,
    Deep,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "fast" => Some(Self::Fast),
            "standard" => Some(Self::Standard),
            "deep" => Some(Self::Deep),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    pub id: String,
    pub name: String,
    pub workspace: PathBuf,
    /// Primary first, then the fallbacks.
    pub models: Vec<ModelRef>,
    pub thinking: Thinking,
    pub mode: Mode,
    pub max_iterations: u32,
    pub timeout: Duration,
    pub bootstrap_max_chars: usize,
    pub history_turns: usize,
    /// Turns of this agent running at once (`agents.defaults.maxConcurrent`).
    pub max_concurrent: usize,
    /// "none" | "ro" | "rw".
    pub workspace_access: String,
    pub tool_profile: String,
    pub tools_allow: Vec<String>,
    pub tools_deny: Vec<String>,
    /// What its sub-agents may do (`agents.defaults.subagents`, `agents.list[].subagents`).
    pub subagents: SubagentPolicy,
    /// Messaging other agents' sessions (`tools.agentToAgent`, `session.agentToAgent`).
    pub agent_to_agent: AgentToAgent,
}

/// Limits on `sessions_spawn` (OpenClaw's `subagents` keys).
#[derive(Debug, Clone, PartialEq)]
pub struct SubagentPolicy {
    /// Agents it may spawn besides itself (`allowAgents`; `"*"`: any).
    pub allow_agents: Vec<String>,
    /// Sub-agent runs in flight at once across the gateway (`maxConcurrent`, default 8).
    pub max_concurrent: usize,
    /// A finished sub-agent session is archived after this (`archiveAfterMinutes`, 60).
    pub archive_after: Duration,
    /// How deep spawns may nest (`maxSpawnDepth`, default 1: a sub-agent cannot spawn).
    pub max_spawn_depth: u32,
}

impl Default for SubagentPolicy {
    fn default() -> Self {
        Self {
            allow_agents: Vec::new(),
            max_concurrent: 8,
            archive_after: Duration::from_secs(60 * 60),
            max_spawn_depth: 1,
        }
    }
}

impl SubagentPolicy {
    /// Whether an agent with this policy may spawn a run of `target` (itself always).
    pub fn may_spawn(&self, own: &str, target: &str) -> bool {
        own == target || self.allow_agents.iter().any(|a| a == "*" || a == target)
    }
}

/// Cross-agent messaging: off unless enabled, and then only to the listed agents.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentToAgent {
    /// `tools.agentToAgent.enabled` (default false).
    pub enabled: bool,
    /// `tools.agentToAgent.allow`: agent ids (`"*"`: any).
    pub allow: Vec<String>,
    /// `session.agentToAgent.maxPingPongTurns` (0-5, default 5).
    pub max_ping_pong_turns: u32,
}

impl Default for AgentToAgent {
    fn default() -> Self {
        Self {
            enabled: false,
            allow: Vec::new(),
            max_ping_pong_turns: 5,
        }
    }
}

impl AgentToAgent {
    /// Whether an agent may reach a session of `target` (its own always).
    pub fn may_reach(&self, own: &str, target: &str) -> bool {
        own == target || (self.enabled && self.allow.iter().any(|a| a == "*" || a == target))
    }
}

impl AgentSpec {
    /// An agent with the documented defaults (the key table's), no model yet.
    pub fn new(id: &str, workspace: impl Into<PathBuf>) -> Self {
        Self {
            id: id.to_owned(),
            name: id.to_owned(),
            workspace: workspace.into(),
            models: Vec::new(),
            thinking: Thinking::Off,
            mode: Mode::Standard,
            max_iterations: 24,
            timeout: Duration::from_secs(600),
            bootstrap_max_chars: 4000,
            history_turns: 40,
            max_concurrent: 4,
            workspace_access: "rw".into(),
            tool_profile: "coding".into(),
            tools_allow: Vec::new(),
            tools_deny: Vec::new(),
            subagents: SubagentPolicy::default(),
            agent_to_agent: AgentToAgent::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExecPolicy {
    /// "off" | "on-miss" | "always".
    pub ask: String,
    pub allowlist: Vec<String>,
    pub approval_timeout: Duration,
    pub timeout: Duration,
}

impl Default for ExecPolicy {
    fn default() -> Self {
        Self {
            ask: "on-miss".into(),
            allowlist: Vec::new(),
            approval_timeout: Duration::from_secs(120),
            timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentsConfig {
    pub agents: Vec<AgentSpec>,
    pub default_agent: String,
    pub providers: BTreeMap<String, ProviderSpec>,
    pub exec: ExecPolicy,
    pub main_key: String,
}

impl AgentsConfig {
    pub fn agent(&self, id: &str) -> Option<&AgentSpec> {
        self.agents.iter().find(|a| a.id == id)
    }

    /// What to tell a user who has no model at all.
    pub fn no_model_help() -> &'static str {
        "No model is configured. Set one of ANTHROPIC_API_KEY, OPENAI_API_KEY or GEMINI_API_KEY \
         in the gateway's environment (or put the key in credentials/<anthropic|openai|google>.key \
         in the state directory), run Ollama on 127.0.0.1:11434, or add a provider under \
         models.providers in pincer.json and set agents.defaults.model (e.g. \"openai/gpt-4.1-mini\"); \
         `pincer doctor` checks the result."
    }
}

/// Zero-configuration providers: (env var, provider id, api, base URL, default model).
pub const ENV_PROVIDERS: [(&str, &str, Api, &str, &str); 3] = [
    (
        "ANTHROPIC_API_KEY",
        "anthropic",
        Api::AnthropicMessages,
        "https://api.anthropic.com",
        "claude-sonnet-4-5",
    ),
    (
        "OPENAI_API_KEY",
        "openai",
        Api::OpenAiCompletions,
        "https://api.openai.com/v1",
        "gpt-4.1-mini",
    ),
    (
        "GEMINI_API_KEY",
        "google",
        Api::GoogleGenerativeAi,
        "https://generativelanguage.googleapis.com/v1beta",
        "gemini-2.5-flash",
    ),
];

/// Ollama's OpenAI-compatible endpoint, used when it answers on its default port.
pub const OLLAMA_BASE: &str = "http://127.0.0.1:11434";

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn u64_at(v: &Value, path: &[&str]) -> Option<u64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_u64()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `"provider/model"` or `{primary, fallbacks}`.
fn model_chain(v: Option<&Value>) -> Result<Vec<ModelRef>, String> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    match v {
        Value::String(s) => out.push(ModelRef::parse(s)?),
        Value::Object(o) => {
            if let Some(p) = o.get("primary").and_then(Value::as_str) {
                out.push(ModelRef::parse(p)?);
            }
            for f in strings(o.get("fallbacks")) {
                out.push(ModelRef::parse(&f)?);
            }
        }
        _ => {}
    }
    Ok(out)
}

/// A key from the config: literal, `env:NAME`, or `file:NAME` (in `credentials/`).
fn key_value(
    raw: &str,
    env: &dyn Fn(&str) -> Option<String>,
    state_dir: &Path,
) -> Result<String, String> {
    if let Some(name) = raw.strip_prefix("env:") {
        return env(name).ok_or_else(|| {
            format!("apiKey \"env:{name}\": the environment variable {name} is not set")
        });
    }
    if let Some(name) = raw.strip_prefix("file:") {
        if name.contains('/') || name.starts_with('.') {
            return Err(format!(
                "apiKey \"file:{name}\": name a file directly inside credentials/"
            ));
        }
        return credential(state_dir, name).ok_or_else(|| {
            format!(
                "apiKey \"file:{name}\": {} is missing or empty",
                state_dir.join("credentials").join(name).display()
            )
        });
    }
    Ok(raw.to_owned())
}

/// A secret kept in `<state dir>/credentials/<name>` (the directory is private, 0700).
fn credential(state_dir: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(state_dir.join("credentials").join(name)).ok()?;
    let key = text.trim();
    (!key.is_empty()).then(|| key.to_owned())
}

/// A `subagents` object over `base` (the defaults').
fn subagent_policy(v: Option<&Value>, base: SubagentPolicy) -> SubagentPolicy {
    let Some(v) = v else { return base };
    SubagentPolicy {
        allow_agents: if v.get("allowAgents").is_some() {
            strings(v.get("allowAgents"))
        } else {
            base.allow_agents
        },
        max_concurrent: u64_at(v, &["maxConcurrent"])
            .map(|n| n.max(1) as usize)
            .unwrap_or(base.max_concurrent),
        archive_after: u64_at(v, &["archiveAfterMinutes"])
            .map(|m| Duration::from_secs(m * 60))
            .unwrap_or(base.archive_after),
        max_spawn_depth: u64_at(v, &["maxSpawnDepth"])
            .map(|n| n as u32)
            .unwrap_or(base.max_spawn_depth),
    }
}

/// Resolves the agents' configuration. `env` looks up environment variables.
pub fn resolve(
    config: &Value,
    state_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<AgentsConfig, String> {
    let mut providers = BTreeMap::new();
    if let Some(map) = config
        .pointer("/models/providers")
        .and_then(Value::as_object)
    {
        for (id, p) in map {
            let api = p
                .get("api")
                .and_then(Value::as_str)
                .map(|a| {
                    Api::parse(a)
                        .ok_or_else(|| format!("models.providers.{id}.api: unknown api {a:?}"))
                })
                .transpose()?
                .or_else(|| ENV_PROVIDERS.iter().find(|e| e.1 == id).map(|e| e.2))
                .unwrap_or(Api::OpenAiCompletions);
            let base_url = p
                .get("baseUrl")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| {
                    ENV_PROVIDERS
                        .iter()
                        .find(|e| e.1 == id)
                        .map(|e| e.3.to_owned())
                })
                .ok_or_else(|| format!("models.providers.{id}.baseUrl is required for a provider Pincer does not know"))?;
            let mut keys = Vec::new();
            if let Some(k) = p.get("apiKey").and_then(Value::as_str) {
                keys.push(
                    key_value(k, env, state_dir)
                        .map_err(|e| format!("models.providers.{id}.{e}"))?,
                );
            }
            for k in strings(p.get("apiKeys")) {
                keys.push(
                    key_value(&k, env, state_dir)
                        .map_err(|e| format!("models.providers.{id}.{e}"))?,
                );
            }
            if keys.is_empty()
                && let Some(e) = ENV_PROVIDERS.iter().find(|e| e.1 == id)
                && let Some(k) = env(e.0)
            {
                keys.push(k);
            }
            if keys.is_empty()
                && let Some(k) = credential(state_dir, &format!("{id}.key"))
            {
                keys.push(k);
            }
            let headers = p
                .get("headers")
                .and_then(Value::as_object)
                .map(|h| {
                    h.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            let models = p
                .get("models")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|m| {
                            Some(ModelSpec {
                                id: m.get("id")?.as_str()?.to_owned(),
                                name: m.get("name").and_then(Value::as_str).map(str::to_owned),
                                context_window: m.get("contextWindow").and_then(Value::as_u64),
                                max_tokens: m
                                    .get("maxTokens")
                                    .and_then(Value::as_u64)
                                    .map(|n| n as u32),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            providers.insert(
                id.clone(),
                ProviderSpec {
                    id: id.clone(),
                    api,
                    base_url: base_url.trim_end_matches('/').to_owned(),
                    keys,
                    headers,
                    models,
                    source: "config".into(),
                },
            );
        }
    }
    for (var, id, api, base, model) in ENV_PROVIDERS {
        if providers.contains_key(id) {
            continue;
        }
        let found = env(var)
            .filter(|k| !k.trim().is_empty())
            .map(|k| (k, format!("env {var}")))
            .or_else(|| {
                credential(state_dir, &format!("{id}.key"))
                    .map(|k| (k, format!("credentials/{id}.key")))
            });
        if let Some((key, source)) = found {
            providers.insert(
                id.to_owned(),
                ProviderSpec {
                    id: id.to_owned(),
                    api,
                    base_url: base.to_owned(),
                    keys: vec![key],
                    headers: Vec::new(),
                    models: vec![ModelSpec::with_id(model)],
                    source,
                },
            );
        }
    }

    let d = config
        .pointer("/agents/defaults")
        .cloned()
        .unwrap_or(Value::Null);
    let mut default_models =
        model_chain(d.get("model")).map_err(|e| format!("agents.defaults.model: {e}"))?;
    if default_models.is_empty() {
        // Zero configuration: the first provider's first model.
        if let Some(p) = providers.values().find(|p| !p.models.is_empty()) {
            default_models.push(ModelRef {
                provider: p.id.clone(),
                model: p.models[0].id.clone(),
            });
        }
    }
    let default_workspace = d
        .get("workspace")
        .and_then(Value::as_str)
        .map(|w| expand_home(w, env))
        .unwrap_or_else(|| state_dir.join("workspace"));
    let thinking = |v: Option<&str>| match v {
        Some("low") => Thinking::Low,
        Some("medium") => Thinking::Medium,
        Some("high") => Thinking::High,
        _ => Thinking::Off,
    };
    let base = AgentSpec {
        models: default_models.clone(),
        thinking: thinking(d.get("thinking").and_then(Value::as_str)),
        mode: d
            .get("mode")
            .and_then(Value::as_str)
            .and_then(Mode::parse)
            .unwrap_or(Mode::Standard),
        max_iterations: u64_at(&d, &["maxIterations"]).unwrap_or(24) as u32,
        timeout: Duration::from_secs(u64_at(&d, &["timeoutSeconds"]).unwrap_or(600)),
        bootstrap_max_chars: u64_at(&d, &["bootstrapMaxChars"]).unwrap_or(4000) as usize,
        history_turns: u64_at(&d, &["historyTurns"]).unwrap_or(40) as usize,
        max_concurrent: u64_at(&d, &["maxConcurrent"]).unwrap_or(4).max(1) as usize,
        workspace_access: str_at(&d, &["workspaceAccess"]).unwrap_or("rw").to_owned(),
        tool_profile: str_at(config, &["tools", "profile"])
            .unwrap_or("coding")
            .to_owned(),
        tools_allow: strings(config.pointer("/tools/allow")),
        tools_deny: strings(config.pointer("/tools/deny")),
        subagents: subagent_policy(d.get("subagents"), SubagentPolicy::default()),
        agent_to_agent: AgentToAgent {
            enabled: config
                .pointer("/tools/agentToAgent/enabled")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            allow: strings(config.pointer("/tools/agentToAgent/allow")),
            max_ping_pong_turns: config
                .pointer("/session/agentToAgent/maxPingPongTurns")
                .and_then(Value::as_u64)
                .unwrap_or(5)
                .min(5) as u32,
        },
        ..AgentSpec::new("main", default_workspace.clone())
    };
    let mut agents = Vec::new();
    let mut default_agent = None;
    for (i, a) in config
        .pointer("/agents/list")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let id = a
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("agents.list.{i}.id is required"))?
            .to_owned();
        if agents.iter().any(|x: &AgentSpec| x.id == id) {
            return Err(format!("agents.list.{i}.id: agent {id:?} is listed twice"));
        }
        let mut spec = base.clone();
        spec.name = a
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(&id)
            .to_owned();
        spec.workspace = a
            .get("workspace")
            .and_then(Value::as_str)
            .map(|w| expand_home(w, env))
            .unwrap_or_else(|| {
                if id == "main" {
                    default_workspace.clone()
                } else {
                    state_dir.join(format!("workspace-{id}"))
                }
            });
        let chain =
            model_chain(a.get("model")).map_err(|e| format!("agents.list.{i}.model: {e}"))?;
        if !chain.is_empty() {
            spec.models = chain;
        }
        if let Some(t) = a.get("thinking").and_then(Value::as_str) {
            spec.thinking = thinking(Some(t));
        }
        if let Some(m) = a.get("mode").and_then(Value::as_str).and_then(Mode::parse) {
            spec.mode = m;
        }
        if let Some(w) = a.get("workspaceAccess").and_then(Value::as_str) {
            spec.workspace_access = w.to_owned();
        }
        if let Some(t) = a.get("tools") {
            if let Some(p) = t.get("profile").and_then(Value::as_str) {
                spec.tool_profile = p.to_owned();
            }
            if t.get("allow").is_some() {
                spec.tools_allow = strings(t.get("allow"));
            }
            if t.get("deny").is_some() {
                spec.tools_deny = strings(t.get("deny"));
            }
        }
        spec.subagents = subagent_policy(a.get("subagents"), spec.subagents);
        if a.get("default").and_then(Value::as_bool) == Some(true) && default_agent.is_none() {
            default_agent = Some(id.clone());
        }
        spec.id = id;
        agents.push(spec);
    }
    if agents.is_empty() {
        agents.push(base);
    }
    let default_agent = default_agent.unwrap_or_else(|| agents[0].id.clone());
    for a in &agents {
        for m in &a.models {
            if !providers.contains_key(&m.provider) && m.provider != "ollama" {
                return Err(format!(
                    "agent {:?} uses model {m}, but there is no provider {:?}; add models.providers.{} or set its API key in the environment",
                    a.id, m.provider, m.provider
                ));
            }
        }
    }
    let e = config
        .pointer("/tools/exec")
        .cloned()
        .unwrap_or(Value::Null);
    Ok(AgentsConfig {
        agents,
        default_agent,
        providers,
        exec: ExecPolicy {
            ask: str_at(&e, &["ask"]).unwrap_or("on-miss").to_owned(),
            allowlist: strings(e.get("allowlist")),
            approval_timeout: Duration::from_secs(
                u64_at(&e, &["approvalTimeoutSeconds"]).unwrap_or(120),
            ),
            timeout: Duration::from_secs(u64_at(&e, &["timeoutSeconds"]).unwrap_or(120)),
        },
        main_key: str_at(config, &["session", "mainKey"])
            .unwrap_or("main")
            .to_owned(),
    })
}

impl AgentsConfig {
    /// Whether any agent lacks a model (then a local Ollama is worth asking).
    pub fn needs_models(&self) -> bool {
        self.agents.iter().any(|a| a.models.is_empty())
    }

    /// Adds a detected Ollama (its OpenAI-compatible API under `<base>/v1`) and gives it
    /// to every agent that has no model.
    pub fn add_ollama(&mut self, base: &str, models: &[String]) {
        let Some(first) = models.first() else {
            return;
        };
        let base = base.trim_end_matches('/');
        self.providers.insert(
            "ollama".into(),
            ProviderSpec {
                id: "ollama".into(),
                api: Api::OpenAiCompletions,
                base_url: format!("{base}/v1"),
                keys: Vec::new(),
                headers: Vec::new(),
                models: models
                    .iter()
                    .map(|m| ModelSpec {
                        id: m.clone(),
                        name: None,
                        context_window: None,
                        max_tokens: None,
                    })
                    .collect(),
                source: format!("ollama at {base}"),
            },
        );
        for a in self.agents.iter_mut().filter(|a| a.models.is_empty()) {
            a.models.push(ModelRef {
                provider: "ollama".into(),
                model: first.clone(),
            });
        }
    }
}

/// Where to look for Ollama: `OLLAMA_HOST` (Ollama's own variable) or its default port.
pub fn ollama_base(env: &dyn Fn(&str) -> Option<String>) -> String {
    match env("OLLAMA_HOST").filter(|h| !h.trim().is_empty()) {
        Some(h) if h.starts_with("http://") || h.starts_with("https://") => h,
        Some(h) => format!("http://{h}"),
        None => OLLAMA_BASE.to_owned(),
    }
}

fn expand_home(p: &str, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => env("HOME")
            .map(|h| Path::new(&h).join(rest))
            .unwrap_or_else(|| PathBuf::from(p)),
        None => PathBuf::from(p),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn zero_config_uses_the_environment_keys() {
        let env = env_of(&[("OPENAI_API_KEY", "sk-env")]);
        let c = resolve(&json!({}), Path::new("/s"), &env).unwrap();
        assert_eq!(c.default_agent, "main");
        let main = c.agent("main").unwrap();
        assert_eq!(
            main.models,
            [ModelRef::parse("openai/gpt-4.1-mini").unwrap()]
        );
        assert_eq!(main.workspace, Path::new("/s/workspace"));
        assert_eq!(c.providers["openai"].keys, ["sk-env"]);
        assert_eq!(c.providers["openai"].source, "env OPENAI_API_KEY");
        let none = resolve(&json!({}), Path::new("/s"), &env_of(&[])).unwrap();
        assert!(none.agent("main").unwrap().models.is_empty());
    }

    #[test]
    fn delegation_keys_reach_each_agent() {
        let cfg = json!({
            "agents": {
                "defaults": {"subagents": {"maxConcurrent": 3, "archiveAfterMinutes": 5, "maxSpawnDepth": 2}},
                "list": [
                    {"id": "main", "subagents": {"allowAgents": ["coder"], "maxConcurrent": 1}},
                    {"id": "coder"},
                ],
            },
            "tools": {"agentToAgent": {"enabled": true, "allow": ["coder"]}},
            "session": {"agentToAgent": {"maxPingPongTurns": 2}},
        });
        let c = resolve(&cfg, Path::new("/s"), &env_of(&[])).unwrap();
        let (main, coder) = (c.agent("main").unwrap(), c.agent("coder").unwrap());
        assert_eq!(main.subagents.allow_agents, ["coder"]);
        assert_eq!(
            main.subagents.max_concurrent, 1,
            "the agent's own over the defaults"
        );
        assert_eq!(coder.subagents.max_concurrent, 3);
        assert_eq!(coder.subagents.archive_after, Duration::from_secs(300));
        assert_eq!(coder.subagents.max_spawn_depth, 2);
        assert!(
            main.subagents.may_spawn("main", "coder")
                && !coder.subagents.may_spawn("coder", "main")
        );
        assert!(coder.subagents.may_spawn("coder", "coder"), "itself always");
        assert_eq!(main.agent_to_agent.max_ping_pong_turns, 2);
        assert!(main.agent_to_agent.may_reach("main", "coder"));
        assert!(!main.agent_to_agent.may_reach("main", "other"));
        // Off by default.
        let d = resolve(&json!({}), Path::new("/s"), &env_of(&[])).unwrap();
        let a = &d.agent("main").unwrap().agent_to_agent;
        assert!(!a.enabled && !a.may_reach("main", "x") && a.may_reach("main", "main"));
        assert_eq!(a.max_ping_pong_turns, 5);
    }

    #[test]
    fn configured_providers_agents_and_chains() {
        let cfg = json!({
            "models": {"providers": {
                "local": {"api": "openai-completions", "baseUrl": "http://127.0.0.1:9/v1/",
                          "apiKey": "env:LOCAL_KEY", "apiKeys": ["k2"],
                          "models": [{"id": "m1", "contextWindow": 8000}]},
                "anthropic": {"apiKey": "a-key"}
            }},
            "agents": {
                "defaults": {"model": {"primary": "local/m1", "fallbacks": ["anthropic/claude"]},
                              "maxIterations": 5, "thinking": "high"},
                "list": [{"id": "main"}, {"id": "coder", "default": true, "model": "anthropic/claude",
                          "tools": {"deny": ["exec"]}}]
            },
            "tools": {"profile": "full", "exec": {"ask": "always", "allowlist": ["ls"]}}
        });
        let c = resolve(&cfg, Path::new("/s"), &env_of(&[("LOCAL_KEY", "k1")])).unwrap();
        assert_eq!(c.default_agent, "coder");
        let local = &c.providers["local"];
        assert_eq!(local.base_url, "http://127.0.0.1:9/v1");
        assert_eq!(local.keys, ["k1", "k2"]);
        assert_eq!(c.providers["anthropic"].api, Api::AnthropicMessages);
        assert_eq!(
            c.providers["anthropic"].base_url,
            "https://api.anthropic.com"
        );
        let main = c.agent("main").unwrap();
        assert_eq!(main.models.len(), 2);
        assert_eq!(main.max_iterations, 5);
        assert_eq!(main.thinking, Thinking::High);
        assert_eq!(main.tool_profile, "full");
        let coder = c.agent("coder").unwrap();
        assert_eq!(coder.models, [ModelRef::parse("anthropic/claude").unwrap()]);
        assert_eq!(coder.workspace, Path::new("/s/workspace-coder"));
        assert_eq!(coder.tools_deny, ["exec"]);
        assert_eq!(c.exec.ask, "always");
        assert!(
            !format!("{local:?}").contains("k1"),
            "Debug never shows keys"
        );
    }

    #[test]
    fn keys_can_live_in_the_credentials_directory() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("credentials")).unwrap();
        std::fs::write(d.path().join("credentials/anthropic.key"), "sk-ant-file\n").unwrap();
        std::fs::write(d.path().join("credentials/mine"), "k-mine").unwrap();
        let cfg = json!({"models": {"providers": {
            "local": {"baseUrl": "http://127.0.0.1:9/v1", "apiKey": "file:mine"}}}});
        let c = resolve(&cfg, d.path(), &env_of(&[])).unwrap();
        assert_eq!(c.providers["anthropic"].keys, ["sk-ant-file"]);
        assert_eq!(c.providers["anthropic"].source, "credentials/anthropic.key");
        assert_eq!(c.providers["local"].keys, ["k-mine"]);
        let bad = json!({"models": {"providers": {"x": {"baseUrl": "http://h", "apiKey": "file:../etc/passwd"}}}});
        let e = resolve(&bad, d.path(), &env_of(&[])).unwrap_err();
        assert!(e.contains("directly inside credentials/"), "{e}");
    }

    #[test]
    fn mistakes_are_explained() {
        let e = resolve(
            &json!({"agents": {"defaults": {"model": "gpt4"}}}),
            Path::new("/s"),
            &env_of(&[]),
        )
        .unwrap_err();
        assert!(e.contains("not provider/model"), "{e}");
        let e = resolve(
            &json!({"agents": {"defaults": {"model": "nope/x"}}}),
            Path::new("/s"),
            &env_of(&[]),
        )
        .unwrap_err();
        assert!(e.contains("no provider \"nope\""), "{e}");
        let e = resolve(
            &json!({"models": {"providers": {"x": {"baseUrl": "http://h", "apiKey": "env:MISSING"}}}}),
            Path::new("/s"),
            &env_of(&[]),
        )
        .unwrap_err();
        assert!(e.contains("MISSING is not set"), "{e}");
    }
}
