//! What the whole-binary tests share: a `pincer gateway` child process on a temporary
//! state directory and a free loopback port, and small CLI helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use pincer::client::{CallOptions, Session};
use pincer_actors::protocol::ConnectAuth;

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
