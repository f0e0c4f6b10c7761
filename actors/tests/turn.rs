//! The ReAct turn against the fault-injecting mock LLM: each failover layer, provider
//! faults that must end in a clear error (never a hang), tool approvals.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pincer_actors::agent::config::{AgentSpec, ExecPolicy, ModelRef, ModelSpec, ProviderSpec};
use pincer_actors::agent::failover::Cooldowns;
use pincer_actors::agent::model::{Api, Thinking};
use pincer_actors::agent::run;
use pincer_actors::agent::run::{
    AgentRuntime, Approvals, Compact, EventSink, TurnEvent, TurnInput, TurnOutput, run_turn,
};
use pincer_actors::gateway::Metrics;
use pincer_mockllm::{Fault, MockApi, MockLlm, Step};
use serde_json::{Value, json};

struct Setup {
    llm: MockLlm,
    rt: AgentRuntime,
    events: Arc<Mutex<Vec<(String, Value)>>>,
    _dir: tempfile::TempDir,
}

async fn setup(
    keys: &[&str],
    models: &[&str],
    tweak: impl FnOnce(&mut AgentSpec, &mut ExecPolicy),
) -> Setup {
    let llm = MockLlm::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let provider = ProviderSpec {
        id: "mock".into(),
        api: Api::OpenAiCompletions,
        base_url: llm.base_url(MockApi::OpenAi),
        keys: keys.iter().map(|k| k.to_string()).collect(),
        headers: Vec::new(),
        models: models.iter().map(|m| ModelSpec::with_id(m)).collect(),
        source: "test".into(),
    };
    let mut spec = AgentSpec::new("main", dir.path());
    spec.models = models
        .iter()
        .map(|m| ModelRef::parse(&format!("mock/{m}")).unwrap())
        .collect();
    spec.max_iterations = 6;
    spec.timeout = Duration::from_secs(30);
    let mut exec = ExecPolicy {
        ask: "off".into(),
        approval_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(10),
        ..ExecPolicy::default()
    };
    tweak(&mut spec, &mut exec);
    let events: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let sink: EventSink = {
        let events = events.clone();
        Arc::new(move |e: &str, p: Value| events.lock().unwrap().push((e.to_owned(), p)))
    };
    let mut rt = AgentRuntime::new(
        spec,
        BTreeMap::from([("mock".to_owned(), provider)]),
        exec,
        Arc::new(Cooldowns::new(None)),
        Arc::new(Approvals::new(sink)),
        Metrics::new(),
    );
    rt.connect_timeout = Duration::from_secs(5);
    rt.idle_timeout = Duration::from_millis(400);
    Setup {
        llm,
        rt,
        events,
        _dir: dir,
    }
}

async fn turn(
    rt: &AgentRuntime,
    message: &str,
    thinking: Option<Thinking>,
) -> (TurnOutput, Vec<TurnEvent>) {
    let seen = Mutex::new(Vec::new());
    let out = run_turn(
        rt,
        TurnInput {
            session_key: "agent:main:main".into(),
            history: Vec::new(),
            message: message.into(),
            system: "test system prompt".into(),
            thinking,
            summary: None,
            compact: Compact::Auto,
            mode: None,
            stored: None,
            models: None,
            sessions: None,
        },
        &|e| seen.lock().unwrap().push(e),
    )
    .await;
    (out, seen.into_inner().unwrap())
}

fn failovers(events: &[TurnEvent]) -> Vec<&'static str> {
    events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::Failover { layer, .. } => Some(*layer),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn layer_1_a_refused_key_cools_down_and_the_next_profile_answers() {
    let s = setup(&["bad-key", "good-key"], &["m1"], |_, _| {}).await;
    s.llm.push(Step::status(401).for_key("bad-key"));
    s.llm
        .push(Step::text("answered with the second key").for_key("good-key"));
    let (out, events) = turn(&s.rt, "hi", None).await;
    assert_eq!(out.error, None);
    assert_eq!(out.text, "answered with the second key");
    assert_eq!(failovers(&events), ["profile"]);
    let left =
        s.rt.cooldowns
            .remaining("mock:0", pincer_actors::gateway::now_ms());
    assert!(
        left.is_some_and(|d| d > Duration::from_secs(50)),
        "one minute: {left:?}"
    );
    assert!(
        s.rt.metrics
            .render()
            .contains("pincer_model_failovers_total{layer=\"profile\"} 1")
    );
    // The cooled-down key is skipped on the next turn: no request carries it.
    s.llm.push(Step::text("again"));
    let before = s.llm.requests().len();
    let (out, _) = turn(&s.rt, "hi", None).await;
    assert_eq!(out.text, "again");
    let keys: Vec<_> = s.llm.requests()[before..]
        .iter()
        .map(|r| r.api_key.clone())
        .collect();
    assert_eq!(keys, [Some("good-key".to_owned())]);
}

#[tokio::test]
async fn a_rate_limit_with_retry_after_sets_the_cool_down() {
    let s = setup(&["k"], &["m1"], |_, _| {}).await;
    s.llm.push(Step::fault(Fault::Status {
        code: 429,
        retry_after_secs: Some(900),
        body: None,
    }));
    let (out, _) = turn(&s.rt, "hi", None).await;
    let err = out.error.unwrap();
    assert!(err.contains("rate limited"), "{err}");
    let left =
        s.rt.cooldowns
            .remaining("mock:0", pincer_actors::gateway::now_ms())
            .unwrap();
    assert!(
        left > Duration::from_secs(800),
        "retry-after honoured: {left:?}"
    );
    // Every profile cooling down is a clear error, with no request sent.
    let before = s.llm.requests().len();
    let (out, _) = turn(&s.rt, "hi", None).await;
    assert!(out.error.unwrap().contains("cooling down"));
    assert_eq!(s.llm.requests().len(), before);
}

#[tokio::test]
async fn layer_2_a_rejected_thinking_level_is_downgraded() {
    let s = setup(&["k"], &["m1"], |_, _| {}).await;
    s.llm.push(Step::fault(Fault::RejectThinking));
    s.llm.push(Step::text("thought less"));
    let (out, events) = turn(&s.rt, "hi", Some(Thinking::High)).await;
    assert_eq!(out.error, None);
    assert_eq!(out.text, "thought less");
    assert_eq!(failovers(&events), ["thinking"]);
    let reqs = s.llm.requests();
    assert_eq!(reqs[0].body["reasoning_effort"], "high");
    assert_eq!(reqs[1].body["reasoning_effort"], "medium");
}

#[tokio::test]
async fn layer_3_a_provider_that_stays_down_cascades_to_the_fallback_model() {
    let s = setup(&["k"], &["m1", "m2"], |_, _| {}).await;
    s.llm.push(Step::status(500).for_model("m1"));
    s.llm.push(Step::text("from the fallback").for_model("m2"));
    let (out, events) = turn(&s.rt, "hi", None).await;
    assert_eq!(out.error, None);
    assert_eq!(out.text, "from the fallback");
    assert_eq!(out.model.as_deref(), Some("mock/m2"));
    assert_eq!(failovers(&events), ["model"]);
}

#[tokio::test]
async fn broken_streams_end_in_clear_errors_never_hangs() {
    for (fault, expect) in [
        (Fault::Truncate { events: 2 }, "ended early"),
        (Fault::InvalidJson, "malformed"),
        (Fault::Reset, "could not reach"),
        (Fault::StallAfter { events: 1 }, "did not answer"),
        (Fault::Stall, "did not answer"),
    ] {
        let s = setup(&["k"], &["m1"], |_, _| {}).await;
        s.llm.push(Step::fault(fault.clone()));
        let (out, _) = tokio::time::timeout(Duration::from_secs(15), turn(&s.rt, "hi", None))
            .await
            .unwrap_or_else(|_| panic!("{fault:?} hung the turn"));
        let err = out
            .error
            .unwrap_or_else(|| panic!("{fault:?} gave no error"));
        assert!(err.contains(expect), "{fault:?}: {err}");
    }
}

#[tokio::test]
async fn tool_calls_in_one_step_all_run_and_the_loop_stops_at_max_iterations() {
    let s = setup(&["k"], &["m1"], |spec, _| spec.max_iterations = 2).await;
    std::fs::write(s.rt.spec.workspace.join("a.txt"), "A").unwrap();
    std::fs::write(s.rt.spec.workspace.join("b.txt"), "B").unwrap();
    s.llm.push(Step::reply(
        pincer_mockllm::Reply::default()
            .with_tool_call("read", json!({"path": "a.txt"}))
            .with_tool_call("read", json!({"path": "b.txt"})),
    ));
    s.llm
        .push(Step::tool_call("read", json!({"path": "a.txt"})));
    let (out, events) = turn(&s.rt, "read both", None).await;
    let finished: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::ToolFinished { content, .. } => Some(content.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(finished.len(), 3);
    // The two calls of the first step run in parallel, so their events come in the order
    // they finish; the results go back to the model in call order.
    assert_eq!(
        finished.iter().filter(|c| c.contains('A')).count(),
        2,
        "{finished:?}"
    );
    assert_eq!(
        finished.iter().filter(|c| c.contains('B')).count(),
        1,
        "{finished:?}"
    );
    let second = &s.llm.requests()[1].body["messages"];
    let results: Vec<&str> = second
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(results.len(), 2, "{second}");
    assert!(
        results[0].contains('A') && results[1].contains('B'),
        "{results:?}"
    );
    assert!(out.error.unwrap().contains("maxIterations"));
}

#[tokio::test]
async fn high_risk_calls_wait_for_approval_and_a_silence_is_a_denial() {
    let s = setup(&["k"], &["m1"], |_, exec| {
        exec.ask = "always".into();
        exec.approval_timeout = Duration::from_millis(300);
    })
    .await;
    // Approved: the command runs.
    s.llm.push(Step::tool_call(
        "exec",
        json!({"command": "echo approved-run"}),
    ));
    s.llm.push(Step::text("done"));
    let approvals = s.rt.approvals.clone();
    let events = s.events.clone();
    let approver = tokio::spawn(async move {
        loop {
            let id = events
                .lock()
                .unwrap()
                .iter()
                .find(|(e, _)| e == "exec.approval.requested")
                .map(|(_, p)| p["id"].as_str().unwrap().to_owned());
            if let Some(id) = id {
                assert!(approvals.resolve(&id, true));
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let (out, evs) = turn(&s.rt, "run it", None).await;
    approver.await.unwrap();
    assert_eq!(out.error, None);
    let result = evs.iter().find_map(|e| match e {
        TurnEvent::ToolFinished { content, .. } => Some(content.clone()),
        _ => None,
    });
    assert!(result.unwrap().contains("approved-run"));
    // Nobody answers: denied at the timeout, the model is told.
    s.events.lock().unwrap().clear();
    s.llm
        .push(Step::tool_call("exec", json!({"command": "echo never"})));
    s.llm.push(Step::text("ok, not run"));
    let (out, evs) = turn(&s.rt, "run it", None).await;
    assert_eq!(out.text, "ok, not run");
    let denied = evs.iter().find_map(|e| match e {
        TurnEvent::ToolFinished {
            content,
            is_error: true,
            ..
        } => Some(content.clone()),
        _ => None,
    });
    assert!(denied.unwrap().contains("not approved"));
    let resolved: Vec<Value> = s
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|(e, _)| e == "exec.approval.resolved")
        .map(|(_, p)| p.clone())
        .collect();
    assert_eq!(resolved[0]["reason"], "timed out");
}

#[test]
fn approval_policy_on_miss_uses_the_allowlist_and_refuses_chained_commands() {
    let exec = pincer_actors::agent::tools::find("exec").unwrap();
    let read = pincer_actors::agent::tools::find("read").unwrap();
    let policy = ExecPolicy {
        ask: "on-miss".into(),
        allowlist: vec!["git status".into(), "ls".into()],
        approval_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
    };
    let needs = |cmd: &str| run::needs_approval(&policy, exec.as_ref(), &json!({"command": cmd}));
    assert!(!needs("ls"));
    assert!(!needs("ls -la"));
    assert!(!needs("git status"));
    assert!(needs("lsblk"), "prefixes are whole words");
    assert!(needs("ls; rm -rf ~"));
    assert!(needs("ls && curl x"));
    assert!(needs("rm x"));
    assert!(!run::needs_approval(
        &policy,
        read.as_ref(),
        &json!({"path": "x"})
    ));
}

#[tokio::test]
async fn near_the_context_window_older_history_is_summarised_first() {
    let mut s = setup(&["k"], &["m1"], |_, _| {}).await;
    // A small window: 1,500 tokens, about 6,000 characters; 75% of it is the trigger.
    s.rt.providers.get_mut("mock").unwrap().models[0].context_window = Some(1_500);
    let history: Vec<pincer_actors::agent::model::Message> = (0..10)
        .map(|i| {
            if i % 2 == 0 {
                pincer_actors::agent::model::Message::User {
                    content: format!("question {i} {}", "q".repeat(300)),
                }
            } else {
                pincer_actors::agent::model::Message::Assistant {
                    content: format!("answer {i} {}", "a".repeat(300)),
                    tool_calls: Vec::new(),
                }
            }
        })
        .collect();
    s.llm
        .push(Step::text("SUMMARY: ten exchanges about questions"));
    s.llm.push(Step::text("the answer"));
    let seen = Mutex::new(Vec::new());
    let out = run_turn(
        &s.rt,
        TurnInput {
            session_key: "agent:main:main".into(),
            history,
            message: "and now?".into(),
            system: "sys".into(),
            thinking: None,
            summary: None,
            compact: Compact::Auto,
            mode: None,
            stored: None,
            models: None,
            sessions: None,
        },
        &|e| seen.lock().unwrap().push(e),
    )
    .await;
    assert_eq!(out.error, None);
    assert_eq!(out.text, "the answer");
    let (summary, n) = out.compacted.expect("compacted");
    assert_eq!(summary, "SUMMARY: ten exchanges about questions");
    assert_eq!(n, 4, "all but the last 6 messages, cut at a user message");
    let reqs = s.llm.requests();
    assert!(
        reqs[0].body["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("question 0")
    );
    let answer = &reqs[1].body["messages"];
    assert!(
        answer[0]["content"]
            .as_str()
            .unwrap()
            .contains("SUMMARY: ten exchanges")
    );
    assert_eq!(
        answer.as_array().unwrap().len(),
        1 + 6 + 1,
        "system, 6 recent, the new message"
    );
    assert!(failovers(&seen.into_inner().unwrap()).contains(&"compaction"));
}

#[tokio::test]
async fn modes_fast_without_tools_and_deep_with_thinking_and_a_critique_pass() {
    use pincer_actors::agent::config::Mode;
    let s = setup(&["k"], &["m1"], |_, _| {}).await;
    let input = |mode| TurnInput {
        session_key: "agent:main:main".into(),
        history: Vec::new(),
        message: "hi".into(),
        system: "sys".into(),
        thinking: None,
        summary: None,
        compact: Compact::Auto,
        mode: Some(mode),
        stored: None,
        models: None,
        sessions: None,
    };
    s.llm.push(Step::text("quick"));
    let out = run_turn(&s.rt, input(Mode::Fast), &|_| {}).await;
    assert_eq!(out.text, "quick");
    let fast = s.llm.requests()[0].body.clone();
    assert!(
        fast.get("tools").is_none(),
        "fast mode sends no tools: {fast}"
    );
    s.llm.push(Step::text("draft"));
    s.llm.push(Step::text("checked answer"));
    let out = run_turn(&s.rt, input(Mode::Deep), &|_| {}).await;
    assert_eq!(out.text, "checked answer");
    assert_eq!(out.model_calls, 2);
    let reqs = s.llm.requests();
    assert_eq!(reqs[1].body["reasoning_effort"], "high");
    assert!(
        reqs[1].body["tools"].is_array(),
        "standard tools in deep mode"
    );
    let critique = reqs[2].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(
        critique["content"]
            .as_str()
            .unwrap()
            .contains("Check your answer")
    );
}

#[tokio::test]
async fn a_models_max_tokens_from_the_config_is_sent() {
    let mut s = setup(&["k"], &["m1"], |_, _| {}).await;
    s.rt.providers.get_mut("mock").unwrap().models[0].max_tokens = Some(321);
    s.llm.push(Step::text("ok"));
    let (out, _) = turn(&s.rt, "hi", None).await;
    assert_eq!(out.text, "ok");
    assert_eq!(s.llm.requests()[0].body["max_tokens"], 321);
}
