//! What the fake Discord remembers: users, channels and messages, the slash commands and
//! interactions, the Gateway's sessions (each with its log of dispatches, which is what a
//! Resume replays) and open connections, the faults waiting for their route, and the
//! records. Pure bookkeeping: the HTTP and WebSocket sides live in `rest.rs` and
//! `gateway.rs`.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde_json::{Value, json};

use super::{
    ChannelKind, DiscordChannel, DiscordUser, GatewayConnection, InteractionResponse, RecordedCall,
    SentMessage, intents,
};
use crate::common::{Clock, Faults, civil};
use crate::conn::Conn;

/// Discord's epoch (2015-01-01) in Unix milliseconds, the origin of snowflakes.
const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;

/// Something the handle asks of an open Gateway connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Control {
    /// Close the TCP connection without a close frame.
    Drop,
    /// A close frame with this code and reason.
    Close(u16, String),
    /// op 7 Reconnect.
    Reconnect,
    /// op 9 Invalid Session, `d` = resumable.
    InvalidSession(bool),
    /// op 1: the server asks for a heartbeat now.
    RequestHeartbeat,
    /// A text frame as is (for malformed payloads).
    Raw(String),
}

/// A Gateway session: what Identify started and Resume continues.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) intents: u64,
    /// The last sequence number given.
    pub(crate) seq: u64,
    /// Every dispatch of the session, in order (`op` 0 payloads with `s`).
    pub(crate) log: Vec<(u64, Value)>,
    /// Invalidated sessions cannot be resumed and get no more dispatches.
    pub(crate) valid: bool,
    /// The connection the session is attached to now.
    pub(crate) conn: Option<u64>,
}

/// An open Gateway connection.
#[derive(Debug)]
pub(crate) struct OpenConn {
    pub(crate) kill: Conn,
    pub(crate) controls: VecDeque<Control>,
}

/// The Gateway's side of the state.
#[derive(Debug)]
pub(crate) struct Gateway {
    pub(crate) heartbeat_interval_ms: u64,
    /// Which privileged intents the app has turned on (Identify with others gets 4014).
    pub(crate) privileged_allowed: u64,
    pub(crate) ack_heartbeats: bool,
    pub(crate) sessions: BTreeMap<String, Session>,
    pub(crate) open: BTreeMap<u64, OpenConn>,
    /// One record per connection ever made; connection `n` is at `n - 1`.
    pub(crate) records: Vec<GatewayConnection>,
    pub(crate) identifies: u64,
}

/// An interaction the fake created, as its token allows answering it.
#[derive(Debug, Clone)]
pub(crate) struct Interaction {
    pub(crate) token: String,
    pub(crate) channel_id: String,
    /// The callback type it was answered with.
    pub(crate) answered: Option<u8>,
    /// The message of the original response, once there is one.
    pub(crate) original: Option<String>,
}

pub(crate) struct State {
    pub(crate) token: String,
    pub(crate) app_id: String,
    pub(crate) bot: DiscordUser,
    pub(crate) clock: Clock,
    snowflake_seq: u64,
    users: HashMap<String, DiscordUser>,
    pub(crate) channels: HashMap<String, DiscordChannel>,
    pub(crate) messages: HashMap<String, Value>,
    pub(crate) commands: Vec<Value>,
    pub(crate) interactions: HashMap<String, Interaction>,
    pub(crate) gw: Gateway,
    pub(crate) faults: Faults,
    pub(crate) calls: Vec<RecordedCall>,
    pub(crate) sent: Vec<SentMessage>,
    pub(crate) responses: Vec<InteractionResponse>,
}

impl State {
    pub(crate) fn new(token: &str) -> Self {
        let clock = Clock::start();
        let app_id = "1100000000000000001".to_owned();
        Self {
            token: token.to_owned(),
            bot: DiscordUser::bot(&app_id, "Pincer"),
            app_id,
            clock,
            snowflake_seq: 0,
            users: HashMap::new(),
            channels: HashMap::new(),
            messages: HashMap::new(),
            commands: Vec::new(),
            interactions: HashMap::new(),
            gw: Gateway {
                heartbeat_interval_ms: 41_250,
                privileged_allowed: intents::MESSAGE_CONTENT,
                ack_heartbeats: true,
                sessions: BTreeMap::new(),
                open: BTreeMap::new(),
                records: Vec::new(),
                identifies: 0,
            },
            faults: Faults::default(),
            calls: Vec::new(),
            sent: Vec::new(),
            responses: Vec::new(),
        }
    }

    /// A new snowflake: milliseconds since Discord's epoch, then a counter.
    pub(crate) fn snowflake(&mut self) -> String {
        self.snowflake_seq += 1;
        let ms = (self.clock.now_ms() - DISCORD_EPOCH_MS).max(0) as u64;
        ((ms << 22) | (1 << 17) | (self.snowflake_seq & 0xfff)).to_string()
    }

    /// Now as Discord writes timestamps: `2024-01-01T00:00:00.000000+00:00`.
    pub(crate) fn timestamp(&self) -> String {
        let ms = self.clock.now_ms();
        let (y, mo, d, h, mi, s, _) = civil(ms.div_euclid(1000));
        format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}+00:00",
            ms.rem_euclid(1000) * 1000
        )
    }

    pub(crate) fn add_user(&mut self, u: DiscordUser) {
        self.users.insert(u.id.clone(), u);
    }

    /// The user with this id (the bot's included); `user<id>` if none was added.
    pub(crate) fn user(&mut self, id: &str) -> DiscordUser {
        if id == self.bot.id {
            return self.bot.clone();
        }
        self.users
            .entry(id.to_owned())
            .or_insert_with(|| DiscordUser::new(id, &format!("user{id}")))
            .clone()
    }

    /// Users mentioned as `<@id>` or `<@!id>` in `content`, as `mentions` lists them.
    pub(crate) fn mentions(&mut self, content: &str) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        let mut rest = content;
        while let Some(i) = rest.find("<@") {
            rest = &rest[i + 2..];
            let id_part = rest.strip_prefix('!').unwrap_or(rest);
            let digits: String = id_part.chars().take_while(char::is_ascii_digit).collect();
            if !digits.is_empty() && id_part[digits.len()..].starts_with('>') {
                let u = self.user(&digits).to_json();
                if !out.contains(&u) {
                    out.push(u);
                }
            }
        }
        out
    }

    /// A message object, stored. `reference` is the message replied to.
    pub(crate) fn new_message(
        &mut self,
        channel: &DiscordChannel,
        author: &DiscordUser,
        content: &str,
        reference: Option<&str>,
    ) -> Value {
        let id = self.snowflake();
        let mentions = self.mentions(content);
        let mut m = json!({
            "id": id,
            "channel_id": channel.id,
            "author": author.to_json(),
            "content": content,
            "timestamp": self.timestamp(),
            "edited_timestamp": null,
            "tts": false,
            "mention_everyone": content.contains("@everyone"),
            "mentions": mentions,
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": false,
            "type": 0,
            "flags": 0,
            "components": [],
        });
        if let ChannelKind::Guild { guild_id } = &channel.kind {
            m["guild_id"] = json!(guild_id);
            if !author.bot {
                m["member"] = json!({
                    "roles": [], "joined_at": "2024-01-01T00:00:00.000000+00:00",
                    "deaf": false, "mute": false, "flags": 0, "nick": null,
                });
            }
        }
        if let Some(r) = reference.and_then(|r| self.messages.get(r).cloned()) {
            m["type"] = json!(19);
            let mut mref = json!({"type": 0, "message_id": r["id"], "channel_id": r["channel_id"]});
            if let Some(g) = r.get("guild_id") {
                mref["guild_id"] = g.clone();
            }
            m["message_reference"] = mref;
            let mut referenced = r;
            if let Some(o) = referenced.as_object_mut() {
                o.remove("referenced_message");
            }
            m["referenced_message"] = referenced;
        }
        self.messages.insert(id, m.clone());
        m
    }

    /// Dispatches an event to every valid session whose intents allow it. A message's
    /// content is emptied for sessions without MESSAGE_CONTENT unless it is a DM, mentions
    /// the bot, or is the bot's own, as Discord does.
    pub(crate) fn dispatch(&mut self, t: &str, d: &Value) {
        let needed = match (t, d.get("guild_id")) {
            ("MESSAGE_CREATE" | "MESSAGE_UPDATE" | "MESSAGE_DELETE", Some(_)) => {
                Some(intents::GUILD_MESSAGES)
            }
            ("MESSAGE_CREATE" | "MESSAGE_UPDATE" | "MESSAGE_DELETE", None) => {
                Some(intents::DIRECT_MESSAGES)
            }
            _ => None,
        };
        let bot_id = self.bot.id.clone();
        let privileged_view = t.starts_with("MESSAGE_")
            && d.get("guild_id").is_some()
            && d["author"]["id"] != json!(bot_id)
            && !d["mentions"]
                .as_array()
                .is_some_and(|m| m.iter().any(|u| u["id"] == json!(bot_id)));
        for s in self.gw.sessions.values_mut().filter(|s| s.valid) {
            if needed.is_some_and(|n| s.intents & n == 0) {
                continue;
            }
            let mut data = d.clone();
            if privileged_view && s.intents & intents::MESSAGE_CONTENT == 0 {
                data["content"] = json!("");
                data["embeds"] = json!([]);
                data["attachments"] = json!([]);
                data["components"] = json!([]);
            }
            s.seq += 1;
            let payload = json!({"op": 0, "s": s.seq, "t": t, "d": data});
            s.log.push((s.seq, payload));
        }
    }

    /// Queues a control for every open connection.
    pub(crate) fn control_all(&mut self, c: &Control) {
        for conn in self.gw.open.values_mut() {
            conn.controls.push_back(c.clone());
        }
    }

    pub(crate) fn record(&mut self, conn_id: u64) -> Option<&mut GatewayConnection> {
        self.gw.records.get_mut(conn_id.checked_sub(1)? as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(st: &mut State, id: &str, intents: u64) {
        st.gw.sessions.insert(
            id.into(),
            Session {
                intents,
                seq: 0,
                log: Vec::new(),
                valid: true,
                conn: None,
            },
        );
    }

    #[test]
    fn dispatch_follows_intents_and_message_content() {
        let mut st = State::new("t");
        session(
            &mut st,
            "all",
            intents::GUILD_MESSAGES | intents::DIRECT_MESSAGES | intents::MESSAGE_CONTENT,
        );
        session(&mut st, "no-content", intents::GUILD_MESSAGES);
        session(&mut st, "dm-only", intents::DIRECT_MESSAGES);
        let guild = DiscordChannel::guild("10", "20", "general");
        let dm = DiscordChannel::dm("30", "5");
        let author = st.user("5");
        let m = st.new_message(&guild, &author, "hello", None);
        st.dispatch("MESSAGE_CREATE", &m);
        let mention = format!("<@{}> hi", st.bot.id);
        let m2 = st.new_message(&guild, &author, &mention, None);
        st.dispatch("MESSAGE_CREATE", &m2);
        let m3 = st.new_message(&dm, &author, "psst", None);
        st.dispatch("MESSAGE_CREATE", &m3);
        let contents = |s: &str| -> Vec<String> {
            st.gw.sessions[s]
                .log
                .iter()
                .map(|(_, p)| p["d"]["content"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(contents("all"), ["hello", mention.as_str(), "psst"]);
        assert_eq!(contents("no-content"), ["", mention.as_str()]);
        assert_eq!(contents("dm-only"), ["psst"]);
        let seqs: Vec<u64> = st.gw.sessions["all"].log.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, [1, 2, 3]);
    }

    #[test]
    fn replies_reference_their_message_and_mentions_resolve() {
        let mut st = State::new("t");
        let guild = DiscordChannel::guild("10", "20", "general");
        let author = st.user("5");
        let first = st.new_message(&guild, &author, "<@!7> and <@7> and <@x>", None);
        assert_eq!(first["mentions"].as_array().unwrap().len(), 1);
        assert_eq!(first["mentions"][0]["username"], "user7");
        let id = first["id"].as_str().unwrap().to_owned();
        let reply = st.new_message(&guild, &author, "re", Some(&id));
        assert_eq!(reply["type"], 19);
        assert_eq!(reply["message_reference"]["message_id"], json!(id));
        assert_eq!(reply["referenced_message"]["content"], first["content"]);
        assert!(st.snowflake().parse::<u64>().unwrap() > id.parse::<u64>().unwrap());
    }
}
