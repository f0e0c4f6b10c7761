//! The daemon's supervision tree.
//!
//! ```text
//! root (one_for_one, 5 restarts / 10 s)
//! ├── config-watcher    permanent   owns pincer.json: watch, validate, config.* methods
//! ├── gateway           permanent   listener; ConnectionActor per client (temporary)
//! ├── config-reloader   permanent   applies accepted changes (auth, log level)
//! ├── agents            supervisor  one_for_one, 10 restarts / 60 s
//! │   └── agent-<id>    permanent   AgentActor: runtime (config, tools, failover state),
//! │                                 turn admission (maxConcurrent, priority queue)
//! ├── sessions          permanent   SessionActor per key (restarted from the store)
//! │   └── RunActor      temporary   one turn, linked to its session; asks its agent for
//! │                                 a slot before the first model call
//! ├── heartbeats        permanent   HEARTBEAT.md turns per agent, cost guard, budget
//! ├── scheduler         permanent   cron jobs: one timer, each fire recorded before it runs
//! └── file-triggers     permanent   triggers.watch folders -> debounced agent turns
//! ```
//!
//! Children find each other through lookups refreshed by their start functions, because a
//! restarted actor has a new ref. The listening socket is bound once, before the tree,
//! and each gateway start takes a clone of it, so a restarted gateway keeps the port.

use std::sync::Arc;
use std::time::Duration;

use pincer_actors::config::methods::WatcherLookup;
use pincer_actors::config::watcher::{ConfigMsg, ConfigUpdate, ConfigWatcher, ConfigWatcherArgs};
use pincer_actors::gateway::{
    GatewayActor, GatewayArgs, GatewayMsg, MethodRegistry, Metrics, methods,
};
use pincer_supervision::fault::{Fault, FaultHandle, Injectable};
use pincer_supervision::{
    Backoff, ChildSpec, Strategy, SupervisionEvent, Supervisor, SupervisorMsg, SupervisorSpec,
};
use ractor::{Actor, ActorRef, OutputPort};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use pincer_actors::agent::actor::{AgentActor, AgentArgs, AgentDirectory};
use pincer_actors::agent::failover::Cooldowns;
use pincer_actors::agent::run::{AgentRuntime, Approvals, EventSink};
use pincer_actors::agent::workspace;
use pincer_actors::sandbox::{
    Engine, SandboxBinding, SandboxesActor, SandboxesArgs, SandboxesLookup, SandboxesMsg,
};
use pincer_actors::session::methods::{ChatContext, SessionsLookup};
use pincer_actors::session::{SessionsActor, SessionsArgs, SessionsMsg};
use pincer_actors::store::Store;

use crate::reloader::{ConfigReloader, ReloaderArgs};
use crate::setup::Prepared;
use crate::telemetry::LevelHandle;

/// The children `--inject-fault` can name.
pub const CHILDREN: [&str; 12] = [
    "config-watcher",
    "gateway",
    "config-reloader",
    "sandboxes",
    "sandbox",
    "agent",
    "sessions",
    "session",
    "run",
    "scheduler",
    "heartbeats",
    "file-triggers",
];

pub struct TreeArgs<'a> {
    pub prepared: &'a Prepared,
    pub store: Store,
    pub listener: std::net::TcpListener,
    pub level: Option<LevelHandle>,
    pub level_pinned: bool,
    /// `ACTOR:panic@N` / `ACTOR:error@N` from `--inject-fault`.
    pub faults: Vec<String>,
}

pub struct Tree {
    root: ActorRef<SupervisorMsg>,
    handle: Option<JoinHandle<()>>,
    gateway: watch::Receiver<Option<ActorRef<GatewayMsg>>>,
    pub metrics: Metrics,
    pub faults: FaultHandle,
    grace: Duration,
}

/// Parses `--inject-fault` values.
pub fn parse_faults(specs: &[String]) -> Result<Vec<(String, Fault)>, String> {
    specs
        .iter()
        .map(|s| {
            let (actor, fault) = s.split_once(':').ok_or_else(|| {
                format!("--inject-fault {s:?}: expected ACTOR:panic@N or ACTOR:error@N")
            })?;
            if !CHILDREN.contains(&actor) && !actor.starts_with("channel-") {
                return Err(format!(
                    "--inject-fault {s:?}: unknown actor {actor:?}; one of {}, or channel-CHANNEL-ACCOUNT (e.g. channel-telegram-default)",
                    CHILDREN.join(", ")
                ));
            }
            Ok((
                actor.to_owned(),
                fault
                    .parse::<Fault>()
                    .map_err(|e| format!("--inject-fault {e}"))?,
            ))
        })
        .collect()
}

pub async fn start(args: TreeArgs<'_>) -> Result<Tree, String> {
    let p = args.prepared;
    let mut agents_config = p.agents.clone();
    if agents_config.needs_models() {
        // Zero configuration: a local Ollama. A refused TCP connect answers at once, and
        // only a listening port is worth an HTTP client (building one parses the TLS roots).
        let listening = match p
            .ollama
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
        {
            Some(hostport) => matches!(
                tokio::time::timeout(
                    Duration::from_millis(500),
                    tokio::net::TcpStream::connect(hostport)
                )
                .await,
                Ok(Ok(_))
            ),
            None => false,
        };
        let found = if listening {
            let http = pincer_actors::agent::providers::http_client();
            tokio::time::timeout(
                Duration::from_secs(2),
                pincer_actors::agent::providers::ollama_models(&http, &p.ollama),
            )
            .await
            .ok()
        } else {
            None
        };
        match found {
            Some(Ok(models)) if !models.is_empty() => {
                tracing::info!(base = %p.ollama, models = models.len(), "using the local Ollama");
                agents_config.add_ollama(&p.ollama, &models);
            }
            _ => tracing::debug!(base = %p.ollama, "no Ollama answered"),
        }
    }
    let faults_wanted = parse_faults(&args.faults)?;
    let metrics = Metrics::new();
    let (config_tx, config_rx) = watch::channel::<Option<ActorRef<ConfigMsg>>>(None);
    let (gateway_tx, gateway_rx) = watch::channel::<Option<ActorRef<GatewayMsg>>>(None);
    let config_tx = Arc::new(config_tx);
    let gateway_tx = Arc::new(gateway_tx);
    let updates: Arc<OutputPort<ConfigUpdate>> = Arc::new(OutputPort::default());

    let mut registry = MethodRegistry::new();
    let health = methods::default_health(p.info.clone());
    methods::register(&mut registry, &p.info, health.clone());
    let lookup: WatcherLookup = {
        let rx = config_rx.clone();
        Arc::new(move || rx.borrow().clone())
    };
    pincer_actors::config::methods::register(
        &mut registry,
        lookup,
        &p.info.version,
        args.store.clone(),
    );
    pincer_actors::audit::methods::register(&mut registry, args.store.clone());

    // Agents and sessions: chat events go to every operator client through the gateway.
    let events: EventSink = {
        let rx = gateway_rx.clone();
        Arc::new(move |event: &str, payload: serde_json::Value| {
            if let Some(gw) = rx.borrow().clone() {
                let _ = gw.cast(GatewayMsg::Broadcast {
                    event: event.to_owned(),
                    payload,
                });
            }
        })
    };
    // The channel accounts, created here so the agents' `message` tool can send with them
    // and approval requests are also shown in the chat that asked.
    let channel_dir = pincer_actors::channels::actor::ChannelDirectory::new();
    let approvals = Arc::new(
        Approvals::new(channel_dir.approval_events(events.clone())).with_audit(args.store.clone()),
    );
    let (sandboxes_tx, sandboxes_rx) = watch::channel::<Option<ActorRef<SandboxesMsg>>>(None);
    let sandboxes_tx = Arc::new(sandboxes_tx);
    let sandboxes_lookup: SandboxesLookup = {
        let rx = sandboxes_rx.clone();
        Arc::new(move || rx.borrow().clone())
    };
    let outbound =
        pincer_actors::channels::send::ChannelSender::new(args.store.clone(), channel_dir.clone());
    let (agents, policies) = build_agents(
        p,
        &agents_config,
        &args.store,
        approvals.clone(),
        &metrics,
        &sandboxes_lookup,
        outbound,
    )?;
    let agents_dir = agents.clone();
    let (sessions_tx, sessions_rx) = watch::channel::<Option<ActorRef<SessionsMsg>>>(None);
    let sessions_tx = Arc::new(sessions_tx);
    let sessions_lookup: SessionsLookup = {
        let rx = sessions_rx.clone();
        Arc::new(move || rx.borrow().clone())
    };
    // Channels: the accounts' ChannelActors route into the sessions; the sessions hand
    // each reply put in the outbox back to its account.
    let channel_ctx = {
        let value = &p.loaded.value;
        let bindings = match value.get("bindings") {
            Some(b) => pincer_actors::channels::routing::parse_bindings(b)
                .map_err(|e| format!("bindings: {e}"))?,
            None => Vec::new(),
        };
        let dm_scope = value
            .pointer("/session/dmScope")
            .and_then(serde_json::Value::as_str)
            .and_then(pincer_actors::session::keys::DmScope::parse)
            .unwrap_or_default();
        Arc::new(pincer_actors::channels::actor::ChannelCtx {
            store: args.store.clone(),
            sessions: sessions_lookup.clone(),
            bindings,
            default_agent: p.agents.default_agent.clone(),
            main_key: p.agents.main_key.clone(),
            dm_scope,
            directory: channel_dir.clone(),
            retry_base: Duration::from_secs(1),
            max_attempts: 8,
            approvals: Some(approvals.clone()),
        })
    };
    let channel_accounts =
        pincer_actors::channels::config::accounts(p.loaded.value.get("channels"))?;
    let (channels_sup, channels_running) =
        pincer_actors::channels::supervisor(&channel_accounts, channel_ctx);
    info!(
        accounts = channel_accounts.len(),
        running = channels_running,
        "channels configured"
    );
    pincer_actors::channels::methods::register(
        &mut registry,
        channel_dir.clone(),
        args.store.clone(),
    );
    let chat = Arc::new(ChatContext {
        sessions: sessions_lookup,
        store: args.store.clone(),
        agents: agents_config.clone(),
        approvals,
        directory: Some(agents_dir.clone()),
    });
    pincer_actors::session::methods::register(&mut registry, chat.clone());
    // `agents.list` in OpenClaw's shape, with what each AgentActor is doing.
    pincer_actors::agent::methods::register(
        &mut registry,
        Arc::new(pincer_actors::agent::methods::AgentsInfo::new(
            agents_config.clone(),
            &p.loaded.value,
            Some(agents_dir.clone()),
        )),
    );
    pincer_actors::sandbox::methods::register(&mut registry, sandboxes_lookup.clone());
    // Heartbeats and file-watch triggers: their configs and methods here, their actors
    // below the root.
    let heartbeats = pincer_actors::schedule::heartbeat::HeartbeatSetup::new(
        &p.loaded.value,
        &agents_config,
        args.store.clone(),
        chat.sessions.clone(),
        channel_dir.clone(),
        events.clone(),
    )?;
    heartbeats.register(&mut registry);
    let file_triggers = pincer_actors::schedule::watch_setup::WatchSetup::new(
        &p.loaded.value,
        &agents_config,
        p.state.root(),
        p.state.config_path(),
        crate::setup::env("HOME").map(std::path::PathBuf::from),
        chat.sessions.clone(),
    )?;
    file_triggers.register(&mut registry);
    let cron = pincer_actors::schedule::methods::CronSetup::new(
        &p.loaded.value,
        args.store.clone(),
        chat.sessions.clone(),
        channel_dir.clone(),
        p.agents.default_agent.clone(),
        p.agents.main_key.clone(),
        agents_dir.ids(),
    )
    .with_system_events(heartbeats.system_events());
    cron.register(&mut registry);
    let hooks = pincer_actors::hooks::HooksCtx::new(
        &p.loaded.value,
        chat.sessions.clone(),
        p.agents.default_agent.clone(),
        p.agents.main_key.clone(),
        agents_dir.ids(),
        channel_dir.clone(),
    )?
    .with_system_events(heartbeats.system_events());
    let http_routes = pincer_actors::session::openai::routes(chat, {
        let rx = gateway_rx.clone();
        Arc::new(move || rx.borrow().clone())
    })
    .merge(pincer_actors::channels::webhook_routes(channel_dir.clone()))
    .merge(pincer_actors::hooks::routes(hooks));
    for e in pincer_actors::session::methods::EVENTS {
        registry.event(e);
    }
    let registry = Arc::new(registry);
    let faults = FaultHandle::new();

    let watcher_spec = {
        let (path, initial, updates, tx, audit) = (
            p.state.config_path(),
            p.loaded.clone(),
            updates.clone(),
            config_tx.clone(),
            args.store.clone(),
        );
        ChildSpec::new("config-watcher", "config-watcher", move |ctx| {
            let args = ConfigWatcherArgs {
                path: path.clone(),
                initial: initial.clone(),
                updates: updates.clone(),
                watch: true,
                audit: Some(audit.clone()),
            };
            let tx = tx.clone();
            async move {
                let actor = Injectable {
                    inner: ConfigWatcher,
                    name: ctx.name.clone(),
                    faults: ctx.faults.clone(),
                };
                let (r, _) = Actor::spawn_linked(None, actor, args, ctx.supervisor).await?;
                tx.send_replace(Some(r.clone()));
                Ok(r.get_cell())
            }
        })
    };

    let gateway_spec = {
        let listener = args.listener;
        let (settings, info, auth, metrics, tx) = (
            p.settings.clone(),
            p.info.clone(),
            p.auth.policy.clone(),
            metrics.clone(),
            gateway_tx.clone(),
        );
        let (registry, health, routes) = (registry.clone(), health.clone(), http_routes);
        ChildSpec::new("gateway", "gateway", move |ctx| {
            let socket = listener
                .try_clone()
                .and_then(tokio::net::TcpListener::from_std);
            let args = socket.map(|listener| GatewayArgs {
                listener: listener.into(),
                settings: settings.clone(),
                info: info.clone(),
                auth: auth.clone(),
                registry: registry.clone(),
                metrics: metrics.clone(),
                health: Some(health.clone()),
                routes: Some(routes.clone()),
            });
            let tx = tx.clone();
            async move {
                let args = args.map_err(|e| {
                    ractor::SpawnErr::StartupFailed(format!("listener: {e}").into())
                })?;
                let actor = Injectable {
                    inner: GatewayActor,
                    name: ctx.name.clone(),
                    faults: ctx.faults.clone(),
                };
                let (r, _) = Actor::spawn_linked(None, actor, args, ctx.supervisor).await?;
                tx.send_replace(Some(r.clone()));
                Ok(r.get_cell())
            }
        })
        .shutdown(p.settings.shutdown_grace + Duration::from_secs(1))
    };

    let bind_ip = p.bind.ip();
    let reloader_spec = {
        let (state, level, pinned, updates, gateway_rx) = (
            p.state.clone(),
            args.level,
            args.level_pinned,
            updates.clone(),
            gateway_rx.clone(),
        );
        ChildSpec::new("config-reloader", "config-reloader", move |ctx| {
            let args = ReloaderArgs {
                state: state.clone(),
                gateway: gateway_rx.clone(),
                level: level.clone(),
                level_pinned: pinned,
                bind_ip,
            };
            let updates = updates.clone();
            async move {
                let actor = Injectable {
                    inner: ConfigReloader,
                    name: ctx.name.clone(),
                    faults: ctx.faults.clone(),
                };
                let (r, _) = Actor::spawn_linked(None, actor, args, ctx.supervisor).await?;
                updates.subscribe(r.clone(), Some);
                Ok(r.get_cell())
            }
        })
        .backoff(Backoff {
            initial: Duration::from_millis(10),
            ..Backoff::default()
        })
    };

    let sessions_spec = {
        let (store, agents, events, tx, faults) = (
            args.store.clone(),
            agents,
            events,
            sessions_tx.clone(),
            faults.clone(),
        );
        let (default_agent, main_key) = (p.agents.default_agent.clone(), p.agents.main_key.clone());
        let collect = p
            .loaded
            .value
            .pointer("/session/queueMode")
            .and_then(serde_json::Value::as_str)
            != Some("followup");
        let reset = pincer_actors::session::lifecycle::ResetPolicy::from_config(&p.loaded.value);
        ChildSpec::new("sessions", "sessions", move |ctx| {
            let args = SessionsArgs {
                collect,
                reset: reset.clone(),
                store: store.clone(),
                agents: agents.clone(),
                default_agent: default_agent.clone(),
                main_key: main_key.clone(),
                events: events.clone(),
                faults: faults.clone(),
                deliver: Some({
                    let dir = channel_dir.clone();
                    Arc::new(move |id, origin: &pincer_actors::channels::ChannelOrigin| {
                        dir.deliver(id, origin)
                    })
                }),
            };
            let tx = tx.clone();
            async move {
                let actor = Injectable {
                    inner: SessionsActor,
                    name: ctx.name.clone(),
                    faults: ctx.faults.clone(),
                };
                let (r, _) = Actor::spawn_linked(None, actor, args, ctx.supervisor).await?;
                tx.send_replace(Some(r.clone()));
                Ok(r.get_cell())
            }
        })
    };

    // Sandboxes: containers for sandboxed sessions. It connects to Docker on first use,
    // so a gateway without sandboxing never touches the Engine.
    let sandboxes_spec = {
        let (store, faults, tx) = (args.store.clone(), faults.clone(), sandboxes_tx.clone());
        let metrics = metrics.clone();
        let keep = policies.clone();
        let instance = pincer_actors::sandbox::instance_of(p.state.root());
        ChildSpec::new("sandboxes", "sandboxes", move |ctx| {
            let args = SandboxesArgs {
                store: store.clone(),
                instance: instance.clone(),
                engine: Engine::Default,
                faults: faults.clone(),
                keep: Some(keep.clone()),
                metrics: metrics.clone(),
            };
            let tx = tx.clone();
            async move {
                let actor = Injectable {
                    inner: SandboxesActor,
                    name: ctx.name.clone(),
                    faults: ctx.faults.clone(),
                };
                let (r, _) = Actor::spawn_linked(None, actor, args, ctx.supervisor).await?;
                tx.send_replace(Some(r.clone()));
                Ok(r.get_cell())
            }
        })
    };

    // Agents (one_for_one): an AgentActor per configured agent, restarted with backoff;
    // a restarted one re-registers in the directory the sessions use.
    let mut agents_sup =
        SupervisorSpec::new("agents", Strategy::OneForOne).intensity(10, Duration::from_secs(60));
    for id in agents_dir.ids() {
        let dir = agents_dir.clone();
        agents_sup = agents_sup.child(ChildSpec::new(format!("agent-{id}"), "agent", move |ctx| {
            let args = AgentArgs {
                id: id.clone(),
                directory: dir.clone(),
            };
            async move {
                let actor = Injectable {
                    inner: AgentActor,
                    name: "agent".into(),
                    faults: ctx.faults.clone(),
                };
                let (r, _) = Actor::spawn_linked(None, actor, args, ctx.supervisor).await?;
                Ok(r.get_cell())
            }
        }));
    }

    let spec = SupervisorSpec::new("root", Strategy::OneForOne)
        .intensity(5, Duration::from_secs(10))
        .child(watcher_spec)
        .child(gateway_spec)
        .child(reloader_spec)
        .child(sandboxes_spec)
        .child(Supervisor::child(agents_sup, "agents"))
        .child(sessions_spec)
        .child(Supervisor::child(channels_sup, "channels"))
        .child(heartbeats.child_spec())
        .child(cron.child_spec())
        .child(file_triggers.child_spec(updates.clone()));
    let (sup_events, mut event_rx) = pincer_supervision::EventSink::channel();
    let (root, handle) = Supervisor::spawn(spec, faults.clone(), sup_events)
        .await
        .map_err(|e| format!("the supervision tree failed to start: {e}"))?;

    // Restarts by actor kind, for /metrics.
    let m = metrics.clone();
    tokio::spawn(async move {
        while let Some(e) = event_rx.recv().await {
            if let SupervisionEvent::ChildRestarted { kind, .. } = e {
                m.actor_restart(kind);
            }
        }
    });
    for (name, fault) in faults_wanted {
        warn!(actor = %name, ?fault, "fault injection armed (--inject-fault)");
        faults.arm(&name, fault);
    }
    Ok(Tree {
        root,
        handle: Some(handle),
        gateway: gateway_rx,
        metrics,
        faults,
        grace: p.settings.shutdown_grace,
    })
}

/// One runtime per configured agent: its tools under its policy, its sandbox policy,
/// shared provider state. Also returns the sandbox policy hashes in use (start-up keeps
/// only containers of those). A sandbox configuration that would weaken the host's
/// safety (binds of the Docker socket, /, /etc, the state directory...) stops start-up.
fn build_agents(
    p: &Prepared,
    config: &pincer_actors::agent::config::AgentsConfig,
    store: &Store,
    approvals: Arc<Approvals>,
    metrics: &Metrics,
    sandboxes: &SandboxesLookup,
    outbound: Arc<pincer_actors::channels::send::ChannelSender>,
) -> Result<(pincer_actors::session::Agents, Vec<String>), String> {
    let value = &p.loaded.value;
    let defaults = value
        .pointer("/agents/defaults/sandbox")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let mut policies = Vec::new();
    let cooldowns = Arc::new(Cooldowns::new(Some(store.clone())));
    let skip_bootstrap = p
        .loaded
        .value
        .pointer("/agents/defaults/skipBootstrap")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let mut runtimes = Vec::new();
    for spec in &config.agents {
        if !skip_bootstrap && let Err(e) = workspace::ensure(&spec.workspace) {
            warn!(agent = %spec.id, workspace = %spec.workspace.display(), error = %e, "cannot create the workspace");
        }
        let mut rt = AgentRuntime::new(
            spec.clone(),
            config.providers.clone(),
            config.exec.clone(),
            cooldowns.clone(),
            approvals.clone(),
            metrics.clone(),
        );
        let own = value
            .pointer("/agents/list")
            .and_then(serde_json::Value::as_array)
            .and_then(|l| l.iter().find(|a| a["id"] == spec.id.as_str()))
            .and_then(|a| a.get("sandbox"));
        let sandbox = pincer_actors::sandbox::agent_config(&defaults, own)
            .map_err(|e| format!("agent {}: sandbox: {e}", spec.id))?;
        if sandbox.mode != pincer_sandbox::config::Mode::Off {
            sandbox
                .check(p.state.root(), &spec.workspace)
                .map_err(|e| format!("agent {}: sandbox: {e}", spec.id))?;
            policies.push(sandbox.config_hash());
            rt.sandbox = Some(SandboxBinding {
                config: sandbox,
                sandboxes: sandboxes.clone(),
                state_dir: p.state.root().to_owned(),
                main_key: config.main_key.clone(),
            });
        }
        rt.set_outbound(outbound.clone());
        runtimes.push(Arc::new(rt));
    }
    Ok((AgentDirectory::new(runtimes), policies))
}

impl Tree {
    /// Resolves when the root supervisor stops on its own (it gave up).
    pub async fn failed(&mut self) -> String {
        match self.handle.as_mut() {
            Some(h) => {
                let _ = h.await;
                self.handle = None;
                "the root supervisor stopped".into()
            }
            None => std::future::pending().await,
        }
    }

    /// Tells clients, then stops the children in reverse order. `true` when all went well.
    pub async fn shutdown(mut self, reason: &str) -> bool {
        let Some(handle) = self.handle.take() else {
            return false;
        };
        let gateway = self.gateway.borrow().clone();
        if let Some(gw) = gateway {
            let grace = self.grace + Duration::from_secs(1);
            let _ = gw
                .call(
                    |reply| GatewayMsg::Shutdown {
                        reason: reason.into(),
                        restart_expected_ms: None,
                        reply,
                    },
                    Some(grace),
                )
                .await;
        }
        let stopped = self
            .root
            .call(
                |reply| SupervisorMsg::Shutdown { reply },
                Some(Duration::from_secs(30)),
            )
            .await;
        let joined = tokio::time::timeout(Duration::from_secs(5), handle).await;
        matches!(stopped, Ok(ractor::rpc::CallResult::Success(()))) && joined.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_flags_are_checked() {
        let ok = parse_faults(&["gateway:panic@3".into()]).unwrap();
        assert_eq!(ok, [("gateway".to_owned(), Fault::PanicAt { nth: 3 })]);
        assert!(
            parse_faults(&["nobody:panic@1".into()])
                .unwrap_err()
                .contains("unknown actor")
        );
        assert!(
            parse_faults(&["gateway".into()])
                .unwrap_err()
                .contains("expected ACTOR")
        );
        assert!(
            parse_faults(&["gateway:boom@1".into()])
                .unwrap_err()
                .contains("panic@N")
        );
    }
}
