//! The HTTP side: `/bot<token>/<method>` (GET or POST, any case), `/file/bot<token>/<path>`,
//! the token check, faults, long-polled `getUpdates`, and Telegram's response envelopes.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::methods::{self, Answer};
use super::params::Params;
use super::state::Shared;
use super::{ApiError, Fault, RecordedCall};
use crate::conn::Conn;

/// Uploads are recorded, not stored; Telegram's own limit is 50 MB.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/file/{bot}/{*path}", any(file))
        .route("/{bot}/{method}", any(bot_method))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

type St = State<Arc<Shared>>;

/// `<digits>:<letters, digits, _ and ->`: what a token looks like. A wrong token of that
/// shape is 401 Unauthorized; anything else is 404 Not Found, as with Telegram.
fn looks_like_token(t: &str) -> bool {
    t.split_once(':').is_some_and(|(id, secret)| {
        !id.is_empty()
            && id.bytes().all(|c| c.is_ascii_digit())
            && !secret.is_empty()
            && secret
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    })
}

fn token_error(token: &str) -> ApiError {
    if looks_like_token(token) {
        ApiError::new(401, "Unauthorized")
    } else {
        ApiError::new(404, "Not Found")
    }
}

pub(crate) fn ok(a: Answer) -> Response {
    let mut body = json!({"ok": true, "result": a.result});
    if let Some(d) = a.description {
        body["description"] = json!(d);
    }
    axum::Json(body).into_response()
}

pub(crate) fn error(e: &ApiError) -> Response {
    let mut body = json!({"ok": false, "error_code": e.code, "description": e.description});
    if let Some(secs) = e.retry_after {
        body["parameters"] = json!({ "retry_after": secs });
    }
    let status = StatusCode::from_u16(e.code).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(body)).into_response()
}

async fn not_found() -> Response {
    error(&ApiError::new(404, "Not Found"))
}

fn fault_response(fault: Fault, conn: &Conn) -> Response {
    match fault {
        Fault::TooManyRequests { retry_after_secs } => error(&ApiError {
            code: 429,
            description: format!("Too Many Requests: retry after {retry_after_secs}"),
            retry_after: Some(retry_after_secs),
        }),
        Fault::ServerError(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let reason = status.canonical_reason().unwrap_or("Error");
            if matches!(code, 502..=504) {
                // what Telegram's nginx front answers when the Bot API server is away
                let page = format!(
                    "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n\
                     <center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n\
                     </body>\r\n</html>\r\n"
                );
                (status, [(CONTENT_TYPE, "text/html")], page).into_response()
            } else {
                error(&ApiError::new(status.as_u16(), reason))
            }
        }
        Fault::Drop => {
            conn.kill();
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Fault::Malformed => (
            StatusCode::OK,
            [(CONTENT_TYPE, "application/json")],
            r#"{"ok":true,"result":{"message_id":"#,
        )
            .into_response(),
        Fault::Unauthorized => error(&ApiError::new(401, "Unauthorized")),
        Fault::Slow { .. } => unreachable!("answered normally, after its delay"),
    }
}

async fn bot_method(
    State(sh): St,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path((bot, method)): Path<(String, String)>,
    http_method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(token) = bot.strip_prefix("bot") else {
        return not_found().await;
    };
    let lower = method.to_ascii_lowercase();
    let name = methods::canonical(&lower).map_or_else(|| method.clone(), str::to_owned);
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let parsed = Params::from_request(uri.query(), content_type, &body);
    let token_ok = token == sh.token;
    let fault = sh.change(|st| {
        let fault = token_ok.then(|| st.take_fault(&lower)).flatten();
        st.calls.push(RecordedCall {
            method: name.clone(),
            params: parsed.as_ref().map_or_else(
                |_| Value::String(String::from_utf8_lossy(&body).into_owned()),
                Params::to_value,
            ),
            http_method: http_method.to_string(),
            token_ok,
            fault: fault.clone(),
        });
        fault
    });
    tracing::debug!(method = %name, token_ok, ?fault, "fake telegram call");
    if !token_ok {
        return error(&token_error(token));
    }
    match fault {
        Some(Fault::Slow { millis }) => tokio::time::sleep(Duration::from_millis(millis)).await,
        Some(f) => return fault_response(f, &conn),
        None => {}
    }
    let params = match parsed {
        Ok(p) => p,
        Err(e) => return error(&e),
    };
    if lower == "getupdates" {
        return get_updates(&sh, &params).await;
    }
    match sh.change(|st| methods::call(st, &lower, &params)) {
        Ok(a) => ok(a),
        Err(e) => error(&e),
    }
}

/// Long polling: confirms by `offset`, then answers as soon as there is an update to give
/// or when `timeout` seconds (tokio time) have passed. A newer getUpdates supersedes a
/// waiting one, which answers 409 as Telegram's does.
async fn get_updates(sh: &Shared, p: &Params) -> Response {
    let offset = p.i64("offset").ok().flatten().unwrap_or(0);
    let limit = p.i64("limit").ok().flatten().unwrap_or(100).clamp(1, 100) as usize;
    let timeout = p.i64("timeout").ok().flatten().unwrap_or(0).max(0) as u64;
    let allowed = match methods::allowed_updates(p) {
        Ok(a) => a,
        Err(e) => return error(&e),
    };
    let mut changes = sh.watch();
    let mut down = sh.shutdown.subscribe();
    let started = sh.change(|st| {
        if st.webhook.is_some() {
            return Err(ApiError::new(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            ));
        }
        st.confirm(offset);
        if let Some(a) = allowed {
            st.set_allowed(a);
        }
        st.poll_generation += 1;
        Ok(st.poll_generation)
    });
    let generation = match started {
        Ok(g) => g,
        Err(e) => return error(&e),
    };
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        let batch = {
            let mut st = sh.lock();
            if st.poll_generation != generation {
                return error(&ApiError::new(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                ));
            }
            st.batch(limit)
        };
        if !batch.is_empty() || Instant::now() >= deadline || *down.borrow() {
            return ok(Answer {
                result: Value::Array(batch),
                description: None,
            });
        }
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return ok(Answer { result: json!([]), description: None });
                }
            }
            () = tokio::time::sleep_until(deadline) => {}
            _ = down.wait_for(|d| *d) => {}
        }
    }
}

/// `GET /file/bot<token>/<file_path>`: the bytes of a file added with `add_file`. Recorded
/// as a call named `file`, and faults set for `file` apply.
async fn file(
    State(sh): St,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path((bot, path)): Path<(String, String)>,
    http_method: Method,
) -> Response {
    let Some(token) = bot.strip_prefix("bot") else {
        return not_found().await;
    };
    let token_ok = token == sh.token;
    let (fault, bytes) = sh.change(|st| {
        let fault = token_ok.then(|| st.take_fault("file")).flatten();
        st.calls.push(RecordedCall {
            method: "file".into(),
            params: json!({ "file_path": path }),
            http_method: http_method.to_string(),
            token_ok,
            fault: fault.clone(),
        });
        let bytes = st
            .files
            .iter()
            .find(|f| f.path == path)
            .map(|f| f.bytes.clone());
        (fault, bytes)
    });
    if !token_ok {
        return error(&token_error(token));
    }
    if let Some(f) = fault {
        return fault_response(f, &conn);
    }
    match bytes {
        Some(b) => (
            StatusCode::OK,
            [(CONTENT_TYPE, "application/octet-stream")],
            b,
        )
            .into_response(),
        None => error(&ApiError::new(404, "Not Found")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shapes() {
        assert!(looks_like_token("123456:ABC-def_9"));
        assert!(!looks_like_token("123456"));
        assert!(!looks_like_token("abc:def"));
        assert!(!looks_like_token("1:has space"));
        assert_eq!(token_error("1:x").code, 401);
        assert_eq!(token_error("nope").code, 404);
    }
}
