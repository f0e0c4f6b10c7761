//! The pure half of the webhook triggers: `hooks` config, the token check, the request
//! bodies of `/hooks/wake` and `/hooks/agent`, and `hooks.mappings` (match a path and a
//! `source`, render `{{field.path}}` templates from the JSON body). No I/O here.

use serde_json::Value;

/// `hooks.path` when unset.
pub const DEFAULT_PATH: &str = "/hooks";
/// `hooks.maxBodyBytes` when unset (256 KiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// Paths the gateway port already serves: a hooks path may not live under them.
const RESERVED_PATHS: &[&str] = &["/channels", "/v1", "/healthz", "/metrics"];

/// Channels a hook reply may be delivered to (`last`: the main session's last chat).
pub const CHANNELS: &[&str] = &[
    "last",
    "telegram",
    "slack",
    "sms",
    "discord",
    "whatsapp",
    "signal",
    "imessage",
    "msteams",
    "mattermost",
];

/// When the main session hears of a wake: `now` starts a turn at once, `next-heartbeat`
/// queues the text as a system event for the agent's next heartbeat (docs/heartbeat.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WakeMode {
    #[default]
    Now,
    NextHeartbeat,
}

impl WakeMode {
    /// OpenClaw's reading: `next-heartbeat`, anything else is `now`.
    pub fn parse(v: Option<&str>) -> WakeMode {
        match v {
            Some("next-heartbeat") => WakeMode::NextHeartbeat,
            _ => WakeMode::Now,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WakeMode::Now => "now",
            WakeMode::NextHeartbeat => "next-heartbeat",
        }
    }
}

/// `hooks`, resolved. Absent when hooks are disabled.
#[derive(Debug, Clone, PartialEq)]
pub struct HooksConfig {
    /// `/hooks`: no trailing slash, never `/`.
    pub base_path: String,
    pub token: String,
    pub max_body_bytes: usize,
    /// `None`: any agent; `Some(["*"])` too; `Some([])`: no explicit agentId.
    pub allowed_agent_ids: Option<Vec<String>>,
    pub allow_request_session_key: bool,
    pub mappings: Vec<Mapping>,
}

/// One `hooks.mappings` entry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mapping {
    pub id: String,
    pub match_path: Option<String>,
    pub match_source: Option<String>,
    /// `true`: wake; `false`: agent (the default).
    pub wake: bool,
    pub wake_mode: WakeMode,
    pub message_template: String,
    pub text_template: String,
    pub name: Option<String>,
    pub agent_id: Option<String>,
    pub session_key: Option<String>,
    pub deliver: Option<bool>,
    pub channel: Option<String>,
    pub to: Option<String>,
    pub model: Option<String>,
    pub thinking: Option<String>,
    pub timeout_seconds: Option<u64>,
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn owned(v: &Value, key: &str) -> Option<String> {
    str_at(v, key).map(str::to_owned)
}

impl HooksConfig {
    /// Reads `hooks` from the whole config. `Ok(None)`: disabled (the default). Enabling
    /// hooks without a token is refused, as OpenClaw does.
    pub fn from_config(config: &Value) -> Result<Option<HooksConfig>, String> {
        let h = config.get("hooks").unwrap_or(&Value::Null);
        if h.get("enabled").and_then(Value::as_bool) != Some(true) {
            return Ok(None);
        }
        let token = str_at(h, "token").ok_or(
            "hooks.enabled requires hooks.token: set hooks.token to a long random secret (not the gateway token), or set hooks.enabled to false",
        )?;
        let raw = str_at(h, "path").unwrap_or(DEFAULT_PATH);
        let with_slash = if raw.starts_with('/') {
            raw.to_owned()
        } else {
            format!("/{raw}")
        };
        let base_path = with_slash.trim_end_matches('/').to_owned();
        if base_path.is_empty() {
            return Err("hooks.path may not be \"/\": pick a prefix such as \"/hooks\"".into());
        }
        if base_path.contains(['{', '}', '*']) {
            return Err(format!(
                "hooks.path {raw:?}: use a plain path such as \"/hooks\" (no {{, }} or *)"
            ));
        }
        if let Some(taken) = RESERVED_PATHS
            .iter()
            .find(|r| base_path == **r || base_path.starts_with(&format!("{r}/")))
        {
            return Err(format!(
                "hooks.path {raw:?} is under {taken}, which the gateway already serves: pick another, such as \"/hooks\""
            ));
        }
        let max_body_bytes = h
            .get("maxBodyBytes")
            .and_then(Value::as_u64)
            .filter(|n| *n > 0)
            .map_or(DEFAULT_MAX_BODY_BYTES, |n| n as usize);
        let allowed_agent_ids = h.get("allowedAgentIds").and_then(Value::as_array).map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        });
        let mappings = match h.get("mappings").and_then(Value::as_array) {
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(i, m)| Mapping::from_config(m, i))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(Some(HooksConfig {
            base_path,
            token: token.to_owned(),
            max_body_bytes,
            allowed_agent_ids,
            allow_request_session_key: h.get("allowRequestSessionKey").and_then(Value::as_bool)
                == Some(true),
            mappings,
        }))
    }

    /// Whether an explicit agentId may be used (`hooks.allowedAgentIds`).
    pub fn agent_allowed(&self, agent: &str) -> bool {
        match &self.allowed_agent_ids {
            None => true,
            Some(l) => l.iter().any(|a| a == "*" || a == agent),
        }
    }
}

impl Mapping {
    fn from_config(m: &Value, i: usize) -> Result<Mapping, String> {
        let at = |k: &str| owned(m, k);
        let wake = match str_at(m, "action") {
            None | Some("agent") => false,
            Some("wake") => true,
            Some(other) => {
                return Err(format!(
                    "hooks.mappings.{i}.action: expected \"wake\" or \"agent\", found {other:?}"
                ));
            }
        };
        let (message_template, text_template) = (
            at("messageTemplate").unwrap_or_default(),
            at("textTemplate").unwrap_or_default(),
        );
        if wake && text_template.is_empty() {
            return Err(format!(
                "hooks.mappings.{i}: action \"wake\" needs a textTemplate"
            ));
        }
        if !wake && message_template.is_empty() {
            return Err(format!(
                "hooks.mappings.{i}: action \"agent\" needs a messageTemplate"
            ));
        }
        let matcher = m.get("match").unwrap_or(&Value::Null);
        Ok(Mapping {
            id: at("id").unwrap_or_else(|| format!("mapping-{}", i + 1)),
            match_path: str_at(matcher, "path")
                .map(|p| p.trim_matches('/').to_owned())
                .filter(|p| !p.is_empty()),
            match_source: owned(matcher, "source"),
            wake,
            wake_mode: WakeMode::parse(str_at(m, "wakeMode")),
            message_template,
            text_template,
            name: at("name"),
            agent_id: at("agentId"),
            session_key: at("sessionKey"),
            deliver: m.get("deliver").and_then(Value::as_bool),
            channel: at("channel"),
            to: at("to"),
            model: at("model"),
            thinking: at("thinking"),
            timeout_seconds: m.get("timeoutSeconds").and_then(Value::as_u64),
        })
    }

    fn matches(&self, path: &str, body: &Value) -> bool {
        if let Some(p) = &self.match_path
            && p != path.trim_matches('/')
        {
            return false;
        }
        match &self.match_source {
            Some(s) => body.get("source").and_then(Value::as_str) == Some(s.as_str()),
            None => true,
        }
    }
}

/// The token a request carries: `Authorization: Bearer <t>`, else `x-openclaw-token`.
pub fn request_token(authorization: Option<&str>, header: Option<&str>) -> Option<String> {
    let bearer = authorization.map(str::trim).and_then(|a| {
        let (scheme, rest) = a.split_at_checked(7)?;
        scheme
            .eq_ignore_ascii_case("bearer ")
            .then(|| rest.trim())
            .filter(|t| !t.is_empty())
    });
    bearer
        .or_else(|| header.map(str::trim).filter(|t| !t.is_empty()))
        .map(str::to_owned)
}

/// Compares without an early exit, so timing does not tell how much of a guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

/// What a hook request asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Wake { text: String, mode: WakeMode },
    Agent(AgentRequest),
}

/// An isolated agent turn (`/hooks/agent` or an agent mapping).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgentRequest {
    pub message: String,
    /// `Hook` when not given.
    pub name: String,
    pub agent_id: Option<String>,
    pub wake_mode: WakeMode,
    pub session_key: Option<String>,
    /// The session key came from the request body (checked against
    /// `allowRequestSessionKey`), not from a mapping.
    pub key_from_request: bool,
    pub deliver: bool,
    pub channel: String,
    pub to: Option<String>,
    pub model: Option<String>,
    pub thinking: Option<String>,
    pub timeout_seconds: Option<u64>,
}

fn channel_of(v: Option<&str>) -> Result<String, String> {
    let c = v.unwrap_or("last").to_lowercase();
    if CHANNELS.contains(&c.as_str()) {
        Ok(c)
    } else {
        Err(format!("channel must be {}", CHANNELS.join("|")))
    }
}

/// The body of `POST /hooks/wake`: `{text, mode?}`.
pub fn wake_payload(body: &Value) -> Result<Action, String> {
    let text = str_at(body, "text").ok_or("text required")?;
    Ok(Action::Wake {
        text: text.to_owned(),
        mode: WakeMode::parse(body.get("mode").and_then(Value::as_str)),
    })
}

/// The body of `POST /hooks/agent`.
pub fn agent_payload(body: &Value) -> Result<Action, String> {
    let message = str_at(body, "message").ok_or("message required")?;
    if body.get("model").is_some() && str_at(body, "model").is_none() {
        return Err("model must be a non-empty string".into());
    }
    let timeout_seconds = body
        .get("timeoutSeconds")
        .and_then(Value::as_f64)
        .filter(|t| t.is_finite() && *t > 0.0)
        .map(|t| t.floor().max(1.0) as u64);
    let session_key = owned(body, "sessionKey");
    Ok(Action::Agent(AgentRequest {
        message: message.to_owned(),
        name: owned(body, "name").unwrap_or_else(|| "Hook".into()),
        agent_id: owned(body, "agentId"),
        wake_mode: WakeMode::parse(body.get("wakeMode").and_then(Value::as_str)),
        key_from_request: session_key.is_some(),
        session_key,
        deliver: body.get("deliver") != Some(&Value::Bool(false)),
        channel: channel_of(str_at(body, "channel"))?,
        to: owned(body, "to"),
        model: owned(body, "model"),
        thinking: owned(body, "thinking"),
        timeout_seconds,
    }))
}

/// The action of the first mapping that takes `path` (the part after the hooks path) and
/// `body`; `None` when none does. A mapping whose templates render empty is an error.
pub fn mapped(mappings: &[Mapping], path: &str, body: &Value) -> Option<Result<Action, String>> {
    let m = mappings.iter().find(|m| m.matches(path, body))?;
    let render_opt = |t: &Option<String>| {
        t.as_deref()
            .map(|t| render(t, path, body).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    if m.wake {
        let text = render(&m.text_template, path, body);
        if text.trim().is_empty() {
            return Some(Err(format!("hook mapping {} requires text", m.id)));
        }
        return Some(Ok(Action::Wake {
            text,
            mode: m.wake_mode,
        }));
    }
    let message = render(&m.message_template, path, body);
    if message.trim().is_empty() {
        return Some(Err(format!("hook mapping {} requires message", m.id)));
    }
    let channel = match channel_of(m.channel.as_deref()) {
        Ok(c) => c,
        Err(e) => return Some(Err(format!("hook mapping {}: {e}", m.id))),
    };
    Some(Ok(Action::Agent(AgentRequest {
        message,
        name: render_opt(&m.name).unwrap_or_else(|| "Hook".into()),
        agent_id: m.agent_id.clone(),
        wake_mode: m.wake_mode,
        session_key: render_opt(&m.session_key),
        key_from_request: false,
        deliver: m.deliver != Some(false),
        channel,
        to: render_opt(&m.to),
        model: render_opt(&m.model),
        thinking: render_opt(&m.thinking),
        timeout_seconds: m.timeout_seconds,
    })))
}

/// Replaces each `{{expr}}` with a value from the body: `a.b`, `items[0].x`,
/// `payload.a` (the same), `path` (the hook name). Missing values render empty; strings
/// as they are, other values as JSON.
pub fn render(template: &str, path: &str, body: &Value) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        let expr = rest[start + 2..start + 2 + len].trim();
        let value = if expr == "path" {
            Some(Value::String(path.to_owned()))
        } else {
            lookup(body, expr.strip_prefix("payload.").unwrap_or(expr)).cloned()
        };
        match value {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => out.push_str(&s),
            Some(v) => out.push_str(&v.to_string()),
        }
        rest = &rest[start + 2 + len + 2..];
    }
    out.push_str(rest);
    out
}

/// `a.b[0].c` in a JSON value.
fn lookup<'a>(v: &'a Value, expr: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in expr.split('.') {
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            cur = cur.as_object()?.get(name)?;
        }
        for idx in indexes.split('[').filter(|s| !s.is_empty()) {
            let n: usize = idx.strip_suffix(']')?.trim().parse().ok()?;
            cur = cur.as_array()?.get(n)?;
        }
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn disabled_by_default_and_no_token_refused() {
        assert_eq!(HooksConfig::from_config(&json!({})), Ok(None));
        assert_eq!(
            HooksConfig::from_config(&json!({"hooks": {"token": "t"}})),
            Ok(None)
        );
        let e = HooksConfig::from_config(&json!({"hooks": {"enabled": true}})).unwrap_err();
        assert!(e.contains("requires hooks.token"), "{e}");
        let e = HooksConfig::from_config(
            &json!({"hooks": {"enabled": true, "token": "t", "path": "/"}}),
        )
        .unwrap_err();
        assert!(e.contains("may not be"), "{e}");
        let e = HooksConfig::from_config(
            &json!({"hooks": {"enabled": true, "token": "t", "path": "/channels/x"}}),
        )
        .unwrap_err();
        assert!(e.contains("already serves"), "{e}");
        let c = HooksConfig::from_config(
            &json!({"hooks": {"enabled": true, "token": " t ", "path": "in/", "allowedAgentIds": ["Ops"]}}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.base_path, "/in");
        assert_eq!(c.token, "t");
        assert_eq!(c.max_body_bytes, 256 * 1024);
        assert!(c.agent_allowed("ops") && !c.agent_allowed("main"));
        assert!(!c.allow_request_session_key);
    }

    #[test]
    fn the_token_comes_from_bearer_or_the_openclaw_header() {
        assert_eq!(
            request_token(Some("Bearer abc"), None).as_deref(),
            Some("abc")
        );
        assert_eq!(
            request_token(Some("bearer  abc "), None).as_deref(),
            Some("abc")
        );
        assert_eq!(
            request_token(Some("Basic abc"), Some("x")).as_deref(),
            Some("x")
        );
        assert_eq!(request_token(Some("Bearer "), None), None);
        assert_eq!(request_token(None, None), None);
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn payloads_follow_openclaw_defaults() {
        assert_eq!(wake_payload(&json!({})), Err("text required".into()));
        assert_eq!(
            wake_payload(&json!({"text": "mail", "mode": "next-heartbeat"})),
            Ok(Action::Wake {
                text: "mail".into(),
                mode: WakeMode::NextHeartbeat
            })
        );
        let Ok(Action::Agent(a)) = agent_payload(&json!({"message": "go", "timeoutSeconds": 2.7}))
        else {
            panic!()
        };
        assert_eq!(
            (
                a.name.as_str(),
                a.deliver,
                a.channel.as_str(),
                a.timeout_seconds
            ),
            ("Hook", true, "last", Some(2))
        );
        assert!(
            agent_payload(&json!({"message": "go", "channel": "fax"}))
                .unwrap_err()
                .starts_with("channel must be last|")
        );
        assert!(agent_payload(&json!({"message": " "})).is_err());
        assert!(agent_payload(&json!({"message": "x", "model": ""})).is_err());
    }

    #[test]
    fn mappings_match_path_and_source_and_render_templates() {
        let cfg = json!({"hooks": {"enabled": true, "token": "t", "mappings": [
            {"match": {"path": "/gh/", "source": "github"}, "action": "agent",
             "messageTemplate": "PR {{pull_request.number}} by {{ pull_request.user.login }}: {{labels[1]}}{{missing}}",
             "sessionKey": "hook:gh:{{pull_request.number}}", "to": "{{chat}}"},
            {"match": {"path": "ping"}, "action": "wake", "textTemplate": "ping from {{path}}: {{payload.n}}"},
        ]}});
        let c = HooksConfig::from_config(&cfg).unwrap().unwrap();
        let body = json!({"source": "github", "pull_request": {"number": 7, "user": {"login": "ada"}},
                          "labels": ["a", "bug"], "chat": 42});
        let Some(Ok(Action::Agent(a))) = mapped(&c.mappings, "gh", &body) else {
            panic!()
        };
        assert_eq!(a.message, "PR 7 by ada: bug");
        assert_eq!(a.session_key.as_deref(), Some("hook:gh:7"));
        assert_eq!(a.to.as_deref(), Some("42"));
        assert!(!a.key_from_request);
        assert!(mapped(&c.mappings, "gh", &json!({"source": "gitlab"})).is_none());
        assert!(mapped(&c.mappings, "other", &body).is_none());
        assert_eq!(
            mapped(&c.mappings, "ping", &json!({"n": [1, 2]})),
            Some(Ok(Action::Wake {
                text: "ping from ping: [1,2]".into(),
                mode: WakeMode::Now
            }))
        );
        assert_eq!(
            render("{{a}} {{unclosed", "", &json!({"a": true})),
            "true {{unclosed"
        );
        let bad =
            json!({"hooks": {"enabled": true, "token": "t", "mappings": [{"action": "wake"}]}});
        assert!(
            HooksConfig::from_config(&bad)
                .unwrap_err()
                .contains("textTemplate")
        );
    }
}
