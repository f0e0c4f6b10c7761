//! The real `pincer` binary as a user runs it: start-up, CLI calls, signals, the state
//! directory. Every test uses its own temporary PINCER_HOME and a free loopback port.

use std::process::Command;
use std::time::Duration;

use futures_util::StreamExt;
use pincer::client::{CallOptions, ClientError, Session};
use pincer_actors::protocol::ConnectAuth;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

mod support;

use support::*;

#[tokio::test]
async fn sigterm_tells_clients_then_exits_zero() {
    let (_dir, home) = temp_home();
    let gw = Daemon::start(
        &home,
        &["--port", "0"],
        &[("PINCER_GATEWAY_TOKEN", "tok-sigterm")],
    );
    let mut ws = connect(&gw.url(), "tok-sigterm").await.into_inner();
    gw.signal(libc::SIGTERM);
    let mut got_shutdown = false;
    let close_code = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no close within 10 s")
        {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["event"] == "shutdown" {
                    got_shutdown = true;
                }
            }
            Some(Ok(Message::Close(f))) => break f.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            other => panic!("socket ended without a close frame: {other:?}"),
        }
    };
    assert!(got_shutdown, "a shutdown event comes before the close");
    assert_eq!(close_code, Some(1001));
    let (code, lines) = gw.wait();
    assert_eq!(code, Some(0), "exit code; output:\n{}", lines.join("\n"));
}

#[tokio::test]
async fn sigint_also_stops_cleanly() {
    let (_dir, home) = temp_home();
    let gw = Daemon::start(&home, &["--port", "0"], &[("PINCER_GATEWAY_TOKEN", "t")]);
    gw.signal(libc::SIGINT);
    assert_eq!(gw.wait().0, Some(0));
}

#[tokio::test]
async fn cli_health_status_and_call_against_a_running_gateway() {
    let (_dir, home) = temp_home();
    let gw = Daemon::start(
        &home,
        &["--port", "0"],
        &[("PINCER_GATEWAY_TOKEN", "tok-cli")],
    );
    let url = gw.url();
    let h = home.as_path();
    let out = pincer(h, &["health", "--url", &url, "--token", "tok-cli"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("gateway is healthy"), "{}", text(&out));

    let out = pincer(
        h,
        &["health", "--url", &url, "--token", "tok-cli", "--json"],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);

    let out = pincer(h, &["status", "--url", &url, "--token", "tok-cli"]);
    assert!(
        text(&out).contains(&format!("listening   {}", gw.addr)),
        "{}",
        text(&out)
    );

    let out = pincer(
        h,
        &[
            "gateway",
            "call",
            "system-presence",
            "--url",
            &url,
            "--token",
            "tok-cli",
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.as_array().unwrap().iter().any(|p| p["reason"] == "self"));

    let out = pincer(
        h,
        &[
            "gateway",
            "call",
            "nope.nope",
            "--url",
            &url,
            "--token",
            "tok-cli",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("unknown method: nope.nope"),
        "{}",
        text(&out)
    );

    let out = pincer(h, &["health", "--url", &url, "--token", "wrong"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("token mismatch"), "{}", text(&out));
    assert!(
        text(&out).contains("pass --token"),
        "the error says how to fix it: {}",
        text(&out)
    );

    let out = pincer(
        h,
        &[
            "gateway", "call", "health", "--params", "[1]", "--url", &url,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("must be an object"), "{}", text(&out));
}

#[test]
fn cli_reports_an_unreachable_gateway_with_exit_3() {
    let (_dir, home) = temp_home();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = pincer(
        &home,
        &[
            "health",
            "--url",
            &format!("ws://127.0.0.1:{port}/"),
            "--token",
            "x",
            "--timeout",
            "3000",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out).contains("is it running?"), "{}", text(&out));
}

/// A request on an open session; returns `{ok, payload}` or `{ok: false, error}` like
/// the response frame, so tests can look at error codes and details.
async fn rpc(s: &mut Session, _id: &str, method: &str, params: Value) -> Value {
    let call = tokio::time::timeout(Duration::from_secs(10), s.request(method, Some(params)))
        .await
        .expect("answer within 10 s");
    match call {
        Ok(payload) => json!({"ok": true, "payload": payload}),
        Err(ClientError::Rpc { error, .. }) => json!({"ok": false, "error": error}),
        Err(e) => panic!("{method}: {e}"),
    }
}

#[tokio::test]
async fn first_start_generates_a_private_token_that_the_cli_finds() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, home) = temp_home();
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let token = read_token(&home);
    assert_eq!(token.len(), 64);
    let mode = std::fs::metadata(home.join("credentials/gateway.token"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let port = gw.addr.rsplit(':').next().unwrap().to_owned();
    // No --url, no --token: the CLI uses the state directory's token and PINCER_GATEWAY_PORT.
    let out = Command::new(BIN)
        .args(["health"])
        .env("PINCER_HOME", &home)
        .env("PINCER_GATEWAY_PORT", &port)
        .env_remove("PINCER_GATEWAY_TOKEN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let _ws = connect(&gw.url(), &token).await;
}

#[tokio::test]
async fn a_second_gateway_on_the_same_state_dir_refuses_and_names_the_first_pid() {
    let (_dir, home) = temp_home();
    let first = Daemon::start(&home, &["--port", "0"], &[("PINCER_GATEWAY_TOKEN", "t")]);
    let out = Command::new(BIN)
        .args(["gateway", "--port", "0"])
        .env("PINCER_HOME", &home)
        .env("PINCER_GATEWAY_TOKEN", "t")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains(&format!(
            "another pincer gateway (pid {})",
            first.child.id()
        )),
        "{msg}"
    );
    assert!(msg.contains("--profile"), "{msg}");
    // A profile is a separate state directory, so it starts.
    let other_home = home.with_file_name("other");
    let second = Daemon::start(
        &other_home,
        &["--port", "0"],
        &[("PINCER_GATEWAY_TOKEN", "t")],
    );
    second.signal(libc::SIGTERM);
    assert_eq!(second.wait().0, Some(0));
}

#[test]
fn a_bad_config_stops_start_up_with_file_line_and_suggestion() {
    let (_dir, home) = temp_home();
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("pincer.json"),
        "{\n  gateway: {\n    prot: 1,\n  },\n  browser: {},\n}\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["gateway", "--port", "0"])
        .env("PINCER_HOME", &home)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let msg = text(&out);
    assert!(
        msg.contains("pincer.json:3:5: gateway.prot: unknown key; did you mean \"port\"?"),
        "{msg}"
    );
    assert!(
        msg.contains("pincer.json:5:3: browser: OpenClaw key not implemented by Pincer yet"),
        "warnings are shown too: {msg}"
    );
    let out = pincer(&home, &["config", "validate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("did you mean \"port\""));
}

#[tokio::test]
async fn unsafe_bind_is_refused_with_the_reason() {
    let (_dir, home) = temp_home();
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("pincer.json"),
        "{ gateway: { auth: { mode: 'none' } } }",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["gateway", "--port", "0", "--bind", "lan"])
        .env("PINCER_HOME", &home)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("anyone who can reach this address could drive your agents"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn config_patch_with_a_stale_base_hash_is_refused_and_a_fresh_one_applies_live() {
    let (_dir, home) = temp_home();
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let token = read_token(&home);
    let mut ws = connect(&gw.url(), &token).await;
    let snap = rpc(&mut ws, "g1", "config.get", json!({})).await;
    assert_eq!(snap["ok"], true, "{snap}");
    let hash = snap["payload"]["hash"].as_str().unwrap().to_owned();

    let res = rpc(
        &mut ws,
        "p1",
        "config.patch",
        json!({"raw": "{logging: {level: 'debug'}}", "baseHash": hash, "idempotencyKey": "k1"}),
    )
    .await;
    assert_eq!(res["ok"], true, "{res}");
    assert_eq!(res["payload"]["diff"]["live"], json!(["logging.level"]));
    // The same call again (a retry) returns the first result instead of failing on the now-stale hash.
    let retry = rpc(
        &mut ws,
        "p2",
        "config.patch",
        json!({"raw": "{logging: {level: 'debug'}}", "baseHash": hash, "idempotencyKey": "k1"}),
    )
    .await;
    assert_eq!(retry["payload"], res["payload"]);
    // Without the key, the stale hash is refused.
    let stale = rpc(
        &mut ws,
        "p3",
        "config.patch",
        json!({"raw": "{logging: {level: 'warn'}}", "baseHash": hash}),
    )
    .await;
    assert_eq!(stale["ok"], false);
    assert_eq!(stale["error"]["details"]["code"], "STALE_BASE_HASH");
    let port = rpc(
        &mut ws,
        "p4",
        "config.patch",
        json!({"raw": "{gateway: {port: 1}}", "baseHash": res["payload"]["hash"]}),
    )
    .await;
    assert_eq!(port["payload"]["restart"]["required"], true, "{port}");

    let current = rpc(&mut ws, "g2", "config.get", json!({})).await["payload"]["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let applied = rpc(
        &mut ws,
        "a1",
        "config.apply",
        json!({"raw": "{logging: {level: 'info'}}", "baseHash": current, "note": "test"}),
    )
    .await;
    assert_eq!(applied["ok"], true, "{applied}");
    assert_eq!(
        applied["payload"]["config"],
        json!({"logging": {"level": "info"}})
    );

    let logs = rpc(&mut ws, "l1", "logs.tail", json!({"limit": 50})).await;
    assert_eq!(logs["ok"], true, "{logs}");
    let lines = logs["payload"]["lines"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.as_str().unwrap().contains("config written")),
        "{logs}"
    );
    assert!(
        logs["payload"]["file"]
            .as_str()
            .unwrap()
            .ends_with("logs/gateway.log")
    );

    let schema = rpc(&mut ws, "s1", "config.schema", json!({})).await;
    assert_eq!(
        schema["payload"]["uiHints"]["gateway.auth.token"]["sensitive"],
        true
    );
    let on_disk = std::fs::read_to_string(home.join("pincer.json")).unwrap();
    assert_eq!(
        on_disk, "{logging: {level: 'info'}}",
        "config.apply wrote the whole file"
    );
}

#[tokio::test]
async fn editing_the_token_in_the_file_applies_without_a_restart() {
    let (_dir, home) = temp_home();
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("pincer.json"),
        "{ gateway: { auth: { token: 'old-token' } } }",
    )
    .unwrap();
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let _old = connect(&gw.url(), "old-token").await;
    std::fs::write(
        home.join("pincer.json"),
        "{ gateway: { auth: { token: 'new-token' } } }",
    )
    .unwrap();
    // The reload is asynchronous (file watch + debounce): wait for the gateway to log it.
    // (Polling with the new token would count failed attempts against the auth limiter.)
    let log = home.join("logs/gateway.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("gateway auth updated from the config")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload logged within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = pincer(
        &home,
        &["health", "--url", &gw.url(), "--token", "new-token"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = pincer(
        &home,
        &["health", "--url", &gw.url(), "--token", "old-token"],
    );
    assert_eq!(out.status.code(), Some(1), "the old token is refused now");
}

#[tokio::test]
async fn an_injected_crash_restarts_only_that_actor_and_is_counted() {
    let (_dir, home) = temp_home();
    let gw = Daemon::start(
        &home,
        &["--port", "0", "--inject-fault", "config-watcher:panic@1"],
        &[],
    );
    let token = read_token(&home);
    let mut ws = connect(&gw.url(), &token).await;
    let first = rpc(&mut ws, "g1", "config.get", json!({})).await;
    assert_eq!(
        first["ok"], false,
        "the watcher panics on its first message: {first}"
    );
    assert_eq!(first["error"]["code"], "UNAVAILABLE");
    // The supervisor restarts it; the connection (a sibling's child) is untouched.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    loop {
        n += 1;
        let again = rpc(&mut ws, &format!("g{n}x"), "config.get", json!({})).await;
        if again["ok"] == true {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "config.get never recovered: {again}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = reqwest_like_get(&gw.addr, "/metrics").await;
    assert!(
        metrics.contains("pincer_actor_restarts_total{kind=\"config-watcher\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_gateway_crash_closes_its_clients_restarts_on_the_same_port_and_keeps_the_daemon() {
    let (_dir, home) = temp_home();
    // The gateway's 2nd message is the second client's join: it panics there.
    let gw = Daemon::start(
        &home,
        &["--port", "0", "--inject-fault", "gateway:panic@2"],
        &[],
    );
    let token = read_token(&home);
    let first = connect(&gw.url(), &token).await.into_inner();
    let opts = CallOptions {
        url: gw.url(),
        auth: ConnectAuth {
            token: Some(token.clone()),
            ..Default::default()
        },
        timeout: Duration::from_secs(10),
        scopes: None,
    };
    let second = Session::connect(&opts).await;
    assert!(
        second.is_err(),
        "the join that crashed the gateway is not accepted"
    );
    // The first client is told to close: its gateway is gone.
    let mut first = first;
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), first.next())
            .await
            .expect("close within 10 s")
        {
            Some(Ok(Message::Close(f))) => break f.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(code, Some(1012), "1012: service restart");
    // The supervisor restarted the gateway on the same socket.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut third = loop {
        match Session::connect(&opts).await {
            Ok(s) => break s,
            Err(e) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no gateway after the restart: {e}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert_eq!(third.request("health", None).await.unwrap()["ok"], true);
    let metrics = reqwest_like_get(&gw.addr, "/metrics").await;
    assert!(
        metrics.contains("pincer_actor_restarts_total{kind=\"gateway\"} 1"),
        "{metrics}"
    );
    // The killed connections were un-counted: only the third is connected.
    assert!(
        metrics.contains("pincer_gateway_connections 1\n"),
        "{metrics}"
    );
    gw.signal(libc::SIGTERM);
    assert_eq!(gw.wait().0, Some(0), "the daemon still stops cleanly");
}
