//! A local LLM server that speaks the real wire formats of OpenAI chat completions,
//! Anthropic messages and Google Gemini `generateContent` (JSON and SSE streaming), answers
//! with scripted replies and fails on demand. Pincer's provider, failover and end-to-end
//! tests run against it, and `pincer mock-llm` serves it for fault-injection by hand.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use pincer_mockllm::{Fault, MockApi, MockLlm, Step};
//! let mock = MockLlm::start("127.0.0.1:0".parse().unwrap()).await?;
//! mock.push(Step::fault(Fault::Status { code: 429, retry_after_secs: Some(2), body: None }));
//! mock.push(Step::tool_call("write", serde_json::json!({"path": "a.txt"})).for_model("gpt-4o"));
//! let base = mock.base_url(MockApi::OpenAi); // http://127.0.0.1:PORT/v1
//! # let _ = base; mock.shutdown().await; Ok(()) }
//! ```
//!
//! # Routes
//! | API | route | key from |
//! |---|---|---|
//! | OpenAI | `POST /v1/chat/completions` (`"stream": true` for SSE), `GET /v1/models` | `Authorization: Bearer` |
//! | Ollama | `GET /api/tags` (and the OpenAI routes) | - |
//! | Anthropic | `POST /v1/messages` (`"stream": true` for SSE), `GET /v1/models` with `anthropic-version` or `x-api-key` | `x-api-key` (or `Authorization: Bearer`) |
//! | Gemini | `POST /v1beta/models/{model}:generateContent`, `…:streamGenerateContent?alt=sse` (SSE; without `alt`, a streamed JSON array), `GET /v1beta/models` | `x-goog-api-key` or `?key=` |
//!
//! Any key is accepted unless a step says otherwise. Like the real APIs, a body that is not
//! JSON, an OpenAI request without `model`/`messages`, an Anthropic request without the
//! `anthropic-version` header or `model`/`messages`/`max_tokens`, and a Gemini request
//! without `contents` get a 400 in the API's error shape (and are still recorded).
//!
//! # Steps
//! Each request takes the first queued [`Step`] whose [`Match`] fits its model and key
//! (FIFO among those that fit). With none, it gets the text reply
//! `mock reply to: <text of the last user message>`. The delivery faults (`StallAfter`,
//! `Truncate`, `InvalidJson`, `Slow`) spoil that default reply.
//!
//! | fault | streamed | not streamed |
//! |---|---|---|
//! | `Status` | the status, `retry-after` if set, the API's error JSON | same |
//! | `Stall` | nothing at all until shutdown, then the connection closes | same |
//! | `StallAfter { events }` | that many events (at most all but the last), then silence until shutdown | headers, then silence |
//! | `Truncate { events }` | that many events (at most all but the last), a clean end of body, `Connection: close` | the first half of the JSON |
//! | `InvalidJson` | a non-JSON event inserted as the second event, the rest intact | the JSON with a trailing comma |
//! | `Slow { per_event_ms }` | a paused-time-friendly `tokio::time::sleep` before each event | one such sleep before the answer |
//! | `Reset` | the connection closes, no HTTP response | same |
//! | `RejectThinking` | 400, see below | same |
//!
//! "Events": OpenAI `data:` lines including `[DONE]`; Anthropic `event:` blocks including
//! the `ping` after `message_start`; Gemini `data:` lines (array elements without `alt=sse`).
//!
//! `RejectThinking` answers 400 with the wording each API uses for a thinking setting the
//! model does not take: OpenAI `invalid_request_error` / code `unsupported_parameter` /
//! param `reasoning_effort`: "Unsupported parameter: 'reasoning_effort' is not supported
//! with this model."; Anthropic `invalid_request_error`: "'MODEL' does not support
//! thinking."; Gemini `INVALID_ARGUMENT`: "thinking_config is not supported.".
//!
//! Default error bodies by status: OpenAI `{"error": {"message", "type", "param", "code"}}`
//! (401 `invalid_api_key`, 402 `insufficient_quota`, 404 `model_not_found`, 429
//! `rate_limit_exceeded`, 5xx `server_error`); Anthropic `{"type": "error", "error":
//! {"type", "message"}, "request_id"}` (400 `invalid_request_error`, 401
//! `authentication_error`, 402 `billing_error`, 403 `permission_error`, 404
//! `not_found_error`, 429 `rate_limit_error`, 500 `api_error`, 529 `overloaded_error`);
//! Gemini `{"error": {"code", "message", "status"}}` (400 `INVALID_ARGUMENT`, 401
//! `UNAUTHENTICATED`, 403 `PERMISSION_DENIED`, 404 `NOT_FOUND`, 429 `RESOURCE_EXHAUSTED`,
//! 500 `INTERNAL`, 503 `UNAVAILABLE`).
//!
//! # Control API
//! * `POST /__mock/steps`: a JSON array of steps (or one step object); answers
//!   `{"queued": n, "pending": m}`, or 400 `{"error": "steps[1].fault: unknown fault ..."}`.
//! * `GET /__mock/steps`: the steps still queued. `GET /__mock/requests`: the recorded
//!   requests, `[{"api": "openai"|"anthropic"|"gemini", "path", "model", "apiKey",
//!   "headers": [[name, value]], "body", "stream"}]`. `POST /__mock/reset`: clears both.
//! * `POST /__mock/models` with `["id", ..]` / `GET /__mock/models`: the model-list set.
//!
//! A step (fields other than these are refused):
//! ```json
//! {"model": "gpt-4o", "apiKey": "sk-a",
//!  "reply": {"text": "hi", "thinking": "hmm",
//!            "toolCalls": [{"name": "write", "arguments": {"path": "a.txt"}}],
//!            "usage": {"input": 10, "output": 5, "cached": 2},
//!            "chunkChars": 8, "maxTokens": false}}
//! {"reply": "hi"}
//! {"fault": {"status": 429, "retryAfter": 2, "body": {"error": "custom"}}}
//! {"fault": "stall"}  {"fault": "reset"}  {"fault": "invalidJson"}  {"fault": "rejectThinking"}
//! {"fault": {"stallAfter": 3}}  {"fault": {"truncate": 3}}  {"fault": {"slow": 250}}
//! ```
//! `model` and `apiKey` are optional (absent = any); a step has exactly one of `reply` and
//! `fault`; every `reply` field is optional.

mod conn;
mod control;
mod play;
mod script;
mod server;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::task::JoinHandle;

pub use script::{Action, DEFAULT_CHUNK_CHARS, Fault, Match, Reply, Step, StepError};

use conn::{Conn, KillableListener};
use server::Shared;

/// Which wire format a request spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MockApi {
    /// OpenAI chat completions, and Ollama's `/api/tags`.
    OpenAi,
    Anthropic,
    Gemini,
}

/// One request as the mock received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    pub api: MockApi,
    /// The URL path, e.g. `/v1beta/models/gemini-2.5-flash:streamGenerateContent`.
    pub path: String,
    /// From the body, or Gemini's path; empty for model listings.
    pub model: String,
    pub api_key: Option<String>,
    /// Every header, names lowercase, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The JSON body; a string holding the raw text if it was not JSON; null for GETs.
    pub body: Value,
    pub stream: bool,
}

impl RecordedRequest {
    /// The value of the first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A running mock server; dropping it stops it too (without waiting).
pub struct MockLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl MockLlm {
    /// Binds `addr` (use 127.0.0.1:0 in tests) and serves in a background tokio task.
    pub async fn start(addr: SocketAddr) -> std::io::Result<MockLlm> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new());
        let app = server::router(shared.clone()).into_make_service_with_connect_info::<Conn>();
        let mut down = shared.shutdown.subscribe();
        let serve =
            axum::serve(KillableListener(listener), app).with_graceful_shutdown(async move {
                let _ = down.wait_for(|d| *d).await;
            });
        let task = tokio::spawn(async move {
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "mock llm server stopped with an error");
            }
        });
        tracing::debug!(%addr, "mock llm listening");
        Ok(MockLlm {
            addr,
            shared,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL a Pincer provider config uses for this API: openai -> `http://ADDR/v1`,
    /// anthropic -> `http://ADDR`, gemini -> `http://ADDR/v1beta`.
    pub fn base_url(&self, api: MockApi) -> String {
        match api {
            MockApi::OpenAi => format!("http://{}/v1", self.addr),
            MockApi::Anthropic => format!("http://{}", self.addr),
            MockApi::Gemini => format!("http://{}/v1beta", self.addr),
        }
    }

    /// Queue one scripted step; steps are consumed FIFO by the first request that matches.
    pub fn push(&self, step: Step) {
        self.shared.lock().queue.push_back(step);
    }

    pub fn push_all(&self, steps: impl IntoIterator<Item = Step>) {
        self.shared.lock().queue.extend(steps);
    }

    /// The steps not consumed yet, in queue order.
    pub fn pending(&self) -> Vec<Step> {
        self.shared.lock().queue.iter().cloned().collect()
    }

    /// Every request received so far (all APIs), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Turns keeping requests for [`requests`](Self::requests) on or off (on by default).
    /// Benchmarks turn it off: thousands of kept request bodies cost the machine they
    /// share with the gateway time and memory.
    pub fn set_recording(&self, on: bool) {
        self.shared.lock().recording = on;
    }

    /// Clears the queue and the recorded requests.
    pub fn reset(&self) {
        let mut st = self.shared.lock();
        st.queue.clear();
        st.requests.clear();
    }

    /// The model ids `GET /v1/models`, `/api/tags` and `/v1beta/models` list
    /// (default `["mock-model"]`).
    pub fn set_models(&self, models: Vec<String>) {
        self.shared.lock().models = models;
    }

    /// Stops accepting, closes stalled and streaming connections, and waits until every
    /// connection is done.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

impl std::fmt::Debug for MockLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockLlm")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}
