//! ConfigReloader: applies accepted config changes to their owners while the daemon runs.
//!
//! Parent: the root supervisor (permanent). It subscribes to the ConfigWatcher's output
//! port; auth changes go to the gateway (`SetAuth`), `logging.level` to the log filter.
//! Keys that need a restart are only reported (the watcher logs them).

use pincer_actors::config::watcher::ConfigUpdate;
use pincer_actors::config::{self, StateDir};
use pincer_actors::gateway::GatewayMsg;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::{info, warn};

use crate::telemetry::LevelHandle;

pub struct ConfigReloader;

pub struct ReloaderArgs {
    pub state: StateDir,
    /// The running gateway (its ref changes when it is restarted).
    pub gateway: tokio::sync::watch::Receiver<Option<ActorRef<GatewayMsg>>>,
    pub level: Option<LevelHandle>,
    /// `--log-level` or RUST_LOG pin the level: config changes then do not move it.
    pub level_pinned: bool,
    /// The address the gateway listens on: auth "none" is refused unless it is loopback.
    pub bind_ip: std::net::IpAddr,
}

impl Actor for ConfigReloader {
    type Msg = ConfigUpdate;
    type State = ReloaderArgs;
    type Arguments = ReloaderArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<ConfigUpdate>,
        args: ReloaderArgs,
    ) -> Result<ReloaderArgs, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<ConfigUpdate>,
        update: ConfigUpdate,
        s: &mut ReloaderArgs,
    ) -> Result<(), ActorProcessingErr> {
        let changed = &update.diff.changed;
        if changed.iter().any(|k| k.starts_with("gateway.auth")) {
            let resolved =
                config::resolve_gateway_auth(&update.config, &s.state, &crate::setup::env, true)
                    .and_then(|auth| {
                        config::ensure_safe_bind(s.bind_ip, &auth.policy).map(|_| auth)
                    });
            match resolved {
                Ok(auth) => match s.gateway.borrow().clone() {
                    Some(gw) => {
                        let _ = gw.cast(GatewayMsg::SetAuth { auth: auth.policy });
                        info!("gateway auth updated from the config");
                    }
                    None => warn!("new gateway auth not applied: the gateway is not running"),
                },
                Err(e) => {
                    warn!(error = %e, "new gateway auth not applied; keeping the current one")
                }
            }
        }
        if changed.iter().any(|k| k == "logging.level") {
            match (&s.level, s.level_pinned) {
                (Some(h), false) => match h.set(&update.config.logging.level) {
                    Ok(()) => info!(level = %update.config.logging.level, "log level changed"),
                    Err(e) => warn!(error = %e, "log level not changed"),
                },
                _ => info!("logging.level changed but --log-level or RUST_LOG pins the level"),
            }
        }
        Ok(())
    }
}
