//! Anthropic messages (`POST {base}/v1/messages`, `stream: true`).
//!
//! Stream: named events `message_start` (input usage), `content_block_start` (`text`,
//! `thinking`, `redacted_thinking`, `tool_use {id, name}`), `content_block_delta`
//! (`text_delta`, `thinking_delta`, `signature_delta`, `input_json_delta.partial_json`),
//! `content_block_stop`, `message_delta` (`stop_reason`, output usage), `message_stop`,
//! `ping`, and `error` mid-stream.

use std::collections::{HashMap, VecDeque};

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::replay::{self, Kind};
use super::{errors, malformed_json, parse_args, sse};
use crate::agent::model::{
    ChatRequest, Endpoint, Message, ProviderError, StopReason, StreamEvent, Thinking, ToolCall,
    ToolSpec, Usage,
};

pub const API_VERSION: &str = "2023-06-01";
/// `max_tokens` is required; this when the request sets none.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The API root with `/v1` (a configured base may or may not end in it).
pub fn v1(ep: &Endpoint) -> String {
    let base = ep.base_url.trim_end_matches('/');
    if base.ends_with("/v1") {
        base.to_string()
    } else {
        format!("{base}/v1")
    }
}

pub fn url(ep: &Endpoint) -> String {
    format!("{}/messages", v1(ep))
}

pub fn headers(ep: &Endpoint) -> Result<HeaderMap, ProviderError> {
    let mut own = vec![
        ("anthropic-version", API_VERSION, false),
        ("accept", "text/event-stream", false),
    ];
    if let Some(k) = &ep.api_key {
        own.push(("x-api-key", k.as_str(), true));
    }
    super::header_map(&own, &ep.headers)
}

/// Extended thinking budget per level.
pub fn budget(t: Thinking) -> Option<u32> {
    match t {
        Thinking::Off => None,
        Thinking::Low => Some(1024),
        Thinking::Medium => Some(4096),
        Thinking::High => Some(16384),
    }
}

/// The request body without replayed thinking blocks (see [`build_body_with`]).
pub fn build_body(req: &ChatRequest) -> Value {
    build_body_with(req, &|_| None)
}

/// The request body. `replay` gives, for a tool_use id, the thinking blocks (a JSON
/// array, signatures included) of the assistant message that made the call.
///
/// - Consecutive tool results are one user message of `tool_result` blocks (`is_error`
///   when the tool failed); a user message right after them joins it as a text block.
/// - Assistant messages are `text` + `tool_use` blocks; empty ones are left out.
/// - Thinking: `thinking {type: enabled, budget_tokens}`; `max_tokens` is raised to
///   budget + the asked-for maximum when it would not exceed the budget. With thinking
///   on, the API requires the thinking blocks of every assistant message of the current
///   tool-use turn; when one is not known (another model made the call, or the process
///   restarted), thinking is left off for this request instead of failing with 400.
pub fn build_body_with(req: &ChatRequest, replay: &dyn Fn(&str) -> Option<Value>) -> Value {
    body(req, replay, true)
}

/// [`build_body_with`], with or without the `tools` value.
pub(super) fn body(
    req: &ChatRequest,
    replay: &dyn Fn(&str) -> Option<Value>,
    with_tools: bool,
) -> Value {
    let blocks_for = |calls: &[ToolCall]| {
        calls
            .first()
            .and_then(|c| replay(&c.id))
            .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
    };
    let mut thinking = budget(req.thinking);
    if thinking.is_some() {
        let turn_start = req
            .messages
            .iter()
            .rposition(|m| matches!(m, Message::User { .. }))
            .map_or(0, |i| i + 1);
        let unknown = req.messages[turn_start..].iter().any(|m| {
            matches!(m, Message::Assistant { tool_calls, .. }
                if !tool_calls.is_empty() && blocks_for(tool_calls).is_none())
        });
        if unknown {
            tracing::debug!(
                "thinking blocks of the current tool-use turn are unknown: thinking left off"
            );
            thinking = None;
        }
    }

    let mut messages: Vec<Value> = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        match m {
            Message::User { content } => {
                if let Some(last) = tool_result_message(&mut messages) {
                    last.push(json!({"type": "text", "text": content}));
                } else {
                    messages.push(json!({"role": "user", "content": content}));
                }
            }
            Message::Assistant {
                content,
                tool_calls,
            } => {
                let mut blocks: Vec<Value> = Vec::new();
                if let (Some(_), Some(Value::Array(t))) = (thinking, blocks_for(tool_calls)) {
                    blocks.extend(t);
                }
                if !content.is_empty() {
                    blocks.push(json!({"type": "text", "text": content}));
                }
                for c in tool_calls {
                    let input = match &c.arguments {
                        Value::Null => json!({}),
                        v @ Value::Object(_) => v.clone(),
                        other => json!({"input": other}),
                    };
                    blocks.push(
                        json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}),
                    );
                }
                if !blocks.is_empty() {
                    messages.push(json!({"role": "assistant", "content": blocks}));
                }
            }
            Message::Tool {
                call_id,
                content,
                is_error,
                ..
            } => {
                let mut block =
                    json!({"type": "tool_result", "tool_use_id": call_id, "content": content});
                if *is_error {
                    block["is_error"] = true.into();
                }
                if let Some(last) = tool_result_message(&mut messages) {
                    last.push(block);
                } else {
                    messages.push(json!({"role": "user", "content": [block]}));
                }
            }
        }
    }

    let mut max_tokens = req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let mut body = json!({
        "model": req.model,
        "messages": messages,
        "stream": true,
    });
    if let Some(b) = thinking {
        if max_tokens <= b {
            max_tokens = b.saturating_add(max_tokens);
        }
        body["thinking"] = json!({"type": "enabled", "budget_tokens": b});
    }
    body["max_tokens"] = max_tokens.into();
    if !req.system.is_empty() {
        body["system"] = req.system.as_str().into();
    }
    if with_tools && !req.tools.is_empty() {
        body["tools"] = tools_value(&req.tools);
    }
    body
}

/// The request's `tools` value (made once per tool set: see [`Tools::json`](crate::agent::model::Tools::json)).
pub fn tools_value(tools: &[ToolSpec]) -> Value {
    tools
        .iter()
        .map(|t| {
            let mut tool =
                json!({"name": t.name, "input_schema": super::object_schema(&t.parameters)});
            if !t.description.is_empty() {
                tool["description"] = t.description.as_str().into();
            }
            tool
        })
        .collect()
}

/// The content blocks of the last message when it is a user message of tool results.
fn tool_result_message(messages: &mut [Value]) -> Option<&mut Vec<Value>> {
    let last = messages.last_mut()?;
    if last["role"] != "user" {
        return None;
    }
    let blocks = last.get_mut("content")?.as_array_mut()?;
    (blocks.first()?.get("type")? == "tool_result").then_some(blocks)
}

enum Block {
    Text,
    Thinking {
        text: String,
        signature: String,
    },
    Redacted {
        data: Value,
    },
    Tool {
        ordinal: usize,
        id: String,
        name: String,
        json: String,
        initial: Value,
    },
    Other,
}

/// Decodes a messages stream.
pub struct Decoder {
    thinking: Thinking,
    usage: Usage,
    input_raw: u64,
    cache_read: u64,
    cache_write: u64,
    stop: Option<StopReason>,
    blocks: HashMap<u64, Block>,
    tools: usize,
    /// Thinking blocks of this message, for the next request of the turn.
    thinking_blocks: Vec<Value>,
    tool_ids: Vec<String>,
    /// A tool call whose JSON did not parse: an error unless the message hit max_tokens.
    bad_call: Option<ProviderError>,
}

impl Decoder {
    pub fn new(thinking: Thinking) -> Self {
        Self {
            thinking,
            usage: Usage::default(),
            input_raw: 0,
            cache_read: 0,
            cache_write: 0,
            stop: None,
            blocks: HashMap::new(),
            tools: 0,
            thinking_blocks: Vec::new(),
            tool_ids: Vec::new(),
            bad_call: None,
        }
    }

    /// Input counts everything sent (uncached + cache reads + cache writes); cached is
    /// the cache reads. Later usage objects replace earlier values.
    fn read_usage(&mut self, u: &Value) {
        let n = |k: &str| u.get(k).and_then(Value::as_u64);
        if let Some(i) = n("input_tokens") {
            self.input_raw = i;
        }
        if let Some(c) = n("cache_read_input_tokens") {
            self.cache_read = c;
        }
        if let Some(c) = n("cache_creation_input_tokens") {
            self.cache_write = c;
        }
        if let Some(o) = n("output_tokens") {
            self.usage.output = o;
        }
        self.usage.input = self.input_raw + self.cache_read + self.cache_write;
        self.usage.cached = self.cache_read;
    }

    fn check_bad_call(&mut self) -> Result<(), ProviderError> {
        match self.bad_call.take() {
            Some(e) if self.stop != Some(StopReason::MaxTokens) => Err(e),
            _ => Ok(()),
        }
    }
}

fn index(v: &Value) -> Result<u64, ProviderError> {
    v.get("index").and_then(Value::as_u64).ok_or_else(|| {
        ProviderError::Malformed(format!(
            "content block event without an index: {}",
            errors::truncate(&v.to_string(), 200)
        ))
    })
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn stop_reason(r: &str) -> StopReason {
    match r {
        "tool_use" => StopReason::ToolUse,
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "refusal" => StopReason::Refusal,
        _ => StopReason::End,
    }
}

/// An `error` event: its `error.type` stands for the HTTP status it would have had.
fn stream_error(v: &Value, thinking: Thinking) -> ProviderError {
    let status = match v.pointer("/error/type").and_then(Value::as_str) {
        Some("invalid_request_error") => 400,
        Some("authentication_error") => 401,
        Some("billing_error") => 402,
        Some("permission_error") => 403,
        Some("not_found_error") => 404,
        Some("request_too_large") => 413,
        Some("rate_limit_error") => 429,
        Some("timeout_error") => 504,
        Some("overloaded_error") => 529,
        _ => 500,
    };
    errors::classify(status, None, &v.to_string(), thinking)
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
            serde_json::from_str(data).map_err(|e| malformed_json("messages", &e, data))?;
        let kind = v.get("type").and_then(Value::as_str).unwrap_or(&ev.event);
        match kind {
            "message_start" => {
                if let Some(u) = v.pointer("/message/usage") {
                    self.read_usage(u);
                }
            }
            "content_block_start" => {
                let i = index(&v)?;
                let cb = &v["content_block"];
                let block = match cb.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let t = str_of(cb, "text");
                        if !t.is_empty() {
                            out.push_back(StreamEvent::Text(t.to_string()));
                        }
                        Block::Text
                    }
                    Some("thinking") => {
                        let t = str_of(cb, "thinking");
                        if !t.is_empty() {
                            out.push_back(StreamEvent::Thinking(t.to_string()));
                        }
                        Block::Thinking {
                            text: t.to_string(),
                            signature: str_of(cb, "signature").to_string(),
                        }
                    }
                    Some("redacted_thinking") => Block::Redacted {
                        data: cb.get("data").cloned().unwrap_or(Value::Null),
                    },
                    Some("tool_use") => {
                        let (id, name) = (str_of(cb, "id"), str_of(cb, "name"));
                        if id.is_empty() || name.is_empty() {
                            return Err(ProviderError::Malformed(
                                "a tool_use block without an id or a name".into(),
                            ));
                        }
                        let ordinal = self.tools;
                        self.tools += 1;
                        out.push_back(StreamEvent::ToolCallStarted {
                            index: ordinal,
                            id: id.to_string(),
                            name: name.to_string(),
                        });
                        Block::Tool {
                            ordinal,
                            id: id.to_string(),
                            name: name.to_string(),
                            json: String::new(),
                            initial: cb.get("input").cloned().unwrap_or(Value::Null),
                        }
                    }
                    _ => Block::Other,
                };
                self.blocks.insert(i, block);
            }
            "content_block_delta" => {
                let i = index(&v)?;
                let d = &v["delta"];
                let block = self.blocks.get_mut(&i);
                match (d.get("type").and_then(Value::as_str), block) {
                    (Some("text_delta"), _) => {
                        let t = str_of(d, "text");
                        if !t.is_empty() {
                            out.push_back(StreamEvent::Text(t.to_string()));
                        }
                    }
                    (Some("thinking_delta"), b) => {
                        let t = str_of(d, "thinking");
                        if let Some(Block::Thinking { text, .. }) = b {
                            text.push_str(t);
                        }
                        if !t.is_empty() {
                            out.push_back(StreamEvent::Thinking(t.to_string()));
                        }
                    }
                    (Some("signature_delta"), Some(Block::Thinking { signature, .. })) => {
                        signature.push_str(str_of(d, "signature"));
                    }
                    (Some("input_json_delta"), Some(Block::Tool { ordinal, json, .. })) => {
                        let f = str_of(d, "partial_json");
                        if !f.is_empty() {
                            json.push_str(f);
                            out.push_back(StreamEvent::ToolCallDelta {
                                index: *ordinal,
                                fragment: f.to_string(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => match self.blocks.remove(&index(&v)?) {
                Some(Block::Thinking { text, signature }) => {
                    self.thinking_blocks.push(
                        json!({"type": "thinking", "thinking": text, "signature": signature}),
                    );
                }
                Some(Block::Redacted { data }) => {
                    self.thinking_blocks
                        .push(json!({"type": "redacted_thinking", "data": data}));
                }
                Some(Block::Tool {
                    id,
                    name,
                    json,
                    initial,
                    ..
                }) => match parse_args(&json) {
                    Ok(arguments) => {
                        let arguments = if arguments.is_null() {
                            initial
                        } else {
                            arguments
                        };
                        self.tool_ids.push(id.clone());
                        out.push_back(StreamEvent::ToolCall(ToolCall {
                            id,
                            name,
                            arguments,
                        }));
                    }
                    Err(e) => {
                        self.bad_call
                            .get_or_insert(ProviderError::Malformed(format!(
                                "tool call {name} ({id}) input is not valid JSON ({e}): {}",
                                errors::truncate(&json, 200)
                            )));
                    }
                },
                Some(Block::Text | Block::Other) | None => {}
            },
            "message_delta" => {
                if let Some(r) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop = Some(stop_reason(r));
                }
                if let Some(u) = v.get("usage") {
                    self.read_usage(u);
                }
                self.check_bad_call()?;
            }
            "message_stop" => {
                self.check_bad_call()?;
                if !self.thinking_blocks.is_empty() {
                    let blocks = Value::Array(std::mem::take(&mut self.thinking_blocks));
                    for id in &self.tool_ids {
                        replay::remember(Kind::AnthropicThinking, id, blocks.clone());
                    }
                }
                let stop = self.stop.unwrap_or(if self.tool_ids.is_empty() {
                    StopReason::End
                } else {
                    StopReason::ToolUse
                });
                out.push_back(StreamEvent::Done {
                    stop,
                    usage: self.usage,
                });
                return Ok(true);
            }
            "error" => return Err(stream_error(&v, self.thinking)),
            _ => {} // ping, and event types added later
        }
        Ok(false)
    }

    fn eof(&mut self, _: &mut VecDeque<StreamEvent>) -> Result<(), ProviderError> {
        Err(ProviderError::Truncated(
            "the message stream ended before message_stop".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{run, run_all_splits, sample_request};
    use super::*;

    fn ev(v: Value) -> String {
        format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap())
    }

    fn start(input: u64, cache_read: u64) -> String {
        ev(
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-x", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": input, "cache_creation_input_tokens": 0, "cache_read_input_tokens": cache_read, "output_tokens": 1}}}),
        )
    }

    fn end(reason: &str, output: u64) -> String {
        [
            ev(json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": null}, "usage": {"output_tokens": output}})),
            ev(json!({"type": "message_stop"})),
        ]
        .concat()
    }

    fn block_start(i: u64, cb: Value) -> String {
        ev(json!({"type": "content_block_start", "index": i, "content_block": cb}))
    }

    fn block_delta(i: u64, d: Value) -> String {
        ev(json!({"type": "content_block_delta", "index": i, "delta": d}))
    }

    fn block_stop(i: u64) -> String {
        ev(json!({"type": "content_block_stop", "index": i}))
    }

    #[test]
    fn body_merges_tool_results_and_maps_every_message() {
        let mut req = sample_request(Thinking::Off);
        req.messages.push(Message::User {
            content: "And tomorrow?".into(),
        });
        req.messages.push(Message::Assistant {
            content: String::new(),
            tool_calls: vec![],
        });
        let b = build_body(&req);
        assert_eq!(
            b,
            json!({
                "model": "m-1",
                "stream": true,
                "max_tokens": 4096,
                "system": "You are terse.",
                "messages": [
                    {"role": "user", "content": "Weather in Paris and Rome?"},
                    {"role": "assistant", "content": [
                        {"type": "text", "text": "Checking."},
                        {"type": "tool_use", "id": "call_a", "name": "weather", "input": {"city": "Paris"}},
                        {"type": "tool_use", "id": "call_b", "name": "weather", "input": {}},
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "call_a", "content": "18C"},
                        {"type": "tool_result", "tool_use_id": "call_b", "content": "city missing", "is_error": true},
                        {"type": "text", "text": "And tomorrow?"},
                    ]},
                ],
                "tools": [{
                    "name": "weather",
                    "description": "Current weather",
                    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false},
                }],
            })
        );
    }

    #[test]
    fn body_thinking_budget_and_max_tokens() {
        let mut req = sample_request(Thinking::Low);
        req.messages.truncate(1);
        let b = build_body(&req);
        assert_eq!(
            b["thinking"],
            json!({"type": "enabled", "budget_tokens": 1024})
        );
        assert_eq!(b["max_tokens"], 4096);
        req.thinking = Thinking::High;
        let b = build_body(&req);
        assert_eq!(b["thinking"]["budget_tokens"], 16384);
        assert_eq!(b["max_tokens"], 16384 + 4096);
        req.thinking = Thinking::Medium;
        req.max_tokens = Some(8000);
        let b = build_body(&req);
        assert_eq!(
            (
                b["thinking"]["budget_tokens"].as_u64(),
                b["max_tokens"].as_u64()
            ),
            (Some(4096), Some(8000))
        );
        req.thinking = Thinking::Off;
        let b = build_body(&req);
        assert!(b.get("thinking").is_none());
        assert_eq!(b["max_tokens"], 8000);
    }

    #[test]
    fn thinking_mid_tool_turn_needs_the_replayed_blocks() {
        let req = sample_request(Thinking::Medium);
        // Unknown blocks: thinking is left off rather than sending an invalid request.
        let b = build_body(&req);
        assert!(b.get("thinking").is_none(), "{b}");
        assert_eq!(b["max_tokens"], 4096);
        // Known blocks: replayed first in the assistant message, thinking stays on.
        let blocks = json!([{"type": "thinking", "thinking": "hmm", "signature": "sig=="}, {"type": "redacted_thinking", "data": "abc"}]);
        let b = build_body_with(&req, &|id| (id == "call_a").then(|| blocks.clone()));
        assert_eq!(b["thinking"]["budget_tokens"], 4096);
        let content = b["messages"][1]["content"].as_array().unwrap();
        assert_eq!(content[0], blocks[0]);
        assert_eq!(content[1], blocks[1]);
        assert_eq!(content[2]["type"], "text");
        assert_eq!(content[3]["type"], "tool_use");
        // A finished turn (a user message came after) does not need them.
        let mut req = sample_request(Thinking::Medium);
        req.messages.push(Message::User {
            content: "thanks".into(),
        });
        assert!(build_body(&req).get("thinking").is_some());
    }

    #[tokio::test]
    async fn text_stream_with_cached_usage_at_every_split() {
        let body = [
            start(25, 100),
            block_start(0, json!({"type": "text", "text": ""})),
            ev(json!({"type": "ping"})),
            block_delta(0, json!({"type": "text_delta", "text": "Hello"})),
            block_delta(0, json!({"type": "text_delta", "text": " wörld"})),
            block_stop(0),
            end("end_turn", 15),
        ]
        .concat();
        let got = run_all_splits(|| Decoder::new(Thinking::Off), &body).await;
        assert_eq!(
            got,
            vec![
                Ok(StreamEvent::Text("Hello".into())),
                Ok(StreamEvent::Text(" wörld".into())),
                Ok(StreamEvent::Done {
                    stop: StopReason::End,
                    usage: Usage {
                        input: 125,
                        output: 15,
                        cached: 100
                    }
                }),
            ]
        );
    }

    #[tokio::test]
    async fn thinking_then_tool_use_and_the_blocks_are_remembered() {
        let id = format!("toolu_{}", uuid::Uuid::new_v4().simple());
        let body = [
            start(10, 0),
            block_start(0, json!({"type": "thinking", "thinking": ""})),
            block_delta(
                0,
                json!({"type": "thinking_delta", "thinking": "Need the "}),
            ),
            block_delta(0, json!({"type": "thinking_delta", "thinking": "weather."})),
            block_delta(
                0,
                json!({"type": "signature_delta", "signature": "EqQBCgIYAh=="}),
            ),
            block_stop(0),
            block_start(1, json!({"type": "text", "text": ""})),
            block_delta(1, json!({"type": "text_delta", "text": "Checking."})),
            block_stop(1),
            block_start(
                2,
                json!({"type": "tool_use", "id": id, "name": "weather", "input": {}}),
            ),
            block_delta(2, json!({"type": "input_json_delta", "partial_json": ""})),
            block_delta(
                2,
                json!({"type": "input_json_delta", "partial_json": "{\"city\": \"Pa"}),
            ),
            block_delta(
                2,
                json!({"type": "input_json_delta", "partial_json": "ris\"}"}),
            ),
            block_stop(2),
            block_start(
                3,
                json!({"type": "tool_use", "id": format!("{id}_2"), "name": "clock", "input": {}}),
            ),
            block_stop(3),
            end("tool_use", 80),
        ]
        .concat();
        let got: Vec<StreamEvent> = run(Decoder::new(Thinking::Medium), &body, 7)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            got,
            vec![
                StreamEvent::Thinking("Need the ".into()),
                StreamEvent::Thinking("weather.".into()),
                StreamEvent::Text("Checking.".into()),
                StreamEvent::ToolCallStarted {
                    index: 0,
                    id: id.clone(),
                    name: "weather".into()
                },
                StreamEvent::ToolCallDelta {
                    index: 0,
                    fragment: "{\"city\": \"Pa".into()
                },
                StreamEvent::ToolCallDelta {
                    index: 0,
                    fragment: "ris\"}".into()
                },
                StreamEvent::ToolCall(ToolCall {
                    id: id.clone(),
                    name: "weather".into(),
                    arguments: json!({"city": "Paris"})
                }),
                StreamEvent::ToolCallStarted {
                    index: 1,
                    id: format!("{id}_2"),
                    name: "clock".into()
                },
                StreamEvent::ToolCall(ToolCall {
                    id: format!("{id}_2"),
                    name: "clock".into(),
                    arguments: json!({})
                }),
                StreamEvent::Done {
                    stop: StopReason::ToolUse,
                    usage: Usage {
                        input: 10,
                        output: 80,
                        cached: 0
                    }
                },
            ]
        );
        let remembered = replay::recall(Kind::AnthropicThinking, &id).unwrap();
        assert_eq!(
            remembered,
            json!([{"type": "thinking", "thinking": "Need the weather.", "signature": "EqQBCgIYAh=="}])
        );
    }

    #[tokio::test]
    async fn error_event_mid_stream_is_classified() {
        let body = [
            start(1, 0),
            block_start(0, json!({"type": "text", "text": ""})),
            block_delta(0, json!({"type": "text_delta", "text": "Hi"})),
            ev(json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})),
        ]
        .concat();
        let got = run(Decoder::new(Thinking::Off), &body, 1000).await;
        assert_eq!(
            got,
            vec![
                Ok(StreamEvent::Text("Hi".into())),
                Err(ProviderError::Server {
                    status: 529,
                    message: "overloaded_error: Overloaded".into()
                })
            ]
        );
        let body =
            ev(json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}));
        let got = run(Decoder::new(Thinking::Off), &body, 1000).await;
        assert!(matches!(got[0], Err(ProviderError::RateLimited { .. })));
    }

    #[tokio::test]
    async fn truncated_malformed_and_cut_tool_input() {
        let body = [
            start(1, 0),
            block_start(0, json!({"type": "text", "text": "Hi"})),
        ]
        .concat();
        let got = run(Decoder::new(Thinking::Off), &body, 1000).await;
        assert_eq!(got[0], Ok(StreamEvent::Text("Hi".into())));
        assert!(matches!(got[1], Err(ProviderError::Truncated(_))));

        let body = [
            start(1, 0),
            "event: content_block_start\ndata: {nope\n\n".into(),
        ]
        .concat();
        let got = run(Decoder::new(Thinking::Off), &body, 1000).await;
        assert!(matches!(&got[0], Err(ProviderError::Malformed(m)) if m.contains("{nope")));

        let cut = [
            start(1, 0),
            block_start(
                0,
                json!({"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}),
            ),
            block_delta(
                0,
                json!({"type": "input_json_delta", "partial_json": "{\"city\": \"Pa"}),
            ),
            block_stop(0),
        ]
        .concat();
        // Hitting max_tokens inside the call: no ToolCall, stop MaxTokens.
        let got = run(
            Decoder::new(Thinking::Off),
            &[cut.clone(), end("max_tokens", 5)].concat(),
            1000,
        )
        .await;
        assert!(
            !got.iter()
                .any(|e| matches!(e, Ok(StreamEvent::ToolCall(_))))
        );
        assert!(matches!(
            got.last(),
            Some(Ok(StreamEvent::Done {
                stop: StopReason::MaxTokens,
                ..
            }))
        ));
        // Otherwise invalid input JSON is malformed.
        let got = run(
            Decoder::new(Thinking::Off),
            &[cut, end("tool_use", 5)].concat(),
            1000,
        )
        .await;
        assert!(
            matches!(got.last(), Some(Err(ProviderError::Malformed(m))) if m.contains("toolu_1"))
        );
    }

    #[tokio::test]
    async fn stop_reasons() {
        for (r, s) in [
            ("end_turn", StopReason::End),
            ("stop_sequence", StopReason::End),
            ("max_tokens", StopReason::MaxTokens),
            ("refusal", StopReason::Refusal),
            ("pause_turn", StopReason::End),
        ] {
            let got = run(
                Decoder::new(Thinking::Off),
                &[start(1, 0), end(r, 2)].concat(),
                1000,
            )
            .await;
            assert!(
                matches!(got.last(), Some(Ok(StreamEvent::Done { stop, .. })) if *stop == s),
                "{r}"
            );
        }
    }

    #[test]
    fn url_and_headers() {
        let ep = Endpoint {
            api: crate::agent::model::Api::AnthropicMessages,
            base_url: "https://api.anthropic.com".into(),
            api_key: Some("sk-ant-1".into()),
            headers: vec![],
            connect_timeout: std::time::Duration::from_secs(1),
            idle_timeout: std::time::Duration::from_secs(1),
        };
        assert_eq!(url(&ep), "https://api.anthropic.com/v1/messages");
        let h = headers(&ep).unwrap();
        assert_eq!(h["x-api-key"], "sk-ant-1");
        assert!(h["x-api-key"].is_sensitive());
        assert_eq!(h["anthropic-version"], "2023-06-01");
        assert!(h.get("authorization").is_none());
        let ep = Endpoint {
            base_url: "http://proxy/anthropic/v1/".into(),
            ..ep
        };
        assert_eq!(url(&ep), "http://proxy/anthropic/v1/messages");
    }
}
