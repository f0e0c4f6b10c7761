//! The Bot API methods other than `getUpdates` (which waits, and lives in the server): each
//! reads its parameters, checks them the way Telegram does and changes the state. Pure
//! with respect to I/O, so the webhook path can run a method a gateway answered with.

use serde_json::{Value, json};

use super::params::Params;
use super::state::State;
use super::text::{self, Rendered};
use super::{ApiError, FakeChat, SentKind, SentMessage, Webhook};

/// The methods the fake knows, in the spelling of the Bot API documentation.
pub(crate) const METHODS: &[&str] = &[
    "getMe",
    "getUpdates",
    "sendMessage",
    "editMessageText",
    "deleteMessage",
    "sendChatAction",
    "answerCallbackQuery",
    "getFile",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
    "setMyCommands",
    "getMyCommands",
    "deleteMyCommands",
];

/// The documented spelling of a method name given in any case.
pub(crate) fn canonical(name: &str) -> Option<&'static str> {
    METHODS
        .iter()
        .copied()
        .find(|m| m.eq_ignore_ascii_case(name))
}

const CHAT_ACTIONS: &[&str] = &[
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
];

/// Inline keyboard button fields that make a button do something.
const BUTTON_ACTIONS: &[&str] = &[
    "callback_data",
    "url",
    "login_url",
    "web_app",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
];

/// A successful result: `result`, and the `description` Telegram adds to some.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub(crate) result: Value,
    pub(crate) description: Option<&'static str>,
}

fn ok(result: Value) -> Result<Answer, ApiError> {
    Ok(Answer {
        result,
        description: None,
    })
}

fn ok_said(result: Value, description: &'static str) -> Result<Answer, ApiError> {
    Ok(Answer {
        result,
        description: Some(description),
    })
}

/// Runs `method` (lowercase) on the state.
pub(crate) fn call(st: &mut State, method: &str, p: &Params) -> Result<Answer, ApiError> {
    match method {
        "getme" => ok(st.bot.me_json()),
        "sendmessage" => send_message(st, p),
        "editmessagetext" => edit_message_text(st, p),
        "deletemessage" => delete_message(st, p),
        "sendchataction" => send_chat_action(st, p),
        "answercallbackquery" => answer_callback_query(st, p),
        "getfile" => get_file(st, p),
        "setwebhook" => set_webhook(st, p),
        "deletewebhook" => delete_webhook(st, p),
        "getwebhookinfo" => ok(webhook_info(st)),
        "setmycommands" => set_my_commands(st, p),
        "getmycommands" => ok(st
            .commands
            .get(&commands_key(p))
            .cloned()
            .unwrap_or_else(|| json!([]))),
        "deletemycommands" => {
            st.commands.remove(&commands_key(p));
            ok(json!(true))
        }
        _ => Err(ApiError::new(404, "Not Found")),
    }
}

/// The chat `chat_id` names: an id (number or text) or `@username`.
fn target_chat(st: &State, p: &Params) -> Result<FakeChat, ApiError> {
    if !p.has("chat_id") {
        return Err(ApiError::bad("chat_id is empty"));
    }
    let found = match p.i64("chat_id") {
        Ok(Some(id)) => st.chat(id),
        _ => p
            .str("chat_id")
            .as_deref()
            .and_then(|s| s.strip_prefix('@'))
            .and_then(|name| st.chat_by_username(name)),
    };
    found
        .cloned()
        .ok_or_else(|| ApiError::bad("chat not found"))
}

fn message_id(p: &Params) -> Result<Option<i64>, ApiError> {
    p.i64("message_id")
        .map_err(|()| ApiError::bad("message identifier is not specified"))
}

/// Text, parse mode and caller-given entities into what the message will show.
fn rendered(p: &Params, too_long: &str) -> Result<(String, Option<String>, Rendered), ApiError> {
    let raw = p.str("text").unwrap_or_default();
    let parse_mode = p.str("parse_mode").filter(|m| !m.is_empty());
    let entities = match p.json("entities") {
        Ok(Some(Value::Array(list))) => Some(list),
        Ok(None) => None,
        _ => return Err(ApiError::bad("can't parse entities JSON object")),
    };
    let r = text::render(&raw, parse_mode.as_deref(), entities, too_long)
        .map_err(|e| ApiError::new(400, &e.0))?;
    Ok((raw, parse_mode, r))
}

/// `reply_markup`, checked: an object, and for an inline keyboard an array of arrays of
/// buttons that each have a text and an action, with `callback_data` of 1-64 bytes.
fn reply_markup(p: &Params) -> Result<Option<Value>, ApiError> {
    let unparsable = || ApiError::bad("can't parse reply keyboard markup JSON object");
    let Some(markup) = p.json("reply_markup").map_err(|()| unparsable())? else {
        return Ok(None);
    };
    let obj = markup.as_object().ok_or_else(unparsable)?;
    if let Some(kb) = obj.get("inline_keyboard") {
        let rows = kb
            .as_array()
            .filter(|rows| rows.iter().all(Value::is_array))
            .ok_or_else(|| {
                ApiError::bad(
                    "field \"inline_keyboard\" of the InlineKeyboardMarkup should be an Array of Arrays",
                )
            })?;
        for button in rows.iter().filter_map(Value::as_array).flatten() {
            if !button.get("text").is_some_and(Value::is_string) {
                return Err(ApiError::bad(
                    "can't parse inline keyboard button: Field \"text\" must be of type String",
                ));
            }
            if !BUTTON_ACTIONS.iter().any(|k| button.get(*k).is_some()) {
                return Err(ApiError::bad(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
                ));
            }
            if let Some(data) = button.get("callback_data") {
                let len = data.as_str().map_or(0, str::len);
                if !(1..=64).contains(&len) {
                    return Err(ApiError::bad("BUTTON_DATA_INVALID"));
                }
            }
        }
    }
    Ok(Some(markup))
}

/// The markup a message shows: only inline keyboards are part of a Message.
fn inline_markup(markup: &Option<Value>) -> Option<Value> {
    markup
        .as_ref()
        .filter(|m| m.get("inline_keyboard").is_some())
        .cloned()
}

/// `disable_web_page_preview`, or its successor `link_preview_options.is_disabled`.
fn preview_disabled(p: &Params) -> bool {
    p.bool("disable_web_page_preview")
        || p.json("link_preview_options")
            .ok()
            .flatten()
            .and_then(|o| o.get("is_disabled").and_then(Value::as_bool))
            .unwrap_or(false)
}

fn send_message(st: &mut State, p: &Params) -> Result<Answer, ApiError> {
    let chat = target_chat(st, p)?;
    let (raw, parse_mode, shown) = rendered(p, "Bad Request: message is too long")?;
    let markup = reply_markup(p)?;
    let thread_id = p
        .i64("message_thread_id")
        .map_err(|()| ApiError::bad("message thread not found"))?;
    let (reply_to, reply_anyway) = match p.json("reply_parameters") {
        Err(()) => return Err(ApiError::bad("can't parse reply parameters JSON object")),
        Ok(Some(rp)) => (
            rp.get("message_id").and_then(Value::as_i64),
            rp.get("allow_sending_without_reply")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        ),
        Ok(None) => (
            p.i64("reply_to_message_id").ok().flatten(),
            p.bool("allow_sending_without_reply"),
        ),
    };
    let reply = match reply_to.map(|id| st.reply_copy(chat.id, id)) {
        Some(None) if !reply_anyway => {
            return Err(ApiError::bad("message to be replied not found"));
        }
        Some(found) => found,
        None => None,
    };
    let preview_off = preview_disabled(p);

    let id = st.next_message_id(chat.id);
    let mut m = json!({
        "message_id": id,
        "from": st.bot.to_json(),
        "chat": chat.to_json(),
        "date": st.now(),
        "text": shown.text,
    });
    if !shown.entities.is_empty() {
        m["entities"] = json!(shown.entities);
    }
    if let (true, Some(t)) = (chat.is_forum, thread_id) {
        m["message_thread_id"] = json!(t);
        m["is_topic_message"] = json!(true);
    }
    if let Some(r) = &reply {
        m["reply_to_message"] = r.clone();
    }
    if let Some(kb) = inline_markup(&markup) {
        m["reply_markup"] = kb;
    }
    st.store_message(&m);
    st.sent.push(SentMessage {
        kind: SentKind::Message,
        chat_id: chat.id,
        message_id: id,
        text: raw,
        parse_mode,
        shown_text: shown.text,
        entities: shown.entities,
        thread_id,
        reply_to_message_id: reply.and(reply_to),
        reply_markup: markup,
        link_preview_disabled: preview_off,
    });
    ok(m)
}

fn edit_message_text(st: &mut State, p: &Params) -> Result<Answer, ApiError> {
    if !p.has("message_id") && p.has("inline_message_id") {
        // inline messages are not modelled; Telegram answers `true` for them
        let _ = rendered(p, "Bad Request: MESSAGE_TOO_LONG")?;
        return ok(json!(true));
    }
    let chat = target_chat(st, p)?;
    let Some(message_id) = message_id(p)? else {
        return Err(ApiError::bad("message identifier is not specified"));
    };
    let Some(old) = st.message(chat.id, message_id).cloned() else {
        return Err(ApiError::bad("message to edit not found"));
    };
    if old.pointer("/from/id").and_then(Value::as_i64) != Some(st.bot.id) {
        return Err(ApiError::bad("message can't be edited"));
    }
    let (raw, parse_mode, shown) = rendered(p, "Bad Request: MESSAGE_TOO_LONG")?;
    let markup = reply_markup(p)?;
    let new_kb = inline_markup(&markup);
    let old_entities = old.get("entities").cloned().unwrap_or_else(|| json!([]));
    if old["text"] == json!(shown.text)
        && old_entities == json!(shown.entities)
        && old.get("reply_markup") == new_kb.as_ref()
    {
        return Err(ApiError::bad(
            "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
        ));
    }
    let mut m = old;
    m["text"] = json!(shown.text);
    m["edit_date"] = json!(st.now());
    if let Some(obj) = m.as_object_mut() {
        obj.remove("entities");
        obj.remove("reply_markup");
    }
    if !shown.entities.is_empty() {
        m["entities"] = json!(shown.entities);
    }
    if let Some(kb) = new_kb {
        m["reply_markup"] = kb;
    }
    st.store_message(&m);
    st.sent.push(SentMessage {
        kind: SentKind::Edit,
        chat_id: chat.id,
        message_id,
        text: raw,
        parse_mode,
        shown_text: shown.text,
        entities: shown.entities,
        thread_id: m.get("message_thread_id").and_then(Value::as_i64),
        reply_to_message_id: m
            .pointer("/reply_to_message/message_id")
            .and_then(Value::as_i64),
        reply_markup: markup,
        link_preview_disabled: preview_disabled(p),
    });
    ok(m)
}

fn delete_message(st: &mut State, p: &Params) -> Result<Answer, ApiError> {
    let chat = target_chat(st, p)?;
    let Some(id) = message_id(p)? else {
        return Err(ApiError::bad("message identifier is not specified"));
    };
    match st.remove_message(chat.id, id) {
        Some(_) => ok(json!(true)),
        None => Err(ApiError::bad("message to delete not found")),
    }
}

fn send_chat_action(st: &mut State, p: &Params) -> Result<Answer, ApiError> {
    target_chat(st, p)?;
    let action = p.str("action").unwrap_or_default();
    if !CHAT_ACTIONS.contains(&action.as_str()) {
        return Err(ApiError::bad("wrong parameter action in request"));
    }
    ok(json!(true))
}

fn answer_callback_query(st: &mut State, p: &Params) -> Result<Answer, ApiError> {
    let id = p.str("callback_query_id").unwrap_or_default();
    if !st.open_callbacks.remove(&id) {
        return Err(ApiError::bad(
            "query is too old and response timeout expired or query id is invalid",
        ));
    }
    ok(json!(true))
}

fn get_file(st: &mut State, p: &Params) -> Result<Answer, ApiError> {
    let id = p.str("file_id").unwrap_or_default();
    let f = st
        .files
        .iter()
        .find(|f| f.file_id == id)
        .ok_or_else(|| ApiError::bad("invalid file_id"))?;
    ok(json!({
        "file_id": f.file_id,
        "file_unique_id": f.unique_id,
        "file_size": f.bytes.len(),
        "file_path": f.path,
    }))
}

/// `allowed_updates` of getUpdates and setWebhook: a list of update kinds.
pub(crate) fn allowed_updates(p: &Params) -> Result<Option<Vec<String>>, ApiError> {
    match p.json("allowed_updates") {
        Ok(None) => Ok(None),
        Ok(Some(Value::Array(list))) => Ok(Some(
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        )),
        _ => Err(ApiError::bad("can't parse allowed updates")),
    }
}

fn set_webhook(st: &mut State, p: &Params) -> Result<Answer, ApiError> {
    let url = p.str("url").unwrap_or_default();
    if url.is_empty() {
        return delete_webhook(st, p);
    }
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ApiError::bad(
            "bad webhook: An HTTPS URL must be provided for webhook",
        ));
    }
    let secret = p.str("secret_token").filter(|s| !s.is_empty());
    if let Some(s) = &secret
        && (s.len() > 256
            || !s
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-'))
    {
        return Err(ApiError::bad("secret token contains unallowed characters"));
    }
    let allowed = allowed_updates(p)?;
    if let Some(list) = &allowed {
        st.set_allowed(list.clone());
    }
    if p.bool("drop_pending_updates") {
        st.confirm(i64::MAX);
    }
    let max_connections = p
        .i64("max_connections")
        .ok()
        .flatten()
        .map_or(40, |n| n.clamp(1, 100) as u32);
    let already = st.webhook.as_ref().is_some_and(|w| w.url == url);
    st.webhook = Some(Webhook {
        url,
        secret_token: secret,
        max_connections,
        allowed_updates: allowed,
    });
    ok_said(
        json!(true),
        if already {
            "Webhook is already set"
        } else {
            "Webhook was set"
        },
    )
}

fn delete_webhook(st: &mut State, p: &Params) -> Result<Answer, ApiError> {
    if p.bool("drop_pending_updates") {
        st.confirm(i64::MAX);
    }
    let had = st.webhook.take().is_some();
    ok_said(
        json!(true),
        if had {
            "Webhook was deleted"
        } else {
            "Webhook is already deleted"
        },
    )
}

fn webhook_info(st: &State) -> Value {
    let mut info = json!({
        "url": "",
        "has_custom_certificate": false,
        "pending_update_count": st.pending_ids().len(),
    });
    if let Some(w) = &st.webhook {
        info["url"] = json!(w.url);
        info["max_connections"] = json!(w.max_connections);
        info["ip_address"] = json!("127.0.0.1");
        if let Some(a) = &w.allowed_updates {
            info["allowed_updates"] = json!(a);
        }
    }
    info
}

/// `setMyCommands` lists are kept per scope and language.
fn commands_key(p: &Params) -> (String, String) {
    let scope = p
        .json("scope")
        .ok()
        .flatten()
        .unwrap_or_else(|| json!({"type": "default"}));
    (
        scope.to_string(),
        p.str("language_code").unwrap_or_default(),
    )
}

fn set_my_commands(st: &mut State, p: &Params) -> Result<Answer, ApiError> {
    let Ok(Some(Value::Array(list))) = p.json("commands") else {
        return Err(ApiError::bad("can't parse commands JSON object"));
    };
    if list.len() > 100 {
        return Err(ApiError::bad("too many commands specified"));
    }
    for c in &list {
        let command = c.get("command").and_then(Value::as_str).unwrap_or("");
        let valid = (1..=32).contains(&command.len())
            && command
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(ApiError::bad("BOT_COMMAND_INVALID"));
        }
        let description = c.get("description").and_then(Value::as_str).unwrap_or("");
        if !(1..=256).contains(&description.chars().count()) {
            return Err(ApiError::bad("BOT_COMMAND_DESCRIPTION_INVALID"));
        }
    }
    st.commands.insert(commands_key(p), Value::Array(list));
    ok(json!(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telegram::FakeUser;

    fn st() -> State {
        let mut st = State::new(FakeUser::bot(77, "pincer_test_bot"), 1_700_000_000);
        let u = st.user(5);
        st.private_chat(5, &u);
        st
    }

    fn params(v: Value) -> Params {
        Params(v.as_object().unwrap().clone())
    }

    fn err(st: &mut State, method: &str, v: Value) -> String {
        call(st, method, &params(v)).unwrap_err().description
    }

    #[test]
    fn method_names_are_case_insensitive() {
        assert_eq!(canonical("SendMessage"), Some("sendMessage"));
        assert_eq!(canonical("GETME"), Some("getMe"));
        assert_eq!(canonical("sendPigeon"), None);
    }

    #[test]
    fn send_message_checks_like_telegram() {
        let mut s = st();
        assert_eq!(
            err(&mut s, "sendmessage", json!({"text": "x"})),
            "Bad Request: chat_id is empty"
        );
        assert_eq!(
            err(&mut s, "sendmessage", json!({"chat_id": 6, "text": "x"})),
            "Bad Request: chat not found"
        );
        assert_eq!(
            err(&mut s, "sendmessage", json!({"chat_id": 5})),
            "Bad Request: message text is empty"
        );
        assert_eq!(
            err(
                &mut s,
                "sendmessage",
                json!({"chat_id": 5, "text": "x", "reply_markup": {"inline_keyboard": [[{"text": "a"}]]}})
            ),
            "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        );
        assert_eq!(
            err(
                &mut s,
                "sendmessage",
                json!({"chat_id": 5, "text": "x", "reply_markup": {"inline_keyboard": [[{"text": "a", "callback_data": "x".repeat(65)}]]}})
            ),
            "Bad Request: BUTTON_DATA_INVALID"
        );
        assert_eq!(
            err(
                &mut s,
                "sendmessage",
                json!({"chat_id": 5, "text": "x", "reply_parameters": {"message_id": 99}})
            ),
            "Bad Request: message to be replied not found"
        );
        assert!(s.sent.is_empty(), "refused messages are not recorded");
    }

    #[test]
    fn replies_and_keyboards_show_in_the_message() {
        let mut s = st();
        let first = call(
            &mut s,
            "sendmessage",
            &params(
                json!({"chat_id": "5", "text": "<b>hi</b>", "parse_mode": "HTML",
                "reply_markup": {"inline_keyboard": [[{"text": "ok", "callback_data": "y"}]]}}),
            ),
        )
        .unwrap()
        .result;
        assert_eq!(first["message_id"], 1);
        assert_eq!(first["from"]["id"], 77);
        assert_eq!(first["from"]["is_bot"], true);
        assert_eq!(
            first["chat"],
            json!({"id": 5, "type": "private", "first_name": "User 5", "username": "user5"})
        );
        assert_eq!(first["text"], "hi");
        assert_eq!(
            first["entities"],
            json!([{"type": "bold", "offset": 0, "length": 2}])
        );
        assert_eq!(
            first["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
            "y"
        );
        let second = call(
            &mut s,
            "sendmessage",
            &params(
                json!({"chat_id": 5, "text": "again", "reply_to_message_id": 1,
                "reply_markup": {"force_reply": true}}),
            ),
        )
        .unwrap()
        .result;
        assert_eq!(second["message_id"], 2);
        assert_eq!(second["reply_to_message"]["message_id"], 1);
        assert!(
            second.get("reply_markup").is_none(),
            "only inline keyboards show"
        );
        assert_eq!(s.sent[1].reply_to_message_id, Some(1));
        assert_eq!(s.sent[1].reply_markup, Some(json!({"force_reply": true})));
    }

    #[test]
    fn edits_check_modification_and_ownership() {
        let mut s = st();
        let u = s.user(5);
        let c = s.chat(5).cloned().unwrap();
        let theirs = s.incoming(&c, &u, "mine", None, None)["message_id"]
            .as_i64()
            .unwrap();
        call(
            &mut s,
            "sendmessage",
            &params(json!({"chat_id": 5, "text": "a",
            "reply_markup": {"inline_keyboard": [[{"text": "k", "callback_data": "d"}]]}})),
        )
        .unwrap();
        let same = json!({"chat_id": 5, "message_id": 2, "text": "a",
            "reply_markup": {"inline_keyboard": [[{"text": "k", "callback_data": "d"}]]}});
        assert!(
            err(&mut s, "editmessagetext", same)
                .starts_with("Bad Request: message is not modified")
        );
        // same text, keyboard dropped: that is a change
        let r = call(
            &mut s,
            "editmessagetext",
            &params(json!({"chat_id": 5, "message_id": 2, "text": "a"})),
        )
        .unwrap()
        .result;
        assert!(r.get("reply_markup").is_none());
        assert!(r["edit_date"].is_i64());
        assert_eq!(
            err(
                &mut s,
                "editmessagetext",
                json!({"chat_id": 5, "message_id": theirs, "text": "b"})
            ),
            "Bad Request: message can't be edited"
        );
        assert_eq!(
            err(
                &mut s,
                "editmessagetext",
                json!({"chat_id": 5, "message_id": 50, "text": "b"})
            ),
            "Bad Request: message to edit not found"
        );
        assert_eq!(
            err(
                &mut s,
                "editmessagetext",
                json!({"chat_id": 5, "message_id": 2, "text": "b".repeat(4097)})
            ),
            "Bad Request: MESSAGE_TOO_LONG"
        );
        assert_eq!(s.sent.len(), 2);
        assert_eq!(s.sent[1].kind, SentKind::Edit);
    }

    #[test]
    fn webhook_setting_and_info() {
        let mut s = st();
        let info = call(&mut s, "getwebhookinfo", &Params::default())
            .unwrap()
            .result;
        assert_eq!(
            info,
            json!({"url": "", "has_custom_certificate": false, "pending_update_count": 0})
        );
        let set = call(
            &mut s,
            "setwebhook",
            &params(json!({"url": "http://127.0.0.1:9/tg", "secret_token": "s3cr-t_"})),
        )
        .unwrap();
        assert_eq!(set.description, Some("Webhook was set"));
        assert_eq!(
            s.webhook.as_ref().unwrap().secret_token.as_deref(),
            Some("s3cr-t_")
        );
        assert_eq!(
            err(
                &mut s,
                "setwebhook",
                json!({"url": "http://127.0.0.1:9/tg", "secret_token": "no spaces"})
            ),
            "Bad Request: secret token contains unallowed characters"
        );
        let del = call(&mut s, "deletewebhook", &Params::default()).unwrap();
        assert_eq!(del.description, Some("Webhook was deleted"));
        let del = call(&mut s, "deletewebhook", &Params::default()).unwrap();
        assert_eq!(del.description, Some("Webhook is already deleted"));
    }

    #[test]
    fn commands_actions_and_callbacks() {
        let mut s = st();
        let cmds = json!([{"command": "new", "description": "Start over"}]);
        call(
            &mut s,
            "setmycommands",
            &params(json!({"commands": cmds.to_string()})),
        )
        .unwrap();
        assert_eq!(
            call(&mut s, "getmycommands", &Params::default())
                .unwrap()
                .result,
            cmds
        );
        assert_eq!(
            err(
                &mut s,
                "setmycommands",
                json!({"commands": [{"command": "New", "description": "x"}]})
            ),
            "Bad Request: BOT_COMMAND_INVALID"
        );
        assert!(
            call(
                &mut s,
                "sendchataction",
                &params(json!({"chat_id": 5, "action": "typing"}))
            )
            .is_ok()
        );
        assert_eq!(
            err(
                &mut s,
                "sendchataction",
                json!({"chat_id": 5, "action": "dancing"})
            ),
            "Bad Request: wrong parameter action in request"
        );
        assert_eq!(
            err(
                &mut s,
                "answercallbackquery",
                json!({"callback_query_id": "1"})
            ),
            "Bad Request: query is too old and response timeout expired or query id is invalid"
        );
        assert_eq!(err(&mut s, "sendpigeon", json!({})), "Not Found");
    }
}
