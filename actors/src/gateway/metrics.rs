//! Gateway metrics in the Prometheus text format, served at `GET /metrics`.
//!
//! Each gateway owns its own recorder (nothing global), so several gateways in one
//! process (tests) keep separate figures.

use std::sync::Arc;

use metrics::{Counter, Gauge, Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use tokio::time::Instant;

const META: Metadata<'static> = Metadata::new("pincer", Level::INFO, Some(module_path!()));

/// Cheap to clone; every clone records into the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    started: Instant,
    uptime: Gauge,
    connections: Gauge,
    connections_total: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        recorder.describe_gauge(
            "pincer_uptime_seconds".into(),
            None,
            "Seconds since the gateway started".into(),
        );
        recorder.describe_gauge(
            "pincer_gateway_connections".into(),
            None,
            "WebSocket clients connected now".into(),
        );
        recorder.describe_counter(
            "pincer_gateway_connections_total".into(),
            None,
            "WebSocket clients accepted since start".into(),
        );
        recorder.describe_counter(
            "pincer_gateway_requests_total".into(),
            None,
            "RPC requests by method and outcome (ok, error, forbidden)".into(),
        );
        recorder.describe_counter(
            "pincer_actor_restarts_total".into(),
            None,
            "Supervised actor restarts by actor kind".into(),
        );
        let uptime = recorder.register_gauge(&Key::from_name("pincer_uptime_seconds"), &META);
        let connections =
            recorder.register_gauge(&Key::from_name("pincer_gateway_connections"), &META);
        let connections_total =
            recorder.register_counter(&Key::from_name("pincer_gateway_connections_total"), &META);
        // Make the restart family visible before the first restart.
        let _ = recorder.register_counter(&restart_key("none"), &META);
        Self {
            inner: Arc::new(Inner {
                recorder,
                handle,
                started: Instant::now(),
                uptime,
                connections,
                connections_total,
            }),
        }
    }

    pub fn connection_opened(&self) {
        self.inner.connections.increment(1.0);
        self.inner.connections_total.increment(1);
    }

    pub fn connection_closed(&self) {
        self.inner.connections.decrement(1.0);
    }

    /// Counts one request. `method` must be a registered name (or `unknown`/`invalid`) so
    /// a client cannot blow up the label set.
    pub fn request(&self, method: &str, outcome: &'static str) {
        let key = Key::from_parts(
            "pincer_gateway_requests_total",
            vec![
                Label::new("method", method.to_owned()),
                Label::new("outcome", outcome),
            ],
        );
        self.inner
            .recorder
            .register_counter(&key, &META)
            .increment(1);
    }

    /// Counts one failover step of a model call (layer: profile, thinking, model).
    pub fn model_failover(&self, layer: &str) {
        let key = Key::from_parts(
            "pincer_model_failovers_total",
            vec![Label::new("layer", layer.to_owned())],
        );
        self.inner
            .recorder
            .register_counter(&key, &META)
            .increment(1);
    }

    /// Counts one model call by provider and outcome (ok or the error class).
    pub fn model_call(&self, provider: &str, outcome: &str) {
        let key = Key::from_parts(
            "pincer_model_calls_total",
            vec![
                Label::new("provider", provider.to_owned()),
                Label::new("outcome", outcome.to_owned()),
            ],
        );
        self.inner
            .recorder
            .register_counter(&key, &META)
            .increment(1);
    }

    /// Adds tokens used (kind: input, output, cached).
    pub fn model_tokens(&self, kind: &str, n: u64) {
        let key = Key::from_parts(
            "pincer_model_tokens_total",
            vec![Label::new("kind", kind.to_owned())],
        );
        self.inner
            .recorder
            .register_counter(&key, &META)
            .increment(n);
    }

    /// Counts one restart of a supervised actor of this kind.
    pub fn actor_restart(&self, kind: &str) {
        self.inner
            .recorder
            .register_counter(&restart_key(kind), &META)
            .increment(1);
    }

    pub fn uptime_ms(&self) -> u64 {
        self.inner.started.elapsed().as_millis() as u64
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.inner
            .uptime
            .set(self.inner.started.elapsed().as_secs_f64());
        self.inner.handle.render()
    }
}

fn restart_key(kind: &str) -> Key {
    Key::from_parts(
        "pincer_actor_restarts_total",
        vec![Label::new("kind", kind.to_owned())],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_documented_families() {
        let m = Metrics::new();
        m.connection_opened();
        m.request("health", "ok");
        m.request("health", "ok");
        m.request("config.patch", "forbidden");
        m.actor_restart("channel");
        let text = m.render();
        for needle in [
            "pincer_uptime_seconds",
            "pincer_gateway_connections 1",
            "pincer_gateway_connections_total 1",
            "pincer_gateway_requests_total{method=\"health\",outcome=\"ok\"} 2",
            "pincer_gateway_requests_total{method=\"config.patch\",outcome=\"forbidden\"} 1",
            "pincer_actor_restarts_total{kind=\"channel\"} 1",
            "# HELP pincer_gateway_requests_total",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        let other = Metrics::new();
        assert!(
            other
                .render()
                .contains("pincer_gateway_connections_total 0"),
            "registries are per gateway"
        );
    }
}
