//! What the mock reads of a request body: the model, whether to stream, the fields whose
//! absence the real APIs reject, and the text of the last user message.
//!
//! Read in one pass without building a tree of the body: a gateway's request carries the
//! whole conversation and its tool schemas, and in benches the mock shares the machine
//! with what is measured (a `serde_json::Value` of every request was about 5 % of a
//! channels bench's CPU). The recorded copy of a request (tests) is still a full `Value`.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Visitor methods answering `$v` for JSON's null, booleans and numbers.
macro_rules! null_bools_and_numbers_are {
    ($v:expr) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($v)
        }
    };
}

/// Visitor methods answering `$v` for every JSON scalar.
macro_rules! scalars_are {
    ($v:expr) => {
        null_bools_and_numbers_are!($v);
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($v)
        }
    };
}

/// `Deserialize` for `$ty` through `$visitor`, which takes any JSON value.
macro_rules! any_json {
    ($ty:ty, $visitor:ident) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any($visitor)
            }
        }

        struct $visitor;
    };
}

/// A visitor's `expecting`, for visitors that take any JSON value.
macro_rules! expects_any {
    () => {
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
    };
}

/// A request body that is a JSON object, as far as the mock looks into it.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Request {
    model: Option<Value>,
    stream: Option<Value>,
    max_tokens: Option<Value>,
    stream_options: Option<Value>,
    messages: Option<Turns>,
    contents: Option<Turns>,
}

impl Request {
    /// `None` when the body is not a JSON object.
    pub(crate) fn parse(raw: &[u8]) -> Option<Request> {
        // serde would also take an array of six values for the struct.
        if raw.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return None;
        }
        match serde_json::from_slice::<Request>(raw) {
            Ok(r) => Some(r),
            // Valid JSON the single pass refuses (a key given twice): read it as a tree,
            // where the last value of a key wins, as it does for the real APIs' parsers.
            Err(_) => serde_json::from_slice::<Value>(raw)
                .ok()
                .filter(Value::is_object)
                .and_then(|v| Request::deserialize(&v).ok()),
        }
    }

    /// Whether `field` (one the mock knows) is absent or null.
    pub(crate) fn missing(&self, field: &str) -> bool {
        match field {
            "model" => self.model.is_none(),
            "max_tokens" => self.max_tokens.is_none(),
            "messages" => self.messages.is_none(),
            "contents" => self.contents.is_none(),
            _ => true,
        }
    }

    pub(crate) fn model(&self) -> Option<&str> {
        self.model.as_ref().and_then(Value::as_str)
    }

    pub(crate) fn stream(&self) -> bool {
        self.stream
            .as_ref()
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// OpenAI's `stream_options.include_usage`.
    pub(crate) fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The text of the last user message that has any, from OpenAI/Anthropic `messages`
    /// or Gemini `contents` (the first of them that is an array); text parts of one
    /// message are joined with newlines.
    pub(crate) fn last_user_text(&self) -> &str {
        [&self.messages, &self.contents]
            .into_iter()
            .flatten()
            .find(|t| t.array)
            .map_or("", |t| t.last_user_text.as_str())
    }
}

/// A `messages` / `contents` value (not null): whether it is an array, and the text of its
/// last user entry with text (a missing or non-string role counts as the user's).
#[derive(Debug, Default)]
struct Turns {
    array: bool,
    last_user_text: String,
}

any_json!(Turns, TurnsVisitor);

impl<'de> Visitor<'de> for TurnsVisitor {
    type Value = Turns;
    expects_any!();

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Turns, A::Error> {
        let mut out = Turns {
            array: true,
            last_user_text: String::new(),
        };
        while let Some(turn) = seq.next_element::<Turn>()? {
            if turn.from_user && !turn.text.is_empty() {
                out.last_user_text = turn.text;
            }
        }
        Ok(out)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Turns, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Turns::default())
    }

    scalars_are!(Turns::default());
}

/// One entry of `messages` / `contents`.
struct Turn {
    from_user: bool,
    text: String,
}

any_json!(Turn, TurnVisitor);

impl<'de> Visitor<'de> for TurnVisitor {
    type Value = Turn;
    expects_any!();

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Turn, A::Error> {
        let (mut role, mut content, mut parts) = (None::<Value>, Text::Other, Text::Other);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "role" => role = Some(map.next_value()?),
                "content" => content = map.next_value()?,
                "parts" => parts = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let text = match (content, parts) {
            (Text::Str(s), _) => s,
            (Text::Parts(p), _) | (_, Text::Parts(p)) => p,
            _ => String::new(),
        };
        Ok(Turn {
            from_user: role.as_ref().and_then(Value::as_str).unwrap_or("user") == "user",
            text,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Turn, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Turn::other())
    }

    scalars_are!(Turn::other());
}

impl Turn {
    /// An entry that is not an object: no role (the user's), no text.
    fn other() -> Turn {
        Turn {
            from_user: true,
            text: String::new(),
        }
    }
}

/// A `content` / `parts` value: a string, an array (its text parts joined), or anything else.
enum Text {
    Str(String),
    Parts(String),
    Other,
}

any_json!(Text, TextVisitor);

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text;
    expects_any!();

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Text, E> {
        Ok(Text::Str(s.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text, A::Error> {
        let mut joined = String::new();
        let mut first = true;
        while let Some(part) = seq.next_element::<Part>()? {
            if let Some(t) = part.0 {
                if !first {
                    joined.push('\n');
                }
                joined.push_str(&t);
                first = false;
            }
        }
        Ok(Text::Parts(joined))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Text::Other)
    }

    null_bools_and_numbers_are!(Text::Other);
}

/// One part of a message: its text when it is a text part (`type` absent or `"text"`,
/// `text` a string).
struct Part(Option<String>);

any_json!(Part, PartVisitor);

impl<'de> Visitor<'de> for PartVisitor {
    type Value = Part;
    expects_any!();

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Part, A::Error> {
        let (mut kind, mut text) = (None::<Value>, None::<Value>);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "type" => kind = Some(map.next_value()?),
                "text" => text = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let is_text = kind
            .as_ref()
            .and_then(Value::as_str)
            .is_none_or(|t| t == "text");
        Ok(Part(match text {
            Some(Value::String(s)) if is_text => Some(s),
            _ => None,
        }))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Part, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Part(None))
    }

    scalars_are!(Part(None));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: &Value) -> Request {
        Request::parse(v.to_string().as_bytes()).expect("an object")
    }

    #[test]
    fn the_last_user_text_of_every_api_shape() {
        let openai = json!({"messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "image_url", "image_url": {}}]},
        ]});
        assert_eq!(parse(&openai).last_user_text(), "second");
        let anthropic = json!({"messages": [
            {"role": "user", "content": "question"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "r"}]},
        ]});
        assert_eq!(parse(&anthropic).last_user_text(), "question");
        let gemini =
            json!({"contents": [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}]});
        assert_eq!(parse(&gemini).last_user_text(), "a\nb");
        assert_eq!(parse(&json!({})).last_user_text(), "");
    }

    #[test]
    fn odd_shapes_read_as_the_real_apis_would_see_them() {
        // Entries that are not objects, roles that are not strings, parts that are not
        // objects, a `messages` that is not an array beside a `contents` that is.
        let body = json!({
            "messages": {"not": "an array"},
            "contents": [
                {"parts": [{"text": "no role is the user's"}]},
                "a string entry",
                [1, 2],
                {"role": 7, "parts": ["x", {"text": 5}, {"type": "text", "text": "numbered role"}]},
                {"role": "model", "parts": [{"text": "the model's"}]},
                {"role": "user", "content": null, "parts": [{"text": "parts when content is null"}]},
                {"role": "user", "content": ""},
            ],
        });
        let r = parse(&body);
        assert_eq!(r.last_user_text(), "parts when content is null");
        assert!(!r.missing("messages") && !r.missing("contents"));
    }

    #[test]
    fn missing_fields_model_stream_and_usage() {
        let r = parse(&json!({"model": "m", "stream": true, "max_tokens": null,
            "stream_options": {"include_usage": true}, "messages": null}));
        assert_eq!(r.model(), Some("m"));
        assert!(r.stream() && r.include_usage());
        assert!(r.missing("max_tokens") && r.missing("messages") && r.missing("contents"));
        assert!(!r.missing("model"));
        let r = parse(&json!({"model": 5, "stream": "yes"}));
        assert_eq!(r.model(), None);
        assert!(!r.missing("model") && !r.stream() && !r.include_usage());
    }

    #[test]
    fn a_key_given_twice_keeps_its_last_value_and_non_objects_are_refused() {
        let r = Request::parse(br#"{"model": "first", "model": "second", "messages": []}"#)
            .expect("valid JSON");
        assert_eq!(r.model(), Some("second"));
        assert!(Request::parse(b"[1, 2]").is_none());
        assert!(Request::parse(br#"["m", true, 1, null, [], []]"#).is_none());
        assert!(Request::parse(b" \n{}").is_some());
        assert!(Request::parse(b"\"text\"").is_none());
        assert!(Request::parse(b"{\"model\": ").is_none());
    }
}
