//! FileTriggers: `triggers.watch[]` folders whose changes become agent turns.
//!
//! Parent: the root supervisor (permanent; a crash restarts it, which watches afresh:
//! changes not yet turned into a turn are lost, never doubled). No children: each turn
//! is a task that talks to the Sessions actor and reports back with `TurnDone`.
//!
//! Each trigger has a `notify` watcher. Changes are batched: every change restarts the
//! trigger's `debounceMs` timer, and when it runs out the changed paths (relative,
//! deduplicated, capped) go to the trigger's session as one message. Changes during a
//! turn wait for the next one, except for a trigger that watches its agent's own
//! workspace: there they are dropped while the turn runs and for `debounceMs` after, so
//! the agent's own writes never wake it again. A path that does not exist is an error in
//! `triggers.status` and the log, retried every `retry`, never a crash.
//!
//! `watch_setup` builds its child spec and its `triggers.status` method.
//!
//! Reload: on every accepted config change (`ConfigChanged`) the actor re-reads
//! `triggers` and, when they differ, replaces every watcher.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use tokio::time::Instant;
use tracing::{info, warn};

use super::watch_config::{self, TriggerSpec, message, relevant};
use crate::gateway::now_ms;
use crate::session::SessionsMsg;
use crate::session::methods::SessionsLookup;

/// How often a missing path is tried again by default.
pub const DEFAULT_RETRY: Duration = Duration::from_secs(30);
/// How long a trigger waits for its turn to end.
const TURN_WAIT: Duration = Duration::from_secs(3600);
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub struct WatchActor;

/// Where `triggers` is re-read from on a config change.
#[derive(Debug, Clone)]
pub struct ReloadSource {
    pub config_path: PathBuf,
    pub default_agent: String,
    /// The configured agents' ids and workspaces.
    pub agents: Vec<(String, PathBuf)>,
    /// `~/` in paths.
    pub home: Option<PathBuf>,
    /// Relative paths start here (the state directory).
    pub base: PathBuf,
}

pub struct WatchArgs {
    pub triggers: Vec<TriggerSpec>,
    pub sessions: SessionsLookup,
    /// `None`: the triggers never change while running.
    pub reload: Option<ReloadSource>,
    /// How often a missing path is tried again.
    pub retry: Duration,
}

/// One trigger, for `triggers.status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerStatus {
    pub id: String,
    pub path: String,
    pub agent_id: String,
    pub session_key: String,
    /// watching | error
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub debounce_ms: u64,
    pub recursive: bool,
    pub include: Vec<String>,
    pub self_watch: bool,
    /// Changes waiting for the debounce or for the running turn.
    pub pending: usize,
    pub running: bool,
    pub fires: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_fired_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_turn_error: Option<String>,
}

pub enum WatchMsg {
    /// Every trigger's state.
    Status {
        reply: RpcReplyPort<Vec<TriggerStatus>>,
    },
    /// Replaces every trigger (their watchers and pending changes).
    Configure {
        triggers: Vec<TriggerSpec>,
    },
    /// The config file changed: re-read `triggers` (needs a `ReloadSource`).
    ConfigChanged,
    Internal(Internal),
}

pub enum Internal {
    /// The file system reported changes under a trigger's path (`epoch`: the watcher's).
    Changed {
        id: String,
        epoch: u64,
        paths: Vec<PathBuf>,
    },
    /// A trigger's debounce period of this generation ended.
    Debounced { id: String, generation: u64 },
    /// Try watching a path that was missing again.
    Retry { id: String, epoch: u64 },
    /// A trigger's turn ended (its run id, or why it failed).
    TurnDone {
        id: String,
        result: Result<String, String>,
    },
}

struct Trigger {
    spec: TriggerSpec,
    watcher: Option<RecommendedWatcher>,
    error: Option<String>,
    pending: BTreeSet<String>,
    generation: u64,
    running: bool,
    /// Self-watching triggers drop changes until then (after their turn).
    quiet_until: Option<Instant>,
    fires: u64,
    last_fired_ms: Option<u64>,
    last_run_id: Option<String>,
    last_turn_error: Option<String>,
}

pub struct WatchState {
    sessions: SessionsLookup,
    reload: Option<ReloadSource>,
    retry: Duration,
    /// Bumped by every (re)configuration: events of older watchers are ignored.
    epoch: u64,
    triggers: BTreeMap<String, Trigger>,
}

impl Actor for WatchActor {
    type Msg = WatchMsg;
    type State = WatchState;
    type Arguments = WatchArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<WatchMsg>,
        args: WatchArgs,
    ) -> Result<WatchState, ActorProcessingErr> {
        let mut state = WatchState {
            sessions: args.sessions,
            reload: args.reload,
            retry: args.retry,
            epoch: 0,
            triggers: BTreeMap::new(),
        };
        state.configure(&myself, args.triggers);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<WatchMsg>,
        msg: WatchMsg,
        state: &mut WatchState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WatchMsg::Status { reply } => {
                let _ = reply.send(state.statuses());
            }
            WatchMsg::Configure { triggers } => state.configure(&myself, triggers),
            WatchMsg::ConfigChanged => state.on_config_changed(&myself),
            WatchMsg::Internal(Internal::Changed { id, epoch, paths }) => {
                state.on_changed(&myself, &id, epoch, paths)
            }
            WatchMsg::Internal(Internal::Debounced { id, generation }) => {
                state.on_debounced(&myself, &id, generation)
            }
            WatchMsg::Internal(Internal::Retry { id, epoch }) => {
                if epoch == state.epoch {
                    state.start_watching(&myself, &id);
                }
            }
            WatchMsg::Internal(Internal::TurnDone { id, result }) => {
                state.on_turn_done(&myself, &id, result)
            }
        }
        Ok(())
    }
}

impl WatchState {
    fn configure(&mut self, myself: &ActorRef<WatchMsg>, specs: Vec<TriggerSpec>) {
        self.epoch += 1;
        self.triggers = specs
            .into_iter()
            .map(|spec| {
                (
                    spec.id.clone(),
                    Trigger {
                        spec,
                        watcher: None,
                        error: None,
                        pending: BTreeSet::new(),
                        generation: 0,
                        running: false,
                        quiet_until: None,
                        fires: 0,
                        last_fired_ms: None,
                        last_run_id: None,
                        last_turn_error: None,
                    },
                )
            })
            .collect();
        let ids: Vec<String> = self.triggers.keys().cloned().collect();
        for id in ids {
            self.start_watching(myself, &id);
        }
    }

    fn on_config_changed(&mut self, myself: &ActorRef<WatchMsg>) {
        let Some(src) = &self.reload else { return };
        let loaded = crate::config::load(&src.config_path)
            .map_err(|e| e.to_string())
            .and_then(|l| {
                watch_config::resolve(
                    &l.value,
                    &src.default_agent,
                    &src.agents,
                    src.home.as_deref(),
                    &src.base,
                )
            });
        match loaded {
            Ok(specs) => {
                let current: Vec<&TriggerSpec> = self.triggers.values().map(|t| &t.spec).collect();
                let mut sorted: Vec<&TriggerSpec> = specs.iter().collect();
                sorted.sort_by(|a, b| a.id.cmp(&b.id));
                if sorted != current {
                    info!(triggers = specs.len(), "file triggers reloaded");
                    self.configure(myself, specs);
                }
            }
            Err(e) => {
                warn!(error = %e, "triggers not reloaded; keeping the running ones")
            }
        }
    }

    /// Starts a trigger's watcher; a missing path is recorded and retried.
    fn start_watching(&mut self, myself: &ActorRef<WatchMsg>, id: &str) {
        let (epoch, retry) = (self.epoch, self.retry);
        let Some(t) = self.triggers.get_mut(id) else {
            return;
        };
        t.watcher = None;
        match watch(&t.spec, epoch, myself.clone()) {
            Ok(w) => {
                if t.error.take().is_some() {
                    info!(trigger = %id, path = %t.spec.path.display(), "watched path is back; watching it");
                } else {
                    info!(trigger = %id, path = %t.spec.path.display(), recursive = t.spec.recursive, "watching");
                }
                t.watcher = Some(w);
            }
            Err(e) => {
                let why = if t.spec.path.exists() {
                    format!("cannot watch {}: {e}", t.spec.path.display())
                } else {
                    format!(
                        "{} does not exist: create it or fix triggers.watch (id {id}) in pincer.json; retrying every {}s",
                        t.spec.path.display(),
                        retry.as_secs().max(1)
                    )
                };
                if t.error.as_deref() != Some(why.as_str()) {
                    warn!(trigger = %id, error = %why, "file trigger not watching");
                }
                t.error = Some(why);
                let id = id.to_owned();
                myself.send_after(retry, move || {
                    WatchMsg::Internal(Internal::Retry { id, epoch })
                });
            }
        }
    }

    fn on_changed(
        &mut self,
        myself: &ActorRef<WatchMsg>,
        id: &str,
        epoch: u64,
        paths: Vec<PathBuf>,
    ) {
        if epoch != self.epoch {
            return;
        }
        let Some(t) = self.triggers.get_mut(id) else {
            return;
        };
        if paths.contains(&t.spec.path) && !t.spec.path.exists() {
            // The watched folder itself went away: watch for it to come back.
            t.pending.clear();
            self.start_watching(myself, id);
            return;
        }
        let quiet =
            t.spec.self_watch && (t.running || t.quiet_until.is_some_and(|q| Instant::now() < q));
        if quiet {
            return;
        }
        // Folders are not changes themselves; a new one (moved in, or made and filled
        // before its own watch was set up) counts with the files already in it.
        let mut files = Vec::new();
        for p in paths {
            if p.is_dir() {
                if t.spec.recursive && p != t.spec.path {
                    files_under(&p, &mut files);
                }
            } else {
                files.push(p);
            }
        }
        let counted: Vec<String> = files.iter().filter_map(|p| relevant(&t.spec, p)).collect();
        if counted.is_empty() {
            return;
        }
        t.pending.extend(counted);
        // Every change that counts restarts the quiet period.
        t.generation += 1;
        let (generation, id) = (t.generation, id.to_owned());
        myself.send_after(t.spec.debounce, move || {
            WatchMsg::Internal(Internal::Debounced { id, generation })
        });
    }

    fn on_debounced(&mut self, myself: &ActorRef<WatchMsg>, id: &str, generation: u64) {
        let Some(t) = self.triggers.get_mut(id) else {
            return;
        };
        if generation != t.generation || t.running || t.pending.is_empty() {
            return;
        }
        let changed = std::mem::take(&mut t.pending);
        let root = t.spec.path.clone();
        let base = if root.is_dir() {
            root.clone()
        } else {
            root.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        let text = message(&t.spec, &changed, &|p| !base.join(p).exists());
        t.running = true;
        t.fires += 1;
        t.last_fired_ms = Some(now_ms());
        info!(trigger = %id, session = %t.spec.session_key, changed = changed.len(), "file trigger: starting a turn");
        let (sessions, key, me, id) = (
            self.sessions.clone(),
            t.spec.session_key.clone(),
            myself.clone(),
            id.to_owned(),
        );
        tokio::spawn(async move {
            let result = turn(&sessions, &key, text).await;
            let _ = me.cast(WatchMsg::Internal(Internal::TurnDone { id, result }));
        });
    }

    fn on_turn_done(
        &mut self,
        myself: &ActorRef<WatchMsg>,
        id: &str,
        result: Result<String, String>,
    ) {
        let Some(t) = self.triggers.get_mut(id) else {
            return;
        };
        t.running = false;
        match result {
            Ok(run_id) => {
                t.last_run_id = Some(run_id);
                t.last_turn_error = None;
            }
            Err(e) => {
                warn!(trigger = %id, error = %e, "file trigger turn failed");
                t.last_turn_error = Some(e);
            }
        }
        if t.spec.self_watch {
            t.quiet_until = Some(Instant::now() + t.spec.debounce);
            t.pending.clear();
        } else if !t.pending.is_empty() {
            // Changes that came during the turn: the next turn, after a quiet period.
            t.generation += 1;
            let (generation, id) = (t.generation, id.to_owned());
            myself.send_after(t.spec.debounce, move || {
                WatchMsg::Internal(Internal::Debounced { id, generation })
            });
        }
    }

    fn statuses(&self) -> Vec<TriggerStatus> {
        self.triggers
            .values()
            .map(|t| TriggerStatus {
                id: t.spec.id.clone(),
                path: t.spec.path.display().to_string(),
                agent_id: t.spec.agent.clone(),
                session_key: t.spec.session_key.clone(),
                state: if t.watcher.is_some() {
                    "watching"
                } else {
                    "error"
                },
                error: t.error.clone(),
                debounce_ms: t.spec.debounce.as_millis() as u64,
                recursive: t.spec.recursive,
                include: t.spec.include.clone(),
                self_watch: t.spec.self_watch,
                pending: t.pending.len(),
                running: t.running,
                fires: t.fires,
                last_fired_ms: t.last_fired_ms,
                last_run_id: t.last_run_id.clone(),
                last_turn_error: t.last_turn_error.clone(),
            })
            .collect()
    }
}

/// Files under `dir` (at most `MAX_SCAN`), for a folder that appeared.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    const MAX_SCAN: usize = 1000;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if out.len() >= MAX_SCAN {
                return;
            }
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
}

/// A watcher for a trigger's path that casts its changes (not reads or metadata-only
/// changes) to the actor.
fn watch(
    spec: &TriggerSpec,
    epoch: u64,
    me: ActorRef<WatchMsg>,
) -> Result<RecommendedWatcher, notify::Error> {
    let id = spec.id.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        let counts = match event.kind {
            EventKind::Create(_) | EventKind::Remove(_) => true,
            EventKind::Modify(notify::event::ModifyKind::Metadata(_)) => false,
            EventKind::Modify(_) => true,
            _ => false,
        };
        if counts && !event.paths.is_empty() {
            let _ = me.cast(WatchMsg::Internal(Internal::Changed {
                id: id.clone(),
                epoch,
                paths: event.paths,
            }));
        }
    })?;
    let mode = if spec.recursive {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    };
    watcher.watch(&spec.path, mode)?;
    Ok(watcher)
}

/// One trigger turn: the message to the trigger's session, then its end.
async fn turn(sessions: &SessionsLookup, key: &str, text: String) -> Result<String, String> {
    let s = sessions().ok_or("the sessions are restarting")?;
    let sent = s
        .call(
            |reply| SessionsMsg::Send {
                key: key.to_owned(),
                text,
                thinking: None,
                stream: None,
                compact: false,
                mode: None,
                origin: None,
                opts: Default::default(),
                reply,
            },
            Some(CALL_TIMEOUT),
        )
        .await;
    let run_id = match sent {
        Ok(CallResult::Success(Ok((run_id, _)))) => run_id,
        Ok(CallResult::Success(Err(e))) => return Err(e),
        _ => return Err("the sessions did not take the message".into()),
    };
    let done = s
        .call(
            |reply| SessionsMsg::Wait {
                key: key.to_owned(),
                run_id: run_id.clone(),
                reply,
            },
            Some(TURN_WAIT),
        )
        .await;
    match done {
        Ok(CallResult::Success(summary)) if summary.status == "ok" => Ok(run_id),
        Ok(CallResult::Success(summary)) => Err(summary
            .error
            .unwrap_or_else(|| format!("the turn ended {}", summary.status))),
        _ => Err(format!("turn {run_id} did not report its end")),
    }
}
