//! Agent-to-agent delegation through the real Sessions actor, agents and tools, against the
//! mock LLM: a principal spawning two specialists in parallel (each with its own tool
//! policy), results announced with their correlation ids, a deadline expiry, crashes
//! injected in a specialist, announcements surviving a restart, `sessions_send` waiting
//! and ping-pong, and the audit log.
//!
//! Agents: `main` (model `p`, the principal), `coder` (model `a`, may exec) and `reader`
//! (model `b`, exec denied), `slow` (model `c`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use pincer_actors::agent;
use pincer_actors::agent::actor::AgentDirectory;
use pincer_actors::agent::config::{AgentSpec, ExecPolicy, ModelRef};
use pincer_actors::agent::failover::Cooldowns;
use pincer_actors::agent::run::{AgentRuntime, Approvals, EventSink};
use pincer_actors::audit::AuditFilter;
use pincer_actors::gateway::Metrics;
use pincer_actors::session::lifecycle::Phase;
use pincer_actors::session::{
    Entry, SessionMeta, SessionsActor, SessionsArgs, SessionsMsg, TurnOptions,
};
use pincer_actors::store::Store;
use pincer_mockllm::{Fault, MockLlm, Reply, Step};
use pincer_supervision::fault::{Fault as Crash, FaultHandle};
use ractor::{Actor, ActorRef};
use serde_json::{Value, json};

mod rig;
use rig::{mock_provider, send, sessions_args, turn, wait};

struct Rig {
    llm: MockLlm,
    store: Store,
    sessions: ActorRef<SessionsMsg>,
    handle: tokio::task::JoinHandle<()>,
    faults: FaultHandle,
    agents: AgentDirectory,
    dir: tempfile::TempDir,
}

fn agents(llm: &MockLlm, dir: &std::path::Path, tweak: &dyn Fn(&mut AgentSpec)) -> AgentDirectory {
    let sink: EventSink = Arc::new(|_: &str, _: Value| {});
    let runtimes = [
        ("main", "p"),
        ("coder", "a"),
        ("reader", "b"),
        ("slow", "c"),
    ]
    .map(|(id, model)| {
        let ws = dir.join(format!("ws-{id}"));
        std::fs::create_dir_all(&ws).unwrap();
        let mut spec = AgentSpec::new(id, ws);
        spec.models = vec![ModelRef::parse(&format!("mock/{model}")).unwrap()];
        spec.timeout = Duration::from_secs(30);
        spec.tool_profile = "full".into();
        if id == "main" {
            spec.subagents.allow_agents = vec!["coder".into(), "reader".into(), "slow".into()];
        }
        if id == "reader" {
            spec.tools_deny = vec!["exec".into(), "process".into()];
        }
        tweak(&mut spec);
        let mut rt = AgentRuntime::new(
            spec,
            BTreeMap::from([("mock".to_owned(), mock_provider(llm, &["p", "a", "b", "c"]))]),
            ExecPolicy {
                ask: "off".into(),
                ..ExecPolicy::default()
            },
            Arc::new(Cooldowns::new(None)),
            Arc::new(Approvals::new(sink.clone())),
            Metrics::new(),
        );
        rt.connect_timeout = Duration::from_secs(5);
        rt.idle_timeout = Duration::from_secs(10);
        Arc::new(rt)
    });
    AgentDirectory::new(runtimes)
}

async fn spawn_sessions(
    store: &Store,
    agents: &AgentDirectory,
    faults: &FaultHandle,
) -> (ActorRef<SessionsMsg>, tokio::task::JoinHandle<()>) {
    Actor::spawn(
        None,
        SessionsActor,
        SessionsArgs {
            faults: faults.clone(),
            collect: false,
            ..sessions_args(store, agents, Arc::new(|_: &str, _: Value| {}))
        },
    )
    .await
    .unwrap()
}

async fn rig(tweak: &dyn Fn(&mut AgentSpec)) -> Rig {
    let llm = MockLlm::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.redb")).unwrap();
    let agents = agents(&llm, dir.path(), tweak);
    agent::actor::spawn_all(&agents).await;
    let faults = FaultHandle::new();
    let (sessions, handle) = spawn_sessions(&store, &agents, &faults).await;
    Rig {
        llm,
        store,
        sessions,
        handle,
        faults,
        agents,
        dir,
    }
}

fn transcript(store: &Store, key: &str) -> Vec<Entry> {
    store
        .transcript::<Entry>(key, None)
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect()
}

/// The tool results of a session's transcript, parsed, for tool `name`.
fn tool_results(store: &Store, key: &str, name: &str) -> Vec<(bool, String)> {
    transcript(store, key)
        .into_iter()
        .filter(|e| e.role == "tool" && e.name.as_deref() == Some(name))
        .map(|e| (e.is_error, e.content))
        .collect()
}

/// User messages of `key` that are announced sub-agent results.
fn announcements(store: &Store, key: &str) -> Vec<String> {
    transcript(store, key)
        .into_iter()
        .filter(|e| e.role == "user" && e.content.starts_with("[Sub-agent result]"))
        .map(|e| e.content)
        .collect()
}

/// Waits (real time, bounded) until `f` holds.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..600 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The steps of an agent's model (`model`) that spawns with `args`, then says `then`.
fn spawn_then(model: &str, args: Value, then: &str) -> [Step; 2] {
    [
        Step::tool_call("sessions_spawn", args).for_model(model),
        Step::text(then).for_model(model),
    ]
}

/// The child session of the first spawn `key` made.
fn first_child(store: &Store, key: &str) -> String {
    spawned(store, key)[0]["childSessionKey"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn spawned(store: &Store, key: &str) -> Vec<Value> {
    tool_results(store, key, "sessions_spawn")
        .into_iter()
        .map(|(err, c)| {
            assert!(!err, "spawn refused: {c}");
            serde_json::from_str(&c).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_principal_delegates_to_two_specialists_with_their_own_tool_policies() {
    let r = rig(&|_| {}).await;
    let main = "agent:main:main";
    r.llm.push_all([
        Step::reply(
            Reply::default()
                .with_tool_call(
                    "sessions_spawn",
                    json!({"task": "run echo coder-ran", "agentId": "coder", "label": "build"}),
                )
                .with_tool_call(
                    "sessions_spawn",
                    json!({"task": "run echo reader-ran", "agentId": "reader", "label": "read"}),
                ),
        )
        .for_model("p"),
        Step::text("I asked two specialists.").for_model("p"),
        Step::tool_call("exec", json!({"command": "echo coder-ran"})).for_model("a"),
        Step::text("coder: done, it printed coder-ran").for_model("a"),
        Step::tool_call("exec", json!({"command": "echo reader-ran"})).for_model("b"),
        Step::text("reader: I may not run commands").for_model("b"),
    ]);
    let first = turn(&r.sessions, main, "please get this built and read").await;
    assert_eq!(first.status, "ok", "{first:?}");
    assert_eq!(first.text, "I asked two specialists.");
    let spawns = spawned(&r.store, main);
    assert_eq!(spawns.len(), 2);
    for s in &spawns {
        assert_eq!(s["status"], "accepted");
        assert!(s["runId"].as_str().is_some_and(|x| !x.is_empty()));
        assert!(
            s["childSessionKey"]
                .as_str()
                .unwrap()
                .contains(":subagent:")
        );
    }
    // Both results come back to the principal, each once, with its own correlation id.
    until("two announcements", || {
        announcements(&r.store, main).len() == 2
    })
    .await;
    let ann = announcements(&r.store, main);
    for s in &spawns {
        let corr = s["correlationId"].as_str().unwrap();
        let child = s["childSessionKey"].as_str().unwrap();
        let mine: Vec<_> = ann.iter().filter(|a| a.contains(corr)).collect();
        assert_eq!(mine.len(), 1, "one announcement for {corr}: {ann:?}");
        assert!(mine[0].contains(child));
        assert!(mine[0].contains("status: ok"), "{}", mine[0]);
        if child.starts_with("agent:coder:") {
            assert!(mine[0].contains("coder: done"));
            let execs = tool_results(&r.store, child, "exec");
            assert_eq!(execs.len(), 1);
            assert!(!execs[0].0 && execs[0].1.contains("coder-ran"), "{execs:?}");
        } else {
            assert!(child.starts_with("agent:reader:"));
            assert!(mine[0].contains("reader: I may not run commands"));
            // Least privilege: the reader's policy denies exec even though the
            // principal's allows it.
            let execs = tool_results(&r.store, child, "exec");
            assert_eq!(execs.len(), 1);
            assert!(execs[0].0, "exec must be refused for reader: {execs:?}");
            assert!(
                execs[0].1.contains("not available to this agent"),
                "{}",
                execs[0].1
            );
        }
    }
    // The specialists ran at the same time: both children were asked before either
    // result reached the principal (each child's first request precedes both results).
    let models: Vec<String> = r.llm.requests().iter().map(|q| q.model.clone()).collect();
    let first_a = models.iter().position(|m| m == "a").unwrap();
    let first_b = models.iter().position(|m| m == "b").unwrap();
    let third_p = models
        .iter()
        .enumerate()
        .filter(|(_, m)| *m == "p")
        .nth(2)
        .map(|(i, _)| i)
        .unwrap();
    assert!(first_a < third_p && first_b < third_p, "{models:?}");
    // The audit log has each spawn and each result, with the correlation ids.
    until("audit results", || {
        r.store
            .audit_query(&AuditFilter {
                kind: Some("delegation.result".into()),
                ..Default::default()
            })
            .unwrap()
            .len()
            == 2
    })
    .await;
    let audit = r.store.audit_query(&AuditFilter::default()).unwrap();
    for s in &spawns {
        let corr = s["correlationId"].as_str().unwrap();
        let kinds: Vec<(&str, &str)> = audit
            .iter()
            .filter(|(_, a)| a.correlation_id.as_deref() == Some(corr))
            .map(|(_, a)| (a.kind.as_str(), a.outcome.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("delegation.spawn", "accepted"),
                ("delegation.result", "ok")
            ]
        );
        // The spawn's record, written in the task's own commit, names the child's run.
        let spawn = audit
            .iter()
            .find(|(_, a)| {
                a.correlation_id.as_deref() == Some(corr) && a.kind == "delegation.spawn"
            })
            .unwrap();
        assert_eq!(spawn.1.detail["runId"], s["runId"], "{:?}", spawn.1);
    }
    r.sessions.stop(None);
    let _ = r.handle.await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_past_aborts_the_child_and_the_principal_gets_a_timeout() {
    let r = rig(&|_| {}).await;
    let main = "agent:main:main";
    r.llm.push_all(spawn_then(
        "p",
        json!({"task": "think slowly", "agentId": "slow", "runTimeoutSeconds": 1}),
        "spawned",
    ));
    r.llm.push_all([Step::fault(Fault::Slow {
        per_event_ms: 5_000,
    })
    .for_model("c")]);
    assert_eq!(turn(&r.sessions, main, "go").await.status, "ok");
    let corr = spawned(&r.store, main)[0]["correlationId"]
        .as_str()
        .unwrap()
        .to_owned();
    until("the timeout result", || {
        announcements(&r.store, main).len() == 1
    })
    .await;
    let ann = &announcements(&r.store, main)[0];
    assert!(
        ann.contains(&corr) && ann.contains("status: timeout"),
        "{ann}"
    );
    assert!(ann.contains("deadline exceeded"), "{ann}");
    r.sessions.stop(None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_specialist_session_crash_mid_run_is_retried_and_its_result_arrives_once() {
    let r = rig(&|_| {}).await;
    let main = "agent:main:main";
    r.llm.push_all(spawn_then(
        "p",
        json!({"task": "count", "agentId": "coder"}),
        "spawned",
    ));
    r.llm.push_all([
        // The child's reply streams slowly: the crash lands while it streams.
        Step::fault(Fault::Slow { per_event_ms: 300 }).for_model("a"),
    ]);
    assert_eq!(turn(&r.sessions, main, "go").await.status, "ok");
    // The next message any session handles (the child's first streamed delta) crashes it.
    until("the child's model call", || {
        r.llm.requests().iter().any(|q| q.model == "a")
    })
    .await;
    r.faults.arm("session", Crash::PanicAt { nth: 1 });
    until("the result", || announcements(&r.store, main).len() == 1).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let ann = announcements(&r.store, main);
    assert_eq!(ann.len(), 1, "announced exactly once: {ann:?}");
    assert!(ann[0].contains("status: ok"), "{}", ann[0]);
    assert!(
        r.llm.requests().iter().filter(|q| q.model == "a").count() >= 2,
        "the child's turn ran again after the crash"
    );
    r.sessions.stop(None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_specialist_run_crash_is_reported_to_the_principal_with_its_result() {
    let r = rig(&|_| {}).await;
    let main = "agent:main:main";
    r.llm.push_all(spawn_then(
        "p",
        json!({"task": "fragile", "agentId": "reader"}),
        "spawned",
    ));
    r.llm.push_all([Step::text("fragile done").for_model("b")]);
    // The principal's run is the first, the child's the second: that one crashes.
    r.faults.arm("run", Crash::PanicAt { nth: 2 });
    assert_eq!(turn(&r.sessions, main, "go").await.status, "ok");
    let child = first_child(&r.store, main);
    until("the result", || !announcements(&r.store, main).is_empty()).await;
    let ann = announcements(&r.store, main);
    assert_eq!(ann.len(), 1, "{ann:?}");
    assert!(
        ann[0].contains(&child) && ann[0].contains("fragile done"),
        "{}",
        ann[0]
    );
    assert!(
        ann[0].contains("crashed 1 time"),
        "the principal is told: {}",
        ann[0]
    );
    r.sessions.stop(None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_specialist_that_keeps_crashing_is_reported_to_the_principal() {
    let r = rig(&|_| {}).await;
    let main = "agent:main:main";
    r.llm.push_all(spawn_then(
        "p",
        json!({"task": "doomed", "agentId": "coder"}),
        "spawned",
    ));
    // Every attempt streams slowly, so each restart is still running when it crashes.
    r.llm
        .push_all((0..8).map(|_| Step::fault(Fault::Slow { per_event_ms: 200 }).for_model("a")));
    assert_eq!(turn(&r.sessions, main, "go").await.status, "ok");
    let child = first_child(&r.store, main);
    // The child's session crashes on every start, more often than the Sessions actor
    // restarts a session within a minute.
    for i in 0..6 {
        until("the child's next attempt", || {
            r.llm.requests().iter().filter(|q| q.model == "a").count() > i
        })
        .await;
        r.faults.arm("session", Crash::PanicAt { nth: 1 });
        until("the crash", || !r.faults.is_armed("session")).await;
    }
    until("the error result", || {
        !announcements(&r.store, main).is_empty()
    })
    .await;
    let ann = announcements(&r.store, main);
    assert_eq!(ann.len(), 1, "{ann:?}");
    assert!(
        ann[0].contains(&child) && ann[0].contains("status: error"),
        "{}",
        ann[0]
    );
    assert!(ann[0].contains("kept crashing"), "{}", ann[0]);
    assert!(
        r.store.inbox::<Value>(&child).unwrap().is_empty(),
        "taken out of the child's inbox"
    );
    r.sessions.stop(None);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_announcement_survives_a_restart_before_the_principal_takes_it() {
    let r = rig(&|_| {}).await;
    let main = "agent:main:main";
    r.llm.push_all(spawn_then(
        "p",
        json!({"task": "quick", "agentId": "coder"}),
        "spawned",
    ));
    r.llm.push_all([
        Step::text("the quick result").for_model("a"),
        // The principal's turn for the announcement hangs: the gateway "dies" first.
        Step::fault(Fault::Stall).for_model("p"),
    ]);
    assert_eq!(turn(&r.sessions, main, "go").await.status, "ok");
    until("the announcement in the principal's inbox", || {
        r.llm.requests().iter().filter(|q| q.model == "p").count() == 3
    })
    .await;
    assert!(announcements(&r.store, main).is_empty(), "not answered yet");
    let inbox: Vec<(u64, Value)> = r.store.inbox(main).unwrap();
    assert_eq!(
        inbox.len(),
        1,
        "the announcement waits durably in the inbox"
    );
    // Restart: a new Sessions actor on the same store (its live sessions are gone: the
    // announcement is only in the store).
    r.sessions.stop(None);
    let _ = r.handle.await;
    let (sessions, _h) = spawn_sessions(&r.store, &r.agents, &r.faults).await;
    until("the announcement answered after the restart", || {
        announcements(&r.store, main).len() == 1
    })
    .await;
    assert!(announcements(&r.store, main)[0].contains("the quick result"));
    sessions.stop(None);
}

#[tokio::test(flavor = "multi_thread")]
async fn spawning_is_limited_by_allow_agents_depth_and_concurrency() {
    let r = rig(&|s| {
        s.subagents.max_concurrent = 1;
        if s.id == "coder" {
            s.subagents.allow_agents = vec!["*".into()];
        }
    })
    .await;
    let main = "agent:main:main";
    r.llm.push_all([
        Step::reply(
            Reply::default()
                .with_tool_call(
                    "sessions_spawn",
                    json!({"task": "slow one", "agentId": "slow"}),
                )
                .with_tool_call(
                    "sessions_spawn",
                    json!({"task": "second", "agentId": "coder"}),
                ),
        )
        .for_model("p"),
        Step::text("ok").for_model("p"),
        Step::fault(Fault::Slow {
            per_event_ms: 1_000,
        })
        .for_model("c"),
    ]);
    turn(&r.sessions, main, "go").await;
    let results = tool_results(&r.store, main, "sessions_spawn");
    assert!(!results[0].0);
    assert!(
        results[1].0 && results[1].1.contains("maxConcurrent"),
        "{results:?}"
    );
    // A specialist may not spawn (maxSpawnDepth 1), and reader may not spawn coder.
    r.llm.push_all([
        Step::tool_call("sessions_spawn", json!({"task": "x", "agentId": "coder"})).for_model("b"),
        Step::text("ok").for_model("b"),
    ]);
    turn(&r.sessions, "agent:reader:main", "try").await;
    let refused = tool_results(&r.store, "agent:reader:main", "sessions_spawn");
    assert!(
        refused[0].0 && refused[0].1.contains("allowAgents"),
        "{refused:?}"
    );
    let denied = r
        .store
        .audit_query(&AuditFilter {
            kind: Some("delegation.spawn".into()),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .filter(|(_, a)| a.outcome == "denied")
        .count();
    assert_eq!(denied, 2);
    r.sessions.stop(None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sub_agent_cannot_spawn_its_own_at_the_default_depth() {
    let r = rig(&|s| s.subagents.allow_agents = vec!["*".into()]).await;
    let main = "agent:main:main";
    r.llm.push_all(spawn_then(
        "p",
        json!({"task": "delegate further", "agentId": "coder"}),
        "ok",
    ));
    r.llm.push_all(spawn_then(
        "a",
        json!({"task": "deeper", "agentId": "reader"}),
        "I could not delegate",
    ));
    turn(&r.sessions, main, "go").await;
    let child = first_child(&r.store, main);
    until("the result", || announcements(&r.store, main).len() == 1).await;
    let nested = tool_results(&r.store, &child, "sessions_spawn");
    assert!(
        nested[0].0 && nested[0].1.contains("maxSpawnDepth"),
        "{nested:?}"
    );
    r.sessions.stop(None);
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_send_waits_for_a_reply_and_is_off_across_agents_unless_allowed() {
    let r = rig(&|s| {
        if s.id == "main" {
            s.agent_to_agent.enabled = true;
            s.agent_to_agent.allow = vec!["coder".into()];
        }
    })
    .await;
    let main = "agent:main:main";
    r.llm.push_all([
        Step::reply(
            Reply::default()
                .with_tool_call("sessions_send", json!({"sessionKey": "agent:coder:main", "message": "status?", "timeoutSeconds": 20}))
                .with_tool_call("sessions_send", json!({"sessionKey": "agent:reader:main", "message": "hi"})),
        )
        .for_model("p"),
        Step::text("done").for_model("p"),
        Step::text("all green").for_model("a"),
    ]);
    turn(&r.sessions, main, "ask around").await;
    let sends = tool_results(&r.store, main, "sessions_send");
    let ok: Value = serde_json::from_str(&sends[0].1).unwrap();
    assert_eq!(ok["status"], "ok");
    assert_eq!(ok["reply"], "all green");
    assert!(
        sends[1].0 && sends[1].1.contains("may not reach"),
        "{sends:?}"
    );
    // sessions_list shows main's own sessions and the coder's, not the reader's.
    r.llm.push_all([
        Step::tool_call("sessions_list", json!({})).for_model("p"),
        Step::text("listed").for_model("p"),
    ]);
    turn(&r.sessions, main, "who is there").await;
    let listed: Value =
        serde_json::from_str(&tool_results(&r.store, main, "sessions_list")[0].1).unwrap();
    let keys: Vec<&str> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&main) && keys.contains(&"agent:coder:main"),
        "{keys:?}"
    );
    assert!(
        !keys.iter().any(|k| k.starts_with("agent:reader:")),
        "{keys:?}"
    );
    // The coder does not reach back: it has no agent-to-agent permission.
    r.llm.push_all([
        Step::tool_call("sessions_history", json!({"sessionKey": main})).for_model("a"),
        Step::text("ok").for_model("a"),
    ]);
    turn(&r.sessions, "agent:coder:main", "peek").await;
    let h = tool_results(&r.store, "agent:coder:main", "sessions_history");
    assert!(h[0].0 && h[0].1.contains("agentToAgent"), "{h:?}");
    r.sessions.stop(None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_send_without_waiting_ping_pongs_until_reply_skip() {
    let r = rig(&|s| {
        s.agent_to_agent.enabled = true;
        s.agent_to_agent.allow = vec!["*".into()];
        s.agent_to_agent.max_ping_pong_turns = 5;
    })
    .await;
    let main = "agent:main:main";
    let coder = "agent:coder:main";
    r.llm.push_all([
        Step::tool_call(
            "sessions_send",
            json!({"sessionKey": coder, "message": "ping", "timeoutSeconds": 0}),
        )
        .for_model("p"),
        Step::text("sent").for_model("p"),
        Step::text("pong 1").for_model("a"),
        Step::text("ping 2").for_model("p"),
        Step::text("pong 2").for_model("a"),
        Step::text("REPLY_SKIP").for_model("p"),
    ]);
    turn(&r.sessions, main, "start").await;
    until("the exchange ends", || {
        transcript(&r.store, main)
            .iter()
            .any(|e| e.role == "assistant" && e.content == "REPLY_SKIP")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let to_coder: Vec<String> = transcript(&r.store, coder)
        .into_iter()
        .filter(|e| e.role == "user")
        .map(|e| e.content)
        .collect();
    assert_eq!(to_coder.len(), 2, "{to_coder:?}");
    assert!(to_coder[0].ends_with("ping") && to_coder[1].ends_with("ping 2"));
    let to_main: Vec<String> = transcript(&r.store, main)
        .into_iter()
        .filter(|e| e.role == "user")
        .map(|e| e.content)
        .collect();
    assert_eq!(to_main.len(), 3, "start + two replies: {to_main:?}");
    assert!(to_main[1].contains("pong 1") && to_main[2].contains("pong 2"));
    r.sessions.stop(None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_higher_priority_delegation_is_served_first() {
    let r = rig(&|s| s.max_concurrent = 1).await;
    r.llm
        .push_all([Step::fault(Fault::Slow { per_event_ms: 300 }).for_model("a")]);
    // The coder is busy with one turn; two more wait for its only slot.
    let busy = send(
        &r.sessions,
        "agent:coder:one",
        "first",
        TurnOptions::default(),
    )
    .await;
    until("the first call", || !r.llm.requests().is_empty()).await;
    let low = send(
        &r.sessions,
        "agent:coder:low",
        "low priority",
        TurnOptions::default(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let high = send(
        &r.sessions,
        "agent:coder:high",
        "high priority",
        TurnOptions {
            priority: 10,
            ..Default::default()
        },
    )
    .await;
    for (k, id) in [
        ("agent:coder:one", &busy),
        ("agent:coder:low", &low),
        ("agent:coder:high", &high),
    ] {
        assert_eq!(wait(&r.sessions, k, id).await.status, "ok");
    }
    let order: Vec<String> = r
        .llm
        .requests()
        .iter()
        .map(|q| {
            q.body["messages"].as_array().unwrap().last().unwrap()["content"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(order, ["first", "high priority", "low priority"]);
    let _ = r.dir.path();
    r.sessions.stop(None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_sub_agent_session_is_archived_after_archive_after() {
    let r = rig(&|s| s.subagents.archive_after = Duration::from_millis(300)).await;
    let main = "agent:main:main";
    r.llm.push_all(spawn_then(
        "p",
        json!({"task": "short", "agentId": "coder"}),
        "ok",
    ));
    turn(&r.sessions, main, "go").await;
    let child = first_child(&r.store, main);
    until("the result", || announcements(&r.store, main).len() == 1).await;
    // Archived: the live row is gone, the archive holds it, closed.
    until("the child archived", || {
        r.store.session::<SessionMeta>(&child).unwrap().is_none()
    })
    .await;
    let archived: Vec<(u64, SessionMeta)> = r.store.archives(&child).unwrap();
    assert_eq!(archived.len(), 1, "its transcript went to the archive");
    assert_eq!(archived[0].1.phase, Phase::Closed);
    r.sessions.stop(None);
}
