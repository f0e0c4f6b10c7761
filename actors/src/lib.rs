//! Pincer's domain actors and the pure logic beside them.
//!
//! - [`protocol`]: wire frames of the OpenClaw-compatible control plane (no I/O).
//! - [`gateway`]: the listener, one actor per client, the method registry.

pub mod gateway;
pub mod protocol;
