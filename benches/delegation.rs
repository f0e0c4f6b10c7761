//! Delegation round trip for docs/PERFORMANCE.md (issue 6): a `sessions_spawn` from a
//! principal session to a specialist, through the real Sessions actor, SessionActors,
//! RunActors and the store, against the local mock LLM answering at once.
//!
//! One round trip: the spawn call (the task committed durably to the child's inbox) ->
//! the child session starts and runs its turn (one model call) -> its turn and the
//! announcement commit together -> the principal's session takes the announcement and
//! starts its turn on it (its `lifecycle` start event): the result is back. The child's
//! model time (measured in its run) is taken off; what remains is the gateway's overhead:
//! actor messages, a session spawn, two turn starts and two durable commits. The
//! principal's own turn on the result (no model call here: its agent has none) and its
//! commit are reported too, as "result answered".
//!
//! `cargo bench --bench delegation -- [--trips N]`
//! Set `PINCER_BENCH_DIR` to put the store elsewhere (default: a temp dir on /tmp); a
//! tmpfs directory (`/dev/shm`) shows the overhead without the disk's fsync.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{arg, mock_runtime, show};
use pincer_actors::agent::actor::AgentDirectory;
use pincer_actors::agent::run::EventSink;
use pincer_actors::agent::tools::sessions::{Caller, SessionTools};
use pincer_actors::session::delegation::Delegator;
use pincer_actors::session::{SessionsActor, SessionsArgs, SessionsMsg};
use pincer_actors::store::Store;
use pincer_mockllm::MockLlm;
use pincer_supervision::fault::FaultHandle;
use ractor::Actor;
use ractor::rpc::CallResult;
use serde_json::{Value, json};
use tokio::sync::mpsc;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let trips: usize = arg("--trips", 1000);
        let base = std::env::var_os("PINCER_BENCH_DIR").map(std::path::PathBuf::from);
        let dir = match &base {
            Some(b) => tempfile::tempdir_in(b).unwrap(),
            None => tempfile::tempdir().unwrap(),
        };
        println!("store in {}", dir.path().display());
        let llm = MockLlm::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        // The mock shares the cores: it keeps no copy of each request.
        llm.set_recording(false);
        let store = Store::open(&dir.path().join("state.redb")).unwrap();
        let spawner = |s: &mut pincer_actors::agent::config::AgentSpec| {
            s.history_turns = 4;
            s.subagents.allow_agents = vec!["*".into()];
            // This bench calls its own Delegator, which never hears the results land.
            s.subagents.max_concurrent = usize::MAX;
        };
        let agents = AgentDirectory::new([
            Arc::new(mock_runtime(
                &llm,
                "main",
                &dir.path().join("main"),
                false,
                spawner,
            )),
            Arc::new(mock_runtime(
                &llm,
                "coder",
                &dir.path().join("coder"),
                true,
                spawner,
            )),
        ]);
        pincer_actors::agent::actor::spawn_all(&agents).await;
        // The principal's turn on the result starts (lifecycle start: the result is back)
        // and ends ("final" or "error" chat event: the result is answered).
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(bool, Instant)>();
        let principal = "agent:main:main";
        let done = Mutex::new(done_tx);
        let events: EventSink = Arc::new(move |e: &str, p: Value| {
            if p["sessionKey"] != principal {
                return;
            }
            let start = e == "agent" && p["stream"] == "lifecycle" && p["data"]["phase"] == "start";
            let end = e == "chat" && matches!(p["state"].as_str(), Some("final" | "error"));
            if start || end {
                let _ = done.lock().unwrap().send((end, Instant::now()));
            }
        });
        let (sessions, _h) = Actor::spawn(
            None,
            SessionsActor,
            SessionsArgs {
                store: store.clone(),
                agents: agents.clone(),
                default_agent: "main".into(),
                main_key: "main".into(),
                events,
                faults: FaultHandle::new(),
                collect: false,
                reset: Default::default(),
                deliver: None,
            },
        )
        .await
        .unwrap();
        let delegator = Delegator::new(
            sessions.clone(),
            store.clone(),
            agents.clone(),
            "main".into(),
            "main".into(),
        );
        let caller = Caller {
            session_key: principal.into(),
            agent_id: "main".into(),
            run_id: "bench".into(),
            origin: None,
            depth: 0,
        };
        let mut round_trips = Vec::with_capacity(trips);
        let mut overheads = Vec::with_capacity(trips);
        let mut answered = Vec::with_capacity(trips);
        let mut answered_overheads = Vec::with_capacity(trips);
        let mut spawn_calls = Vec::with_capacity(trips);
        for i in 0..trips + 50 {
            let t0 = Instant::now();
            let r = delegator
                .call(
                    caller.clone(),
                    "sessions_spawn",
                    json!({"task": "hello", "agentId": "coder"}),
                )
                .await
                .expect("spawn accepted");
            let t_spawned = t0.elapsed();
            let child = r["childSessionKey"].as_str().unwrap().to_owned();
            let run_id = r["runId"].as_str().unwrap().to_owned();
            let (was_end, back) = done_rx.recv().await.unwrap();
            assert!(!was_end, "the principal's turn starts before it ends");
            let (was_end, end) = done_rx.recv().await.unwrap();
            assert!(was_end, "the principal's turn ends");
            let summary = match sessions
                .call(
                    |reply| SessionsMsg::Wait {
                        key: child,
                        run_id,
                        reply,
                    },
                    Some(Duration::from_secs(30)),
                )
                .await
                .unwrap()
            {
                CallResult::Success(s) => s,
                _ => panic!("no answer"),
            };
            assert_eq!(summary.status, "ok", "{summary:?}");
            let trip = back - t0;
            let model = Duration::from_secs_f64(summary.model_ms / 1e3);
            if i >= 50 {
                round_trips.push(trip);
                overheads.push(trip.saturating_sub(model));
                answered.push(end - t0);
                answered_overheads.push((end - t0).saturating_sub(model));
                spawn_calls.push(t_spawned);
            }
        }
        println!("{trips} delegation round trips (after 50 warm-up ones):");
        show("sessions_spawn call (accepted)", spawn_calls);
        show(
            "round trip (spawn -> result back in the principal)",
            round_trips,
        );
        show("overhead beyond the child's model time", overheads);
        show(
            "spawn -> result answered (principal's turn recorded)",
            answered,
        );
        show("  of which not the child's model time", answered_overheads);
        sessions.stop(None);
    });
}
