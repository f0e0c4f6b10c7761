//! ConnectionActor: one per WebSocket client.
//!
//! Parent: the [`GatewayActor`](super::GatewayActor), which links every connection to itself
//! as a *temporary* child: a connection that ends (client gone, protocol error, crash) is
//! never restarted; the gateway drops its presence and tells the others.
//!
//! Lifecycle: `connect.challenge` on open -> the client's `connect` request (the only
//! first frame accepted) -> `hello-ok` -> requests answered through the
//! [`MethodRegistry`](super::MethodRegistry), events forwarded with a per-connection `seq`,
//! a `tick` every `tickIntervalMs`. A reader task owns the socket's read half and casts
//! each frame here; a semaphore bounds the frames in flight so a flooding client is
//! slowed down by TCP instead of growing our mailbox.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, debug_span, info_span, warn};

use super::registry::CallContext;
use super::{GatewayMsg, Shared, idempotency};
use crate::protocol::{
    self, AuthInfo, ClientInfo, ConnectParams, Encoding, ErrorShape, EventFrame, Features,
    FrameError, HelloOk, PresenceEntry, RequestFrame, ResponseFrame, ServerInfo, Snapshot,
    StateVersion, scopes,
};

/// Close codes used by the gateway.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const RESTART: u16 = 1012;
}

/// Frames read but not yet handled, per connection.
const MAX_FRAMES_IN_FLIGHT: usize = 256;

pub struct ConnectionActor;

pub struct ConnectionArgs {
    pub socket: WebSocket,
    pub remote: SocketAddr,
    pub encoding: Encoding,
    pub conn_id: Arc<str>,
    pub shared: Arc<Shared>,
    pub gateway: ActorRef<GatewayMsg>,
}

enum Phase {
    AwaitingConnect,
    Ready { ctx: CallContext },
    Closing,
}

pub struct ConnectionState {
    /// The write half. `None` only inside `Drop`, which takes it to say goodbye.
    sink: Option<SplitSink<WebSocket, Message>>,
    reader: JoinHandle<()>,
    timers: Vec<JoinHandle<()>>,
    permits: Arc<Semaphore>,
    phase: Phase,
    seq: u64,
    /// Frames are fed to the socket as they are produced and flushed by a `Flush`
    /// self-message, which runs after everything already queued: a burst of pipelined
    /// requests costs one write system call instead of one per response.
    flush_pending: bool,
    myself: ActorRef<ConnMsg>,
    remote: SocketAddr,
    encoding: Encoding,
    conn_id: Arc<str>,
    shared: Arc<Shared>,
    gateway: ActorRef<GatewayMsg>,
}

pub enum ConnMsg {
    /// A frame read from the socket (holds one in-flight permit).
    Inbound(Message),
    /// The socket's read half ended: the peer closed, or reading failed.
    ReadEnded { error: Option<ReadError> },
    /// An event to forward to this client (broadcast by the gateway).
    Event {
        event: Arc<str>,
        payload: Value,
        state_version: Option<StateVersion>,
    },
    /// A handler that did not answer at once has finished.
    Reply(ResponseFrame),
    /// Close the socket with this code and reason, then stop.
    Close { code: u16, reason: String },
    /// Timers and other self-messages.
    Internal(Internal),
}

pub enum Internal {
    HandshakeTimeout,
    Tick,
    /// Write out what was fed to the socket.
    Flush,
}

/// Why reading from the socket failed.
#[derive(Debug)]
pub enum ReadError {
    /// A frame larger than `maxPayload`.
    TooLarge(String),
    Other(String),
}

impl Actor for ConnectionActor {
    type Msg = ConnMsg;
    type State = ConnectionState;
    type Arguments = ConnectionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ConnMsg>,
        args: ConnectionArgs,
    ) -> Result<ConnectionState, ActorProcessingErr> {
        let (sink, stream) = args.socket.split();
        let permits = Arc::new(Semaphore::new(MAX_FRAMES_IN_FLIGHT));
        let span = info_span!("connection", conn_id = %args.conn_id, remote = %args.remote);
        let reader =
            tokio::spawn(read_loop(stream, myself.clone(), permits.clone()).instrument(span));
        let timeout = args.shared.settings.handshake_timeout;
        let handshake_timer =
            myself.send_after(timeout, || ConnMsg::Internal(Internal::HandshakeTimeout));
        // Counted here, with the state whose Drop un-counts it.
        args.shared.metrics.connection_opened();
        Ok(ConnectionState {
            sink: Some(sink),
            reader,
            timers: vec![tokio::spawn(async move {
                let _ = handshake_timer.await;
            })],
            permits,
            phase: Phase::AwaitingConnect,
            seq: 0,
            flush_pending: false,
            myself: myself.clone(),
            remote: args.remote,
            encoding: args.encoding,
            conn_id: args.conn_id,
            shared: args.shared,
            gateway: args.gateway,
        })
    }

    async fn post_start(
        &self,
        _myself: ActorRef<ConnMsg>,
        state: &mut ConnectionState,
    ) -> Result<(), ActorProcessingErr> {
        let nonce = uuid::Uuid::new_v4().to_string();
        // Outside the per-connection sequence, as in OpenClaw: the first event after the
        // handshake is `seq: 1`.
        let challenge = EventFrame::new(
            "connect.challenge",
            json!({"nonce": nonce, "ts": super::now_ms()}),
        );
        state.send(&challenge).await;
        Ok(())
    }

    // Clean-up lives in `Drop for ConnectionState`: a connection killed with its gateway
    // (ractor kills the children of an actor that panics) never runs `post_stop`.

    async fn handle(
        &self,
        myself: ActorRef<ConnMsg>,
        msg: ConnMsg,
        state: &mut ConnectionState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ConnMsg::Inbound(frame) => {
                state.on_inbound(&myself, frame).await;
                state.permits.add_permits(1);
            }
            ConnMsg::ReadEnded { error } => state.on_read_ended(&myself, error).await,
            ConnMsg::Event {
                event,
                payload,
                state_version,
            } => {
                if matches!(state.phase, Phase::Ready { .. }) {
                    state.send_event(&event, payload, state_version).await;
                }
            }
            ConnMsg::Reply(frame) => state.send(&frame).await,
            ConnMsg::Close { code, reason } => state.close(&myself, code, &reason).await,
            ConnMsg::Internal(Internal::HandshakeTimeout) => {
                if matches!(state.phase, Phase::AwaitingConnect) {
                    let secs = state.shared.settings.handshake_timeout.as_secs_f64();
                    state
                        .close(
                            &myself,
                            close::POLICY,
                            &format!("handshake timeout: no connect request within {secs}s"),
                        )
                        .await;
                }
            }
            ConnMsg::Internal(Internal::Flush) => {
                state.flush_pending = false;
                if let Err(e) = state.sink().flush().await {
                    debug!(conn_id = %state.conn_id, error = %e, "socket flush failed");
                }
            }
            ConnMsg::Internal(Internal::Tick) => {
                if matches!(state.phase, Phase::Ready { .. }) {
                    state
                        .send_event("tick", json!({"ts": super::now_ms()}), None)
                        .await;
                }
            }
        }
        Ok(())
    }
}

async fn read_loop(
    mut stream: SplitStream<WebSocket>,
    conn: ActorRef<ConnMsg>,
    permits: Arc<Semaphore>,
) {
    loop {
        let Ok(permit) = permits.acquire().await else {
            return;
        };
        permit.forget();
        match stream.next().await {
            Some(Ok(msg)) => {
                if conn.cast(ConnMsg::Inbound(msg)).is_err() {
                    return;
                }
            }
            Some(Err(e)) => {
                let text = e.to_string();
                let error = if is_too_large(&e) {
                    ReadError::TooLarge(text)
                } else {
                    ReadError::Other(text)
                };
                let _ = conn.cast(ConnMsg::ReadEnded { error: Some(error) });
                return;
            }
            None => {
                let _ = conn.cast(ConnMsg::ReadEnded { error: None });
                return;
            }
        }
    }
}

fn is_too_large(e: &axum::Error) -> bool {
    use std::error::Error as _;
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(tungstenite::Error::Capacity(_)) = s.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

impl ConnectionState {
    async fn on_inbound(&mut self, myself: &ActorRef<ConnMsg>, frame: Message) {
        let (bytes, kind_ok) = match (&frame, self.encoding) {
            (Message::Text(t), Encoding::Json) => (t.as_bytes(), true),
            (Message::Binary(b), Encoding::MsgPack) => (&b[..], true),
            (Message::Text(t), Encoding::MsgPack) => (t.as_bytes(), false),
            (Message::Binary(b), Encoding::Json) => (&b[..], false),
            (Message::Close(_), _) => {
                self.phase = Phase::Closing;
                myself.stop(Some("client closed".into()));
                return;
            }
            (Message::Ping(_) | Message::Pong(_), _) => return,
        };
        if matches!(self.phase, Phase::AwaitingConnect)
            && bytes.len() > self.shared.settings.preauth_max_frame
        {
            let cap = self.shared.settings.preauth_max_frame;
            self.close(
                myself,
                close::TOO_BIG,
                &format!(
                    "pre-auth frame of {} bytes exceeds the {cap}-byte cap",
                    bytes.len()
                ),
            )
            .await;
            return;
        }
        let decoded = if kind_ok {
            protocol::decode_request(self.encoding, bytes)
        } else {
            Err((
                None,
                FrameError::WrongEncoding(match self.encoding {
                    Encoding::Json => format!(
                        "binary frame on a JSON connection: send JSON text frames, or open the socket with the {} subprotocol for MessagePack",
                        protocol::MSGPACK_SUBPROTOCOL
                    ),
                    Encoding::MsgPack => {
                        "text frame on a MessagePack connection: send MessagePack binary frames"
                            .into()
                    }
                }),
            ))
        };
        match decoded {
            Ok(req) => self.on_request(myself, req).await,
            Err((id, err)) => self.on_bad_frame(myself, id, err).await,
        }
    }

    async fn on_bad_frame(
        &mut self,
        myself: &ActorRef<ConnMsg>,
        id: Option<String>,
        err: FrameError,
    ) {
        self.shared.metrics.request("invalid", "error");
        let message = err.to_string();
        debug!(conn_id = %self.conn_id, %message, "refused a frame");
        if let Some(id) = &id {
            self.send(&ResponseFrame::err(
                id.clone(),
                ErrorShape::invalid_request(message.clone()),
            ))
            .await;
        }
        match (&self.phase, id) {
            (Phase::AwaitingConnect, _) => {
                self.close(
                    myself,
                    close::POLICY,
                    &truncate_reason(&format!("first frame must be a connect request: {message}")),
                )
                .await
            }
            (_, None) => {
                self.close(myself, close::INVALID_PAYLOAD, &truncate_reason(&message))
                    .await
            }
            (_, Some(_)) => {}
        }
    }

    async fn on_request(&mut self, myself: &ActorRef<ConnMsg>, req: RequestFrame) {
        match &self.phase {
            Phase::AwaitingConnect => self.on_connect(myself, req).await,
            Phase::Ready { ctx } => {
                let ctx = ctx.clone();
                self.on_call(myself, ctx, req).await
            }
            Phase::Closing => {}
        }
    }

    async fn on_connect(&mut self, myself: &ActorRef<ConnMsg>, req: RequestFrame) {
        if req.method != "connect" {
            let msg = format!("first request must be connect, got {:?}", req.method);
            self.send(&ResponseFrame::err(
                req.id,
                ErrorShape::invalid_request(msg.clone()),
            ))
            .await;
            return self.close(myself, close::POLICY, &msg).await;
        }
        let params: ConnectParams =
            match serde_json::from_value(req.params.clone().unwrap_or(Value::Null)) {
                Ok(p) => p,
                Err(e) => {
                    let msg = format!("invalid connect params: {e}");
                    self.send(&ResponseFrame::err(
                        req.id,
                        ErrorShape::invalid_request(msg.clone()),
                    ))
                    .await;
                    return self
                        .close(myself, close::POLICY, &truncate_reason(&msg))
                        .await;
                }
            };
        let Some(protocol) = protocol::negotiate_protocol(params.min_protocol, params.max_protocol)
        else {
            let err = ErrorShape::invalid_request("protocol mismatch").with_details(json!({
                "code": "PROTOCOL_MISMATCH",
                "minProtocol": protocol::PROTOCOL_MIN,
                "maxProtocol": protocol::PROTOCOL_MAX,
                "clientMinProtocol": params.min_protocol,
                "clientMaxProtocol": params.max_protocol,
            }));
            self.send(&ResponseFrame::err(req.id, err)).await;
            let reason = format!(
                "protocol mismatch: client speaks {}..{}, gateway speaks {}..{}",
                params.min_protocol,
                params.max_protocol,
                protocol::PROTOCOL_MIN,
                protocol::PROTOCOL_MAX
            );
            return self.close(myself, close::PROTOCOL_ERROR, &reason).await;
        };
        if !protocol::hello_client_mode_ok(&params.client.mode) {
            let msg = format!(
                "invalid connect params: client.mode {:?} is not one of {}",
                params.client.mode,
                protocol::CLIENT_MODES.join(", ")
            );
            self.send(&ResponseFrame::err(
                req.id,
                ErrorShape::invalid_request(msg.clone()),
            ))
            .await;
            return self.close(myself, close::POLICY, &msg).await;
        }
        debug!(
            conn_id = %self.conn_id,
            client = %params.client.label(),
            role = ?params.role,
            scopes = ?params.scopes,
            caps = ?params.caps,
            device = params.device.is_some(),
            "connect request"
        );
        let presence = PresenceEntry {
            host: params.client.display_name.clone(),
            ip: Some(self.remote.ip().to_string()),
            version: Some(params.client.version.clone()),
            platform: Some(params.client.platform.clone()),
            device_family: params.client.device_family.clone(),
            model_identifier: params.client.model_identifier.clone(),
            mode: Some(params.client.mode.clone()),
            reason: Some("connect".into()),
            ts: super::now_ms(),
            instance_id: params.client.instance_id.clone(),
            ..Default::default()
        };
        let joined = self
            .gateway
            .call(
                |reply| {
                    GatewayMsg::Join(Box::new(super::JoinRequest {
                        conn: myself.clone(),
                        conn_id: self.conn_id.clone(),
                        remote: self.remote,
                        role: params.role.clone(),
                        scopes: params.scopes.clone(),
                        auth: params.auth.clone(),
                        presence,
                        reply,
                    }))
                },
                Some(self.shared.settings.handshake_timeout),
            )
            .await;
        let joined = match joined {
            Ok(ractor::rpc::CallResult::Success(r)) => r,
            _ => {
                let msg = "gateway is shutting down";
                self.send(&ResponseFrame::err(req.id, ErrorShape::unavailable(msg)))
                    .await;
                return self.close(myself, close::GOING_AWAY, msg).await;
            }
        };
        let join = match joined {
            Ok(j) => j,
            Err(refusal) => {
                let mut err = ErrorShape::invalid_request(refusal.to_string())
                    .with_details(refusal.details());
                if let super::AuthRefusal::RateLimited { retry_after } = &refusal {
                    err = err.retry_after(retry_after.as_millis() as u64);
                }
                self.send(&ResponseFrame::err(req.id, err)).await;
                return self
                    .close(myself, close::POLICY, &refusal.to_string())
                    .await;
            }
        };
        let shared = self.shared.clone();
        let settings = &shared.settings;
        let hello = HelloOk {
            kind: "hello-ok".into(),
            protocol,
            server: ServerInfo {
                version: self.shared.info.version.clone(),
                host: self.shared.info.host.clone(),
                conn_id: self.conn_id.to_string(),
            },
            features: Features {
                methods: self.shared.registry.method_names().to_vec(),
                events: self.shared.registry.event_names().to_vec(),
            },
            snapshot: Snapshot {
                presence: join.presence,
                health: join.health,
                state_version: join.state_version,
                uptime_ms: join.uptime_ms,
                config_path: self.shared.info.config_path.clone(),
                state_dir: self.shared.info.state_dir.clone(),
                session_defaults: Some(self.shared.info.session_defaults.clone()),
                auth_mode: Some(join.auth_mode.into()),
            },
            canvas_host_url: None,
            auth: (protocol >= 4).then(|| AuthInfo {
                method: Some(join.auth_mode.into()),
                device_token: None,
                role: "operator".into(),
                scopes: join.scopes.clone(),
                issued_at_ms: None,
            }),
            policy: settings.policy,
        };
        let payload = serde_json::to_value(&hello).expect("hello-ok serialises");
        self.send(&ResponseFrame::ok(req.id, payload)).await;
        self.shared.metrics.request("connect", "ok");
        let tick = std::time::Duration::from_millis(settings.policy.tick_interval_ms);
        let ticker = myself.send_interval(tick, || ConnMsg::Internal(Internal::Tick));
        for t in self.timers.drain(..) {
            t.abort();
        }
        self.timers.push(ticker);
        self.phase = Phase::Ready {
            ctx: CallContext {
                conn_id: self.conn_id.clone(),
                remote: self.remote,
                client: Arc::new(params.client),
                scopes: join.scopes.into(),
                gateway: self.gateway.clone(),
                interim: None,
            },
        };
    }

    async fn on_call(
        &mut self,
        myself: &ActorRef<ConnMsg>,
        mut ctx: CallContext,
        req: RequestFrame,
    ) {
        let metrics = self.shared.metrics.clone();
        let Some(entry) = self.shared.registry.get(&req.method) else {
            metrics.request("unknown", "error");
            let msg = if req.method == "connect" {
                "already connected".to_owned()
            } else {
                format!("unknown method: {}", req.method)
            };
            return self
                .send(&ResponseFrame::err(
                    req.id,
                    ErrorShape::invalid_request(msg),
                ))
                .await;
        };
        let method: Arc<str> = Arc::from(req.method.as_str());
        if !scopes::satisfies(&ctx.scopes, entry.scope) {
            metrics.request(&method, "forbidden");
            // OpenClaw's shape: long-lived clients read `details.code`.
            let err = ErrorShape::forbidden(format!(
                "missing scope: {} (needed by {})",
                entry.scope, method
            ))
            .with_details(json!({
                "code": "MISSING_SCOPE",
                "missingScope": entry.scope,
                "requiredScopes": [entry.scope],
            }));
            return self.send(&ResponseFrame::err(req.id, err)).await;
        }
        let mut params = req.params.unwrap_or(Value::Null);
        let idem_key = if entry.side_effecting {
            take_idempotency_key(&mut params)
        } else {
            None
        };
        let handler = entry.handler.clone();
        let id = req.id;
        ctx.interim = Some(super::registry::Interim {
            conn: myself.clone(),
            id: id.clone(),
        });
        let span = debug_span!("request", conn_id = %self.conn_id, %method, request_id = %id);

        if let Some(key) = idem_key {
            // Side-effecting call with a key: the gateway decides whether it runs again.
            let gateway = self.gateway.clone();
            let conn = myself.clone();
            tokio::spawn(
                async move {
                    let result =
                        run_idempotent(&gateway, &method, &key, || handler.call(ctx, params)).await;
                    metrics.request(&method, outcome(&result));
                    let _ = conn.cast(ConnMsg::Reply(ResponseFrame::from_result(id, result)));
                }
                .instrument(span),
            );
            return;
        }

        let mut fut = handler.call(ctx, params);
        let polled = {
            let _g = span.enter();
            (&mut fut).now_or_never()
        };
        match polled {
            Some(result) => {
                metrics.request(&method, outcome(&result));
                self.send(&ResponseFrame::from_result(id, result)).await;
            }
            None => {
                let conn = myself.clone();
                tokio::spawn(
                    async move {
                        let result = fut.await;
                        metrics.request(&method, outcome(&result));
                        let _ = conn.cast(ConnMsg::Reply(ResponseFrame::from_result(id, result)));
                    }
                    .instrument(span),
                );
            }
        }
    }

    async fn on_read_ended(&mut self, myself: &ActorRef<ConnMsg>, error: Option<ReadError>) {
        match error {
            None => myself.stop(Some("client disconnected".into())),
            Some(ReadError::TooLarge(e)) => {
                let max = self.shared.settings.policy.max_payload;
                self.close(
                    myself,
                    close::TOO_BIG,
                    &truncate_reason(&format!("frame exceeds maxPayload of {max} bytes ({e})")),
                )
                .await;
            }
            Some(ReadError::Other(e)) => {
                debug!(conn_id = %self.conn_id, error = %e, "socket read failed");
                myself.stop(Some(format!("read error: {e}")));
            }
        }
    }

    async fn send_event(
        &mut self,
        event: &str,
        payload: Value,
        state_version: Option<StateVersion>,
    ) {
        self.seq += 1;
        let mut frame = EventFrame::new(event, payload);
        frame.seq = Some(self.seq);
        frame.state_version = state_version;
        self.send(&frame).await;
    }

    async fn send<T: serde::Serialize>(&mut self, frame: &T) {
        let bytes = protocol::encode(self.encoding, frame);
        let msg = match self.encoding {
            Encoding::Json => Message::Text(
                String::from_utf8(bytes)
                    .expect("serde_json writes UTF-8")
                    .into(),
            ),
            Encoding::MsgPack => Message::Binary(bytes.into()),
        };
        if let Err(e) = self.sink().feed(msg).await {
            debug!(conn_id = %self.conn_id, error = %e, "socket write failed");
            return;
        }
        if !self.flush_pending {
            self.flush_pending = true;
            let _ = self.myself.cast(ConnMsg::Internal(Internal::Flush));
        }
    }

    fn sink(&mut self) -> &mut SplitSink<WebSocket, Message> {
        self.sink
            .as_mut()
            .expect("the write half is only taken in Drop")
    }

    async fn close(&mut self, myself: &ActorRef<ConnMsg>, code: u16, reason: &str) {
        if matches!(self.phase, Phase::Closing) {
            return;
        }
        self.phase = Phase::Closing;
        if code != close::NORMAL && code != close::GOING_AWAY && code != close::RESTART {
            warn!(conn_id = %self.conn_id, remote = %self.remote, code, reason, "closing connection");
        }
        let frame = CloseFrame {
            code,
            reason: truncate_reason(reason).into(),
        };
        let _ = self.sink().send(Message::Close(Some(frame))).await;
        let _ = self.sink().close().await;
        myself.stop(Some(format!("closed {code}: {reason}")));
    }
}

/// However a connection ends (closed, stopped, or killed because its gateway crashed), its
/// tasks stop, the gauge goes down, and a client that was not told to close yet gets a
/// close frame 1012 (service restart: reconnect) instead of a socket that hangs open.
impl Drop for ConnectionState {
    fn drop(&mut self) {
        self.reader.abort();
        for t in &self.timers {
            t.abort();
        }
        self.shared.metrics.connection_closed();
        if matches!(self.phase, Phase::Closing) {
            return;
        }
        let (Some(mut sink), Ok(rt)) = (self.sink.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        debug!(conn_id = %self.conn_id, "connection ended without a close; telling the client to reconnect");
        rt.spawn(async move {
            let frame = CloseFrame {
                code: close::RESTART,
                reason: "gateway restarting".into(),
            };
            let _ = sink.send(Message::Close(Some(frame))).await;
            let _ = sink.close().await;
        });
    }
}

/// Runs a side-effecting call at most once per `(method, idempotencyKey)`.
async fn run_idempotent<F>(
    gateway: &ActorRef<GatewayMsg>,
    method: &str,
    key: &str,
    run: F,
) -> Result<Value, ErrorShape>
where
    F: FnOnce() -> super::MethodFuture,
{
    let begin = gateway
        .call(
            |reply| GatewayMsg::IdempotencyBegin {
                method: method.to_owned(),
                key: key.to_owned(),
                reply,
            },
            Some(idempotency::WAIT_FOR_FIRST_CALL),
        )
        .await;
    match begin {
        Ok(ractor::rpc::CallResult::Success(Some(result))) => result,
        Ok(ractor::rpc::CallResult::Success(None)) => {
            let result = run().await;
            let _ = gateway.cast(GatewayMsg::IdempotencyComplete {
                method: method.to_owned(),
                key: key.to_owned(),
                result: result.clone(),
            });
            result
        }
        Ok(ractor::rpc::CallResult::Timeout) => Err(ErrorShape::unavailable(
            "a call with this idempotencyKey is still running; retry later",
        )
        .retry_after(1000)),
        _ => Err(ErrorShape::unavailable("gateway is shutting down")),
    }
}

fn take_idempotency_key(params: &mut Value) -> Option<String> {
    match params.as_object_mut()?.remove("idempotencyKey")? {
        Value::String(s) if !s.is_empty() => Some(s),
        _ => None,
    }
}

fn outcome(r: &Result<Value, ErrorShape>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) if e.code == protocol::ErrorCode::Forbidden => "forbidden",
        Err(_) => "error",
    }
}

/// WebSocket close reasons are capped at 123 bytes.
fn truncate_reason(reason: &str) -> String {
    if reason.len() <= 123 {
        return reason.to_owned();
    }
    let mut end = 120;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &reason[..end])
}

impl ClientInfo {
    /// Short label for logs.
    pub fn label(&self) -> String {
        format!("{}/{}@{}", self.id, self.mode, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_the_protocol_limit() {
        let long = "é".repeat(200);
        let r = truncate_reason(&long);
        assert!(r.len() <= 123, "{}", r.len());
        assert!(r.ends_with("..."));
        assert_eq!(truncate_reason("short"), "short");
    }

    #[test]
    fn idempotency_key_is_taken_out_of_params() {
        let mut p = json!({"raw": "{}", "idempotencyKey": "k"});
        assert_eq!(take_idempotency_key(&mut p).as_deref(), Some("k"));
        assert_eq!(p, json!({"raw": "{}"}));
        assert_eq!(
            take_idempotency_key(&mut json!({"idempotencyKey": 5})),
            None
        );
        assert_eq!(take_idempotency_key(&mut Value::Null), None);
    }
}
