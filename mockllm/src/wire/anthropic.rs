//! Anthropic messages (`POST /v1/messages`): the `message` object, the named SSE events
//! (`message_start`, `ping`, `content_block_start` / `_delta` / `_stop`, `message_delta`,
//! `message_stop`) and `{"type": "error", "error": {"type", "message"}, "request_id"}`
//! errors.

use bytes::Bytes;
use serde_json::{Value, json};

use super::{Turn, chunks, new_id};

fn frame(event: &str, v: &Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {v}\n\n"))
}

fn stop_reason(t: &Turn) -> &'static str {
    if t.reply.max_tokens {
        "max_tokens"
    } else if !t.reply.tool_calls.is_empty() {
        "tool_use"
    } else {
        "end_turn"
    }
}

/// `input_tokens` on Anthropic's wire excludes cache reads, reported apart.
fn input_usage(t: &Turn) -> Value {
    json!({
        "input_tokens": t.usage.input.saturating_sub(t.usage.cached),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": t.usage.cached,
    })
}

fn signature() -> String {
    format!("mocksig-{}", new_id())
}

fn has_text_block(t: &Turn) -> bool {
    !t.reply.text.is_empty() || t.reply.tool_calls.is_empty()
}

/// The SSE events of a streamed answer: `message_start` (input usage), `ping`, a
/// `thinking` block (`thinking_delta`s then a `signature_delta`), a `text` block, one
/// `tool_use` block per call (`input_json_delta`s with `partial_json` fragments),
/// `message_delta` (`stop_reason`, `usage.output_tokens`), `message_stop`.
pub(crate) fn stream(t: &Turn) -> Vec<Bytes> {
    let n = t.reply.chunk_chars;
    let mut start_usage = input_usage(t);
    start_usage["output_tokens"] = json!(1);
    let mut out = vec![
        frame(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": format!("msg_{}", new_id()),
                "type": "message",
                "role": "assistant",
                "model": t.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": start_usage,
            }}),
        ),
        frame("ping", &json!({"type": "ping"})),
    ];
    let mut index = 0;
    let mut block = |out: &mut Vec<Bytes>, start: Value, deltas: Vec<Value>| {
        out.push(frame(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        for delta in deltas {
            out.push(frame(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ));
        }
        out.push(frame(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    };
    if let Some(thinking) = &t.reply.thinking {
        let mut deltas: Vec<Value> = chunks(thinking, n)
            .into_iter()
            .map(|p| json!({"type": "thinking_delta", "thinking": p}))
            .collect();
        deltas.push(json!({"type": "signature_delta", "signature": signature()}));
        block(
            &mut out,
            json!({"type": "thinking", "thinking": "", "signature": ""}),
            deltas,
        );
    }
    if has_text_block(t) {
        let deltas = chunks(&t.reply.text, n)
            .into_iter()
            .map(|p| json!({"type": "text_delta", "text": p}))
            .collect();
        block(&mut out, json!({"type": "text", "text": ""}), deltas);
    }
    for (name, args) in &t.reply.tool_calls {
        let mut deltas = vec![json!({"type": "input_json_delta", "partial_json": ""})];
        deltas.extend(
            chunks(&args.to_string(), n)
                .into_iter()
                .map(|p| json!({"type": "input_json_delta", "partial_json": p})),
        );
        block(
            &mut out,
            json!({"type": "tool_use", "id": format!("toolu_{}", new_id()), "name": name, "input": {}}),
            deltas,
        );
    }
    out.push(frame(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(t), "stop_sequence": null},
            "usage": {"output_tokens": t.usage.output},
        }),
    ));
    out.push(frame("message_stop", &json!({"type": "message_stop"})));
    out
}

/// An event whose `data:` is not JSON, for [`crate::Fault::InvalidJson`].
pub(crate) fn invalid_event() -> Bytes {
    Bytes::from_static(
        b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"oops\"\n\n",
    )
}

/// The non-streamed `message` object.
pub(crate) fn body(t: &Turn) -> Value {
    let mut content = Vec::new();
    if let Some(thinking) = &t.reply.thinking {
        content.push(json!({"type": "thinking", "thinking": thinking, "signature": signature()}));
    }
    if has_text_block(t) {
        content.push(json!({"type": "text", "text": t.reply.text}));
    }
    for (name, args) in &t.reply.tool_calls {
        content.push(json!({
            "type": "tool_use",
            "id": format!("toolu_{}", new_id()),
            "name": name,
            "input": args,
        }));
    }
    let mut usage = input_usage(t);
    usage["output_tokens"] = json!(t.usage.output);
    json!({
        "id": format!("msg_{}", new_id()),
        "type": "message",
        "role": "assistant",
        "model": t.model,
        "content": content,
        "stop_reason": stop_reason(t),
        "stop_sequence": null,
        "usage": usage,
    })
}

fn error_json(kind: &str, message: &str) -> Value {
    json!({
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": format!("req_{}", new_id()),
    })
}

/// Anthropic's error body for an HTTP status (its documented error types).
pub(crate) fn error(status: u16, model: &str) -> Value {
    let (kind, message) = match status {
        400 => ("invalid_request_error", "Invalid request.".to_owned()),
        401 => ("authentication_error", "invalid x-api-key".to_owned()),
        402 => (
            "billing_error",
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.".to_owned(),
        ),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.".to_owned(),
        ),
        404 => ("not_found_error", format!("model: {model}")),
        413 => ("request_too_large", "Request exceeds the maximum allowed number of bytes.".to_owned()),
        429 => (
            "rate_limit_error",
            "This request would exceed the rate limit for your organization of 50 requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.".to_owned(),
        ),
        504 => ("timeout_error", "Request timed out.".to_owned()),
        529 => ("overloaded_error", "Overloaded".to_owned()),
        s if s >= 500 => ("api_error", "Internal server error".to_owned()),
        _ => ("invalid_request_error", format!("Request failed with HTTP status {status}.")),
    };
    error_json(kind, &message)
}

/// A 400 `invalid_request_error` body with this message (request validation).
pub(crate) fn invalid_request(message: &str) -> Value {
    error_json("invalid_request_error", message)
}

/// 400 for a model without extended thinking, e.g. `'claude-3-5-haiku-20241022' does not
/// support thinking.`
pub(crate) fn reject_thinking(model: &str) -> Value {
    invalid_request(&format!("'{model}' does not support thinking."))
}

/// Anthropic's `GET /v1/models` (chosen over OpenAI's when `anthropic-version` or
/// `x-api-key` is sent).
pub(crate) fn models(ids: &[String]) -> Value {
    let data: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({"type": "model", "id": id, "display_name": id, "created_at": "2025-01-01T00:00:00Z"})
        })
        .collect();
    json!({
        "data": data,
        "has_more": false,
        "first_id": ids.first(),
        "last_id": ids.last(),
    })
}
