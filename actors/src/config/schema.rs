//! The one description of every config key: its type, default, help text, whether it is a
//! secret and whether changing it needs a restart. Validation, `config.schema` (JSON
//! Schema plus OpenClaw's `uiHints`) and `docs/configuration.md` all come from this table,
//! so they cannot drift apart.

use serde_json::{Map, Value, json};

/// What a key holds.
#[derive(Debug)]
pub enum Kind {
    Object(&'static [Field]),
    String,
    /// An integer within the inclusive range.
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    Enum(&'static [&'static str]),
    /// A list of objects with these fields.
    ListOf(&'static [Field]),
    /// Accepted as any JSON object: a section a later capability defines. Its inner keys
    /// are not checked yet (documented as such).
    FreeObject,
}

#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    /// The default as JSON text, for docs and the schema (`None`: unset by default).
    pub default: Option<&'static str>,
    pub sensitive: bool,
    pub restart: bool,
}

const fn field(name: &'static str, kind: Kind, help: &'static str) -> Field {
    Field {
        name,
        kind,
        help,
        default: None,
        sensitive: false,
        restart: false,
    }
}

impl Field {
    const fn default(mut self, d: &'static str) -> Self {
        self.default = Some(d);
        self
    }
    const fn secret(mut self) -> Self {
        self.sensitive = true;
        self
    }
    const fn restart(mut self) -> Self {
        self.restart = true;
        self
    }
}

pub const BIND_MODES: &[&str] = &["loopback", "lan", "custom", "tailnet", "auto"];
pub const AUTH_MODES: &[&str] = &["token", "password", "none"];
pub const DM_SCOPES: &[&str] = &[
    "main",
    "per-peer",
    "per-channel-peer",
    "per-account-channel-peer",
];
pub const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];

const AUTH: &[Field] = &[
    field("mode", Kind::Enum(AUTH_MODES), "How clients authenticate: a shared token (default), a password, or none (loopback only)")
        .default("\"token\""),
    field(
        "token",
        Kind::String,
        "Shared token; when unset, PINCER_GATEWAY_TOKEN or the generated credentials/gateway.token is used",
    )
    .secret(),
    field("password", Kind::String, "Password for mode \"password\" (or PINCER_GATEWAY_PASSWORD)").secret(),
];

const GATEWAY: &[Field] = &[
    field(
        "port",
        Kind::Int { min: 0, max: 65535 },
        "TCP port for WebSocket and HTTP (0 picks a free port)",
    )
    .default("18789")
    .restart(),
    field(
        "bind",
        Kind::Enum(BIND_MODES),
        "Where to listen: loopback (127.0.0.1), lan (0.0.0.0) or custom (customBindHost)",
    )
    .default("\"loopback\"")
    .restart(),
    field(
        "customBindHost",
        Kind::String,
        "IP address to bind when bind is \"custom\"",
    )
    .restart(),
    field("auth", Kind::Object(AUTH), "Client authentication"),
];

const SESSION: &[Field] = &[
    field(
        "mainKey",
        Kind::String,
        "Name of the main direct-chat session (agent:<id>:<mainKey>)",
    )
    .default("\"main\""),
    field(
        "dmScope",
        Kind::Enum(DM_SCOPES),
        "How direct messages map to sessions",
    )
    .default("\"main\""),
];

const LOGGING: &[Field] = &[field(
    "level",
    Kind::Enum(LOG_LEVELS),
    "Log level (RUST_LOG overrides it)",
)
.default("\"info\"")];

const AGENT: &[Field] = &[
    field("id", Kind::String, "Agent id, used in session keys"),
    field("name", Kind::String, "Display name"),
    field("default", Kind::Bool, "Whether this is the default agent"),
    field("workspace", Kind::String, "Workspace directory"),
    field(
        "model",
        Kind::FreeObject,
        "Model selection (defined by the agents issue)",
    ),
];

const AGENTS: &[Field] = &[
    field(
        "defaults",
        Kind::FreeObject,
        "Defaults for every agent (model, sandbox, ...; defined by the agents issue)",
    ),
    field(
        "list",
        Kind::ListOf(AGENT),
        "The configured agents; `main` when empty",
    ),
];

/// The whole file.
pub const ROOT: &[Field] = &[
    field(
        "gateway",
        Kind::Object(GATEWAY),
        "The control-plane listener",
    ),
    field("session", Kind::Object(SESSION), "Session keys"),
    field("logging", Kind::Object(LOGGING), "Logs"),
    field("agents", Kind::Object(AGENTS), "Agents"),
    field(
        "models",
        Kind::FreeObject,
        "Model providers (defined by the agents issue)",
    ),
    field(
        "channels",
        Kind::FreeObject,
        "Chat channels (defined by the channels issue)",
    ),
    field(
        "tools",
        Kind::FreeObject,
        "Tool policy (defined by the agents issue)",
    ),
];

/// Keys OpenClaw has that Pincer does not implement yet: reported as warnings, ignored.
pub const OPENCLAW_ONLY: &[&str] = &[
    "$schema",
    "meta",
    "env",
    "wizard",
    "update",
    "diagnostics",
    "browser",
    "ui",
    "auth",
    "skills",
    "plugins",
    "messages",
    "commands",
    "approvals",
    "hooks",
    "cron",
    "web",
    "discovery",
    "canvasHost",
    "nodeHost",
    "talk",
    "audio",
    "broadcast",
    "bindings",
    "memory",
    "gateway.mode",
    "gateway.controlUi",
    "gateway.tailscale",
    "gateway.remote",
    "gateway.trustedProxies",
    "gateway.reload",
    "gateway.http",
    "gateway.nodes",
    "gateway.auth.allowTailscale",
    "logging.file",
    "logging.consoleLevel",
    "logging.consoleStyle",
    "logging.redactSensitive",
    "session.scope",
    "session.identityLinks",
    "session.reset",
    "session.resetTriggers",
    "session.idleMinutes",
    "session.store",
    "session.typingIntervalSeconds",
    "session.agentToAgent",
    "session.sendPolicy",
];

/// A problem found while checking a value against the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub path: String,
    pub message: String,
    pub warning: bool,
}

/// Checks `value` against the table. Keys OpenClaw has but Pincer ignores are removed from
/// `value` (and reported as warnings) so that what remains is exactly what Pincer uses.
pub fn check(value: &mut Value, findings: &mut Vec<Finding>) {
    match value {
        Value::Object(map) => check_object(map, ROOT, "", findings),
        _ => findings.push(Finding {
            path: String::new(),
            message: format!(
                "the config must be an object like {{ gateway: {{ port: 18789 }} }}, found {}",
                type_name(value)
            ),
            warning: false,
        }),
    }
}

fn check_object(
    map: &mut Map<String, Value>,
    fields: &[Field],
    prefix: &str,
    findings: &mut Vec<Finding>,
) {
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match fields.iter().find(|f| f.name == key) {
            Some(f) => check_value(
                map.get_mut(&key).expect("key exists"),
                &f.kind,
                &path,
                findings,
            ),
            None if OPENCLAW_ONLY.contains(&path.as_str()) => {
                map.remove(&key);
                findings.push(Finding {
                    path,
                    message: "OpenClaw key not implemented by Pincer yet; ignored".into(),
                    warning: true,
                });
            }
            None => {
                let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
                let hint = suggest(&key, &known)
                    .map(|s| format!("did you mean \"{s}\"?"))
                    .unwrap_or_else(|| format!("known keys here: {}", known.join(", ")));
                findings.push(Finding {
                    path,
                    message: format!("unknown key; {hint}"),
                    warning: false,
                });
            }
        }
    }
}

fn check_value(value: &mut Value, kind: &Kind, path: &str, findings: &mut Vec<Finding>) {
    let mut bad = |expected: String, value: &Value| {
        findings.push(Finding {
            path: path.to_owned(),
            message: format!("expected {expected}, found {}", describe(value)),
            warning: false,
        });
    };
    match kind {
        Kind::Object(fields) => match value {
            Value::Object(map) => check_object(map, fields, path, findings),
            other => bad("an object".into(), other),
        },
        Kind::FreeObject => {
            if !value.is_object() {
                bad("an object".into(), value)
            }
        }
        Kind::ListOf(fields) => match value {
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let p = format!("{path}.{i}");
                    match item {
                        Value::Object(map) => check_object(map, fields, &p, findings),
                        other => findings.push(Finding {
                            path: p,
                            message: format!("expected an object, found {}", describe(other)),
                            warning: false,
                        }),
                    }
                }
            }
            other => bad("a list".into(), other),
        },
        Kind::String => {
            if !value.is_string() {
                bad("a string".into(), value)
            }
        }
        Kind::Bool => {
            if !value.is_boolean() {
                bad("true or false".into(), value)
            }
        }
        Kind::Int { min, max } => match value.as_i64() {
            Some(n) if (*min..=*max).contains(&n) => {}
            _ => bad(format!("an integer {min}-{max}"), value),
        },
        Kind::Enum(options) => match value.as_str() {
            Some(s) if options.contains(&s) => {}
            Some(s) => {
                let hint = suggest(s, options)
                    .map(|o| format!(" (did you mean \"{o}\"?)"))
                    .unwrap_or_default();
                findings.push(Finding {
                    path: path.to_owned(),
                    message: format!("expected one of {}, found \"{s}\"{hint}", quoted(options)),
                    warning: false,
                });
            }
            None => bad(format!("one of {}", quoted(options)), value),
        },
    }
}

/// The closest known name, if it is close enough to be a typo.
pub fn suggest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| {
            (
                strsim::damerau_levenshtein(&word.to_lowercase(), &k.to_lowercase()),
                *k,
            )
        })
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn quoted(options: &[&str]) -> String {
    options
        .iter()
        .map(|o| format!("\"{o}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => type_name(other).to_owned(),
    }
}

/// Every secret key path (lists use `*` for the index).
pub fn sensitive_paths() -> Vec<String> {
    let mut out = Vec::new();
    walk(ROOT, "", &mut |path, f| {
        if f.sensitive {
            out.push(path.to_owned());
        }
    });
    out
}

/// Keys whose change needs a restart.
pub fn restart_paths() -> Vec<String> {
    let mut out = Vec::new();
    walk(ROOT, "", &mut |path, f| {
        if f.restart {
            out.push(path.to_owned());
        }
    });
    out
}

/// Visits every field with its dotted path.
pub fn walk(fields: &'static [Field], prefix: &str, visit: &mut dyn FnMut(&str, &'static Field)) {
    for f in fields {
        let path = if prefix.is_empty() {
            f.name.to_owned()
        } else {
            format!("{prefix}.{}", f.name)
        };
        visit(&path, f);
        match &f.kind {
            Kind::Object(inner) => walk(inner, &path, visit),
            Kind::ListOf(inner) => walk(inner, &format!("{path}.*"), visit),
            _ => {}
        }
    }
}

/// JSON Schema (draft-07) of the config file.
pub fn json_schema() -> Value {
    let mut schema = object_schema(ROOT);
    schema["$schema"] = json!("http://json-schema.org/draft-07/schema#");
    schema["title"] = json!("Pincer configuration (pincer.json)");
    schema
}

fn object_schema(fields: &[Field]) -> Value {
    let mut props = Map::new();
    for f in fields {
        let mut s = kind_schema(&f.kind);
        s["description"] = json!(f.help);
        if let Some(d) = f.default {
            s["default"] = serde_json::from_str(d).expect("defaults in the table are JSON");
        }
        props.insert(f.name.to_owned(), s);
    }
    json!({ "type": "object", "additionalProperties": false, "properties": props })
}

fn kind_schema(kind: &Kind) -> Value {
    match kind {
        Kind::Object(fields) => object_schema(fields),
        Kind::ListOf(fields) => json!({ "type": "array", "items": object_schema(fields) }),
        Kind::String => json!({ "type": "string" }),
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::Int { min, max } => json!({ "type": "integer", "minimum": min, "maximum": max }),
        Kind::Enum(options) => json!({ "type": "string", "enum": options }),
        Kind::FreeObject => json!({ "type": "object" }),
    }
}

/// OpenClaw's `uiHints`: `{ "gateway.auth.token": {label, help, sensitive}, ... }`.
pub fn ui_hints() -> Value {
    let mut hints = Map::new();
    let mut order = 0;
    walk(ROOT, "", &mut |path, f| {
        order += 1;
        let mut h = json!({ "label": label(f.name), "help": f.help, "order": order });
        if f.sensitive {
            h["sensitive"] = json!(true);
        }
        if let Some(group) = path.split('.').next() {
            h["group"] = json!(group);
        }
        hints.insert(path.to_owned(), h);
    });
    Value::Object(hints)
}

fn label(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if i == 0 {
            out.extend(c.to_uppercase());
        } else if c.is_uppercase() {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The Markdown reference of every key, for `docs/configuration.md`.
pub fn markdown_reference() -> String {
    let mut out =
        String::from("| key | type | default | restart | description |\n|---|---|---|---|---|\n");
    walk(ROOT, "", &mut |path, f| {
        let ty = match &f.kind {
            Kind::Object(_) => "object".to_owned(),
            Kind::ListOf(_) => "list of objects".to_owned(),
            Kind::String => "string".to_owned(),
            Kind::Bool => "boolean".to_owned(),
            Kind::Int { min, max } => format!("integer {min}-{max}"),
            Kind::Enum(o) => o
                .iter()
                .map(|x| format!("`{x}`"))
                .collect::<Vec<_>>()
                .join(" \\| "),
            Kind::FreeObject => "object (free-form for now)".to_owned(),
        };
        let default = f.default.map(|d| format!("`{d}`")).unwrap_or_default();
        let restart = if f.restart { "yes" } else { "" };
        let secret = if f.sensitive {
            " Secret: redacted by `config.get`."
        } else {
            ""
        };
        out.push_str(&format!(
            "| `{path}` | {ty} | {default} | {restart} | {}.{secret} |\n",
            f.help
        ));
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(v: Value) -> (Value, Vec<Finding>) {
        let mut v = v;
        let mut f = Vec::new();
        check(&mut v, &mut f);
        (v, f)
    }

    #[test]
    fn unknown_keys_are_errors_with_a_suggestion() {
        let (_, f) = findings(json!({"gateway": {"prot": 1}}));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "gateway.prot");
        assert!(
            f[0].message.contains("did you mean \"port\""),
            "{}",
            f[0].message
        );
        assert!(!f[0].warning);
        let (_, f) = findings(json!({"zzzzzz": 1}));
        assert!(
            f[0].message.contains("known keys here: gateway"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn types_ranges_and_enums_are_checked() {
        let (_, f) =
            findings(json!({"gateway": {"port": "abc", "bind": "loopbak", "auth": {"mode": 3}}}));
        let msgs: Vec<String> = f
            .iter()
            .map(|x| format!("{}: {}", x.path, x.message))
            .collect();
        assert!(
            msgs.contains(&"gateway.port: expected an integer 0-65535, found \"abc\"".to_owned()),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("gateway.bind") && m.contains("did you mean \"loopback\"")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("gateway.auth.mode: expected one of")),
            "{msgs:?}"
        );
        let (_, f) = findings(json!({"gateway": {"port": 70000}}));
        assert!(f[0].message.contains("0-65535"));
        let (_, f) = findings(json!({"agents": {"list": [{"id": "a"}, 5, {"idd": "x"}]}}));
        let paths: Vec<&str> = f.iter().map(|x| x.path.as_str()).collect();
        assert_eq!(paths, ["agents.list.1", "agents.list.2.idd"]);
    }

    #[test]
    fn openclaw_keys_warn_and_are_removed() {
        let (v, f) = findings(
            json!({"browser": {"enabled": true}, "gateway": {"controlUi": {}, "port": 1}}),
        );
        assert_eq!(v, json!({"gateway": {"port": 1}}));
        assert_eq!(f.len(), 2);
        assert!(
            f.iter()
                .all(|x| x.warning && x.message.contains("not implemented by Pincer yet"))
        );
    }

    #[test]
    fn schema_hints_and_docs_come_from_one_table() {
        let s = json_schema();
        assert_eq!(
            s["properties"]["gateway"]["properties"]["port"]["default"],
            18789
        );
        assert_eq!(s["properties"]["gateway"]["additionalProperties"], false);
        let hints = ui_hints();
        assert_eq!(hints["gateway.auth.token"]["sensitive"], true);
        assert_eq!(hints["gateway.customBindHost"]["label"], "Custom bind host");
        assert_eq!(
            sensitive_paths(),
            ["gateway.auth.token", "gateway.auth.password"]
        );
        assert_eq!(
            restart_paths(),
            ["gateway.port", "gateway.bind", "gateway.customBindHost"]
        );
        assert!(
            markdown_reference().contains("| `gateway.port` | integer 0-65535 | `18789` | yes |")
        );
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        assert_eq!(suggest("prot", &["port", "bind"]), Some("port"));
        assert_eq!(suggest("Port", &["port"]), Some("port"));
        assert_eq!(suggest("xyzzy", &["port", "bind"]), None);
    }
}
