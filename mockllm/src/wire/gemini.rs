//! Google Gemini (`POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent`): `GenerateContentResponse` objects, streamed as SSE `data:`
//! lines separated by `\r\n\r\n` with `?alt=sse` (as Google's servers frame them), or as one
//! JSON array without it; `{"error": {"code", "message", "status"}}` errors.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::{Turn, chunks, new_id};

/// How `streamGenerateContent` frames its responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `?alt=sse`: `data: {..}\r\n\r\n` per response.
    Sse,
    /// No `alt`: a JSON array streamed element by element (`[{..}` , `,\r\n{..}` , `]`).
    Array,
}

fn usage(t: &Turn) -> Value {
    let mut u = Map::new();
    u.insert("promptTokenCount".into(), json!(t.usage.input));
    u.insert("candidatesTokenCount".into(), json!(t.usage.output));
    u.insert(
        "totalTokenCount".into(),
        json!(t.usage.input + t.usage.output),
    );
    if t.usage.cached > 0 {
        u.insert("cachedContentTokenCount".into(), json!(t.usage.cached));
    }
    Value::Object(u)
}

fn finish_reason(t: &Turn) -> &'static str {
    if t.reply.max_tokens {
        "MAX_TOKENS"
    } else {
        "STOP"
    }
}

fn response(t: &Turn, id: &str, parts: Vec<Value>, last: bool) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    let mut r = json!({"candidates": [], "modelVersion": t.model, "responseId": id});
    if last {
        candidate["finishReason"] = json!(finish_reason(t));
        r["usageMetadata"] = usage(t);
    }
    r["candidates"] = json!([candidate]);
    r
}

fn function_calls(t: &Turn) -> Vec<Value> {
    t.reply
        .tool_calls
        .iter()
        .map(|(name, args)| json!({"functionCall": {"name": name, "args": args}}))
        .collect()
}

/// The responses of a streamed answer: one per thinking piece (`thought: true`), one per
/// text piece, one with every `functionCall` whole; the last carries `finishReason` and
/// `usageMetadata`.
pub(crate) fn responses(t: &Turn) -> Vec<Value> {
    let id = new_id();
    let n = t.reply.chunk_chars;
    let mut parts: Vec<Vec<Value>> = Vec::new();
    if let Some(thinking) = &t.reply.thinking {
        parts.extend(
            chunks(thinking, n)
                .into_iter()
                .map(|p| vec![json!({"text": p, "thought": true})]),
        );
    }
    parts.extend(
        chunks(&t.reply.text, n)
            .into_iter()
            .map(|p| vec![json!({"text": p})]),
    );
    if !t.reply.tool_calls.is_empty() {
        parts.push(function_calls(t));
    }
    if parts.is_empty() {
        parts.push(vec![json!({"text": ""})]);
    }
    let last = parts.len() - 1;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| response(t, &id, p, i == last))
        .collect()
}

/// The streamed events in the given framing.
pub(crate) fn stream(t: &Turn, framing: Framing) -> Vec<Bytes> {
    let all = responses(t);
    let last = all.len() - 1;
    all.iter()
        .enumerate()
        .map(|(i, r)| match framing {
            Framing::Sse => Bytes::from(format!("data: {r}\r\n\r\n")),
            Framing::Array => {
                let open = if i == 0 { "[" } else { ",\r\n" };
                let close = if i == last { "]" } else { "" };
                Bytes::from(format!("{open}{r}{close}"))
            }
        })
        .collect()
}

/// An event that is not JSON, for [`crate::Fault::InvalidJson`].
pub(crate) fn invalid_event(framing: Framing) -> Bytes {
    let broken = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"oops\"}";
    match framing {
        Framing::Sse => Bytes::from(format!("data: {broken}\r\n\r\n")),
        Framing::Array => Bytes::from(format!(",\r\n{broken}")),
    }
}

/// The non-streamed `generateContent` response: every part in one candidate.
pub(crate) fn body(t: &Turn) -> Value {
    let mut parts = Vec::new();
    if let Some(thinking) = &t.reply.thinking {
        parts.push(json!({"text": thinking, "thought": true}));
    }
    if !t.reply.text.is_empty() || t.reply.tool_calls.is_empty() {
        parts.push(json!({"text": t.reply.text}));
    }
    parts.extend(function_calls(t));
    response(t, &new_id(), parts, true)
}

fn error_json(code: u16, status: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "status": status}})
}

/// Gemini's error body for an HTTP status (google.rpc status names).
pub(crate) fn error(code: u16, model: &str) -> Value {
    let (status, message) = match code {
        400 => ("INVALID_ARGUMENT", "Request contains an invalid argument.".to_owned()),
        401 => (
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.".to_owned(),
        ),
        403 => (
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.".to_owned(),
        ),
        404 => (
            "NOT_FOUND",
            format!("models/{model} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods."),
        ),
        429 => (
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).".to_owned(),
        ),
        500 => (
            "INTERNAL",
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting".to_owned(),
        ),
        503 => (
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.".to_owned(),
        ),
        504 => ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete.".to_owned()),
        s if s >= 500 => ("INTERNAL", "An internal error has occurred.".to_owned()),
        _ => ("FAILED_PRECONDITION", format!("Request failed with HTTP status {code}.")),
    };
    error_json(code, status, &message)
}

/// A 400 `INVALID_ARGUMENT` body with this message (request validation).
pub(crate) fn invalid_request(message: &str) -> Value {
    error_json(400, "INVALID_ARGUMENT", message)
}

/// 400 for a model that takes no `generationConfig.thinkingConfig` (Gemini 2.0 and
/// earlier answer `thinking_config is not supported.`).
pub(crate) fn reject_thinking() -> Value {
    error_json(400, "INVALID_ARGUMENT", "thinking_config is not supported.")
}

/// `GET /v1beta/models`.
pub(crate) fn models(ids: &[String]) -> Value {
    let models: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({
                "name": format!("models/{id}"),
                "displayName": id,
                "inputTokenLimit": 1_048_576,
                "outputTokenLimit": 65_536,
                "supportedGenerationMethods": ["generateContent", "countTokens", "streamGenerateContent"],
            })
        })
        .collect();
    json!({"models": models})
}
