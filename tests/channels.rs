//! Channels end to end through the real binary: a fake Telegram Bot API on loopback, the
//! gateway's ChannelActor polling it, a session and a turn against the mock LLM, and the
//! reply sent back formatted and chunked.

mod support;

use std::time::Duration;

use pincer_fakes::telegram::{FakeTelegram, Fault, SentKind};
use pincer_mockllm::Step;
use serde_json::json;
use support::*;

const TOKEN: &str = "123456:TEST-token";
const WAIT: Duration = Duration::from_secs(20);

/// A fake Bot API, the mock LLM and a state directory whose config takes DMs from anyone.
async fn open_dm_setup() -> (
    FakeTelegram,
    pincer_mockllm::MockLlm,
    tempfile::TempDir,
    std::path::PathBuf,
) {
    let tg = FakeTelegram::start(TOKEN).await;
    let llm = mock_llm().await;
    let (dir, home) = temp_home();
    write_channels_config(
        &home,
        &llm,
        json!({"telegram": telegram_config(&tg, json!({"dmPolicy": "open"}))}),
    );
    (tg, llm, dir, home)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_telegram_dm_gets_its_agent_reply_as_html_in_chunks_answering_the_message() {
    let (tg, llm, _dir, home) = open_dm_setup().await;
    let _gw = Daemon::start(&home, &["--port", "0"], &[]);

    // A reply longer than Telegram's 4096-character limit, with Markdown.
    let para = "The **quick** brown fox jumps over the lazy dog. ".repeat(40);
    let long = format!("{para}\n\n{para}\n\n{para}");
    llm.push(Step::text(long.clone()));
    let update = tg.user_message(4242, 4242, "hello there");
    // About 6,200 characters of HTML: three chunks, split between paragraphs.
    let sent = tg.wait_sent(3, WAIT).await.unwrap();
    assert_eq!(sent.len(), 3, "{sent:?}");
    for m in &sent {
        assert_eq!(m.kind, SentKind::Message);
        assert_eq!(m.chat_id, 4242);
        assert_eq!(m.parse_mode.as_deref(), Some("HTML"));
        assert!(m.text.len() <= 4096);
        assert!(m.text.contains("<b>quick</b>"), "{}", m.text);
        assert!(m.entities.iter().any(|e| e["type"] == "bold"));
    }
    let shown: String = sent
        .iter()
        .map(|m| m.shown_text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        shown.split_whitespace().collect::<Vec<_>>(),
        long.replace("**", "")
            .split_whitespace()
            .collect::<Vec<_>>(),
        "every word arrives, in order"
    );
    assert!(sent[0].reply_to_message_id.is_some());
    // The model saw the user's text; the update was acknowledged (offset moved on).
    let asked = llm.requests().last().unwrap().body.to_string();
    assert!(asked.contains("hello there"), "{asked}");
    assert!(update > 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tg.pending_updates().is_empty(),
        "the update was acknowledged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_sender_gets_a_pairing_code_and_once_approved_reaches_the_agent() {
    let tg = FakeTelegram::start(TOKEN).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    // A second account whose token Telegram refuses: reported, and it never gets in the
    // way of the first.
    write_channels_config(
        &home,
        &llm,
        json!({"telegram": {
            "apiBaseUrl": tg.api_url(), "pollTimeoutSeconds": 1,
            "accounts": {
                "main": {"botToken": tg.token()},
                "broken": {"botToken": "999:revoked"},
            }
        }}),
    );
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let mut s = connect(&gw.url(), &read_token(&home)).await;

    tg.user_message(777, 777, "let me in");
    let sent = tg.wait_sent(1, WAIT).await.unwrap();
    let code = sent[0]
        .shown_text
        .split_whitespace()
        .find(|w| w.len() == 9 && w.ends_with('.'))
        .map(|w| w.trim_end_matches('.').to_owned())
        .unwrap_or_else(|| panic!("no code in {:?}", sent[0].shown_text));
    assert!(
        sent[0]
            .shown_text
            .contains("pincer pairing approve telegram")
    );
    assert_eq!(
        model_turns(&llm),
        0,
        "an unpaired sender never reaches the agent"
    );

    let list = s.request("pairing.list", None).await.unwrap();
    assert_eq!(list["requests"][0]["code"], code.as_str());
    assert_eq!(list["requests"][0]["status"], "pending");
    let wrong = s
        .request(
            "pairing.approve",
            Some(json!({"channel": "telegram", "code": "NOPE2345"})),
        )
        .await;
    assert!(wrong.is_err());
    // The owner approves with the CLI (codes are case-insensitive).
    let url = gw.url();
    let out = pincer(
        &home,
        &[
            "pairing",
            "approve",
            "telegram",
            &code.to_lowercase(),
            "--url",
            &url,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("approved 777"), "{}", text(&out));

    llm.push(Step::text("welcome aboard"));
    tg.user_message(777, 777, "hello again");
    let sent = tg.wait_sent(2, WAIT).await.unwrap();
    assert_eq!(sent[1].shown_text, "welcome aboard");

    // The tokens are secrets: config.get never shows them.
    let cfg = s.request("config.get", None).await.unwrap().to_string();
    assert!(
        !cfg.contains(tg.token()) && !cfg.contains("999:revoked"),
        "{cfg}"
    );

    let out = pincer(&home, &["channels", "status", "--url", &url]);
    let shown = text(&out);
    assert!(shown.contains("telegram:main  running as @"), "{shown}");
    assert!(shown.contains("telegram:broken  error"), "{shown}");
    // The web chat (this very client) is listed with the chat apps.
    assert!(
        shown.contains("webchat:default  running at ws://") && shown.contains("clients connected"),
        "{shown}"
    );

    let st = s.request("channels.status", None).await.unwrap();
    assert_eq!(st["channels"]["webchat"]["running"], true, "{st}");
    assert!(
        st["channelAccounts"]["webchat"][0]["connectedClients"].as_u64() >= Some(1),
        "{st}"
    );
    let accounts = st["channelAccounts"]["telegram"].as_array().unwrap();
    let by = |id: &str| {
        accounts
            .iter()
            .find(|a| a["accountId"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by("main")["state"], "running", "{st}");
    let broken = by("broken");
    assert_eq!(broken["state"], "error", "{st}");
    assert!(
        broken["lastError"].as_str().unwrap().contains("botToken"),
        "{broken}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redeliveries_rate_limits_and_outages_lose_nothing_and_answer_nothing_twice() {
    let tg = FakeTelegram::start(TOKEN).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_channels_config(
        &home,
        &llm,
        json!({"telegram": telegram_config(&tg, json!({"dmPolicy": "allowlist", "allowFrom": [5]}))}),
    );
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let mut s = connect(&gw.url(), &read_token(&home)).await;

    // The platform is down for a while, then rate-limits three sends in a row.
    tg.fail_times("getUpdates", Fault::ServerError(502), 2);
    tg.fail_times(
        "sendMessage",
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
        3,
    );
    // The same message twice (as after a lost offset): taken in once.
    let one = tg.new_user_message(5, 5, "one");
    tg.push_update(one.clone());
    tg.push_update(one);
    tg.user_message(5, 5, "two");
    // A stranger is refused by the allowlist and never answered.
    tg.user_message(6, 6, "let me in");
    let sent = tg.wait_sent(2, Duration::from_secs(30)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent_now = tg.sent();
    assert_eq!(
        sent_now.len(),
        2,
        "each message answered once: {sent_now:?}"
    );
    let texts: Vec<&str> = sent.iter().map(|m| m.shown_text.as_str()).collect();
    assert!(texts.iter().any(|t| t.contains("one")), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("two")), "{texts:?}");
    assert!(sent_now.iter().all(|m| m.chat_id == 5));
    assert_eq!(
        model_turns(&llm),
        2,
        "the redelivered update made no second turn"
    );
    // The stranger's update may come in a later page than the answered ones: wait for it
    // to be counted rather than assume it was.
    let st = poll_channel_accounts(&mut s, "telegram", 200, |a| a[0]["denied"] == 1)
        .await
        .unwrap_or_else(|st| panic!("the stranger was never refused: {st}"));
    let a = &st["channelAccounts"]["telegram"][0];
    assert!(a["duplicates"].as_u64().unwrap() >= 1, "{a}");
    assert_eq!(a["denied"], 1, "{a}");
    assert_eq!(a["outbound"], 2, "{a}");
    assert_eq!(tg.sent().len(), 2, "the stranger got no answer");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_channel_actor_restarts_and_sends_its_reply_while_another_account_serves() {
    let tg = FakeTelegram::start(TOKEN).await;
    let other = FakeTelegram::start("654321:OTHER-token").await;
    // Another platform beside them: it keeps serving while account a crashes. (All three
    // DMs share the main session, dmScope main: messages collected into one turn from
    // different chats each get the reply.)
    let slack = pincer_fakes::slack::FakeSlack::start(
        "xoxb-1111-2222-TESTTOKEN",
        "8f742231b10e8888abcd99yyyzzz85a5",
    )
    .await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_channels_config(
        &home,
        &llm,
        json!({
            "telegram": {"dmPolicy": "open", "pollTimeoutSeconds": 1, "accounts": {
                "a": {"botToken": tg.token(), "apiBaseUrl": tg.api_url()},
                "b": {"botToken": other.token(), "apiBaseUrl": other.api_url()},
            }},
            "slack": slack_config(&slack, json!({})),
        }),
    );
    // Account a's actor panics on its first message (the first reply to deliver).
    let gw = Daemon::start(
        &home,
        &[
            "--port",
            "0",
            "--inject-fault",
            "channel-telegram-a:panic@1",
        ],
        &[],
    );
    let mut s = connect(&gw.url(), &read_token(&home)).await;
    slack.set_request_url(&format!("http://{}/channels/slack", gw.addr));
    slack
        .wait_calls("auth.test", 1, Duration::from_secs(20))
        .await
        .unwrap();
    tg.user_message(1, 1, "to a");
    other.user_message(2, 2, "to b");
    let d = slack
        .send_message("D0USER0001", "U0USER0001", "to slack")
        .await
        .unwrap();
    assert_eq!(d.reply.as_ref().map(|r| r.status).ok(), Some(200), "{d:?}");
    let a = tg.wait_sent(1, WAIT).await.unwrap();
    let b = other.wait_sent(1, WAIT).await.unwrap();
    let on_slack = slack.wait_posted(1, WAIT).await.unwrap();
    assert!(a[0].shown_text.contains("to a"), "{a:?}");
    assert!(b[0].shown_text.contains("to b"), "{b:?}");
    assert!(
        on_slack[0]
            .text
            .as_deref()
            .unwrap_or("")
            .contains("to slack"),
        "{on_slack:?}"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(tg.sent().len(), 1, "answered once after the restart");
    assert_eq!(other.sent().len(), 1);
    assert_eq!(slack.posted().len(), 1, "slack answered once");
    let st = s.request("channels.status", None).await.unwrap();
    let accounts = st["channelAccounts"]["telegram"].as_array().unwrap();
    let starts = |id: &str| {
        accounts.iter().find(|x| x["accountId"] == id).unwrap()["starts"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(starts("a"), 2, "{st}");
    assert_eq!(starts("b"), 1, "{st}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_being_sent_at_a_clean_stop_is_finished_and_never_sent_again() {
    let (tg, llm, _dir, home) = open_dm_setup().await;
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    // The platform takes 1.5 s to answer the reply's send; the stop comes meanwhile.
    tg.fail_next("sendMessage", Fault::Slow { millis: 1500 });
    llm.push(Step::text("the answer"));
    tg.user_message(77, 77, "question");
    let deadline = std::time::Instant::now() + WAIT;
    while tg.calls("sendMessage").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the reply was never sent"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw.signal(libc::SIGTERM);
    let (code, lines) = gw.wait();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    // The stop waited for the send in flight instead of cutting it off.
    assert_eq!(tg.sent().len(), 1, "sent before the gateway exited");
    // Recorded as sent: the next start has nothing to send again.
    let _gw = Daemon::start(&home, &["--port", "0"], &[]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let texts: Vec<String> = tg.sent().into_iter().map(|m| m.shown_text).collect();
    assert_eq!(texts, ["the answer"], "answered once");
}
