//! A fake Discord on 127.0.0.1 for tests of Pincer's Discord channel: the REST API
//! (`{base}/api/v10`) and the Gateway WebSocket (`ws://127.0.0.1:PORT`, on the same port),
//! with Discord's opcodes, close codes, intents, sessions and resume.
//!
//! ```no_run
//! # async fn demo() {
//! use pincer_fakes::discord::{FakeDiscord, Fault};
//! let dc = FakeDiscord::start("bot-token").await;
//! let api = dc.api_url(); // http://127.0.0.1:PORT/api/v10
//! dc.add_guild_channel("900", "901", "general");
//! // ... the gateway connects to dc.gateway_url() and identifies ...
//! dc.guild_message("900", "901", "42", "hello");
//! dc.fail_next("create_message", Fault::RateLimited { retry_after_secs: 1 });
//! let sent = dc.wait_sent(1, std::time::Duration::from_secs(5)).await.unwrap();
//! assert_eq!(sent[0].channel_id, "901");
//! # }
//! ```
//!
//! # REST (`/api/v10`)
//! Bot routes want `Authorization: Bot <token>` (else 401 `{"message": "401:
//! Unauthorized", "code": 0}`); interaction routes are authorized by the interaction
//! token. Route names (for faults and records) in brackets.
//!
//! * `GET /gateway` \[`get_gateway`\], `GET /gateway/bot` \[`gateway_bot`\]: the Gateway URL,
//!   `shards`, `session_start_limit`. `GET /users/@me` \[`users_me`\].
//! * `POST /channels/{id}/messages` \[`create_message`\]: `content`, `embeds`,
//!   `components`, `message_reference`; the Message. 404 10003 Unknown Channel (a channel
//!   neither added nor introduced by an event), 400 50006 empty message, 50035 over 2,000
//!   characters (`BASE_TYPE_MAX_LENGTH`) or a reply to an unknown message. The new message
//!   is dispatched as `MESSAGE_CREATE`, as Discord echoes a bot's own messages.
//! * `PATCH /channels/{id}/messages/{id}` \[`edit_message`\]: 10008 Unknown Message,
//!   403 50005 for another user's message.
//! * `POST /interactions/{id}/{token}/callback` \[`interaction_callback`\]: types 4-7;
//!   204, or 200 with the callback resource if `?with_response=true`; 10062 Unknown
//!   interaction, 40060 already acknowledged. `PATCH /webhooks/{app}/{token}/messages/@original`
//!   \[`edit_original`\] and `POST /webhooks/{app}/{token}` \[`followup`\].
//! * `PUT|GET /applications/{app}/commands` \[`bulk_overwrite_commands`, `get_commands`\]:
//!   names and descriptions checked (50035), ids kept per name.
//!
//! Faults: `RateLimited` is 429 `{"message": "You are being rate limited.", "retry_after":
//! N, "global": false}` with `Retry-After` and `X-RateLimit-*` headers; `ServerError(n)`,
//! `InvalidToken` (401), `Drop`, `Malformed` (200 with cut-off JSON).
//!
//! # Gateway
//! `GET /` (and `/resume`, the `resume_gateway_url`) upgrades to a WebSocket with JSON
//! text frames. op 10 Hello (`heartbeat_interval`, 41250 ms unless set); op 2 Identify:
//! 4004 for a wrong token, 4013 for unknown or missing intents, 4014 for privileged
//! intents not enabled ([`FakeDiscord::set_privileged_intents`]; MESSAGE_CONTENT is), else
//! READY (`session_id`, `resume_gateway_url`, `user`, `guilds`, `application`) as `s` 1.
//! op 1 gets op 11 (unless [`FakeDiscord::stop_acking_heartbeats`]); no heartbeat within
//! 1.5 intervals closes with 4009. op 6 Resume replays the session's dispatches after `seq`
//! then RESUMED; an unknown or invalidated session gets op 9 `false`, a `seq` ahead of the
//! session 4007. Payloads before Identify: 4003; unknown op 4001; bad JSON or over 4096
//! bytes 4002; a second Identify 4005. A client close with 1000/1001 ends the session.
//!
//! Dispatches go to every live session whose intents allow them (GUILD_MESSAGES,
//! DIRECT_MESSAGES); without MESSAGE_CONTENT a guild message's content is empty unless
//! it mentions the bot. Sessions keep their dispatches while disconnected, for Resume: a
//! session whose client went without a 1000/1001 close stays resumable as long as the fake
//! runs (a client restarted on saved state can Resume it and gets what it missed).

mod gateway;
mod rest;
mod state;

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::common::Running;
use state::{Control, Interaction as StoredInteraction, State};

pub use crate::common::{Fault, WaitTimeout};

/// Gateway intents (bit flags of Identify's `intents`).
pub mod intents {
    pub const GUILDS: u64 = 1 << 0;
    /// Privileged.
    pub const GUILD_MEMBERS: u64 = 1 << 1;
    /// Privileged.
    pub const GUILD_PRESENCES: u64 = 1 << 8;
    pub const GUILD_MESSAGES: u64 = 1 << 9;
    pub const GUILD_MESSAGE_REACTIONS: u64 = 1 << 10;
    pub const DIRECT_MESSAGES: u64 = 1 << 12;
    /// Privileged.
    pub const MESSAGE_CONTENT: u64 = 1 << 15;
    /// The privileged intents.
    pub const PRIVILEGED: u64 = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT;
    /// Every intent defined (bits 0-16, 20, 21, 24, 25).
    pub const ALL: u64 = 0x1_ffff | (1 << 20) | (1 << 21) | (1 << 24) | (1 << 25);
}

/// A user; unknown ids that events mention become `user<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscordUser {
    pub id: String,
    pub username: String,
    pub global_name: Option<String>,
    pub bot: bool,
}

impl DiscordUser {
    pub fn new(id: &str, username: &str) -> Self {
        Self {
            id: id.to_owned(),
            username: username.to_owned(),
            global_name: Some(username.to_owned()),
            bot: false,
        }
    }

    pub fn bot(id: &str, username: &str) -> Self {
        Self {
            global_name: None,
            bot: true,
            ..Self::new(id, username)
        }
    }

    /// The `User` object.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": null,
            "public_flags": 0,
        });
        if self.bot {
            v["bot"] = json!(true);
        }
        v
    }
}

/// Where a channel is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ChannelKind {
    /// A text channel of a guild (type 0).
    Guild { guild_id: String },
    /// A DM with a user (type 1).
    Dm { recipient_id: String },
}

/// A channel the bot can write to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscordChannel {
    pub id: String,
    pub name: String,
    pub kind: ChannelKind,
}

impl DiscordChannel {
    pub fn guild(guild_id: &str, id: &str, name: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            kind: ChannelKind::Guild {
                guild_id: guild_id.to_owned(),
            },
        }
    }

    pub fn dm(id: &str, recipient_id: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: String::new(),
            kind: ChannelKind::Dm {
                recipient_id: recipient_id.to_owned(),
            },
        }
    }
}

/// What a recorded message was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SentKind {
    /// Create Message.
    Message,
    /// Edit Message, or an edit of an interaction's original response.
    Edit,
    /// An interaction's response message (callback type 4, or the first
    /// `@original` edit after a deferral).
    InteractionReply,
    /// A follow-up message.
    Followup,
}

/// A message the bot sent or edited, as the fake accepted it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentMessage {
    pub kind: SentKind,
    pub channel_id: String,
    pub message_id: String,
    pub content: String,
    /// The message replied to (`message_reference`).
    pub reply_to: Option<String>,
    pub embeds: Option<Value>,
    pub components: Option<Value>,
    pub interaction_id: Option<String>,
}

/// One REST call as the fake received it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedCall {
    /// The route's name (`create_message`).
    pub route: String,
    /// The path under `/api/v10`, tokens left out.
    pub path: String,
    /// The JSON body (a string if it was not JSON; `{}` for none).
    pub params: Value,
    pub token_ok: bool,
    pub fault: Option<Fault>,
}

/// An interaction callback the fake accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InteractionResponse {
    pub interaction_id: String,
    /// The callback type (4 message, 5 deferred, 6 deferred update, 7 update).
    pub kind: u8,
    pub data: Value,
}

/// An interaction the fake dispatched: what its callback needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    pub id: String,
    pub token: String,
}

/// How a Gateway connection ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Closed {
    /// The fake sent a close frame.
    ByFake { code: u16, reason: String },
    /// The client sent a close frame.
    ByClient { code: Option<u16> },
    /// The TCP connection went without a close frame (either side).
    Dropped,
}

/// One Gateway connection as the fake saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewayConnection {
    /// 1 for the first connection, and so on.
    pub id: u64,
    /// The path and query connected to (`/?v=10&encoding=json`).
    pub uri: String,
    /// The Identify `d` received, if any.
    pub identify: Option<Value>,
    /// The Resume `d` received, if any.
    pub resume: Option<Value>,
    /// The session started or resumed on it.
    pub session_id: Option<String>,
    /// The `d` (last sequence number) of each heartbeat received.
    pub heartbeats: Vec<Option<u64>>,
    pub acks: u32,
    /// Closed with 4009 for want of a heartbeat.
    pub heartbeat_timed_out: bool,
    /// `None` while open.
    pub closed: Option<Closed>,
}

/// A running fake Discord; dropping it stops it too (without waiting).
pub struct FakeDiscord {
    token: String,
    app_id: String,
    bot: DiscordUser,
    run: Running<State>,
}

impl FakeDiscord {
    /// Starts a fake for the bot with this token on 127.0.0.1 (a free port); returns once
    /// it listens.
    ///
    /// # Panics
    /// If 127.0.0.1 cannot be bound.
    pub async fn start(token: &str) -> FakeDiscord {
        let st = State::new(token);
        let (app_id, bot) = (st.app_id.clone(), st.bot.clone());
        let run = Running::start("discord", st, rest::router).await;
        FakeDiscord {
            token: token.to_owned(),
            app_id,
            bot,
            run,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.run.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.run.addr)
    }

    /// `http://127.0.0.1:PORT/api/v10`, in place of `https://discord.com/api/v10`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api/v10", self.run.addr)
    }

    /// `ws://127.0.0.1:PORT`, what Get Gateway Bot answers.
    pub fn gateway_url(&self) -> String {
        format!("ws://{}", self.run.addr)
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn application_id(&self) -> &str {
        &self.app_id
    }

    /// The bot user (its id is the application's).
    pub fn bot(&self) -> &DiscordUser {
        &self.bot
    }

    /// The heartbeat interval Hello gives new connections (41.25 s by default).
    pub fn set_heartbeat_interval(&self, interval: Duration) {
        self.run
            .shared
            .change(|st| st.gw.heartbeat_interval_ms = interval.as_millis() as u64);
    }

    /// The privileged intents the app has enabled (by default MESSAGE_CONTENT only).
    pub fn set_privileged_intents(&self, mask: u64) {
        self.run
            .shared
            .change(|st| st.gw.privileged_allowed = mask & intents::PRIVILEGED);
    }

    pub fn add_user(&self, user: DiscordUser) {
        self.run.shared.change(|st| st.add_user(user));
    }

    /// A text channel of a guild the bot is in.
    pub fn add_guild_channel(&self, guild_id: &str, channel_id: &str, name: &str) {
        let c = DiscordChannel::guild(guild_id, channel_id, name);
        self.run
            .shared
            .change(|st| st.channels.insert(c.id.clone(), c));
    }

    /// A DM channel with a user.
    pub fn add_dm_channel(&self, channel_id: &str, recipient_id: &str) {
        let c = DiscordChannel::dm(channel_id, recipient_id);
        self.run
            .shared
            .change(|st| st.channels.insert(c.id.clone(), c));
    }

    /// A message from `author_id` in a guild channel (made if new), dispatched as
    /// `MESSAGE_CREATE`; answers the Message. `<@id>` mentions fill `mentions`.
    pub fn guild_message(
        &self,
        guild_id: &str,
        channel_id: &str,
        author_id: &str,
        content: &str,
    ) -> Value {
        self.user_message(
            DiscordChannel::guild(guild_id, channel_id, "general"),
            author_id,
            content,
            None,
        )
    }

    /// A DM from `author_id` (its channel made if new), dispatched as `MESSAGE_CREATE`.
    pub fn dm_message(&self, channel_id: &str, author_id: &str, content: &str) -> Value {
        self.user_message(
            DiscordChannel::dm(channel_id, author_id),
            author_id,
            content,
            None,
        )
    }

    /// A message replying to `reply_to` in its channel, dispatched. `None` if there is no
    /// such message.
    pub fn reply_message(&self, reply_to: &str, author_id: &str, content: &str) -> Option<Value> {
        let channel = {
            let st = self.run.shared.lock();
            let m = st.messages.get(reply_to)?;
            st.channels.get(m["channel_id"].as_str()?)?.clone()
        };
        Some(self.user_message(channel, author_id, content, Some(reply_to)))
    }

    fn user_message(
        &self,
        channel: DiscordChannel,
        author_id: &str,
        content: &str,
        reply_to: Option<&str>,
    ) -> Value {
        self.run.shared.change(|st| {
            let channel = st
                .channels
                .entry(channel.id.clone())
                .or_insert(channel)
                .clone();
            let author = st.user(author_id);
            let m = st.new_message(&channel, &author, content, reply_to);
            st.dispatch("MESSAGE_CREATE", &m);
            m
        })
    }

    /// A slash command `/name` run by `user_id` in a channel (made if new: a guild channel
    /// when `guild_id` is given, else a DM), dispatched as `INTERACTION_CREATE`. `options`
    /// is the command's `data.options` (`[{"name", "type", "value"}]`) or `null`.
    pub fn slash_command(
        &self,
        name: &str,
        channel_id: &str,
        guild_id: Option<&str>,
        user_id: &str,
        options: Value,
    ) -> Interaction {
        self.run.shared.change(|st| {
            let channel = match guild_id {
                Some(g) => DiscordChannel::guild(g, channel_id, "general"),
                None => DiscordChannel::dm(channel_id, user_id),
            };
            let channel = st
                .channels
                .entry(channel.id.clone())
                .or_insert(channel)
                .clone();
            let user = st.user(user_id).to_json();
            let id = st.snowflake();
            let token = format!("aW50ZXJhY3Rpb246{id}OnBpbmNlci1mYWtl");
            let command_id = st
                .commands
                .iter()
                .find(|c| c["name"] == json!(name))
                .and_then(|c| c["id"].as_str().map(str::to_owned))
                .unwrap_or_else(|| st.snowflake());
            let mut data = json!({"id": command_id, "name": name, "type": 1});
            if !options.is_null() {
                data["options"] = options;
            }
            let mut d = json!({
                "id": id,
                "application_id": st.app_id,
                "type": 2,
                "data": data,
                "channel_id": channel.id,
                "channel": rest::interaction_channel(&channel.kind, &channel.id),
                "token": token,
                "version": 1,
                "app_permissions": "2248473465835073",
                "locale": "en-US",
                "entitlements": [],
                "attachment_size_limit": 10_485_760,
            });
            match &channel.kind {
                ChannelKind::Guild { guild_id } => {
                    d["guild_id"] = json!(guild_id);
                    d["guild_locale"] = json!("en-US");
                    d["member"] = json!({
                        "user": user, "roles": [], "permissions": "2248473465835073",
                        "joined_at": "2024-01-01T00:00:00.000000+00:00", "nick": null,
                        "deaf": false, "mute": false, "flags": 0,
                    });
                    d["authorizing_integration_owners"] = json!({"0": guild_id});
                    d["context"] = json!(0);
                }
                ChannelKind::Dm { .. } => {
                    d["user"] = user;
                    d["authorizing_integration_owners"] = json!({"0": "0"});
                    d["context"] = json!(1);
                }
            }
            st.interactions.insert(
                id.clone(),
                StoredInteraction {
                    token: token.clone(),
                    channel_id: channel.id.clone(),
                    answered: None,
                    original: None,
                },
            );
            st.dispatch("INTERACTION_CREATE", &d);
            Interaction { id, token }
        })
    }

    /// Dispatches any event (`t`, `d`) to the live sessions (message events follow the
    /// message intents).
    pub fn dispatch(&self, t: &str, d: Value) {
        self.run.shared.change(|st| st.dispatch(t, &d));
    }

    /// A message as it stands now, by id.
    pub fn message(&self, id: &str) -> Option<Value> {
        self.run.shared.lock().messages.get(id).cloned()
    }

    // ---------------------------------------------------------------------------------
    // Gateway faults

    /// Closes every open Gateway connection's TCP stream without a close frame; sessions
    /// stay resumable.
    pub fn drop_connections(&self) {
        self.control(Control::Drop);
    }

    /// Sends op 7 Reconnect on every open connection.
    pub fn send_reconnect(&self) {
        self.control(Control::Reconnect);
    }

    /// Sends op 9 Invalid Session on every open connection; unless `resumable`, their
    /// sessions end.
    pub fn invalidate_sessions(&self, resumable: bool) {
        self.control(Control::InvalidSession(resumable));
    }

    /// Closes every open connection with this close code (4000 and the like keep the
    /// session resumable).
    pub fn close_connections(&self, code: u16, reason: &str) {
        self.control(Control::Close(code, reason.to_owned()));
    }

    /// Sends op 1: every open connection should heartbeat at once.
    pub fn request_heartbeat(&self) {
        self.control(Control::RequestHeartbeat);
    }

    /// Sends a text frame as is (e.g. malformed JSON) on every open connection.
    pub fn send_raw(&self, text: &str) {
        self.control(Control::Raw(text.to_owned()));
    }

    /// Heartbeats are no longer ACKed (a zombied connection, as clients must detect).
    pub fn stop_acking_heartbeats(&self) {
        self.run.shared.change(|st| st.gw.ack_heartbeats = false);
    }

    /// Heartbeats are ACKed again.
    pub fn resume_acking_heartbeats(&self) {
        self.run.shared.change(|st| st.gw.ack_heartbeats = true);
    }

    fn control(&self, c: Control) {
        self.run.shared.change(|st| st.control_all(&c));
    }

    /// Every Gateway connection so far, in order.
    pub fn connections(&self) -> Vec<GatewayConnection> {
        self.run.shared.lock().gw.records.clone()
    }

    /// Waits (tokio time) until at least `n` connections were made.
    pub async fn wait_connections(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<GatewayConnection>, WaitTimeout> {
        self.run
            .shared
            .wait_for("gateway connections", n, timeout, |st| {
                st.gw.records.clone()
            })
            .await
    }

    /// Waits (tokio time) until at least `n` connections got a session (Identify or Resume
    /// accepted).
    pub async fn wait_sessions(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<GatewayConnection>, WaitTimeout> {
        self.run
            .shared
            .wait_for("gateway sessions", n, timeout, |st| {
                st.gw
                    .records
                    .iter()
                    .filter(|r| r.session_id.is_some())
                    .cloned()
                    .collect()
            })
            .await
    }

    /// Waits (tokio time) until at least `n` connections have ended.
    pub async fn wait_closed(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<GatewayConnection>, WaitTimeout> {
        self.run
            .shared
            .wait_for("closed gateway connections", n, timeout, |st| {
                st.gw
                    .records
                    .iter()
                    .filter(|r| r.closed.is_some())
                    .cloned()
                    .collect()
            })
            .await
    }

    /// Waits (tokio time) until at least `n` heartbeats were received, over all
    /// connections.
    pub async fn wait_heartbeats(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Option<u64>>, WaitTimeout> {
        self.run
            .shared
            .wait_for("heartbeats", n, timeout, |st| {
                st.gw
                    .records
                    .iter()
                    .flat_map(|r| r.heartbeats.clone())
                    .collect()
            })
            .await
    }

    /// The last sequence number of a session, if it exists.
    pub fn session_seq(&self, session_id: &str) -> Option<u64> {
        self.run
            .shared
            .lock()
            .gw
            .sessions
            .get(session_id)
            .map(|s| s.seq)
    }

    // ---------------------------------------------------------------------------------
    // REST records and faults

    /// The next call of `route` (`create_message`; `*` for any) gets `fault`.
    pub fn fail_next(&self, route: &str, fault: Fault) {
        self.fail_times(route, fault, 1);
    }

    /// The next `times` calls of `route` get `fault`.
    pub fn fail_times(&self, route: &str, fault: Fault, times: usize) {
        self.run
            .shared
            .change(|st| st.faults.add(route, fault, times));
    }

    /// Every message sent or edited, in order.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.run.shared.lock().sent.clone()
    }

    /// Every REST call, refused and faulted ones included, in order.
    pub fn requests(&self) -> Vec<RecordedCall> {
        self.run.shared.lock().calls.clone()
    }

    /// The calls of one route.
    pub fn calls(&self, route: &str) -> Vec<RecordedCall> {
        self.run
            .shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.route == route)
            .cloned()
            .collect()
    }

    /// The global commands as last overwritten.
    pub fn commands(&self) -> Vec<Value> {
        self.run.shared.lock().commands.clone()
    }

    /// Every interaction callback accepted, in order.
    pub fn interaction_responses(&self) -> Vec<InteractionResponse> {
        self.run.shared.lock().responses.clone()
    }

    /// Waits (tokio time) until at least `n` messages were sent or edited.
    pub async fn wait_sent(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<SentMessage>, WaitTimeout> {
        self.run
            .shared
            .wait_for("messages sent", n, timeout, |st| st.sent.clone())
            .await
    }

    /// Waits (tokio time) until `route` was called at least `n` times.
    pub async fn wait_calls(
        &self,
        route: &str,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<RecordedCall>, WaitTimeout> {
        self.run
            .shared
            .wait_for("calls", n, timeout, |st| {
                st.calls
                    .iter()
                    .filter(|c| c.route == route)
                    .cloned()
                    .collect()
            })
            .await
    }

    /// Waits (tokio time) until at least `n` interaction callbacks were accepted.
    pub async fn wait_interaction_responses(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<InteractionResponse>, WaitTimeout> {
        self.run
            .shared
            .wait_for("interaction responses", n, timeout, |st| {
                st.responses.clone()
            })
            .await
    }

    /// Stops accepting, closes Gateway connections (1001) and waits for the rest.
    pub async fn shutdown(self) {
        self.run.shutdown().await;
    }
}

impl std::fmt::Debug for FakeDiscord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeDiscord")
            .field("addr", &self.run.addr)
            .finish_non_exhaustive()
    }
}
