//! What the fake Telegram remembers: users and chats, every message (for replies, edits and
//! callbacks), the queue of unconfirmed updates with `getUpdates`' offset rules, the faults
//! waiting for their method, and the record of calls. Shared between the
//! [`super::FakeTelegram`] handle and the HTTP handlers behind one mutex; every change bumps
//! a version counter that long polls and `wait_*` calls watch.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use super::text::auto_entities;
use super::{ChatType, FakeChat, FakeUser, Fault, RecordedCall, SentMessage};

/// The update kinds delivered when `allowed_updates` is empty or was never given.
const NOT_BY_DEFAULT: &[&str] = &["chat_member", "message_reaction", "message_reaction_count"];

/// The first update id handed out; like Telegram's, not 0 or 1.
const FIRST_UPDATE_ID: i64 = 570_000_000;

/// A file `getFile` knows and `/file/bot<token>/<path>` serves.
#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    pub(crate) file_id: String,
    pub(crate) unique_id: String,
    pub(crate) path: String,
    pub(crate) bytes: Vec<u8>,
}

/// The webhook set by `setWebhook`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub secret_token: Option<String>,
    pub max_connections: u32,
    pub allowed_updates: Option<Vec<String>>,
}

pub(crate) struct State {
    pub(crate) bot: FakeUser,
    users: HashMap<i64, FakeUser>,
    chats: HashMap<i64, FakeChat>,
    /// Every message by (chat, message id), as Telegram would return it.
    messages: HashMap<(i64, i64), Value>,
    next_message_id: HashMap<i64, i64>,
    next_update_id: i64,
    queue: VecDeque<Value>,
    /// Whether `queue` is in update-id order (it is unless a test queued an update with an
    /// id of its own below one already queued): confirming is then popping from the front.
    queue_sorted: bool,
    /// The kinds getUpdates delivers; `None` = the default set.
    allowed: Option<Vec<String>>,
    duplicate_next: bool,
    /// An update to hand out again with the next batch (see `duplicate_next_update`).
    redeliver: Option<Value>,
    /// Bumped by each getUpdates; a waiting poll whose number is no longer current was
    /// superseded and answers 409.
    pub(crate) poll_generation: u64,
    pub(crate) webhook: Option<Webhook>,
    /// Callback queries not answered yet.
    pub(crate) open_callbacks: HashSet<String>,
    next_callback: u64,
    pub(crate) files: Vec<StoredFile>,
    /// `setMyCommands` lists by scope and language (JSON text of both).
    pub(crate) commands: BTreeMap<(String, String), Value>,
    faults: HashMap<String, VecDeque<Fault>>,
    pub(crate) sent: Vec<SentMessage>,
    pub(crate) calls: Vec<RecordedCall>,
    /// Unix time when the fake started; dates move on with tokio time from there.
    epoch: i64,
    started: Instant,
}

impl State {
    pub(crate) fn new(bot: FakeUser, epoch: i64) -> Self {
        Self {
            bot,
            users: HashMap::new(),
            chats: HashMap::new(),
            messages: HashMap::new(),
            next_message_id: HashMap::new(),
            next_update_id: FIRST_UPDATE_ID,
            queue: VecDeque::new(),
            queue_sorted: true,
            allowed: None,
            duplicate_next: false,
            redeliver: None,
            poll_generation: 0,
            webhook: None,
            open_callbacks: HashSet::new(),
            next_callback: 0,
            files: Vec::new(),
            commands: BTreeMap::new(),
            faults: HashMap::new(),
            sent: Vec::new(),
            calls: Vec::new(),
            epoch,
            started: Instant::now(),
        }
    }

    /// The current Unix time as messages show it.
    pub(crate) fn now(&self) -> i64 {
        self.epoch + self.started.elapsed().as_secs() as i64
    }

    // -----------------------------------------------------------------------------------
    // Users, chats, messages

    pub(crate) fn add_user(&mut self, u: FakeUser) {
        self.users.insert(u.id, u);
    }

    /// The user with this id; one named `User <id>` / `@user<id>` if none was added.
    pub(crate) fn user(&mut self, id: i64) -> FakeUser {
        self.users
            .entry(id)
            .or_insert_with(|| {
                FakeUser::new(id, &format!("User {id}")).username(&format!("user{id}"))
            })
            .clone()
    }

    pub(crate) fn add_chat(&mut self, c: FakeChat) {
        self.chats.insert(c.id, c);
    }

    pub(crate) fn chat(&self, id: i64) -> Option<&FakeChat> {
        self.chats.get(&id)
    }

    pub(crate) fn chat_by_username(&self, username: &str) -> Option<&FakeChat> {
        self.chats.values().find(|c| {
            c.username
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(username))
        })
    }

    /// The private chat with `user`, made on first use.
    pub(crate) fn private_chat(&mut self, chat_id: i64, user: &FakeUser) -> FakeChat {
        self.chats
            .entry(chat_id)
            .or_insert_with(|| FakeChat {
                id: chat_id,
                ..FakeChat::private(user)
            })
            .clone()
    }

    /// A group chat, made on first use: a supergroup for `-100…` ids or when a topic is
    /// named (which also makes it a forum), a basic group otherwise.
    pub(crate) fn group_chat(&mut self, chat_id: i64, topic: bool) -> FakeChat {
        let chat = self.chats.entry(chat_id).or_insert_with(|| {
            if topic || chat_id <= -1_000_000_000_000 {
                FakeChat::supergroup(chat_id, &format!("Group {chat_id}"))
            } else {
                FakeChat::group(chat_id, &format!("Group {chat_id}"))
            }
        });
        if topic && chat.kind == ChatType::Supergroup {
            chat.is_forum = true;
        }
        chat.clone()
    }

    pub(crate) fn next_message_id(&mut self, chat_id: i64) -> i64 {
        let next = self.next_message_id.entry(chat_id).or_insert(1);
        let id = *next;
        *next += 1;
        id
    }

    pub(crate) fn message(&self, chat_id: i64, message_id: i64) -> Option<&Value> {
        self.messages.get(&(chat_id, message_id))
    }

    pub(crate) fn store_message(&mut self, m: &Value) {
        let chat = m.pointer("/chat/id").and_then(Value::as_i64);
        let id = m.get("message_id").and_then(Value::as_i64);
        if let (Some(chat), Some(id)) = (chat, id) {
            self.messages.insert((chat, id), m.clone());
        }
    }

    pub(crate) fn remove_message(&mut self, chat_id: i64, message_id: i64) -> Option<Value> {
        self.messages.remove(&(chat_id, message_id))
    }

    /// A copy of a message fit for `reply_to_message`: Telegram does not nest replies.
    pub(crate) fn reply_copy(&self, chat_id: i64, message_id: i64) -> Option<Value> {
        let mut m = self.message(chat_id, message_id)?.clone();
        if let Some(obj) = m.as_object_mut() {
            obj.remove("reply_to_message");
        }
        Some(m)
    }

    /// A text message from a user, stored; `topic` is the forum thread it was sent in.
    pub(crate) fn incoming(
        &mut self,
        chat: &FakeChat,
        from: &FakeUser,
        text: &str,
        topic: Option<i64>,
        reply_to: Option<i64>,
    ) -> Value {
        let id = self.next_message_id(chat.id);
        let mut m = json!({
            "message_id": id,
            "from": from.to_json(),
            "chat": chat.to_json(),
            "date": self.now(),
            "text": text,
        });
        let entities = auto_entities(text);
        if !entities.is_empty() {
            m["entities"] = Value::Array(entities);
        }
        if let Some(thread) = topic {
            m["message_thread_id"] = json!(thread);
            if chat.is_forum {
                m["is_topic_message"] = json!(true);
            }
        }
        if let Some(r) = reply_to.and_then(|r| self.reply_copy(chat.id, r)) {
            m["reply_to_message"] = r;
        }
        self.store_message(&m);
        m
    }

    /// A callback query from `from` on message `message_id` of `chat`, registered as open.
    pub(crate) fn callback_query(
        &mut self,
        chat: &FakeChat,
        from: &FakeUser,
        message_id: i64,
        data: &str,
    ) -> Value {
        self.next_callback += 1;
        let id = format!("{}", 4_382_000_000_000_000_000u64 + self.next_callback);
        self.open_callbacks.insert(id.clone());
        let message = self
            .message(chat.id, message_id)
            .cloned()
            .unwrap_or_else(|| {
                // InaccessibleMessage: what Telegram sends for a message it cannot show
                json!({"chat": chat.to_json(), "message_id": message_id, "date": 0})
            });
        json!({
            "id": id,
            "from": from.to_json(),
            "message": message,
            "chat_instance": format!("{}", chat.id.unsigned_abs().wrapping_mul(7_919) % 9_000_000_000_000_000_000),
            "data": data,
        })
    }

    // -----------------------------------------------------------------------------------
    // Updates

    /// Queues an update, giving it the next update id unless it has one; returns its id.
    pub(crate) fn push_update(&mut self, mut update: Value) -> i64 {
        let id = match update.get("update_id").and_then(Value::as_i64) {
            Some(id) => id,
            None => {
                let id = self.next_update_id;
                update["update_id"] = json!(id);
                id
            }
        };
        self.next_update_id = self.next_update_id.max(id + 1);
        if self
            .queue
            .back()
            .and_then(update_id)
            .is_some_and(|last| last > id)
        {
            self.queue_sorted = false;
        }
        self.queue.push_back(update);
        id
    }

    /// The next update id, taken (for updates delivered by webhook, not queued).
    pub(crate) fn take_update_id(&mut self) -> i64 {
        let id = self.next_update_id;
        self.next_update_id += 1;
        id
    }

    pub(crate) fn pending_ids(&self) -> Vec<i64> {
        self.queue.iter().filter_map(update_id).collect()
    }

    pub(crate) fn duplicate_next(&mut self) {
        self.duplicate_next = true;
    }

    /// Applies getUpdates' `offset`: a positive one confirms (drops for good) every update
    /// with a lower id; a negative `-n` forgets all but the last `n`; 0 confirms nothing.
    pub(crate) fn confirm(&mut self, offset: i64) {
        if offset > 0 {
            // Sorted (the usual case): only the front can go. A flood of queued updates
            // is then not scanned whole at every poll.
            while self
                .queue
                .front()
                .is_some_and(|u| update_id(u).is_some_and(|id| id < offset))
            {
                self.queue.pop_front();
            }
            if !self.queue_sorted {
                self.queue
                    .retain(|u| update_id(u).is_none_or(|id| id >= offset));
            }
        } else if offset < 0 {
            let keep = offset.unsigned_abs() as usize;
            while self.queue.len() > keep {
                self.queue.pop_front();
            }
        }
        if self.queue.is_empty() {
            self.queue_sorted = true;
        }
    }

    /// Remembers getUpdates' `allowed_updates` (an empty list means the default set).
    pub(crate) fn set_allowed(&mut self, allowed: Vec<String>) {
        self.allowed = (!allowed.is_empty()).then_some(allowed);
    }

    fn is_allowed(&self, update: &Value) -> bool {
        let Some(kind) = update_kind(update) else {
            return true;
        };
        match &self.allowed {
            Some(list) => list.iter().any(|k| k == kind),
            None => !NOT_BY_DEFAULT.contains(&kind),
        }
    }

    /// The updates a getUpdates answer carries now (at most `limit`), oldest first; those
    /// of kinds not allowed are dropped on the way, as far as the answer reaches (further
    /// ones stay queued, and counted as pending, until a poll reaches them; a duplicate
    /// set to come again is dropped too if its kind is no longer allowed). Updates stay
    /// queued until confirmed.
    pub(crate) fn batch(&mut self, limit: usize) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        if let Some(again) = self.redeliver.take()
            && self.is_allowed(&again)
        {
            let id = update_id(&again);
            if !self.queue.iter().any(|u| update_id(u) == id) {
                out.push(again);
            }
        }
        let mut i = 0;
        while out.len() < limit && i < self.queue.len() {
            if self.is_allowed(&self.queue[i]) {
                out.push(self.queue[i].clone());
                i += 1;
            } else {
                self.queue.remove(i);
            }
        }
        if self.duplicate_next
            && let Some(first) = out.first()
        {
            self.redeliver = Some(first.clone());
            self.duplicate_next = false;
        }
        out
    }

    // -----------------------------------------------------------------------------------
    // Faults and records

    pub(crate) fn add_fault(&mut self, method: &str, fault: Fault, times: usize) {
        let q = self.faults.entry(method.to_ascii_lowercase()).or_default();
        q.extend(std::iter::repeat_n(fault, times));
    }

    /// The fault waiting for this method (lowercase), or for any method (`*`).
    pub(crate) fn take_fault(&mut self, method: &str) -> Option<Fault> {
        for key in [method, "*"] {
            if let Some(q) = self.faults.get_mut(key)
                && let Some(f) = q.pop_front()
            {
                return Some(f);
            }
        }
        None
    }
}

pub(crate) fn update_id(u: &Value) -> Option<i64> {
    u.get("update_id").and_then(Value::as_i64)
}

/// `message`, `callback_query`, ...: the field of an update other than `update_id`.
pub(crate) fn update_kind(u: &Value) -> Option<&str> {
    u.as_object()?
        .keys()
        .find(|k| k.as_str() != "update_id")
        .map(String::as_str)
}

/// State shared by the handle and the handlers.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Bumped after every change; watchers re-check what they wait for.
    version: watch::Sender<u64>,
    /// `true` once shutdown has begun; long polls answer at once.
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) token: String,
}

impl Shared {
    pub(crate) fn new(token: String, state: State) -> Self {
        Self {
            state: Mutex::new(state),
            version: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
            token,
        }
    }

    /// The state; a panic while holding it leaves nothing half-done that matters for a
    /// fake, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the state and wakes every watcher.
    pub(crate) fn change<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.lock());
        self.version.send_modify(|v| *v += 1);
        out
    }

    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State::new(FakeUser::bot(1, "pincer_test_bot"), 1_700_000_000)
    }

    fn ids(v: &[Value]) -> Vec<i64> {
        v.iter().filter_map(update_id).collect()
    }

    fn msg(st: &mut State, text: &str) -> i64 {
        let u = st.user(5);
        let c = st.private_chat(5, &u);
        let m = st.incoming(&c, &u, text, None, None);
        st.push_update(json!({ "message": m }))
    }

    #[test]
    fn offsets_confirm_like_telegram() {
        let mut st = state();
        let a = msg(&mut st, "a");
        let b = msg(&mut st, "b");
        let c = msg(&mut st, "c");
        assert_eq!((b, c), (a + 1, a + 2));
        st.confirm(0);
        assert_eq!(
            ids(&st.batch(100)),
            vec![a, b, c],
            "offset 0 confirms nothing"
        );
        assert_eq!(ids(&st.batch(2)), vec![a, b], "limit");
        st.confirm(b);
        assert_eq!(ids(&st.batch(100)), vec![b, c]);
        st.confirm(a);
        assert_eq!(
            ids(&st.batch(100)),
            vec![b, c],
            "confirmed updates never come back"
        );
        st.confirm(-1);
        assert_eq!(
            ids(&st.batch(100)),
            vec![c],
            "negative offsets keep the last n"
        );
        st.confirm(c + 1);
        assert!(st.batch(100).is_empty());
        assert_eq!(msg(&mut st, "d"), c + 1);
    }

    #[test]
    fn explicit_update_ids_move_the_counter() {
        let mut st = state();
        assert_eq!(
            st.push_update(json!({"update_id": 900_000_000, "message": {}})),
            900_000_000
        );
        assert_eq!(msg(&mut st, "x"), 900_000_001);
    }

    #[test]
    fn a_duplicated_update_comes_back_once_even_after_confirmation() {
        let mut st = state();
        let a = msg(&mut st, "a");
        st.duplicate_next();
        assert_eq!(ids(&st.batch(100)), vec![a]);
        st.confirm(a + 1);
        assert_eq!(ids(&st.batch(100)), vec![a]);
        st.confirm(a + 1);
        assert!(st.batch(100).is_empty());
    }

    #[test]
    fn allowed_updates_filter_and_default() {
        let mut st = state();
        let m = msg(&mut st, "a");
        let r = st.push_update(json!({"message_reaction": {}}));
        let cb = st.push_update(json!({"callback_query": {}}));
        assert_eq!(ids(&st.batch(100)), vec![m, cb], "reactions are opt-in");
        let _ = r;
        st.set_allowed(vec!["message".into()]);
        assert_eq!(ids(&st.batch(100)), vec![m]);
        assert_eq!(st.pending_ids(), vec![m], "filtered updates are dropped");
    }

    #[test]
    fn group_chats_by_id_and_topic() {
        let mut st = state();
        assert_eq!(st.group_chat(-42, false).kind, ChatType::Group);
        let sg = st.group_chat(-1_001_234_567_890, false);
        assert_eq!((sg.kind, sg.is_forum), (ChatType::Supergroup, false));
        let forum = st.group_chat(-1_001_234_567_890, true);
        assert!(forum.is_forum);
        assert_eq!(st.next_message_id(-42), 1);
        assert_eq!(st.next_message_id(-42), 2);
        assert_eq!(st.next_message_id(7), 1, "message ids count per chat");
        let u = st.user(5);
        assert_eq!(
            st.private_chat(9, &u).id,
            9,
            "the chat keeps the id it was asked for"
        );
    }

    #[test]
    fn faults_are_taken_per_method_then_wildcard() {
        let mut st = state();
        st.add_fault("SendMessage", Fault::Drop, 2);
        st.add_fault("*", Fault::Malformed, 1);
        assert_eq!(st.take_fault("sendmessage"), Some(Fault::Drop));
        assert_eq!(st.take_fault("getme"), Some(Fault::Malformed));
        assert_eq!(st.take_fault("sendmessage"), Some(Fault::Drop));
        assert_eq!(st.take_fault("sendmessage"), None);
    }
}
