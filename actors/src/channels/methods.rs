//! `channels.status`, `pairing.list`, `pairing.approve`, `pairing.reject`: the channel
//! accounts over the gateway, for `pincer channels status` and `pincer pairing ...`.

use serde_json::{Value, json};

use super::actor::{ChannelDirectory, status_payload};
use super::policy::Pairing;
use crate::gateway::{CallContext, MethodRegistry, now_ms};
use crate::protocol::{ErrorShape, scopes};
use crate::store::Store;

pub fn register(registry: &mut MethodRegistry, dir: ChannelDirectory, store: Store) {
    let d = dir.clone();
    registry.method(
        "channels.status",
        scopes::READ,
        move |_cc: CallContext, _p: Value| {
            let d = d.clone();
            async move { Ok(status_payload(&d)) }
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
