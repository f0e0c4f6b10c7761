//! What the supervision tree needs for file-watch triggers: `triggers.watch` resolved,
//! the child spec (subscribed to config changes, so edits apply without a restart) and
//! the `triggers.status` method.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pincer_supervision::ChildSpec;
use pincer_supervision::fault::Injectable;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef, OutputPort};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::watch::{CALL_TIMEOUT, DEFAULT_RETRY, ReloadSource, WatchActor, WatchArgs, WatchMsg};
use super::watch_config::{TriggerSpec, resolve};
use crate::agent::config::AgentsConfig;
use crate::config::watcher::ConfigUpdate;
use crate::gateway::{CallContext, MethodRegistry};
use crate::protocol::{ErrorShape, scopes};
use crate::session::methods::SessionsLookup;

/// File triggers, resolved from the config and ready to be put in the tree.
pub struct WatchSetup {
    triggers: Vec<TriggerSpec>,
    sessions: SessionsLookup,
    reload: ReloadSource,
    tx: Arc<watch::Sender<Option<ActorRef<WatchMsg>>>>,
    rx: watch::Receiver<Option<ActorRef<WatchMsg>>>,
}

impl WatchSetup {
    /// Reads `triggers.watch` from the whole config (`config_path` is re-read on changes;
    /// `home` expands `~/`; relative paths start at `state_dir`).
    pub fn new(
        config: &Value,
        agents: &AgentsConfig,
        state_dir: &Path,
        config_path: PathBuf,
        home: Option<PathBuf>,
        sessions: SessionsLookup,
    ) -> Result<Self, String> {
        let reload = ReloadSource {
            config_path,
            default_agent: agents.default_agent.clone(),
            agents: agents
                .agents
                .iter()
                .map(|a| (a.id.clone(), a.workspace.clone()))
                .collect(),
            home,
            base: state_dir.to_owned(),
        };
        let triggers = resolve(
            config,
            &reload.default_agent,
            &reload.agents,
            reload.home.as_deref(),
            &reload.base,
        )?;
        let (tx, rx) = watch::channel(None);
        Ok(WatchSetup {
            triggers,
            sessions,
            reload,
            tx: Arc::new(tx),
            rx,
        })
    }

    /// `triggers.status`.
    pub fn register(&self, registry: &mut MethodRegistry) {
        let rx = self.rx.clone();
        register(registry, Arc::new(move || rx.borrow().clone()));
    }

    /// The `file-triggers` child: permanent; each start subscribes to `updates`.
    pub fn child_spec(&self, updates: Arc<OutputPort<ConfigUpdate>>) -> ChildSpec {
        let (triggers, sessions, reload, tx) = (
            self.triggers.clone(),
            self.sessions.clone(),
            self.reload.clone(),
            self.tx.clone(),
        );
        ChildSpec::new("file-triggers", "file-triggers", move |ctx| {
            let args = WatchArgs {
                triggers: triggers.clone(),
                sessions: sessions.clone(),
                reload: Some(reload.clone()),
                retry: DEFAULT_RETRY,
            };
            let (tx, updates) = (tx.clone(), updates.clone());
            async move {
                let actor = Injectable {
                    inner: WatchActor,
                    name: ctx.name.clone(),
                    faults: ctx.faults.clone(),
                };
                let (r, _) = Actor::spawn_linked(None, actor, args, ctx.supervisor).await?;
                updates.subscribe(r.clone(), |_| Some(WatchMsg::ConfigChanged));
                tx.send_replace(Some(r.clone()));
                Ok(r.get_cell())
            }
        })
    }
}

/// The running FileTriggers actor (a restarted one has a new ref).
pub type WatchLookup = Arc<dyn Fn() -> Option<ActorRef<WatchMsg>> + Send + Sync>;

/// `triggers.status`: every file trigger's state.
pub fn register(registry: &mut MethodRegistry, lookup: WatchLookup) {
    registry.method(
        "triggers.status",
        scopes::READ,
        move |_cc: CallContext, _p: Value| {
            let l = lookup.clone();
            async move {
                let unavailable =
                    || ErrorShape::unavailable("the file triggers are restarting; retry shortly");
                let w = l().ok_or_else(unavailable)?;
                match w
                    .call(|reply| WatchMsg::Status { reply }, Some(CALL_TIMEOUT))
                    .await
                {
                    Ok(CallResult::Success(list)) => {
                        Ok(json!({"count": list.len(), "watch": list}))
                    }
                    _ => Err(unavailable()),
                }
            }
        },
    );
}
