//! The Sessions actor on its own: idle pause and resume from the store, under paused time,
//! the lifecycle log, and resets (`/new`, stale sessions, `sessions.reset`).
//! The agent has no model, so a turn ends at once with the how-to-configure message and
//! no socket is involved.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pincer_actors::agent;
use pincer_actors::agent::actor::AgentDirectory;
use pincer_actors::agent::config::{AgentSpec, ExecPolicy};
use pincer_actors::agent::failover::Cooldowns;
use pincer_actors::agent::run::{AgentRuntime, Approvals, EventSink};
use pincer_actors::gateway::Metrics;
use pincer_actors::session::lifecycle::{Phase, Transition};
use pincer_actors::session::{Entry, IDLE_PAUSE, SessionMeta, SessionsActor, SessionsMsg};
use pincer_actors::store::Store;
use ractor::Actor;
use ractor::rpc::CallResult;
use serde_json::Value;

mod rig;
use rig::turn;

fn runtime(workspace: &std::path::Path, events: EventSink) -> AgentRuntime {
    // No model: a turn ends at once with the how-to-configure message.
    AgentRuntime::new(
        AgentSpec::new("main", workspace),
        Default::default(),
        ExecPolicy::default(),
        Arc::new(Cooldowns::new(None)),
        Arc::new(Approvals::new(events)),
        Metrics::new(),
    )
}

#[tokio::test(start_paused = true)]
async fn an_idle_session_pauses_and_resumes_with_its_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.redb")).unwrap();
    let (sessions, handle, _) = start(&store, dir.path()).await;
    let key = "agent:main:main".to_owned();
    let summary = turn(&sessions, &key, "hello").await;
    assert_eq!(summary.status, "error");
    assert!(summary.error.unwrap().contains("No model is configured"));
    let live = |s: &ractor::ActorRef<SessionsMsg>| {
        let s = s.clone();
        async move {
            match s
                .call(|reply| SessionsMsg::Live { reply }, None)
                .await
                .unwrap()
            {
                CallResult::Success(l) => l,
                _ => panic!(),
            }
        }
    };
    assert_eq!(live(&sessions).await, std::slice::from_ref(&key));
    tokio::time::sleep(IDLE_PAUSE - Duration::from_secs(1)).await;
    assert_eq!(live(&sessions).await.len(), 1, "not idle long enough yet");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        live(&sessions).await.is_empty(),
        "paused after {IDLE_PAUSE:?} idle"
    );
    // Resumed from the store: the transcript is intact and the session live again.
    let r = sessions
        .call(
            |reply| SessionsMsg::Resume {
                key: key.clone(),
                reply,
            },
            None,
        )
        .await
        .unwrap();
    assert!(matches!(r, CallResult::Success(Ok(()))));
    assert_eq!(live(&sessions).await, std::slice::from_ref(&key));
    let t: Vec<(u64, pincer_actors::session::Entry)> = store.transcript(&key, None).unwrap();
    let roles: Vec<&str> = t.iter().map(|(_, e)| e.role.as_str()).collect();
    assert_eq!(roles, ["user", "error"]);
    // An explicit pause of an idle session.
    let p = sessions
        .call(
            |reply| SessionsMsg::Pause {
                key: key.clone(),
                reply,
            },
            None,
        )
        .await
        .unwrap();
    assert!(matches!(p, CallResult::Success(true)));
    assert!(live(&sessions).await.is_empty());
    sessions.stop(None);
    handle.await.unwrap();
}

type Seen = Arc<Mutex<Vec<(String, Value)>>>;

async fn start(
    store: &Store,
    dir: &std::path::Path,
) -> (
    ractor::ActorRef<SessionsMsg>,
    tokio::task::JoinHandle<()>,
    Seen,
) {
    let seen: Seen = Arc::default();
    let events: EventSink = {
        let seen = seen.clone();
        Arc::new(move |e: &str, p: Value| seen.lock().unwrap().push((e.to_owned(), p)))
    };
    let agents = AgentDirectory::new([Arc::new(runtime(dir, events.clone()))]);
    agent::actor::spawn_all(&agents).await;
    let (sessions, handle) = Actor::spawn(
        None,
        SessionsActor,
        rig::sessions_args(store, &agents, events),
    )
    .await
    .unwrap();
    (sessions, handle, seen)
}

fn phases(store: &Store, key: &str) -> Vec<String> {
    store
        .lifecycle::<Transition>(key)
        .unwrap()
        .into_iter()
        .map(|t| format!("{}->{}", t.from.as_str(), t.to.as_str()))
        .collect()
}

fn user_texts(store: &Store, key: &str) -> Vec<String> {
    store
        .transcript::<Entry>(key, None)
        .unwrap()
        .into_iter()
        .filter(|(_, e)| e.role == "user")
        .map(|(_, e)| e.content)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn pause_and_resume_walk_the_lifecycle_and_the_store_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.redb")).unwrap();
    let (sessions, handle, _) = start(&store, dir.path()).await;
    let key = "agent:main:main";
    turn(&sessions, key, "one").await;
    let meta: SessionMeta = store.session(key).unwrap().unwrap();
    assert_eq!(meta.phase, Phase::Active);
    let paused = sessions
        .call(
            |reply| SessionsMsg::Pause {
                key: key.into(),
                reply,
            },
            None,
        )
        .await
        .unwrap();
    assert!(matches!(paused, CallResult::Success(true)));
    let meta: SessionMeta = store.session(key).unwrap().unwrap();
    assert_eq!(meta.phase, Phase::Paused, "the pause is in the store");
    turn(&sessions, key, "two").await;
    assert_eq!(
        phases(&store, key),
        [
            "created->active",
            "active->paused",
            "paused->resuming",
            "resuming->active"
        ]
    );
    assert_eq!(user_texts(&store, key), ["one", "two"]);
    // A session that stopped without pausing (here: the whole Sessions actor stops, as
    // in a gateway restart) is recovered from ACTIVE.
    sessions.stop(None);
    handle.await.unwrap();
    let (sessions, handle, _) = start(&store, dir.path()).await;
    turn(&sessions, key, "three").await;
    assert_eq!(
        phases(&store, key)[4..],
        ["active->resuming", "resuming->active"]
    );
    sessions.stop(None);
    handle.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn slash_new_archives_the_transcript_and_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.redb")).unwrap();
    let (sessions, handle, seen) = start(&store, dir.path()).await;
    let key = "agent:main:main";
    turn(&sessions, key, "one").await;
    turn(&sessions, key, "two").await;
    let reset = turn(&sessions, key, "/new").await;
    assert_eq!(
        (reset.status.as_str(), reset.text.as_str()),
        ("ok", "Started a new session.")
    );
    assert!(
        seen.lock().unwrap().iter().any(|(e, p)| e == "chat"
            && p["runId"] == reset.run_id.as_str()
            && p["state"] == "final"),
        "the reset is answered with a final chat event like any turn"
    );
    assert!(
        store.session::<SessionMeta>(key).unwrap().is_none(),
        "nothing new yet"
    );
    assert!(user_texts(&store, key).is_empty());
    let archives: Vec<(u64, SessionMeta)> = store.archives(key).unwrap();
    assert_eq!(archives.len(), 1);
    assert_eq!(archives[0].1.turns, 2);
    assert_eq!(archives[0].1.phase, Phase::Closed);
    let old: Vec<Entry> = store.archived_transcript(key, archives[0].0).unwrap();
    assert_eq!(
        old.iter()
            .filter(|e| e.role == "user")
            .map(|e| e.content.as_str())
            .collect::<Vec<_>>(),
        ["one", "two"]
    );
    assert!(
        store.inbox::<Value>(key).unwrap().is_empty(),
        "the /new itself is answered"
    );
    // With more text, the rest is the fresh session's first message.
    turn(&sessions, key, "three").await;
    let r = turn(&sessions, key, "/reset  and four").await;
    assert_eq!(r.status, "error", "answered by a (model-less) turn: {r:?}");
    assert_eq!(user_texts(&store, key), ["and four"]);
    assert_eq!(store.archives::<SessionMeta>(key).unwrap().len(), 2);
    let log = phases(&store, key);
    assert_eq!(
        log.iter().filter(|p| *p == "closing->closed").count(),
        2,
        "{log:?}"
    );
    assert_eq!(log.last().unwrap(), "created->active");
    // "/newer" is a message, not a trigger.
    turn(&sessions, key, "/newer").await;
    assert_eq!(user_texts(&store, key), ["and four", "/newer"]);
    sessions.stop(None);
    handle.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_session_idle_past_the_daily_hour_starts_afresh_on_its_next_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.redb")).unwrap();
    let (sessions, handle, _) = start(&store, dir.path()).await;
    let key = "agent:main:main";
    turn(&sessions, key, "yesterday").await;
    let paused = sessions
        .call(
            |reply| SessionsMsg::Pause {
                key: key.into(),
                reply,
            },
            None,
        )
        .await
        .unwrap();
    assert!(matches!(paused, CallResult::Success(true)));
    // Last active two days ago: the 04:00 reset has passed since.
    let mut meta: SessionMeta = store.session(key).unwrap().unwrap();
    meta.updated_at -= 2 * 86_400_000;
    store.append_turn::<_, Entry>(key, &meta, &[]).unwrap();
    turn(&sessions, key, "today").await;
    assert_eq!(user_texts(&store, key), ["today"]);
    let archives: Vec<(u64, SessionMeta)> = store.archives(key).unwrap();
    assert_eq!(archives.len(), 1);
    let reasons: Vec<String> = store
        .lifecycle::<Transition>(key)
        .unwrap()
        .into_iter()
        .filter(|t| t.to == Phase::Closed)
        .map(|t| t.reason)
        .collect();
    assert_eq!(reasons, ["daily reset at 04:00"]);
    // A session active since the last 04:00 is not reset.
    turn(&sessions, key, "again").await;
    assert_eq!(user_texts(&store, key), ["today", "again"]);
    sessions.stop(None);
    handle.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn sessions_reset_archives_and_delete_removes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.redb")).unwrap();
    let (sessions, handle, _) = start(&store, dir.path()).await;
    let key = "agent:main:main";
    turn(&sessions, key, "one").await;
    let reset = |delete: bool| {
        let s = sessions.clone();
        async move {
            match s
                .call(
                    |reply| SessionsMsg::Reset {
                        key: key.into(),
                        delete,
                        reply,
                    },
                    None,
                )
                .await
                .unwrap()
            {
                CallResult::Success(r) => r.unwrap(),
                other => panic!("{other:?}"),
            }
        }
    };
    assert!(reset(false).await, "a session existed");
    assert!(!reset(false).await, "nothing left to reset");
    assert_eq!(store.archives::<SessionMeta>(key).unwrap().len(), 1);
    turn(&sessions, key, "two").await;
    assert_eq!(user_texts(&store, key), ["two"], "a fresh session");
    assert!(reset(true).await);
    assert!(store.archives::<SessionMeta>(key).unwrap().is_empty());
    assert!(phases(&store, key).is_empty());
    assert!(store.session::<SessionMeta>(key).unwrap().is_none());
    sessions.stop(None);
    handle.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_run_reports_its_lifecycle_start_and_end_around_the_final_chat_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.redb")).unwrap();
    let (sessions, _h, seen) = start(&store, dir.path()).await;
    let key = "agent:main:main";
    let summary = turn(&sessions, key, "hello").await;
    let events: Vec<(String, Value)> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, p)| p["runId"] == summary.run_id.as_str())
        .cloned()
        .collect();
    let shape: Vec<String> = events
        .iter()
        .map(|(e, p)| match e.as_str() {
            "agent" => format!(
                "agent/{}/{}",
                p["stream"].as_str().unwrap(),
                p["data"]["phase"].as_str().unwrap()
            ),
            _ => format!("chat/{}", p["state"].as_str().unwrap()),
        })
        .collect();
    // No model is configured: the run ends in an error telling how to configure one.
    assert_eq!(
        shape,
        [
            "agent/lifecycle/start",
            "agent/lifecycle/error",
            "chat/error"
        ],
        "{events:#?}"
    );
    let seqs: Vec<u64> = events
        .iter()
        .map(|(_, p)| p["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs[0], 1, "the start is the run's first event");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seqs increase: {seqs:?}"
    );
    let (start, end) = (&events[0].1["data"], &events[1].1["data"]);
    assert_eq!(end["startedAt"], start["startedAt"]);
    assert!(end["endedAt"].as_u64() >= start["startedAt"].as_u64());
    assert_eq!(end["aborted"], false);
    assert!(
        end["error"].as_str().is_some_and(|e| !e.is_empty()),
        "the error says what went wrong: {end}"
    );
    // A run answered without a turn (`/new`) has its lifecycle too.
    let reset = turn(&sessions, key, "/new").await;
    let shape: Vec<(String, u64)> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, p)| p["runId"] == reset.run_id.as_str())
        .map(|(e, p)| {
            let what = match e.as_str() {
                "agent" => p["data"]["phase"].as_str().unwrap().to_owned(),
                _ => p["state"].as_str().unwrap().to_owned(),
            };
            (what, p["seq"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(
        shape,
        [("start".into(), 1), ("end".into(), 2), ("final".into(), 3)]
    );
    sessions.stop(None);
}
