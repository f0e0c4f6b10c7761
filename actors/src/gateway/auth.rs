//! Pure auth logic for the handshake: secret comparison, scope grants and the per-address
//! limiter that slows down guessing of the shared secret.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::protocol::{ConnectAuth, scopes};

/// How clients prove they may drive this gateway. `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthPolicy {
    /// A shared token (`connect.params.auth.token`).
    Token(String),
    /// A password (`connect.params.auth.password`).
    Password(String),
    /// No auth: only ever allowed on a loopback bind.
    None,
}

impl std::fmt::Debug for AuthPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.mode())
    }
}

impl AuthPolicy {
    pub fn mode(&self) -> &'static str {
        match self {
            Self::Token(_) => "token",
            Self::Password(_) => "password",
            Self::None => "none",
        }
    }
}

/// Why a `connect` was refused by auth.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthRefusal {
    #[error("unauthorized: gateway token missing (pass --token or set auth.token in connect)")]
    TokenMissing,
    #[error(
        "unauthorized: gateway token mismatch (use the token in the gateway's state directory, credentials/gateway.token, or its PINCER_GATEWAY_TOKEN)"
    )]
    TokenMismatch,
    #[error("unauthorized: gateway password missing")]
    PasswordMissing,
    #[error("unauthorized: gateway password mismatch")]
    PasswordMismatch,
    #[error("too many failed auth attempts from this address; retry in {}s", retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    #[error("role {0:?} is not supported by this gateway (supported: operator)")]
    UnsupportedRole(String),
    #[error("gateway is shutting down")]
    ShuttingDown,
}

impl AuthRefusal {
    /// OpenClaw's `details` for this refusal. Clients act on `details.code`: a token
    /// mismatch makes a long-lived client stop reconnecting instead of retrying forever.
    pub fn details(&self) -> serde_json::Value {
        use serde_json::json;
        let credentials = |code: &str, reason: &str| {
            json!({
                "code": code,
                "authReason": reason,
                "canRetryWithDeviceToken": false,
                "recommendedNextStep": "update_auth_credentials",
            })
        };
        match self {
            Self::TokenMissing => credentials("AUTH_TOKEN_MISSING", "token_missing"),
            Self::TokenMismatch => credentials("AUTH_TOKEN_MISMATCH", "token_mismatch"),
            Self::PasswordMissing => credentials("AUTH_PASSWORD_MISSING", "password_missing"),
            Self::PasswordMismatch => credentials("AUTH_PASSWORD_MISMATCH", "password_mismatch"),
            Self::RateLimited { .. } => json!({ "code": "AUTH_RATE_LIMITED" }),
            Self::UnsupportedRole(role) => json!({ "code": "UNSUPPORTED_ROLE", "role": role }),
            Self::ShuttingDown => json!({ "code": "SHUTTING_DOWN" }),
        }
    }
}

/// Checks the offered credentials against the policy in constant time.
pub fn verify(policy: &AuthPolicy, offered: Option<&ConnectAuth>) -> Result<(), AuthRefusal> {
    match policy {
        AuthPolicy::None => Ok(()),
        AuthPolicy::Token(expected) => match offered.and_then(|a| a.token.as_deref()) {
            None | Some("") => Err(AuthRefusal::TokenMissing),
            Some(t) if secrets_equal(t, expected) => Ok(()),
            Some(_) => Err(AuthRefusal::TokenMismatch),
        },
        AuthPolicy::Password(expected) => match offered.and_then(|a| a.password.as_deref()) {
            None | Some("") => Err(AuthRefusal::PasswordMissing),
            Some(p) if secrets_equal(p, expected) => Ok(()),
            Some(_) => Err(AuthRefusal::PasswordMismatch),
        },
    }
}

/// Compares digests so neither the content nor the length of the secret leaks by timing.
fn secrets_equal(a: &str, b: &str) -> bool {
    let (da, db) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    da.iter()
        .zip(db.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The scopes an authenticated operator gets: what it asked for (known scopes only), or
/// admin when it asked for none.
pub fn grant_scopes(
    role: Option<&str>,
    requested: Option<&[String]>,
) -> Result<Vec<String>, AuthRefusal> {
    match role.unwrap_or("operator") {
        "operator" => {}
        other => return Err(AuthRefusal::UnsupportedRole(other.to_owned())),
    }
    Ok(match requested {
        None => vec![scopes::ADMIN.to_owned()],
        Some(req) => req
            .iter()
            .filter(|s| scopes::ALL.contains(&s.as_str()))
            .cloned()
            .collect(),
    })
}

/// Per-address limiter of failed auth attempts: `max_failures` within `window`, then every
/// attempt from that address is refused until the window has passed since the first failure.
pub struct AuthLimiter {
    max_failures: u32,
    window: Duration,
    by_ip: HashMap<IpAddr, (Instant, u32)>,
}

impl Default for AuthLimiter {
    fn default() -> Self {
        Self::new(10, Duration::from_secs(60))
    }
}

impl AuthLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            by_ip: HashMap::new(),
        }
    }

    /// `Err(retry_after)` when the address is locked out.
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        match self.by_ip.get(&ip) {
            Some(&(since, n)) if now.duration_since(since) < self.window => {
                if n >= self.max_failures {
                    Err(self.window - now.duration_since(since))
                } else {
                    Ok(())
                }
            }
            Some(_) => {
                self.by_ip.remove(&ip);
                Ok(())
            }
            None => Ok(()),
        }
    }

    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) {
        let window = self.window;
        let e = self.by_ip.entry(ip).or_insert((now, 0));
        if now.duration_since(e.0) >= window {
            *e = (now, 0);
        }
        e.1 += 1;
        if self.by_ip.len() > 10_000 {
            self.by_ip
                .retain(|_, (since, _)| now.duration_since(*since) < window);
        }
    }

    pub fn record_success(&mut self, ip: IpAddr) {
        self.by_ip.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(t: &str) -> ConnectAuth {
        ConnectAuth {
            token: Some(t.into()),
            ..Default::default()
        }
    }

    #[test]
    fn token_and_password_checks() {
        let p = AuthPolicy::Token("s3cret".into());
        assert_eq!(verify(&p, Some(&token("s3cret"))), Ok(()));
        assert_eq!(
            verify(&p, Some(&token("s3cre"))),
            Err(AuthRefusal::TokenMismatch)
        );
        assert_eq!(verify(&p, None), Err(AuthRefusal::TokenMissing));
        let pw = AuthPolicy::Password("pw".into());
        assert_eq!(
            verify(&pw, Some(&token("pw"))),
            Err(AuthRefusal::PasswordMissing)
        );
        let offered = ConnectAuth {
            password: Some("pw".into()),
            ..Default::default()
        };
        assert_eq!(verify(&pw, Some(&offered)), Ok(()));
        assert_eq!(verify(&AuthPolicy::None, None), Ok(()));
        assert!(!format!("{p:?}").contains("s3cret"));
        assert!(!format!("{:?}", token("s3cret")).contains("s3cret"));
    }

    #[test]
    fn scopes_granted_are_the_known_requested_ones() {
        assert_eq!(grant_scopes(None, None).unwrap(), ["operator.admin"]);
        let req = vec!["operator.read".to_string(), "bogus".to_string()];
        assert_eq!(
            grant_scopes(Some("operator"), Some(&req)).unwrap(),
            ["operator.read"]
        );
        assert!(matches!(
            grant_scopes(Some("node"), None),
            Err(AuthRefusal::UnsupportedRole(_))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_locks_out_until_the_window_passes() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let mut l = AuthLimiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check(ip, t0).is_ok());
            l.record_failure(ip, t0);
        }
        assert_eq!(
            l.check(ip, t0 + Duration::from_secs(1)),
            Err(Duration::from_secs(59))
        );
        assert!(l.check(other, t0).is_ok(), "limits are per address");
        assert!(l.check(ip, t0 + Duration::from_millis(59_999)).is_err());
        assert!(l.check(ip, t0 + Duration::from_secs(60)).is_ok());
        l.record_failure(ip, t0 + Duration::from_secs(60));
        l.record_success(ip);
        assert!(l.check(ip, t0 + Duration::from_secs(60)).is_ok());
    }
}
