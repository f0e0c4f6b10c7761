//! Turning the command line, the environment and the config file into what the daemon
//! needs. (Interim: environment only, until the config module lands.)

use std::net::SocketAddr;

use pincer_actors::gateway::{AuthPolicy, GatewayInfo, GatewaySettings};

use crate::cli::RunArgs;
use crate::telemetry::LogFormat;

/// Flags that apply to every command.
#[derive(Debug, Clone)]
pub struct Globals {
    pub profile: Option<String>,
    pub log_format: LogFormat,
    pub log_level: Option<String>,
}

pub struct Prepared {
    pub bind: SocketAddr,
    pub auth: AuthPolicy,
    pub auth_description: String,
    pub info: GatewayInfo,
    pub settings: GatewaySettings,
}

pub fn prepare(globals: &Globals, run: &RunArgs) -> Result<Prepared, String> {
    let _ = crate::telemetry::init(
        globals.log_format,
        globals.log_level.as_deref().unwrap_or("info"),
        std::env::var("RUST_LOG").ok(),
        None,
    );
    let token = std::env::var("PINCER_GATEWAY_TOKEN")
        .map_err(|_| "set PINCER_GATEWAY_TOKEN".to_string())?;
    Ok(Prepared {
        bind: SocketAddr::from(([127, 0, 0, 1], run.port.unwrap_or(18789))),
        auth: AuthPolicy::Token(token),
        auth_description: "token from PINCER_GATEWAY_TOKEN".into(),
        info: GatewayInfo::default(),
        settings: GatewaySettings::default(),
    })
}

/// Where and how a client command reaches the gateway.
pub struct ClientTarget {
    pub url: String,
    pub token: Option<String>,
    pub password: Option<String>,
}

pub fn client_target(
    _globals: &Globals,
    args: &crate::cli::ClientArgs,
) -> Result<ClientTarget, String> {
    Ok(ClientTarget {
        url: args
            .url
            .clone()
            .unwrap_or_else(|| "ws://127.0.0.1:18789/".into()),
        token: args.token.clone(),
        password: args.password.clone(),
    })
}
