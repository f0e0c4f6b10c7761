//! The real `pincer` binary as a user runs it: start-up, CLI calls, signals, the state
//! directory. Every test uses its own temporary PINCER_HOME and a free loopback port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_pincer");

struct Daemon {
    child: Child,
    addr: String,
    /// Lines the daemon printed after "listening" (stdout and stderr).
    output: mpsc::Receiver<String>,
}

impl Daemon {
    fn start(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.arg("gateway")
            .args(args)
            .env("PINCER_HOME", home)
            .env_remove("PINCER_GATEWAY_TOKEN");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pincer");
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let mut seen = Vec::new();
        let addr = loop {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening on ws://").nth(1) {
                        break rest.split(['/', ' ']).next().unwrap().to_owned();
                    }
                    seen.push(line);
                }
                Err(_) => panic!("gateway did not start; it printed:\n{}", seen.join("\n")),
            }
        };
        Self {
            child,
            addr,
            output: rx,
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    fn wait(mut self) -> (Option<i32>, Vec<String>) {
        let status = self.child.wait().unwrap();
        let lines = self.output.try_iter().collect();
        (status.code(), lines)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pincer(home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("PINCER_HOME", home)
        .env_remove("PINCER_GATEWAY_TOKEN")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn connect(
    url: &str,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let _challenge = ws.next().await;
    let hello = json!({"type":"req","id":"c","method":"connect","params":{"minProtocol":3,"maxProtocol":4,
        "auth":{"token":token},"client":{"id":"test","version":"t","platform":"linux","mode":"test"}}});
    ws.send(Message::Text(hello.to_string().into()))
        .await
        .unwrap();
    loop {
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            panic!("handshake failed")
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        if v["id"] == "c" {
            assert_eq!(v["ok"], true, "{v}");
            return ws;
        }
    }
}

fn temp_home() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("state");
    (dir, home)
}

#[tokio::test]
async fn sigterm_tells_clients_then_exits_zero() {
    let (_dir, home) = temp_home();
    let gw = Daemon::start(
        &home,
        &["--port", "0"],
        &[("PINCER_GATEWAY_TOKEN", "tok-sigterm")],
    );
    let mut ws = connect(&gw.url(), "tok-sigterm").await;
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
