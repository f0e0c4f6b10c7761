//! Supervision events, for tests, metrics (restarts by kind) and logs.

use std::time::Duration;

use tokio::sync::mpsc;

/// How a child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// Stopped on its own or on request.
    Normal,
    /// Panicked or returned an error from a handler.
    Failed(String),
    /// Killed (by a shutdown timeout or by name).
    Killed,
}

impl ExitReason {
    pub fn is_abnormal(&self) -> bool {
        !matches!(self, Self::Normal)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisionEvent {
    ChildStarted {
        supervisor: String,
        child: String,
        kind: &'static str,
    },
    ChildExited {
        supervisor: String,
        child: String,
        kind: &'static str,
        reason: ExitReason,
    },
    RestartScheduled {
        supervisor: String,
        child: String,
        kind: &'static str,
        attempt: u32,
        delay: Duration,
    },
    ChildRestarted {
        supervisor: String,
        child: String,
        kind: &'static str,
    },
    /// Restarts went past the intensity: the supervisor stops and fails to its parent.
    IntensityExceeded { supervisor: String },
    /// Every child stopped (shutdown or escalation).
    SupervisorStopped { supervisor: String },
}

/// Where events go: nowhere, or an unbounded channel an observer drains.
#[derive(Clone, Default, Debug)]
pub struct EventSink(Option<mpsc::UnboundedSender<SupervisionEvent>>);

impl EventSink {
    pub fn none() -> Self {
        Self(None)
    }

    /// A sink and the receiver that sees every event of the tree.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<SupervisionEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(Some(tx)), rx)
    }

    pub fn emit(&self, e: SupervisionEvent) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(e);
        }
    }
}
