//! Rendering a [`Reply`] or an error in each provider's real wire format. Pure functions:
//! no I/O, no clock other than the `created` timestamp OpenAI puts in its objects.

pub(crate) mod anthropic;
pub(crate) mod gemini;
pub(crate) mod openai;
mod request;

pub(crate) use request::Request;

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
