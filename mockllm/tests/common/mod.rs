//! Helpers shared by the wire-level tests: a client, request builders per API, and an SSE
//! parser written from the spec (so the mock's framing is checked, not assumed).

#![allow(dead_code)] // each test binary uses its own subset

use pincer_mockllm::{MockApi, MockLlm};
use serde_json::{Value, json};

pub async fn mock() -> MockLlm {
    MockLlm::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind 127.0.0.1:0")
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().expect("reqwest client")
}

/// One SSE event: its `event:` name, if any, and its `data:` lines joined.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    pub event: Option<String>,
    pub data: String,
}

impl Sse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {}", self.data))
    }
}

/// Parses a whole `text/event-stream` body; lines end in `\n`, `\r\n` or `\r`.
pub fn parse_sse(body: &str) -> Vec<Sse> {
    let normalized = body.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = Vec::new();
    let (mut event, mut data): (Option<String>, Vec<String>) = (None, Vec::new());
    for line in normalized.split('\n') {
        if line.is_empty() {
            if !data.is_empty() {
                out.push(Sse {
                    event: event.take(),
                    data: data.join("\n"),
                });
            }
            event = None;
            data.clear();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
        } else if let Some(v) = line.strip_prefix("event:") {
            event = Some(v.trim().to_owned());
        }
    }
    assert!(data.is_empty(), "stream ended inside an event: {data:?}");
    out
}

pub fn user_says(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

/// A request to the mock in `api`'s format, with `key` where that API puts it.
pub fn request(
    c: &reqwest::Client,
    m: &MockLlm,
    api: MockApi,
    model: &str,
    key: Option<&str>,
    stream: bool,
    text: &str,
) -> reqwest::RequestBuilder {
    let base = m.base_url(api);
    let rb = match api {
        MockApi::OpenAi => c.post(format!("{base}/chat/completions")).json(&json!({
            "model": model,
            "messages": user_says(text),
            "stream": stream,
            "stream_options": if stream { json!({"include_usage": true}) } else { Value::Null },
        })),
        MockApi::Anthropic => c
            .post(format!("{base}/v1/messages"))
            .header("anthropic-version", "2023-06-01")
            .json(&json!({
                "model": model,
                "max_tokens": 1024,
                "messages": user_says(text),
                "stream": stream,
            })),
        MockApi::Gemini => {
            let method = if stream {
                "streamGenerateContent?alt=sse"
            } else {
                "generateContent"
            };
            c.post(format!("{base}/models/{model}:{method}"))
                .json(&json!({"contents": [{"role": "user", "parts": [{"text": text}]}]}))
        }
    };
    match (api, key) {
        (_, None) => rb,
        (MockApi::OpenAi, Some(k)) => rb.bearer_auth(k),
        (MockApi::Anthropic, Some(k)) => rb.header("x-api-key", k),
        (MockApi::Gemini, Some(k)) => rb.header("x-goog-api-key", k),
    }
}

pub const APIS: [MockApi; 3] = [MockApi::OpenAi, MockApi::Anthropic, MockApi::Gemini];

/// The visible text of a whole answer, streamed or not, in `api`'s format.
pub fn answer_text(api: MockApi, stream: bool, body: &str) -> String {
    if !stream {
        let v: Value = serde_json::from_str(body).unwrap();
        return match api {
            MockApi::OpenAi => v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_owned(),
            MockApi::Anthropic => v["content"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|b| b["type"] == "text")
                .map(|b| b["text"].as_str().unwrap())
                .collect(),
            MockApi::Gemini => gemini_text(&v),
        };
    }
    parse_sse(body)
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| {
            let v = e.json();
            match api {
                MockApi::OpenAi => v["choices"][0]["delta"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                MockApi::Anthropic if v["delta"]["type"] == "text_delta" => {
                    v["delta"]["text"].as_str().unwrap().to_owned()
                }
                MockApi::Anthropic => String::new(),
                MockApi::Gemini => gemini_text(&v),
            }
        })
        .collect()
}

/// The non-thought text parts of one Gemini response.
pub fn gemini_text(v: &Value) -> String {
    v["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["thought"] != true)
        .filter_map(|p| p["text"].as_str())
        .collect()
}
