//! `POST /v1/chat/completions` on the gateway port: OpenAI's chat completions API in front
//! of an agent, so any OpenAI client library can talk to Pincer. The last user message is
//! one turn of a session; the agent's tools, memory and transcript apply as for chat.send.
//!
//! - auth: `Authorization: Bearer <gateway token or password>` (rate-limited per address);
//! - agent: `model` `pincer:<agentId>` / `openclaw:<agentId>` / `agent:<agentId>`, or the
//!   `x-openclaw-agent-id` header, else the default agent;
//! - session: the `x-openclaw-session-key` header, else one per `user`
//!   (`agent:<id>:openai-user:<user>`), else a fresh one per request;
//! - `stream: true` answers server-sent `chat.completion.chunk`s then `data: [DONE]`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures_util::StreamExt;
use ractor::ActorRef;
use ractor::rpc::CallResult;
use serde_json::{Value, json};

use super::methods::{ChatContext, Outgoing, send, wait};
use crate::gateway::GatewayMsg;

/// Finds the running gateway (for auth checks).
pub type GatewayLookup = Arc<dyn Fn() -> Option<ActorRef<GatewayMsg>> + Send + Sync>;

#[derive(Clone)]
struct Api {
    chat: Arc<ChatContext>,
    gateway: GatewayLookup,
}

pub fn routes(chat: Arc<ChatContext>, gateway: GatewayLookup) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(Api { chat, gateway })
}

fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"message": message.into(), "type": kind, "code": Value::Null}});
    (status, Json(body)).into_response()
}

/// The text of the last user message (a string, or an array of `{type:"text", text}`).
fn last_user_text(body: &Value) -> Option<String> {
    let m = body["messages"]
        .as_array()?
        .iter()
        .rev()
        .find(|m| m["role"] == "user")?;
    match &m["content"] {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        _ => None,
    }
}

async fn completions(
    State(api): State<Api>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let secret = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let Some(gw) = (api.gateway)() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "gateway restarting",
        );
    };
    match gw
        .call(
            |reply| GatewayMsg::CheckHttpAuth {
                secret,
                ip: remote.ip(),
                reply,
            },
            Some(Duration::from_secs(5)),
        )
        .await
    {
        Ok(CallResult::Success(Ok(()))) => {}
        Ok(CallResult::Success(Err(e))) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                format!("{e}; send Authorization: Bearer <gateway token>"),
            );
        }
        _ => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "gateway restarting",
            );
        }
    }
    let Ok(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "the body must be a JSON chat completions request",
        );
    };
    let Some(text) = last_user_text(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "messages must contain a user message",
        );
    };
    let model = body["model"].as_str().unwrap_or("pincer").to_owned();
    let agent = headers
        .get("x-openclaw-agent-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            ["pincer:", "openclaw:", "agent:"]
                .iter()
                .find_map(|p| model.strip_prefix(p).map(str::to_owned))
        })
        .unwrap_or_else(|| api.chat.agents.default_agent.clone());
    let key = headers
        .get("x-openclaw-session-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| match body["user"].as_str() {
            Some(u) => format!("agent:{agent}:openai-user:{u}"),
            None => format!("agent:{agent}:openai:{}", uuid::Uuid::new_v4()),
        });
    let streaming = body["stream"] == true;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let accepted = match send(
        &api.chat,
        Outgoing {
            key: Some(key.clone()),
            agent: Some(agent),
            text,
            stream: streaming.then_some(tx),
            ..Default::default()
        },
    )
    .await
    {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request_error", e.message),
    };
    let run_id = accepted["runId"].as_str().unwrap_or_default().to_owned();
    let id = format!("chatcmpl-{run_id}");
    let created = crate::gateway::now_ms() / 1000;
    if !streaming {
        let summary = match wait(&api.chat, key, run_id, Duration::from_secs(600)).await {
            Ok(s) => s,
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, "server_error", e.message),
        };
        if summary["status"] != "ok" {
            return error(
                StatusCode::BAD_GATEWAY,
                "server_error",
                summary["error"].as_str().unwrap_or("the turn failed"),
            );
        }
        let (input, output) = (
            summary["usage"]["input"].as_u64().unwrap_or(0),
            summary["usage"]["output"].as_u64().unwrap_or(0),
        );
        return Json(json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": summary["text"]},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output},
        }))
        .into_response();
    }
    let chunk = {
        let (id, model) = (id.clone(), model.clone());
        move |delta: Value, finish: Value| {
            json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        }
    };
    let first = chunk(json!({"role": "assistant", "content": ""}), Value::Null);
    // After the deltas: the run's outcome; a failed turn ends with OpenAI's error shape.
    let last = {
        let (chat, chunk) = (api.chat.clone(), chunk.clone());
        async move {
            match wait(&chat, key, run_id, Duration::from_secs(600)).await {
                Ok(s) if s["status"] == "ok" => chunk(json!({}), json!("stop")),
                Ok(s) => {
                    json!({"error": {"message": s["error"].as_str().unwrap_or("the turn failed"), "type": "server_error"}})
                }
                Err(e) => json!({"error": {"message": e.message, "type": "server_error"}}),
            }
        }
    };
    let deltas = tokio_stream_from(rx).map({
        let chunk = chunk.clone();
        move |t| chunk(json!({"content": t}), Value::Null)
    });
    let events = futures_util::stream::once(async move { first })
        .chain(deltas)
        .chain(futures_util::stream::once(last))
        .map(|v| Ok::<_, Infallible>(Event::default().data(v.to_string())))
        .chain(futures_util::stream::once(async {
            Ok::<_, Infallible>(Event::default().data("[DONE]"))
        }));
    Sse::new(events).into_response()
}

/// The receiver as a stream: it ends when the session drops the sender (the run ended).
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<String>,
) -> impl futures_util::Stream<Item = String> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn the_last_user_message_is_the_turn() {
        let body = json!({"messages": [
            {"role": "system", "content": "x"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "text", "text": "part"}]},
        ]});
        assert_eq!(super::last_user_text(&body).unwrap(), "second\npart");
        assert_eq!(super::last_user_text(&json!({"messages": []})), None);
    }
}
