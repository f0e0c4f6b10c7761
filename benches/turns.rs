//! Turn and session figures for docs/PERFORMANCE.md (issue 3):
//!
//! 1. gateway overhead per turn: a turn through the Sessions actor, a SessionActor and a
//!    RunActor against the local mock LLM, minus the same model call made directly;
//! 2. memory per live session, with 10,000 sessions resumed;
//! 3. pause/resume of a session whose transcript holds 200 turns.
//!
//! `cargo bench --bench turns -- [--turns N] [--sessions N] [--resumes N]`
//! Set `PINCER_BENCH_DIR` to put the store elsewhere (default: a temp dir on /tmp).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{arg, mock_runtime, rss_kib, show};
use pincer_actors::agent::model::{Api, ChatRequest, Endpoint, Message, Thinking};
use pincer_actors::agent::providers;
use pincer_actors::session::{Entry, SessionMeta, SessionsActor, SessionsArgs, SessionsMsg};
use pincer_actors::store::Store;
use pincer_mockllm::{MockApi, MockLlm};
use pincer_supervision::fault::FaultHandle;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};

async fn call<T: Send + 'static>(
    s: &ActorRef<SessionsMsg>,
    f: impl FnOnce(ractor::RpcReplyPort<T>) -> SessionsMsg,
) -> T {
    match s.call(f, Some(Duration::from_secs(30))).await.unwrap() {
        CallResult::Success(v) => v,
        _ => panic!("no answer"),
    }
}

/// One turn; returns the time its run spent in the model call.
async fn one_turn(s: &ActorRef<SessionsMsg>, key: &str) -> Duration {
    let (run_id, _) = call(s, |reply| SessionsMsg::Send {
        key: key.to_owned(),
        text: "hello".into(),
        thinking: None,
        stream: None,
        compact: false,
        mode: None,
        origin: None,
        opts: Default::default(),
        reply,
    })
    .await
    .unwrap();
    let summary = call(s, |reply| SessionsMsg::Wait {
        key: key.to_owned(),
        run_id,
        reply,
    })
    .await;
    assert_eq!(summary.status, "ok", "{summary:?}");
    Duration::from_secs_f64(summary.model_ms / 1e3)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let turns: usize = arg("--turns", 2000);
        let n_sessions: usize = arg("--sessions", 10_000);
        let resumes: usize = arg("--resumes", 200);
        let base = std::env::var_os("PINCER_BENCH_DIR").map(std::path::PathBuf::from);
        let dir = match &base {
            Some(b) => tempfile::tempdir_in(b).unwrap(),
            None => tempfile::tempdir().unwrap(),
        };
        println!("store in {}", dir.path().display());
        let llm = MockLlm::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        // The mock shares the cores: it keeps no copy of each request.
        llm.set_recording(false);
        let store = Store::open(&dir.path().join("state.redb")).unwrap();
        let agent = Arc::new(mock_runtime(&llm, "main", dir.path(), true, |s| s.history_turns = 4));
        let agents = pincer_actors::agent::actor::AgentDirectory::new([agent.clone()]);
        pincer_actors::agent::actor::spawn_all(&agents).await;
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
                deliver: None,
            },
        )
        .await
        .unwrap();

        // 1. Overhead per turn.
        let ep = Endpoint {
            api: Api::OpenAiCompletions,
            base_url: llm.base_url(MockApi::OpenAi),
            api_key: Some("k".into()),
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
        };
        let req = ChatRequest {
            model: "mock-model".into(),
            system: "s".into(),
            messages: vec![Message::User { content: "hello".into() }],
            tools: agent.tool_specs().to_vec().into(),
            thinking: Thinking::Off,
            max_tokens: None,
        };
        for _ in 0..50 {
            let s = providers::stream_chat(agent.http(), &ep, &req).await.unwrap();
            providers::collect(s).await.unwrap();
            one_turn(&sessions, "agent:main:warmup").await;
        }
        let mut direct = Vec::with_capacity(turns);
        let mut full = Vec::with_capacity(turns);
        let mut own = Vec::with_capacity(turns);
        for i in 0..turns {
            let t = Instant::now();
            let s = providers::stream_chat(agent.http(), &ep, &req).await.unwrap();
            providers::collect(s).await.unwrap();
            direct.push(t.elapsed());
            let key = format!("agent:main:bench-{}", i % 50);
            let t = Instant::now();
            let model = one_turn(&sessions, &key).await;
            let whole = t.elapsed();
            full.push(whole);
            own.push(whole.saturating_sub(model));
        }
        println!("-- 1. overhead per turn (mock LLM on loopback, durable store commits)");
        let (d50, d99) = show("model call alone (stream + parse)", direct);
        let (f50, f99) = show("whole turn (send -> inbox -> run -> record)", full);
        println!(
            "overhead as a difference of percentiles: p50 {:.3} ms, p99 {:.3} ms",
            (f50.saturating_sub(d50)).as_secs_f64() * 1e3,
            (f99.saturating_sub(d99)).as_secs_f64() * 1e3
        );
        // Per turn: the whole turn minus the time that same run spent in its model call.
        show("overhead per turn (whole turn - its own model time)", own);

        // 2. Memory per live session.
        let before = rss_kib();
        let t = Instant::now();
        for i in 0..n_sessions {
            call(&sessions, |reply| SessionsMsg::Resume {
                key: format!("agent:main:live-{i}"),
                reply,
            })
            .await
            .unwrap();
        }
        let spent = t.elapsed();
        let after = rss_kib();
        println!("-- 2. live sessions");
        println!(
            "{n_sessions} sessions live: RSS {before} KiB -> {after} KiB, {:.1} KiB each; started in {:.0} ms ({:.1} µs each)",
            (after.saturating_sub(before)) as f64 / n_sessions as f64,
            spent.as_secs_f64() * 1e3,
            spent.as_secs_f64() * 1e6 / n_sessions as f64
        );

        // 3. Pause/resume of a session with 200 turns.
        let key = "agent:main:long";
        let now = pincer_actors::gateway::now_ms();
        let mut meta = SessionMeta {
            key: key.into(),
            agent_id: "main".into(),
            created_at: now,
            updated_at: now,
            ..Default::default()
        };
        let entries: Vec<Entry> = (0..200)
            .flat_map(|i| {
                [("user", format!("question {i}: what about the weather tomorrow?")),
                 ("assistant", format!("answer {i}: {}", "it will be mild and dry. ".repeat(8)))]
            })
            .map(|(role, content)| Entry::new(role, content, now, None))
            .collect();
        meta.turns = 200;
        store.append_turn(key, &meta, &entries).unwrap();
        let mut resume = Vec::with_capacity(resumes);
        let mut pause = Vec::with_capacity(resumes);
        for _ in 0..resumes {
            let t = Instant::now();
            call(&sessions, |reply| SessionsMsg::Resume { key: key.into(), reply })
                .await
                .unwrap();
            resume.push(t.elapsed());
            let t = Instant::now();
            assert!(call(&sessions, |reply| SessionsMsg::Pause { key: key.into(), reply }).await);
            pause.push(t.elapsed());
        }
        println!("-- 3. a session with 200 turns (400 transcript rows)");
        show("resume (spawn + load history from redb)", resume);
        show("pause (stop; state already in the store)", pause);
        llm.shutdown().await;
    });
}
