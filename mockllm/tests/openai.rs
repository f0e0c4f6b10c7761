//! OpenAI chat completions on the wire: SSE chunks, reasoning deltas, fragmented tool-call
//! arguments, usage, the non-streamed object, model lists (OpenAI and Ollama), validation.

mod common;

use common::{client, mock, parse_sse, user_says};
use pincer_mockllm::{MockApi, Reply, Step};
use serde_json::{Value, json};

async fn chat(m: &pincer_mockllm::MockLlm, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/chat/completions", m.base_url(MockApi::OpenAi)))
        .bearer_auth("sk-test")
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn stream_body(text: &str) -> Value {
    json!({
        "model": "gpt-4o",
        "messages": user_says(text),
        "stream": true,
        "stream_options": {"include_usage": true},
    })
}

#[tokio::test]
async fn streamed_text_arrives_as_content_and_reasoning_deltas() {
    let m = mock().await;
    let text = "Hello, streaming world!";
    m.push(Step::reply(
        Reply::text(text)
            .with_thinking("let me think")
            .with_usage(12, 7, 4),
    ));
    let resp = chat(&m, stream_body("hi")).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = parse_sse(&resp.text().await.unwrap());
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "gpt-4o");
        assert_eq!(c["id"], chunks[0]["id"]);
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");

    let deltas = |field: &str| -> Vec<String> {
        chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"][field].as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let content = deltas("content");
    assert_eq!(content.concat(), text);
    assert_eq!(
        content.len(),
        text.len().div_ceil(8),
        "8-character deltas by default"
    );
    assert!(content.iter().all(|d| d.chars().count() <= 8));
    assert_eq!(deltas("reasoning_content").concat(), "let me think");

    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], 12);
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 7);
    assert_eq!(
        usage_chunk["usage"]["prompt_tokens_details"]["cached_tokens"],
        4
    );

    let recorded = m.requests();
    assert_eq!(recorded.len(), 1);
    let r = &recorded[0];
    assert_eq!(r.api, MockApi::OpenAi);
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.model, "gpt-4o");
    assert_eq!(r.api_key.as_deref(), Some("sk-test"));
    assert!(r.stream);
    assert_eq!(r.header("Authorization"), Some("Bearer sk-test"));
    assert_eq!(r.body["messages"][0]["content"], "hi");
}

#[tokio::test]
async fn usage_chunk_only_when_asked_for() {
    let m = mock().await;
    let mut body = stream_body("hi");
    body.as_object_mut().unwrap().remove("stream_options");
    let events = parse_sse(&chat(&m, body).await.text().await.unwrap());
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

#[tokio::test]
async fn tool_call_arguments_are_fragmented_and_reassemble() {
    let m = mock().await;
    let args = json!({"path": "notes/today.md", "content": "buy milk\nfix the bike"});
    m.push(Step::reply(
        Reply::text("Writing it.")
            .with_tool_call("write", args.clone())
            .with_tool_call("read", json!({"path": "x"})),
    ));
    let events = parse_sse(&chat(&m, stream_body("save")).await.text().await.unwrap());
    let calls: Vec<Value> = events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .filter_map(|e| e.json()["choices"][0]["delta"].get("tool_calls").cloned())
        .map(|tc| tc[0].clone())
        .collect();
    let of = |index: u64| -> Vec<&Value> { calls.iter().filter(|c| c["index"] == index).collect() };

    let write = of(0);
    assert!(
        write.len() > 3,
        "arguments come in several chunks: {write:?}"
    );
    assert!(write[0]["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(write[0]["type"], "function");
    assert_eq!(write[0]["function"]["name"], "write");
    for later in &write[1..] {
        let keys: Vec<&String> = later.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["function", "index"],
            "later chunks carry only index + fragment"
        );
        assert!(later["function"].get("name").is_none());
    }
    let joined: String = write
        .iter()
        .map(|c| c["function"]["arguments"].as_str().unwrap())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&joined).unwrap(), args);

    let read = of(1);
    assert_eq!(read[0]["function"]["name"], "read");
    assert_ne!(read[0]["id"], write[0]["id"]);

    let finish = events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| e.json())
        .find_map(|c| c["choices"][0]["finish_reason"].as_str().map(str::to_owned));
    assert_eq!(finish.as_deref(), Some("tool_calls"));
}

#[tokio::test]
async fn non_streamed_completion_object() {
    let m = mock().await;
    m.push(Step::reply(
        Reply::text("partial answer")
            .with_thinking("hmm")
            .with_usage(30, 10, 0)
            .with_max_tokens(),
    ));
    m.push(Step::tool_call("write", json!({"a": 1})));
    let body = json!({"model": "gpt-4o", "messages": user_says("q")});
    let v: Value = chat(&m, body.clone()).await.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4o");
    let choice = &v["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "partial answer");
    assert_eq!(choice["message"]["reasoning_content"], "hmm");
    assert_eq!(choice["finish_reason"], "length");
    assert_eq!(v["usage"]["prompt_tokens"], 30);
    assert_eq!(v["usage"]["total_tokens"], 40);

    let v: Value = chat(&m, body).await.json().await.unwrap();
    let msg = &v["choices"][0]["message"];
    assert_eq!(msg["content"], Value::Null);
    assert_eq!(msg["tool_calls"][0]["function"]["name"], "write");
    let args = msg["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(args).unwrap(),
        json!({"a": 1})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert!(!m.requests()[1].stream);
}

#[tokio::test]
async fn default_reply_echoes_the_last_user_message() {
    let m = mock().await;
    let body = json!({"model": "m", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "what time is it?"},
    ]});
    let v: Value = chat(&m, body).await.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "mock reply to: what time is it?"
    );
}

#[tokio::test]
async fn requests_are_kept_only_while_recording_is_on() {
    let m = mock().await;
    let ask = |text: &str| json!({"model": "m", "messages": user_says(text)});
    let v: Value = chat(&m, ask("one")).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "mock reply to: one");
    m.set_recording(false);
    // Still answered, just not kept.
    let v: Value = chat(&m, ask("two")).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "mock reply to: two");
    m.set_recording(true);
    chat(&m, ask("three")).await;
    let kept: Vec<Value> = m
        .requests()
        .iter()
        .map(|r| r.body["messages"][0]["content"].clone())
        .collect();
    assert_eq!(kept, [json!("one"), json!("three")]);
}

#[tokio::test]
async fn model_lists_for_openai_and_ollama() {
    let m = mock().await;
    let c = client();
    let addr = m.addr();
    let v: Value = c
        .get(format!("http://{addr}/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v,
        json!({"object": "list", "data": [{"id": "mock-model", "object": "model", "created": 1_700_000_000u64, "owned_by": "mock"}]})
    );

    m.set_models(vec!["llama3.2:latest".into(), "qwen2.5:7b".into()]);
    let v: Value = c
        .get(format!("http://{addr}/api/tags"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["llama3.2:latest", "qwen2.5:7b"]);
    assert_eq!(v["models"][0]["model"], "llama3.2:latest");
    assert_eq!(v["models"][0]["details"]["format"], "gguf");
    let paths: Vec<String> = m.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/v1/models", "/api/tags"]);
}

#[tokio::test]
async fn invalid_requests_get_openai_errors() {
    let m = mock().await;
    let resp = chat(&m, json!({"messages": user_says("x")})).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["message"], "you must provide a model parameter");

    let resp = client()
        .post(format!("{}/chat/completions", m.base_url(MockApi::OpenAi)))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let recorded = m.requests();
    assert_eq!(recorded.len(), 2, "rejected requests are recorded too");
    assert_eq!(recorded[1].body, json!("{not json"));

    let resp = client()
        .get(format!("http://{}/v2/unknown", m.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}
