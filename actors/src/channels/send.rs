//! Outbound messages someone asked for (the `send` method, `pincer message send`, the
//! agents' `message` tool), as opposed to replies to a chat: the request is checked, its
//! account picked, and the message goes through the outbox like any reply, so it is
//! formatted, chunked, retried and recorded by the account's ChannelActor. A message for
//! an account that is restarting stays pending and is sent when the account is back.
//!
//! [`resolve`] and [`validate`] are pure; [`send`] stores and hands over; [`wait`] watches
//! the outbox row until the actor has sent it or given up.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::actor::{ChannelDirectory, ChannelStatus};
use super::types::{ChannelOrigin, DeliveryStatus, OutboxRow};
use crate::store::Store;

/// The largest message taken (the platform's own limit is met by chunking).
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// A message to send.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendRequest {
    /// telegram, slack, sms, discord; `None`: the only configured channel.
    pub channel: Option<String>,
    /// The account; `None`: `default`, else the channel's only account.
    pub account: Option<String>,
    /// The chat, channel or phone number, in the platform's own terms.
    pub to: String,
    /// A Telegram forum topic, a Slack thread (`ts`), a Discord thread.
    pub thread: Option<String>,
    /// Markdown, rendered for the platform.
    pub text: String,
    /// The session it is sent for (recorded with the row; none from the CLI).
    pub session_key: Option<String>,
}

/// Where a message went: its outbox row and, once [`wait`]ed for, how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendOutcome {
    pub outbox_id: u64,
    pub channel: String,
    pub account_id: String,
    pub to: String,
    /// `pending` (queued: not sent yet), `sent` or `failed`.
    pub status: DeliveryStatus,
    /// The platform's ids of the messages sent (one per chunk).
    pub message_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SendOutcome {
    /// `telegram:default 12345`.
    pub fn target(&self) -> String {
        format!("{}:{} {}", self.channel, self.account_id, self.to)
    }
}

/// Why a message was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The request is wrong (no such channel, empty text...): says what to change.
    #[error("{0}")]
    Invalid(String),
    /// The outbox could not be written: worth trying again.
    #[error("the outbox is unavailable: {0}")]
    Store(String),
}

impl OutboundError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Store(_))
    }
}

fn invalid(msg: impl Into<String>) -> OutboundError {
    OutboundError::Invalid(msg.into())
}

/// Checks what does not depend on the configuration: a recipient, a text, not too long.
/// Blank optional fields count as absent.
pub fn validate(mut req: SendRequest) -> Result<SendRequest, OutboundError> {
    let blank = |o: Option<String>| o.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    req.channel = blank(req.channel).map(|c| c.to_ascii_lowercase());
    req.account = blank(req.account);
    req.thread = blank(req.thread);
    req.session_key = blank(req.session_key);
    req.to = req.to.trim().to_owned();
    if req.to.is_empty() {
        return Err(invalid(
            "no recipient: give the chat, channel or phone number to send to (--to, `to`)",
        ));
    }
    if req.text.trim().is_empty() {
        return Err(invalid("the message is empty: give the text to send"));
    }
    if req.text.len() > MAX_TEXT_BYTES {
        return Err(invalid(format!(
            "the message is {} bytes; the most one send takes is {MAX_TEXT_BYTES} bytes (64 KiB): split it",
            req.text.len()
        )));
    }
    Ok(req)
}

/// Picks the account that sends, among the configured ones (`channels.status` rows):
/// the one named, else `default`, else the channel's only account; the channel named,
/// else the only configured one. Refuses accounts that cannot send until the gateway is
/// restarted (disabled, or stopped by a configuration error).
pub fn resolve(
    accounts: &[ChannelStatus],
    channel: Option<&str>,
    account: Option<&str>,
) -> Result<(String, String), OutboundError> {
    let all = |list: &[&ChannelStatus]| {
        list.iter()
            .map(|s| format!("{}:{}", s.channel, s.account_id))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let every: Vec<&ChannelStatus> = accounts.iter().collect();
    if every.is_empty() {
        return Err(invalid(
            "no channel accounts are configured: add one under channels.<name> in the config (see docs/channels.md)",
        ));
    }
    let channel = match channel {
        Some(c) => c.to_owned(),
        None => {
            let mut names: Vec<&str> = every.iter().map(|s| s.channel.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            if names.len() > 1 {
                return Err(invalid(format!(
                    "several channels are configured ({}): say which one (--channel, `channel`)",
                    names.join(", ")
                )));
            }
            names[0].to_owned()
        }
    };
    let of_channel: Vec<&ChannelStatus> = every
        .iter()
        .copied()
        .filter(|s| s.channel == channel)
        .collect();
    if of_channel.is_empty() {
        return Err(invalid(format!(
            "no {channel} account is configured; the configured accounts are: {}",
            all(&every)
        )));
    }
    let chosen = match account {
        Some(a) => of_channel
            .iter()
            .find(|s| s.account_id == a)
            .ok_or_else(|| {
                invalid(format!(
                    "{channel} has no account {a:?}; its accounts are: {}",
                    all(&of_channel)
                ))
            })?,
        None => match of_channel.iter().find(|s| s.account_id == "default") {
            Some(s) => s,
            None if of_channel.len() == 1 => &of_channel[0],
            None => {
                return Err(invalid(format!(
                    "{channel} has several accounts ({}) and none is called default: say which one (--account, `accountId`)",
                    all(&of_channel)
                )));
            }
        },
    };
    let key = format!("{}:{}", chosen.channel, chosen.account_id);
    if !chosen.enabled {
        return Err(invalid(format!(
            "{key} is disabled in the config: enable it and restart the gateway to send with it"
        )));
    }
    if chosen.state == "error" {
        return Err(invalid(format!(
            "{key} is not running{}: fix its configuration and restart the gateway (`pincer channels status` shows why)",
            chosen
                .last_error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        )));
    }
    Ok((chosen.channel.clone(), chosen.account_id.clone()))
}

/// Checks the request, picks its account, puts the message in the outbox and hands it to
/// the account's actor. Returns at once with the row `pending`; [`wait`] for the outcome.
pub async fn send(
    store: &Store,
    directory: &ChannelDirectory,
    req: SendRequest,
) -> Result<SendOutcome, OutboundError> {
    let req = validate(req)?;
    let (channel, account) = resolve(
        &directory.statuses(),
        req.channel.as_deref(),
        req.account.as_deref(),
    )?;
    let origin = ChannelOrigin {
        channel: channel.clone(),
        account: account.clone(),
        to: req.to.clone(),
        thread: req.thread.clone(),
        // Replies to nothing: every adapter sends a plain message for an empty id.
        message_id: String::new(),
    };
    let row = OutboxRow::new(
        origin.clone(),
        req.text,
        req.session_key.as_deref().unwrap_or(""),
        "",
    );
    let id = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.outbox_push(&row))
            .await
            .map_err(|e| OutboundError::Store(e.to_string()))?
            .map_err(|e| OutboundError::Store(e.to_string()))?
    };
    tracing::info!(channel = %origin.account_key(), outbox = id, "message queued");
    directory.deliver(id, &origin);
    Ok(SendOutcome {
        outbox_id: id,
        channel,
        account_id: account,
        to: req.to,
        status: DeliveryStatus::Pending,
        message_ids: Vec::new(),
        error: None,
    })
}

/// Watches the outbox row until it is sent or failed, or `timeout` passes (then it is
/// returned still `pending`: the actor keeps trying).
pub async fn wait(store: &Store, mut outcome: SendOutcome, timeout: Duration) -> SendOutcome {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut every = Duration::from_millis(20);
    loop {
        if let Ok(Some(row)) = store.outbox_row::<OutboxRow>(outcome.outbox_id) {
            outcome.message_ids = row.sent;
            outcome.status = row.status;
            outcome.error = row.error;
        }
        let now = tokio::time::Instant::now();
        if outcome.status != DeliveryStatus::Pending || now >= deadline {
            return outcome;
        }
        tokio::time::sleep(every.min(deadline - now)).await;
        every = (every * 2).min(Duration::from_millis(250));
    }
}

/// Sending as the tools see it (tests give the `message` tool a fake).
pub trait Outbound: Send + Sync + 'static {
    /// [`send`], then [`wait`] up to `wait_for`.
    fn send(
        &self,
        req: SendRequest,
        wait_for: Duration,
    ) -> BoxFuture<'static, Result<SendOutcome, OutboundError>>;
}

/// The gateway's channels: the store and the running accounts.
#[derive(Clone)]
pub struct ChannelSender {
    pub store: Store,
    pub directory: ChannelDirectory,
}

impl ChannelSender {
    pub fn new(store: Store, directory: ChannelDirectory) -> Arc<Self> {
        Arc::new(Self { store, directory })
    }
}

impl Outbound for ChannelSender {
    fn send(
        &self,
        req: SendRequest,
        wait_for: Duration,
    ) -> BoxFuture<'static, Result<SendOutcome, OutboundError>> {
        let this = self.clone();
        async move {
            let queued = send(&this.store, &this.directory, req).await?;
            Ok(wait(&this.store, queued, wait_for).await)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(channel: &str, id: &str, state: &str) -> ChannelStatus {
        ChannelStatus {
            channel: channel.into(),
            account_id: id.into(),
            enabled: state != "disabled",
            configured: true,
            state: state.into(),
            ..Default::default()
        }
    }

    fn req(to: &str, text: &str) -> SendRequest {
        SendRequest {
            to: to.into(),
            text: text.into(),
            ..Default::default()
        }
    }

    #[test]
    fn validation_wants_a_recipient_and_a_text_of_sane_size() {
        let e = validate(req("  ", "hi")).unwrap_err();
        assert!(e.to_string().contains("no recipient"), "{e}");
        let e = validate(req("1", " \n ")).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        let e = validate(req("1", &"x".repeat(MAX_TEXT_BYTES + 1))).unwrap_err();
        assert!(e.to_string().contains("65537 bytes"), "{e}");
        assert!(validate(req("1", &"x".repeat(MAX_TEXT_BYTES))).is_ok());
        let ok = validate(SendRequest {
            channel: Some(" Telegram ".into()),
            account: Some("".into()),
            thread: Some(" ".into()),
            ..req(" 42 ", "hi")
        })
        .unwrap();
        assert_eq!(ok.channel.as_deref(), Some("telegram"));
        assert_eq!((ok.account, ok.thread), (None, None));
        assert_eq!(ok.to, "42");
        assert!(!OutboundError::Invalid("x".into()).is_transient());
    }

    #[test]
    fn the_account_is_the_one_named_else_default_else_the_only_one() {
        let accounts = [
            account("slack", "work", "running"),
            account("telegram", "default", "running"),
            account("telegram", "other", "reconnecting"),
        ];
        let pick = |c: Option<&str>, a: Option<&str>| resolve(&accounts, c, a);
        assert_eq!(
            pick(Some("telegram"), None).unwrap(),
            ("telegram".into(), "default".into())
        );
        assert_eq!(
            pick(Some("telegram"), Some("other")).unwrap(),
            ("telegram".into(), "other".into()),
            "an account that is reconnecting still queues"
        );
        assert_eq!(
            pick(Some("slack"), None).unwrap(),
            ("slack".into(), "work".into()),
            "the channel's only account"
        );
        let e = pick(None, None).unwrap_err().to_string();
        assert!(
            e.contains("several channels") && e.contains("slack, telegram"),
            "{e}"
        );
        let e = pick(Some("sms"), None).unwrap_err().to_string();
        assert!(
            e.contains("no sms account")
                && e.contains("slack:work, telegram:default, telegram:other"),
            "{e}"
        );
        let e = pick(Some("telegram"), Some("nope"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no account \"nope\"") && e.contains("telegram:default, telegram:other"),
            "{e}"
        );
        let one = [account("telegram", "main", "running")];
        assert_eq!(
            resolve(&one, None, None).unwrap(),
            ("telegram".into(), "main".into()),
            "the only channel and its only account"
        );
        let two = [
            account("telegram", "a", "running"),
            account("telegram", "b", "running"),
        ];
        let e = resolve(&two, Some("telegram"), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("several accounts") && e.contains("--account"),
            "{e}"
        );
        let e = resolve(&[], Some("telegram"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no channel accounts are configured"), "{e}");
    }

    #[test]
    fn accounts_that_cannot_send_until_a_restart_are_refused() {
        let mut broken = account("telegram", "default", "error");
        broken.last_error = Some("botToken refused".into());
        let e = resolve(&[broken], None, None).unwrap_err().to_string();
        assert!(
            e.contains("not running (botToken refused)") && e.contains("restart"),
            "{e}"
        );
        let e = resolve(&[account("sms", "default", "disabled")], None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sms:default is disabled"), "{e}");
        for state in ["starting", "stopped", "restarting"] {
            assert!(resolve(&[account("sms", "default", state)], None, None).is_ok());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_send_is_queued_in_the_outbox_and_waited_for_until_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.redb")).unwrap();
        let directory = ChannelDirectory::new();
        let e = send(&store, &directory, req("5", "hi")).await.unwrap_err();
        assert!(e.to_string().contains("no channel accounts"), "{e}");
        directory.update("telegram:default", |s| {
            *s = account("telegram", "default", "starting")
        });
        let out = send(
            &store,
            &directory,
            SendRequest {
                thread: Some("7".into()),
                session_key: Some("agent:main:main".into()),
                ..req("5", "**hi**")
            },
        )
        .await
        .unwrap();
        assert_eq!(out.target(), "telegram:default 5");
        assert_eq!(out.status, DeliveryStatus::Pending);
        let row: OutboxRow = store.outbox_row(out.outbox_id).unwrap().unwrap();
        assert_eq!(row.text, "**hi**");
        assert_eq!(row.origin.thread.as_deref(), Some("7"));
        assert_eq!(row.origin.message_id, "");
        assert_eq!(row.session_key, "agent:main:main");

        // No actor runs: still pending at the deadline.
        let t = tokio::time::Instant::now();
        let waited = wait(&store, out.clone(), Duration::from_secs(2)).await;
        assert_eq!(waited.status, DeliveryStatus::Pending);
        assert_eq!(t.elapsed(), Duration::from_secs(2));

        // Once the actor records it, the wait sees it.
        let mut sent = row.clone();
        sent.status = DeliveryStatus::Sent;
        sent.sent = vec!["5/1".into(), "5/2".into()];
        store
            .outbox_update(out.outbox_id, &sent)
            .wait()
            .await
            .unwrap();
        let t = tokio::time::Instant::now();
        let waited = wait(&store, out, Duration::from_secs(2)).await;
        assert_eq!(waited.status, DeliveryStatus::Sent);
        assert_eq!(waited.message_ids, ["5/1", "5/2"]);
        assert_eq!(t.elapsed(), Duration::ZERO);
    }
}
