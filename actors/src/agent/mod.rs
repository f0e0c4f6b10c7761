//! Agents: the model-call types, provider clients, tools, and the actors that run turns.

pub mod model;
pub mod providers;
pub mod tools;
