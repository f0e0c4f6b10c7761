//! Child processes of `exec`: one [`Run`] per command, and the session's [`ProcessTable`]
//! of background runs that the `process` tool lists, polls and kills.
//!
//! A run is `sh -c <command>` in its own process group (pgid = its pid). A supervisor task
//! owns the child: it waits for the shell to exit, or for the timeout, or for a kill
//! request; in every case it then sends SIGKILL to the whole group, so nothing the command
//! started (`sleep 30 &`) outlives it. Output (stdout and stderr, interleaved as they
//! arrive) is kept within a byte cap: the first half and the latest half, with the size of
//! the gap noted.
//!
//! No orphans: the group is killed when the run ends, when the foreground call waiting for
//! it is dropped, when the supervisor task is dropped (runtime shutdown), and when the
//! [`ProcessTable`] is dropped. A member that left the group (`setsid`) is out of reach.
//!
//! A sandboxed session's background run is a command of the container's exec server
//! (`pincer_sandbox::execd`), made by [`Run::from_sandbox`]: the same output buffer, status
//! and table, but the kill and the timeout are execd's (the whole tree inside the
//! container), and `pgid` is 0 (it names nothing on the host).
//!
//! No zombies either: on Linux the gateway makes itself a child subreaper
//! (`PR_SET_CHILD_SUBREAPER`, once, at the first run), so a killed group's orphaned members
//! are re-parented to it rather than to an init that may never reap them (container
//! inits often do not), and the supervisor reaps them (`waitpid(-pgid)`) until the group
//! no longer exists. A side effect for the whole process: any orphaned descendant of the
//! gateway becomes its child; only `exec` groups are reaped here.

use std::collections::VecDeque;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pincer_sandbox::execd::{BackgroundProcess, Event, ProcessControl};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;
use tokio::time::Instant;

/// Background runs one session may have at once.
pub const MAX_RUNNING: usize = 16;
/// Finished background runs kept for `list`/`poll`/`log`.
pub const MAX_FINISHED: usize = 32;
/// How long output readers may keep reading after the group was killed (a member that
/// left the group can hold the pipe open forever).
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// How long the supervisor keeps reaping a killed group before giving up on a member that
/// will not die (uninterruptible sleep).
const REAP_LIMIT: Duration = Duration::from_secs(2);

/// Send SIGKILL to process group `pgid`. Refuses the special values (0 = own group, 1 = init,
/// negative = every process).
fn kill_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) has no memory-safety preconditions; the sign makes it a group.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Whether process group `pgid` has any process left, zombies included.
fn group_exists(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let rc = unsafe { libc::kill(-pgid, 0) };
    !(rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH))
}

/// Reap the members of killed group `pgid` that were re-parented to this process, until
/// the group is gone or [`REAP_LIMIT`] passes. Blocking; run on a blocking thread. Only
/// called after the group's leader was reaped, so it cannot take tokio's child.
fn reap_group(pgid: i32) {
    if pgid <= 1 {
        return;
    }
    let deadline = std::time::Instant::now() + REAP_LIMIT;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only to `status`; -pgid selects children in that group.
        while unsafe { libc::waitpid(-pgid, &mut status, libc::WNOHANG) } > 0 {}
        if !group_exists(pgid) || std::time::Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Become a child subreaper, once (Linux); see the module doc.
fn become_subreaper() {
    #[cfg(target_os = "linux")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag only.
            let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
            if rc != 0 {
                tracing::warn!(
                    error = %std::io::Error::last_os_error(),
                    "could not become a child subreaper; killed exec processes may stay zombies"
                );
            }
        });
    }
}

/// A pipe for the child's stdout and stderr together (so they interleave as written):
/// the read end, and two write ends.
fn output_pipe() -> std::io::Result<(OwnedFd, OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array; O_CLOEXEC keeps them out of other children.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let write2 = write.try_clone()?;
    Ok((read, write, write2))
}

/// How a run ended, or that it has not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Running,
    Exited(i32),
    Signaled(i32),
    TimedOut(Duration),
    Killed,
    /// The sandbox lost it (its exec server died): why.
    Lost(String),
}

impl Status {
    pub fn is_running(&self) -> bool {
        *self == Self::Running
    }

    /// Ended other than by exiting 0.
    pub fn is_failure(&self) -> bool {
        !matches!(self, Self::Running | Self::Exited(0))
    }

    /// One short word for `list`.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Exited(0) => "completed",
            Self::Exited(_) | Self::Signaled(_) | Self::Lost(_) => "failed",
            Self::TimedOut(_) => "timed-out",
            Self::Killed => "killed",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Running => write!(f, "still running"),
            Self::Exited(code) => write!(f, "exit code {code}"),
            Self::Signaled(sig) => write!(f, "killed by signal {sig}"),
            Self::TimedOut(after) => write!(
                f,
                "timed out after {:.1}s; the whole process group was killed",
                after.as_secs_f64()
            ),
            Self::Killed => write!(f, "killed on request; the whole process group was killed"),
            Self::Lost(why) => write!(f, "lost: {why}"),
        }
    }
}

/// Output within `cap` bytes: the first half as it came, the latest half rolling.
pub(crate) struct OutputBuf {
    cap: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

impl OutputBuf {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(2),
            head: Vec::new(),
            tail: VecDeque::new(),
            total: 0,
        }
    }

    pub(crate) fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let head_cap = self.cap / 2;
        if self.head.len() < head_cap {
            let take = (head_cap - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        self.tail.extend(bytes);
        let tail_cap = self.cap - head_cap;
        if self.tail.len() > tail_cap {
            let excess = self.tail.len() - tail_cap;
            self.tail.drain(..excess);
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Everything kept, with a note where bytes were cut.
    pub(crate) fn render(&self) -> String {
        self.since(0)
    }

    /// What arrived at or after byte `cursor`, as far as it was kept.
    pub(crate) fn since(&self, cursor: u64) -> String {
        let head_len = self.head.len() as u64;
        let tail_start = self.total - self.tail.len() as u64;
        let mut out = Vec::new();
        if cursor < head_len {
            out.extend_from_slice(&self.head[cursor as usize..]);
        }
        let gap_from = cursor.max(head_len);
        let mut text = String::from_utf8_lossy(&out).into_owned();
        if gap_from < tail_start {
            text.push_str(&format!(
                "\n[... {} bytes of output cut ...]\n",
                tail_start - gap_from
            ));
        }
        let tail_from = (cursor.max(tail_start) - tail_start) as usize;
        let rest: Vec<u8> = self.tail.range(tail_from..).copied().collect();
        text.push_str(&String::from_utf8_lossy(&rest));
        text
    }
}

struct RunState {
    output: OutputBuf,
    status: Status,
    /// Where the last `poll` stopped.
    poll_cursor: u64,
    ended: Option<Instant>,
    kill_requested: bool,
}

/// One `sh -c` command and its process group.
pub struct Run {
    pub command: String,
    /// The host process group; 0 for a run in a sandbox.
    pub pgid: i32,
    pub started: Instant,
    state: Mutex<RunState>,
    done: watch::Receiver<bool>,
    /// Set for a run in a sandbox: how to kill it.
    sandbox: Option<ProcessControl>,
}

impl Run {
    /// Start `command` in `cwd` with exactly `env`, killed after `timeout`. Must be called
    /// inside a tokio runtime.
    pub(crate) fn spawn(
        command: &str,
        cwd: &Path,
        env: &[(String, String)],
        timeout: Duration,
        output_cap: usize,
    ) -> std::io::Result<Arc<Self>> {
        become_subreaper();
        let (read, write, write2) = output_pipe()?;
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .current_dir(cwd)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(write))
            .stderr(Stdio::from(write2))
            .process_group(0)
            .kill_on_drop(true);
        let spawned = cmd.spawn();
        // The command holds our copies of the write ends; without dropping it the pipe
        // never reaches EOF.
        drop(cmd);
        let mut child = spawned?;
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| std::io::Error::other("the child has no pid"))?;
        let guard = GroupGuard(Some(pgid));
        let output = tokio::net::unix::pipe::Receiver::from_owned_fd(read)?;
        let (run, done_tx) = Self::running(command, pgid, output_cap, None);
        let reader = tokio::spawn(pump(output, run.clone()));
        let supervised = run.clone();
        tokio::spawn(async move {
            let mut guard = guard;
            let status = tokio::select! {
                exit = child.wait() => match exit {
                    Ok(s) => exit_status(s),
                    Err(_) => Status::Signaled(libc::SIGKILL),
                },
                () = tokio::time::sleep(timeout) => {
                    kill_group(pgid);
                    let _ = child.wait().await;
                    Status::TimedOut(timeout)
                }
            };
            // Whatever the shell left behind in its group goes with it.
            kill_group(pgid);
            guard.0 = None;
            let _ = tokio::task::spawn_blocking(move || reap_group(pgid)).await;
            let abort = reader.abort_handle();
            if tokio::time::timeout(DRAIN_GRACE, reader).await.is_err() {
                abort.abort();
            }
            {
                let mut state = supervised.lock();
                state.status = if state.kill_requested && !matches!(status, Status::Exited(_)) {
                    Status::Killed
                } else {
                    status
                };
                state.ended = Some(Instant::now());
            }
            let _ = done_tx.send(true);
        });
        Ok(run)
    }

    /// A run of the sandbox's exec server (already started), killed at `timeout` by it;
    /// its stdout and stderr interleave into one output as on the host. Must be called
    /// inside a tokio runtime.
    pub(crate) fn from_sandbox(
        command: &str,
        mut process: BackgroundProcess,
        timeout: Duration,
        output_cap: usize,
    ) -> Arc<Self> {
        let (run, done_tx) = Self::running(command, 0, output_cap, Some(process.control()));
        let follower = run.clone();
        tokio::spawn(async move {
            // Dropping `process` (this task cancelled) kills the command.
            let status = loop {
                match process.next().await {
                    Some(Event::Started { .. }) => {}
                    Some(Event::Output(_, bytes)) => follower.lock().output.push(&bytes),
                    Some(Event::Exited(s)) if s.timed_out => break Status::TimedOut(timeout),
                    Some(Event::Exited(s)) if s.killed => break Status::Killed,
                    Some(Event::Exited(s)) => {
                        break match (s.code, s.signal) {
                            (Some(code), _) => Status::Exited(code),
                            (None, sig) => Status::Signaled(sig.unwrap_or(0)),
                        };
                    }
                    Some(Event::Failed(why)) => break Status::Lost(why),
                    None => break Status::Lost("the sandbox stopped reporting".into()),
                }
            };
            {
                let mut state = follower.lock();
                state.status = status;
                state.ended = Some(Instant::now());
            }
            let _ = done_tx.send(true);
        });
        run
    }

    /// A run that has just started, and the sender that marks its end.
    fn running(
        command: &str,
        pgid: i32,
        output_cap: usize,
        sandbox: Option<ProcessControl>,
    ) -> (Arc<Self>, watch::Sender<bool>) {
        let (done_tx, done_rx) = watch::channel(false);
        let run = Arc::new(Self {
            command: command.to_owned(),
            pgid,
            started: Instant::now(),
            state: Mutex::new(RunState {
                output: OutputBuf::new(output_cap),
                status: Status::Running,
                poll_cursor: 0,
                ended: None,
                kill_requested: false,
            }),
            done: done_rx,
            sandbox,
        });
        (run, done_tx)
    }

    fn lock(&self) -> MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn status(&self) -> Status {
        self.lock().status.clone()
    }

    /// Time since start, until the end if it ended.
    pub fn runtime(&self) -> Duration {
        let state = self.lock();
        state.ended.unwrap_or_else(Instant::now) - self.started
    }

    /// Kill the whole group, if still running.
    pub fn kill(&self) {
        let mut state = self.lock();
        if state.status.is_running() {
            state.kill_requested = true;
            match &self.sandbox {
                Some(control) => control.kill(),
                None => kill_group(self.pgid),
            }
        }
    }

    /// Wait until the run has ended and its output is complete.
    pub async fn wait(&self) {
        let mut done = self.done.clone();
        let _ = done.wait_for(|d| *d).await;
    }

    /// All kept output, with a note where it was cut.
    pub fn output(&self) -> String {
        self.lock().output.render()
    }

    /// Output since the previous `poll` (or the start), advancing the cursor.
    pub fn poll(&self) -> String {
        let mut state = self.lock();
        let text = state.output.since(state.poll_cursor);
        state.poll_cursor = state.output.total();
        text
    }
}

/// Read a pipe into the run's output until EOF.
async fn pump(mut pipe: impl AsyncRead + Unpin, run: Arc<Run>) {
    let mut buf = vec![0u8; 8192];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => run.lock().output.push(&buf[..n]),
        }
    }
}

fn exit_status(status: std::process::ExitStatus) -> Status {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Status::Exited(code),
        (None, Some(sig)) => Status::Signaled(sig),
        (None, None) => Status::Signaled(0),
    }
}

/// Kills the group when dropped while armed (the supervisor task was cancelled).
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            kill_group(pgid);
        }
    }
}

/// The background runs of one session, by session id. Dropping the table kills every run
/// still going.
#[derive(Default)]
pub struct ProcessTable {
    runs: Mutex<Vec<(String, Arc<Run>)>>,
}

impl ProcessTable {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(String, Arc<Run>)>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs in the table, running or finished.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs still going.
    pub fn running(&self) -> usize {
        self.lock()
            .iter()
            .filter(|(_, r)| r.status().is_running())
            .count()
    }

    /// Kill every run still going.
    pub fn kill_all(&self) {
        for (_, run) in self.lock().iter() {
            run.kill();
        }
    }

    /// Add `run` under a new session id; refused (and the run killed) when
    /// [`MAX_RUNNING`] runs are going. The oldest finished runs beyond [`MAX_FINISHED`] are
    /// forgotten.
    pub(crate) fn insert(&self, run: Arc<Run>) -> Result<String, String> {
        let mut runs = self.lock();
        let running = runs.iter().filter(|(_, r)| r.status().is_running()).count();
        if running >= MAX_RUNNING {
            run.kill();
            return Err(format!(
                "{running} background commands are already running (the limit); kill one with \
                 process action=kill first"
            ));
        }
        let finished: Vec<usize> = runs
            .iter()
            .enumerate()
            .filter(|(_, (_, r))| !r.status().is_running())
            .map(|(i, _)| i)
            .collect();
        if finished.len() >= MAX_FINISHED {
            runs.remove(finished[0]);
        }
        let id = loop {
            let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
            if !runs.iter().any(|(k, _)| *k == id) {
                break id;
            }
        };
        runs.push((id.clone(), run));
        Ok(id)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Run>> {
        self.lock()
            .iter()
            .find(|(k, _)| k == id.trim())
            .map(|(_, r)| r.clone())
    }

    /// Every run with its session id, oldest first.
    pub fn list(&self) -> Vec<(String, Arc<Run>)> {
        self.lock().clone()
    }
}

impl Drop for ProcessTable {
    fn drop(&mut self) {
        self.kill_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_buf_keeps_head_and_tail_and_counts_the_gap() {
        let mut b = OutputBuf::new(10);
        b.push(b"abc");
        assert_eq!(b.render(), "abc");
        b.push(b"defghijklmnopqrstuvwxyz");
        assert_eq!(b.total(), 26);
        assert_eq!(b.render(), "abcde\n[... 16 bytes of output cut ...]\nvwxyz");
        assert_eq!(b.since(3), "de\n[... 16 bytes of output cut ...]\nvwxyz");
        assert_eq!(b.since(10), "\n[... 11 bytes of output cut ...]\nvwxyz");
        assert_eq!(b.since(23), "xyz");
        assert_eq!(b.since(26), "");
    }

    #[test]
    fn statuses_read_well() {
        assert!(!Status::Exited(0).is_failure());
        assert!(Status::Exited(2).is_failure());
        assert!(Status::TimedOut(Duration::from_millis(300)).is_failure());
        assert_eq!(Status::Exited(3).to_string(), "exit code 3");
        assert!(
            Status::TimedOut(Duration::from_millis(300))
                .to_string()
                .contains("timed out after 0.3s")
        );
        assert_eq!(Status::Killed.word(), "killed");
    }
}
