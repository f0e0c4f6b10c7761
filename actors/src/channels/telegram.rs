//! Telegram through teloxide's Bot API client: long polling (`getUpdates` with the offset
//! kept in the store), replies as HTML (`sendMessage`), groups and forum topics, photos and
//! documents as media references.
//!
//! Config (`channels.telegram`, or per account under `accounts`): `botToken` (or env
//! `TELEGRAM_BOT_TOKEN`), `apiBaseUrl` (default `https://api.telegram.org`; how tests and
//! self-hosted Bot API servers are reached), `pollTimeoutSeconds` (default 25).
//!
//! The offset only moves past an update once [`Inbound::accept`] returned for it, so an
//! update is never acknowledged before it is durable; the offset is saved with the
//! account's state so a restart does not fetch everything again (and what it does fetch
//! again is dropped as seen).

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use teloxide::payloads::{GetUpdatesSetters, SendMessageSetters};
use teloxide::requests::Requester;
use teloxide::types::{
    AllowedUpdate, ChatId, Message, MessageId, ParseMode, ReplyParameters, ThreadId, UpdateKind,
};
use teloxide::{ApiError, Bot, RequestError};
use tracing::warn;

use super::actor::{Accepted, Adapter, Inbound, ReceiveError, SendError};
use super::config::AccountConfig;
use super::format::Platform;
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
}

/// What the store keeps for the account between runs.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    offset: i32,
}

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
        Ok(Telegram {
            bot: Bot::with_client(token, client).set_api_url(url),
            key,
            account: cfg.account.clone(),
            store,
            poll_timeout,
            me: std::sync::Mutex::new(None),
        })
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
        let mut state: State = self
            .store
            .channel_state(&self.key)
            .ok()
            .flatten()
            .unwrap_or_default();
        loop {
            let updates = self
                .bot
                .get_updates()
                .offset(state.offset)
                .timeout(self.poll_timeout)
                .allowed_updates([AllowedUpdate::Message])
                .await;
            let updates = match updates {
                Ok(u) => u,
                Err(e) => return receive_error(e),
            };
            if updates.is_empty() {
                continue;
            }
            // One batch is taken in concurrently (its stores share commits), in order
            // per chat because each session takes its messages in arrival order.
            let mut next = state.offset;
            let mut accepts = Vec::new();
            for u in &updates {
                next = next.max(u.id.0 as i32 + 1);
                if let UpdateKind::Message(m) = &u.kind
                    && let Some(msg) = self.normalise(m)
                {
                    accepts.push(inbound.accept(msg));
                }
            }
            let results = futures_util::future::join_all(accepts).await;
            if let Some(e) = results.iter().find_map(|r| r.as_ref().err()) {
                // Not acknowledged: Telegram hands the batch out again and what was
                // taken in is dropped as seen.
                warn!(channel = %self.key, error = %e, "could not take an update in; fetching it again");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            for r in results {
                if let Ok(Accepted::Dropped(why)) = r {
                    tracing::debug!(channel = %self.key, why, "update dropped");
                }
            }
            state.offset = next;
            if let Err(e) = self.store.set_channel_state(&self.key, &state) {
                warn!(channel = %self.key, error = %e, "cannot save the update offset");
            }
        }
    }
}

/// How a failed Bot API call is treated by the receive loop.
fn receive_error(e: RequestError) -> ReceiveError {
    match e {
        RequestError::Api(ApiError::InvalidToken) => ReceiveError::Permanent(
            "Telegram refused the bot token (Unauthorized); check channels.telegram.botToken"
                .into(),
        ),
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
        Some(self.poll(inbound).boxed())
    }

    fn send<'a>(
        &'a self,
        to: &'a ChannelOrigin,
        text: &'a str,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        async move {
            let chat: i64 = to.to.parse().map_err(|_| {
                SendError::Permanent(format!("{:?} is not a Telegram chat id", to.to))
            })?;
            let mut req = self
                .bot
                .send_message(ChatId(chat), text)
                .parse_mode(ParseMode::Html);
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
        .boxed()
    }
}
