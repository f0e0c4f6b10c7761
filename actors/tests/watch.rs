//! File-watch triggers on real temporary folders (real `notify`, real time, 100 ms
//! debounce) against the real Sessions actor and the mock LLM: a burst of writes is one
//! turn naming the files, a missing folder is reported and picked up once it exists, the
//! agent's own writes in its workspace do not wake it again, and edited triggers apply
//! without a restart. Every wait is bounded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pincer_actors::agent;
use pincer_actors::agent::actor::AgentDirectory;
use pincer_actors::agent::config::{AgentSpec, ExecPolicy, ModelRef};
use pincer_actors::agent::failover::Cooldowns;
use pincer_actors::agent::run::{AgentRuntime, Approvals, EventSink};
use pincer_actors::gateway::Metrics;
use pincer_actors::schedule::watch::{
    ReloadSource, TriggerStatus, WatchActor, WatchArgs, WatchMsg,
};
use pincer_actors::schedule::watch_config::{self, TriggerSpec};
use pincer_actors::session::{SessionsActor, SessionsMsg};
use pincer_actors::store::Store;
use pincer_mockllm::{MockLlm, RecordedRequest, Step};
use ractor::ActorRef;
use ractor::rpc::CallResult;
use serde_json::{Value, json};
use tokio::sync::mpsc;

mod rig;

const WAIT: Duration = Duration::from_secs(10);
/// Long enough for a second (unwanted) turn to have started after a quiet period.
const SETTLE: Duration = Duration::from_millis(600);

struct Rig {
    llm: MockLlm,
    sessions: ActorRef<SessionsMsg>,
    /// (session key, state) of every finished turn.
    finished: mpsc::UnboundedReceiver<(String, String)>,
    workspace: PathBuf,
    dir: tempfile::TempDir,
}

impl Rig {
    async fn start() -> Rig {
        let llm = MockLlm::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let workspace = dir.path().join("workspace");
        std::fs::create_dir_all(&workspace).unwrap();
        let store = Store::open(&dir.path().join("state.redb")).unwrap();
        let provider = rig::mock_provider(&llm, &["mock-model"]);
        let mut spec = AgentSpec::new("main", &workspace);
        spec.models = vec![ModelRef::parse("mock/mock-model").unwrap()];
        let (tx, finished) = mpsc::unbounded_channel();
        let events: EventSink = Arc::new(move |name: &str, p: Value| {
            if name == "chat" && p["state"] != "delta" {
                let key = p["sessionKey"].as_str().unwrap_or_default().to_owned();
                let _ = tx.send((key, p["state"].as_str().unwrap_or_default().to_owned()));
            }
        });
        let rt = AgentRuntime::new(
            spec,
            BTreeMap::from([("mock".to_owned(), provider)]),
            ExecPolicy::default(),
            Arc::new(Cooldowns::new(None)),
            Arc::new(Approvals::new(events.clone())),
            Metrics::new(),
        );
        let directory = AgentDirectory::new([Arc::new(rt)]);
        agent::actor::spawn_all(&directory).await;
        let (sessions, _) = ractor::Actor::spawn(
            None,
            SessionsActor,
            rig::sessions_args(&store, &directory, events),
        )
        .await
        .unwrap();
        Rig {
            llm,
            sessions,
            finished,
            workspace,
            dir,
        }
    }

    fn agents(&self) -> Vec<(String, PathBuf)> {
        vec![("main".into(), self.workspace.clone())]
    }

    fn triggers(&self, list: Value) -> Vec<TriggerSpec> {
        watch_config::resolve(
            &json!({"triggers": {"watch": list}}),
            "main",
            &self.agents(),
            None,
            self.dir.path(),
        )
        .unwrap()
    }

    async fn watch(
        &self,
        triggers: Vec<TriggerSpec>,
        reload: Option<ReloadSource>,
    ) -> ActorRef<WatchMsg> {
        let s = self.sessions.clone();
        let (w, _) = ractor::Actor::spawn(
            None,
            WatchActor,
            WatchArgs {
                triggers,
                sessions: Arc::new(move || Some(s.clone())),
                reload,
                retry: Duration::from_millis(100),
            },
        )
        .await
        .unwrap();
        w
    }

    /// The next finished turn: (session key, state).
    async fn turn(&mut self) -> (String, String) {
        tokio::time::timeout(WAIT, self.finished.recv())
            .await
            .expect("a turn within 10 s")
            .unwrap()
    }

    /// No further turn for a while.
    async fn no_turn(&mut self) {
        if let Ok(t) = tokio::time::timeout(SETTLE, self.finished.recv()).await {
            panic!("an unexpected turn: {t:?}");
        }
    }

    fn model_calls(&self) -> Vec<RecordedRequest> {
        self.llm
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("chat/completions"))
            .collect()
    }
}

async fn status(w: &ActorRef<WatchMsg>) -> Vec<TriggerStatus> {
    match w
        .call(|reply| WatchMsg::Status { reply }, Some(WAIT))
        .await
        .unwrap()
    {
        CallResult::Success(s) => s,
        _ => panic!("no status"),
    }
}

/// Asks for the status every 50 ms, at most 10 s, until `done` holds.
async fn until(w: &ActorRef<WatchMsg>, done: impl Fn(&TriggerStatus) -> bool) -> TriggerStatus {
    for _ in 0..200 {
        let s = status(w).await.remove(0);
        if done(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the trigger never got there: {:?}", status(w).await);
}

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

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_changes_is_one_turn_naming_each_file_once() {
    let mut r = Rig::start().await;
    let inbox = r.dir.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let w = r
        .watch(
            r.triggers(json!([{"id": "inbox", "path": "inbox", "debounceMs": 100}])),
            None,
        )
        .await;
    until(&w, |s| s.state == "watching").await;

    write(&inbox, "a.txt", "one");
    write(&inbox, "b.md", "two");
    write(&inbox, "sub/c.csv", "three");
    write(&inbox, "a.txt", "one again");
    write(&inbox, ".b.md.swp", "editor scratch");
    let (key, state) = r.turn().await;
    assert_eq!(
        (key.as_str(), state.as_str()),
        ("agent:main:watch:inbox", "final")
    );
    r.no_turn().await;

    let calls = r.model_calls();
    assert_eq!(calls.len(), 1, "one debounced turn");
    let asked = last_user_message(&calls[0]);
    assert!(
        asked.starts_with("Files changed in the watched folder"),
        "{asked}"
    );
    for f in ["- a.txt", "- b.md", "- sub/c.csv"] {
        assert_eq!(asked.matches(f).count(), 1, "{f} once in:\n{asked}");
    }
    assert!(!asked.contains("swp"), "{asked}");
    let s = status(&w).await.remove(0);
    assert_eq!((s.fires, s.pending, s.running), (1, 0, false));
    assert!(s.last_run_id.is_some());

    // A later change is a new turn; a removed file is marked.
    std::fs::remove_file(inbox.join("b.md")).unwrap();
    r.turn().await;
    let asked = last_user_message(&r.model_calls()[1]);
    assert!(asked.contains("- b.md (deleted)"), "{asked}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_folder_is_an_error_until_it_exists_then_it_is_watched() {
    let mut r = Rig::start().await;
    let later = r.dir.path().join("later");
    let w = r
        .watch(
            r.triggers(
                json!([{"id": "later", "path": later, "debounceMs": 100, "include": ["*.pdf"]}]),
            ),
            None,
        )
        .await;
    let s = status(&w).await.remove(0);
    assert_eq!(s.state, "error");
    let err = s.error.unwrap();
    assert!(
        err.contains("does not exist") && err.contains("triggers.watch"),
        "{err}"
    );

    std::fs::create_dir_all(&later).unwrap();
    let s = until(&w, |s| s.state == "watching").await;
    assert_eq!(s.error, None);
    write(&later, "notes.txt", "not included");
    write(&later, "invoice.pdf", "%PDF");
    r.turn().await;
    let asked = last_user_message(&r.model_calls()[0]);
    assert!(asked.contains("- invoice.pdf"), "{asked}");
    assert!(!asked.contains("notes.txt"), "{asked}");

    // Removed: an error again until it is back.
    std::fs::remove_dir_all(&later).unwrap();
    let s = until(&w, |s| s.state == "error").await;
    assert!(s.error.unwrap().contains("does not exist"));
    std::fs::create_dir_all(&later).unwrap();
    until(&w, |s| s.state == "watching").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agents_own_writes_in_its_workspace_do_not_wake_it_again() {
    let mut r = Rig::start().await;
    let w = r
        .watch(
            r.triggers(json!([{"id": "ws", "path": r.workspace, "debounceMs": 100}])),
            None,
        )
        .await;
    let s = until(&w, |s| s.state == "watching").await;
    assert!(s.self_watch);
    // The agent answers a change by writing a file of its own.
    r.llm.push(Step::tool_call(
        "write",
        json!({"path": "summary.md", "content": "what changed"}),
    ));
    r.llm.push(Step::text("Summarised."));
    write(&r.workspace, "todo.md", "- buy milk");
    let (_, state) = r.turn().await;
    assert_eq!(state, "final");
    assert!(r.workspace.join("summary.md").exists(), "the tool ran");
    r.no_turn().await;
    assert_eq!(
        r.model_calls().len(),
        2,
        "one turn (a tool call and the answer)"
    );
    assert_eq!(status(&w).await[0].fires, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn edited_triggers_apply_without_a_restart() {
    let mut r = Rig::start().await;
    let config = r.dir.path().join("pincer.json");
    std::fs::write(&config, "{}").unwrap();
    let reload = ReloadSource {
        config_path: config.clone(),
        default_agent: "main".into(),
        agents: r.agents(),
        home: None,
        base: r.dir.path().to_owned(),
    };
    let w = r.watch(Vec::new(), Some(reload)).await;
    assert!(status(&w).await.is_empty());

    let drop_dir = r.dir.path().join("drop");
    std::fs::create_dir_all(&drop_dir).unwrap();
    std::fs::write(
        &config,
        json!({"triggers": {"watch": [{"id": "drop", "path": "drop", "debounceMs": 100,
            "message": "{{count}} new in {{id}}:\n{{files}}"}]}})
        .to_string(),
    )
    .unwrap();
    w.cast(WatchMsg::ConfigChanged).unwrap();
    let s = until(&w, |s| s.state == "watching").await;
    assert_eq!(s.session_key, "agent:main:watch:drop");
    write(&drop_dir, "x.txt", "x");
    r.turn().await;
    assert_eq!(
        last_user_message(&r.model_calls()[0]),
        "1 new in drop:\n- x.txt"
    );

    // A broken edit keeps the running triggers.
    std::fs::write(&config, "{ triggers: { watch: [ { path: \"drop\" } ] } }").unwrap();
    w.cast(WatchMsg::ConfigChanged).unwrap();
    assert_eq!(status(&w).await[0].id, "drop");
}
