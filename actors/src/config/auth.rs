//! Which secret the gateway expects, and where it came from. The shared token is generated
//! on first start into `credentials/gateway.token` (mode 0600) unless one is configured.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rand::RngCore;

use super::{ConfigError, PincerConfig, StateDir};
use crate::gateway::AuthPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Config,
    Env,
    /// Read from `credentials/gateway.token`.
    File,
    /// Generated just now into `credentials/gateway.token`.
    Generated,
    /// Mode password or none: no token.
    NotUsed,
}

/// The auth the gateway enforces. `Debug` never prints a secret (AuthPolicy redacts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedAuth {
    pub policy: AuthPolicy,
    pub source: TokenSource,
}

impl ResolvedAuth {
    /// For the start-up line: `token from credentials/gateway.token`, ...
    pub fn describe(&self, state: &StateDir) -> String {
        match (&self.policy, self.source) {
            (AuthPolicy::None, _) => "none (loopback only)".into(),
            (AuthPolicy::Password(_), _) => "password".into(),
            (AuthPolicy::Token(_), TokenSource::Config) => "token from gateway.auth.token".into(),
            (AuthPolicy::Token(_), TokenSource::Env) => "token from PINCER_GATEWAY_TOKEN".into(),
            (AuthPolicy::Token(_), TokenSource::Generated) => {
                format!("token generated into {}", state.token_file().display())
            }
            (AuthPolicy::Token(_), _) => format!("token from {}", state.token_file().display()),
        }
    }
}

/// Resolves the gateway's auth. With `generate`, a missing token file is created.
pub fn resolve_gateway_auth(
    config: &PincerConfig,
    state: &StateDir,
    env: &dyn Fn(&str) -> Option<String>,
    generate: bool,
) -> Result<ResolvedAuth, ConfigError> {
    let auth = &config.gateway.auth;
    match auth.mode.as_str() {
        "none" => Ok(ResolvedAuth {
            policy: AuthPolicy::None,
            source: TokenSource::NotUsed,
        }),
        "password" => {
            let pw = auth
                .password
                .clone()
                .or_else(|| env("PINCER_GATEWAY_PASSWORD").filter(|p| !p.is_empty()));
            match pw {
                Some(p) => Ok(ResolvedAuth { policy: AuthPolicy::Password(p), source: TokenSource::NotUsed }),
                None => Err(ConfigError::State(
                    "gateway.auth.mode is \"password\" but no password is set: set gateway.auth.password or PINCER_GATEWAY_PASSWORD".into(),
                )),
            }
        }
        _ => {
            if let Some(t) = &auth.token {
                return Ok(ResolvedAuth {
                    policy: AuthPolicy::Token(t.clone()),
                    source: TokenSource::Config,
                });
            }
            if let Some(t) = env("PINCER_GATEWAY_TOKEN").filter(|t| !t.is_empty()) {
                return Ok(ResolvedAuth {
                    policy: AuthPolicy::Token(t),
                    source: TokenSource::Env,
                });
            }
            let path = state.token_file();
            match read_token_file(&path)? {
                Some(t) => Ok(ResolvedAuth {
                    policy: AuthPolicy::Token(t),
                    source: TokenSource::File,
                }),
                None if generate => {
                    let t = generate_token_file(&path)?;
                    Ok(ResolvedAuth {
                        policy: AuthPolicy::Token(t),
                        source: TokenSource::Generated,
                    })
                }
                None => Err(ConfigError::State(format!(
                    "no gateway token yet: start the gateway once (it creates {}), or set PINCER_GATEWAY_TOKEN",
                    path.display()
                ))),
            }
        }
    }
}

/// Reads the token file, refusing one that others can read.
pub fn read_token_file(path: &Path) -> Result<Option<String>, ConfigError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ConfigError::State(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(ConfigError::State(format!(
            "{} can be read by other users (mode {:o}); run: chmod 600 {}",
            path.display(),
            meta.permissions().mode() & 0o777,
            path.display()
        )));
    }
    let t = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::State(format!("cannot read {}: {e}", path.display())))?;
    let t = t.trim().to_owned();
    if t.is_empty() {
        return Err(ConfigError::State(format!(
            "{} is empty; delete it to get a new token",
            path.display()
        )));
    }
    Ok(Some(t))
}

fn generate_token_file(path: &Path) -> Result<String, ConfigError> {
    let fail =
        |e: std::io::Error| ConfigError::State(format!("cannot create {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    writeln!(f, "{token}").map_err(fail)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_precedence_generation_and_permissions() {
        let t = tempfile::tempdir().unwrap();
        let state = StateDir::at(t.path());
        let no_env = |_: &str| None;
        let mut cfg = PincerConfig::default();
        let err = resolve_gateway_auth(&cfg, &state, &no_env, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no gateway token yet"), "{err}");

        let first = resolve_gateway_auth(&cfg, &state, &no_env, true).unwrap();
        assert_eq!(first.source, TokenSource::Generated);
        let mode = std::fs::metadata(state.token_file())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let again = resolve_gateway_auth(&cfg, &state, &no_env, true).unwrap();
        assert_eq!(
            (again.policy.clone(), again.source),
            (first.policy.clone(), TokenSource::File)
        );
        let AuthPolicy::Token(tok) = &first.policy else {
            panic!()
        };
        assert_eq!(tok.len(), 64);
        assert!(!format!("{first:?}").contains(tok.as_str()));

        let env = |k: &str| (k == "PINCER_GATEWAY_TOKEN").then(|| "from-env".to_string());
        assert_eq!(
            resolve_gateway_auth(&cfg, &state, &env, true)
                .unwrap()
                .policy,
            AuthPolicy::Token("from-env".into())
        );
        cfg.gateway.auth.token = Some("from-config".into());
        assert_eq!(
            resolve_gateway_auth(&cfg, &state, &env, true)
                .unwrap()
                .source,
            TokenSource::Config
        );

        std::fs::set_permissions(state.token_file(), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        cfg.gateway.auth.token = None;
        let err = resolve_gateway_auth(&cfg, &state, &no_env, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn password_mode_needs_a_password() {
        let t = tempfile::tempdir().unwrap();
        let state = StateDir::at(t.path());
        let mut cfg = PincerConfig::default();
        cfg.gateway.auth.mode = "password".into();
        let err = resolve_gateway_auth(&cfg, &state, &|_| None, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("PINCER_GATEWAY_PASSWORD"), "{err}");
        let env = |k: &str| (k == "PINCER_GATEWAY_PASSWORD").then(|| "pw".to_string());
        assert_eq!(
            resolve_gateway_auth(&cfg, &state, &env, true)
                .unwrap()
                .policy,
            AuthPolicy::Password("pw".into())
        );
    }
}
