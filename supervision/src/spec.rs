//! How a supervisor and its children are described.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ractor::{ActorCell, SpawnErr};

use crate::backoff::Backoff;
use crate::events::EventSink;
use crate::fault::FaultHandle;
use crate::intensity::Intensity;

/// Which children restart when one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Only the failed child.
    OneForOne,
    /// Every child (all stopped in reverse order, then all started in order).
    OneForAll,
    /// The failed child and the children started after it.
    RestForOne,
}

/// When a child is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Always.
    Permanent,
    /// Only after an abnormal exit (panic, error, kill); a normal stop ends it.
    Transient,
    /// Never; it is forgotten when it exits.
    Temporary,
}

/// What a child's start function gets.
#[derive(Clone)]
pub struct ChildContext {
    /// Link the child to this (`Actor::spawn_linked(.., ctx.supervisor)`).
    pub supervisor: ActorCell,
    pub name: String,
    /// For [`crate::fault::Injectable`]: lets tests make this child fail on purpose.
    pub faults: FaultHandle,
    /// For nested supervisors: pass it on so the whole tree reports to one observer.
    pub events: EventSink,
}

pub type StartFuture = Pin<Box<dyn Future<Output = Result<ActorCell, SpawnErr>> + Send>>;
pub type StartFn = Arc<dyn Fn(ChildContext) -> StartFuture + Send + Sync>;

/// One child: how to start it and how to treat its exits.
#[derive(Clone)]
pub struct ChildSpec {
    pub name: String,
    /// Actor kind, for logs and metrics ("gateway", "channel", ...).
    pub kind: &'static str,
    pub restart: Restart,
    /// How long a graceful stop may take before the child is killed.
    pub shutdown: Duration,
    pub backoff: Backoff,
    pub start: StartFn,
}

impl ChildSpec {
    /// A permanent child with default backoff and a 5 s shutdown timeout.
    pub fn new<F, Fut>(name: impl Into<String>, kind: &'static str, start: F) -> Self
    where
        F: Fn(ChildContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ActorCell, SpawnErr>> + Send + 'static,
    {
        Self {
            name: name.into(),
            kind,
            restart: Restart::Permanent,
            shutdown: Duration::from_secs(5),
            backoff: Backoff::default(),
            start: Arc::new(move |ctx| Box::pin(start(ctx))),
        }
    }

    pub fn restart(mut self, r: Restart) -> Self {
        self.restart = r;
        self
    }

    pub fn shutdown(mut self, d: Duration) -> Self {
        self.shutdown = d;
        self
    }

    pub fn backoff(mut self, b: Backoff) -> Self {
        self.backoff = b;
        self
    }
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

/// A supervisor: its name, strategy, intensity and initial children (started in order).
#[derive(Clone, Debug)]
pub struct SupervisorSpec {
    pub name: String,
    pub strategy: Strategy,
    pub intensity: Intensity,
    pub children: Vec<ChildSpec>,
}

impl SupervisorSpec {
    pub fn new(name: impl Into<String>, strategy: Strategy) -> Self {
        Self {
            name: name.into(),
            strategy,
            intensity: Intensity::default(),
            children: Vec::new(),
        }
    }

    pub fn intensity(mut self, max_restarts: u32, within: Duration) -> Self {
        self.intensity = Intensity {
            max_restarts,
            within,
        };
        self
    }

    pub fn child(mut self, c: ChildSpec) -> Self {
        self.children.push(c);
        self
    }
}
