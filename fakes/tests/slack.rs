//! The fake Slack over real HTTP: the Web API with reqwest (shapes, Slack's error codes,
//! faults), and Events API / interactivity deliveries to a small app in the test that
//! checks Slack's signature with `pincer_fakes::slack::signature`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use pincer_fakes::slack::{
    ChannelType, FakeSlack, Fault, PostKind, Signing, SlackChannel, SlackUser, signature,
};
use serde_json::{Value, json};

const TOKEN: &str = "xoxb-1111-2222-pincer";
const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().expect("reqwest client")
}

async fn api(c: &reqwest::Client, slack: &FakeSlack, method: &str, body: Value) -> Value {
    let resp = c
        .post(format!("{}{method}", slack.api_url()))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("an HTTP answer");
    assert_eq!(resp.status(), 200, "Slack answers errors with 200 too");
    resp.json().await.expect("a JSON body")
}

async fn error_of(c: &reqwest::Client, slack: &FakeSlack, method: &str, body: Value) -> String {
    let v = api(c, slack, method, body).await;
    assert_eq!(v["ok"], false, "{v}");
    v["error"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_web_api_posts_threads_and_updates_with_slacks_shapes() {
    let slack = FakeSlack::start(TOKEN, SECRET).await;
    let c = client();
    assert!(slack.api_url().ends_with("/api/"));

    let me = api(&c, &slack, "auth.test", json!({})).await;
    assert_eq!(me["ok"], true);
    assert_eq!(me["user_id"], slack.bot_user_id());
    assert_eq!(me["team_id"], slack.team_id());
    assert_eq!(me["bot_id"], slack.bot_id());

    slack.add_channel(SlackChannel::from_id("C0GENERAL1"));
    let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]);
    let posted = api(
        &c,
        &slack,
        "chat.postMessage",
        json!({"channel": "C0GENERAL1", "text": "hi", "blocks": blocks}),
    )
    .await;
    assert_eq!(posted["ok"], true, "{posted}");
    assert_eq!(posted["channel"], "C0GENERAL1");
    let ts = posted["ts"].as_str().unwrap().to_owned();
    let (secs, micros) = ts.split_once('.').expect("ts is seconds.micros");
    assert!(secs.parse::<u64>().unwrap() > 1_600_000_000);
    assert_eq!(micros.len(), 6);
    let m = &posted["message"];
    assert_eq!(m["ts"], json!(ts));
    assert_eq!(m["bot_id"], slack.bot_id());
    assert_eq!(m["user"], slack.bot_user_id());
    assert_eq!(m["blocks"], blocks);

    // a thread reply, form-encoded with the token as a parameter
    let resp = c
        .post(format!("{}chat.postMessage", slack.api_url()))
        .form(&[
            ("token", TOKEN),
            ("channel", "C0GENERAL1"),
            ("text", "in thread"),
            ("thread_ts", &ts),
        ])
        .send()
        .await
        .unwrap();
    let reply: Value = resp.json().await.unwrap();
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["message"]["thread_ts"], json!(ts));
    assert!(reply["ts"].as_str().unwrap() > ts.as_str(), "ts only grows");

    let updated = api(
        &c,
        &slack,
        "chat.update",
        json!({"channel": "C0GENERAL1", "ts": ts, "text": "edited"}),
    )
    .await;
    assert_eq!(updated["ok"], true, "{updated}");
    assert_eq!(updated["text"], "edited");
    assert_eq!(updated["message"]["text"], "edited");
    assert!(updated["message"]["edited"]["ts"].is_string());
    assert_eq!(slack.message("C0GENERAL1", &ts).unwrap()["text"], "edited");

    let posts = slack.posted();
    let kinds: Vec<PostKind> = posts.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, [PostKind::Post, PostKind::Post, PostKind::Update]);
    assert_eq!(posts[1].thread_ts.as_deref(), Some(ts.as_str()));
    assert_eq!(posts[0].blocks.as_ref(), Some(&blocks));

    let info = api(
        &c,
        &slack,
        "conversations.info",
        json!({"channel": "C0GENERAL1"}),
    )
    .await;
    assert_eq!(info["channel"]["is_channel"], true);
    assert_eq!(info["channel"]["is_im"], false);
    slack.add_user(SlackUser::new("U0ALICE001", "alice"));
    let user = api(&c, &slack, "users.info", json!({"user": "U0ALICE001"})).await;
    assert_eq!(user["user"]["name"], "alice");
    assert_eq!(user["user"]["profile"]["display_name"], "alice");
    assert_eq!(slack.calls("chat.postMessage").len(), 2);
}

#[tokio::test]
async fn the_web_api_refuses_as_slack_does() {
    let slack = FakeSlack::start(TOKEN, SECRET).await;
    let c = client();
    slack.add_channel(SlackChannel::from_id("C0GENERAL1"));

    let no_token: Value = c
        .post(format!("{}auth.test", slack.api_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(no_token, json!({"ok": false, "error": "not_authed"}));
    let wrong: Value = c
        .post(format!("{}auth.test", slack.api_url()))
        .bearer_auth("xoxb-wrong")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(wrong["error"], "invalid_auth");

    let post = |body: Value| error_of(&c, &slack, "chat.postMessage", body);
    assert_eq!(
        post(json!({"channel": "C0NOWHERE1", "text": "x"})).await,
        "channel_not_found"
    );
    assert_eq!(post(json!({"channel": "C0GENERAL1"})).await, "no_text");
    assert_eq!(
        post(json!({"channel": "C0GENERAL1", "text": "x".repeat(40_001)})).await,
        "msg_too_long"
    );
    assert_eq!(
        post(json!({"channel": "C0GENERAL1", "blocks": [{"text": "no type"}]})).await,
        "invalid_blocks"
    );
    // exactly at the limit goes through
    let long = api(
        &c,
        &slack,
        "chat.postMessage",
        json!({"channel": "C0GENERAL1", "text": "é".repeat(40_000)}),
    )
    .await;
    assert_eq!(long["ok"], true);

    let update = |body: Value| error_of(&c, &slack, "chat.update", body);
    assert_eq!(
        update(json!({"channel": "C0GENERAL1", "ts": "1.000001", "text": "x"})).await,
        "message_not_found"
    );
    let user_msg = slack.new_message("C0GENERAL1", "U0ALICE001", "mine");
    let user_ts = user_msg["event"]["ts"].as_str().unwrap();
    assert_eq!(
        update(json!({"channel": "C0GENERAL1", "ts": user_ts, "text": "x"})).await,
        "cant_update_message"
    );
    assert_eq!(
        error_of(&c, &slack, "users.info", json!({"user": "U0NOBODY01"})).await,
        "user_not_found"
    );
    assert_eq!(
        error_of(&c, &slack, "chat.pigeon", json!({})).await,
        "unknown_method"
    );
    let calls = slack.requests();
    assert!(!calls[0].token_ok && calls[0].token.is_none());
    assert_eq!(calls[1].token.as_deref(), Some("xoxb-wrong"));
}

#[tokio::test]
async fn faults_come_in_slacks_shapes_and_only_once() {
    let slack = FakeSlack::start(TOKEN, SECRET).await;
    let c = client();
    let url = format!("{}auth.test", slack.api_url());
    let send = || c.post(&url).bearer_auth(TOKEN).send();

    slack.fail_next(
        "auth.test",
        Fault::RateLimited {
            retry_after_secs: 7,
        },
    );
    let r = send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"ok": false, "error": "ratelimited"})
    );

    slack.fail_next("*", Fault::ServerError(500));
    let r = send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "fatal_error");

    slack.fail_next("auth.test", Fault::ServerError(503));
    let r = send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("<html>"));

    slack.fail_next("auth.test", Fault::Malformed);
    let r = send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.json::<Value>().await.is_err(), "cut-off JSON");

    slack.fail_next("auth.test", Fault::Drop);
    assert!(
        send().await.is_err(),
        "the connection closes without an answer"
    );

    slack.fail_next("auth.test", Fault::InvalidToken);
    let v: Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(v["error"], "invalid_auth");

    let v: Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(v["ok"], true, "faults are used up");
    let faults: Vec<_> = slack.requests().into_iter().map(|c| c.fault).collect();
    assert_eq!(faults.len(), 7);
    assert_eq!(
        faults[0],
        Some(Fault::RateLimited {
            retry_after_secs: 7
        })
    );
    assert_eq!(faults[6], None);
}

/// What the test app received.
#[derive(Default)]
struct Received {
    requests: Vec<(HeaderMap, Bytes)>,
}

type Seen = Arc<Mutex<Received>>;

/// A Slack app's endpoint: checks the signature and freshness as Slack asks apps to,
/// answers `url_verification` with the challenge in JSON, and 200 to everything else.
async fn app_endpoint(
    State(seen): State<Seen>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    seen.lock()
        .unwrap()
        .requests
        .push((headers.clone(), body.clone()));
    let ts = headers
        .get("x-slack-request-timestamp")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let sig = headers
        .get("x-slack-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let fresh = ts.parse::<i64>().is_ok_and(|t| (now - t).abs() <= 300);
    if !fresh || sig != signature(SECRET, ts, &body) {
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    if let Ok(v) = serde_json::from_slice::<Value>(&body)
        && v["type"] == "url_verification"
    {
        return axum::Json(json!({"challenge": v["challenge"]})).into_response();
    }
    StatusCode::OK.into_response()
}

async fn app() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let router = axum::Router::new()
        .route("/slack/events", axum::routing::post(app_endpoint))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/slack/events"), seen)
}

fn status(d: &pincer_fakes::slack::Delivery) -> u16 {
    d.reply.as_ref().expect("an answer").status
}

#[tokio::test]
async fn events_are_delivered_signed_with_slacks_envelope() {
    let slack = FakeSlack::start(TOKEN, SECRET).await;
    let (url, seen) = app().await;
    slack.set_request_url(&url);

    let check = slack.url_verification().await.unwrap();
    assert!(check.ok(), "{check:?}");

    let dm = slack
        .send_message("D0ALICE001", "U0ALICE001", "hello")
        .await
        .unwrap();
    assert_eq!(status(&dm), 200);
    let sent: Value = serde_json::from_str(&dm.body).unwrap();
    assert_eq!(sent["type"], "event_callback");
    assert_eq!(sent["team_id"], slack.team_id());
    assert_eq!(sent["api_app_id"], slack.app_id());
    assert_eq!(sent["authorizations"][0]["user_id"], slack.bot_user_id());
    let ev = &sent["event"];
    assert_eq!(ev["type"], "message");
    assert_eq!(ev["channel_type"], "im");
    assert_eq!(
        (ev["channel"].as_str(), ev["user"].as_str()),
        (Some("D0ALICE001"), Some("U0ALICE001"))
    );
    assert_eq!(ev["text"], "hello");
    assert_eq!(ev["ts"], ev["event_ts"]);
    assert!(sent["event_id"].as_str().unwrap().starts_with("Ev"));
    assert_eq!(dm.event_id.as_deref(), sent["event_id"].as_str());

    // public and private channels, a thread, a mention
    let c = slack.new_message("C0GENERAL1", "U0ALICE001", "root");
    assert_eq!(c["event"]["channel_type"], "channel");
    assert_eq!(
        slack.new_message("G0PRIVATE1", "U0ALICE001", "x")["event"]["channel_type"],
        "group"
    );
    let root_ts = c["event"]["ts"].as_str().unwrap();
    let reply = slack
        .send_thread_reply("C0GENERAL1", "U0BOB00001", "in thread", root_ts)
        .await
        .unwrap();
    let r: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(r["event"]["thread_ts"], json!(root_ts));
    assert_eq!(r["event"]["parent_user_id"], "U0ALICE001");
    let text = format!("<@{}> help", slack.bot_user_id());
    let mention = slack
        .send_app_mention("C0GENERAL1", "U0ALICE001", &text, None)
        .await
        .unwrap();
    let m: Value = serde_json::from_str(&mention.body).unwrap();
    assert_eq!(m["event"]["type"], "app_mention");
    assert!(m["event"].get("channel_type").is_none());

    // a retry carries the same event_id and the retry headers
    let again = slack
        .redeliver_event(&sent, 1, "http_timeout")
        .await
        .unwrap();
    assert_eq!(status(&again), 200);
    let (headers, body) = seen.lock().unwrap().requests.last().cloned().unwrap();
    assert_eq!(headers["x-slack-retry-num"], "1");
    assert_eq!(headers["x-slack-retry-reason"], "http_timeout");
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["event_id"],
        sent["event_id"]
    );
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(again.retry_num, Some(1));
    assert_eq!(slack.deliveries().len(), 5);
}

#[tokio::test]
async fn forged_stale_and_unsigned_deliveries_are_sent_as_asked() {
    let slack = FakeSlack::start(TOKEN, SECRET).await;
    let (url, seen) = app().await;
    slack.set_request_url(&url);
    let ev = slack.new_message("D0ALICE001", "U0ALICE001", "hi");
    for signing in [
        Signing::WrongSecret,
        Signing::Unsigned,
        Signing::Stale { age_secs: 600 },
        Signing::Tampered,
    ] {
        let d = slack
            .deliver_event_with(&ev, None, signing.clone())
            .await
            .unwrap();
        assert_eq!(status(&d), 401, "{signing:?}");
    }
    let ok = slack
        .deliver_event_with(&ev, None, Signing::Valid)
        .await
        .unwrap();
    assert_eq!(status(&ok), 200);
    let raw = slack
        .deliver_raw(
            None,
            "application/json",
            b"{not json".to_vec(),
            Signing::Valid,
        )
        .await
        .unwrap();
    assert_eq!(status(&raw), 200, "the test app only checks the signature");

    let seen = seen.lock().unwrap();
    let (unsigned, _) = &seen.requests[1];
    assert!(unsigned.get("x-slack-signature").is_none());
    let (stale, _) = &seen.requests[2];
    let (fresh, _) = &seen.requests[4];
    let ts = |h: &HeaderMap| {
        h["x-slack-request-timestamp"]
            .to_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    assert!(ts(fresh) - ts(stale) >= 600);
    let (tampered, body) = &seen.requests[3];
    let t = tampered["x-slack-request-timestamp"].to_str().unwrap();
    assert_ne!(
        tampered["x-slack-signature"],
        signature(SECRET, t, body).as_str()
    );
}

#[tokio::test]
async fn block_actions_come_form_encoded_with_a_working_response_url() {
    let slack = FakeSlack::start(TOKEN, SECRET).await;
    let (url, seen) = app().await;
    slack.set_request_url("http://127.0.0.1:9/unused");
    slack.set_interactivity_url(&url);
    let c = client();
    slack.add_channel(SlackChannel::from_id("D0ALICE001"));
    let blocks = json!([{"type": "actions", "block_id": "approval", "elements": [
        {"type": "button", "action_id": "approve", "value": "run-1", "text": {"type": "plain_text", "text": "Approve"}}
    ]}]);
    let posted = api(
        &c,
        &slack,
        "chat.postMessage",
        json!({"channel": "D0ALICE001", "text": "ok?", "blocks": blocks}),
    )
    .await;
    let ts = posted["ts"].as_str().unwrap();

    let d = slack
        .send_block_actions("D0ALICE001", "U0ALICE001", ts, "approve", "run-1")
        .await
        .unwrap();
    assert_eq!(status(&d), 200);
    let (headers, body) = seen.lock().unwrap().requests[0].clone();
    assert_eq!(headers["content-type"], "application/x-www-form-urlencoded");
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap();
    assert_eq!(form.len(), 1);
    assert_eq!(form[0].0, "payload");
    let p: Value = serde_json::from_str(&form[0].1).unwrap();
    assert_eq!(p["type"], "block_actions");
    assert_eq!(p["user"]["id"], "U0ALICE001");
    assert_eq!(p["container"]["message_ts"], json!(ts));
    assert_eq!(p["actions"][0]["action_id"], "approve");
    assert_eq!(p["actions"][0]["value"], "run-1");
    assert_eq!(p["actions"][0]["block_id"], "approval");
    assert_eq!(p["message"]["blocks"], blocks);

    let response_url = p["response_url"].as_str().unwrap();
    assert!(response_url.starts_with(&slack.base_url()));
    let r = c
        .post(response_url)
        .json(&json!({"replace_original": true, "text": "Approved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let posts = slack
        .wait_response_url_posts(1, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(posts[0].body["text"], "Approved");
    let unknown = c
        .post(format!("{}/actions/T0NOPE", slack.base_url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(SlackChannel::from_id("D0ALICE001").kind, ChannelType::Im);
}

#[tokio::test]
async fn deliveries_without_a_reachable_app_are_recorded_as_failed() {
    let slack = FakeSlack::start(TOKEN, SECRET).await;
    assert!(
        slack
            .send_message("D0ALICE001", "U0ALICE001", "x")
            .await
            .is_err(),
        "no request URL"
    );
    slack.set_request_url("http://example.com/events");
    assert!(
        slack
            .send_message("D0ALICE001", "U0ALICE001", "x")
            .await
            .is_err(),
        "not loopback"
    );
    // a port nothing listens on: the delivery is made and recorded as failed
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    slack.set_request_url(&format!("http://127.0.0.1:{port}/events"));
    let d = slack
        .send_message("D0ALICE001", "U0ALICE001", "x")
        .await
        .unwrap();
    assert!(d.reply.is_err());
    assert_eq!(slack.deliveries().len(), 1);
}
