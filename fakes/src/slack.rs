//! A fake Slack on 127.0.0.1 for tests of Pincer's Slack channel: the Web API a bot calls
//! (`{base}/api/<method>`), and the Events API and interactivity deliveries Slack makes to
//! the app's request URL, signed with the signing secret as Slack signs them.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use pincer_fakes::slack::{FakeSlack, Fault};
//! let slack = FakeSlack::start("xoxb-test-token", "signing-secret").await;
//! let api = slack.api_url(); // http://127.0.0.1:PORT/api/
//! slack.set_request_url("http://127.0.0.1:18789/slack/events");
//! let check = slack.url_verification().await?;
//! assert!(check.ok());
//! slack.fail_next("chat.postMessage", Fault::RateLimited { retry_after_secs: 3 });
//! let delivered = slack.send_message("D0USER0001", "U0USER0001", "hello").await?;
//! assert_eq!(delivered.reply.as_ref().map(|r| r.status), Ok(200));
//! let posted = slack.wait_posted(1, std::time::Duration::from_secs(5)).await.unwrap();
//! assert_eq!(posted[0].channel, "D0USER0001");
//! # Ok(()) }
//! ```
//!
//! # Web API
//! `GET|POST /api/<method>`: the token as `Authorization: Bearer <token>` or a `token`
//! parameter; parameters from the query string and a form or JSON body. Answers are
//! `{"ok": true, ..}` or, with HTTP 200 as on Slack, `{"ok": false, "error": "<code>"}`:
//! `not_authed` (no token), `invalid_auth` (another token), `unknown_method`.
//!
//! * `auth.test`: the workspace and the bot (`user_id`, `bot_id`, `team_id`).
//! * `chat.postMessage` (`channel`, `text`, `blocks`, `thread_ts`): `{channel, ts,
//!   message}`; `channel_not_found` for a channel no event introduced (nor
//!   [`FakeSlack::add_channel`]), `no_text` without text, blocks or attachments,
//!   `msg_too_long` over 40,000 characters, `invalid_blocks` / `invalid_blocks_format`.
//! * `chat.update` (`channel`, `ts`, `text`, `blocks`): `message_not_found`,
//!   `cant_update_message` (not the bot's).
//! * `conversations.info` (`channel`), `users.info` (`user`): `channel_not_found`,
//!   `user_not_found`.
//!
//! `POST /actions/<id>` is the `response_url` of the interactive payloads the fake sends;
//! what is posted there is recorded ([`FakeSlack::response_url_posts`]).
//!
//! # Faults
//! [`FakeSlack::fail_next`]`(method, fault)`: `RateLimited` is 429 with `Retry-After` and
//! `{"ok":false,"error":"ratelimited"}`; `ServerError(500)` is `fatal_error` with that
//! status, 502-504 an HTML page; `InvalidToken` is `invalid_auth`; `Drop` closes the
//! connection; `Malformed` is 200 with cut-off JSON.
//!
//! # Deliveries to the app
//! Each is POSTed to the request URL ([`FakeSlack::set_request_url`]; block actions to the
//! interactivity URL, which defaults to it) with `X-Slack-Request-Timestamp` and
//! `X-Slack-Signature: v0=hex(HMAC-SHA256(secret, "v0:{ts}:{body}"))` ([`signature`]).
//! Events are JSON; interactive payloads are `payload=<JSON>` form-encoded. A [`Signing`]
//! other than `Valid` sends a forged, stale or unsigned request.

mod api;
mod state;

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::common::{self, Running, hmac_sha256};
use state::{Ids, State};

pub use crate::common::{Fault, HttpReply, WaitTimeout};

/// `v0=` and the hex HMAC-SHA256 of `v0:{timestamp}:{body}` under the signing secret: the
/// `X-Slack-Signature` of a request with that `X-Slack-Request-Timestamp` and body.
pub fn signature(signing_secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut base = format!("v0:{timestamp}:").into_bytes();
    base.extend_from_slice(body);
    format!(
        "v0={}",
        hex::encode(hmac_sha256(signing_secret.as_bytes(), &base))
    )
}

/// How a delivery is signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Signing {
    /// As Slack signs: the current time and the right secret.
    Valid,
    /// Signed with another secret.
    WrongSecret,
    /// Without the two signature headers.
    Unsigned,
    /// Signed correctly with a timestamp this many seconds old (Slack's apps refuse over
    /// five minutes).
    Stale { age_secs: u64 },
    /// Signed correctly over a body other than the one sent.
    Tampered,
}

/// A conversation's `channel_type` in message events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelType {
    /// A direct message (`D…`).
    Im,
    /// A public channel (`C…`).
    Channel,
    /// A private channel (`G…`).
    Group,
    /// A group direct message.
    Mpim,
}

/// A user of the fake workspace; unknown ids that events mention become `user<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlackUser {
    pub id: String,
    pub name: String,
    pub real_name: String,
    pub is_bot: bool,
}

impl SlackUser {
    pub fn new(id: &str, name: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            real_name: name.to_owned(),
            is_bot: false,
        }
    }

    /// The `user` object of `users.info`.
    pub fn to_json(&self, team_id: &str) -> Value {
        json!({
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": false,
            "real_name": self.real_name,
            "tz": "Europe/London",
            "tz_offset": 0,
            "is_bot": self.is_bot,
            "is_app_user": false,
            "profile": {"real_name": self.real_name, "display_name": self.name},
        })
    }
}

/// A conversation of the fake workspace. Conversations come into being with the events
/// that mention them (their kind from the id's first letter) or through
/// [`FakeSlack::add_channel`]; the bot can only post to conversations that exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlackChannel {
    pub id: String,
    pub name: String,
    pub kind: ChannelType,
    /// The other party of a direct message.
    pub user: Option<String>,
}

impl SlackChannel {
    /// `D…` a direct message, `G…` a private channel, anything else a public channel.
    pub fn from_id(id: &str) -> Self {
        let kind = match id.chars().next() {
            Some('D') => ChannelType::Im,
            Some('G') => ChannelType::Group,
            _ => ChannelType::Channel,
        };
        Self {
            id: id.to_owned(),
            name: format!("chan-{}", id.to_lowercase()),
            kind,
            user: None,
        }
    }

    /// The `channel` object of `conversations.info`.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "is_channel": self.kind == ChannelType::Channel,
            "is_group": self.kind == ChannelType::Group,
            "is_im": self.kind == ChannelType::Im,
            "is_mpim": self.kind == ChannelType::Mpim,
            "is_private": self.kind != ChannelType::Channel,
            "is_archived": false,
            "is_general": false,
            "is_member": true,
            "created": 1_700_000_000,
        });
        if self.kind == ChannelType::Im {
            v["user"] = json!(self.user);
        } else {
            v["name"] = json!(self.name);
        }
        v
    }
}

/// Whether a recorded message was posted or an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PostKind {
    /// `chat.postMessage`
    Post,
    /// `chat.update`
    Update,
}

/// A successful `chat.postMessage` or `chat.update`, as the fake accepted it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostedMessage {
    pub kind: PostKind,
    pub channel: String,
    /// The new message's `ts`, or the updated one's.
    pub ts: String,
    pub text: Option<String>,
    pub thread_ts: Option<String>,
    pub blocks: Option<Value>,
}

/// One Web API call as the fake received it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiCall {
    /// As in the path (`chat.postMessage`).
    pub method: String,
    /// Query and body parameters merged, as a JSON object; a string holding the raw body
    /// if it did not parse.
    pub params: Value,
    /// The token given (bearer header, else `token` parameter).
    pub token: Option<String>,
    pub token_ok: bool,
    pub http_method: String,
    pub fault: Option<Fault>,
}

/// One request the fake made to the app, with what came back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    /// `url_verification`, `event_callback`, `block_actions` or `raw`.
    pub kind: String,
    pub url: String,
    /// The envelope's `event_id` (events only).
    pub event_id: Option<String>,
    /// `X-Slack-Retry-Num`, for redeliveries.
    pub retry_num: Option<u32>,
    pub signing: Signing,
    /// The body as sent.
    pub body: String,
    /// The app's answer, or why there was none (connection refused, reset...).
    pub reply: Result<HttpReply, String>,
}

/// What the app answered to a `url_verification` request.
#[derive(Debug, Clone, PartialEq)]
pub struct UrlVerification {
    /// The challenge sent.
    pub challenge: String,
    /// The challenge found in the answer: a plain-text body, a JSON `{"challenge": ..}` or
    /// a form `challenge=..`, as Slack accepts.
    pub answered: Option<String>,
    pub reply: HttpReply,
}

impl UrlVerification {
    /// 200 with the challenge given back.
    pub fn ok(&self) -> bool {
        self.reply.status == 200 && self.answered.as_deref() == Some(self.challenge.as_str())
    }
}

/// A POST the app made to an interactive payload's `response_url`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseUrlPost {
    /// The id at the end of the URL.
    pub id: String,
    /// The JSON body, or the raw body as a string if it was not JSON.
    pub body: Value,
}

/// A running fake Slack; dropping it stops it too (without waiting).
pub struct FakeSlack {
    token: String,
    signing_secret: String,
    ids: Ids,
    run: Running<State>,
}

impl FakeSlack {
    /// Starts a fake workspace whose bot has this token and whose app signs with this
    /// secret, on 127.0.0.1 (a free port); returns once it listens.
    ///
    /// # Panics
    /// If 127.0.0.1 cannot be bound.
    pub async fn start(bot_token: &str, signing_secret: &str) -> FakeSlack {
        let ids = Ids::default();
        let token = bot_token.to_owned();
        let run = Running::start("slack", State::new(ids.clone()), |sh| {
            api::router(sh, token)
        })
        .await;
        FakeSlack {
            token: bot_token.to_owned(),
            signing_secret: signing_secret.to_owned(),
            ids,
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

    /// `http://127.0.0.1:PORT/api/`, in place of `https://slack.com/api/`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api/", self.run.addr)
    }

    pub fn bot_token(&self) -> &str {
        &self.token
    }

    pub fn signing_secret(&self) -> &str {
        &self.signing_secret
    }

    pub fn team_id(&self) -> &str {
        &self.ids.team_id
    }

    pub fn app_id(&self) -> &str {
        &self.ids.app_id
    }

    /// The bot's user id (what `<@..>` mentions of the bot name).
    pub fn bot_user_id(&self) -> &str {
        &self.ids.bot_user_id
    }

    pub fn bot_id(&self) -> &str {
        &self.ids.bot_id
    }

    /// Where events are delivered: the app's Events API request URL (http://127.0.0.1).
    pub fn set_request_url(&self, url: &str) {
        self.run
            .shared
            .change(|st| st.request_url = Some(url.to_owned()));
    }

    /// Where interactive payloads go, if not to the request URL.
    pub fn set_interactivity_url(&self, url: &str) {
        self.run
            .shared
            .change(|st| st.interactivity_url = Some(url.to_owned()));
    }

    /// Adds or replaces a user.
    pub fn add_user(&self, user: SlackUser) {
        self.run.shared.change(|st| st.add_user(user));
    }

    /// Adds or replaces a conversation, so the bot can post to it before any event.
    pub fn add_channel(&self, channel: SlackChannel) {
        self.run.shared.change(|st| st.add_channel(channel));
    }

    /// A message event from `user` in `channel` (its `channel_type` from the channel's
    /// kind), in its envelope with a new `event_id`; stored but not delivered.
    pub fn new_message(&self, channel: &str, user: &str, text: &str) -> Value {
        self.new_event("message", channel, user, text, None)
    }

    /// A message in the thread of the message `thread_ts` (with `thread_ts` and, when the
    /// parent is known, `parent_user_id`).
    pub fn new_thread_reply(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: &str,
    ) -> Value {
        self.new_event("message", channel, user, text, Some(thread_ts))
    }

    /// An `app_mention` event: `text` should hold `<@bot_user_id>`.
    pub fn new_app_mention(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> Value {
        self.new_event("app_mention", channel, user, text, thread_ts)
    }

    fn new_event(
        &self,
        kind: &str,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> Value {
        self.run.shared.change(|st| {
            let ev = st.user_message(kind, channel, user, text, thread_ts);
            st.envelope(ev)
        })
    }

    /// A `block_actions` payload: `user` pressed the button `action_id` (with `value`) on
    /// the message `message_ts` of `channel`. Its `response_url` points at this fake.
    pub fn new_block_actions(
        &self,
        channel: &str,
        user: &str,
        message_ts: &str,
        action_id: &str,
        value: &str,
    ) -> Value {
        let base = self.base_url();
        self.run.shared.change(|st| {
            let u = st.user(user);
            let chan = st.channel(channel, user);
            let response_id = st.next_response_id();
            let action_ts = st.next_ts();
            let message = st
                .message(channel, message_ts)
                .cloned()
                .unwrap_or_else(|| json!({"type": "message", "ts": message_ts}));
            let block_id = message
                .pointer("/blocks/0/block_id")
                .cloned()
                .unwrap_or_else(|| json!("actions"));
            let ids = &st.ids;
            json!({
                "type": "block_actions",
                "user": {"id": u.id, "username": u.name, "name": u.name, "team_id": ids.team_id},
                "api_app_id": ids.app_id,
                "token": ids.verification_token,
                "container": {
                    "type": "message",
                    "message_ts": message_ts,
                    "channel_id": channel,
                    "is_ephemeral": false,
                },
                "trigger_id": format!("{}.{}.{response_id}", st.clock.now(), ids.team_id),
                "team": {"id": ids.team_id, "domain": ids.team_domain},
                "enterprise": null,
                "is_enterprise_install": false,
                "channel": {"id": channel, "name": chan.name},
                "message": message,
                "state": {"values": {}},
                "response_url": format!("{base}/actions/{response_id}"),
                "actions": [{
                    "action_id": action_id,
                    "block_id": block_id,
                    "text": {"type": "plain_text", "text": action_id, "emoji": true},
                    "value": value,
                    "type": "button",
                    "action_ts": action_ts,
                }],
            })
        })
    }

    /// Delivers an `event_callback` envelope to the request URL, signed.
    pub async fn deliver_event(&self, envelope: &Value) -> std::io::Result<Delivery> {
        self.deliver_event_with(envelope, None, Signing::Valid)
            .await
    }

    /// Delivers an envelope again as Slack retries one the app did not acknowledge, with
    /// `X-Slack-Retry-Num` and `X-Slack-Retry-Reason` (`http_timeout`, `http_error`,
    /// `connection_failed`).
    pub async fn redeliver_event(
        &self,
        envelope: &Value,
        retry_num: u32,
        reason: &str,
    ) -> std::io::Result<Delivery> {
        self.deliver_event_with(envelope, Some((retry_num, reason)), Signing::Valid)
            .await
    }

    /// Delivers an envelope with any signing, as a retry when `retry` is given.
    pub async fn deliver_event_with(
        &self,
        envelope: &Value,
        retry: Option<(u32, &str)>,
        signing: Signing,
    ) -> std::io::Result<Delivery> {
        let url = self.request_url()?;
        let body = serde_json::to_vec(envelope).map_err(std::io::Error::other)?;
        let mut headers = Vec::new();
        if let Some((n, reason)) = retry {
            headers.push(("X-Slack-Retry-Num".to_owned(), n.to_string()));
            headers.push(("X-Slack-Retry-Reason".to_owned(), reason.to_owned()));
        }
        let kind = envelope["type"].as_str().unwrap_or("event_callback");
        let event_id = envelope["event_id"].as_str().map(str::to_owned);
        self.post_signed(
            kind,
            &url,
            "application/json",
            body,
            headers,
            signing,
            event_id,
            retry.map(|r| r.0),
        )
        .await
    }

    /// A user's message, delivered at once (see [`FakeSlack::new_message`]).
    pub async fn send_message(
        &self,
        channel: &str,
        user: &str,
        text: &str,
    ) -> std::io::Result<Delivery> {
        let ev = self.new_message(channel, user, text);
        self.deliver_event(&ev).await
    }

    /// A reply in a thread, delivered at once.
    pub async fn send_thread_reply(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: &str,
    ) -> std::io::Result<Delivery> {
        let ev = self.new_thread_reply(channel, user, text, thread_ts);
        self.deliver_event(&ev).await
    }

    /// An `app_mention`, delivered at once.
    pub async fn send_app_mention(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> std::io::Result<Delivery> {
        let ev = self.new_app_mention(channel, user, text, thread_ts);
        self.deliver_event(&ev).await
    }

    /// A button press, delivered at once to the interactivity URL (see
    /// [`FakeSlack::new_block_actions`]).
    pub async fn send_block_actions(
        &self,
        channel: &str,
        user: &str,
        message_ts: &str,
        action_id: &str,
        value: &str,
    ) -> std::io::Result<Delivery> {
        let payload = self.new_block_actions(channel, user, message_ts, action_id, value);
        self.deliver_interaction(&payload, Signing::Valid).await
    }

    /// POSTs an interactive payload as `payload=<JSON>`, form-encoded, to the
    /// interactivity URL (else the request URL).
    pub async fn deliver_interaction(
        &self,
        payload: &Value,
        signing: Signing,
    ) -> std::io::Result<Delivery> {
        let url = {
            let st = self.run.shared.lock();
            st.interactivity_url.clone().or(st.request_url.clone())
        };
        let url = url.ok_or_else(no_url)?;
        let body = common::form_encode(&[("payload".to_owned(), payload.to_string())]);
        let kind = payload["type"].as_str().unwrap_or("block_actions");
        self.post_signed(
            kind,
            &url,
            "application/x-www-form-urlencoded",
            body.into_bytes(),
            Vec::new(),
            signing,
            None,
            None,
        )
        .await
    }

    /// Sends a `url_verification` request with a new challenge; answers what came back.
    pub async fn url_verification(&self) -> std::io::Result<UrlVerification> {
        let url = self.request_url()?;
        let challenge = {
            let mut st = self.run.shared.lock();
            let ts = st.next_ts();
            format!(
                "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P{}",
                ts.replace('.', "")
            )
        };
        let body = json!({
            "token": self.ids.verification_token,
            "challenge": challenge,
            "type": "url_verification",
        });
        let d = self
            .post_signed(
                "url_verification",
                &url,
                "application/json",
                body.to_string().into_bytes(),
                Vec::new(),
                Signing::Valid,
                None,
                None,
            )
            .await?;
        let reply = d.reply.map_err(std::io::Error::other)?;
        let answered = challenge_in(&reply);
        Ok(UrlVerification {
            challenge,
            answered,
            reply,
        })
    }

    /// POSTs any body to `url` (the request URL if `None`) with this signing: for
    /// malformed payloads and the like.
    pub async fn deliver_raw(
        &self,
        url: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
        signing: Signing,
    ) -> std::io::Result<Delivery> {
        let url = match url {
            Some(u) => u.to_owned(),
            None => self.request_url()?,
        };
        self.post_signed(
            "raw",
            &url,
            content_type,
            body,
            Vec::new(),
            signing,
            None,
            None,
        )
        .await
    }

    fn request_url(&self) -> std::io::Result<String> {
        self.run
            .shared
            .lock()
            .request_url
            .clone()
            .ok_or_else(no_url)
    }

    #[allow(clippy::too_many_arguments)]
    async fn post_signed(
        &self,
        kind: &str,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
        mut headers: Vec<(String, String)>,
        signing: Signing,
        event_id: Option<String>,
        retry_num: Option<u32>,
    ) -> std::io::Result<Delivery> {
        common::loopback_port(&url.parse().map_err(std::io::Error::other)?)?;
        let now = self.run.shared.lock().clock.now();
        let (ts, secret, signed_body) = match &signing {
            Signing::Valid | Signing::Unsigned => (now, self.signing_secret.clone(), body.clone()),
            Signing::WrongSecret => (now, format!("{}-not", self.signing_secret), body.clone()),
            Signing::Stale { age_secs } => (
                now - *age_secs as i64,
                self.signing_secret.clone(),
                body.clone(),
            ),
            Signing::Tampered => {
                let mut b = body.clone();
                b.push(b' ');
                (now, self.signing_secret.clone(), b)
            }
        };
        headers.push(("Content-Type".to_owned(), content_type.to_owned()));
        headers.push((
            "User-Agent".to_owned(),
            "Slackbot 1.0 (+https://api.slack.com/robots)".to_owned(),
        ));
        if signing != Signing::Unsigned {
            let ts = ts.to_string();
            let sig = signature(&secret, &ts, &signed_body);
            headers.push(("X-Slack-Request-Timestamp".to_owned(), ts));
            headers.push(("X-Slack-Signature".to_owned(), sig));
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        let reply = common::post(url, &headers, body)
            .await
            .map_err(|e| e.to_string());
        tracing::debug!(
            kind,
            url,
            ?signing,
            ok = reply.is_ok(),
            "fake slack delivery"
        );
        let d = Delivery {
            kind: kind.to_owned(),
            url: url.to_owned(),
            event_id,
            retry_num,
            signing,
            body: text,
            reply,
        };
        self.run.shared.change(|st| st.deliveries.push(d.clone()));
        Ok(d)
    }

    /// A message as it stands now (the users' and the bot's), by channel and `ts`.
    pub fn message(&self, channel: &str, ts: &str) -> Option<Value> {
        self.run.shared.lock().message(channel, ts).cloned()
    }

    /// The next call of `method` (`chat.postMessage`; `*` for any) gets `fault`.
    pub fn fail_next(&self, method: &str, fault: Fault) {
        self.fail_times(method, fault, 1);
    }

    /// The next `times` calls of `method` get `fault`.
    pub fn fail_times(&self, method: &str, fault: Fault, times: usize) {
        self.run
            .shared
            .change(|st| st.faults.add(method, fault, times));
    }

    /// Every successful `chat.postMessage` and `chat.update`, in order.
    pub fn posted(&self) -> Vec<PostedMessage> {
        self.run.shared.lock().posted.clone()
    }

    /// Every Web API call, refused and faulted ones included, in order.
    pub fn requests(&self) -> Vec<ApiCall> {
        self.run.shared.lock().calls.clone()
    }

    /// The calls of one method.
    pub fn calls(&self, method: &str) -> Vec<ApiCall> {
        calls_of(&self.run.shared.lock().calls, method)
    }

    /// Every delivery to the app, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.run.shared.lock().deliveries.clone()
    }

    /// Every POST to a `response_url`, in order.
    pub fn response_url_posts(&self) -> Vec<ResponseUrlPost> {
        self.run.shared.lock().responses.clone()
    }

    /// Waits (tokio time) until at least `n` messages were posted or updated.
    pub async fn wait_posted(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<PostedMessage>, WaitTimeout> {
        self.run
            .shared
            .wait_for("messages posted", n, timeout, |st| st.posted.clone())
            .await
    }

    /// Waits (tokio time) until `method` was called at least `n` times.
    pub async fn wait_calls(
        &self,
        method: &str,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<ApiCall>, WaitTimeout> {
        self.run
            .shared
            .wait_for("calls", n, timeout, |st| calls_of(&st.calls, method))
            .await
    }

    /// Waits (tokio time) until at least `n` POSTs reached a `response_url`.
    pub async fn wait_response_url_posts(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<ResponseUrlPost>, WaitTimeout> {
        self.run
            .shared
            .wait_for("response_url posts", n, timeout, |st| st.responses.clone())
            .await
    }

    /// Stops accepting and waits for open connections to finish.
    pub async fn shutdown(self) {
        self.run.shutdown().await;
    }
}

fn calls_of(calls: &[ApiCall], method: &str) -> Vec<ApiCall> {
    calls
        .iter()
        .filter(|c| c.method.eq_ignore_ascii_case(method))
        .cloned()
        .collect()
}

fn no_url() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "fake slack: no request URL set (set_request_url)",
    )
}

/// The challenge in an answer to `url_verification`: JSON `{"challenge"}`, a form
/// `challenge=`, or the plain-text body.
fn challenge_in(reply: &HttpReply) -> Option<String> {
    let body = reply.body.trim();
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return v
            .get("challenge")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    let is_form = reply
        .header("content-type")
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        return common::form_pairs(body.as_bytes())?
            .into_iter()
            .find(|(k, _)| k == "challenge")
            .map(|(_, v)| v);
    }
    (!body.is_empty()).then(|| body.to_owned())
}

impl std::fmt::Debug for FakeSlack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSlack")
            .field("addr", &self.run.addr)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_slacks_documented_example() {
        // From Slack's "Verifying requests from Slack" guide.
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        assert_eq!(
            signature(
                "8f742231b10e8888abcd99yyyzzz85a5",
                "1531420618",
                body.as_bytes()
            ),
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
    }

    #[test]
    fn channel_kinds_follow_id_prefixes() {
        assert_eq!(SlackChannel::from_id("D1").kind, ChannelType::Im);
        assert_eq!(SlackChannel::from_id("G1").kind, ChannelType::Group);
        assert_eq!(SlackChannel::from_id("C1").kind, ChannelType::Channel);
        assert_eq!(serde_json::to_value(ChannelType::Im).unwrap(), "im");
    }

    #[test]
    fn challenges_in_every_shape_slack_accepts() {
        let reply = |ct: &str, body: &str| HttpReply {
            status: 200,
            headers: vec![("content-type".into(), ct.into())],
            body: body.into(),
        };
        assert_eq!(
            challenge_in(&reply("application/json", r#"{"challenge":"abc"}"#)).as_deref(),
            Some("abc")
        );
        assert_eq!(
            challenge_in(&reply("application/x-www-form-urlencoded", "challenge=abc")).as_deref(),
            Some("abc")
        );
        assert_eq!(
            challenge_in(&reply("text/plain", "abc\n")).as_deref(),
            Some("abc")
        );
        assert_eq!(challenge_in(&reply("text/plain", "")), None);
    }
}
