//! ConfigWatcher: owns `pincer.json` while the gateway runs.
//!
//! Parent: the root supervisor (permanent; a crash restarts it with the file re-read).
//! It watches the file's directory (editors replace files by rename), debounces bursts of
//! events, re-validates, and publishes a [`ConfigUpdate`] with a typed diff to the owners
//! subscribed to its output port. An invalid edit is logged with its line and the running
//! config is kept. RPC methods (`config.get/set/patch/apply`) go through it as well, so
//! there is one writer of the file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use ractor::{Actor, ActorProcessingErr, ActorRef, OutputPort, RpcReplyPort};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::{info, warn};

use super::{
    ConfigDiff, ConfigError, ConfigIssue, LoadedConfig, PincerConfig, diff, load, merge_patch,
    parse, redacted, redacted_raw, restore_redacted, write_atomic,
};

/// How long the file must be quiet before it is re-read.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Published after every accepted change.
#[derive(Debug, Clone)]
pub struct ConfigUpdate {
    pub config: Arc<PincerConfig>,
    pub hash: String,
    pub diff: ConfigDiff,
}

/// What `config.get` returns.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigSnapshot {
    pub path: String,
    pub exists: bool,
    /// The file's text with secrets replaced by `__PINCER_REDACTED__`; `null` when there
    /// is no file yet (OpenClaw's answer too).
    pub raw: Option<String>,
    pub hash: String,
    pub valid: bool,
    /// The config Pincer runs with, secrets redacted.
    pub config: Value,
    pub issues: Vec<ConfigIssue>,
    pub warnings: Vec<ConfigIssue>,
}

/// What `config.set/patch/apply` return.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigWriteResult {
    pub ok: bool,
    pub path: String,
    pub hash: String,
    pub config: Value,
    pub diff: ConfigDiff,
    pub warnings: Vec<ConfigIssue>,
}

pub struct ConfigWatcher;

pub struct ConfigWatcherArgs {
    pub path: PathBuf,
    /// What the gateway started with (already validated).
    pub initial: LoadedConfig,
    /// Receives every accepted change; subscribe owners before or after start.
    pub updates: Arc<OutputPort<ConfigUpdate>>,
    /// Whether to watch the file system (off in tests that drive reloads by message).
    pub watch: bool,
    /// Where edits of the file are recorded (`config.change` by `config-file`).
    pub audit: Option<crate::store::Store>,
}

pub struct ConfigWatcherState {
    path: PathBuf,
    current: LoadedConfig,
    /// The last on-disk text that failed validation, so one bad edit warns once.
    last_invalid_hash: Option<String>,
    updates: Arc<OutputPort<ConfigUpdate>>,
    _watcher: Option<RecommendedWatcher>,
    generation: u64,
    audit: Option<crate::store::Store>,
}

pub enum ConfigMsg {
    /// `config.get`.
    Get {
        reply: RpcReplyPort<ConfigSnapshot>,
    },
    /// `config.set` / `config.apply`: replace the whole file with `raw` (JSON5).
    Set {
        raw: String,
        base_hash: Option<String>,
        reply: RpcReplyPort<Result<ConfigWriteResult, ConfigError>>,
    },
    /// `config.patch`: apply `raw`, a JSON5 merge patch, to the current config.
    Patch {
        raw: String,
        base_hash: Option<String>,
        reply: RpcReplyPort<Result<ConfigWriteResult, ConfigError>>,
    },
    /// Re-read the file now (what the debounce timer sends).
    Reload,
    Internal(Internal),
}

pub enum Internal {
    /// The file system reported a change to the watched directory.
    FsEvent,
    /// The debounce period of this generation ended.
    Debounced(u64),
}

impl Actor for ConfigWatcher {
    type Msg = ConfigMsg;
    type State = ConfigWatcherState;
    type Arguments = ConfigWatcherArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ConfigMsg>,
        args: ConfigWatcherArgs,
    ) -> Result<ConfigWatcherState, ActorProcessingErr> {
        let watcher = if args.watch {
            Some(watch(&args.path, myself.clone())?)
        } else {
            None
        };
        // A restart re-reads the file: it may have changed while we were down.
        let current = match load(&args.path) {
            Ok(c) => c,
            Err(_) => args.initial,
        };
        Ok(ConfigWatcherState {
            path: args.path,
            current,
            last_invalid_hash: None,
            updates: args.updates,
            _watcher: watcher,
            generation: 0,
            audit: args.audit,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ConfigMsg>,
        msg: ConfigMsg,
        state: &mut ConfigWatcherState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ConfigMsg::Get { reply } => {
                let _ = reply.send(state.snapshot());
            }
            ConfigMsg::Set {
                raw,
                base_hash,
                reply,
            } => {
                let _ = reply.send(state.write(raw, base_hash));
            }
            ConfigMsg::Patch {
                raw,
                base_hash,
                reply,
            } => {
                let result = state
                    .patched_text(&raw)
                    .and_then(|text| state.write(text, base_hash));
                let _ = reply.send(result);
            }
            ConfigMsg::Reload => state.reload(),
            ConfigMsg::Internal(Internal::FsEvent) => {
                state.generation += 1;
                let generation = state.generation;
                myself.send_after(DEBOUNCE, move || {
                    ConfigMsg::Internal(Internal::Debounced(generation))
                });
            }
            ConfigMsg::Internal(Internal::Debounced(generation)) => {
                if generation == state.generation {
                    state.reload();
                }
            }
        }
        Ok(())
    }
}

fn watch(
    path: &std::path::Path,
    me: ActorRef<ConfigMsg>,
) -> Result<RecommendedWatcher, notify::Error> {
    let file_name = path.file_name().map(|f| f.to_owned());
    let dir = path
        .parent()
        .map(|p| p.to_owned())
        .unwrap_or_else(|| PathBuf::from("."));
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res
            && event
                .paths
                .iter()
                .any(|p| p.file_name() == file_name.as_deref())
        {
            let _ = me.cast(ConfigMsg::Internal(Internal::FsEvent));
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

impl ConfigWatcherState {
    fn snapshot(&self) -> ConfigSnapshot {
        let c = &self.current;
        ConfigSnapshot {
            path: c.path.display().to_string(),
            exists: c.exists,
            raw: c.exists.then(|| redacted_raw(&c.raw)),
            hash: c.hash.clone(),
            valid: true,
            config: redacted(&c.value),
            issues: Vec::new(),
            warnings: c.warnings.clone(),
        }
    }

    /// The full text that results from applying a merge patch to the current config.
    fn patched_text(&self, patch_raw: &str) -> Result<String, ConfigError> {
        let file = self.path.display().to_string();
        let patch: Value = json5::from_str(patch_raw).map_err(|e| ConfigError::Invalid {
            warnings: Vec::new(),
            issues: vec![ConfigIssue {
                file: "patch".into(),
                path: String::new(),
                line: None,
                col: None,
                message: format!("the patch is not valid JSON5: {e}"),
            }],
        })?;
        if !patch.is_object() {
            return Err(ConfigError::Invalid {
                warnings: Vec::new(),
                issues: vec![ConfigIssue {
                    file,
                    path: String::new(),
                    line: None,
                    col: None,
                    message: "a merge patch must be an object".into(),
                }],
            });
        }
        let mut merged: Value = if self.current.raw.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            json5::from_str(&self.current.raw).unwrap_or_else(|_| self.current.value.clone())
        };
        merge_patch(&mut merged, &patch);
        Ok(serde_json::to_string_pretty(&merged).expect("JSON prints") + "\n")
    }

    /// Validates `raw`, checks the base hash, writes, reloads and publishes.
    fn write(
        &mut self,
        raw: String,
        base_hash: Option<String>,
    ) -> Result<ConfigWriteResult, ConfigError> {
        // Compare with the file as it is now, not as we last saw it.
        let on_disk = load(&self.path)
            .map(|c| c.hash)
            .unwrap_or_else(|_| self.current.hash.clone());
        match base_hash {
            Some(given) if given != on_disk => {
                return Err(ConfigError::StaleBaseHash {
                    given,
                    current: on_disk,
                });
            }
            None if self.current.exists => return Err(ConfigError::MissingBaseHash),
            _ => {}
        }
        let raw = self.restore_secrets(raw)?;
        let loaded = parse(&raw, &self.path)?;
        write_atomic(&self.path, &raw)?;
        let d = diff(&self.current.config, &loaded.config);
        info!(path = %self.path.display(), changed = ?d.changed, restart_required = ?d.restart_required, "config written");
        let result = ConfigWriteResult {
            ok: true,
            path: self.path.display().to_string(),
            hash: loaded.hash.clone(),
            config: redacted(&loaded.value),
            diff: d.clone(),
            warnings: loaded.warnings.clone(),
        };
        self.accept(loaded, d);
        Ok(result)
    }

    /// A client that read `config.get` sees `__PINCER_REDACTED__` for secrets; writing that
    /// back must keep the real secret.
    fn restore_secrets(&self, raw: String) -> Result<String, ConfigError> {
        if !raw.contains(super::REDACTED) {
            return Ok(raw);
        }
        let mut v: Value = json5::from_str(&raw).map_err(|e| ConfigError::Invalid {
            warnings: Vec::new(),
            issues: vec![ConfigIssue {
                file: self.path.display().to_string(),
                path: String::new(),
                line: None,
                col: None,
                message: format!("JSON5 syntax error: {e}"),
            }],
        })?;
        restore_redacted(&mut v, &self.current.value);
        Ok(serde_json::to_string_pretty(&v).expect("JSON prints") + "\n")
    }

    fn reload(&mut self) {
        let loaded = match load(&self.path) {
            Ok(l) => l,
            Err(e) => {
                let hash = std::fs::read_to_string(&self.path)
                    .map(|r| super::hash_raw(&r))
                    .ok();
                if hash != self.last_invalid_hash {
                    warn!(path = %self.path.display(), error = %e, "config change rejected; keeping the running config");
                    self.last_invalid_hash = hash;
                }
                return;
            }
        };
        if loaded.hash == self.current.hash {
            return;
        }
        for w in &loaded.warnings {
            warn!(issue = %w, "config warning");
        }
        let d = diff(&self.current.config, &loaded.config);
        if !d.restart_required.is_empty() {
            warn!(keys = ?d.restart_required, "config changed; these keys apply after a restart of the gateway");
        }
        info!(changed = ?d.changed, "config reloaded");
        if let Some(store) = &self.audit {
            let rec = crate::audit::AuditRecord::config_change(
                crate::audit::ACTOR_CONFIG_FILE,
                &d.changed,
                &d.restart_required,
            );
            crate::audit::record(store, rec);
        }
        self.accept(loaded, d);
    }

    fn accept(&mut self, loaded: LoadedConfig, d: ConfigDiff) {
        self.last_invalid_hash = None;
        let update = ConfigUpdate {
            config: Arc::new(loaded.config.clone()),
            hash: loaded.hash.clone(),
            diff: d,
        };
        self.current = loaded;
        self.updates.send(update);
    }
}

/// The `config.schema` result in OpenClaw's shape.
pub fn schema_response(version: &str) -> Value {
    json!({
        "schema": super::schema::json_schema(),
        "uiHints": super::schema::ui_hints(),
        "version": version,
        "generatedAt": crate::gateway::now_ms().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ractor::Actor;
    use tokio::sync::mpsc;

    /// Forwards every update it gets to a channel the test reads.
    struct Collector;
    impl Actor for Collector {
        type Msg = ConfigUpdate;
        type State = mpsc::UnboundedSender<ConfigUpdate>;
        type Arguments = mpsc::UnboundedSender<ConfigUpdate>;
        async fn pre_start(
            &self,
            _: ActorRef<ConfigUpdate>,
            tx: Self::Arguments,
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok(tx)
        }
        async fn handle(
            &self,
            _: ActorRef<ConfigUpdate>,
            msg: ConfigUpdate,
            tx: &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            let _ = tx.send(msg);
            Ok(())
        }
    }

    async fn start(
        raw: Option<&str>,
        watch: bool,
    ) -> (
        tempfile::TempDir,
        PathBuf,
        ActorRef<ConfigMsg>,
        mpsc::UnboundedReceiver<ConfigUpdate>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pincer.json");
        if let Some(r) = raw {
            std::fs::write(&path, r).unwrap();
        }
        let initial = load(&path).unwrap();
        let updates = Arc::new(OutputPort::default());
        let (tx, rx) = mpsc::unbounded_channel();
        let (collector, _) = Actor::spawn(None, Collector, tx).await.unwrap();
        updates.subscribe(collector, Some);
        let (w, _) = Actor::spawn(
            None,
            ConfigWatcher,
            ConfigWatcherArgs {
                path: path.clone(),
                initial,
                updates,
                watch,
                audit: None,
            },
        )
        .await
        .unwrap();
        (dir, path, w, rx)
    }

    async fn patch(
        w: &ActorRef<ConfigMsg>,
        raw: &str,
        base: Option<String>,
    ) -> Result<ConfigWriteResult, ConfigError> {
        w.call(
            |reply| ConfigMsg::Patch {
                raw: raw.into(),
                base_hash: base,
                reply,
            },
            None,
        )
        .await
        .unwrap()
        .unwrap()
    }

    async fn get(w: &ActorRef<ConfigMsg>) -> ConfigSnapshot {
        w.call(|reply| ConfigMsg::Get { reply }, None)
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn patch_needs_the_current_base_hash_and_valid_content() {
        let (_d, path, w, mut rx) = start(
            Some("{ gateway: { port: 18789, auth: { token: 'sek' } } }"),
            false,
        )
        .await;
        let snap = get(&w).await;
        assert!(
            snap.exists
                && snap
                    .raw
                    .as_deref()
                    .is_some_and(|r| !r.contains("sek") && r.contains(crate::config::REDACTED))
        );
        assert_eq!(
            snap.config["gateway"]["auth"]["token"],
            crate::config::REDACTED
        );

        let err = patch(&w, "{logging: {level: 'debug'}}", None)
            .await
            .unwrap_err();
        assert!(matches!(err, ConfigError::MissingBaseHash), "{err}");
        let err = patch(&w, "{logging: {level: 'debug'}}", Some("0".repeat(64)))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("changed since it was read"),
            "{err}"
        );

        let before = std::fs::read_to_string(&path).unwrap();
        let err = patch(&w, "{gateway: {port: 'x'}}", Some(snap.hash.clone()))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("gateway.port: expected an integer"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            before,
            "a refused patch leaves the file alone"
        );

        let ok = patch(
            &w,
            "{logging: {level: 'debug'}, gateway: {port: 18790}}",
            Some(snap.hash.clone()),
        )
        .await
        .unwrap();
        assert_eq!(ok.diff.live, ["logging.level"]);
        assert_eq!(ok.diff.restart_required, ["gateway.port"]);
        let update = rx.recv().await.unwrap();
        assert_eq!(update.config.logging.level, "debug");
        assert_eq!(update.hash, ok.hash);
        let on_disk = load(&path).unwrap();
        assert_eq!(
            on_disk.config.gateway.auth.token.as_deref(),
            Some("sek"),
            "the secret survives the patch"
        );
        // The old hash is stale now.
        let err = patch(&w, "{logging: {level: 'warn'}}", Some(snap.hash))
            .await
            .unwrap_err();
        assert!(matches!(err, ConfigError::StaleBaseHash { .. }));
    }

    #[tokio::test]
    async fn without_a_file_raw_is_null_and_a_patch_needs_no_base_hash() {
        let (_d, path, w, _rx) = start(None, false).await;
        let snap = get(&w).await;
        assert!(!snap.exists);
        assert_eq!(serde_json::to_value(&snap).unwrap()["raw"], Value::Null);
        let res = patch(&w, "{ logging: { level: 'debug' } }", None)
            .await
            .unwrap();
        assert!(res.ok);
        assert!(std::fs::read_to_string(&path).unwrap().contains("debug"));
        let snap = get(&w).await;
        assert!(snap.exists && snap.raw.as_deref().is_some_and(|r| r.contains("debug")));
    }

    #[tokio::test]
    async fn writing_back_redacted_secrets_keeps_them() {
        let (_d, path, w, _rx) =
            start(Some("{ gateway: { auth: { token: 'sek' } } }"), false).await;
        let snap = get(&w).await;
        let res = w
            .call(
                |reply| ConfigMsg::Set {
                    raw: snap.raw.clone().unwrap().replace("sek", "x"),
                    base_hash: Some(snap.hash.clone()),
                    reply,
                },
                None,
            )
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(res.ok);
        assert_eq!(
            load(&path).unwrap().config.gateway.auth.token.as_deref(),
            Some("sek")
        );
    }

    #[tokio::test]
    async fn an_edit_on_disk_is_picked_up_and_a_bad_one_is_refused() {
        let (_d, path, _w, mut rx) = start(Some("{ logging: { level: 'info' } }"), true).await;
        std::fs::write(&path, "{ logging: { level: 'debug' } }").unwrap();
        let update = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("reload within 10 s")
            .unwrap();
        assert_eq!(update.diff.changed, ["logging.level"]);
        // An invalid edit is logged and ignored; a later valid one still applies.
        std::fs::write(&path, "{ logging: { level: 'loud' } }").unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(800), rx.recv())
                .await
                .is_err()
        );
        std::fs::write(&path, "{ logging: { level: 'warn' } }").unwrap();
        let update = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("reload within 10 s")
            .unwrap();
        assert_eq!(update.config.logging.level, "warn");
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_of_events_are_debounced() {
        let (_d, path, w, mut rx) = start(Some("{ logging: { level: 'info' } }"), false).await;
        std::fs::write(&path, "{ logging: { level: 'debug' } }").unwrap();
        for _ in 0..3 {
            w.cast(ConfigMsg::Internal(Internal::FsEvent)).unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Last event at t=200 ms: nothing before t=450 ms, the reload right after.
        tokio::time::sleep(Duration::from_millis(149)).await;
        assert!(
            rx.try_recv().is_err(),
            "no reload before the quiet period ends"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
        let update = tokio::time::timeout(Duration::from_millis(10), rx.recv())
            .await
            .expect("reload at the boundary")
            .unwrap();
        assert_eq!(update.config.logging.level, "debug");
        assert!(rx.try_recv().is_err(), "one reload for the whole burst");
    }
}
