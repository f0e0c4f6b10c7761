//! Opaque provider data that must travel back with a tool call on the next request of the
//! same turn, but that [`crate::agent::model::Message`] has no field for:
//!
//! - Anthropic: with extended thinking on, the assistant message holding `tool_use`
//!   blocks must be sent back with its `thinking` / `redacted_thinking` blocks (and their
//!   signatures), or the API answers 400.
//! - Gemini 3: a `functionCall` part must come back with its `thoughtSignature`.
//!
//! The stream decoders remember that data here, keyed by tool call id; the body builders
//! look it up. A bounded in-process map: after a restart the data is gone and the
//! builders fall back (Anthropic: no thinking for the rest of that turn; Gemini: the
//! documented placeholder signature).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

/// Entries kept; the oldest go first.
const CAPACITY: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A JSON array of Anthropic thinking blocks, under every tool_use id of the message.
    AnthropicThinking,
    /// A Gemini `thoughtSignature` string, under the (generated) tool call id.
    GeminiSignature,
}

#[derive(Default)]
struct Cache {
    map: HashMap<(Kind, String), Value>,
    order: VecDeque<(Kind, String)>,
}

impl Cache {
    fn insert(&mut self, kind: Kind, id: &str, value: Value, capacity: usize) {
        let key = (kind, id.to_string());
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
            while self.order.len() > capacity {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }

    fn get(&self, kind: Kind, id: &str) -> Option<Value> {
        self.map.get(&(kind, id.to_string())).cloned()
    }
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

pub fn remember(kind: Kind, id: &str, value: Value) {
    let mut c = cache().lock().unwrap_or_else(|p| p.into_inner());
    c.insert(kind, id, value, CAPACITY);
}

pub fn recall(kind: Kind, id: &str) -> Option<Value> {
    let c = cache().lock().unwrap_or_else(|p| p.into_inner());
    c.get(kind, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_by_kind_and_id() {
        let id = format!("replay-test-{}", uuid::Uuid::new_v4());
        remember(Kind::GeminiSignature, &id, Value::from("sig"));
        assert_eq!(recall(Kind::GeminiSignature, &id), Some(Value::from("sig")));
        assert_eq!(recall(Kind::AnthropicThinking, &id), None);
        remember(Kind::GeminiSignature, &id, Value::from("sig2"));
        assert_eq!(
            recall(Kind::GeminiSignature, &id),
            Some(Value::from("sig2"))
        );
    }

    #[test]
    fn forgets_the_oldest_beyond_capacity() {
        let mut c = Cache::default();
        for i in 0..5 {
            c.insert(Kind::AnthropicThinking, &i.to_string(), Value::from(i), 3);
        }
        // Overwriting does not count twice.
        c.insert(Kind::AnthropicThinking, "4", Value::from(40), 3);
        assert_eq!(c.get(Kind::AnthropicThinking, "0"), None);
        assert_eq!(c.get(Kind::AnthropicThinking, "1"), None);
        assert_eq!(c.get(Kind::AnthropicThinking, "2"), Some(Value::from(2)));
        assert_eq!(c.get(Kind::AnthropicThinking, "4"), Some(Value::from(40)));
        assert_eq!((c.map.len(), c.order.len()), (3, 3));
    }
}
