//! The `pincer` composition root: command line, config loading, telemetry, and the
//! supervision tree that runs the daemon. Domain actors live in `pincer-actors`, the
//! generic supervisor in `pincer-supervision`.

pub mod agent_cmd;
pub mod agents_cmd;
pub mod audit_cmd;
pub mod channels_cmd;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config_cmd;
pub mod cron_cmd;
pub mod daemon;
pub mod doctor;
pub mod message_cmd;
pub mod onboard;
pub mod reloader;
pub mod sandbox_cmd;
pub mod setup;
pub mod telemetry;
pub mod tree;
