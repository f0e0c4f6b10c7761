//! Channels: the user's chat apps. Pure functions do the protocol-independent work
//! (formatting for each platform, chunking under its limits, routing to an agent).

pub mod chunk;
pub mod format;
pub mod routing;
