//! Exec approvals answered from the chat, through the real binary: the agent (mock LLM)
//! calls `exec`, which needs approval (`tools.exec.ask` on-miss); the chat gets a prompt
//! with buttons (a fake Telegram's inline keyboard, a fake Slack's Block Kit), a press
//! resolves it, the command runs or not, and the prompt is edited to show the outcome.

mod support;

use std::path::Path;
use std::time::Duration;

use pincer_fakes::slack::{FakeSlack, PostKind, SlackChannel};
use pincer_fakes::telegram::{FakeTelegram, SentKind, SentMessage};
use pincer_mockllm::{MockLlm, Step};
use serde_json::{Value, json};
use support::*;

const TOKEN: &str = "123456:TEST-token";
const WAIT: Duration = Duration::from_secs(20);
/// `$` makes it a command the on-miss policy always asks about; its output is not in it.
const COMMAND: &str = "echo $((1234+4321))";

/// The mock-model config with these `channels` and `tools.exec`.
fn write_config(home: &Path, llm: &MockLlm, channels: Value, exec: Value) {
    write_mock_config(
        home,
        llm,
        json!({"tools": {"exec": exec}, "channels": channels}),
    );
}

fn telegram(tg: &FakeTelegram, extra: Value) -> Value {
    let approvals = telegram_config(tg, json!({"dmPolicy": "open", "execApprovals": true}));
    merged(approvals, &extra)
}

/// The agent's script: run the command, then answer.
fn script(llm: &MockLlm) {
    llm.push(Step::tool_call("exec", json!({ "command": COMMAND })));
    llm.push(Step::text("All done."));
}

/// What the tool said to the model in the second request.
fn tool_result(llm: &MockLlm) -> String {
    let reqs = chat_requests(llm);
    assert_eq!(reqs.len(), 2, "one turn, two model calls");
    reqs[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].to_string())
        .collect()
}

/// The `callback_data` of the prompt's buttons: (approve, deny).
fn buttons(prompt: &SentMessage) -> (String, String) {
    let row = &prompt.reply_markup.as_ref().expect("a keyboard")["inline_keyboard"][0];
    assert_eq!(row[0]["text"], "Approve");
    assert_eq!(row[1]["text"], "Deny");
    (
        row[0]["callback_data"].as_str().unwrap().to_owned(),
        row[1]["callback_data"].as_str().unwrap().to_owned(),
    )
}

/// Waits for the `n`th sent-or-edited message and returns all.
async fn sent(tg: &FakeTelegram, n: usize) -> Vec<SentMessage> {
    tg.wait_sent(n, WAIT).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_telegram_dm_approves_with_a_button_and_the_command_runs() {
    let tg = FakeTelegram::start(TOKEN).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_config(
        &home,
        &llm,
        json!({"telegram": telegram(&tg, json!({}))}),
        json!({}),
    );
    let _gw = Daemon::start(&home, &["--port", "0"], &[]);
    script(&llm);
    tg.user_message(4242, 4242, "add the numbers");

    let prompt = sent(&tg, 1).await.remove(0);
    assert_eq!((prompt.kind, prompt.chat_id), (SentKind::Message, 4242));
    assert!(prompt.shown_text.contains(COMMAND), "{}", prompt.shown_text);
    assert!(prompt.shown_text.contains("Approval needed"));
    let (approve, deny) = buttons(&prompt);
    assert!(approve.starts_with("pa:y:") && deny.starts_with("pa:n:"));
    assert!(approve.len() <= 64);
    assert_eq!(tg.calls("answerCallbackQuery").len(), 0);

    tg.callback(4242, 4242, prompt.message_id, &approve);
    let all = sent(&tg, 3).await;
    let edit = all
        .iter()
        .find(|m| m.kind == SentKind::Edit)
        .expect("the prompt is edited");
    assert_eq!(edit.message_id, prompt.message_id);
    assert!(
        edit.shown_text.contains("Approved by"),
        "{}",
        edit.shown_text
    );
    assert!(edit.reply_markup.is_none(), "the buttons are gone");
    let reply = all
        .iter()
        .filter(|m| m.kind == SentKind::Message)
        .nth(1)
        .unwrap();
    assert_eq!(reply.shown_text, "All done.");
    let answered = tg.calls("answerCallbackQuery");
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].params["text"], "Approved");
    assert!(answered[0].fault.is_none());
    let result = tool_result(&llm);
    assert!(result.contains("5555"), "the command ran: {result}");
    // The poll asked for button presses.
    let polls = tg.calls("getUpdates");
    assert!(
        polls[0].params.to_string().contains("callback_query"),
        "{:?}",
        polls[0].params
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_telegram_deny_refuses_and_a_stranger_in_a_group_cannot_answer() {
    let tg = FakeTelegram::start(TOKEN).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_config(
        &home,
        &llm,
        json!({"telegram": telegram(&tg, json!({
            "allowFrom": [4242],
            "groupPolicy": "open",
            "groups": {"*": {"requireMention": false}},
        }))}),
        json!({}),
    );
    let _gw = Daemon::start(&home, &["--port", "0"], &[]);
    script(&llm);
    tg.group_message(-100777, 4242, "add the numbers", None);
    let prompt = sent(&tg, 1).await.remove(0);
    assert_eq!(prompt.chat_id, -100777);
    let (_, deny) = buttons(&prompt);

    // A stranger presses first: told off, nothing resolved.
    tg.callback(-100777, 999, prompt.message_id, &deny);
    let refused = tg.wait_calls("answerCallbackQuery", 1, WAIT).await.unwrap();
    assert_eq!(refused[0].params["show_alert"], true, "{:?}", refused[0]);
    assert!(
        refused[0].params["text"]
            .as_str()
            .unwrap()
            .contains("allowFrom")
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(tg.sent().len(), 1, "no edit, no reply: {:?}", tg.sent());
    assert_eq!(model_turns(&llm), 1, "the turn is still waiting");

    // Someone in allowFrom denies.
    tg.callback(-100777, 4242, prompt.message_id, &deny);
    let all = sent(&tg, 3).await;
    let edit = all.iter().find(|m| m.kind == SentKind::Edit).unwrap();
    assert!(edit.shown_text.contains("Denied by"), "{}", edit.shown_text);
    assert!(all.iter().any(|m| m.shown_text == "All done."));
    let result = tool_result(&llm);
    assert!(result.contains("was not approved"), "{result}");
    assert!(!result.contains("5555"));
    let answered = tg.calls("answerCallbackQuery");
    assert_eq!(answered.len(), 2);
    assert_eq!(answered[1].params["text"], "Denied");

    // A late press on the answered prompt: no longer pending.
    tg.callback(-100777, 4242, prompt.message_id, &deny);
    let late = tg.wait_calls("answerCallbackQuery", 3, WAIT).await.unwrap();
    assert!(
        late[2].params["text"]
            .as_str()
            .unwrap()
            .contains("no longer pending")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unanswered_prompt_is_edited_to_expired() {
    let tg = FakeTelegram::start(TOKEN).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_config(
        &home,
        &llm,
        json!({"telegram": telegram(&tg, json!({}))}),
        json!({"approvalTimeoutSeconds": 1}),
    );
    let _gw = Daemon::start(&home, &["--port", "0"], &[]);
    script(&llm);
    tg.user_message(4242, 4242, "add the numbers");
    let all = sent(&tg, 3).await;
    assert!(all[0].reply_markup.is_some());
    let edit = all.iter().find(|m| m.kind == SentKind::Edit).unwrap();
    assert_eq!(edit.message_id, all[0].message_id);
    assert!(edit.shown_text.contains("Expired"), "{}", edit.shown_text);
    assert!(all.iter().any(|m| m.shown_text == "All done."));
    assert!(tool_result(&llm).contains("was not approved"));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_exec_approvals_the_chat_gets_no_prompt() {
    let tg = FakeTelegram::start(TOKEN).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_config(
        &home,
        &llm,
        json!({"telegram": telegram(&tg, json!({"execApprovals": false}))}),
        json!({"approvalTimeoutSeconds": 1}),
    );
    let _gw = Daemon::start(&home, &["--port", "0"], &[]);
    script(&llm);
    tg.user_message(4242, 4242, "add the numbers");
    let all = sent(&tg, 1).await;
    assert_eq!(all[0].shown_text, "All done.");
    assert!(tool_result(&llm).contains("was not approved"));
}

const SLACK_TOKEN: &str = "xoxb-1111-2222-TESTTOKEN";
const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const DM: &str = "D0USER0001";
const USER: &str = "U0USER0001";

fn slack_config(slack: &FakeSlack, extra: Value) -> Value {
    let approvals = support::slack_config(slack, json!({"execApprovals": true}));
    merged(approvals, &extra)
}

/// The approval id in a prompt's buttons, checking their shape.
fn slack_buttons(blocks: &Value) -> String {
    let actions = blocks
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .expect("an actions block");
    let els = actions["elements"].as_array().unwrap();
    assert_eq!(els[0]["action_id"], "approve");
    assert_eq!(els[1]["action_id"], "deny");
    assert_eq!(els[0]["value"], els[1]["value"]);
    els[0]["value"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slack_dm_approves_with_block_kit_buttons() {
    let slack = FakeSlack::start(SLACK_TOKEN, SECRET).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_config(
        &home,
        &llm,
        json!({"slack": slack_config(&slack, json!({}))}),
        json!({}),
    );
    let _gw = start_slack_gateway(&home, &slack).await;
    script(&llm);
    let d = slack
        .send_message(DM, USER, "add the numbers")
        .await
        .unwrap();
    assert_eq!(d.reply.as_ref().map(|r| r.status), Ok(200));
    let prompt = slack.wait_posted(1, WAIT).await.unwrap().remove(0);
    assert_eq!((prompt.kind, prompt.channel.as_str()), (PostKind::Post, DM));
    assert!(prompt.text.as_deref().unwrap().contains(COMMAND));
    let id = slack_buttons(prompt.blocks.as_ref().unwrap());

    let d = slack
        .send_block_actions(DM, USER, &prompt.ts, "approve", &id)
        .await
        .unwrap();
    assert_eq!(d.reply.as_ref().map(|r| r.status), Ok(200), "{d:?}");
    let all = slack.wait_posted(3, WAIT).await.unwrap();
    let update = all.iter().find(|m| m.kind == PostKind::Update).unwrap();
    assert_eq!(update.ts, prompt.ts);
    let text = update.text.as_deref().unwrap();
    assert!(text.contains("Approved by"), "{text}");
    assert!(
        !update
            .blocks
            .as_ref()
            .unwrap()
            .to_string()
            .contains("actions"),
        "the buttons are gone"
    );
    assert!(
        all.iter()
            .any(|m| m.kind == PostKind::Post && m.text.as_deref() == Some("All done."))
    );
    assert!(tool_result(&llm).contains("5555"));
    assert!(slack.response_url_posts().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slack_stranger_is_refused_and_an_allowed_user_denies() {
    let slack = FakeSlack::start(SLACK_TOKEN, SECRET).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    let chan = "C0CHAN0001";
    slack.add_channel(SlackChannel::from_id(chan));
    write_config(
        &home,
        &llm,
        json!({"slack": slack_config(&slack, json!({
            "allowFrom": [USER],
            "groupPolicy": "open",
            "groups": {"*": {"requireMention": false}},
        }))}),
        json!({}),
    );
    let _gw = start_slack_gateway(&home, &slack).await;
    script(&llm);
    slack
        .send_message(chan, USER, "add the numbers")
        .await
        .unwrap();
    let prompt = slack.wait_posted(1, WAIT).await.unwrap().remove(0);
    assert_eq!(prompt.channel, chan);
    let id = slack_buttons(prompt.blocks.as_ref().unwrap());

    let d = slack
        .send_block_actions(chan, "U0STRANGER", &prompt.ts, "approve", &id)
        .await
        .unwrap();
    assert_eq!(d.reply.as_ref().map(|r| r.status), Ok(200));
    let note = slack.wait_response_url_posts(1, WAIT).await.unwrap();
    assert_eq!(note[0].body["response_type"], "ephemeral");
    assert!(note[0].body["text"].as_str().unwrap().contains("allowFrom"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        slack.posted().len(),
        1,
        "not resolved: {:?}",
        slack.posted()
    );

    slack
        .send_block_actions(chan, USER, &prompt.ts, "deny", &id)
        .await
        .unwrap();
    let all = slack.wait_posted(3, WAIT).await.unwrap();
    let update = all.iter().find(|m| m.kind == PostKind::Update).unwrap();
    assert!(update.text.as_deref().unwrap().contains("Denied by"));
    assert!(tool_result(&llm).contains("was not approved"));
}
