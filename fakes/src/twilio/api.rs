//! The REST API: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (create), `GET
//! .../Messages/{Sid}.json` (fetch) and `GET .../Messages/{Sid}/Media/{MediaSid}` (the media
//! of inbound MMS), with HTTP Basic auth `AccountSid:AuthToken` and Twilio's error body
//! `{code, message, more_info, status}`; and the status callbacks that follow a create.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Map, Value, json};

use super::{Outcome, RecordedCall, SentSms, StatusCallback, TwilioState, signature};
use crate::common::{self, Fault, Shared, form_pairs};
use crate::conn::Conn;

type St = State<Arc<Shared<TwilioState>>>;

/// The longest body Twilio takes, in characters.
const MAX_BODY: usize = 1_600;
/// Twilio's magic test number that is never a valid `To`.
const MAGIC_INVALID_TO: &str = "+15005550001";

pub(crate) fn router(sh: Arc<Shared<TwilioState>>) -> Router {
    Router::new()
        .route("/2010-04-01/Accounts/{sid}/Messages.json", post(create))
        .route("/2010-04-01/Accounts/{sid}/Messages/{file}", get(fetch))
        .route(
            "/2010-04-01/Accounts/{sid}/Messages/{msid}/Media/{mid}",
            get(media),
        )
        .with_state(sh)
}

/// A Twilio error answer.
pub(crate) struct ApiError {
    status: u16,
    code: u32,
    message: String,
}

impl ApiError {
    fn new(status: u16, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad(code: u32, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let body = axum::Json(json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status,
        }));
        if self.status == 401 {
            (
                status,
                [(WWW_AUTHENTICATE, "Basic realm=\"Twilio API\"")],
                body,
            )
                .into_response()
        } else {
            (status, body).into_response()
        }
    }
}

fn unauthorized() -> ApiError {
    ApiError::new(401, 20_003, "Authenticate")
}

fn fault_response(fault: &Fault, conn: &Conn) -> Response {
    match fault {
        Fault::RateLimited { retry_after_secs } => (
            [(RETRY_AFTER, retry_after_secs.to_string())],
            ApiError::new(429, 20_429, "Too Many Requests"),
        )
            .into_response(),
        Fault::ServerError(code) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let reason = status.canonical_reason().unwrap_or("Error");
            ApiError::new(status.as_u16(), 20_000 + u32::from(*code), reason).into_response()
        }
        Fault::Drop => common::dropped(conn),
        Fault::Malformed => {
            common::cut_off(StatusCode::CREATED, r#"{"account_sid": "AC", "sid": "SM"#)
        }
        Fault::InvalidToken => unauthorized().into_response(),
    }
}

/// `AccountSid:AuthToken` from HTTP Basic auth.
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let b64 = v.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// Records the call and decides: a fault, an auth error, a wrong account, or go on.
fn admit(
    sh: &Shared<TwilioState>,
    endpoint: &str,
    path_sid: &str,
    path: &str,
    headers: &HeaderMap,
    params: Value,
) -> Result<(), Admission> {
    sh.change(|st| {
        let auth_ok =
            basic_auth(headers).is_some_and(|(u, p)| u == st.account_sid && p == st.auth_token);
        let fault = auth_ok.then(|| st.faults.take(endpoint)).flatten();
        st.calls.push(RecordedCall {
            endpoint: endpoint.to_owned(),
            account_sid: path_sid.to_owned(),
            params,
            auth_ok,
            fault: fault.clone(),
        });
        if let Some(f) = fault {
            return Err(Admission::Fault(f));
        }
        if !auth_ok {
            return Err(Admission::Error(unauthorized()));
        }
        if path_sid != st.account_sid {
            return Err(Admission::Error(ApiError::new(
                404,
                20_404,
                format!("The requested resource {path} was not found"),
            )));
        }
        Ok(())
    })
}

enum Admission {
    Fault(Fault),
    Error(ApiError),
}

impl Admission {
    fn respond(self, conn: &Conn) -> Response {
        match self {
            Admission::Fault(f) => fault_response(&f, conn),
            Admission::Error(e) => e.into_response(),
        }
    }
}

fn pairs_value(pairs: &[(String, String)]) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert(k.clone(), Value::String(v.clone()));
    }
    Value::Object(m)
}

/// E.164: `+`, then 8 to 15 digits, not starting with 0.
fn is_e164(n: &str) -> bool {
    n.strip_prefix('+').is_some_and(|d| {
        (8..=15).contains(&d.len()) && d.bytes().all(|c| c.is_ascii_digit()) && !d.starts_with('0')
    })
}

async fn create(
    State(sh): St,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body).unwrap_or_default();
    let path = format!("/2010-04-01/Accounts/{sid}/Messages.json");
    if let Err(a) = admit(
        &sh,
        "messages.create",
        &sid,
        &path,
        &headers,
        pairs_value(&pairs),
    ) {
        return a.respond(&conn);
    }
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let media_urls: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "MediaUrl")
        .map(|(_, v)| v.clone())
        .collect();
    let created = sh.change(|st| -> Result<(SentSms, Value), ApiError> {
        let to = get("To").ok_or_else(|| ApiError::bad(21_604, "A 'To' phone number is required."))?;
        let from = get("From")
            .ok_or_else(|| ApiError::bad(21_603, "A 'From' phone number is required."))?;
        if !is_e164(&to) || to == MAGIC_INVALID_TO {
            return Err(ApiError::bad(21_211, format!("Invalid 'To' Phone Number: {to}")));
        }
        if !st.numbers.contains(&from) {
            return Err(ApiError::bad(
                21_606,
                format!("The From phone number {from} is not a valid, SMS-capable inbound phone number or short code for your account."),
            ));
        }
        if to == from {
            return Err(ApiError::bad(21_266, "'To' and 'From' number cannot be the same"));
        }
        let text = pairs
            .iter()
            .find(|(n, _)| n == "Body")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if text.trim().is_empty() && media_urls.is_empty() {
            return Err(ApiError::bad(21_602, "Message body is required."));
        }
        if text.chars().count() > MAX_BODY {
            return Err(ApiError::bad(
                21_617,
                "The concatenated message body exceeds the 1600 character limit.",
            ));
        }
        let msg = SentSms {
            sid: st.next_sid("SM"),
            from,
            to,
            body: text,
            status_callback: get("StatusCallback"),
            media_urls: media_urls.clone(),
            status: "queued".into(),
            date_created: st.clock.now(),
            error_code: None,
        };
        st.sent.push(msg.clone());
        let json = st.message_json(&msg);
        Ok((msg, json))
    });
    match created {
        Ok((msg, json)) => {
            if msg.status_callback.is_some() {
                let outcome = sh.lock().outcome.clone();
                tokio::spawn(status_callbacks(sh.clone(), msg, outcome));
            }
            (StatusCode::CREATED, axum::Json(json)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn fetch(
    State(sh): St,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path((sid, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{sid}/Messages/{file}");
    let msid = file.strip_suffix(".json").unwrap_or(&file).to_owned();
    if let Err(a) = admit(
        &sh,
        "messages.fetch",
        &sid,
        &path,
        &headers,
        json!({"Sid": msid}),
    ) {
        return a.respond(&conn);
    }
    let st = sh.lock();
    match st.sent.iter().find(|m| m.sid == msid) {
        Some(m) if file.ends_with(".json") => axum::Json(st.message_json(m)).into_response(),
        _ => ApiError::new(
            404,
            20_404,
            format!("The requested resource {path} was not found"),
        )
        .into_response(),
    }
}

/// The bytes of an inbound message's media. Twilio serves these without auth unless the
/// account turns it on; the fake does too.
async fn media(
    State(sh): St,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path((sid, msid, mid)): Path<(String, String, String)>,
) -> Response {
    let (fault, found) = sh.change(|st| {
        let fault = st.faults.take("media");
        st.calls.push(RecordedCall {
            endpoint: "media".into(),
            account_sid: sid.clone(),
            params: json!({"MessageSid": msid, "Sid": mid}),
            auth_ok: true,
            fault: fault.clone(),
        });
        (fault, st.media.get(&(msid.clone(), mid.clone())).cloned())
    });
    if let Some(f) = fault {
        return fault_response(&f, &conn);
    }
    match found {
        Some((ct, bytes)) => (StatusCode::OK, [(CONTENT_TYPE, ct)], bytes).into_response(),
        None => ApiError::new(
            404,
            20_404,
            format!("The requested resource /2010-04-01/Accounts/{sid}/Messages/{msid}/Media/{mid} was not found"),
        )
        .into_response(),
    }
}

/// The statuses a message goes through after `queued`, with the error code of the last.
fn statuses(outcome: &Outcome) -> Vec<(&'static str, Option<u32>)> {
    match outcome {
        Outcome::Delivered => vec![("queued", None), ("sent", None), ("delivered", None)],
        Outcome::Failed { error_code } => vec![("queued", None), ("failed", Some(*error_code))],
        Outcome::Undelivered { error_code } => vec![
            ("queued", None),
            ("sent", None),
            ("undelivered", Some(*error_code)),
        ],
        Outcome::NoCallbacks => Vec::new(),
    }
}

/// POSTs each status of the message to its `StatusCallback`, signed, in order; the
/// message's status follows.
async fn status_callbacks(sh: Arc<Shared<TwilioState>>, msg: SentSms, outcome: Outcome) {
    let Some(url) = msg.status_callback.clone() else {
        return;
    };
    for (status, error_code) in statuses(&outcome) {
        let (account_sid, token) = sh.change(|st| {
            if let Some(m) = st.sent.iter_mut().find(|m| m.sid == msg.sid) {
                m.status = status.to_owned();
                m.error_code = error_code;
            }
            (st.account_sid.clone(), st.auth_token.clone())
        });
        let mut params: Vec<(String, String)> = [
            ("AccountSid", account_sid.as_str()),
            ("ApiVersion", "2010-04-01"),
            ("From", msg.from.as_str()),
            ("MessageSid", msg.sid.as_str()),
            ("MessageStatus", status),
            ("SmsSid", msg.sid.as_str()),
            ("SmsStatus", status),
            ("To", msg.to.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if let Some(code) = error_code {
            params.push(("ErrorCode".into(), code.to_string()));
        }
        let headers = vec![
            (
                "Content-Type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("User-Agent".to_owned(), "TwilioProxy/1.1".to_owned()),
            (
                "X-Twilio-Signature".to_owned(),
                signature(&token, &url, &params),
            ),
        ];
        let reply = common::post(&url, &headers, common::form_encode(&params).into_bytes())
            .await
            .map_err(|e| e.to_string());
        tracing::debug!(sid = %msg.sid, status, ok = reply.is_ok(), "fake twilio status callback");
        sh.change(|st| {
            st.callbacks.push(StatusCallback {
                message_sid: msg.sid.clone(),
                status: status.to_owned(),
                url: url.clone(),
                params,
                reply,
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers() {
        assert!(is_e164("+14155552671"));
        assert!(is_e164("+447911123456"));
        assert!(!is_e164("14155552671"));
        assert!(!is_e164("+1415"));
        assert!(!is_e164("+0123456789"));
        assert!(!is_e164("+1415555abcd"));
    }

    #[test]
    fn outcomes_as_status_sequences() {
        let names = |o| statuses(&o).into_iter().map(|s| s.0).collect::<Vec<_>>();
        assert_eq!(names(Outcome::Delivered), ["queued", "sent", "delivered"]);
        assert_eq!(
            names(Outcome::Failed { error_code: 30_008 }),
            ["queued", "failed"]
        );
        assert_eq!(
            statuses(&Outcome::Undelivered { error_code: 30_003 }).last(),
            Some(&("undelivered", Some(30_003)))
        );
        assert!(statuses(&Outcome::NoCallbacks).is_empty());
    }
}
