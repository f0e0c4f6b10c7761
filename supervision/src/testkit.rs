//! A test kit: spawn a tree, watch its supervision events, drive `Probe` children, and fail
//! the test when it leaves actors running.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, ActorStatus, RpcReplyPort};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::backoff::Backoff;
use crate::events::{EventSink, SupervisionEvent};
use crate::fault::{FaultHandle, Injectable};
use crate::spec::{ChildSpec, SupervisorSpec};
use crate::supervisor::{ChildInfo, Supervisor, SupervisorMsg};

/// What probes did, in order: `start:<name>` and `stop:<name>` lines, plus every probe cell
/// ever started (for the leak check).
#[derive(Clone, Default)]
pub struct ProbeLog {
    lines: Arc<Mutex<Vec<String>>>,
    cells: Arc<Mutex<Vec<(String, ActorCell)>>>,
}

impl ProbeLog {
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("probe log").clone()
    }

    pub fn clear(&self) {
        self.lines.lock().expect("probe log").clear();
    }

    /// How many times `name` started.
    pub fn starts(&self, name: &str) -> usize {
        let needle = format!("start:{name}");
        self.lines().iter().filter(|l| **l == needle).count()
    }

    fn push(&self, line: String) {
        self.lines.lock().expect("probe log").push(line);
    }

    /// Probes still alive.
    pub fn running(&self) -> Vec<String> {
        self.cells
            .lock()
            .expect("probe log")
            .iter()
            .filter(|(_, c)| !matches!(c.get_status(), ActorStatus::Stopped))
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// A test child that does what it is told.
pub struct Probe;

pub enum ProbeMsg {
    /// Answers with how many messages it has handled.
    Ping(RpcReplyPort<u64>),
    Panic,
    Fail,
    /// Stops normally.
    Stop,
    /// Blocks its handler this long (so it ignores a stop until then).
    Hang(Duration),
}

pub struct ProbeState {
    name: String,
    log: ProbeLog,
    handled: u64,
}

impl Actor for Probe {
    type Msg = ProbeMsg;
    type State = ProbeState;
    type Arguments = (String, ProbeLog);

    async fn pre_start(
        &self,
        myself: ActorRef<ProbeMsg>,
        (name, log): Self::Arguments,
    ) -> Result<ProbeState, ActorProcessingErr> {
        log.push(format!("start:{name}"));
        log.cells
            .lock()
            .expect("probe log")
            .push((name.clone(), myself.get_cell()));
        Ok(ProbeState {
            name,
            log,
            handled: 0,
        })
    }

    async fn post_stop(
        &self,
        _: ActorRef<ProbeMsg>,
        s: &mut ProbeState,
    ) -> Result<(), ActorProcessingErr> {
        s.log.push(format!("stop:{}", s.name));
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ProbeMsg>,
        msg: ProbeMsg,
        s: &mut ProbeState,
    ) -> Result<(), ActorProcessingErr> {
        s.handled += 1;
        match msg {
            ProbeMsg::Ping(reply) => {
                let _ = reply.send(s.handled);
            }
            ProbeMsg::Panic => panic!("probe {} told to panic", s.name),
            ProbeMsg::Fail => return Err(format!("probe {} told to fail", s.name).into()),
            ProbeMsg::Stop => myself.stop(Some("told to stop".into())),
            ProbeMsg::Hang(d) => tokio::time::sleep(d).await,
        }
        Ok(())
    }
}

/// A permanent probe child with no backoff and a 1 s shutdown timeout, wrapped in
/// [`Injectable`] so faults can be armed on it.
pub fn probe(name: &str, log: &ProbeLog) -> ChildSpec {
    let (n, log) = (name.to_owned(), log.clone());
    ChildSpec::new(name, "probe", move |ctx| {
        let (n, log) = (n.clone(), log.clone());
        async move {
            let actor = Injectable {
                inner: Probe,
                name: ctx.name.clone(),
                faults: ctx.faults.clone(),
            };
            Actor::spawn_linked(None, actor, (n, log), ctx.supervisor)
                .await
                .map(|(r, _)| r.get_cell())
        }
    })
    .backoff(Backoff::none())
    .shutdown(Duration::from_secs(1))
}

/// A running tree under test.
pub struct TestTree {
    pub root: ActorRef<SupervisorMsg>,
    pub handle: Option<JoinHandle<()>>,
    pub events: UnboundedReceiver<SupervisionEvent>,
    pub faults: FaultHandle,
    pub log: ProbeLog,
    finished: bool,
}

impl TestTree {
    pub async fn start(spec: SupervisorSpec, log: ProbeLog) -> Self {
        let (sink, events) = EventSink::channel();
        let faults = FaultHandle::new();
        let (root, handle) = Supervisor::spawn(spec, faults.clone(), sink)
            .await
            .expect("tree starts");
        Self {
            root,
            handle: Some(handle),
            events,
            faults,
            log,
            finished: false,
        }
    }

    /// The next event; fails the test after 10 s (of tokio time) without one.
    pub async fn next_event(&mut self) -> SupervisionEvent {
        tokio::time::timeout(Duration::from_secs(10), self.events.recv())
            .await
            .expect("no supervision event within 10 s")
            .expect("event channel closed")
    }

    /// Skips events until one matches.
    pub async fn expect(
        &mut self,
        what: &str,
        pred: impl Fn(&SupervisionEvent) -> bool,
    ) -> SupervisionEvent {
        let mut seen = Vec::new();
        loop {
            let e = tokio::time::timeout(Duration::from_secs(10), self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what} within 10 s; saw {seen:?}"))
                .expect("event channel closed");
            if pred(&e) {
                return e;
            }
            seen.push(e);
        }
    }

    /// Events already delivered, without waiting.
    pub fn drain(&mut self) -> Vec<SupervisionEvent> {
        let mut out = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            out.push(e);
        }
        out
    }

    pub async fn children(&self) -> Vec<ChildInfo> {
        self.root
            .call(|reply| SupervisorMsg::WhichChildren { reply }, None)
            .await
            .expect("root answers")
            .expect("root answers")
    }

    /// The probe `name` as a typed ref.
    pub async fn probe(&self, name: &str) -> ActorRef<ProbeMsg> {
        let cell = self
            .children()
            .await
            .into_iter()
            .find(|c| c.name == name)
            .and_then(|c| c.cell)
            .unwrap_or_else(|| panic!("no running child {name}"));
        cell.into()
    }

    /// Shuts the tree down and fails the test if any probe is still running.
    pub async fn finish(mut self) {
        self.finished = true;
        if !matches!(self.root.get_status(), ActorStatus::Stopped) {
            let _ = self
                .root
                .call(
                    |reply| SupervisorMsg::Shutdown { reply },
                    Some(Duration::from_secs(30)),
                )
                .await;
        }
        if let Some(h) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), h).await;
        }
        let running = self.log.running();
        assert!(
            running.is_empty(),
            "the test left actors running: {running:?}"
        );
    }
}

impl Drop for TestTree {
    fn drop(&mut self) {
        if self.finished || std::thread::panicking() {
            return;
        }
        let running = self.log.running();
        let root_alive = !matches!(self.root.get_status(), ActorStatus::Stopped);
        if root_alive || !running.is_empty() {
            self.root.kill();
            panic!(
                "TestTree dropped without finish(): the test left actors running (root alive: {root_alive}, probes: {running:?})"
            );
        }
    }
}
