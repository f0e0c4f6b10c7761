//! Rendering a [`Reply`] or an error in each provider's real wire format. Pure functions:
//! no I/O, no clock other than the `created` timestamp OpenAI puts in its objects.

pub(crate) mod anthropic;
pub(crate) mod gemini;
pub(crate) mod openai;

use bytes::Bytes;
use serde_json::Value;

use crate::script::Reply;

/// Token counts as the scripted reply or the estimate gives them; `input` includes `cached`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    pub input: u64,
    pub output: u64,
    pub cached: u64,
}

/// What one answer is rendered from.
pub(crate) struct Turn<'a> {
    /// The model as requested; echoed in the response.
    pub model: &'a str,
    pub reply: &'a Reply,
    pub usage: Usage,
}

impl Usage {
    /// The scripted usage, or about four characters a token of the request body (input)
    /// and of the reply (output).
    pub fn resolve(reply: &Reply, request_bytes: usize) -> Self {
        if let Some((input, output, cached)) = reply.usage {
            return Self {
                input,
                output,
                cached,
            };
        }
        let reply_chars = reply.text.chars().count()
            + reply.thinking.as_deref().map_or(0, |t| t.chars().count())
            + reply
                .tool_calls
                .iter()
                .map(|(n, a)| n.len() + a.to_string().len())
                .sum::<usize>();
        Self {
            input: (request_bytes as u64 / 4).max(1),
            output: (reply_chars as u64 / 4).max(1),
            cached: 0,
        }
    }
}

/// `s` in pieces of `n` characters (never splitting a character); one piece if `n == 0`;
/// none if `s` is empty.
pub(crate) fn chunks(s: &str, n: usize) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    if n == 0 {
        return vec![s.to_owned()];
    }
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(n).map(|c| c.iter().collect()).collect()
}

/// A random id body (32 hex digits) for `chatcmpl-`, `call_`, `msg_`, `toolu_` ids.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `body` serialized with a trailing comma before its last brace: not JSON.
pub(crate) fn invalid_body(body: &Value) -> Bytes {
    let s = body.to_string();
    let open = s.strip_suffix('}').unwrap_or(&s);
    Bytes::from(format!("{open},}}"))
}

/// The first half (by characters) of `body` serialized.
pub(crate) fn truncated_body(body: &Value) -> Bytes {
    let s = body.to_string();
    let half: String = s.chars().take(s.chars().count() / 2).collect();
    Bytes::from(half)
}

/// The text of the last user message that has any, from OpenAI/Anthropic `messages` or
/// Gemini `contents`; text parts of one message are joined with newlines.
pub(crate) fn last_user_text(body: &Value) -> String {
    let (list, role) = match (body.get("messages"), body.get("contents")) {
        (Some(Value::Array(m)), _) => (m, "user"),
        (_, Some(Value::Array(c))) => (c, "user"),
        _ => return String::new(),
    };
    list.iter()
        .rev()
        .filter(|m| m.get("role").and_then(Value::as_str).unwrap_or("user") == role)
        .map(message_text)
        .find(|t| !t.is_empty())
        .unwrap_or_default()
}

fn message_text(m: &Value) -> String {
    let parts = match (m.get("content"), m.get("parts")) {
        (Some(Value::String(s)), _) => return s.clone(),
        (Some(Value::Array(p)), _) | (_, Some(Value::Array(p))) => p,
        _ => return String::new(),
    };
    parts
        .iter()
        .filter(|p| {
            p.get("type")
                .and_then(Value::as_str)
                .is_none_or(|t| t == "text")
        })
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Seconds since the epoch, for OpenAI's `created`.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chunks_split_on_characters() {
        assert_eq!(chunks("abcdefg", 3), ["abc", "def", "g"]);
        assert_eq!(chunks("héllo", 2), ["hé", "ll", "o"]);
        assert_eq!(chunks("abc", 0), ["abc"]);
        assert!(chunks("", 4).is_empty());
    }

    #[test]
    fn last_user_text_reads_every_api_shape() {
        let openai = json!({"messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "image_url", "image_url": {}}]},
        ]});
        assert_eq!(last_user_text(&openai), "second");
        let anthropic = json!({"messages": [
            {"role": "user", "content": "question"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "r"}]},
        ]});
        assert_eq!(last_user_text(&anthropic), "question");
        let gemini =
            json!({"contents": [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}]});
        assert_eq!(last_user_text(&gemini), "a\nb");
        assert_eq!(last_user_text(&json!({})), "");
    }

    #[test]
    fn broken_bodies_are_not_json() {
        let body = json!({"a": 1, "b": [1, 2]});
        assert!(serde_json::from_slice::<Value>(&invalid_body(&body)).is_err());
        assert!(serde_json::from_slice::<Value>(&truncated_body(&body)).is_err());
    }

    #[test]
    fn usage_is_scripted_or_estimated() {
        let scripted = Reply::text("x").with_usage(7, 3, 2);
        assert_eq!(
            Usage::resolve(&scripted, 1000),
            Usage {
                input: 7,
                output: 3,
                cached: 2
            }
        );
        let estimated = Usage::resolve(&Reply::text("12345678"), 400);
        assert_eq!(
            (estimated.input, estimated.output, estimated.cached),
            (100, 2, 0)
        );
    }
}
