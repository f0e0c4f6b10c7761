//! Cron jobs through the real binary: `pincer cron add` then `pincer cron run` makes an
//! agent turn (mock LLM) and a run-history entry; a job with `--deliver` sends the reply
//! to a fake Telegram chat through the gateway's channel account.

mod support;

use std::path::Path;
use std::time::Duration;

use pincer_fakes::telegram::{FakeChat, FakeTelegram, FakeUser};
use pincer_mockllm::Step;
use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(20);

/// `pincer cron ...` against the gateway at `url`; the output and exit code.
fn cron(home: &Path, url: &str, args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["cron"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--url", url, "--timeout", "30000"]);
    let out = pincer(home, &all);
    (out.status.code(), text(&out))
}

fn cron_json(home: &Path, url: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out) = cron(home, url, &all);
    assert_eq!(code, Some(0), "{args:?}: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// The user message of the model's last chat request.
fn last_user_message(llm: &pincer_mockllm::MockLlm) -> String {
    let reqs = chat_requests(llm);
    let body = &reqs.last().expect("a model request").body;
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn cron_add_then_run_makes_an_agent_turn_and_a_run_history_entry() {
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_mock_config(&home, &llm, json!({}));
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let url = gw.url();

    let (code, out) = cron(
        &home,
        &url,
        &[
            "add",
            "0 7 * * *",
            "Summarise the news",
            "--tz",
            "UTC",
            "--name",
            "brief",
            "--id",
            "brief",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.starts_with("added brief  on   cron \"0 7 * * *\" UTC  isolated  next "),
        "{out}"
    );
    let (_, listed) = cron(&home, &url, &["list"]);
    assert!(listed.contains("brief  on   cron"), "{listed}");

    llm.push(Step::text("Here is your morning brief."));
    let (code, out) = cron(&home, &url, &["run", "brief"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("#1  "), "{out}");
    assert!(
        out.contains("  manual  ok  ") && out.trim_end().ends_with("Here is your morning brief."),
        "{out}"
    );
    assert_eq!(model_turns(&llm), 1);
    assert_eq!(
        last_user_message(&llm),
        "[cron:brief brief] Summarise the news"
    );

    let runs = cron_json(&home, &url, &["runs", "brief"]);
    let e = &runs["entries"][0];
    assert_eq!(e["status"], "ok", "{runs}");
    assert_eq!(e["trigger"], "manual");
    assert_eq!(e["sessionKey"], "agent:main:cron:brief");
    assert_eq!(e["summary"], "Here is your morning brief.");
    assert_eq!(e["action"], "finished");
    assert!(e["runId"].as_str().is_some_and(|r| !r.is_empty()), "{e}");
    assert!(e["durationMs"].as_u64().is_some(), "{e}");
    let jobs = cron_json(&home, &url, &["list"]);
    assert_eq!(jobs["jobs"][0]["state"]["lastStatus"], "ok");
    let next = jobs["jobs"][0]["state"]["nextRunAtMs"].as_u64().unwrap();
    assert_eq!(
        next % 86_400_000,
        7 * 3_600_000,
        "07:00 UTC, untouched by the manual run"
    );

    // A main-session job: the agent hears of it as a system event.
    let (code, out) = cron(
        &home,
        &url,
        &[
            "add",
            "--every",
            "1h",
            "--main",
            "check the oven",
            "--id",
            "oven",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    llm.push(Step::text("The oven is off."));
    let (code, out) = cron(&home, &url, &["run", "oven"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        last_user_message(&llm),
        "System: [cron:oven] check the oven"
    );
    let runs = cron_json(&home, &url, &["runs", "oven"]);
    assert_eq!(runs["entries"][0]["sessionKey"], "agent:main:main");

    // Mistakes are refused with what to do.
    let (code, out) = cron(&home, &url, &["add", "* * *", "m"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("has 3 fields: give 5"), "{out}");
    let (code, out) = cron(&home, &url, &["add", "0 7 * * *", "m", "--tz", "Mars/Base"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("IANA zone"), "{out}");
    let (code, out) = cron(&home, &url, &["add", "0 7 * * *", "m", "--agent", "ghost"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("\"ghost\" is not a configured agent"), "{out}");
    let (code, out) = cron(&home, &url, &["run", "nope"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no cron job \"nope\""), "{out}");

    let (code, out) = cron(&home, &url, &["rm", "brief"]);
    assert_eq!(
        (code, out.trim()),
        (Some(0), "removed cron job brief and its run history")
    );
    let (_, out) = cron(&home, &url, &["runs", "brief"]);
    assert_eq!(out.trim(), "job brief has not run yet");
    let status = cron_json(&home, &url, &["status"]);
    assert_eq!(
        (&status["enabled"], &status["jobs"]),
        (&json!(true), &json!(1))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_with_delivery_sends_the_reply_to_the_chat() {
    let tg = FakeTelegram::start("123456:TEST-token").await;
    tg.add_chat(FakeChat::private(&FakeUser::new(12345, "Bob")));
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_channels_config(
        &home,
        &llm,
        json!({"telegram": telegram_config(&tg, json!({"dmPolicy": "open"}))}),
    );
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let mut s = connect(&gw.url(), &read_token(&home)).await;
    poll_channel_accounts(&mut s, "telegram", 100, |a| a[0]["state"] == "running")
        .await
        .expect("the telegram account runs");
    let url = gw.url();

    let (code, out) = cron(
        &home,
        &url,
        &[
            "add",
            "--every",
            "1d",
            "Say good morning",
            "--deliver",
            "telegram:12345",
            "--id",
            "gm",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("-> telegram:12345"), "{out}");
    llm.push(Step::text("Good **morning**!"));
    let (code, out) = cron(&home, &url, &["run", "gm"]);
    assert_eq!(code, Some(0), "{out}");
    let sent = tg.wait_sent(1, WAIT).await.unwrap();
    assert_eq!(sent[0].chat_id, 12345);
    assert_eq!(sent[0].shown_text, "Good morning!");
    assert_eq!(sent[0].reply_to_message_id, None, "it answers no message");

    // A chat on a channel that is not configured: the run fails and says why.
    let (code, out) = cron(
        &home,
        &url,
        &[
            "add",
            "--every",
            "1d",
            "m",
            "--deliver",
            "slack:C1",
            "--id",
            "lost",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = cron(&home, &url, &["run", "lost"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("delivery: no slack account is configured"),
        "{out}"
    );
    assert_eq!(model_turns(&llm), 1, "no turn for an undeliverable job");
    assert_eq!(tg.sent().len(), 1);
}
