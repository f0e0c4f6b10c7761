//! The exec server inside each sandbox container (`execd`), and its client.
//!
//! A Docker Engine exec costs 55-75 ms and about 40 ms of CPU in dockerd, containerd and
//! runc on the 2-core test machine (docs/PERFORMANCE.md, "Sandboxes"). So each container
//! gets one long-lived, attached Engine exec of `execd` (a small static C program,
//! `execd/execd.c`, embedded here and bind-mounted read-only at [`EXECD_PATH`]), and
//! commands go to it over that exec's stdin and stdout: a fork and an exec inside the
//! container, about a millisecond, many at once.
//!
//! Security is unchanged: execd is started like any exec (the container's user, its
//! seccomp filter, no capabilities, no-new-privileges, its cgroup and namespaces) and its
//! commands inherit exactly that; it holds no privilege and gains none.
//!
//! ## Protocol (version [`PROTOCOL_VERSION`])
//!
//! Frames both ways: `u32 len | u8 type | u32 id | payload`, little-endian, `len` counting
//! type, id and payload; `str` is a `u32` length and the bytes. `id` names a command
//! (chosen here, unique among running ones); 0 is execd itself.
//!
//! | dir | type | payload |
//! | --- | --- | --- |
//! | → | `R` run | `u32 timeout_ms` (0 none), `u8 flags` (1: stdin is a pipe, else `/dev/null`), `u64 max_output`, `str token`, `str cwd` (empty: execd's), `u32 argc` + strs, `u32 envc` + strs `K=V` (over execd's environment) |
//! | → | `W` stdin | bytes for the command's stdin |
//! | → | `C` close | close its stdin once written |
//! | → | `K` kill | kill its whole tree; it then ends with `X` (killed) |
//! | ← | `H` hello | `u32 version`, `u32 pid` of execd; once, first |
//! | ← | `S` started | `u32 pid` |
//! | ← | `O` / `E` | stdout / stderr bytes (at most `max_output` in all; the rest counted) |
//! | ← | `X` exited | `u8 how` (0 exit, 1 signal), `i32` code or signal, `u8 flags` (1 timed out, 2 killed), `u64` bytes dropped; last frame, output complete |
//! | ← | `F` failed | message; the command did not start, no `X` follows |
//!
//! Each command runs in its own session with `PINCER_EXEC_ID=<token>` in its environment
//! and `oom_score_adj` 1000; at its deadline or on `K`, execd kills, without forking, every
//! process carrying the token or sharing a session or process group with the command or
//! one that carries it, in rounds until none is left (the same rule as the exec-based kill
//! in [`crate::exec`]). When its stdin closes (the last [`ExecServer`] handle and every
//! command of it dropped, or the gateway died) execd kills its commands and exits.
//!
//! ## The client
//!
//! [`ExecServer`] is a cheap handle (clone it) to one container's execd: [`ExecServer::exec`]
//! has exactly the contract of [`Docker::exec`] (streamed and capped output, a timeout
//! that kills the tree, the exit code, 128 + signal for a killed command), and
//! [`ExecServer::spawn`] starts a [`BackgroundProcess`] (events as they come, stdin,
//! kill; killed when dropped). If execd dies (its output ends), the commands in flight fail
//! with an error saying so, their processes are killed by an exec-based kill, and the next
//! call starts a new execd. If execd cannot start at all (no binary in the container, the
//! exec refused), commands fall back to [`Docker::exec`], logged once; execd is tried
//! again after [`RETRY_AFTER`]. Commands for another user (`ExecRequest::user`) always go
//! through [`Docker::exec`]: execd runs as the container's user.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::SandboxError;
use crate::config::Mount;
use crate::docker::Docker;
use crate::exec::{Capture, ExecRequest, ExecResult, OutputKind, new_token};

mod frames;

use frames::{Decoder, Frame, frame, run_frame};
pub use frames::{Event, ExitStatus};

/// Where execd is inside every container (a read-only bind mount).
pub const EXECD_PATH: &str = "/.pincer/execd";
/// The protocol execd speaks (its hello says which).
pub const PROTOCOL_VERSION: u32 = 1;
/// The static execd executable, built from `execd/execd.c` by `build.rs`.
pub static EXECD_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pincer-execd"));

/// How long execd may take to say hello.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// After execd could not start, commands use [`Docker::exec`] this long before it is tried
/// again.
pub const RETRY_AFTER: Duration = Duration::from_secs(60);
/// A command not reported started within this makes the client look at the container
/// (paused or stopped: the command fails instead of waiting for its deadline).
const START_CHECK: Duration = Duration::from_secs(2);
/// How long past a command's deadline execd may take to report it killed.
const KILL_GRACE: Duration = Duration::from_secs(10);
/// Stdin is sent in frames of at most this many bytes.
const STDIN_CHUNK: usize = 1 << 20;

// ---------------------------------------------------------------------------------------
// The binary on the host

/// Where [`install`] puts the binary under `dir` (e.g. `<state dir>/sandbox`): the name
/// carries a hash of its content, so a new build is a new path, hence a new configuration
/// hash: containers with an older execd are recreated rather than talked to in a protocol
/// they may not speak.
pub fn host_path(dir: &Path) -> PathBuf {
    dir.join(format!("pincer-execd-{}", &binary_hash()[..12]))
}

/// The read-only bind of the binary at [`EXECD_PATH`] for a container spec.
pub fn mount(dir: &Path) -> Mount {
    Mount {
        host: host_path(dir),
        container: EXECD_PATH.into(),
        read_only: true,
    }
}

/// Writes the binary to [`host_path`]`(dir)` (mode 0755) unless it is there with this
/// content, atomically (a temporary file renamed over), and removes other versions beside
/// it (a running container keeps the file it mounted). Returns the path.
pub fn install(dir: &Path) -> Result<PathBuf, SandboxError> {
    let path = host_path(dir);
    std::fs::create_dir_all(dir)?;
    if std::fs::read(&path).ok().as_deref() != Some(EXECD_BINARY) {
        let tmp = dir.join(format!(".pincer-execd.{}.tmp", std::process::id()));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(EXECD_BINARY)?;
        f.sync_all()?;
        drop(f);
        set_mode(&tmp, 0o755)?;
        std::fs::rename(&tmp, &path)?;
    } else {
        set_mode(&path, 0o755)?;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("pincer-execd-") && e.path() != path {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(path)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

fn binary_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hex::encode(Sha256::digest(EXECD_BINARY)))
}

// ---------------------------------------------------------------------------------------
// One running execd

struct Route {
    events: mpsc::UnboundedSender<Event>,
    token: String,
}

type Routes = Arc<Mutex<HashMap<u32, Route>>>;

fn lock(routes: &Routes) -> MutexGuard<'_, HashMap<u32, Route>> {
    routes.lock().unwrap_or_else(|p| p.into_inner())
}

/// The connection to one execd. Its stdin closes (and execd exits) when the last clone is
/// dropped.
#[derive(Clone)]
struct Link {
    frames: mpsc::UnboundedSender<Vec<u8>>,
    routes: Routes,
    alive: Arc<AtomicBool>,
    pid: u32,
}

impl Link {
    async fn start(docker: &Docker, container: &str) -> Result<Link, SandboxError> {
        let opts = CreateExecOptions::<String> {
            cmd: Some(vec![EXECD_PATH.into()]),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            ..Default::default()
        };
        let exec = docker
            .inner
            .create_exec(container, opts)
            .await
            .map_err(|e| docker.err(e))?;
        let started = docker
            .inner
            .start_exec(&exec.id, Some(StartExecOptions::default()))
            .await
            .map_err(|e| docker.err(e))?;
        let StartExecResults::Attached { mut output, input } = started else {
            return Err(SandboxError::Docker("execd started detached".into()));
        };
        let mut decoder = Decoder::default();
        let mut stderr = Vec::new();
        let deadline = Instant::now() + START_TIMEOUT;
        let not_started = |why: String| {
            SandboxError::Docker(format!(
                "the exec server ({EXECD_PATH}) did not start: {why}"
            ))
        };
        let pid = loop {
            let chunk = match tokio::time::timeout_at(deadline, output.next()).await {
                Err(_) => return Err(not_started("no answer within 20 s".into())),
                Ok(None) => {
                    let said = [decoder.buf.as_slice(), &stderr].concat();
                    let said = String::from_utf8_lossy(&said).trim().to_string();
                    let info = docker.inner.inspect_exec(&exec.id).await.ok();
                    let code = info.and_then(|i| i.exit_code);
                    return Err(not_started(format!("exit {code:?}: {said}")));
                }
                Ok(Some(Err(e))) => return Err(docker.err(e)),
                Ok(Some(Ok(c))) => c,
            };
            match chunk {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    decoder.push(&message)
                }
                LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
                LogOutput::StdIn { .. } => {}
            }
            match decoder.next() {
                Ok(None) => {}
                Ok(Some(Frame::Hello { version, pid })) if version == PROTOCOL_VERSION => {
                    break pid;
                }
                Ok(Some(Frame::Hello { version, .. })) => {
                    return Err(not_started(format!(
                        "it speaks protocol {version}, this gateway {PROTOCOL_VERSION}"
                    )));
                }
                Ok(Some(other)) => return Err(not_started(format!("it began with {other:?}"))),
                Err(e) => {
                    let said = String::from_utf8_lossy(&decoder.buf).trim().to_string();
                    return Err(not_started(format!("{e}: {said}")));
                }
            }
        };
        let (frames, outbound) = mpsc::unbounded_channel();
        let link = Link {
            frames,
            routes: Arc::default(),
            alive: Arc::new(AtomicBool::new(true)),
            pid,
        };
        tokio::spawn(write_loop(input, outbound));
        tokio::spawn(read_loop(
            output,
            decoder,
            link.routes.clone(),
            link.alive.clone(),
            docker.clone(),
            container.to_owned(),
            pid,
        ));
        tracing::debug!(container = %container, pid, "exec server started");
        Ok(link)
    }

    fn alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Registers command `id` and sends its run frame; its events come on the receiver.
    fn run(
        &self,
        id: u32,
        req: &ExecRequest,
        stdin: bool,
        max_output: u64,
    ) -> Result<mpsc::UnboundedReceiver<Event>, SandboxError> {
        let token = new_token();
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.routes).insert(
            id,
            Route {
                events: tx,
                token: token.clone(),
            },
        );
        // The reader may have died between `alive` and the insert: then nobody would
        // ever answer.
        if !self.alive()
            || self
                .send(run_frame(id, req, &token, stdin, max_output))
                .is_err()
        {
            lock(&self.routes).remove(&id);
            return Err(lost("before the command was sent"));
        }
        Ok(rx)
    }

    fn send(&self, frame: Vec<u8>) -> Result<(), SandboxError> {
        self.frames
            .send(frame)
            .map_err(|_| lost("(its input closed)"))
    }

    /// Kills command `id` (if it still runs) and stops listening to it.
    fn kill(&self, id: u32) {
        let _ = self.send(frame(b'K', id, &[]));
    }
}

fn lost(when: &str) -> SandboxError {
    SandboxError::Docker(format!(
        "the sandbox's exec server (execd) stopped {when}; the next command starts a new one"
    ))
}

async fn write_loop(
    mut input: std::pin::Pin<Box<dyn AsyncWrite + Send>>,
    mut frames: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    while let Some(first) = frames.recv().await {
        let mut batch = first;
        while batch.len() < (1 << 20)
            && let Ok(more) = frames.try_recv()
        {
            batch.extend_from_slice(&more);
        }
        if input.write_all(&batch).await.is_err() || input.flush().await.is_err() {
            return;
        }
    }
    // Every handle is gone: execd reads EOF, kills what still runs and exits.
    let _ = input.shutdown().await;
}

async fn read_loop(
    mut output: std::pin::Pin<
        Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
    >,
    mut decoder: Decoder,
    routes: Routes,
    alive: Arc<AtomicBool>,
    docker: Docker,
    container: String,
    pid: u32,
) {
    let mut stderr_tail = String::new();
    let why = 'read: loop {
        match output.next().await {
            Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => {
                decoder.push(&message);
                loop {
                    match decoder.next() {
                        Ok(Some(Frame::Cmd(id, event))) => dispatch(&routes, id, event),
                        Ok(Some(Frame::Hello { .. })) => {}
                        Ok(None) => break,
                        Err(e) => break 'read format!("protocol error: {e}"),
                    }
                }
            }
            Some(Ok(LogOutput::StdErr { message })) => {
                let text = String::from_utf8_lossy(&message);
                tracing::warn!(%container, pid, said = %text.trim(), "exec server");
                stderr_tail.push_str(&text);
                if stderr_tail.len() > 2000 {
                    stderr_tail.drain(..stderr_tail.len() - 1000);
                }
            }
            Some(Ok(LogOutput::StdIn { .. })) => {}
            Some(Err(e)) => break format!("the connection broke: {e}"),
            None => break "it exited".to_string(),
        }
    };
    alive.store(false, Ordering::Release);
    let orphans: Vec<(u32, Route)> = lock(&routes).drain().collect();
    let last = stderr_tail.trim();
    let detail = match last.is_empty() {
        true => why.clone(),
        false => format!("{why}; it said: {last}"),
    };
    if orphans.is_empty() {
        tracing::debug!(%container, pid, %detail, "exec server ended");
        return;
    }
    tracing::warn!(%container, pid, %detail, running = orphans.len(), "exec server died with commands running");
    // What it ran may still run, with nobody to enforce the deadline: kill it the way
    // `Docker::exec` does, before saying so.
    for (_, r) in orphans {
        let killed = match docker.kill_marked(&container, &r.token).await {
            Ok(()) => "its processes were killed".to_string(),
            Err(e) => format!("its processes could not be killed: {e}"),
        };
        let message = format!(
            "the sandbox's exec server (execd, pid {pid}) stopped while the command ran \
             ({detail}); {killed}; the next command starts a new exec server"
        );
        let _ = r.events.send(Event::Failed(message));
    }
}

fn dispatch(routes: &Routes, id: u32, event: Event) {
    let mut routes = lock(routes);
    let last = matches!(event, Event::Exited(_) | Event::Failed(_));
    if let Some(r) = routes.get(&id) {
        let _ = r.events.send(event);
    }
    if last {
        routes.remove(&id);
    }
}

// ---------------------------------------------------------------------------------------
// The handle

/// One container's exec server; see the module docs. Cheap to clone.
#[derive(Clone)]
pub struct ExecServer {
    shared: Arc<Shared>,
}

struct Shared {
    docker: Docker,
    container: String,
    next_id: AtomicU32,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    link: Option<Link>,
    /// After a failed start: use `Docker::exec` until then, and why.
    fallback: Option<(Instant, String)>,
    fallback_logged: bool,
}

impl ExecServer {
    /// A handle that starts execd on first use (and falls back to [`Docker::exec`] when
    /// it cannot).
    pub fn new(docker: &Docker, container: &str) -> ExecServer {
        ExecServer {
            shared: Arc::new(Shared {
                docker: docker.clone(),
                container: container.to_owned(),
                next_id: AtomicU32::new(1),
                state: tokio::sync::Mutex::new(State::default()),
            }),
        }
    }

    /// Starts execd in the running container now; `Err` says why it cannot.
    pub async fn start(docker: &Docker, container: &str) -> Result<ExecServer, SandboxError> {
        let s = ExecServer::new(docker, container);
        let link = Link::start(docker, container).await?;
        s.shared.state.lock().await.link = Some(link);
        Ok(s)
    }

    /// Starts execd if it is not running (and not in its fallback pause); returns whether
    /// it runs.
    pub async fn connect(&self) -> bool {
        self.link().await.is_ok()
    }

    /// The container this serves.
    pub fn container(&self) -> &str {
        &self.shared.container
    }

    /// The Engine connection.
    pub fn docker(&self) -> &Docker {
        &self.shared.docker
    }

    /// execd's pid inside the container, when it runs.
    pub async fn pid(&self) -> Option<u32> {
        let st = self.shared.state.lock().await;
        st.link.as_ref().filter(|l| l.alive()).map(|l| l.pid)
    }

    /// The running execd, starting it when needed; `Err` (why) while commands fall back.
    async fn link(&self) -> Result<Link, String> {
        let mut st = self.shared.state.lock().await;
        if let Some(l) = &st.link {
            if l.alive() {
                return Ok(l.clone());
            }
            st.link = None;
        }
        if let Some((until, why)) = &st.fallback
            && Instant::now() < *until
        {
            return Err(why.clone());
        }
        let (docker, container) = (&self.shared.docker, &self.shared.container);
        match Link::start(docker, container).await {
            Ok(l) => {
                if st.fallback.take().is_some() {
                    tracing::info!(%container, "the exec server runs again");
                }
                st.link = Some(l.clone());
                Ok(l)
            }
            Err(e) => {
                let why = e.to_string();
                if !st.fallback_logged {
                    tracing::warn!(%container, error = %why, "the exec server cannot start; commands run as Engine execs (slower)");
                    st.fallback_logged = true;
                }
                st.fallback = Some((Instant::now() + RETRY_AFTER, why.clone()));
                Err(why)
            }
        }
    }

    /// `Err` when the container cannot run anything now (paused, stopped, gone); execd
    /// would sit on the command until then.
    async fn check_container(&self) -> Result<(), SandboxError> {
        let (docker, id) = (&self.shared.docker, self.shared.container.as_str());
        let state = docker
            .inner
            .inspect_container(id, None)
            .await
            .map_err(|e| docker.err(e))?
            .state
            .unwrap_or_default();
        match (state.running, state.paused) {
            (_, Some(true)) => Err(SandboxError::Docker(format!(
                "container {id} is paused; unpause it to run commands"
            ))),
            (Some(true), _) => Ok(()),
            _ => Err(SandboxError::Docker(format!(
                "container {id} is not running"
            ))),
        }
    }

    fn next_id(&self) -> u32 {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs a command with exactly the contract of [`Docker::exec`], through execd when it
    /// runs (else through [`Docker::exec`]).
    pub async fn exec(
        &self,
        req: &ExecRequest,
        on_output: &mut (dyn FnMut(OutputKind, &[u8]) + Send),
    ) -> Result<ExecResult, SandboxError> {
        let (docker, container) = (&self.shared.docker, self.shared.container.as_str());
        if req.cmd.is_empty() {
            return Err(SandboxError::Refused("exec: empty command".into()));
        }
        if req.user.is_some() {
            return docker.exec(container, req, on_output).await;
        }
        let started = Instant::now();
        let link = match self.link().await {
            Ok(l) => l,
            Err(_) => return docker.exec(container, req, on_output).await,
        };
        let id = self.next_id();
        let mut events = link.run(id, req, false, req.max_output as u64)?;
        let mut guard = KillOnDrop {
            link: link.clone(),
            id,
            armed: true,
        };
        let mut capture = Capture {
            max: req.max_output,
            ..Default::default()
        };
        let mut deadline = started + req.timeout + KILL_GRACE;
        let mut check_at = Some(Instant::now() + START_CHECK);
        let mut asked_to_kill = false;
        let status = loop {
            let until = check_at.map_or(deadline, |c| c.min(deadline));
            match tokio::time::timeout_at(until, events.recv()).await {
                Err(_) if check_at.is_some_and(|c| Instant::now() >= c) => {
                    self.check_container().await?;
                    check_at = Some(Instant::now() + START_CHECK);
                }
                Ok(Some(Event::Started { .. })) => check_at = None,
                Ok(Some(Event::Output(kind, bytes))) => capture.push(kind, &bytes, on_output),
                Ok(Some(Event::Exited(status))) => break status,
                Ok(Some(Event::Failed(why))) => {
                    guard.armed = false;
                    return Err(SandboxError::Docker(format!(
                        "the sandbox's exec server could not run the command: {why}"
                    )));
                }
                Ok(None) => return Err(lost("while the command ran")),
                Err(_) if !asked_to_kill => {
                    // execd should have killed it at its deadline: ask once more.
                    link.kill(id);
                    asked_to_kill = true;
                    deadline = Instant::now() + KILL_GRACE;
                }
                Err(_) => {
                    return Err(SandboxError::Docker(format!(
                        "the sandbox's exec server did not report the command ended within {}s of its deadline",
                        (2 * KILL_GRACE).as_secs()
                    )));
                }
            }
        };
        guard.armed = false;
        let timed_out = status.timed_out || status.killed;
        Ok(ExecResult {
            exit_code: if timed_out { None } else { status.shell_code() },
            stdout: String::from_utf8_lossy(&capture.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&capture.stderr).into_owned(),
            timed_out,
            truncated: capture.truncated || status.dropped > 0,
            duration: started.elapsed(),
        })
    }

    /// Starts a command in the background (its stdin a pipe, its output unlimited: the
    /// caller keeps what it wants) and returns once it runs. Needs execd: there is no
    /// fallback for background runs.
    pub async fn spawn(&self, req: &ExecRequest) -> Result<BackgroundProcess, SandboxError> {
        if req.cmd.is_empty() {
            return Err(SandboxError::Refused("exec: empty command".into()));
        }
        if req.user.is_some() {
            return Err(SandboxError::Refused(
                "background commands run as the container's user only".into(),
            ));
        }
        let link = self.link().await.map_err(|why| {
            SandboxError::Docker(format!(
                "background commands need the sandbox's exec server, which is not running ({why})"
            ))
        })?;
        let id = self.next_id();
        let mut events = link.run(id, req, true, u64::MAX)?;
        let guard = KillOnDrop {
            link: link.clone(),
            id,
            armed: true,
        };
        let pid = loop {
            match tokio::time::timeout(START_CHECK, events.recv()).await {
                Err(_) => self.check_container().await?,
                Ok(event) => break event,
            }
        };
        let pid = match pid {
            Some(Event::Started { pid }) => pid,
            Some(Event::Failed(why)) => {
                return Err(SandboxError::Docker(format!(
                    "the sandbox's exec server could not start the command: {why}"
                )));
            }
            Some(other) => {
                return Err(SandboxError::Docker(format!(
                    "the sandbox's exec server answered {other:?} before the command started"
                )));
            }
            None => return Err(lost("before the command started")),
        };
        Ok(BackgroundProcess {
            pid,
            events,
            control: ProcessControl { link, id },
            guard,
            ended: false,
        })
    }
}

/// Kills a command whose caller went away before it ended.
struct KillOnDrop {
    link: Link,
    id: u32,
    armed: bool,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.link.kill(self.id);
            lock(&self.link.routes).remove(&self.id);
        }
    }
}

/// A command started by [`ExecServer::spawn`]. Dropping it before it ended kills its tree.
pub struct BackgroundProcess {
    pid: u32,
    events: mpsc::UnboundedReceiver<Event>,
    control: ProcessControl,
    guard: KillOnDrop,
    ended: bool,
}

impl BackgroundProcess {
    /// Its pid inside the container.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A handle to write to it and kill it from elsewhere.
    pub fn control(&self) -> ProcessControl {
        self.control.clone()
    }

    /// The next output, then its end (`Exited`, or `Failed` if execd died); `None` after
    /// that.
    pub async fn next(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        let event = self
            .events
            .recv()
            .await
            .unwrap_or_else(|| Event::Failed(lost("while the command ran").to_string()));
        if matches!(event, Event::Exited(_) | Event::Failed(_)) {
            self.ended = true;
            self.guard.armed = false;
        }
        Some(event)
    }
}

/// Writes to and kills a [`BackgroundProcess`]. Cheap to clone; harmless once it ended.
#[derive(Clone)]
pub struct ProcessControl {
    link: Link,
    id: u32,
}

impl ProcessControl {
    /// Queues bytes for its stdin.
    pub fn write(&self, data: &[u8]) -> Result<(), SandboxError> {
        for chunk in data.chunks(STDIN_CHUNK) {
            self.link.send(frame(b'W', self.id, chunk))?;
        }
        Ok(())
    }

    /// Closes its stdin once what was written has been read.
    pub fn close_stdin(&self) -> Result<(), SandboxError> {
        self.link.send(frame(b'C', self.id, &[]))
    }

    /// Kills its whole tree; it then ends with `killed` set.
    pub fn kill(&self) {
        self.link.kill(self.id);
    }
}

impl std::fmt::Debug for ExecServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecServer")
            .field("container", &self.shared.container)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_installs_once_and_replaces_older_versions() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("pincer-execd-000000000000");
        std::fs::write(&old, b"old").unwrap();
        let path = install(dir.path()).unwrap();
        assert_eq!(path, host_path(dir.path()));
        assert_eq!(std::fs::read(&path).unwrap(), EXECD_BINARY);
        assert!(!old.exists(), "older versions are removed");
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        install(dir.path()).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before,
            "not rewritten when unchanged"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o755);
        }
        assert_eq!(mount(dir.path()).container, EXECD_PATH);
        assert!(EXECD_BINARY.starts_with(b"\x7fELF"));
    }
}
