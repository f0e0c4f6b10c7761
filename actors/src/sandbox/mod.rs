//! Sandboxes: a SandboxActor per sandbox scope key owns one hardened container, under the
//! Sandboxes actor that finds or starts them, restarts a crashed one (which adopts its
//! container) and removes containers nobody owns.
//!
//! ```text
//! Sandboxes (one per gateway)   Docker connection with backoff, adoption at start-up,
//! │  (sandboxes.rs)             pruning, recreate, list
//! └── SandboxActor per scope    its container: adopt or create, its exec server, leases
//!                               for exec, the circuit breaker, the store record
//! ```
//!
//! Which sessions are sandboxed and where their container's `/workspace` comes from is
//! decided by pure functions here (`sandboxed`, `scope_key`, `plan`); `exec` in a
//! sandboxed session goes through a [`SandboxHandle`] (`handle.rs`, the tools'
//! `SandboxRunner`) to the container's exec server (`pincer_sandbox::execd`, bound
//! read-only into every container from `<state dir>/sandbox/`): a command costs a few
//! milliseconds instead of an Engine exec's 55-75 ms, and background commands work.
//! A lease hands out the server (a cheap handle), so a command keeps running when its
//! SandboxActor crashes; the restarted actor starts a new server, and the old one exits
//! when its last command is done.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::future::BoxFuture;
use pincer_sandbox::SandboxError;
use pincer_sandbox::config::{Access, Mode, SandboxConfig, Scope};
use pincer_sandbox::docker::{
    ContainerInfo, ContainerSpec, Docker, ExecRequest, ExecResult, LABEL_AGENT, LABEL_CONFIG_HASH,
    LABEL_CREATED_AT, LABEL_SANDBOX, LABEL_SCOPE_KEY, LABEL_SESSION, Mount,
};
use pincer_sandbox::execd::{self, BackgroundProcess, ExecServer};
use pincer_supervision::fault::{FaultHandle, Injectable};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tracing::{info, warn};

mod handle;
pub mod methods;
mod sandboxes;

pub use handle::*;
pub use sandboxes::*;

use crate::agent::tools::SandboxRunner;
use crate::gateway::now_ms;
use crate::session::keys;
use crate::store::Store;

/// Consecutive failures of a sandbox that open its circuit breaker.
pub const BREAKER_FAILURES: u32 = 3;
/// How long an open breaker suspends the sandbox.
pub const BREAKER_COOLDOWN: Duration = Duration::from_secs(60);
/// How often idle and old sandboxes are pruned.
pub const PRUNE_EVERY: Duration = Duration::from_secs(5 * 60);
/// A sandbox that crashes more than this within a minute has its container removed.
const MAX_RESTARTS: u32 = 3;

/// Whether a session of `agent_id` with `session_key` runs sandboxed.
pub fn sandboxed(cfg: &SandboxConfig, agent_id: &str, main_key: &str, session_key: &str) -> bool {
    match cfg.mode {
        Mode::Off => false,
        Mode::All => true,
        // non-main: the owner's private main session stays on the host.
        Mode::NonMain => !keys::is_main(session_key, agent_id, main_key),
    }
}

/// Which sandbox a session uses: one per session, per agent, or one shared by all.
pub fn scope_key(cfg: &SandboxConfig, agent_id: &str, session_key: &str) -> String {
    match cfg.scope {
        Scope::Session => format!("session:{session_key}"),
        Scope::Agent => format!("agent:{agent_id}"),
        Scope::Shared => "shared".into(),
    }
}

/// Which gateway a container belongs to: a hash of its state directory, so two gateways
/// (or parallel tests) on one Docker Engine never touch each other's containers.
pub const LABEL_INSTANCE: &str = "pincer.instance";

/// The instance id of a state directory.
pub fn instance_of(state_dir: &Path) -> String {
    hex::encode(&Sha256::digest(state_dir.as_os_str().as_encoded_bytes())[..6])
}

/// A name Docker accepts (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`), readable and unique per gateway
/// instance and scope.
pub fn container_name(instance: &str, scope: &str) -> String {
    let readable: String = scope
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let readable: String = readable.chars().take(40).collect();
    let hash = hex::encode(&Sha256::digest(format!("{instance}/{scope}").as_bytes())[..5]);
    format!("pincer-sbx-{}-{hash}", readable.trim_matches('-'))
}

/// Everything a SandboxActor needs to make its container.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxSpec {
    /// The gateway instance (see `instance_of`).
    pub instance: String,
    pub scope: String,
    pub agent_id: String,
    pub session_key: String,
    pub config: SandboxConfig,
    /// The host directory behind the container's `/workspace` (file tools work there).
    pub workspace_host: PathBuf,
    pub mounts: Vec<Mount>,
}

impl SandboxSpec {
    /// The configuration hash with the mounts: a change recreates the container.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.config.config_hash());
        for m in &self.mounts {
            h.update(format!(
                "{}|{}|{}\n",
                m.host.display(),
                m.container,
                m.read_only
            ));
        }
        hex::encode(&h.finalize()[..8])
    }
}

/// Where a session's sandbox lives (pure: no Docker, no files touched).
/// - workspaceAccess none: a private scratch directory at `/workspace`;
/// - ro: the scratch directory at `/workspace`, the agent's workspace read-only at `/agent`;
/// - rw: the agent's workspace at `/workspace`.
pub fn plan(
    cfg: &SandboxConfig,
    state_dir: &Path,
    agent_id: &str,
    agent_workspace: &Path,
    session_key: &str,
) -> SandboxSpec {
    let scope = scope_key(cfg, agent_id, session_key);
    let instance = instance_of(state_dir);
    let scratch = state_dir
        .join("sandboxes")
        .join(container_name(&instance, &scope))
        .join("workspace");
    let (workspace_host, mut mounts) = match cfg.workspace_access {
        Access::None => (scratch.clone(), vec![]),
        Access::Ro => (
            scratch.clone(),
            vec![Mount {
                host: agent_workspace.to_owned(),
                container: "/agent".into(),
                read_only: true,
            }],
        ),
        Access::Rw => (agent_workspace.to_owned(), vec![]),
    };
    mounts.insert(
        0,
        Mount {
            host: workspace_host.clone(),
            container: "/workspace".into(),
            read_only: false,
        },
    );
    // The exec server (ours, read-only; its path names its version).
    mounts.push(execd::mount(&execd_dir(state_dir)));
    SandboxSpec {
        instance,
        scope,
        agent_id: agent_id.to_owned(),
        session_key: session_key.to_owned(),
        config: cfg.clone(),
        workspace_host,
        mounts,
    }
}

/// Where the exec server's binary is kept on the host (installed by the SandboxActor).
pub fn execd_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("sandbox")
}

/// A container as the store remembers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxRecord {
    pub container_id: String,
    pub name: String,
    pub agent_id: String,
    pub session_key: String,
    pub config_hash: String,
    /// The agent's sandbox policy hash (without mounts): start-up keeps containers
    /// whose policy is still configured.
    #[serde(default)]
    pub policy_hash: String,
    pub image: String,
    pub created_at: u64,
    pub last_used: u64,
}

/// One row of `sandbox.list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxInfo {
    pub scope: String,
    pub name: String,
    pub container_id: String,
    pub agent_id: String,
    pub session_key: String,
    pub image: String,
    pub running: bool,
    /// Whether a SandboxActor owns it now.
    pub live: bool,
    pub created_at: u64,
    pub last_used: u64,
    pub config_hash: String,
    /// Why its breaker is open, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended: Option<String>,
}

// ---------------------------------------------------------------------------------------
// SandboxActor

pub enum SandboxMsg {
    /// The container's exec server to run in, unless the breaker is open.
    Lease {
        reply: RpcReplyPort<Result<ExecServer, String>>,
    },
    /// How a leased run went (`Err`: the sandbox failed, not the command).
    Report {
        outcome: Result<(), String>,
    },
    Info {
        reply: RpcReplyPort<SandboxInfo>,
    },
}

pub struct SandboxActor;

pub struct SandboxArgs {
    pub docker: Docker,
    pub spec: SandboxSpec,
    pub store: Store,
}

pub struct SandboxState {
    docker: Docker,
    spec: SandboxSpec,
    store: Store,
    record: SandboxRecord,
    /// The container's exec server (falls back to Engine execs when it cannot start).
    server: ExecServer,
    failures: u32,
    last_error: String,
    open_until: Option<Instant>,
}

impl SandboxState {
    /// Records the container (durably when it is new) and its last use (without an fsync:
    /// this runs on every exec).
    fn touch(&mut self, durable: bool) {
        self.record.last_used = now_ms();
        if let Err(e) = self
            .store
            .set_sandbox(&self.spec.scope, Some(&self.record), durable)
        {
            warn!(scope = %self.spec.scope, error = %e, "could not record the sandbox");
        }
    }
}

/// Finds this scope's container (adopting it when its configuration hash matches and it
/// runs or starts) or makes a new one; removes the scope's stale containers.
async fn ensure_container(
    docker: &Docker,
    spec: &SandboxSpec,
) -> Result<SandboxRecord, SandboxError> {
    let hash = spec.hash();
    // The exec server's binary must be where the spec binds it (also for an adopted
    // container that is restarted).
    for m in spec
        .mounts
        .iter()
        .filter(|m| m.container == execd::EXECD_PATH)
    {
        if let Some(dir) = m.host.parent() {
            execd::install(dir)?;
        }
    }
    let existing = docker
        .list(&[
            (LABEL_SANDBOX, "1"),
            (LABEL_INSTANCE, spec.instance.as_str()),
            (LABEL_SCOPE_KEY, spec.scope.as_str()),
        ])
        .await?;
    let mut adopted = None;
    for c in existing {
        let same = c.labels.get(LABEL_CONFIG_HASH) == Some(&hash);
        if same && adopted.is_none() {
            if !c.running
                && let Err(e) = docker.start(&c.id).await
            {
                warn!(container = %c.name, error = %e, "cannot restart a stopped sandbox; replacing it");
                docker.remove(&c.id).await?;
                continue;
            }
            adopted = Some(c);
        } else {
            info!(container = %c.name, "removing a sandbox whose configuration changed");
            docker.remove(&c.id).await?;
        }
    }
    let created_label = |c: &ContainerInfo| {
        c.labels
            .get(LABEL_CREATED_AT)
            .and_then(|v| v.parse().ok())
            .unwrap_or(c.created as u64 * 1000)
    };
    if let Some(c) = adopted {
        info!(container = %c.name, scope = %spec.scope, "sandbox adopted");
        return Ok(SandboxRecord {
            container_id: c.id.clone(),
            name: c.name.clone(),
            agent_id: spec.agent_id.clone(),
            session_key: spec.session_key.clone(),
            config_hash: hash,
            policy_hash: spec.config.config_hash(),
            image: spec.config.docker.image.clone(),
            created_at: created_label(&c),
            last_used: now_ms(),
        });
    }
    if !docker.image_exists(&spec.config.docker.image).await? {
        return Err(SandboxError::ImageMissing {
            image: spec.config.docker.image.clone(),
        });
    }
    std::fs::create_dir_all(&spec.workspace_host)?;
    // The sandbox user (uid 1000 in the image) works in a scratch workspace it owns.
    if spec.config.workspace_access != Access::Rw {
        chown_sandbox_user(&spec.workspace_host);
    }
    let now = now_ms();
    let name = container_name(&spec.instance, &spec.scope);
    let labels = BTreeMap::from([
        (LABEL_SANDBOX.to_owned(), "1".to_owned()),
        (LABEL_INSTANCE.to_owned(), spec.instance.clone()),
        (LABEL_SCOPE_KEY.to_owned(), spec.scope.clone()),
        (LABEL_SESSION.to_owned(), spec.session_key.clone()),
        (LABEL_AGENT.to_owned(), spec.agent_id.clone()),
        (LABEL_CONFIG_HASH.to_owned(), hash.clone()),
        (LABEL_CREATED_AT.to_owned(), now.to_string()),
    ]);
    let cspec = ContainerSpec {
        name: name.clone(),
        config: spec.config.docker.clone(),
        labels,
        mounts: spec.mounts.clone(),
        workdir: "/workspace".into(),
        hostname: Some("sandbox".into()),
    };
    let id = docker.create(&cspec).await?;
    if let Err(e) = docker.start(&id).await {
        let _ = docker.remove(&id).await;
        return Err(e);
    }
    if let Some(setup) = spec
        .config
        .docker
        .setup_command
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        let req = ExecRequest {
            timeout: Duration::from_secs(300),
            ..ExecRequest::new(["sh", "-c", setup])
        };
        let r = docker.exec(&id, &req, &mut |_, _| {}).await;
        let failed = match &r {
            Ok(r) if r.exit_code == Some(0) => None,
            Ok(r) => Some(format!("exit {:?}: {}{}", r.exit_code, r.stdout, r.stderr)),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = failed {
            let _ = docker.remove(&id).await;
            return Err(SandboxError::Docker(format!(
                "the sandbox setupCommand failed ({}); fix agents.*.sandbox.docker.setupCommand",
                why.trim()
            )));
        }
    }
    info!(container = %name, scope = %spec.scope, image = %spec.config.docker.image, "sandbox created");
    Ok(SandboxRecord {
        container_id: id,
        name,
        agent_id: spec.agent_id.clone(),
        session_key: spec.session_key.clone(),
        config_hash: hash,
        policy_hash: spec.config.config_hash(),
        image: spec.config.docker.image.clone(),
        created_at: now,
        last_used: now,
    })
}

/// The container's exec server, started now so the first command does not wait for it;
/// if it cannot start, commands fall back to Engine execs (logged by the server).
async fn start_server(docker: &Docker, container: &str) -> ExecServer {
    let server = ExecServer::new(docker, container);
    server.connect().await;
    server
}

#[cfg(unix)]
fn chown_sandbox_user(dir: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let uid = pincer_sandbox::image::SANDBOX_UID;
    let gid = pincer_sandbox::image::SANDBOX_GID;
    if let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) {
        // SAFETY: a valid NUL-terminated path. Failing (not root) is fine: the directory
        // then stays the gateway user's, which is uid 1000 on most single-user hosts.
        unsafe {
            libc::chown(c.as_ptr(), uid, gid);
        }
    }
}

#[cfg(not(unix))]
fn chown_sandbox_user(_dir: &Path) {}

impl Actor for SandboxActor {
    type Msg = SandboxMsg;
    type State = SandboxState;
    type Arguments = SandboxArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<SandboxMsg>,
        args: SandboxArgs,
    ) -> Result<SandboxState, ActorProcessingErr> {
        let record = ensure_container(&args.docker, &args.spec).await?;
        let server = start_server(&args.docker, &record.container_id).await;
        let mut state = SandboxState {
            docker: args.docker,
            spec: args.spec,
            store: args.store,
            record,
            server,
            failures: 0,
            last_error: String::new(),
            open_until: None,
        };
        state.touch(true);
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<SandboxMsg>,
        msg: SandboxMsg,
        state: &mut SandboxState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SandboxMsg::Lease { reply } => {
                if let Some(until) = state.open_until {
                    let now = Instant::now();
                    if now < until {
                        let _ = reply.send(Err(format!(
                            "the sandbox is suspended for another {}s after {} consecutive failures (last: {}); the tool is unavailable until then",
                            (until - now).as_secs().max(1),
                            state.failures,
                            state.last_error
                        )));
                        return Ok(());
                    }
                    // Half-open: one try; a failure opens it again.
                    state.open_until = None;
                }
                state.touch(false);
                let _ = reply.send(Ok(state.server.clone()));
            }
            SandboxMsg::Report { outcome } => match outcome {
                Ok(()) => state.failures = 0,
                Err(e) => {
                    // A container removed behind our back is made again, not a failure
                    // to count.
                    if matches!(
                        state.docker.inspect(&state.record.container_id).await,
                        Ok(None)
                    ) {
                        warn!(scope = %state.spec.scope, "the sandbox container is gone; making a new one");
                        state.record = ensure_container(&state.docker, &state.spec).await?;
                        state.server =
                            start_server(&state.docker, &state.record.container_id).await;
                        state.touch(true);
                        return Ok(());
                    }
                    state.failures += 1;
                    state.last_error = e;
                    if state.failures >= BREAKER_FAILURES {
                        warn!(scope = %state.spec.scope, failures = state.failures, error = %state.last_error, "sandbox circuit breaker open");
                        state.open_until = Some(Instant::now() + BREAKER_COOLDOWN);
                    }
                }
            },
            SandboxMsg::Info { reply } => {
                let suspended = state
                    .open_until
                    .filter(|u| *u > Instant::now())
                    .map(|_| state.last_error.clone());
                let _ = reply.send(info_of(
                    &state.spec.scope,
                    &state.record,
                    true,
                    true,
                    suspended,
                ));
            }
        }
        Ok(())
    }
}

fn info_of(
    scope: &str,
    r: &SandboxRecord,
    running: bool,
    live: bool,
    suspended: Option<String>,
) -> SandboxInfo {
    SandboxInfo {
        scope: scope.to_owned(),
        name: r.name.clone(),
        container_id: r.container_id.clone(),
        agent_id: r.agent_id.clone(),
        session_key: r.session_key.clone(),
        image: r.image.clone(),
        running,
        live,
        created_at: r.created_at,
        last_used: r.last_used,
        config_hash: r.config_hash.clone(),
        suspended,
    }
}

/// Starts an unsupervised Sandboxes actor (tests, benches; the gateway supervises its own).
pub async fn spawn(args: SandboxesArgs) -> Result<ActorRef<SandboxesMsg>, String> {
    Actor::spawn(None, SandboxesActor, args)
        .await
        .map(|(r, _)| r)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(mode: Mode, scope: Scope, access: Access) -> SandboxConfig {
        SandboxConfig {
            mode,
            scope,
            workspace_access: access,
            ..Default::default()
        }
    }

    #[test]
    fn modes_decide_which_sessions_are_sandboxed() {
        let main = "agent:main:main";
        let group = "agent:main:telegram:group:-100";
        let off = cfg(Mode::Off, Scope::Session, Access::None);
        let non_main = cfg(Mode::NonMain, Scope::Session, Access::None);
        let all = cfg(Mode::All, Scope::Session, Access::None);
        assert!(!sandboxed(&off, "main", "main", group));
        assert!(
            !sandboxed(&non_main, "main", "main", main),
            "the owner's main session is on the host"
        );
        assert!(sandboxed(&non_main, "main", "main", group));
        assert!(sandboxed(&non_main, "main", "main", "cron:job1"));
        assert!(sandboxed(&all, "main", "main", main));
    }

    #[test]
    fn scopes_map_sessions_to_containers() {
        let a = "agent:main:telegram:group:1";
        let b = "agent:main:telegram:group:2";
        let per_session = cfg(Mode::All, Scope::Session, Access::None);
        let per_agent = cfg(Mode::All, Scope::Agent, Access::None);
        let shared = cfg(Mode::All, Scope::Shared, Access::None);
        assert_ne!(
            scope_key(&per_session, "main", a),
            scope_key(&per_session, "main", b)
        );
        assert_eq!(
            scope_key(&per_agent, "main", a),
            scope_key(&per_agent, "main", b)
        );
        assert_ne!(
            scope_key(&per_agent, "main", a),
            scope_key(&per_agent, "ops", a)
        );
        assert_eq!(scope_key(&shared, "main", a), scope_key(&shared, "ops", b));
        let n = container_name("i1", &scope_key(&per_session, "main", a));
        assert!(
            n.starts_with("pincer-sbx-session-agent-main-telegram-group-1-"),
            "{n}"
        );
        assert!(
            n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{n}"
        );
        assert_ne!(
            container_name("i1", "session:a:b"),
            container_name("i1", "session:a-b"),
            "the hash keeps similar scopes apart"
        );
        assert_ne!(
            container_name("i1", "shared"),
            container_name("i2", "shared"),
            "two gateways on one Engine never share a container"
        );
    }

    #[test]
    fn workspace_access_decides_what_is_mounted() {
        let state = Path::new("/state");
        let ws = Path::new("/home/u/.pincer/workspace");
        let none = plan(
            &cfg(Mode::All, Scope::Agent, Access::None),
            state,
            "main",
            ws,
            "k",
        );
        assert!(none.workspace_host.starts_with("/state/sandboxes/"));
        assert_eq!(none.mounts.len(), 2);
        assert_eq!(none.mounts[0].container, "/workspace");
        // The exec server, read-only, from the state directory.
        let execd = none.mounts.last().unwrap();
        assert_eq!(execd.container, pincer_sandbox::execd::EXECD_PATH);
        assert!(execd.read_only && execd.host.starts_with("/state/sandbox/"));
        let ro = plan(
            &cfg(Mode::All, Scope::Agent, Access::Ro),
            state,
            "main",
            ws,
            "k",
        );
        assert_eq!(ro.mounts[1].host, ws);
        assert_eq!(
            (ro.mounts[1].container.as_str(), ro.mounts[1].read_only),
            ("/agent", true)
        );
        let rw = plan(
            &cfg(Mode::All, Scope::Agent, Access::Rw),
            state,
            "main",
            ws,
            "k",
        );
        assert_eq!(rw.workspace_host, ws);
        assert_eq!(rw.mounts.len(), 2);
        assert_ne!(
            none.hash(),
            rw.hash(),
            "mounts are part of the configuration hash"
        );
    }

    #[test]
    fn pruning_follows_idle_hours_and_max_age() {
        let p = pincer_sandbox::config::PruneConfig {
            idle_hours: 24,
            max_age_days: 7,
        };
        let h = 3_600_000;
        let now = 30 * 24 * h;
        assert_eq!(prune_due(&p, now - h, now - h, now), None);
        assert!(
            prune_due(&p, now - 2 * 24 * h, now - 25 * h, now)
                .unwrap()
                .contains("idle")
        );
        assert!(
            prune_due(&p, now - 8 * 24 * h, now - h, now)
                .unwrap()
                .contains("older")
        );
        let never = pincer_sandbox::config::PruneConfig {
            idle_hours: 0,
            max_age_days: 0,
        };
        assert_eq!(prune_due(&never, 0, 0, now), None);
    }

    #[tokio::test]
    async fn an_unreachable_engine_fails_fast_and_is_retried_with_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.redb")).unwrap();
        let socket = dir.path().join("no-docker.sock").display().to_string();
        let m = spawn(SandboxesArgs {
            store,
            instance: "test".into(),
            engine: Engine::Socket(socket),
            faults: FaultHandle::new(),
            keep: None,
            metrics: crate::gateway::Metrics::new(),
        })
        .await
        .unwrap();
        let spec = plan(
            &cfg(Mode::All, Scope::Session, Access::None),
            dir.path(),
            "main",
            dir.path(),
            "k",
        );
        let ask = || {
            let (m, spec) = (m.clone(), spec.clone());
            async move {
                match m
                    .call(
                        |reply| SandboxesMsg::Acquire {
                            spec: Box::new(spec),
                            reply,
                        },
                        None,
                    )
                    .await
                    .unwrap()
                {
                    ractor::rpc::CallResult::Success(Err(e)) => e,
                    _ => panic!("acquired a sandbox without an engine"),
                }
            }
        };
        let first = ask().await;
        assert!(
            first.contains("not reachable") && first.contains("dockerd"),
            "{first}"
        );
        let started = std::time::Instant::now();
        let second = ask().await;
        assert!(
            second.contains("next attempt in"),
            "fails fast while backing off: {second}"
        );
        assert!(started.elapsed() < Duration::from_millis(500));
        m.stop(None);
    }

    #[test]
    fn agent_config_merges_over_the_defaults() {
        let d = serde_json::json!({"mode": "non-main", "docker": {"memory": "256m"}});
        let a = serde_json::json!({"scope": "agent", "docker": {"pidsLimit": 64}});
        let c = agent_config(&d, Some(&a)).unwrap();
        assert_eq!((c.mode, c.scope), (Mode::NonMain, Scope::Agent));
        assert_eq!(c.docker.memory.as_deref(), Some("256m"));
        assert_eq!(c.docker.pids_limit, Some(64));
        assert_eq!(
            agent_config(&serde_json::Value::Null, None).unwrap().mode,
            Mode::Off
        );
        assert!(agent_config(&serde_json::json!({"mode": "sometimes"}), None).is_err());
    }
}
