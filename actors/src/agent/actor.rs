//! The AgentActor: one per configured agent, under the Agents supervisor. It owns the
//! agent's runtime (configuration, tools and tool policy, provider failover state) and
//! admits its turns: at most `maxConcurrent` run at once, and waiting turns are served
//! highest priority first, then in arrival order.
//!
//! A RunActor asks for an `Admission` before its first model call and holds it for the
//! turn; dropping it (the turn ended, was aborted or crashed) gives the slot back. A new
//! configuration (`Reconfigure`) applies to the turns admitted after it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tracing::{debug, info};

use super::run::AgentRuntime;

/// How urgent a turn is: a higher value is admitted first when an agent has a queue.
pub type Priority = i32;

/// Normal priority of a user's message.
pub const PRIORITY_NORMAL: Priority = 0;

pub enum AgentMsg {
    /// A turn asks to run; answered when a slot is free (highest priority first).
    Admit {
        run_id: String,
        priority: Priority,
        reply: RpcReplyPort<Admission>,
    },
    /// A turn ended (sent by `Admission`'s drop).
    Release {
        run_id: String,
    },
    /// Later turns run with this runtime; running ones finish on theirs.
    Reconfigure(Arc<AgentRuntime>),
    Status {
        reply: RpcReplyPort<AgentStatus>,
    },
}

/// What an agent is doing (`agents.list`, tests).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    pub id: String,
    pub running: usize,
    pub waiting: usize,
    pub max_concurrent: usize,
    pub admitted: u64,
}

/// The right to run one turn, with the runtime to run it on. Dropping it frees the slot.
pub struct Admission {
    pub runtime: Arc<AgentRuntime>,
    release: Option<(ActorRef<AgentMsg>, String)>,
}

impl Admission {
    /// An admission that holds no slot (turns run without an AgentActor: tools, tests).
    pub fn unmanaged(runtime: Arc<AgentRuntime>) -> Self {
        Admission {
            runtime,
            release: None,
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some((agent, run_id)) = self.release.take() {
            let _ = agent.cast(AgentMsg::Release { run_id });
        }
    }
}

/// The live AgentActors and their current runtimes by agent id, kept up to date by the
/// actors themselves (a restarted actor registers its new address).
#[derive(Clone, Default)]
pub struct AgentDirectory(Arc<RwLock<HashMap<String, Entry>>>);

#[derive(Clone)]
struct Entry {
    actor: Option<ActorRef<AgentMsg>>,
    runtime: Arc<AgentRuntime>,
}

impl AgentDirectory {
    /// A directory of these runtimes, with no actors yet.
    pub fn new(runtimes: impl IntoIterator<Item = Arc<AgentRuntime>>) -> Self {
        let map = runtimes
            .into_iter()
            .map(|rt| {
                (
                    rt.spec.id.clone(),
                    Entry {
                        actor: None,
                        runtime: rt,
                    },
                )
            })
            .collect();
        AgentDirectory(Arc::new(RwLock::new(map)))
    }

    /// The agent's current runtime.
    pub fn runtime(&self, id: &str) -> Option<Arc<AgentRuntime>> {
        self.0.read().unwrap().get(id).map(|e| e.runtime.clone())
    }

    /// The agent's actor, when it runs.
    pub fn actor(&self, id: &str) -> Option<ActorRef<AgentMsg>> {
        self.0.read().unwrap().get(id).and_then(|e| e.actor.clone())
    }

    pub fn contains(&self, id: &str) -> bool {
        self.0.read().unwrap().contains_key(id)
    }

    /// Agent ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.0.read().unwrap().keys().cloned().collect();
        ids.sort();
        ids
    }

    fn register(&self, id: &str, actor: Option<ActorRef<AgentMsg>>, runtime: Arc<AgentRuntime>) {
        self.0
            .write()
            .unwrap()
            .insert(id.to_owned(), Entry { actor, runtime });
    }

    /// Asks the agent's actor for a turn slot and waits for it. While the actor is
    /// restarting, retries for a few seconds; then fails with a message for the user.
    pub async fn admit(
        &self,
        id: &str,
        run_id: &str,
        priority: Priority,
    ) -> Result<Admission, String> {
        for attempt in 0..50 {
            if let Some(actor) = self.actor(id) {
                let asked = actor
                    .call(
                        |reply| AgentMsg::Admit {
                            run_id: run_id.to_owned(),
                            priority,
                            reply,
                        },
                        None,
                    )
                    .await;
                if let Ok(ractor::rpc::CallResult::Success(a)) = asked {
                    return Ok(a);
                }
            }
            debug!(agent = %id, attempt, "agent actor not answering; waiting for its restart");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "agent {id} is not running (its actor keeps failing); see the gateway log, then send the message again"
        ))
    }
}

pub struct AgentActor;

pub struct AgentArgs {
    pub id: String,
    pub directory: AgentDirectory,
}

pub struct AgentState {
    id: String,
    runtime: Arc<AgentRuntime>,
    directory: AgentDirectory,
    running: HashSet<String>,
    /// (priority, earliest first, run id, reply)
    waiting: BinaryHeap<Waiting>,
    arrivals: u64,
    admitted: u64,
}

struct Waiting {
    priority: Priority,
    order: Reverse<u64>,
    run_id: String,
    reply: RpcReplyPort<Admission>,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        (self.priority, self.order) == (other.priority, other.order)
    }
}
impl Eq for Waiting {}
impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.priority, self.order).cmp(&(other.priority, other.order))
    }
}

impl AgentState {
    fn max(&self) -> usize {
        self.runtime.spec.max_concurrent.max(1)
    }

    fn admit_waiting(&mut self, myself: &ActorRef<AgentMsg>) {
        while self.running.len() < self.max() {
            let Some(w) = self.waiting.pop() else {
                return;
            };
            if w.reply.is_closed() {
                continue; // the turn was aborted while it waited
            }
            self.running.insert(w.run_id.clone());
            self.admitted += 1;
            let admission = Admission {
                runtime: self.runtime.clone(),
                release: Some((myself.clone(), w.run_id)),
            };
            // A reply that fails drops the admission, which releases the slot.
            let _ = w.reply.send(admission);
        }
    }
}

impl Actor for AgentActor {
    type Msg = AgentMsg;
    type State = AgentState;
    type Arguments = AgentArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<AgentMsg>,
        args: AgentArgs,
    ) -> Result<AgentState, ActorProcessingErr> {
        let runtime = args
            .directory
            .runtime(&args.id)
            .ok_or_else(|| format!("agent {} is not configured", args.id))?;
        args.directory
            .register(&args.id, Some(myself.clone()), runtime.clone());
        info!(agent = %args.id, max_concurrent = runtime.spec.max_concurrent, "agent ready");
        Ok(AgentState {
            id: args.id,
            runtime,
            directory: args.directory,
            running: HashSet::new(),
            waiting: BinaryHeap::new(),
            arrivals: 0,
            admitted: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<AgentMsg>,
        msg: AgentMsg,
        state: &mut AgentState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AgentMsg::Admit {
                run_id,
                priority,
                reply,
            } => {
                state.arrivals += 1;
                state.waiting.push(Waiting {
                    priority,
                    order: Reverse(state.arrivals),
                    run_id,
                    reply,
                });
                state.admit_waiting(&myself);
            }
            AgentMsg::Release { run_id } => {
                state.running.remove(&run_id);
                state.admit_waiting(&myself);
            }
            AgentMsg::Reconfigure(runtime) => {
                info!(agent = %state.id, "agent reconfigured; later turns use the new settings");
                state.runtime = runtime.clone();
                state
                    .directory
                    .register(&state.id, Some(myself.clone()), runtime);
                state.admit_waiting(&myself);
            }
            AgentMsg::Status { reply } => {
                let _ = reply.send(AgentStatus {
                    id: state.id.clone(),
                    running: state.running.len(),
                    waiting: state.waiting.len(),
                    max_concurrent: state.max(),
                    admitted: state.admitted,
                });
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<AgentMsg>,
        state: &mut AgentState,
    ) -> Result<(), ActorProcessingErr> {
        // Waiting turns see their reply port close and retry against the restarted actor.
        let rt = state.runtime.clone();
        state.directory.register(&state.id, None, rt);
        Ok(())
    }
}

/// Starts an unsupervised AgentActor per runtime in `directory` (tests and benches; the
/// gateway starts them under its Agents supervisor).
pub async fn spawn_all(directory: &AgentDirectory) -> Vec<ActorRef<AgentMsg>> {
    let mut out = Vec::new();
    for id in directory.ids() {
        let (r, _) = Actor::spawn(
            None,
            AgentActor,
            AgentArgs {
                id,
                directory: directory.clone(),
            },
        )
        .await
        .expect("an agent actor starts");
        out.push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::config::{AgentSpec, ExecPolicy};
    use crate::agent::failover::Cooldowns;
    use crate::agent::run::Approvals;

    fn runtime(id: &str, max: usize) -> Arc<AgentRuntime> {
        let mut spec = AgentSpec::new(id, std::path::Path::new("/nonexistent-workspace"));
        spec.max_concurrent = max;
        Arc::new(AgentRuntime::new(
            spec,
            Default::default(),
            ExecPolicy::default(),
            Arc::new(Cooldowns::new(None)),
            Arc::new(Approvals::new(Arc::new(|_: &str, _| {}))),
            crate::gateway::Metrics::new(),
        ))
    }

    async fn status(a: &ActorRef<AgentMsg>) -> AgentStatus {
        match a
            .call(|reply| AgentMsg::Status { reply }, None)
            .await
            .unwrap()
        {
            ractor::rpc::CallResult::Success(s) => s,
            _ => panic!("no status"),
        }
    }

    #[tokio::test]
    async fn turns_wait_for_a_slot_and_higher_priority_goes_first() {
        let dir = AgentDirectory::new([runtime("main", 1)]);
        let actors = spawn_all(&dir).await;
        let first = dir.admit("main", "r1", 0).await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for (i, (run, prio)) in [("low", 0), ("high", 5), ("low2", 0)]
            .into_iter()
            .enumerate()
        {
            let (dir, tx) = (dir.clone(), tx.clone());
            tokio::spawn(async move {
                let a = dir.admit("main", run, prio).await.unwrap();
                tx.send((run, a)).unwrap();
            });
            // Arrival order is part of the contract: let each ask before the next.
            while status(&actors[0]).await.waiting < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        assert_eq!(status(&actors[0]).await.running, 1);
        assert!(rx.try_recv().is_err(), "all three wait for the one slot");
        let mut order = Vec::new();
        drop(first);
        for _ in 0..3 {
            let (run, admission) = rx.recv().await.unwrap();
            order.push(run);
            assert_eq!(status(&actors[0]).await.running, 1, "one at a time");
            drop(admission);
        }
        assert_eq!(order, ["high", "low", "low2"]);
        let s = status(&actors[0]).await;
        assert_eq!((s.running, s.waiting, s.admitted), (0, 0, 4));
    }

    #[tokio::test]
    async fn an_aborted_waiting_turn_gives_its_place_up_and_new_settings_apply_to_later_turns() {
        let dir = AgentDirectory::new([runtime("main", 1)]);
        let actors = spawn_all(&dir).await;
        let held = dir.admit("main", "r1", 0).await.unwrap();
        let waiting = tokio::spawn({
            let dir = dir.clone();
            async move { dir.admit("main", "r2", 0).await }
        });
        while status(&actors[0]).await.waiting < 1 {
            tokio::task::yield_now().await;
        }
        waiting.abort();
        let _ = waiting.await;
        actors[0]
            .cast(AgentMsg::Reconfigure(runtime("main", 2)))
            .unwrap();
        // With two slots now, a second turn runs beside the first at once.
        let second = dir.admit("main", "r3", 0).await.unwrap();
        assert_eq!(second.runtime.spec.max_concurrent, 2);
        assert_eq!(
            held.runtime.spec.max_concurrent, 1,
            "the running turn keeps its settings"
        );
        assert_eq!(dir.runtime("main").unwrap().spec.max_concurrent, 2);
        let s = status(&actors[0]).await;
        assert_eq!(
            (s.running, s.waiting),
            (2, 0),
            "the aborted one took no slot"
        );
    }

    #[tokio::test]
    async fn an_agent_that_is_not_running_is_a_clear_error_after_retries() {
        tokio::time::pause();
        let dir = AgentDirectory::new([runtime("main", 1)]);
        let e = match dir.admit("main", "r1", 0).await {
            Err(e) => e,
            Ok(_) => panic!("admitted without an actor"),
        };
        assert!(e.contains("agent main is not running"), "{e}");
    }
}
