//! Channel figures for docs/PERFORMANCE.md (issue 5): messages routed per second through
//! the Telegram adapter (teloxide long polling against the local fake Bot API), and the
//! inbound-to-routed latency of one message at a time.
//!
//! Routed = durable in its session's inbox (seen mark in the same commit, shared fsync)
//! and acknowledged to the platform; every routed message then runs a turn against the
//! local mock LLM at zero delay and its reply goes out through the outbox, which shares
//! the machine with the inbound path while it is measured.
//!
//! `cargo bench --bench channels -- [--messages N] [--chats N] [--latency N] [--concurrent N]`
//! (`--concurrent`: the agent's `maxConcurrent`, turns at once; 64 unless given, the
//! shipped default is 4).
//! Set `PINCER_BENCH_DIR` to put the store elsewhere (default: a temp dir on /tmp).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{arg, mock_runtime};
use pincer_actors::channels::actor::{ChannelActor, ChannelArgs, ChannelCtx, ChannelDirectory};
use pincer_actors::channels::config::accounts;
use pincer_actors::session::{SessionsActor, SessionsArgs};
use pincer_actors::store::Store;
use pincer_fakes::telegram::FakeTelegram;
use pincer_mockllm::MockLlm;
use pincer_supervision::fault::FaultHandle;
use ractor::Actor;
use serde_json::json;

fn routed(dir: &ChannelDirectory) -> u64 {
    dir.statuses().iter().map(|s| s.routed).sum()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let messages: usize = arg("--messages", 20_000);
        let chats: usize = arg("--chats", 500usize).max(1);
        let latency_n: usize = arg("--latency", 200);
        let concurrent: usize = arg("--concurrent", 64usize).max(1);
        let base = std::env::var_os("PINCER_BENCH_DIR").map(std::path::PathBuf::from);
        let dir = match &base {
            Some(b) => tempfile::tempdir_in(b).unwrap(),
            None => tempfile::tempdir().unwrap(),
        };
        println!(
            "store in {}; {concurrent} turns at once (maxConcurrent)",
            dir.path().display()
        );
        let llm = MockLlm::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        // The mock shares the cores: it keeps no copy of each request.
        llm.set_recording(false);
        let tg = FakeTelegram::start("123456:BENCH-token").await;
        let store = Store::open(&dir.path().join("state.redb")).unwrap();
        let agents =
            pincer_actors::agent::actor::AgentDirectory::new([Arc::new(mock_runtime(&llm, "main", dir.path(), true, |s| {
                s.max_concurrent = concurrent
            }))]);
        pincer_actors::agent::actor::spawn_all(&agents).await;
        let directory = ChannelDirectory::new();
        let (sessions, _) = Actor::spawn(
            None,
            SessionsActor,
            SessionsArgs {
                store: store.clone(),
                agents,
                default_agent: "main".into(),
                main_key: "main".into(),
                events: Arc::new(|_: &str, _| {}),
                faults: FaultHandle::new(),
                collect: true,
                reset: Default::default(),
                deliver: Some({
                    let d = directory.clone();
                    Arc::new(move |id, o: &pincer_actors::channels::ChannelOrigin| d.deliver(id, o))
                }),
            },
        )
        .await
        .unwrap();
        let ctx = Arc::new(ChannelCtx {
            store: store.clone(),
            sessions: Arc::new(move || Some(sessions.clone())),
            bindings: Vec::new(),
            default_agent: "main".into(),
            main_key: "main".into(),
            dm_scope: pincer_actors::session::keys::DmScope::PerPeer,
            directory: directory.clone(),
            retry_base: Duration::from_secs(1),
            max_attempts: 8,
            approvals: None,
        });
        let cfg = accounts(Some(&json!({"telegram": {
            "botToken": tg.token(), "apiBaseUrl": tg.api_url(),
            "dmPolicy": "open", "pollTimeoutSeconds": 1,
        }})))
        .unwrap()
        .remove(0);
        let adapter: Arc<dyn pincer_actors::channels::actor::Adapter> = Arc::new(
            pincer_actors::channels::telegram::Telegram::new(&cfg, store.clone()).unwrap(),
        );
        let (_channel, _) = Actor::spawn(
            None,
            ChannelActor,
            ChannelArgs {
                cfg,
                ctx,
                adapter,
            },
        )
        .await
        .unwrap();

        // 1. Throughput: every update queued at once, then polled in batches of 100.
        for i in 0..messages {
            let chat = 1000 + (i % chats) as i64;
            tg.user_message(chat, chat, "hello");
        }
        let t = Instant::now();
        let mut last = 0;
        while routed(&directory) < messages as u64 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let now = routed(&directory);
            if t.elapsed() > Duration::from_secs(300) {
                panic!("only {now} of {messages} routed after 300 s");
            }
            last = now;
        }
        let _ = last;
        let took = t.elapsed();
        println!(
            "-- 1. routed through the Telegram adapter: {messages} messages from {chats} chats in {:.3} s = {:.0} messages/s",
            took.as_secs_f64(),
            messages as f64 / took.as_secs_f64()
        );
        // Let the turns and replies of phase 1 finish before timing single messages. With
        // session.queueMode collect, messages that arrive while their chat's turn runs are
        // answered together: fewer replies than messages. Done = the outbox has no
        // pending row left.
        let pending = || {
            store
                .outbox::<pincer_actors::channels::OutboxRow>(0, usize::MAX)
                .unwrap()
                .iter()
                .filter(|(_, r)| r.status == pincer_actors::channels::DeliveryStatus::Pending)
                .count()
        };
        while pending() > 0 && t.elapsed() < Duration::from_secs(300) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        println!(
            "   replies sent by {:.3} s after the first update: {} (for {messages} messages; {} pending)",
            t.elapsed().as_secs_f64(),
            tg.sent().len(),
            pending()
        );

        // 2. Latency: one message at a time, from its update being queued to routed (includes
        // the long poll waking up in the fake and the shared fsync).
        let mut lat = Vec::new();
        for i in 0..latency_n {
            let before = routed(&directory);
            let chat = 900_000 + i as i64;
            let t = Instant::now();
            tg.user_message(chat, chat, "hi");
            while routed(&directory) == before {
                tokio::task::yield_now().await;
            }
            lat.push(t.elapsed());
        }
        lat.sort();
        let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
        println!(
            "-- 2. inbound to routed, one at a time: n={} p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            lat.len(),
            p(0.5),
            p(0.99),
            p(1.0)
        );
    });
}
