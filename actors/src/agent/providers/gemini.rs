//! Google Gemini (`POST {base}/models/{model}:streamGenerateContent?alt=sse`).
//!
//! Stream: every `data:` is a whole `GenerateContentResponse`: `candidates[0].content.parts`
//! hold text, thought summaries (`thought: true`) and whole `functionCall`s (no ids, no
//! fragments); `finishReason` comes on the last chunk; `usageMetadata` is cumulative.
//! There is no end marker: the body simply ends.

use std::collections::VecDeque;

use reqwest::header::HeaderMap;
use serde_json::{Map, Value, json};

use super::replay::{self, Kind};
use super::{errors, malformed_json, new_call_id, sse};
use crate::agent::model::{
    ChatRequest, Endpoint, Message, ProviderError, StopReason, StreamEvent, Thinking, ToolCall,
    ToolSpec, Usage,
};

/// The placeholder Google documents for function calls whose real thought signature is
/// not available (history from another model, or lost on restart).
pub const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

pub fn url(ep: &Endpoint, model: &str) -> String {
    let model = model.strip_prefix("models/").unwrap_or(model);
    format!(
        "{}/models/{model}:streamGenerateContent?alt=sse",
        ep.base_url.trim_end_matches('/')
    )
}

pub fn headers(ep: &Endpoint) -> Result<HeaderMap, ProviderError> {
    let mut own = vec![("accept", "text/event-stream", false)];
    if let Some(k) = &ep.api_key {
        own.push(("x-goog-api-key", k.as_str(), true));
    }
    super::header_map(&own, &ep.headers)
}

/// `thinkingBudget` per level (within every Gemini 2.5 model's range; Gemini 3 maps
/// budgets to its thinking levels).
pub fn budget(t: Thinking) -> Option<u32> {
    match t {
        Thinking::Off => None,
        Thinking::Low => Some(1024),
        Thinking::Medium => Some(8192),
        Thinking::High => Some(24576),
    }
}

/// Gemini 3 and later (and `-latest` aliases) reject a current-turn function call that
/// comes back without its thought signature.
fn requires_signatures(model: &str) -> bool {
    let Some(rest) = model.split("gemini-").nth(1) else {
        return false;
    };
    let major: String = rest.chars().take_while(char::is_ascii_digit).collect();
    major.parse::<u32>().map_or(true, |m| m >= 3)
}

/// The request body without remembered thought signatures (see [`build_body_with`]).
pub fn build_body(req: &ChatRequest) -> Value {
    build_body_with(req, &|_| None)
}

/// The request body. `signature` gives the `thoughtSignature` that came with a tool call.
///
/// - Assistant messages are `model` contents of text and `functionCall` parts; tool
///   results are `user` contents of `functionResponse` parts (`{"output": ...}`, or
///   `{"error": ...}` when the tool failed), consecutive ones merged; consecutive user
///   contents are merged.
/// - Tool parameter schemas are cut down to the subset Gemini accepts
///   ([`tool_parameters`]).
/// - Thinking: `generationConfig.thinkingConfig {thinkingBudget, includeThoughts: true}`.
pub fn build_body_with(req: &ChatRequest, signature: &dyn Fn(&str) -> Option<Value>) -> Value {
    body(req, signature, true)
}

/// [`build_body_with`], with or without the `tools` value.
pub(super) fn body(
    req: &ChatRequest,
    signature: &dyn Fn(&str) -> Option<Value>,
    with_tools: bool,
) -> Value {
    let needs_signature = requires_signatures(&req.model);
    let turn_start = req
        .messages
        .iter()
        .rposition(|m| matches!(m, Message::User { .. }))
        .map_or(0, |i| i + 1);
    let mut contents: Vec<Value> = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        match m {
            Message::User { content } => push_user(&mut contents, json!({"text": content})),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                let mut parts = Vec::new();
                if !content.is_empty() {
                    parts.push(json!({"text": content}));
                }
                for (j, c) in tool_calls.iter().enumerate() {
                    let args = match &c.arguments {
                        Value::Null => json!({}),
                        v @ Value::Object(_) => v.clone(),
                        other => json!({"value": other}),
                    };
                    let mut part = json!({"functionCall": {"name": c.name, "args": args}});
                    if let Some(sig) = signature(&c.id) {
                        part["thoughtSignature"] = sig;
                    } else if j == 0 && needs_signature && i >= turn_start {
                        part["thoughtSignature"] = SKIP_SIGNATURE.into();
                    }
                    parts.push(part);
                }
                if !parts.is_empty() {
                    contents.push(json!({"role": "model", "parts": parts}));
                }
            }
            Message::Tool {
                name,
                content,
                is_error,
                ..
            } => {
                let key = if *is_error { "error" } else { "output" };
                push_user(
                    &mut contents,
                    json!({"functionResponse": {"name": name, "response": {key: content}}}),
                );
            }
        }
    }
    let mut body = json!({"contents": contents});
    if !req.system.is_empty() {
        body["systemInstruction"] = json!({"parts": [{"text": req.system}]});
    }
    if with_tools && !req.tools.is_empty() {
        body["tools"] = tools_value(&req.tools);
    }
    let mut config = Map::new();
    if let Some(n) = req.max_tokens {
        config.insert("maxOutputTokens".into(), n.into());
    }
    if let Some(b) = budget(req.thinking) {
        config.insert(
            "thinkingConfig".into(),
            json!({"thinkingBudget": b, "includeThoughts": true}),
        );
    }
    if !config.is_empty() {
        body["generationConfig"] = Value::Object(config);
    }
    body
}

/// The request's `tools` value (made once per tool set: see [`Tools::json`](crate::agent::model::Tools::json)).
pub fn tools_value(tools: &[ToolSpec]) -> Value {
    let decls: Vec<Value> = tools
        .iter()
        .map(|t| {
            let mut d = json!({"name": t.name, "description": t.description});
            if let Some(p) = tool_parameters(&t.parameters) {
                d["parameters"] = p;
            }
            d
        })
        .collect();
    json!([{"functionDeclarations": decls}])
}

fn push_user(contents: &mut Vec<Value>, part: Value) {
    if let Some(parts) = contents
        .last_mut()
        .filter(|c| c["role"] == "user")
        .and_then(|c| c["parts"].as_array_mut())
    {
        parts.push(part);
        return;
    }
    contents.push(json!({"role": "user", "parts": [part]}));
}

/// A tool's JSON Schema reduced to Gemini's OpenAPI subset, or `None` when the tool
/// takes no arguments (Gemini rejects an object schema with no properties).
///
/// Kept: type, nullable, description, title, enum (strings), format (the ones Gemini
/// accepts), items, properties, required (only listed properties), anyOf, numeric and
/// length bounds, propertyOrdering. `$ref`s into `$defs`/`definitions` are inlined;
/// `oneOf` becomes `anyOf`; `allOf` is merged; `"type": [X, "null"]` and
/// `anyOf [X, {"type": "null"}]` become `nullable`; `const` becomes a one-value enum.
/// Everything else (`additionalProperties`, `$schema`, `default`, `examples`, ...) goes.
pub fn tool_parameters(schema: &Value) -> Option<Value> {
    if !schema.is_object() {
        return None;
    }
    let mut s = clean(schema, schema, 0);
    if s.get("type").is_none() && s.get("anyOf").is_none() {
        s["type"] = "object".into();
    }
    let has_properties = s
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| !p.is_empty());
    if s["type"] == "object" && !has_properties {
        return None;
    }
    Some(s)
}

fn clean(v: &Value, root: &Value, depth: usize) -> Value {
    let Value::Object(map) = v else {
        return json!({});
    };
    if depth > 24 {
        return json!({"type": "string", "description": "(nested too deeply)"});
    }
    if let Some(r) = map.get("$ref").and_then(Value::as_str) {
        let target = r.strip_prefix('#').and_then(|p| root.pointer(p));
        let mut resolved = match target {
            Some(t) => clean(t, root, depth + 1),
            None => json!({"type": "object"}),
        };
        if let Some(d) = map.get("description") {
            resolved["description"] = d.clone();
        }
        return resolved;
    }
    let mut out = Map::new();
    match map.get("type") {
        Some(Value::String(t)) => {
            out.insert("type".into(), t.as_str().into());
        }
        Some(Value::Array(ts)) => {
            if ts.iter().any(|t| t == "null") {
                out.insert("nullable".into(), true.into());
            }
            if let Some(t) = ts.iter().filter_map(Value::as_str).find(|t| *t != "null") {
                out.insert("type".into(), t.into());
            }
        }
        _ => {}
    }
    for (k, val) in map {
        match k.as_str() {
            "description" | "title" | "nullable" | "pattern" | "minimum" | "maximum"
            | "minItems" | "maxItems" | "minLength" | "maxLength" | "minProperties"
            | "maxProperties" | "propertyOrdering" => {
                out.insert(k.clone(), val.clone());
            }
            "format" => {
                let ok = matches!(
                    val.as_str(),
                    Some("date-time" | "enum" | "int32" | "int64" | "float" | "double")
                );
                if ok {
                    out.insert(k.clone(), val.clone());
                }
            }
            "enum"
                if val
                    .as_array()
                    .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string)) =>
            {
                out.insert(k.clone(), val.clone());
                out.entry("type").or_insert_with(|| "string".into());
            }
            "const" if val.is_string() => {
                out.insert("enum".into(), json!([val]));
                out.entry("type").or_insert_with(|| "string".into());
            }
            "items" => {
                let item = match val {
                    Value::Array(a) => a.first().cloned().unwrap_or(json!({})),
                    other => other.clone(),
                };
                out.insert(k.clone(), clean(&item, root, depth + 1));
            }
            "properties" => {
                if let Some(props) = val.as_object() {
                    let cleaned: Map<String, Value> = props
                        .iter()
                        .map(|(name, p)| (name.clone(), clean(p, root, depth + 1)))
                        .collect();
                    if !cleaned.is_empty() {
                        out.insert(k.clone(), Value::Object(cleaned));
                    }
                }
            }
            "anyOf" | "oneOf" => {
                let Some(alts) = val.as_array() else { continue };
                let mut kept = Vec::new();
                for a in alts {
                    if a.get("type").is_some_and(|t| t == "null") {
                        out.insert("nullable".into(), true.into());
                    } else {
                        kept.push(clean(a, root, depth + 1));
                    }
                }
                if kept.len() == 1 {
                    merge(&mut out, kept.pop().unwrap_or_default());
                } else if !kept.is_empty() {
                    out.insert("anyOf".into(), Value::Array(kept));
                }
            }
            "allOf" => {
                for a in val.as_array().into_iter().flatten() {
                    merge(&mut out, clean(a, root, depth + 1));
                }
            }
            _ => {}
        }
    }
    if let Some(req) = map.get("required").and_then(Value::as_array) {
        let props = out.get("properties").and_then(Value::as_object);
        let kept: Vec<Value> = req
            .iter()
            .filter(|r| {
                r.as_str()
                    .is_some_and(|r| props.is_some_and(|p| p.contains_key(r)))
            })
            .cloned()
            .collect();
        let mut all = out
            .get("required")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for r in kept {
            if !all.contains(&r) {
                all.push(r);
            }
        }
        if !all.is_empty() {
            out.insert("required".into(), Value::Array(all));
        }
    }
    Value::Object(out)
}

/// Merges a cleaned schema into `out`: properties and required are unions, other keys
/// are kept where `out` has none.
fn merge(out: &mut Map<String, Value>, other: Value) {
    let Value::Object(other) = other else { return };
    for (k, v) in other {
        match (k.as_str(), out.get_mut(&k)) {
            ("properties", Some(Value::Object(mine))) => {
                if let Value::Object(theirs) = v {
                    for (pk, pv) in theirs {
                        mine.entry(pk).or_insert(pv);
                    }
                }
            }
            ("required", Some(Value::Array(mine))) => {
                for r in v.as_array().into_iter().flatten() {
                    if !mine.contains(r) {
                        mine.push(r.clone());
                    }
                }
            }
            (_, Some(_)) => {}
            (_, None) => {
                out.insert(k, v);
            }
        }
    }
}

/// Decodes a `streamGenerateContent?alt=sse` stream.
pub struct Decoder {
    thinking: Thinking,
    usage: Usage,
    finish: Option<StopReason>,
    calls: usize,
}

impl Decoder {
    pub fn new(thinking: Thinking) -> Self {
        Self {
            thinking,
            usage: Usage::default(),
            finish: None,
            calls: 0,
        }
    }
}

fn usage(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input: n("promptTokenCount") + n("toolUsePromptTokenCount"),
        output: n("candidatesTokenCount") + n("thoughtsTokenCount"),
        cached: n("cachedContentTokenCount"),
    }
}

/// An `{"error": {code, message, status}}` payload mid-stream.
fn stream_error(v: &Value, thinking: Thinking) -> ProviderError {
    let status = v
        .pointer("/error/code")
        .and_then(Value::as_u64)
        .filter(|c| (400..600).contains(c))
        .unwrap_or(500);
    errors::classify(status as u16, None, &v.to_string(), thinking)
}

impl super::Decoder for Decoder {
    fn event(
        &mut self,
        ev: sse::Event,
        out: &mut VecDeque<StreamEvent>,
    ) -> Result<bool, ProviderError> {
        let data = ev.data.trim();
        if data.is_empty() {
            return Ok(false);
        }
        let v: Value =
            serde_json::from_str(data).map_err(|e| malformed_json("generateContent", &e, data))?;
        if v.get("error").is_some_and(|e| !e.is_null()) {
            return Err(stream_error(&v, self.thinking));
        }
        if let Some(u) = v.get("usageMetadata") {
            self.usage = usage(u);
        }
        if v.pointer("/promptFeedback/blockReason").is_some() {
            self.finish = Some(StopReason::Refusal);
        }
        let Some(cand) = v
            .get("candidates")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        else {
            return Ok(false);
        };
        for part in cand
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(t) = part
                .get("text")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                if part.get("thought").and_then(Value::as_bool) == Some(true) {
                    out.push_back(StreamEvent::Thinking(t.to_string()));
                } else {
                    out.push_back(StreamEvent::Text(t.to_string()));
                }
            }
            if let Some(fc) = part.get("functionCall") {
                let name = fc
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| {
                        ProviderError::Malformed("a functionCall without a name".into())
                    })?;
                let id = fc
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|i| !i.is_empty())
                    .map_or_else(new_call_id, str::to_string);
                let arguments = fc.get("args").cloned().unwrap_or(Value::Null);
                let index = self.calls;
                self.calls += 1;
                if let Some(sig) = part.get("thoughtSignature").filter(|s| s.is_string()) {
                    replay::remember(Kind::GeminiSignature, &id, sig.clone());
                }
                out.push_back(StreamEvent::ToolCallStarted {
                    index,
                    id: id.clone(),
                    name: name.to_string(),
                });
                if !arguments.is_null() {
                    out.push_back(StreamEvent::ToolCallDelta {
                        index,
                        fragment: arguments.to_string(),
                    });
                }
                out.push_back(StreamEvent::ToolCall(ToolCall {
                    id,
                    name: name.to_string(),
                    arguments,
                }));
            }
        }
        if let Some(r) = cand.get("finishReason").and_then(Value::as_str) {
            self.finish = Some(match r {
                "STOP" | "OTHER" | "FINISH_REASON_UNSPECIFIED" => StopReason::End,
                "MAX_TOKENS" => StopReason::MaxTokens,
                "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" | "TOO_MANY_TOOL_CALLS" => {
                    let detail = cand
                        .get("finishMessage")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    return Err(ProviderError::Malformed(
                        format!("Gemini stopped with {r} {detail}").trim().into(),
                    ));
                }
                // SAFETY, RECITATION, LANGUAGE, BLOCKLIST, PROHIBITED_CONTENT, SPII, ...
                _ => StopReason::Refusal,
            });
        }
        Ok(false)
    }

    fn eof(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), ProviderError> {
        let Some(mut stop) = self.finish else {
            return Err(ProviderError::Truncated(
                "the generateContent stream ended without a finishReason".into(),
            ));
        };
        if stop == StopReason::End && self.calls > 0 {
            stop = StopReason::ToolUse;
        }
        out.push_back(StreamEvent::Done {
            stop,
            usage: self.usage,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{run, run_all_splits, sample_request};
    use super::*;

    fn chunk(v: Value) -> String {
        format!("data: {v}\r\n\r\n")
    }

    fn parts(p: Value, finish: Option<&str>) -> String {
        let mut cand = json!({"content": {"parts": p, "role": "model"}, "index": 0});
        if let Some(f) = finish {
            cand["finishReason"] = f.into();
        }
        chunk(json!({"candidates": [cand], "modelVersion": "gemini-2.5-flash"}))
    }

    fn with_usage(s: String, p: u64, c: u64, t: u64, cached: u64) -> String {
        let mut v: Value = serde_json::from_str(s.trim().strip_prefix("data: ").unwrap()).unwrap();
        v["usageMetadata"] = json!({"promptTokenCount": p, "candidatesTokenCount": c, "thoughtsTokenCount": t, "cachedContentTokenCount": cached, "totalTokenCount": p + c + t});
        chunk(v)
    }

    #[test]
    fn body_maps_messages_tools_and_config() {
        let mut req = sample_request(Thinking::Off);
        req.model = "gemini-2.5-flash".into();
        req.max_tokens = Some(1000);
        let b = build_body(&req);
        assert_eq!(
            b,
            json!({
                "systemInstruction": {"parts": [{"text": "You are terse."}]},
                "contents": [
                    {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
                    {"role": "model", "parts": [
                        {"text": "Checking."},
                        {"functionCall": {"name": "weather", "args": {"city": "Paris"}}},
                        {"functionCall": {"name": "weather", "args": {}}},
                    ]},
                    {"role": "user", "parts": [
                        {"functionResponse": {"name": "weather", "response": {"output": "18C"}}},
                        {"functionResponse": {"name": "weather", "response": {"error": "city missing"}}},
                    ]},
                ],
                "tools": [{"functionDeclarations": [{
                    "name": "weather",
                    "description": "Current weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                }]}],
                "generationConfig": {"maxOutputTokens": 1000},
            })
        );
        req.thinking = Thinking::High;
        req.max_tokens = None;
        assert_eq!(
            build_body(&req)["generationConfig"],
            json!({"thinkingConfig": {"thinkingBudget": 24576, "includeThoughts": true}})
        );
        req.thinking = Thinking::Off;
        req.tools = Default::default();
        req.system.clear();
        let b = build_body(&req);
        assert!(b.get("generationConfig").is_none() && b.get("tools").is_none());
        assert!(b.get("systemInstruction").is_none());
    }

    #[test]
    fn thought_signatures_replayed_or_placeholder_on_gemini_3() {
        let mut req = sample_request(Thinking::Low);
        req.model = "gemini-3-pro-preview".into();
        let b = build_body_with(&req, &|id| (id == "call_b").then(|| json!("real-sig")));
        let p = &b["contents"][1]["parts"];
        assert_eq!(p[1]["thoughtSignature"], SKIP_SIGNATURE);
        assert_eq!(p[2]["thoughtSignature"], "real-sig");
        // Gemini 2.5 does not need them.
        req.model = "gemini-2.5-pro".into();
        let b = build_body(&req);
        assert!(
            b["contents"][1]["parts"][1]
                .get("thoughtSignature")
                .is_none()
        );
        // An earlier, finished turn gets no placeholder.
        req.model = "gemini-flash-latest".into();
        req.messages.push(Message::User {
            content: "next".into(),
        });
        let b = build_body(&req);
        assert!(
            b["contents"][1]["parts"][1]
                .get("thoughtSignature")
                .is_none()
        );
        assert_eq!(b["contents"][2]["parts"][2], json!({"text": "next"}));
        assert!(requires_signatures("gemini-3-flash"));
        assert!(requires_signatures("gemini-10-ultra"));
        assert!(requires_signatures("models/gemini-pro-latest"));
        assert!(!requires_signatures("gemini-2.0-flash"));
        assert!(!requires_signatures("gemma-3-27b-it"));
    }

    #[test]
    fn schemas_are_cut_to_the_gemini_subset() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "$defs": {"Unit": {"type": "string", "enum": ["c", "f"], "description": "unit"}},
            "properties": {
                "city": {"type": "string", "format": "uri", "default": "Paris", "examples": ["x"]},
                "unit": {"$ref": "#/$defs/Unit", "description": "which unit"},
                "days": {"type": ["integer", "null"], "minimum": 1, "format": "int32"},
                "tags": {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "string"}, "properties": {"k": {"type": "string"}}}},
                "mode": {"const": "fast"},
                "when": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
                "either": {"oneOf": [{"type": "string"}, {"type": "number"}]},
                "both": {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}, {"properties": {"b": {"type": "number"}}}]},
            },
            "required": ["city", "ghost"],
        });
        let p = tool_parameters(&schema).unwrap();
        assert_eq!(
            p,
            json!({
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["c", "f"], "description": "which unit"},
                    "days": {"type": "integer", "nullable": true, "minimum": 1, "format": "int32"},
                    "tags": {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}}}},
                    "mode": {"type": "string", "enum": ["fast"]},
                    "when": {"type": "string", "format": "date-time", "nullable": true},
                    "either": {"anyOf": [{"type": "string"}, {"type": "number"}]},
                    "both": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "number"}}, "required": ["a"]},
                },
                "required": ["city"],
            })
        );
        let text = p.to_string();
        for banned in [
            "additionalProperties",
            "$schema",
            "$defs",
            "$ref",
            "default",
            "examples",
            "uri",
            "const",
            "oneOf",
            "allOf",
        ] {
            assert!(!text.contains(banned), "{banned} left in {text}");
        }
        // No arguments: no parameters at all.
        assert_eq!(
            tool_parameters(&json!({"type": "object", "properties": {}})),
            None
        );
        assert_eq!(
            tool_parameters(&json!({"type": "object", "additionalProperties": false})),
            None
        );
        assert_eq!(tool_parameters(&Value::Null), None);
        // A self-referencing schema terminates.
        let cyclic = json!({"type": "object", "properties": {"n": {"$ref": "#"}}});
        assert!(
            tool_parameters(&cyclic)
                .unwrap()
                .to_string()
                .contains("nested too deeply")
        );
    }

    #[tokio::test]
    async fn text_and_thoughts_with_usage_at_every_split() {
        let body = [
            parts(json!([{"text": "Considering…", "thought": true}]), None),
            parts(json!([{"text": "Hello"}]), None),
            with_usage(
                parts(json!([{"text": " there"}]), Some("STOP")),
                9,
                2,
                30,
                4,
            ),
        ]
        .concat();
        let got = run_all_splits(|| Decoder::new(Thinking::Low), &body).await;
        assert_eq!(
            got,
            vec![
                Ok(StreamEvent::Thinking("Considering…".into())),
                Ok(StreamEvent::Text("Hello".into())),
                Ok(StreamEvent::Text(" there".into())),
                Ok(StreamEvent::Done {
                    stop: StopReason::End,
                    usage: Usage {
                        input: 9,
                        output: 32,
                        cached: 4
                    }
                }),
            ]
        );
    }

    #[tokio::test]
    async fn function_calls_get_ids_and_signatures_are_remembered() {
        let body = [
            parts(json!([{"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnLTE="}]), None),
            parts(json!([{"functionCall": {"name": "clock"}}]), Some("STOP")),
        ]
        .concat();
        let got: Vec<StreamEvent> = run(Decoder::new(Thinking::Off), &body, 5)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got.len(), 6, "{got:?}");
        let StreamEvent::ToolCallStarted { index: 0, id, name } = &got[0] else {
            panic!("{got:?}")
        };
        assert!(id.starts_with("call_") && name == "weather");
        assert_eq!(
            got[1],
            StreamEvent::ToolCallDelta {
                index: 0,
                fragment: "{\"city\":\"Paris\"}".into()
            }
        );
        assert_eq!(
            got[2],
            StreamEvent::ToolCall(ToolCall {
                id: id.clone(),
                name: "weather".into(),
                arguments: json!({"city": "Paris"})
            })
        );
        assert_eq!(
            replay::recall(Kind::GeminiSignature, id),
            Some(json!("c2lnLTE="))
        );
        let StreamEvent::ToolCall(clock) = &got[4] else {
            panic!("{got:?}")
        };
        assert_eq!(
            (clock.name.as_str(), &clock.arguments),
            ("clock", &Value::Null)
        );
        assert_ne!(&clock.id, id);
        assert_eq!(
            got[5],
            StreamEvent::Done {
                stop: StopReason::ToolUse,
                usage: Usage::default()
            }
        );
    }

    #[tokio::test]
    async fn finish_reasons_truncation_errors() {
        for (r, s) in [
            ("MAX_TOKENS", StopReason::MaxTokens),
            ("SAFETY", StopReason::Refusal),
            ("RECITATION", StopReason::Refusal),
            ("OTHER", StopReason::End),
        ] {
            let got = run(
                Decoder::new(Thinking::Off),
                &parts(json!([{"text": "x"}]), Some(r)),
                1000,
            )
            .await;
            assert!(
                matches!(got.last(), Some(Ok(StreamEvent::Done { stop, .. })) if *stop == s),
                "{r}"
            );
        }
        let got = run(
            Decoder::new(Thinking::Off),
            &parts(json!([]), Some("MALFORMED_FUNCTION_CALL")),
            1000,
        )
        .await;
        assert!(
            matches!(&got[0], Err(ProviderError::Malformed(m)) if m.contains("MALFORMED_FUNCTION_CALL"))
        );
        // Blocked prompt: no candidates, a blockReason.
        let got = run(
            Decoder::new(Thinking::Off),
            &chunk(json!({"promptFeedback": {"blockReason": "SAFETY"}})),
            1000,
        )
        .await;
        assert!(matches!(
            got[0],
            Ok(StreamEvent::Done {
                stop: StopReason::Refusal,
                ..
            })
        ));
        // No finishReason before the end.
        let got = run(
            Decoder::new(Thinking::Off),
            &parts(json!([{"text": "x"}]), None),
            1000,
        )
        .await;
        assert!(matches!(got[1], Err(ProviderError::Truncated(_))));
        let got = run(
            Decoder::new(Thinking::Off),
            "data: {\"candidates\": [}\r\n\r\n",
            1000,
        )
        .await;
        assert!(matches!(got[0], Err(ProviderError::Malformed(_))));
        let got = run(
            Decoder::new(Thinking::Off),
            &chunk(json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}})),
            1000,
        )
        .await;
        assert_eq!(
            got,
            vec![Err(ProviderError::Server {
                status: 503,
                message: "UNAVAILABLE: The model is overloaded.".into()
            })]
        );
    }

    #[test]
    fn url_and_headers() {
        let ep = Endpoint {
            api: crate::agent::model::Api::GoogleGenerativeAi,
            base_url: "https://generativelanguage.googleapis.com/v1beta".into(),
            api_key: Some("AIza-1".into()),
            headers: vec![],
            connect_timeout: std::time::Duration::from_secs(1),
            idle_timeout: std::time::Duration::from_secs(1),
        };
        assert_eq!(
            url(&ep, "models/gemini-2.5-flash"),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        let h = headers(&ep).unwrap();
        assert_eq!(h["x-goog-api-key"], "AIza-1");
        assert!(h["x-goog-api-key"].is_sensitive());
    }
}
