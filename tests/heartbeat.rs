//! Heartbeats and file-watch triggers end to end through the real binary and the mock
//! LLM: `heartbeat.run` through the cost guard (no model call for the empty HEARTBEAT.md
//! the bootstrap writes, one for new content with the heartbeat model, none when
//! unchanged), `last-heartbeat`, a `/hooks/wake` `next-heartbeat` event taken in by the
//! next heartbeat, a watched folder's change becoming a turn, and the heartbeat actor
//! restarted after an injected crash.

mod support;

use std::time::Duration;

use pincer_mockllm::Step;
use serde_json::{Value, json};
use support::*;

const HOOK_TOKEN: &str = "hook-secret-heartbeat";
const WAIT: Duration = Duration::from_secs(20);

/// The text of the last user message of each chat request the mock LLM got.
fn asked(llm: &pincer_mockllm::MockLlm) -> Vec<(String, String)> {
    chat_requests(llm)
        .iter()
        .map(|r| {
            let last = r.body["messages"]
                .as_array()
                .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
                .and_then(|m| m["content"].as_str())
                .unwrap_or_default()
                .to_owned();
            (r.model.clone(), last)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeats_and_file_triggers_run_in_the_gateway() {
    let llm = mock_llm().await;
    let (dir, home) = temp_home();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    write_mock_config(
        &home,
        &llm,
        json!({
            "models": {"providers": {"mock": {"models": [{"id": "mock-model"}, {"id": "cheap-model"}]}}},
            "agents": {"defaults": {"heartbeat": {
                "every": "30m", "model": "mock/cheap-model", "target": "none"
            }}},
            "hooks": {"enabled": true, "token": HOOK_TOKEN},
            "triggers": {"watch": [{"id": "inbox", "path": inbox, "debounceMs": 100}]},
        }),
    );
    let gw = Daemon::start(
        &home,
        &["--port", "0", "--inject-fault", "heartbeats:panic@1"],
        &[],
    );
    let mut s = connect(&gw.url(), &read_token(&home)).await;

    // The first message crashes the heartbeat actor (an injected fault); the supervisor
    // restarts it and it answers again.
    let err = s.request("heartbeat.status", None).await.unwrap_err();
    assert!(err.to_string().contains("restarting"), "{err}");
    let mut st = Value::Null;
    for _ in 0..100 {
        match s.request("heartbeat.status", None).await {
            Ok(v) => {
                st = v;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let main = &st["agents"][0];
    assert_eq!(main["agentId"], "main", "{st}");
    assert_eq!(
        (&main["enabled"], &main["everyMs"], &main["target"]),
        (&json!(true), &json!(1_800_000), &json!("none"))
    );
    assert_eq!(main["dailyTokenBudget"], 200_000);
    assert_eq!(
        s.request("last-heartbeat", None).await.unwrap(),
        Value::Null
    );

    // The bootstrap's empty HEARTBEAT.md: no model call.
    let e = s.request("heartbeat.run", Some(json!({}))).await.unwrap();
    assert_eq!(
        (&e["status"], &e["reason"]),
        (&json!("skipped"), &json!("empty-heartbeat-file")),
        "{e}"
    );
    assert_eq!(model_turns(&llm), 0);

    // New content: one call with the heartbeat model; HEARTBEAT_OK is an ack.
    std::fs::write(home.join("workspace/HEARTBEAT.md"), "# Tasks\n- say hi\n").unwrap();
    llm.push(Step::text("HEARTBEAT_OK"));
    let e = s
        .request("heartbeat.run", Some(json!({"agentId": "main"})))
        .await
        .unwrap();
    assert_eq!(e["status"], "ok-token", "{e}");
    let a = asked(&llm);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].0, "cheap-model");
    assert!(a[0].1.contains("- say hi"), "{}", a[0].1);
    // Unchanged: none.
    let e = s.request("heartbeat.run", Some(json!({}))).await.unwrap();
    assert_eq!(e["reason"], "unchanged-heartbeat-file", "{e}");
    assert_eq!(model_turns(&llm), 1);
    let last = s.request("last-heartbeat", None).await.unwrap();
    assert_eq!(last["status"], "skipped", "{last}");

    // A wake for the next heartbeat waits for it, then that heartbeat runs.
    pincer_actors::agent::providers::install_crypto_provider();
    let r = reqwest::Client::new()
        .post(format!("http://{}/hooks/wake", gw.addr))
        .header("authorization", format!("Bearer {HOOK_TOKEN}"))
        .json(&json!({"text": "Disk almost full", "mode": "next-heartbeat"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let st = s.request("heartbeat.status", None).await.unwrap();
    assert_eq!(st["agents"][0]["queuedEvents"], 1, "{st}");
    assert_eq!(model_turns(&llm), 1, "not before the heartbeat");
    llm.push(Step::text("The disk is almost full: clean up ~/Downloads?"));
    let e = s.request("heartbeat.run", Some(json!({}))).await.unwrap();
    assert_eq!(e["status"], "sent", "{e}");
    assert_eq!(e["silent"], true, "target none: kept in the transcript");
    let a = asked(&llm);
    assert!(a[1].1.contains("System: Disk almost full"), "{}", a[1].1);
    let st = s.request("heartbeat.status", None).await.unwrap();
    assert_eq!(st["agents"][0]["queuedEvents"], 0, "{st}");

    // A watched folder: a new file is a turn in the trigger's session.
    let t = s.request("triggers.status", None).await.unwrap();
    assert_eq!(t["watch"][0]["state"], "watching", "{t}");
    std::fs::write(inbox.join("report.pdf"), "%PDF").unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let frame = tokio::time::timeout_at(deadline, s.next_frame())
            .await
            .expect("a turn for the watched folder")
            .unwrap();
        let p = &frame["payload"];
        if frame["event"] == "chat"
            && p["sessionKey"] == "agent:main:watch:inbox"
            && p["state"] != "delta"
        {
            assert_eq!(p["state"], "final", "{p}");
            break;
        }
    }
    let a = asked(&llm);
    assert_eq!(a.len(), 3);
    assert!(a[2].1.contains("- report.pdf"), "{}", a[2].1);
}
