//! The control-plane gateway: one TCP port serving OpenClaw-compatible WebSocket RPC and
//! plain HTTP (`/healthz`, `/metrics`).
//!
//! ```text
//! Root
//! └── GatewayActor            owns the listener, presence, auth limiter, idempotency cache
//!       ├── ConnectionActor   one per WebSocket client (temporary: never restarted)
//!       └── ...
//! ```
//!
//! The gateway is the supervisor of its connections: each ConnectionActor is linked to it,
//! and its exit (normal or not) only removes that client's presence. A crash in one
//! connection never touches another. The gateway emits `presence` when clients come and
//! go, `health` periodically, and `shutdown` before it stops.

mod auth;
mod connection;
mod http;
pub mod idempotency;
mod logs;
pub mod methods;
mod metrics;
mod registry;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

pub use auth::{AuthLimiter, AuthPolicy, AuthRefusal};
pub use connection::{ConnMsg, ConnectionActor, close};
pub use http::{GatewayListener, MemoryConnector, MemoryListener, memory_transport};
pub use logs::{LogsTail, tail_file};
pub use metrics::Metrics;
pub use registry::{
    CallContext, Interim, MethodEntry, MethodFuture, MethodHandler, MethodRegistry, MethodResult,
};

use crate::protocol::{ConnectAuth, Policy, PresenceEntry, SessionDefaults, StateVersion};
use idempotency::{Begin, IdempotencyCache};

/// Milliseconds since the Unix epoch, for `ts` fields on the wire.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Limits and timers of the control plane.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub policy: Policy,
    /// A client that has not sent `connect` by then is disconnected.
    pub handshake_timeout: Duration,
    /// Largest frame accepted before the handshake completes (OpenClaw 2026.9: 64 KiB).
    pub preauth_max_frame: usize,
    /// How often a `health` event is broadcast.
    pub health_interval: Duration,
    /// How long shutdown waits for clients to close before dropping them.
    pub shutdown_grace: Duration,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            policy: Policy::default(),
            handshake_timeout: Duration::from_secs(10),
            preauth_max_frame: 64 * 1024,
            health_interval: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(2),
        }
    }
}

/// Facts about this gateway that clients see.
#[derive(Debug, Clone)]
pub struct GatewayInfo {
    pub version: String,
    pub host: Option<String>,
    pub config_path: Option<String>,
    pub state_dir: Option<String>,
    pub log_file: Option<PathBuf>,
    pub session_defaults: SessionDefaults,
}

impl Default for GatewayInfo {
    fn default() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            host: None,
            config_path: None,
            state_dir: None,
            log_file: None,
            session_defaults: SessionDefaults {
                default_agent_id: "main".into(),
                main_key: "main".into(),
                main_session_key: "agent:main:main".into(),
                scope: Some("per-sender".into()),
            },
        }
    }
}

/// Produces the `health` object (`{ok, ts, durationMs, channels, ...}`); later capabilities
/// (channels, agents) extend it from the composition root.
pub type HealthFn = Arc<dyn Fn() -> Value + Send + Sync>;

/// Immutable, per-gateway data every connection reads.
pub struct Shared {
    pub settings: GatewaySettings,
    pub info: GatewayInfo,
    pub registry: Arc<MethodRegistry>,
    pub metrics: Metrics,
    pub health: HealthFn,
}

pub struct GatewayActor;

pub struct GatewayArgs {
    /// Already bound, so the caller knows the port (port 0 in tests) before the actor runs.
    pub listener: GatewayListener,
    pub settings: GatewaySettings,
    pub info: GatewayInfo,
    pub auth: AuthPolicy,
    pub registry: Arc<MethodRegistry>,
    pub metrics: Metrics,
    pub health: Option<HealthFn>,
    /// More HTTP routes on the same port (the OpenAI-compatible API, later webhooks).
    /// They authenticate with [`GatewayMsg::CheckHttpAuth`].
    pub routes: Option<axum::Router>,
}

struct ConnEntry {
    conn_id: Arc<str>,
    actor: ActorRef<ConnMsg>,
    presence: Option<PresenceEntry>,
}

pub struct GatewayState {
    shared: Arc<Shared>,
    auth: AuthPolicy,
    limiter: AuthLimiter,
    idempotency: IdempotencyCache<RpcReplyPort<Option<MethodResult>>>,
    conns: HashMap<ActorId, ConnEntry>,
    state_version: StateVersion,
    self_presence: PresenceEntry,
    server: JoinHandle<()>,
    stop_server: watch::Sender<bool>,
    health_timer: JoinHandle<()>,
    shutting_down: Option<Vec<RpcReplyPort<()>>>,
    local_addr: SocketAddr,
}

/// What a joining connection gets back: its grant and the snapshot for `hello-ok`.
pub struct Joined {
    pub scopes: Vec<String>,
    pub presence: Vec<PresenceEntry>,
    pub health: Value,
    pub state_version: StateVersion,
    pub uptime_ms: u64,
    pub auth_mode: &'static str,
}

/// Gateway-wide figures for `status`.
#[derive(Debug, Clone)]
pub struct GatewayStatus {
    pub local_addr: SocketAddr,
    pub connections: usize,
    pub uptime_ms: u64,
    pub auth_mode: &'static str,
    pub state_version: StateVersion,
}

/// A connection's `connect`, as the gateway sees it.
pub struct JoinRequest {
    pub conn: ActorRef<ConnMsg>,
    pub conn_id: Arc<str>,
    pub remote: SocketAddr,
    pub role: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub auth: Option<ConnectAuth>,
    pub presence: PresenceEntry,
    pub reply: RpcReplyPort<Result<Joined, AuthRefusal>>,
}

pub enum GatewayMsg {
    /// A client sent `connect`: check its credentials (rate-limited per address), then
    /// record its presence and answer with the snapshot.
    Join(Box<JoinRequest>),
    /// The presence list (`system-presence`).
    Presence {
        reply: RpcReplyPort<Vec<PresenceEntry>>,
    },
    /// Gateway-wide figures (`status`).
    Status {
        reply: RpcReplyPort<GatewayStatus>,
    },
    /// Sends an event to every connected client.
    Broadcast {
        event: String,
        payload: Value,
    },
    /// First step of an idempotent call: `Some(result)` when it already ran (or when the
    /// first call finishes while this one waits), `None` when the caller must run it.
    IdempotencyBegin {
        method: String,
        key: String,
        reply: RpcReplyPort<Option<MethodResult>>,
    },
    /// The idempotent call that got `None` has finished.
    IdempotencyComplete {
        method: String,
        key: String,
        result: MethodResult,
    },
    /// Replaces the auth policy (config hot reload); existing connections stay.
    SetAuth {
        auth: AuthPolicy,
    },
    /// Checks an HTTP request's bearer secret against the current auth policy, with the
    /// same per-address limiter as WebSocket handshakes.
    CheckHttpAuth {
        secret: Option<String>,
        ip: IpAddr,
        reply: RpcReplyPort<Result<(), AuthRefusal>>,
    },
    /// Orderly stop: `shutdown` event to every client, close them, stop the listener.
    /// Replies once every connection is gone (or the grace period ran out).
    Shutdown {
        reason: String,
        restart_expected_ms: Option<u64>,
        reply: RpcReplyPort<()>,
    },
    Internal(Internal),
}

pub enum Internal {
    HealthTick,
    ShutdownDeadline,
}

impl GatewayActor {
    /// Starts a gateway linked to `supervisor` (or unlinked when `None`).
    pub async fn start(
        args: GatewayArgs,
        supervisor: Option<ractor::ActorCell>,
    ) -> Result<(ActorRef<GatewayMsg>, JoinHandle<()>), ractor::SpawnErr> {
        match supervisor {
            Some(sup) => Actor::spawn_linked(None, GatewayActor, args, sup).await,
            None => Actor::spawn(None, GatewayActor, args).await,
        }
    }
}

impl Actor for GatewayActor {
    type Msg = GatewayMsg;
    type State = GatewayState;
    type Arguments = GatewayArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<GatewayMsg>,
        args: GatewayArgs,
    ) -> Result<GatewayState, ActorProcessingErr> {
        let local_addr = args.listener.local_addr()?;
        let info = args.info.clone();
        let health = args
            .health
            .unwrap_or_else(|| methods::default_health(info.clone()));
        let shared = Arc::new(Shared {
            settings: args.settings,
            info: args.info,
            registry: args.registry,
            metrics: args.metrics,
            health,
        });
        let (stop_server, stop_rx) = watch::channel(false);
        let server = http::serve(
            args.listener,
            shared.clone(),
            myself.clone(),
            stop_rx,
            args.routes,
        );
        let health_timer = myself.send_interval(shared.settings.health_interval, || {
            GatewayMsg::Internal(Internal::HealthTick)
        });
        let self_presence = PresenceEntry {
            host: shared.info.host.clone(),
            version: Some(shared.info.version.clone()),
            platform: Some(std::env::consts::OS.to_owned()),
            mode: Some("gateway".into()),
            reason: Some("self".into()),
            ts: now_ms(),
            ..Default::default()
        };
        info!(addr = %local_addr, auth = args.auth.mode(), "gateway listening");
        Ok(GatewayState {
            shared,
            auth: args.auth,
            limiter: AuthLimiter::default(),
            idempotency: IdempotencyCache::default(),
            conns: HashMap::new(),
            state_version: StateVersion {
                presence: 1,
                health: 1,
            },
            self_presence,
            server,
            stop_server,
            health_timer,
            shutting_down: None,
            local_addr,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<GatewayMsg>,
        state: &mut GatewayState,
    ) -> Result<(), ActorProcessingErr> {
        let _ = state.stop_server.send(true);
        state.health_timer.abort();
        state.server.abort();
        for c in state.conns.values() {
            c.actor.stop(Some("gateway stopped".into()));
        }
        info!(addr = %state.local_addr, "gateway stopped");
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<GatewayMsg>,
        msg: GatewayMsg,
        state: &mut GatewayState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            GatewayMsg::Join(join) => {
                let JoinRequest {
                    conn,
                    conn_id,
                    remote,
                    role,
                    scopes,
                    auth,
                    presence,
                    reply,
                } = *join;
                let result =
                    state.on_join(conn, conn_id, remote.ip(), role, scopes, auth, presence);
                let _ = reply.send(result);
            }
            GatewayMsg::Presence { reply } => {
                let _ = reply.send(state.presence_list());
            }
            GatewayMsg::Status { reply } => {
                let _ = reply.send(GatewayStatus {
                    local_addr: state.local_addr,
                    connections: state.conns.len(),
                    uptime_ms: state.shared.metrics.uptime_ms(),
                    auth_mode: state.auth.mode(),
                    state_version: state.state_version,
                });
            }
            GatewayMsg::Broadcast { event, payload } => state.broadcast(&event, payload, None),
            GatewayMsg::IdempotencyBegin { method, key, reply } => {
                match state
                    .idempotency
                    .begin(&method, &key, reply, Instant::now())
                {
                    Begin::Run(reply) => {
                        let _ = reply.send(None);
                    }
                    Begin::Done(result, reply) => {
                        let _ = reply.send(Some(result));
                    }
                    Begin::Queued => {}
                }
            }
            GatewayMsg::IdempotencyComplete {
                method,
                key,
                result,
            } => {
                for waiter in
                    state
                        .idempotency
                        .complete(&method, &key, result.clone(), Instant::now())
                {
                    let _ = waiter.send(Some(result.clone()));
                }
            }
            GatewayMsg::SetAuth { auth } => {
                info!(mode = auth.mode(), "gateway auth changed");
                state.auth = auth;
            }
            GatewayMsg::CheckHttpAuth { secret, ip, reply } => {
                // A bearer secret is the token, or the password in password mode.
                let offered = ConnectAuth {
                    token: secret.clone(),
                    password: secret,
                    ..Default::default()
                };
                let _ = reply.send(state.authenticate(ip, Some(&offered), "http"));
            }
            GatewayMsg::Shutdown {
                reason,
                restart_expected_ms,
                reply,
            } => {
                state.on_shutdown(&myself, reason, restart_expected_ms, reply);
            }
            GatewayMsg::Internal(Internal::HealthTick) => {
                state.state_version.health += 1;
                let health = (state.shared.health)();
                let sv = state.state_version;
                state.broadcast("health", health, Some(sv));
            }
            GatewayMsg::Internal(Internal::ShutdownDeadline) => {
                if state.shutting_down.is_some() {
                    warn!(
                        remaining = state.conns.len(),
                        "shutdown grace period over, dropping clients"
                    );
                    for c in state.conns.values() {
                        c.actor.kill();
                    }
                    state.conns.clear();
                    state.finish_shutdown();
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<GatewayMsg>,
        evt: SupervisionEvent,
        state: &mut GatewayState,
    ) -> Result<(), ActorProcessingErr> {
        // Connections are temporary children: whatever the exit, drop the entry, never
        // restart, never stop the gateway (ractor's default would).
        let (cell, failure) = match &evt {
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell, None),
            SupervisionEvent::ActorFailed(cell, err) => (cell, Some(err.to_string())),
            _ => return Ok(()),
        };
        if let Some(entry) = state.conns.remove(&cell.get_id()) {
            if let Some(err) = failure {
                warn!(conn_id = %entry.conn_id, error = %err, "connection actor crashed");
                state.shared.metrics.actor_restart("connection");
            } else {
                debug!(conn_id = %entry.conn_id, "connection closed");
            }
            if entry.presence.is_some() {
                state.state_version.presence += 1;
                let sv = state.state_version;
                let list = state.presence_list();
                state.broadcast("presence", json!({ "presence": list }), Some(sv));
            }
        }
        if state.shutting_down.is_some() && state.conns.is_empty() {
            state.finish_shutdown();
        }
        Ok(())
    }
}

impl GatewayState {
    /// Checks offered credentials with the per-address limiter: what every way in (the
    /// WebSocket handshake, HTTP routes) goes through.
    fn authenticate(
        &mut self,
        ip: IpAddr,
        offered: Option<&ConnectAuth>,
        via: &'static str,
    ) -> Result<(), AuthRefusal> {
        let now = Instant::now();
        if let Err(retry_after) = self.limiter.check(ip, now) {
            warn!(%ip, via, "auth attempt refused: too many failures");
            return Err(AuthRefusal::RateLimited { retry_after });
        }
        if let Err(refusal) = auth::verify(&self.auth, offered) {
            self.limiter.record_failure(ip, now);
            warn!(%ip, via, reason = %refusal, "auth failed");
            return Err(refusal);
        }
        self.limiter.record_success(ip);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn on_join(
        &mut self,
        conn: ActorRef<ConnMsg>,
        conn_id: Arc<str>,
        ip: IpAddr,
        role: Option<String>,
        scopes: Option<Vec<String>>,
        offered: Option<ConnectAuth>,
        mut presence: PresenceEntry,
    ) -> Result<Joined, AuthRefusal> {
        if self.shutting_down.is_some() {
            return Err(AuthRefusal::ShuttingDown);
        }
        self.authenticate(ip, offered.as_ref(), "handshake")?;
        let scopes = auth::grant_scopes(role.as_deref(), scopes.as_deref())?;
        presence.roles = Some(vec![role.unwrap_or_else(|| "operator".into())]);
        presence.scopes = Some(scopes.clone());
        // The others hear of the newcomer; the newcomer gets the list in its `hello-ok`.
        self.state_version.presence += 1;
        let sv = self.state_version;
        let mut list = self.presence_list();
        list.push(presence.clone());
        self.broadcast("presence", json!({ "presence": list }), Some(sv));
        self.conns.insert(
            conn.get_id(),
            ConnEntry {
                conn_id,
                actor: conn,
                presence: Some(presence),
            },
        );
        Ok(Joined {
            scopes,
            presence: list,
            health: (self.shared.health)(),
            state_version: sv,
            uptime_ms: self.shared.metrics.uptime_ms(),
            auth_mode: self.auth.mode(),
        })
    }

    fn presence_list(&self) -> Vec<PresenceEntry> {
        let mut list = vec![self.self_presence.clone()];
        list.extend(self.conns.values().filter_map(|c| c.presence.clone()));
        list
    }

    fn broadcast(&self, event: &str, payload: Value, state_version: Option<StateVersion>) {
        let event: Arc<str> = Arc::from(event);
        for c in self.conns.values() {
            let _ = c.actor.cast(ConnMsg::Event {
                event: event.clone(),
                payload: payload.clone(),
                state_version,
            });
        }
    }

    fn on_shutdown(
        &mut self,
        myself: &ActorRef<GatewayMsg>,
        reason: String,
        restart_expected_ms: Option<u64>,
        reply: RpcReplyPort<()>,
    ) {
        if let Some(waiters) = &mut self.shutting_down {
            waiters.push(reply);
            return;
        }
        info!(%reason, clients = self.conns.len(), "gateway shutting down");
        let _ = self.stop_server.send(true);
        let mut payload = json!({ "reason": reason });
        if let Some(ms) = restart_expected_ms {
            payload["restartExpectedMs"] = json!(ms);
        }
        self.broadcast("shutdown", payload, None);
        let code = if restart_expected_ms.is_some() {
            close::RESTART
        } else {
            close::GOING_AWAY
        };
        for c in self.conns.values() {
            let _ = c.actor.cast(ConnMsg::Close {
                code,
                reason: "gateway shutting down".into(),
            });
        }
        self.shutting_down = Some(vec![reply]);
        if self.conns.is_empty() {
            self.finish_shutdown();
        } else {
            myself.send_after(self.shared.settings.shutdown_grace, || {
                GatewayMsg::Internal(Internal::ShutdownDeadline)
            });
        }
    }

    fn finish_shutdown(&mut self) {
        self.server.abort();
        if let Some(waiters) = self.shutting_down.take() {
            for w in waiters {
                let _ = w.send(());
            }
        }
        // Keep answering `Join` with a refusal: the listener is stopped, so none should come.
        self.shutting_down = Some(Vec::new());
    }
}
