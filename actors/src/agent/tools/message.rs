//! `message {action: "send", channel?, to, text, accountId?, threadId?}`: the agent sends a
//! message to a chat on one of the gateway's channel accounts (not a reply to its own
//! chat: that is what its answer is).
//!
//! Parameters from OpenClaw's `message` tool (group `group:messaging`): `action`, `channel`,
//! `target` (accepted as `to`), `message` (accepted as `text`), `accountId`, `threadId`.
//! Only `send` is implemented; OpenClaw's other actions (react, edit, delete, poll, read,
//! ...) are refused with a message saying so. The message goes through
//! [`crate::channels::send`]: the same checks, account choice and outbox as `pincer message
//! send`, and the call waits (up to [`WAIT`]) for the delivery to report it.
//!
//! Risk: high. It speaks for the user to anyone the accounts can reach, and a sent message
//! cannot be taken back, so it is approved like `exec` under `tools.exec.ask`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use super::args::Args;
use super::{Risk, Tool, ToolContext, ToolOutput, boxed, schema};
use crate::agent::model::ToolSpec;
use crate::channels::send::{Outbound, SendRequest};
use crate::channels::types::DeliveryStatus;

/// How long a call waits for the delivery before answering "queued".
pub const WAIT: Duration = Duration::from_secs(10);

/// What a `message` call sends with: the gateway's channels, and the session calling.
#[derive(Clone)]
pub struct OutboundCtx {
    pub sender: Arc<dyn Outbound>,
    pub session_key: String,
}

pub struct Message;

impl Tool for Message {
    fn name(&self) -> &'static str {
        "message"
    }
    fn group(&self) -> &'static str {
        "group:messaging"
    }
    fn risk(&self) -> Risk {
        Risk::High
    }
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "message".into(),
            description: "Send a message to another chat (your answer already goes to this one)."
                .into(),
            parameters: schema(
                json!({
                    "action": {"type": "string", "enum": ["send"]},
                    "channel": {"type": "string", "description": "telegram, slack, sms, discord"},
                    "to": {"type": "string", "description": "chat/channel id or phone number"},
                    "text": {"type": "string", "description": "Markdown"},
                    "accountId": {"type": "string"},
                    "threadId": {"type": "string"},
                }),
                &["action", "to", "text"],
            ),
        }
    }
    fn call(&self, ctx: ToolContext, args: Value) -> BoxFuture<'static, ToolOutput> {
        boxed("message", send(ctx, args))
    }
}

/// A string parameter, or a number given for it (chat and thread ids often are).
fn text_arg(a: &Args<'_>, args: &Value, key: &str) -> Result<Option<String>, String> {
    match args.get(key) {
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        _ => Ok(a.opt_str(key)?.map(str::to_owned)),
    }
}

/// The request a call asks for, or what is wrong with it.
fn parse(args: &Value) -> Result<SendRequest, String> {
    let a = Args::new("message", args)?;
    let action = a.opt_str("action")?.unwrap_or("send").trim();
    if !action.eq_ignore_ascii_case("send") {
        return Err(format!(
            "message: action {action:?} is not supported here; only \"send\" is (no react, edit, delete, poll or read)"
        ));
    }
    let either = |k1: &str, k2: &str| -> Result<Option<String>, String> {
        Ok(text_arg(&a, args, k1)?.or(text_arg(&a, args, k2)?))
    };
    let to = either("to", "target")?.ok_or(
        "message: missing required parameter `to` (the chat id, channel id or phone number)",
    )?;
    let text = either("text", "message")?
        .ok_or("message: missing required parameter `text` (the message to send)")?;
    Ok(SendRequest {
        channel: text_arg(&a, args, "channel")?,
        account: text_arg(&a, args, "accountId")?,
        to,
        thread: text_arg(&a, args, "threadId")?,
        text,
        session_key: None,
    })
}

async fn send(ctx: ToolContext, args: Value) -> ToolOutput {
    let mut req = match parse(&args) {
        Ok(r) => r,
        Err(e) => return ToolOutput::error(e),
    };
    let Some(out) = ctx.outbound else {
        return ToolOutput::error(
            "message: this agent has no channels to send with (no gateway channels in this context)",
        );
    };
    req.session_key = Some(out.session_key.clone());
    match out.sender.send(req, WAIT).await {
        Err(e) => ToolOutput::error(format!("message: not sent: {e}")),
        Ok(o) => match o.status {
            DeliveryStatus::Sent => ToolOutput::ok(format!(
                "sent to {} ({} message{})",
                o.target(),
                o.message_ids.len(),
                if o.message_ids.len() == 1 { "" } else { "s" }
            )),
            DeliveryStatus::Pending => ToolOutput::ok(format!(
                "queued for {}: not delivered yet; the account keeps trying, do not send it again",
                o.target()
            )),
            DeliveryStatus::Failed => ToolOutput::error(format!(
                "message: delivery to {} failed: {}",
                o.target(),
                o.error.as_deref().unwrap_or("the platform refused it")
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures_util::FutureExt;

    use super::*;
    use crate::channels::send::{OutboundError, SendOutcome};
    use crate::channels::types::DeliveryStatus;

    /// Records requests; answers with `status`, or refuses channels called "nope".
    struct Fake {
        seen: Mutex<Vec<SendRequest>>,
        status: DeliveryStatus,
    }

    impl Outbound for Fake {
        fn send(
            &self,
            req: SendRequest,
            _wait: Duration,
        ) -> BoxFuture<'static, Result<SendOutcome, OutboundError>> {
            self.seen.lock().unwrap().push(req.clone());
            let status = self.status;
            async move {
                if req.channel.as_deref() == Some("nope") {
                    return Err(OutboundError::Invalid(
                        "no nope account is configured".into(),
                    ));
                }
                Ok(SendOutcome {
                    outbox_id: 1,
                    channel: req.channel.unwrap_or("telegram".into()),
                    account_id: "default".into(),
                    to: req.to,
                    status,
                    message_ids: vec!["1/2".into()],
                    error: (status == DeliveryStatus::Failed).then(|| "chat not found".into()),
                })
            }
            .boxed()
        }
    }

    fn ctx(status: DeliveryStatus) -> (ToolContext, Arc<Fake>) {
        let fake = Arc::new(Fake {
            seen: Mutex::new(Vec::new()),
            status,
        });
        let mut ctx = ToolContext::new("/nonexistent", super::super::WorkspaceAccess::None);
        ctx.outbound = Some(OutboundCtx {
            sender: fake.clone(),
            session_key: "agent:main:main".into(),
        });
        (ctx, fake)
    }

    #[tokio::test]
    async fn a_send_goes_through_the_outbound_with_the_session_key() {
        let (c, fake) = ctx(DeliveryStatus::Sent);
        let out = Message
            .call(
                c,
                json!({"action": "send", "channel": "telegram", "to": 42, "text": "hi", "threadId": 7}),
            )
            .await;
        assert!(!out.is_error, "{out:?}");
        assert_eq!(out.content, "sent to telegram:default 42 (1 message)");
        let seen = fake.seen.lock().unwrap()[0].clone();
        assert_eq!(seen.to, "42");
        assert_eq!(seen.thread.as_deref(), Some("7"));
        assert_eq!(seen.session_key.as_deref(), Some("agent:main:main"));

        // OpenClaw's names: `target` and `message`.
        let (c, fake) = ctx(DeliveryStatus::Pending);
        let out = Message
            .call(c, json!({"action": "send", "target": "5", "message": "yo"}))
            .await;
        assert!(
            !out.is_error && out.content.starts_with("queued for"),
            "{out:?}"
        );
        assert_eq!(fake.seen.lock().unwrap()[0].text, "yo");
    }

    #[tokio::test]
    async fn failures_and_refusals_are_errors_the_model_can_read() {
        let (c, _) = ctx(DeliveryStatus::Failed);
        let out = Message.call(c, json!({"to": "1", "text": "x"})).await;
        assert!(
            out.is_error && out.content.contains("chat not found"),
            "{out:?}"
        );

        let (c, fake) = ctx(DeliveryStatus::Sent);
        let out = Message
            .call(c, json!({"action": "react", "to": "1", "text": "x"}))
            .await;
        assert!(
            out.is_error && out.content.contains("only \"send\""),
            "{out:?}"
        );
        assert!(fake.seen.lock().unwrap().is_empty());

        let (c, _) = ctx(DeliveryStatus::Sent);
        let out = Message
            .call(c, json!({"action": "send", "text": "x"}))
            .await;
        assert!(out.is_error && out.content.contains("`to`"), "{out:?}");

        let (c, _) = ctx(DeliveryStatus::Sent);
        let out = Message
            .call(c, json!({"channel": "nope", "to": "1", "text": "x"}))
            .await;
        assert!(
            out.is_error && out.content.contains("no nope account"),
            "{out:?}"
        );

        let none = ToolContext::new("/nonexistent", super::super::WorkspaceAccess::None);
        let out = Message.call(none, json!({"to": "1", "text": "x"})).await;
        assert!(
            out.is_error && out.content.contains("no channels"),
            "{out:?}"
        );
    }
}
