//! A minimal control-plane client for the CLI (`pincer gateway call`, `health`, `status`):
//! the same handshake and frames as OpenClaw's own CLI.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pincer_actors::protocol::{ConnectAuth, ErrorShape, PROTOCOL_MAX, PROTOCOL_MIN};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Why a call could not be made or was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the gateway at {url}: {reason}\n  is it running? start it with `pincer gateway`, or pass --url"
    )]
    Unreachable { url: String, reason: String },
    #[error("the gateway at {url} refused the connection: {error}\n  {hint}")]
    Refused {
        url: String,
        error: ErrorShape,
        hint: &'static str,
    },
    #[error("{method} failed: {error}")]
    Rpc { method: String, error: ErrorShape },
    #[error("the gateway at {url} closed the connection{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed { url: String, reason: Option<String> },
    #[error("no answer from the gateway at {url} within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("unexpected frame from the gateway: {0}")]
    Protocol(String),
}

impl ClientError {
    /// Exit status for the CLI: 1 for a refused call, 3 when the gateway is unreachable.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Unreachable { .. } | Self::Timeout { .. } | Self::Closed { .. } => 3,
            _ => 1,
        }
    }
}

pub struct CallOptions {
    pub url: String,
    pub auth: ConnectAuth,
    pub timeout: Duration,
    pub scopes: Option<Vec<String>>,
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects, performs the handshake, calls `method` once and returns its payload.
pub async fn call(
    opts: &CallOptions,
    method: &str,
    params: Option<Value>,
) -> Result<Value, ClientError> {
    call_inner(opts, method, params, false).await
}

/// `call` for methods that answer twice on one id (`agent`: `{status: "accepted"}`, then
/// the result): returns the final answer.
pub async fn call_final(
    opts: &CallOptions,
    method: &str,
    params: Option<Value>,
) -> Result<Value, ClientError> {
    call_inner(opts, method, params, true).await
}

async fn call_inner(
    opts: &CallOptions,
    method: &str,
    params: Option<Value>,
    expect_final: bool,
) -> Result<Value, ClientError> {
    let once = async {
        let mut session = Session::connect(opts).await?;
        let result = request(
            &mut session.ws,
            &session.url,
            method,
            params,
            &mut session.events,
            expect_final,
        )
        .await;
        session.close().await;
        result
    };
    tokio::time::timeout(opts.timeout, once)
        .await
        .map_err(|_| ClientError::Timeout {
            url: opts.url.clone(),
            timeout: opts.timeout,
        })?
}

/// One authenticated connection to a gateway, for callers that make several requests
/// (tests, tools). `call` is the one-shot form.
pub struct Session {
    ws: Ws,
    url: String,
    /// Events received while waiting for responses, oldest first.
    pub events: Vec<Value>,
}

impl Session {
    /// Connects and completes the handshake (client id `cli`, role operator), giving up
    /// after `opts.timeout`.
    pub async fn connect(opts: &CallOptions) -> Result<Self, ClientError> {
        tokio::time::timeout(opts.timeout, Self::connect_inner(opts))
            .await
            .unwrap_or_else(|_| {
                Err(ClientError::Timeout {
                    url: opts.url.clone(),
                    timeout: opts.timeout,
                })
            })
    }

    async fn connect_inner(opts: &CallOptions) -> Result<Self, ClientError> {
        let url = opts.url.clone();
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url.as_str(), None, true)
            .await
            .map_err(|e| ClientError::Unreachable {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let mut session = Self {
            ws,
            url,
            events: Vec::new(),
        };
        let challenge = next_frame(&mut session.ws, &session.url).await?;
        if challenge["event"] != "connect.challenge" {
            return Err(ClientError::Protocol(format!(
                "expected connect.challenge, got {challenge}"
            )));
        }
        let mut connect = json!({
            "minProtocol": PROTOCOL_MIN,
            "maxProtocol": PROTOCOL_MAX,
            "client": {
                "id": "cli",
                "displayName": "pincer cli",
                "version": env!("CARGO_PKG_VERSION"),
                "platform": std::env::consts::OS,
                "mode": "cli",
            },
            "role": "operator",
            "auth": opts.auth,
        });
        if let Some(scopes) = &opts.scopes {
            connect["scopes"] = json!(scopes);
        }
        match session.request("connect", Some(connect)).await {
            Ok(_) => Ok(session),
            Err(ClientError::Rpc { error, .. }) => {
                let hint = if error.message.contains("unauthorized") {
                    "pass --token (or --password), or set PINCER_GATEWAY_TOKEN; the gateway's generated token is in <state dir>/credentials/gateway.token"
                } else if error
                    .details
                    .as_ref()
                    .is_some_and(|d| d["code"] == "PROTOCOL_MISMATCH")
                {
                    "this client and the gateway speak different protocol versions; upgrade the older one"
                } else {
                    "see the gateway's log for details"
                };
                Err(ClientError::Refused {
                    url: session.url,
                    error,
                    hint,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Calls one method and returns its payload; events that arrive meanwhile are kept
    /// in `events`.
    pub async fn request(
        &mut self,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, ClientError> {
        request(
            &mut self.ws,
            &self.url,
            method,
            params,
            &mut self.events,
            false,
        )
        .await
    }

    /// `request` that skips an early `{status: "accepted"}` answer and returns the final
    /// one on the same id.
    pub async fn request_final(
        &mut self,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, ClientError> {
        request(
            &mut self.ws,
            &self.url,
            method,
            params,
            &mut self.events,
            true,
        )
        .await
    }

    /// Sends a frame as it is (tests that need to see every answer to a request).
    pub async fn send_raw(&mut self, frame: &str) -> Result<(), ClientError> {
        self.ws
            .send(Message::Text(frame.to_owned().into()))
            .await
            .map_err(|e| ClientError::Closed {
                url: self.url.clone(),
                reason: Some(e.to_string()),
            })
    }

    /// The next frame (event or stray response).
    pub async fn next_frame(&mut self) -> Result<Value, ClientError> {
        next_frame(&mut self.ws, &self.url).await
    }

    /// The socket, for callers that drive frames themselves (the load tool).
    pub fn into_inner(self) -> Ws {
        self.ws
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

async fn request(
    ws: &mut Ws,
    url: &str,
    method: &str,
    params: Option<Value>,
    events: &mut Vec<Value>,
    expect_final: bool,
) -> Result<Value, ClientError> {
    let id = uuid::Uuid::new_v4().to_string();
    let mut frame = json!({"type": "req", "id": id, "method": method});
    if let Some(p) = params {
        frame["params"] = p;
    }
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .map_err(|e| ClientError::Closed {
            url: url.to_owned(),
            reason: Some(e.to_string()),
        })?;
    loop {
        let v = next_frame(ws, url).await?;
        if v["type"] == "res" && v["id"] == id.as_str() {
            if expect_final && v["ok"] == true && v["payload"]["status"] == "accepted" {
                continue;
            }
            if v["ok"] == true {
                return Ok(v.get("payload").cloned().unwrap_or(Value::Null));
            }
            let error: ErrorShape = serde_json::from_value(v["error"].clone())
                .map_err(|e| ClientError::Protocol(format!("bad error shape ({e}): {v}")))?;
            return Err(ClientError::Rpc {
                method: method.to_owned(),
                error,
            });
        }
        if v["type"] == "event" {
            events.push(v);
        }
    }
}

async fn next_frame(ws: &mut Ws, url: &str) -> Result<Value, ClientError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(&t)
                    .map_err(|e| ClientError::Protocol(format!("invalid JSON ({e})")));
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(ClientError::Closed {
                    url: url.to_owned(),
                    reason: frame.map(|f| format!("{} {}", u16::from(f.code), f.reason)),
                });
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                return Err(ClientError::Closed {
                    url: url.to_owned(),
                    reason: Some(e.to_string()),
                });
            }
            None => {
                return Err(ClientError::Closed {
                    url: url.to_owned(),
                    reason: None,
                });
            }
        }
    }
}
