//! Turns end to end through the real binary: a WebSocket client, the gateway, a session, a
//! run, the mock LLM server speaking OpenAI's wire format, and the workspace on disk.

mod support;

use std::path::Path;
use std::time::Duration;

use pincer::client::Session;
use pincer_mockllm::{MockLlm, Step};
use serde_json::{Value, json};
use support::*;

fn write_config(home: &Path, mock: &MockLlm) {
    write_mock_config(home, mock, json!({}));
}

/// A gateway on a fresh state directory whose default model is the mock, and a client.
async fn started() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    MockLlm,
    Daemon,
    Session,
) {
    started_with(json!({})).await
}

async fn started_with(
    extra: Value,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    MockLlm,
    Daemon,
    Session,
) {
    let (dir, home) = temp_home();
    let llm = mock_llm().await;
    write_mock_config(&home, &llm, extra);
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let token = read_token(&home);
    let s = connect(&gw.url(), &token).await;
    (dir, home, llm, gw, s)
}

/// `started` with a fault armed (`--inject-fault`).
async fn started_with_fault(
    fault: &str,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    MockLlm,
    Daemon,
    Session,
) {
    let (dir, home) = temp_home();
    let llm = mock_llm().await;
    write_config(&home, &llm);
    let gw = Daemon::start(&home, &["--port", "0", "--inject-fault", fault], &[]);
    let s = connect(&gw.url(), &read_token(&home)).await;
    (dir, home, llm, gw, s)
}

/// Sends a message and collects every event of its run until the terminal `chat` event.
async fn turn(s: &mut Session, key: &str, message: &str) -> (Value, Vec<Value>) {
    let accepted = s
        .request(
            "chat.send",
            Some(json!({"sessionKey": key, "message": message,
                        "idempotencyKey": uuid::Uuid::new_v4().to_string()})),
        )
        .await
        .expect("chat.send accepted");
    let run_id = accepted["runId"].as_str().unwrap().to_owned();
    let mut events: Vec<Value> = std::mem::take(&mut s.events);
    let mut seen = Vec::new();
    loop {
        let f = if events.is_empty() {
            tokio::time::timeout(Duration::from_secs(20), s.next_frame())
                .await
                .expect("the run ends within 20 s")
                .expect("frame")
        } else {
            events.remove(0)
        };
        if f["type"] != "event" || f["payload"]["runId"] != run_id.as_str() {
            continue;
        }
        let done = f["event"] == "chat" && f["payload"]["state"] != "delta";
        seen.push(f);
        if done {
            return (accepted, seen);
        }
    }
}

async fn history(s: &mut Session, key: &str) -> Value {
    s.request("chat.history", Some(json!({"sessionKey": key})))
        .await
        .unwrap()
}

fn roles(history: &Value) -> Vec<String> {
    history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_owned())
        .collect()
}

fn deltas(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["event"] == "chat" && e["payload"]["state"] == "delta")
        .filter_map(|e| e["payload"]["message"]["content"][0]["text"].as_str())
        .collect()
}

#[tokio::test]
async fn a_turn_streams_calls_a_tool_writes_the_file_and_survives_a_restart() {
    let (_dir, home) = temp_home();
    let llm = mock_llm().await;
    write_config(&home, &llm);
    llm.push(Step::tool_call(
        "write",
        json!({"path": "notes/hello.txt", "content": "hi from the agent"}),
    ));
    llm.push(Step::text("I wrote notes/hello.txt for you."));
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let token = read_token(&home);
    let mut s = connect(&gw.url(), &token).await;
    let (accepted, events) = turn(&mut s, "agent:main:main", "please write a note").await;
    assert_eq!(accepted["status"], "started");
    let last = events.last().unwrap();
    assert_eq!(last["payload"]["state"], "final", "{last}");
    assert_eq!(
        last["payload"]["message"]["content"][0]["text"],
        "I wrote notes/hello.txt for you."
    );
    assert!(
        events
            .iter()
            .filter(|e| e["payload"]["state"] == "delta")
            .count()
            >= 2,
        "the reply streams in pieces"
    );
    assert_eq!(deltas(&events), "I wrote notes/hello.txt for you.");
    let tool_events: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "agent" && e["payload"]["stream"] == "tool")
        .collect();
    assert_eq!(tool_events.len(), 2, "start and result: {tool_events:?}");
    assert_eq!(tool_events[1]["payload"]["data"]["isError"], false);
    assert_eq!(
        std::fs::read_to_string(home.join("workspace/notes/hello.txt")).unwrap(),
        "hi from the agent"
    );
    // What the model saw: the system prompt, the user's message, then the tool result.
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].api_key.as_deref(), Some("test-key"));
    assert_eq!(
        roles(&reqs[1].body),
        ["system", "user", "assistant", "tool"]
    );

    s.close().await;
    gw.signal(libc::SIGTERM);
    assert_eq!(gw.wait().0, Some(0));

    // A new gateway on the same state directory has the transcript.
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let mut s = connect(&gw.url(), &token).await;
    let h = history(&mut s, "agent:main:main").await;
    assert_eq!(roles(&h), ["user", "assistant", "tool", "assistant"]);
    assert_eq!(h["messages"][0]["content"], "please write a note");
    // The next turn carries the history to the model.
    llm.push(Step::text("still here"));
    let (_, events) = turn(&mut s, "agent:main:main", "are you there?").await;
    assert_eq!(events.last().unwrap()["payload"]["state"], "final");
    let body = llm.requests().last().unwrap().body.clone();
    assert_eq!(body["messages"].as_array().unwrap().len(), 1 + 4 + 1);
    let list = s.request("sessions.list", None).await.unwrap();
    assert_eq!(list["sessions"][0]["key"], "agent:main:main");
    assert_eq!(list["sessions"][0]["turns"], 2);
}

#[tokio::test]
async fn a_run_that_crashes_mid_turn_is_retried_and_its_message_is_not_lost() {
    // The first RunActor panics on its first message.
    let (_dir, _home, llm, _gw, mut s) = started_with_fault("run:panic@1").await;
    llm.push(Step::text("answered after the crash"));
    let (_, events) = turn(&mut s, "agent:main:main", "hello").await;
    let last = events.last().unwrap();
    assert_eq!(last["payload"]["state"], "final", "{last}");
    assert_eq!(
        last["payload"]["message"]["content"][0]["text"],
        "answered after the crash"
    );
    let h = history(&mut s, "agent:main:main").await;
    let msgs = h["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2, "one user message, one answer: {msgs:?}");
}

#[tokio::test]
async fn a_session_that_crashes_mid_turn_resumes_from_the_store_and_siblings_carry_on() {
    let (_dir, home) = temp_home();
    let llm = mock_llm().await;
    write_config(&home, &llm);
    // Session actors' third message overall is a progress event of the first turn.
    let gw = Daemon::start(
        &home,
        &["--port", "0", "--inject-fault", "session:panic@3"],
        &[],
    );
    let token = read_token(&home);
    let mut s = connect(&gw.url(), &token).await;
    llm.push(Step::text(
        "a long enough answer to stream in several pieces",
    ));
    llm.push(Step::text("the same answer after the crash"));
    let (_, events) = turn(&mut s, "agent:main:main", "first").await;
    let last = events.last().unwrap();
    assert_eq!(last["payload"]["state"], "final", "{last}");
    // A sibling session is unaffected.
    llm.push(Step::text("sibling answer"));
    let (_, events) = turn(&mut s, "agent:main:other", "second").await;
    assert_eq!(
        events.last().unwrap()["payload"]["message"]["content"][0]["text"],
        "sibling answer"
    );
    let h = history(&mut s, "agent:main:main").await;
    let msgs = h["messages"].as_array().unwrap();
    assert_eq!(
        msgs[0]["content"], "first",
        "the message survived the crash"
    );
    assert_eq!(msgs.len(), 2, "{msgs:?}");
}

#[tokio::test]
async fn with_no_model_a_turn_says_how_to_configure_one() {
    let (_dir, home) = temp_home();
    let gw = Daemon::start(
        &home,
        &["--port", "0"],
        &[
            ("OPENAI_API_KEY", ""),
            ("ANTHROPIC_API_KEY", ""),
            ("GEMINI_API_KEY", ""),
        ],
    );
    let token = read_token(&home);
    let mut s = connect(&gw.url(), &token).await;
    let (_, events) = turn(&mut s, "agent:main:main", "hi").await;
    let p = &events.last().unwrap()["payload"];
    assert_eq!(p["state"], "error");
    let msg = p["errorMessage"].as_str().unwrap();
    assert!(
        msg.contains("OPENAI_API_KEY") && msg.contains("models.providers"),
        "{msg}"
    );
}

// Multi-threaded: the mock must answer the gateway's probe while this thread waits for
// the gateway to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_config_a_local_ollama_is_found_and_used() {
    let (_dir, home) = temp_home();
    let llm = mock_llm().await;
    llm.set_models(vec!["llama3.2:latest".into()]);
    llm.push(Step::text("hello from ollama"));
    let host = llm.addr().to_string();
    let gw = Daemon::start(
        &home,
        &["--port", "0"],
        &[
            ("OPENAI_API_KEY", ""),
            ("ANTHROPIC_API_KEY", ""),
            ("GEMINI_API_KEY", ""),
            ("OLLAMA_HOST", host.as_str()),
        ],
    );
    let token = read_token(&home);
    let mut s = connect(&gw.url(), &token).await;
    let models = s.request("models.list", None).await.unwrap();
    assert_eq!(models["models"][0]["id"], "llama3.2:latest", "{models}");
    assert_eq!(models["models"][0]["provider"], "ollama");
    let (_, events) = turn(&mut s, "agent:main:main", "hi").await;
    let p = &events.last().unwrap()["payload"];
    assert_eq!(
        p["message"]["content"][0]["text"], "hello from ollama",
        "{p}"
    );
    let last = llm.requests().last().unwrap().clone();
    assert_eq!(last.path, "/v1/chat/completions");
    assert_eq!(last.model, "llama3.2:latest");
}

#[tokio::test]
async fn agents_prompt_says_where_every_byte_comes_from() {
    let (_dir, home) = temp_home();
    let llm = mock_llm().await;
    write_config(&home, &llm);
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let url = gw.url();
    let out = pincer(&home, &["agents", "prompt", "--url", &url, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for part in [
        "identity",
        "workspace/AGENTS.md",
        "workspace/MEMORY.md",
        "skills",
        "tool schemas",
    ] {
        assert!(names.contains(&part), "{part} missing from {names:?}");
    }
    assert!(v["fixedChars"].as_u64().unwrap() < 8_000, "{v}");
    let human = pincer(&home, &["agents", "prompt", "--url", &url]);
    let t = text(&human);
    assert!(
        t.contains("tool schemas") && t.contains("fixed cost"),
        "{t}"
    );
    let list = pincer(&home, &["agents", "list", "--url", &url]);
    assert!(
        text(&list).contains("main (default)  model mock/mock-model"),
        "{}",
        text(&list)
    );
}

#[test]
fn doctor_names_the_model_or_says_how_to_configure_one() {
    let (_dir, home) = temp_home();
    let doctor = |env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["doctor", "--json"])
            .env("PINCER_HOME", &home)
            .env("OLLAMA_HOST", "127.0.0.1:1");
        for k in ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"] {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let model = v
            .as_array()
            .or_else(|| v["checks"].as_array())
            .unwrap()
            .iter()
            .find(|c| c["name"] == "model")
            .cloned()
            .unwrap();
        (out.status.code(), model)
    };
    let (code, model) = doctor(&[]);
    assert_eq!(code, Some(1));
    assert_eq!(model["status"], "fail");
    assert!(
        model["fix"].as_str().unwrap().contains("ANTHROPIC_API_KEY"),
        "{model}"
    );
    let (_, model) = doctor(&[("OPENAI_API_KEY", "sk-test")]);
    assert_eq!(model["status"], "ok", "{model}");
    assert_eq!(
        model["message"],
        "openai/gpt-4.1-mini (from env OPENAI_API_KEY)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_compatible_endpoint_answers_plain_and_streamed() {
    use pincer_actors::agent::model::{Api, ChatRequest, Endpoint, Message, Thinking};
    use pincer_actors::agent::providers;
    let (_dir, home) = temp_home();
    let llm = mock_llm().await;
    write_config(&home, &llm);
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let token = read_token(&home);
    let http = providers::http_client();
    let url = format!("http://{}/v1/chat/completions", gw.addr);
    // Without the token: 401 in OpenAI's error shape.
    let r = http
        .post(&url)
        .json(&json!({"model": "pincer", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("Bearer"),
        "{v}"
    );
    // Plain.
    llm.push(Step::text("plain answer"));
    let r = http
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({"model": "pincer:main", "user": "alice",
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "plain answer");
    // Streamed, read by Pincer's own OpenAI client: the SSE is what OpenAI sends.
    llm.push(Step::text("streamed answer in pieces"));
    let ep = Endpoint {
        api: Api::OpenAiCompletions,
        base_url: format!("http://{}/v1", gw.addr),
        api_key: Some(token.clone()),
        headers: vec![(
            "x-openclaw-session-key".into(),
            "agent:main:openai-test".into(),
        )],
        connect_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(10),
    };
    let req = ChatRequest {
        model: "pincer".into(),
        system: String::new(),
        messages: vec![Message::User {
            content: "stream please".into(),
        }],
        tools: Default::default(),
        thinking: Thinking::Off,
        max_tokens: None,
    };
    let got = providers::collect(providers::stream_chat(&http, &ep, &req).await.unwrap())
        .await
        .unwrap();
    assert_eq!(got.text, "streamed answer in pieces");
    // The turns are ordinary sessions.
    let mut s = connect(&gw.url(), &token).await;
    let list = s.request("sessions.list", None).await.unwrap();
    let keys: Vec<&str> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&"agent:main:openai-user:alice"), "{keys:?}");
    assert!(keys.contains(&"agent:main:openai-test"), "{keys:?}");
}

#[tokio::test]
async fn sessions_compact_summarises_by_hand_and_the_next_turn_uses_the_summary() {
    let (_dir, _home, llm, _gw, mut s) = started().await;
    for i in 0..5 {
        llm.push(Step::text(format!("answer {i}")));
        let (_, events) = turn(&mut s, "agent:main:main", &format!("question {i}")).await;
        assert_eq!(events.last().unwrap()["payload"]["state"], "final");
    }
    llm.push(Step::text("SUMMARY of questions 0 to 1"));
    let r = s
        .request(
            "sessions.compact",
            Some(json!({"sessionKey": "agent:main:main", "idempotencyKey": "c1"})),
        )
        .await
        .unwrap();
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["summary"], "SUMMARY of questions 0 to 1");
    assert_eq!(r["compactions"], 1);
    llm.push(Step::text("after compaction"));
    let (_, events) = turn(&mut s, "agent:main:main", "question 5").await;
    assert_eq!(events.last().unwrap()["payload"]["state"], "final");
    let body = llm.requests().last().unwrap().body.clone();
    let msgs = body["messages"].as_array().unwrap();
    assert!(
        msgs[0]["content"]
            .as_str()
            .unwrap()
            .contains("SUMMARY of questions 0 to 1")
    );
    assert_eq!(
        msgs.len(),
        1 + 6 + 1,
        "the summary replaced the oldest four messages"
    );
    assert_eq!(msgs[1]["content"], "question 2");
    // The warm layer keeps everything, with the summary in place.
    let h = history(&mut s, "agent:main:main").await;
    let roles = roles(&h);
    assert_eq!(roles.iter().filter(|r| *r == "user").count(), 6);
    assert!(roles.iter().any(|r| r == "summary"));
}

#[tokio::test]
async fn sessions_can_be_previewed_and_labelled_live_or_paused() {
    let (_dir, _home, llm, _gw, mut s) = started().await;
    llm.push(Step::text(
        "a reply long enough to be cut in the preview ".repeat(10),
    ));
    turn(&mut s, "agent:main:main", "hello").await;
    let p = s
        .request(
            "sessions.preview",
            Some(json!({"keys": ["agent:main:main"], "limit": 2})),
        )
        .await
        .unwrap();
    let items = p["previews"][0]["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["text"], "hello");
    assert_eq!(items[1]["text"].as_str().unwrap().chars().count(), 200);
    let r = s
        .request(
            "sessions.patch",
            Some(json!({"key": "agent:main:main", "label": "work", "idempotencyKey": "p1"})),
        )
        .await
        .unwrap();
    assert_eq!(r["label"], "work");
    // The live session keeps the label through its next turn.
    llm.push(Step::text("again"));
    turn(&mut s, "agent:main:main", "again").await;
    let list = s.request("sessions.list", None).await.unwrap();
    assert_eq!(list["sessions"][0]["label"], "work");
    let err = s
        .request(
            "sessions.patch",
            Some(json!({"key": "agent:main:nobody", "label": "x", "idempotencyKey": "p2"})),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no session"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pincer_chat_holds_a_conversation_on_the_terminal() {
    use std::io::Write;
    let (_dir, home) = temp_home();
    let llm = mock_llm().await;
    write_config(&home, &llm);
    llm.push(Step::text("first reply"));
    llm.push(Step::text("second reply"));
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let url = gw.url();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(BIN)
            .args(["chat", "--url", &url])
            .env("PINCER_HOME", &home)
            .env_remove("PINCER_GATEWAY_TOKEN")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"hello\n/new\nagain\n/quit\n")
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("first reply") && stdout.contains("second reply"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("reset"));
    // /new forgot the first exchange: the second request carries no history.
    let last = llm.requests().last().unwrap().body.clone();
    assert_eq!(roles(&last), ["system", "user"]);
}

#[tokio::test]
async fn a_running_turn_can_be_aborted_and_the_session_goes_on() {
    let (_dir, _home, llm, _gw, mut s) = started().await;
    // The model never answers: only an abort ends this turn.
    llm.push(Step::fault(pincer_mockllm::Fault::Stall));
    let accepted = s
        .request(
            "chat.send",
            Some(
                json!({"sessionKey": "agent:main:main", "message": "think forever",
                        "idempotencyKey": "a1"}),
            ),
        )
        .await
        .unwrap();
    let run_id = accepted["runId"].as_str().unwrap().to_owned();
    // Abort once the model has the request (else the stall would meet the next turn).
    while llm.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = s
        .request(
            "chat.abort",
            Some(json!({"sessionKey": "agent:main:main", "runId": run_id})),
        )
        .await
        .unwrap();
    assert_eq!(r["aborted"], true);
    let end = loop {
        let f = tokio::time::timeout(Duration::from_secs(10), s.next_frame())
            .await
            .expect("the abort is reported")
            .unwrap();
        if f["event"] == "chat" && f["payload"]["runId"] == run_id.as_str() {
            break f;
        }
    };
    assert_eq!(end["payload"]["state"], "aborted", "{end}");
    llm.push(Step::text("still working"));
    let (_, events) = turn(&mut s, "agent:main:main", "next").await;
    assert_eq!(events.last().unwrap()["payload"]["state"], "final");
    let h = history(&mut s, "agent:main:main").await;
    assert_eq!(
        roles(&h),
        ["user", "error", "user", "assistant"],
        "the aborted message is recorded with its outcome"
    );
}

/// Sends three messages while the first turn is slow to answer; returns each run's
/// final text (by send order) and the model requests.
async fn three_queued(queue_mode: &str, replies: &[&str]) -> (Vec<Value>, Vec<Value>) {
    let (_dir, _home, llm, _gw, mut s) =
        started_with(json!({"session": {"queueMode": queue_mode}})).await;
    llm.push(Step::fault(pincer_mockllm::Fault::Slow {
        per_event_ms: 100,
    }));
    for r in replies {
        llm.push(Step::text(*r));
    }
    let mut runs = Vec::new();
    for (i, m) in ["first", "second", "third"].iter().enumerate() {
        let r = s
            .request(
                "chat.send",
                Some(json!({"sessionKey": "agent:main:main", "message": m,
                            "idempotencyKey": format!("q{i}")})),
            )
            .await
            .unwrap();
        runs.push((r["runId"].as_str().unwrap().to_owned(), r["status"].clone()));
    }
    assert_eq!(runs[0].1, "started");
    assert_eq!(runs[1].1, "queued");
    let mut finals = std::collections::HashMap::new();
    let mut pending: Vec<Value> = std::mem::take(&mut s.events);
    while finals.len() < 3 {
        let f = if pending.is_empty() {
            tokio::time::timeout(Duration::from_secs(20), s.next_frame())
                .await
                .expect("three answers")
                .unwrap()
        } else {
            pending.remove(0)
        };
        if f["event"] == "chat" && f["payload"]["state"] == "final" {
            finals.insert(
                f["payload"]["runId"].as_str().unwrap().to_owned(),
                f["payload"]["message"]["content"][0]["text"].clone(),
            );
        }
    }
    let texts = runs.iter().map(|(id, _)| finals[id].clone()).collect();
    let bodies = llm.requests().into_iter().map(|r| r.body).collect();
    (texts, bodies)
}

fn last_user_content(body: &Value) -> Value {
    body["messages"].as_array().unwrap().last().unwrap()["content"].clone()
}

#[tokio::test]
async fn messages_sent_during_a_turn_are_answered_together_in_the_next() {
    let (texts, bodies) = three_queued("collect", &["both answered"]).await;
    assert_eq!(texts[1], "both answered");
    assert_eq!(texts[2], "both answered");
    assert_eq!(bodies.len(), 2, "two model calls for three messages");
    assert_eq!(last_user_content(&bodies[1]), "second\n\nthird");
}

#[tokio::test]
async fn with_queue_mode_followup_each_message_gets_its_own_turn() {
    let (texts, bodies) = three_queued("followup", &["to second", "to third"]).await;
    assert_eq!(texts[1], "to second");
    assert_eq!(texts[2], "to third");
    assert_eq!(bodies.len(), 3, "one model call per message");
    assert_eq!(last_user_content(&bodies[1]), "second");
    assert_eq!(last_user_content(&bodies[2]), "third");
}

#[tokio::test]
async fn a_turn_past_its_deadline_ends_with_a_clear_error() {
    let (_dir, _home, llm, _gw, mut s) =
        started_with(json!({"agents": {"defaults": {"timeoutSeconds": 1}}})).await;
    llm.push(Step::fault(pincer_mockllm::Fault::Stall));
    let (_, events) = turn(&mut s, "agent:main:main", "take your time").await;
    let p = &events.last().unwrap()["payload"];
    assert_eq!(p["state"], "error", "{p}");
    let msg = p["errorMessage"].as_str().unwrap();
    assert!(
        msg.contains("deadline of 1s") && msg.contains("timeoutSeconds"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pincer_agent_streams_one_reply_and_fails_with_exit_1() {
    let (_dir, home, llm, gw, _s) = started().await;
    llm.push(Step::text("streamed to the terminal"));
    let (url, h) = (gw.url(), home.clone());
    let out = tokio::task::spawn_blocking(move || {
        pincer(
            &h,
            &["agent", "-m", "hello", "--agent", "main", "--url", &url],
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "streamed to the terminal"
    );
    llm.push(Step::status(400));
    let (url, h) = (gw.url(), home.clone());
    let out =
        tokio::task::spawn_blocking(move || pincer(&h, &["agent", "-m", "again", "--url", &url]))
            .await
            .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("rejected the request"),
        "{}",
        text(&out)
    );
    // The sessions commands see what the turns left.
    let url = gw.url();
    let list = pincer(&home, &["sessions", "list", "--url", &url]);
    assert!(
        text(&list).contains("agent:main:main  turns 2"),
        "{}",
        text(&list)
    );
    let show = pincer(
        &home,
        &["sessions", "show", "agent:main:main", "--url", &url],
    );
    let t = text(&show);
    assert!(
        t.contains("user: hello") && t.contains("assistant: streamed to the terminal"),
        "{t}"
    );
    let reset = pincer(
        &home,
        &["sessions", "reset", "agent:main:main", "--url", &url],
    );
    assert!(text(&reset).contains("reset"), "{}", text(&reset));
    let list = pincer(&home, &["sessions", "list", "--url", &url]);
    assert!(text(&list).contains("no sessions yet"), "{}", text(&list));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_method_answers_accepted_then_final_on_one_id() {
    let (_dir, home, llm, gw, mut s) = started().await;
    llm.push(Step::text("done thinking"));
    // A raw frame, to see both answers on the same id.
    let id = "agent-twice";
    let frame = json!({"type": "req", "id": id, "method": "agent",
        "params": {"message": "hi", "idempotencyKey": "k-agent-twice"}});
    s.send_raw(&frame.to_string()).await.unwrap();
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let f = tokio::time::timeout(Duration::from_secs(20), s.next_frame())
            .await
            .expect("both answers within 20 s")
            .unwrap();
        if f["type"] == "res" && f["id"] == id {
            answers.push(f);
        }
    }
    assert_eq!(answers[0]["payload"]["status"], "accepted", "{answers:?}");
    assert_eq!(answers[0]["payload"]["sessionKey"], "agent:main:main");
    let run_id = answers[0]["payload"]["runId"].clone();
    assert_eq!(answers[1]["payload"]["status"], "ok", "{answers:?}");
    assert_eq!(answers[1]["payload"]["runId"], run_id);
    assert_eq!(answers[1]["payload"]["summary"]["text"], "done thinking");
    let model_ms = answers[1]["payload"]["summary"]["modelMs"]
        .as_f64()
        .unwrap();
    assert!(
        model_ms > 0.0,
        "the run says how long it waited for the model: {answers:?}"
    );
    // `pincer gateway call --expect-final` waits for the second answer; without it, the
    // first is the answer (as OpenClaw's CLI does).
    llm.push(Step::text("second"));
    let url = gw.url();
    let out = pincer(
        &home,
        &[
            "gateway",
            "call",
            "agent",
            "--params",
            r#"{"message": "again"}"#,
            "--expect-final",
            "--url",
            &url,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["status"].as_str(), v["summary"]["text"].as_str()),
        (Some("ok"), Some("second"))
    );
    llm.push(Step::text("third"));
    let out = pincer(
        &home,
        &[
            "gateway",
            "call",
            "agent",
            "--params",
            r#"{"message": "once more"}"#,
            "--url",
            &url,
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "accepted", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_new_over_the_wire_starts_a_fresh_session() {
    let (_dir, _home, llm, _gw, mut s) = started().await;
    llm.push(Step::text("first answer"));
    turn(&mut s, "agent:main:main", "remember 42").await;
    let (_, events) = turn(&mut s, "agent:main:main", "/new").await;
    let last = events.last().unwrap();
    assert_eq!(last["payload"]["state"], "final");
    assert_eq!(
        last["payload"]["message"]["content"][0]["text"],
        "Started a new session."
    );
    assert_eq!(
        roles(&history(&mut s, "agent:main:main").await),
        Vec::<String>::new()
    );
    llm.push(Step::text("fresh"));
    turn(&mut s, "agent:main:main", "what was the number?").await;
    // The model saw only the fresh session's message.
    let req = llm.requests().last().unwrap().clone();
    let body = req.body.to_string();
    assert!(!body.contains("remember 42"), "{body}");
    assert!(body.contains("what was the number?"));
    let list = s.request("sessions.list", None).await.unwrap();
    assert_eq!(list["sessions"][0]["phase"], "active");
    assert_eq!(list["sessions"][0]["turns"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_agent_actor_is_restarted_and_the_waiting_turn_goes_on() {
    // The AgentActor panics on its first message: the turn's request for a slot.
    let (_dir, _home, llm, gw, mut s) = started_with_fault("agent:panic@1").await;
    llm.push(Step::text("answered by the restarted agent"));
    let (_, events) = turn(&mut s, "agent:main:main", "hello").await;
    let last = events.last().unwrap();
    assert_eq!(last["payload"]["state"], "final", "{last}");
    assert_eq!(
        last["payload"]["message"]["content"][0]["text"],
        "answered by the restarted agent"
    );
    // agents.list says what the (restarted) AgentActor is doing.
    let list = s.request("agents.list", None).await.unwrap();
    let main = &list["agents"][0];
    assert_eq!(
        (
            &main["running"],
            &main["waiting"],
            &main["maxConcurrent"],
            &main["turnsAdmitted"]
        ),
        (&json!(0), &json!(0), &json!(4), &json!(1)),
        "{list}"
    );
    let metrics = reqwest_like_get(&gw.addr, "/metrics").await;
    assert!(
        metrics.contains("pincer_actor_restarts_total{kind=\"agent\"} 1"),
        "{metrics}"
    );
}
