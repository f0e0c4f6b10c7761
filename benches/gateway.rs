//! Micro-benchmarks of the control plane's hot path.
//!
//! `cargo bench --bench gateway`: frame decoding (JSON and MessagePack) and one `health`
//! round trip over a real loopback WebSocket to an in-process gateway.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::{SinkExt, StreamExt};
use pincer::client::{CallOptions, Session};
use pincer_actors::gateway::{
    AuthPolicy, GatewayActor, GatewayArgs, GatewayInfo, GatewaySettings, MethodRegistry, Metrics,
    methods,
};
use pincer_actors::protocol::{ConnectAuth, Encoding, RequestFrame, decode_request};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn decode(c: &mut Criterion) {
    let json_frame = br#"{"type":"req","id":"42","method":"health","params":{"probe":true}}"#;
    let msgpack_frame = rmp_serde::to_vec_named(&RequestFrame::new(
        "42",
        "health",
        Some(json!({"probe": true})),
    ))
    .unwrap();
    c.bench_function("decode_request/json", |b| {
        b.iter(|| decode_request(Encoding::Json, black_box(json_frame)).unwrap())
    });
    c.bench_function("decode_request/msgpack", |b| {
        b.iter(|| decode_request(Encoding::MsgPack, black_box(&msgpack_frame)).unwrap())
    });
}

fn round_trip(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut ws = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let info = GatewayInfo::default();
        let mut registry = MethodRegistry::new();
        methods::register(&mut registry, &info, methods::default_health(info.clone()));
        let args = GatewayArgs {
            listener: listener.into(),
            settings: GatewaySettings::default(),
            info,
            auth: AuthPolicy::Token("bench".into()),
            registry: Arc::new(registry),
            metrics: Metrics::new(),
            health: None,
            routes: None,
        };
        let (gateway, _handle) = GatewayActor::start(args, None).await.unwrap();
        std::mem::forget(gateway);
        let opts = CallOptions {
            url: format!("ws://{addr}/"),
            auth: ConnectAuth {
                token: Some("bench".into()),
                ..Default::default()
            },
            timeout: std::time::Duration::from_secs(10),
            scopes: None,
        };
        Session::connect(&opts).await.unwrap().into_inner()
    });
    let req = Message::Text(r#"{"type":"req","id":"h","method":"health"}"#.into());
    c.bench_function("health_round_trip/one_connection", |b| {
        b.iter(|| {
            rt.block_on(async {
                ws.send(req.clone()).await.unwrap();
                loop {
                    if let Some(Ok(Message::Text(t))) = ws.next().await {
                        let v: Value = serde_json::from_str(&t).unwrap();
                        if v["type"] == "res" {
                            return v;
                        }
                    }
                }
            })
        })
    });
}

criterion_group!(benches, decode, round_trip);
criterion_main!(benches);
