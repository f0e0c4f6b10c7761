//! Telegram through teloxide's Bot API client: long polling (`getUpdates` with the offset
//! kept in the store) or a webhook, replies as HTML (`sendMessage`), groups and forum
//! topics, photos and documents as media references, exec approvals as inline keyboard
//! buttons (see [`approvals`](super::approvals)).
//!
//! Config (`channels.telegram`, or per account under `accounts`): `botToken` (or env
//! `TELEGRAM_BOT_TOKEN`), `apiBaseUrl` (default `https://api.telegram.org`; how tests and
//! self-hosted Bot API servers are reached), `pollTimeoutSeconds` (default 25),
//! `webhookUrl` and `webhookSecret` (or env `TELEGRAM_WEBHOOK_SECRET`) for webhook mode,
//! `execApprovals` (approval prompts with buttons in the chat), `streaming` ("partial",
//! the default: a reply shows in a draft edited as it streams, then the final reply
//! replaces it; "block"; "off") and `streamEditIntervalMs` (default 1000): see
//! [`stream`](super::stream).
//!
//! Long polling: the offset only moves past an update once [`Inbound::accept`] returned
//! for it, so an update is never acknowledged before it is durable; the offset is saved
//! with the account's state so a restart does not fetch everything again (and what it does
//! fetch again is dropped as seen). A webhook this account set in webhook mode is deleted
//! first; one set by someone else makes getUpdates fail with a Conflict, reported as such.
//!
//! Webhook mode (`webhookUrl`, the public URL of `POST /channels/telegram[/<account>]` on
//! the gateway port): the account calls `setWebhook` with `secret_token` = `webhookSecret`
//! (required). A request without that `X-Telegram-Bot-Api-Secret-Token` gets 401 and never
//! reaches an agent; malformed JSON gets 400; an update is answered 200 once
//! [`Inbound::accept`] has it durably, 500 otherwise (Telegram delivers it again, and a
//! redelivery of one taken in is dropped as seen).

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use teloxide::payloads::{
    AnswerCallbackQuerySetters, EditMessageTextSetters, GetUpdatesSetters, SendMessageSetters,
    SetWebhookSetters,
};
use teloxide::requests::Requester;
use teloxide::types::{
    AllowedUpdate, CallbackQuery, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, Message,
    MessageId, ParseMode, ReplyParameters, ThreadId, Update, UpdateKind,
};
use teloxide::{ApiError, Bot, RequestError};
use tracing::{debug, info, warn};

use super::actor::{
    Accepted, Adapter, Inbound, ReceiveError, SendError, WebhookRequest, WebhookResponse,
};
use super::approvals::{self, ApprovalPrompt, Outcome, Press, PressAnswer};
use super::config::AccountConfig;
use super::format::{self, Platform};
use super::stream::{StreamConfig, StreamMode};
use super::types::{ChannelOrigin, InboundMessage, MediaRef};
use crate::session::keys::PeerKind;
use crate::store::Store;

pub struct Telegram {
    bot: Bot,
    key: String,
    account: String,
    store: Store,
    poll_timeout: u32,
    me: std::sync::Mutex<Option<(u64, String)>>,
    /// Webhook mode: the public URL given to setWebhook and the secret it must carry.
    webhook: Option<(reqwest::Url, String)>,
    /// Reply previews while they stream.
    stream: StreamConfig,
}

/// What the store keeps for the account between runs.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    offset: i32,
    /// This account set a webhook (webhook mode): polling must delete it first.
    #[serde(default)]
    webhook: bool,
}

/// The updates the account asks for: messages and button presses.
const ALLOWED: [AllowedUpdate; 2] = [AllowedUpdate::Message, AllowedUpdate::CallbackQuery];

impl Telegram {
    pub fn new(cfg: &AccountConfig, store: Store) -> Result<Telegram, String> {
        let key = cfg.key();
        let token = cfg.secret("botToken", "TELEGRAM_BOT_TOKEN").ok_or_else(|| {
            format!(
                "{key}: no bot token; set channels.telegram.botToken (from @BotFather) or TELEGRAM_BOT_TOKEN"
            )
        })?;
        let base = cfg
            .str("apiBaseUrl")
            .unwrap_or("https://api.telegram.org")
            .trim_end_matches('/');
        let url = base
            .parse()
            .map_err(|e| format!("{key}: apiBaseUrl {base:?} is not a URL: {e}"))?;
        let poll_timeout = cfg.u64("pollTimeoutSeconds").unwrap_or(25).min(50) as u32;
        // The client must wait longer than a long poll.
        let client = teloxide::net::default_reqwest_settings()
            .timeout(Duration::from_secs(u64::from(poll_timeout) + 15))
            .build()
            .map_err(|e| format!("{key}: cannot build an HTTP client: {e}"))?;
        let webhook = webhook_config(cfg)?;
        let stream = StreamConfig::parse(cfg, StreamMode::Partial)?;
        Ok(Telegram {
            bot: Bot::with_client(token, client).set_api_url(url),
            key,
            account: cfg.account.clone(),
            store,
            poll_timeout,
            me: std::sync::Mutex::new(None),
            webhook,
            stream,
        })
    }

    fn state(&self) -> State {
        self.store
            .channel_state(&self.key)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn save(&self, state: &State) {
        if let Err(e) = self.store.set_channel_state(&self.key, state) {
            warn!(channel = %self.key, error = %e, "cannot save the account's state");
        }
    }

    /// A button press on an approval prompt: checked, resolved, answered.
    async fn on_callback(&self, q: &CallbackQuery, inbound: &Inbound) {
        let Some((allow, id)) = q.data.as_deref().and_then(approvals::parse_callback_data) else {
            debug!(channel = %self.key, "callback query for another button; ignored");
            let _ = self.bot.answer_callback_query(q.id.clone()).await;
            return;
        };
        let Some(chat) = q.message.as_ref().map(|m| m.chat()) else {
            let _ = self.bot.answer_callback_query(q.id.clone()).await;
            return;
        };
        let press = Press {
            id: id.to_owned(),
            allow,
            user_id: q.from.id.0.to_string(),
            user_name: match &q.from.username {
                Some(u) => format!("@{u}"),
                None => q.from.first_name.clone(),
            },
            chat_id: chat.id.0.to_string(),
            own_dm: chat.is_private() && chat.id.0 == q.from.id.0 as i64,
        };
        let answer = approvals::press(inbound, &press);
        let alert = !matches!(answer, PressAnswer::Done(_));
        if let Err(e) = self
            .bot
            .answer_callback_query(q.id.clone())
            .text(answer.text())
            .show_alert(alert)
            .await
        {
            warn!(channel = %self.key, error = %e, "cannot answer a callback query");
        }
    }

    /// Webhook mode: sets the webhook, then waits (requests come through the gateway).
    async fn serve_webhook(self: Arc<Self>, url: reqwest::Url, secret: String) -> ReceiveError {
        if let Err(e) = self
            .bot
            .set_webhook(url)
            .secret_token(secret)
            .allowed_updates(ALLOWED)
            .await
        {
            return match receive_error(e) {
                ReceiveError::Transient(e) => ReceiveError::Transient(format!("setWebhook: {e}")),
                ReceiveError::Permanent(e) => ReceiveError::Permanent(format!("setWebhook: {e}")),
            };
        }
        let mut state = self.state();
        if !state.webhook {
            state.webhook = true;
            self.save(&state);
        }
        info!(channel = %self.key, "telegram webhook set");
        std::future::pending().await
    }

    async fn on_webhook(&self, req: &WebhookRequest, inbound: &Inbound) -> WebhookResponse {
        let Some((_, secret)) = &self.webhook else {
            return WebhookResponse::text(
                404,
                "this Telegram account uses long polling; set webhookUrl to take updates here",
            );
        };
        let given = req
            .header("x-telegram-bot-api-secret-token")
            .unwrap_or_default();
        if !super::slack::constant_time_eq(given.as_bytes(), secret.as_bytes()) {
            warn!(channel = %self.key, present = !given.is_empty(), "telegram webhook request without the right secret token refused");
            return WebhookResponse::text(401, "invalid secret token");
        }
        // Parsed from the bytes: teloxide's update kinds need borrowed keys (from a Value
        // every update would be an unknown kind).
        let is_object =
            serde_json::from_slice::<serde_json::Value>(&req.body).is_ok_and(|v| v.is_object());
        let update: Update = match serde_json::from_slice(&req.body) {
            Ok(u) if is_object => u,
            _ => {
                warn!(channel = %self.key, "telegram webhook request is not an update");
                return WebhookResponse::text(400, "expected a JSON update");
            }
        };
        match &update.kind {
            UpdateKind::Message(m) => {
                let Some(msg) = self.normalise(m) else {
                    return WebhookResponse::text(200, "");
                };
                match inbound.accept(msg).await {
                    Ok(a) => {
                        if let Accepted::Dropped(why) = a {
                            debug!(channel = %self.key, why, "update dropped");
                        }
                        WebhookResponse::text(200, "")
                    }
                    Err(e) => {
                        // Not acknowledged: Telegram delivers it again.
                        warn!(channel = %self.key, error = %e, "could not take an update in; Telegram will retry it");
                        WebhookResponse::text(500, "try again")
                    }
                }
            }
            UpdateKind::CallbackQuery(q) => {
                self.on_callback(q, inbound).await;
                WebhookResponse::text(200, "")
            }
            _ => WebhookResponse::text(200, ""),
        }
    }

    /// A Bot API update as an [`InboundMessage`]; `None` for what the bot does not answer
    /// (its own messages, service messages, updates of other kinds).
    fn normalise(&self, msg: &Message) -> Option<InboundMessage> {
        let (bot_id, bot_name) = self.me.lock().unwrap().clone().unwrap_or_default();
        let from = msg.from.as_ref()?;
        if from.id.0 == bot_id {
            return None;
        }
        let mut media = Vec::new();
        if let Some(sizes) = msg.photo()
            && let Some(p) = sizes.iter().max_by_key(|p| p.width * p.height)
        {
            media.push(MediaRef {
                kind: "photo".into(),
                id: p.file.id.to_string(),
                name: None,
                mime: Some("image/jpeg".into()),
                size: Some(u64::from(p.file.size)),
            });
        }
        if let Some(d) = msg.document() {
            media.push(MediaRef {
                kind: "document".into(),
                id: d.file.id.to_string(),
                name: d.file_name.clone(),
                mime: d.mime_type.as_ref().map(|m| m.to_string()),
                size: Some(u64::from(d.file.size)),
            });
        }
        let text = msg.text().or(msg.caption()).unwrap_or_default().to_owned();
        if text.is_empty() && media.is_empty() {
            return None;
        }
        let peer_kind = if msg.chat.is_private() {
            PeerKind::Dm
        } else if msg.chat.is_channel() {
            PeerKind::Channel
        } else {
            PeerKind::Group
        };
        let mentioned = (!bot_name.is_empty()
            && text
                .to_lowercase()
                .contains(&format!("@{}", bot_name.to_lowercase())))
            || msg
                .reply_to_message()
                .and_then(|r| r.from.as_ref())
                .is_some_and(|u| u.id.0 == bot_id);
        let name = match &from.last_name {
            Some(l) => format!("{} {l}", from.first_name),
            None => from.first_name.clone(),
        };
        Some(InboundMessage {
            channel: "telegram".into(),
            account: self.account.clone(),
            peer_kind,
            chat_id: msg.chat.id.0.to_string(),
            sender_id: from.id.0.to_string(),
            sender_name: name,
            text,
            media,
            reply_to: msg.reply_to_message().map(|r| r.id.0.to_string()),
            thread: msg
                .thread_id
                .filter(|_| msg.is_topic_message)
                .map(|t| t.0.0.to_string()),
            timestamp_ms: msg.date.timestamp_millis().max(0) as u64,
            // Message ids are unique per chat, not per bot.
            message_id: format!("{}/{}", msg.chat.id.0, msg.id.0),
            mentioned,
            guild_id: None,
            team_id: None,
        })
    }

    async fn poll(self: Arc<Self>, inbound: Inbound) -> ReceiveError {
        let mut state = self.state();
        if state.webhook {
            // Webhook mode before: Telegram refuses getUpdates while the webhook is set.
            if let Err(e) = self.bot.delete_webhook().await {
                return receive_error(e);
            }
            info!(channel = %self.key, "telegram webhook deleted; long polling");
            state.webhook = false;
            self.save(&state);
        }
        loop {
            let updates = self
                .bot
                .get_updates()
                .offset(state.offset)
                .timeout(self.poll_timeout)
                .allowed_updates(ALLOWED)
                .await;
            let updates = match updates {
                Ok(u) => u,
                Err(e) => return receive_error(e),
            };
            if updates.is_empty() {
                continue;
            }
            // One page is taken in as a batch: staged in one commit, one shared fsync, in
            // order per chat.
            let mut next = state.offset;
            let mut msgs = Vec::new();
            let mut presses = Vec::new();
            for u in &updates {
                next = next.max(u.id.0 as i32 + 1);
                match &u.kind {
                    UpdateKind::Message(m) => msgs.extend(self.normalise(m)),
                    UpdateKind::CallbackQuery(q) => presses.push(q),
                    _ => {}
                }
            }
            let results = inbound.accept_many(msgs).await;
            if let Some(e) = results.iter().find_map(|r| r.as_ref().err()) {
                // Not acknowledged: Telegram hands the batch out again and what was
                // taken in is dropped as seen.
                warn!(channel = %self.key, error = %e, "could not take an update in; fetching it again");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            for r in results {
                if let Ok(Accepted::Dropped(why)) = r {
                    debug!(channel = %self.key, why, "update dropped");
                }
            }
            // Presses are answered once: a redelivered one finds its approval gone.
            for q in presses {
                self.on_callback(q, &inbound).await;
            }
            state.offset = next;
            self.save(&state);
        }
    }
}

/// `webhookUrl` and `webhookSecret`: both, or neither (long polling).
fn webhook_config(cfg: &AccountConfig) -> Result<Option<(reqwest::Url, String)>, String> {
    let key = cfg.key();
    let Some(url) = cfg.str("webhookUrl") else {
        return Ok(None);
    };
    let parsed: reqwest::Url = url
        .parse()
        .map_err(|e| format!("{key}: webhookUrl {url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(format!(
            "{key}: webhookUrl {url:?} must be the public https:// URL of /channels/telegram on the gateway"
        ));
    }
    let secret = cfg
        .secret("webhookSecret", "TELEGRAM_WEBHOOK_SECRET")
        .ok_or_else(|| {
            format!(
                "{key}: webhookUrl is set but webhookSecret is not; set channels.telegram.webhookSecret (1-256 characters: A-Z, a-z, 0-9, _ and -) or TELEGRAM_WEBHOOK_SECRET, so only Telegram can post updates"
            )
        })?;
    if secret.len() > 256
        || !secret
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    {
        return Err(format!(
            "{key}: webhookSecret must be 1-256 characters from A-Z, a-z, 0-9, _ and - (Telegram's rule for secret_token)"
        ));
    }
    Ok(Some((parsed, secret)))
}

/// `chat/message` (what sends return) as Bot API ids.
fn message_ref(id: &str) -> Result<(ChatId, MessageId), SendError> {
    let (chat, msg) = id
        .split_once('/')
        .and_then(|(c, m)| Some((c.parse().ok()?, m.parse().ok()?)))
        .ok_or_else(|| SendError::Permanent(format!("{id:?} is not a Telegram message id")))?;
    Ok((ChatId(chat), MessageId(msg)))
}

/// How a failed Bot API call is treated by the receive loop.
fn receive_error(e: RequestError) -> ReceiveError {
    match e {
        RequestError::Api(ApiError::InvalidToken) => ReceiveError::Permanent(
            "Telegram refused the bot token (Unauthorized); check channels.telegram.botToken"
                .into(),
        ),
        RequestError::Api(ApiError::Unknown(t)) if t.contains("webhook is active") => {
            ReceiveError::Transient(format!(
                "a webhook is set for this bot, so Telegram refuses long polling (Telegram: {t}); Pincer did not set it: delete it (deleteWebhook) or give this account webhookUrl and webhookSecret"
            ))
        }
        RequestError::Api(ApiError::Unknown(t)) if t.contains("Conflict") => {
            ReceiveError::Transient(format!(
                "another client is polling this bot (Telegram: {t}); stop it or use a webhook"
            ))
        }
        other => ReceiveError::Transient(other.to_string()),
    }
}

fn send_error(e: RequestError) -> SendError {
    match e {
        RequestError::RetryAfter(s) => SendError::RetryAfter(s.duration()),
        RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => {
            SendError::Transient(e.to_string())
        }
        RequestError::Api(ApiError::Unknown(t))
            if t.contains("Internal Server Error")
                || t.contains("Bad Gateway")
                || t.contains("Too Many Requests") =>
        {
            SendError::Transient(t)
        }
        other => SendError::Permanent(other.to_string()),
    }
}

impl Adapter for Telegram {
    fn platform(&self) -> Platform {
        Platform::Telegram
    }

    fn connect(&self) -> BoxFuture<'_, Result<String, ReceiveError>> {
        async move {
            let me = self.bot.get_me().await.map_err(receive_error)?;
            let name = me.user.username.clone().unwrap_or_default();
            *self.me.lock().unwrap() = Some((me.user.id.0, name.clone()));
            Ok(format!("@{name}"))
        }
        .boxed()
    }

    fn receive(self: Arc<Self>, inbound: Inbound) -> Option<BoxFuture<'static, ReceiveError>> {
        match self.webhook.clone() {
            Some((url, secret)) => Some(self.serve_webhook(url, secret).boxed()),
            None => Some(self.poll(inbound).boxed()),
        }
    }

    fn webhook<'a>(
        &'a self,
        req: &'a WebhookRequest,
        inbound: &'a Inbound,
    ) -> BoxFuture<'a, WebhookResponse> {
        self.on_webhook(req, inbound).boxed()
    }

    fn approval_prompt<'a>(
        &'a self,
        prompt: &'a ApprovalPrompt,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        async move {
            let (Some(yes), Some(no)) = (
                approvals::callback_data(&prompt.id, true),
                approvals::callback_data(&prompt.id, false),
            ) else {
                return approvals::text_prompt(self, prompt).await;
            };
            let to = &prompt.origin;
            let chat: i64 = to.to.parse().map_err(|_| {
                SendError::Permanent(format!("{:?} is not a Telegram chat id", to.to))
            })?;
            let keyboard = InlineKeyboardMarkup::new([[
                InlineKeyboardButton::callback("Approve", yes),
                InlineKeyboardButton::callback("Deny", no),
            ]]);
            let text = format::render(Platform::Telegram, &prompt.text());
            let mut req = self
                .bot
                .send_message(ChatId(chat), text)
                .parse_mode(ParseMode::Html)
                .reply_markup(keyboard);
            if let Some(t) = to.thread.as_deref().and_then(|t| t.parse().ok()) {
                req = req.message_thread_id(ThreadId(MessageId(t)));
            }
            let sent = req.await.map_err(send_error)?;
            Ok(format!("{}/{}", sent.chat.id.0, sent.id.0))
        }
        .boxed()
    }

    fn approval_update<'a>(
        &'a self,
        prompt: &'a ApprovalPrompt,
        message_id: &'a str,
        outcome: &'a Outcome,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        async move {
            let (chat, msg) = message_ref(message_id)?;
            let text = format::render(Platform::Telegram, &prompt.outcome_text(outcome));
            // Without reply_markup: the buttons go.
            self.bot
                .edit_message_text(chat, msg, text)
                .parse_mode(ParseMode::Html)
                .await
                .map_err(send_error)?;
            Ok(())
        }
        .boxed()
    }

    fn send<'a>(
        &'a self,
        to: &'a ChannelOrigin,
        text: &'a str,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        self.send_message(to, text, true).boxed()
    }

    fn stream_config(&self) -> StreamConfig {
        self.stream
    }

    fn send_draft<'a>(
        &'a self,
        to: &'a ChannelOrigin,
        text: &'a str,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        self.send_message(to, text, false).boxed()
    }

    fn edit<'a>(
        &'a self,
        message_id: &'a str,
        text: &'a str,
        formatted: bool,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        async move {
            let (chat, msg) = message_ref(message_id)?;
            let mut req = self.bot.edit_message_text(chat, msg, text);
            if formatted {
                req = req.parse_mode(ParseMode::Html);
            }
            match req.await {
                // The draft already says this (a preview caught up with the reply).
                Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(()),
                Err(e) => Err(send_error(e)),
            }
        }
        .boxed()
    }
}

impl Telegram {
    /// sendMessage answering `to`'s message, as HTML or plain text.
    async fn send_message(
        &self,
        to: &ChannelOrigin,
        text: &str,
        html: bool,
    ) -> Result<String, SendError> {
        {
            let chat: i64 = to.to.parse().map_err(|_| {
                SendError::Permanent(format!("{:?} is not a Telegram chat id", to.to))
            })?;
            let mut req = self.bot.send_message(ChatId(chat), text);
            if html {
                req = req.parse_mode(ParseMode::Html);
            }
            if let Some(t) = to.thread.as_deref().and_then(|t| t.parse().ok()) {
                req = req.message_thread_id(ThreadId(MessageId(t)));
            }
            if let Some(id) = to
                .message_id
                .rsplit('/')
                .next()
                .and_then(|m| m.parse().ok())
            {
                req = req.reply_parameters(
                    ReplyParameters::new(MessageId(id)).allow_sending_without_reply(),
                );
            }
            let sent = req.await.map_err(send_error)?;
            Ok(format!("{}/{}", sent.chat.id.0, sent.id.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cfg(extra: serde_json::Value) -> AccountConfig {
        let mut c = json!({"botToken": "1:x"});
        crate::config::merge_patch(&mut c, &extra);
        super::super::config::accounts(Some(&json!({ "telegram": c })))
            .unwrap()
            .remove(0)
    }

    #[test]
    fn webhook_mode_needs_a_well_formed_secret() {
        assert_eq!(webhook_config(&cfg(json!({}))), Ok(None));
        let (url, secret) = webhook_config(&cfg(
            json!({"webhookUrl": "https://x.example/channels/telegram", "webhookSecret": "a-b_C9"}),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(url.as_str(), "https://x.example/channels/telegram");
        assert_eq!(secret, "a-b_C9");
        let e = webhook_config(&cfg(json!({"webhookUrl": "https://x.example/"}))).unwrap_err();
        assert!(
            e.contains("webhookSecret") && e.contains("telegram:default"),
            "{e}"
        );
        let e = webhook_config(&cfg(
            json!({"webhookUrl": "https://x.example/", "webhookSecret": "no spaces"}),
        ))
        .unwrap_err();
        assert!(e.contains("A-Z"), "{e}");
        assert!(
            webhook_config(&cfg(json!({"webhookUrl": "ftp://x", "webhookSecret": "s"}))).is_err()
        );
    }

    #[test]
    fn message_refs_are_chat_slash_message() {
        assert_eq!(message_ref("-100/7").unwrap(), (ChatId(-100), MessageId(7)));
        assert!(message_ref("7").is_err());
    }
}
