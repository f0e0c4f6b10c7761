//! `pincer agents add|list|remove` through the real binary: an added agent gets its
//! workspace, answers in its own session (mock LLM) after a restart, and is removed
//! again; the edits a running gateway sees are in its audit log; and what would leave
//! the config broken is refused with nothing written.

mod support;

use std::path::Path;
use std::time::Duration;

use pincer_mockllm::Step;
use serde_json::{Value, json};
use support::*;

fn list(home: &Path) -> Value {
    let raw = std::fs::read_to_string(home.join("pincer.json")).unwrap();
    let v: Value = json5::from_str(&raw).unwrap();
    v["agents"]["list"].clone()
}

fn ids(agents_list: &Value) -> Vec<String> {
    agents_list["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs `pincer ARGS`; asserts it failed with exit 1 and says `says`.
fn refused(home: &Path, args: &[&str], says: &str) {
    let out = pincer(home, args);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
    assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_added_agent_answers_in_its_own_session_and_is_removed_again() {
    let (_dir, home) = temp_home();
    let llm = mock_llm().await;
    write_mock_config(&home, &llm, json!({}));

    let out = pincer(
        &home,
        &[
            "agents",
            "add",
            "helper",
            "--name",
            "Helper",
            "--model",
            "mock/mock-model",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("added agent helper (Helper) to agents.list"),
        "{said}"
    );
    assert!(said.contains("agent:helper:main"), "{said}");
    assert!(said.contains("restart the gateway"), "{said}");
    // The implicit `main` stays, and stays the default.
    assert_eq!(
        list(&home),
        json!([{"id": "main"}, {"id": "helper", "name": "Helper", "model": "mock/mock-model"}])
    );
    let ws = home.join("workspace-helper");
    for f in ["AGENTS.md", "SOUL.md", "USER.md", "HEARTBEAT.md"] {
        assert!(ws.join(f).is_file(), "{f} was bootstrapped");
    }
    std::fs::write(ws.join("SOUL.md"), "You are the helper, marker H3LPER.").unwrap();

    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let url = gw.url();
    let out = pincer(&home, &["agents", "list", "--json", "--url", &url]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ids(&v), ["main", "helper"]);
    assert_eq!(v["defaultId"], "main");
    let helper = &v["agents"][1];
    assert_eq!(helper["name"], "Helper");
    assert_eq!(helper["model"], "mock/mock-model");
    assert_eq!(helper["workspace"], ws.display().to_string());
    let out = pincer(&home, &["agents", "list", "--url", &url]);
    assert!(
        text(&out).contains("helper  model mock/mock-model"),
        "{}",
        text(&out)
    );

    // A message to its main session runs on it: its name and workspace in the prompt.
    llm.push(Step::text("helper here"));
    let out = pincer(
        &home,
        &[
            "agent",
            "--session",
            "agent:helper:main",
            "-m",
            "hi",
            "--url",
            &url,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("helper here"));
    let req = chat_requests(&llm).pop().expect("one model call");
    let system = req.body["messages"][0]["content"].to_string();
    assert!(system.contains("Agent: Helper (helper)"), "{system}");
    assert!(system.contains("H3LPER"), "{system}");

    // Removed while the gateway runs: the file edit is in its audit log.
    let out = pincer(&home, &["agents", "remove", "helper", "--delete-workspace"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("removed agent helper from agents.list"),
        "{said}"
    );
    assert!(
        said.contains(&format!("deleted its workspace {}", ws.display())),
        "{said}"
    );
    assert!(!ws.exists());
    assert_eq!(list(&home), json!([{"id": "main"}]));
    let mut s = connect(&url, &read_token(&home)).await;
    let mut recorded = Value::Null;
    for _ in 0..100 {
        let v = s
            .request(
                "audit.query",
                Some(json!({"kind": "config.change", "limit": 1})),
            )
            .await
            .unwrap();
        if let Some(r) = v["records"].as_array().and_then(|r| r.first()) {
            recorded = r.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(recorded["actor"], "config-file", "{recorded}");
    assert_eq!(
        recorded["detail"]["paths"],
        json!(["agents.list"]),
        "{recorded}"
    );

    // After a restart it is gone.
    drop(s);
    drop(gw);
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let out = pincer(&home, &["agents", "list", "--json", "--url", &gw.url()]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ids(&v), ["main"]);
}

#[test]
fn edits_that_would_break_the_agents_are_refused_and_nothing_is_written() {
    let (_dir, home) = temp_home();
    write_config_json(
        &home,
        &json!({"models": {"providers": {"mock": {"api": "openai-completions",
            "baseUrl": "http://127.0.0.1:9/v1", "apiKey": "k", "models": [{"id": "m"}]}}},
            "agents": {"defaults": {"model": "mock/m"}}}),
    );
    let before = std::fs::read_to_string(home.join("pincer.json")).unwrap();
    refused(&home, &["agents", "remove", "main"], "is the only agent");
    refused(
        &home,
        &["agents", "remove", "nobody"],
        "there is no agent \"nobody\"",
    );
    refused(
        &home,
        &["agents", "add", "main"],
        "agent \"main\" already exists",
    );
    refused(&home, &["agents", "add", "Bad:Id"], "invalid agent id");
    refused(
        &home,
        &["agents", "add", "x", "--model", "nowhere/m"],
        "there is no provider \"nowhere\"",
    );
    refused(
        &home,
        &["agents", "add", "x", "--model", "m"],
        "is not provider/model",
    );
    assert_eq!(
        std::fs::read_to_string(home.join("pincer.json")).unwrap(),
        before,
        "refused edits write nothing"
    );
    assert!(!home.join("workspace-x").exists());

    // A second agent that becomes the default; the default is only removed with a
    // successor named.
    let ws = home.join("elsewhere");
    let out = pincer(
        &home,
        &[
            "agents",
            "add",
            "ops",
            "--default",
            "--workspace",
            ws.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("ops is now the default agent"),
        "{}",
        text(&out)
    );
    assert!(ws.join("AGENTS.md").is_file());
    refused(&home, &["agents", "add", "ops"], "already exists");
    refused(
        &home,
        &["agents", "add", "dup", "--workspace", ws.to_str().unwrap()],
        "is already agent \"ops\"'s",
    );
    refused(&home, &["agents", "remove", "ops"], "--new-default <id>");
    refused(
        &home,
        &["agents", "remove", "ops", "--new-default", "ops"],
        "must be one of the other agents: main",
    );
    let out = pincer(&home, &["agents", "remove", "ops", "--new-default", "main"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("main is now the default agent"), "{said}");
    assert!(
        said.contains("was kept (--delete-workspace deletes it)"),
        "{said}"
    );
    assert!(ws.is_dir(), "kept without --delete-workspace");
    assert_eq!(list(&home), json!([{"id": "main", "default": true}]));
    refused(&home, &["agents", "remove", "main"], "is the only agent");
}
