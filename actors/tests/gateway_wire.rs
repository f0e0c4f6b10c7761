//! The control plane over real sockets: handshake, every refusal path, limits, ticks,
//! idempotency, presence, MessagePack and shutdown.

mod common;

use std::time::Duration;

use common::{Client, Got, TOKEN, TestGateway, connect_params};
use pincer_actors::gateway::{AuthPolicy, GatewayMsg, GatewaySettings};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn handshake_succeeds_and_lists_exactly_the_registered_methods() {
    let gw = TestGateway::start().await;
    let mut c = gw.client().await;
    let challenge = c.frame().await;
    assert_eq!(challenge["type"], "event");
    assert_eq!(challenge["event"], "connect.challenge");
    assert!(
        challenge.get("seq").is_none(),
        "the challenge is outside the sequence"
    );
    assert!(challenge["payload"]["nonce"].as_str().unwrap().len() >= 16);
    assert!(challenge["payload"]["ts"].as_u64().unwrap() > 0);

    let res = c
        .request("connect", connect_params(4, 4, Some(TOKEN), None))
        .await;
    assert_eq!(res["ok"], true, "{res}");
    let hello = &res["payload"];
    assert_eq!(hello["type"], "hello-ok");
    assert_eq!(hello["protocol"], 4);
    // Protocol 4's schema requires `auth{role, scopes}`; no scopes asked means admin.
    assert_eq!(hello["auth"]["role"], "operator");
    assert_eq!(hello["auth"]["scopes"], json!(["operator.admin"]));
    assert_eq!(hello["auth"]["method"], "token");
    assert!(!hello["server"]["connId"].as_str().unwrap().is_empty());
    let methods: Vec<&str> = hello["features"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        [
            "health",
            "status",
            "system-presence",
            "logs.tail",
            "test.effect",
            "test.admin"
        ]
    );
    let events = hello["features"]["events"].as_array().unwrap();
    for e in [
        "connect.challenge",
        "tick",
        "health",
        "presence",
        "shutdown",
    ] {
        assert!(events.contains(&json!(e)), "missing event {e}");
    }
    assert_eq!(
        hello["policy"],
        json!({"maxPayload": 524288, "maxBufferedBytes": 1572864, "tickIntervalMs": 30000})
    );
    let snap = &hello["snapshot"];
    let presence = snap["presence"].as_array().unwrap();
    assert_eq!(
        presence.len(),
        2,
        "the gateway itself and this client: {presence:?}"
    );
    assert!(presence.iter().any(|p| p["reason"] == "self"));
    assert!(
        presence
            .iter()
            .any(|p| p["mode"] == "test" && p["ip"] == "127.0.0.1")
    );
    assert_eq!(snap["health"]["ok"], true);
    assert_eq!(snap["sessionDefaults"]["mainSessionKey"], "agent:main:main");

    let health = c.request("health", Value::Null).await;
    assert_eq!(health["ok"], true);
    assert_eq!(health["payload"]["ok"], true);
    assert!(health["payload"]["durationMs"].is_u64());
    assert!(health["payload"]["channels"].is_object());
    gw.stop().await;
}

#[tokio::test]
async fn protocol_3_clients_get_protocol_3() {
    let gw = TestGateway::start().await;
    let mut c = gw.client().await;
    let res = c.connect(connect_params(3, 3, Some(TOKEN), None)).await;
    assert_eq!(res["payload"]["protocol"], 3);
    gw.stop().await;
}

#[tokio::test]
async fn a_first_frame_other_than_connect_closes_the_socket() {
    let gw = TestGateway::start().await;
    let mut c = gw.client().await;
    let _challenge = c.frame().await;
    let res = c.request("health", Value::Null).await;
    assert_eq!(res["ok"], false);
    assert_eq!(res["error"]["code"], "INVALID_REQUEST");
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .contains("first request must be connect")
    );
    let (code, reason) = c.expect_close().await;
    assert_eq!(code, 1008);
    assert!(reason.contains("connect"), "{reason}");
    gw.stop().await;
}

#[tokio::test]
async fn protocol_mismatch_answers_and_closes_1002() {
    let gw = TestGateway::start().await;
    let mut c = gw.client().await;
    let res = c.connect(connect_params(5, 6, Some(TOKEN), None)).await;
    assert_eq!(res["ok"], false);
    assert_eq!(res["error"]["code"], "INVALID_REQUEST");
    assert_eq!(res["error"]["message"], "protocol mismatch");
    assert_eq!(res["error"]["details"]["code"], "PROTOCOL_MISMATCH");
    assert_eq!(c.expect_close().await.0, 1002);
    gw.stop().await;
}

#[tokio::test]
async fn bad_or_missing_token_is_refused_and_repeated_failures_are_rate_limited() {
    let gw = TestGateway::start().await;
    let mut c = gw.client().await;
    let res = c.connect(connect_params(3, 4, None, None)).await;
    assert_eq!(res["ok"], false);
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .contains("token missing"),
        "{res}"
    );
    assert_eq!(c.expect_close().await.0, 1008);

    for _ in 0..9 {
        let mut c = gw.client().await;
        let res = c.connect(connect_params(3, 4, Some("wrong"), None)).await;
        assert!(
            res["error"]["message"]
                .as_str()
                .unwrap()
                .contains("token mismatch"),
            "{res}"
        );
        // What makes OpenClaw's long-lived clients stop reconnecting with a bad token.
        assert_eq!(res["error"]["details"]["code"], "AUTH_TOKEN_MISMATCH");
        assert_eq!(c.expect_close().await.0, 1008);
    }
    // Ten failures in the window: now even the right token is refused for a while.
    let mut c = gw.client().await;
    let res = c.connect(connect_params(3, 4, Some(TOKEN), None)).await;
    assert_eq!(res["ok"], false);
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too many failed auth attempts"),
        "{res}"
    );
    assert_eq!(res["error"]["retryable"], true);
    assert_eq!(res["error"]["details"]["code"], "AUTH_RATE_LIMITED");
    assert!(res["error"]["retryAfterMs"].as_u64().unwrap() > 0);
    gw.stop().await;
}

#[tokio::test]
async fn a_call_without_the_scope_is_forbidden() {
    let gw = TestGateway::start().await;
    let mut c = gw.client().await;
    let hello = c
        .connect(connect_params(
            3,
            4,
            Some(TOKEN),
            Some(vec!["operator.read"]),
        ))
        .await;
    assert_eq!(hello["ok"], true);
    let res = c.request("test.admin", Value::Null).await;
    assert_eq!(res["ok"], false);
    assert_eq!(res["error"]["code"], "FORBIDDEN");
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .contains("operator.admin")
    );
    assert_eq!(res["error"]["details"]["code"], "MISSING_SCOPE");
    assert_eq!(res["error"]["details"]["missingScope"], "operator.admin");
    let res = c
        .request("test.effect", json!({"idempotencyKey": "x"}))
        .await;
    assert_eq!(
        res["error"]["code"], "FORBIDDEN",
        "read does not imply write"
    );
    let ok = c.request("health", Value::Null).await;
    assert_eq!(ok["ok"], true, "the connection stays usable");
    gw.stop().await;
}

#[tokio::test]
async fn unknown_methods_and_bad_frames_with_an_id_get_invalid_request() {
    let gw = TestGateway::start().await;
    let mut c = gw.connected().await;
    let res = c.request("no.such.method", Value::Null).await;
    assert_eq!(res["error"]["code"], "INVALID_REQUEST");
    assert_eq!(res["error"]["message"], "unknown method: no.such.method");

    c.send_value(&json!({"type": "req", "id": "bad1", "method": "health", "bogus": true}))
        .await;
    let res = c.response_to("bad1").await;
    assert_eq!(res["error"]["code"], "INVALID_REQUEST");
    assert!(
        res["error"]["message"].as_str().unwrap().contains("bogus"),
        "{res}"
    );

    c.send_value(&json!({"type": "event", "id": "bad2", "event": "x"}))
        .await;
    let res = c.response_to("bad2").await;
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only \\\"req\\\"")
            || res["error"]["message"].as_str().unwrap().contains("req")
    );

    let again = c
        .request("connect", connect_params(3, 4, Some(TOKEN), None))
        .await;
    assert_eq!(again["error"]["message"], "already connected");
    assert_eq!(c.request("health", Value::Null).await["ok"], true);
    gw.stop().await;
}

#[tokio::test]
async fn garbage_json_closes_before_and_after_the_handshake() {
    let gw = TestGateway::start().await;
    let mut c = gw.client().await;
    let _ = c.frame().await;
    c.send_raw(Message::Text("{not json".into())).await;
    let (code, reason) = c.expect_close().await;
    assert_eq!(code, 1008);
    assert!(reason.contains("invalid JSON"), "{reason}");

    let mut c = gw.connected().await;
    c.send_raw(Message::Text("]]]".into())).await;
    let (code, reason) = c.expect_close().await;
    assert_eq!(
        code, 1007,
        "a frame without an id cannot be answered, so the socket closes"
    );
    assert!(reason.contains("malformed frame"), "{reason}");
    gw.stop().await;
}

#[tokio::test]
async fn binary_garbage_on_a_json_connection_is_refused() {
    let gw = TestGateway::start().await;
    let mut c = gw.client().await;
    let _ = c.frame().await;
    c.send_raw(Message::Binary(vec![0xde, 0xad, 0xbe, 0xef].into()))
        .await;
    let (code, reason) = c.expect_close().await;
    assert_eq!(code, 1008);
    assert!(reason.contains("binary frame"), "{reason}");
    gw.stop().await;
}

#[tokio::test]
async fn msgpack_clients_get_binary_frames_carrying_the_same_objects() {
    let gw = TestGateway::start().await;
    let mut c = Client::open(&gw.url(), true).await;
    let hello = c.connect(connect_params(3, 4, Some(TOKEN), None)).await;
    assert_eq!(hello["payload"]["type"], "hello-ok");
    let res = c.request("health", Value::Null).await;
    assert_eq!(res["payload"]["ok"], true);
    c.send_raw(Message::Binary(vec![0xc1].into())).await;
    let (code, reason) = c.expect_close().await;
    assert_eq!(code, 1007);
    assert!(reason.contains("MessagePack"), "{reason}");
    gw.stop().await;
}

#[tokio::test]
async fn oversize_frames_close_the_socket_with_1009() {
    let gw = TestGateway::start().await;
    let mut c = gw.client().await;
    let _ = c.frame().await;
    let big = json!({"type": "req", "id": "1", "method": "connect", "params": {"pad": "x".repeat(70 * 1024)}});
    c.send_value(&big).await;
    let (code, reason) = c.expect_close().await;
    assert_eq!(code, 1009);
    assert!(reason.contains("pre-auth"), "{reason}");

    let mut c = gw.connected().await;
    let huge = json!({"type": "req", "id": "2", "method": "health", "params": {"pad": "x".repeat(600 * 1024)}});
    c.send_value(&huge).await;
    let (code, _) = c.expect_close().await;
    assert_eq!(code, 1009);
    let mut ok = gw.connected().await;
    assert_eq!(
        ok.request("health", Value::Null).await["ok"],
        true,
        "other clients are unaffected"
    );
    gw.stop().await;
}

#[tokio::test]
async fn idempotent_retries_return_the_first_result_and_run_once() {
    let gw = TestGateway::start().await;
    let mut a = gw.connected().await;
    let mut b = gw.connected().await;
    // Two concurrent calls and one later retry on another connection, same key.
    a.send_value(&json!({"type":"req","id":"a1","method":"test.effect","params":{"idempotencyKey":"k-1","v":1}})).await;
    b.send_value(&json!({"type":"req","id":"b1","method":"test.effect","params":{"idempotencyKey":"k-1","v":1}})).await;
    let ra = a.response_to("a1").await;
    let rb = b.response_to("b1").await;
    assert_eq!(ra["payload"], rb["payload"]);
    assert_eq!(ra["payload"]["run"], 1);
    assert_eq!(
        ra["payload"]["params"],
        json!({"v": 1}),
        "the key is not passed to the handler"
    );
    let retry = a
        .request("test.effect", json!({"idempotencyKey":"k-1","v":1}))
        .await;
    assert_eq!(retry["payload"]["run"], 1);
    let other = a
        .request("test.effect", json!({"idempotencyKey":"k-2"}))
        .await;
    assert_eq!(other["payload"]["run"], 2);
    let no_key = a.request("test.effect", json!({})).await;
    assert_eq!(no_key["payload"]["run"], 3);
    assert_eq!(gw.effects.load(std::sync::atomic::Ordering::SeqCst), 3);
    gw.stop().await;
}

#[tokio::test]
async fn presence_events_follow_clients_coming_and_going() {
    let gw = TestGateway::start().await;
    let mut a = gw.connected().await;
    let b = gw.connected().await;
    let ev = loop {
        let v = a.frame().await;
        if v["event"] == "presence" {
            break v;
        }
    };
    assert_eq!(ev["payload"]["presence"].as_array().unwrap().len(), 3);
    let v1 = ev["stateVersion"]["presence"].as_u64().unwrap();
    drop(b);
    let ev = loop {
        let v = a.frame().await;
        if v["event"] == "presence" {
            break v;
        }
    };
    assert_eq!(ev["payload"]["presence"].as_array().unwrap().len(), 2);
    assert!(ev["stateVersion"]["presence"].as_u64().unwrap() > v1);
    let seqs_increase = ev["seq"].as_u64().unwrap() > 1;
    assert!(seqs_increase);
    let list = a.request("system-presence", Value::Null).await;
    assert_eq!(list["payload"].as_array().unwrap().len(), 2);
    gw.stop().await;
}

#[tokio::test(start_paused = true)]
async fn ticks_arrive_every_interval_with_increasing_seq() {
    // In memory: over loopback TCP, the kernel delivers a pushed frame in its own time,
    // which paused tokio time does not wait for.
    let gw = TestGateway::start_in_memory(GatewaySettings::default()).await;
    let mut c = gw.connected().await;
    let t0 = tokio::time::Instant::now();
    let mut last_seq = 0;
    for n in 1..=3u64 {
        // No tick just before the boundary (other events, like `health` at 60 s, may come)...
        let quiet_until = t0 + Duration::from_secs(30 * n) - Duration::from_millis(1);
        loop {
            let left = quiet_until.saturating_duration_since(tokio::time::Instant::now());
            match c.recv_within(left).await {
                None => break,
                Some(Got::Frame(v)) => assert_ne!(
                    v["event"],
                    "tick",
                    "tick {n} came early at {:?}",
                    t0.elapsed()
                ),
                Some(other) => panic!("{other:?}"),
            }
        }
        // ...the tick right at it.
        let v = match c.recv_within(Duration::from_millis(2)).await {
            Some(Got::Frame(v)) => v,
            other => panic!("expected tick {n} at {} s, got {other:?}", n * 30),
        };
        assert_eq!(v["event"], "tick");
        assert_eq!(t0.elapsed(), Duration::from_secs(30 * n));
        let seq = v["seq"].as_u64().unwrap();
        assert!(seq > last_seq, "seq grows: {seq} after {last_seq}");
        last_seq = seq;
    }
    gw.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_connects_is_dropped_at_the_handshake_timeout() {
    let gw = TestGateway::start_in_memory(GatewaySettings::default()).await;
    let mut c = gw.client().await;
    let _ = c.frame().await;
    assert!(
        c.recv_within(Duration::from_millis(9_990)).await.is_none(),
        "still open just before 10 s"
    );
    let (code, reason) = c.expect_close().await;
    assert_eq!(code, 1008);
    assert!(reason.contains("handshake timeout"), "{reason}");
    gw.stop().await;
}

#[tokio::test]
async fn shutdown_sends_the_event_then_closes_every_client() {
    let gw = TestGateway::start().await;
    let mut a = gw.connected().await;
    let mut b = gw.connected().await;
    let done = gw.gateway.call(
        |reply| GatewayMsg::Shutdown {
            reason: "test".into(),
            restart_expected_ms: None,
            reply,
        },
        Some(Duration::from_secs(5)),
    );
    let (done, ev_a) = tokio::join!(done, async {
        loop {
            let v = a.frame().await;
            if v["event"] == "shutdown" {
                break v;
            }
        }
    });
    assert!(matches!(done, Ok(ractor::rpc::CallResult::Success(()))));
    assert_eq!(ev_a["payload"]["reason"], "test");
    assert_eq!(a.expect_close().await.0, 1001);
    assert_eq!(b.expect_close().await.0, 1001);
    gw.stop().await;
}

#[tokio::test]
async fn password_auth_and_no_auth_modes() {
    let gw = TestGateway::start_with(
        GatewaySettings::default(),
        AuthPolicy::Password("hunter2".into()),
    )
    .await;
    let mut c = gw.client().await;
    let mut p = connect_params(3, 4, None, None);
    p["auth"] = json!({"password": "hunter2"});
    assert_eq!(c.connect(p).await["ok"], true);
    let mut c = gw.client().await;
    let res = c.connect(connect_params(3, 4, Some("hunter2"), None)).await;
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .contains("password missing")
    );
    gw.stop().await;

    let gw = TestGateway::start_with(GatewaySettings::default(), AuthPolicy::None).await;
    let mut c = gw.client().await;
    assert_eq!(
        c.connect(connect_params(3, 4, None, None)).await["ok"],
        true
    );
    gw.stop().await;
}

#[tokio::test]
async fn healthz_and_metrics_over_http() {
    let gw = TestGateway::start().await;
    let mut c = gw.connected().await;
    c.request("health", Value::Null).await;
    c.request("nope", Value::Null).await;
    let (status, body) = gw.http_get("/healthz").await;
    assert!(status.contains("200"), "{status}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ok"], true);
    let (status, body) = gw.http_get("/metrics").await;
    assert!(status.contains("200"), "{status}");
    for needle in [
        "pincer_uptime_seconds",
        "pincer_gateway_connections 1",
        "pincer_gateway_requests_total{method=\"health\",outcome=\"ok\"} 1",
        "pincer_gateway_requests_total{method=\"unknown\",outcome=\"error\"} 1",
        "pincer_actor_restarts_total",
    ] {
        assert!(body.contains(needle), "missing {needle} in\n{body}");
    }
    gw.stop().await;
}

#[tokio::test(start_paused = true)]
async fn health_events_carry_a_growing_state_version() {
    let gw = TestGateway::start_in_memory(GatewaySettings::default()).await;
    let mut c = gw.connected().await;
    let t0 = tokio::time::Instant::now();
    let mut versions = Vec::new();
    while versions.len() < 2 {
        match c.recv_within(Duration::from_secs(61)).await {
            Some(Got::Frame(v)) if v["event"] == "health" => {
                assert_eq!(v["payload"]["ok"], true);
                versions.push(v["stateVersion"]["health"].as_u64().unwrap());
                assert_eq!(
                    t0.elapsed(),
                    Duration::from_secs(60 * versions.len() as u64),
                    "every 60 s"
                );
            }
            Some(Got::Frame(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(versions[1] > versions[0], "{versions:?}");
    gw.stop().await;
}

#[tokio::test]
async fn health_needs_no_scope_but_everything_else_does() {
    let gw = TestGateway::start().await;
    let mut c = gw.client().await;
    let hello = c
        .connect(connect_params(4, 4, Some(TOKEN), Some(vec![])))
        .await;
    assert_eq!(hello["ok"], true, "{hello}");
    assert_eq!(hello["payload"]["auth"]["scopes"], json!([]));
    let health = c.request("health", Value::Null).await;
    assert_eq!(health["ok"], true, "{health}");
    let status = c.request("status", Value::Null).await;
    assert_eq!(status["error"]["code"], "FORBIDDEN", "{status}");
    assert_eq!(status["error"]["details"]["missingScope"], "operator.read");
    // Protocol 3's schema requires a device token inside `auth`: no token, no block.
    let mut v3 = gw.client().await;
    let hello = v3.connect(connect_params(3, 3, Some(TOKEN), None)).await;
    assert_eq!(hello["payload"]["protocol"], 3);
    assert!(hello["payload"].get("auth").is_none(), "{hello}");
    gw.stop().await;
}
