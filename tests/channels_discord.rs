//! The Discord channel end to end through the real binary: a fake Discord (REST and the
//! Gateway WebSocket) on loopback, the gateway's ChannelActor connected to it, a session
//! and a turn against the mock LLM, and the reply posted back in Discord's Markdown,
//! chunked under 2,000 characters; reconnects, a restart that resumes the saved session,
//! rate limits, refused credentials and slash commands.

mod support;

use std::path::Path;
use std::time::Duration;

use pincer_fakes::discord::{FakeDiscord, Fault, SentKind};
use pincer_mockllm::Step;
use serde_json::{Value, json};
use support::*;

const TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAw.GfakeX.discord-test-token";
const WAIT: Duration = Duration::from_secs(20);
const DM: &str = "5001";
const USER: &str = "4242";

fn discord(dc: &FakeDiscord, extra: Value) -> Value {
    merged(
        json!({
            "botToken": dc.token(),
            "apiBaseUrl": dc.api_url(),
            "dmPolicy": "open",
        }),
        &extra,
    )
}

/// Starts the gateway and waits until the account has a Gateway session (so what the fake
/// dispatches from now on reaches it).
async fn start(home: &Path, dc: &FakeDiscord) -> Daemon {
    let gw = Daemon::start(home, &["--port", "0"], &[]);
    dc.wait_sessions(1, WAIT).await.unwrap();
    gw
}

/// Waits until a Gateway connection matches `pred` (the fake has no wait for this one).
async fn wait_connection(
    dc: &FakeDiscord,
    pred: impl Fn(&pincer_fakes::discord::GatewayConnection) -> bool,
) -> pincer_fakes::discord::GatewayConnection {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(c) = dc.connections().into_iter().find(|c| pred(c)) {
            return c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no such connection: {:?}",
            dc.connections()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `channels.status` until `done` holds for the discord accounts (or gives up).
async fn wait_status(gw: &Daemon, home: &Path, done: impl Fn(&[Value]) -> bool) -> Value {
    let mut s = connect(&gw.url(), &read_token(home)).await;
    poll_channel_accounts(&mut s, "discord", 200, done)
        .await
        .unwrap_or_else(|last| panic!("channels.status never got there: {last}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dm_gets_its_agent_reply_in_ordered_chunks_answering_the_message() {
    let dc = FakeDiscord::start(TOKEN).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_channels_config(&home, &llm, json!({"discord": discord(&dc, json!({}))}));
    let _gw = start(&home, &dc).await;
    let identify = dc.connections()[0].identify.clone().unwrap();
    assert_eq!(identify["intents"], 1 | (1 << 9) | (1 << 12) | (1 << 15));

    // About 6,000 characters of Markdown: three messages under Discord's 2,000.
    let para = "The **quick** brown fox jumps over the lazy dog. ".repeat(40);
    let long = format!("{para}\n\n{para}\n\n{para}");
    llm.push(Step::text(long.clone()));
    let original = dc.dm_message(DM, USER, "hello there");
    let original_id = original["id"].as_str().unwrap();
    let sent = dc.wait_sent(3, WAIT).await.unwrap();
    assert_eq!(sent.len(), 3, "{sent:?}");
    for m in &sent {
        assert_eq!(m.kind, SentKind::Message);
        assert_eq!(m.channel_id, DM);
        assert!(m.content.chars().count() <= 2000, "{}", m.content.len());
        assert!(m.content.contains("**quick**"), "{}", m.content);
    }
    assert_eq!(sent[0].reply_to.as_deref(), Some(original_id));
    assert!(sent[1].reply_to.is_none() && sent[2].reply_to.is_none());
    let shown: Vec<String> = sent.iter().map(|m| m.content.clone()).collect();
    assert_eq!(
        shown.join(" ").split_whitespace().collect::<Vec<_>>(),
        long.split_whitespace().collect::<Vec<_>>(),
        "every word arrives, in order"
    );
    let asked = llm.requests().last().unwrap().body.to_string();
    assert!(asked.contains("hello there"), "{asked}");
    // The fake echoes the bot's own messages on the Gateway: they start no turn.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(model_turns(&llm), 1);
    assert_eq!(dc.sent().len(), 3);
    assert!(
        dc.calls("create_message").iter().all(|c| c.token_ok),
        "every call carried the bot token"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guild_message_needs_a_mention_where_the_group_requires_one() {
    let dc = FakeDiscord::start(TOKEN).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    dc.add_guild_channel("900", "901", "general");
    write_channels_config(
        &home,
        &llm,
        json!({"discord": discord(&dc, json!({
            "groupPolicy": "allowlist",
            "groups": {"901": {"requireMention": true}},
        }))}),
    );
    let _gw = start(&home, &dc).await;

    dc.guild_message("900", "901", USER, "just chatting among ourselves");
    // Not in groups: refused whatever it says.
    dc.guild_message("900", "999", USER, &format!("<@{}> hi", dc.bot().id));
    llm.push(Step::text("at your service"));
    let asked = dc.guild_message(
        "900",
        "901",
        USER,
        &format!("<@{}> are you there?", dc.bot().id),
    );
    let sent = dc.wait_sent(1, WAIT).await.unwrap();
    assert_eq!(sent[0].channel_id, "901");
    assert_eq!(sent[0].content, "at your service");
    assert_eq!(sent[0].reply_to.as_deref(), asked["id"].as_str());
    // The worker takes events in order: the two before were decided before this one.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(model_turns(&llm), 1);
    assert_eq!(dc.sent().len(), 1, "{:?}", dc.sent());
    let body = llm.requests().last().unwrap().body.to_string();
    assert!(body.contains("are you there?"), "{body}");
    assert!(!body.contains("among ourselves"), "{body}");
    // A reply to the bot's message counts as a mention too.
    llm.push(Step::text("still here"));
    dc.reply_message(&sent[0].message_id, USER, "and now?")
        .unwrap();
    let sent = dc.wait_sent(2, WAIT).await.unwrap();
    assert_eq!(sent[1].content, "still here");
    // A slash command in a channel not in groups: its "thinking" ends with a short note.
    let i = dc.slash_command("status", "999", Some("900"), USER, Value::Null);
    let sent = dc.wait_sent(3, WAIT).await.unwrap();
    assert_eq!(sent[2].interaction_id.as_deref(), Some(i.id.as_str()));
    assert!(sent[2].content.contains("does not answer"), "{sent:?}");
    assert_eq!(model_turns(&llm), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn reconnects_resume_the_session_and_answer_each_message_once() {
    let dc = FakeDiscord::start(TOKEN).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    dc.set_heartbeat_interval(Duration::from_millis(1000));
    write_channels_config(&home, &llm, json!({"discord": discord(&dc, json!({}))}));
    let _gw = start(&home, &dc).await;
    let session = dc.connections()[0].session_id.clone().unwrap();

    llm.push(Step::text("first answer"));
    dc.dm_message(DM, USER, "before");
    dc.wait_sent(1, WAIT).await.unwrap();
    dc.wait_heartbeats(2, WAIT).await.unwrap();

    // op 7 Reconnect: the client resumes on the resume_gateway_url.
    let seq_before = dc.session_seq(&session).unwrap();
    dc.send_reconnect();
    let conns = dc.wait_sessions(2, WAIT).await.unwrap();
    let resume = conns[1].resume.clone().expect("a Resume, not an Identify");
    assert!(conns[1].identify.is_none());
    assert_eq!(resume["session_id"], session.as_str());
    let seq = resume["seq"].as_u64().unwrap();
    assert!(seq >= 2 && seq <= seq_before, "{seq} vs {seq_before}");
    assert!(conns[1].uri.starts_with("/resume"), "{}", conns[1].uri);
    llm.push(Step::text("second answer"));
    dc.dm_message(DM, USER, "after the reconnect");
    dc.wait_sent(2, WAIT).await.unwrap();

    // A dropped TCP connection; a message dispatched meanwhile is replayed on Resume.
    dc.drop_connections();
    llm.push(Step::text("third answer"));
    dc.dm_message(DM, USER, "while it was down");
    let conns = dc.wait_sessions(3, WAIT).await.unwrap();
    assert_eq!(
        conns[2].resume.as_ref().unwrap()["session_id"],
        session.as_str()
    );
    dc.wait_sent(3, WAIT).await.unwrap();

    // A zombied connection (heartbeats no longer ACKed): detected, resumed.
    dc.stop_acking_heartbeats();
    dc.wait_sessions(4, WAIT).await.unwrap();
    dc.resume_acking_heartbeats();
    let conns = dc.connections();
    assert!(conns[3].resume.is_some(), "{conns:?}");
    assert!(
        !conns[2].heartbeat_timed_out,
        "the client noticed before the fake did"
    );

    // op 9 (not resumable): a new session with Identify.
    dc.invalidate_sessions(false);
    let fresh = wait_connection(&dc, |c| {
        c.id > 1 && c.identify.is_some() && c.session_id.is_some()
    })
    .await;
    assert_ne!(fresh.session_id.as_deref(), Some(session.as_str()));
    llm.push(Step::text("fourth answer"));
    dc.dm_message(DM, USER, "on the new session");
    dc.wait_sent(4, WAIT).await.unwrap();

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let texts: Vec<String> = dc.sent().into_iter().map(|m| m.content).collect();
    assert_eq!(
        texts,
        [
            "first answer",
            "second answer",
            "third answer",
            "fourth answer"
        ],
        "each message answered exactly once"
    );
    assert_eq!(model_turns(&llm), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_resumes_the_saved_session_and_answers_what_came_meanwhile_once() {
    let dc = FakeDiscord::start(TOKEN).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_channels_config(&home, &llm, json!({"discord": discord(&dc, json!({}))}));
    let gw = start(&home, &dc).await;
    let session = dc.connections()[0].session_id.clone().unwrap();

    llm.push(Step::text("first answer"));
    dc.dm_message(DM, USER, "before the restart");
    // The DM's sequence number (the bot's own reply is dispatched after it).
    let taken_seq = dc.session_seq(&session).unwrap();
    dc.wait_sent(1, WAIT).await.unwrap();

    // Stopped: the connection goes without a clean close, so the session stays resumable.
    gw.signal(libc::SIGTERM);
    let (code, lines) = gw.wait();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    let closed = dc.wait_closed(1, WAIT).await.unwrap();
    assert!(
        !matches!(
            closed[0].closed,
            Some(pincer_fakes::discord::Closed::ByClient {
                code: Some(1000 | 1001)
            })
        ),
        "{closed:?}"
    );
    llm.push(Step::text("second answer"));
    dc.dm_message(DM, USER, "while pincer was down");

    // Restarted on the same state: Resume with the saved session and the seq of the last
    // message taken in, on the resume URL; Discord replays what came after.
    let _gw = start_again(&home, &dc).await;
    let conns = dc.connections();
    assert_eq!(conns.len(), 2, "{conns:?}");
    assert!(conns[1].identify.is_none(), "{conns:?}");
    assert!(conns[1].uri.starts_with("/resume"), "{}", conns[1].uri);
    let resume = conns[1].resume.clone().expect("a Resume, not an Identify");
    assert_eq!(resume["session_id"], session.as_str());
    assert_eq!(resume["seq"], taken_seq);
    assert_eq!(conns[1].session_id.as_deref(), Some(session.as_str()));

    let sent = dc.wait_sent(2, WAIT).await.unwrap();
    assert_eq!(sent[1].content, "second answer");
    let asked = llm.requests().last().unwrap().body.to_string();
    assert!(asked.contains("while pincer was down"), "{asked}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let texts: Vec<String> = dc.sent().into_iter().map(|m| m.content).collect();
    assert_eq!(
        texts,
        ["first answer", "second answer"],
        "each answered once"
    );
    assert_eq!(model_turns(&llm), 2);
}

/// Starts the gateway again and waits for its second Gateway session.
async fn start_again(home: &Path, dc: &FakeDiscord) -> Daemon {
    let gw = Daemon::start(home, &["--port", "0"], &[]);
    dc.wait_sessions(2, WAIT).await.unwrap();
    gw
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_send_waits_as_told_and_is_delivered_once() {
    let dc = FakeDiscord::start(TOKEN).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_channels_config(&home, &llm, json!({"discord": discord(&dc, json!({}))}));
    let _gw = start(&home, &dc).await;

    dc.fail_times(
        "create_message",
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        3,
    );
    llm.push(Step::text("patience pays"));
    let started = std::time::Instant::now();
    dc.dm_message(DM, USER, "hi");
    let sent = dc.wait_sent(1, Duration::from_secs(30)).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "three retry_after waits of 1 s: {:?}",
        started.elapsed()
    );
    assert_eq!(sent[0].content, "patience pays");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(dc.sent().len(), 1);
    let calls = dc.calls("create_message");
    assert_eq!(calls.len(), 4, "three refused, then sent: {calls:?}");
    assert!(calls[..3].iter().all(|c| c.fault.is_some()) && calls[3].fault.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_credentials_and_intents_are_reported_while_the_gateway_serves() {
    let dc = FakeDiscord::start(TOKEN).await;
    let strict = FakeDiscord::start(TOKEN).await;
    strict.set_privileged_intents(0);
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_channels_config(
        &home,
        &llm,
        json!({"discord": {"dmPolicy": "open", "accounts": {
            "main": {"botToken": TOKEN, "apiBaseUrl": dc.api_url()},
            "broken": {"botToken": "revoked-token", "apiBaseUrl": dc.api_url()},
            "nocontent": {"botToken": TOKEN, "apiBaseUrl": strict.api_url()},
        }}}),
    );
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let st = wait_status(&gw, &home, |a| {
        let state = |id: &str| {
            a.iter()
                .find(|x| x["accountId"] == id)
                .map(|x| x["state"].clone())
        };
        state("main") == Some(json!("running"))
            && state("broken") == Some(json!("error"))
            && state("nocontent") == Some(json!("error"))
    })
    .await;
    let accounts = st["channelAccounts"]["discord"].as_array().unwrap();
    let error = |id: &str| {
        accounts.iter().find(|a| a["accountId"] == id).unwrap()["lastError"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(
        error("broken").contains("channels.discord.botToken"),
        "{st}"
    );
    assert!(error("nocontent").contains("4014"), "{st}");
    assert!(
        error("nocontent").contains("Message Content Intent"),
        "{st}"
    );
    let url = gw.url();
    let out = pincer(&home, &["channels", "status", "--url", &url]);
    let shown = text(&out);
    assert!(shown.contains("discord:broken  error"), "{shown}");
    assert!(shown.contains("discord:main  running as @"), "{shown}");

    // The good account still answers, and the secrets never show.
    llm.push(Step::text("all good here"));
    dc.dm_message(DM, USER, "anyone home?");
    let sent = dc.wait_sent(1, WAIT).await.unwrap();
    assert_eq!(sent[0].content, "all good here");
    let mut s = connect(&gw.url(), &read_token(&home)).await;
    let cfg = s.request("config.get", None).await.unwrap().to_string();
    assert!(
        !cfg.contains(TOKEN) && !cfg.contains("revoked-token"),
        "{cfg}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slash_commands_are_registered_and_answered_in_their_interaction() {
    let dc = FakeDiscord::start(TOKEN).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_channels_config(
        &home,
        &llm,
        json!({"discord": discord(&dc, json!({"groupPolicy": "open"}))}),
    );
    let _gw = start(&home, &dc).await;
    // A turn first, so /status has something to show.
    llm.push(Step::text("hello back"));
    dc.dm_message(DM, USER, "hello");
    dc.wait_sent(1, WAIT).await.unwrap();

    // The worker registered the commands (PUT answered) before taking this message in.
    assert_eq!(dc.calls("bulk_overwrite_commands").len(), 1);
    let names: Vec<Value> = dc.commands().iter().map(|c| c["name"].clone()).collect();
    assert_eq!(names, [json!("new"), json!("status")]);

    let i = dc.slash_command("status", DM, None, USER, Value::Null);
    let responses = dc.wait_interaction_responses(1, WAIT).await.unwrap();
    assert_eq!(responses[0].interaction_id, i.id);
    assert_eq!(
        responses[0].kind, 5,
        "deferred: the user sees the bot thinking"
    );
    let sent = dc.wait_sent(2, WAIT).await.unwrap();
    assert_eq!(sent[1].kind, SentKind::InteractionReply, "{sent:?}");
    assert_eq!(sent[1].interaction_id.as_deref(), Some(i.id.as_str()));
    assert!(sent[1].content.contains("1 turn"), "{}", sent[1].content);
    assert!(sent[1].content.starts_with("Agent "), "{}", sent[1].content);

    // /new in a guild channel (no mention needed for a command).
    let i = dc.slash_command("new", "901", Some("900"), USER, Value::Null);
    let sent = dc.wait_sent(3, WAIT).await.unwrap();
    assert_eq!(sent[2].kind, SentKind::InteractionReply, "{sent:?}");
    assert_eq!(sent[2].interaction_id.as_deref(), Some(i.id.as_str()));
    assert!(
        sent[2].content.contains("new session"),
        "{}",
        sent[2].content
    );
    assert_eq!(dc.interaction_responses().len(), 2);
    assert_eq!(model_turns(&llm), 1, "commands start no turn");
}
