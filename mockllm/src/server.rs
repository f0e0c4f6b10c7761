//! The HTTP side: the state shared with the [`crate::MockLlm`] handle, the provider
//! routes, and turning a request into its recorded form and its scripted answer.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::conn::Conn;
use crate::play::{Answer, Delivery, wait_shutdown};
use crate::script::{Action, Fault, Reply, Step};
use crate::wire::{self, gemini::Framing};
use crate::{MockApi, RecordedRequest};

/// Requests carry whole conversations; axum's 2 MB default is too small.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// State shared by the handle ([`crate::MockLlm`]) and the request handlers.
pub(crate) struct Shared {
    state: Mutex<ScriptState>,
    /// `true` once shutdown has begun; stalled requests and streams wait on it.
    pub(crate) shutdown: watch::Sender<bool>,
}

pub(crate) struct ScriptState {
    pub(crate) queue: VecDeque<Step>,
    pub(crate) requests: Vec<RecordedRequest>,
    /// Whether requests are kept for [`crate::MockLlm::requests`] (default on).
    pub(crate) recording: bool,
    pub(crate) models: Vec<String>,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(ScriptState {
                queue: VecDeque::new(),
                requests: Vec::new(),
                recording: true,
                models: vec!["mock-model".to_owned()],
            }),
            shutdown: watch::Sender::new(false),
        }
    }

    /// The state; a handler that panicked while holding it left nothing half-done that
    /// matters for a mock, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, ScriptState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes and returns the first queued step matching this request.
    fn take(&self, model: &str, api_key: Option<&str>) -> Option<Step> {
        let mut st = self.lock();
        let i = st
            .queue
            .iter()
            .position(|s| s.when.matches(model, api_key))?;
        st.queue.remove(i)
    }

    /// Keeps the request `r()` builds, unless recording is off.
    fn record(&self, r: impl FnOnce() -> RecordedRequest) {
        let mut st = self.lock();
        if st.recording {
            st.requests.push(r());
        }
    }

    fn models(&self) -> Vec<String> {
        self.lock().models.clone()
    }
}

// ---------------------------------------------------------------------------------------
// Routes

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai_chat))
        .route("/v1/messages", post(anthropic_messages))
        .route("/v1beta/models/{*rest}", post(gemini_generate))
        .route("/v1/models", get(list_models))
        .route("/v1beta/models", get(gemini_models))
        .route("/api/tags", get(ollama_tags))
        .merge(crate::control::router())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

type St = State<Arc<Shared>>;

/// How a request is to be answered, independent of which route took it.
struct Call {
    api: MockApi,
    path: String,
    headers: HeaderMap,
    api_key: Option<String>,
    /// Gemini names the model in the path.
    path_model: Option<String>,
    /// Gemini streams by method; the others by `"stream": true` in the body.
    gemini_stream: Option<Framing>,
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn bearer(h: &HeaderMap) -> Option<String> {
    header_str(h, "authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|k| k.trim().to_owned())
}

fn header_list(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

async fn openai_chat(
    State(sh): St,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = Call {
        api: MockApi::OpenAi,
        path: "/v1/chat/completions".into(),
        api_key: bearer(&headers),
        headers,
        path_model: None,
        gemini_stream: None,
    };
    generate(sh, conn, call, body).await
}

async fn anthropic_messages(
    State(sh): St,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = Call {
        api: MockApi::Anthropic,
        path: "/v1/messages".into(),
        api_key: header_str(&headers, "x-api-key")
            .map(str::to_owned)
            .or_else(|| bearer(&headers)),
        headers,
        path_model: None,
        gemini_stream: None,
    };
    generate(sh, conn, call, body).await
}

async fn gemini_generate(
    State(sh): St,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path(rest): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((model, method)) = rest.rsplit_once(':') else {
        return json_response(StatusCode::NOT_FOUND, wire::gemini::error(404, &rest), None);
    };
    let gemini_stream = match method {
        "generateContent" => None,
        "streamGenerateContent" if query.get("alt").is_some_and(|a| a == "sse") => {
            Some(Framing::Sse)
        }
        "streamGenerateContent" => Some(Framing::Array),
        _ => {
            return json_response(StatusCode::NOT_FOUND, wire::gemini::error(404, model), None);
        }
    };
    let call = Call {
        api: MockApi::Gemini,
        path: uri.path().to_owned(),
        api_key: header_str(&headers, "x-goog-api-key")
            .map(str::to_owned)
            .or_else(|| query.get("key").cloned()),
        headers,
        path_model: Some(model.to_owned()),
        gemini_stream,
    };
    generate(sh, conn, call, body).await
}

fn record_listing(sh: &Shared, api: MockApi, path: &str, headers: &HeaderMap, key: Option<String>) {
    sh.record(|| RecordedRequest {
        api,
        path: path.to_owned(),
        model: String::new(),
        api_key: key,
        headers: header_list(headers),
        body: Value::Null,
        stream: false,
    });
}

/// OpenAI's or, when the request carries Anthropic headers, Anthropic's model list.
async fn list_models(State(sh): St, headers: HeaderMap) -> Response {
    let anthropic = headers.contains_key("anthropic-version") || headers.contains_key("x-api-key");
    let models = sh.models();
    if anthropic {
        let key = header_str(&headers, "x-api-key").map(str::to_owned);
        record_listing(&sh, MockApi::Anthropic, "/v1/models", &headers, key);
        axum::Json(wire::anthropic::models(&models)).into_response()
    } else {
        record_listing(
            &sh,
            MockApi::OpenAi,
            "/v1/models",
            &headers,
            bearer(&headers),
        );
        axum::Json(wire::openai::models(&models)).into_response()
    }
}

async fn gemini_models(
    State(sh): St,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let key = header_str(&headers, "x-goog-api-key")
        .map(str::to_owned)
        .or_else(|| query.get("key").cloned());
    record_listing(&sh, MockApi::Gemini, "/v1beta/models", &headers, key);
    axum::Json(wire::gemini::models(&sh.models())).into_response()
}

async fn ollama_tags(State(sh): St, headers: HeaderMap) -> Response {
    record_listing(
        &sh,
        MockApi::OpenAi,
        "/api/tags",
        &headers,
        bearer(&headers),
    );
    axum::Json(wire::openai::ollama_tags(&sh.models())).into_response()
}

async fn not_found(method: Method, uri: Uri) -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        json!({"error": {
            "message": format!("mock llm has no route for {method} {}", uri.path()),
            "type": "invalid_request_error",
            "param": null,
            "code": "unknown_url",
        }}),
        None,
    )
}

// ---------------------------------------------------------------------------------------
// Answering

fn json_response(status: StatusCode, body: Value, retry_after: Option<u64>) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    if let Some(secs) = retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

fn bad_request(api: MockApi, message: &str) -> Response {
    let body = match api {
        MockApi::OpenAi => wire::openai::invalid_request(message),
        MockApi::Anthropic => wire::anthropic::invalid_request(message),
        MockApi::Gemini => wire::gemini::invalid_request(message),
    };
    json_response(StatusCode::BAD_REQUEST, body, None)
}

/// What the real API says before looking at the model: a 400 for a body it cannot use.
fn rejection(call: &Call, body: Option<&wire::Request>) -> Option<Response> {
    let api = call.api;
    let Some(body) = body else {
        let message = match api {
            MockApi::OpenAi => "We could not parse the JSON body of your request.",
            MockApi::Anthropic => "There was an error parsing the body of your request.",
            MockApi::Gemini => "Invalid JSON payload received.",
        };
        return Some(bad_request(api, message));
    };
    let missing = |field: &str| body.missing(field);
    let message = match api {
        MockApi::OpenAi if missing("model") => "you must provide a model parameter".to_owned(),
        MockApi::OpenAi if missing("messages") => {
            "Missing required parameter: 'messages'.".to_owned()
        }
        MockApi::Anthropic if !call.headers.contains_key("anthropic-version") => {
            "anthropic-version: header is required".to_owned()
        }
        MockApi::Anthropic => ["model", "messages", "max_tokens"]
            .into_iter()
            .find(|f| missing(f))
            .map(|f| format!("{f}: Field required"))?,
        MockApi::Gemini if missing("contents") => {
            "* GenerateContentRequest.contents: contents is not specified".to_owned()
        }
        _ => return None,
    };
    Some(bad_request(api, &message))
}

async fn generate(sh: Arc<Shared>, conn: Conn, call: Call, raw: Bytes) -> Response {
    let parsed = wire::Request::parse(&raw);
    let model = call
        .path_model
        .clone()
        .or_else(|| parsed.as_ref().and_then(|b| b.model()).map(str::to_owned))
        .unwrap_or_default();
    let stream = match call.api {
        MockApi::Gemini => call.gemini_stream.is_some(),
        _ => parsed.as_ref().is_some_and(wire::Request::stream),
    };
    tracing::debug!(api = ?call.api, path = %call.path, %model, stream, "mock llm request");
    sh.record(|| RecordedRequest {
        api: call.api,
        path: call.path.clone(),
        model: model.clone(),
        api_key: call.api_key.clone(),
        headers: header_list(&call.headers),
        body: serde_json::from_slice::<Value>(&raw)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| Value::String(String::from_utf8_lossy(&raw).into_owned())),
        stream,
    });
    if let Some(resp) = rejection(&call, parsed.as_ref()) {
        return resp;
    }
    let body = parsed.unwrap_or_default();
    let default_reply = || Reply::text(format!("mock reply to: {}", body.last_user_text()));
    let action = match sh.take(&model, call.api_key.as_deref()) {
        Some(step) => step.action,
        None => Action::Reply(default_reply()),
    };
    let ans = Answer {
        api: call.api,
        model: &model,
        stream,
        framing: call.gemini_stream.unwrap_or(Framing::Sse),
        include_usage: body.include_usage(),
        request_bytes: raw.len(),
    };
    let mut shutdown = sh.shutdown.subscribe();
    let fault = match action {
        Action::Reply(reply) => return ans.play(&reply, Delivery::Normal, conn, shutdown).await,
        Action::Fault(f) => f,
    };
    let delivery = match fault {
        Fault::Status {
            code,
            retry_after_secs,
            body,
        } => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = body.unwrap_or_else(|| ans.error_body(code));
            return json_response(status, body, retry_after_secs);
        }
        Fault::RejectThinking => {
            let body = match call.api {
                MockApi::OpenAi => wire::openai::reject_thinking(),
                MockApi::Anthropic => wire::anthropic::reject_thinking(&model),
                MockApi::Gemini => wire::gemini::reject_thinking(),
            };
            return json_response(StatusCode::BAD_REQUEST, body, None);
        }
        Fault::Reset => {
            conn.kill();
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Fault::Stall => {
            wait_shutdown(&mut shutdown).await;
            conn.kill();
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Fault::StallAfter { events } => Delivery::StallAfter(events),
        Fault::Truncate { events } => Delivery::Truncate(events),
        Fault::InvalidJson => Delivery::InvalidJson,
        Fault::Slow { per_event_ms } => {
            Delivery::Slow(std::time::Duration::from_millis(per_event_ms))
        }
    };
    ans.play(&default_reply(), delivery, conn, shutdown).await
}
