//! Gemini generateContent on the wire: the colon route, `alt=sse` with CRLF framing,
//! thought parts, whole functionCall parts, usageMetadata, the JSON-array stream,
//! `?key=`, errors, the model list.

mod common;

use common::{client, gemini_text, mock, parse_sse};
use pincer_mockllm::{MockApi, MockLlm, Reply, Step};
use serde_json::{Value, json};

fn body() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "hi there"}]}]})
}

async fn call(m: &MockLlm, model: &str, method: &str) -> reqwest::Response {
    client()
        .post(format!(
            "{}/models/{model}:{method}",
            m.base_url(MockApi::Gemini)
        ))
        .header("x-goog-api-key", "AIza-test")
        .json(&body())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn sse_stream_has_thought_and_text_parts_and_final_usage() {
    let m = mock().await;
    m.push(Step::reply(
        Reply::text("The answer is 42.")
            .with_thinking("deep thought")
            .with_usage(20, 8, 5),
    ));
    let resp = call(&m, "gemini-2.5-flash", "streamGenerateContent?alt=sse").await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let raw = resp.text().await.unwrap();
    assert!(raw.contains("\r\n\r\n"), "Google frames SSE with CRLF");
    let responses: Vec<Value> = parse_sse(&raw).iter().map(|e| e.json()).collect();
    let thoughts: String = responses
        .iter()
        .flat_map(|r| {
            r["candidates"][0]["content"]["parts"]
                .as_array()
                .unwrap()
                .clone()
        })
        .filter(|p| p["thought"] == true)
        .map(|p| p["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(thoughts, "deep thought");
    let text: String = responses.iter().map(gemini_text).collect();
    assert_eq!(text, "The answer is 42.");
    for r in &responses[..responses.len() - 1] {
        assert!(r["candidates"][0].get("finishReason").is_none());
        assert_eq!(r["candidates"][0]["content"]["role"], "model");
    }
    let last = responses.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        last["usageMetadata"],
        json!({"promptTokenCount": 20, "candidatesTokenCount": 8, "totalTokenCount": 28, "cachedContentTokenCount": 5})
    );
    let r = &m.requests()[0];
    assert_eq!(r.api, MockApi::Gemini);
    assert_eq!(r.model, "gemini-2.5-flash");
    assert_eq!(
        r.path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    );
    assert_eq!(r.api_key.as_deref(), Some("AIza-test"));
    assert!(r.stream);
}

#[tokio::test]
async fn function_calls_arrive_whole() {
    let m = mock().await;
    let args = json!({"query": "weather in Paris", "units": "metric"});
    m.push(Step::tool_call("search", args.clone()));
    let raw = call(&m, "gemini-2.5-pro", "streamGenerateContent?alt=sse")
        .await
        .text()
        .await
        .unwrap();
    let calls: Vec<Value> = parse_sse(&raw)
        .iter()
        .flat_map(|e| {
            e.json()["candidates"][0]["content"]["parts"]
                .as_array()
                .unwrap()
                .clone()
        })
        .filter_map(|p| p.get("functionCall").cloned())
        .collect();
    assert_eq!(calls, [json!({"name": "search", "args": args})]);
}

#[tokio::test]
async fn generate_content_with_key_in_query() {
    let m = mock().await;
    m.push(Step::reply(Reply::text("short").with_max_tokens()));
    let resp = client()
        .post(format!(
            "{}/models/gemini-2.0-flash:generateContent?key=AIza-q",
            m.base_url(MockApi::Gemini)
        ))
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(gemini_text(&v), "short");
    assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS");
    assert!(v["usageMetadata"]["promptTokenCount"].as_u64().unwrap() > 0);
    let r = &m.requests()[0];
    assert_eq!(r.api_key.as_deref(), Some("AIza-q"));
    assert_eq!(r.model, "gemini-2.0-flash");
    assert!(!r.stream);
}

#[tokio::test]
async fn stream_without_alt_sse_is_a_json_array() {
    let m = mock().await;
    m.push(Step::text("array framed reply"));
    let resp = call(&m, "gemini-2.5-flash", "streamGenerateContent").await;
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let v: Vec<Value> = resp.json().await.unwrap();
    assert!(v.len() > 1);
    assert_eq!(
        v.iter().map(gemini_text).collect::<String>(),
        "array framed reply"
    );
}

#[tokio::test]
async fn errors_use_google_status_shapes() {
    let m = mock().await;
    m.push(Step::status(429));
    let resp = call(&m, "gemini-2.5-flash", "generateContent").await;
    assert_eq!(resp.status(), 429);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], 429);
    assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");

    let resp = call(&m, "gemini-2.5-flash", "countTokenz").await;
    assert_eq!(resp.status(), 404);
    let resp = client()
        .post(format!(
            "{}/models/g:generateContent",
            m.base_url(MockApi::Gemini)
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
}

#[tokio::test]
async fn model_list() {
    let m = mock().await;
    let v: Value = client()
        .get(format!("{}/models?key=k", m.base_url(MockApi::Gemini)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["models"][0]["name"], "models/mock-model");
    assert!(
        v["models"][0]["supportedGenerationMethods"]
            .as_array()
            .unwrap()
            .contains(&json!("streamGenerateContent"))
    );
    assert_eq!(m.requests()[0].api_key.as_deref(), Some("k"));
}
