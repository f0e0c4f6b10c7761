//! The ChannelActor: one per configured channel account, under the `channels` supervisor.
//!
//! It owns the account's platform [`Adapter`], its receive loop and its outbox sender:
//!
//! - inbound: the adapter turns a platform update into an [`InboundMessage`] and hands it
//!   to [`Inbound::accept`], which applies the access policy, routes it to its agent and
//!   session, and returns once the message is durable in the session's inbox (marked seen
//!   in the same commit). Only then does the adapter acknowledge it to the platform, so a
//!   crash loses nothing and a redelivery is dropped.
//! - outbound: a reply is put in the outbox in the same commit that ends its turn; the
//!   actor is told its id and sends it: formatted for the platform, chunked under its
//!   limit, in order, retried with backoff on 429 (honouring the platform's retry-after)
//!   and 5xx; a reply that finally fails stays in the outbox as failed and is reported in
//!   `channels.status`. Rows still pending when the actor starts are sent then.
//! - failures: a transient receive error (platform down, network) is retried inside the
//!   loop with backoff while `channels.status` says so; a permanent one (a bad token) stops
//!   the account with a clear error and no restarts; a crash (a panic in the adapter or
//!   the actor) is the supervisor's to restart, with backoff. No failure reaches another
//!   channel or the gateway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::approvals::{ApprovalPrompt, Outcome};
use super::config::AccountConfig;
use super::format::{self, Platform};
use super::policy::{self, Decision, Pairing};
use super::routing::{self, Binding, RouteInput};
use super::stream::{Drafts, StreamConfig};
use super::types::{ChannelOrigin, DeliveryStatus, InboundMessage, OutboxRow};
use crate::agent::run::{Approvals, EventSink};
use crate::gateway::now_ms;
use crate::session::keys::{self, DmScope, Origin, PeerKind};
use crate::session::methods::SessionsLookup;
use crate::session::{SendItem, SessionMeta, SessionsMsg};
use crate::store::{Queued, Store};

/// Why a send did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Rate limited: try again after this long (the platform's retry-after).
    RetryAfter(Duration),
    /// Worth retrying (5xx, network).
    Transient(String),
    /// Not worth retrying (chat not found, forbidden, bad request).
    Permanent(String),
}

/// Why the receive loop stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiveError {
    /// Retried with backoff.
    Transient(String),
    /// Stops the account (a bad token): no retry can fix it.
    Permanent(String),
}

/// A platform's protocol work for one account.
pub trait Adapter: Send + Sync + 'static {
    fn platform(&self) -> Platform;

    /// Checks the credentials; returns who the bot is (for logs and status).
    fn connect(&self) -> BoxFuture<'_, Result<String, ReceiveError>>;

    /// Receives until an error: each update goes through `inbound.accept`, and the
    /// platform is acknowledged only for updates it returned `Ok` for. Webhook adapters
    /// have no loop: they return `None` and get their requests from the gateway's HTTP
    /// server instead.
    fn receive(self: Arc<Self>, inbound: Inbound) -> Option<BoxFuture<'static, ReceiveError>>;

    /// Sends one chunk (already rendered for the platform); returns the platform's id of
    /// the message sent.
    fn send<'a>(
        &'a self,
        to: &'a ChannelOrigin,
        text: &'a str,
    ) -> BoxFuture<'a, Result<String, SendError>>;

    /// A request to the account's webhook, `POST /channels/<channel>/<account>` on the
    /// gateway port (body already capped). Adapters without webhooks answer 404.
    fn webhook<'a>(
        &'a self,
        req: &'a WebhookRequest,
        inbound: &'a Inbound,
    ) -> BoxFuture<'a, WebhookResponse> {
        let _ = (req, inbound);
        async { WebhookResponse::text(404, "this channel takes no webhooks") }.boxed()
    }

    /// Shows an exec approval request in its chat; returns the platform's id of the
    /// message (what [`approval_update`](Self::approval_update) edits). Adapters without
    /// buttons send a text prompt pointing at the operator UI.
    fn approval_prompt<'a>(
        &'a self,
        prompt: &'a ApprovalPrompt,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        super::approvals::text_prompt(self, prompt)
    }

    /// Edits a prompt to show its outcome (and removes its buttons). Adapters that cannot
    /// edit do nothing.
    fn approval_update<'a>(
        &'a self,
        prompt: &'a ApprovalPrompt,
        message_id: &'a str,
        outcome: &'a Outcome,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        let _ = (prompt, message_id, outcome);
        async { Ok(()) }.boxed()
    }

    /// Whether and how replies are previewed while they stream (see
    /// [`stream`](super::stream)). Adapters that cannot edit messages do not preview.
    fn stream_config(&self) -> StreamConfig {
        StreamConfig::OFF
    }

    /// Sends a reply's preview as plain text (answering `to`'s message); returns the
    /// platform's id of the message, what [`edit`](Self::edit) changes.
    fn send_draft<'a>(
        &'a self,
        to: &'a ChannelOrigin,
        text: &'a str,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        let _ = (to, text);
        async { Err(SendError::Permanent("this channel has no drafts".into())) }.boxed()
    }

    /// Replaces the text of a message this account sent: `formatted` text is rendered for
    /// the platform (like [`send`](Self::send)'s), otherwise plain.
    fn edit<'a>(
        &'a self,
        message_id: &'a str,
        text: &'a str,
        formatted: bool,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        let _ = (message_id, text, formatted);
        async {
            Err(SendError::Permanent(
                "this channel cannot edit messages".into(),
            ))
        }
        .boxed()
    }
}

/// A webhook request as the gateway received it.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    /// Path and query, as sent (`/channels/sms/default?x=1`).
    pub uri: String,
    pub headers: axum::http::HeaderMap,
    pub body: bytes::Bytes,
}

impl WebhookRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the gateway answers a webhook request with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl WebhookResponse {
    pub fn text(status: u16, body: &str) -> Self {
        WebhookResponse {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn json(status: u16, body: &Value) -> Self {
        WebhookResponse {
            status,
            content_type: "application/json",
            body: body.to_string().into_bytes(),
        }
    }
}

/// What the accounts share: the store, the sessions, routing.
pub struct ChannelCtx {
    pub store: Store,
    pub sessions: SessionsLookup,
    pub bindings: Vec<Binding>,
    pub default_agent: String,
    pub main_key: String,
    pub dm_scope: DmScope,
    pub directory: ChannelDirectory,
    /// Delay before retrying a failed send: `retry_base * 2^attempt`, capped at 60 s.
    pub retry_base: Duration,
    /// Attempts per chunk before a reply is marked failed.
    pub max_attempts: u32,
    /// What approval buttons pressed in a chat resolve (`None`: prompts are not sent).
    pub approvals: Option<Arc<Approvals>>,
}

/// What `channels.status` shows for one account.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelStatus {
    pub channel: String,
    pub account_id: String,
    pub enabled: bool,
    pub configured: bool,
    /// starting | running | reconnecting | stopped | error
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub inbound: u64,
    pub routed: u64,
    pub duplicates: u64,
    pub denied: u64,
    pub outbound: u64,
    pub failed: u64,
    pub starts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_inbound_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_outbound_ms: Option<u64>,
}

#[derive(Default)]
struct DirInner {
    status: HashMap<String, ChannelStatus>,
    actors: HashMap<String, ActorRef<ChannelMsg>>,
    /// Where each running account's webhook requests go.
    webhooks: HashMap<String, (Arc<dyn Adapter>, Inbound)>,
    /// Approval prompts shown in chats and not answered yet.
    prompts: super::approvals::Prompts,
}

/// The running accounts: their status and where to send their replies.
#[derive(Clone, Default)]
pub struct ChannelDirectory(Arc<Mutex<DirInner>>);

impl ChannelDirectory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every account's status, in key order.
    pub fn statuses(&self) -> Vec<ChannelStatus> {
        let inner = self.0.lock().unwrap();
        let mut v: Vec<_> = inner.status.values().cloned().collect();
        v.sort_by(|a, b| (&a.channel, &a.account_id).cmp(&(&b.channel, &b.account_id)));
        v
    }

    pub fn update(&self, key: &str, f: impl FnOnce(&mut ChannelStatus)) {
        let mut inner = self.0.lock().unwrap();
        f(inner.status.entry(key.to_owned()).or_default());
    }

    /// Hands a new outbox row to its account's actor (a stopped account sends it when it
    /// starts again).
    pub fn deliver(&self, id: u64, origin: &ChannelOrigin) {
        let actor = self
            .0
            .lock()
            .unwrap()
            .actors
            .get(&origin.account_key())
            .cloned();
        if let Some(a) = actor {
            let _ = a.cast(ChannelMsg::Deliver(id));
        }
    }

    fn register(
        &self,
        key: &str,
        running: Option<(ActorRef<ChannelMsg>, Arc<dyn Adapter>, Inbound)>,
    ) {
        let mut inner = self.0.lock().unwrap();
        match running {
            Some((a, adapter, inbound)) => {
                inner.actors.insert(key.to_owned(), a);
                inner.webhooks.insert(key.to_owned(), (adapter, inbound));
            }
            None => {
                inner.actors.remove(key);
                inner.webhooks.remove(key);
            }
        }
    }

    /// Wraps the agents' events sink so approval requests are also shown in the chat
    /// that asked (see [`approvals`](super::approvals)).
    pub fn approval_events(&self, inner: EventSink) -> EventSink {
        super::approvals::sink(self.clone(), inner)
    }

    /// A running account's adapter and inbound path.
    pub fn account(&self, key: &str) -> Option<(Arc<dyn Adapter>, Inbound)> {
        self.0.lock().unwrap().webhooks.get(key).cloned()
    }

    /// Any running account's inbound path (they share the store).
    pub fn any_account(&self) -> Option<Inbound> {
        let inner = self.0.lock().unwrap();
        inner.webhooks.values().next().map(|(_, i)| i.clone())
    }

    pub(super) fn prompts(&self) -> super::approvals::Prompts {
        self.0.lock().unwrap().prompts.clone()
    }

    /// Hands a webhook request to its account's adapter.
    pub async fn webhook(&self, key: &str, req: WebhookRequest) -> WebhookResponse {
        let target = self.0.lock().unwrap().webhooks.get(key).cloned();
        match target {
            Some((adapter, inbound)) => adapter.webhook(&req, &inbound).await,
            None => WebhookResponse::text(404, "no such channel account is running"),
        }
    }
}

/// What [`Inbound::accept`] did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// In its session's inbox (durably); a turn answers it.
    Routed { session_key: String, run_id: String },
    /// Taken in before (a redelivery): dropped.
    Duplicate,
    /// Answered by the channel itself (a pairing code, `/status`).
    Answered,
    /// Refused by the access policy, or a group message without a mention.
    Dropped(&'static str),
}

/// The account's inbound path, handed to its adapter.
#[derive(Clone)]
pub struct Inbound(Arc<InboundInner>);

struct InboundInner {
    cfg: AccountConfig,
    key: String,
    ctx: Arc<ChannelCtx>,
    /// Previews of the replies while they stream.
    drafts: Drafts,
}

impl Inbound {
    pub fn new(cfg: AccountConfig, ctx: Arc<ChannelCtx>, drafts: Drafts) -> Self {
        Inbound(Arc::new(InboundInner {
            key: cfg.key(),
            cfg,
            ctx,
            drafts,
        }))
    }

    pub fn config(&self) -> &AccountConfig {
        &self.0.cfg
    }

    pub fn ctx(&self) -> &ChannelCtx {
        &self.0.ctx
    }

    /// Takes a message in. `Err` means it could not be stored or routed now: the adapter
    /// must not acknowledge it (the platform redelivers it).
    pub async fn accept(&self, msg: InboundMessage) -> Result<Accepted, String> {
        self.accept_many(vec![msg])
            .await
            .pop()
            .expect("one result per message")
    }

    /// [`accept`](Self::accept) for a batch (a page of updates), one result per message
    /// in order: the routed ones are staged in one commit and share one fsync, which is
    /// what lets an account take in thousands of messages a second. Messages of one chat
    /// keep their order. When the account previews replies, each routed message asks for
    /// its reply's text deltas, which a draft in the chat follows (see
    /// [`stream`](super::stream)).
    pub async fn accept_many(&self, msgs: Vec<InboundMessage>) -> Vec<Result<Accepted, String>> {
        let ctx = &self.0.ctx;
        let drafts = &self.0.drafts;
        let mut results: Vec<Option<Result<Accepted, String>>> = vec![None; msgs.len()];
        let mut items = Vec::new();
        let mut waits = Vec::new();
        for (i, msg) in msgs.into_iter().enumerate() {
            match self.prepare(msg).await {
                Ok(Prepared::Done(a)) => results[i] = Some(Ok(a)),
                Err(e) => results[i] = Some(Err(e)),
                Ok(Prepared::Route { key, text, origin }) => {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    let (stream, preview) = if drafts.enabled() {
                        let (s, d) = mpsc::unbounded_channel();
                        (Some(s), Some((origin.clone(), d)))
                    } else {
                        (None, None)
                    };
                    items.push(SendItem {
                        key: key.clone(),
                        text,
                        origin: Some(origin),
                        reply: tx.into(),
                        stream,
                    });
                    waits.push((i, key, rx, preview));
                }
            }
        }
        if !items.is_empty() {
            let sent = match (ctx.sessions)() {
                Some(s) => s
                    .cast(SessionsMsg::SendMany { items })
                    .map_err(|_| "the sessions are restarting".to_owned()),
                None => Err("the sessions are restarting".into()),
            };
            for (i, session_key, rx, preview) in waits {
                let r = match &sent {
                    Err(e) => Err(e.clone()),
                    Ok(()) => match tokio::time::timeout(Duration::from_secs(30), rx).await {
                        Ok(Ok(r)) => r,
                        _ => Err("the sessions did not answer".into()),
                    },
                };
                if let (Ok((run_id, status)), Some((origin, deltas))) = (&r, preview)
                    && *status != "duplicate"
                {
                    drafts.start(run_id.clone(), origin, deltas);
                }
                results[i] = Some(self.routed(session_key, r));
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every message has a result"))
            .collect()
    }

    /// Counts what the session made of a routed message.
    fn routed(
        &self,
        session_key: String,
        r: Result<(String, &'static str), String>,
    ) -> Result<Accepted, String> {
        let (ctx, key) = (&self.0.ctx, &self.0.key);
        match r {
            Ok((_, "duplicate")) => {
                ctx.directory.update(key, |s| s.duplicates += 1);
                Ok(Accepted::Duplicate)
            }
            Ok((run_id, _)) => {
                ctx.directory.update(key, |s| s.routed += 1);
                Ok(Accepted::Routed {
                    session_key,
                    run_id,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Everything before the session: seen check, access policy, commands the channel
    /// answers itself, routing.
    async fn prepare(&self, msg: InboundMessage) -> Result<Prepared, String> {
        let (cfg, ctx, key) = (&self.0.cfg, &self.0.ctx, &self.0.key);
        ctx.directory.update(key, |s| {
            s.inbound += 1;
            s.last_inbound_ms = Some(now_ms());
        });
        let store = &ctx.store;
        if store
            .seen(key, &msg.message_id)
            .map_err(|e| e.to_string())?
        {
            ctx.directory.update(key, |s| s.duplicates += 1);
            return Ok(Prepared::Done(Accepted::Duplicate));
        }
        let pairing: Option<Pairing> =
            if msg.peer_kind == PeerKind::Dm && cfg.dm_policy == super::config::DmPolicy::Pairing {
                store
                    .pairing(key, &msg.sender_id)
                    .map_err(|e| e.to_string())?
            } else {
                None
            };
        let paired = pairing.as_ref().is_some_and(|p| p.approved_ms.is_some());
        match policy::decide(cfg, &msg, paired) {
            Decision::Accept => {}
            Decision::Pair => return self.pair(&msg, pairing).await.map(Prepared::Done),
            Decision::NotMentioned => {
                ctx.directory.update(key, |s| s.denied += 1);
                return Ok(Prepared::Done(Accepted::Dropped("not mentioned")));
            }
            Decision::Deny(why) => {
                info!(channel = %key, sender = %msg.sender_id, chat = %msg.chat_id, reason = why, "message refused");
                ctx.directory.update(key, |s| s.denied += 1);
                return Ok(Prepared::Done(Accepted::Dropped(why)));
            }
        }
        let peer = match msg.peer_kind {
            PeerKind::Dm => msg.sender_id.as_str(),
            _ => msg.chat_id.as_str(),
        };
        let route = routing::route(
            &ctx.bindings,
            &RouteInput {
                channel: &cfg.channel,
                account_id: &cfg.account,
                peer_kind: msg.peer_kind,
                peer_id: peer,
                guild_id: msg.guild_id.as_deref(),
                team_id: msg.team_id.as_deref(),
            },
            &ctx.default_agent,
        );
        let session_key = keys::session_key(
            route.agent_id,
            &ctx.main_key,
            ctx.dm_scope,
            &Origin {
                channel: &cfg.channel,
                account: &cfg.account,
                kind: msg.peer_kind,
                peer,
                thread: msg.thread.as_deref(),
            },
        );
        if command(&msg.text) == Some("status") {
            let meta: Option<SessionMeta> =
                store.session(&session_key).map_err(|e| e.to_string())?;
            let text = status_text(route.agent_id, &session_key, meta.as_ref());
            self.answer(&msg, text)?;
            return Ok(Prepared::Done(Accepted::Answered));
        }
        Ok(Prepared::Route {
            key: session_key,
            text: normalise_command(&msg.agent_text()),
            origin: msg.origin(),
        })
    }

    /// An unknown sender under `dmPolicy: pairing`: a code to give the owner.
    async fn pair(
        &self,
        msg: &InboundMessage,
        existing: Option<Pairing>,
    ) -> Result<Accepted, String> {
        let (ctx, key) = (&self.0.ctx, &self.0.key);
        let now = now_ms();
        let mut p = match existing {
            Some(p) if now.saturating_sub(p.requested_ms) < policy::PAIRING_TTL_MS => p,
            _ => Pairing {
                code: policy::pairing_code(),
                sender_name: msg.sender_name.clone(),
                requested_ms: now,
                approved_ms: None,
                notified_ms: 0,
            },
        };
        ctx.directory.update(key, |s| s.denied += 1);
        if now.saturating_sub(p.notified_ms) < policy::PAIRING_REMIND_MS {
            return Ok(Accepted::Dropped("pairing pending"));
        }
        p.notified_ms = now;
        ctx.store
            .set_pairing(key, &msg.sender_id, Some(&p))
            .map_err(|e| e.to_string())?;
        info!(channel = %key, sender = %msg.sender_id, code = %p.code, "pairing requested");
        self.answer(
            msg,
            format!(
                "This assistant does not know you yet. Your pairing code is {}.\nAsk its owner to run: pincer pairing approve {} {}",
                p.code, self.0.cfg.channel, p.code
            ),
        )?;
        Ok(Accepted::Answered)
    }

    /// A reply from the channel itself, through the outbox like any other.
    fn answer(&self, msg: &InboundMessage, text: String) -> Result<(), String> {
        let ctx = &self.0.ctx;
        let origin = msg.origin();
        let row = OutboxRow::new(origin.clone(), text, "", "");
        let id = ctx.store.outbox_push(&row).map_err(|e| e.to_string())?;
        ctx.directory.deliver(id, &origin);
        Ok(())
    }
}

/// What [`Inbound::prepare`] made of a message.
enum Prepared {
    Done(Accepted),
    Route {
        key: String,
        text: String,
        origin: ChannelOrigin,
    },
}

/// `/status` or `/status@bot` -> `status`.
fn command(text: &str) -> Option<&str> {
    let word = text.trim().strip_prefix('/')?.split_whitespace().next()?;
    Some(word.split('@').next().unwrap_or(word))
}

/// `/new@bot rest` -> `/new rest` (groups address commands to one bot).
fn normalise_command(text: &str) -> String {
    match text.strip_prefix('/') {
        Some(rest) => {
            let (word, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let word = word.split('@').next().unwrap_or(word);
            if tail.is_empty() {
                format!("/{word}")
            } else {
                format!("/{word} {tail}")
            }
        }
        None => text.to_owned(),
    }
}

fn status_text(agent: &str, key: &str, meta: Option<&SessionMeta>) -> String {
    match meta {
        None => format!("Agent {agent}, session {key}: new (no turns yet)."),
        Some(m) => format!(
            "Agent {agent}, session {key}: {} turn{}, {} tokens in / {} out{}.",
            m.turns,
            if m.turns == 1 { "" } else { "s" },
            m.usage.input,
            m.usage.output,
            m.last_model
                .as_deref()
                .map(|x| format!(", model {x}"))
                .unwrap_or_default()
        ),
    }
}

pub enum ChannelMsg {
    /// Send outbox row `id`.
    Deliver(u64),
    /// The receive loop ended.
    ReceiverEnded(ReceiveEnd),
}

#[derive(Debug)]
pub enum ReceiveEnd {
    Permanent(String),
    Panicked(String),
}

pub struct ChannelArgs {
    pub cfg: AccountConfig,
    pub ctx: Arc<ChannelCtx>,
    pub adapter: Arc<dyn Adapter>,
}

pub struct ChannelActor;

/// The account's receive and send loops. Aborted when the actor's state goes, however it
/// goes: a crashed actor gets no `post_stop`, and a receive loop left running would keep
/// long-polling beside its restarted successor (Telegram answers the newer poll with a
/// Conflict, and the account never recovers).
pub struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

pub struct ChannelState {
    key: String,
    dir: ChannelDirectory,
    outbox: mpsc::UnboundedSender<u64>,
    /// Tells the send loop to stop after the reply it is delivering (a clean stop).
    stop_sending: tokio::sync::watch::Sender<bool>,
    /// The send loop first, then the receive loop.
    tasks: Tasks,
}

/// How long a clean stop waits for the reply being delivered to be sent and recorded.
/// Cut short, the reply is still pending in the outbox and goes out at the next start.
/// Under the supervisor's 5 s stop timeout for a child, which would cancel `post_stop`.
const SEND_GRACE: Duration = Duration::from_secs(3);

impl Actor for ChannelActor {
    type Msg = ChannelMsg;
    type State = ChannelState;
    type Arguments = ChannelArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ChannelMsg>,
        args: ChannelArgs,
    ) -> Result<ChannelState, ActorProcessingErr> {
        let key = args.cfg.key();
        let dir = args.ctx.directory.clone();
        dir.update(&key, |s| {
            s.channel = args.cfg.channel.clone();
            s.account_id = args.cfg.account.clone();
            s.enabled = true;
            s.configured = true;
            s.state = "starting".into();
            s.starts += 1;
        });
        let drafts = Drafts::new(key.clone(), args.ctx.store.clone(), args.adapter.clone());
        let inbound = Inbound::new(args.cfg.clone(), args.ctx.clone(), drafts.clone());
        dir.register(
            &key,
            Some((myself.clone(), args.adapter.clone(), inbound.clone())),
        );
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop_sending, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        // Outbound first: replies queued while the account was down go out now.
        tasks.push(tokio::spawn(send_loop(
            args.ctx.clone(),
            key.clone(),
            args.adapter.clone(),
            drafts,
            rx,
            stop_rx,
        )));
        // Delivery records of an earlier run of this account may still be queued for
        // the disk (an actor that crashed did not wait for them): read the pending rows
        // after they are written, or a reply sent then would go out again.
        if let Err(e) = args.ctx.store.sync().wait().await {
            warn!(channel = %key, error = %e, "the store did not confirm earlier delivery records");
        }
        if let Ok(rows) = pending_rows(&args.ctx.store, &key) {
            for id in rows {
                let _ = tx.send(id);
            }
        }
        tasks.push(tokio::spawn(receive_loop(
            myself.clone(),
            key.clone(),
            dir.clone(),
            args.adapter.clone(),
            inbound,
        )));
        Ok(ChannelState {
            key,
            outbox: tx,
            stop_sending,
            tasks: Tasks(tasks),
            dir,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ChannelMsg>,
        msg: ChannelMsg,
        state: &mut ChannelState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ChannelMsg::Deliver(id) => {
                let _ = state.outbox.send(id);
            }
            ChannelMsg::ReceiverEnded(ReceiveEnd::Permanent(e)) => {
                // Restarting cannot fix it: stop (normally, so no restart) and say why.
                warn!(channel = %state.key, error = %e, "channel stopped; fix its configuration and restart the gateway");
                myself.stop(Some(e));
            }
            ChannelMsg::ReceiverEnded(ReceiveEnd::Panicked(e)) => {
                return Err(format!("the {} receive loop crashed: {e}", state.key).into());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ChannelMsg>,
        state: &mut ChannelState,
    ) -> Result<(), ActorProcessingErr> {
        // No more taking in; the reply being sent is finished and recorded (a reply the
        // platform took but the outbox still called pending would go out twice).
        for t in state.tasks.0.iter().skip(1) {
            t.abort();
        }
        state.dir.register(&state.key, None);
        state.dir.update(&state.key, |s| {
            if s.state == "running" || s.state == "starting" {
                s.state = "stopped".into();
            }
        });
        let _ = state.stop_sending.send(true);
        if let Some(send) = state.tasks.0.first_mut()
            && tokio::time::timeout(SEND_GRACE, send).await.is_err()
        {
            warn!(channel = %state.key, "a reply was still being sent at the stop; it stays in the outbox for the next start");
        }
        for t in &state.tasks.0 {
            t.abort();
        }
        Ok(())
    }
}

/// Connects, then receives; transient errors are retried with backoff (1 s doubling to
/// 60 s), a permanent one or a panic ends the loop and tells the actor.
async fn receive_loop(
    actor: ActorRef<ChannelMsg>,
    key: String,
    dir: ChannelDirectory,
    adapter: Arc<dyn Adapter>,
    inbound: Inbound,
) {
    let mut delay = Duration::from_secs(1);
    let end = loop {
        let attempt = std::panic::AssertUnwindSafe(async {
            let bot = adapter.connect().await?;
            dir.update(&key, |s| {
                s.state = "running".into();
                s.bot = Some(bot.clone());
                s.last_error = None;
            });
            info!(channel = %key, %bot, "channel connected");
            match adapter.clone().receive(inbound.clone()) {
                Some(fut) => Err(fut.await),
                // Webhooks: requests arrive through the gateway's HTTP server.
                None => std::future::pending().await,
            }
        })
        .catch_unwind()
        .await;
        match attempt {
            Ok(Ok(())) => unreachable!("the receive loop only ends with an error"),
            Ok(Err(ReceiveError::Permanent(e))) => {
                dir.update(&key, |s| {
                    s.state = "error".into();
                    s.last_error = Some(e.clone());
                });
                break ReceiveEnd::Permanent(e);
            }
            Ok(Err(ReceiveError::Transient(e))) => {
                warn!(channel = %key, error = %e, retry_in = ?delay, "channel unreachable; retrying");
                dir.update(&key, |s| {
                    s.state = "reconnecting".into();
                    s.last_error = Some(e);
                });
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(60));
            }
            Err(panic) => {
                let e = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "a panic".into());
                dir.update(&key, |s| {
                    s.state = "restarting".into();
                    s.last_error = Some(format!("crashed: {e}"));
                });
                break ReceiveEnd::Panicked(e);
            }
        }
    };
    let _ = actor.cast(ChannelMsg::ReceiverEnded(end));
}

/// Outbox ids still pending for this account (oldest first).
fn pending_rows(store: &Store, key: &str) -> Result<Vec<u64>, String> {
    let mut ids = Vec::new();
    let mut from = 0;
    loop {
        let rows: Vec<(u64, OutboxRow)> = store.outbox(from, 1000).map_err(|e| e.to_string())?;
        let Some(last) = rows.last().map(|(id, _)| *id) else {
            return Ok(ids);
        };
        ids.extend(
            rows.into_iter()
                .filter(|(_, r)| {
                    r.status == DeliveryStatus::Pending && r.origin.account_key() == key
                })
                .map(|(id, _)| id),
        );
        from = last + 1;
    }
}

/// Sends outbox rows one after another (so a chat gets its replies in order).
async fn send_loop(
    ctx: Arc<ChannelCtx>,
    key: String,
    adapter: Arc<dyn Adapter>,
    drafts: Drafts,
    mut ids: mpsc::UnboundedReceiver<u64>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut records = Records::default();
    loop {
        records.reap(&key);
        // A stop is looked at between replies, never in the middle of one.
        let id = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            id = ids.recv() => match id {
                Some(id) => id,
                None => break,
            },
        };
        // The same id can come twice (listed as pending at the start and handed over by
        // the session meanwhile): this loop's own records of it are on disk before the
        // row is read again, or a reply just sent would look pending still.
        records.wait_for(id, &key).await;
        let row: OutboxRow = match ctx.store.outbox_row(id) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                warn!(channel = %key, outbox = id, error = %e, "cannot read a reply from the outbox");
                continue;
            }
        };
        if row.status != DeliveryStatus::Pending {
            continue;
        }
        deliver(&ctx, &key, adapter.as_ref(), &drafts, &mut records, id, row).await;
    }
    records.settle(&key).await;
}

/// An account's delivery records on their way to the disk: each joins the next shared
/// commit (`Store::outbox_update`) and is not waited for one by one (the send loop would
/// wait for an fsync per reply). Failures are logged as they are seen; a stopping loop
/// waits for all of them, so a clean stop leaves no sent reply recorded as pending.
#[derive(Default)]
struct Records(Vec<(u64, Queued)>);

impl Records {
    fn push(&mut self, id: u64, q: Queued) {
        self.0.push((id, q));
    }

    /// Forgets the records that reached the disk; logs the ones that failed.
    fn reap(&mut self, key: &str) {
        self.0.retain_mut(|(id, q)| match q.outcome() {
            None => true,
            Some(Ok(())) => false,
            Some(Err(e)) => {
                warn!(channel = %key, outbox = *id, error = %e, "cannot record a delivery");
                false
            }
        });
    }

    /// Waits for the records of one reply.
    async fn wait_for(&mut self, id: u64, key: &str) {
        if !self.0.iter().any(|(i, _)| *i == id) {
            return;
        }
        let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut self.0)
            .into_iter()
            .partition(|(i, _)| *i == id);
        self.0 = others;
        for (id, q) in mine {
            if let Err(e) = q.wait().await {
                warn!(channel = %key, outbox = id, error = %e, "cannot record a delivery");
            }
        }
    }

    async fn settle(&mut self, key: &str) {
        for (id, q) in self.0.drain(..) {
            if let Err(e) = q.wait().await {
                warn!(channel = %key, outbox = id, error = %e, "cannot record a delivery");
            }
        }
    }
}

/// Sends one reply: rendered, chunked, each chunk retried; records the outcome. A draft
/// that previewed the reply while it streamed is edited into its first chunk (sent as a
/// new message if that fails).
async fn deliver(
    ctx: &ChannelCtx,
    key: &str,
    adapter: &dyn Adapter,
    drafts: &Drafts,
    records: &mut Records,
    id: u64,
    mut row: OutboxRow,
) {
    let platform = adapter.platform();
    let chunks = super::chunk::chunk_for(platform, &format::render(platform, &row.text));
    let draft = drafts.finish(&row.run_id).await;
    if let (Some(draft), Some(first), true) = (&draft, chunks.first(), row.sent.is_empty()) {
        // Edited at once even if the draft changed less than an interval ago: waiting here
        // would hold up every other chat of the account (one send loop). Telegram tolerates
        // the odd quick edit; a 429 is waited out by the retry rules like any send.
        let edited = retried(ctx, key, id, &mut row.attempts, || {
            adapter.edit(&draft.message_id, first, true)
        })
        .await;
        match edited {
            Ok(()) => {
                row.sent.push(draft.message_id.clone());
                sent_one(ctx, key);
                records.push(id, ctx.store.outbox_update(id, &row));
            }
            Err(e) => {
                warn!(channel = %key, outbox = id, error = %e, "the reply's draft could not be replaced; sending the reply as new messages");
            }
        }
    }
    for chunk in chunks.iter().skip(row.sent.len()) {
        let sent = retried(ctx, key, id, &mut row.attempts, || {
            adapter.send(&row.origin, chunk)
        })
        .await;
        match sent {
            Ok(msg_id) => {
                row.sent.push(msg_id);
                sent_one(ctx, key);
                if row.sent.len() < chunks.len() {
                    records.push(id, ctx.store.outbox_update(id, &row));
                }
            }
            Err(e) => {
                warn!(channel = %key, outbox = id, error = %e, "a reply could not be delivered; kept in the outbox as failed");
                row.status = DeliveryStatus::Failed;
                row.error = Some(e.clone());
                row.done_ms = Some(now_ms());
                ctx.directory.update(key, |s| {
                    s.failed += 1;
                    s.last_error = Some(format!("delivery failed: {e}"));
                });
                records.push(id, ctx.store.outbox_update(id, &row));
                if draft.is_some() {
                    drafts.forget(&row.run_id);
                }
                return;
            }
        }
    }
    row.status = DeliveryStatus::Sent;
    row.done_ms = Some(now_ms());
    records.push(id, ctx.store.outbox_update(id, &row));
    if draft.is_some() {
        drafts.forget(&row.run_id);
    }
}

fn sent_one(ctx: &ChannelCtx, key: &str) {
    ctx.directory.update(key, |s| {
        s.outbound += 1;
        s.last_outbound_ms = Some(now_ms());
    });
}

/// Runs one send or edit until it succeeds, retrying 429s after the platform's
/// retry-after and transient errors with backoff, up to `max_attempts`.
async fn retried<'a, T>(
    ctx: &ChannelCtx,
    key: &str,
    id: u64,
    attempts: &mut u32,
    mut call: impl FnMut() -> BoxFuture<'a, Result<T, SendError>>,
) -> Result<T, String> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        *attempts += 1;
        match call().await {
            Ok(v) => return Ok(v),
            Err(SendError::Permanent(e)) => return Err(e),
            Err(e) if attempt >= ctx.max_attempts => {
                return Err(format!("gave up after {attempt} attempts: {e:?}"));
            }
            Err(SendError::RetryAfter(d)) => {
                warn!(channel = %key, outbox = id, retry_after = ?d, "rate limited by the platform");
                tokio::time::sleep(d).await;
            }
            Err(SendError::Transient(e)) => {
                let d = (ctx.retry_base * 2u32.saturating_pow(attempt - 1))
                    .min(Duration::from_secs(60));
                warn!(channel = %key, outbox = id, error = %e, retry_in = ?d, "send failed; retrying");
                tokio::time::sleep(d).await;
            }
        }
    }
}

/// `channels.status` rows for accounts that are configured but not running (disabled, or
/// a channel this build has no adapter for).
pub fn idle_status(cfg: &AccountConfig, state: &str, error: Option<String>) -> ChannelStatus {
    ChannelStatus {
        channel: cfg.channel.clone(),
        account_id: cfg.account.clone(),
        enabled: cfg.enabled,
        configured: true,
        state: state.into(),
        last_error: error,
        ..Default::default()
    }
}

/// The JSON of `channels.status`, OpenClaw's shape plus Pincer's counters.
pub fn status_payload(dir: &ChannelDirectory) -> Value {
    let statuses = dir.statuses();
    let mut channels = serde_json::Map::new();
    let mut accounts = serde_json::Map::new();
    for s in &statuses {
        let entry = channels
            .entry(s.channel.clone())
            .or_insert_with(|| json!({"configured": true, "running": false}));
        if s.state == "running" {
            entry["running"] = json!(true);
        }
        accounts
            .entry(s.channel.clone())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .expect("an array")
            .push(serde_json::to_value(s).expect("status serialises"));
    }
    json!({"ts": now_ms(), "channels": channels, "channelAccounts": accounts})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_lose_their_bot_suffix() {
        assert_eq!(command("/status@pincer_bot"), Some("status"));
        assert_eq!(command("/new please"), Some("new"));
        assert_eq!(command("hello"), None);
        assert_eq!(normalise_command("/new@bot hi there"), "/new hi there");
        assert_eq!(normalise_command("/reset@bot"), "/reset");
        assert_eq!(normalise_command("plain"), "plain");
    }
}
