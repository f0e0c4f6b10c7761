//! `pincer gateway`: the daemon in the foreground.
//!
//! Start-up, each step with an error that says what to do: state directory -> config
//! (strict) -> logs -> the single-gateway lock -> store (schema, migrations) -> auth ->
//! listener -> supervision tree. SIGINT/SIGTERM run it backwards: `shutdown` to clients,
//! children stopped in reverse order, store flushed, lock released, exit 0.

use std::process::ExitCode;

use pincer_actors::gateway::now_ms;
use pincer_actors::store::{GatewayLock, Store};
use tracing::{error, info, warn};

use crate::cli::RunArgs;
use crate::setup::{self, Globals};
use crate::telemetry;

/// Runs the daemon until a signal; the exit code says how it ended (0 clean, 1 runtime
/// failure, 2 configuration problem).
pub async fn main(globals: &Globals, run: RunArgs) -> ExitCode {
    match run_daemon(globals, run).await {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            // Problems found before logging starts (code 2) go to stderr; later ones are
            // logged, which also reaches stderr and the log file.
            if code == 2 {
                eprintln!("error: {message}");
            } else {
                error!(error = %message, "gateway stopped with an error");
            }
            ExitCode::from(code)
        }
    }
}

async fn run_daemon(globals: &Globals, run: RunArgs) -> Result<(), (u8, String)> {
    let config_err = |e: String| (2u8, e);
    let state = setup::state_dir(globals).map_err(config_err)?;
    state.ensure().map_err(|e| config_err(e.to_string()))?;
    let loaded = setup::load_config(&state).map_err(config_err)?;

    let rust_log = setup::env("RUST_LOG").filter(|v| !v.is_empty());
    let level_pinned = globals.log_level.is_some() || rust_log.is_some();
    let level = globals
        .log_level
        .clone()
        .unwrap_or_else(|| loaded.config.logging.level.clone());
    let level_handle = telemetry::init(
        globals.log_format,
        &level,
        rust_log,
        Some(&state.gateway_log()),
    )
    .map_err(config_err)?;

    // Signals are caught from here on, so a stop requested during start-up is clean too.
    let mut signals =
        Signals::install().map_err(|e| (1, format!("cannot install signal handlers: {e}")))?;
    let lock =
        GatewayLock::acquire(&state.pid_file(), state.root()).map_err(|e| (1, e.to_string()))?;
    let store = Store::open(&state.state_db()).map_err(|e| (1, e.to_string()))?;
    match store.record_start(now_ms()) {
        Ok(Some(false)) => warn!("the previous gateway run did not stop cleanly (crash or kill)"),
        Ok(_) => {}
        Err(e) => warn!(error = %e, "could not record the start in the store"),
    }

    let prepared = setup::prepare(globals, &run, state, loaded).map_err(config_err)?;
    let listener = std::net::TcpListener::bind(prepared.bind)
        .map_err(|e| (1, bind_error(prepared.bind, &e)))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| (1, e.to_string()))?;
    let local = listener.local_addr().map_err(|e| (1, e.to_string()))?;

    let mut tree = crate::tree::start(crate::tree::TreeArgs {
        prepared: &prepared,
        store: store.clone(),
        listener,
        level: Some(level_handle),
        level_pinned,
        faults: run.faults.clone(),
    })
    .await
    .map_err(|e| (1, e))?;
    println!(
        "pincer gateway listening on ws://{local}/ (auth: {})",
        prepared.auth.describe(&prepared.state)
    );
    info!(addr = %local, state_dir = %prepared.state.root().display(), "gateway ready");

    let reason = tokio::select! {
        sig = signals.next() => sig,
        failure = tree.failed() => format!("the supervision tree gave up: {failure}"),
    };
    info!(%reason, "shutting down");
    let clean = tree.shutdown("gateway stopping").await;

    // Writes still queued for the shared commit (delivery records of a send loop cut off
    // by the stop timeout) reach the disk before the store closes.
    if let Err(e) = store.sync().wait().await {
        warn!(error = %e, "writes queued at the stop could not be committed");
    }
    if let Err(e) = store.record_clean_shutdown(now_ms()) {
        warn!(error = %e, "could not record the clean stop in the store");
    }
    drop(store);
    drop(lock);
    if clean {
        info!("gateway stopped cleanly");
        Ok(())
    } else {
        Err((1, reason))
    }
}

fn bind_error(addr: std::net::SocketAddr, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "{addr} is already in use (another gateway or program listens there); stop it, or pass --port / set gateway.port"
        ),
        std::io::ErrorKind::PermissionDenied => {
            format!(
                "not allowed to listen on {addr}; ports below 1024 need privileges: pick a port above 1024"
            )
        }
        std::io::ErrorKind::AddrNotAvailable => {
            format!(
                "{addr} is not an address of this machine; check gateway.bind / gateway.customBindHost"
            )
        }
        _ => format!("cannot listen on {addr}: {e}"),
    }
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) -> String {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM".into(),
            _ = self.int.recv() => "SIGINT".into(),
        }
    }
}
