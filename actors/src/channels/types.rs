//! What crosses between channels and sessions: where a message came from (so its reply
//! goes back there, even after a restart) and the outbox rows that carry replies out.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Where a message came from and where its reply goes. Stored with the message in its
/// session's inbox, so a turn resumed after a restart still answers in the right chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelOrigin {
    /// telegram, sms, slack, discord...
    pub channel: String,
    /// The channel account (`default` when there is one).
    pub account: String,
    /// Where the reply goes: the chat, channel or phone number.
    pub to: String,
    /// The thread or forum topic, when the message was in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    /// The platform's id of the message: what redeliveries are recognised by, and what
    /// the reply answers.
    pub message_id: String,
}

impl ChannelOrigin {
    /// `channel:account`, the key of the account's rows in the store.
    pub fn account_key(&self) -> String {
        account_key(&self.channel, &self.account)
    }
}

pub fn account_key(channel: &str, account: &str) -> String {
    format!("{channel}:{account}")
}

/// What became of an outbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Not sent yet (or not completely: `sent` lists the chunks that went out).
    Pending,
    Sent,
    /// Given up on after retries, or refused for good; kept and reported.
    Failed,
}

/// A reply on its way to a chat, and then the record of its delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxRow {
    pub origin: ChannelOrigin,
    /// The reply, in Markdown (formatted for the platform when sent).
    pub text: String,
    #[serde(default)]
    pub session_key: String,
    #[serde(default)]
    pub run_id: String,
    pub created_ms: u64,
    pub status: DeliveryStatus,
    #[serde(default)]
    pub attempts: u32,
    /// Platform ids of the chunks already sent (a resumed delivery sends the rest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sent: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_ms: Option<u64>,
}

impl OutboxRow {
    pub fn new(origin: ChannelOrigin, text: String, session_key: &str, run_id: &str) -> Self {
        OutboxRow {
            origin,
            text,
            session_key: session_key.to_owned(),
            run_id: run_id.to_owned(),
            created_ms: crate::gateway::now_ms(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            sent: Vec::new(),
            error: None,
            done_ms: None,
        }
    }
}

/// Told the id of each new outbox row and where it goes (the channels, which send it).
pub type DeliverSink = Arc<dyn Fn(u64, &ChannelOrigin) + Send + Sync>;

/// A platform update, normalised: what every adapter hands to its ChannelActor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundMessage {
    pub channel: String,
    pub account: String,
    pub peer_kind: crate::session::keys::PeerKind,
    /// Where the conversation is: the DM chat, the group, the channel (room).
    pub chat_id: String,
    pub sender_id: String,
    #[serde(default)]
    pub sender_name: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<MediaRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Forum topic or thread inside the chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    pub timestamp_ms: u64,
    /// The platform's id of the message, unique within the account.
    pub message_id: String,
    /// The bot was mentioned or replied to (what mention-gating in groups looks at).
    #[serde(default)]
    pub mentioned: bool,
    /// Discord server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guild_id: Option<String>,
    /// Slack workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
}

/// An attachment, by reference: the platform keeps the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaRef {
    /// photo, document, audio, video, voice, sticker, image...
    pub kind: String,
    /// The platform's file id or URL.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

impl InboundMessage {
    /// The text the agent sees: the message, then one line per attachment.
    pub fn agent_text(&self) -> String {
        let mut t = self.text.clone();
        for m in &self.media {
            if !t.is_empty() {
                t.push('\n');
            }
            t.push_str(&format!("[{} attached: {}", m.kind, m.id));
            if let Some(n) = &m.name {
                t.push_str(&format!(", {n}"));
            }
            if let Some(mime) = &m.mime {
                t.push_str(&format!(", {mime}"));
            }
            t.push(']');
        }
        t
    }

    /// Where the reply goes.
    pub fn origin(&self) -> ChannelOrigin {
        ChannelOrigin {
            channel: self.channel.clone(),
            account: self.account.clone(),
            to: self.chat_id.clone(),
            thread: self.thread.clone(),
            message_id: self.message_id.clone(),
        }
    }
}
