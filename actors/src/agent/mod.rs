//! Agents: the AgentActor (admission, configuration), the model-call types, provider clients, tools, prompt assembly, failover and
//! the ReAct turn.

pub mod actor;
pub mod config;
pub mod failover;
pub mod methods;
pub mod model;
pub mod prompt;
pub mod providers;
pub mod run;
pub mod tools;
pub mod workspace;
