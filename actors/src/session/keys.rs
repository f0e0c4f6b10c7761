//! Session keys, as OpenClaw spells them: which conversation a message belongs to.
//! `session.dmScope` decides how direct messages split into sessions and
//! `session.mainKey` names the shared one; groups, rooms, topics and threads always get
//! their own. Pure functions: the channels call them after routing picked the agent.
//!
//! ```text
//! dm, scope main                      agent:<id>:<mainKey>
//! dm, scope per-peer                  agent:<id>:dm:<peer>
//! dm, scope per-channel-peer          agent:<id>:<channel>:dm:<peer>
//! dm, scope per-account-channel-peer  agent:<id>:<channel>:<account>:dm:<peer>
//! group                               agent:<id>:<channel>:group:<id>[:topic:<thread>]
//! channel (room)                      agent:<id>:<channel>:channel:<id>[:thread:<ts>]
//! ```

/// What kind of conversation a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerKind {
    Dm,
    Group,
    Channel,
}

/// Where a message came from, as far as session keys care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    /// telegram, slack, discord, sms...
    pub channel: &'a str,
    /// The channel account (several bots of one platform); `default` when there is one.
    pub account: &'a str,
    pub kind: PeerKind,
    /// The sender for DMs, the group or room id otherwise.
    pub peer: &'a str,
    /// A Telegram forum topic or a Slack/Discord thread inside a group or room.
    pub thread: Option<&'a str>,
}

/// How direct messages map to sessions (`session.dmScope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DmScope {
    /// Every DM of an agent shares its main session (continuity across devices).
    #[default]
    Main,
    PerPeer,
    PerChannelPeer,
    PerAccountChannelPeer,
}

impl DmScope {
    /// Parses the configuration value (unknown values: None; the schema rejects them).
    pub fn parse(s: &str) -> Option<DmScope> {
        Some(match s {
            "main" => DmScope::Main,
            "per-peer" => DmScope::PerPeer,
            "per-channel-peer" => DmScope::PerChannelPeer,
            "per-account-channel-peer" => DmScope::PerAccountChannelPeer,
            _ => return None,
        })
    }
}

/// Keeps a key segment unambiguous: `:` separates segments, so it is replaced, as are
/// control characters and whitespace; ids are lower-cased (platform ids are
/// case-insensitive where they are not numeric).
fn seg(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| {
            if c == ':' || c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// The session key for a message from `origin` to agent `agent`.
pub fn session_key(agent: &str, main_key: &str, scope: DmScope, origin: &Origin<'_>) -> String {
    let (agent, channel, peer) = (seg(agent), seg(origin.channel), seg(origin.peer));
    match origin.kind {
        PeerKind::Dm => match scope {
            DmScope::Main => format!("agent:{agent}:{}", seg(main_key)),
            DmScope::PerPeer => format!("agent:{agent}:dm:{peer}"),
            DmScope::PerChannelPeer => format!("agent:{agent}:{channel}:dm:{peer}"),
            DmScope::PerAccountChannelPeer => {
                format!("agent:{agent}:{channel}:{}:dm:{peer}", seg(origin.account))
            }
        },
        PeerKind::Group | PeerKind::Channel => {
            let (kind, sub) = match origin.kind {
                PeerKind::Group => ("group", "topic"),
                _ => ("channel", "thread"),
            };
            let mut key = format!("agent:{agent}:{channel}:{kind}:{peer}");
            if let Some(t) = origin.thread.filter(|t| !t.trim().is_empty()) {
                key.push_str(&format!(":{sub}:{}", seg(t)));
            }
            key
        }
    }
}

/// Whether `key` is an agent's private main session (where MEMORY.md is loaded).
pub fn is_main(key: &str, agent: &str, main_key: &str) -> bool {
    key == format!("agent:{}:{}", seg(agent), seg(main_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dm(channel: &'static str, peer: &'static str) -> Origin<'static> {
        Origin {
            channel,
            account: "default",
            kind: PeerKind::Dm,
            peer,
            thread: None,
        }
    }

    #[test]
    fn direct_messages_follow_the_dm_scope() {
        let o = dm("telegram", "12345");
        let cases = [
            (DmScope::Main, "agent:main:main"),
            (DmScope::PerPeer, "agent:main:dm:12345"),
            (DmScope::PerChannelPeer, "agent:main:telegram:dm:12345"),
            (
                DmScope::PerAccountChannelPeer,
                "agent:main:telegram:default:dm:12345",
            ),
        ];
        for (scope, want) in cases {
            assert_eq!(session_key("main", "main", scope, &o), want, "{scope:?}");
        }
        assert_eq!(
            session_key("ops", "home", DmScope::Main, &o),
            "agent:ops:home",
            "mainKey names the shared session"
        );
        for (s, want) in [
            ("main", DmScope::Main),
            ("per-peer", DmScope::PerPeer),
            ("per-channel-peer", DmScope::PerChannelPeer),
            ("per-account-channel-peer", DmScope::PerAccountChannelPeer),
        ] {
            assert_eq!(DmScope::parse(s), Some(want));
        }
        assert_eq!(DmScope::parse("per-moon"), None);
    }

    #[test]
    fn groups_rooms_topics_and_threads_get_their_own_sessions_whatever_the_scope() {
        let group = Origin {
            channel: "telegram",
            account: "default",
            kind: PeerKind::Group,
            peer: "-100200",
            thread: None,
        };
        for scope in [DmScope::Main, DmScope::PerPeer] {
            assert_eq!(
                session_key("main", "main", scope, &group),
                "agent:main:telegram:group:-100200"
            );
        }
        let topic = Origin {
            thread: Some("42"),
            ..group
        };
        assert_eq!(
            session_key("main", "main", DmScope::Main, &topic),
            "agent:main:telegram:group:-100200:topic:42"
        );
        let room = Origin {
            channel: "slack",
            account: "default",
            kind: PeerKind::Channel,
            peer: "C0ABC",
            thread: Some("1700000000.000100"),
        };
        assert_eq!(
            session_key("main", "main", DmScope::Main, &room),
            "agent:main:slack:channel:c0abc:thread:1700000000.000100"
        );
    }

    #[test]
    fn separators_in_ids_cannot_forge_another_key() {
        let evil = dm("sms", "+1555:group:x");
        assert_eq!(
            session_key("main", "main", DmScope::PerChannelPeer, &evil),
            "agent:main:sms:dm:+1555_group_x"
        );
        assert!(is_main("agent:main:main", "main", "main"));
        assert!(!is_main("agent:main:dm:1", "main", "main"));
    }
}
