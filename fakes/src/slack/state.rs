//! What the fake Slack remembers: the workspace (users, channels), every message by channel
//! and `ts`, where to deliver events, the faults waiting for their method, and the records
//! of calls, posts and deliveries.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value, json};

use super::{
    ApiCall, ChannelType, Delivery, PostedMessage, ResponseUrlPost, SlackChannel, SlackUser,
};
use crate::common::{Clock, Faults};

/// The ids of the fake workspace and its app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ids {
    pub(crate) team_id: String,
    pub(crate) team_domain: String,
    pub(crate) app_id: String,
    pub(crate) bot_id: String,
    pub(crate) bot_user_id: String,
    pub(crate) verification_token: String,
}

impl Default for Ids {
    fn default() -> Self {
        Self {
            team_id: "T0PINCER01".into(),
            team_domain: "pincer-test".into(),
            app_id: "A0PINCER01".into(),
            bot_id: "B0PINCER01".into(),
            bot_user_id: "U0PINCERBOT".into(),
            verification_token: "Jhj5dZrVaK7ZwHHjRyZWjbDl".into(),
        }
    }
}

pub(crate) struct State {
    pub(crate) ids: Ids,
    pub(crate) clock: Clock,
    users: BTreeMap<String, SlackUser>,
    channels: BTreeMap<String, SlackChannel>,
    /// Every message by (channel, ts), as `conversations.history` would return it.
    messages: HashMap<(String, String), Value>,
    /// The last `ts` handed out (seconds, sequence), so each is unique and increasing.
    last_ts: (i64, u32),
    next_event: u64,
    next_action: u64,
    /// The ids of the `response_url`s handed out with interactive payloads.
    pub(crate) response_ids: HashSet<String>,
    pub(crate) request_url: Option<String>,
    pub(crate) interactivity_url: Option<String>,
    pub(crate) faults: Faults,
    pub(crate) calls: Vec<ApiCall>,
    pub(crate) posted: Vec<PostedMessage>,
    pub(crate) deliveries: Vec<Delivery>,
    pub(crate) responses: Vec<ResponseUrlPost>,
}

impl State {
    pub(crate) fn new(ids: Ids) -> Self {
        let bot = SlackUser {
            id: ids.bot_user_id.clone(),
            name: "pincer".into(),
            real_name: "Pincer".into(),
            is_bot: true,
        };
        let mut users = BTreeMap::new();
        users.insert(bot.id.clone(), bot);
        Self {
            ids,
            clock: Clock::start(),
            users,
            channels: BTreeMap::new(),
            messages: HashMap::new(),
            last_ts: (0, 0),
            next_event: 0,
            next_action: 0,
            response_ids: HashSet::new(),
            request_url: None,
            interactivity_url: None,
            faults: Faults::default(),
            calls: Vec::new(),
            posted: Vec::new(),
            deliveries: Vec::new(),
            responses: Vec::new(),
        }
    }

    /// A new message timestamp, `"<unix seconds>.<6 digits>"`, later than every other.
    pub(crate) fn next_ts(&mut self) -> String {
        let now = self.clock.now();
        self.last_ts = if now > self.last_ts.0 {
            (now, 100)
        } else {
            (self.last_ts.0, self.last_ts.1 + 1)
        };
        format!("{}.{:06}", self.last_ts.0, self.last_ts.1)
    }

    pub(crate) fn next_event_id(&mut self) -> String {
        self.next_event += 1;
        format!("Ev0P{:08}", self.next_event)
    }

    /// A new `response_url` id, remembered so that POSTs to it are accepted.
    pub(crate) fn next_response_id(&mut self) -> String {
        self.next_action += 1;
        let id = format!("{}{:06}", self.ids.team_id, self.next_action);
        self.response_ids.insert(id.clone());
        id
    }

    pub(crate) fn add_user(&mut self, u: SlackUser) {
        self.users.insert(u.id.clone(), u);
    }

    /// The user with this id; one named `user<id>` if none was added.
    pub(crate) fn user(&mut self, id: &str) -> SlackUser {
        self.users
            .entry(id.to_owned())
            .or_insert_with(|| SlackUser::new(id, &format!("user{}", id.to_lowercase())))
            .clone()
    }

    pub(crate) fn known_user(&self, id: &str) -> Option<&SlackUser> {
        self.users.get(id)
    }

    pub(crate) fn add_channel(&mut self, c: SlackChannel) {
        self.channels.insert(c.id.clone(), c);
    }

    /// The channel with this id, made on first use with the kind its id prefix implies.
    pub(crate) fn channel(&mut self, id: &str, user: &str) -> SlackChannel {
        self.channels
            .entry(id.to_owned())
            .or_insert_with(|| {
                let mut c = SlackChannel::from_id(id);
                if c.kind == ChannelType::Im {
                    c.user = Some(user.to_owned());
                }
                c
            })
            .clone()
    }

    pub(crate) fn known_channel(&self, id: &str) -> Option<&SlackChannel> {
        self.channels.get(id)
    }

    pub(crate) fn message(&self, channel: &str, ts: &str) -> Option<&Value> {
        self.messages.get(&(channel.to_owned(), ts.to_owned()))
    }

    pub(crate) fn store_message(&mut self, channel: &str, m: &Value) {
        if let Some(ts) = m.get("ts").and_then(Value::as_str) {
            self.messages
                .insert((channel.to_owned(), ts.to_owned()), m.clone());
        }
    }

    /// The Events API envelope around `event`, with a new `event_id`.
    pub(crate) fn envelope(&mut self, event: Value) -> Value {
        let event_id = self.next_event_id();
        let ids = &self.ids;
        json!({
            "token": ids.verification_token,
            "team_id": ids.team_id,
            "context_team_id": ids.team_id,
            "context_enterprise_id": null,
            "api_app_id": ids.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": self.clock.now(),
            "authorizations": [{
                "enterprise_id": null,
                "team_id": ids.team_id,
                "user_id": ids.bot_user_id,
                "is_bot": true,
                "is_enterprise_install": false,
            }],
            "is_ext_shared_channel": false,
            "event_context": format!("4-{event_id}"),
        })
    }

    /// A user's message (`type` `message` or `app_mention`), stored in its channel.
    pub(crate) fn user_message(
        &mut self,
        kind: &str,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> Value {
        self.user(user);
        let chan = self.channel(channel, user);
        let ts = self.next_ts();
        let mut ev = json!({
            "type": kind,
            "user": user,
            "text": text,
            "ts": ts,
            "client_msg_id": format!("0c7e5e3a-0000-4000-8000-{:012}", self.next_event + 1),
            "team": self.ids.team_id,
            "channel": channel,
            "event_ts": ts,
        });
        if kind == "message" {
            ev["channel_type"] = json!(chan.kind);
        }
        if let Some(t) = thread_ts {
            ev["thread_ts"] = json!(t);
            if let Some(parent) = self.message(channel, t).and_then(|m| m.get("user")) {
                ev["parent_user_id"] = parent.clone();
            }
        }
        let mut stored = ev.clone();
        if let Some(o) = stored.as_object_mut() {
            o.insert("type".into(), json!("message"));
            o.remove("channel");
            o.remove("channel_type");
            o.remove("event_ts");
        }
        self.store_message(channel, &stored);
        ev
    }
}
