//! Streaming replies on Telegram through the real binary: the mock LLM streams a reply in
//! deltas with delays, the chat shows a plain-text draft edited at most once per interval,
//! and the final formatted reply replaces the draft (further chunks as new messages).

mod support;

use std::path::Path;
use std::time::Duration;

use pincer_fakes::telegram::{FakeTelegram, Fault, SentKind, SentMessage};
use pincer_mockllm::{MockLlm, Step};
use serde_json::{Value, json};
use support::*;

const TOKEN: &str = "123456:TEST-token";
const WAIT: Duration = Duration::from_secs(40);
/// The default `streamEditIntervalMs`.
const INTERVAL: Duration = Duration::from_millis(1000);
/// How much earlier than the gateway the fake may note a message (its clock, the network).
const SLACK: Duration = Duration::from_millis(200);

/// The mock-model config with one open telegram account on `tg`, `extra` merged into it.
fn write_config(home: &Path, llm: &MockLlm, tg: &FakeTelegram, extra: Value) {
    let telegram = merged(telegram_config(tg, json!({"dmPolicy": "open"})), &extra);
    write_channels_config(home, llm, json!({ "telegram": telegram }));
}

/// The mock's default reply ("mock reply to: <the user's text>"), one event every
/// `per_event_ms`, 8 characters a delta.
fn slow_reply(llm: &MockLlm, per_event_ms: u64) {
    llm.push(Step::fault(pincer_mockllm::Fault::Slow { per_event_ms }));
}

/// Waits until the chat shows a message (or edit) that `done` accepts; answers all so far.
async fn wait_until(tg: &FakeTelegram, done: impl Fn(&SentMessage) -> bool) -> Vec<SentMessage> {
    let mut n = 1;
    loop {
        let sent = tg.wait_sent(n, WAIT).await.unwrap_or_else(|e| {
            panic!("{e}: {:#?}", tg.sent());
        });
        if sent.iter().any(&done) {
            return sent;
        }
        n = sent.len() + 1;
    }
}

fn is_final(m: &SentMessage) -> bool {
    m.parse_mode.as_deref() == Some("HTML")
}

/// What the chat shows once nothing more comes: the messages' ids and last texts.
fn assert_quiet_after(tg: &FakeTelegram, sent: &[SentMessage]) {
    assert_eq!(
        tg.sent().len(),
        sent.len(),
        "nothing after the final reply: {:#?}",
        &tg.sent()[sent.len()..]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_reply_grows_in_one_draft_edited_once_a_second_then_becomes_the_final_html() {
    let tg = FakeTelegram::start(TOKEN).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_config(&home, &llm, &tg, json!({}));
    let _gw = Daemon::start(&home, &["--port", "0"], &[]);

    // About 70 characters: ~9 deltas, 450 ms apart.
    slow_reply(&llm, 450);
    let update = tg.new_user_message(4242, 4242, "tell me about **streams** please, in detail");
    let user = update["message"]["message_id"].as_i64().unwrap();
    tg.push_update(update);
    let sent = wait_until(&tg, is_final).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_quiet_after(&tg, &sent);

    // One draft, plain text, answering the user's message.
    let draft = &sent[0];
    assert_eq!(draft.kind, SentKind::Message, "{sent:#?}");
    assert_eq!(draft.parse_mode, None, "a draft is plain text");
    assert_eq!(draft.reply_to_message_id, Some(user));
    assert!(draft.text.starts_with("mock reply to:"), "{}", draft.text);
    assert_eq!(
        sent.iter().filter(|m| m.kind == SentKind::Message).count(),
        1,
        "one message, the rest edits of it: {sent:#?}"
    );
    // Then edits of that draft, growing, the last one the formatted reply.
    let edits = &sent[1..];
    assert!(edits.len() >= 2, "previews, then the final: {sent:#?}");
    for e in edits {
        assert_eq!(e.kind, SentKind::Edit);
        assert_eq!(e.message_id, draft.message_id);
    }
    for w in sent.windows(2) {
        assert!(
            w[1].shown_text.len() >= w[0].shown_text.len().saturating_sub(4),
            "the draft only grows: {sent:#?}"
        );
    }
    let last = sent.last().unwrap();
    assert!(is_final(last), "{last:#?}");
    assert!(last.text.contains("<b>streams</b>"), "{}", last.text);
    assert!(
        last.shown_text.starts_with("mock reply to:")
            && last
                .shown_text
                .ends_with("tell me about streams please, in detail"),
        "{}",
        last.shown_text
    );
    // Previews: never more than one change an interval. The final edit goes at once (the
    // account's other chats would wait behind it otherwise).
    let timed = tg.sent_timed();
    assert_eq!(timed.len(), sent.len());
    for w in timed[..timed.len() - 1].windows(2) {
        let gap = w[1].0 - w[0].0;
        assert!(
            gap + SLACK >= INTERVAL,
            "edits {gap:?} apart: {:#?}",
            timed.iter().map(|(t, m)| (t, &m.text)).collect::<Vec<_>>()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_streamed_reply_ends_as_the_draft_edited_to_chunk_one_plus_new_chunks_in_order() {
    let tg = FakeTelegram::start(TOKEN).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_config(&home, &llm, &tg, json!({}));
    let _gw = Daemon::start(&home, &["--port", "0"], &[]);

    // About 6,100 characters in ~760 deltas, 6 ms apart: past the limit while it streams.
    let para = "The **quick** brown fox jumps over the lazy dog. ".repeat(40);
    let text = format!("{para}\n\n{para}\n\n{para}");
    slow_reply(&llm, 6);
    tg.user_message(4243, 4243, &text);
    wait_until(&tg, |m| is_final(m) && m.kind == SentKind::Message).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent = tg.sent();

    let draft = &sent[0];
    assert_eq!(draft.kind, SentKind::Message);
    assert_eq!(draft.parse_mode, None);
    let finals: Vec<_> = sent.iter().filter(|m| is_final(m)).collect();
    assert!(finals.len() >= 2, "{sent:#?}");
    assert_eq!(finals[0].kind, SentKind::Edit, "chunk 1 replaces the draft");
    assert_eq!(finals[0].message_id, draft.message_id);
    for f in &finals[1..] {
        assert_eq!(f.kind, SentKind::Message, "further chunks are new messages");
        assert!(f.message_id > draft.message_id);
    }
    // The finals are the last messages, in order; previews before them only edit the draft.
    let first_final = sent.iter().position(is_final).unwrap();
    assert_eq!(sent.len() - first_final, finals.len(), "{sent:#?}");
    for p in &sent[1..first_final] {
        assert_eq!(p.kind, SentKind::Edit);
        assert_eq!(p.message_id, draft.message_id);
        assert!(p.text.encode_utf16().count() <= 4096);
    }
    assert!(
        sent[..first_final].iter().any(|p| p.text.starts_with("…")),
        "past the limit a preview shows the tail: {:#?}",
        sent[..first_final]
            .iter()
            .map(|p| p.text.len())
            .collect::<Vec<_>>()
    );
    let shown: String = finals
        .iter()
        .map(|m| m.shown_text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let words: Vec<&str> = shown.split_whitespace().collect();
    let want = text.replace("**", "");
    let want: Vec<&str> = want.split_whitespace().collect();
    assert!(words.ends_with(&want), "every word arrives, in order, once");
    assert_eq!(
        words.len(),
        want.len() + "mock reply to:".split(' ').count()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_streaming_off_the_reply_is_one_final_message() {
    let tg = FakeTelegram::start(TOKEN).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_config(&home, &llm, &tg, json!({"streaming": "off"}));
    let _gw = Daemon::start(&home, &["--port", "0"], &[]);

    slow_reply(&llm, 300);
    tg.user_message(4244, 4244, "tell me about **streams** please, in detail");
    let sent = tg.wait_sent(1, WAIT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_quiet_after(&tg, &sent);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].kind, SentKind::Message);
    assert!(is_final(&sent[0]));
    assert!(sent[0].text.contains("<b>streams</b>"), "{}", sent[0].text);
    assert!(tg.calls("editMessageText").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_answered_429_skips_previews_but_never_holds_back_the_final_reply() {
    let tg = FakeTelegram::start(TOKEN).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_config(&home, &llm, &tg, json!({}));
    let _gw = Daemon::start(&home, &["--port", "0"], &[]);

    // The first preview edit is told to wait 30 s.
    tg.fail_next(
        "editMessageText",
        Fault::TooManyRequests {
            retry_after_secs: 30,
        },
    );
    slow_reply(&llm, 450);
    tg.user_message(4245, 4245, "tell me about **streams** please, in detail");
    let sent = wait_until(&tg, is_final).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_quiet_after(&tg, &sent);

    let edits = tg.calls("editMessageText");
    assert!(
        edits[0].fault.is_some(),
        "the first edit was rate limited: {edits:#?}"
    );
    // No preview edit while held back; the final reply replaced the draft at once, long
    // before the 30 s were up.
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(sent[0].kind, SentKind::Message);
    assert_eq!(sent[0].parse_mode, None);
    assert_eq!(sent[1].kind, SentKind::Edit);
    assert_eq!(sent[1].message_id, sent[0].message_id);
    assert!(is_final(&sent[1]));
    assert!(sent[1].text.contains("<b>streams</b>"), "{}", sent[1].text);
    let timed = tg.sent_timed();
    let took = timed[1].0 - timed[0].0;
    assert!(
        took < Duration::from_secs(15),
        "the final came {took:?} after the draft"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_killed_between_draft_and_reply_edits_the_draft_when_it_comes_back() {
    let tg = FakeTelegram::start(TOKEN).await;
    let llm = mock_llm().await;
    let (_dir, home) = temp_home();
    write_config(&home, &llm, &tg, json!({}));
    let gw = Daemon::start(&home, &["--port", "0"], &[]);

    // Slow enough that the gateway dies mid-reply, after the draft.
    slow_reply(&llm, 800);
    tg.user_message(4246, 4246, "tell me about **streams** please, in detail");
    let draft = tg.wait_sent(1, WAIT).await.unwrap()[0].clone();
    assert_eq!(draft.parse_mode, None);
    // Its id reaches the disk with the next shared fsync.
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.signal(libc::SIGKILL);
    let _ = gw.wait();

    // The turn runs again (the message was durable) and its reply replaces the draft.
    let _gw = Daemon::start(&home, &["--port", "0"], &[]);
    let sent = wait_until(&tg, is_final).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_quiet_after(&tg, &sent);
    assert_eq!(
        sent.iter().filter(|m| m.kind == SentKind::Message).count(),
        1,
        "no second message beside the draft: {sent:#?}"
    );
    let last = sent.last().unwrap();
    assert_eq!(last.kind, SentKind::Edit);
    assert_eq!(last.message_id, draft.message_id);
    assert!(last.text.contains("<b>streams</b>"), "{}", last.text);
}
