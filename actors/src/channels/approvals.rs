//! Exec approvals answered from the chat.
//!
//! When a turn needs an operator's approval (`tools.exec.ask`), the agents emit
//! `exec.approval.requested`. The gateway's events sink hands that event to [`sink`] as
//! well as to the operator clients: the chat the session is answering (the origin of the
//! last message in its inbox) gets a prompt from its account's adapter, if the account
//! opted in with `execApprovals: true`. Telegram shows inline keyboard buttons, Slack
//! Block Kit buttons; adapters without buttons send a text prompt pointing at the
//! operator UI.
//!
//! A pressed button comes back as a [`Press`]: it is checked (the prompt's chat, and a
//! presser who is the DM's own user or in `allowFrom`), then the approval is resolved
//! through [`Approvals::resolve`](crate::agent::run::Approvals::resolve). Whatever ends
//! the request (a button, the operator UI, the timeout), `exec.approval.resolved` follows
//! and the prompt is edited to show it (approved, denied, expired).
//!
//! Nothing here is durable: approvals live in memory, so after a restart a prompt's
//! buttons answer "no longer pending".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::actor::{Adapter, ChannelDirectory, Inbound, SendError};
use super::config::AccountConfig;
use super::types::ChannelOrigin;
use crate::agent::run::EventSink;
use crate::session::Pending;
use crate::store::Store;

/// The account option that turns chat prompts on (off by default: a prompt shows the
/// command to everyone in the chat).
pub const CONFIG_KEY: &str = "execApprovals";

/// Longest command shown in a prompt (the rest is cut).
const MAX_COMMAND_CHARS: usize = 600;

/// Telegram's limit on `callback_data`.
const MAX_CALLBACK_DATA: usize = 64;

/// Whether the account sends approval prompts.
pub fn enabled(cfg: &AccountConfig) -> bool {
    cfg.bool(CONFIG_KEY).unwrap_or(false)
}

/// An approval request, as a chat shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalPrompt {
    /// The approval's id (what resolves it).
    pub id: String,
    pub tool: String,
    pub command: String,
    pub agent_id: String,
    pub session_key: String,
    pub expires_at_ms: u64,
    pub created_at_ms: u64,
    /// The chat it is shown in.
    pub origin: ChannelOrigin,
}

impl ApprovalPrompt {
    /// From an `exec.approval.requested` payload; `None` without an id.
    pub fn from_event(payload: &Value, origin: ChannelOrigin) -> Option<ApprovalPrompt> {
        let s = |p: &str| {
            payload
                .pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let id = s("/id");
        if id.is_empty() {
            return None;
        }
        let command = match payload.pointer("/request/command") {
            Some(Value::String(c)) => c.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let n = |p: &str| payload.pointer(p).and_then(Value::as_u64).unwrap_or(0);
        Some(ApprovalPrompt {
            id,
            tool: s("/request/tool"),
            command,
            agent_id: s("/request/agentId"),
            session_key: s("/request/sessionKey"),
            expires_at_ms: n("/expiresAtMs"),
            created_at_ms: n("/createdAtMs"),
            origin,
        })
    }

    /// The command, cut to a readable length, with fences neutralised.
    fn shown_command(&self) -> String {
        let mut c: String = self.command.chars().take(MAX_COMMAND_CHARS).collect();
        if c.len() < self.command.len() {
            c.push('…');
        }
        c.replace("```", "'''")
    }

    /// What the request is, in Markdown (adapters render it for their platform).
    pub fn summary(&self) -> String {
        format!(
            "**Approval needed**: agent {} wants to run {}:\n\n```\n{}\n```",
            self.agent_id,
            self.tool,
            self.shown_command()
        )
    }

    /// The prompt for a chat with buttons.
    pub fn text(&self) -> String {
        let secs = self.expires_at_ms.saturating_sub(self.created_at_ms) / 1000;
        format!("{}\n\nApprove or deny it within {secs} s.", self.summary())
    }

    /// The prompt for a chat without buttons.
    pub fn text_without_buttons(&self) -> String {
        format!(
            "{}\n\nAn operator can approve or deny it in the Pincer operator UI (approval {}).",
            self.summary(),
            self.id
        )
    }

    /// The prompt once answered: the request and what became of it.
    pub fn outcome_text(&self, outcome: &Outcome) -> String {
        format!("{}\n\n{}", self.summary(), outcome.label())
    }
}

/// What became of an approval request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `by`: who pressed the button (`None`: answered elsewhere, the operator UI).
    Approved {
        by: Option<String>,
    },
    Denied {
        by: Option<String>,
    },
    /// Not answered in time.
    Expired,
}

impl Outcome {
    pub fn label(&self) -> String {
        let by = |b: &Option<String>| match b {
            Some(who) => format!(" by {who}"),
            None => " from the operator UI".into(),
        };
        match self {
            Outcome::Approved { by: b } => format!("Approved{}.", by(b)),
            Outcome::Denied { by: b } => format!("Denied{}.", by(b)),
            Outcome::Expired => "Expired: nobody answered in time, so it was not run.".into(),
        }
    }

    /// From an `exec.approval.resolved` payload and who pressed the button.
    fn from_event(payload: &Value, by: Option<String>) -> Outcome {
        let field = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or_default();
        match (field("decision"), field("reason")) {
            (_, "timed out") => Outcome::Expired,
            ("allow-once" | "allow-always", _) => Outcome::Approved { by },
            _ => Outcome::Denied { by },
        }
    }
}

/// Telegram's `callback_data` for a button: `pa:y:<id>` / `pa:n:<id>`; `None` when the id
/// is too long for Telegram's 64 bytes.
pub fn callback_data(id: &str, allow: bool) -> Option<String> {
    let d = format!("pa:{}:{id}", if allow { 'y' } else { 'n' });
    (d.len() <= MAX_CALLBACK_DATA).then_some(d)
}

/// `(allow, id)` from a button's `callback_data`; `None` for other buttons.
pub fn parse_callback_data(data: &str) -> Option<(bool, &str)> {
    let rest = data.strip_prefix("pa:")?;
    let (flag, id) = rest.split_once(':')?;
    let allow = match flag {
        "y" => true,
        "n" => false,
        _ => return None,
    };
    (!id.is_empty()).then_some((allow, id))
}

/// The prompts shown and not answered yet, by approval id.
pub type Prompts = Arc<Mutex<HashMap<String, PromptEntry>>>;

pub struct PromptEntry {
    origin: ChannelOrigin,
    /// Whoever pressed the button that resolved it.
    pressed_by: Option<String>,
    /// Told the outcome; the prompt's task then edits the message.
    done: Option<oneshot::Sender<Outcome>>,
}

/// Wraps the agents' events sink: approval events also go to the channels.
pub fn sink(dir: ChannelDirectory, inner: EventSink) -> EventSink {
    Arc::new(move |event: &str, payload: Value| {
        match event {
            "exec.approval.requested" => requested(&dir, &payload),
            "exec.approval.resolved" => resolved(&dir, &payload),
            _ => {}
        }
        inner(event, payload);
    })
}

/// The chat a session is answering: the origin of the last message in its inbox.
pub fn session_origin(store: &Store, session_key: &str) -> Option<ChannelOrigin> {
    let rows: Vec<(u64, Pending)> = store.inbox(session_key).ok()?;
    rows.into_iter().rev().find_map(|(_, p)| p.origin)
}

fn requested(dir: &ChannelDirectory, payload: &Value) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let Some(session_key) = payload
        .pointer("/request/sessionKey")
        .and_then(Value::as_str)
    else {
        return;
    };
    // No account running: no chat to ask.
    let Some(any) = dir.any_account() else {
        return;
    };
    let Some(origin) = session_origin(&any.ctx().store, session_key) else {
        debug!(%session_key, "approval requested by a session with no chat; operators only");
        return;
    };
    let Some((adapter, inbound)) = dir.account(&origin.account_key()) else {
        debug!(%session_key, channel = %origin.account_key(), "the session's channel is not running; approval for operators only");
        return;
    };
    if !enabled(inbound.config()) {
        return;
    }
    let Some(prompt) = ApprovalPrompt::from_event(payload, origin.clone()) else {
        return;
    };
    let (tx, rx) = oneshot::channel();
    dir.prompts().lock().unwrap().insert(
        prompt.id.clone(),
        PromptEntry {
            origin,
            pressed_by: None,
            done: Some(tx),
        },
    );
    info!(channel = %prompt.origin.account_key(), approval = %prompt.id, %session_key, "approval prompt sent to the chat");
    rt.spawn(show(adapter, prompt, rx));
}

/// Sends the prompt, waits for its outcome, edits the prompt to show it.
async fn show(adapter: Arc<dyn Adapter>, prompt: ApprovalPrompt, done: oneshot::Receiver<Outcome>) {
    let key = prompt.origin.account_key();
    let sent = adapter.approval_prompt(&prompt).await;
    if let Err(e) = &sent {
        warn!(channel = %key, approval = %prompt.id, error = ?e, "could not send an approval prompt");
    }
    let outcome = done.await.unwrap_or(Outcome::Expired);
    if let Ok(message_id) = sent
        && let Err(e) = adapter
            .approval_update(&prompt, &message_id, &outcome)
            .await
    {
        warn!(channel = %key, approval = %prompt.id, error = ?e, "could not edit an approval prompt");
    }
}

fn resolved(dir: &ChannelDirectory, payload: &Value) {
    let Some(id) = payload.get("id").and_then(Value::as_str) else {
        return;
    };
    let entry = dir.prompts().lock().unwrap().remove(id);
    if let Some(mut e) = entry
        && let Some(tx) = e.done.take()
    {
        let _ = tx.send(Outcome::from_event(payload, e.pressed_by));
    }
}

/// An approval button pressed in a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Press {
    /// The approval id the button carries.
    pub id: String,
    pub allow: bool,
    pub user_id: String,
    /// For the edited prompt ("Approved by …").
    pub user_name: String,
    /// The chat the button was in.
    pub chat_id: String,
    /// The chat is the presser's own DM with the bot.
    pub own_dm: bool,
}

/// What to tell the presser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PressAnswer {
    /// Resolved; a short confirmation.
    Done(&'static str),
    /// Not theirs to answer (shown as an alert).
    Refused(&'static str),
    /// Answered or expired already (or lost in a restart).
    Gone,
}

impl PressAnswer {
    pub fn text(&self) -> &'static str {
        match self {
            PressAnswer::Done(t) | PressAnswer::Refused(t) => t,
            PressAnswer::Gone => "This approval is no longer pending (answered or expired).",
        }
    }
}

/// Checks a press and resolves its approval.
pub fn press(inbound: &Inbound, p: &Press) -> PressAnswer {
    let (ctx, cfg) = (inbound.ctx(), inbound.config());
    let prompts = ctx.directory.prompts();
    {
        let mut book = prompts.lock().unwrap();
        let Some(entry) = book.get_mut(&p.id) else {
            return PressAnswer::Gone;
        };
        if entry.origin.account_key() != cfg.key() || entry.origin.to != p.chat_id {
            warn!(channel = %cfg.key(), approval = %p.id, chat = %p.chat_id, "approval button pressed outside its chat; refused");
            return PressAnswer::Refused("This button does not belong to this chat.");
        }
        if !may_answer(cfg, p) {
            info!(channel = %cfg.key(), approval = %p.id, user = %p.user_id, chat = %p.chat_id, "approval button pressed by someone not allowed to answer; refused");
            return PressAnswer::Refused(
                "Only the person this assistant is talking to, or someone in its allowFrom list, may answer this approval.",
            );
        }
        entry.pressed_by = Some(if p.user_name.is_empty() {
            p.user_id.clone()
        } else {
            p.user_name.clone()
        });
    }
    let Some(approvals) = &ctx.approvals else {
        return PressAnswer::Gone;
    };
    // Audited as `<channel>:<account>:<user id>`.
    if approvals.resolve_by(&p.id, p.allow, &format!("{}:{}", cfg.key(), p.user_id)) {
        info!(channel = %cfg.key(), approval = %p.id, user = %p.user_id, allow = p.allow, "approval answered from the chat");
        PressAnswer::Done(if p.allow { "Approved" } else { "Denied" })
    } else {
        PressAnswer::Gone
    }
}

/// The DM's own user, or someone in `allowFrom`.
pub fn may_answer(cfg: &AccountConfig, p: &Press) -> bool {
    p.own_dm || cfg.allow_from.iter().any(|a| a == &p.user_id)
}

/// The default prompt of adapters without buttons: a text message through `send`.
pub fn text_prompt<'a, A: Adapter + ?Sized>(
    adapter: &'a A,
    prompt: &'a ApprovalPrompt,
) -> BoxFuture<'a, Result<String, SendError>> {
    use futures_util::FutureExt;
    async move {
        let text = super::format::render(adapter.platform(), &prompt.text_without_buttons());
        adapter.send(&prompt.origin, &text).await
    }
    .boxed()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn origin() -> ChannelOrigin {
        ChannelOrigin {
            channel: "telegram".into(),
            account: "default".into(),
            to: "42".into(),
            thread: None,
            message_id: "42/7".into(),
        }
    }

    #[test]
    fn callback_data_round_trips_and_fits_telegrams_limit() {
        let id = uuid::Uuid::new_v4().to_string();
        let y = callback_data(&id, true).unwrap();
        assert!(y.len() <= 64);
        assert_eq!(parse_callback_data(&y), Some((true, id.as_str())));
        let n = callback_data(&id, false).unwrap();
        assert_eq!(parse_callback_data(&n), Some((false, id.as_str())));
        assert_eq!(callback_data(&"x".repeat(60), true), None);
        for other in ["", "pa:", "pa:y:", "pa:m:1", "other:y:1"] {
            assert_eq!(parse_callback_data(other), None, "{other}");
        }
    }

    #[test]
    fn prompts_and_outcomes_read_from_the_events() {
        let ev = json!({"id": "a1", "request": {"tool": "exec", "command": "ls ```x", "sessionKey": "s", "agentId": "main"},
            "createdAtMs": 1000, "expiresAtMs": 61_000});
        let p = ApprovalPrompt::from_event(&ev, origin()).unwrap();
        assert_eq!((p.tool.as_str(), p.agent_id.as_str()), ("exec", "main"));
        assert!(p.text().contains("within 60 s"), "{}", p.text());
        assert!(
            p.text().contains("ls '''x"),
            "fences cannot be closed early"
        );
        assert!(p.text_without_buttons().contains("a1"));
        assert!(ApprovalPrompt::from_event(&json!({}), origin()).is_none());
        let out = |d: &str, r: &str| {
            Outcome::from_event(&json!({"decision": d, "reason": r}), Some("Ann".into()))
        };
        assert_eq!(
            out("allow-once", "allowed"),
            Outcome::Approved {
                by: Some("Ann".into())
            }
        );
        assert_eq!(
            out("deny", "denied"),
            Outcome::Denied {
                by: Some("Ann".into())
            }
        );
        assert_eq!(out("deny", "timed out"), Outcome::Expired);
        assert!(
            Outcome::Approved { by: None }
                .label()
                .contains("operator UI")
        );
    }

    #[test]
    fn only_the_dm_user_or_allow_from_may_answer() {
        let cfg = super::super::config::accounts(Some(&json!({"telegram": {"allowFrom": [7]}})))
            .unwrap()
            .remove(0);
        let p = |user: &str, own_dm: bool| Press {
            id: "a".into(),
            allow: true,
            user_id: user.into(),
            user_name: String::new(),
            chat_id: "-100".into(),
            own_dm,
        };
        assert!(may_answer(&cfg, &p("42", true)));
        assert!(may_answer(&cfg, &p("7", false)));
        assert!(!may_answer(&cfg, &p("8", false)));
    }
}
