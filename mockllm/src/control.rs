//! The `/__mock/*` control API, for `pincer mock-llm` users and non-Rust tools:
//! queue steps, read what was received, reset, set the listed models. Control requests
//! are not recorded.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::script::Step;
use crate::server::Shared;

type St = State<Arc<Shared>>;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/__mock/steps", post(push_steps).get(list_steps))
        .route("/__mock/requests", get(list_requests))
        .route("/__mock/reset", post(reset))
        .route("/__mock/models", post(set_models).get(list_models))
}

fn bad(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": message.into()})),
    )
        .into_response()
}

fn parse(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))
}

/// `POST /__mock/steps`: a JSON array of steps (or one step) appended to the queue.
async fn push_steps(State(sh): St, body: Bytes) -> Response {
    let steps = match parse(&body).and_then(|v| Step::list_from_json(&v).map_err(|e| e.to_string()))
    {
        Ok(steps) => steps,
        Err(e) => return bad(e),
    };
    let mut st = sh.lock();
    let queued = steps.len();
    st.queue.extend(steps);
    axum::Json(json!({"queued": queued, "pending": st.queue.len()})).into_response()
}

/// `GET /__mock/steps`: the steps not consumed yet, in queue order.
async fn list_steps(State(sh): St) -> Response {
    let steps: Vec<Value> = sh.lock().queue.iter().map(Step::to_json).collect();
    axum::Json(Value::Array(steps)).into_response()
}

/// `GET /__mock/requests`: every provider request received, oldest first.
async fn list_requests(State(sh): St) -> Response {
    axum::Json(sh.lock().requests.clone()).into_response()
}

/// `POST /__mock/reset`: forget queued steps and recorded requests.
async fn reset(State(sh): St) -> Response {
    let mut st = sh.lock();
    st.queue.clear();
    st.requests.clear();
    axum::Json(json!({"reset": true})).into_response()
}

/// `POST /__mock/models`: a JSON array of model ids listed by the model-list routes.
async fn set_models(State(sh): St, body: Bytes) -> Response {
    let models = match parse(&body).and_then(|v| {
        serde_json::from_value::<Vec<String>>(v).map_err(|_| {
            "expected a JSON array of model ids, e.g. [\"llama3.2:latest\"]".to_owned()
        })
    }) {
        Ok(m) => m,
        Err(e) => return bad(e),
    };
    sh.lock().models = models.clone();
    axum::Json(json!({"models": models})).into_response()
}

/// `GET /__mock/models`.
async fn list_models(State(sh): St) -> Response {
    axum::Json(json!({"models": sh.lock().models.clone()})).into_response()
}
