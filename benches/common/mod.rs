//! What the custom benches share: command-line numbers, percentiles, the process's RSS
//! and an agent runtime whose only model is the local mock LLM.

#![allow(dead_code)] // each bench uses its own subset

use std::sync::Arc;
use std::time::Duration;

use pincer_actors::agent::config::{AgentSpec, ExecPolicy, ModelRef, ModelSpec, ProviderSpec};
use pincer_actors::agent::failover::Cooldowns;
use pincer_actors::agent::model::Api;
use pincer_actors::agent::run::{AgentRuntime, Approvals};
use pincer_actors::gateway::Metrics;
use pincer_mockllm::{MockApi, MockLlm};

/// The daemon's allocator (src/main.rs), so the figures are the daemon's.
#[cfg(unix)]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The number after `name` on the command line, or `default`.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident memory of this process, KiB.
pub fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

/// The `p` quantile of sorted durations.
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Prints p50, p99 and max of `v`; returns (p50, p99).
pub fn show(name: &str, mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let (p50, p99) = (pct(&v, 0.5), pct(&v, 0.99));
    println!(
        "{name:<44} n={:<6} p50 {:>9.3} ms  p99 {:>9.3} ms  max {:>9.3} ms",
        v.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        v.last().unwrap().as_secs_f64() * 1e3
    );
    (p50, p99)
}

/// An agent `id` whose model (when `with_model`) is the mock's `mock-model`.
pub fn mock_runtime(
    llm: &MockLlm,
    id: &str,
    workspace: &std::path::Path,
    with_model: bool,
    tweak: impl FnOnce(&mut AgentSpec),
) -> AgentRuntime {
    let mut spec = AgentSpec::new(id, workspace);
    if with_model {
        spec.models = vec![ModelRef::parse("mock/mock-model").unwrap()];
    }
    tweak(&mut spec);
    let provider = ProviderSpec {
        id: "mock".into(),
        api: Api::OpenAiCompletions,
        base_url: llm.base_url(MockApi::OpenAi),
        keys: vec!["k".into()],
        headers: Vec::new(),
        models: vec![ModelSpec::with_id("mock-model")],
        source: "bench".into(),
    };
    AgentRuntime::new(
        spec,
        [("mock".to_owned(), provider)].into(),
        ExecPolicy::default(),
        Arc::new(Cooldowns::new(None)),
        Arc::new(Approvals::new(Arc::new(|_: &str, _| {}))),
        Metrics::new(),
    )
}
