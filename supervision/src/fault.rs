//! Fault injection: make any supervised actor panic or fail at a chosen message, or kill it
//! by name, to test what survives.
//!
//! A [`FaultHandle`] belongs to one tree (tests run in parallel, so nothing is global).
//! An actor opts in by being spawned inside [`Injectable`], which has the same message,
//! state and argument types and checks the handle before each message (one atomic load when
//! nothing is armed). Supervisors register every child's cell under its name, so
//! [`FaultHandle::kill`] reaches any child.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};

/// What to do to an actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Panic while handling its `nth` message from now (1 = the next one).
    PanicAt { nth: u64 },
    /// Return an error from its `nth` message from now.
    ErrorAt { nth: u64 },
}

impl std::str::FromStr for Fault {
    type Err = String;
    /// `panic@3` or `error@1`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, n) = s
            .split_once('@')
            .ok_or_else(|| format!("{s:?}: expected panic@N or error@N"))?;
        let nth: u64 = n
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("{s:?}: N must be a number >= 1"))?;
        match kind {
            "panic" => Ok(Self::PanicAt { nth }),
            "error" => Ok(Self::ErrorAt { nth }),
            _ => Err(format!("{s:?}: expected panic@N or error@N")),
        }
    }
}

#[derive(Default)]
struct Inner {
    any_armed: AtomicBool,
    /// name -> (fault, messages seen since armed)
    armed: Mutex<HashMap<String, (Fault, u64)>>,
    cells: Mutex<HashMap<String, ActorCell>>,
}

/// Cheap to clone; shared by one supervision tree.
#[derive(Clone, Default)]
pub struct FaultHandle(Arc<Inner>);

impl std::fmt::Debug for FaultHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FaultHandle")
    }
}

/// What `Injectable` must do with the current message.
enum Verdict {
    Pass,
    Panic,
    Error,
}

impl FaultHandle {
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms `fault` for the actor named `name`; it fires once.
    pub fn arm(&self, name: &str, fault: Fault) {
        self.0
            .armed
            .lock()
            .expect("fault registry")
            .insert(name.to_owned(), (fault, 0));
        self.0.any_armed.store(true, Ordering::Release);
    }

    /// Whether a fault is still armed for `name` (it disarms once it fires).
    pub fn is_armed(&self, name: &str) -> bool {
        self.0
            .armed
            .lock()
            .expect("fault registry")
            .contains_key(name)
    }

    /// Kills the child registered under `name`; `false` when none is running.
    pub fn kill(&self, name: &str) -> bool {
        let cell = self
            .0
            .cells
            .lock()
            .expect("fault registry")
            .get(name)
            .cloned();
        match cell {
            Some(c) => {
                c.kill();
                true
            }
            None => false,
        }
    }

    /// Called by supervisors when a child starts.
    pub fn register(&self, name: &str, cell: ActorCell) {
        self.0
            .cells
            .lock()
            .expect("fault registry")
            .insert(name.to_owned(), cell);
    }

    fn verdict(&self, name: &str) -> Verdict {
        if !self.0.any_armed.load(Ordering::Acquire) {
            return Verdict::Pass;
        }
        let mut armed = self.0.armed.lock().expect("fault registry");
        let Some((fault, seen)) = armed.get_mut(name) else {
            return Verdict::Pass;
        };
        *seen += 1;
        let (nth, verdict) = match *fault {
            Fault::PanicAt { nth } => (nth, Verdict::Panic),
            Fault::ErrorAt { nth } => (nth, Verdict::Error),
        };
        if *seen < nth {
            return Verdict::Pass;
        }
        armed.remove(name);
        if armed.is_empty() {
            self.0.any_armed.store(false, Ordering::Release);
        }
        verdict
    }
}

/// Wraps any actor so faults can be injected into it by name.
pub struct Injectable<A> {
    pub inner: A,
    pub name: String,
    pub faults: FaultHandle,
}

impl<A: Actor> Actor for Injectable<A> {
    type Msg = A::Msg;
    type State = A::State;
    type Arguments = A::Arguments;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        self.inner.pre_start(myself, args).await
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        self.inner.post_start(myself, state).await
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        self.inner.post_stop(myself, state).await
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match self.faults.verdict(&self.name) {
            Verdict::Pass => self.inner.handle(myself, msg, state).await,
            Verdict::Panic => panic!("injected fault: {} panics", self.name),
            Verdict::Error => Err(format!("injected fault: {} fails", self.name).into()),
        }
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        self.inner.handle_supervisor_evt(myself, evt, state).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_from_the_command_line_form() {
        assert_eq!("panic@3".parse::<Fault>(), Ok(Fault::PanicAt { nth: 3 }));
        assert_eq!("error@1".parse::<Fault>(), Ok(Fault::ErrorAt { nth: 1 }));
        assert!("panic@0".parse::<Fault>().is_err());
        assert!("boom@1".parse::<Fault>().is_err());
        assert!("panic".parse::<Fault>().is_err());
    }

    #[test]
    fn a_fault_fires_once_at_its_message() {
        let h = FaultHandle::new();
        assert!(matches!(h.verdict("a"), Verdict::Pass));
        h.arm("a", Fault::ErrorAt { nth: 2 });
        assert!(
            matches!(h.verdict("b"), Verdict::Pass),
            "other actors are untouched"
        );
        assert!(matches!(h.verdict("a"), Verdict::Pass));
        assert!(matches!(h.verdict("a"), Verdict::Error));
        assert!(matches!(h.verdict("a"), Verdict::Pass), "fired once");
    }
}
