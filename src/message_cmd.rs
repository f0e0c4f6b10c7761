//! `pincer message send`: a message to a chat through the gateway's channel accounts (the
//! `send` method), like OpenClaw's `openclaw message send`.

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::cli::{MessageCmd, MessageSendArgs};
use crate::client::{self, ClientError};
use crate::commands::{call_options, fail, print_json};
use crate::setup::Globals;

/// The longest the gateway is asked to wait for a delivery (its own cap).
const MAX_WAIT_MS: u64 = 60_000;

pub async fn message(globals: &Globals, cmd: MessageCmd) -> ExitCode {
    match cmd {
        MessageCmd::Send(args) => send(globals, args).await,
    }
}

async fn send(globals: &Globals, args: MessageSendArgs) -> ExitCode {
    let opts = match call_options(globals, &args.client) {
        Ok(o) => o,
        Err(c) => return c,
    };
    let params = params(&args);
    match client::call(&opts, "send", Some(params)).await {
        Ok(v) => {
            if args.client.json {
                print_json(&v);
            } else {
                println!("{}", summary(&v));
            }
            ExitCode::SUCCESS
        }
        Err(ClientError::Rpc { error, .. }) => {
            if args.client.json {
                print_json(&json!({"ok": false, "error": error}));
            }
            eprintln!("error: not sent: {}", error.message);
            ExitCode::from(1)
        }
        Err(e) => fail(e),
    }
}

/// The `send` params: OpenClaw's names, plus how long to wait for the delivery (three
/// quarters of `--timeout`, so the answer comes before the client gives up).
fn params(args: &MessageSendArgs) -> Value {
    let text = args.text.clone().or_else(|| args.message.clone());
    let wait_ms = if args.no_wait {
        0
    } else {
        (args.client.timeout * 3 / 4).min(MAX_WAIT_MS)
    };
    let mut p = json!({
        "to": args.to,
        "message": text.unwrap_or_default(),
        "waitMs": wait_ms,
        "idempotencyKey": uuid::Uuid::new_v4().to_string(),
    });
    for (key, value) in [
        ("channel", &args.channel),
        ("accountId", &args.account),
        ("threadId", &args.thread),
    ] {
        if let Some(v) = value {
            p[key] = json!(v);
        }
    }
    p
}

/// `sent to telegram:default 12345 (2 messages)`, or `queued for ...` when the gateway
/// has it but the platform has not taken it yet.
fn summary(v: &Value) -> String {
    let target = format!(
        "{}:{} {}",
        v["channel"].as_str().unwrap_or("?"),
        v["accountId"].as_str().unwrap_or("?"),
        v["to"].as_str().unwrap_or("?"),
    );
    match v["status"].as_str() {
        Some("sent") => {
            let n = v["messageIds"].as_array().map_or(0, Vec::len);
            format!(
                "sent to {target} ({n} message{})",
                if n == 1 { "" } else { "s" }
            )
        }
        _ => format!(
            "queued for {target} (outbox #{}): not delivered yet; the account keeps trying \
             (`pincer channels status` shows how it goes)",
            v["outboxId"]
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_say_what_happened() {
        let sent = json!({"channel": "telegram", "accountId": "default", "to": "42",
            "status": "sent", "messageIds": ["42/1", "42/2"], "outboxId": 3});
        assert_eq!(summary(&sent), "sent to telegram:default 42 (2 messages)");
        let queued = json!({"channel": "sms", "accountId": "default", "to": "+1555",
            "status": "pending", "messageIds": [], "outboxId": 3});
        assert!(summary(&queued).starts_with("queued for sms:default +1555 (outbox #3)"));
    }
}
