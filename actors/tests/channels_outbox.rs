//! The Telegram ChannelActor's send loop against the fake Bot API, in process: a reply
//! handed over twice (listed pending at the start and delivered by the session
//! meanwhile) goes out once, although its delivery record reaches the store only with
//! the next shared commit.

use std::sync::Arc;
use std::time::Duration;

use pincer_actors::channels::actor::{
    Adapter, ChannelActor, ChannelArgs, ChannelCtx, ChannelDirectory,
};
use pincer_actors::channels::config::accounts;
use pincer_actors::channels::{ChannelOrigin, DeliveryStatus, OutboxRow};
use pincer_actors::store::Store;
use pincer_fakes::telegram::{FakeChat, FakeTelegram, FakeUser};
use ractor::Actor;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_handed_to_the_send_loop_twice_is_sent_once() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.redb")).unwrap();
    let tg = FakeTelegram::start("123456:OUTBOX-token").await;
    let user = FakeUser::new(4242, "Ada");
    tg.add_user(user.clone());
    tg.add_chat(FakeChat::private(&user));
    let directory = ChannelDirectory::new();
    let ctx = Arc::new(ChannelCtx {
        store: store.clone(),
        sessions: Arc::new(|| None),
        bindings: Vec::new(),
        default_agent: "main".into(),
        main_key: "main".into(),
        dm_scope: pincer_actors::session::keys::DmScope::PerPeer,
        directory: directory.clone(),
        retry_base: Duration::from_millis(10),
        max_attempts: 3,
        approvals: None,
    });
    let cfg = accounts(Some(&json!({"telegram": {
        "botToken": tg.token(), "apiBaseUrl": tg.api_url(), "dmPolicy": "open",
    }})))
    .unwrap()
    .remove(0);
    let adapter: Arc<dyn Adapter> =
        Arc::new(pincer_actors::channels::telegram::Telegram::new(&cfg, store.clone()).unwrap());
    let (channel, _) = Actor::spawn(None, ChannelActor, ChannelArgs { cfg, ctx, adapter })
        .await
        .unwrap();

    let origin = ChannelOrigin {
        channel: "telegram".into(),
        account: "default".into(),
        to: "4242".into(),
        thread: None,
        message_id: String::new(),
    };
    for n in 0..20 {
        let row = OutboxRow::new(
            origin.clone(),
            format!("reply {n}"),
            "agent:main:main",
            &format!("run-{n}"),
        );
        let id = store.outbox_push(&row).unwrap();
        // Twice, back to back: the second is read right after the first was sent.
        directory.deliver(id, &origin);
        directory.deliver(id, &origin);
    }
    tg.wait_sent(20, Duration::from_secs(10)).await.unwrap();
    // Time for a wrongly repeated send to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let texts: Vec<String> = tg.sent().into_iter().map(|m| m.shown_text).collect();
    let expected: Vec<String> = (0..20).map(|n| format!("reply {n}")).collect();
    assert_eq!(texts, expected, "each reply once, in order");
    store.sync().wait().await.unwrap();
    let rows: Vec<(u64, OutboxRow)> = store.outbox(0, usize::MAX).unwrap();
    assert!(
        rows.iter().all(|(_, r)| r.status == DeliveryStatus::Sent),
        "all recorded as sent"
    );
    channel.stop(None);
}
