//! The REST API under `/api/v10`: Get Gateway (Bot), the current user, Create and Edit
//! Message, interaction callbacks and their webhooks, and bulk overwrite of global
//! commands. Bot routes want `Authorization: Bot <token>` (401 `{"message": "401:
//! Unauthorized", "code": 0}` otherwise); interaction routes are authorized by the
//! interaction's token, as on Discord. Errors are `{"message", "code"}` (plus `errors` for
//! 50035 Invalid Form Body); successful bot calls carry `X-RateLimit-*` headers.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde_json::{Value, json};

use super::gateway;
use super::state::State as DiscordState;
use super::{ChannelKind, InteractionResponse, RecordedCall, SentKind, SentMessage};
use crate::common::{self, Fault, Shared};
use crate::conn::Conn;

type Sh = Arc<Shared<DiscordState>>;
type St = State<Sh>;

/// Discord's limit on a message's content, in characters.
const MAX_CONTENT: usize = 2_000;

pub(crate) fn router(sh: Sh) -> Router {
    Router::new()
        .route("/", get(gateway::upgrade))
        .route("/resume", get(gateway::upgrade))
        .route("/api/v10/gateway", get(get_gateway))
        .route("/api/v10/gateway/bot", get(get_gateway_bot))
        .route("/api/v10/users/@me", get(users_me))
        .route("/api/v10/channels/{channel}/messages", post(create_message))
        .route(
            "/api/v10/channels/{channel}/messages/{message}",
            patch(edit_message),
        )
        .route(
            "/api/v10/interactions/{id}/{token}/callback",
            post(interaction_callback),
        )
        .route("/api/v10/webhooks/{app}/{token}", post(followup))
        .route(
            "/api/v10/webhooks/{app}/{token}/messages/@original",
            patch(edit_original),
        )
        .route(
            "/api/v10/applications/{app}/commands",
            get(get_commands).put(bulk_overwrite_commands),
        )
        .with_state(sh)
}

/// A Discord error answer.
pub(crate) struct ApiError {
    status: StatusCode,
    body: Value,
}

impl ApiError {
    fn new(status: u16, code: u32, message: &str) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            body: json!({"message": message, "code": code}),
        }
    }

    /// 400 Invalid Form Body with one field error, e.g. `content` /
    /// `BASE_TYPE_MAX_LENGTH`.
    fn form(path: &[&str], code: &str, message: &str) -> Self {
        let mut errors = json!({"_errors": [{"code": code, "message": message}]});
        for p in path.iter().rev() {
            errors = json!({ *p: errors });
        }
        Self {
            status: StatusCode::BAD_REQUEST,
            body: json!({"message": "Invalid Form Body", "code": 50_035, "errors": errors}),
        }
    }

    fn unauthorized() -> Self {
        Self::new(401, 0, "401: Unauthorized")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

fn fault_response(fault: &Fault, conn: &Conn, route: &str) -> Response {
    match fault {
        Fault::RateLimited { retry_after_secs } => {
            let secs = retry_after_secs.to_string();
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({
                    "message": "You are being rate limited.",
                    "retry_after": *retry_after_secs as f64,
                    "global": false,
                })),
            )
                .into_response();
            let h = r.headers_mut();
            h.insert(
                RETRY_AFTER,
                HeaderValue::from_str(&secs).unwrap_or(HeaderValue::from_static("1")),
            );
            h.insert("x-ratelimit-limit", HeaderValue::from_static("5"));
            h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
            h.insert(
                "x-ratelimit-reset-after",
                HeaderValue::from_str(&format!("{secs}.000"))
                    .unwrap_or(HeaderValue::from_static("1.000")),
            );
            h.insert("x-ratelimit-scope", HeaderValue::from_static("user"));
            if let Ok(v) = HeaderValue::from_str(&bucket(route)) {
                h.insert("x-ratelimit-bucket", v);
            }
            r
        }
        Fault::ServerError(code) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let msg = format!(
                "{}: {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("Error")
            );
            (status, axum::Json(json!({"message": msg, "code": 0}))).into_response()
        }
        Fault::Drop => common::dropped(conn),
        Fault::Malformed => common::cut_off(StatusCode::OK, r#"{"id": "1", "channel_id": "#),
        Fault::InvalidToken => ApiError::unauthorized().into_response(),
    }
}

fn bucket(route: &str) -> String {
    format!(
        "fake{:x}",
        route
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
    )
}

/// The rate-limit headers of a successful call on a route.
fn with_rate_headers(mut r: Response, route: &str, now_ms: i64) -> Response {
    let h = r.headers_mut();
    let reset = format!("{}.{:03}", now_ms / 1000 + 1, now_ms % 1000);
    for (k, v) in [
        ("x-ratelimit-limit", "5".to_owned()),
        ("x-ratelimit-remaining", "4".to_owned()),
        ("x-ratelimit-reset", reset),
        ("x-ratelimit-reset-after", "1.000".to_owned()),
        ("x-ratelimit-bucket", bucket(route)),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(HeaderName::from_static(k), v);
        }
    }
    r
}

/// How a call is authorized.
enum Auth<'a> {
    /// `Authorization: Bot <token>`.
    Bot(&'a HeaderMap),
    /// The path's interaction or webhook token (checked by the handler).
    Token,
    /// Nothing (Get Gateway).
    None,
}

/// Records the call; answers the response it gets instead of being run (a fault, an
/// auth error), if any.
fn admit(
    sh: &Sh,
    conn: &Conn,
    route: &str,
    path: String,
    params: Value,
    auth: Auth<'_>,
) -> Option<Response> {
    let fault = sh.change(|st| {
        let token_ok = match auth {
            Auth::Bot(h) => {
                h.get(AUTHORIZATION).and_then(|v| v.to_str().ok())
                    == Some(&format!("Bot {}", st.token))
            }
            Auth::Token | Auth::None => true,
        };
        let fault = token_ok.then(|| st.faults.take(route)).flatten();
        st.calls.push(RecordedCall {
            route: route.to_owned(),
            path,
            params,
            token_ok,
            fault: fault.clone(),
        });
        if token_ok {
            fault.map(Some)
        } else {
            Some(None)
        }
    });
    match fault {
        None => None,
        Some(None) => Some(ApiError::unauthorized().into_response()),
        Some(Some(f)) => Some(fault_response(&f, conn, route)),
    }
}

fn body_json(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|_| ApiError::new(400, 50_109, "The request body contains invalid JSON."))
}

fn raw(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn get_gateway(
    State(sh): St,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = admit(
        &sh,
        &conn,
        "get_gateway",
        "/gateway".into(),
        json!({}),
        Auth::None,
    ) {
        return r;
    }
    axum::Json(json!({"url": gateway_url(&headers)})).into_response()
}

/// `ws://<the Host asked for>`: the fake serves its Gateway on its own port.
pub(crate) fn gateway_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("ws://{host}")
}

async fn get_gateway_bot(
    State(sh): St,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = admit(
        &sh,
        &conn,
        "gateway_bot",
        "/gateway/bot".into(),
        json!({}),
        Auth::Bot(&headers),
    ) {
        return r;
    }
    let (remaining, now) = {
        let st = sh.lock();
        (1_000u64.saturating_sub(st.gw.identifies), st.clock.now_ms())
    };
    let body = json!({
        "url": gateway_url(&headers),
        "shards": 1,
        "session_start_limit": {"total": 1000, "remaining": remaining, "reset_after": 14_400_000, "max_concurrency": 1},
    });
    with_rate_headers(axum::Json(body).into_response(), "gateway_bot", now)
}

async fn users_me(
    State(sh): St,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = admit(
        &sh,
        &conn,
        "users_me",
        "/users/@me".into(),
        json!({}),
        Auth::Bot(&headers),
    ) {
        return r;
    }
    let st = sh.lock();
    with_rate_headers(
        axum::Json(st.bot.to_json()).into_response(),
        "users_me",
        st.clock.now_ms(),
    )
}

/// `content`, checked: at most 2,000 characters, and something to send.
fn content_of(b: &Value) -> Result<Option<String>, ApiError> {
    let content = b.get("content").and_then(Value::as_str).map(str::to_owned);
    if content
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_CONTENT)
    {
        return Err(ApiError::form(
            &["content"],
            "BASE_TYPE_MAX_LENGTH",
            "Must be 2000 or fewer in length.",
        ));
    }
    Ok(content)
}

fn has_payload(content: Option<&String>, b: &Value) -> bool {
    let non_empty = |k: &str| {
        b.get(k)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    content.is_some_and(|c| !c.trim().is_empty())
        || non_empty("embeds")
        || non_empty("components")
        || non_empty("sticker_ids")
}

async fn create_message(
    State(sh): St,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path(channel_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/channels/{channel_id}/messages");
    if let Some(r) = admit(
        &sh,
        &conn,
        "create_message",
        path,
        raw(&body),
        Auth::Bot(&headers),
    ) {
        return r;
    }
    let outcome = sh.change(|st| -> Result<Value, ApiError> {
        let b = body_json(&body)?;
        if !st.channels.contains_key(&channel_id) {
            return Err(ApiError::new(404, 10_003, "Unknown Channel"));
        }
        let reference = b.pointer("/message_reference/message_id").and_then(|v| {
            v.as_str()
                .map(str::to_owned)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        });
        let fail_if_missing = b
            .pointer("/message_reference/fail_if_not_exists")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let known = reference.as_ref().filter(|r| {
            st.messages
                .get(*r)
                .is_some_and(|m| m["channel_id"] == json!(channel_id))
        });
        if reference.is_some() && known.is_none() && fail_if_missing {
            return Err(ApiError::form(
                &["message_reference"],
                "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                "Unknown message",
            ));
        }
        let known = known.cloned();
        bot_post(st, &channel_id, &b, SentKind::Message, known, None)
    });
    let now = sh.lock().clock.now_ms();
    match outcome {
        Ok(m) => with_rate_headers(axum::Json(m).into_response(), "create_message", now),
        Err(e) => e.into_response(),
    }
}

/// A message the bot posts (`content`, `embeds`, `components` of `payload`) in a channel:
/// checked, stored, recorded and echoed on the Gateway as `MESSAGE_CREATE`. An
/// interaction's reply also becomes the interaction's original response.
fn bot_post(
    st: &mut DiscordState,
    channel_id: &str,
    payload: &Value,
    kind: SentKind,
    reply_to: Option<String>,
    interaction_id: Option<&str>,
) -> Result<Value, ApiError> {
    let channel = st
        .channels
        .get(channel_id)
        .cloned()
        .ok_or_else(|| ApiError::new(404, 10_003, "Unknown Channel"))?;
    let content = content_of(payload)?;
    if !has_payload(content.as_ref(), payload) {
        return Err(ApiError::new(400, 50_006, "Cannot send an empty message"));
    }
    let bot = st.bot.clone();
    let text = content.unwrap_or_default();
    let mut m = st.new_message(&channel, &bot, &text, reply_to.as_deref());
    for k in ["embeds", "components"] {
        if let Some(v) = payload.get(k) {
            m[k] = v.clone();
        }
    }
    let message_id = m["id"].as_str().unwrap_or_default().to_owned();
    if let (SentKind::InteractionReply, Some(i)) = (kind, interaction_id) {
        m["type"] = json!(20);
        m["interaction_metadata"] = json!({"id": i, "type": 2});
        if let Some(it) = st.interactions.get_mut(i) {
            it.original = Some(message_id.clone());
        }
    }
    st.messages.insert(message_id.clone(), m.clone());
    st.sent.push(SentMessage {
        kind,
        channel_id: channel_id.to_owned(),
        message_id,
        content: text,
        reply_to,
        embeds: payload.get("embeds").cloned(),
        components: payload.get("components").cloned(),
        interaction_id: interaction_id.map(str::to_owned),
    });
    st.dispatch("MESSAGE_CREATE", &m);
    Ok(m)
}

/// Applies an edit (`content`, `embeds`, `components`) to a stored message and records it.
fn apply_edit(
    st: &mut DiscordState,
    message_id: &str,
    b: &Value,
    kind: SentKind,
    interaction_id: Option<String>,
) -> Result<Value, ApiError> {
    let content = content_of(b)?;
    let mut m = st
        .messages
        .get(message_id)
        .cloned()
        .ok_or_else(|| ApiError::new(404, 10_008, "Unknown Message"))?;
    if m["author"]["id"] != json!(st.bot.id) {
        return Err(ApiError::new(
            403,
            50_005,
            "Cannot edit a message authored by another user",
        ));
    }
    if let Some(c) = &content {
        m["content"] = json!(c);
        m["mentions"] = json!(st.mentions(c));
    }
    for k in ["embeds", "components"] {
        if let Some(v) = b.get(k) {
            m[k] = v.clone();
        }
    }
    m["edited_timestamp"] = json!(st.timestamp());
    st.messages.insert(message_id.to_owned(), m.clone());
    st.sent.push(SentMessage {
        kind,
        channel_id: m["channel_id"].as_str().unwrap_or_default().to_owned(),
        message_id: message_id.to_owned(),
        content: m["content"].as_str().unwrap_or_default().to_owned(),
        reply_to: None,
        embeds: b.get("embeds").cloned(),
        components: b.get("components").cloned(),
        interaction_id,
    });
    Ok(m)
}

async fn edit_message(
    State(sh): St,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path((channel_id, message_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/channels/{channel_id}/messages/{message_id}");
    if let Some(r) = admit(
        &sh,
        &conn,
        "edit_message",
        path,
        raw(&body),
        Auth::Bot(&headers),
    ) {
        return r;
    }
    let outcome = sh.change(|st| {
        let b = body_json(&body)?;
        if !st.channels.contains_key(&channel_id) {
            return Err(ApiError::new(404, 10_003, "Unknown Channel"));
        }
        if st
            .messages
            .get(&message_id)
            .is_some_and(|m| m["channel_id"] != json!(channel_id))
        {
            return Err(ApiError::new(404, 10_008, "Unknown Message"));
        }
        apply_edit(st, &message_id, &b, SentKind::Edit, None)
    });
    let now = sh.lock().clock.now_ms();
    match outcome {
        Ok(m) => with_rate_headers(axum::Json(m).into_response(), "edit_message", now),
        Err(e) => e.into_response(),
    }
}

#[derive(serde::Deserialize)]
struct CallbackQuery {
    with_response: Option<bool>,
}

async fn interaction_callback(
    State(sh): St,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path((id, token)): Path<(String, String)>,
    Query(q): Query<CallbackQuery>,
    body: Bytes,
) -> Response {
    let path = format!("/interactions/{id}/<token>/callback");
    if let Some(r) = admit(
        &sh,
        &conn,
        "interaction_callback",
        path,
        raw(&body),
        Auth::Token,
    ) {
        return r;
    }
    let outcome = sh.change(|st| -> Result<(u8, Option<Value>), ApiError> {
        let b = body_json(&body)?;
        let unknown = || ApiError::new(404, 10_062, "Unknown interaction");
        let it = st
            .interactions
            .get(&id)
            .filter(|i| i.token == token)
            .cloned()
            .ok_or_else(unknown)?;
        if it.answered.is_some() {
            return Err(ApiError::new(
                400,
                40_060,
                "Interaction has already been acknowledged.",
            ));
        }
        let kind = b.get("type").and_then(Value::as_u64).unwrap_or(0) as u8;
        let data = b.get("data").cloned().unwrap_or(Value::Null);
        let message = match kind {
            4 => {
                let m = bot_post(
                    st,
                    &it.channel_id,
                    &data,
                    SentKind::InteractionReply,
                    None,
                    Some(&id),
                )?;
                Some(m)
            }
            5..=7 => None,
            _ => {
                return Err(ApiError::form(
                    &["type"],
                    "BASE_TYPE_CHOICES",
                    "Value must be one of {4, 5, 6, 7, 9, 10, 12}.",
                ));
            }
        };
        if let Some(i) = st.interactions.get_mut(&id) {
            i.answered = Some(kind);
        }
        st.responses.push(InteractionResponse {
            interaction_id: id.clone(),
            kind,
            data,
        });
        Ok((kind, message))
    });
    match outcome {
        Ok((kind, message)) if q.with_response == Some(true) => {
            let mut resource = json!({"type": kind});
            if let Some(m) = message {
                resource["message"] = m;
            }
            axum::Json(json!({
                "interaction": {"id": id, "type": 2, "response_message_loading": kind == 5, "response_message_ephemeral": false},
                "resource": resource,
            }))
            .into_response()
        }
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

/// The interaction whose token this is, for the webhook routes.
fn by_token(
    st: &DiscordState,
    app: &str,
    token: &str,
) -> Result<(String, super::state::Interaction), ApiError> {
    if app != st.app_id {
        return Err(ApiError::new(404, 10_015, "Unknown Webhook"));
    }
    st.interactions
        .iter()
        .find(|(_, i)| i.token == token)
        .map(|(id, i)| (id.clone(), i.clone()))
        .ok_or_else(|| ApiError::new(401, 50_027, "Invalid Webhook Token"))
}

/// `PATCH /webhooks/{app}/{token}/messages/@original`: the reply of a deferred interaction
/// (made now), or an edit of the one sent.
async fn edit_original(
    State(sh): St,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path((app, token)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let path = format!("/webhooks/{app}/<token>/messages/@original");
    if let Some(r) = admit(&sh, &conn, "edit_original", path, raw(&body), Auth::Token) {
        return r;
    }
    let outcome = sh.change(|st| {
        let b = body_json(&body)?;
        let (id, it) = by_token(st, &app, &token)?;
        match (it.answered, it.original) {
            (None, _) => Err(ApiError::new(404, 10_008, "Unknown Message")),
            (Some(_), Some(mid)) => apply_edit(st, &mid, &b, SentKind::Edit, Some(id)),
            (Some(_), None) => bot_post(
                st,
                &it.channel_id,
                &b,
                SentKind::InteractionReply,
                None,
                Some(&id),
            ),
        }
    });
    match outcome {
        Ok(m) => axum::Json(m).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /webhooks/{app}/{token}`: a follow-up message to an answered interaction.
async fn followup(
    State(sh): St,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path((app, token)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let path = format!("/webhooks/{app}/<token>");
    if let Some(r) = admit(&sh, &conn, "followup", path, raw(&body), Auth::Token) {
        return r;
    }
    let outcome = sh.change(|st| {
        let b = body_json(&body)?;
        let (id, it) = by_token(st, &app, &token)?;
        if it.answered.is_none() {
            return Err(ApiError::new(404, 10_015, "Unknown Webhook"));
        }
        bot_post(st, &it.channel_id, &b, SentKind::Followup, None, Some(&id))
    });
    match outcome {
        Ok(m) => axum::Json(m).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn get_commands(
    State(sh): St,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/applications/{app}/commands");
    if let Some(r) = admit(
        &sh,
        &conn,
        "get_commands",
        path,
        json!({}),
        Auth::Bot(&headers),
    ) {
        return r;
    }
    let st = sh.lock();
    if app != st.app_id {
        return ApiError::new(403, 50_001, "Missing Access").into_response();
    }
    axum::Json(Value::Array(st.commands.clone())).into_response()
}

/// A command name: 1-32 of lowercase letters, digits, `-` and `_`.
fn valid_name(n: &str) -> bool {
    (1..=32).contains(&n.chars().count())
        && n.chars()
            .all(|c| c.is_lowercase() || c.is_numeric() || c == '-' || c == '_')
}

async fn bulk_overwrite_commands(
    State(sh): St,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path(app): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/applications/{app}/commands");
    if let Some(r) = admit(
        &sh,
        &conn,
        "bulk_overwrite_commands",
        path,
        raw(&body),
        Auth::Bot(&headers),
    ) {
        return r;
    }
    let outcome = sh.change(|st| {
        if app != st.app_id {
            return Err(ApiError::new(403, 50_001, "Missing Access"));
        }
        let b = body_json(&body)?;
        let list = b.as_array().ok_or_else(|| {
            ApiError::form(
                &[],
                "MODEL_TYPE_CONVERT",
                "Only iterables may be used in a ListType",
            )
        })?;
        let mut out = Vec::new();
        for (i, c) in list.iter().enumerate() {
            let idx = i.to_string();
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            let kind = c.get("type").and_then(Value::as_u64).unwrap_or(1);
            if !valid_name(name) {
                return Err(ApiError::form(
                    &[&idx, "name"],
                    "APPLICATION_COMMAND_INVALID_NAME",
                    "Command name is invalid",
                ));
            }
            let description = c.get("description").and_then(Value::as_str).unwrap_or("");
            if kind == 1 && !(1..=100).contains(&description.chars().count()) {
                return Err(ApiError::form(
                    &[&idx, "description"],
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                ));
            }
            let id = st
                .commands
                .iter()
                .find(|old| old["name"] == json!(name))
                .and_then(|old| old["id"].as_str().map(str::to_owned))
                .unwrap_or_else(|| st.snowflake());
            let version = st.snowflake();
            let mut cmd = json!({
                "id": id,
                "application_id": st.app_id,
                "version": version,
                "default_member_permissions": null,
                "type": kind,
                "name": name,
                "description": description,
                "dm_permission": true,
                "contexts": null,
                "integration_types": [0],
                "nsfw": false,
            });
            if let Some(o) = c.get("options") {
                cmd["options"] = o.clone();
            }
            out.push(cmd);
        }
        st.commands = out.clone();
        Ok(out)
    });
    let now = sh.lock().clock.now_ms();
    match outcome {
        Ok(list) => with_rate_headers(
            axum::Json(Value::Array(list)).into_response(),
            "bulk_overwrite_commands",
            now,
        ),
        Err(e) => e.into_response(),
    }
}

/// The channel object an interaction carries.
pub(crate) fn interaction_channel(kind: &ChannelKind, id: &str) -> Value {
    match kind {
        ChannelKind::Guild { guild_id } => json!({"id": id, "type": 0, "guild_id": guild_id}),
        ChannelKind::Dm { .. } => json!({"id": id, "type": 1}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_errors_nest_by_path() {
        let e = ApiError::form(&["0", "name"], "X", "bad");
        assert_eq!(e.body["code"], 50_035);
        assert_eq!(e.body["errors"]["0"]["name"]["_errors"][0]["code"], "X");
    }

    #[test]
    fn command_names() {
        assert!(valid_name("new"));
        assert!(valid_name("set-model_2"));
        assert!(!valid_name("New"));
        assert!(!valid_name(""));
        assert!(!valid_name("has space"));
        assert!(!valid_name(&"a".repeat(33)));
    }
}
