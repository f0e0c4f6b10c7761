//! Discord through the Gateway WebSocket (events in) and the REST API (messages out,
//! slash commands), with tokio-tungstenite and reqwest over rustls.
//!
//! Config (`channels.discord`, or per account under `accounts`): `botToken` (or env
//! `DISCORD_BOT_TOKEN`), `apiBaseUrl` (default `https://discord.com/api/v10`; how tests
//! reach a fake Discord), `gatewayUrl` (default: what `GET /gateway/bot` answers),
//! `intents` (a number or a list of names; default GUILDS, GUILD_MESSAGES,
//! DIRECT_MESSAGES and MESSAGE_CONTENT, the last one privileged: enable "Message
//! Content Intent" in the Developer Portal), plus the common `dmPolicy`, `allowFrom`,
//! `groupPolicy` and `groups` (keyed by channel id; a thread counts as its parent
//! channel).
//!
//! The Gateway: Hello, then Identify (or Resume of the last session, also one saved by
//! an earlier run, from the `resume_gateway_url` and the last sequence number),
//! heartbeats every `heartbeat_interval` (the first after a random fraction of it)
//! carrying the last sequence number. A heartbeat not ACKed before the next one is due,
//! op 7 Reconnect, a dropped connection and the resumable close codes reconnect and
//! resume; op 9 with `false`, 4007 and 4009 start a new session. 4004 (bad token), 4013
//! and 4014 (bad or unapproved intents) and 4010-4012 stop the account with an error
//! that says what to fix.
//!
//! The session outlives a restart: the store's `channel_state` row for the account
//! keeps `{session_id, resume_gateway_url, seq}`, the session saved (durable commit
//! asked for) at READY and RESUMED and forgotten when Discord ends it (op 9 `false`,
//! 4007, 4009), and `seq` moved on by the worker only after [`Inbound::accept`] took
//! that dispatch in with every one before it (one non-durable write per message taken
//! in; a message given up on holds it back for the rest of the session). The next run
//! Resumes that session on its resume URL instead of identifying, so Discord replays
//! what came while Pincer was down, and anything taken in already is dropped as seen;
//! if it is too late (op 9), a new session starts. Stopping drops the connection
//! without a close frame, which keeps it resumable.
//!
//! Discord never delivers an event twice on purpose and never again once it was
//! dispatched (Resume replays only what the connection missed), so an event is taken in
//! by a worker beside the connection: [`Inbound::accept`] is retried with backoff
//! (about 30 s in all) before the message is given up on and logged; replays are
//! dropped as seen. Own and other bots' messages are ignored; `<@bot>` mentions and
//! replies to the bot count as mentions; attachments become [`MediaRef`]s; a reply goes
//! to the message it answers (`message_reference`, first chunk only).
//!
//! Slash commands: `/new` and `/status` are registered (`PUT
//! /applications/{app}/commands`) after the first READY (or RESUMED) of a run. An
//! invocation is acknowledged at once with a deferred response ("Pincer is thinking…",
//! callback type 5), then taken in as the text `/new` or `/status`, so the usual
//! command handling answers it; that answer replaces the "thinking" message (`PATCH
//! …/messages/@original`, later chunks as follow-ups) while the interaction token lives
//! (15 minutes, in memory), and is posted in the channel otherwise.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::{debug, error, info, warn};

use super::actor::{Accepted, Adapter, ChannelCtx, Inbound, ReceiveError, SendError};
use super::config::AccountConfig;
use super::format::Platform;
use super::types::{ChannelOrigin, InboundMessage};
use crate::store::Store;

mod wire;

pub use wire::intents;
use wire::{
    BotUser, Ended, SlashCommand, closed, is_snowflake, normalise, parse_intents, retry_after,
    with_query,
};

/// How long an interaction token can still edit its response (Discord: 15 minutes).
const INTERACTION_TTL: Duration = Duration::from_secs(14 * 60);
/// Attempts at taking one event in before it is given up on.
const ACCEPT_ATTEMPTS: u32 = 7;
/// The first retry delay of a failed accept; doubles up to 8 s (about 30 s in all).
const ACCEPT_RETRY: Duration = Duration::from_millis(500);
/// Connections in a row that end before a session starts before the receive loop gives up
/// (and the ChannelActor retries with its own backoff).
const MAX_FAILED_CONNECTIONS: u32 = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Messages remembered as replied to (later chunks of their reply do not quote them).
const REPLIED_MEMORY: usize = 4096;

/// The account's adapter, for `build_adapter`.
pub fn build(cfg: &AccountConfig, ctx: &ChannelCtx) -> Result<Arc<dyn Adapter>, String> {
    Ok(Arc::new(Discord::new(cfg, Some(ctx.store.clone()))?))
}

pub struct Discord {
    key: String,
    account: String,
    token: String,
    /// Without a trailing slash: `https://discord.com/api/v10`.
    api: String,
    gateway_url: Mutex<Option<String>>,
    intents: u64,
    http: reqwest::Client,
    /// Where the session is kept between runs (`None` in unit tests).
    store: Option<Store>,
    /// The bot user (from `/users/@me`, then READY).
    me: Mutex<Option<BotUser>>,
    /// The session to resume after a dropped connection (its `seq` the last received);
    /// loaded from the store when the receive loop starts without one.
    session: Mutex<Option<GatewaySession>>,
    /// Thread id -> its parent channel.
    threads: Mutex<HashMap<String, String>>,
    /// Interactions whose response is still "thinking", by their message id.
    interactions: Mutex<HashMap<String, PendingInteraction>>,
    replied: Mutex<Recent>,
    commands_registered: AtomicBool,
}

/// A Gateway session; also what the store keeps for the account (with `seq` the last
/// dispatch taken in, all before it too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct GatewaySession {
    #[serde(rename = "session_id")]
    id: String,
    /// Empty: resume on the main Gateway URL.
    #[serde(rename = "resume_gateway_url")]
    resume_url: String,
    seq: Option<u64>,
}

/// The account's row in the store's `channel_state`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SavedState {
    #[serde(default)]
    session: Option<GatewaySession>,
}

#[derive(Debug, Clone)]
struct PendingInteraction {
    app_id: String,
    token: String,
    at: Instant,
    /// The "thinking" response was replaced: later chunks are follow-ups.
    answered: bool,
}

/// A bounded set of ids, oldest forgotten first.
#[derive(Default)]
struct Recent {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Recent {
    fn insert(&mut self, id: &str) {
        if self.set.insert(id.to_owned()) {
            self.order.push_back(id.to_owned());
            if self.order.len() > REPLIED_MEMORY
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }
}

/// What the connection hands the worker, in arrival order; with the sequence number of
/// the dispatch it came in.
enum Work {
    Message(InboundMessage, Option<u64>),
    Command(SlashCommand, Option<u64>),
    RegisterCommands(String),
    /// A session started or resumed (`Some`) or ended (`None`): saved.
    Session(Option<GatewaySession>),
}

impl Discord {
    pub fn new(cfg: &AccountConfig, store: Option<Store>) -> Result<Discord, String> {
        let key = cfg.key();
        let token = cfg.secret("botToken", "DISCORD_BOT_TOKEN").ok_or_else(|| {
            format!(
                "{key}: no bot token; set channels.discord.botToken (Developer Portal > your app > Bot > Reset Token) or DISCORD_BOT_TOKEN"
            )
        })?;
        let token = token
            .strip_prefix("Bot ")
            .unwrap_or(&token)
            .trim()
            .to_owned();
        let api = cfg
            .str("apiBaseUrl")
            .unwrap_or("https://discord.com/api/v10")
            .trim_end_matches('/')
            .to_owned();
        if !(api.starts_with("https://") || api.starts_with("http://")) {
            return Err(format!(
                "{key}: channels.discord.apiBaseUrl {api:?} is not an http(s) URL"
            ));
        }
        let gateway = cfg.str("gatewayUrl").map(str::to_owned);
        if let Some(g) = &gateway
            && !(g.starts_with("wss://") || g.starts_with("ws://"))
        {
            return Err(format!(
                "{key}: channels.discord.gatewayUrl {g:?} is not a ws(s) URL"
            ));
        }
        let intents = parse_intents(cfg.raw.get("intents"))
            .map_err(|e| format!("{key}: channels.discord.intents {e}"))?;
        // reqwest's and tungstenite's rustls need a process-wide provider; Err: installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "DiscordBot (https://example.invalid/pincer, ",
                env!("CARGO_PKG_VERSION"),
                ")"
            ))
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("{key}: cannot build an HTTP client: {e}"))?;
        Ok(Discord {
            key,
            account: cfg.account.clone(),
            token,
            api,
            gateway_url: Mutex::new(gateway),
            intents,
            http,
            store,
            me: Mutex::new(None),
            session: Mutex::new(None),
            threads: Mutex::new(HashMap::new()),
            interactions: Mutex::new(HashMap::new()),
            replied: Mutex::new(Recent::default()),
            commands_registered: AtomicBool::new(false),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    fn bad_token(&self, what: &str) -> String {
        format!(
            "Discord refused the bot token ({what}); set channels.discord.botToken (Developer Portal > your app > Bot > Reset Token) or DISCORD_BOT_TOKEN"
        )
    }

    /// The Gateway URL: `gatewayUrl`, else `GET /gateway/bot` (asked once).
    async fn gateway_url(&self) -> Result<String, ReceiveError> {
        if let Some(u) = self.gateway_url.lock().unwrap().clone() {
            return Ok(u);
        }
        let resp = self
            .http
            .get(self.url("/gateway/bot"))
            .header("authorization", format!("Bot {}", self.token))
            .send()
            .await
            .map_err(|e| ReceiveError::Transient(format!("Discord GET /gateway/bot: {e}")))?;
        let status = resp.status();
        if status.as_u16() == 401 {
            return Err(ReceiveError::Permanent(self.bad_token("401 Unauthorized")));
        }
        if !status.is_success() {
            return Err(ReceiveError::Transient(format!(
                "Discord GET /gateway/bot: HTTP {status}"
            )));
        }
        let v: Value = resp.json().await.map_err(|e| {
            ReceiveError::Transient(format!("Discord GET /gateway/bot: bad answer: {e}"))
        })?;
        let url = v
            .get("url")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                ReceiveError::Transient("Discord GET /gateway/bot answered no url".into())
            })?
            .to_owned();
        *self.gateway_url.lock().unwrap() = Some(url.clone());
        Ok(url)
    }

    /// Connections, one after another, until one ends for good; the worker takes the
    /// events in beside them and drains what is queued before this returns.
    async fn run(self: Arc<Self>, inbound: Inbound) -> ReceiveError {
        let saved = self.restore();
        let (tx, rx) = mpsc::unbounded_channel();
        let gateway = {
            let this = self.clone();
            async move { this.connections(tx).await }
        };
        let (end, ()) = tokio::join!(gateway, self.worker(rx, inbound, saved));
        end
    }

    /// The saved session, which the connections resume unless they have one already
    /// (a receive loop retried within the run).
    fn restore(&self) -> Option<GatewaySession> {
        let saved = self.saved_session();
        let mut session = self.session.lock().unwrap();
        if session.is_none()
            && let Some(s) = &saved
        {
            info!(channel = %self.key, seq = ?s.seq, "discord gateway resuming the saved session");
            *session = saved.clone();
        }
        saved
    }

    /// The session the store keeps for the account, if any.
    fn saved_session(&self) -> Option<GatewaySession> {
        let store = self.store.as_ref()?;
        match store.channel_state::<SavedState>(&self.key) {
            Ok(s) => s.and_then(|s| s.session).filter(|s| !s.id.is_empty()),
            Err(e) => {
                warn!(channel = %self.key, error = %e, "cannot read the saved discord session; starting a new one");
                None
            }
        }
    }

    /// Saves the session (or its end); `sync` asks for a durable commit (not waited on),
    /// else it reaches the disk with the next one.
    fn save_session(&self, session: Option<&GatewaySession>, sync: bool) {
        let Some(store) = &self.store else { return };
        let state = SavedState {
            session: session.cloned(),
        };
        match store.set_channel_state(&self.key, &state) {
            Ok(()) if sync => drop(store.sync()),
            Ok(()) => {}
            Err(e) => warn!(channel = %self.key, error = %e, "cannot save the discord session"),
        }
    }

    async fn connections(&self, tx: mpsc::UnboundedSender<Work>) -> ReceiveError {
        let mut failed = 0;
        loop {
            let session = self.session.lock().unwrap().clone();
            let url = match &session {
                Some(s) if !s.resume_url.is_empty() => s.resume_url.clone(),
                _ => match self.gateway_url().await {
                    Ok(u) => u,
                    Err(e) => return e,
                },
            };
            let (ended, started) = self.connection(&url, session.as_ref(), &tx).await;
            failed = if started { 0 } else { failed + 1 };
            match ended {
                Ended::Stop(e) => return e,
                Ended::Resume(why) if failed >= MAX_FAILED_CONNECTIONS => {
                    return ReceiveError::Transient(format!("Discord Gateway: {why}"));
                }
                Ended::Reidentify(why) if failed >= MAX_FAILED_CONNECTIONS => {
                    *self.session.lock().unwrap() = None;
                    let _ = tx.send(Work::Session(None));
                    return ReceiveError::Transient(format!("Discord Gateway: {why}"));
                }
                Ended::Resume(why) => {
                    info!(channel = %self.key, reason = %why, "discord gateway reconnecting to resume");
                }
                Ended::Reidentify(why) => {
                    info!(channel = %self.key, reason = %why, "discord gateway starting a new session");
                    *self.session.lock().unwrap() = None;
                    let _ = tx.send(Work::Session(None));
                }
            }
            if failed > 0 {
                tokio::time::sleep(Duration::from_millis(500) * failed).await;
            }
        }
    }

    /// One Gateway connection; also whether a session started or resumed on it.
    async fn connection(
        &self,
        url: &str,
        session: Option<&GatewaySession>,
        tx: &mpsc::UnboundedSender<Work>,
    ) -> (Ended, bool) {
        let url = with_query(url);
        let ws = tokio::time::timeout(CONNECT_TIMEOUT, connect_ws(&url))
            .await
            .map_err(|_| "timed out".to_owned())
            .and_then(|r| r);
        let mut ws = match ws {
            Ok(ws) => ws,
            Err(e) => {
                // The resume URL may be gone: the next attempt resumes on the main one.
                if session.is_some()
                    && let Some(s) = self.session.lock().unwrap().as_mut()
                {
                    s.resume_url.clear();
                }
                let e = format!("cannot connect to the Discord Gateway ({url}): {e}");
                return (Ended::Stop(ReceiveError::Transient(e)), false);
            }
        };
        // Hello first.
        let hello = tokio::time::timeout(CONNECT_TIMEOUT, ws.next()).await;
        let interval = match hello {
            Ok(Some(Ok(Ws::Text(t)))) => serde_json::from_str::<Value>(t.as_str())
                .ok()
                .filter(|p| p["op"] == 10)
                .and_then(|p| p["d"]["heartbeat_interval"].as_u64()),
            Ok(Some(Ok(Ws::Close(f)))) => {
                return (closed(f.map(|f| u16::from(f.code)), self.intents), false);
            }
            _ => None,
        };
        let Some(interval) = interval.filter(|i| *i > 0) else {
            return (Ended::Resume("no Hello from the Gateway".into()), false);
        };
        let interval = Duration::from_millis(interval);
        let mut seq = session.and_then(|s| s.seq);
        let first = match session {
            Some(s) => json!({"op": 6, "d": {
                "token": format!("Bot {}", self.token), "session_id": s.id, "seq": s.seq,
            }}),
            None => json!({"op": 2, "d": {
                "token": format!("Bot {}", self.token),
                "intents": self.intents,
                "properties": {"os": std::env::consts::OS, "browser": "pincer", "device": "pincer"},
            }}),
        };
        if let Err(e) = ws.send(Ws::text(first.to_string())).await {
            return (Ended::Resume(format!("the Gateway went away: {e}")), false);
        }
        let mut started = false;
        let mut acked = true;
        let mut next_beat = Instant::now() + interval.mul_f64(rand::random::<f64>());
        let ended = loop {
            let frame = tokio::select! {
                f = ws.next() => f,
                () = tokio::time::sleep_until(next_beat) => {
                    if !acked {
                        break Ended::Resume("no heartbeat ACK (a zombied connection)".into());
                    }
                    acked = false;
                    next_beat = Instant::now() + interval;
                    if let Err(e) = ws.send(heartbeat(seq)).await {
                        break Ended::Resume(format!("the Gateway went away: {e}"));
                    }
                    continue;
                }
            };
            let text = match frame {
                None => break Ended::Resume("the connection dropped".into()),
                Some(Err(e)) => break Ended::Resume(format!("the connection failed: {e}")),
                Some(Ok(Ws::Close(f))) => break closed(f.map(|f| u16::from(f.code)), self.intents),
                Some(Ok(Ws::Text(t))) => t,
                Some(Ok(_)) => continue,
            };
            let Ok(p) = serde_json::from_str::<Value>(text.as_str()) else {
                warn!(channel = %self.key, "discord gateway sent a payload that is not JSON; ignored");
                continue;
            };
            match p["op"].as_u64() {
                Some(0) => {
                    if let Some(s) = p["s"].as_u64() {
                        seq = Some(seq.map_or(s, |old| old.max(s)));
                    }
                    let t = p["t"].as_str().unwrap_or_default();
                    started |= self.on_dispatch(t, &p["d"], seq, tx);
                }
                Some(1) => {
                    if let Err(e) = ws.send(heartbeat(seq)).await {
                        break Ended::Resume(format!("the Gateway went away: {e}"));
                    }
                }
                Some(7) => break Ended::Resume("Discord asked to reconnect (op 7)".into()),
                Some(9) if p["d"] == true => {
                    break Ended::Resume("invalid session, resumable (op 9)".into());
                }
                Some(9) => {
                    // Discord asks for a pause of 1 to 5 s before a new Identify.
                    let pause = Duration::from_millis(1000 + rand::random::<u64>() % 4000);
                    tokio::time::sleep(pause).await;
                    break Ended::Reidentify("invalid session (op 9)".into());
                }
                Some(11) => acked = true,
                other => {
                    debug!(channel = %self.key, op = ?other, "discord gateway payload ignored")
                }
            }
        };
        // A close code other than 1000/1001 keeps the session resumable.
        let code = match ended {
            Ended::Resume(_) => 4000,
            _ => 1000,
        };
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "reconnecting".into(),
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(Some(frame))).await;
        (ended, started)
    }

    /// A dispatch (op 0); true if it started or resumed the session.
    fn on_dispatch(
        &self,
        t: &str,
        d: &Value,
        seq: Option<u64>,
        tx: &mpsc::UnboundedSender<Work>,
    ) -> bool {
        if let Some(s) = self.session.lock().unwrap().as_mut() {
            s.seq = seq;
        }
        match t {
            "READY" => {
                let id = d["session_id"].as_str().unwrap_or_default().to_owned();
                let resume_url = d["resume_gateway_url"]
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| self.gateway_url.lock().unwrap().clone())
                    .unwrap_or_default();
                let session = GatewaySession {
                    id,
                    resume_url,
                    seq,
                };
                *self.session.lock().unwrap() = Some(session.clone());
                let _ = tx.send(Work::Session(Some(session)));
                if let Some(uid) = d["user"]["id"].as_str() {
                    *self.me.lock().unwrap() = Some(BotUser {
                        id: uid.to_owned(),
                        name: d["user"]["username"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    });
                }
                info!(channel = %self.key, "discord gateway session ready");
                let app = d["application"]["id"].as_str().or(d["user"]["id"].as_str());
                if let Some(app) = app
                    && !self.commands_registered.load(Ordering::SeqCst)
                {
                    let _ = tx.send(Work::RegisterCommands(app.to_owned()));
                }
                true
            }
            "RESUMED" => {
                info!(channel = %self.key, "discord gateway session resumed");
                let session = self.session.lock().unwrap().clone();
                let _ = tx.send(Work::Session(session));
                // After a restart no READY came: the commands are registered once per run.
                let me = self.me.lock().unwrap().clone();
                if let Some(me) = me.filter(|m| !m.id.is_empty())
                    && !self.commands_registered.load(Ordering::SeqCst)
                {
                    let _ = tx.send(Work::RegisterCommands(me.id));
                }
                true
            }
            "MESSAGE_CREATE" => {
                let me = self.me.lock().unwrap().clone().unwrap_or_default();
                let threads = self.threads.lock().unwrap().clone();
                if let Some(m) = normalise(&self.account, d, &me, &threads) {
                    let _ = tx.send(Work::Message(m, seq));
                }
                false
            }
            "INTERACTION_CREATE" => {
                let threads = self.threads.lock().unwrap().clone();
                if let Some(c) = wire::command(&self.account, d, &threads) {
                    let _ = tx.send(Work::Command(c, seq));
                }
                false
            }
            "THREAD_CREATE" | "THREAD_UPDATE" => {
                self.remember_threads(std::slice::from_ref(d));
                false
            }
            "THREAD_DELETE" => {
                if let Some(id) = d["id"].as_str() {
                    self.threads.lock().unwrap().remove(id);
                }
                false
            }
            "GUILD_CREATE" | "THREAD_LIST_SYNC" => {
                if let Some(list) = d["threads"].as_array() {
                    self.remember_threads(list);
                }
                false
            }
            _ => false,
        }
    }

    fn remember_threads(&self, channels: &[Value]) {
        let mut threads = self.threads.lock().unwrap();
        for c in channels {
            // 10, 11, 12: announcement, public and private threads.
            if matches!(c["type"].as_u64(), Some(10..=12))
                && let (Some(id), Some(parent)) = (c["id"].as_str(), c["parent_id"].as_str())
            {
                threads.insert(id.to_owned(), parent.to_owned());
            }
        }
    }

    /// Takes the events in, in order; each is retried before it is given up on. Saves the
    /// session with the sequence number of the last dispatch taken in (`saved`: as the
    /// store has it), never past one that was given up on: after a restart, Resume replays
    /// from there, and what was taken in already is dropped as seen.
    async fn worker(
        &self,
        mut rx: mpsc::UnboundedReceiver<Work>,
        inbound: Inbound,
        mut saved: Option<GatewaySession>,
    ) {
        // A dispatch of this session was given up on: its seq stays saved.
        let mut stuck = false;
        while let Some(work) = rx.recv().await {
            let (taken, seq) = match work {
                Work::RegisterCommands(app) => {
                    self.register_commands(&app).await;
                    continue;
                }
                Work::Session(session) => {
                    match (saved.as_mut(), session) {
                        // Resumed: the seq saved stays, as it is what was taken in.
                        (Some(old), Some(new)) if old.id == new.id => {
                            old.resume_url = new.resume_url;
                        }
                        (_, new) => {
                            saved = new;
                            stuck = false;
                        }
                    }
                    self.save_session(saved.as_ref(), true);
                    continue;
                }
                Work::Message(msg, seq) => (self.accept(&inbound, msg).await.is_some(), seq),
                Work::Command(
                    SlashCommand {
                        interaction_id,
                        token,
                        app_id,
                        msg,
                    },
                    seq,
                ) => {
                    if self.defer(&interaction_id, &token).await {
                        self.interactions.lock().unwrap().insert(
                            msg.message_id.clone(),
                            PendingInteraction {
                                app_id,
                                token,
                                at: Instant::now(),
                                answered: false,
                            },
                        );
                    }
                    let origin = msg.origin();
                    let taken = self.accept(&inbound, msg).await;
                    // Nothing will answer it: end the "thinking" rather than leave it.
                    if !matches!(taken, Some(Accepted::Routed { .. } | Accepted::Answered))
                        && self
                            .interactions
                            .lock()
                            .unwrap()
                            .contains_key(&origin.message_id)
                    {
                        let note = match taken {
                            None => "Sorry, that could not be taken in; try again.",
                            Some(_) => "This assistant does not answer commands here.",
                        };
                        if let Err(e) = self.post(&origin, note).await {
                            warn!(channel = %self.key, error = ?e, "cannot end a discord interaction");
                        }
                    }
                    (taken.is_some(), seq)
                }
            };
            stuck |= !taken;
            if !stuck
                && let (Some(s), Some(seq)) = (saved.as_mut(), seq)
                && s.seq.is_none_or(|old| seq > old)
            {
                s.seq = Some(seq);
                self.save_session(Some(s), false);
            }
        }
    }

    /// Takes one event in, retried with backoff; `None` if it was given up on.
    async fn accept(&self, inbound: &Inbound, msg: InboundMessage) -> Option<Accepted> {
        let mut delay = ACCEPT_RETRY;
        for attempt in 1..=ACCEPT_ATTEMPTS {
            match inbound.accept(msg.clone()).await {
                Ok(a) => {
                    if let Accepted::Dropped(why) = a {
                        debug!(channel = %self.key, why, "discord message dropped");
                    }
                    return Some(a);
                }
                Err(e) if attempt < ACCEPT_ATTEMPTS => {
                    warn!(channel = %self.key, message = %msg.message_id, error = %e, attempt, retry_in = ?delay, "could not take a discord message in; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(8));
                }
                Err(e) => {
                    error!(channel = %self.key, message = %msg.message_id, chat = %msg.chat_id, error = %e, "could not take a discord message in; given up (Discord does not deliver it again)");
                }
            }
        }
        None
    }

    /// Acknowledges an interaction with a deferred response (the user sees "thinking");
    /// false if Discord refused it.
    async fn defer(&self, id: &str, token: &str) -> bool {
        let url = self.url(&format!("/interactions/{id}/{token}/callback"));
        match self.http.post(url).json(&json!({"type": 5})).send().await {
            Ok(r) if r.status().is_success() => true,
            Ok(r) => {
                warn!(channel = %self.key, interaction = id, status = %r.status(), "discord refused the interaction acknowledgement; the answer goes to the channel");
                false
            }
            Err(e) => {
                warn!(channel = %self.key, interaction = id, error = %e, "cannot acknowledge a discord interaction; the answer goes to the channel");
                false
            }
        }
    }

    async fn register_commands(&self, app: &str) {
        let body = json!([
            {"name": "new", "type": 1, "description": "Start a new conversation with the assistant", "contexts": [0, 1]},
            {"name": "status", "type": 1, "description": "Show the agent, session and usage of this conversation", "contexts": [0, 1]},
        ]);
        let resp = self
            .http
            .put(self.url(&format!("/applications/{app}/commands")))
            .header("authorization", format!("Bot {}", self.token))
            .json(&body)
            .send()
            .await;
        match resp {
            Ok(r) if r.status().is_success() => {
                self.commands_registered.store(true, Ordering::SeqCst);
                info!(channel = %self.key, "discord slash commands /new and /status registered");
            }
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                warn!(channel = %self.key, %status, body = %body, "discord refused the slash commands; they are tried again on the next session");
            }
            Err(e) => {
                warn!(channel = %self.key, error = %e, "cannot register the discord slash commands; they are tried again on the next session");
            }
        }
    }

    /// One chunk: the interaction's response while its token lives, else a channel
    /// message (replying to the origin's message with the first chunk).
    async fn post(&self, to: &ChannelOrigin, text: &str) -> Result<String, SendError> {
        let pending = {
            let mut map = self.interactions.lock().unwrap();
            map.retain(|_, p| p.at.elapsed() < INTERACTION_TTL);
            map.get(&to.message_id).cloned()
        };
        if let Some(p) = pending {
            let (req, what) = if p.answered {
                let url = self.url(&format!("/webhooks/{}/{}", p.app_id, p.token));
                (self.http.post(url), "interaction follow-up")
            } else {
                let url = self.url(&format!(
                    "/webhooks/{}/{}/messages/@original",
                    p.app_id, p.token
                ));
                (self.http.patch(url), "interaction response")
            };
            match self
                .call(req.json(&json!({"content": text})), what, &to.to)
                .await
            {
                Ok(id) => {
                    if let Some(p) = self.interactions.lock().unwrap().get_mut(&to.message_id) {
                        p.answered = true;
                    }
                    return Ok(id);
                }
                // The token expired or Discord forgot the interaction: the channel then.
                Err(SendError::Permanent(e)) => {
                    warn!(channel = %self.key, error = %e, "discord refused the interaction response; posting in the channel");
                    self.interactions.lock().unwrap().remove(&to.message_id);
                }
                Err(e) => return Err(e),
            }
        }
        let channel = to.thread.as_deref().unwrap_or(&to.to);
        let mut body = json!({"content": text, "allowed_mentions": {"parse": ["users"]}});
        let quote = is_snowflake(&to.message_id)
            && !self.replied.lock().unwrap().set.contains(&to.message_id);
        if quote {
            body["message_reference"] =
                json!({"message_id": to.message_id, "fail_if_not_exists": false});
        }
        let req = self
            .http
            .post(self.url(&format!("/channels/{channel}/messages")))
            .header("authorization", format!("Bot {}", self.token))
            .json(&body);
        let id = self.call(req, "create message", channel).await?;
        if quote {
            self.replied.lock().unwrap().insert(&to.message_id);
        }
        Ok(id)
    }

    /// Sends a request that answers a Message; its id.
    async fn call(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
        channel: &str,
    ) -> Result<String, SendError> {
        let resp = req
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("Discord {what}: {e}")))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.unwrap_or_default();
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status.is_success() {
            return match v["id"].as_str() {
                Some(id) => Ok(id.to_owned()),
                None => {
                    // Sent, but the answer was unreadable: not sent again.
                    warn!(channel = %self.key, %status, "discord answered a sent message without its id");
                    Ok(String::new())
                }
            };
        }
        if status.as_u16() == 429 {
            return Err(SendError::RetryAfter(retry_after(&v, &headers)));
        }
        if status.is_server_error() {
            return Err(SendError::Transient(format!(
                "Discord {what}: HTTP {status}"
            )));
        }
        if status.as_u16() == 401 {
            return Err(SendError::Permanent(self.bad_token("401 Unauthorized")));
        }
        let message = v["message"].as_str().unwrap_or("no message");
        let code = v["code"].as_u64().unwrap_or(0);
        let hint = match status.as_u16() {
            403 => "; check the bot's permissions in that channel (View Channel, Send Messages)",
            404 => "; the bot cannot see that channel",
            _ => "",
        };
        Err(SendError::Permanent(format!(
            "Discord refused the {what} in channel {channel}: {message} (HTTP {}, code {code}){hint}",
            status.as_u16()
        )))
    }
}

impl Adapter for Discord {
    fn platform(&self) -> Platform {
        Platform::Discord
    }

    fn connect(&self) -> BoxFuture<'_, Result<String, ReceiveError>> {
        async move {
            let resp = self
                .http
                .get(self.url("/users/@me"))
                .header("authorization", format!("Bot {}", self.token))
                .send()
                .await
                .map_err(|e| ReceiveError::Transient(format!("Discord GET /users/@me: {e}")))?;
            let status = resp.status();
            if status.as_u16() == 401 {
                return Err(ReceiveError::Permanent(self.bad_token("401 Unauthorized")));
            }
            if !status.is_success() {
                return Err(ReceiveError::Transient(format!(
                    "Discord GET /users/@me: HTTP {status}"
                )));
            }
            let v: Value = resp.json().await.map_err(|e| {
                ReceiveError::Transient(format!("Discord GET /users/@me: bad answer: {e}"))
            })?;
            let me = BotUser {
                id: v["id"].as_str().unwrap_or_default().to_owned(),
                name: v["username"].as_str().unwrap_or_default().to_owned(),
            };
            let who = format!("@{} ({})", me.name, me.id);
            *self.me.lock().unwrap() = Some(me);
            Ok(who)
        }
        .boxed()
    }

    fn receive(self: Arc<Self>, inbound: Inbound) -> Option<BoxFuture<'static, ReceiveError>> {
        Some(self.run(inbound).boxed())
    }

    fn send<'a>(
        &'a self,
        to: &'a ChannelOrigin,
        text: &'a str,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        self.post(to, text).boxed()
    }
}

/// A byte stream the WebSocket runs on: plain TCP (`ws://`, tests) or TLS (`wss://`).
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Opens a Gateway WebSocket; `wss://` through rustls with the platform's certificate
/// verifier.
async fn connect_ws(url: &str) -> Result<WebSocketStream<Box<dyn Io>>, String> {
    let uri: Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        other => return Err(format!("not a ws(s) URL (scheme {other:?})")),
    };
    let host = uri
        .host()
        .ok_or("no host")?
        .trim_matches(['[', ']'])
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = if tls {
        use rustls_platform_verifier::ConfigVerifierExt;
        let config = rustls::ClientConfig::with_platform_verifier()
            .map_err(|e| format!("no TLS certificate verifier: {e}"))?;
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| format!("{host:?} is not a TLS server name: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

fn heartbeat(seq: Option<u64>) -> Ws {
    Ws::text(json!({"op": 1, "d": seq}).to_string())
}

#[cfg(test)]
mod tests {
    use pincer_fakes::discord::FakeDiscord;

    use super::*;

    fn discord(dc: &FakeDiscord) -> Arc<Discord> {
        let cfg = super::super::config::accounts(Some(&json!({"discord": {
            "botToken": dc.token(), "apiBaseUrl": dc.api_url(), "gatewayUrl": dc.gateway_url(),
        }})))
        .unwrap()
        .remove(0);
        Arc::new(Discord::new(&cfg, None).unwrap())
    }

    fn discord_with(dc: &FakeDiscord, store: &Store) -> Arc<Discord> {
        let cfg = super::super::config::accounts(Some(&json!({"discord": {
            "botToken": dc.token(), "apiBaseUrl": dc.api_url(), "gatewayUrl": dc.gateway_url(),
        }})))
        .unwrap()
        .remove(0);
        Arc::new(Discord::new(&cfg, Some(store.clone())).unwrap())
    }

    /// The next work that is not a command registration.
    async fn next(rx: &mut mpsc::UnboundedReceiver<Work>) -> Work {
        loop {
            let w = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .expect("work in time")
                .expect("the connection is alive");
            if !matches!(w, Work::RegisterCommands(_)) {
                return w;
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_saved_session_is_resumed_by_the_next_run_and_op_9_forgets_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.redb")).unwrap();
        let dc = FakeDiscord::start("t0ken").await;
        // A run: READY, one DM taken in (seq 2), its seq saved as the worker does.
        let d = discord_with(&dc, &store);
        assert_eq!(d.restore(), None);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn({
            let d = d.clone();
            async move { d.connections(tx).await }
        });
        let Work::Session(Some(mut session)) = next(&mut rx).await else {
            panic!("no session")
        };
        assert_eq!(session.seq, Some(1));
        assert!(session.resume_url.ends_with("/resume"), "{session:?}");
        dc.dm_message("501", "42", "before");
        let Work::Message(m, seq) = next(&mut rx).await else {
            panic!("no message")
        };
        assert_eq!((m.text.as_str(), seq), ("before", Some(2)));
        session.seq = seq;
        d.save_session(Some(&session), false);
        // The process ends: the connection goes without a close frame (still resumable);
        // a message comes meanwhile.
        task.abort();
        let _ = task.await;
        dc.wait_closed(1, Duration::from_secs(5)).await.unwrap();
        dc.dm_message("501", "42", "while down");

        // The next run resumes the saved session on its resume URL; the missed message is
        // replayed.
        let d = discord_with(&dc, &store);
        assert_eq!(d.restore(), Some(session.clone()));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn({
            let d = d.clone();
            async move { d.connections(tx).await }
        });
        let conns = dc.wait_sessions(2, Duration::from_secs(5)).await.unwrap();
        assert!(conns[1].identify.is_none(), "{conns:?}");
        assert!(conns[1].uri.starts_with("/resume"), "{}", conns[1].uri);
        let resume = conns[1].resume.clone().expect("resumed");
        assert_eq!(resume["session_id"], session.id.as_str());
        assert_eq!(resume["seq"], 2);
        let mut texts = Vec::new();
        loop {
            match next(&mut rx).await {
                Work::Message(m, _) => texts.push(m.text),
                Work::Session(Some(s)) => {
                    assert_eq!(s.id, session.id);
                    break;
                }
                _ => panic!("unexpected work"),
            }
        }
        assert_eq!(texts, ["while down"]);

        // Not resumable any more (op 9): the saved session is forgotten, a new one starts.
        dc.invalidate_sessions(false);
        assert!(matches!(next(&mut rx).await, Work::Session(None)));
        let Work::Session(Some(fresh)) = next(&mut rx).await else {
            panic!("no new session")
        };
        assert_ne!(fresh.id, session.id);
        let conns = dc.wait_sessions(3, Duration::from_secs(5)).await.unwrap();
        assert!(conns[2].identify.is_some(), "{conns:?}");
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeats_keep_their_interval_and_a_missing_ack_resumes_the_session() {
        let dc = FakeDiscord::start("t0ken").await;
        let interval = Duration::from_secs(10);
        dc.set_heartbeat_interval(interval);
        let d = discord(&dc);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn({
            let d = d.clone();
            async move { d.connections(tx).await }
        });
        dc.wait_sessions(1, Duration::from_secs(5)).await.unwrap();
        let ready = Instant::now();
        assert!(matches!(rx.recv().await, Some(Work::Session(Some(_)))));
        assert!(matches!(rx.recv().await, Some(Work::RegisterCommands(_))));
        // The first heartbeat after a random part of the interval, then one per interval,
        // each with the last sequence number (READY's 1).
        let beats = dc.wait_heartbeats(1, interval).await.unwrap();
        let first = Instant::now();
        assert!(first - ready <= interval);
        assert_eq!(beats[0], Some(1));
        dc.wait_heartbeats(2, interval * 2).await.unwrap();
        let gap = Instant::now() - first;
        assert!(
            gap >= interval - Duration::from_millis(50)
                && gap <= interval + Duration::from_millis(50),
            "{gap:?}"
        );
        // No ACK for a heartbeat: by the next one the client reconnects and resumes, before
        // the fake would time the session out (1.5 intervals).
        dc.stop_acking_heartbeats();
        let conns = dc.wait_sessions(2, interval * 3).await.unwrap();
        dc.resume_acking_heartbeats();
        assert!(!conns[0].heartbeat_timed_out, "{conns:?}");
        let resume = conns[1].resume.clone().expect("resumed");
        assert_eq!(
            resume["session_id"].as_str(),
            conns[0].session_id.as_deref()
        );
        assert_eq!(resume["token"], "Bot t0ken");
        assert!(!task.is_finished());
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn refused_intents_stop_the_account_with_a_clear_error() {
        let dc = FakeDiscord::start("t0ken").await;
        dc.set_privileged_intents(0);
        let (tx, _rx) = mpsc::unbounded_channel();
        match discord(&dc).connections(tx).await {
            ReceiveError::Permanent(e) => assert!(e.contains("4014"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_token_or_bad_urls_are_config_errors() {
        let new = |cfg: &AccountConfig| Discord::new(cfg, None);
        let cfg = |v: Value| {
            super::super::config::accounts(Some(&json!({ "discord": v })))
                .unwrap()
                .remove(0)
        };
        if std::env::var("DISCORD_BOT_TOKEN").is_err() {
            let e = new(&cfg(json!({}))).err().unwrap();
            assert!(e.contains("channels.discord.botToken"), "{e}");
        }
        let e = new(&cfg(json!({"botToken": "t", "apiBaseUrl": "discord.com"})))
            .err()
            .unwrap();
        assert!(e.contains("apiBaseUrl"), "{e}");
        let e = new(&cfg(json!({"botToken": "t", "gatewayUrl": "http://x"})))
            .err()
            .unwrap();
        assert!(e.contains("gatewayUrl"), "{e}");
        let e = new(&cfg(json!({"botToken": "t", "intents": ["NOPE"]})))
            .err()
            .unwrap();
        assert!(e.contains("channels.discord.intents"), "{e}");
        let d = new(&cfg(
            json!({"botToken": "Bot abc", "apiBaseUrl": "http://127.0.0.1:1/api/v10/"}),
        ))
        .unwrap();
        assert_eq!(
            (d.token.as_str(), d.api.as_str()),
            ("abc", "http://127.0.0.1:1/api/v10")
        );
    }
}
