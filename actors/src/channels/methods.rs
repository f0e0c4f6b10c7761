//! `channels.status`, `pairing.list`, `pairing.approve`, `pairing.reject`: the channel
//! accounts over the gateway, for `pincer channels status` and `pincer pairing ...`;
//! `send`: a message to a chat, for `pincer message send` (OpenClaw's method).

use std::time::Duration;

use serde_json::{Value, json};

use super::actor::{ChannelDirectory, status_payload};
use super::policy::Pairing;
use super::send::{self, OutboundError, SendRequest};
use super::types::DeliveryStatus;
use crate::gateway::{CallContext, MethodRegistry, now_ms};
use crate::protocol::{ErrorShape, scopes};
use crate::store::Store;

/// Adds the web chat to a `channels.status` payload.
fn add_webchat(payload: &mut Value, clients: usize, addr: &str) {
    payload["channels"]["webchat"] = json!({"configured": true, "running": true});
    payload["channelAccounts"]["webchat"] = json!([{
        "channel": "webchat",
        "accountId": "default",
        "enabled": true,
        "configured": true,
        "state": "running",
        "bot": format!("ws://{addr}/"),
        "connectedClients": clients,
    }]);
}

pub fn register(registry: &mut MethodRegistry, dir: ChannelDirectory, store: Store) {
    let d = dir.clone();
    registry.method(
        "channels.status",
        scopes::READ,
        move |cc: CallContext, _p: Value| {
            let d = d.clone();
            async move {
                let mut payload = status_payload(&d);
                // The web chat is the gateway's own WebSocket: running while the gateway
                // is, with its connected clients.
                let gw = cc
                    .gateway
                    .call(
                        |reply| crate::gateway::GatewayMsg::Status { reply },
                        Some(Duration::from_secs(5)),
                    )
                    .await;
                if let Ok(ractor::rpc::CallResult::Success(st)) = gw {
                    add_webchat(&mut payload, st.connections, &st.local_addr.to_string());
                }
                Ok(payload)
            }
        },
    );
    let s = store.clone();
    registry.method(
        "pairing.list",
        scopes::PAIRING,
        move |_cc: CallContext, _p: Value| {
            let s = s.clone();
            async move {
                let rows: Vec<((String, String), Pairing)> = s
                    .pairings()
                    .map_err(|e| ErrorShape::unavailable(e.to_string()))?;
                let list: Vec<Value> = rows
                    .into_iter()
                    .map(|((account, sender), p)| {
                        let (channel, account) = account.split_once(':').unwrap_or((&account, ""));
                        json!({
                            "channel": channel, "accountId": account, "senderId": sender,
                            "senderName": p.sender_name, "code": p.code,
                            "requestedAt": p.requested_ms, "approvedAt": p.approved_ms,
                            "status": if p.approved_ms.is_some() { "approved" } else { "pending" },
                        })
                    })
                    .collect();
                Ok(json!({"count": list.len(), "requests": list}))
            }
        },
    );
    let (d, s) = (dir.clone(), store.clone());
    registry.side_effecting("send", scopes::WRITE, move |_cc: CallContext, p: Value| {
        let (d, s) = (d.clone(), s.clone());
        async move { send_message(&s, &d, &p).await }
    });
    for (method, approve) in [("pairing.approve", true), ("pairing.reject", false)] {
        let s = store.clone();
        registry.side_effecting(
            method,
            scopes::PAIRING,
            move |_cc: CallContext, p: Value| {
                let s = s.clone();
                async move { decide(&s, &p, approve) }
            },
        );
    }
}

/// How long `send` waits for the delivery when the caller does not say (`waitMs`).
pub const SEND_WAIT_MS: u64 = 5_000;
/// The longest `waitMs` taken.
pub const SEND_WAIT_MAX_MS: u64 = 60_000;

/// `send {to, message, channel?, accountId?, threadId?, sessionKey?, waitMs?}`: puts the
/// message in the outbox and waits up to `waitMs` for its delivery. Answers
/// `{messageId, channel, accountId, to, outboxId, status, messageIds}` with status `sent`,
/// or `pending` when not delivered yet (the account keeps trying); a delivery that failed
/// is an UNAVAILABLE error saying why.
async fn send_message(
    store: &Store,
    dir: &ChannelDirectory,
    p: &Value,
) -> Result<Value, ErrorShape> {
    if !(p.is_object() || p.is_null()) {
        return Err(ErrorShape::invalid_request(
            "send takes an object: {to, message, channel?, accountId?, threadId?}",
        ));
    }
    let text_of = |k: &str| match &p[k] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let media = text_of("mediaUrl").is_some_and(|m| !m.trim().is_empty())
        || p["mediaUrls"].as_array().is_some_and(|a| !a.is_empty());
    if media {
        return Err(ErrorShape::invalid_request(
            "attachments (mediaUrl, mediaUrls) are not supported by this gateway yet: send text only",
        ));
    }
    let req = SendRequest {
        channel: text_of("channel"),
        account: text_of("accountId"),
        to: text_of("to").unwrap_or_default(),
        thread: text_of("threadId"),
        text: text_of("message").unwrap_or_default(),
        session_key: text_of("sessionKey"),
    };
    let wait_ms = p["waitMs"]
        .as_u64()
        .unwrap_or(SEND_WAIT_MS)
        .min(SEND_WAIT_MAX_MS);
    let queued = send::send(store, dir, req).await.map_err(|e| match e {
        OutboundError::Invalid(m) => ErrorShape::invalid_request(m),
        e @ OutboundError::Store(_) => ErrorShape::unavailable(e.to_string()),
    })?;
    let out = send::wait(store, queued, Duration::from_millis(wait_ms)).await;
    let payload = json!({
        "messageId": out.message_ids.first(),
        "channel": out.channel,
        "accountId": out.account_id,
        "to": out.to,
        "outboxId": out.outbox_id,
        "status": out.status,
        "messageIds": out.message_ids,
    });
    if out.status == DeliveryStatus::Failed {
        return Err(ErrorShape::unavailable(format!(
            "the message to {} could not be delivered: {}",
            out.target(),
            out.error.as_deref().unwrap_or("the platform refused it")
        ))
        .with_details(payload));
    }
    Ok(payload)
}

/// Approves (or rejects: forgets) the pending request with `code` on `channel`.
fn decide(store: &Store, p: &Value, approve: bool) -> Result<Value, ErrorShape> {
    let channel = p["channel"].as_str().unwrap_or_default();
    let code = p["code"].as_str().unwrap_or_default().trim().to_uppercase();
    if channel.is_empty() || code.is_empty() {
        return Err(ErrorShape::invalid_request(
            "give the channel and the code: pairing.approve {channel, code}",
        ));
    }
    let rows: Vec<((String, String), Pairing)> = store
        .pairings()
        .map_err(|e| ErrorShape::unavailable(e.to_string()))?;
    let hit = rows.into_iter().find(|((account, _), r)| {
        account.split(':').next() == Some(channel) && r.code == code && r.approved_ms.is_none()
    });
    let Some(((account, sender), mut row)) = hit else {
        return Err(ErrorShape::invalid_request(format!(
            "no pending pairing request with code {code} on {channel} (`pincer pairing list` shows them)"
        )));
    };
    if approve {
        row.approved_ms = Some(now_ms());
        store.set_pairing(&account, &sender, Some(&row))
    } else {
        store.set_pairing::<Pairing>(&account, &sender, None)
    }
    .map_err(|e| ErrorShape::unavailable(e.to_string()))?;
    let (channel, account) = account.split_once(':').unwrap_or((&account, ""));
    Ok(json!({
        "ok": true, "channel": channel, "accountId": account, "senderId": sender,
        "senderName": row.sender_name, "status": if approve { "approved" } else { "rejected" },
    }))
}
