//! What the supervision tree needs for heartbeats: the resolved config, the child spec,
//! the gateway methods, and the queue `/hooks/wake` puts `next-heartbeat` events in.

use std::sync::Arc;

use pincer_supervision::ChildSpec;
use pincer_supervision::fault::Injectable;
use ractor::{Actor, ActorRef};
use serde_json::Value;
use tokio::sync::watch;

use super::heartbeat::{HeartbeatActor, HeartbeatArgs, HeartbeatMsg, SystemClock};
use super::heartbeat_config::{AgentHeartbeat, QueuedEvent, resolve};
use super::heartbeat_methods::{self, HeartbeatLookup};
use crate::agent::config::AgentsConfig;
use crate::agent::run::EventSink;
use crate::channels::actor::ChannelDirectory;
use crate::gateway::MethodRegistry;
use crate::session::methods::SessionsLookup;
use crate::store::Store;

/// Heartbeats, resolved from the config and ready to be put in the tree.
pub struct HeartbeatSetup {
    store: Store,
    sessions: SessionsLookup,
    channels: ChannelDirectory,
    events: EventSink,
    agents: Vec<AgentHeartbeat>,
    default_agent: String,
    tx: Arc<watch::Sender<Option<ActorRef<HeartbeatMsg>>>>,
    rx: watch::Receiver<Option<ActorRef<HeartbeatMsg>>>,
}

impl HeartbeatSetup {
    /// Reads `agents.defaults.heartbeat` and `agents.list[].heartbeat` from the whole
    /// config; a bad value is an error naming its key.
    pub fn new(
        config: &Value,
        agents: &AgentsConfig,
        store: Store,
        sessions: SessionsLookup,
        channels: ChannelDirectory,
        events: EventSink,
    ) -> Result<Self, String> {
        let ids: Vec<(String, std::path::PathBuf)> = agents
            .agents
            .iter()
            .map(|a| (a.id.clone(), a.workspace.clone()))
            .collect();
        let agents_hb = resolve(config, &ids, &agents.default_agent)?;
        let (tx, rx) = watch::channel(None);
        Ok(HeartbeatSetup {
            store,
            sessions,
            channels,
            events,
            agents: agents_hb,
            default_agent: agents.default_agent.clone(),
            tx: Arc::new(tx),
            rx,
        })
    }

    /// The queue for `next-heartbeat` wakes.
    pub fn system_events(&self) -> SystemEvents {
        SystemEvents::new(self.store.clone(), &self.agents)
    }

    /// `heartbeat.status`, `heartbeat.run`, `last-heartbeat` and the `heartbeat` event.
    pub fn register(&self, registry: &mut MethodRegistry) {
        let rx = self.rx.clone();
        let lookup: HeartbeatLookup = Arc::new(move || rx.borrow().clone());
        heartbeat_methods::register(registry, lookup);
    }

    /// The `heartbeats` child: permanent, restarted with the default backoff.
    pub fn child_spec(&self) -> ChildSpec {
        let (store, sessions, channels, events, agents, default_agent, tx) = (
            self.store.clone(),
            self.sessions.clone(),
            self.channels.clone(),
            self.events.clone(),
            self.agents.clone(),
            self.default_agent.clone(),
            self.tx.clone(),
        );
        ChildSpec::new("heartbeats", "heartbeats", move |ctx| {
            let args = HeartbeatArgs {
                store: store.clone(),
                sessions: sessions.clone(),
                agents: agents.clone(),
                default_agent: default_agent.clone(),
                channels: channels.clone(),
                events: Some(events.clone()),
                clock: Arc::new(SystemClock),
            };
            let tx = tx.clone();
            async move {
                let actor = Injectable {
                    inner: HeartbeatActor,
                    name: ctx.name.clone(),
                    faults: ctx.faults.clone(),
                };
                let (r, _) = Actor::spawn_linked(None, actor, args, ctx.supervisor).await?;
                tx.send_replace(Some(r.clone()));
                Ok(r.get_cell())
            }
        })
    }
}

/// Queues system events for agents' next heartbeats (`/hooks/wake` with mode
/// `next-heartbeat`). Cheap to clone.
#[derive(Clone)]
pub struct SystemEvents {
    store: Store,
    /// Agents whose heartbeats are on.
    beating: Vec<String>,
}

impl SystemEvents {
    pub fn new(store: Store, agents: &[AgentHeartbeat]) -> Self {
        SystemEvents {
            store,
            beating: agents
                .iter()
                .filter(|a| a.config.every.is_some())
                .map(|a| a.agent.clone())
                .collect(),
        }
    }

    /// Queues `text` (durably) for `agent`'s next heartbeat. `Ok(false)`: that agent runs
    /// no heartbeats, so nothing was queued (the caller should deliver it now).
    pub async fn queue(&self, agent: &str, text: &str, source: &str) -> Result<bool, String> {
        if !self.beating.iter().any(|a| a == agent) {
            return Ok(false);
        }
        let event = QueuedEvent {
            text: text.to_owned(),
            queued_ms: crate::gateway::now_ms(),
            source: source.to_owned(),
        };
        let (store, agent) = (self.store.clone(), agent.to_owned());
        tokio::task::spawn_blocking(move || store.heartbeat_queue_event(&agent, &event))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        Ok(true)
    }
}
