//! Request, response and event frames: a union on `type`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ErrorShape;

/// `{type:"req", id, method, params?}`: the only frame a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFrame {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

impl RequestFrame {
    pub fn new(id: impl Into<String>, method: impl Into<String>, params: Option<Value>) -> Self {
        Self {
            kind: "req".into(),
            id: id.into(),
            method: method.into(),
            params,
        }
    }
}

/// `{type:"res", id, ok, payload?, error?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseFrame {
    #[serde(rename = "type")]
    pub kind: ResKind,
    pub id: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorShape>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResKind {
    #[serde(rename = "res")]
    Res,
}

impl ResponseFrame {
    pub fn ok(id: impl Into<String>, payload: Value) -> Self {
        Self {
            kind: ResKind::Res,
            id: id.into(),
            ok: true,
            payload: Some(payload),
            error: None,
        }
    }

    pub fn err(id: impl Into<String>, error: ErrorShape) -> Self {
        Self {
            kind: ResKind::Res,
            id: id.into(),
            ok: false,
            payload: None,
            error: Some(error),
        }
    }

    pub fn from_result(id: impl Into<String>, result: Result<Value, ErrorShape>) -> Self {
        match result {
            Ok(payload) => Self::ok(id, payload),
            Err(e) => Self::err(id, e),
        }
    }
}

/// `{type:"event", event, payload?, seq?, stateVersion?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventFrame {
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_version: Option<super::StateVersion>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "event")]
    Event,
}

impl EventFrame {
    pub fn new(event: impl Into<String>, payload: Value) -> Self {
        Self {
            kind: EventKind::Event,
            event: event.into(),
            payload: Some(payload),
            seq: None,
            state_version: None,
        }
    }
}

/// Anything the server writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OutboundFrame {
    Response(ResponseFrame),
    Event(EventFrame),
}

impl From<ResponseFrame> for OutboundFrame {
    fn from(r: ResponseFrame) -> Self {
        Self::Response(r)
    }
}

impl From<EventFrame> for OutboundFrame {
    fn from(e: EventFrame) -> Self {
        Self::Event(e)
    }
}
