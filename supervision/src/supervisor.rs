//! The supervisor actor: starts children in order, restarts them by strategy, restart kind,
//! backoff and intensity, and stops them in reverse order with a timeout each.

use std::collections::HashSet;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::events::{EventSink, ExitReason, SupervisionEvent};
use crate::fault::FaultHandle;
use crate::intensity::RestartWindow;
use crate::spec::{ChildContext, ChildSpec, Restart, Strategy, SupervisorSpec};

/// How long a killed child may take to go away before the supervisor moves on.
const KILL_WAIT: Duration = Duration::from_secs(1);

pub struct Supervisor;

pub struct SupervisorArgs {
    pub spec: SupervisorSpec,
    pub faults: FaultHandle,
    pub events: EventSink,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisorError {
    #[error("a child named {0:?} already exists")]
    NameTaken(String),
    #[error("no child named {0:?}")]
    NoSuchChild(String),
    #[error("child {name:?} failed to start: {reason}")]
    StartFailed { name: String, reason: String },
    #[error("the supervisor is shutting down")]
    ShuttingDown,
}

/// A child as `WhichChildren` reports it.
#[derive(Debug, Clone)]
pub struct ChildInfo {
    pub name: String,
    pub kind: &'static str,
    pub restart: Restart,
    /// `None` while a restart is pending.
    pub cell: Option<ActorCell>,
    pub restarts: u32,
}

pub enum SupervisorMsg {
    /// Starts one more child (e.g. a temporary connection actor) after the others.
    StartChild {
        spec: ChildSpec,
        reply: RpcReplyPort<Result<ActorCell, SupervisorError>>,
    },
    /// Stops a child (gracefully, then killed at its shutdown timeout) and forgets it.
    TerminateChild {
        name: String,
        reply: RpcReplyPort<Result<(), SupervisorError>>,
    },
    /// The children in start order.
    WhichChildren { reply: RpcReplyPort<Vec<ChildInfo>> },
    /// Stops every child in reverse order, then the supervisor; replies when done.
    Shutdown { reply: RpcReplyPort<()> },
    /// A backoff delay ended: start these children again.
    Internal(Vec<String>),
}

struct Child {
    spec: ChildSpec,
    cell: Option<ActorCell>,
    /// Consecutive restarts, for the backoff; reset after a stable period.
    attempts: u32,
    restarts: u32,
    started_at: Instant,
}

pub struct SupervisorState {
    name: String,
    strategy: Strategy,
    intensity: crate::intensity::Intensity,
    children: Vec<Child>,
    window: RestartWindow,
    faults: FaultHandle,
    events: EventSink,
    /// Children this supervisor stopped itself: their exit is not a failure.
    expected_exits: HashSet<ActorId>,
    stopping: bool,
}

impl Supervisor {
    /// Starts a root supervisor (no parent).
    pub async fn spawn(
        spec: SupervisorSpec,
        faults: FaultHandle,
        events: EventSink,
    ) -> Result<(ActorRef<SupervisorMsg>, JoinHandle<()>), SpawnErr> {
        Actor::spawn(
            None,
            Supervisor,
            SupervisorArgs {
                spec,
                faults,
                events,
            },
        )
        .await
    }

    /// Starts a supervisor as the child described by `ctx` (nested trees).
    pub async fn spawn_linked(
        spec: SupervisorSpec,
        ctx: ChildContext,
    ) -> Result<ActorRef<SupervisorMsg>, SpawnErr> {
        let args = SupervisorArgs {
            spec,
            faults: ctx.faults,
            events: ctx.events,
        };
        Actor::spawn_linked(None, Supervisor, args, ctx.supervisor)
            .await
            .map(|(r, _)| r)
    }

    /// A child spec that runs `spec` as a nested supervisor.
    pub fn child(spec: SupervisorSpec, kind: &'static str) -> ChildSpec {
        let name = spec.name.clone();
        ChildSpec::new(name, kind, move |ctx| {
            let spec = spec.clone();
            async move {
                Supervisor::spawn_linked(spec, ctx)
                    .await
                    .map(|r| r.get_cell())
            }
        })
        .shutdown(Duration::from_secs(30))
    }
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let mut state = SupervisorState {
            name: args.spec.name,
            strategy: args.spec.strategy,
            intensity: args.spec.intensity,
            children: Vec::new(),
            window: RestartWindow::default(),
            faults: args.faults,
            events: args.events,
            expected_exits: HashSet::new(),
            stopping: false,
        };
        for spec in args.spec.children {
            match state.start(&myself, &spec).await {
                Ok(cell) => state.children.push(Child {
                    spec,
                    cell: Some(cell),
                    attempts: 0,
                    restarts: 0,
                    started_at: Instant::now(),
                }),
                Err(reason) => {
                    error!(supervisor = %state.name, child = %spec.name, %reason, "child failed to start; stopping the ones already started");
                    state.stop_all().await;
                    return Err(format!(
                        "{}: child {} failed to start: {reason}",
                        state.name, spec.name
                    )
                    .into());
                }
            }
        }
        debug!(supervisor = %state.name, children = state.children.len(), "supervisor started");
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        if !state.stopping {
            state.stopping = true;
            state.stop_all().await;
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::StartChild { spec, reply } => {
                let result = state.add_child(&myself, spec).await;
                let _ = reply.send(result);
            }
            SupervisorMsg::TerminateChild { name, reply } => {
                let result = match state.children.iter().position(|c| c.spec.name == name) {
                    Some(i) => {
                        state.stop_child(i).await;
                        state.children.remove(i);
                        Ok(())
                    }
                    None => Err(SupervisorError::NoSuchChild(name)),
                };
                let _ = reply.send(result);
            }
            SupervisorMsg::WhichChildren { reply } => {
                let list = state
                    .children
                    .iter()
                    .map(|c| ChildInfo {
                        name: c.spec.name.clone(),
                        kind: c.spec.kind,
                        restart: c.spec.restart,
                        cell: c.cell.clone(),
                        restarts: c.restarts,
                    })
                    .collect();
                let _ = reply.send(list);
            }
            SupervisorMsg::Shutdown { reply } => {
                state.stopping = true;
                state.stop_all().await;
                let _ = reply.send(());
                myself.stop(Some("shutdown".into()));
            }
            SupervisorMsg::Internal(names) => {
                if !state.stopping {
                    state.restart(&myself, names).await?;
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        evt: ractor::SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason) = match evt {
            ractor::SupervisionEvent::ActorTerminated(cell, _, r) => {
                let reason = if r.as_deref() == Some("killed") {
                    ExitReason::Killed
                } else {
                    ExitReason::Normal
                };
                (cell, reason)
            }
            ractor::SupervisionEvent::ActorFailed(cell, err) => {
                (cell, ExitReason::Failed(err.to_string()))
            }
            _ => return Ok(()),
        };
        if state.expected_exits.remove(&cell.get_id()) {
            return Ok(());
        }
        let Some(idx) = state
            .children
            .iter()
            .position(|c| c.cell.as_ref().is_some_and(|x| x.get_id() == cell.get_id()))
        else {
            return Ok(());
        };
        state.on_child_exit(&myself, idx, reason).await
    }
}

impl SupervisorState {
    async fn start(
        &self,
        myself: &ActorRef<SupervisorMsg>,
        spec: &ChildSpec,
    ) -> Result<ActorCell, String> {
        let ctx = ChildContext {
            supervisor: myself.get_cell(),
            name: spec.name.clone(),
            faults: self.faults.clone(),
            events: self.events.clone(),
        };
        let cell = (spec.start)(ctx).await.map_err(|e| e.to_string())?;
        self.faults.register(&spec.name, cell.clone());
        self.events.emit(SupervisionEvent::ChildStarted {
            supervisor: self.name.clone(),
            child: spec.name.clone(),
            kind: spec.kind,
        });
        Ok(cell)
    }

    async fn add_child(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        spec: ChildSpec,
    ) -> Result<ActorCell, SupervisorError> {
        if self.stopping {
            return Err(SupervisorError::ShuttingDown);
        }
        if self.children.iter().any(|c| c.spec.name == spec.name) {
            return Err(SupervisorError::NameTaken(spec.name));
        }
        let cell =
            self.start(myself, &spec)
                .await
                .map_err(|reason| SupervisorError::StartFailed {
                    name: spec.name.clone(),
                    reason,
                })?;
        self.children.push(Child {
            spec,
            cell: Some(cell.clone()),
            attempts: 0,
            restarts: 0,
            started_at: Instant::now(),
        });
        Ok(cell)
    }

    async fn on_child_exit(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        idx: usize,
        reason: ExitReason,
    ) -> Result<(), ActorProcessingErr> {
        let (name, kind, restart) = {
            let c = &mut self.children[idx];
            c.cell = None;
            (c.spec.name.clone(), c.spec.kind, c.spec.restart)
        };
        self.events.emit(SupervisionEvent::ChildExited {
            supervisor: self.name.clone(),
            child: name.clone(),
            kind,
            reason: reason.clone(),
        });
        let again = match restart {
            Restart::Permanent => true,
            Restart::Transient => reason.is_abnormal(),
            Restart::Temporary => false,
        };
        if !again {
            debug!(supervisor = %self.name, child = %name, ?reason, "child ended; not restarted");
            self.children.remove(idx);
            return Ok(());
        }
        if self.stopping {
            return Ok(());
        }
        if !self.window.allow(self.intensity, Instant::now()) {
            error!(
                supervisor = %self.name,
                child = %name,
                max = self.intensity.max_restarts,
                within = ?self.intensity.within,
                "restart intensity exceeded; stopping all children and escalating"
            );
            self.events.emit(SupervisionEvent::IntensityExceeded {
                supervisor: self.name.clone(),
            });
            self.stopping = true;
            self.stop_all().await;
            return Err(format!(
                "supervisor {}: more than {} restarts within {:?} (last: {name}, {reason:?})",
                self.name, self.intensity.max_restarts, self.intensity.within
            )
            .into());
        }
        let n = self.children.len();
        let targets: Vec<usize> = match self.strategy {
            Strategy::OneForOne => vec![idx],
            Strategy::OneForAll => (0..n).collect(),
            Strategy::RestForOne => (idx..n).collect(),
        };
        for &j in targets.iter().rev() {
            if j != idx && self.children[j].cell.is_some() {
                self.stop_child(j).await;
            }
        }
        let child = &mut self.children[idx];
        if child.started_at.elapsed() >= child.spec.backoff.reset_after {
            child.attempts = 0;
        }
        let delay = child
            .spec
            .backoff
            .delay(child.attempts, rand::random::<f64>());
        child.attempts += 1;
        let attempt = child.attempts;
        warn!(supervisor = %self.name, child = %name, kind, ?reason, retry_in = ?delay, attempt, "child failed, restarting");
        self.events.emit(SupervisionEvent::RestartScheduled {
            supervisor: self.name.clone(),
            child: name,
            kind,
            attempt,
            delay,
        });
        let names: Vec<String> = targets
            .iter()
            .map(|&j| self.children[j].spec.name.clone())
            .collect();
        if delay.is_zero() {
            self.restart(myself, names).await
        } else {
            myself.send_after(delay, move || SupervisorMsg::Internal(names));
            Ok(())
        }
    }

    /// Starts the named children again, in start order.
    async fn restart(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        names: Vec<String>,
    ) -> Result<(), ActorProcessingErr> {
        for i in 0..self.children.len() {
            if !names.contains(&self.children[i].spec.name) || self.children[i].cell.is_some() {
                continue;
            }
            let spec = self.children[i].spec.clone();
            match self.start(myself, &spec).await {
                Ok(cell) => {
                    let c = &mut self.children[i];
                    c.cell = Some(cell);
                    c.restarts += 1;
                    c.started_at = Instant::now();
                    info!(supervisor = %self.name, child = %spec.name, kind = spec.kind, "child restarted");
                    self.events.emit(SupervisionEvent::ChildRestarted {
                        supervisor: self.name.clone(),
                        child: spec.name.clone(),
                        kind: spec.kind,
                    });
                }
                Err(reason) => {
                    // A failed start is a failure like any other: backoff and intensity apply.
                    Box::pin(self.on_child_exit(myself, i, ExitReason::Failed(reason))).await?;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Stops one child: graceful stop, killed at its shutdown timeout.
    async fn stop_child(&mut self, idx: usize) {
        let Some(cell) = self.children[idx].cell.take() else {
            return;
        };
        let timeout = self.children[idx].spec.shutdown;
        self.expected_exits.insert(cell.get_id());
        if cell
            .stop_and_wait(Some("stopped by supervisor".into()), Some(timeout))
            .await
            .is_err()
        {
            warn!(supervisor = %self.name, child = %self.children[idx].spec.name, ?timeout, "child did not stop in time; killing it");
            let _ = cell.kill_and_wait(Some(KILL_WAIT)).await;
        }
    }

    /// Stops every child in reverse start order.
    async fn stop_all(&mut self) {
        for i in (0..self.children.len()).rev() {
            self.stop_child(i).await;
        }
        self.events.emit(SupervisionEvent::SupervisorStopped {
            supervisor: self.name.clone(),
        });
    }
}
