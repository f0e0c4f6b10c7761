//! The Slack channel end to end through the real binary: a fake Slack (Web API and signed
//! Events API deliveries) on loopback, the gateway's webhook route taking its events, a
//! session and a turn against the mock LLM, and the reply posted back as mrkdwn.

mod support;

use std::time::Duration;

use pincer_fakes::slack::{Delivery, FakeSlack, Fault, Signing};
use pincer_mockllm::Step;
use serde_json::json;
use support::*;

const TOKEN: &str = "xoxb-1111-2222-TESTTOKEN";
const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const WAIT: Duration = Duration::from_secs(20);
const DM: &str = "D0USER0001";
const USER: &str = "U0USER0001";

fn status(d: &Delivery) -> u16 {
    d.reply.as_ref().map(|r| r.status).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn url_verification_is_answered_and_a_refused_token_is_reported() {
    let slack = FakeSlack::start(TOKEN, SECRET).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_channels_config(
        &home,
        &llm,
        json!({"slack": {
            "signingSecret": SECRET, "apiBaseUrl": slack.api_url(), "dmPolicy": "open",
            "accounts": {
                "default": {"botToken": TOKEN},
                "broken": {"botToken": "xoxb-revoked"},
            }
        }}),
    );
    let gw = start_slack_gateway(&home, &slack).await;
    let v = slack.url_verification().await.unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.reply.status, 200);

    let mut s = connect(&gw.url(), &read_token(&home)).await;
    let last = poll_channel_accounts(&mut s, "slack", 100, |accounts| {
        let state = |id: &str| {
            accounts
                .iter()
                .find(|a| a["accountId"] == id)
                .map(|a| a["state"].clone())
        };
        state("default") == Some(json!("running")) && state("broken") == Some(json!("error"))
    })
    .await
    .unwrap_or_else(|last| last);
    let accounts = last["channelAccounts"]["slack"].as_array().unwrap();
    let by = |id: &str| accounts.iter().find(|a| a["accountId"] == id).unwrap();
    assert_eq!(by("default")["state"], "running", "{last}");
    assert_eq!(by("broken")["state"], "error", "{last}");
    assert!(
        by("broken")["lastError"]
            .as_str()
            .unwrap()
            .contains("botToken"),
        "{last}"
    );
    let cfg = s.request("config.get", None).await.unwrap().to_string();
    assert!(!cfg.contains(TOKEN) && !cfg.contains(SECRET), "{cfg}");
    assert_eq!(model_turns(&llm), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dm_gets_its_agent_reply_as_mrkdwn_and_a_thread_reply_stays_in_its_thread() {
    let slack = FakeSlack::start(TOKEN, SECRET).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_channels_config(
        &home,
        &llm,
        json!({"slack": slack_config(&slack, json!({}))}),
    );
    let _gw = start_slack_gateway(&home, &slack).await;

    llm.push(Step::text("Here is **bold** text & more."));
    let ev = slack.new_message(DM, USER, "hello there");
    let d = slack.deliver_event(&ev).await.unwrap();
    assert_eq!(status(&d), 200, "{d:?}");
    let posted = slack.wait_posted(1, WAIT).await.unwrap();
    assert_eq!(posted[0].channel, DM);
    let text = posted[0].text.as_deref().unwrap();
    assert!(text.contains("*bold*") && !text.contains("**"), "{text}");
    assert!(text.contains("&amp;"), "{text}");
    assert_eq!(posted[0].thread_ts, None);
    let asked = llm.requests().last().unwrap().body.to_string();
    assert!(asked.contains("hello there"), "{asked}");

    // A reply in the thread of that message: answered in the thread.
    let parent = ev["event"]["ts"].as_str().unwrap().to_owned();
    llm.push(Step::text("in the thread"));
    let d = slack
        .send_thread_reply(DM, USER, "and in a thread", &parent)
        .await
        .unwrap();
    assert_eq!(status(&d), 200, "{d:?}");
    let posted = slack.wait_posted(2, WAIT).await.unwrap();
    assert_eq!(posted[1].channel, DM);
    assert_eq!(posted[1].text.as_deref(), Some("in the thread"));
    assert_eq!(posted[1].thread_ts.as_deref(), Some(parent.as_str()));
    // The bot's own posts never come back as turns; every call carried the bot token.
    assert_eq!(model_turns(&llm), 2);
    assert!(
        slack
            .calls("chat.postMessage")
            .iter()
            .all(|c| c.token.as_deref() == Some(TOKEN))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_stale_and_malformed_requests_are_refused_and_reach_no_agent() {
    let slack = FakeSlack::start(TOKEN, SECRET).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_channels_config(
        &home,
        &llm,
        json!({"slack": slack_config(&slack, json!({}))}),
    );
    let _gw = start_slack_gateway(&home, &slack).await;

    let ev = slack.new_message(DM, USER, "let me in");
    for signing in [
        Signing::WrongSecret,
        Signing::Stale { age_secs: 600 },
        Signing::Tampered,
        Signing::Unsigned,
    ] {
        let d = slack
            .deliver_event_with(&ev, None, signing.clone())
            .await
            .unwrap();
        assert_eq!(status(&d), 401, "{signing:?}: {d:?}");
    }
    let d = slack
        .deliver_raw(
            None,
            "application/json",
            b"{\"type\": \"event_callback\", ".to_vec(),
            Signing::Valid,
        )
        .await
        .unwrap();
    assert_eq!(status(&d), 400, "{d:?}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(model_turns(&llm), 0, "no refused request reached the model");
    assert!(slack.posted().is_empty());

    // The same event, signed properly, was never marked seen: it is answered.
    llm.push(Step::text("now you are in"));
    let d = slack.deliver_event(&ev).await.unwrap();
    assert_eq!(status(&d), 200, "{d:?}");
    let posted = slack.wait_posted(1, WAIT).await.unwrap();
    assert_eq!(posted[0].text.as_deref(), Some("now you are in"));
    assert_eq!(model_turns(&llm), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivered_event_is_answered_once() {
    let slack = FakeSlack::start(TOKEN, SECRET).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_channels_config(
        &home,
        &llm,
        json!({"slack": slack_config(&slack, json!({}))}),
    );
    let gw = start_slack_gateway(&home, &slack).await;

    llm.push(Step::text("only once"));
    let ev = slack.new_message(DM, USER, "are you there?");
    let first = slack.deliver_event(&ev).await.unwrap();
    assert_eq!(status(&first), 200, "{first:?}");
    for n in 1..=2 {
        let again = slack.redeliver_event(&ev, n, "http_timeout").await.unwrap();
        assert_eq!(
            status(&again),
            200,
            "a redelivery is acknowledged: {again:?}"
        );
    }
    slack.wait_posted(1, WAIT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(slack.posted().len(), 1, "{:?}", slack.posted());
    assert_eq!(model_turns(&llm), 1, "the redeliveries made no second turn");
    let mut s = connect(&gw.url(), &read_token(&home)).await;
    let st = s.request("channels.status", None).await.unwrap();
    let a = &st["channelAccounts"]["slack"][0];
    assert!(a["duplicates"].as_u64().unwrap() >= 2, "{a}");
    assert_eq!(a["outbound"], 1, "{a}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_post_is_retried_and_delivered_once() {
    let slack = FakeSlack::start(TOKEN, SECRET).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_channels_config(
        &home,
        &llm,
        json!({"slack": slack_config(&slack, json!({}))}),
    );
    let _gw = start_slack_gateway(&home, &slack).await;

    slack.fail_times(
        "chat.postMessage",
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        2,
    );
    llm.push(Step::text("patience pays"));
    let d = slack.send_message(DM, USER, "hi").await.unwrap();
    assert_eq!(status(&d), 200, "{d:?}");
    let posted = slack.wait_posted(1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(posted[0].text.as_deref(), Some("patience pays"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(slack.posted().len(), 1);
    let calls = slack.calls("chat.postMessage");
    assert_eq!(calls.len(), 3, "two refused, then sent: {calls:?}");
    assert!(calls[0].fault.is_some() && calls[1].fault.is_some() && calls[2].fault.is_none());
}
