//! Streaming previews: while a turn's reply is generated, a chat that can edit messages
//! (Telegram) shows it growing in a draft, and the final reply replaces the draft.
//!
//! - [`Inbound::accept_many`](super::actor::Inbound::accept_many) asks the session for the
//!   reply's text deltas of each routed message and hands them to [`Drafts::start`]: one
//!   task per run that sends a plain-text draft answering the user's message once the
//!   reply has streamed for one interval (a reply that is done sooner never gets one), then
//!   edits it with the text so far at most once per interval (`streamEditIntervalMs`). A 429
//!   on a draft or an edit skips edits until its retry-after; any other failure stops the
//!   preview. Past Telegram's limit the draft shows the tail of the text.
//! - The final reply still goes through the outbox: `deliver` calls [`Drafts::finish`],
//!   which stops the run's task and answers its draft, then edits that draft into the
//!   first formatted chunk (with the outbox's retry rules; a failed edit falls back to
//!   sending) and sends the other chunks as new messages. A preview is only a preview: no
//!   reply waits on it, and none is lost when it fails.
//! - The draft's message id is also kept in the store (`channel_state` row
//!   `<account>#drafts`), so after a crash between the draft and the final reply the
//!   pending outbox row, delivered on restart, still edits the draft instead of leaving a
//!   stale preview beside a second message.
//!
//! Config (per account): `streaming` ("partial": the draft follows the text; "block": it
//! is edited only once [`BLOCK_CHARS`] new characters have arrived; "off", or `true` /
//! `false`; `streamMode` is taken as an alias) and `streamEditIntervalMs` (default 1000,
//! at least 1000: Telegram allows about one edit a second per chat).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::actor::{Adapter, SendError};
use super::config::AccountConfig;
use super::types::ChannelOrigin;
use crate::gateway::now_ms;
use crate::store::Store;

/// The shortest edit interval: Telegram allows about one edit a second per chat.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1000);

/// What a draft shows at most, in UTF-16 units (Telegram's limit is 4096; the rest is room
/// for the ellipsis).
pub const PREVIEW_LIMIT: usize = 4000;

/// `block` mode: new characters needed before the draft is edited again.
pub const BLOCK_CHARS: usize = 200;

/// How long an unfinished run's draft is kept (in memory and in the store) for a reply
/// that never came.
const KEEP: Duration = Duration::from_secs(3600);

/// How often [`Drafts::start`] looks for runs past [`KEEP`].
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// How long [`Drafts::finish`] waits for a run's task to end its request in flight.
const FINISH_WAIT: Duration = Duration::from_secs(30);

/// How a reply shows while it is generated (`streaming`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    /// Only the final reply.
    Off,
    /// A draft edited with the text so far.
    Partial,
    /// A draft edited in steps of at least [`BLOCK_CHARS`] characters.
    Block,
}

/// An account's preview settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConfig {
    pub mode: StreamMode,
    /// Between a draft and its next edit, and between edits.
    pub interval: Duration,
}

impl StreamConfig {
    pub const OFF: StreamConfig = StreamConfig {
        mode: StreamMode::Off,
        interval: MIN_INTERVAL,
    };

    /// `streaming` (or `streamMode`) and `streamEditIntervalMs` of an account.
    pub fn parse(cfg: &AccountConfig, default: StreamMode) -> Result<StreamConfig, String> {
        let key = cfg.key();
        let (name, raw) = match (cfg.raw.get("streaming"), cfg.raw.get("streamMode")) {
            (Some(v), _) => ("streaming", Some(v)),
            (None, Some(v)) => ("streamMode", Some(v)),
            (None, None) => ("streaming", None),
        };
        // OpenClaw's newer shape: `streaming: {mode: ".."}`.
        let raw = match raw {
            Some(Value::Object(o)) => o.get("mode"),
            other => other,
        };
        let mode = match raw {
            None | Some(Value::Null) => default,
            Some(Value::Bool(true)) => StreamMode::Partial,
            Some(Value::Bool(false)) => StreamMode::Off,
            Some(Value::String(s)) => match s.as_str() {
                "partial" | "on" => StreamMode::Partial,
                "block" => StreamMode::Block,
                "off" => StreamMode::Off,
                _ => return Err(bad_mode(&key, name, raw)),
            },
            Some(_) => return Err(bad_mode(&key, name, raw)),
        };
        let interval = match cfg.raw.get("streamEditIntervalMs") {
            None => MIN_INTERVAL,
            Some(v) => match v.as_u64() {
                Some(ms) if Duration::from_millis(ms) >= MIN_INTERVAL => Duration::from_millis(ms),
                Some(ms) => {
                    warn!(channel = %key, ms, "streamEditIntervalMs below 1000; using 1000 (Telegram allows about one edit a second per chat)");
                    MIN_INTERVAL
                }
                None => {
                    return Err(format!(
                        "{key}: streamEditIntervalMs must be a number of milliseconds (at least 1000), not {v}"
                    ));
                }
            },
        };
        Ok(StreamConfig { mode, interval })
    }
}

fn bad_mode(key: &str, name: &str, v: Option<&Value>) -> String {
    format!(
        "{key}: {name} must be \"partial\", \"block\" or \"off\" (or true / false), not {}",
        v.map(Value::to_string).unwrap_or_default()
    )
}

/// What a run's preview shows and when it may change: a pure state machine, fed with
/// deltas and asked for the text to show when its time comes.
#[derive(Debug)]
pub struct Preview {
    cfg: StreamConfig,
    text: String,
    /// `text.len()` when it was last shown.
    shown: usize,
    /// The earliest time of the next draft or edit (`None`: nothing streamed yet).
    next_at: Option<Instant>,
    stopped: bool,
}

impl Preview {
    pub fn new(cfg: StreamConfig) -> Self {
        Preview {
            cfg,
            text: String::new(),
            shown: 0,
            next_at: None,
            stopped: false,
        }
    }

    /// A delta arrived; the first one starts the clock (the draft comes one interval on).
    pub fn push(&mut self, delta: &str, now: Instant) {
        self.text.push_str(delta);
        if self.next_at.is_none() {
            self.next_at = Some(now + self.cfg.interval);
        }
    }

    /// When the preview should next change, if it has something new to show.
    pub fn due(&self) -> Option<Instant> {
        let fresh = &self.text[self.shown..];
        let enough = match self.cfg.mode {
            StreamMode::Off => false,
            StreamMode::Partial => !fresh.trim().is_empty(),
            StreamMode::Block => fresh.chars().count() >= BLOCK_CHARS || self.shown == 0,
        };
        if self.stopped || !enough || self.text.trim().is_empty() {
            return None;
        }
        self.next_at
    }

    /// The text to show now (plain, under [`PREVIEW_LIMIT`]), if it is due; the next
    /// change is then one interval away.
    pub fn take(&mut self, now: Instant) -> Option<String> {
        if self.due()? > now {
            return None;
        }
        self.shown = self.text.len();
        self.next_at = Some(now + self.cfg.interval);
        Some(view(&self.text))
    }

    /// Rate limited: nothing more until `until`.
    pub fn hold(&mut self, until: Instant) {
        self.next_at = Some(self.next_at.map_or(until, |t| t.max(until)));
    }

    /// No more changes (the draft cannot be edited).
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// The earliest time of the next edit.
    pub fn next_at(&self) -> Option<Instant> {
        self.next_at
    }
}

/// `text` as a draft shows it: trimmed, and past [`PREVIEW_LIMIT`] UTF-16 units its tail
/// after an ellipsis.
pub fn view(text: &str) -> String {
    let text = text.trim();
    if text.encode_utf16().count() <= PREVIEW_LIMIT {
        return text.to_owned();
    }
    let mut units = 0;
    let mut start = text.len();
    for (i, c) in text.char_indices().rev() {
        units += c.len_utf16();
        if units > PREVIEW_LIMIT - 2 {
            break;
        }
        start = i;
    }
    format!("…\n{}", text[start..].trim_start())
}

/// A draft that previewed a reply: what `deliver` edits into the reply's first chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// The platform's id of the draft message.
    pub message_id: String,
}

/// A run's preview task.
struct Run {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Option<Draft>>,
    started: Instant,
}

/// Drafts kept in the store: run id -> draft message.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    #[serde(default)]
    drafts: HashMap<String, SavedDraft>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedDraft {
    message_id: String,
    created_ms: u64,
}

struct DraftsInner {
    key: String,
    store: Store,
    adapter: Arc<dyn Adapter>,
    cfg: StreamConfig,
    runs: Mutex<HashMap<String, Run>>,
    /// When `runs` was last scanned for runs past KEEP.
    pruned: Mutex<Instant>,
    /// Serialises read-modify-writes of the saved drafts.
    saved: Mutex<()>,
}

/// One account's run previews, shared by its inbound path (which starts them) and its
/// outbox sender (which finishes them).
#[derive(Clone)]
pub struct Drafts(Arc<DraftsInner>);

impl Drafts {
    pub fn new(key: String, store: Store, adapter: Arc<dyn Adapter>) -> Self {
        let cfg = adapter.stream_config();
        Drafts(Arc::new(DraftsInner {
            key,
            store,
            adapter,
            cfg,
            runs: Mutex::new(HashMap::new()),
            pruned: Mutex::new(Instant::now()),
            saved: Mutex::new(()),
        }))
    }

    /// Whether replies of this account are previewed.
    pub fn enabled(&self) -> bool {
        self.0.cfg.mode != StreamMode::Off
    }

    /// Previews run `run_id`'s reply, streamed into `deltas`, in the chat of `origin`.
    pub fn start(
        &self,
        run_id: String,
        origin: ChannelOrigin,
        deltas: mpsc::UnboundedReceiver<String>,
    ) {
        if !self.enabled() || run_id.is_empty() {
            return;
        }
        let (stop_tx, stop_rx) = oneshot::channel();
        let now = Instant::now();
        // The task is spawned under the lock, so the entry exists before the task can end
        // and remove it (see `preview`).
        let mut runs = self.0.runs.lock().unwrap();
        let task = tokio::spawn(preview(
            self.clone(),
            run_id.clone(),
            origin,
            deltas,
            stop_rx,
        ));
        // Runs whose reply never came (no reply, or it went elsewhere), looked for at most
        // once per PRUNE_EVERY: a scan per message made a flood quadratic.
        let mut last = self.0.pruned.lock().unwrap();
        if now.duration_since(*last) >= PRUNE_EVERY {
            *last = now;
            runs.retain(|_, r| {
                let keep = now.duration_since(r.started) <= KEEP;
                if !keep {
                    r.task.abort();
                }
                keep
            });
        }
        runs.insert(
            run_id,
            Run {
                stop: Some(stop_tx),
                task,
                started: now,
            },
        );
    }

    /// The reply of `run_id` is being delivered: stops its preview and answers its draft,
    /// if there is one (also one saved before a restart).
    pub async fn finish(&self, run_id: &str) -> Option<Draft> {
        if run_id.is_empty() {
            return None;
        }
        let run = self.0.runs.lock().unwrap().remove(run_id);
        if let Some(mut run) = run {
            if let Some(stop) = run.stop.take() {
                let _ = stop.send(());
            }
            return match tokio::time::timeout(FINISH_WAIT, &mut run.task).await {
                Ok(Ok(draft)) => draft,
                Ok(Err(e)) => {
                    warn!(channel = %self.0.key, run = run_id, error = %e, "a reply preview crashed");
                    self.saved_draft(run_id)
                }
                Err(_) => {
                    run.task.abort();
                    warn!(channel = %self.0.key, run = run_id, "a reply preview did not stop; sending the reply without it");
                    None
                }
            };
        }
        if !self.enabled() {
            return None;
        }
        self.saved_draft(run_id)
    }

    /// Forgets run `run_id`'s saved draft (its reply was delivered).
    pub fn forget(&self, run_id: &str) {
        if run_id.is_empty() || !self.enabled() {
            return;
        }
        self.update_saved(|s| s.drafts.remove(run_id).is_some());
    }

    fn saved_key(&self) -> String {
        format!("{}#drafts", self.0.key)
    }

    fn saved_draft(&self, run_id: &str) -> Option<Draft> {
        let saved: Saved = self
            .0
            .store
            .channel_state(&self.saved_key())
            .ok()
            .flatten()
            .unwrap_or_default();
        saved.drafts.get(run_id).map(|d| Draft {
            message_id: d.message_id.clone(),
        })
    }

    fn save(&self, run_id: &str, message_id: &str) {
        let now = now_ms();
        self.update_saved(|s| {
            s.drafts
                .retain(|_, d| now.saturating_sub(d.created_ms) < KEEP.as_millis() as u64);
            s.drafts.insert(
                run_id.to_owned(),
                SavedDraft {
                    message_id: message_id.to_owned(),
                    created_ms: now,
                },
            );
            true
        });
        // On disk soon (one shared fsync), so a crash before the reply still finds it.
        drop(self.0.store.sync());
    }

    fn update_saved(&self, f: impl FnOnce(&mut Saved) -> bool) {
        let _guard = self.0.saved.lock().unwrap();
        let store = &self.0.store;
        let key = self.saved_key();
        let mut saved: Saved = store.channel_state(&key).ok().flatten().unwrap_or_default();
        if f(&mut saved)
            && let Err(e) = store.set_channel_state(&key, &saved)
        {
            warn!(channel = %self.0.key, error = %e, "cannot record a reply draft");
        }
    }
}

/// One run's preview: a draft once the reply has streamed for an interval, then edits at
/// most once per interval, until the run ends or its reply is delivered. Answers the
/// draft, if one was sent.
async fn preview(
    drafts: Drafts,
    run_id: String,
    origin: ChannelOrigin,
    mut deltas: mpsc::UnboundedReceiver<String>,
    mut stop: oneshot::Receiver<()>,
) -> Option<Draft> {
    let inner = &drafts.0;
    let adapter = inner.adapter.as_ref();
    let mut state = Preview::new(inner.cfg);
    let mut draft: Option<String> = None;
    // A stream that never closes (a message folded into another's turn) ends here.
    let give_up = tokio::time::sleep(KEEP);
    tokio::pin!(give_up);
    loop {
        let due = state.due();
        tokio::select! {
            biased;
            _ = &mut stop => break,
            () = &mut give_up => break,
            d = deltas.recv() => match d {
                Some(d) => state.push(&d, Instant::now()),
                // The run ended: its reply is on its way through the outbox.
                None => break,
            },
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                let now = Instant::now();
                let Some(text) = state.take(now) else { continue };
                let result = match &draft {
                    None => adapter.send_draft(&origin, &text).await.map(Some),
                    Some(id) => adapter.edit(id, &text, false).await.map(|()| None),
                };
                match result {
                    Ok(Some(id)) => {
                        drafts.save(&run_id, &id);
                        draft = Some(id);
                    }
                    Ok(None) => {}
                    Err(SendError::RetryAfter(d)) => {
                        debug!(channel = %inner.key, run = %run_id, retry_after = ?d, "reply preview rate limited; skipping edits");
                        state.hold(Instant::now() + d);
                    }
                    // Worth another try at the next interval.
                    Err(SendError::Transient(e)) => {
                        debug!(channel = %inner.key, run = %run_id, error = %e, "reply preview failed; trying again later");
                    }
                    Err(SendError::Permanent(e)) => {
                        debug!(channel = %inner.key, run = %run_id, error = %e, "reply preview stopped");
                        state.stop();
                    }
                }
            },
        }
    }
    if draft.is_none() {
        // Nothing to answer: the entry goes now rather than after KEEP (a message folded
        // into another's turn, or a reply done within one interval, the common case). A
        // later `finish` finds no run, which is right: there is no draft.
        inner.runs.lock().unwrap().remove(&run_id);
    }
    draft.map(|message_id| Draft { message_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(mode: StreamMode) -> StreamConfig {
        StreamConfig {
            mode,
            interval: Duration::from_millis(1000),
        }
    }

    fn account(extra: Value) -> AccountConfig {
        let mut c = serde_json::json!({"botToken": "1:x"});
        crate::config::merge_patch(&mut c, &extra);
        super::super::config::accounts(Some(&serde_json::json!({ "telegram": c })))
            .unwrap()
            .remove(0)
    }

    #[test]
    fn config_follows_openclaw_names() {
        let p = |v: Value| StreamConfig::parse(&account(v), StreamMode::Partial);
        assert_eq!(p(serde_json::json!({})).unwrap(), cfg(StreamMode::Partial));
        assert_eq!(
            p(serde_json::json!({"streaming": "off"})).unwrap().mode,
            StreamMode::Off
        );
        assert_eq!(
            p(serde_json::json!({"streaming": false})).unwrap().mode,
            StreamMode::Off
        );
        assert_eq!(
            p(serde_json::json!({"streamMode": "block"})).unwrap().mode,
            StreamMode::Block
        );
        assert_eq!(
            p(serde_json::json!({"streaming": {"mode": "partial"}}))
                .unwrap()
                .mode,
            StreamMode::Partial
        );
        let c = p(serde_json::json!({"streamEditIntervalMs": 2500})).unwrap();
        assert_eq!(c.interval, Duration::from_millis(2500));
        let c = p(serde_json::json!({"streamEditIntervalMs": 10})).unwrap();
        assert_eq!(
            c.interval, MIN_INTERVAL,
            "never more than one edit a second"
        );
        let e = p(serde_json::json!({"streaming": "sometimes"})).unwrap_err();
        assert!(
            e.contains("telegram:default") && e.contains("partial"),
            "{e}"
        );
        assert!(p(serde_json::json!({"streamEditIntervalMs": "fast"})).is_err());
    }

    #[tokio::test]
    async fn runs_that_end_without_a_draft_leave_no_entry_behind() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tg = pincer_fakes::telegram::FakeTelegram::start("1:drafts").await;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.redb")).unwrap();
        let cfg = crate::channels::config::accounts(Some(&serde_json::json!({"telegram": {
            "botToken": tg.token(), "apiBaseUrl": tg.api_url(),
        }})))
        .unwrap()
        .remove(0);
        let adapter =
            Arc::new(crate::channels::telegram::Telegram::new(&cfg, store.clone()).unwrap());
        let drafts = Drafts::new(cfg.key(), store, adapter);
        assert!(drafts.enabled(), "Telegram previews by default");
        let origin = ChannelOrigin {
            channel: "telegram".into(),
            account: "default".into(),
            to: "42".into(),
            thread: None,
            message_id: "7".into(),
        };
        // A flood of messages: each run's reply is done (or folded into another turn)
        // before an interval passes, so none gets a draft.
        let mut senders = Vec::new();
        for i in 0..1000 {
            let (tx, rx) = mpsc::unbounded_channel();
            drafts.start(format!("run-{i}"), origin.clone(), rx);
            senders.push(tx);
        }
        for (i, tx) in senders.iter().enumerate() {
            if i % 2 == 0 {
                tx.send("short".into()).unwrap();
            }
        }
        drop(senders);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !drafts.0.runs.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "runs left behind");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(drafts.finish("run-0").await.is_none(), "no draft to answer");
        assert!(tg.sent().is_empty(), "no draft was sent");
    }

    #[tokio::test(start_paused = true)]
    async fn the_draft_comes_one_interval_after_the_first_delta_then_at_most_one_edit_an_interval()
    {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut p = Preview::new(cfg(StreamMode::Partial));
        assert_eq!(p.due(), None, "nothing streamed");
        p.push("Hello", ms(0));
        assert_eq!(p.due(), Some(ms(1000)));
        p.push(" there", ms(300));
        assert_eq!(p.take(ms(999)), None);
        assert_eq!(p.take(ms(1000)).as_deref(), Some("Hello there"));
        assert_eq!(p.due(), None, "nothing new");
        p.push(", friend", ms(1200));
        assert_eq!(p.due(), Some(ms(2000)));
        assert_eq!(p.take(ms(1999)), None);
        assert_eq!(p.take(ms(2000)).as_deref(), Some("Hello there, friend"));
        // A 429 holds edits back past the interval.
        p.push("!", ms(2100));
        p.hold(ms(5000));
        assert_eq!(p.take(ms(4999)), None);
        assert_eq!(p.take(ms(5000)).as_deref(), Some("Hello there, friend!"));
        p.push(" more", ms(5100));
        p.stop();
        assert_eq!(p.due(), None, "stopped");
    }

    #[tokio::test(start_paused = true)]
    async fn whitespace_alone_is_not_shown_and_block_mode_waits_for_enough_text() {
        let t0 = Instant::now();
        let mut p = Preview::new(cfg(StreamMode::Partial));
        p.push("  \n", t0);
        assert_eq!(p.due(), None);
        let mut b = Preview::new(cfg(StreamMode::Block));
        b.push("first", t0);
        let at = t0 + Duration::from_secs(1);
        assert_eq!(b.take(at).as_deref(), Some("first"), "the draft itself");
        b.push(&"x".repeat(BLOCK_CHARS - 1), at);
        assert_eq!(b.due(), None, "not enough new text");
        b.push("y", at);
        assert!(b.take(at + Duration::from_secs(1)).is_some());
    }

    #[test]
    fn a_long_preview_shows_its_tail_under_the_limit() {
        assert_eq!(view("  short \n"), "short");
        let long = format!("{}END", "a".repeat(5000));
        let v = view(&long);
        assert!(v.starts_with("…\n") && v.ends_with("END"), "{v}");
        assert!(v.encode_utf16().count() <= PREVIEW_LIMIT);
        // Characters outside the BMP count twice.
        let emoji = "😀".repeat(3000);
        let v = view(&emoji);
        assert!(v.encode_utf16().count() <= PREVIEW_LIMIT);
        assert!(v.encode_utf16().count() > PREVIEW_LIMIT - 10);
    }
}
