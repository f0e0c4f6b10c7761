//! Outbound messages someone asked for, through the real binary: `pincer message send`,
//! the `send` method over the WebSocket, and the agents' `message` tool, each delivered by
//! the gateway's ChannelActor to a fake Telegram Bot API on loopback.

mod support;

use std::path::Path;
use std::time::Duration;

use pincer_fakes::telegram::{FakeChat, FakeTelegram, FakeUser, SentKind};
use pincer_mockllm::{MockLlm, Step};
use serde_json::{Value, json};
use support::*;

const TOKEN: &str = "123456:TEST-token";
const WAIT: Duration = Duration::from_secs(20);

/// A config with the mock model, `channels` and top-level `tools`.
fn write_config(home: &Path, llm: Option<&MockLlm>, channels: Value, tools: Value) {
    let cfg = json!({"channels": channels, "tools": tools});
    match llm {
        Some(llm) => write_mock_config(home, llm, cfg),
        None => write_config_json(home, &cfg),
    }
}

fn telegram(tg: &FakeTelegram) -> Value {
    telegram_config(tg, json!({"dmPolicy": "open"}))
}

/// A private chat the bot can write to (Telegram refuses chats it has never seen).
fn known_chat(tg: &FakeTelegram, id: i64) {
    tg.add_chat(FakeChat::private(&FakeUser::new(id, "Bob")));
}

/// Waits until every telegram account has connected or failed, and one runs (the
/// gateway prints "listening" before its channels start).
async fn running(gw: &Daemon, home: &Path) {
    let mut s = connect(&gw.url(), &read_token(home)).await;
    poll_channel_accounts(&mut s, "telegram", 100, |accounts| {
        let states: Vec<&str> = accounts
            .iter()
            .filter_map(|a| a["state"].as_str())
            .collect();
        states.contains(&"running") && states.iter().all(|s| ["running", "error"].contains(s))
    })
    .await
    .unwrap_or_else(|_| panic!("the telegram account never ran"));
}

#[tokio::test(flavor = "multi_thread")]
async fn pincer_message_send_arrives_as_html_and_says_it_was_sent() {
    let tg = FakeTelegram::start(TOKEN).await;
    known_chat(&tg, 12345);
    let (_dir, home) = temp_home();
    write_config(&home, None, json!({"telegram": telegram(&tg)}), json!({}));
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    running(&gw, &home).await;
    let url = gw.url();

    let out = pincer(
        &home,
        &[
            "message",
            "send",
            "--channel",
            "telegram",
            "--to",
            "12345",
            "hello **there** & <you>",
            "--url",
            &url,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        text(&out).trim(),
        "sent to telegram:default 12345 (1 message)"
    );
    let sent = tg.wait_sent(1, WAIT).await.unwrap();
    assert_eq!(sent[0].kind, SentKind::Message);
    assert_eq!(sent[0].chat_id, 12345);
    assert_eq!(sent[0].parse_mode.as_deref(), Some("HTML"));
    assert!(
        sent[0].text.contains("<b>there</b> &amp; &lt;you&gt;"),
        "{}",
        sent[0].text
    );
    assert_eq!(sent[0].shown_text, "hello there & <you>");
    assert_eq!(sent[0].reply_to_message_id, None, "it answers nothing");

    // OpenClaw's spellings, the only channel by default, and JSON out.
    let out = pincer(
        &home,
        &[
            "message", "send", "--target", "12345", "-m", "second", "--json", "--url", &url,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "sent", "{v}");
    assert_eq!(v["channel"], "telegram");
    assert_eq!(v["accountId"], "default");
    assert!(
        v["messageId"].as_str().unwrap().starts_with("12345/"),
        "{v}"
    );
    let sent = tg.wait_sent(2, WAIT).await.unwrap();
    assert_eq!(sent[1].shown_text, "second");

    // A chat Telegram does not know: the platform's reason, exit 1, nothing sent.
    let out = pincer(
        &home,
        &["message", "send", "--to", "999", "lost", "--url", &url],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("chat not found"), "{}", text(&out));
    assert_eq!(tg.sent().len(), 2);
    // --no-wait: answered once the gateway has it (outbox), delivered all the same.
    let out = pincer(
        &home,
        &[
            "message",
            "send",
            "--to",
            "12345",
            "--no-wait",
            "third",
            "--url",
            &url,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.starts_with("queued for telegram:default 12345 (outbox #")
            || shown.starts_with("sent to telegram:default 12345"),
        "{shown}"
    );
    let sent = tg.wait_sent(3, WAIT).await.unwrap();
    assert_eq!(sent[2].shown_text, "third");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_channels_accounts_and_texts_are_refused_with_what_to_do() {
    let tg = FakeTelegram::start(TOKEN).await;
    known_chat(&tg, 1);
    let (_dir, home) = temp_home();
    write_config(
        &home,
        None,
        json!({"telegram": {
            "apiBaseUrl": tg.api_url(), "pollTimeoutSeconds": 1,
            "accounts": {
                "main": {"botToken": tg.token()},
                "broken": {"botToken": "999:revoked"},
            }
        }}),
        json!({}),
    );
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    running(&gw, &home).await;
    let url = gw.url();
    let refused = |args: &[&str], wanted: &[&str]| {
        let mut all = vec!["message", "send"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--url", &url]);
        let out = pincer(&home, &all);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {shown}");
        for w in wanted {
            assert!(shown.contains(w), "{args:?}: {w:?} not in {shown}");
        }
    };
    refused(
        &["--channel", "slack", "--to", "1", "hi"],
        &[
            "no slack account is configured",
            "telegram:broken, telegram:main",
        ],
    );
    refused(
        &["--channel", "telegram", "--to", "1", "hi"],
        &["several accounts", "--account"],
    );
    refused(
        &["--account", "nope", "--to", "1", "hi"],
        &["no account \"nope\"", "telegram:main"],
    );
    refused(
        &["--account", "broken", "--to", "1", "hi"],
        &["telegram:broken is not running", "restart the gateway"],
    );
    refused(&["--account", "main", "--to", "1", "  "], &["empty"]);
    let long = "x".repeat(70 * 1024);
    refused(&["--account", "main", "--to", "1", &long], &["64 KiB"]);
    // No text at all is the command line's to refuse.
    let out = pincer(&home, &["message", "send", "--to", "1", "--url", &url]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(tg.sent().is_empty(), "{:?}", tg.sent());

    // The right account sends.
    let out = pincer(
        &home,
        &[
            "message",
            "send",
            "--account",
            "main",
            "--to",
            "1",
            "ok",
            "--url",
            &url,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("sent to telegram:main 1"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_messages_another_chat_with_the_message_tool() {
    let tg = FakeTelegram::start(TOKEN).await;
    known_chat(&tg, 5555);
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_config(
        &home,
        Some(&llm),
        json!({"telegram": telegram(&tg)}),
        json!({"allow": ["message"], "exec": {"ask": "off"}}),
    );
    let _gw = Daemon::start(&home, &["--port", "0"], &[]);
    llm.push(Step::tool_call(
        "message",
        json!({"action": "send", "channel": "telegram", "to": "5555", "text": "Bob, **lunch** at noon?"}),
    ));
    llm.push(Step::text("I asked Bob."));
    tg.user_message(4242, 4242, "ask Bob (5555) about lunch");
    let sent = tg.wait_sent(2, WAIT).await.unwrap();
    assert_eq!(sent[0].chat_id, 5555, "{sent:?}");
    assert!(sent[0].text.contains("<b>lunch</b>"), "{}", sent[0].text);
    assert_eq!(sent[0].reply_to_message_id, None);
    assert_eq!(sent[1].chat_id, 4242);
    assert_eq!(sent[1].shown_text, "I asked Bob.");
    // The model was offered the tool and saw that the message went out.
    let reqs = llm.requests();
    let offered = reqs[0].body["tools"].as_array().unwrap();
    assert!(
        offered.iter().any(|t| t["function"]["name"] == "message"),
        "the tool is offered: {offered:?}"
    );
    let second = reqs[1].body.to_string();
    assert!(
        second.contains("sent to telegram:default 5555 (1 message)"),
        "{second}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_that_denies_message_or_an_unapproved_call_sends_nothing() {
    for (tools, refusal) in [
        (
            json!({"profile": "messaging", "deny": ["message"], "exec": {"ask": "off"}}),
            "not available to this agent",
        ),
        // Allowed but high risk: with the default ask (on-miss) the operator must approve,
        // and nobody does.
        (
            json!({"allow": ["message"], "exec": {"approvalTimeoutSeconds": 1}}),
            "was not approved",
        ),
    ] {
        let tg = FakeTelegram::start(TOKEN).await;
        known_chat(&tg, 5555);
        let llm = mock_llm().await;
        let (_dir, home) = temp_home();
        write_config(&home, Some(&llm), json!({"telegram": telegram(&tg)}), tools);
        let _gw = Daemon::start(&home, &["--port", "0"], &[]);
        llm.push(Step::tool_call(
            "message",
            json!({"action": "send", "to": "5555", "text": "spam"}),
        ));
        llm.push(Step::text("I could not send it."));
        tg.user_message(4242, 4242, "message 5555");
        let sent = tg.wait_sent(1, WAIT).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let sent_now = tg.sent();
        assert_eq!(sent_now.len(), 1, "only the answer: {sent_now:?}");
        assert_eq!(sent[0].chat_id, 4242);
        assert_eq!(sent[0].shown_text, "I could not send it.");
        let reqs = llm.requests();
        let second = reqs.last().unwrap().body.to_string();
        assert!(second.contains(refusal), "{refusal:?} not in {second}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_send_method_sends_once_per_idempotency_key() {
    let tg = FakeTelegram::start(TOKEN).await;
    known_chat(&tg, 77);
    let (_dir, home) = temp_home();
    write_config(&home, None, json!({"telegram": telegram(&tg)}), json!({}));
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    running(&gw, &home).await;
    let mut s = connect(&gw.url(), &read_token(&home)).await;
    let params = json!({"to": "77", "message": "only once", "channel": "telegram",
        "idempotencyKey": "k-1"});
    let first = s.request("send", Some(params.clone())).await.unwrap();
    let again = s.request("send", Some(params)).await.unwrap();
    assert_eq!(first["status"], "sent", "{first}");
    assert_eq!(first, again, "the repeat gets the first answer");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(tg.sent().len(), 1, "{:?}", tg.sent());

    // A new key is a new message; a bad request is INVALID_REQUEST.
    let other = s
        .request(
            "send",
            Some(json!({"to": "77", "message": "twice", "idempotencyKey": "k-2"})),
        )
        .await
        .unwrap();
    assert_ne!(other["outboxId"], first["outboxId"]);
    let e = s
        .request(
            "send",
            Some(json!({"to": "77", "message": "", "idempotencyKey": "k-3"})),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("INVALID_REQUEST"), "{e}");
    let e = s
        .request(
            "send",
            Some(
                json!({"to": "77", "message": "pic", "mediaUrl": "https://x/y.png",
                "idempotencyKey": "k-4"}),
            ),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("mediaUrl"), "{e}");
    assert_eq!(tg.wait_sent(2, WAIT).await.unwrap().len(), 2);
}
