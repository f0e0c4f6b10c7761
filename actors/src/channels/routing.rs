//! Which agent answers an inbound message: OpenClaw's `bindings[]`. Pure functions; a
//! channel actor calls [`route`] with what it knows about the message, then builds the
//! session key ([`crate::session::keys`]) for the agent it got.
//!
//! ```json
//! "bindings": [
//!   { "agentId": "work", "match": { "channel": "slack", "teamId": "T123" } },
//!   { "agentId": "mum",  "match": { "channel": "telegram",
//!                                   "peer": { "kind": "dm", "id": "4242" } } }
//! ]
//! ```
//!
//! A binding matches when every field it sets equals the message's (channel names
//! case-insensitively, ids exactly; an `accountId` of `"*"` means any account, like
//! leaving it out). Of the matching bindings the most specific wins: one naming the peer,
//! then one naming the guild or team, then the account, then the channel alone; between
//! equally specific ones the first in the list. No match: the default agent.
//!
//! Note for OpenClaw users: OpenClaw reads a binding *without* `accountId` as "the
//! default account only"; here it means "every account", as written above.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

pub use crate::session::keys::PeerKind;

/// One entry of `bindings[]`: messages that match go to `agent_id`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Binding {
    pub agent_id: String,
    pub r#match: Match,
}

/// What a binding requires of a message; `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Match {
    pub channel: String,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub peer: Option<PeerMatch>,
    #[serde(default)]
    pub guild_id: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
}

/// A specific conversation: a DM with someone, a group, a channel (room).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerMatch {
    #[serde(deserialize_with = "peer_kind")]
    pub kind: PeerKind,
    pub id: String,
}

/// What the channel knows about an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInput<'a> {
    pub channel: &'a str,
    pub account_id: &'a str,
    pub peer_kind: PeerKind,
    /// The sender for DMs, the group or room id otherwise.
    pub peer_id: &'a str,
    /// Discord server.
    pub guild_id: Option<&'a str>,
    /// Slack workspace.
    pub team_id: Option<&'a str>,
}

/// How specific a binding is; more specific bindings win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Specificity {
    Channel,
    Account,
    GuildOrTeam,
    Peer,
}

/// Why the agent was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    /// `bindings[index]`.
    Binding {
        index: usize,
        specificity: Specificity,
    },
    /// No binding matched.
    Default,
}

/// The agent that answers, and why (for logs and `openclaw agents list --bindings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<'a> {
    pub agent_id: &'a str,
    pub matched_by: MatchedBy,
}

/// Picks the agent for `input`: the most specific matching binding, the earliest among
/// equals, else `default_agent`.
pub fn route<'a>(bindings: &'a [Binding], input: &RouteInput, default_agent: &'a str) -> Route<'a> {
    let mut best: Option<(usize, Specificity)> = None;
    for (index, b) in bindings.iter().enumerate() {
        if let Some(s) = specificity(&b.r#match, input)
            && best.is_none_or(|(_, top)| s > top)
        {
            best = Some((index, s));
        }
    }
    match best {
        Some((index, specificity)) => Route {
            agent_id: &bindings[index].agent_id,
            matched_by: MatchedBy::Binding { index, specificity },
        },
        None => Route {
            agent_id: default_agent,
            matched_by: MatchedBy::Default,
        },
    }
}

/// How specifically `m` matches `input`, or None when it does not.
fn specificity(m: &Match, input: &RouteInput) -> Option<Specificity> {
    let account = m.account_id.as_deref().filter(|a| *a != ANY_ACCOUNT);
    let matches = m.channel.trim().eq_ignore_ascii_case(input.channel.trim())
        && account.is_none_or(|a| a == input.account_id)
        && m.peer
            .as_ref()
            .is_none_or(|p| p.kind == input.peer_kind && p.id == input.peer_id)
        && m.guild_id
            .as_deref()
            .is_none_or(|g| Some(g) == input.guild_id)
        && m.team_id
            .as_deref()
            .is_none_or(|t| Some(t) == input.team_id);
    if !matches {
        None
    } else if m.peer.is_some() {
        Some(Specificity::Peer)
    } else if m.guild_id.is_some() || m.team_id.is_some() {
        Some(Specificity::GuildOrTeam)
    } else if account.is_some() {
        Some(Specificity::Account)
    } else {
        Some(Specificity::Channel)
    }
}

/// `accountId` meaning every account of the channel.
const ANY_ACCOUNT: &str = "*";

/// Reads `bindings` from the configuration (`null` or absent: none), saying which entry
/// and which field is wrong. Stricter than the serde derive: it also refuses empty
/// strings, which would match nothing.
pub fn parse_bindings(v: &Value) -> Result<Vec<Binding>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(entries) => entries
            .iter()
            .enumerate()
            .map(|(i, e)| parse_binding(e, &format!("bindings[{i}]")))
            .collect(),
        other => Err(format!(
            "bindings must be an array of {{agentId, match}}, not {}",
            type_name(other)
        )),
    }
}

fn parse_binding(v: &Value, at: &str) -> Result<Binding, String> {
    let obj = object(v, at, "an object {agentId, match}")?;
    known_keys(obj, at, &["agentId", "match"])?;
    let agent_id = required_str(obj, at, "agentId")?;
    let m_at = format!("{at}.match");
    let m = obj
        .get("match")
        .filter(|m| !m.is_null())
        .ok_or_else(|| format!("{at}.match is missing (it needs at least a channel)"))?;
    let m = object(
        m,
        &m_at,
        "an object {channel, accountId?, peer?, guildId?, teamId?}",
    )?;
    known_keys(
        m,
        &m_at,
        &["channel", "accountId", "peer", "guildId", "teamId"],
    )?;
    let peer = match m.get("peer").filter(|p| !p.is_null()) {
        None => None,
        Some(p) => Some(parse_peer(p, &format!("{m_at}.peer"))?),
    };
    Ok(Binding {
        agent_id,
        r#match: Match {
            channel: required_str(m, &m_at, "channel")?,
            account_id: optional_str(m, &m_at, "accountId")?,
            peer,
            guild_id: optional_str(m, &m_at, "guildId")?,
            team_id: optional_str(m, &m_at, "teamId")?,
        },
    })
}

fn parse_peer(v: &Value, at: &str) -> Result<PeerMatch, String> {
    let obj = object(v, at, "an object {kind, id}")?;
    known_keys(obj, at, &["kind", "id"])?;
    let kind = required_str(obj, at, "kind")?;
    let kind = parse_peer_kind(&kind)
        .ok_or_else(|| format!("{at}.kind must be dm, group or channel (got {kind:?})"))?;
    Ok(PeerMatch {
        kind,
        id: required_str(obj, at, "id")?,
    })
}

/// `dm`, `group`, `channel`; newer OpenClaw configs spell a DM `direct`.
fn parse_peer_kind(s: &str) -> Option<PeerKind> {
    match s {
        "dm" | "direct" => Some(PeerKind::Dm),
        "group" => Some(PeerKind::Group),
        "channel" => Some(PeerKind::Channel),
        _ => None,
    }
}

fn peer_kind<'de, D: Deserializer<'de>>(d: D) -> Result<PeerKind, D::Error> {
    let s = String::deserialize(d)?;
    parse_peer_kind(&s).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "peer.kind must be dm, group or channel (got {s:?})"
        ))
    })
}

type Object = serde_json::Map<String, Value>;

fn object<'v>(v: &'v Value, at: &str, what: &str) -> Result<&'v Object, String> {
    v.as_object()
        .ok_or_else(|| format!("{at} must be {what}, not {}", type_name(v)))
}

/// Refuses keys this version does not know (OpenClaw's `roles`, `parentPeer`, a typo):
/// ignoring one would make the binding match more than its author meant.
fn known_keys(obj: &Object, at: &str, known: &[&str]) -> Result<(), String> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "{at}.{k} is not supported (known: {})",
            known.join(", ")
        )),
        None => Ok(()),
    }
}

fn required_str(obj: &Object, at: &str, key: &str) -> Result<String, String> {
    match string_field(obj, at, key)? {
        None => Err(format!("{at}.{key} is missing")),
        Some(s) if s.trim().is_empty() => Err(format!("{at}.{key} must not be empty")),
        Some(s) => Ok(s),
    }
}

fn optional_str(obj: &Object, at: &str, key: &str) -> Result<Option<String>, String> {
    match string_field(obj, at, key)? {
        Some(s) if s.trim().is_empty() => Err(format!(
            "{at}.{key} must not be empty (leave it out to match any)"
        )),
        other => Ok(other),
    }
}

/// A string field, `null` counting as absent.
fn string_field(obj: &Object, at: &str, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "{at}.{key} must be a string, not {} (quote numeric ids: \"{}\")",
            type_name(other),
            other
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bindings(v: Value) -> Vec<Binding> {
        match parse_bindings(&v) {
            Ok(b) => b,
            Err(e) => panic!("fixture does not parse: {e}"),
        }
    }

    fn input<'a>(
        channel: &'a str,
        account: &'a str,
        kind: PeerKind,
        peer: &'a str,
    ) -> RouteInput<'a> {
        RouteInput {
            channel,
            account_id: account,
            peer_kind: kind,
            peer_id: peer,
            guild_id: None,
            team_id: None,
        }
    }

    fn fixture() -> Vec<Binding> {
        bindings(json!([
            { "agentId": "chan", "match": { "channel": "discord" } },                       // 0
            { "agentId": "acct", "match": { "channel": "discord", "accountId": "bot2" } },  // 1
            { "agentId": "guild", "match": { "channel": "discord", "guildId": "G1" } },     // 2
            { "agentId": "peer", "match": { "channel": "discord",
                                            "peer": { "kind": "channel", "id": "C9" } } }, // 3
            { "agentId": "team", "match": { "channel": "slack", "teamId": "T1" } },         // 4
            { "agentId": "chan2", "match": { "channel": "discord" } },                      // 5
            { "agentId": "tg-dm", "match": { "channel": "Telegram",
                                             "peer": { "kind": "dm", "id": "42" } } },      // 6
            { "agentId": "any", "match": { "channel": "sms", "accountId": "*" } },          // 7
        ]))
    }

    #[test]
    fn most_specific_binding_wins() {
        let b = fixture();
        let discord = |account, peer, guild| RouteInput {
            guild_id: guild,
            ..input("discord", account, PeerKind::Channel, peer)
        };
        let slack = |team| RouteInput {
            team_id: team,
            ..input("slack", "default", PeerKind::Channel, "C1")
        };
        use Specificity::*;
        // (name, input, agent, Some((binding index, specificity)) or None for the default)
        type Case<'a> = (
            &'a str,
            RouteInput<'a>,
            &'a str,
            Option<(usize, Specificity)>,
        );
        let cases: Vec<Case> = vec![
            (
                "channel only",
                discord("default", "C1", None),
                "chan",
                Some((0, Channel)),
            ),
            (
                "account",
                discord("bot2", "C1", None),
                "acct",
                Some((1, Account)),
            ),
            (
                "guild beats account",
                discord("bot2", "C1", Some("G1")),
                "guild",
                Some((2, GuildOrTeam)),
            ),
            (
                "other guild",
                discord("default", "C1", Some("G2")),
                "chan",
                Some((0, Channel)),
            ),
            (
                "peer beats guild",
                discord("bot2", "C9", Some("G1")),
                "peer",
                Some((3, Peer)),
            ),
            ("team", slack(Some("T1")), "team", Some((4, GuildOrTeam))),
            ("no team, no slack binding", slack(None), "main", None),
            (
                "channel case-insensitive",
                input("TELEGRAM", "default", PeerKind::Dm, "42"),
                "tg-dm",
                Some((6, Peer)),
            ),
            (
                "peer id exact",
                input("telegram", "default", PeerKind::Dm, "420"),
                "main",
                None,
            ),
            (
                "peer kind must match",
                input("telegram", "default", PeerKind::Group, "42"),
                "main",
                None,
            ),
            (
                "wildcard account",
                input("sms", "+15550001", PeerKind::Dm, "+1555"),
                "any",
                Some((7, Channel)),
            ),
            (
                "unknown channel",
                input("whatsapp", "default", PeerKind::Dm, "1"),
                "main",
                None,
            ),
        ];
        for (name, inp, agent, by) in cases {
            let r = route(&b, &inp, "main");
            assert_eq!(r.agent_id, agent, "{name}");
            let want = match by {
                Some((index, specificity)) => MatchedBy::Binding { index, specificity },
                None => MatchedBy::Default,
            };
            assert_eq!(r.matched_by, want, "{name}");
        }
    }

    #[test]
    fn ties_go_to_the_earliest_binding() {
        let b = bindings(json!([
            { "agentId": "first", "match": { "channel": "slack", "accountId": "a" } },
            { "agentId": "second", "match": { "channel": "slack", "accountId": "a" } },
            { "agentId": "peer1", "match": { "channel": "slack", "accountId": "a",
                                             "peer": { "kind": "dm", "id": "U1" } } },
            { "agentId": "peer2", "match": { "channel": "slack",
                                             "peer": { "kind": "dm", "id": "U1" } } },
        ]));
        let cases = [
            (input("slack", "a", PeerKind::Dm, "U2"), "first"),
            (input("slack", "a", PeerKind::Dm, "U1"), "peer1"),
            (input("slack", "b", PeerKind::Dm, "U1"), "peer2"),
        ];
        for (inp, agent) in cases {
            assert_eq!(route(&b, &inp, "main").agent_id, agent, "{inp:?}");
        }
    }

    #[test]
    fn no_bindings_means_default() {
        let r = route(
            &[],
            &input("telegram", "default", PeerKind::Dm, "1"),
            "home",
        );
        assert_eq!(
            r,
            Route {
                agent_id: "home",
                matched_by: MatchedBy::Default
            }
        );
        assert_eq!(parse_bindings(&Value::Null), Ok(Vec::new()));
        assert_eq!(parse_bindings(&json!([])), Ok(Vec::new()));
    }

    #[test]
    fn bad_entries_say_where_and_what() {
        let ok = json!({ "agentId": "a", "match": { "channel": "slack" } });
        let cases = [
            (
                json!({}),
                "bindings must be an array of {agentId, match}, not an object",
            ),
            (
                json!([ok, ok, 3]),
                "bindings[2] must be an object {agentId, match}, not a number",
            ),
            (
                json!([{ "match": { "channel": "x" } }]),
                "bindings[0].agentId is missing",
            ),
            (
                json!([{ "agentId": "a" }]),
                "bindings[0].match is missing (it needs at least a channel)",
            ),
            (
                json!([{ "agentId": "a", "match": {} }]),
                "bindings[0].match.channel is missing",
            ),
            (
                json!([{ "agentId": "", "match": { "channel": "x" } }]),
                "bindings[0].agentId must not be empty",
            ),
            (
                json!([{ "agentId": "a", "match": { "channel": "x", "accountId": " " } }]),
                "bindings[0].match.accountId must not be empty (leave it out to match any)",
            ),
            (
                json!([ok, ok, { "agentId": "a", "match": { "channel": "x", "peer": { "kind": "user", "id": "1" } } }]),
                "bindings[2].match.peer.kind must be dm, group or channel (got \"user\")",
            ),
            (
                json!([{ "agentId": "a", "match": { "channel": "x", "peer": { "kind": "dm" } } }]),
                "bindings[0].match.peer.id is missing",
            ),
            (
                json!([{ "agentId": "a", "match": { "channel": "x", "guildId": 123 } }]),
                "bindings[0].match.guildId must be a string, not a number (quote numeric ids: \"123\")",
            ),
            (
                json!([{ "agentId": "a", "match": { "channel": "x", "roles": ["r"] } }]),
                "bindings[0].match.roles is not supported (known: channel, accountId, peer, guildId, teamId)",
            ),
            (
                json!([{ "agentId": "a", "match": { "channel": "x", "peer": "dm:1" } }]),
                "bindings[0].match.peer must be an object {kind, id}, not a string",
            ),
        ];
        for (v, want) in cases {
            assert_eq!(parse_bindings(&v), Err(want.to_owned()), "{v}");
        }
    }

    #[test]
    fn parse_and_serde_agree() {
        let v = json!([
            { "agentId": "a", "match": { "channel": "discord", "accountId": "x", "guildId": "1",
                                         "peer": { "kind": "direct", "id": "p" } } },
            { "agentId": "b", "match": { "channel": "slack", "teamId": "T", "accountId": null } },
        ]);
        let parsed = bindings(v.clone());
        let derived: Result<Vec<Binding>, _> = serde_json::from_value(v);
        assert_eq!(derived.ok(), Some(parsed.clone()));
        assert_eq!(
            parsed[0].r#match.peer.as_ref().map(|p| p.kind),
            Some(PeerKind::Dm)
        );
        let bad: Result<Vec<Binding>, _> = serde_json::from_value(
            json!([{ "agentId": "a", "match": { "channel": "x", "peer": { "kind": "x", "id": "1" } } }]),
        );
        assert!(bad.is_err());
    }
}
