//! Pincer's domain actors and the pure logic beside them.
//!
//! - [`protocol`]: wire frames of the OpenClaw-compatible control plane (no I/O).
//! - [`gateway`]: the listener, one actor per client, the method registry.
//! - [`config`]: `pincer.json`, validation, hot reload, the state directory.
//! - [`store`]: `state.redb`, schema version and migrations, the single-gateway lock.

pub mod agent;
pub mod audit;
pub mod channels;
pub mod config;
pub mod gateway;
pub mod hooks;
pub mod protocol;
pub mod sandbox;
pub mod schedule;
pub mod session;
pub mod store;
