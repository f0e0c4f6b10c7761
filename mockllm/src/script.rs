//! What the mock answers: scripted [`Step`]s (a [`Match`] and an [`Action`]), their
//! convenience constructors, and their JSON form for the `/__mock/steps` control API.
//!
//! The JSON form is hand-parsed so a typo gets an error naming the step and the field
//! (`steps[1].fault: unknown fault "stal"; ...`) rather than serde's "did not match any
//! variant". See the crate docs for the shape.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

/// Split reply text into deltas of this many characters unless told otherwise.
pub const DEFAULT_CHUNK_CHARS: usize = 8;

/// One scripted answer: the first queued step whose `when` matches a request is consumed
/// by that request.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub when: Match,
    pub action: Action,
}

/// Which requests a step applies to; `None` matches anything (including no key at all).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Match {
    /// The model id as the request names it (body `model`, or the Gemini path segment).
    pub model: Option<String>,
    /// The API key as sent (`Authorization: Bearer`, `x-api-key`, `x-goog-api-key`, `?key=`).
    pub api_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Reply(Reply),
    Fault(Fault),
}

/// A successful model answer, rendered in the wire format of whichever API was called.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Visible answer text; may be empty (e.g. a tool call alone).
    pub text: String,
    /// Reasoning text: OpenAI `reasoning_content`, Anthropic `thinking` blocks, Gemini
    /// parts with `thought: true`.
    pub thinking: Option<String>,
    /// Tool calls as (name, arguments object), in order.
    pub tool_calls: Vec<(String, Value)>,
    /// (input, output, cached) tokens. `input` counts every prompt token, cached ones
    /// included (OpenAI and Gemini semantics); on Anthropic's wire `input_tokens` is
    /// `input - cached` because it reports cache reads apart. `None`: estimated from the
    /// request and reply sizes (4 characters a token), cached 0.
    pub usage: Option<(u64, u64, u64)>,
    /// Text, thinking and (OpenAI, Anthropic) tool arguments are streamed in deltas of
    /// this many characters; 0 means one delta.
    pub chunk_chars: usize,
    /// Stop as if `max_tokens` was reached: `length` / `max_tokens` / `MAX_TOKENS`.
    pub max_tokens: bool,
}

impl Default for Reply {
    fn default() -> Self {
        Self {
            text: String::new(),
            thinking: None,
            tool_calls: Vec::new(),
            usage: None,
            chunk_chars: DEFAULT_CHUNK_CHARS,
            max_tokens: false,
        }
    }
}

/// Something going wrong, on demand. "Events" are SSE events as the API frames them
/// (OpenAI `data:` lines including `[DONE]`, Anthropic `event:` blocks including `ping`,
/// Gemini `data:` lines); see the crate docs for what each fault does without streaming.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// An HTTP error with the API's own error JSON (or `body` verbatim) and, when set, a
    /// `retry-after` header in seconds.
    Status {
        code: u16,
        retry_after_secs: Option<u64>,
        body: Option<Value>,
    },
    /// Read the request and never answer; the connection is closed at shutdown.
    Stall,
    /// Stream this many events (at most all but the final one), then hang until shutdown.
    StallAfter { events: usize },
    /// Stream this many events (at most all but the final one), then end the body cleanly
    /// and close the connection: no `[DONE]`, no `message_stop`, no `finishReason`.
    Truncate { events: usize },
    /// 200, but one SSE event (or the whole body) is not valid JSON.
    InvalidJson,
    /// A normal reply with `tokio::time::sleep(per_event_ms)` before each event.
    Slow { per_event_ms: u64 },
    /// Close the TCP connection without any HTTP response.
    Reset,
    /// 400 with the API's real wording for an unsupported thinking/reasoning setting.
    RejectThinking,
}

impl Reply {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    pub fn with_thinking(mut self, thinking: impl Into<String>) -> Self {
        self.thinking = Some(thinking.into());
        self
    }

    pub fn with_tool_call(mut self, name: impl Into<String>, arguments: Value) -> Self {
        self.tool_calls.push((name.into(), arguments));
        self
    }

    pub fn with_usage(mut self, input: u64, output: u64, cached: u64) -> Self {
        self.usage = Some((input, output, cached));
        self
    }

    pub fn with_chunk_chars(mut self, chunk_chars: usize) -> Self {
        self.chunk_chars = chunk_chars;
        self
    }

    pub fn with_max_tokens(mut self) -> Self {
        self.max_tokens = true;
        self
    }
}

impl Step {
    pub fn reply(reply: Reply) -> Self {
        Self {
            when: Match::default(),
            action: Action::Reply(reply),
        }
    }

    /// A plain text answer.
    pub fn text(text: impl Into<String>) -> Self {
        Self::reply(Reply::text(text))
    }

    /// An answer that is a single tool call and no text.
    pub fn tool_call(name: impl Into<String>, arguments: Value) -> Self {
        Self::reply(Reply::default().with_tool_call(name, arguments))
    }

    pub fn fault(fault: Fault) -> Self {
        Self {
            when: Match::default(),
            action: Action::Fault(fault),
        }
    }

    /// `Fault::Status` with the API's default error body.
    pub fn status(code: u16) -> Self {
        Self::fault(Fault::Status {
            code,
            retry_after_secs: None,
            body: None,
        })
    }

    /// Only for requests naming this model.
    pub fn for_model(mut self, model: impl Into<String>) -> Self {
        self.when.model = Some(model.into());
        self
    }

    /// Only for requests carrying this API key.
    pub fn for_key(mut self, api_key: impl Into<String>) -> Self {
        self.when.api_key = Some(api_key.into());
        self
    }
}

impl Match {
    pub fn matches(&self, model: &str, api_key: Option<&str>) -> bool {
        self.model.as_deref().is_none_or(|m| m == model)
            && self.api_key.as_deref().is_none_or(|k| Some(k) == api_key)
    }
}

/// A control-API step that is not the documented JSON shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct StepError {
    /// Where, e.g. `steps[2].reply.toolCalls[0].name`.
    pub path: String,
    pub message: String,
}

fn err(path: &str, message: impl Into<String>) -> StepError {
    StepError {
        path: path.to_owned(),
        message: message.into(),
    }
}

const FAULT_NAMES: &str = "\"stall\", \"reset\", \"invalidJson\", \"rejectThinking\", or an object \
     {\"status\": 429, \"retryAfter\": 2, \"body\": {..}}, {\"stallAfter\": 3}, \
     {\"truncate\": 3}, {\"slow\": 250}";

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, StepError> {
    v.as_object()
        .ok_or_else(|| err(path, format!("expected a JSON object, found {v}")))
}

fn only_keys(o: &Map<String, Value>, path: &str, allowed: &[&str]) -> Result<(), StepError> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(err(
            path,
            format!("unknown field \"{k}\"; expected one of {allowed:?}"),
        )),
        None => Ok(()),
    }
}

fn string(o: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, StepError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(err(
            &format!("{path}.{key}"),
            format!("expected a string, found {v}"),
        )),
    }
}

fn uint(o: &Map<String, Value>, key: &str, path: &str) -> Result<Option<u64>, StepError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            err(
                &format!("{path}.{key}"),
                format!("expected a non-negative integer, found {v}"),
            )
        }),
    }
}

fn need_uint(o: &Map<String, Value>, key: &str, path: &str) -> Result<u64, StepError> {
    uint(o, key, path)?.ok_or_else(|| err(&format!("{path}.{key}"), "missing"))
}

impl Step {
    /// Parses one step of the control API; `path` names it in errors (e.g. `steps[0]`).
    pub fn from_json(v: &Value, path: &str) -> Result<Self, StepError> {
        let o = object(v, path)?;
        only_keys(o, path, &["model", "apiKey", "reply", "fault"])?;
        let when = Match {
            model: string(o, "model", path)?,
            api_key: string(o, "apiKey", path)?,
        };
        let action = match (o.get("reply"), o.get("fault")) {
            (Some(r), None) => Action::Reply(Reply::from_json(r, &format!("{path}.reply"))?),
            (None, Some(f)) => Action::Fault(Fault::from_json(f, &format!("{path}.fault"))?),
            (Some(_), Some(_)) => {
                return Err(err(path, "a step has \"reply\" or \"fault\", not both"));
            }
            (None, None) => return Err(err(path, "a step needs \"reply\" or \"fault\"")),
        };
        Ok(Self { when, action })
    }

    /// The control-API JSON of this step (what [`Step::from_json`] reads back).
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        if let Some(m) = &self.when.model {
            o.insert("model".into(), json!(m));
        }
        if let Some(k) = &self.when.api_key {
            o.insert("apiKey".into(), json!(k));
        }
        match &self.action {
            Action::Reply(r) => o.insert("reply".into(), r.to_json()),
            Action::Fault(f) => o.insert("fault".into(), f.to_json()),
        };
        Value::Object(o)
    }

    /// Parses the body of `POST /__mock/steps`: an array of steps, or one step.
    pub fn list_from_json(v: &Value) -> Result<Vec<Self>, StepError> {
        match v {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, s)| Self::from_json(s, &format!("steps[{i}]")))
                .collect(),
            other => Ok(vec![Self::from_json(other, "step")?]),
        }
    }
}

impl Reply {
    fn from_json(v: &Value, path: &str) -> Result<Self, StepError> {
        if let Value::String(s) = v {
            return Ok(Self::text(s.clone()));
        }
        let o = object(v, path)?;
        only_keys(
            o,
            path,
            &[
                "text",
                "thinking",
                "toolCalls",
                "usage",
                "chunkChars",
                "maxTokens",
            ],
        )?;
        let mut reply = Self {
            text: string(o, "text", path)?.unwrap_or_default(),
            thinking: string(o, "thinking", path)?,
            ..Self::default()
        };
        if let Some(n) = uint(o, "chunkChars", path)? {
            reply.chunk_chars = n as usize;
        }
        match o.get("maxTokens") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => reply.max_tokens = *b,
            Some(v) => {
                return Err(err(
                    &format!("{path}.maxTokens"),
                    format!("expected true or false, found {v}"),
                ));
            }
        }
        match o.get("toolCalls") {
            None | Some(Value::Null) => {}
            Some(Value::Array(calls)) => {
                for (i, c) in calls.iter().enumerate() {
                    let p = format!("{path}.toolCalls[{i}]");
                    let co = object(c, &p)?;
                    only_keys(co, &p, &["name", "arguments"])?;
                    let name =
                        string(co, "name", &p)?.ok_or_else(|| err(&p, "missing \"name\""))?;
                    let args = co.get("arguments").cloned().unwrap_or_else(|| json!({}));
                    reply.tool_calls.push((name, args));
                }
            }
            Some(v) => {
                return Err(err(
                    &format!("{path}.toolCalls"),
                    format!("expected an array, found {v}"),
                ));
            }
        }
        if let Some(u) = o.get("usage").filter(|u| !u.is_null()) {
            let p = format!("{path}.usage");
            let uo = object(u, &p)?;
            only_keys(uo, &p, &["input", "output", "cached"])?;
            reply.usage = Some((
                need_uint(uo, "input", &p)?,
                need_uint(uo, "output", &p)?,
                uint(uo, "cached", &p)?.unwrap_or(0),
            ));
        }
        Ok(reply)
    }

    fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("text".into(), json!(self.text));
        if let Some(t) = &self.thinking {
            o.insert("thinking".into(), json!(t));
        }
        if !self.tool_calls.is_empty() {
            let calls: Vec<Value> = self
                .tool_calls
                .iter()
                .map(|(n, a)| json!({"name": n, "arguments": a}))
                .collect();
            o.insert("toolCalls".into(), Value::Array(calls));
        }
        if let Some((i, out, c)) = self.usage {
            o.insert(
                "usage".into(),
                json!({"input": i, "output": out, "cached": c}),
            );
        }
        if self.chunk_chars != DEFAULT_CHUNK_CHARS {
            o.insert("chunkChars".into(), json!(self.chunk_chars));
        }
        if self.max_tokens {
            o.insert("maxTokens".into(), json!(true));
        }
        Value::Object(o)
    }
}

impl Fault {
    fn from_json(v: &Value, path: &str) -> Result<Self, StepError> {
        if let Value::String(name) = v {
            return match name.as_str() {
                "stall" => Ok(Self::Stall),
                "reset" => Ok(Self::Reset),
                "invalidJson" => Ok(Self::InvalidJson),
                "rejectThinking" => Ok(Self::RejectThinking),
                other => Err(err(
                    path,
                    format!("unknown fault \"{other}\"; expected {FAULT_NAMES}"),
                )),
            };
        }
        let o = object(v, path)?;
        let usize_of = |key| need_uint(o, key, path).map(|n| n as usize);
        if o.contains_key("status") {
            only_keys(o, path, &["status", "retryAfter", "body"])?;
            let code = need_uint(o, "status", path)?;
            let code = u16::try_from(code)
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| {
                    err(
                        &format!("{path}.status"),
                        format!("{code} is not an HTTP status (100-599)"),
                    )
                })?;
            return Ok(Self::Status {
                code,
                retry_after_secs: uint(o, "retryAfter", path)?,
                body: o.get("body").filter(|b| !b.is_null()).cloned(),
            });
        }
        let single = |key: &str| -> Result<(), StepError> { only_keys(o, path, &[key]) };
        if o.contains_key("stallAfter") {
            single("stallAfter")?;
            return Ok(Self::StallAfter {
                events: usize_of("stallAfter")?,
            });
        }
        if o.contains_key("truncate") {
            single("truncate")?;
            return Ok(Self::Truncate {
                events: usize_of("truncate")?,
            });
        }
        if o.contains_key("slow") {
            single("slow")?;
            return Ok(Self::Slow {
                per_event_ms: need_uint(o, "slow", path)?,
            });
        }
        Err(err(
            path,
            format!("unknown fault {v}; expected {FAULT_NAMES}"),
        ))
    }

    fn to_json(&self) -> Value {
        match self {
            Self::Status {
                code,
                retry_after_secs,
                body,
            } => {
                let mut o = Map::new();
                o.insert("status".into(), json!(code));
                if let Some(s) = retry_after_secs {
                    o.insert("retryAfter".into(), json!(s));
                }
                if let Some(b) = body {
                    o.insert("body".into(), b.clone());
                }
                Value::Object(o)
            }
            Self::Stall => json!("stall"),
            Self::StallAfter { events } => json!({"stallAfter": events}),
            Self::Truncate { events } => json!({"truncate": events}),
            Self::InvalidJson => json!("invalidJson"),
            Self::Slow { per_event_ms } => json!({"slow": per_event_ms}),
            Self::Reset => json!("reset"),
            Self::RejectThinking => json!("rejectThinking"),
        }
    }
}

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Self::from_json(&v, "step").map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_kinds() -> Vec<Step> {
        vec![
            Step::text("hi"),
            Step::reply(
                Reply::text("answer")
                    .with_thinking("hmm")
                    .with_tool_call("write", json!({"path": "a.txt", "content": "x"}))
                    .with_usage(10, 5, 2)
                    .with_chunk_chars(3)
                    .with_max_tokens(),
            )
            .for_model("gpt-4o")
            .for_key("sk-a"),
            Step::tool_call("read", json!({"path": "b"})),
            Step::fault(Fault::Status {
                code: 429,
                retry_after_secs: Some(2),
                body: Some(json!({"error": "custom"})),
            }),
            Step::status(500),
            Step::fault(Fault::Stall),
            Step::fault(Fault::StallAfter { events: 3 }),
            Step::fault(Fault::Truncate { events: 2 }),
            Step::fault(Fault::InvalidJson),
            Step::fault(Fault::Slow { per_event_ms: 250 }),
            Step::fault(Fault::Reset),
            Step::fault(Fault::RejectThinking),
        ]
    }

    #[test]
    fn every_step_round_trips_through_json() {
        for step in all_kinds() {
            let v = serde_json::to_value(&step).unwrap();
            let back: Step = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(back, step, "{v}");
        }
    }

    #[test]
    fn documented_json_shapes_parse() {
        let v = json!([
            {"model": "m", "reply": {"text": "hi", "toolCalls": [{"name": "write", "arguments": {"a": 1}}]}},
            {"fault": {"status": 429, "retryAfter": 2}},
            {"apiKey": "k", "reply": "short"},
            {"fault": "reset"},
        ]);
        let steps = Step::list_from_json(&v).unwrap();
        assert_eq!(
            steps[0],
            Step::reply(Reply::text("hi").with_tool_call("write", json!({"a": 1}))).for_model("m")
        );
        assert_eq!(
            steps[1],
            Step::fault(Fault::Status {
                code: 429,
                retry_after_secs: Some(2),
                body: None
            })
        );
        assert_eq!(steps[2], Step::text("short").for_key("k"));
        assert_eq!(steps[3], Step::fault(Fault::Reset));
        // a single object is one step
        assert_eq!(
            Step::list_from_json(&json!({"reply": "x"})).unwrap(),
            vec![Step::text("x")]
        );
    }

    #[test]
    fn errors_name_the_step_and_field() {
        let e = Step::list_from_json(&json!([{"reply": "ok"}, {"fault": "stal"}])).unwrap_err();
        assert_eq!(e.path, "steps[1].fault");
        assert!(e.message.contains("unknown fault \"stal\""), "{e}");

        let e = Step::list_from_json(&json!([{"reply": {"toolCalls": [{"arguments": {}}]}}]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "steps[0].reply.toolCalls[0]: missing \"name\""
        );

        let e = Step::list_from_json(&json!([{"fault": {"status": 42}}])).unwrap_err();
        assert_eq!(e.path, "steps[0].fault.status");

        let e = Step::list_from_json(&json!([{"modle": "x", "reply": "y"}])).unwrap_err();
        assert!(e.message.contains("unknown field \"modle\""), "{e}");

        let e = Step::list_from_json(&json!([{}])).unwrap_err();
        assert_eq!(e.message, "a step needs \"reply\" or \"fault\"");

        let e = Step::list_from_json(&json!([{"reply": "a", "fault": "reset"}])).unwrap_err();
        assert!(e.message.contains("not both"));

        let e = Step::list_from_json(&json!([{"fault": {"slow": -1}}])).unwrap_err();
        assert_eq!(e.path, "steps[0].fault.slow");

        let e = Step::list_from_json(&json!([{"fault": {"truncate": 1, "x": 2}}])).unwrap_err();
        assert!(e.message.contains("unknown field \"x\""), "{e}");
    }

    #[test]
    fn match_none_is_a_wildcard_and_some_is_exact() {
        let any = Match::default();
        assert!(any.matches("m", None));
        assert!(any.matches("m", Some("k")));
        let keyed = Step::text("x").for_key("k").for_model("m").when;
        assert!(keyed.matches("m", Some("k")));
        assert!(!keyed.matches("m", Some("other")));
        assert!(!keyed.matches("m", None));
        assert!(!keyed.matches("n", Some("k")));
    }
}
