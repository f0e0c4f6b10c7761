//! The provider wire clients against local fake servers speaking the real formats:
//! OpenAI chat completions, Anthropic messages and Gemini streamGenerateContent, all as
//! server-sent events over HTTP on 127.0.0.1.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use futures_util::StreamExt;
use pincer_actors::agent::model::{
    Api, ChatRequest, Endpoint, Message, ProviderError, StopReason, StreamEvent, Thinking,
    ToolCall, ToolSpec, Usage,
};
use pincer_actors::agent::providers::{
    self, EventStream, collect, http_client, list_models, ollama_models, stream_chat,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const KEY: &str = "sk-test-SECRET-0123456789";

// ---------------------------------------------------------------- fake server

#[derive(Clone)]
struct Reply {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    chunks: Vec<String>,
    /// After the chunks, keep the body open without sending anything.
    stall_body: bool,
    /// Never send the response headers.
    stall_headers: bool,
}

impl Reply {
    fn sse(chunks: Vec<String>) -> Self {
        Self {
            status: 200,
            content_type: "text/event-stream",
            headers: vec![],
            chunks,
            stall_body: false,
            stall_headers: false,
        }
    }

    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            chunks: vec![body.to_string()],
            ..Self::sse(vec![])
        }
    }
}

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Value,
}

struct FakeState {
    replies: Mutex<Vec<Reply>>,
    seen: Mutex<Vec<Seen>>,
}

struct Fake {
    addr: std::net::SocketAddr,
    state: Arc<FakeState>,
}

impl Fake {
    /// Answers requests with `replies` in turn (the last one repeats).
    async fn start(replies: Vec<Reply>) -> Self {
        let state = Arc::new(FakeState {
            replies: Mutex::new(replies),
            seen: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, state }
    }

    async fn one(reply: Reply) -> Self {
        Self::start(vec![reply]).await
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    fn last(&self) -> Seen {
        self.seen()
            .pop()
            .expect("no request reached the fake server")
    }

    fn endpoint(&self, api: Api) -> Endpoint {
        let root = format!("http://{}", self.addr);
        let base_url = match api {
            Api::OpenAiCompletions => format!("{root}/v1"),
            Api::AnthropicMessages => root,
            Api::GoogleGenerativeAi => format!("{root}/v1beta"),
        };
        Endpoint {
            api,
            base_url,
            api_key: Some(KEY.into()),
            headers: vec![],
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
        }
    }
}

async fn handle(
    State(st): State<Arc<FakeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    st.seen.lock().unwrap().push(Seen {
        method,
        uri,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let reply = {
        let mut r = st.replies.lock().unwrap();
        if r.len() > 1 {
            r.remove(0)
        } else {
            r[0].clone()
        }
    };
    if reply.stall_headers {
        std::future::pending::<()>().await;
    }
    let chunks = futures_util::stream::iter(
        reply
            .chunks
            .into_iter()
            .map(|c| Ok::<_, Infallible>(Bytes::from(c))),
    );
    let body = if reply.stall_body {
        Body::from_stream(chunks.chain(futures_util::stream::pending()))
    } else {
        Body::from_stream(chunks)
    };
    let mut resp = Response::builder()
        .status(reply.status)
        .header("content-type", reply.content_type);
    for (k, v) in reply.headers {
        resp = resp.header(k, v);
    }
    resp.body(body).unwrap()
}

// ---------------------------------------------------------------- wire helpers

fn openai_chunk(delta: Value, finish: Option<&str>) -> String {
    let v = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
    format!("data: {v}\n\n")
}

fn openai_usage(p: u64, c: u64, cached: u64) -> String {
    let v = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [],
        "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c,
                  "prompt_tokens_details": {"cached_tokens": cached}}});
    format!("data: {v}\n\n")
}

fn ant(v: Value) -> String {
    format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap())
}

fn ant_start(input: u64, cache_read: u64) -> String {
    ant(
        json!({"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant", "content": [], "model": "claude-x", "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input, "cache_creation_input_tokens": 0, "cache_read_input_tokens": cache_read, "output_tokens": 1}}}),
    )
}

fn ant_end(reason: &str, output: u64) -> String {
    ant(
        json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": null}, "usage": {"output_tokens": output}}),
    ) + &ant(json!({"type": "message_stop"}))
}

fn gem(parts: Value, finish: Option<&str>, usage: Option<(u64, u64, u64)>) -> String {
    let mut cand = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if let Some(f) = finish {
        cand["finishReason"] = f.into();
    }
    let mut v =
        json!({"candidates": [cand], "modelVersion": "gemini-2.5-flash", "responseId": "r1"});
    if let Some((p, c, t)) = usage {
        v["usageMetadata"] = json!({"promptTokenCount": p, "candidatesTokenCount": c, "thoughtsTokenCount": t, "totalTokenCount": p + c + t});
    }
    format!("data: {v}\r\n\r\n")
}

/// Splits a body into odd-sized pieces so chunk boundaries fall inside lines and JSON.
fn shred(body: String) -> Vec<String> {
    let bytes = body.into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut n = 3;
    while i < bytes.len() {
        let end = (i + n).min(bytes.len());
        // Keep pieces valid UTF-8 for `String`: move the cut to a char boundary.
        let mut e = end;
        while e < bytes.len() && (bytes[e] & 0xC0) == 0x80 {
            e += 1;
        }
        out.push(String::from_utf8(bytes[i..e].to_vec()).unwrap());
        i = e;
        n = n % 17 + 4;
    }
    out
}

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "weather".into(),
        description: "Current weather".into(),
        parameters: json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}),
    }
}

fn ask(model: &str, thinking: Thinking) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        system: "Be brief.".into(),
        messages: vec![Message::User {
            content: "Hi".into(),
        }],
        tools: vec![weather_tool()].into(),
        thinking,
        max_tokens: None,
    }
}

/// A conversation after two tool calls, the second of which failed.
fn after_tools(model: &str, thinking: Thinking) -> ChatRequest {
    let mut req = ask(model, thinking);
    req.messages = vec![
        Message::User {
            content: "Weather in Paris and Rome?".into(),
        },
        Message::Assistant {
            content: "Checking.".into(),
            tool_calls: vec![
                ToolCall {
                    id: "call_p".into(),
                    name: "weather".into(),
                    arguments: json!({"city": "Paris"}),
                },
                ToolCall {
                    id: "call_r".into(),
                    name: "weather".into(),
                    arguments: json!({"city": "Rome"}),
                },
            ],
        },
        Message::Tool {
            call_id: "call_p".into(),
            name: "weather".into(),
            content: "18C sunny".into(),
            is_error: false,
        },
        Message::Tool {
            call_id: "call_r".into(),
            name: "weather".into(),
            content: "service down".into(),
            is_error: true,
        },
    ];
    req
}

async fn events(s: EventStream) -> Vec<Result<StreamEvent, ProviderError>> {
    tokio::time::timeout(Duration::from_secs(10), s.collect())
        .await
        .expect("the stream did not end")
}

fn ok_events(v: Vec<Result<StreamEvent, ProviderError>>) -> Vec<StreamEvent> {
    v.into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("unexpected error: {e:?}")))
        .collect()
}

fn header<'a>(s: &'a Seen, name: &str) -> Option<&'a str> {
    s.headers.get(name).map(|v| v.to_str().unwrap())
}

// ---------------------------------------------------------------- OpenAI

#[tokio::test]
async fn openai_text_stream_and_request() {
    let body = [
        openai_chunk(json!({"role": "assistant", "content": ""}), None),
        openai_chunk(json!({"content": "Hello"}), None),
        openai_chunk(json!({"content": ", wörld"}), None),
        openai_chunk(json!({}), Some("stop")),
        openai_usage(20, 4, 16),
        "data: [DONE]\n\n".into(),
    ]
    .concat();
    let fake = Fake::one(Reply::sse(shred(body))).await;
    let mut ep = fake.endpoint(Api::OpenAiCompletions);
    ep.headers = vec![("X-Title".into(), "pincer-test".into())];
    let mut req = ask("gpt-test", Thinking::Off);
    req.max_tokens = Some(300);
    let s = stream_chat(&http_client(), &ep, &req).await.unwrap();
    assert_eq!(
        ok_events(events(s).await),
        vec![
            StreamEvent::Text("Hello".into()),
            StreamEvent::Text(", wörld".into()),
            StreamEvent::Done {
                stop: StopReason::End,
                usage: Usage {
                    input: 20,
                    output: 4,
                    cached: 16
                }
            },
        ]
    );
    let seen = fake.last();
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.uri.path(), "/v1/chat/completions");
    assert_eq!(
        header(&seen, "authorization"),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(header(&seen, "content-type"), Some("application/json"));
    assert_eq!(header(&seen, "x-title"), Some("pincer-test"));
    let b = &seen.body;
    assert_eq!(b["model"], "gpt-test");
    assert_eq!(b["stream"], true);
    assert_eq!(b["stream_options"], json!({"include_usage": true}));
    assert_eq!(b["max_tokens"], 300);
    assert!(b.get("reasoning_effort").is_none());
    assert_eq!(
        b["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    );
    assert_eq!(
        b["tools"],
        json!([{"type": "function", "function": {"name": "weather", "description": "Current weather",
            "parameters": weather_tool().parameters}}])
    );
}

#[tokio::test]
async fn openai_fragmented_tool_calls_and_tool_results_shape() {
    let body = [
        openai_chunk(
            json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_9", "type": "function", "function": {"name": "weather", "arguments": ""}}]}),
            None,
        ),
        openai_chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"ci"}}]}), None),
        openai_chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "ty\":\"Os"}}]}), None),
        openai_chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "lo\"}"}}]}), None),
        openai_chunk(json!({}), Some("tool_calls")),
        openai_usage(50, 10, 0),
        "data: [DONE]\n\n".into(),
    ]
    .concat();
    let fake = Fake::one(Reply::sse(shred(body))).await;
    let req = after_tools("gpt-test", Thinking::Off);
    let s = stream_chat(&http_client(), &fake.endpoint(Api::OpenAiCompletions), &req)
        .await
        .unwrap();
    let got = ok_events(events(s).await);
    assert_eq!(
        got[0],
        StreamEvent::ToolCallStarted {
            index: 0,
            id: "call_9".into(),
            name: "weather".into()
        }
    );
    let fragments: String = got
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCallDelta { index: 0, fragment } => Some(fragment.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(fragments, "{\"city\":\"Oslo\"}");
    assert!(got.contains(&StreamEvent::ToolCall(ToolCall {
        id: "call_9".into(),
        name: "weather".into(),
        arguments: json!({"city": "Oslo"}),
    })));
    assert_eq!(
        got.last(),
        Some(&StreamEvent::Done {
            stop: StopReason::ToolUse,
            usage: Usage {
                input: 50,
                output: 10,
                cached: 0
            }
        })
    );
    let msgs = &fake.last().body["messages"];
    assert_eq!(
        msgs[2],
        json!({"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_p", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_r", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}},
        ]})
    );
    assert_eq!(
        msgs[3],
        json!({"role": "tool", "tool_call_id": "call_p", "content": "18C sunny"})
    );
    assert_eq!(
        msgs[4],
        json!({"role": "tool", "tool_call_id": "call_r", "content": "Error: service down"})
    );
}

#[tokio::test]
async fn openai_reasoning_is_thinking_and_effort_is_sent() {
    let body = [
        openai_chunk(
            json!({"role": "assistant", "reasoning_content": "Two plus "}),
            None,
        ),
        openai_chunk(json!({"reasoning_content": "two."}), None),
        openai_chunk(json!({"content": "4"}), None),
        openai_chunk(json!({}), Some("stop")),
        "data: [DONE]\n\n".into(),
    ]
    .concat();
    let fake = Fake::one(Reply::sse(vec![body])).await;
    let s = stream_chat(
        &http_client(),
        &fake.endpoint(Api::OpenAiCompletions),
        &ask("deepseek-reasoner", Thinking::Medium),
    )
    .await
    .unwrap();
    let c = collect(s).await.unwrap();
    assert_eq!(c.thinking, "Two plus two.");
    assert_eq!(c.text, "4");
    assert_eq!(c.stop, StopReason::End);
    assert_eq!(fake.last().body["reasoning_effort"], "medium");
}

#[tokio::test]
async fn openai_keyless_local_server_sends_no_authorization() {
    let body = [
        openai_chunk(json!({"content": "hi"}), Some("stop")),
        "data: [DONE]\n\n".into(),
    ]
    .concat();
    let fake = Fake::one(Reply::sse(vec![body])).await;
    let mut ep = fake.endpoint(Api::OpenAiCompletions);
    ep.api_key = None;
    let c = collect(
        stream_chat(&http_client(), &ep, &ask("llama3", Thinking::Off))
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(c.text, "hi");
    assert!(header(&fake.last(), "authorization").is_none());
}

// ---------------------------------------------------------------- Anthropic

#[tokio::test]
async fn anthropic_text_stream_and_request() {
    let body = [
        ant_start(30, 200),
        ant(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
        ant(json!({"type": "ping"})),
        ant(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}})),
        ant(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}})),
        ant(json!({"type": "content_block_stop", "index": 0})),
        ant_end("end_turn", 12),
    ]
    .concat();
    let fake = Fake::one(Reply::sse(shred(body))).await;
    let s = stream_chat(
        &http_client(),
        &fake.endpoint(Api::AnthropicMessages),
        &ask("claude-test", Thinking::Off),
    )
    .await
    .unwrap();
    assert_eq!(
        ok_events(events(s).await),
        vec![
            StreamEvent::Text("Hello".into()),
            StreamEvent::Text("!".into()),
            StreamEvent::Done {
                stop: StopReason::End,
                usage: Usage {
                    input: 230,
                    output: 12,
                    cached: 200
                }
            },
        ]
    );
    let seen = fake.last();
    assert_eq!(seen.uri.path(), "/v1/messages");
    assert_eq!(header(&seen, "x-api-key"), Some(KEY));
    assert_eq!(header(&seen, "anthropic-version"), Some("2023-06-01"));
    assert_eq!(header(&seen, "content-type"), Some("application/json"));
    assert!(header(&seen, "authorization").is_none());
    let b = &seen.body;
    assert_eq!(b["model"], "claude-test");
    assert_eq!(b["system"], "Be brief.");
    assert_eq!(b["max_tokens"], 4096);
    assert_eq!(b["stream"], true);
    assert_eq!(b["messages"], json!([{"role": "user", "content": "Hi"}]));
    assert_eq!(
        b["tools"],
        json!([{"name": "weather", "description": "Current weather", "input_schema": weather_tool().parameters}])
    );
}

#[tokio::test]
async fn anthropic_fragmented_tool_use_and_tool_results_shape() {
    let body = [
        ant_start(40, 0),
        ant(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
        ant(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me check."}})),
        ant(json!({"type": "content_block_stop", "index": 0})),
        ant(json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_01", "name": "weather", "input": {}}})),
        ant(json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}})),
        ant(json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}})),
        ant(json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"San Francisco, CA\"}"}})),
        ant(json!({"type": "content_block_stop", "index": 1})),
        ant_end("tool_use", 89),
    ]
    .concat();
    let fake = Fake::one(Reply::sse(shred(body))).await;
    let req = after_tools("claude-test", Thinking::Off);
    let s = stream_chat(&http_client(), &fake.endpoint(Api::AnthropicMessages), &req)
        .await
        .unwrap();
    let c = collect(s).await.unwrap();
    assert_eq!(c.text, "Let me check.");
    assert_eq!(
        c.tool_calls,
        vec![ToolCall {
            id: "toolu_01".into(),
            name: "weather".into(),
            arguments: json!({"city": "San Francisco, CA"}),
        }]
    );
    assert_eq!(c.stop, StopReason::ToolUse);
    assert_eq!(c.usage.output, 89);
    let b = fake.last().body;
    assert_eq!(
        b["messages"],
        json!([
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_p", "name": "weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_r", "name": "weather", "input": {"city": "Rome"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_p", "content": "18C sunny"},
                {"type": "tool_result", "tool_use_id": "call_r", "content": "service down", "is_error": true},
            ]},
        ])
    );
}

#[tokio::test]
async fn anthropic_thinking_streams_and_its_blocks_come_back_next_request() {
    let first = [
        ant_start(10, 0),
        ant(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}})),
        ant(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "The user wants "}})),
        ant(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "the weather."}})),
        ant(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}})),
        ant(json!({"type": "content_block_stop", "index": 0})),
        ant(json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_think", "name": "weather", "input": {}}})),
        ant(json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\":\"Oslo\"}"}})),
        ant(json!({"type": "content_block_stop", "index": 1})),
        ant_end("tool_use", 50),
    ]
    .concat();
    let second = [
        ant_start(60, 0),
        ant(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
        ant(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Cold."}})),
        ant(json!({"type": "content_block_stop", "index": 0})),
        ant_end("end_turn", 3),
    ]
    .concat();
    let fake = Fake::start(vec![Reply::sse(shred(first)), Reply::sse(vec![second])]).await;
    let ep = fake.endpoint(Api::AnthropicMessages);
    let mut req = ask("claude-test", Thinking::High);
    let got = ok_events(events(stream_chat(&http_client(), &ep, &req).await.unwrap()).await);
    assert_eq!(
        got[..2],
        [
            StreamEvent::Thinking("The user wants ".into()),
            StreamEvent::Thinking("the weather.".into())
        ]
    );
    let b = &fake.last().body;
    assert_eq!(
        b["thinking"],
        json!({"type": "enabled", "budget_tokens": 16384})
    );
    assert!(b["max_tokens"].as_u64().unwrap() > 16384);

    // Next request of the same turn: the thinking block goes back, signature and all.
    let call = got
        .iter()
        .find_map(|e| match e {
            StreamEvent::ToolCall(c) => Some(c.clone()),
            _ => None,
        })
        .unwrap();
    req.messages.push(Message::Assistant {
        content: String::new(),
        tool_calls: vec![call],
    });
    req.messages.push(Message::Tool {
        call_id: "toolu_think".into(),
        name: "weather".into(),
        content: "-3C".into(),
        is_error: false,
    });
    let c = collect(stream_chat(&http_client(), &ep, &req).await.unwrap())
        .await
        .unwrap();
    assert_eq!(c.text, "Cold.");
    let b = &fake.last().body;
    assert_eq!(b["thinking"]["budget_tokens"], 16384);
    assert_eq!(
        b["messages"][1],
        json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "The user wants the weather.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"},
            {"type": "tool_use", "id": "toolu_think", "name": "weather", "input": {"city": "Oslo"}},
        ]})
    );
}

#[tokio::test]
async fn anthropic_error_event_mid_stream() {
    let body = [
        ant_start(10, 0),
        ant(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
        ant(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Partial"}})),
        ant(json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})),
    ]
    .concat();
    let fake = Fake::one(Reply::sse(vec![body])).await;
    let s = stream_chat(
        &http_client(),
        &fake.endpoint(Api::AnthropicMessages),
        &ask("claude-test", Thinking::Off),
    )
    .await
    .unwrap();
    assert_eq!(
        events(s).await,
        vec![
            Ok(StreamEvent::Text("Partial".into())),
            Err(ProviderError::Server {
                status: 529,
                message: "overloaded_error: Overloaded".into()
            }),
        ]
    );
}

// ---------------------------------------------------------------- Gemini

#[tokio::test]
async fn gemini_text_stream_and_request() {
    let body = [
        gem(json!([{"text": "Hello"}]), None, None),
        gem(json!([{"text": " there"}]), None, None),
        gem(json!([{"text": "!"}]), Some("STOP"), Some((8, 3, 0))),
    ]
    .concat();
    let fake = Fake::one(Reply::sse(shred(body))).await;
    let mut req = ask("gemini-2.5-flash", Thinking::Off);
    req.max_tokens = Some(200);
    let s = stream_chat(
        &http_client(),
        &fake.endpoint(Api::GoogleGenerativeAi),
        &req,
    )
    .await
    .unwrap();
    assert_eq!(
        ok_events(events(s).await),
        vec![
            StreamEvent::Text("Hello".into()),
            StreamEvent::Text(" there".into()),
            StreamEvent::Text("!".into()),
            StreamEvent::Done {
                stop: StopReason::End,
                usage: Usage {
                    input: 8,
                    output: 3,
                    cached: 0
                }
            },
        ]
    );
    let seen = fake.last();
    assert_eq!(
        seen.uri.path(),
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    );
    assert_eq!(seen.uri.query(), Some("alt=sse"));
    assert_eq!(header(&seen, "x-goog-api-key"), Some(KEY));
    assert!(!seen.uri.to_string().contains(KEY));
    let b = &seen.body;
    assert_eq!(
        b["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}]})
    );
    assert_eq!(
        b["contents"],
        json!([{"role": "user", "parts": [{"text": "Hi"}]}])
    );
    assert_eq!(b["generationConfig"], json!({"maxOutputTokens": 200}));
    // Unsupported schema keywords are gone.
    assert_eq!(
        b["tools"],
        json!([{"functionDeclarations": [{"name": "weather", "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]}])
    );
}

#[tokio::test]
async fn gemini_function_call_and_function_responses_shape() {
    let body = [
        gem(json!([{"text": "Checking."}]), None, None),
        gem(
            json!([{"functionCall": {"name": "weather", "args": {"city": "Lima"}}}]),
            Some("STOP"),
            Some((30, 7, 0)),
        ),
    ]
    .concat();
    let fake = Fake::one(Reply::sse(shred(body))).await;
    let req = after_tools("gemini-2.5-pro", Thinking::Off);
    let s = stream_chat(
        &http_client(),
        &fake.endpoint(Api::GoogleGenerativeAi),
        &req,
    )
    .await
    .unwrap();
    let c = collect(s).await.unwrap();
    assert_eq!(c.text, "Checking.");
    assert_eq!(c.tool_calls.len(), 1);
    let call = &c.tool_calls[0];
    assert!(call.id.starts_with("call_"), "{}", call.id);
    assert_eq!(
        (call.name.as_str(), &call.arguments),
        ("weather", &json!({"city": "Lima"}))
    );
    assert_eq!(c.stop, StopReason::ToolUse);
    let b = fake.last().body;
    assert_eq!(
        b["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
            {"role": "model", "parts": [
                {"text": "Checking."},
                {"functionCall": {"name": "weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "weather", "args": {"city": "Rome"}}},
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "weather", "response": {"output": "18C sunny"}}},
                {"functionResponse": {"name": "weather", "response": {"error": "service down"}}},
            ]},
        ])
    );
}

#[tokio::test]
async fn gemini_thoughts_config_and_signature_round_trip() {
    let first = [
        gem(json!([{"text": "**Planning**", "thought": true}]), None, None),
        gem(
            json!([{"functionCall": {"name": "weather", "args": {"city": "Kyiv"}}, "thoughtSignature": "Q2lZQmpZejl="}]),
            Some("STOP"),
            Some((5, 5, 40)),
        ),
    ]
    .concat();
    let second = gem(json!([{"text": "Mild."}]), Some("STOP"), None);
    let fake = Fake::start(vec![Reply::sse(vec![first]), Reply::sse(vec![second])]).await;
    let ep = fake.endpoint(Api::GoogleGenerativeAi);
    let mut req = ask("gemini-3-pro-preview", Thinking::Low);
    let c = collect(stream_chat(&http_client(), &ep, &req).await.unwrap())
        .await
        .unwrap();
    assert_eq!(c.thinking, "**Planning**");
    assert_eq!(c.usage.output, 45);
    assert_eq!(
        fake.last().body["generationConfig"],
        json!({"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": true}})
    );
    let call = c.tool_calls[0].clone();
    req.messages.push(Message::Assistant {
        content: String::new(),
        tool_calls: vec![call.clone()],
    });
    req.messages.push(Message::Tool {
        call_id: call.id,
        name: "weather".into(),
        content: "12C".into(),
        is_error: false,
    });
    let c = collect(stream_chat(&http_client(), &ep, &req).await.unwrap())
        .await
        .unwrap();
    assert_eq!(c.text, "Mild.");
    assert_eq!(
        fake.last().body["contents"][1],
        json!({"role": "model", "parts": [
            {"functionCall": {"name": "weather", "args": {"city": "Kyiv"}}, "thoughtSignature": "Q2lZQmpZejl="}
        ]})
    );
}

// ---------------------------------------------------------------- errors

const ALL: [Api; 3] = [
    Api::OpenAiCompletions,
    Api::AnthropicMessages,
    Api::GoogleGenerativeAi,
];

/// The error body each API sends for a status, in its own format.
fn error_body(api: Api, status: u16, message: &str) -> Value {
    match api {
        Api::OpenAiCompletions => {
            json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}})
        }
        Api::AnthropicMessages => {
            let t = match status {
                401 => "authentication_error",
                403 => "permission_error",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                500..=599 => "api_error",
                _ => "invalid_request_error",
            };
            json!({"type": "error", "error": {"type": t, "message": message}})
        }
        Api::GoogleGenerativeAi => {
            json!({"error": {"code": status, "message": message, "status": "INVALID_ARGUMENT"}})
        }
    }
}

async fn call_error(api: Api, reply: Reply, thinking: Thinking) -> ProviderError {
    let fake = Fake::one(reply).await;
    match stream_chat(&http_client(), &fake.endpoint(api), &ask("m", thinking)).await {
        Ok(_) => panic!("{api:?}: expected an error before the stream"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn http_error_statuses_are_classified_for_every_api() {
    for api in ALL {
        for status in [401u16, 403] {
            let e = call_error(
                api,
                Reply::json(status, error_body(api, status, "bad key")),
                Thinking::Off,
            )
            .await;
            assert!(
                matches!(&e, ProviderError::Auth { status: s, message } if *s == status && message.contains("bad key")),
                "{api:?} {status}: {e:?}"
            );
        }
        let e = call_error(
            api,
            Reply::json(402, error_body(api, 402, "pay")),
            Thinking::Off,
        )
        .await;
        assert!(matches!(e, ProviderError::Billing { .. }), "{api:?}: {e:?}");
        for status in [500u16, 502, 503, 504, 529] {
            let e = call_error(
                api,
                Reply::json(status, error_body(api, status, "down")),
                Thinking::Off,
            )
            .await;
            assert!(
                matches!(&e, ProviderError::Server { status: s, .. } if *s == status),
                "{api:?} {status}: {e:?}"
            );
        }
        let e = call_error(
            api,
            Reply::json(404, error_body(api, 404, "model not found")),
            Thinking::Off,
        )
        .await;
        assert!(
            matches!(&e, ProviderError::BadRequest { status: 404, message } if message.contains("model not found")),
            "{api:?}: {e:?}"
        );
        let thinking_msg = match api {
            Api::OpenAiCompletions => {
                "Unsupported parameter: 'reasoning_effort' is not supported with this model."
            }
            Api::AnthropicMessages => "thinking: Extra inputs are not permitted",
            Api::GoogleGenerativeAi => "Thinking is not supported for this model.",
        };
        let e = call_error(
            api,
            Reply::json(400, error_body(api, 400, thinking_msg)),
            Thinking::Medium,
        )
        .await;
        assert!(
            matches!(&e, ProviderError::ThinkingUnsupported { level: Thinking::Medium, message } if message.contains(thinking_msg)),
            "{api:?}: {e:?}"
        );
        let e = call_error(
            api,
            Reply::json(400, error_body(api, 400, "messages: field required")),
            Thinking::Medium,
        )
        .await;
        assert!(
            matches!(e, ProviderError::BadRequest { status: 400, .. }),
            "{api:?}: {e:?}"
        );
    }
}

#[tokio::test]
async fn rate_limits_parse_retry_after_and_quota_is_billing() {
    for api in ALL {
        let mut reply = Reply::json(429, error_body(api, 429, "slow down"));
        reply.headers = vec![("retry-after", "17".into())];
        let e = call_error(api, reply, Thinking::Off).await;
        assert!(
            matches!(&e, ProviderError::RateLimited { retry_after: Some(d), message }
                if *d == Duration::from_secs(17) && message.contains("slow down")),
            "{api:?}: {e:?}"
        );
    }
    let quota = json!({"error": {"message": "You exceeded your current quota, please check your plan and billing details.", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}});
    let e = call_error(
        Api::OpenAiCompletions,
        Reply::json(429, quota),
        Thinking::Off,
    )
    .await;
    assert!(matches!(e, ProviderError::Billing { .. }), "{e:?}");
    let gemini = json!({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}});
    let e = call_error(
        Api::GoogleGenerativeAi,
        Reply::json(429, gemini),
        Thinking::Off,
    )
    .await;
    assert!(
        matches!(e, ProviderError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(37)),
        "{e:?}"
    );
    let bad_key = json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}});
    let e = call_error(
        Api::GoogleGenerativeAi,
        Reply::json(400, bad_key),
        Thinking::Off,
    )
    .await;
    assert!(
        matches!(e, ProviderError::Auth { status: 400, .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn the_key_never_appears_in_errors() {
    for api in ALL {
        let body = error_body(api, 401, &format!("Incorrect API key provided: {KEY}"));
        let e = call_error(api, Reply::json(401, body), Thinking::Off).await;
        let text = format!("{e} {e:?}");
        assert!(!text.contains(KEY), "{api:?}: {text}");
        assert!(text.contains("<redacted>"), "{api:?}: {text}");
    }
    // Also mid-stream, and the endpoint's Debug.
    let body = [
        openai_chunk(json!({"content": "x"}), None),
        format!(
            "data: {}\n\n",
            json!({"error": {"message": format!("key {KEY} revoked"), "code": 401}})
        ),
    ]
    .concat();
    let fake = Fake::one(Reply::sse(vec![body])).await;
    let ep = fake.endpoint(Api::OpenAiCompletions);
    let got = events(
        stream_chat(&http_client(), &ep, &ask("m", Thinking::Off))
            .await
            .unwrap(),
    )
    .await;
    let text = format!("{got:?} {ep:?}");
    assert!(
        matches!(
            got.last(),
            Some(Err(ProviderError::Auth { status: 401, .. }))
        ),
        "{got:?}"
    );
    assert!(!text.contains(KEY), "{text}");
}

#[tokio::test]
async fn connection_refused_is_connection() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for api in ALL {
        let ep = Endpoint {
            api,
            base_url: format!("http://127.0.0.1:{port}"),
            api_key: Some(KEY.into()),
            headers: vec![],
            connect_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(2),
        };
        let e = match stream_chat(&http_client(), &ep, &ask("m", Thinking::Off)).await {
            Err(e) => e,
            Ok(_) => panic!("connected to a closed port"),
        };
        assert!(
            matches!(&e, ProviderError::Connection { url, .. } if url.starts_with(&format!("http://127.0.0.1:{port}"))),
            "{api:?}: {e:?}"
        );
        assert!(!format!("{e:?}").contains(KEY));
    }
}

/// A well-formed beginning for each API, with no end.
fn beginning(api: Api) -> String {
    match api {
        Api::OpenAiCompletions => openai_chunk(json!({"content": "Hel"}), None),
        Api::AnthropicMessages => [
            ant_start(1, 0),
            ant(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
            ant(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}})),
        ]
        .concat(),
        Api::GoogleGenerativeAi => gem(json!([{"text": "Hel"}]), None, None),
    }
}

#[tokio::test]
async fn truncated_streams_are_truncated() {
    for api in ALL {
        let fake = Fake::one(Reply::sse(vec![beginning(api)])).await;
        let got = events(
            stream_chat(
                &http_client(),
                &fake.endpoint(api),
                &ask("m", Thinking::Off),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(got[0], Ok(StreamEvent::Text("Hel".into())), "{api:?}");
        assert!(
            matches!(got[1], Err(ProviderError::Truncated(_))),
            "{api:?}: {got:?}"
        );
        assert_eq!(got.len(), 2);
        let r = collect(
            stream_chat(
                &http_client(),
                &fake.endpoint(api),
                &ask("m", Thinking::Off),
            )
            .await
            .unwrap(),
        )
        .await;
        assert!(
            matches!(r, Err(ProviderError::Truncated(_))),
            "{api:?}: {r:?}"
        );
    }
}

#[tokio::test]
async fn invalid_json_in_a_data_line_is_malformed() {
    for api in ALL {
        let body = beginning(api)
            + "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\n\n";
        let fake = Fake::one(Reply::sse(vec![body])).await;
        let got = events(
            stream_chat(
                &http_client(),
                &fake.endpoint(api),
                &ask("m", Thinking::Off),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(got[0], Ok(StreamEvent::Text("Hel".into())), "{api:?}");
        assert!(
            matches!(&got[1], Err(ProviderError::Malformed(m)) if m.contains("not valid JSON")),
            "{api:?}: {got:?}"
        );
        assert_eq!(got.len(), 2);
    }
    // A JSON answer where a stream was expected.
    let fake = Fake::one(Reply::json(200, json!({"id": "x", "choices": []}))).await;
    let e = stream_chat(
        &http_client(),
        &fake.endpoint(Api::OpenAiCompletions),
        &ask("m", Thinking::Off),
    )
    .await;
    assert!(matches!(e, Err(ProviderError::Malformed(m)) if m.contains("application/json")));
}

#[tokio::test]
async fn stalls_after_headers_and_mid_stream_time_out() {
    let idle = Duration::from_millis(200);
    let started = Instant::now();
    let runs = ALL.iter().flat_map(|&api| {
        [vec![], vec![beginning(api)]]
            .into_iter()
            .map(move |chunks| async move {
                let mut reply = Reply::sse(chunks.clone());
                reply.stall_body = true;
                let fake = Fake::one(reply).await;
                let mut ep = fake.endpoint(api);
                ep.idle_timeout = idle;
                // Headers arrive: the call starts; then nothing more.
                let s = stream_chat(&http_client(), &ep, &ask("m", Thinking::Off))
                    .await
                    .unwrap_or_else(|e| panic!("{api:?}: {e:?}"));
                let got = events(s).await;
                let expected_first = if chunks.is_empty() { 0 } else { 1 };
                assert_eq!(got.len(), expected_first + 1, "{api:?}: {got:?}");
                assert_eq!(
                    got.last(),
                    Some(&Err(ProviderError::Timeout(idle))),
                    "{api:?}"
                );
            })
    });
    futures_util::future::join_all(runs).await;
    let took = started.elapsed();
    assert!(took >= idle && took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn no_response_headers_within_connect_timeout() {
    let started = Instant::now();
    let runs = ALL.map(|api| async move {
        let mut reply = Reply::sse(vec![]);
        reply.stall_headers = true;
        let fake = Fake::one(reply).await;
        let mut ep = fake.endpoint(api);
        ep.connect_timeout = Duration::from_millis(200);
        let r = stream_chat(&http_client(), &ep, &ask("m", Thinking::Off)).await;
        assert!(
            matches!(r, Err(ProviderError::Timeout(d)) if d == Duration::from_millis(200)),
            "{api:?}"
        );
    });
    futures_util::future::join_all(runs).await;
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// A raw HTTP/1.1 server: response headers, one chunk of a chunked body, then the
/// connection ends: with a reset (`reset`) or a plain close before the last chunk.
async fn broken_server(reset: bool) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 65536];
        let mut got = Vec::new();
        // Read the request head and its content-length body.
        loop {
            let n = sock.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some(head_end) = text.find("\r\n\r\n") {
                let len: usize = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if got.len() >= head_end + 4 + len {
                    break;
                }
            }
        }
        let chunk = openai_chunk(json!({"content": "Hel"}), None);
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n",
            chunk.len()
        );
        sock.write_all(resp.as_bytes()).await.unwrap();
        sock.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        if reset {
            sock.set_zero_linger().unwrap();
        }
        drop(sock);
    });
    addr
}

#[tokio::test]
async fn connection_reset_or_cut_mid_stream() {
    for reset in [true, false] {
        let addr = broken_server(reset).await;
        let ep = Endpoint {
            api: Api::OpenAiCompletions,
            base_url: format!("http://{addr}/v1"),
            api_key: Some(KEY.into()),
            headers: vec![],
            connect_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(2),
        };
        let s = stream_chat(&http_client(), &ep, &ask("m", Thinking::Off))
            .await
            .unwrap();
        let got = events(s).await;
        assert_eq!(got[0], Ok(StreamEvent::Text("Hel".into())));
        assert_eq!(got.len(), 2);
        if reset {
            assert!(
                matches!(&got[1], Err(ProviderError::Connection { message, .. }) if message.contains("reset")),
                "{got:?}"
            );
        } else {
            assert!(
                matches!(&got[1], Err(ProviderError::Truncated(_))),
                "{got:?}"
            );
        }
    }
}

// ---------------------------------------------------------------- model lists

#[tokio::test]
async fn model_lists() {
    let fake = Fake::one(Reply::json(
        200,
        json!({"object": "list", "data": [
        {"id": "gpt-4o", "object": "model", "created": 1, "owned_by": "system"},
        {"id": "o3-mini", "object": "model", "created": 2, "owned_by": "system"}]}),
    ))
    .await;
    let ep = fake.endpoint(Api::OpenAiCompletions);
    assert_eq!(
        list_models(&http_client(), &ep).await.unwrap(),
        ["gpt-4o", "o3-mini"]
    );
    let seen = fake.last();
    assert_eq!((seen.method, seen.uri.path()), (Method::GET, "/v1/models"));
    assert_eq!(
        header(&fake.last(), "authorization"),
        Some(&*format!("Bearer {KEY}"))
    );

    let fake = Fake::start(vec![
        Reply::json(200, json!({"data": [{"type": "model", "id": "claude-a", "display_name": "A"}], "has_more": true, "first_id": "claude-a", "last_id": "claude-a"})),
        Reply::json(200, json!({"data": [{"type": "model", "id": "claude-b", "display_name": "B"}], "has_more": false, "first_id": "claude-b", "last_id": "claude-b"})),
    ])
    .await;
    let ep = fake.endpoint(Api::AnthropicMessages);
    assert_eq!(
        list_models(&http_client(), &ep).await.unwrap(),
        ["claude-a", "claude-b"]
    );
    let seen = fake.seen();
    assert_eq!(seen[0].uri.path(), "/v1/models");
    assert_eq!(seen[1].uri.query(), Some("limit=1000&after_id=claude-a"));
    assert_eq!(header(&seen[1], "x-api-key"), Some(KEY));

    let fake = Fake::one(Reply::json(200, json!({"models": [
        {"name": "models/gemini-2.5-flash", "supportedGenerationMethods": ["generateContent", "countTokens"]},
        {"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]}]}))).await;
    let ep = fake.endpoint(Api::GoogleGenerativeAi);
    assert_eq!(
        list_models(&http_client(), &ep).await.unwrap(),
        ["gemini-2.5-flash"]
    );
    assert_eq!(fake.last().uri.path(), "/v1beta/models");

    let fake = Fake::one(Reply::json(
        401,
        error_body(Api::OpenAiCompletions, 401, "nope"),
    ))
    .await;
    let e = list_models(&http_client(), &fake.endpoint(Api::OpenAiCompletions)).await;
    assert!(matches!(e, Err(ProviderError::Auth { status: 401, .. })));
}

#[tokio::test]
async fn ollama_detection() {
    let fake = Fake::one(Reply::json(200, json!({"models": [
        {"name": "llama3.2:latest", "model": "llama3.2:latest", "size": 2019393189, "digest": "a80c4f17acd5"},
        {"name": "qwen3:8b", "model": "qwen3:8b", "size": 5225388164u64, "digest": "500a1f067a9f"}]}))).await;
    let base = format!("http://{}", fake.addr);
    assert_eq!(
        ollama_models(&http_client(), &base).await.unwrap(),
        ["llama3.2:latest", "qwen3:8b"]
    );
    assert_eq!(fake.last().uri.path(), "/api/tags");
    // The OpenAI-compatible base works too.
    assert_eq!(
        ollama_models(&http_client(), &format!("{base}/v1/"))
            .await
            .unwrap()
            .len(),
        2
    );
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = ollama_models(&http_client(), &format!("http://127.0.0.1:{port}")).await;
    assert!(matches!(e, Err(ProviderError::Connection { .. })), "{e:?}");
}

#[test]
fn classify_is_public() {
    assert!(matches!(
        providers::classify(503, None, "", Thinking::Off),
        ProviderError::Server { status: 503, .. }
    ));
}
