//! Letting one answer out: a reply rendered in the request's wire format, whole or as an
//! SSE stream, possibly spoiled by a delivery fault (invalid JSON, cut short, stalled,
//! slowed). Streams stop, and their connection is killed, when the server shuts down.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::watch;

use crate::MockApi;
use crate::conn::Conn;
use crate::script::Reply;
use crate::wire::gemini::Framing;
use crate::wire::{self, Turn, Usage};

/// Resolves once shutdown has begun.
pub(crate) async fn wait_shutdown(rx: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which only happens when everything is.
    let _ = rx.wait_for(|down| *down).await;
}

/// Everything needed to render one answer for one request.
pub(crate) struct Answer<'a> {
    pub api: MockApi,
    /// As requested; echoed in the answer.
    pub model: &'a str,
    pub stream: bool,
    /// Gemini's stream framing (ignored by the other APIs).
    pub framing: Framing,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
    /// The request body size, for the usage estimate.
    pub request_bytes: usize,
}

/// How a reply reaches the client: whole, or spoiled by one of the delivery faults.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Delivery {
    Normal,
    InvalidJson,
    Truncate(usize),
    StallAfter(usize),
    Slow(Duration),
}

/// How the events of a stream are let out.
struct Playback {
    events: VecDeque<Bytes>,
    delay: Option<Duration>,
    /// After the events: hang until shutdown rather than end.
    stall: bool,
    conn: Conn,
    shutdown: watch::Receiver<bool>,
    done: bool,
}

impl Playback {
    fn abort(&mut self) -> io::Error {
        self.conn.kill();
        self.done = true;
        io::Error::other("mock llm shut down")
    }

    fn into_body(self) -> Body {
        Body::from_stream(futures_util::stream::unfold(self, |mut p| async move {
            if p.done {
                return None;
            }
            if let Some(event) = p.events.pop_front() {
                if let Some(d) = p.delay {
                    tokio::select! {
                        () = tokio::time::sleep(d) => {}
                        () = wait_shutdown(&mut p.shutdown) => {
                            let e = p.abort();
                            return Some((Err(e), p));
                        }
                    }
                }
                return Some((Ok(event), p));
            }
            if p.stall {
                wait_shutdown(&mut p.shutdown).await;
                let e = p.abort();
                return Some((Err(e), p));
            }
            None
        }))
    }
}

impl Answer<'_> {
    pub(crate) fn error_body(&self, code: u16) -> Value {
        match self.api {
            MockApi::OpenAi => wire::openai::error(code, self.model),
            MockApi::Anthropic => wire::anthropic::error(code, self.model),
            MockApi::Gemini => wire::gemini::error(code, self.model),
        }
    }

    fn content_type(&self) -> &'static str {
        match (self.api, self.stream, self.framing) {
            (_, false, _) | (MockApi::Gemini, true, Framing::Array) => "application/json",
            (MockApi::Gemini, true, Framing::Sse) => "text/event-stream",
            _ => "text/event-stream; charset=utf-8",
        }
    }

    fn response(&self, body: Body, close: bool) -> Response {
        let mut r = Response::new(body);
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type()),
        );
        if self.stream {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        }
        if close {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        r
    }

    /// A reply, or one of the faults that alter how a reply is delivered.
    pub(crate) async fn play(
        &self,
        reply: &Reply,
        delivery: Delivery,
        conn: Conn,
        mut shutdown: watch::Receiver<bool>,
    ) -> Response {
        let turn = Turn {
            model: self.model,
            reply,
            usage: Usage::resolve(reply, self.request_bytes),
        };
        if !self.stream {
            let body = match self.api {
                MockApi::OpenAi => wire::openai::body(&turn),
                MockApi::Anthropic => wire::anthropic::body(&turn),
                MockApi::Gemini => wire::gemini::body(&turn),
            };
            return match delivery {
                Delivery::Normal => self.response(Body::from(body.to_string()), false),
                Delivery::InvalidJson => {
                    self.response(Body::from(wire::invalid_body(&body)), false)
                }
                Delivery::Truncate(_) => {
                    self.response(Body::from(wire::truncated_body(&body)), true)
                }
                Delivery::StallAfter(_) => {
                    let hang = Playback {
                        events: VecDeque::new(),
                        delay: None,
                        stall: true,
                        conn,
                        shutdown,
                        done: false,
                    };
                    self.response(hang.into_body(), false)
                }
                Delivery::Slow(delay) => {
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {
                            self.response(Body::from(body.to_string()), false)
                        }
                        () = wait_shutdown(&mut shutdown) => {
                            conn.kill();
                            StatusCode::SERVICE_UNAVAILABLE.into_response()
                        }
                    }
                }
            };
        }
        let mut events = match self.api {
            MockApi::OpenAi => wire::openai::stream(&turn, self.include_usage),
            MockApi::Anthropic => wire::anthropic::stream(&turn),
            MockApi::Gemini => wire::gemini::stream(&turn, self.framing),
        };
        // Every stream has a final event the cut-short faults must withhold.
        let before_final = events.len().saturating_sub(1);
        let mut p = Playback {
            events: VecDeque::new(),
            delay: None,
            stall: false,
            conn,
            shutdown,
            done: false,
        };
        let mut close = false;
        match delivery {
            Delivery::Normal => {}
            Delivery::InvalidJson => {
                let bad = match self.api {
                    MockApi::OpenAi => wire::openai::invalid_event(),
                    MockApi::Anthropic => wire::anthropic::invalid_event(),
                    MockApi::Gemini => wire::gemini::invalid_event(self.framing),
                };
                events.insert(1.min(events.len()), bad);
            }
            Delivery::Truncate(n) => {
                events.truncate(n.min(before_final));
                close = true;
            }
            Delivery::StallAfter(n) => {
                events.truncate(n.min(before_final));
                p.stall = true;
            }
            Delivery::Slow(delay) => p.delay = Some(delay),
        }
        p.events = events.into();
        self.response(p.into_body(), close)
    }
}
