//! The HTTP side of the gateway port: WebSocket upgrades, `/healthz`, `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::ws::{WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use ractor::{Actor, ActorRef};
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error};

use super::connection::{ConnectionActor, ConnectionArgs};
use super::{GatewayMsg, Shared};
use crate::protocol::{Encoding, MSGPACK_SUBPROTOCOL};

/// Bytes read from a client socket per system call.
const READ_CHUNK: usize = 8 * 1024;
/// Bytes buffered before a write is forced even without a flush.
const WRITE_BATCH: usize = 32 * 1024;

#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    gateway: ActorRef<GatewayMsg>,
}

/// Where the gateway takes its clients from.
pub enum GatewayListener {
    /// A bound TCP socket (the daemon).
    Tcp(tokio::net::TcpListener),
    /// In-process byte streams (deterministic tests: no kernel in the path, so paused
    /// tokio time sees every byte at once).
    Memory(MemoryListener),
}

impl From<tokio::net::TcpListener> for GatewayListener {
    fn from(l: tokio::net::TcpListener) -> Self {
        Self::Tcp(l)
    }
}

impl GatewayListener {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Self::Tcp(l) => l.local_addr(),
            Self::Memory(m) => Ok(m.addr),
        }
    }
}

/// Accepts in-memory connections made through its [`MemoryConnector`].
pub struct MemoryListener {
    rx: mpsc::Receiver<DuplexStream>,
    addr: SocketAddr,
}

/// Opens in-memory connections to a [`MemoryListener`].
#[derive(Clone)]
pub struct MemoryConnector {
    tx: mpsc::Sender<DuplexStream>,
}

/// A listener/connector pair; the listener reports `addr` as its address and as every
/// client's remote address.
pub fn memory_transport(addr: SocketAddr) -> (MemoryListener, MemoryConnector) {
    let (tx, rx) = mpsc::channel(64);
    (MemoryListener { rx, addr }, MemoryConnector { tx })
}

impl MemoryConnector {
    /// A new connection's client end; `None` when the gateway is gone.
    pub async fn connect(&self) -> Option<DuplexStream> {
        let (client, server) = tokio::io::duplex(64 * 1024);
        self.tx.send(server).await.ok()?;
        Some(client)
    }
}

impl axum::serve::Listener for MemoryListener {
    type Io = DuplexStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(io) => (io, self.addr),
            // No connector left: accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

/// Serves the port until `stop` turns true.
pub(super) fn serve(
    listener: GatewayListener,
    shared: Arc<Shared>,
    gateway: ActorRef<GatewayMsg>,
    mut stop: watch::Receiver<bool>,
    routes: Option<Router>,
) -> JoinHandle<()> {
    let mut app = Router::new()
        .route("/", get(root))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(AppState { shared, gateway });
    if let Some(extra) = routes {
        app = app.merge(extra);
    }
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::spawn(async move {
        let result = match listener {
            GatewayListener::Tcp(tcp) => {
                // Small frames (events, responses) must leave at once, not wait for the
                // previous segment's ACK (Nagle).
                let tcp = tcp.tap_io(|s| {
                    if let Err(e) = s.set_nodelay(true) {
                        debug!(error = %e, "cannot set TCP_NODELAY on a client socket");
                    }
                });
                axum::serve(tcp, app.into_make_service_with_connect_info::<SocketAddr>())
                    .with_graceful_shutdown(stopped)
                    .await
            }
            GatewayListener::Memory(mem) => {
                // tap_io only to get axum's ConnectInfo<SocketAddr> for any listener.
                let mem = mem.tap_io(|_| {});
                axum::serve(mem, app.into_make_service_with_connect_info::<SocketAddr>())
                    .with_graceful_shutdown(stopped)
                    .await
            }
        };
        if let Err(e) = result {
            error!(error = %e, "gateway listener failed");
        }
    })
}

async fn root(
    State(app): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(ws) = ws else {
        return (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Pincer gateway: connect a WebSocket client here (OpenClaw protocol 3-4); GET /healthz, GET /metrics\n",
        )
            .into_response();
    };
    let policy = app.shared.settings.policy;
    ws.protocols([MSGPACK_SUBPROTOCOL])
        .max_message_size(policy.max_payload)
        .max_frame_size(policy.max_payload)
        .max_write_buffer_size(policy.max_buffered_bytes)
        // tungstenite's 128 KiB defaults would cost ~256 KiB per idle client; frames
        // larger than these sizes are still read and written whole. Writes are flushed
        // explicitly by the connection actor (see `Internal::Flush`).
        .read_buffer_size(READ_CHUNK)
        .write_buffer_size(WRITE_BATCH)
        .on_upgrade(move |socket| accept(app, socket, remote))
}

async fn accept(app: AppState, socket: WebSocket, remote: SocketAddr) {
    let encoding = match socket.protocol().map(|p| p.as_bytes()) {
        Some(p) if p == MSGPACK_SUBPROTOCOL.as_bytes() => Encoding::MsgPack,
        _ => Encoding::Json,
    };
    let conn_id: Arc<str> = Arc::from(uuid::Uuid::new_v4().to_string());
    let args = ConnectionArgs {
        socket,
        remote,
        encoding,
        conn_id: conn_id.clone(),
        shared: app.shared.clone(),
        gateway: app.gateway.clone(),
    };
    if let Err(e) = Actor::spawn_linked(None, ConnectionActor, args, app.gateway.get_cell()).await {
        error!(%conn_id, error = %e, "could not start a connection actor");
    } else {
        debug!(%conn_id, %remote, ?encoding, "client connected");
    }
}

async fn healthz(State(app): State<AppState>) -> Response {
    let body = serde_json::json!({ "ok": true, "uptimeMs": app.shared.metrics.uptime_ms() });
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.shared.metrics.render(),
    )
        .into_response()
}
