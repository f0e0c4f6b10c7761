//! What the actor-level test files share: the mock LLM as a provider, the Sessions
//! actor's arguments, and sending a message and waiting for its run. Each test file uses
//! a part of it.
#![allow(dead_code)]

use std::time::Duration;

use pincer_actors::agent::actor::AgentDirectory;
use pincer_actors::agent::config::{ModelSpec, ProviderSpec};
use pincer_actors::agent::model::Api;
use pincer_actors::agent::run::EventSink;
use pincer_actors::session::{RunSummary, SessionsArgs, SessionsMsg, TurnOptions};
use pincer_actors::store::Store;
use pincer_mockllm::{MockApi, MockLlm};
use pincer_supervision::fault::FaultHandle;
use ractor::ActorRef;
use ractor::rpc::CallResult;

/// Provider `mock` on the mock LLM's OpenAI endpoint, key `k`, with these models.
pub fn mock_provider(llm: &MockLlm, models: &[&str]) -> ProviderSpec {
    ProviderSpec {
        id: "mock".into(),
        api: Api::OpenAiCompletions,
        base_url: llm.base_url(MockApi::OpenAi),
        keys: vec!["k".into()],
        headers: Vec::new(),
        models: models.iter().map(|m| ModelSpec::with_id(m)).collect(),
        source: "test".into(),
    }
}

/// The Sessions actor's arguments: default agent `main`, main key `main`, collect mode,
/// no channels, no faults armed.
pub fn sessions_args(store: &Store, agents: &AgentDirectory, events: EventSink) -> SessionsArgs {
    SessionsArgs {
        store: store.clone(),
        agents: agents.clone(),
        default_agent: "main".into(),
        main_key: "main".into(),
        events,
        faults: FaultHandle::new(),
        collect: true,
        reset: Default::default(),
        deliver: None,
    }
}

/// Sends `text` to session `key`; the run id.
pub async fn send(s: &ActorRef<SessionsMsg>, key: &str, text: &str, opts: TurnOptions) -> String {
    let sent = s
        .call(
            |reply| SessionsMsg::Send {
                key: key.to_owned(),
                text: text.into(),
                thinking: None,
                stream: None,
                compact: false,
                mode: None,
                origin: None,
                opts,
                reply,
            },
            None,
        )
        .await
        .unwrap();
    let CallResult::Success(Ok((run_id, _))) = sent else {
        panic!("{sent:?}")
    };
    run_id
}

/// Waits (up to a minute) for run `run_id` of session `key` to end.
pub async fn wait(s: &ActorRef<SessionsMsg>, key: &str, run_id: &str) -> RunSummary {
    match s
        .call(
            |reply| SessionsMsg::Wait {
                key: key.to_owned(),
                run_id: run_id.to_owned(),
                reply,
            },
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap()
    {
        CallResult::Success(summary) => summary,
        other => panic!("{other:?}"),
    }
}

/// Sends a message and waits for its answer.
pub async fn turn(s: &ActorRef<SessionsMsg>, key: &str, text: &str) -> RunSummary {
    let run_id = send(s, key, text, TurnOptions::default()).await;
    wait(s, key, &run_id).await
}
