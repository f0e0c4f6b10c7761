//! OpenAI chat completions (`POST {base}/chat/completions`, `stream: true`), the wire
//! format also spoken by Ollama, vLLM, LM Studio and OpenRouter.
//!
//! Stream: `data:` lines holding `chat.completion.chunk` objects, then `data: [DONE]`.
//! Text is in `choices[0].delta.content`, reasoning in `delta.reasoning_content`
//! (DeepSeek, vLLM) or `delta.reasoning` (OpenRouter, Ollama), tool calls in
//! `delta.tool_calls[]` as fragments keyed by `index`; `finish_reason` ends the choice;
//! with `stream_options.include_usage` a last chunk with empty `choices` carries `usage`.

use std::collections::VecDeque;

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::{errors, malformed_json, new_call_id, parse_args, sse, tool_result_text};
use crate::agent::model::{
    ChatRequest, Endpoint, Message, ProviderError, StopReason, StreamEvent, Thinking, ToolCall,
    ToolSpec, Usage,
};

pub fn url(ep: &Endpoint) -> String {
    format!("{}/chat/completions", ep.base_url)
}

/// `Authorization: Bearer` when there is a key (Ollama and other local servers have none).
pub fn headers(ep: &Endpoint) -> Result<HeaderMap, ProviderError> {
    let auth = ep.api_key.as_ref().map(|k| format!("Bearer {k}"));
    let mut own = vec![("accept", "text/event-stream", false)];
    if let Some(a) = &auth {
        own.push(("authorization", a.as_str(), true));
    }
    super::header_map(&own, &ep.headers)
}

/// The request's `tools` value (made once per tool set: see [`Tools::json`](crate::agent::model::Tools::json)).
pub fn tools_value(tools: &[ToolSpec]) -> Value {
    tools
        .iter()
        .map(|t| {
            json!({
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": super::object_schema(&t.parameters),
                },
            })
        })
        .collect()
}

/// The request body. `tools` is left out when there are none (OpenAI rejects `[]`);
/// an assistant message that only calls tools has `content: null`; a failed tool
/// result is prefixed `Error: ` (the format has no error flag); thinking becomes
/// `reasoning_effort`. [`super::stream_chat`] builds it without `tools` and adds their
/// JSON made once per tool set, which comes to the same body.
pub fn build_body(req: &ChatRequest) -> Value {
    body(req, true)
}

/// [`build_body`], with or without the `tools` value.
pub(super) fn body(req: &ChatRequest, with_tools: bool) -> Value {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system}));
    }
    for m in &req.messages {
        match m {
            Message::User { content } => {
                messages.push(json!({"role": "user", "content": content}));
            }
            Message::Assistant {
                content,
                tool_calls,
            } => {
                let mut msg = json!({"role": "assistant"});
                msg["content"] = if content.is_empty() && !tool_calls.is_empty() {
                    Value::Null
                } else {
                    Value::from(content.as_str())
                };
                if !tool_calls.is_empty() {
                    msg["tool_calls"] = tool_calls
                        .iter()
                        .map(|c| {
                            json!({
                                "id": c.id,
                                "type": "function",
                                "function": {"name": c.name, "arguments": arguments_string(&c.arguments)},
                            })
                        })
                        .collect();
                }
                messages.push(msg);
            }
            Message::Tool {
                call_id,
                content,
                is_error,
                ..
            } => messages.push(json!({
                "role": "tool",
                "tool_call_id": call_id,
                "content": tool_result_text(content, *is_error),
            })),
        }
    }
    let mut body = json!({
        "model": req.model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if with_tools && !req.tools.is_empty() {
        body["tools"] = tools_value(&req.tools);
    }
    if let Some(n) = req.max_tokens {
        // OpenAI's reasoning models refuse `max_tokens`; everything else (and most
        // OpenAI-compatible servers) knows only `max_tokens`.
        let key = if uses_max_completion_tokens(&req.model) {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body[key] = n.into();
    }
    if req.thinking != Thinking::Off {
        body["reasoning_effort"] = req.thinking.as_str().into();
    }
    body
}

/// OpenAI's o-series and gpt-5 models (also behind a router prefix such as `openai/o3`).
fn uses_max_completion_tokens(model: &str) -> bool {
    let id = model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase();
    let o_series =
        id.len() > 1 && id.starts_with('o') && id[1..].starts_with(|c: char| c.is_ascii_digit());
    o_series || id.starts_with("gpt-5")
}

fn arguments_string(v: &Value) -> String {
    if v.is_null() {
        "{}".into()
    } else {
        v.to_string()
    }
}

#[derive(Debug, Default)]
struct Call {
    /// The wire `index`; some servers (older Ollama) send none.
    wire_index: Option<u64>,
    id: String,
    name: String,
    args: String,
    started: bool,
}

/// Decodes a chat completions stream.
#[derive(Debug)]
pub struct Decoder {
    thinking: Thinking,
    calls: Vec<Call>,
    finish: Option<StopReason>,
    refusal: bool,
    usage: Usage,
    finalized: bool,
}

impl Decoder {
    pub fn new(thinking: Thinking) -> Self {
        Self {
            thinking,
            calls: Vec::new(),
            finish: None,
            refusal: false,
            usage: Usage::default(),
            finalized: false,
        }
    }

    /// The call a delta belongs to: by wire index; without one, by id; without either,
    /// the last call, unless the delta names a function and that call already has one.
    fn slot(&mut self, wire: Option<u64>, id: Option<&str>, named: bool) -> usize {
        let found = match (wire, id) {
            (Some(w), _) => self.calls.iter().position(|c| c.wire_index == Some(w)),
            (None, Some(id)) => self.calls.iter().position(|c| c.id == id),
            (None, None) => self
                .calls
                .last()
                .filter(|c| !named || c.name.is_empty())
                .map(|_| self.calls.len() - 1),
        };
        found.unwrap_or_else(|| {
            self.calls.push(Call {
                wire_index: wire,
                ..Call::default()
            });
            self.calls.len() - 1
        })
    }

    fn tool_delta(&mut self, tc: &Value, out: &mut VecDeque<StreamEvent>) {
        let wire = tc.get("index").and_then(Value::as_u64);
        let id = tc
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let f = tc.get("function");
        let name = f
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let fragment = match f.and_then(|f| f.get("arguments")) {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => String::new(),
            Some(other) => other.to_string(),
        };
        let i = self.slot(wire, id, name.is_some());
        let c = &mut self.calls[i];
        if let (true, Some(id)) = (c.id.is_empty(), id) {
            c.id = id.to_string();
        }
        if let (true, Some(n)) = (c.name.is_empty(), name) {
            c.name = n.to_string();
        }
        c.args.push_str(&fragment);
        if !c.started {
            if !c.name.is_empty() {
                Self::start(i, c, out);
            }
        } else if !fragment.is_empty() {
            out.push_back(StreamEvent::ToolCallDelta { index: i, fragment });
        }
    }

    fn start(i: usize, c: &mut Call, out: &mut VecDeque<StreamEvent>) {
        c.started = true;
        if c.id.is_empty() {
            c.id = new_call_id();
        }
        out.push_back(StreamEvent::ToolCallStarted {
            index: i,
            id: c.id.clone(),
            name: c.name.clone(),
        });
        if !c.args.is_empty() {
            out.push_back(StreamEvent::ToolCallDelta {
                index: i,
                fragment: c.args.clone(),
            });
        }
    }

    /// Emits the complete tool calls, once. After `length`, calls cut short are dropped
    /// (the stop reason says why); otherwise unparseable arguments are malformed data.
    fn finalize(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), ProviderError> {
        if self.finalized {
            return Ok(());
        }
        self.finalized = true;
        let cut = self.finish == Some(StopReason::MaxTokens);
        for (i, c) in self.calls.iter_mut().enumerate() {
            if !c.started {
                if c.name.is_empty() {
                    if cut {
                        continue;
                    }
                    return Err(ProviderError::Malformed(
                        "a streamed tool call never got a function name".into(),
                    ));
                }
                Self::start(i, c, out);
            }
            match parse_args(&c.args) {
                Ok(arguments) => out.push_back(StreamEvent::ToolCall(ToolCall {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    arguments,
                })),
                Err(_) if cut => {}
                Err(e) => {
                    return Err(ProviderError::Malformed(format!(
                        "tool call {} ({}) arguments are not valid JSON ({e}): {}",
                        c.name,
                        c.id,
                        errors::truncate(&c.args, 200)
                    )));
                }
            }
        }
        Ok(())
    }

    fn done(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), ProviderError> {
        self.finalize(out)?;
        let mut stop = self.finish.unwrap_or(StopReason::End);
        if stop == StopReason::End && !self.calls.is_empty() {
            stop = StopReason::ToolUse;
        }
        if stop == StopReason::End && self.refusal {
            stop = StopReason::Refusal;
        }
        out.push_back(StreamEvent::Done {
            stop,
            usage: self.usage,
        });
        Ok(())
    }
}

fn finish_reason(r: &str) -> StopReason {
    match r {
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "length" => StopReason::MaxTokens,
        "content_filter" => StopReason::Refusal,
        _ => StopReason::End,
    }
}

fn usage(u: &Value) -> Usage {
    let n = |p: &str| u.pointer(p).and_then(Value::as_u64);
    Usage {
        input: n("/prompt_tokens").unwrap_or(0),
        output: n("/completion_tokens").unwrap_or(0),
        cached: n("/prompt_tokens_details/cached_tokens")
            .or_else(|| n("/prompt_cache_hit_tokens"))
            .unwrap_or(0),
    }
}

/// An `{"error": ...}` chunk mid-stream (OpenRouter, vLLM, LiteLLM send these).
fn stream_error(chunk: &Value, thinking: Thinking) -> ProviderError {
    let err = &chunk["error"];
    let numeric = err
        .get("code")
        .or_else(|| err.get("status"))
        .and_then(|c| c.as_u64().or_else(|| c.as_str()?.parse().ok()))
        .filter(|c| (400..600).contains(c));
    let status = numeric.unwrap_or_else(|| {
        let kind = err
            .get("code")
            .or_else(|| err.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("");
        match kind {
            "rate_limit_exceeded" | "rate_limit_error" | "insufficient_quota" => 429,
            "invalid_request_error" | "context_length_exceeded" => 400,
            "invalid_api_key" | "authentication_error" => 401,
            _ => 500,
        }
    });
    errors::classify(status as u16, None, &chunk.to_string(), thinking)
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
        if data == "[DONE]" {
            self.done(out)?;
            return Ok(true);
        }
        let v: Value =
            serde_json::from_str(data).map_err(|e| malformed_json("chat completions", &e, data))?;
        if v.get("error").is_some_and(|e| !e.is_null()) {
            return Err(stream_error(&v, self.thinking));
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = usage(u);
        }
        let Some(choice) = v
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        else {
            return Ok(false);
        };
        if let Some(delta) = choice.get("delta") {
            let text = |k: &str| {
                delta
                    .get(k)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            };
            if let Some(t) = text("reasoning_content").or_else(|| text("reasoning")) {
                out.push_back(StreamEvent::Thinking(t.to_string()));
            }
            if let Some(t) = text("content") {
                out.push_back(StreamEvent::Text(t.to_string()));
            }
            if let Some(t) = text("refusal") {
                self.refusal = true;
                out.push_back(StreamEvent::Text(t.to_string()));
            }
            let calls = delta.get("tool_calls").and_then(Value::as_array);
            if let (Some(calls), false) = (calls, self.finalized) {
                for tc in calls {
                    self.tool_delta(tc, out);
                }
            }
        }
        if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(finish_reason(r));
            self.finalize(out)?;
        }
        Ok(false)
    }

    /// Without `[DONE]` the call still counts as complete when a `finish_reason` came.
    fn eof(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), ProviderError> {
        if self.finish.is_none() {
            return Err(ProviderError::Truncated(
                "the chat completion stream ended without a finish_reason or [DONE]".into(),
            ));
        }
        self.done(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{run, run_all_splits, sample_request};
    use super::*;
    use crate::agent::model::ToolSpec;

    fn chunk(v: Value) -> String {
        format!("data: {v}\n\n")
    }

    fn delta(d: Value) -> String {
        chunk(
            json!({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": d, "finish_reason": null}]}),
        )
    }

    fn finish(r: &str) -> String {
        chunk(
            json!({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": r}]}),
        )
    }

    fn usage_chunk(p: u64, c: u64, cached: u64) -> String {
        chunk(
            json!({"id": "c1", "choices": [], "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c, "prompt_tokens_details": {"cached_tokens": cached}}}),
        )
    }

    #[test]
    fn body_has_every_message_kind() {
        let mut req = sample_request(Thinking::Off);
        req.messages.push(Message::Assistant {
            content: String::new(),
            tool_calls: vec![ToolCall {
                id: "call_c".into(),
                name: "weather".into(),
                arguments: json!({"city": "Oslo"}),
            }],
        });
        let b = build_body(&req);
        assert_eq!(
            b,
            json!({
                "model": "m-1",
                "stream": true,
                "stream_options": {"include_usage": true},
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "Weather in Paris and Rome?"},
                    {"role": "assistant", "content": "Checking.", "tool_calls": [
                        {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "call_b", "type": "function", "function": {"name": "weather", "arguments": "{}"}},
                    ]},
                    {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
                    {"role": "tool", "tool_call_id": "call_b", "content": "Error: city missing"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_c", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}},
                    ]},
                ],
                "tools": [{"type": "function", "function": {
                    "name": "weather",
                    "description": "Current weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false},
                }}],
            })
        );
    }

    #[test]
    fn body_thinking_max_tokens_and_no_tools() {
        let mut req = sample_request(Thinking::Medium);
        req.tools = Default::default();
        req.system.clear();
        req.max_tokens = Some(512);
        let b = build_body(&req);
        assert_eq!(b["reasoning_effort"], "medium");
        assert_eq!(b["max_tokens"], 512);
        assert!(b.get("tools").is_none());
        assert_eq!(b["messages"][0]["role"], "user");
        req.thinking = Thinking::High;
        assert_eq!(build_body(&req)["reasoning_effort"], "high");
        for (model, key) in [
            ("o3-mini", "max_completion_tokens"),
            ("openai/o4-mini", "max_completion_tokens"),
            ("gpt-5.1", "max_completion_tokens"),
            ("gpt-4.1-mini", "max_tokens"),
            ("llama3.2", "max_tokens"),
            ("olmo-2", "max_tokens"),
        ] {
            req.model = model.into();
            let b = build_body(&req);
            assert_eq!(b[key], 512, "{model}");
            assert_eq!(
                b.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| k.starts_with("max_"))
                    .count(),
                1
            );
        }
        req.thinking = Thinking::Off;
        req.max_tokens = None;
        let b = build_body(&req);
        assert!(b.get("reasoning_effort").is_none() && b.get("max_tokens").is_none());
        // A tool without a schema gets an empty object schema.
        req.tools = vec![ToolSpec {
            name: "now".into(),
            description: "time".into(),
            parameters: Value::Null,
        }]
        .into();
        assert_eq!(
            build_body(&req)["tools"][0]["function"]["parameters"],
            json!({"type": "object", "properties": {}})
        );
    }

    #[tokio::test]
    async fn text_stream_with_usage_at_every_split() {
        let body = [
            delta(json!({"role": "assistant", "content": ""})),
            delta(json!({"content": "Hel"})),
            delta(json!({"content": "lo ✓"})),
            finish("stop"),
            usage_chunk(12, 3, 8),
            "data: [DONE]\n\n".into(),
        ]
        .concat();
        let got = run_all_splits(|| Decoder::new(Thinking::Off), &body).await;
        assert_eq!(
            got,
            vec![
                Ok(StreamEvent::Text("Hel".into())),
                Ok(StreamEvent::Text("lo ✓".into())),
                Ok(StreamEvent::Done {
                    stop: StopReason::End,
                    usage: Usage {
                        input: 12,
                        output: 3,
                        cached: 8
                    }
                }),
            ]
        );
    }

    #[tokio::test]
    async fn parallel_tool_calls_reassembled_from_fragments() {
        let body = [
            delta(json!({"role": "assistant", "content": null, "tool_calls": [
                {"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather", "arguments": ""}}]})),
            delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"ci"}}]})),
            delta(json!({"tool_calls": [{"index": 1, "id": "call_2", "type": "function", "function": {"name": "time", "arguments": "{}"}}]})),
            delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": "ty\": \"Paris\"}"}}]})),
            finish("tool_calls"),
            usage_chunk(5, 6, 0),
            "data: [DONE]\n\n".into(),
        ]
        .concat();
        let got = run_all_splits(|| Decoder::new(Thinking::Off), &body).await;
        let got: Vec<StreamEvent> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            got,
            vec![
                StreamEvent::ToolCallStarted {
                    index: 0,
                    id: "call_1".into(),
                    name: "weather".into()
                },
                StreamEvent::ToolCallDelta {
                    index: 0,
                    fragment: "{\"ci".into()
                },
                StreamEvent::ToolCallStarted {
                    index: 1,
                    id: "call_2".into(),
                    name: "time".into()
                },
                StreamEvent::ToolCallDelta {
                    index: 1,
                    fragment: "{}".into()
                },
                StreamEvent::ToolCallDelta {
                    index: 0,
                    fragment: "ty\": \"Paris\"}".into()
                },
                StreamEvent::ToolCall(ToolCall {
                    id: "call_1".into(),
                    name: "weather".into(),
                    arguments: json!({"city": "Paris"})
                }),
                StreamEvent::ToolCall(ToolCall {
                    id: "call_2".into(),
                    name: "time".into(),
                    arguments: json!({})
                }),
                StreamEvent::Done {
                    stop: StopReason::ToolUse,
                    usage: Usage {
                        input: 5,
                        output: 6,
                        cached: 0
                    }
                },
            ]
        );
    }

    #[tokio::test]
    async fn whole_calls_without_index_or_id_and_stop_reason_stop() {
        // Older Ollama: each call whole, no index, sometimes no id, finish_reason "stop".
        let body = [
            delta(json!({"tool_calls": [{"id": "call_x", "function": {"name": "a", "arguments": "{\"n\":1}"}}]})),
            delta(json!({"tool_calls": [{"function": {"name": "b", "arguments": {"n": 2}}}]})),
            finish("stop"),
        ]
        .concat();
        let got: Vec<StreamEvent> = run(Decoder::new(Thinking::Off), &body, 9)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let calls: Vec<&ToolCall> = got
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCall(c) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            (calls[0].id.as_str(), &calls[0].arguments),
            ("call_x", &json!({"n": 1}))
        );
        assert!(calls[1].id.starts_with("call_") && calls[1].id != "call_x");
        assert_eq!(calls[1].arguments, json!({"n": 2}));
        // No [DONE], but a finish_reason: complete, and tool calls mean ToolUse.
        assert_eq!(
            got.last(),
            Some(&StreamEvent::Done {
                stop: StopReason::ToolUse,
                usage: Usage::default()
            })
        );
    }

    #[tokio::test]
    async fn reasoning_fields_become_thinking() {
        let body = [
            delta(json!({"reasoning_content": "Let me "})),
            delta(json!({"reasoning": "think."})),
            delta(json!({"content": "42"})),
            finish("stop"),
            "data: [DONE]\n\n".into(),
        ]
        .concat();
        let got: Vec<StreamEvent> = run_all_splits(|| Decoder::new(Thinking::High), &body)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            got[..3],
            [
                StreamEvent::Thinking("Let me ".into()),
                StreamEvent::Thinking("think.".into()),
                StreamEvent::Text("42".into()),
            ]
        );
    }

    #[tokio::test]
    async fn stop_reasons() {
        for (reason, stop) in [
            ("length", StopReason::MaxTokens),
            ("content_filter", StopReason::Refusal),
            ("stop", StopReason::End),
            ("something_new", StopReason::End),
        ] {
            let body = [
                delta(json!({"content": "x"})),
                finish(reason),
                "data: [DONE]\n\n".into(),
            ]
            .concat();
            let got = run(Decoder::new(Thinking::Off), &body, 1000).await;
            assert_eq!(
                got.last(),
                Some(&Ok(StreamEvent::Done {
                    stop,
                    usage: Usage::default()
                })),
                "{reason}"
            );
        }
        let body = [delta(json!({"refusal": "I can't."})), finish("stop")].concat();
        let got = run(Decoder::new(Thinking::Off), &body, 1000).await;
        assert_eq!(got[0], Ok(StreamEvent::Text("I can't.".into())));
        assert!(matches!(
            got.last(),
            Some(Ok(StreamEvent::Done {
                stop: StopReason::Refusal,
                ..
            }))
        ));
    }

    #[tokio::test]
    async fn cut_tool_call_after_length_is_dropped_but_bad_json_otherwise_is_malformed() {
        let start = delta(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "w", "arguments": "{\"city\": \"Par"}}]}),
        );
        let got = run(
            Decoder::new(Thinking::Off),
            &[start.clone(), finish("length")].concat(),
            1000,
        )
        .await;
        assert_eq!(
            got.last(),
            Some(&Ok(StreamEvent::Done {
                stop: StopReason::MaxTokens,
                usage: Usage::default()
            }))
        );
        assert!(
            !got.iter()
                .any(|e| matches!(e, Ok(StreamEvent::ToolCall(_))))
        );
        let got = run(
            Decoder::new(Thinking::Off),
            &[start, finish("tool_calls")].concat(),
            1000,
        )
        .await;
        assert!(
            matches!(got.last(), Some(Err(ProviderError::Malformed(m))) if m.contains("call_1")),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn truncated_malformed_and_error_chunks() {
        let got = run(
            Decoder::new(Thinking::Off),
            &delta(json!({"content": "Hi"})),
            1000,
        )
        .await;
        assert_eq!(got[0], Ok(StreamEvent::Text("Hi".into())));
        assert!(matches!(got[1], Err(ProviderError::Truncated(_))));
        assert_eq!(got.len(), 2);

        let body = [
            delta(json!({"content": "Hi"})),
            "data: {\"choices\": [\n\n".into(),
        ]
        .concat();
        let got = run(Decoder::new(Thinking::Off), &body, 1000).await;
        assert!(
            matches!(&got[1], Err(ProviderError::Malformed(m)) if m.contains("not valid JSON"))
        );

        // OpenRouter: an error chunk with a numeric code.
        let body = chunk(json!({"error": {"code": 502, "message": "upstream died"}}));
        let got = run(Decoder::new(Thinking::Off), &body, 1000).await;
        assert_eq!(
            got,
            vec![Err(ProviderError::Server {
                status: 502,
                message: "upstream died".into()
            })]
        );
        let body = chunk(json!({"error": {"type": "rate_limit_exceeded", "message": "slow"}}));
        let got = run(Decoder::new(Thinking::Off), &body, 1000).await;
        assert!(matches!(got[0], Err(ProviderError::RateLimited { .. })));
        let body = chunk(
            json!({"error": {"type": "invalid_request_error", "message": "reasoning_effort is not supported"}}),
        );
        let got = run(Decoder::new(Thinking::Low), &body, 1000).await;
        assert!(matches!(
            got[0],
            Err(ProviderError::ThinkingUnsupported {
                level: Thinking::Low,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn done_without_finish_reason_and_keepalive_chunks() {
        let body = [
            ": keep-alive\n\n".to_string(),
            chunk(json!({"id": "c1", "choices": []})),
            delta(json!({"content": "ok"})),
            "data: [DONE]\n\n".into(),
            "data: ignored after done\n\n".into(),
        ]
        .concat();
        let got = run(Decoder::new(Thinking::Off), &body, 4).await;
        assert_eq!(
            got,
            vec![
                Ok(StreamEvent::Text("ok".into())),
                Ok(StreamEvent::Done {
                    stop: StopReason::End,
                    usage: Usage::default()
                })
            ]
        );
    }

    #[test]
    fn headers_with_and_without_key() {
        let ep = Endpoint {
            api: crate::agent::model::Api::OpenAiCompletions,
            base_url: "http://127.0.0.1:11434/v1".into(),
            api_key: None,
            headers: vec![("HTTP-Referer".into(), "https://pincer".into())],
            connect_timeout: std::time::Duration::from_secs(1),
            idle_timeout: std::time::Duration::from_secs(1),
        };
        let h = headers(&ep).unwrap();
        assert!(h.get("authorization").is_none());
        assert_eq!(h["http-referer"], "https://pincer");
        assert_eq!(url(&ep), "http://127.0.0.1:11434/v1/chat/completions");
        let ep = Endpoint {
            api_key: Some("sk-1".into()),
            ..ep
        };
        assert_eq!(headers(&ep).unwrap()["authorization"], "Bearer sk-1");
    }
}
