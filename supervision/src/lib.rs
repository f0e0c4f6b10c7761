//! Pincer's generic supervisor on ractor, in Erlang/OTP's vocabulary. No domain code.
//!
//! ```text
//! root (one_for_one, 5 restarts / 10 s)
//! ├── config-watcher   permanent
//! ├── gateway          permanent, backoff 100 ms .. 30 s
//! └── channels         a nested supervisor (one_for_one)
//!       ├── telegram:main   permanent
//!       └── sms:main        transient
//! ```
//!
//! - Strategies: [`Strategy::OneForOne`], [`Strategy::OneForAll`], [`Strategy::RestForOne`].
//! - Restart kinds: [`Restart::Permanent`], [`Restart::Transient`], [`Restart::Temporary`].
//! - Intensity: more than `max_restarts` within `within` stops every child (reverse order)
//!   and fails the supervisor, so its own parent sees a failure (escalation).
//! - Backoff: exponential with jitter per child, reset after a stable period;
//!   [`Backoff::none`] restarts at once.
//! - Children start in order, each awaited; they stop in reverse order, each given its
//!   shutdown timeout before it is killed.
//! - Dynamic children: [`SupervisorMsg::StartChild`] (e.g. one temporary actor per client).
//! - Observation: every [`SupervisionEvent`] goes to the tree's [`EventSink`].
//! - Fault injection: [`fault::FaultHandle`] and [`fault::Injectable`].
//! - Tests: [`testkit`].
//!
//! ```no_run
//! use pincer_supervision::{ChildSpec, EventSink, Strategy, Supervisor, SupervisorSpec, fault::FaultHandle};
//! # struct Worker;
//! # impl ractor::Actor for Worker { type Msg = (); type State = (); type Arguments = ();
//! #   async fn pre_start(&self, _: ractor::ActorRef<()>, _: ()) -> Result<(), ractor::ActorProcessingErr> { Ok(()) } }
//! # async fn demo() {
//! let spec = SupervisorSpec::new("root", Strategy::OneForOne).child(ChildSpec::new("worker", "worker", |ctx| async move {
//!     ractor::Actor::spawn_linked(None, Worker, (), ctx.supervisor).await.map(|(r, _)| r.get_cell())
//! }));
//! let (events, _rx) = EventSink::channel();
//! let (root, _handle) = Supervisor::spawn(spec, FaultHandle::new(), events).await.unwrap();
//! # }
//! ```

pub mod backoff;
pub mod events;
pub mod fault;
pub mod intensity;
pub mod spec;
pub mod supervisor;
pub mod testkit;

pub use backoff::Backoff;
pub use events::{EventSink, ExitReason, SupervisionEvent};
pub use intensity::Intensity;
pub use spec::{ChildContext, ChildSpec, Restart, Strategy, SupervisorSpec};
pub use supervisor::{ChildInfo, Supervisor, SupervisorError, SupervisorMsg};
