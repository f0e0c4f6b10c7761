//! The pure half of the Discord adapter: Gateway payloads (`MESSAGE_CREATE`,
//! `INTERACTION_CREATE`) as [`InboundMessage`]s, what a close code means, and config
//! values (intents, URLs), tested without a network.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::super::actor::ReceiveError;
use super::super::types::{InboundMessage, MediaRef};
use crate::session::keys::PeerKind;

/// Gateway intents (bit flags of Identify's `intents`).
pub mod intents {
    pub const GUILDS: u64 = 1 << 0;
    pub const GUILD_MESSAGES: u64 = 1 << 9;
    pub const DIRECT_MESSAGES: u64 = 1 << 12;
    /// Privileged: enable it in the Developer Portal.
    pub const MESSAGE_CONTENT: u64 = 1 << 15;
    pub const DEFAULT: u64 = GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES | MESSAGE_CONTENT;

    /// The names `channels.discord.intents` may list.
    pub const NAMES: &[(&str, u64)] = &[
        ("GUILDS", GUILDS),
        ("GUILD_MEMBERS", 1 << 1),
        ("GUILD_MESSAGES", GUILD_MESSAGES),
        ("GUILD_MESSAGE_REACTIONS", 1 << 10),
        ("DIRECT_MESSAGES", DIRECT_MESSAGES),
        ("DIRECT_MESSAGE_REACTIONS", 1 << 13),
        ("MESSAGE_CONTENT", MESSAGE_CONTENT),
    ];
}

/// The bot user (its id is what mentions and its own messages are recognised by).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BotUser {
    pub id: String,
    pub name: String,
}

/// How a Gateway connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Reconnect and resume the session.
    Resume(String),
    /// Reconnect with a new session.
    Reidentify(String),
    /// Stop the account (or let the ChannelActor retry, for a transient error).
    Stop(ReceiveError),
}

/// A slash command invocation: the interaction to answer and the command as a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlashCommand {
    pub interaction_id: String,
    pub token: String,
    pub app_id: String,
    pub msg: InboundMessage,
}

/// `intents`: a number, or a list of names (see [`intents::NAMES`]); the default without.
pub fn parse_intents(v: Option<&Value>) -> Result<u64, String> {
    match v {
        None | Some(Value::Null) => Ok(intents::DEFAULT),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| format!("is {n}; use a positive number or a list of names")),
        Some(Value::Array(items)) => items.iter().try_fold(0, |acc, i| {
            let name = i.as_str().unwrap_or_default().to_ascii_uppercase();
            intents::NAMES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, bit)| acc | bit)
                .ok_or_else(|| {
                    let known: Vec<&str> = intents::NAMES.iter().map(|(n, _)| *n).collect();
                    format!("lists {i}; known: {}", known.join(", "))
                })
        }),
        Some(other) => Err(format!(
            "is {other}; use a number or a list of names like [\"GUILDS\", \"DIRECT_MESSAGES\"]"
        )),
    }
}

/// What a close code from Discord means for the account.
pub fn closed(code: Option<u16>, intents: u64) -> Ended {
    let Some(code) = code else {
        return Ended::Resume("closed without a code".into());
    };
    let stop = |m: String| Ended::Stop(ReceiveError::Permanent(m));
    match code {
        4004 => stop(
            "Discord refused the bot token (Gateway close 4004, authentication failed); set channels.discord.botToken (Developer Portal > your app > Bot > Reset Token) or DISCORD_BOT_TOKEN".into(),
        ),
        4013 => stop(format!(
            "Discord refused the Gateway intents {intents} (close 4013, invalid intents); fix channels.discord.intents"
        )),
        4014 => stop(format!(
            "Discord refused privileged Gateway intents {intents} (close 4014, disallowed intents); enable Message Content Intent in the Developer Portal (your app > Bot > Privileged Gateway Intents), or remove MESSAGE_CONTENT from channels.discord.intents"
        )),
        4010 | 4011 => stop(format!(
            "Discord refused the Gateway shard (close {code}); this bot is in too many guilds for one connection, which Pincer does not shard yet"
        )),
        4012 => stop("Discord refused Gateway API version 10 (close 4012)".into()),
        4007 | 4009 => Ended::Reidentify(format!("session expired (close {code})")),
        _ => Ended::Resume(format!("closed by Discord (close {code})")),
    }
}

/// The Gateway URL with a path and `?v=10&encoding=json`.
pub fn with_query(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("wss", url));
    let rest = if rest.contains('/') {
        rest.to_owned()
    } else {
        format!("{rest}/")
    };
    if rest.contains('?') {
        format!("{scheme}://{rest}")
    } else {
        format!("{scheme}://{rest}?v=10&encoding=json")
    }
}

pub fn is_snowflake(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
}

/// Milliseconds since 1970 from a snowflake (Discord's epoch is 2015).
pub fn snowflake_ms(id: &str) -> Option<u64> {
    id.parse::<u64>()
        .ok()
        .map(|s| (s >> 22) + 1_420_070_400_000)
}

/// `retry_after` of a 429's JSON (seconds, fractional), else `Retry-After`; 1 s if neither.
pub fn retry_after(body: &Value, headers: &reqwest::header::HeaderMap) -> Duration {
    let secs = body["retry_after"].as_f64().or_else(|| {
        headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
    });
    Duration::from_secs_f64(secs.unwrap_or(1.0).clamp(0.0, 300.0))
}

/// Where a message is: (chat id, thread id), a thread counting as its parent channel.
pub fn place(channel_id: &str, threads: &HashMap<String, String>) -> (String, Option<String>) {
    match threads.get(channel_id) {
        Some(parent) => (parent.clone(), Some(channel_id.to_owned())),
        None => (channel_id.to_owned(), None),
    }
}

pub fn display_name(user: &Value, member: &Value) -> String {
    member["nick"]
        .as_str()
        .or(user["global_name"].as_str())
        .or(user["username"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// A `MESSAGE_CREATE` as an [`InboundMessage`]; `None` for what the bot does not answer
/// (its own and other bots' messages, webhooks, system messages, empty ones).
pub fn normalise(
    account: &str,
    d: &Value,
    me: &BotUser,
    threads: &HashMap<String, String>,
) -> Option<InboundMessage> {
    let author = &d["author"];
    let sender = author["id"].as_str()?;
    if author["bot"] == true || sender == me.id || d.get("webhook_id").is_some() {
        return None;
    }
    // 0 default, 19 reply; joins, pins, boosts... are not someone talking.
    if !matches!(d["type"].as_u64(), Some(0 | 19)) {
        return None;
    }
    let message_id = d["id"].as_str()?.to_owned();
    let channel_id = d["channel_id"].as_str()?;
    let guild_id = d["guild_id"].as_str().map(str::to_owned);
    let mut text = d["content"].as_str().unwrap_or_default().to_owned();
    let mentioned_by_tag = !me.id.is_empty()
        && d["mentions"]
            .as_array()
            .is_some_and(|m| m.iter().any(|u| u["id"] == me.id.as_str()));
    let replied_to_bot =
        !me.id.is_empty() && d["referenced_message"]["author"]["id"] == me.id.as_str();
    if !me.id.is_empty() {
        for tag in [format!("<@{}>", me.id), format!("<@!{}>", me.id)] {
            text = text.replace(&tag, &format!("@{}", me.name));
        }
    }
    let media: Vec<MediaRef> = d["attachments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let mime = a["content_type"].as_str().map(str::to_owned);
            let kind = match mime.as_deref().and_then(|m| m.split('/').next()) {
                Some("image") => "image",
                Some("video") => "video",
                Some("audio") => "audio",
                _ => "document",
            };
            Some(MediaRef {
                kind: kind.into(),
                id: a["url"].as_str().or(a["id"].as_str())?.to_owned(),
                name: a["filename"].as_str().map(str::to_owned),
                mime,
                size: a["size"].as_u64(),
            })
        })
        .collect();
    let text = text.trim().to_owned();
    if text.is_empty() && media.is_empty() {
        return None;
    }
    let (chat_id, thread) = place(channel_id, threads);
    Some(InboundMessage {
        channel: "discord".into(),
        account: account.to_owned(),
        peer_kind: if guild_id.is_some() {
            PeerKind::Channel
        } else {
            PeerKind::Dm
        },
        chat_id,
        sender_id: sender.to_owned(),
        sender_name: display_name(author, &d["member"]),
        text,
        media,
        reply_to: d["message_reference"]["message_id"]
            .as_str()
            .map(str::to_owned),
        thread,
        timestamp_ms: snowflake_ms(&message_id).unwrap_or_else(crate::gateway::now_ms),
        message_id,
        mentioned: mentioned_by_tag || replied_to_bot,
        guild_id,
        team_id: None,
    })
}

/// An `INTERACTION_CREATE` of a slash command (type 2) as the text `/name options…`.
pub fn command(
    account: &str,
    d: &Value,
    threads: &HashMap<String, String>,
) -> Option<SlashCommand> {
    if d["type"] != 2 {
        return None;
    }
    let id = d["id"].as_str()?;
    let name = d["data"]["name"].as_str()?;
    let user = if d["member"]["user"].is_object() {
        &d["member"]["user"]
    } else {
        &d["user"]
    };
    let sender = user["id"].as_str()?;
    let channel_id = d["channel_id"].as_str().or(d["channel"]["id"].as_str())?;
    let mut text = format!("/{name}");
    for o in d["data"]["options"].as_array().into_iter().flatten() {
        match &o["value"] {
            Value::String(s) => text.push_str(&format!(" {s}")),
            Value::Null => {}
            v => text.push_str(&format!(" {v}")),
        }
    }
    let guild_id = d["guild_id"].as_str().map(str::to_owned);
    let (chat_id, thread) = place(channel_id, threads);
    let msg = InboundMessage {
        channel: "discord".into(),
        account: account.to_owned(),
        peer_kind: if guild_id.is_some() {
            PeerKind::Channel
        } else {
            PeerKind::Dm
        },
        chat_id,
        sender_id: sender.to_owned(),
        sender_name: display_name(user, &d["member"]),
        text,
        media: Vec::new(),
        reply_to: None,
        thread,
        timestamp_ms: snowflake_ms(id).unwrap_or_else(crate::gateway::now_ms),
        message_id: format!("interaction:{id}"),
        // A command is addressed to the bot.
        mentioned: true,
        guild_id,
        team_id: None,
    };
    Some(SlashCommand {
        interaction_id: id.to_owned(),
        token: d["token"].as_str()?.to_owned(),
        app_id: d["application_id"].as_str()?.to_owned(),
        msg,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn me() -> BotUser {
        BotUser {
            id: "100".into(),
            name: "pincer".into(),
        }
    }

    fn message(extra: Value) -> Value {
        let mut m = json!({
            "id": "1234567890123456789", "channel_id": "501", "type": 0,
            "author": {"id": "42", "username": "ann", "global_name": "Ann"},
            "content": "hello", "mentions": [], "attachments": [],
        });
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m
    }

    #[test]
    fn a_dm_becomes_an_inbound_message() {
        let m = normalise("default", &message(json!({})), &me(), &HashMap::new()).unwrap();
        assert_eq!(m.peer_kind, PeerKind::Dm);
        assert_eq!((m.chat_id.as_str(), m.sender_id.as_str()), ("501", "42"));
        assert_eq!(m.sender_name, "Ann");
        assert_eq!(m.message_id, "1234567890123456789");
        assert_eq!(
            m.timestamp_ms,
            (1234567890123456789u64 >> 22) + 1_420_070_400_000
        );
        assert!(!m.mentioned && m.guild_id.is_none() && m.thread.is_none());
    }

    #[test]
    fn guild_mentions_replies_threads_and_attachments() {
        let threads = HashMap::from([("777".to_owned(), "501".to_owned())]);
        let d = message(json!({
            "guild_id": "9", "channel_id": "777", "type": 19,
            "member": {"nick": "Annie"},
            "content": "<@100> look at this",
            "mentions": [{"id": "100"}],
            "message_reference": {"message_id": "55"},
            "attachments": [{"id": "a1", "filename": "cat.png", "content_type": "image/png",
                "size": 12, "url": "https://cdn.example/cat.png"}],
        }));
        let m = normalise("default", &d, &me(), &threads).unwrap();
        assert_eq!(m.peer_kind, PeerKind::Channel);
        assert_eq!(m.guild_id.as_deref(), Some("9"));
        assert_eq!(
            (m.chat_id.as_str(), m.thread.as_deref()),
            ("501", Some("777"))
        );
        assert_eq!(m.text, "@pincer look at this");
        assert_eq!(m.sender_name, "Annie");
        assert_eq!(m.reply_to.as_deref(), Some("55"));
        assert!(m.mentioned);
        assert_eq!(m.media[0].kind, "image");
        assert_eq!(m.media[0].id, "https://cdn.example/cat.png");
        assert_eq!(m.media[0].name.as_deref(), Some("cat.png"));
        // A reply to the bot is a mention too.
        let d = message(json!({"guild_id": "9", "type": 19,
            "referenced_message": {"author": {"id": "100"}}}));
        assert!(
            normalise("default", &d, &me(), &HashMap::new())
                .unwrap()
                .mentioned
        );
        let d = message(json!({"guild_id": "9"}));
        assert!(
            !normalise("default", &d, &me(), &HashMap::new())
                .unwrap()
                .mentioned
        );
    }

    #[test]
    fn own_bot_webhook_system_and_empty_messages_are_ignored() {
        for extra in [
            json!({"author": {"id": "100", "username": "pincer"}}),
            json!({"author": {"id": "7", "username": "other", "bot": true}}),
            json!({"webhook_id": "3"}),
            json!({"type": 7}),
            json!({"content": "  "}),
        ] {
            let d = message(extra.clone());
            assert_eq!(
                normalise("default", &d, &me(), &HashMap::new()),
                None,
                "{extra}"
            );
        }
    }

    #[test]
    fn slash_commands_become_command_text() {
        let d = json!({"id": "88", "type": 2, "token": "tok", "application_id": "100",
            "channel_id": "501", "guild_id": "9",
            "member": {"user": {"id": "42", "username": "ann"}},
            "data": {"name": "new", "options": [{"name": "text", "type": 3, "value": "hi there"}]}});
        let Some(SlashCommand {
            interaction_id,
            token,
            app_id,
            msg,
        }) = command("default", &d, &HashMap::new())
        else {
            panic!("not a command");
        };
        assert_eq!(
            (interaction_id.as_str(), token.as_str(), app_id.as_str()),
            ("88", "tok", "100")
        );
        assert_eq!(msg.text, "/new hi there");
        assert_eq!(msg.message_id, "interaction:88");
        assert_eq!(msg.sender_id, "42");
        assert_eq!(msg.peer_kind, PeerKind::Channel);
        assert!(msg.mentioned);
        // Pings and components are not commands.
        assert!(command("default", &json!({"type": 1, "id": "1"}), &HashMap::new()).is_none());
    }

    #[test]
    fn close_codes_decide_between_resume_new_session_and_stop() {
        let permanent = |e: Ended| match e {
            Ended::Stop(ReceiveError::Permanent(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(permanent(closed(Some(4004), 0)).contains("channels.discord.botToken"));
        assert!(permanent(closed(Some(4013), 1)).contains("channels.discord.intents"));
        assert!(permanent(closed(Some(4014), 1)).contains("Message Content Intent"));
        assert!(matches!(
            closed(Some(4011), 0),
            Ended::Stop(ReceiveError::Permanent(_))
        ));
        assert!(matches!(closed(Some(4009), 0), Ended::Reidentify(_)));
        assert!(matches!(closed(Some(4007), 0), Ended::Reidentify(_)));
        for code in [1000, 1001, 4000, 4001, 4008] {
            assert!(matches!(closed(Some(code), 0), Ended::Resume(_)), "{code}");
        }
        assert!(matches!(closed(None, 0), Ended::Resume(_)));
    }

    #[test]
    fn intents_urls_and_retry_after() {
        assert_eq!(parse_intents(None), Ok(intents::DEFAULT));
        assert_eq!(parse_intents(Some(&json!(513))), Ok(513));
        assert_eq!(
            parse_intents(Some(&json!(["guilds", "DIRECT_MESSAGES"]))),
            Ok(1 | (1 << 12))
        );
        assert!(
            parse_intents(Some(&json!(["EVERYTHING"])))
                .unwrap_err()
                .contains("known")
        );
        assert!(parse_intents(Some(&json!("all"))).is_err());
        assert_eq!(
            with_query("wss://gateway.discord.gg"),
            "wss://gateway.discord.gg/?v=10&encoding=json"
        );
        assert_eq!(
            with_query("ws://h:1/resume"),
            "ws://h:1/resume?v=10&encoding=json"
        );
        assert_eq!(with_query("ws://h/?v=10"), "ws://h/?v=10");
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(
            retry_after(&json!({"retry_after": 0.25}), &h),
            Duration::from_millis(250)
        );
        h.insert(reqwest::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&json!({}), &h), Duration::from_secs(3));
        assert_eq!(
            retry_after(&json!({}), &reqwest::header::HeaderMap::new()),
            Duration::from_secs(1)
        );
        assert!(is_snowflake("123") && !is_snowflake("interaction:1") && !is_snowflake(""));
    }
}
