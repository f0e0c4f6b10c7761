//! Commands in a running container: [`Docker::exec`] with streamed, capped output and a
//! timeout that kills the whole process tree, and the exec plumbing the file copies
//! ([`Docker::copy_in`], [`Docker::copy_out`]) share.
//!
//! What the Engine does not do, and how this module works around it:
//! - Exec processes are session leaders (runc calls `setsid`), but nothing kills their
//!   children when the exec is abandoned. [`Docker::exec`] marks every process it starts
//!   with an environment variable holding a random token and, on timeout, a second exec
//!   freezes and kills every process carrying the token or sharing a session or process
//!   group with one that does, until none is left. If that exec cannot run (a fork bomb
//!   exhausted the pids limit), the whole container is killed and an error returned.
//! - The Engine learns that an exec ended a moment after its output closed (longer under
//!   load), and a command may close its output and keep running: the exit code is polled
//!   until the command's deadline (at least [`EXIT_GRACE`] after the output closed), and a
//!   command still running then is treated as timed out.
//! - runc before 1.1.13 built with Go 1.19 or later (Debian bookworm's 1.1.5 is) races
//!   with the Go runtime of `runc init` when it sets an exec's `RLIMIT_NOFILE`: now and
//!   then the exec starts with the soft limit raised to the hard one (runc issue 4195). The
//!   init process is not affected, so the exec wrapper copies PID 1's open-files limits
//!   before running the command.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::KillContainerOptionsBuilder;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use crate::SandboxError;
use crate::docker::{Docker, unix_now};

/// The environment variable that marks every process an exec starts.
pub const EXEC_MARK_VAR: &str = "PINCER_EXEC_ID";

/// Wraps every exec (`/bin/sh -c` this, then the argv): first the open-files limits of
/// PID 1 (see the module docs; lowering is always allowed, and a failure changes
/// nothing), then the command. The shell stays the session leader (so the tree stays
/// findable even if the command clears its environment) and passes the exit status through.
/// Its variables have names no environment uses, and are unset before the command runs.
const EXEC_WRAPPER: &str = r#"if [ -r /proc/1/limits ]; then
  { while read -r __pincer_a __pincer_b __pincer_c __pincer_s __pincer_h __pincer_x; do
      if [ "$__pincer_a $__pincer_b $__pincer_c" = "Max open files" ]; then
        ulimit -S -n "$__pincer_s"; ulimit -H -n "$__pincer_h"; break
      fi
    done </proc/1/limits; } 2>/dev/null
  unset __pincer_a __pincer_b __pincer_c __pincer_s __pincer_h __pincer_x
fi
"$@"; exit $?"#;

/// Kills the tree of one exec, in rounds, until no process is left: the processes whose
/// environment holds the token, plus every process in their sessions and process groups.
/// Shell builtins only, but for one `grep` a round. `$1` is the token.
const KILL_SCRIPT: &str = r#"tok=$1
me=$$
round=0
victims=""
while [ "$round" -lt 40 ]; do
  round=$((round + 1))
  marked=" "
  groups=" "
  for f in $(grep -l "PINCER_EXEC_ID=$tok" /proc/[0-9]*/environ 2>/dev/null); do
    p=${f#/proc/}; p=${p%/environ}
    { read -r st < "/proc/$p/stat"; } 2>/dev/null || continue
    set -- ${st##*) }
    marked="$marked$p "
    [ "$3" -gt 1 ] && groups="$groups$3 "
    [ "$4" -gt 1 ] && groups="$groups$4 "
  done
  victims=""
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    case $p in "$me"|1) continue ;; esac
    { read -r st < "$d/stat"; } 2>/dev/null || continue
    set -- ${st##*) }
    case $1 in Z|X|x) continue ;; esac
    case "$marked" in *" $p "*) victims="$victims $p"; continue ;; esac
    case "$groups" in *" $3 "*|*" $4 "*) victims="$victims $p" ;; esac
  done
  if [ -z "$victims" ]; then echo "clean after $round"; exit 0; fi
  kill -STOP $victims 2>/dev/null
  kill -KILL $victims 2>/dev/null
done
echo "still alive:$victims" >&2
exit 1
"#;

/// How long the tree-kill exec may take before the container is killed instead.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long after its output closed an exec may take to be reported as ended, when its
/// own deadline comes sooner.
pub const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Which stream a chunk of exec output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    Stdout,
    Stderr,
}

/// One command to run in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// argv; run through `/bin/sh -c '"$@"'` so `/bin/sh` must exist in the image.
    pub cmd: Vec<String>,
    pub workdir: Option<String>,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// Bytes of stdout + stderr kept (and passed to the output callback); the rest is read
    /// and dropped.
    pub max_output: usize,
    /// `uid[:gid]` or a name; `None`: the container's user.
    pub user: Option<String>,
}

impl ExecRequest {
    /// A request with a 60 s timeout and a 1 MiB output cap.
    pub fn new<I, S>(cmd: I) -> ExecRequest
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExecRequest {
            cmd: cmd.into_iter().map(Into::into).collect(),
            workdir: None,
            env: Vec::new(),
            timeout: Duration::from_secs(60),
            max_output: 1 << 20,
            user: None,
        }
    }
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecResult {
    /// `None` when it timed out (its tree was killed).
    pub exit_code: Option<i64>,
    /// Lossy UTF-8 of the kept bytes.
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    /// More than `max_output` bytes were produced.
    pub truncated: bool,
    pub duration: Duration,
}

impl Docker {
    /// Runs `req.cmd` in the running container `id`, passing output to `on_output` as it
    /// arrives. At most `req.max_output` bytes (stdout and stderr together) are passed on
    /// and kept; the rest is read and dropped (`truncated`). After `req.timeout` the
    /// command's whole process tree is killed (`timed_out`, no exit code); if that is not
    /// possible the container is killed and an error returned.
    pub async fn exec(
        &self,
        id: &str,
        req: &ExecRequest,
        on_output: &mut (dyn FnMut(OutputKind, &[u8]) + Send),
    ) -> Result<ExecResult, SandboxError> {
        if req.cmd.is_empty() {
            return Err(SandboxError::Refused("exec: empty command".into()));
        }
        let started = Instant::now();
        let token = new_token();
        let mut env: Vec<String> = req.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.push(format!("{EXEC_MARK_VAR}={token}"));
        let run = RunArgs {
            env,
            workdir: req.workdir.clone(),
            user: req.user.clone(),
            ..RunArgs::script(EXEC_WRAPPER, req.cmd.clone(), req.timeout)
        };
        let deadline = run.deadline;
        let mut capture = Capture {
            max: req.max_output,
            ..Default::default()
        };
        let outcome = self
            .run(id, run, &mut |kind, bytes| {
                capture.push(kind, bytes, on_output)
            })
            .await?;
        let exit_code = match outcome.timed_out {
            true => Exit::Running,
            false => self.exit_code(&outcome.exec_id, deadline).await?,
        };
        let (exit_code, timed_out) = match exit_code {
            Exit::Ended(code) => (code, false),
            Exit::Running => {
                self.kill_tree(id, &token, req.user.as_deref()).await?;
                (None, true)
            }
        };
        Ok(ExecResult {
            exit_code,
            stdout: String::from_utf8_lossy(&capture.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&capture.stderr).into_owned(),
            timed_out,
            truncated: capture.truncated,
            duration: started.elapsed(),
        })
    }

    /// Runs one of our own scripts to the end (`code` is `None` past its deadline), keeping
    /// up to `max_stdout` bytes of stdout and the start of stderr.
    pub(crate) async fn helper(
        &self,
        id: &str,
        run: RunArgs,
        max_stdout: usize,
    ) -> Result<HelperOutput, SandboxError> {
        let (mut stdout, mut stderr, mut overflow) = (Vec::new(), Vec::new(), false);
        let deadline = run.deadline;
        let outcome = self
            .run(id, run, &mut |kind, b| match kind {
                OutputKind::Stdout if stdout.len() + b.len() <= max_stdout => {
                    stdout.extend_from_slice(b)
                }
                OutputKind::Stdout => overflow = true,
                OutputKind::Stderr if stderr.len() < 4096 => stderr.extend_from_slice(b),
                OutputKind::Stderr => {}
            })
            .await?;
        let code = match outcome.timed_out {
            true => None,
            false => match self.exit_code(&outcome.exec_id, deadline).await? {
                Exit::Ended(code) => code,
                Exit::Running => None,
            },
        };
        Ok(HelperOutput {
            code,
            stdout,
            stderr: String::from_utf8_lossy(&stderr).trim().to_string(),
            overflow,
        })
    }

    /// Creates and starts one exec, streams its output to `sink` until it ends or the
    /// deadline passes, feeding `stdin` (then closing it) when given.
    async fn run(
        &self,
        id: &str,
        args: RunArgs,
        sink: &mut (dyn FnMut(OutputKind, &[u8]) + Send),
    ) -> Result<RunOutcome, SandboxError> {
        let with_stdin = args.stdin.is_some();
        let opts = CreateExecOptions {
            cmd: Some(args.cmd),
            env: Some(args.env),
            working_dir: args.workdir,
            user: args.user,
            attach_stdin: Some(with_stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            ..Default::default()
        };
        let exec = self
            .inner
            .create_exec(id, opts)
            .await
            .map_err(|e| self.err(e))?;
        let started = self
            .inner
            .start_exec(&exec.id, Some(StartExecOptions::default()))
            .await
            .map_err(|e| self.err(e))?;
        let StartExecResults::Attached {
            mut output,
            mut input,
        } = started
        else {
            return Err(SandboxError::Docker("exec started detached".into()));
        };
        let deadline = args.deadline;
        let feed = async move {
            let Some(data) = args.stdin else {
                return Ok(());
            };
            let write = async { input.write_all(&data).await.and(input.shutdown().await) };
            // A command that never reads its stdin times out; the reader reports that.
            tokio::time::timeout_at(deadline, write)
                .await
                .unwrap_or(Ok(()))
        };
        let read = async {
            loop {
                match tokio::time::timeout_at(args.deadline, output.next()).await {
                    Err(_) => return Ok(true),
                    Ok(None) => return Ok(false),
                    Ok(Some(Ok(chunk))) => match chunk {
                        LogOutput::StdOut { message } | LogOutput::Console { message } => {
                            sink(OutputKind::Stdout, &message)
                        }
                        LogOutput::StdErr { message } => sink(OutputKind::Stderr, &message),
                        LogOutput::StdIn { .. } => {}
                    },
                    Ok(Some(Err(e))) => return Err(self.err(e)),
                }
            }
        };
        let (fed, timed_out) = tokio::join!(feed, read);
        let timed_out = timed_out?;
        if let Err(e) = fed
            && !timed_out
        {
            return Err(SandboxError::Docker(format!("exec stdin: {e}")));
        }
        Ok(RunOutcome {
            exec_id: exec.id,
            timed_out,
        })
    }

    /// How an exec whose output closed ended. The Engine may report it running for a
    /// moment after (longer under load), and the command may really still run (it closed
    /// its output): polls, backing off from 1 ms to 50 ms, until `deadline` or
    /// [`EXIT_GRACE`] from now, whichever is later.
    async fn exit_code(&self, exec_id: &str, deadline: Instant) -> Result<Exit, SandboxError> {
        let until = deadline.max(Instant::now() + EXIT_GRACE);
        let mut pause = Duration::from_millis(1);
        loop {
            let info = self
                .inner
                .inspect_exec(exec_id)
                .await
                .map_err(|e| self.err(e))?;
            if info.running != Some(true) {
                return Ok(Exit::Ended(info.exit_code));
            }
            let now = Instant::now();
            if now >= until {
                return Ok(Exit::Running);
            }
            tokio::time::sleep(pause.min(until - now)).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Kills every process of the exec marked with `token`; if that fails, kills the
    /// container and returns an error.
    async fn kill_tree(
        &self,
        id: &str,
        token: &str,
        user: Option<&str>,
    ) -> Result<(), SandboxError> {
        let detail = match self.kill_script(id, token, user).await {
            Ok(()) => return Ok(()),
            Err(e) => e.to_string(),
        };
        tracing::warn!(container = %id, %detail, "cannot kill a timed-out command's processes, killing the container");
        let opts = KillContainerOptionsBuilder::default()
            .signal("SIGKILL")
            .build();
        let killed = match self.inner.kill_container(id, Some(opts)).await {
            Ok(()) => "killed".to_string(),
            Err(e) => format!("not killed either: {e}"),
        };
        Err(SandboxError::Docker(format!(
            "a command timed out and its processes could not be killed inside the container ({detail}); the container was {killed}"
        )))
    }
}

impl Docker {
    /// Kills every process of the command marked with `token` (as a timeout does), with
    /// an exec of the kill script; `Err` when it could not (the container is left alone).
    pub(crate) async fn kill_marked(&self, id: &str, token: &str) -> Result<(), SandboxError> {
        self.kill_script(id, token, None).await
    }

    async fn kill_script(
        &self,
        id: &str,
        token: &str,
        user: Option<&str>,
    ) -> Result<(), SandboxError> {
        let run = RunArgs::script(KILL_SCRIPT, vec![token.into()], KILL_TIMEOUT);
        let run = RunArgs {
            user: user.map(String::from),
            ..run
        };
        match self.helper(id, run, 4096).await? {
            h if h.code == Some(0) => Ok(()),
            h => Err(SandboxError::Docker(format!(
                "the kill script ended with {:?}: {}",
                h.code, h.stderr
            ))),
        }
    }
}

/// One exec of ours: the argv, environment, directory, user, stdin and deadline.
pub(crate) struct RunArgs {
    pub(crate) cmd: Vec<String>,
    pub(crate) env: Vec<String>,
    pub(crate) workdir: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) stdin: Option<Vec<u8>>,
    pub(crate) deadline: Instant,
}

impl RunArgs {
    /// `/bin/sh -c script pincer args...` in `/`, as the container's user.
    pub(crate) fn script(script: &str, args: Vec<String>, timeout: Duration) -> RunArgs {
        let mut cmd: Vec<String> = ["/bin/sh", "-c", script, "pincer"].map(String::from).into();
        cmd.extend(args);
        RunArgs {
            cmd,
            env: Vec::new(),
            workdir: Some("/".into()),
            user: None,
            stdin: None,
            deadline: Instant::now() + timeout,
        }
    }
}

struct RunOutcome {
    exec_id: String,
    timed_out: bool,
}

/// How an exec ended, as far as the Engine tells.
enum Exit {
    /// It ended (the Engine may not know the code).
    Ended(Option<i64>),
    /// Still running past its deadline.
    Running,
}

pub(crate) struct HelperOutput {
    /// `None` when it timed out.
    pub(crate) code: Option<i64>,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: String,
    /// More stdout than asked for.
    pub(crate) overflow: bool,
}

/// Keeps at most `max` bytes of output, stdout and stderr together, and forwards exactly
/// what it keeps.
#[derive(Default)]
pub(crate) struct Capture {
    pub(crate) max: usize,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    pub(crate) truncated: bool,
}

impl Capture {
    pub(crate) fn push(
        &mut self,
        kind: OutputKind,
        bytes: &[u8],
        forward: &mut (dyn FnMut(OutputKind, &[u8]) + Send),
    ) {
        let take = (self.max - self.stdout.len() - self.stderr.len()).min(bytes.len());
        self.truncated |= take < bytes.len();
        if take > 0 {
            forward(kind, &bytes[..take]);
            match kind {
                OutputKind::Stdout => self.stdout.extend_from_slice(&bytes[..take]),
                OutputKind::Stderr => self.stderr.extend_from_slice(&bytes[..take]),
            }
        }
    }
}

/// 128 random bits as hex, from the standard library's randomly keyed hasher.
pub(crate) fn new_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let half = |i: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u64(i);
        h.write_u64(unix_now());
        h.finish()
    };
    format!("{:016x}{:016x}", half(0), half(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_and_forwards_at_most_max_bytes() {
        let mut seen = Vec::new();
        let mut fwd = |k: OutputKind, b: &[u8]| seen.push((k, b.to_vec()));
        let mut c = Capture {
            max: 5,
            ..Default::default()
        };
        c.push(OutputKind::Stdout, b"abc", &mut fwd);
        c.push(OutputKind::Stderr, b"defg", &mut fwd);
        c.push(OutputKind::Stdout, b"h", &mut fwd);
        assert_eq!(c.stdout, b"abc");
        assert_eq!(c.stderr, b"de");
        assert!(c.truncated);
        assert_eq!(
            seen,
            vec![
                (OutputKind::Stdout, b"abc".to_vec()),
                (OutputKind::Stderr, b"de".to_vec())
            ]
        );
    }

    #[test]
    fn tokens_differ() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
