//! Scheduling: what starts agent turns without a chat message.
//!
//! ```text
//! Scheduler        cron jobs (at | every | cron), their run history, missed runs
//! Heartbeats       every `heartbeat.every` per agent, with the cost guard
//! FileTriggers     watched folders' changes become agent turns (debounced)
//! ```

pub mod cron;
mod cron_runner;
mod cron_time;
pub mod heartbeat;
pub mod heartbeat_config;
pub mod heartbeat_methods;
mod heartbeat_setup;
mod heartbeat_turn;
pub mod methods;
pub mod scheduler;
pub mod watch;
pub mod watch_config;
pub mod watch_setup;
