//! Webhook triggers end to end through the real binary: `POST /hooks/agent`,
//! `/hooks/wake` and a mapped hook on the gateway port, turns against the mock LLM, a
//! reply delivered to a fake Telegram chat, and the requests refused before any agent.

mod support;

use std::path::Path;
use std::time::Duration;

use pincer_fakes::telegram::{FakeChat, FakeTelegram, FakeUser};
use pincer_mockllm::{MockLlm, Step};
use serde_json::{Value, json};
use support::*;

const HOOK_TOKEN: &str = "hook-secret-4d1f9a";
const TG_TOKEN: &str = "123456:TEST-token";
const WAIT: Duration = Duration::from_secs(20);

/// The mock-model config without bootstrap files, `extra` merged in.
fn write_config(home: &Path, llm: &MockLlm, extra: Value) {
    let base = merged(
        mock_config(llm),
        &json!({"agents": {"defaults": {"skipBootstrap": true}}}),
    );
    write_config_json(home, &merged(base, &extra));
}

fn hooks(extra: Value) -> Value {
    json!({ "hooks": merged(json!({"enabled": true, "token": HOOK_TOKEN}), &extra) })
}

/// The bodies of the chat requests the mock LLM got (not model listings).
fn turns(llm: &MockLlm) -> Vec<String> {
    chat_requests(llm)
        .iter()
        .map(|r| r.body.to_string())
        .collect()
}

/// A POST on the gateway port: the status and the body as JSON (null when not JSON).
async fn post(addr: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, Value) {
    pincer_actors::agent::providers::install_crypto_provider();
    let mut req = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn bearer() -> (&'static str, String) {
    ("authorization", format!("Bearer {HOOK_TOKEN}"))
}

async fn post_json(addr: &str, path: &str, body: Value) -> (u16, Value) {
    let (k, v) = bearer();
    post(addr, path, &[(k, &v)], body.to_string().into_bytes()).await
}

/// Waits for the chat event that ends a run of `session` (events reach every operator).
async fn final_event(s: &mut pincer::client::Session, session: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let frame = tokio::time::timeout_at(deadline, s.next_frame())
            .await
            .unwrap_or_else(|_| panic!("no final chat event for {session}"))
            .unwrap();
        let p = &frame["payload"];
        if frame["event"] == "chat" && p["sessionKey"] == session && p["state"] != "delta" {
            return p.clone();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_hook_runs_an_isolated_turn_and_its_reply_reaches_telegram() {
    let tg = FakeTelegram::start(TG_TOKEN).await;
    tg.add_chat(FakeChat::private(&FakeUser::new(4242, "Ada")));
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    let mut extra = hooks(json!({}));
    extra["channels"] = json!({"telegram": telegram_config(&tg, json!({}))});
    write_config(&home, &llm, extra);
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let mut s = connect(&gw.url(), &read_token(&home)).await;

    llm.push(Step::text("Inbox: **3** new mails"));
    let (status, body) = post_json(
        &gw.addr,
        "/hooks/agent",
        json!({"message": "Summarise the inbox", "name": "Email", "deliver": true,
               "channel": "telegram", "to": "4242", "timeoutSeconds": 60}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["ok"], true);
    let key = body["sessionKey"].as_str().unwrap().to_owned();
    let run_id = body["runId"].as_str().unwrap().to_owned();
    assert!(key.starts_with("hook:") && key.len() > 30, "{key}");

    // The reply goes to the chat, formatted for Telegram.
    let sent = tg.wait_sent(1, WAIT).await.unwrap();
    assert_eq!(sent[0].chat_id, 4242);
    assert_eq!(sent[0].shown_text, "Inbox: 3 new mails");
    assert!(sent[0].text.contains("<b>3</b>"), "{}", sent[0].text);
    let asked = turns(&llm);
    assert_eq!(asked.len(), 1);
    assert!(asked[0].contains("Summarise the inbox"), "{}", asked[0]);

    // An isolated session: the run is its own, the main session saw nothing.
    let done = s
        .request(
            "agent.wait",
            Some(json!({"runId": run_id, "sessionKey": key})),
        )
        .await
        .unwrap();
    assert_eq!(done["status"], "ok", "{done}");
    assert_eq!(done["text"], "Inbox: **3** new mails");
    let main = s
        .request(
            "chat.history",
            Some(json!({"sessionKey": "agent:main:main"})),
        )
        .await
        .unwrap()
        .to_string();
    assert!(!main.contains("Summarise the inbox"), "{main}");

    // A second request is a new session of its own.
    let (status, again) = post_json(
        &gw.addr,
        "/hooks/agent",
        json!({"message": "again", "deliver": false}),
    )
    .await;
    assert_eq!(status, 202, "{again}");
    assert_ne!(again["sessionKey"], key.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_tokens_big_bodies_and_malformed_requests_are_refused_before_any_agent() {
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_config(&home, &llm, hooks(json!({"maxBodyBytes": 1024})));
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let a = gw.addr.as_str();
    let good = br#"{"message": "run rm -rf /"}"#.to_vec();

    let (status, body) = post(a, "/hooks/agent", &[], good.clone()).await;
    assert_eq!((status, &body["ok"]), (401, &json!(false)), "{body}");
    let wrong = [("authorization", "Bearer not-the-token")];
    assert_eq!(post(a, "/hooks/agent", &wrong, good.clone()).await.0, 401);
    let prefix = [(
        "authorization",
        &format!("Bearer {}", &HOOK_TOKEN[..5]) as &str,
    )];
    assert_eq!(post(a, "/hooks/agent", &prefix, good.clone()).await.0, 401);
    let header = [("x-openclaw-token", "nope")];
    assert_eq!(post(a, "/hooks/wake", &header, good.clone()).await.0, 401);
    // The gateway's own token is not the hook token.
    let gw_token = format!("Bearer {}", read_token(&home));
    let gateway = [("authorization", gw_token.as_str())];
    assert_eq!(post(a, "/hooks/agent", &gateway, good.clone()).await.0, 401);
    // Unauthenticated: refused whatever the size or the path.
    assert_eq!(post(a, "/hooks/agent", &[], vec![b' '; 4096]).await.0, 401);
    assert_eq!(post(a, "/hooks/anything", &[], good.clone()).await.0, 401);

    let (k, v) = bearer();
    let auth = [(k, v.as_str())];
    let big = json!({"message": "x".repeat(4096)})
        .to_string()
        .into_bytes();
    let (status, body) = post(a, "/hooks/agent", &auth, big).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("too large"),
        "{body}"
    );
    let (status, body) = post(a, "/hooks/agent", &auth, b"{\"message\": ".to_vec()).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().starts_with("invalid JSON"),
        "{body}"
    );
    let (status, body) = post(a, "/hooks/agent", &auth, b"[1, 2]".to_vec()).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post_json(a, "/hooks/agent", json!({"name": "no message"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("message required"))
    );
    let (status, body) = post_json(a, "/hooks/wake", json!({"mode": "now"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("text required"))
    );
    let (status, body) =
        post_json(a, "/hooks/agent", json!({"message": "m", "channel": "fax"})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post_json(
        a,
        "/hooks/agent",
        json!({"message": "m", "sessionKey": "agent:main:main"}),
    )
    .await;
    assert_eq!(
        status, 400,
        "request session keys are off by default: {body}"
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("allowRequestSessionKey")
    );
    let (status, _) = post(
        a,
        &format!("/hooks/agent?token={HOOK_TOKEN}"),
        &auth,
        good.clone(),
    )
    .await;
    assert_eq!(status, 400, "tokens in the query string are refused");
    let (status, body) = post_json(a, "/hooks/nothing-mapped", json!({"x": 1})).await;
    assert_eq!(status, 404, "{body}");

    let get = reqwest::Client::new()
        .get(format!("http://{a}/hooks/agent"))
        .header(k, &v)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(turns(&llm).is_empty(), "no request reached the model");
}

#[tokio::test(flavor = "multi_thread")]
async fn hooks_are_off_by_default_and_cannot_be_enabled_without_a_token() {
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_config(&home, &llm, json!({}));
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let (k, v) = bearer();
    for path in ["/hooks/agent", "/hooks/wake"] {
        let (status, _) = post(
            &gw.addr,
            path,
            &[(k, &v)],
            br#"{"message":"m","text":"t"}"#.to_vec(),
        )
        .await;
        assert_eq!(status, 404, "{path}");
    }
    drop(gw);
    assert!(turns(&llm).is_empty());

    let (_dir2, home2) = temp_home();
    write_config(&home2, &llm, json!({"hooks": {"enabled": true}}));
    let mut child = std::process::Command::new(BIN)
        .args(["gateway", "--port", "0"])
        .env("PINCER_HOME", &home2)
        .env_remove("PINCER_GATEWAY_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the gateway started without a hook token"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let shown = text(&out);
    assert!(
        shown.contains("hooks.enabled requires hooks.token"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wake_hook_runs_a_turn_in_the_main_session_as_a_system_event() {
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_config(&home, &llm, hooks(json!({})));
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let mut s = connect(&gw.url(), &read_token(&home)).await;

    let header = [("x-openclaw-token", HOOK_TOKEN)];
    let body = json!({"text": "New email from Ada", "mode": "now"});
    let (status, reply) = post(
        &gw.addr,
        "/hooks/wake",
        &header,
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply, json!({"ok": true, "mode": "now"}));

    let done = final_event(&mut s, "agent:main:main").await;
    assert_eq!(done["state"], "final", "{done}");
    let asked = turns(&llm);
    assert_eq!(asked.len(), 1);
    assert!(
        asked[0].contains("System: New email from Ada"),
        "{}",
        asked[0]
    );
    let history = s
        .request(
            "chat.history",
            Some(json!({"sessionKey": "agent:main:main"})),
        )
        .await
        .unwrap()
        .to_string();
    assert!(history.contains("System: New email from Ada"), "{history}");

    // next-heartbeat: queued for the main agent's next heartbeat, no turn now (the
    // heartbeat side is tested in tests/heartbeat.rs).
    let body = json!({"text": "Backup finished", "mode": "next-heartbeat"});
    let (status, reply) = post(
        &gw.addr,
        "/hooks/wake",
        &header,
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!((status, &reply["mode"]), (200, &json!("next-heartbeat")));
    let hb = s.request("heartbeat.status", None).await.unwrap();
    assert_eq!(hb["agents"][0]["queuedEvents"], 1, "{hb}");
    assert_eq!(turns(&llm).len(), 1, "no turn before the heartbeat");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mapping_turns_a_custom_body_into_the_agent_message_and_the_token_stays_secret() {
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_config(
        &home,
        &llm,
        hooks(json!({"path": "/in", "mappings": [
            {"match": {"path": "github", "source": "github"}, "action": "agent", "name": "GitHub",
             "messageTemplate": "PR #{{pull_request.number}} \"{{pull_request.title}}\" by {{pull_request.user.login}} ({{labels[0].name}})",
             "sessionKey": "hook:github:{{pull_request.number}}", "deliver": false},
            {"match": {"path": "alerts"}, "action": "wake", "textTemplate": "Alert {{alert.name}} is {{alert.state}}"},
        ]})),
    );
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let mut s = connect(&gw.url(), &read_token(&home)).await;

    let pr = json!({"source": "github", "action": "opened",
        "pull_request": {"number": 42, "title": "Fix the flux", "user": {"login": "ada"}},
        "labels": [{"name": "bug"}]});
    let (status, body) = post_json(&gw.addr, "/in/github", pr.clone()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["sessionKey"], "hook:github:42");
    let done = final_event(&mut s, "hook:github:42").await;
    assert_eq!(done["state"], "final", "{done}");
    let asked = turns(&llm);
    assert_eq!(asked.len(), 1);
    let prompt: Value = serde_json::from_str(&asked[0]).unwrap();
    let last = prompt["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["role"], "user");
    assert_eq!(
        last["content"].as_str().map(str::trim),
        Some("PR #42 \"Fix the flux\" by ada (bug)"),
        "{last}"
    );

    // A body from another source, or another path: no mapping takes it.
    let (status, _) = post_json(&gw.addr, "/in/github", json!({"source": "gitlab"})).await;
    assert_eq!(status, 404);
    assert_eq!(post_json(&gw.addr, "/hooks/github", pr).await.0, 404);
    // A wake mapping.
    let alert = json!({"alert": {"name": "disk", "state": "firing"}});
    assert_eq!(post_json(&gw.addr, "/in/alerts", alert).await.0, 200);
    final_event(&mut s, "agent:main:main").await;
    assert!(turns(&llm)[1].contains("System: Alert disk is firing"));

    // config.get never shows the hook token.
    let cfg = s.request("config.get", None).await.unwrap().to_string();
    assert!(!cfg.contains(HOOK_TOKEN), "{cfg}");
    assert!(
        cfg.contains("hook:github:{{pull_request.number}}"),
        "the rest is shown"
    );
}
