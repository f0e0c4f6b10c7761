//! Delegation end to end through the real binary: `agents.list` with two agents, the
//! `subagents` and `tools.agentToAgent` keys from pincer.json, a principal's turn that
//! spawns a specialist, the announced result answered by the principal, and the audit log
//! over the gateway protocol.

mod support;

use std::time::Duration;

use pincer::client::Session;
use pincer_mockllm::{MockApi, Step};
use serde_json::{Value, json};
use support::*;

async fn history(s: &mut Session, key: &str) -> Vec<Value> {
    s.request("chat.history", Some(json!({"sessionKey": key})))
        .await
        .unwrap()["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn text_of(m: &Value) -> String {
    match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_principal_spawns_a_specialist_and_answers_its_announced_result() {
    let (_dir, home) = temp_home();
    let llm = mock_llm().await;
    write_config_json(
        &home,
        &json!({
            "models": {"providers": {"mock": {
                "api": "openai-completions",
                "baseUrl": llm.base_url(MockApi::OpenAi),
                "apiKey": "test-key",
                "models": [{"id": "boss"}, {"id": "worker"}],
            }}},
            "agents": {
                "defaults": {"model": "mock/boss", "subagents": {"maxConcurrent": 2, "archiveAfterMinutes": 5}},
                "list": [
                    {"id": "main", "default": true, "subagents": {"allowAgents": ["coder"]}},
                    {"id": "coder", "model": "mock/worker", "tools": {"deny": ["exec"]}},
                ],
            },
            "tools": {"agentToAgent": {"enabled": true, "allow": ["coder"]}},
            "session": {"agentToAgent": {"maxPingPongTurns": 2}},
        }),
    );
    llm.push_all([
        Step::tool_call(
            "sessions_spawn",
            json!({"task": "write a haiku", "agentId": "coder", "label": "haiku"}),
        )
        .for_model("boss"),
        Step::text("A specialist is on it.").for_model("boss"),
        Step::text("autumn wind / a gateway in rust / never drops").for_model("worker"),
        Step::text("Here is your haiku from the coder.").for_model("boss"),
    ]);
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let mut s = connect(&gw.url(), &read_token(&home)).await;
    let main = "agent:main:main";
    s.request(
        "chat.send",
        Some(json!({"sessionKey": main, "message": "a haiku please",
                    "idempotencyKey": uuid::Uuid::new_v4().to_string()})),
    )
    .await
    .expect("chat.send accepted");
    // The principal answers, the specialist runs, its result is announced and answered.
    let mut msgs = Vec::new();
    for _ in 0..200 {
        msgs = history(&mut s, main).await;
        if msgs
            .iter()
            .any(|m| m["role"] == "assistant" && text_of(m).contains("Here is your haiku"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let texts: Vec<(String, String)> = msgs
        .iter()
        .map(|m| (m["role"].as_str().unwrap_or("").to_owned(), text_of(m)))
        .collect();
    let announced = texts
        .iter()
        .find(|(r, t)| r == "user" && t.starts_with("[Sub-agent result]"))
        .unwrap_or_else(|| panic!("no announcement in {texts:?}"));
    assert!(announced.1.contains("never drops") && announced.1.contains("status: ok"));
    assert!(
        announced.1.contains("\"haiku\" by agent coder"),
        "{}",
        announced.1
    );
    assert!(
        texts
            .iter()
            .any(|(r, t)| r == "assistant" && t.contains("Here is your haiku")),
        "{texts:?}"
    );
    // The specialist ran on its own model; the audit log has the spawn and the result.
    let models: Vec<String> = llm.requests().iter().map(|r| r.model.clone()).collect();
    assert_eq!(
        models.iter().filter(|m| *m == "worker").count(),
        1,
        "{models:?}"
    );
    let audit = s
        .request("audit.query", Some(json!({"kind": "delegation"})))
        .await
        .expect("audit.query");
    let recs = audit["records"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = recs
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("delegation.spawn", "accepted"),
            ("delegation.result", "ok")
        ]
    );
    assert_eq!(recs[0]["correlationId"], recs[1]["correlationId"]);
    assert!(
        recs[0]["target"]
            .as_str()
            .unwrap()
            .starts_with("agent:coder:subagent:")
    );
    drop(s);
    drop(gw);
}

#[test]
fn bad_delegation_keys_are_refused_with_the_key_named() {
    let (_dir, home) = temp_home();
    write_config_json(
        &home,
        &json!({"agents": {"defaults": {"subagents": {"maxSpawnDepth": 9}}},
                "tools": {"agentToAgent": {"enabled": "yes"}}}),
    );
    let out = pincer(&home, &["config", "validate"]);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains("agents.defaults.subagents.maxSpawnDepth"),
        "{all}"
    );
    assert!(all.contains("tools.agentToAgent.enabled"), "{all}");
}
