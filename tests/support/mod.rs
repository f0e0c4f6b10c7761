//! What the whole-binary tests share: a `pincer gateway` child process on a temporary
//! state directory and a free loopback port, small CLI helpers, the mock LLM and the config
//! that points the default agent at it, and the channel settings for the fakes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use pincer::client::{CallOptions, Session};
use pincer_actors::protocol::ConnectAuth;
use pincer_fakes::slack::FakeSlack;
use pincer_fakes::telegram::FakeTelegram;
use pincer_mockllm::{MockApi, MockLlm, RecordedRequest};
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_pincer");

pub struct Daemon {
    pub child: Child,
    pub addr: String,
    /// Lines the daemon printed after "listening" (stdout and stderr).
    pub output: mpsc::Receiver<String>,
}

impl Daemon {
    pub fn start(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
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

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    pub fn wait(mut self) -> (Option<i32>, Vec<String>) {
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

pub fn pincer(home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("PINCER_HOME", home)
        .env_remove("PINCER_GATEWAY_TOKEN")
        .output()
        .unwrap()
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub async fn connect(url: &str, token: &str) -> Session {
    let opts = CallOptions {
        url: url.to_owned(),
        auth: ConnectAuth {
            token: Some(token.to_owned()),
            ..Default::default()
        },
        timeout: Duration::from_secs(10),
        scopes: None,
    };
    Session::connect(&opts).await.expect("handshake")
}

pub fn temp_home() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("state");
    (dir, home)
}

pub fn read_token(home: &Path) -> String {
    std::fs::read_to_string(home.join("credentials/gateway.token"))
        .unwrap()
        .trim()
        .to_owned()
}

/// A plain HTTP GET on the gateway port (metrics, health), the response as text.
pub async fn reqwest_like_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

/// The mock LLM server on a free loopback port.
pub async fn mock_llm() -> MockLlm {
    MockLlm::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// `base` with `extra` merged in (JSON merge patch).
pub fn merged(mut base: Value, extra: &Value) -> Value {
    pincer_actors::config::merge_patch(&mut base, extra);
    base
}

/// The config whose only provider is the mock (model `mock-model`) and whose default agent
/// uses it.
pub fn mock_config(llm: &MockLlm) -> Value {
    json!({
        "models": {"providers": {"mock": {
            "api": "openai-completions",
            "baseUrl": llm.base_url(MockApi::OpenAi),
            "apiKey": "test-key",
            "models": [{"id": "mock-model"}],
        }}},
        "agents": {"defaults": {"model": "mock/mock-model"}},
    })
}

/// Writes `cfg` as the state directory's `pincer.json` (making the directory).
pub fn write_config_json(home: &Path, cfg: &Value) {
    std::fs::create_dir_all(home).unwrap();
    std::fs::write(home.join("pincer.json"), cfg.to_string()).unwrap();
}

/// Writes the mock-model config with `extra` merged in (JSON merge patch).
pub fn write_mock_config(home: &Path, llm: &MockLlm, extra: Value) {
    write_config_json(home, &merged(mock_config(llm), &extra));
}

/// Writes the mock-model config with these `channels`.
pub fn write_channels_config(home: &Path, llm: &MockLlm, channels: Value) {
    write_mock_config(home, llm, json!({ "channels": channels }));
}

/// Polls `channels.status` every 100 ms, at most `tries` times, until `done` holds for the
/// accounts of `channel`: `Ok` with that status, or `Err` with the last one.
pub async fn poll_channel_accounts(
    s: &mut Session,
    channel: &str,
    tries: usize,
    done: impl Fn(&[Value]) -> bool,
) -> Result<Value, Value> {
    let mut last = Value::Null;
    for _ in 0..tries {
        last = s.request("channels.status", None).await.unwrap();
        let accounts = last["channelAccounts"][channel]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if done(&accounts) {
            return Ok(last);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last)
}

/// Chat requests the mock LLM got (not model listings).
pub fn chat_requests(llm: &MockLlm) -> Vec<RecordedRequest> {
    llm.requests()
        .into_iter()
        .filter(|r| r.path.contains("chat/completions"))
        .collect()
}

/// How many chat requests the mock LLM got (not model listings).
pub fn model_turns(llm: &MockLlm) -> usize {
    chat_requests(llm).len()
}

/// A polling telegram account on this fake, with `extra` merged in.
pub fn telegram_config(tg: &FakeTelegram, extra: Value) -> Value {
    merged(
        json!({
            "botToken": tg.token(),
            "apiBaseUrl": tg.api_url(),
            "pollTimeoutSeconds": 1,
        }),
        &extra,
    )
}

/// An open slack account on this fake, with `extra` merged in.
pub fn slack_config(slack: &FakeSlack, extra: Value) -> Value {
    merged(
        json!({
            "botToken": slack.bot_token(),
            "signingSecret": slack.signing_secret(),
            "apiBaseUrl": slack.api_url(),
            "dmPolicy": "open",
        }),
        &extra,
    )
}

/// Starts the gateway, points the fake Slack at its webhook and waits until the account
/// is connected (`auth.test` done) and answers `url_verification`.
pub async fn start_slack_gateway(home: &Path, slack: &FakeSlack) -> Daemon {
    let gw = Daemon::start(home, &["--port", "0"], &[]);
    slack.set_request_url(&format!("http://{}/channels/slack", gw.addr));
    slack
        .wait_calls("auth.test", 1, Duration::from_secs(20))
        .await
        .unwrap();
    // The account is registered before it connects; give auth.test's answer a moment.
    for _ in 0..50 {
        if slack.url_verification().await.is_ok_and(|v| v.ok()) {
            return gw;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the slack account never answered url_verification");
}
