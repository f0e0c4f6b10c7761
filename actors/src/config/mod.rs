//! The config file `pincer.json` (JSON5): typed values, strict validation with file:line
//! errors, redaction of secrets, merge patches, diffs, and the state directory.
//!
//! Key names follow OpenClaw's where the concept is the same, so an OpenClaw user can bring
//! an existing `openclaw.json`: keys Pincer does not implement yet are reported as warnings
//! with their line, never silently ignored; unknown or mistyped keys stop start-up.

mod auth;
pub mod methods;
mod paths;
pub mod schema;
mod spans;
pub mod watcher;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use auth::{ResolvedAuth, TokenSource, resolve_gateway_auth};
pub use paths::StateDir;
pub use spans::{Span, Spans, scan};

/// Shown instead of a secret by `config.get`; sending it back keeps the stored secret.
pub const REDACTED: &str = "__PINCER_REDACTED__";

/// The typed config. Defaults are what Pincer runs with when the file is absent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PincerConfig {
    pub gateway: GatewayConfig,
    pub session: SessionConfig,
    pub logging: LoggingConfig,
    pub agents: AgentsConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GatewayConfig {
    pub port: u16,
    pub bind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_bind_host: Option<String>,
    pub auth: GatewayAuthConfig,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            port: 18789,
            bind: "loopback".into(),
            custom_bind_host: None,
            auth: GatewayAuthConfig::default(),
        }
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GatewayAuthConfig {
    pub mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl Default for GatewayAuthConfig {
    fn default() -> Self {
        Self {
            mode: "token".into(),
            token: None,
            password: None,
        }
    }
}

impl std::fmt::Debug for GatewayAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayAuthConfig")
            .field("mode", &self.mode)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SessionConfig {
    pub main_key: String,
    pub dm_scope: String,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            main_key: "main".into(),
            dm_scope: "main".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoggingConfig {
    pub level: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defaults: Option<Value>,
    pub list: Vec<Value>,
}

impl AgentsConfig {
    /// The default agent's id: the one marked `default`, else the first, else `main`.
    pub fn default_agent_id(&self) -> String {
        let id = |a: &Value| a.get("id").and_then(Value::as_str).map(str::to_owned);
        self.list
            .iter()
            .find(|a| a.get("default") == Some(&Value::Bool(true)))
            .and_then(id)
            .or_else(|| self.list.first().and_then(id))
            .unwrap_or_else(|| "main".into())
    }
}

/// One problem in the file, with where it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigIssue {
    pub file: String,
    /// Dotted key path; empty for the document itself.
    pub path: String,
    pub line: Option<usize>,
    pub col: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.col {
                write!(f, ":{col}")?;
            }
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.path, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", render_issues(issues, warnings))]
    Invalid {
        issues: Vec<ConfigIssue>,
        warnings: Vec<ConfigIssue>,
    },
    #[error(
        "the config changed since it was read (baseHash {given} is not the current {current}); read it again (config.get) and retry"
    )]
    StaleBaseHash { given: String, current: String },
    #[error(
        "baseHash is required to change an existing config; read it first with config.get and pass its hash"
    )]
    MissingBaseHash,
    #[error("{0}")]
    State(String),
}

impl ConfigError {
    /// The issues behind an `Invalid` error, or none.
    pub fn issues(&self) -> &[ConfigIssue] {
        match self {
            Self::Invalid { issues, .. } => issues,
            _ => &[],
        }
    }

    fn invalid(issues: Vec<ConfigIssue>) -> Self {
        Self::Invalid {
            issues,
            warnings: Vec::new(),
        }
    }
}

fn render_issues(issues: &[ConfigIssue], warnings: &[ConfigIssue]) -> String {
    let mut lines: Vec<String> = issues.iter().map(ToString::to_string).collect();
    lines.extend(warnings.iter().map(|w| format!("warning: {w}")));
    lines.join("\n")
}

/// A parsed, validated config file and what it was made from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub path: PathBuf,
    pub exists: bool,
    pub raw: String,
    /// sha256 hex of the raw bytes (of the empty string when the file is absent); the
    /// `baseHash` that changes must quote.
    pub hash: String,
    /// What Pincer uses, as JSON (keys it ignores removed).
    pub value: Value,
    pub config: PincerConfig,
    pub warnings: Vec<ConfigIssue>,
}

pub fn hash_raw(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

/// Reads and validates `path`; a missing file means the defaults.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(raw) => parse(&raw, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LoadedConfig {
            path: path.to_owned(),
            exists: false,
            raw: String::new(),
            hash: hash_raw(""),
            value: Value::Object(Default::default()),
            config: PincerConfig::default(),
            warnings: Vec::new(),
        }),
        Err(source) => Err(ConfigError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Parses and validates JSON5 text; `path` names the file in messages.
pub fn parse(raw: &str, path: &Path) -> Result<LoadedConfig, ConfigError> {
    let file = path.display().to_string();
    let mut value: Value = if raw.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        json5::from_str(raw).map_err(|e| ConfigError::invalid(vec![syntax_issue(&file, &e)]))?
    };
    let spans = scan(raw);
    let mut findings = Vec::new();
    schema::check(&mut value, &mut findings);
    let to_issue = |f: &schema::Finding| {
        let span = spans.get(&f.path);
        ConfigIssue {
            file: file.clone(),
            path: f.path.clone(),
            line: span.map(|s| s.line),
            col: span.map(|s| s.col),
            message: f.message.clone(),
        }
    };
    let errors: Vec<ConfigIssue> = findings
        .iter()
        .filter(|f| !f.warning)
        .map(to_issue)
        .collect();
    let warnings: Vec<ConfigIssue> = findings
        .iter()
        .filter(|f| f.warning)
        .map(to_issue)
        .collect();
    if !errors.is_empty() {
        return Err(ConfigError::Invalid {
            issues: errors,
            warnings,
        });
    }
    let config: PincerConfig =
        serde_json::from_value(value.clone()).map_err(|e| ConfigError::Invalid {
            warnings: Vec::new(),
            issues: vec![ConfigIssue {
                file: file.clone(),
                path: String::new(),
                line: None,
                col: None,
                message: e.to_string(),
            }],
        })?;
    semantic_checks(&config, &spans, &file)?;
    Ok(LoadedConfig {
        path: path.to_owned(),
        exists: true,
        raw: raw.to_owned(),
        hash: hash_raw(raw),
        value,
        config,
        warnings,
    })
}

/// Rules that span several keys.
fn semantic_checks(c: &PincerConfig, spans: &Spans, file: &str) -> Result<(), ConfigError> {
    let issue = |path: &str, message: String| ConfigIssue {
        file: file.to_owned(),
        path: path.to_owned(),
        line: spans.get(path).map(|s| s.line),
        col: spans.get(path).map(|s| s.col),
        message,
    };
    let mut issues = Vec::new();
    match c.gateway.bind.as_str() {
        "tailnet" | "auto" => issues.push(issue(
            "gateway.bind",
            format!("\"{}\" is not supported by Pincer yet; use \"loopback\", \"lan\" or \"custom\" with customBindHost", c.gateway.bind),
        )),
        "custom" => match c.gateway.custom_bind_host.as_deref().map(str::parse::<std::net::IpAddr>) {
            Some(Ok(_)) => {}
            Some(Err(_)) => issues.push(issue("gateway.customBindHost", "expected an IP address such as 192.168.1.20".into())),
            None => issues.push(issue("gateway.bind", "\"custom\" needs gateway.customBindHost (an IP address)".into())),
        },
        _ => {}
    }
    if c.gateway.auth.mode == "none" && c.gateway.bind != "loopback" {
        issues.push(issue(
            "gateway.auth.mode",
            format!(
                "\"none\" is only allowed with bind \"loopback\" (bind is \"{}\"): anyone who can reach the port could drive your agents; use \"token\"",
                c.gateway.bind
            ),
        ));
    }
    if c.gateway.auth.mode == "password" && c.gateway.auth.password.as_deref() == Some("") {
        issues.push(issue("gateway.auth.password", "must not be empty".into()));
    }
    if c.gateway.auth.token.as_deref() == Some("") {
        issues.push(issue(
            "gateway.auth.token",
            "must not be empty; remove the key to use the generated token".into(),
        ));
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::invalid(issues))
    }
}

fn syntax_issue(file: &str, e: &json5::Error) -> ConfigIssue {
    let json5::Error::Message { msg, location } = e;
    // pest's message is a multi-line drawing; its "= expected ..." line says what is wrong.
    let first_line = msg
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("= "))
        .unwrap_or_else(|| msg.lines().next().unwrap_or(msg).trim())
        .to_owned();
    ConfigIssue {
        file: file.to_owned(),
        path: String::new(),
        line: location.as_ref().map(|l| l.line),
        col: location.as_ref().map(|l| l.column),
        message: format!("JSON5 syntax error: {first_line}"),
    }
}

/// The value with every secret replaced by [`REDACTED`].
pub fn redacted(value: &Value) -> Value {
    let mut v = value.clone();
    for pattern in schema::sensitive_paths() {
        for path in concrete_paths(value, &pattern) {
            if let Some(slot) = pointer_mut(&mut v, &path)
                && slot.is_string()
            {
                *slot = Value::String(REDACTED.into());
            }
        }
    }
    v
}

/// Whether a dotted path matches a pattern whose `*` segments match any key or index.
fn path_matches(pattern: &str, path: &str) -> bool {
    let (mut p, mut q) = (pattern.split('.'), path.split('.'));
    loop {
        match (p.next(), q.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == "*" || a == b => {}
            _ => return false,
        }
    }
}

/// The paths in `value` that a pattern with `*` segments names.
fn concrete_paths(value: &Value, pattern: &str) -> Vec<String> {
    fn go(v: &Value, rest: &[&str], prefix: String, out: &mut Vec<String>) {
        let Some((head, tail)) = rest.split_first() else {
            out.push(prefix);
            return;
        };
        let join = |k: &str| {
            if prefix.is_empty() {
                k.to_owned()
            } else {
                format!("{prefix}.{k}")
            }
        };
        match v {
            Value::Object(map) if *head == "*" => {
                for (k, child) in map {
                    go(child, tail, join(k), out);
                }
            }
            Value::Object(map) => {
                if let Some(child) = map.get(*head) {
                    go(child, tail, join(head), out);
                }
            }
            Value::Array(items) if *head == "*" => {
                for (i, child) in items.iter().enumerate() {
                    go(child, tail, join(&i.to_string()), out);
                }
            }
            _ => {}
        }
    }
    let parts: Vec<&str> = pattern.split('.').collect();
    let mut out = Vec::new();
    go(value, &parts, String::new(), &mut out);
    out
}

/// The raw text with every secret value replaced by `"__PINCER_REDACTED__"` (comments and
/// layout kept).
pub fn redacted_raw(raw: &str) -> String {
    let spans = scan(raw);
    let patterns = schema::sensitive_paths();
    let mut cuts: Vec<Span> = spans
        .iter()
        .filter(|(path, _)| patterns.iter().any(|p| path_matches(p, path)))
        .map(|(_, s)| *s)
        .collect();
    cuts.sort_by_key(|s| std::cmp::Reverse(s.value_start));
    let mut out = raw.to_owned();
    for s in cuts {
        if s.value_end <= out.len() && s.value_start < s.value_end {
            out.replace_range(s.value_start..s.value_end, &format!("\"{REDACTED}\""));
        }
    }
    out
}

/// Puts back the current secrets where an edited value still says [`REDACTED`].
pub fn restore_redacted(new: &mut Value, current: &Value) {
    for pattern in schema::sensitive_paths() {
        for path in concrete_paths(new, &pattern) {
            let keep = pointer_mut(&mut current.clone(), &path).cloned();
            if let Some(slot) = pointer_mut(new, &path)
                && slot.as_str() == Some(REDACTED)
            {
                match keep {
                    Some(v) => *slot = v,
                    None => *slot = Value::Null,
                }
            }
        }
    }
    strip_nulls(new);
}

fn pointer_mut<'a>(v: &'a mut Value, dotted: &str) -> Option<&'a mut Value> {
    let mut cur = v;
    for part in dotted.split('.') {
        cur = match cur {
            Value::Array(items) => items.get_mut(part.parse::<usize>().ok()?)?,
            other => other.as_object_mut()?.get_mut(part)?,
        };
    }
    Some(cur)
}

fn strip_nulls(v: &mut Value) {
    if let Value::Object(map) = v {
        map.retain(|_, x| !x.is_null());
        for x in map.values_mut() {
            strip_nulls(x);
        }
    }
}

/// RFC 7396 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let map = target.as_object_mut().expect("just made an object");
    for (k, v) in patch_map {
        if v.is_null() {
            map.remove(k);
        } else {
            merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// What changed between two configs and whether it applies live.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigDiff {
    pub changed: Vec<String>,
    pub live: Vec<String>,
    pub restart_required: Vec<String>,
}

impl ConfigDiff {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty()
    }
}

pub fn diff(old: &PincerConfig, new: &PincerConfig) -> ConfigDiff {
    let (a, b) = (
        serde_json::to_value(old).expect("config serialises"),
        serde_json::to_value(new).expect("config serialises"),
    );
    let mut changed = Vec::new();
    diff_values(&a, &b, "", &mut changed);
    let restart = schema::restart_paths();
    // A key needs a restart when it, or a section holding it, is marked so.
    let (restart_required, live) = changed.iter().cloned().partition(|p: &String| {
        restart
            .iter()
            .any(|r| p == r || p.starts_with(&format!("{r}.")))
    });
    ConfigDiff {
        changed,
        live,
        restart_required,
    }
}

fn diff_values(a: &Value, b: &Value, prefix: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) if !is_free(prefix) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                diff_values(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    &p,
                    out,
                );
            }
        }
        _ if a != b => out.push(prefix.to_owned()),
        _ => {}
    }
}

/// Free-form sections are compared as a whole.
fn is_free(path: &str) -> bool {
    matches!(
        path,
        "models" | "channels" | "tools" | "agents.defaults" | "agents.list"
    )
}

/// Writes `raw` to `path` atomically (temp file + rename), mode 0600.
pub fn write_atomic(path: &Path, raw: &str) -> Result<(), ConfigError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| ConfigError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(raw.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// The commented config `pincer onboard` writes. It parses without warnings.
pub fn default_config_text() -> &'static str {
    include_str!("default.json5")
}

#[cfg(test)]
mod tests;

impl GatewayConfig {
    /// The address `bind` stands for; `--bind` may override with a mode or an IP address.
    pub fn bind_ip(&self, override_bind: Option<&str>) -> Result<std::net::IpAddr, ConfigError> {
        use std::net::{IpAddr, Ipv4Addr};
        let mode = override_bind.unwrap_or(&self.bind);
        match mode {
            "loopback" => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "lan" => Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            "custom" => self
                .custom_bind_host
                .as_deref()
                .and_then(|h| h.parse().ok())
                .ok_or_else(|| ConfigError::State("gateway.bind is \"custom\" but gateway.customBindHost is not an IP address".into())),
            other => other.parse().map_err(|_| {
                ConfigError::State(format!("--bind {other:?}: expected loopback, lan, custom or an IP address"))
            }),
        }
    }
}

/// Refuses to expose an unauthenticated gateway beyond this machine.
pub fn ensure_safe_bind(
    ip: std::net::IpAddr,
    auth: &crate::gateway::AuthPolicy,
) -> Result<(), ConfigError> {
    if !ip.is_loopback() && *auth == crate::gateway::AuthPolicy::None {
        return Err(ConfigError::State(format!(
            "refusing to listen on {ip} with gateway.auth.mode \"none\": anyone who can reach this address could drive your agents \
             and read your sessions. Set gateway.auth.mode to \"token\" (the default) or \"password\", or bind \"loopback\""
        )));
    }
    Ok(())
}
