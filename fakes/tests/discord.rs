//! The fake Discord over real sockets: REST with reqwest (shapes, errors, rate limits,
//! commands, interactions) and the Gateway with tokio-tungstenite (Hello, Identify and its
//! close codes, heartbeats, intents, dispatches, resume and replay, faults).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pincer_fakes::discord::{Closed, FakeDiscord, Fault, SentKind, intents};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

const TOKEN: &str = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.fake.bot-token";
const GUILD: &str = "900000000000000001";
const CHANNEL: &str = "900000000000000002";
const DM: &str = "900000000000000003";
const ALICE: &str = "800000000000000001";
const WAIT: Duration = Duration::from_secs(5);
const MESSAGES: u64 =
    intents::GUILDS | intents::GUILD_MESSAGES | intents::DIRECT_MESSAGES | intents::MESSAGE_CONTENT;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().expect("reqwest client")
}

async fn rest(
    c: &reqwest::Client,
    dc: &FakeDiscord,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = c
        .request(method, format!("{}{path}", dc.api_url()))
        .header("Authorization", format!("Bot {TOKEN}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("an HTTP answer");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post(c: &reqwest::Client, dc: &FakeDiscord, path: &str, body: Value) -> (u16, Value) {
    rest(c, dc, reqwest::Method::POST, path, Some(body)).await
}

/// Connects as clients do: the URL (a path added if it has none) with `?v=10&encoding=json`.
async fn connect(url: &str) -> Ws {
    let slash = if url.trim_start_matches("ws://").contains('/') {
        ""
    } else {
        "/"
    };
    let (ws, _) = connect_async(format!("{url}{slash}?v=10&encoding=json"))
        .await
        .expect("a websocket");
    ws
}

/// The next text frame, parsed.
async fn recv(ws: &mut Ws) -> Value {
    loop {
        let frame = timeout(WAIT, ws.next()).await.expect("a frame in time");
        match frame {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).expect("JSON"),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Reads until the connection ends; answers the close code, if a close frame came.
async fn close_code(ws: &mut Ws) -> Option<u16> {
    close_code_within(ws, WAIT).await
}

async fn close_code_within(ws: &mut Ws, within: Duration) -> Option<u16> {
    loop {
        match timeout(within, ws.next()).await.expect("the end in time") {
            Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("sent");
}

/// Reads Hello, identifies, reads READY; answers READY's `d`.
async fn identify(ws: &mut Ws, token: &str, intents: u64) -> Value {
    let hello = recv(ws).await;
    assert_eq!(hello["op"], 10);
    send(ws, json!({"op": 2, "d": {"token": token, "intents": intents, "properties": {"os": "linux", "browser": "pincer", "device": "pincer"}}})).await;
    let ready = recv(ws).await;
    assert_eq!(
        (
            ready["op"].as_u64(),
            ready["t"].as_str(),
            ready["s"].as_u64()
        ),
        (Some(0), Some("READY"), Some(1))
    );
    ready["d"].clone()
}

#[tokio::test]
async fn rest_messages_replies_and_edits() {
    let dc = FakeDiscord::start(TOKEN).await;
    let c = client();
    dc.add_guild_channel(GUILD, CHANNEL, "general");

    let (status, gw) = rest(&c, &dc, reqwest::Method::GET, "/gateway/bot", None).await;
    assert_eq!(status, 200);
    assert_eq!(gw["url"], dc.gateway_url());
    assert_eq!(gw["shards"], 1);
    assert_eq!(gw["session_start_limit"]["max_concurrency"], 1);
    let (_, me) = rest(&c, &dc, reqwest::Method::GET, "/users/@me", None).await;
    assert_eq!(me["id"], dc.bot().id);
    assert_eq!(me["bot"], true);

    let theirs = dc.guild_message(GUILD, CHANNEL, ALICE, "hello bot");
    let r = c
        .post(format!("{}/channels/{CHANNEL}/messages", dc.api_url()))
        .header("Authorization", format!("Bot {TOKEN}"))
        .json(&json!({"content": "hi!", "message_reference": {"message_id": theirs["id"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset-after",
        "x-ratelimit-bucket",
    ] {
        assert!(r.headers().contains_key(h), "{h}");
    }
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["content"], "hi!");
    assert_eq!(m["channel_id"], CHANNEL);
    assert_eq!(m["guild_id"], GUILD);
    assert_eq!(m["author"]["id"], dc.bot().id);
    assert_eq!(m["type"], 19, "a reply");
    assert_eq!(m["message_reference"]["message_id"], theirs["id"]);
    assert_eq!(m["referenced_message"]["content"], "hello bot");
    assert!(m["timestamp"].as_str().unwrap().ends_with("+00:00"));

    let id = m["id"].as_str().unwrap();
    let (status, edited) = rest(
        &c,
        &dc,
        reqwest::Method::PATCH,
        &format!("/channels/{CHANNEL}/messages/{id}"),
        Some(json!({"content": "hi again"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(edited["content"], "hi again");
    assert!(edited["edited_timestamp"].is_string());

    let sent = dc.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        (sent[0].kind, sent[1].kind),
        (SentKind::Message, SentKind::Edit)
    );
    assert_eq!(sent[0].reply_to.as_deref(), theirs["id"].as_str());
    assert_eq!(dc.message(id).unwrap()["content"], "hi again");
}

#[tokio::test]
async fn rest_errors_as_discord_sends_them() {
    let dc = FakeDiscord::start(TOKEN).await;
    let c = client();
    dc.add_guild_channel(GUILD, CHANNEL, "general");
    let path = format!("/channels/{CHANNEL}/messages");

    let r = c
        .post(format!("{}{path}", dc.api_url()))
        .header("Authorization", "Bot wrong")
        .json(&json!({"content": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"message": "401: Unauthorized", "code": 0})
    );

    let (s, v) = post(&c, &dc, "/channels/1/messages", json!({"content": "x"})).await;
    assert_eq!((s, v["code"].as_u64()), (404, Some(10_003)));
    let (s, v) = post(&c, &dc, &path, json!({"content": ""})).await;
    assert_eq!((s, v["code"].as_u64()), (400, Some(50_006)));
    let (s, v) = post(&c, &dc, &path, json!({"content": "x".repeat(2_001)})).await;
    assert_eq!((s, v["code"].as_u64()), (400, Some(50_035)));
    assert_eq!(
        v["errors"]["content"]["_errors"][0]["code"],
        "BASE_TYPE_MAX_LENGTH"
    );
    let (s, _) = post(&c, &dc, &path, json!({"content": "é".repeat(2_000)})).await;
    assert_eq!(s, 200, "2,000 characters go through");
    let (s, v) = post(
        &c,
        &dc,
        &path,
        json!({"content": "x", "message_reference": {"message_id": "123"}}),
    )
    .await;
    assert_eq!((s, v["code"].as_u64()), (400, Some(50_035)));
    let (s, _) = post(&c, &dc, &path, json!({"content": "x", "message_reference": {"message_id": "123", "fail_if_not_exists": false}})).await;
    assert_eq!(s, 200);

    let theirs = dc.guild_message(GUILD, CHANNEL, ALICE, "mine");
    let edit = format!("{path}/{}", theirs["id"].as_str().unwrap());
    let (s, v) = rest(
        &c,
        &dc,
        reqwest::Method::PATCH,
        &edit,
        Some(json!({"content": "x"})),
    )
    .await;
    assert_eq!((s, v["code"].as_u64()), (403, Some(50_005)));
    let (s, v) = rest(
        &c,
        &dc,
        reqwest::Method::PATCH,
        &format!("{path}/42"),
        Some(json!({"content": "x"})),
    )
    .await;
    assert_eq!((s, v["code"].as_u64()), (404, Some(10_008)));
    assert!(!dc.requests()[0].token_ok);
}

#[tokio::test]
async fn rest_faults_with_discords_rate_limit_shape() {
    let dc = FakeDiscord::start(TOKEN).await;
    let c = client();
    dc.add_dm_channel(DM, ALICE);
    let url = format!("{}/channels/{DM}/messages", dc.api_url());
    let send = || {
        c.post(&url)
            .header("Authorization", format!("Bot {TOKEN}"))
            .json(&json!({"content": "x"}))
            .send()
    };

    dc.fail_next(
        "create_message",
        Fault::RateLimited {
            retry_after_secs: 2,
        },
    );
    let r = send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(r.headers()["x-ratelimit-scope"], "user");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["retry_after"], 2.0);
    assert_eq!(v["global"], false);

    dc.fail_next("*", Fault::ServerError(502));
    let r = send().await.unwrap();
    assert_eq!(r.status(), 502);
    dc.fail_next("create_message", Fault::Malformed);
    assert!(send().await.unwrap().json::<Value>().await.is_err());
    dc.fail_next("create_message", Fault::Drop);
    assert!(send().await.is_err());
    dc.fail_next("create_message", Fault::InvalidToken);
    assert_eq!(send().await.unwrap().status(), 401);
    assert!(dc.sent().is_empty());
    assert_eq!(send().await.unwrap().status(), 200);
    assert_eq!(dc.wait_sent(1, WAIT).await.unwrap()[0].channel_id, DM);
    assert_eq!(dc.calls("create_message").len(), 6);
}

#[tokio::test]
async fn commands_are_overwritten_and_keep_their_ids() {
    let dc = FakeDiscord::start(TOKEN).await;
    let c = client();
    let path = format!("/applications/{}/commands", dc.application_id());
    let cmds = json!([
        {"name": "new", "description": "Start a new session"},
        {"name": "status", "description": "Show the session's status", "type": 1},
    ]);
    let (s, v) = rest(&c, &dc, reqwest::Method::PUT, &path, Some(cmds)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["application_id"], dc.application_id());
    let new_id = v[0]["id"].clone();
    let (_, again) = rest(
        &c,
        &dc,
        reqwest::Method::PUT,
        &path,
        Some(json!([{"name": "new", "description": "Again"}])),
    )
    .await;
    assert_eq!(again[0]["id"], new_id, "same name, same id");
    assert_eq!(dc.commands().len(), 1);
    let (_, listed) = rest(&c, &dc, reqwest::Method::GET, &path, None).await;
    assert_eq!(listed[0]["description"], "Again");
    let (s, v) = rest(
        &c,
        &dc,
        reqwest::Method::PUT,
        &path,
        Some(json!([{"name": "Bad Name", "description": "x"}])),
    )
    .await;
    assert_eq!((s, v["code"].as_u64()), (400, Some(50_035)));
    assert_eq!(
        v["errors"]["0"]["name"]["_errors"][0]["code"],
        "APPLICATION_COMMAND_INVALID_NAME"
    );
    let (s, v) = rest(
        &c,
        &dc,
        reqwest::Method::PUT,
        &path,
        Some(json!([{"name": "new"}])),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_u64()),
        (400, Some(50_035)),
        "a slash command needs a description"
    );
    let (s, _) = rest(
        &c,
        &dc,
        reqwest::Method::PUT,
        "/applications/1/commands",
        Some(json!([])),
    )
    .await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn the_gateway_identifies_heartbeats_and_dispatches() {
    let dc = FakeDiscord::start(TOKEN).await;
    dc.add_guild_channel(GUILD, CHANNEL, "general");
    let mut ws = connect(&dc.gateway_url()).await;
    let hello = recv(&mut ws).await;
    assert_eq!(
        hello,
        json!({"op": 10, "d": {"heartbeat_interval": 41_250}, "s": null, "t": null})
    );
    send(&mut ws, json!({"op": 1, "d": null})).await;
    assert_eq!(recv(&mut ws).await, json!({"op": 11}));
    send(
        &mut ws,
        json!({"op": 2, "d": {"token": TOKEN, "intents": MESSAGES, "properties": {}}}),
    )
    .await;
    let ready = recv(&mut ws).await;
    assert_eq!(ready["t"], "READY");
    let d = &ready["d"];
    assert_eq!(d["v"], 10);
    assert_eq!(d["user"]["id"], dc.bot().id);
    assert_eq!(d["application"]["id"], dc.application_id());
    assert_eq!(d["guilds"], json!([{"id": GUILD, "unavailable": true}]));
    assert_eq!(
        d["resume_gateway_url"],
        format!("{}/resume", dc.gateway_url())
    );
    let session = d["session_id"].as_str().unwrap().to_owned();

    let mention = format!("<@{}> hi", dc.bot().id);
    dc.guild_message(GUILD, CHANNEL, ALICE, &mention);
    let ev = recv(&mut ws).await;
    assert_eq!(
        (ev["op"].as_u64(), ev["t"].as_str(), ev["s"].as_u64()),
        (Some(0), Some("MESSAGE_CREATE"), Some(2))
    );
    let m = &ev["d"];
    assert_eq!(m["content"], mention);
    assert_eq!(m["guild_id"], GUILD);
    assert_eq!(m["channel_id"], CHANNEL);
    assert_eq!(m["author"]["id"], ALICE);
    assert_eq!(m["mentions"][0]["id"], dc.bot().id);
    assert!(m["member"].is_object());

    dc.dm_message(DM, ALICE, "psst");
    let ev = recv(&mut ws).await;
    assert_eq!(ev["s"], 3);
    assert!(ev["d"].get("guild_id").is_none());
    assert_eq!(ev["d"]["content"], "psst");

    send(&mut ws, json!({"op": 1, "d": 3})).await;
    assert_eq!(recv(&mut ws).await, json!({"op": 11}));
    assert_eq!(dc.wait_heartbeats(2, WAIT).await.unwrap(), [None, Some(3)]);
    let conns = dc.connections();
    assert_eq!(conns[0].uri, "/?v=10&encoding=json");
    assert_eq!(conns[0].session_id.as_deref(), Some(session.as_str()));
    assert_eq!(conns[0].identify.as_ref().unwrap()["intents"], MESSAGES);
    assert_eq!(dc.session_seq(&session), Some(3));

    // a clean close ends the session
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    let closed = dc.wait_closed(1, WAIT).await.unwrap();
    assert_eq!(
        closed[0].closed,
        Some(Closed::ByClient { code: Some(1000) })
    );
    let mut ws = connect(&format!("{}/resume", dc.gateway_url())).await;
    recv(&mut ws).await;
    send(
        &mut ws,
        json!({"op": 6, "d": {"token": TOKEN, "session_id": session, "seq": 3}}),
    )
    .await;
    assert_eq!(
        recv(&mut ws).await,
        json!({"op": 9, "d": false, "s": null, "t": null})
    );
}

#[tokio::test]
async fn intents_filter_dispatches_and_message_content() {
    let dc = FakeDiscord::start(TOKEN).await;
    let mut ws = connect(&dc.gateway_url()).await;
    identify(&mut ws, TOKEN, intents::GUILD_MESSAGES).await;
    dc.dm_message(DM, ALICE, "not for you: no DIRECT_MESSAGES");
    dc.guild_message(GUILD, CHANNEL, ALICE, "hidden without MESSAGE_CONTENT");
    let ev = recv(&mut ws).await;
    assert_eq!(ev["t"], "MESSAGE_CREATE");
    assert_eq!(ev["s"], 2, "the DM was not dispatched");
    assert_eq!(ev["d"]["content"], "");
    assert_eq!(ev["d"]["author"]["id"], ALICE);
}

#[tokio::test]
async fn identify_is_refused_with_discords_close_codes() {
    let dc = FakeDiscord::start(TOKEN).await;
    let url = dc.gateway_url();
    let cases = [
        (
            json!({"op": 2, "d": {"token": "wrong", "intents": 0}}),
            4004,
        ),
        (
            json!({"op": 2, "d": {"token": TOKEN, "intents": intents::GUILD_PRESENCES}}),
            4014,
        ),
        (
            json!({"op": 2, "d": {"token": TOKEN, "intents": 1u64 << 40}}),
            4013,
        ),
        (json!({"op": 2, "d": {"token": TOKEN}}), 4013),
        (json!({"op": 3, "d": {}}), 4003),
        (json!({"op": 42, "d": null}), 4001),
    ];
    for (payload, code) in cases {
        let mut ws = connect(&url).await;
        recv(&mut ws).await;
        send(&mut ws, payload.clone()).await;
        assert_eq!(close_code(&mut ws).await, Some(code), "{payload}");
    }
    let mut ws = connect(&url).await;
    recv(&mut ws).await;
    ws.send(Message::text("{not json")).await.unwrap();
    assert_eq!(close_code(&mut ws).await, Some(4002));

    // a privileged intent the app enabled is fine; a second Identify is not
    dc.set_privileged_intents(intents::GUILD_PRESENCES);
    let mut ws = connect(&url).await;
    identify(&mut ws, &format!("Bot {TOKEN}"), intents::GUILD_PRESENCES).await;
    send(
        &mut ws,
        json!({"op": 2, "d": {"token": TOKEN, "intents": 0}}),
    )
    .await;
    assert_eq!(close_code(&mut ws).await, Some(4005));
    let conns = dc.wait_closed(8, WAIT).await.unwrap();
    assert_eq!(
        conns[0].closed,
        Some(Closed::ByFake {
            code: 4004,
            reason: "Authentication failed.".into()
        })
    );
}

#[tokio::test]
async fn resume_replays_what_was_missed_then_resumed() {
    let dc = FakeDiscord::start(TOKEN).await;
    let mut ws = connect(&dc.gateway_url()).await;
    let ready = identify(&mut ws, TOKEN, MESSAGES).await;
    let session = ready["session_id"].as_str().unwrap().to_owned();
    let resume_url = ready["resume_gateway_url"].as_str().unwrap().to_owned();
    dc.dm_message(DM, ALICE, "one");
    assert_eq!(recv(&mut ws).await["s"], 2);

    dc.drop_connections();
    assert_eq!(
        close_code(&mut ws).await,
        None,
        "dropped without a close frame"
    );
    dc.wait_closed(1, WAIT).await.unwrap();
    dc.dm_message(DM, ALICE, "two");
    dc.dm_message(DM, ALICE, "three");

    let mut ws = connect(&resume_url).await;
    recv(&mut ws).await;
    send(
        &mut ws,
        json!({"op": 6, "d": {"token": TOKEN, "session_id": session, "seq": 2}}),
    )
    .await;
    let two = recv(&mut ws).await;
    let three = recv(&mut ws).await;
    let resumed = recv(&mut ws).await;
    assert_eq!(
        (two["s"].as_u64(), two["d"]["content"].as_str()),
        (Some(3), Some("two"))
    );
    assert_eq!(
        (three["s"].as_u64(), three["d"]["content"].as_str()),
        (Some(4), Some("three"))
    );
    assert_eq!(
        (resumed["t"].as_str(), resumed["s"].as_u64()),
        (Some("RESUMED"), Some(5))
    );
    dc.dm_message(DM, ALICE, "four");
    assert_eq!(recv(&mut ws).await["s"], 6, "live again");
    let conns = dc.connections();
    assert_eq!(conns[1].uri, "/resume?v=10&encoding=json");
    assert_eq!(conns[1].resume.as_ref().unwrap()["seq"], 2);
    assert_eq!(conns[0].closed, Some(Closed::Dropped));

    // a seq the session never reached, and an unknown session
    let mut bad = connect(&resume_url).await;
    recv(&mut bad).await;
    send(
        &mut bad,
        json!({"op": 6, "d": {"token": TOKEN, "session_id": session, "seq": 99}}),
    )
    .await;
    assert_eq!(close_code(&mut bad).await, Some(4007));
    let mut unknown = connect(&resume_url).await;
    recv(&mut unknown).await;
    send(
        &mut unknown,
        json!({"op": 6, "d": {"token": TOKEN, "session_id": "nope", "seq": 1}}),
    )
    .await;
    assert_eq!(recv(&mut unknown).await["op"], 9);
}

#[tokio::test]
async fn gateway_faults_reconnect_invalid_session_and_raw_frames() {
    let dc = FakeDiscord::start(TOKEN).await;
    let mut ws = connect(&dc.gateway_url()).await;
    let ready = identify(&mut ws, TOKEN, MESSAGES).await;
    let session = ready["session_id"].as_str().unwrap().to_owned();

    dc.send_reconnect();
    assert_eq!(recv(&mut ws).await["op"], 7);
    dc.request_heartbeat();
    assert_eq!(
        recv(&mut ws).await,
        json!({"op": 1, "d": null, "s": null, "t": null})
    );
    dc.send_raw("{\"op\": 0, \"t\": \"MESSAGE_CREATE\", \"d\": ");
    let raw = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(serde_json::from_str::<Value>(raw.to_text().unwrap()).is_err());

    dc.stop_acking_heartbeats();
    send(&mut ws, json!({"op": 1, "d": 1})).await;
    dc.wait_heartbeats(1, WAIT).await.unwrap();
    dc.request_heartbeat();
    assert_eq!(
        recv(&mut ws).await["op"],
        1,
        "no ACK came before the next frame"
    );
    dc.resume_acking_heartbeats();
    send(&mut ws, json!({"op": 1, "d": 1})).await;
    assert_eq!(recv(&mut ws).await, json!({"op": 11}));
    assert_eq!(dc.connections()[0].acks, 1);

    dc.invalidate_sessions(false);
    assert_eq!(
        recv(&mut ws).await,
        json!({"op": 9, "d": false, "s": null, "t": null})
    );
    dc.dm_message(DM, ALICE, "lost");
    assert_eq!(
        dc.session_seq(&session),
        Some(1),
        "an invalidated session gets nothing"
    );

    dc.close_connections(4000, "Unknown error");
    assert_eq!(close_code(&mut ws).await, Some(4000));
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_closed_with_4009_in_tokio_time() {
    let dc = FakeDiscord::start(TOKEN).await;
    dc.set_heartbeat_interval(Duration::from_secs(10));
    let mut ws = connect(&dc.gateway_url()).await;
    let ready = identify(&mut ws, TOKEN, MESSAGES).await;
    let start = tokio::time::Instant::now();
    assert_eq!(
        close_code_within(&mut ws, Duration::from_secs(60)).await,
        Some(4009)
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(14) && waited <= Duration::from_secs(15),
        "{waited:?}"
    );
    let conns = dc.wait_closed(1, WAIT).await.unwrap();
    assert!(conns[0].heartbeat_timed_out);
    // the session survives the timeout: resume it
    let mut ws = connect(ready["resume_gateway_url"].as_str().unwrap()).await;
    assert_eq!(recv(&mut ws).await["d"]["heartbeat_interval"], 10_000);
    send(
        &mut ws,
        json!({"op": 6, "d": {"token": TOKEN, "session_id": ready["session_id"], "seq": 1}}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["t"], "RESUMED");
}

#[tokio::test]
async fn slash_commands_arrive_and_their_callbacks_answer() {
    let dc = FakeDiscord::start(TOKEN).await;
    let c = client();
    let mut ws = connect(&dc.gateway_url()).await;
    identify(&mut ws, TOKEN, MESSAGES).await;

    let it = dc.slash_command("new", CHANNEL, Some(GUILD), ALICE, Value::Null);
    let ev = recv(&mut ws).await;
    assert_eq!(ev["t"], "INTERACTION_CREATE");
    let d = &ev["d"];
    assert_eq!(d["type"], 2);
    assert_eq!(d["data"]["name"], "new");
    assert_eq!(d["data"]["type"], 1);
    assert_eq!(d["id"], it.id);
    assert_eq!(d["token"], it.token);
    assert_eq!(d["guild_id"], GUILD);
    assert_eq!(d["member"]["user"]["id"], ALICE);
    assert_eq!(d["channel"]["type"], 0);

    let cb = format!(
        "{}/interactions/{}/{}/callback",
        dc.api_url(),
        it.id,
        it.token
    );
    let r = c
        .post(&cb)
        .json(&json!({"type": 4, "data": {"content": "New session started."}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let echo = recv(&mut ws).await;
    assert_eq!(
        echo["t"], "MESSAGE_CREATE",
        "the bot's reply comes back on the Gateway"
    );
    assert_eq!(echo["d"]["author"]["id"], dc.bot().id);
    let r = c
        .post(&cb)
        .json(&json!({"type": 4, "data": {"content": "again"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 40_060);
    let r = c
        .post(format!(
            "{}/interactions/{}/wrong-token/callback",
            dc.api_url(),
            it.id
        ))
        .json(&json!({"type": 4, "data": {"content": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 10_062);

    // a DM /status, deferred, then answered through @original, then a follow-up
    let st = dc.slash_command(
        "status",
        DM,
        None,
        ALICE,
        json!([{"name": "verbose", "type": 5, "value": true}]),
    );
    let ev = recv(&mut ws).await;
    assert_eq!(ev["d"]["user"]["id"], ALICE);
    assert_eq!(ev["d"]["data"]["options"][0]["value"], true);
    let cb = format!(
        "{}/interactions/{}/{}/callback?with_response=true",
        dc.api_url(),
        st.id,
        st.token
    );
    let r = c.post(&cb).json(&json!({"type": 5})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["resource"]["type"], 5);
    let original = format!(
        "{}/webhooks/{}/{}/messages/@original",
        dc.api_url(),
        dc.application_id(),
        st.token
    );
    let r = c
        .patch(&original)
        .json(&json!({"content": "All good."}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(format!(
            "{}/webhooks/{}/{}",
            dc.api_url(),
            dc.application_id(),
            st.token
        ))
        .json(&json!({"content": "More."}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let responses = dc.wait_interaction_responses(2, WAIT).await.unwrap();
    assert_eq!((responses[0].kind, responses[1].kind), (4, 5));
    let sent = dc.sent();
    let kinds: Vec<SentKind> = sent.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            SentKind::InteractionReply,
            SentKind::InteractionReply,
            SentKind::Followup
        ]
    );
    assert_eq!(sent[1].content, "All good.");
    assert_eq!(sent[1].channel_id, DM);
    assert_eq!(sent[2].interaction_id.as_deref(), Some(st.id.as_str()));
}
