//! A fake Telegram Bot API server on 127.0.0.1 that a real client (teloxide with
//! `Bot::new(token).set_api_url(url)`, or plain reqwest) talks to over HTTP, for tests of
//! Pincer's Telegram channel: real paths, real JSON shapes, Telegram's checks and error
//! texts, long polling in tokio time, and faults on demand.
//!
//! ```no_run
//! # async fn demo() {
//! use pincer_fakes::telegram::{FakeTelegram, Fault};
//! let tg = FakeTelegram::start("123456:TEST-token").await;
//! let url = tg.api_url(); // http://127.0.0.1:PORT, no trailing slash
//! tg.user_message(42, 42, "hello");
//! tg.fail_next("sendMessage", Fault::TooManyRequests { retry_after_secs: 3 });
//! // ... run the gateway against `url` ...
//! let sent = tg.wait_sent(1, std::time::Duration::from_secs(5)).await.unwrap();
//! assert_eq!(sent[0].chat_id, 42);
//! # }
//! ```
//!
//! # Routes
//! `GET|POST /bot<token>/<method>` with the method name in any case (teloxide sends
//! `SendMessage`), parameters from the query string and a JSON, form-urlencoded or
//! multipart body; `GET /file/bot<token>/<file_path>` for files added with
//! [`FakeTelegram::add_file`]. Methods: getMe, getUpdates, sendMessage, editMessageText,
//! deleteMessage, sendChatAction, answerCallbackQuery, getFile, setWebhook, deleteWebhook,
//! getWebhookInfo, setMyCommands, getMyCommands, deleteMyCommands. Others answer 404
//! `Not Found`, like Telegram for an unknown method.
//!
//! Answers are `{"ok": true, "result": ..}` or `{"ok": false, "error_code": N,
//! "description": ".."}` (plus `"parameters": {"retry_after": N}` for 429). A wrong token
//! shaped like one (`<digits>:<secret>`) gets 401 `Unauthorized`, anything else 404.
//!
//! # What is checked, as Telegram does
//! * `chat_id` missing: "Bad Request: chat_id is empty"; a chat no update introduced (and
//!   not added with [`FakeTelegram::add_chat`]): "Bad Request: chat not found".
//! * text empty after parsing and trimming: "Bad Request: message text is empty"; over 4096
//!   UTF-16 units after parsing: "Bad Request: message is too long" (editMessageText:
//!   "Bad Request: MESSAGE_TOO_LONG").
//! * `parse_mode` HTML, MarkdownV2 and Markdown are parsed into text and entities; markup
//!   errors are "Bad Request: can't parse entities: ..." with TDLib's wording (see
//!   `html.rs`, `markdown.rs`); another mode is "Bad Request: unsupported parse_mode".
//! * editMessageText: "message to edit not found", "message can't be edited" (not the
//!   bot's), and "message is not modified: ..." when text, entities and inline keyboard are
//!   all unchanged (an edit without `reply_markup` removes the keyboard, as on Telegram).
//! * replies to a missing message: "Bad Request: message to be replied not found" unless
//!   `allow_sending_without_reply`; inline keyboards: buttons need a text and an action,
//!   `callback_data` 1-64 bytes ("BUTTON_DATA_INVALID").
//! * getUpdates: `offset` confirms every update below it for good, `-n` keeps the last n;
//!   `limit` 1-100; `timeout` holds the request (tokio time) until an update arrives;
//!   `allowed_updates` is remembered and filters; a second poll makes the waiting one answer
//!   409 "Conflict: terminated by other getUpdates request; ..."; polling while a webhook is
//!   set is 409 too.
//!
//! Message ids count up per chat (users' and the bot's messages share them), update ids
//! count up from 570000000, and dates are the Unix time at start plus tokio time since.

mod html;
mod markdown;
mod methods;
mod params;
mod server;
mod state;
mod text;
mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::conn::{Conn, KillableListener};
use params::Params;
use state::{Shared, State, StoredFile};

pub use state::Webhook;

/// A fault the next call(s) of a method get instead of their answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Fault {
    /// 429 `Too Many Requests: retry after N` with `parameters.retry_after`.
    TooManyRequests { retry_after_secs: u64 },
    /// That HTTP status: 502-504 with nginx's HTML page, as Telegram's front answers when
    /// the Bot API is away; other codes with the JSON error envelope.
    ServerError(u16),
    /// The connection closes without a response.
    Drop,
    /// 200 with a body that is not valid JSON (cut off mid-object).
    Malformed,
    /// 401 `Unauthorized`, as for a revoked token.
    Unauthorized,
    /// Answered normally, but only after this many milliseconds (tokio time); a client
    /// that gives up meanwhile leaves the call undone.
    Slow { millis: u64 },
}

/// An error answer: `error_code`, `description` and, for 429, `retry_after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) code: u16,
    pub(crate) description: String,
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(code: u16, description: &str) -> Self {
        Self {
            code,
            description: description.to_owned(),
            retry_after: None,
        }
    }

    /// 400 `Bad Request: <what>`.
    pub(crate) fn bad(what: &str) -> Self {
        Self::new(400, &format!("Bad Request: {what}"))
    }
}

/// Whether a recorded message was sent or an edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SentKind {
    /// `sendMessage`
    Message,
    /// `editMessageText`
    Edit,
}

/// A successful sendMessage or editMessageText, as the fake accepted it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentMessage {
    pub kind: SentKind,
    pub chat_id: i64,
    /// The new message's id, or the edited one's.
    pub message_id: i64,
    /// The text as the bot sent it, markup included.
    pub text: String,
    pub parse_mode: Option<String>,
    /// What users see: markup parsed away, whitespace trimmed.
    pub shown_text: String,
    /// The entities of `shown_text`, as in the Message (`type`, `offset`, `length`, ...).
    pub entities: Vec<Value>,
    /// `message_thread_id` as requested (edits: the message's).
    pub thread_id: Option<i64>,
    /// The message replied to, when the reply went through.
    pub reply_to_message_id: Option<i64>,
    /// `reply_markup` as given (any keyboard kind).
    pub reply_markup: Option<Value>,
    /// `disable_web_page_preview` or `link_preview_options.is_disabled`.
    pub link_preview_disabled: bool,
}

/// One call as the fake received it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedCall {
    /// The documented spelling (`sendMessage`) for known methods, else as sent; `file`
    /// for a file download.
    pub method: String,
    /// Every parameter (query and body merged), as a JSON object; a string holding the
    /// raw body if it could not be read.
    pub params: Value,
    /// `GET` or `POST`; `WEBHOOK` for a method a webhook answered with.
    pub http_method: String,
    /// Whether the token in the path was the fake's.
    pub token_ok: bool,
    /// The fault the call got instead of its answer.
    pub fault: Option<Fault>,
}

/// A user of the fake world; unknown ids become `User <id>` / `@user<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FakeUser {
    pub id: i64,
    pub is_bot: bool,
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub language_code: Option<String>,
}

impl FakeUser {
    pub fn new(id: i64, first_name: &str) -> Self {
        Self {
            id,
            is_bot: false,
            first_name: first_name.to_owned(),
            last_name: None,
            username: None,
            language_code: Some("en".into()),
        }
    }

    /// A bot user, as getMe describes the fake's own bot.
    pub fn bot(id: i64, username: &str) -> Self {
        Self {
            id,
            is_bot: true,
            first_name: "Pincer Test Bot".into(),
            last_name: None,
            username: Some(username.to_owned()),
            language_code: None,
        }
    }

    pub fn username(mut self, username: &str) -> Self {
        self.username = Some(username.to_owned());
        self
    }

    /// The Bot API `User` object.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name});
        for (k, f) in [
            ("last_name", &self.last_name),
            ("username", &self.username),
            ("language_code", &self.language_code),
        ] {
            if let Some(x) = f {
                v[k] = json!(x);
            }
        }
        v
    }

    /// getMe's answer: the `User` plus the bot-only fields (teloxide needs them all).
    pub(crate) fn me_json(&self) -> Value {
        let mut v = self.to_json();
        for (k, b) in [
            ("can_join_groups", true),
            ("can_read_all_group_messages", false),
            ("supports_inline_queries", false),
            ("can_connect_to_business", false),
            ("has_main_web_app", false),
            ("has_topics_enabled", false),
            ("allows_users_to_create_topics", false),
        ] {
            v[k] = json!(b);
        }
        v
    }
}

/// A chat's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatType {
    Private,
    Group,
    Supergroup,
}

/// A chat of the fake world. Chats come into being with the updates that mention them, or
/// through [`FakeTelegram::add_chat`]; the bot can only write to chats that exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FakeChat {
    pub id: i64,
    pub kind: ChatType,
    pub title: Option<String>,
    pub username: Option<String>,
    /// The other party's first name, for private chats.
    pub first_name: Option<String>,
    /// A supergroup with topics.
    pub is_forum: bool,
}

impl FakeChat {
    /// The private chat with `user` (its id is the user's).
    pub fn private(user: &FakeUser) -> Self {
        Self {
            id: user.id,
            kind: ChatType::Private,
            title: None,
            username: user.username.clone(),
            first_name: Some(user.first_name.clone()),
            is_forum: false,
        }
    }

    pub fn group(id: i64, title: &str) -> Self {
        Self {
            id,
            kind: ChatType::Group,
            title: Some(title.to_owned()),
            username: None,
            first_name: None,
            is_forum: false,
        }
    }

    pub fn supergroup(id: i64, title: &str) -> Self {
        Self {
            kind: ChatType::Supergroup,
            ..Self::group(id, title)
        }
    }

    /// A supergroup with topics enabled.
    pub fn forum(id: i64, title: &str) -> Self {
        Self {
            is_forum: true,
            ..Self::supergroup(id, title)
        }
    }

    /// The Bot API `Chat` object.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"id": self.id, "type": self.kind});
        if let Some(t) = &self.title {
            v["title"] = json!(t);
        }
        if let Some(n) = &self.first_name {
            v["first_name"] = json!(n);
        }
        if let Some(u) = &self.username {
            v["username"] = json!(u);
        }
        if self.is_forum {
            v["is_forum"] = json!(true);
        }
        v
    }
}

/// A `wait_*` call ran out of time: how many it wanted and how many there were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitTimeout {
    pub what: &'static str,
    pub wanted: usize,
    pub got: usize,
    pub after: Duration,
}

impl std::fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fake telegram: {} of {} {} after {:?}",
            self.got, self.wanted, self.what, self.after
        )
    }
}

impl std::error::Error for WaitTimeout {}

/// What a webhook answered when an update was delivered to it.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookReply {
    pub status: u16,
    pub body: String,
    /// The method the gateway answered with (`{"method": "sendMessage", ..}` in the body),
    /// which the fake ran, as Telegram does, with its outcome.
    pub method: Option<(String, Result<Value, String>)>,
}

/// A running fake Telegram; dropping it stops it too (without waiting).
pub struct FakeTelegram {
    addr: SocketAddr,
    token: String,
    bot: FakeUser,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
    /// When each entry of `sent` was recorded (tokio time since start).
    sent_times: Arc<std::sync::Mutex<Vec<Duration>>>,
    recorder: JoinHandle<()>,
}

impl FakeTelegram {
    /// Starts a fake for the bot with this token on 127.0.0.1 (a free port) and returns once
    /// it listens. The bot's id is the token's numeric prefix (1 if it has none).
    ///
    /// # Panics
    /// If 127.0.0.1 cannot be bound: a test cannot go on without its fake.
    pub async fn start(token: &str) -> FakeTelegram {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("fake telegram: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake telegram: local address");
        let bot_id = token
            .split_once(':')
            .and_then(|(id, _)| id.parse().ok())
            .unwrap_or(1);
        let bot = FakeUser::bot(bot_id, "pincer_test_bot");
        // The one wall-clock read: message dates start from now, then follow tokio time.
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let shared = Arc::new(Shared::new(
            token.to_owned(),
            State::new(bot.clone(), epoch),
        ));
        let app = server::router(shared.clone()).into_make_service_with_connect_info::<Conn>();
        let mut down = shared.shutdown.subscribe();
        let listener = KillableListener {
            inner: listener,
            name: "telegram",
        };
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = down.wait_for(|d| *d).await;
        });
        let task = tokio::spawn(async move {
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "fake telegram stopped with an error");
            }
        });
        tracing::debug!(%addr, "fake telegram listening");
        let sent_times = Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorder = tokio::spawn(record_sent_times(shared.clone(), sent_times.clone()));
        FakeTelegram {
            addr,
            token: token.to_owned(),
            bot,
            shared,
            task: Some(task),
            sent_times,
            recorder,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash (what `set_api_url` takes).
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The bot as getMe describes it (`@pincer_test_bot`).
    pub fn bot(&self) -> &FakeUser {
        &self.bot
    }

    /// Adds or replaces a user (name, username) before updates mention them.
    pub fn add_user(&self, user: FakeUser) {
        self.shared.change(|st| st.add_user(user));
    }

    /// Adds or replaces a chat, so the bot can write to it before any update came from it.
    pub fn add_chat(&self, chat: FakeChat) {
        self.shared.change(|st| st.add_chat(chat));
    }

    /// Queues an update for getUpdates; an `update_id` is given if it has none. Returns it.
    ///
    /// # Panics
    /// If `update` is not a JSON object.
    pub fn push_update(&self, update: Value) -> i64 {
        assert!(
            update.is_object(),
            "fake telegram: an update is a JSON object, not {update}"
        );
        self.shared.change(|st| st.push_update(update))
    }

    /// A text message from `from_id` in the private chat `chat_id` (usually the same id),
    /// built and stored but not queued (for [`FakeTelegram::deliver_webhook`]).
    pub fn new_user_message(&self, chat_id: i64, from_id: i64, text: &str) -> Value {
        self.shared.change(|st| {
            let from = st.user(from_id);
            let chat = match st.chat(chat_id) {
                Some(c) => c.clone(),
                None => st.private_chat(chat_id, &from),
            };
            json!({ "message": st.incoming(&chat, &from, text, None, None) })
        })
    }

    /// Queues a private text message; returns its update id.
    pub fn user_message(&self, chat_id: i64, from_id: i64, text: &str) -> i64 {
        let u = self.new_user_message(chat_id, from_id, text);
        self.push_update(u)
    }

    /// A text message in a group, built and stored but not queued. A chat id of the
    /// `-100…` form, or a `thread_id`, makes a supergroup; a `thread_id` makes it a forum
    /// and puts the message in that topic.
    pub fn new_group_message(
        &self,
        chat_id: i64,
        from_id: i64,
        text: &str,
        thread_id: Option<i64>,
    ) -> Value {
        self.shared.change(|st| {
            let from = st.user(from_id);
            let chat = st.group_chat(chat_id, thread_id.is_some());
            json!({ "message": st.incoming(&chat, &from, text, thread_id, None) })
        })
    }

    /// Queues a group text message; returns its update id.
    pub fn group_message(
        &self,
        chat_id: i64,
        from_id: i64,
        text: &str,
        thread_id: Option<i64>,
    ) -> i64 {
        let u = self.new_group_message(chat_id, from_id, text, thread_id);
        self.push_update(u)
    }

    /// Queues a text message replying to `reply_to` in an existing chat (private or group);
    /// returns its update id.
    pub fn reply_message(&self, chat_id: i64, from_id: i64, text: &str, reply_to: i64) -> i64 {
        let update = self.shared.change(|st| {
            let from = st.user(from_id);
            let chat = match st.chat(chat_id) {
                Some(c) => c.clone(),
                None => st.private_chat(chat_id, &from),
            };
            let topic = st
                .message(chat_id, reply_to)
                .and_then(|m| m.get("message_thread_id"))
                .and_then(Value::as_i64);
            json!({ "message": st.incoming(&chat, &from, text, topic, Some(reply_to)) })
        });
        self.push_update(update)
    }

    /// Queues an `edited_message` update: the user changed the text of their message.
    /// Returns its update id, or `None` if there is no such message.
    pub fn edit_user_message(&self, chat_id: i64, message_id: i64, text: &str) -> Option<i64> {
        self.shared.change(|st| {
            let mut m = st.message(chat_id, message_id)?.clone();
            m["text"] = json!(text);
            m["edit_date"] = json!(st.now());
            st.store_message(&m);
            Some(st.push_update(json!({ "edited_message": m })))
        })
    }

    /// A callback query (an inline keyboard button pressed by `from_id` on message
    /// `message_id` of `chat_id`), built but not queued; its `id` is what
    /// answerCallbackQuery must name. An unknown message is sent as an inaccessible one.
    pub fn new_callback(&self, chat_id: i64, from_id: i64, message_id: i64, data: &str) -> Value {
        self.shared.change(|st| {
            let from = st.user(from_id);
            let chat = match st.chat(chat_id) {
                Some(c) => c.clone(),
                None => st.private_chat(chat_id, &from),
            };
            json!({ "callback_query": st.callback_query(&chat, &from, message_id, data) })
        })
    }

    /// Queues a callback query; returns its update id.
    pub fn callback(&self, chat_id: i64, from_id: i64, message_id: i64, data: &str) -> i64 {
        let u = self.new_callback(chat_id, from_id, message_id, data);
        self.push_update(u)
    }

    /// Queues an update whose message lacks the required `chat` (and `from`), as a client
    /// must survive; returns its update id.
    pub fn malformed_update(&self) -> i64 {
        self.shared.change(|st| {
            let date = st.now();
            st.push_update(json!({"message": {"message_id": 1, "date": date, "text": "no chat"}}))
        })
    }

    /// The first update of the next non-empty getUpdates answer comes again in the answer
    /// after, even if that request's offset confirmed it (as after an offset-confirm race).
    pub fn duplicate_next_update(&self) {
        self.shared.change(|st| st.duplicate_next());
    }

    /// The ids of the updates not confirmed yet.
    pub fn pending_updates(&self) -> Vec<i64> {
        self.shared.lock().pending_ids()
    }

    /// A message as it stands now (after edits), or `None` (never sent, or deleted).
    pub fn message(&self, chat_id: i64, message_id: i64) -> Option<Value> {
        self.shared.lock().message(chat_id, message_id).cloned()
    }

    /// Makes a file available to getFile and the file route: returns its `file_id`. Use the
    /// id in a document/photo update built with [`FakeTelegram::push_update`].
    pub fn add_file(&self, file_path: &str, bytes: Vec<u8>) -> String {
        self.shared.change(|st| {
            let n = st.files.len() + 1;
            let file_id = format!("BQACAgIAAxkBAAI{n:06}");
            st.files.push(StoredFile {
                file_id: file_id.clone(),
                unique_id: format!("AgAD{n:06}"),
                path: file_path.to_owned(),
                bytes,
            });
            file_id
        })
    }

    /// The webhook set through setWebhook, if any.
    pub fn webhook(&self) -> Option<Webhook> {
        self.shared.lock().webhook.clone()
    }

    /// The commands set for the default scope and language.
    pub fn commands(&self) -> Option<Value> {
        let key = (json!({"type": "default"}).to_string(), String::new());
        self.shared.lock().commands.get(&key).cloned()
    }

    /// The next call of `method` (any case; `*` for any method) gets `fault`.
    pub fn fail_next(&self, method: &str, fault: Fault) {
        self.fail_times(method, fault, 1);
    }

    /// The next `times` calls of `method` get `fault`.
    pub fn fail_times(&self, method: &str, fault: Fault, times: usize) {
        self.shared.change(|st| st.add_fault(method, fault, times));
    }

    /// Every successful sendMessage and editMessageText so far, in order.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.shared.lock().sent.clone()
    }

    /// [`sent`](Self::sent) with when each was accepted (tokio time since the fake
    /// started): what tests of edit rates look at.
    pub fn sent_timed(&self) -> Vec<(Duration, SentMessage)> {
        let sent = self.sent();
        let times = self.sent_times.lock().unwrap().clone();
        times.into_iter().zip(sent).collect()
    }

    /// Every call so far, faulted, refused and unauthorized ones included, in order.
    pub fn requests(&self) -> Vec<RecordedCall> {
        self.shared.lock().calls.clone()
    }

    /// The calls of one method (any case).
    pub fn calls(&self, method: &str) -> Vec<RecordedCall> {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.method.eq_ignore_ascii_case(method))
            .cloned()
            .collect()
    }

    /// Waits (tokio time) until at least `n` messages were sent or edited; answers all.
    pub async fn wait_sent(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<SentMessage>, WaitTimeout> {
        self.wait_for("messages sent", n, timeout, |st| st.sent.clone())
            .await
    }

    /// Waits (tokio time) until `method` was called at least `n` times; answers those calls.
    pub async fn wait_calls(
        &self,
        method: &str,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<RecordedCall>, WaitTimeout> {
        self.wait_for("calls", n, timeout, |st| {
            st.calls
                .iter()
                .filter(|c| c.method.eq_ignore_ascii_case(method))
                .cloned()
                .collect()
        })
        .await
    }

    async fn wait_for<T>(
        &self,
        what: &'static str,
        n: usize,
        timeout: Duration,
        read: impl Fn(&State) -> Vec<T>,
    ) -> Result<Vec<T>, WaitTimeout> {
        let mut changes = self.shared.watch();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = read(&self.shared.lock());
            if got.len() >= n {
                return Ok(got);
            }
            let late = tokio::time::timeout_at(deadline, changes.changed()).await;
            if !matches!(late, Ok(Ok(()))) {
                return Err(WaitTimeout {
                    what,
                    wanted: n,
                    got: got.len(),
                    after: timeout,
                });
            }
        }
    }

    /// POSTs `update` to a gateway's webhook at `url` (http://127.0.0.1 only) as Telegram
    /// does, with `X-Telegram-Bot-Api-Secret-Token` when a secret is given; an `update_id`
    /// is given if the update has none. If the gateway answers 200 with a method call
    /// (`{"method": "sendMessage", ...}`), the fake runs it, as Telegram does.
    pub async fn deliver_webhook(
        &self,
        url: &str,
        secret_token: Option<&str>,
        mut update: Value,
    ) -> std::io::Result<WebhookReply> {
        if !update.is_object() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "fake telegram: an update is a JSON object",
            ));
        }
        if update.get("update_id").is_none() {
            update["update_id"] = json!(self.shared.change(State::take_update_id));
        }
        let mut headers = Vec::new();
        if let Some(s) = secret_token {
            headers.push(("X-Telegram-Bot-Api-Secret-Token", s));
        }
        let body = serde_json::to_vec(&update).map_err(std::io::Error::other)?;
        let (status, body) = webhook::post_json(url, &headers, &body).await?;
        let body = String::from_utf8_lossy(&body).into_owned();
        let method = (status == 200)
            .then(|| serde_json::from_str::<Value>(&body).ok())
            .flatten()
            .and_then(|v| self.run_webhook_answer(v));
        Ok(WebhookReply {
            status,
            body,
            method,
        })
    }

    /// Runs the method a webhook answered with, recording it like any other call.
    fn run_webhook_answer(&self, v: Value) -> Option<(String, Result<Value, String>)> {
        let mut obj = v.as_object()?.clone();
        let name = obj.remove("method")?.as_str()?.to_owned();
        let lower = name.to_ascii_lowercase();
        let canonical = methods::canonical(&lower).map_or_else(|| name.clone(), str::to_owned);
        let params = Params(obj);
        let outcome = self.shared.change(|st| {
            st.calls.push(RecordedCall {
                method: canonical.clone(),
                params: params.to_value(),
                http_method: "WEBHOOK".into(),
                token_ok: true,
                fault: None,
            });
            if lower == "getupdates" {
                return Err("Bad Request: getUpdates can't be a webhook answer".to_owned());
            }
            methods::call(st, &lower, &params)
                .map(|a| a.result)
                .map_err(|e| e.description)
        });
        Some((canonical, outcome))
    }

    /// Stops accepting, answers waiting long polls, and waits for open connections.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        self.recorder.abort();
    }
}

/// Notes the time of each new sent or edited message as the state changes.
async fn record_sent_times(shared: Arc<Shared>, times: Arc<std::sync::Mutex<Vec<Duration>>>) {
    let started = tokio::time::Instant::now();
    let mut changes = shared.watch();
    loop {
        let n = shared.lock().sent.len();
        {
            let mut t = times.lock().unwrap();
            let now = started.elapsed();
            while t.len() < n {
                t.push(now);
            }
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

impl std::fmt::Debug for FakeTelegram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTelegram")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}
