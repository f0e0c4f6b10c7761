//! The HTTP side of the gateway port: WebSocket upgrades, `/healthz`, `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::ws::{WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ractor::{Actor, ActorRef};
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

/// Serves the port until `stop` turns true.
pub(super) fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    gateway: ActorRef<GatewayMsg>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let app = Router::new()
        .route("/", get(root))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(AppState { shared, gateway });
    tokio::spawn(async move {
        let server = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        if let Err(e) = server.await {
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
