//! Anthropic messages on the wire: named SSE events, thinking / text / tool_use blocks,
//! input_json_delta fragments, usage split between message_start and message_delta,
//! the non-streamed message, errors, the model list.

mod common;

use common::{client, mock, parse_sse, user_says};
use pincer_mockllm::{MockApi, MockLlm, Reply, Step};
use serde_json::{Value, json};

async fn messages(m: &MockLlm, stream: bool) -> reqwest::Response {
    client()
        .post(format!("{}/v1/messages", m.base_url(MockApi::Anthropic)))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "messages": user_says("hello"),
            "stream": stream,
        }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn streamed_thinking_and_text_follow_the_event_protocol() {
    let m = mock().await;
    m.push(Step::reply(
        Reply::text("Bonjour tout le monde")
            .with_thinking("they want French")
            .with_usage(100, 20, 60),
    ));
    let resp = messages(&m, true).await;
    assert_eq!(resp.status(), 200);
    let events = parse_sse(&resp.text().await.unwrap());
    for e in &events {
        assert_eq!(
            Some(e.json()["type"].as_str().unwrap()),
            e.event.as_deref(),
            "event name matches data.type"
        );
    }
    let names: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(
        &names[..3],
        ["message_start", "ping", "content_block_start"]
    );
    assert_eq!(&names[names.len() - 2..], ["message_delta", "message_stop"]);

    let start = events[0].json();
    assert_eq!(start["message"]["model"], "claude-sonnet-4-5");
    assert!(start["message"]["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        start["message"]["usage"]["input_tokens"], 40,
        "uncached input only"
    );
    assert_eq!(start["message"]["usage"]["cache_read_input_tokens"], 60);

    let blocks: Vec<Value> = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_start"))
        .map(|e| e.json())
        .collect();
    assert_eq!(blocks[0]["content_block"]["type"], "thinking");
    assert_eq!(blocks[0]["index"], 0);
    assert_eq!(blocks[1]["content_block"]["type"], "text");
    assert_eq!(blocks[1]["index"], 1);

    let deltas: Vec<Value> = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_delta"))
        .map(|e| e.json())
        .collect();
    let joined = |kind: &str, field: &str| -> String {
        deltas
            .iter()
            .filter(|d| d["delta"]["type"] == kind)
            .map(|d| d["delta"][field].as_str().unwrap())
            .collect()
    };
    assert_eq!(joined("thinking_delta", "thinking"), "they want French");
    assert_eq!(joined("text_delta", "text"), "Bonjour tout le monde");
    assert!(
        deltas
            .iter()
            .any(|d| d["delta"]["type"] == "signature_delta")
    );
    assert_eq!(
        deltas
            .iter()
            .filter(|d| d["delta"]["type"] == "text_delta")
            .count(),
        3,
        "21 characters in 8-character deltas"
    );

    let delta = events[events.len() - 2].json();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 20);

    let r = &m.requests()[0];
    assert_eq!(r.api, MockApi::Anthropic);
    assert_eq!(r.api_key.as_deref(), Some("sk-ant-test"));
    assert_eq!(r.model, "claude-sonnet-4-5");
    assert!(r.stream);
}

#[tokio::test]
async fn streamed_tool_use_input_arrives_as_partial_json() {
    let m = mock().await;
    let args = json!({"command": "ls -la /tmp", "timeout": 30});
    m.push(Step::tool_call("exec", args.clone()));
    let events = parse_sse(&messages(&m, true).await.text().await.unwrap());
    let tool_start = events
        .iter()
        .map(|e| e.json())
        .find(|v| v["content_block"]["type"] == "tool_use")
        .unwrap();
    assert!(
        tool_start["content_block"]["id"]
            .as_str()
            .unwrap()
            .starts_with("toolu_")
    );
    assert_eq!(tool_start["content_block"]["name"], "exec");
    assert_eq!(tool_start["content_block"]["input"], json!({}));
    let index = &tool_start["index"];
    let partials: Vec<String> = events
        .iter()
        .map(|e| e.json())
        .filter(|v| v["delta"]["type"] == "input_json_delta" && &v["index"] == index)
        .map(|v| v["delta"]["partial_json"].as_str().unwrap().to_owned())
        .collect();
    assert!(partials.len() > 3);
    assert_eq!(
        serde_json::from_str::<Value>(&partials.concat()).unwrap(),
        args
    );
    let stop = events
        .iter()
        .map(|e| e.json())
        .find(|v| v["type"] == "message_delta")
        .unwrap();
    assert_eq!(stop["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn non_streamed_message_object() {
    let m = mock().await;
    m.push(Step::reply(
        Reply::text("Let me check.")
            .with_thinking("plan")
            .with_tool_call("read", json!({"path": "a"}))
            .with_usage(50, 9, 0),
    ));
    m.push(Step::reply(Reply::text("cut").with_max_tokens()));
    let v: Value = messages(&m, false).await.json().await.unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    let kinds: Vec<&str> = v["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["thinking", "text", "tool_use"]);
    assert_eq!(v["content"][2]["input"], json!({"path": "a"}));
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 50, "output_tokens": 9, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
    );

    let v: Value = messages(&m, false).await.json().await.unwrap();
    assert_eq!(v["stop_reason"], "max_tokens");
}

#[tokio::test]
async fn errors_use_anthropic_shapes() {
    let m = mock().await;
    m.push(Step::status(529));
    let resp = messages(&m, true).await;
    assert_eq!(resp.status(), 529);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "overloaded_error");
    assert_eq!(v["error"]["message"], "Overloaded");

    // the real API requires anthropic-version
    let resp = client()
        .post(format!("{}/v1/messages", m.base_url(MockApi::Anthropic)))
        .json(&json!({"model": "c", "max_tokens": 1, "messages": user_says("x")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(
        v["error"]["message"],
        "anthropic-version: header is required"
    );

    let resp = client()
        .post(format!("{}/v1/messages", m.base_url(MockApi::Anthropic)))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "c", "messages": user_says("x")}))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["message"], "max_tokens: Field required");
}

#[tokio::test]
async fn model_list_in_anthropic_shape() {
    let m = mock().await;
    m.set_models(vec!["claude-a".into(), "claude-b".into()]);
    let v: Value = client()
        .get(format!("{}/v1/models", m.base_url(MockApi::Anthropic)))
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"][1]["id"], "claude-b");
    assert_eq!(v["data"][0]["type"], "model");
    assert_eq!(v["has_more"], false);
    assert_eq!(v["first_id"], "claude-a");
    assert_eq!(m.requests()[0].api, MockApi::Anthropic);
    assert_eq!(m.requests()[0].api_key.as_deref(), Some("k"));
}
