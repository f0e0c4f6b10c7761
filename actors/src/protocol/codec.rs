//! Frame encoding: JSON text frames by default, MessagePack binary frames for clients
//! that negotiate the `pincer.msgpack.v1` WebSocket subprotocol.
//!
//! MessagePack frames carry the very same objects as the JSON ones (maps with the same
//! field names, encoded with `rmp_serde::to_vec_named`), so a client can switch encodings
//! without changing anything else.

use serde::Serialize;

use super::RequestFrame;

/// The WebSocket subprotocol a client offers to get MessagePack frames.
pub const MSGPACK_SUBPROTOCOL: &str = "pincer.msgpack.v1";

/// How a connection encodes its frames; fixed at upgrade time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// One JSON object per text frame (OpenClaw's default).
    Json,
    /// One MessagePack map per binary frame.
    MsgPack,
}

/// Why an inbound frame was refused. The message is meant for the client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameError {
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("frame is not a request: {0}")]
    NotARequest(String),
    #[error("{0}")]
    WrongEncoding(String),
}

/// A request frame decoded together with the request id when one could be read, so that
/// even a malformed request can be answered on its own id.
pub fn decode_request(
    encoding: Encoding,
    bytes: &[u8],
) -> Result<RequestFrame, (Option<String>, FrameError)> {
    // Fast path: a well-formed request decodes straight into the frame type.
    let direct = match encoding {
        Encoding::Json => serde_json::from_slice::<RequestFrame>(bytes).ok(),
        Encoding::MsgPack => rmp_serde::from_slice::<RequestFrame>(bytes).ok(),
    };
    if let Some(frame) = direct.filter(|f| f.kind == "req") {
        return Ok(frame);
    }
    // Slow path: work out what is wrong, for a message that helps the client.
    let value: serde_json::Value = match encoding {
        Encoding::Json => serde_json::from_slice(bytes).map_err(|e| {
            (
                None,
                FrameError::Malformed(format!(
                    "invalid JSON ({e}); send one JSON object per text frame"
                )),
            )
        })?,
        Encoding::MsgPack => rmp_serde::from_slice(bytes).map_err(|e| {
            (
                None,
                FrameError::Malformed(format!(
                    "invalid MessagePack ({e}); send one map per binary frame"
                )),
            )
        })?,
    };
    let id = value.get("id").and_then(|v| v.as_str()).map(str::to_owned);
    let Some(obj) = value.as_object() else {
        return Err((
            None,
            FrameError::Malformed(
                "expected an object like {\"type\":\"req\",\"id\":\"1\",\"method\":\"health\"}"
                    .into(),
            ),
        ));
    };
    match obj.get("type").and_then(|t| t.as_str()) {
        Some("req") => {}
        Some(other) => {
            return Err((
                id,
                FrameError::NotARequest(format!(
                    "type is \"{other}\"; clients send only \"req\" frames"
                )),
            ));
        }
        None => {
            return Err((
                id,
                FrameError::Malformed("missing string field \"type\" (expected \"req\")".into()),
            ));
        }
    }
    serde_json::from_value::<RequestFrame>(value)
        .map_err(|e| (id, FrameError::Malformed(format!("bad request frame: {e}"))))
}

/// Encodes any outbound object for the connection's encoding.
pub fn encode<T: Serialize>(encoding: Encoding, frame: &T) -> Vec<u8> {
    match encoding {
        // Serialising our own types cannot fail: no maps with non-string keys, no floats
        // that JSON cannot carry (NaN is not produced by the gateway).
        Encoding::Json => serde_json::to_vec(frame).expect("outbound frame serialises to JSON"),
        Encoding::MsgPack => {
            rmp_serde::to_vec_named(frame).expect("outbound frame serialises to MessagePack")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ErrorShape, EventFrame, ResponseFrame};
    use serde_json::json;

    #[test]
    fn decodes_a_json_request() {
        let r = decode_request(
            Encoding::Json,
            br#"{"type":"req","id":"7","method":"health"}"#,
        )
        .unwrap();
        assert_eq!(
            (r.id.as_str(), r.method.as_str(), r.params),
            ("7", "health", None)
        );
    }

    #[test]
    fn garbage_and_wrong_shapes_are_refused_with_a_reason() {
        let (id, e) = decode_request(Encoding::Json, b"{nope").unwrap_err();
        assert_eq!(id, None);
        assert!(e.to_string().contains("invalid JSON"), "{e}");
        let (_, e) = decode_request(Encoding::Json, b"[1,2]").unwrap_err();
        assert!(e.to_string().contains("expected an object"), "{e}");
        let (id, e) = decode_request(Encoding::Json, br#"{"type":"res","id":"9"}"#).unwrap_err();
        assert_eq!(id.as_deref(), Some("9"));
        assert!(matches!(e, FrameError::NotARequest(_)));
        let (id, e) = decode_request(Encoding::Json, br#"{"type":"req","id":"3"}"#).unwrap_err();
        assert_eq!(id.as_deref(), Some("3"));
        assert!(e.to_string().contains("method"), "{e}");
        let (_, e) = decode_request(
            Encoding::Json,
            br#"{"type":"req","id":"3","method":"x","extra":1}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("extra"), "{e}");
    }

    #[test]
    fn msgpack_round_trips_the_same_objects() {
        let req = RequestFrame::new("1", "health", Some(json!({"probe": true})));
        let bytes = rmp_serde::to_vec_named(&req).unwrap();
        assert_eq!(decode_request(Encoding::MsgPack, &bytes).unwrap(), req);
        let (_, e) = decode_request(Encoding::MsgPack, &[0xc1, 0xff, 0x00]).unwrap_err();
        assert!(e.to_string().contains("MessagePack"), "{e}");

        let res = ResponseFrame::err("1", ErrorShape::forbidden("missing scope: operator.admin"));
        let back: serde_json::Value =
            rmp_serde::from_slice(&encode(Encoding::MsgPack, &res)).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&encode(Encoding::Json, &res)).unwrap();
        assert_eq!(back, json);
        assert_eq!(json["error"]["code"], "FORBIDDEN");
        let ev = EventFrame::new("tick", json!({"ts": 5}));
        let json: serde_json::Value = serde_json::from_slice(&encode(Encoding::Json, &ev)).unwrap();
        assert_eq!(
            json,
            json!({"type":"event","event":"tick","payload":{"ts":5}})
        );
    }
}
