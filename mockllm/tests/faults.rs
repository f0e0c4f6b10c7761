//! Faults on demand, for every API: HTTP errors with retry-after, resets, truncated and
//! invalid streams, stalls and slow streams under paused time, thinking rejections, and
//! steps that only match one key or model.

mod common;

use std::time::Duration;

use common::{APIS, answer_text, client, mock, parse_sse, request};
use futures_util::StreamExt;
use pincer_mockllm::{Fault, MockApi, Step};
use serde_json::Value;
use tokio::time::{Instant, timeout};

fn is_final(api: MockApi, data: &str) -> bool {
    match api {
        MockApi::OpenAi => data == "[DONE]",
        MockApi::Anthropic => data.contains("\"message_stop\""),
        MockApi::Gemini => data.contains("finishReason"),
    }
}

#[tokio::test]
async fn status_faults_carry_retry_after_and_the_api_error_shape() {
    let m = mock().await;
    let c = client();
    for api in APIS {
        m.push(Step::fault(Fault::Status {
            code: 429,
            retry_after_secs: Some(7),
            body: None,
        }));
        let resp = request(&c, &m, api, "m", Some("k"), true, "hi")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 429, "{api:?}");
        assert_eq!(resp.headers()["retry-after"], "7", "{api:?}");
        let v: Value = resp.json().await.unwrap();
        match api {
            MockApi::OpenAi => {
                assert_eq!(v["error"]["code"], "rate_limit_exceeded");
                assert!(v["error"]["message"].is_string());
            }
            MockApi::Anthropic => {
                assert_eq!(v["type"], "error");
                assert_eq!(v["error"]["type"], "rate_limit_error");
            }
            MockApi::Gemini => assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED"),
        }
    }
    // other statuses, and a custom body
    m.push(Step::status(402));
    m.push(Step::status(500));
    m.push(Step::fault(Fault::Status {
        code: 503,
        retry_after_secs: None,
        body: Some(serde_json::json!({"custom": true})),
    }));
    let send = || request(&c, &m, MockApi::OpenAi, "m", None, false, "x").send();
    let r = send().await.unwrap();
    assert_eq!(r.status(), 402);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "insufficient_quota"
    );
    let r = send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert!(r.headers().get("retry-after").is_none());
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "server_error"
    );
    let r = send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        serde_json::json!({"custom": true})
    );
}

#[tokio::test]
async fn reset_closes_the_connection_without_a_response() {
    let m = mock().await;
    let c = client();
    for api in APIS {
        for stream in [true, false] {
            m.push(Step::fault(Fault::Reset));
            let err = request(&c, &m, api, "m", None, stream, "hi")
                .send()
                .await
                .expect_err("no HTTP response");
            assert!(err.status().is_none(), "{api:?}: {err}");
            assert!(err.is_request() || err.is_connect(), "{api:?}: {err:?}");
        }
        // only that connection died: the server still answers
        let resp = request(&c, &m, api, "m", None, false, "after")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
}

#[tokio::test]
async fn truncate_ends_the_stream_before_the_final_event() {
    let m = mock().await;
    let c = client();
    for api in APIS {
        m.push(Step::fault(Fault::Truncate { events: 2 }));
        let resp = request(&c, &m, api, "m", None, true, "a fairly long question")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["connection"], "close");
        let events = parse_sse(&resp.text().await.unwrap());
        assert_eq!(events.len(), 2, "{api:?}");
        assert!(!events.iter().any(|e| is_final(api, &e.data)), "{api:?}");

        // asking for more events than there are still withholds the final one
        m.push(Step::fault(Fault::Truncate { events: 10_000 }));
        let body = request(&c, &m, api, "m", None, true, "q")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let events = parse_sse(&body);
        assert!(!events.is_empty());
        assert!(
            !events.iter().any(|e| is_final(api, &e.data)),
            "{api:?}: {body}"
        );
        let full = request(&c, &m, api, "m", None, true, "q")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            parse_sse(&full).len(),
            events.len() + 1,
            "{api:?}: exactly the final event is missing"
        );
        assert!(is_final(api, &parse_sse(&full).last().unwrap().data));

        m.push(Step::fault(Fault::Truncate { events: 1 }));
        let body = request(&c, &m, api, "m", None, false, "q")
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(!body.is_empty());
        assert!(serde_json::from_slice::<Value>(&body).is_err(), "{api:?}");
    }
}

#[tokio::test]
async fn invalid_json_spoils_one_event_or_the_body() {
    let m = mock().await;
    let c = client();
    for api in APIS {
        m.push(Step::fault(Fault::InvalidJson));
        let resp = request(&c, &m, api, "m", None, true, "q")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let events = parse_sse(&resp.text().await.unwrap());
        let bad: Vec<_> = events
            .iter()
            .filter(|e| e.data != "[DONE]" && serde_json::from_str::<Value>(&e.data).is_err())
            .collect();
        assert_eq!(bad.len(), 1, "{api:?}");
        assert!(
            is_final(api, &events.last().unwrap().data),
            "{api:?}: the rest is intact"
        );

        m.push(Step::fault(Fault::InvalidJson));
        let resp = request(&c, &m, api, "m", None, false, "q")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.bytes().await.unwrap();
        assert!(serde_json::from_slice::<Value>(&body).is_err(), "{api:?}");
    }
}

#[tokio::test]
async fn reject_thinking_uses_each_api_wording() {
    let m = mock().await;
    let c = client();
    for api in APIS {
        m.push(Step::fault(Fault::RejectThinking));
        let resp = request(&c, &m, api, "claude-3-5-haiku-20241022", None, true, "q")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{api:?}");
        let v: Value = resp.json().await.unwrap();
        match api {
            MockApi::OpenAi => {
                assert_eq!(v["error"]["param"], "reasoning_effort");
                assert_eq!(v["error"]["code"], "unsupported_parameter");
            }
            MockApi::Anthropic => {
                assert_eq!(v["error"]["type"], "invalid_request_error");
                assert_eq!(
                    v["error"]["message"],
                    "'claude-3-5-haiku-20241022' does not support thinking."
                );
            }
            MockApi::Gemini => {
                assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
                assert!(v["error"]["message"].as_str().unwrap().contains("thinking"));
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn stall_never_answers_and_shutdown_releases_the_connection() {
    let m = mock().await;
    let c = client();
    m.push(Step::fault(Fault::Stall));
    let start = Instant::now();
    let r = timeout(
        Duration::from_secs(3600),
        request(&c, &m, MockApi::OpenAi, "m", None, true, "q").send(),
    )
    .await;
    assert!(r.is_err(), "still no answer after an hour");
    assert!(start.elapsed() >= Duration::from_secs(3600));
    assert_eq!(m.requests().len(), 1, "the request was received");

    m.push(Step::fault(Fault::Stall));
    let pending = tokio::spawn(request(&c, &m, MockApi::Anthropic, "m", None, false, "q").send());
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!pending.is_finished());
    assert_eq!(m.requests().len(), 2);
    timeout(Duration::from_secs(1), m.shutdown())
        .await
        .expect("shutdown does not wait for stalled requests");
    let err = pending
        .await
        .unwrap()
        .expect_err("closed without an answer");
    assert!(err.status().is_none(), "{err}");
}

#[tokio::test(start_paused = true)]
async fn stall_after_streams_some_events_then_goes_quiet() {
    let m = mock().await;
    let c = client();
    for api in APIS {
        m.push(Step::fault(Fault::StallAfter { events: 2 }));
        let resp = request(&c, &m, api, "m", None, true, "tell me a long story")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.bytes_stream();
        let mut got = Vec::new();
        // an idle timeout of 30 s, as a provider client would use
        while let Ok(chunk) = timeout(Duration::from_secs(30), body.next()).await {
            got.extend_from_slice(&chunk.expect("stream open").unwrap());
        }
        let events = parse_sse(std::str::from_utf8(&got).unwrap());
        assert_eq!(events.len(), 2, "{api:?}");
    }
    timeout(Duration::from_secs(1), m.shutdown())
        .await
        .expect("shutdown");
}

#[tokio::test(start_paused = true)]
async fn slow_spaces_events_in_paused_time() {
    let m = mock().await;
    let c = client();
    m.push(Step::fault(Fault::Slow { per_event_ms: 1000 }));
    let start = Instant::now();
    let resp = request(&c, &m, MockApi::Anthropic, "m", None, true, "q")
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    let mut got = Vec::new();
    let mut arrivals = Vec::new();
    while let Some(chunk) = body.next().await {
        got.extend_from_slice(&chunk.unwrap());
        arrivals.push(start.elapsed());
    }
    let events = parse_sse(std::str::from_utf8(&got).unwrap());
    let n = events.len() as u32;
    assert!(n > 5);
    let total = start.elapsed();
    assert!(
        total >= Duration::from_secs(n.into()),
        "{total:?} for {n} events"
    );
    assert!(total < Duration::from_secs(n.into()) + Duration::from_millis(500));
    assert!(
        arrivals[0] >= Duration::from_secs(1),
        "even the first event waits"
    );
    assert!(
        arrivals
            .windows(2)
            .all(|w| w[1] - w[0] >= Duration::from_secs(1)),
        "one event a second: {arrivals:?}"
    );
    assert_eq!(
        answer_text(MockApi::Anthropic, true, std::str::from_utf8(&got).unwrap()),
        "mock reply to: q"
    );

    // not streamed: one delay before the answer, checked either side of the boundary
    m.push(Step::fault(Fault::Slow { per_event_ms: 5000 }));
    let start = Instant::now();
    let task = tokio::spawn(request(&c, &m, MockApi::Gemini, "m", None, false, "q").send());
    tokio::time::sleep_until(start + Duration::from_millis(4990)).await;
    assert!(!task.is_finished());
    tokio::time::sleep_until(start + Duration::from_millis(5010)).await;
    assert!(task.is_finished());
    assert_eq!(task.await.unwrap().unwrap().status(), 200);
}

#[tokio::test]
async fn steps_match_by_key_then_fifo() {
    let m = mock().await;
    let c = client();
    for api in APIS {
        m.push_all([
            Step::status(401).for_key("key-a"),
            Step::text("welcome b").for_key("key-b"),
        ]);
        // key B's step is taken although key A's is ahead of it
        let resp = request(&c, &m, api, "m", Some("key-b"), true, "q")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            answer_text(api, true, &resp.text().await.unwrap()),
            "welcome b",
            "{api:?}"
        );
        let resp = request(&c, &m, api, "m", Some("key-a"), true, "q")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{api:?}");
        // consumed: key A now gets the default reply
        let resp = request(&c, &m, api, "m", Some("key-a"), false, "again")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            answer_text(api, false, &resp.text().await.unwrap()),
            "mock reply to: again"
        );
        assert!(m.pending().is_empty());
    }
}

#[tokio::test]
async fn steps_match_by_model() {
    let m = mock().await;
    let c = client();
    m.push_all([
        Step::status(500).for_model("primary"),
        Step::text("first").for_model("fallback"),
        Step::text("second").for_model("fallback"),
    ]);
    let text = |r: String| answer_text(MockApi::Gemini, false, &r);
    let r = request(&c, &m, MockApi::Gemini, "fallback", None, false, "q")
        .send()
        .await
        .unwrap();
    assert_eq!(text(r.text().await.unwrap()), "first");
    let r = request(&c, &m, MockApi::Gemini, "primary", None, false, "q")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let r = request(&c, &m, MockApi::Gemini, "fallback", None, false, "q")
        .send()
        .await
        .unwrap();
    assert_eq!(text(r.text().await.unwrap()), "second");
    let models: Vec<String> = m.requests().into_iter().map(|r| r.model).collect();
    assert_eq!(models, ["fallback", "primary", "fallback"]);
}

#[tokio::test]
async fn reset_writes_not_a_single_byte() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let m = mock().await;
    m.push(Step::fault(Fault::Reset));
    let mut tcp = tokio::net::TcpStream::connect(m.addr()).await.unwrap();
    let body = r#"{"model":"m","messages":[{"role":"user","content":"q"}]}"#;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    // EOF (or a reset) with nothing read: no status line, no headers
    let _ = tcp.read_to_end(&mut got).await;
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    assert_eq!(m.requests().len(), 1);
}
