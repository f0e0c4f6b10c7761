//! The `/__mock/*` control API as a non-Rust tool would use it: queue steps as JSON,
//! watch them answer, read the recorded requests, reset, set the model list.

mod common;

use common::{answer_text, client, mock, request};
use pincer_mockllm::{Fault, MockApi, Reply, Step};
use serde_json::{Value, json};

#[tokio::test]
async fn steps_posted_as_json_answer_requests_and_requests_read_back() {
    let m = mock().await;
    let c = client();
    let base = format!("http://{}/__mock", m.addr());
    let steps = json!([
        {"model": "gpt-4o", "reply": {"text": "hi", "toolCalls": [{"name": "write", "arguments": {"path": "a"}}]}},
        {"apiKey": "sk-b", "fault": {"status": 429, "retryAfter": 2}},
        {"fault": {"truncate": 3}},
    ]);
    let resp = c
        .post(format!("{base}/steps"))
        .json(&steps)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"queued": 3, "pending": 3})
    );
    assert_eq!(
        m.pending(),
        [
            Step::reply(Reply::text("hi").with_tool_call("write", json!({"path": "a"})))
                .for_model("gpt-4o"),
            Step::fault(Fault::Status {
                code: 429,
                retry_after_secs: Some(2),
                body: None
            })
            .for_key("sk-b"),
            Step::fault(Fault::Truncate { events: 3 }),
        ]
    );
    let listed: Value = c
        .get(format!("{base}/steps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, steps, "GET returns the same JSON");

    let r = request(
        &c,
        &m,
        MockApi::Anthropic,
        "claude",
        Some("sk-b"),
        false,
        "q",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    let r = request(&c, &m, MockApi::OpenAi, "gpt-4o", Some("sk-a"), false, "q")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "hi");
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "write"
    );

    let recorded: Value = c
        .get(format!("{base}/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let recorded = recorded.as_array().unwrap();
    assert_eq!(recorded.len(), 2, "control requests are not recorded");
    assert_eq!(recorded[0]["api"], "anthropic");
    assert_eq!(recorded[0]["apiKey"], "sk-b");
    assert_eq!(recorded[0]["path"], "/v1/messages");
    assert_eq!(recorded[1]["api"], "openai");
    assert_eq!(recorded[1]["model"], "gpt-4o");
    assert_eq!(recorded[1]["stream"], false);
    assert_eq!(recorded[1]["body"]["messages"][0]["content"], "q");
    assert!(
        recorded[1]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h[0] == "authorization")
    );
    // the same records, typed
    let typed: Vec<pincer_mockllm::RecordedRequest> =
        serde_json::from_value(Value::Array(recorded.clone())).unwrap();
    assert_eq!(typed, m.requests());

    let r = c.post(format!("{base}/reset")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(m.requests().is_empty());
    assert!(m.pending().is_empty());
}

#[tokio::test]
async fn bad_steps_are_refused_with_where_and_what() {
    let m = mock().await;
    let c = client();
    let url = format!("http://{}/__mock/steps", m.addr());
    let r = c
        .post(&url)
        .json(&json!([{"reply": "ok"}, {"fault": "stal"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e = r.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        e.starts_with("steps[1].fault: unknown fault \"stal\""),
        "{e}"
    );
    assert!(
        m.pending().is_empty(),
        "nothing queued from a refused batch"
    );

    let r = c.post(&url).body("[{").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("not JSON"));

    // one object is one step
    let r = c
        .post(&url)
        .json(&json!({"reply": "single"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = request(&c, &m, MockApi::Gemini, "g", None, true, "q")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(answer_text(MockApi::Gemini, true, &body), "single");
}

#[tokio::test]
async fn model_set_through_control_api() {
    let m = mock().await;
    let c = client();
    let url = format!("http://{}/__mock/models", m.addr());
    let r = c
        .post(&url)
        .json(&json!(["llama3.2:latest"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = c.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(v, json!({"models": ["llama3.2:latest"]}));
    let tags: Value = c
        .get(format!("http://{}/api/tags", m.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["models"][0]["name"], "llama3.2:latest");
    let r = c
        .post(&url)
        .json(&json!({"not": "a list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn reset_from_rust_and_default_reply_for_every_api() {
    let m = mock().await;
    let c = client();
    m.push(Step::text("queued"));
    let _ = request(&c, &m, MockApi::OpenAi, "m", None, false, "x")
        .send()
        .await
        .unwrap();
    m.push(Step::text("left over"));
    m.reset();
    assert!(m.requests().is_empty());
    assert!(m.pending().is_empty());
    for api in common::APIS {
        for stream in [false, true] {
            let body = request(&c, &m, api, "m", None, stream, "how are you?")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert_eq!(
                answer_text(api, stream, &body),
                "mock reply to: how are you?",
                "{api:?} stream={stream}"
            );
        }
    }
    m.shutdown().await;
}
