//! Heartbeats under paused time against the real Sessions actor and the mock LLM: the
//! cost guard (no model call for an empty or unchanged HEARTBEAT.md), the cheaper
//! heartbeat model, HEARTBEAT_OK kept out of the chat, the daily token budget and its
//! one notice, and `next-heartbeat` system events (kept across a restart).
//!
//! The Heartbeat actor's clock advances with tokio time, so ticks land on exact
//! timestamps and a UTC day passes in a few virtual hours.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pincer_actors::agent;
use pincer_actors::agent::actor::AgentDirectory;
use pincer_actors::agent::config::{AgentSpec, ExecPolicy, ModelRef};
use pincer_actors::agent::failover::Cooldowns;
use pincer_actors::agent::run::{AgentRuntime, Approvals, EventSink};
use pincer_actors::channels::actor::ChannelDirectory;
use pincer_actors::channels::{ChannelOrigin, OutboxRow};
use pincer_actors::gateway::Metrics;
use pincer_actors::schedule::heartbeat::{
    AgentStatus, Clock, HeartbeatActor, HeartbeatArgs, HeartbeatError, HeartbeatEvent,
    HeartbeatMsg, HeartbeatStatus, SystemEvents, TokioClock,
};
use pincer_actors::schedule::heartbeat_config::{self, AgentHeartbeat};
use pincer_actors::session::{SessionsActor, SessionsMsg};
use pincer_actors::store::Store;
use pincer_mockllm::{MockLlm, RecordedRequest, Reply, Step};
use ractor::ActorRef;
use ractor::rpc::CallResult;
use serde_json::{Value, json};
use tokio::sync::mpsc;

mod rig;

/// 2024-01-01T12:00:00Z.
const EPOCH_MS: u64 = 1_704_110_400_000;

struct Rig {
    llm: MockLlm,
    store: Store,
    sessions: ActorRef<SessionsMsg>,
    heartbeats: ActorRef<HeartbeatMsg>,
    handle: tokio::task::JoinHandle<()>,
    events: mpsc::UnboundedReceiver<HeartbeatEvent>,
    sink: EventSink,
    agents: Vec<AgentHeartbeat>,
    channels: ChannelDirectory,
    clock: Arc<dyn Clock>,
    workspace: PathBuf,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// Sessions for agent `main` on the mock LLM (`mock/mock-model`, and
    /// `mock/cheap-model` for heartbeats when `heartbeat` says so), a running telegram
    /// account, and heartbeats with this `agents.defaults.heartbeat` block.
    async fn start(heartbeat: Value) -> Rig {
        let llm = MockLlm::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let workspace = dir.path().join("workspace");
        std::fs::create_dir_all(&workspace).unwrap();
        std::fs::write(workspace.join("HEARTBEAT.md"), "").unwrap();
        let store = Store::open(&dir.path().join("state.redb")).unwrap();
        let provider = rig::mock_provider(&llm, &["mock-model", "cheap-model"]);
        let mut spec = AgentSpec::new("main", &workspace);
        spec.models = vec![ModelRef::parse("mock/mock-model").unwrap()];
        let quiet: EventSink = Arc::new(|_: &str, _: Value| {});
        let rt = AgentRuntime::new(
            spec,
            BTreeMap::from([("mock".to_owned(), provider)]),
            ExecPolicy::default(),
            Arc::new(Cooldowns::new(None)),
            Arc::new(Approvals::new(quiet.clone())),
            Metrics::new(),
        );
        let directory = AgentDirectory::new([Arc::new(rt)]);
        agent::actor::spawn_all(&directory).await;
        let (sessions, _) = ractor::Actor::spawn(
            None,
            SessionsActor,
            rig::sessions_args(&store, &directory, quiet),
        )
        .await
        .unwrap();
        let channels = ChannelDirectory::new();
        channels.update("telegram:default", |s| {
            s.channel = "telegram".into();
            s.account_id = "default".into();
            s.enabled = true;
            s.configured = true;
            s.state = "running".into();
        });
        let agents = heartbeat_config::resolve(
            &json!({"agents": {"defaults": {"heartbeat": heartbeat}}}),
            &[("main".to_owned(), workspace.clone())],
            "main",
        )
        .unwrap();
        let (tx, events) = mpsc::unbounded_channel();
        let sink: EventSink = Arc::new(move |name: &str, payload: Value| {
            assert_eq!(name, "heartbeat");
            let _ = tx.send(serde_json::from_value(payload).expect("a heartbeat event"));
        });
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(EPOCH_MS));
        let (heartbeats, handle) =
            spawn(&store, &sessions, &agents, &channels, &sink, clock.clone()).await;
        Rig {
            llm,
            store,
            sessions,
            heartbeats,
            handle,
            events,
            sink,
            agents,
            channels,
            clock,
            workspace,
            _dir: dir,
        }
    }

    fn write(&self, text: &str) {
        std::fs::write(self.workspace.join("HEARTBEAT.md"), text).unwrap();
    }

    /// The next tick's outcome (ticks come every period, so this never waits long).
    async fn next(&mut self) -> HeartbeatEvent {
        tokio::time::timeout(Duration::from_secs(2 * 86_400), self.events.recv())
            .await
            .expect("a heartbeat event within two days")
            .expect("the heartbeat actor is running")
    }

    fn model_calls(&self) -> Vec<RecordedRequest> {
        self.llm
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("chat/completions"))
            .collect()
    }

    /// The replies and notices put in the outbox for chats.
    fn chats(&self) -> Vec<OutboxRow> {
        self.store
            .outbox::<OutboxRow>(0, 1000)
            .unwrap()
            .into_iter()
            .map(|(_, r)| r)
            .collect()
    }

    async fn status(&self) -> AgentStatus {
        match self
            .heartbeats
            .call(|reply| HeartbeatMsg::Status { reply }, None)
            .await
            .unwrap()
        {
            CallResult::Success(mut list) => list.remove(0),
            _ => panic!("no status"),
        }
    }

    async fn run(
        &self,
        agent: Option<&str>,
        force: bool,
    ) -> Result<HeartbeatEvent, HeartbeatError> {
        match self
            .heartbeats
            .call(
                |reply| HeartbeatMsg::Run {
                    agent: agent.map(str::to_owned),
                    force,
                    reply,
                },
                None,
            )
            .await
            .unwrap()
        {
            CallResult::Success(r) => r,
            _ => panic!("no answer"),
        }
    }

    /// Stops the Heartbeat actor and starts a new one on the same store (a restart).
    async fn restart(&mut self) {
        self.heartbeats.stop(None);
        (&mut self.handle).await.unwrap();
        let (h, j) = spawn(
            &self.store,
            &self.sessions,
            &self.agents,
            &self.channels,
            &self.sink,
            self.clock.clone(),
        )
        .await;
        self.heartbeats = h;
        self.handle = j;
    }
}

async fn spawn(
    store: &Store,
    sessions: &ActorRef<SessionsMsg>,
    agents: &[AgentHeartbeat],
    channels: &ChannelDirectory,
    sink: &EventSink,
    clock: Arc<dyn Clock>,
) -> (ActorRef<HeartbeatMsg>, tokio::task::JoinHandle<()>) {
    let s = sessions.clone();
    ractor::Actor::spawn(
        None,
        HeartbeatActor,
        HeartbeatArgs {
            store: store.clone(),
            sessions: Arc::new(move || Some(s.clone())),
            agents: agents.to_vec(),
            default_agent: "main".into(),
            channels: channels.clone(),
            events: Some(sink.clone()),
            clock,
        },
    )
    .await
    .unwrap()
}

/// The text of the last user message of a chat request.
fn last_user_message(r: &RecordedRequest) -> String {
    r.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn skipped(e: &HeartbeatEvent, reason: &str) -> bool {
    e.status == HeartbeatStatus::Skipped && e.reason.as_deref() == Some(reason)
}

#[tokio::test(start_paused = true)]
async fn the_cost_guard_calls_the_model_only_for_new_content_and_acks_stay_out_of_the_chat() {
    let mut r = Rig::start(json!({
        "every": "30m", "model": "mock/cheap-model", "target": "telegram", "to": "42"
    }))
    .await;
    let every = Duration::from_secs(30 * 60);
    let every_ms = every.as_millis() as u64;

    // The first tick is one period after the start: not a millisecond before.
    tokio::time::sleep(every - Duration::from_millis(1)).await;
    assert!(r.events.try_recv().is_err(), "no tick before the period");
    let first = r.next().await;
    assert_eq!(first.ts, EPOCH_MS + every_ms);
    assert!(skipped(&first, "empty-heartbeat-file"), "{first:?}");
    // Ten ticks with the empty HEARTBEAT.md, then with headers only: no model call.
    for n in 2..=10 {
        let e = r.next().await;
        assert_eq!(e.ts, EPOCH_MS + n * every_ms, "on schedule");
        assert!(skipped(&e, "empty-heartbeat-file"), "{e:?}");
    }
    r.write("# Heartbeat\n\n## Tasks\n- [ ]\n");
    assert!(skipped(&r.next().await, "empty-heartbeat-file"));
    assert!(
        r.model_calls().is_empty(),
        "the cost guard made a model call"
    );

    // New content: exactly one call, with the heartbeat model; its HEARTBEAT_OK stays
    // in the transcript and out of the chat.
    r.llm.push(Step::text("HEARTBEAT_OK"));
    r.write("# Tasks\n- check whether the oven is off\n");
    let e = r.next().await;
    assert_eq!(e.status, HeartbeatStatus::OkToken, "{e:?}");
    assert!(e.silent);
    let calls = r.model_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].model, "cheap-model");
    let asked = last_user_message(&calls[0]);
    assert!(
        asked.starts_with("Read HEARTBEAT.md if it exists"),
        "{asked}"
    );
    assert!(asked.contains("- check whether the oven is off"), "{asked}");
    assert!(r.chats().is_empty(), "an acknowledgement was delivered");
    let transcript: Vec<(u64, pincer_actors::session::Entry)> =
        r.store.transcript("agent:main:main", None).unwrap();
    assert!(
        transcript
            .iter()
            .any(|(_, e)| e.role == "assistant" && e.content == "HEARTBEAT_OK"),
        "the acknowledgement is kept in the transcript"
    );

    // Unchanged again: no call.
    for _ in 0..5 {
        let e = r.next().await;
        assert!(skipped(&e, "unchanged-heartbeat-file"), "{e:?}");
    }
    assert_eq!(r.model_calls().len(), 1);

    // A reply that needs the user goes to the target chat.
    r.llm.push(Step::text("The oven is still on!"));
    r.write("# Tasks\n- check whether the oven is off\n- and the stove\n");
    let e = r.next().await;
    assert_eq!(e.status, HeartbeatStatus::Sent, "{e:?}");
    assert!(!e.silent);
    assert_eq!(
        (e.channel.as_deref(), e.to.as_deref()),
        (Some("telegram"), Some("42"))
    );
    assert_eq!(r.model_calls().len(), 2);
    let chats = r.chats();
    assert_eq!(chats.len(), 1, "{chats:?}");
    assert_eq!(chats[0].text, "The oven is still on!");
    assert_eq!(chats[0].origin.to, "42");
    assert!(
        chats[0].origin.message_id.starts_with("heartbeat:main:"),
        "{:?}",
        chats[0].origin
    );

    // A manual run goes through the cost guard unless forced; an unknown agent is named.
    let e = r.run(None, false).await.unwrap();
    assert!(skipped(&e, "unchanged-heartbeat-file"), "{e:?}");
    r.llm.push(Step::text("HEARTBEAT_OK"));
    let e = r.run(Some("main"), true).await.unwrap();
    assert_eq!(e.status, HeartbeatStatus::OkToken);
    assert_eq!(r.model_calls().len(), 3);
    let err = r.run(Some("nobody"), false).await.unwrap_err();
    assert!(
        err.to_string().contains("agents with heartbeats: main"),
        "{err}"
    );

    let st = r.status().await;
    assert_eq!(
        (st.runs, st.enabled, st.every_ms),
        (3, true, Some(every_ms))
    );
    assert_eq!(st.model.as_deref(), Some("mock/cheap-model"));
    assert_eq!(st.target, "telegram:42");
    assert!(st.tokens_today > 0);
    assert_eq!(st.day, "2024-01-01");
    assert!(!st.paused);
}

#[tokio::test(start_paused = true)]
async fn the_daily_budget_pauses_heartbeats_tells_the_user_once_and_resets_at_midnight_utc() {
    let mut r = Rig::start(json!({
        "every": "2h", "target": "telegram", "to": "42", "dailyTokenBudget": 100
    }))
    .await;
    // 14:00: the first heartbeat spends 150 + 30 tokens, past the budget.
    r.llm.push(Step::reply(
        Reply::text("Water the plants.").with_usage(150, 30, 0),
    ));
    r.write("- water the plants\n");
    let e = r.next().await;
    assert_eq!(e.status, HeartbeatStatus::Sent, "{e:?}");
    assert_eq!(e.tokens, 180);
    let st = r.status().await;
    assert_eq!((st.tokens_today, st.paused), (180, true));

    // 16:00, 18:00, 20:00, 22:00: new content, but the budget is spent. The user hears of
    // it once.
    for (i, text) in ["- feed the cat\n", "- feed the dog\n"].iter().enumerate() {
        r.write(text);
        let e = r.next().await;
        assert!(skipped(&e, "budget-exhausted"), "tick {i}: {e:?}");
    }
    for _ in 0..2 {
        assert!(skipped(&r.next().await, "budget-exhausted"));
    }
    assert_eq!(r.model_calls().len(), 1);
    let notices: Vec<OutboxRow> = r
        .chats()
        .into_iter()
        .filter(|c| c.text.contains("paused until tomorrow"))
        .collect();
    assert_eq!(notices.len(), 1, "told exactly once: {notices:?}");
    assert_eq!(notices[0].origin.to, "42");
    assert!(
        notices[0]
            .text
            .contains("raise agents.defaults.heartbeat.dailyTokenBudget"),
        "{}",
        notices[0].text
    );

    // 00:00 UTC: a new day, a new budget; the changed file makes the call.
    let e = r.next().await;
    assert_eq!(e.status, HeartbeatStatus::Sent, "{e:?}");
    assert_eq!(r.model_calls().len(), 2);
    let st = r.status().await;
    assert_eq!(st.day, "2024-01-02");
    assert_eq!(
        (st.tokens_today, st.runs),
        (e.tokens, 2),
        "today's spend starts afresh"
    );
}

#[tokio::test(start_paused = true)]
async fn a_next_heartbeat_event_makes_the_next_tick_run_even_after_a_restart() {
    let mut r = Rig::start(json!({"every": "30m"})).await;
    // The user talks from a telegram chat first: the main session's last chat.
    r.llm.push(Step::text("Hi!"));
    let origin = ChannelOrigin {
        channel: "telegram".into(),
        account: "default".into(),
        to: "42".into(),
        thread: None,
        message_id: "42/7".into(),
    };
    let sent = r
        .sessions
        .call(
            |reply| SessionsMsg::Send {
                key: "agent:main:main".into(),
                text: "hello".into(),
                thinking: None,
                stream: None,
                compact: false,
                mode: None,
                origin: Some(origin),
                opts: Default::default(),
                reply,
            },
            None,
        )
        .await
        .unwrap();
    let CallResult::Success(Ok((run_id, _))) = sent else {
        panic!("{sent:?}")
    };
    let done = r
        .sessions
        .call(
            |reply| SessionsMsg::Wait {
                key: "agent:main:main".into(),
                run_id,
                reply,
            },
            None,
        )
        .await
        .unwrap();
    assert!(matches!(done, CallResult::Success(ref s) if s.status == "ok"));
    assert_eq!(r.model_calls().len(), 1);
    assert!(skipped(&r.next().await, "empty-heartbeat-file"));

    // A wake for the next heartbeat: queued (an agent without heartbeats is refused so
    // its caller can deliver the event at once), and kept across a restart.
    let events = SystemEvents::new(r.store.clone(), &r.agents);
    assert!(
        events
            .queue("main", "Backup finished", "test")
            .await
            .unwrap()
    );
    assert!(!events.queue("other", "x", "test").await.unwrap());
    assert_eq!(r.status().await.queued_events, 1);
    r.restart().await;
    assert_eq!(r.status().await.queued_events, 1);

    r.llm
        .push(Step::text("The nightly backup finished without errors."));
    let e = r.next().await;
    assert_eq!(e.status, HeartbeatStatus::Sent, "{e:?}");
    let calls = r.model_calls();
    assert_eq!(calls.len(), 2);
    let asked = last_user_message(&calls[1]);
    assert!(asked.contains("System: Backup finished"), "{asked}");
    assert_eq!(r.status().await.queued_events, 0, "the event was taken in");
    // Delivered to the chat the main session last answered, as a new message.
    let chats = r.chats();
    assert_eq!(chats.len(), 2, "{chats:?}");
    assert_eq!(chats[1].text, "The nightly backup finished without errors.");
    assert_eq!(chats[1].origin.to, "42");
    assert!(chats[1].origin.message_id.starts_with("heartbeat:main:"));

    // Nothing due any more: the next tick makes no call.
    assert!(skipped(&r.next().await, "empty-heartbeat-file"));
    assert_eq!(r.model_calls().len(), 2);
}

#[test]
fn heartbeat_files_written_by_the_workspace_bootstrap_cost_nothing() {
    let dir = tempfile::tempdir().unwrap();
    agent::workspace::ensure(dir.path()).unwrap();
    let file = heartbeat_config::read_heartbeat_file(Path::new(dir.path()));
    assert_eq!(
        heartbeat_config::decide(&file, None, 0, false, 0, 0),
        heartbeat_config::Decision::Skip("empty-heartbeat-file")
    );
}
