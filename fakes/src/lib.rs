//! Fake chat platforms on 127.0.0.1 for tests: each speaks its platform's real HTTP paths
//! and JSON shapes and injects faults on demand.

mod common;
mod conn;
pub mod discord;
pub mod slack;
pub mod telegram;
pub mod twilio;
