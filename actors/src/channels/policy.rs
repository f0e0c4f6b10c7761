//! Who may talk to the agent on a channel account: `dmPolicy`, `allowFrom`, `groupPolicy`,
//! `groups` and mention-gating, as a pure function, plus pairing codes.

use serde::{Deserialize, Serialize};

use super::config::{AccountConfig, DmPolicy, GroupPolicy};
use super::types::InboundMessage;
use crate::session::keys::PeerKind;

/// What to do with an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Route it to its agent.
    Accept,
    /// An unknown sender under `dmPolicy: pairing`: answer with a pairing code.
    Pair,
    /// A group message that does not mention the bot: dropped quietly.
    NotMentioned,
    /// Refused; the reason is logged (senders are not told).
    Deny(&'static str),
}

/// Decides for `msg`; `paired` is whether its sender's pairing was approved.
pub fn decide(cfg: &AccountConfig, msg: &InboundMessage, paired: bool) -> Decision {
    let listed = |list: &[String]| list.iter().any(|a| a == "*" || *a == msg.sender_id);
    match msg.peer_kind {
        PeerKind::Dm => match cfg.dm_policy {
            DmPolicy::Disabled => Decision::Deny("direct messages are disabled (dmPolicy)"),
            DmPolicy::Open => Decision::Accept,
            DmPolicy::Allowlist if listed(&cfg.allow_from) => Decision::Accept,
            DmPolicy::Allowlist => Decision::Deny("sender not in allowFrom (dmPolicy allowlist)"),
            DmPolicy::Pairing if listed(&cfg.allow_from) || paired => Decision::Accept,
            DmPolicy::Pairing => Decision::Pair,
        },
        PeerKind::Group | PeerKind::Channel => {
            let group = cfg.group(&msg.chat_id);
            let group = match cfg.group_policy {
                GroupPolicy::Disabled => {
                    return Decision::Deny("groups are disabled (groupPolicy)");
                }
                GroupPolicy::Allowlist => match group {
                    Some(g) => g.clone(),
                    None => return Decision::Deny("group not in groups (groupPolicy allowlist)"),
                },
                GroupPolicy::Open => group.cloned().unwrap_or_default(),
            };
            if !group.enabled {
                return Decision::Deny("group disabled in groups");
            }
            if !group.allow_from.is_empty() && !listed(&group.allow_from) {
                return Decision::Deny("sender not in the group's allowFrom");
            }
            if group.require_mention && !msg.mentioned && !is_command(&msg.text) {
                return Decision::NotMentioned;
            }
            Decision::Accept
        }
    }
}

/// A slash command (`/new`, `/status@bot`...) always reaches the bot in groups.
fn is_command(text: &str) -> bool {
    text.starts_with('/') && text.len() > 1
}

/// A pairing request or approval, in the store under (account key, sender id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pairing {
    pub code: String,
    pub sender_name: String,
    pub requested_ms: u64,
    /// When the owner approved it; `None` while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_ms: Option<u64>,
    /// When the sender was last told the code (they are not told more than every 10 min).
    #[serde(default)]
    pub notified_ms: u64,
}

/// How long a pairing code stays valid.
pub const PAIRING_TTL_MS: u64 = 60 * 60 * 1000;
/// How often a waiting sender is reminded of their code.
pub const PAIRING_REMIND_MS: u64 = 10 * 60 * 1000;

/// An 8-character code from an alphabet without look-alikes (no 0/O, 1/I/L).
pub fn pairing_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..8]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::channels::config::accounts;

    fn cfg(v: serde_json::Value) -> AccountConfig {
        accounts(Some(&json!({ "telegram": v }))).unwrap().remove(0)
    }

    fn msg(
        kind: PeerKind,
        chat: &str,
        sender: &str,
        text: &str,
        mentioned: bool,
    ) -> InboundMessage {
        InboundMessage {
            channel: "telegram".into(),
            account: "default".into(),
            peer_kind: kind,
            chat_id: chat.into(),
            sender_id: sender.into(),
            sender_name: "Ann".into(),
            text: text.into(),
            media: Vec::new(),
            reply_to: None,
            thread: None,
            timestamp_ms: 0,
            message_id: "1".into(),
            mentioned,
            guild_id: None,
            team_id: None,
        }
    }

    #[test]
    fn dm_policies() {
        let dm = |s: &str| msg(PeerKind::Dm, s, s, "hi", false);
        let pairing = cfg(json!({"allowFrom": ["7"]}));
        assert_eq!(decide(&pairing, &dm("7"), false), Decision::Accept);
        assert_eq!(decide(&pairing, &dm("8"), false), Decision::Pair);
        assert_eq!(decide(&pairing, &dm("8"), true), Decision::Accept);
        let allow = cfg(json!({"dmPolicy": "allowlist", "allowFrom": [7]}));
        assert_eq!(decide(&allow, &dm("7"), false), Decision::Accept);
        assert!(matches!(decide(&allow, &dm("8"), true), Decision::Deny(_)));
        let open = cfg(json!({"dmPolicy": "open"}));
        assert_eq!(decide(&open, &dm("9"), false), Decision::Accept);
        let off = cfg(json!({"dmPolicy": "disabled", "allowFrom": ["7"]}));
        assert!(matches!(decide(&off, &dm("7"), false), Decision::Deny(_)));
    }

    #[test]
    fn group_policies_and_mentions() {
        let g = |chat: &str, sender: &str, text: &str, m: bool| {
            msg(PeerKind::Group, chat, sender, text, m)
        };
        // Default: allowlist with no groups listed refuses every group.
        let none = cfg(json!({}));
        assert!(matches!(
            decide(&none, &g("-1", "7", "hi", true), false),
            Decision::Deny(_)
        ));
        let listed =
            cfg(json!({"groups": {"-1": {}, "-2": {"requireMention": false, "allowFrom": ["7"]}}}));
        assert_eq!(
            decide(&listed, &g("-1", "8", "hi", false), false),
            Decision::NotMentioned
        );
        assert_eq!(
            decide(&listed, &g("-1", "8", "hi", true), false),
            Decision::Accept
        );
        assert_eq!(
            decide(&listed, &g("-1", "8", "/status", false), false),
            Decision::Accept
        );
        assert_eq!(
            decide(&listed, &g("-2", "7", "hi", false), false),
            Decision::Accept
        );
        assert!(matches!(
            decide(&listed, &g("-2", "8", "hi", true), false),
            Decision::Deny(_)
        ));
        assert!(matches!(
            decide(&listed, &g("-3", "7", "hi", true), false),
            Decision::Deny(_)
        ));
        let star = cfg(json!({"groups": {"*": {"requireMention": false}}}));
        assert_eq!(
            decide(&star, &g("-9", "1", "hi", false), false),
            Decision::Accept
        );
        let open = cfg(json!({"groupPolicy": "open"}));
        assert_eq!(
            decide(&open, &g("-9", "1", "hi", false), false),
            Decision::NotMentioned
        );
        assert_eq!(
            decide(&open, &g("-9", "1", "hi", true), false),
            Decision::Accept
        );
        let off = cfg(json!({"groupPolicy": "disabled", "groups": {"*": {}}}));
        assert!(matches!(
            decide(&off, &g("-9", "1", "hi", true), false),
            Decision::Deny(_)
        ));
    }

    #[test]
    fn pairing_codes_are_eight_unambiguous_characters() {
        let a = pairing_code();
        assert_eq!(a.len(), 8);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() && !"01OIL".contains(c))
        );
        assert_ne!(a, pairing_code());
    }
}
