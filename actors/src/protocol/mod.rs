//! Wire types of the control plane, OpenClaw-compatible (protocol 3 and 4).
//!
//! Pure serde types and the frame codec; no I/O. Field names follow OpenClaw's
//! generated JSON Schema exactly (camelCase, no extra properties on the frames the
//! server emits). See `docs/protocol.md` for what Pincer implements and how.

mod codec;
mod error;
mod frames;
mod hello;

pub use codec::{Encoding, FrameError, MSGPACK_SUBPROTOCOL, decode_request, encode};
pub use error::{ErrorCode, ErrorShape};
pub use frames::{EventFrame, OutboundFrame, RequestFrame, ResponseFrame};
pub use hello::{
    AuthInfo, CLIENT_MODES, ClientInfo, ConnectAuth, ConnectParams, Features, HelloOk, Policy,
    PresenceEntry, ServerInfo, SessionDefaults, Snapshot, StateVersion,
};

/// Whether `client.mode` is one OpenClaw defines.
pub fn hello_client_mode_ok(mode: &str) -> bool {
    CLIENT_MODES.contains(&mode)
}

/// Lowest protocol version this gateway speaks (OpenClaw 2026.1.x clients).
pub const PROTOCOL_MIN: u32 = 3;
/// Highest protocol version this gateway speaks (OpenClaw 2026.9.x clients).
pub const PROTOCOL_MAX: u32 = 4;

/// Picks the highest protocol both sides speak, or `None` when the ranges do not overlap.
pub fn negotiate_protocol(client_min: u32, client_max: u32) -> Option<u32> {
    let hi = client_max.min(PROTOCOL_MAX);
    let lo = client_min.max(PROTOCOL_MIN);
    (client_min <= client_max && lo <= hi).then_some(hi)
}

/// Operator scopes, in OpenClaw's names.
pub mod scopes {
    pub const READ: &str = "operator.read";
    pub const WRITE: &str = "operator.write";
    pub const ADMIN: &str = "operator.admin";
    pub const APPROVALS: &str = "operator.approvals";
    pub const PAIRING: &str = "operator.pairing";
    /// No scope: any authenticated connection may call the method (`health`, as in OpenClaw).
    pub const NONE: &str = "";
    /// Every operator scope; what a shared-secret client gets when it asks for none.
    pub const ALL: [&str; 5] = [ADMIN, READ, WRITE, APPROVALS, PAIRING];

    /// Whether a granted scope set satisfies `required`. `admin` implies every scope and
    /// `write` implies `read`, as in OpenClaw.
    pub fn satisfies(granted: &[String], required: &str) -> bool {
        required == NONE
            || granted
                .iter()
                .any(|g| g == required || g == ADMIN || (required == READ && g == WRITE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_picks_highest_common_version() {
        assert_eq!(negotiate_protocol(3, 3), Some(3));
        assert_eq!(negotiate_protocol(4, 4), Some(4));
        assert_eq!(negotiate_protocol(1, 9), Some(4));
        assert_eq!(negotiate_protocol(5, 6), None);
        assert_eq!(negotiate_protocol(1, 2), None);
        assert_eq!(
            negotiate_protocol(4, 3),
            None,
            "an inverted range is a mismatch"
        );
    }

    #[test]
    fn scope_implications() {
        assert!(
            scopes::satisfies(&[], scopes::NONE),
            "no scope needed, none held"
        );
        let admin = vec![scopes::ADMIN.to_string()];
        let write = vec![scopes::WRITE.to_string()];
        let read = vec![scopes::READ.to_string()];
        assert!(scopes::satisfies(&admin, scopes::WRITE));
        assert!(scopes::satisfies(&write, scopes::READ));
        assert!(!scopes::satisfies(&read, scopes::WRITE));
        assert!(!scopes::satisfies(&write, scopes::ADMIN));
        assert!(!scopes::satisfies(&[], scopes::READ));
    }
}
