//! The Sessions actor on its own: idle pause and resume from the store, under paused time.
//! The agent has no model, so a turn ends at once with the how-to-configure message and
//! no socket is involved.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pincer_actors::agent::config::{AgentSpec, ExecPolicy};
use pincer_actors::agent::failover::Cooldowns;
use pincer_actors::agent::run::{AgentRuntime, Approvals, EventSink};
use pincer_actors::gateway::Metrics;
use pincer_actors::session::{IDLE_PAUSE, SessionsActor, SessionsArgs, SessionsMsg};
use pincer_actors::store::Store;
use pincer_supervision::fault::FaultHandle;
use ractor::Actor;
use ractor::rpc::CallResult;
use serde_json::Value;

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
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let events: EventSink = {
        let seen = seen.clone();
        Arc::new(move |e: &str, p: Value| seen.lock().unwrap().push((e.to_owned(), p)))
    };
    let agents = Arc::new(HashMap::from([(
        "main".to_owned(),
        Arc::new(runtime(dir.path(), events.clone())),
    )]));
    let (sessions, handle) = Actor::spawn(
        None,
        SessionsActor,
        SessionsArgs {
            store: store.clone(),
            agents,
            default_agent: "main".into(),
            main_key: "main".into(),
            events,
            faults: FaultHandle::new(),
            collect: true,
        },
    )
    .await
    .unwrap();
    let key = "agent:main:main".to_owned();
    let sent = sessions
        .call(
            |reply| SessionsMsg::Send {
                key: key.clone(),
                text: "hello".into(),
                thinking: None,
                stream: None,
                compact: false,
                mode: None,
                reply,
            },
            None,
        )
        .await
        .unwrap();
    let CallResult::Success(Ok((run_id, _))) = sent else {
        panic!("{sent:?}")
    };
    let done = sessions
        .call(
            |reply| SessionsMsg::Wait {
                key: key.clone(),
                run_id,
                reply,
            },
            None,
        )
        .await
        .unwrap();
    let CallResult::Success(summary) = done else {
        panic!()
    };
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
