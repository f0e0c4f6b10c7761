//! Streaming wire clients for the three model APIs: OpenAI chat completions (also Ollama,
//! vLLM, LM Studio, OpenRouter), Anthropic messages and Google Gemini. Each turns its
//! server-sent events into [`StreamEvent`]s and its errors into [`ProviderError`]s.
//!
//! Layers: [`sse`] splits bytes into events; each API module has a pure `build_body` and a
//! `Decoder` (SSE events in, stream events out); [`decode_stream`] drives a decoder over a
//! byte stream with the idle timeout; [`stream_chat`] sends the request with the connect
//! timeout and classifies errors that come before the first byte.

pub mod anthropic;
pub mod errors;
pub mod gemini;
pub mod openai;
mod replay;
pub mod sse;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::agent::model::{
    Api, ChatRequest, Endpoint, ProviderError, StopReason, StreamEvent, Thinking, ToolCall,
    ToolSpec, Tools, Usage,
};
pub use errors::{classify, retry_after};

/// The events of one streamed model call; after an `Err` item the stream ends.
pub type EventStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<StreamEvent, ProviderError>> + Send>>;

/// Bytes of a response body, transport errors already classified.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, ProviderError>> + Send>>;

/// At most this much of an error body is read.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// At most this much of a JSON answer (model lists) is read.
const MAX_JSON_BODY: usize = 8 * 1024 * 1024;

/// Installs ring as rustls' process-wide crypto provider, once (reqwest's rustls backend
/// panics without one).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another provider is already installed: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// One shared client per process (rustls + ring; installs the ring provider once).
/// No overall timeout: streams are long; [`stream_chat`] applies the endpoint's timeouts.
pub fn http_client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            install_crypto_provider();
            reqwest::Client::builder()
                .user_agent(concat!("pincer/", env!("CARGO_PKG_VERSION")))
                .tcp_keepalive(Duration::from_secs(30))
                .pool_idle_timeout(Duration::from_secs(60))
                .build()
                .expect("the HTTP client (rustls with ring) could not be built")
        })
        .clone()
}

/// Starts a streamed call. Errors before the first byte (HTTP status, connect, no
/// response headers within `ep.connect_timeout`) come back as `Err`; errors mid-stream
/// (including no data within `ep.idle_timeout`) as an `Err` item, after which the stream
/// ends. A well-formed stream ends with exactly one [`StreamEvent::Done`].
pub async fn stream_chat(
    http: &reqwest::Client,
    ep: &Endpoint,
    req: &ChatRequest,
) -> Result<EventStream, ProviderError> {
    let secret = ep.api_key.clone();
    // The body without its tools, then the tools' JSON made once per tool set.
    let (url, headers, body, tools) = match ep.api {
        Api::OpenAiCompletions => (
            openai::url(ep),
            openai::headers(ep)?,
            openai::body(req, false),
            openai::tools_value as fn(&[ToolSpec]) -> Value,
        ),
        Api::AnthropicMessages => (
            anthropic::url(ep),
            anthropic::headers(ep)?,
            anthropic::body(
                req,
                &|id| replay::recall(replay::Kind::AnthropicThinking, id),
                false,
            ),
            anthropic::tools_value as fn(&[ToolSpec]) -> Value,
        ),
        Api::GoogleGenerativeAi => (
            gemini::url(ep, &req.model),
            gemini::headers(ep)?,
            gemini::body(
                req,
                &|id| replay::recall(replay::Kind::GeminiSignature, id),
                false,
            ),
            gemini::tools_value as fn(&[ToolSpec]) -> Value,
        ),
    };
    tracing::debug!(api = ep.api.as_str(), %url, model = %req.model, thinking = req.thinking.as_str(), "model call");
    let body = with_tools(&body, &req.tools, ep.api, tools);
    let mut headers = headers;
    // As `.json()` did: the endpoint's own Content-Type, if it set one, wins.
    headers
        .entry(reqwest::header::CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/json"));
    let send = http.post(&url).headers(headers).body(body).send();
    let resp = match tokio::time::timeout(ep.connect_timeout, send).await {
        Err(_) => return Err(ProviderError::Timeout(ep.connect_timeout)),
        Ok(Err(e)) => {
            return Err(errors::scrub(
                errors::from_send_error(&e, &url),
                secret.as_deref(),
            ));
        }
        Ok(Ok(r)) => r,
    };
    let resp = check_status(resp, ep, req.thinking).await?;
    let is_json = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
    if is_json {
        let text = read_limited(resp, ep.idle_timeout, MAX_ERROR_BODY).await;
        return Err(errors::scrub(
            ProviderError::Malformed(format!(
                "expected an event stream, got application/json: {}",
                errors::truncate(&text, 500)
            )),
            secret.as_deref(),
        ));
    }
    let bytes = body_stream(resp, url);
    let idle = ep.idle_timeout;
    Ok(match ep.api {
        Api::OpenAiCompletions => {
            decode_stream(bytes, idle, openai::Decoder::new(req.thinking), secret)
        }
        Api::AnthropicMessages => {
            decode_stream(bytes, idle, anthropic::Decoder::new(req.thinking), secret)
        }
        Api::GoogleGenerativeAi => {
            decode_stream(bytes, idle, gemini::Decoder::new(req.thinking), secret)
        }
    })
}

/// A whole call, collected.
#[derive(Debug, Clone, PartialEq)]
pub struct Collected {
    pub text: String,
    pub thinking: String,
    pub tool_calls: Vec<ToolCall>,
    pub stop: StopReason,
    pub usage: Usage,
}

/// Collects a whole stream. A stream that ends without [`StreamEvent::Done`] is
/// [`ProviderError::Truncated`].
pub async fn collect(mut stream: EventStream) -> Result<Collected, ProviderError> {
    let mut text = String::new();
    let mut thinking = String::new();
    let mut tool_calls = Vec::new();
    while let Some(item) = stream.next().await {
        match item? {
            StreamEvent::Text(t) => text.push_str(&t),
            StreamEvent::Thinking(t) => thinking.push_str(&t),
            StreamEvent::ToolCallStarted { .. } | StreamEvent::ToolCallDelta { .. } => {}
            StreamEvent::ToolCall(c) => tool_calls.push(c),
            StreamEvent::Done { stop, usage } => {
                return Ok(Collected {
                    text,
                    thinking,
                    tool_calls,
                    stop,
                    usage,
                });
            }
        }
    }
    Err(ProviderError::Truncated(
        "the stream ended without a final event".into(),
    ))
}

/// Model ids a provider offers: OpenAI-compatible `GET {base}/models`, Anthropic
/// `GET {base}/v1/models`, Gemini `GET {base}/models` (only models that can
/// `generateContent`, without the `models/` prefix). Follows pagination (10 pages at most).
pub async fn list_models(
    http: &reqwest::Client,
    ep: &Endpoint,
) -> Result<Vec<String>, ProviderError> {
    let mut ids = Vec::new();
    match ep.api {
        Api::OpenAiCompletions => {
            let v = get_json(
                http,
                ep,
                &format!("{}/models", ep.base_url),
                openai::headers(ep)?,
            )
            .await?;
            ids.extend(data_ids(&v));
        }
        Api::AnthropicMessages => {
            let mut after: Option<String> = None;
            for _ in 0..10 {
                let mut url = format!("{}/models?limit=1000", anthropic::v1(ep));
                if let Some(a) = &after {
                    url.push_str("&after_id=");
                    url.push_str(&query_escape(a));
                }
                let v = get_json(http, ep, &url, anthropic::headers(ep)?).await?;
                ids.extend(data_ids(&v));
                let more = v.get("has_more").and_then(Value::as_bool).unwrap_or(false);
                after = v.get("last_id").and_then(Value::as_str).map(str::to_string);
                if !more || after.is_none() {
                    break;
                }
            }
        }
        Api::GoogleGenerativeAi => {
            let mut token: Option<String> = None;
            for _ in 0..10 {
                let mut url = format!("{}/models?pageSize=1000", ep.base_url);
                if let Some(t) = &token {
                    url.push_str("&pageToken=");
                    url.push_str(&query_escape(t));
                }
                let v = get_json(http, ep, &url, gemini::headers(ep)?).await?;
                for m in v
                    .get("models")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let generates = m
                        .get("supportedGenerationMethods")
                        .and_then(Value::as_array)
                        .is_none_or(|ms| ms.iter().any(|x| x == "generateContent"));
                    if let (true, Some(name)) = (generates, m.get("name").and_then(Value::as_str)) {
                        ids.push(name.strip_prefix("models/").unwrap_or(name).to_string());
                    }
                }
                token = v
                    .get("nextPageToken")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
        }
    }
    Ok(ids)
}

/// Models of a local Ollama: `GET {base}/api/tags` (`base` like `http://127.0.0.1:11434`;
/// a trailing `/` or `/v1` is ignored). Gives up after 3 s: used for detection.
pub async fn ollama_models(
    http: &reqwest::Client,
    base: &str,
) -> Result<Vec<String>, ProviderError> {
    let base = base.trim_end_matches('/');
    let base = base.strip_suffix("/v1").unwrap_or(base);
    let ep = Endpoint {
        api: Api::OpenAiCompletions,
        base_url: base.to_string(),
        api_key: None,
        headers: Vec::new(),
        connect_timeout: Duration::from_secs(3),
        idle_timeout: Duration::from_secs(3),
    };
    let v = get_json(http, &ep, &format!("{base}/api/tags"), HeaderMap::new()).await?;
    let models = v
        .get("models")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::Malformed("api/tags without a models array".into()))?;
    Ok(models
        .iter()
        .filter_map(|m| m.get("name").or_else(|| m.get("model")))
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect())
}

fn data_ids(v: &Value) -> impl Iterator<Item = String> + '_ {
    v.get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("id").and_then(Value::as_str))
        .map(str::to_string)
}

/// Percent-encodes a query parameter value (pagination tokens).
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn get_json(
    http: &reqwest::Client,
    ep: &Endpoint,
    url: &str,
    headers: HeaderMap,
) -> Result<Value, ProviderError> {
    let secret = ep.api_key.as_deref();
    let send = http.get(url).headers(headers).send();
    let resp = match tokio::time::timeout(ep.connect_timeout, send).await {
        Err(_) => return Err(ProviderError::Timeout(ep.connect_timeout)),
        Ok(Err(e)) => return Err(errors::scrub(errors::from_send_error(&e, url), secret)),
        Ok(Ok(r)) => r,
    };
    let resp = check_status(resp, ep, Thinking::Off).await?;
    let mut body = Vec::new();
    let mut resp = resp;
    loop {
        match tokio::time::timeout(ep.idle_timeout, resp.chunk()).await {
            Err(_) => return Err(ProviderError::Timeout(ep.idle_timeout)),
            Ok(Err(e)) => return Err(errors::scrub(errors::from_body_error(&e, url), secret)),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(c))) => {
                if body.len() + c.len() > MAX_JSON_BODY {
                    return Err(ProviderError::Malformed(format!(
                        "{url} answered more than {MAX_JSON_BODY} bytes"
                    )));
                }
                body.extend_from_slice(&c);
            }
        }
    }
    serde_json::from_slice(&body).map_err(|e| {
        errors::scrub(
            ProviderError::Malformed(format!(
                "{url} did not answer JSON ({e}): {}",
                errors::truncate(&String::from_utf8_lossy(&body), 200)
            )),
            secret,
        )
    })
}

/// A non-2xx answer becomes its classified error (the body read with the idle timeout).
async fn check_status(
    resp: reqwest::Response,
    ep: &Endpoint,
    thinking: Thinking,
) -> Result<reqwest::Response, ProviderError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry = errors::retry_after(resp.headers());
    let text = read_limited(resp, ep.idle_timeout, MAX_ERROR_BODY).await;
    let err = classify(status.as_u16(), retry, &text, thinking);
    tracing::debug!(status = status.as_u16(), error = %errors::scrub(err.clone(), ep.api_key.as_deref()), "provider error");
    Err(errors::scrub(err, ep.api_key.as_deref()))
}

/// Up to `limit` bytes of a body, as text; whatever arrived if it stalls or breaks.
async fn read_limited(mut resp: reqwest::Response, idle: Duration, limit: usize) -> String {
    let mut body = Vec::new();
    while body.len() < limit {
        match tokio::time::timeout(idle, resp.chunk()).await {
            Ok(Ok(Some(c))) => body.extend_from_slice(&c),
            _ => break,
        }
    }
    body.truncate(limit);
    String::from_utf8_lossy(&body).into_owned()
}

fn body_stream(resp: reqwest::Response, url: String) -> ByteStream {
    Box::pin(
        resp.bytes_stream()
            .map(move |r| r.map_err(|e| errors::from_body_error(&e, &url))),
    )
}

/// The request headers: the API's own (the key marked sensitive), then the endpoint's
/// extra headers, which replace same-named ones.
fn header_map(
    own: &[(&'static str, &str, bool)],
    extra: &[(String, String)],
) -> Result<HeaderMap, ProviderError> {
    let mut h = HeaderMap::new();
    for (name, value, secret) in own {
        let mut v = HeaderValue::from_str(value).map_err(|_| {
            if *secret {
                ProviderError::Auth {
                    status: 0,
                    message: "the API key contains characters not allowed in an HTTP header".into(),
                }
            } else {
                ProviderError::BadRequest {
                    status: 0,
                    message: format!("header {name} has an invalid value"),
                }
            }
        })?;
        v.set_sensitive(*secret);
        h.insert(HeaderName::from_static(name), v);
    }
    for (name, value) in extra {
        let n = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
            ProviderError::BadRequest {
                status: 0,
                message: format!("configured header name {name:?} is not valid"),
            }
        })?;
        let mut v = HeaderValue::from_str(value).map_err(|_| ProviderError::BadRequest {
            status: 0,
            message: format!("configured header {name} has an invalid value"),
        })?;
        v.set_sensitive(true);
        h.insert(n, v);
    }
    Ok(h)
}

/// Turns one API's SSE events into stream events.
pub trait Decoder: Send + 'static {
    /// One event; pushes stream events to `out`. `Ok(true)`: the call is complete (a
    /// `Done` was pushed) and the rest of the body is not read.
    fn event(
        &mut self,
        ev: sse::Event,
        out: &mut VecDeque<StreamEvent>,
    ) -> Result<bool, ProviderError>;
    /// The body ended before the decoder said the call was complete: push the final
    /// events if the API allows that, or fail with [`ProviderError::Truncated`].
    fn eof(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), ProviderError>;
}

struct Driver<D> {
    bytes: ByteStream,
    idle: Duration,
    parser: sse::Parser,
    decoder: D,
    queue: VecDeque<StreamEvent>,
    error: Option<ProviderError>,
    finished: bool,
    secret: Option<String>,
}

impl<D: Decoder> Driver<D> {
    fn feed(&mut self, chunk: &[u8]) {
        let mut events = Vec::new();
        let pushed = self.parser.push(chunk, &mut events);
        for ev in events {
            if self.finished {
                break;
            }
            self.dispatch(ev);
        }
        if pushed.is_err() {
            self.fail(ProviderError::Malformed(format!(
                "an event-stream line longer than {} bytes",
                sse::MAX_LINE
            )));
        }
    }

    fn dispatch(&mut self, ev: sse::Event) {
        match self.decoder.event(ev, &mut self.queue) {
            Ok(false) => {}
            Ok(true) => self.finished = true,
            Err(e) => self.fail(e),
        }
    }

    fn end(&mut self) {
        if let Some(ev) = self.parser.finish() {
            self.dispatch(ev);
        }
        if !self.finished {
            if let Err(e) = self.decoder.eof(&mut self.queue) {
                self.fail(e);
            }
            self.finished = true;
        }
    }

    fn fail(&mut self, e: ProviderError) {
        if self.error.is_none() && !self.finished {
            self.error = Some(e);
        }
        self.finished = true;
    }
}

/// Drives `decoder` over `bytes`: no chunk within `idle` is [`ProviderError::Timeout`];
/// events decoded before an error are delivered first; any error is the last item; the
/// key is scrubbed from error messages.
pub fn decode_stream<D: Decoder>(
    bytes: ByteStream,
    idle: Duration,
    decoder: D,
    secret: Option<String>,
) -> EventStream {
    let driver = Driver {
        bytes,
        idle,
        parser: sse::Parser::new(),
        decoder,
        queue: VecDeque::new(),
        error: None,
        finished: false,
        secret,
    };
    Box::pin(futures_util::stream::unfold(driver, |mut d| async move {
        loop {
            if let Some(ev) = d.queue.pop_front() {
                return Some((Ok(ev), d));
            }
            if let Some(e) = d.error.take() {
                let e = errors::scrub(e, d.secret.as_deref());
                return Some((Err(e), d));
            }
            if d.finished {
                return None;
            }
            match tokio::time::timeout(d.idle, d.bytes.next()).await {
                Err(_) => d.fail(ProviderError::Timeout(d.idle)),
                Ok(Some(Err(e))) => d.fail(e),
                Ok(Some(Ok(chunk))) => d.feed(&chunk),
                Ok(None) => d.end(),
            }
        }
    }))
}

/// Tool call arguments as streamed: empty means none (`Null`).
pub(crate) fn parse_args(s: &str) -> Result<Value, serde_json::Error> {
    if s.trim().is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_str(s)
    }
}

/// A tool's parameter schema; no schema at all is an object without properties.
pub(crate) fn object_schema(v: &Value) -> Value {
    if v.is_null() {
        serde_json::json!({"type": "object", "properties": {}})
    } else {
        v.clone()
    }
}

/// `body` serialised, with `"tools": <their JSON>` added when there are tools. The
/// tools' JSON comes from [`Tools::json`]: made once per tool set, not per call.
fn with_tools(body: &Value, tools: &Tools, api: Api, make: fn(&[ToolSpec]) -> Value) -> Vec<u8> {
    let mut out = serde_json::to_vec(body).expect("a JSON value serialises");
    if !tools.is_empty() && out.last() == Some(&b'}') {
        let json = tools.json(api, make);
        out.pop();
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(br#""tools":"#);
        out.extend_from_slice(json.as_bytes());
        out.push(b'}');
    }
    out
}

/// A tool call id for APIs that send none.
pub(crate) fn new_call_id() -> String {
    format!("call_{}", uuid::Uuid::new_v4().simple())
}

/// An SSE data payload that is not the JSON it should be.
pub(crate) fn malformed_json(api: &str, e: &serde_json::Error, data: &str) -> ProviderError {
    ProviderError::Malformed(format!(
        "{api} stream data is not valid JSON ({e}): {}",
        errors::truncate(data, 200)
    ))
}

/// Tool result content, marked when the tool failed (for APIs without an error flag).
pub(crate) fn tool_result_text(content: &str, is_error: bool) -> String {
    if is_error
        && !content
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("error")
    {
        format!("Error: {content}")
    } else {
        content.to_string()
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;
    use crate::agent::model::{Message, ToolSpec};

    /// The events a decoder yields for `body` cut into `chunk`-byte pieces.
    pub async fn run<D: Decoder>(
        decoder: D,
        body: &str,
        chunk: usize,
    ) -> Vec<Result<StreamEvent, ProviderError>> {
        let chunks: Vec<Result<Bytes, ProviderError>> = body
            .as_bytes()
            .chunks(chunk.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let s = decode_stream(
            Box::pin(futures_util::stream::iter(chunks)),
            Duration::from_secs(5),
            decoder,
            None,
        );
        s.collect().await
    }

    /// Every chunk size gives the same events.
    pub async fn run_all_splits<D: Decoder, F: Fn() -> D>(
        make: F,
        body: &str,
    ) -> Vec<Result<StreamEvent, ProviderError>> {
        let whole = run(make(), body, body.len()).await;
        for n in [1, 2, 3, 5, 7, 13, 64] {
            let got = run(make(), body, n).await;
            assert_eq!(
                strip_ids(&got),
                strip_ids(&whole),
                "chunk size {n} changed the events"
            );
        }
        whole
    }

    /// Generated ids differ between runs: blank them for comparisons.
    fn strip_ids(
        v: &[Result<StreamEvent, ProviderError>],
    ) -> Vec<Result<StreamEvent, ProviderError>> {
        v.iter()
            .cloned()
            .map(|r| {
                r.map(|e| match e {
                    StreamEvent::ToolCallStarted { index, id, name } if id.starts_with("call_") => {
                        StreamEvent::ToolCallStarted {
                            index,
                            id: String::new(),
                            name,
                        }
                    }
                    StreamEvent::ToolCall(mut c) if c.id.starts_with("call_") => {
                        c.id.clear();
                        StreamEvent::ToolCall(c)
                    }
                    e => e,
                })
            })
            .collect()
    }

    /// A conversation with every message kind: a user question, an assistant tool call
    /// pair, two tool results (one failed), and a follow-up.
    pub fn sample_request(thinking: Thinking) -> ChatRequest {
        ChatRequest {
            model: "m-1".into(),
            system: "You are terse.".into(),
            messages: vec![
                Message::User {
                    content: "Weather in Paris and Rome?".into(),
                },
                Message::Assistant {
                    content: "Checking.".into(),
                    tool_calls: vec![
                        ToolCall {
                            id: "call_a".into(),
                            name: "weather".into(),
                            arguments: serde_json::json!({"city": "Paris"}),
                        },
                        ToolCall {
                            id: "call_b".into(),
                            name: "weather".into(),
                            arguments: Value::Null,
                        },
                    ],
                },
                Message::Tool {
                    call_id: "call_a".into(),
                    name: "weather".into(),
                    content: "18C".into(),
                    is_error: false,
                },
                Message::Tool {
                    call_id: "call_b".into(),
                    name: "weather".into(),
                    content: "city missing".into(),
                    is_error: true,
                },
            ],
            tools: vec![ToolSpec {
                name: "weather".into(),
                description: "Current weather".into(),
                parameters: serde_json::json!({
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                    "additionalProperties": false
                }),
            }]
            .into(),
            thinking,
            max_tokens: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type MakeTools = fn(&[ToolSpec]) -> Value;

    #[test]
    fn the_spliced_tools_make_the_same_body_as_building_it_whole() {
        for thinking in [Thinking::Off, Thinking::High] {
            let req = test_util::sample_request(thinking);
            let cases: [(Api, Value, Value, MakeTools); 3] = [
                (
                    Api::OpenAiCompletions,
                    openai::build_body(&req),
                    openai::body(&req, false),
                    openai::tools_value,
                ),
                (
                    Api::AnthropicMessages,
                    anthropic::build_body(&req),
                    anthropic::body(&req, &|_| None, false),
                    anthropic::tools_value,
                ),
                (
                    Api::GoogleGenerativeAi,
                    gemini::build_body(&req),
                    gemini::body(&req, &|_| None, false),
                    gemini::tools_value,
                ),
            ];
            for (api, whole, without, make) in cases {
                assert!(whole.get("tools").is_some() && without.get("tools").is_none());
                let spliced: Value =
                    serde_json::from_slice(&with_tools(&without, &req.tools, api, make)).unwrap();
                assert_eq!(spliced, whole, "{api:?}");
                // Made once: the second call reuses the first's text.
                let first = req.tools.json(api, make).as_ptr();
                let clone = req.clone();
                assert_eq!(clone.tools.json(api, |_| unreachable!()).as_ptr(), first);
                // No tools: the body as it is.
                let none = Tools::default();
                let plain: Value =
                    serde_json::from_slice(&with_tools(&without, &none, api, make)).unwrap();
                assert_eq!(plain, without);
            }
        }
        // An empty object gets no stray comma.
        let tools: Tools = test_util::sample_request(Thinking::Off).tools;
        let out = with_tools(
            &serde_json::json!({}),
            &tools,
            Api::OpenAiCompletions,
            openai::tools_value,
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1);
    }

    struct Lines;
    impl Decoder for Lines {
        fn event(
            &mut self,
            ev: sse::Event,
            out: &mut VecDeque<StreamEvent>,
        ) -> Result<bool, ProviderError> {
            match ev.data.as_str() {
                "end" => {
                    out.push_back(StreamEvent::Done {
                        stop: StopReason::End,
                        usage: Usage::default(),
                    });
                    Ok(true)
                }
                "bad" => Err(ProviderError::Malformed("bad sk-key-1".into())),
                t => {
                    out.push_back(StreamEvent::Text(t.into()));
                    Ok(false)
                }
            }
        }
        fn eof(&mut self, _: &mut VecDeque<StreamEvent>) -> Result<(), ProviderError> {
            Err(ProviderError::Truncated("eof".into()))
        }
    }

    fn bytes(parts: Vec<&'static str>) -> ByteStream {
        Box::pin(futures_util::stream::iter(
            parts
                .into_iter()
                .map(|p| Ok(Bytes::from_static(p.as_bytes()))),
        ))
    }

    #[tokio::test]
    async fn driver_delivers_events_then_stops_at_done() {
        let s = decode_stream(
            bytes(vec![
                "data: a\n\ndata: b\n",
                "\ndata: end\n\ndata: after\n\n",
            ]),
            Duration::from_secs(1),
            Lines,
            None,
        );
        let got: Vec<_> = s.collect().await;
        assert_eq!(
            got,
            vec![
                Ok(StreamEvent::Text("a".into())),
                Ok(StreamEvent::Text("b".into())),
                Ok(StreamEvent::Done {
                    stop: StopReason::End,
                    usage: Usage::default()
                }),
            ]
        );
    }

    #[tokio::test]
    async fn driver_error_comes_after_earlier_events_and_ends_the_stream() {
        let s = decode_stream(
            bytes(vec!["data: a\n\ndata: bad\n\ndata: c\n\n"]),
            Duration::from_secs(1),
            Lines,
            Some("sk-key-1".into()),
        );
        let got: Vec<_> = s.collect().await;
        assert_eq!(
            got,
            vec![
                Ok(StreamEvent::Text("a".into())),
                Err(ProviderError::Malformed("bad <redacted>".into())),
            ]
        );
        // End of body before the final event.
        let got: Vec<_> = decode_stream(
            bytes(vec!["data: a\n\n"]),
            Duration::from_secs(1),
            Lines,
            None,
        )
        .collect()
        .await;
        assert_eq!(
            got,
            vec![
                Ok(StreamEvent::Text("a".into())),
                Err(ProviderError::Truncated("eof".into()))
            ]
        );
        // A transport error mid-stream.
        let s: ByteStream = Box::pin(futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"data: a\n\n")),
            Err(ProviderError::Connection {
                url: "u".into(),
                message: "reset".into(),
            }),
        ]));
        let got: Vec<_> = decode_stream(s, Duration::from_secs(1), Lines, None)
            .collect()
            .await;
        assert_eq!(got.len(), 2);
        assert!(matches!(got[1], Err(ProviderError::Connection { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn driver_idle_timeout_between_chunks() {
        let s: ByteStream = Box::pin(
            futures_util::stream::iter(vec![Ok(Bytes::from_static(b"data: a\n\n"))])
                .chain(futures_util::stream::pending()),
        );
        let started = tokio::time::Instant::now();
        let got: Vec<_> = decode_stream(s, Duration::from_secs(30), Lines, None)
            .collect()
            .await;
        assert_eq!(
            got,
            vec![
                Ok(StreamEvent::Text("a".into())),
                Err(ProviderError::Timeout(Duration::from_secs(30)))
            ]
        );
        assert!(started.elapsed() >= Duration::from_secs(30));
        assert!(started.elapsed() < Duration::from_secs(31));
    }

    #[tokio::test(start_paused = true)]
    async fn driver_slow_but_steady_stream_is_not_idle() {
        // Each chunk comes 20 s after the last, under the 30 s idle limit: 100 s in all.
        let s: ByteStream = Box::pin(futures_util::stream::unfold(0, |i| async move {
            if i == 5 {
                return None;
            }
            tokio::time::sleep(Duration::from_secs(20)).await;
            let chunk = if i == 4 {
                "data: end\n\n"
            } else {
                "data: x\n\n"
            };
            Some((Ok(Bytes::from_static(chunk.as_bytes())), i + 1))
        }));
        let got: Vec<_> = decode_stream(s, Duration::from_secs(30), Lines, None)
            .collect()
            .await;
        assert_eq!(got.len(), 5);
        assert!(got.iter().all(Result::is_ok));
    }

    #[tokio::test]
    async fn collect_gathers_everything() {
        let events = vec![
            Ok(StreamEvent::Thinking("hm".into())),
            Ok(StreamEvent::Text("a".into())),
            Ok(StreamEvent::ToolCallStarted {
                index: 0,
                id: "x".into(),
                name: "t".into(),
            }),
            Ok(StreamEvent::ToolCallDelta {
                index: 0,
                fragment: "{}".into(),
            }),
            Ok(StreamEvent::ToolCall(ToolCall {
                id: "x".into(),
                name: "t".into(),
                arguments: serde_json::json!({}),
            })),
            Ok(StreamEvent::Text("b".into())),
            Ok(StreamEvent::Done {
                stop: StopReason::ToolUse,
                usage: Usage {
                    input: 1,
                    output: 2,
                    cached: 0,
                },
            }),
        ];
        let c = collect(Box::pin(futures_util::stream::iter(events)))
            .await
            .unwrap();
        assert_eq!(c.text, "ab");
        assert_eq!(c.thinking, "hm");
        assert_eq!(c.tool_calls.len(), 1);
        assert_eq!(c.stop, StopReason::ToolUse);
        assert_eq!(c.usage.output, 2);
        let r = collect(Box::pin(futures_util::stream::iter(vec![Ok(
            StreamEvent::Text("a".into()),
        )])))
        .await;
        assert!(matches!(r, Err(ProviderError::Truncated(_))));
        let r = collect(Box::pin(futures_util::stream::iter(vec![Err(
            ProviderError::Timeout(Duration::from_secs(1)),
        )])))
        .await;
        assert_eq!(r, Err(ProviderError::Timeout(Duration::from_secs(1))));
    }

    #[test]
    fn headers_mark_the_key_sensitive_and_extras_replace() {
        let h = header_map(
            &[
                ("authorization", "Bearer k", true),
                ("accept", "text/event-stream", false),
            ],
            &[
                ("X-Title".into(), "pincer".into()),
                ("Accept".into(), "*/*".into()),
            ],
        )
        .unwrap();
        assert!(h["authorization"].is_sensitive());
        assert_eq!(h["accept"], "*/*");
        assert_eq!(h["x-title"], "pincer");
        assert!(matches!(
            header_map(&[("x-api-key", "bad\nkey", true)], &[]),
            Err(ProviderError::Auth { status: 0, .. })
        ));
        let e = header_map(&[], &[("bad name".into(), "v".into())]).unwrap_err();
        assert!(matches!(e, ProviderError::BadRequest { status: 0, .. }));
    }

    #[test]
    fn small_helpers() {
        assert_eq!(parse_args("  ").unwrap(), Value::Null);
        assert_eq!(parse_args("{\"a\":1}").unwrap()["a"], 1);
        assert!(parse_args("{\"a\":").is_err());
        let id = new_call_id();
        assert!(id.starts_with("call_") && id.len() == 37, "{id}");
        assert_eq!(tool_result_text("boom", true), "Error: boom");
        assert_eq!(tool_result_text("error: boom", true), "error: boom");
        assert_eq!(tool_result_text("ok", false), "ok");
        assert_eq!(query_escape("a b/c=d"), "a%20b%2Fc%3Dd");
    }

    #[test]
    fn http_client_builds_once_with_ring() {
        let a = http_client();
        let b = http_client();
        drop((a, b));
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
