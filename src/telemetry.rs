//! Logging and tracing set-up: human-readable logs on a terminal, JSON lines otherwise,
//! and, for the daemon, a JSON log file that `logs.tail` serves.
//!
//! Spans are the unit of tracing (one per actor, one per request with the connection id
//! and method), shaped so that an OpenTelemetry layer can be added beside these without
//! touching call sites.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, reload};

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Pretty on a terminal, JSON lines otherwise.
    Auto,
    Pretty,
    Json,
}

/// Lets the config reloader change the level while the daemon runs.
#[derive(Clone)]
pub struct LevelHandle(reload::Handle<EnvFilter, Registry>);

impl LevelHandle {
    /// Applies a new level (`info`, `debug`, ... or a full filter directive).
    pub fn set(&self, level: &str) -> Result<(), String> {
        let filter = build_filter(level)?;
        self.0.reload(filter).map_err(|e| e.to_string())
    }
}

/// Noisy dependencies are capped at warn unless the directive names them.
fn build_filter(level: &str) -> Result<EnvFilter, String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let directive = if level.contains('=') || level.contains(',') {
        level.to_owned()
    } else if !LEVELS.contains(&level.to_lowercase().as_str()) {
        return Err(format!(
            "invalid log level {level:?}: use one of trace, debug, info, warn, error, or a filter like pincer=debug"
        ));
    } else {
        format!(
            "{level},hyper=warn,h2=warn,tungstenite=warn,tokio_tungstenite=warn,notify=warn,opentelemetry=off"
        )
    };
    EnvFilter::try_new(&directive).map_err(|e| format!("invalid log level {level:?}: {e}"))
}

/// Installs the global subscriber. `level` is the config's or `--log-level`'s; `RUST_LOG`
/// wins when set. With `log_file`, every event is also appended there as a JSON line.
pub fn init(
    format: LogFormat,
    level: &str,
    rust_log: Option<String>,
    log_file: Option<&Path>,
) -> Result<LevelHandle, String> {
    let filter = match rust_log {
        Some(directive) if !directive.is_empty() => build_filter(&directive)?,
        _ => build_filter(level)?,
    };
    let (filter, handle) = reload::Layer::new(filter);
    let pretty = match format {
        LogFormat::Pretty => true,
        LogFormat::Json => false,
        LogFormat::Auto => std::io::stderr().is_terminal(),
    };
    let stderr_layer = if pretty {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .boxed()
    } else {
        fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_current_span(true)
            .boxed()
    };
    let file_layer = match log_file {
        Some(path) => {
            let file = open_log_file(path)?;
            Some(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(Mutex::new(file))
                    .boxed(),
            )
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr_layer)
        .with(file_layer)
        .try_init()
        .map_err(|e| format!("cannot install the log subscriber: {e}"))?;
    Ok(LevelHandle(handle))
}

/// Past this size the log is moved to `gateway.log.1` at start-up.
const ROTATE_AT: u64 = 10 * 1024 * 1024;

fn open_log_file(path: &Path) -> Result<std::fs::File, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the log directory {}: {e}", dir.display()))?;
    }
    if std::fs::metadata(path)
        .map(|m| m.len() > ROTATE_AT)
        .unwrap_or(false)
    {
        let rotated = path.with_extension("log.1");
        let _ = std::fs::rename(path, rotated);
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_directives_parse_and_bad_ones_say_why() {
        assert!(build_filter("info").is_ok());
        assert!(build_filter("pincer=debug,warn").is_ok());
        let err = build_filter("loud").unwrap_err();
        assert!(
            err.contains("invalid log level") && err.contains("trace, debug"),
            "{err}"
        );
        let err = build_filter("pincer=verbose").unwrap_err();
        assert!(err.contains("invalid log level"), "{err}");
    }
}
