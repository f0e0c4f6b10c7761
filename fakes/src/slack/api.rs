//! The Web API: `GET|POST /api/<method>` with the token as `Authorization: Bearer` or a
//! `token` parameter, parameters from the query string and a form or JSON body, answers
//! in Slack's `{"ok": ..}` envelope (HTTP 200 even for errors, 429 for rate limits); and
//! `POST /actions/<id>`, the `response_url` of interactive payloads.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde_json::{Map, Value, json};

use super::state::State as SlackState;
use super::{ApiCall, PostKind, PostedMessage, ResponseUrlPost};
use crate::common::{self, Fault, Shared, form_pairs};
use crate::conn::Conn;

type St = State<Arc<Shared<SlackState>>>;

/// Slack's limit on a message's text, in characters.
const MAX_TEXT: usize = 40_000;
/// Slack's limit on the blocks of one message.
const MAX_BLOCKS: usize = 50;

pub(crate) fn router(sh: Arc<Shared<SlackState>>, token: String) -> Router {
    Router::new()
        .route("/api/{method}", any(api))
        .route("/actions/{id}", post(response_url))
        .with_state(sh)
        .layer(axum::Extension(Token(token)))
}

#[derive(Clone)]
struct Token(String);

/// `{"ok": true, ..fields}`.
fn ok(fields: Value) -> Response {
    let mut body = Map::new();
    body.insert("ok".into(), json!(true));
    if let Value::Object(o) = fields {
        body.extend(o);
    }
    axum::Json(Value::Object(body)).into_response()
}

/// `{"ok": false, "error": code}` with HTTP 200, as Slack answers most errors.
fn err(code: &str) -> Response {
    axum::Json(json!({"ok": false, "error": code})).into_response()
}

fn fault_response(fault: &Fault, conn: &Conn) -> Response {
    match fault {
        Fault::RateLimited { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            [(RETRY_AFTER, retry_after_secs.to_string())],
            axum::Json(json!({"ok": false, "error": "ratelimited"})),
        )
            .into_response(),
        Fault::ServerError(code) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if matches!(code, 502..=504) {
                let reason = status.canonical_reason().unwrap_or("Error");
                let page = format!(
                    "<html><head><title>{code} {reason}</title></head><body><h1>{code} {reason}</h1></body></html>"
                );
                (status, [(CONTENT_TYPE, "text/html")], page).into_response()
            } else {
                (
                    status,
                    axum::Json(json!({"ok": false, "error": "fatal_error"})),
                )
                    .into_response()
            }
        }
        Fault::Drop => common::dropped(conn),
        Fault::Malformed => common::cut_off(StatusCode::OK, r#"{"ok":true,"channel":"C0"#),
        Fault::InvalidToken => err("invalid_auth"),
    }
}

/// Query parameters and a form or JSON body merged into one object (body wins); `None` if
/// the body does not parse as its content type says.
fn params(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    let pairs = |b: &[u8]| -> Option<Vec<(String, String)>> { form_pairs(b) };
    if let Some(q) = uri.query() {
        for (k, v) in pairs(q.as_bytes())? {
            out.insert(k, Value::String(v));
        }
    }
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if body.is_empty() {
        return Some(out);
    }
    if ct.starts_with("application/json") {
        let Value::Object(o) = serde_json::from_slice(body).ok()? else {
            return None;
        };
        out.extend(o);
    } else {
        for (k, v) in pairs(body)? {
            out.insert(k, Value::String(v));
        }
    }
    Some(out)
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ").map(|t| t.trim().to_owned())
}

#[allow(clippy::too_many_arguments)]
async fn api(
    State(sh): St,
    axum::Extension(Token(token)): axum::Extension<Token>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path(method): Path<String>,
    http_method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = params(&uri, &headers, &body);
    let given = bearer(&headers).or_else(|| {
        parsed
            .as_ref()
            .and_then(|p| p.get("token"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let token_ok = given.as_deref() == Some(token.as_str());
    let fault = sh.change(|st| {
        let fault = token_ok.then(|| st.faults.take(&method)).flatten();
        st.calls.push(ApiCall {
            method: method.clone(),
            params: parsed.clone().map_or_else(
                || Value::String(String::from_utf8_lossy(&body).into_owned()),
                Value::Object,
            ),
            token: given.clone(),
            token_ok,
            http_method: http_method.to_string(),
            fault: fault.clone(),
        });
        fault
    });
    tracing::debug!(%method, token_ok, ?fault, "fake slack call");
    if let Some(f) = fault {
        return fault_response(&f, &conn);
    }
    let Some(p) = parsed else {
        return err("invalid_form_data");
    };
    match (given, token_ok) {
        (None, _) => return err("not_authed"),
        (Some(_), false) => return err("invalid_auth"),
        _ => {}
    }
    let outcome = sh.change(|st| match method.as_str() {
        "auth.test" => Ok(auth_test(st)),
        "chat.postMessage" => post_message(st, &p),
        "chat.update" => update(st, &p),
        "conversations.info" => conversations_info(st, &p),
        "users.info" => users_info(st, &p),
        _ => Err("unknown_method"),
    });
    match outcome {
        Ok(v) => ok(v),
        Err(code) => err(code),
    }
}

fn str_param<'a>(p: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    p.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn auth_test(st: &SlackState) -> Value {
    let ids = &st.ids;
    json!({
        "url": format!("https://{}.slack.com/", ids.team_domain),
        "team": "Pincer Test",
        "user": "pincer",
        "team_id": ids.team_id,
        "user_id": ids.bot_user_id,
        "bot_id": ids.bot_id,
        "is_enterprise_install": false,
    })
}

/// `blocks` as given (a JSON array, or a string holding one), checked as Slack does: an
/// array of at most 50 objects, each with a `type`.
fn blocks(p: &Map<String, Value>) -> Result<Option<Value>, &'static str> {
    let v = match p.get("blocks") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.is_empty() => return Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s).map_err(|_| "invalid_blocks_format")?,
        Some(v) => v.clone(),
    };
    let list = v.as_array().ok_or("invalid_blocks_format")?;
    if list.len() > MAX_BLOCKS
        || list
            .iter()
            .any(|b| b.get("type").is_none_or(|t| !t.is_string()))
    {
        return Err("invalid_blocks");
    }
    Ok(Some(v))
}

/// The text, blocks and thread of a post or update, checked.
fn content(p: &Map<String, Value>) -> Result<(Option<String>, Option<Value>), &'static str> {
    let text = str_param(p, "text").map(str::to_owned);
    let blocks = blocks(p)?;
    if text.as_ref().is_some_and(|t| t.chars().count() > MAX_TEXT) {
        return Err("msg_too_long");
    }
    if text.is_none() && blocks.is_none() && p.get("attachments").is_none() {
        return Err("no_text");
    }
    Ok((text, blocks))
}

fn post_message(st: &mut SlackState, p: &Map<String, Value>) -> Result<Value, &'static str> {
    let channel = str_param(p, "channel").ok_or("channel_not_found")?;
    if st.known_channel(channel).is_none() {
        return Err("channel_not_found");
    }
    let (text, blocks) = content(p)?;
    let thread_ts = str_param(p, "thread_ts").map(str::to_owned);
    let ts = st.next_ts();
    let ids = st.ids.clone();
    let mut m = json!({
        "type": "message",
        "user": ids.bot_user_id,
        "bot_id": ids.bot_id,
        "app_id": ids.app_id,
        "text": text.clone().unwrap_or_default(),
        "ts": ts,
        "team": ids.team_id,
        "bot_profile": {"id": ids.bot_id, "app_id": ids.app_id, "name": "Pincer", "deleted": false, "team_id": ids.team_id},
    });
    if let Some(b) = &blocks {
        m["blocks"] = b.clone();
    }
    if let Some(t) = &thread_ts {
        m["thread_ts"] = json!(t);
        if let Some(parent) = st.message(channel, t).and_then(|x| x.get("user")) {
            m["parent_user_id"] = parent.clone();
        }
    }
    st.store_message(channel, &m);
    st.posted.push(PostedMessage {
        kind: PostKind::Post,
        channel: channel.to_owned(),
        ts: ts.clone(),
        text,
        thread_ts,
        blocks,
    });
    Ok(json!({"channel": channel, "ts": ts, "message": m}))
}

fn update(st: &mut SlackState, p: &Map<String, Value>) -> Result<Value, &'static str> {
    let channel = str_param(p, "channel").ok_or("channel_not_found")?;
    if st.known_channel(channel).is_none() {
        return Err("channel_not_found");
    }
    let ts = str_param(p, "ts").ok_or("message_not_found")?;
    let mut m = st
        .message(channel, ts)
        .cloned()
        .ok_or("message_not_found")?;
    if m.get("bot_id").and_then(Value::as_str) != Some(st.ids.bot_id.as_str()) {
        return Err("cant_update_message");
    }
    let (text, blocks) = content(p)?;
    m["text"] = json!(text.clone().unwrap_or_default());
    match &blocks {
        Some(b) => m["blocks"] = b.clone(),
        None => {
            if let Some(o) = m.as_object_mut() {
                o.remove("blocks");
            }
        }
    }
    let edit_ts = st.next_ts();
    m["edited"] = json!({"user": st.ids.bot_user_id, "ts": edit_ts});
    st.store_message(channel, &m);
    st.posted.push(PostedMessage {
        kind: PostKind::Update,
        channel: channel.to_owned(),
        ts: ts.to_owned(),
        text: text.clone(),
        thread_ts: m
            .get("thread_ts")
            .and_then(Value::as_str)
            .map(str::to_owned),
        blocks,
    });
    Ok(json!({"channel": channel, "ts": ts, "text": text.unwrap_or_default(), "message": m}))
}

fn conversations_info(st: &SlackState, p: &Map<String, Value>) -> Result<Value, &'static str> {
    let id = str_param(p, "channel").ok_or("channel_not_found")?;
    let c = st.known_channel(id).ok_or("channel_not_found")?;
    Ok(json!({ "channel": c.to_json() }))
}

fn users_info(st: &SlackState, p: &Map<String, Value>) -> Result<Value, &'static str> {
    let id = str_param(p, "user").ok_or("user_not_found")?;
    let u = st.known_user(id).ok_or("user_not_found")?;
    Ok(json!({ "user": u.to_json(&st.ids.team_id) }))
}

/// A POST to an interactive payload's `response_url`: recorded; answered as Slack does.
async fn response_url(
    State(sh): St,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let parsed: Option<Value> = if is_json {
        serde_json::from_slice(&body).ok()
    } else {
        None
    };
    let known = sh.change(|st| {
        let known = st.response_ids.contains(&id);
        st.responses.push(ResponseUrlPost {
            id: id.clone(),
            body: parsed
                .clone()
                .unwrap_or_else(|| Value::String(String::from_utf8_lossy(&body).into_owned())),
        });
        known
    });
    match (known, parsed) {
        (false, _) => (StatusCode::NOT_FOUND, "invalid_token").into_response(),
        (true, None) => (StatusCode::BAD_REQUEST, "invalid_payload").into_response(),
        (true, Some(_)) => ok(json!({})),
    }
}
