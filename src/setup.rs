//! Turning the command line, the environment and the config file into what each command
//! needs. All environment reads of the program happen here (and in clap's `env` flags).

use std::net::SocketAddr;

use pincer_actors::config::{self, LoadedConfig, ResolvedAuth, StateDir};
use pincer_actors::gateway::{GatewayInfo, GatewaySettings};
use pincer_actors::protocol::SessionDefaults;

use crate::cli::{ClientArgs, RunArgs};
use crate::telemetry::LogFormat;

/// Flags that apply to every command.
#[derive(Debug, Clone)]
pub struct Globals {
    pub profile: Option<String>,
    pub log_format: LogFormat,
    pub log_level: Option<String>,
}

/// Reads an environment variable; the one place the program does.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

pub fn state_dir(globals: &Globals) -> Result<StateDir, String> {
    StateDir::resolve(globals.profile.as_deref(), &env).map_err(|e| e.to_string())
}

/// Loads the config, printing its warnings to stderr.
pub fn load_config(state: &StateDir) -> Result<LoadedConfig, String> {
    let loaded = config::load(&state.config_path()).map_err(|e| match e {
        config::ConfigError::Invalid { .. } => {
            format!("the config has problems; fix them and start again (`pincer config validate` re-checks):\n{e}")
        }
        other => other.to_string(),
    })?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    Ok(loaded)
}

/// The port: `--port` > `PINCER_GATEWAY_PORT` > `gateway.port`.
pub fn port(cli_port: Option<u16>, loaded: &LoadedConfig) -> Result<u16, String> {
    if let Some(p) = cli_port {
        return Ok(p);
    }
    match env("PINCER_GATEWAY_PORT").filter(|p| !p.is_empty()) {
        Some(p) => p
            .parse()
            .map_err(|_| format!("PINCER_GATEWAY_PORT={p:?} is not a port number (0-65535)")),
        None => Ok(loaded.config.gateway.port),
    }
}

/// Everything the daemon needs before it binds.
pub struct Prepared {
    pub state: StateDir,
    /// Providers, agents and tool policy, resolved with the environment's API keys.
    pub agents: pincer_actors::agent::config::AgentsConfig,
    /// Where a local Ollama would answer (`OLLAMA_HOST` or 127.0.0.1:11434).
    pub ollama: String,
    pub loaded: LoadedConfig,
    pub bind: SocketAddr,
    pub auth: ResolvedAuth,
    pub info: GatewayInfo,
    pub settings: GatewaySettings,
}

pub fn prepare(
    globals: &Globals,
    run: &RunArgs,
    state: StateDir,
    loaded: LoadedConfig,
) -> Result<Prepared, String> {
    let port = port(run.port, &loaded)?;
    let ip = loaded
        .config
        .gateway
        .bind_ip(run.bind.as_deref())
        .map_err(|e| e.to_string())?;
    let auth = config::resolve_gateway_auth(&loaded.config, &state, &env, true)
        .map_err(|e| e.to_string())?;
    config::ensure_safe_bind(ip, &auth.policy).map_err(|e| e.to_string())?;
    let agents = pincer_actors::agent::config::resolve(&loaded.value, state.root(), &env)
        .map_err(|e| format!("{}: {e}", state.config_path().display()))?;
    let _ = globals;
    let c = &loaded.config;
    let default_agent = c.agents.default_agent_id();
    let info = GatewayInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        host: hostname(),
        config_path: Some(state.config_path().display().to_string()),
        state_dir: Some(state.root().display().to_string()),
        log_file: Some(state.gateway_log()),
        session_defaults: SessionDefaults {
            main_session_key: format!("agent:{default_agent}:{}", c.session.main_key),
            default_agent_id: default_agent,
            main_key: c.session.main_key.clone(),
            scope: Some(c.session.dm_scope.clone()),
        },
    };
    Ok(Prepared {
        agents,
        ollama: pincer_actors::agent::config::ollama_base(&env),
        state,
        bind: SocketAddr::new(ip, port),
        auth,
        info,
        settings: GatewaySettings::default(),
        loaded,
    })
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

/// Where and how a client command reaches the gateway.
pub struct ClientTarget {
    pub url: String,
    pub token: Option<String>,
    pub password: Option<String>,
}

/// URL: `--url`, else the local gateway's port. Secret: `--token`/`--password` (or their
/// environment variables), else the config's, else the state directory's token file.
pub fn client_target(globals: &Globals, args: &ClientArgs) -> Result<ClientTarget, String> {
    let state = state_dir(globals)?;
    let loaded = config::load(&state.config_path()).ok();
    let url = match &args.url {
        Some(u) => u.clone(),
        None => {
            let port = match &loaded {
                Some(l) => port(None, l)?,
                None => 18789,
            };
            format!("ws://127.0.0.1:{port}/")
        }
    };
    let mut token = args.token.clone();
    let mut password = args.password.clone();
    if token.is_none()
        && password.is_none()
        && let Some(l) = &loaded
    {
        match config::resolve_gateway_auth(&l.config, &state, &env, false) {
            Ok(ResolvedAuth {
                policy: pincer_actors::gateway::AuthPolicy::Token(t),
                ..
            }) => token = Some(t),
            Ok(ResolvedAuth {
                policy: pincer_actors::gateway::AuthPolicy::Password(p),
                ..
            }) => password = Some(p),
            _ => {}
        }
    }
    Ok(ClientTarget {
        url,
        token,
        password,
    })
}
