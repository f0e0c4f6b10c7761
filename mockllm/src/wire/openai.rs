//! OpenAI chat completions (`POST /v1/chat/completions`), as also spoken by Ollama, vLLM,
//! LM Studio and OpenRouter: `chat.completion` objects, `chat.completion.chunk` SSE `data:`
//! lines ended by `data: [DONE]`, `reasoning_content` deltas for thinking (vLLM, DeepSeek,
//! OpenRouter), and `{"error": {"message", "type", "param", "code"}}` errors.

use bytes::Bytes;
use serde_json::{Value, json};

use super::{Turn, Usage, chunks, new_id, unix_now};

fn frame(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

fn finish_reason(t: &Turn) -> &'static str {
    if t.reply.max_tokens {
        "length"
    } else if !t.reply.tool_calls.is_empty() {
        "tool_calls"
    } else {
        "stop"
    }
}

fn usage(u: Usage) -> Value {
    json!({
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.input + u.output,
        "prompt_tokens_details": {"cached_tokens": u.cached},
    })
}

/// The SSE events of a streamed answer: a role chunk, reasoning deltas, content deltas,
/// tool-call chunks (the first of each call carries `id`, `type` and `function.name`, the
/// next ones only `index` and a fragment of `function.arguments`), a chunk with
/// `finish_reason`, a usage chunk with empty `choices` when `include_usage`, `[DONE]`.
pub(crate) fn stream(t: &Turn, include_usage: bool) -> Vec<Bytes> {
    let id = format!("chatcmpl-{}", new_id());
    let created = unix_now();
    let chunk = |delta: Value, finish: Value| {
        let mut c = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": t.model,
            "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if include_usage {
            c["usage"] = Value::Null;
        }
        frame(&c)
    };
    let n = t.reply.chunk_chars;
    let mut out = vec![chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        Value::Null,
    )];
    if let Some(thinking) = &t.reply.thinking {
        for piece in chunks(thinking, n) {
            out.push(chunk(json!({"reasoning_content": piece}), Value::Null));
        }
    }
    for piece in chunks(&t.reply.text, n) {
        out.push(chunk(json!({"content": piece}), Value::Null));
    }
    for (index, (name, args)) in t.reply.tool_calls.iter().enumerate() {
        let call_id = format!("call_{}", &new_id()[..24]);
        out.push(chunk(
            json!({"tool_calls": [{
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }]}),
            Value::Null,
        ));
        for fragment in chunks(&args.to_string(), n) {
            out.push(chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}),
                Value::Null,
            ));
        }
    }
    out.push(chunk(json!({}), json!(finish_reason(t))));
    if include_usage {
        out.push(frame(&json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": t.model,
            "system_fingerprint": "fp_mock",
            "choices": [],
            "usage": usage(t.usage),
        })));
    }
    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    out
}

/// A `data:` line that is not JSON, for [`crate::Fault::InvalidJson`].
pub(crate) fn invalid_event() -> Bytes {
    Bytes::from_static(
        b"data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"oops\"\n\n",
    )
}

/// The non-streamed `chat.completion` object.
pub(crate) fn body(t: &Turn) -> Value {
    let mut message = json!({
        "role": "assistant",
        "content": if t.reply.text.is_empty() && !t.reply.tool_calls.is_empty() {
            Value::Null
        } else {
            json!(t.reply.text)
        },
        "refusal": null,
    });
    if let Some(thinking) = &t.reply.thinking {
        message["reasoning_content"] = json!(thinking);
    }
    if !t.reply.tool_calls.is_empty() {
        let calls: Vec<Value> = t
            .reply
            .tool_calls
            .iter()
            .map(|(name, args)| {
                json!({
                    "id": format!("call_{}", &new_id()[..24]),
                    "type": "function",
                    "function": {"name": name, "arguments": args.to_string()},
                })
            })
            .collect();
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": format!("chatcmpl-{}", new_id()),
        "object": "chat.completion",
        "created": unix_now(),
        "model": t.model,
        "system_fingerprint": "fp_mock",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(t)}],
        "usage": usage(t.usage),
    })
}

fn error_json(message: &str, kind: &str, param: Value, code: Value) -> Value {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

/// OpenAI's error body for an HTTP status, worded as the real API words it.
pub(crate) fn error(status: u16, model: &str) -> Value {
    let (message, kind, code) = match status {
        400 => (
            "Invalid request.".to_owned(),
            "invalid_request_error",
            Value::Null,
        ),
        401 => (
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.".to_owned(),
            "invalid_request_error",
            json!("invalid_api_key"),
        ),
        402 => (
            "You exceeded your current quota, please check your plan and billing details.".to_owned(),
            "insufficient_quota",
            json!("insufficient_quota"),
        ),
        403 => (
            "You are not allowed to sample from this model".to_owned(),
            "invalid_request_error",
            Value::Null,
        ),
        404 => (
            format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            json!("model_not_found"),
        ),
        429 => (
            format!("Rate limit reached for {model} on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s."),
            "requests",
            json!("rate_limit_exceeded"),
        ),
        503 => (
            "The engine is currently overloaded, please try again later.".to_owned(),
            "server_error",
            Value::Null,
        ),
        s if s >= 500 => (
            "The server had an error while processing your request. Sorry about that!".to_owned(),
            "server_error",
            Value::Null,
        ),
        _ => (
            format!("Request failed with HTTP status {status}."),
            "invalid_request_error",
            Value::Null,
        ),
    };
    error_json(&message, kind, Value::Null, code)
}

/// A 400 `invalid_request_error` body with this message (request validation).
pub(crate) fn invalid_request(message: &str) -> Value {
    error_json(message, "invalid_request_error", Value::Null, Value::Null)
}

/// 400 for a model that takes no `reasoning_effort` (how o-series-era OpenAI rejects a
/// parameter the model does not support).
pub(crate) fn reject_thinking() -> Value {
    error_json(
        "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
        "invalid_request_error",
        json!("reasoning_effort"),
        json!("unsupported_parameter"),
    )
}

/// `GET /v1/models`.
pub(crate) fn models(ids: &[String]) -> Value {
    let data: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 1_700_000_000u64, "owned_by": "mock"}))
        .collect();
    json!({"object": "list", "data": data})
}

/// Ollama's `GET /api/tags`.
pub(crate) fn ollama_tags(ids: &[String]) -> Value {
    let models: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({
                "name": id,
                "model": id,
                "modified_at": "2025-01-01T00:00:00Z",
                "size": 2_019_393_189u64,
                "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
                "details": {
                    "parent_model": "",
                    "format": "gguf",
                    "family": "llama",
                    "families": ["llama"],
                    "parameter_size": "3.2B",
                    "quantization_level": "Q4_K_M",
                },
            })
        })
        .collect();
    json!({"models": models})
}
