//! `pincer gateway`: the daemon in the foreground.
//!
//! Order of start-up, each step with an error that says what to do: state directory ->
//! config (strict) -> the single-gateway lock -> store (schema, migrations) -> auth ->
//! listener -> supervision tree. Shutdown on SIGINT/SIGTERM runs it backwards: `shutdown`
//! event to clients, children stopped in reverse order, store flushed, lock released,
//! exit 0.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use pincer_actors::gateway::{
    GatewayActor, GatewayArgs, GatewayMsg, MethodRegistry, Metrics, methods,
};
use tracing::{error, info, warn};

use crate::cli::RunArgs;
use crate::setup::{Globals, Prepared};

/// Runs the daemon until a signal; the exit code says how it ended.
pub async fn main(globals: &Globals, run: RunArgs) -> ExitCode {
    let prepared = match crate::setup::prepare(globals, &run) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match serve(prepared).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "gateway failed");
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

async fn serve(p: Prepared) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(p.bind)
        .await
        .map_err(|e| bind_error(p.bind, &e))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let metrics = Metrics::new();
    let mut registry = MethodRegistry::new();
    let health = methods::default_health(p.info.clone());
    methods::register(&mut registry, &p.info, health.clone());
    let args = GatewayArgs {
        listener,
        settings: p.settings.clone(),
        info: p.info.clone(),
        auth: p.auth.clone(),
        registry: Arc::new(registry),
        metrics,
        health: Some(health),
    };
    let (gateway, handle) = GatewayActor::start(args, None)
        .await
        .map_err(|e| format!("gateway failed to start: {e}"))?;
    println!(
        "pincer gateway listening on ws://{local}/ (auth: {})",
        p.auth_description
    );
    wait_for_signal().await;
    info!("signal received, shutting down");
    let grace = p.settings.shutdown_grace + Duration::from_secs(1);
    let _ = gateway
        .call(
            |reply| GatewayMsg::Shutdown {
                reason: "gateway stopping".into(),
                restart_expected_ms: None,
                reply,
            },
            Some(grace),
        )
        .await;
    gateway.stop(Some("shutdown".into()));
    if tokio::time::timeout(grace, handle).await.is_err() {
        warn!("gateway actor did not stop in time");
    }
    info!("gateway stopped cleanly");
    Ok(())
}

fn bind_error(addr: SocketAddr, e: &std::io::Error) -> String {
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

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
