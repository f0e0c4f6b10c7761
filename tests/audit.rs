//! The audit log through the real binary: a config change over the gateway and one made
//! in the file, exec approvals approved, denied and left to expire, then `pincer audit`
//! with its filters, in JSON and as lines.

mod support;

use std::time::Duration;

use pincer::client::Session;
use pincer_mockllm::Step;
use serde_json::{Value, json};
use support::*;

/// `$` makes it a command the on-miss policy always asks about.
const COMMAND: &str = "echo $((1234+4321))";
/// Long enough to answer in, short enough to wait for an expiry.
const APPROVAL_TIMEOUT_S: u64 = 3;

/// The next event `wanted` takes (from those already received, then the socket).
async fn event_where(s: &mut Session, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    if let Some(i) = s.events.iter().position(&wanted) {
        return s.events.remove(i);
    }
    loop {
        let f = tokio::time::timeout(Duration::from_secs(20), s.next_frame())
            .await
            .unwrap_or_else(|_| panic!("no {what} within 20 s"))
            .unwrap();
        if f["type"] == "event" && wanted(&f) {
            return f;
        }
    }
}

/// The next event named `name`.
async fn event(s: &mut Session, name: &str) -> Value {
    event_where(s, name, |e| e["event"] == name).await
}

/// Waits for the end of the running turn (its last `chat` event).
async fn turn_ended(s: &mut Session) {
    event_where(s, "the end of the turn", |e| {
        e["event"] == "chat" && e["payload"]["state"] != "delta"
    })
    .await;
}

/// Starts a turn whose model runs `COMMAND`, waits for the approval request and returns
/// its id.
async fn approval_requested(s: &mut Session) -> String {
    s.request(
        "chat.send",
        Some(json!({"sessionKey": "agent:main:main", "message": "run it",
                    "idempotencyKey": uuid::Uuid::new_v4().to_string()})),
    )
    .await
    .unwrap();
    let ev = event(s, "exec.approval.requested").await;
    assert_eq!(ev["payload"]["request"]["command"], COMMAND);
    ev["payload"]["id"].as_str().unwrap().to_owned()
}

/// `pincer audit --json ARGS`: the records.
fn audit_json(home: &std::path::Path, url: &str, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "--json", "--url", url];
    all.extend_from_slice(args);
    let out = pincer(home, &all);
    assert!(out.status.success(), "{all:?}: {}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["records"].as_array().unwrap().clone()
}

fn kinds(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["kind"].as_str().unwrap(),
                r["outcome"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn config_changes_and_approvals_show_in_pincer_audit_with_their_fields() {
    let (_dir, home) = temp_home();
    let llm = mock_llm().await;
    write_mock_config(
        &home,
        &llm,
        json!({"tools": {"exec": {"ask": "on-miss", "approvalTimeoutSeconds": APPROVAL_TIMEOUT_S}}}),
    );
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let url = gw.url();
    let mut s = connect(&url, &read_token(&home)).await;
    assert!(
        audit_json(&home, &url, &[]).is_empty(),
        "a new gateway has no records"
    );
    let out = pincer(&home, &["audit", "--url", &url]);
    assert_eq!(text(&out).trim(), "no audit records yet");

    // An operator changes the config over the gateway.
    let snap = s.request("config.get", None).await.unwrap();
    s.request(
        "config.patch",
        Some(json!({"raw": "{logging: {level: 'debug'}}", "baseHash": snap["hash"]})),
    )
    .await
    .unwrap();

    // Three approvals: denied, approved, and one nobody answers.
    llm.push_all([
        Step::tool_call("exec", json!({ "command": COMMAND })),
        Step::text("Not run."),
        Step::tool_call("exec", json!({ "command": COMMAND })),
        Step::text("Ran it."),
        Step::tool_call("exec", json!({ "command": COMMAND })),
        Step::text("Nobody answered."),
    ]);
    let denied = approval_requested(&mut s).await;
    s.request(
        "exec.approval.resolve",
        Some(json!({"id": denied, "decision": "deny"})),
    )
    .await
    .unwrap();
    // The record is written before `exec.approval.resolved` goes out.
    event(&mut s, "exec.approval.resolved").await;
    turn_ended(&mut s).await;
    let approved = approval_requested(&mut s).await;
    s.request(
        "exec.approval.resolve",
        Some(json!({"id": approved, "decision": "allow-once"})),
    )
    .await
    .unwrap();
    event(&mut s, "exec.approval.resolved").await;
    turn_ended(&mut s).await;
    let expired = approval_requested(&mut s).await;
    let resolved = event(&mut s, "exec.approval.resolved").await;
    assert_eq!(resolved["payload"]["reason"], "timed out");
    turn_ended(&mut s).await;

    let records = audit_json(&home, &url, &[]);
    assert_eq!(
        kinds(&records),
        [
            "config.change applied",
            "approval denied",
            "approval approved",
            "approval expired"
        ]
    );
    let config = &records[0];
    assert_eq!(config["actor"], "operator");
    assert_eq!(config["target"], "pincer.json");
    assert_eq!(config["detail"]["method"], "config.patch");
    assert_eq!(config["detail"]["paths"], json!(["logging.level"]));
    assert!(
        !config.to_string().contains("debug"),
        "paths only, never values: {config}"
    );
    for (r, id, actor) in [
        (&records[1], &denied, "operator:"),
        (&records[2], &approved, "operator:"),
        (&records[3], &expired, "timeout"),
    ] {
        // Answered over the gateway: `operator:<client id>`.
        assert!(r["actor"].as_str().unwrap().starts_with(actor), "{r}");
        assert_eq!(r["target"], "agent:main:main", "{r}");
        assert_eq!(r["agents"], json!(["main"]), "{r}");
        assert_eq!(r["correlationId"], id.as_str(), "{r}");
        assert_eq!(
            r["detail"],
            json!({"tool": "exec", "command": COMMAND}),
            "{r}"
        );
        assert!(r["seq"].as_u64().unwrap() > config["seq"].as_u64().unwrap());
    }

    // Filters: kind prefix, agent, since (unix ms, RFC 3339, a duration), limit.
    assert_eq!(
        kinds(&audit_json(&home, &url, &["--kind", "config"])),
        ["config.change applied"]
    );
    assert_eq!(
        kinds(&audit_json(&home, &url, &["--agent", "main"])),
        ["approval denied", "approval approved", "approval expired"]
    );
    assert!(audit_json(&home, &url, &["--agent", "nobody"]).is_empty());
    let (config_ts, denied_ts) = (
        config["ts"].as_u64().unwrap(),
        records[1]["ts"].as_u64().unwrap(),
    );
    assert!(config_ts < denied_ts, "a turn lies between them");
    let since = denied_ts.to_string();
    assert_eq!(
        kinds(&audit_json(&home, &url, &["--since", &since])),
        ["approval denied", "approval approved", "approval expired"]
    );
    assert_eq!(audit_json(&home, &url, &["--since", "1h"]).len(), 4);
    assert_eq!(
        audit_json(&home, &url, &["--since", "2100-01-01T00:00:00Z"]).len(),
        0
    );
    assert_eq!(
        kinds(&audit_json(&home, &url, &["--limit", "2"])),
        ["approval approved", "approval expired"],
        "the newest N"
    );
    let out = pincer(&home, &["audit", "--url", &url, "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("duration back from now"),
        "{}",
        text(&out)
    );

    // As lines.
    let out = pincer(&home, &["audit", "--url", &url, "--kind", "approval"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].contains(&format!(
            "  approval  operator:cli -> agent:main:main  denied  id {denied}  exec: {COMMAND}"
        )),
        "{stdout}"
    );
    assert!(
        lines[2].contains("approval  timeout -> agent:main:main  expired"),
        "{stdout}"
    );

    // An edit of the file is recorded when the gateway picks it up.
    let out = pincer(&home, &["config", "set", "logging.level", "warn"]);
    assert!(out.status.success(), "{}", text(&out));
    let mut from_file = Vec::new();
    for _ in 0..100 {
        let v = s
            .request("audit.query", Some(json!({"kind": "config.change"})))
            .await
            .unwrap();
        from_file = v["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["actor"] == "config-file")
            .cloned()
            .collect();
        if !from_file.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(from_file.len(), 1, "the file edit was recorded once");
    assert_eq!(from_file[0]["detail"]["paths"], json!(["logging.level"]));
    assert_eq!(from_file[0]["outcome"], "applied");

    // Bad params are refused with what is wrong.
    let err = s
        .request("audit.query", Some(json!({"since": "today"})))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("since must be a time in unix milliseconds"),
        "{err}"
    );

    // Without a gateway, the command says so.
    drop(s);
    drop(gw);
    let out = pincer(&home, &["audit", "--url", &url]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("is it running? start it with `pincer gateway`"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_from_a_chat_button_names_the_user_who_pressed_it() {
    use pincer_fakes::telegram::{FakeTelegram, SentKind};
    let tg = FakeTelegram::start("123456:TEST-token").await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    let account = telegram_config(&tg, json!({"dmPolicy": "open", "execApprovals": true}));
    write_mock_config(&home, &llm, json!({"channels": {"telegram": account}}));
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    llm.push_all([
        Step::tool_call("exec", json!({ "command": COMMAND })),
        Step::text("All done."),
    ]);
    tg.user_message(4242, 4242, "add the numbers");
    let prompt = tg
        .wait_sent(1, Duration::from_secs(20))
        .await
        .unwrap()
        .remove(0);
    let approve =
        prompt.reply_markup.as_ref().expect("buttons")["inline_keyboard"][0][0]["callback_data"]
            .as_str()
            .unwrap()
            .to_owned();
    tg.callback(4242, 4242, prompt.message_id, &approve);
    // The prompt is edited once the approval is resolved, after its record is written.
    let all = tg.wait_sent(3, Duration::from_secs(20)).await.unwrap();
    assert!(all.iter().any(|m| m.kind == SentKind::Edit));

    let records = audit_json(&home, &gw.url(), &["--kind", "approval"]);
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r["actor"], "telegram:default:4242");
    assert_eq!(r["outcome"], "approved");
    assert_eq!(r["target"], "agent:main:main");
    assert_eq!(r["detail"]["command"], COMMAND);
    assert_eq!(
        r["correlationId"].as_str().map(|id| approve.ends_with(id)),
        Some(true),
        "the button carries the approval id: {approve} {r}"
    );
}
