//! `exec` and `process`: run shell commands in the workspace, in the foreground or in the
//! background, and manage the background ones.
//!
//! Parameters follow OpenClaw (`docs/tools/exec.md`, `src/agents/bash-tools.exec-runtime.ts`
//! and `bash-tools.process.ts` in openclaw/openclaw):
//! - `exec {command, workdir?, env?, timeout?, background?, yieldMs?}`: `timeout` is in
//!   seconds as in OpenClaw (`timeoutSeconds` and `timeoutMs` are accepted too);
//!   `background: true` returns a session id at once; `yieldMs` waits that long and then
//!   moves a still-running command to the background (OpenClaw defaults it to 10 s; here it
//!   is off unless given). OpenClaw's `pty`, `host`, `elevated`, `security`, `ask` have no
//!   counterpart here.
//! - `process {action, sessionId?, offset?, limit?}` with `action` one of `list`, `poll`
//!   (output since the last poll, and the status), `log` (all kept output; `offset`/`limit`
//!   in lines, 0-based offset, `limit` alone = the last lines) and `kill` (`stop`/`cancel` are OpenClaw's aliases).
//!   OpenClaw's `write`, `send-keys`, `paste`, `submit`, `clear`, `remove` are not offered:
//!   stdin is `/dev/null`.
//!
//! In a sandboxed session both run in the session's container: a foreground `exec` is one
//! command of the container's exec server, a background one (or one moved there by
//! `yieldMs`) a background command of it, which `process` lists, polls and kills like a
//! host run (the tree inside the container dies with it).
//!
//! The child gets a fixed environment, not the gateway's (which holds provider keys): PATH,
//! HOME, USER, LOGNAME, SHELL, LANG, LC_ALL, LC_CTYPE, TERM, TZ, TMPDIR when set, plus `env`.
//! Like OpenClaw's host exec, `env` may not override PATH or loader variables (`LD_*`,
//! `DYLD_*`).
//!
//! `exec` needs read-write workspace access: a shell can change any file, so it would make
//! a read-only workspace writable.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use super::args::Args;
use super::process::Run;
use super::{
    Intent, PathError, Risk, SandboxRunner, Tool, ToolContext, ToolOutput, WorkspaceAccess, boxed,
    schema,
};
use crate::agent::model::ToolSpec;

/// Variables passed through from the gateway's environment.
const PASSED_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ",
    "TMPDIR",
];

pub struct Exec;
pub struct Process;

impl Tool for Exec {
    fn name(&self) -> &'static str {
        "exec"
    }
    fn group(&self) -> &'static str {
        "group:runtime"
    }
    fn risk(&self) -> Risk {
        Risk::High
    }
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "exec".into(),
            description: "Run a shell command in the workspace; returns output and exit code."
                .into(),
            parameters: schema(
                json!({
                    "command": {"type": "string"},
                    "workdir": {"type": "string"},
                    "env": {"type": "object", "additionalProperties": {"type": "string"}},
                    "timeout": {"type": "number", "description": "seconds"},
                    "background": {"type": "boolean", "description": "return a sessionId for process"},
                    "yieldMs": {"type": "number", "description": "background after this many ms"}
                }),
                &["command"],
            ),
        }
    }
    fn call(&self, ctx: ToolContext, args: Value) -> BoxFuture<'static, ToolOutput> {
        boxed("exec", exec(ctx, args))
    }
}

impl Tool for Process {
    fn name(&self) -> &'static str {
        "process"
    }
    fn group(&self) -> &'static str {
        "group:runtime"
    }
    fn risk(&self) -> Risk {
        Risk::High
    }
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "process".into(),
            description: "Manage background exec sessions: list, poll (new output), log, kill."
                .into(),
            parameters: schema(
                json!({
                    "action": {"type": "string", "enum": ["list", "poll", "log", "kill"]},
                    "sessionId": {"type": "string"},
                    "offset": {"type": "integer", "description": "log: first line, 0-based"},
                    "limit": {"type": "integer", "description": "log: max lines"}
                }),
                &["action"],
            ),
        }
    }
    fn call(&self, ctx: ToolContext, args: Value) -> BoxFuture<'static, ToolOutput> {
        boxed("process", process(ctx, args))
    }
}

/// A parsed `exec` call.
struct ExecArgs {
    command: String,
    workdir: Option<String>,
    env: Vec<(String, String)>,
    timeout: Option<Duration>,
    background: bool,
    yield_after: Option<Duration>,
}

fn parse_exec(args: &Value) -> Result<ExecArgs, String> {
    let a = Args::new("exec", args)?;
    let command = a.str("command")?;
    if command.trim().is_empty() {
        return Err("exec: `command` is empty".into());
    }
    let timeout = match (
        a.opt_f64("timeout")?,
        a.opt_f64("timeoutSeconds")?,
        a.opt_f64("timeoutMs")?,
    ) {
        (Some(s), _, _) | (None, Some(s), _) => Some(Duration::from_secs_f64(s)),
        (None, None, Some(ms)) => Some(Duration::from_secs_f64(ms / 1000.0)),
        (None, None, None) => None,
    };
    if timeout.is_some_and(|t| t.is_zero()) {
        return Err("exec: `timeout` must be more than 0 seconds".into());
    }
    let env = a.opt_string_map("env")?;
    for (key, _) in &env {
        let upper = key.to_ascii_uppercase();
        if key.is_empty() || key.contains(['=', '\0']) {
            return Err(format!("exec: `env` has an invalid variable name {key:?}"));
        }
        if upper == "PATH" || upper.starts_with("LD_") || upper.starts_with("DYLD_") {
            return Err(format!(
                "exec: `env` may not set {key} (PATH and loader variables are fixed)"
            ));
        }
    }
    Ok(ExecArgs {
        command: command.to_owned(),
        workdir: a
            .opt_str("workdir")?
            .filter(|w| !w.is_empty())
            .map(str::to_owned),
        env,
        timeout,
        background: a.opt_bool("background")?.unwrap_or(false),
        yield_after: a
            .opt_f64("yieldMs")?
            .map(|ms| Duration::from_secs_f64(ms / 1000.0)),
    })
}

/// The child's environment: the passed-through variables, then `extra`.
fn child_env(extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = PASSED_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
        .collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    }
    env.extend(extra.iter().cloned());
    env
}

async fn exec(ctx: ToolContext, args: Value) -> ToolOutput {
    let args = match parse_exec(&args) {
        Ok(a) => a,
        Err(e) => return ToolOutput::error(e),
    };
    if let Some(sandbox) = ctx.sandbox.clone() {
        return sandboxed(&ctx, sandbox, args).await;
    }
    if ctx.access != WorkspaceAccess::ReadWrite {
        let access = ctx.access.as_str();
        return ToolOutput::error(format!(
            "exec: {}",
            PathError::AccessDenied {
                access: if access == "ro" {
                    "ro (read-only)"
                } else {
                    "none"
                },
                what: "running commands (a shell can change any file)",
            }
        ));
    }
    let workdir = args.workdir.as_deref().unwrap_or(".");
    let cwd = match ctx.resolve(workdir, Intent::Read) {
        Ok(p) if p.is_dir() => p,
        Ok(_) => return ToolOutput::error(format!("exec: workdir {workdir} is not a directory")),
        Err(e) => return ToolOutput::error(format!("exec: workdir: {e}")),
    };
    let limits = &ctx.limits;
    let (timeout, note) = timeout_of(&args, limits);
    let run = match Run::spawn(
        &args.command,
        &cwd,
        &child_env(&args.env),
        timeout,
        limits.max_output_bytes,
    ) {
        Ok(r) => r,
        Err(e) => return ToolOutput::error(format!("exec: could not start `sh`: {e}")),
    };
    follow(&ctx, run, &args, &note, None).await
}

/// The timeout of a call (a background run defaults to the longest allowed), and a note
/// when it was capped.
fn timeout_of(args: &ExecArgs, limits: &super::Limits) -> (Duration, String) {
    let default = if args.background {
        limits.exec_max_timeout
    } else {
        limits.exec_timeout
    };
    match args.timeout {
        Some(t) if t > limits.exec_max_timeout => (
            limits.exec_max_timeout,
            format!(
                "[timeout capped at {}s]\n",
                limits.exec_max_timeout.as_secs_f64()
            ),
        ),
        Some(t) => (t, String::new()),
        None => (default, String::new()),
    }
}

/// A started run, by the call's wishes: in the background at once, after `yieldMs` if
/// it still runs then, or waited for. `sandbox` names the container it runs in.
async fn follow(
    ctx: &ToolContext,
    run: Arc<Run>,
    args: &ExecArgs,
    note: &str,
    sandbox: Option<&str>,
) -> ToolOutput {
    let (place, status_place) = match sandbox {
        Some(s) => (format!(" in sandbox {s}"), format!("; in sandbox {s}")),
        None => (String::new(), String::new()),
    };
    if args.background {
        return background(ctx, run, note, &format!("Started in the background{place}"));
    }
    let mut guard = KillOnDrop(Some(run.clone()));
    match args.yield_after {
        Some(after) => {
            if tokio::time::timeout(after, run.wait()).await.is_err() {
                guard.0 = None;
                let so_far = run.poll();
                let head = format!(
                    "Still running after {}ms; moved to the background{place}",
                    after.as_millis()
                );
                let mut out = background(ctx, run, note, &head);
                if !so_far.is_empty() {
                    out.content
                        .push_str(&format!("\n\nOutput so far:\n{so_far}"));
                }
                return out;
            }
        }
        None => run.wait().await,
    }
    guard.0 = None;
    let status = run.status();
    let output = run.output();
    let body = if output.is_empty() {
        "(no output)".to_owned()
    } else {
        output
    };
    let text = format!("{note}{body}\n\n[{status}{status_place}]");
    if status.is_failure() {
        ToolOutput::error(text)
    } else {
        ToolOutput::ok(text)
    }
}

/// `exec` in the session's container: the container is the boundary (its filesystem,
/// no network, no capabilities), so any workspace access level may run commands there.
async fn sandboxed(
    ctx: &ToolContext,
    sandbox: Arc<dyn SandboxRunner>,
    args: ExecArgs,
) -> ToolOutput {
    let workdir = match args.workdir.as_deref() {
        None | Some("") | Some(".") => "/workspace".to_owned(),
        Some(w) if w.starts_with('/') => w.to_owned(),
        Some(w) => format!("/workspace/{}", w.trim_start_matches("./")),
    };
    let limits = &ctx.limits;
    let (timeout, note) = timeout_of(&args, limits);
    let req = pincer_sandbox::docker::ExecRequest {
        cmd: vec!["sh".into(), "-c".into(), args.command.clone()],
        workdir: Some(workdir),
        env: args.env.clone(),
        timeout,
        max_output: limits.max_output_bytes,
        user: None,
    };
    if args.background || args.yield_after.is_some() {
        // Through the container's exec server; `process` follows it like a host run.
        let process = match sandbox.spawn(req).await {
            Ok(p) => p,
            Err(e) => return ToolOutput::error(format!("exec: the sandbox failed: {e}")),
        };
        let run = Run::from_sandbox(&args.command, process, timeout, limits.max_output_bytes);
        return follow(ctx, run, &args, &note, Some(&sandbox.describe())).await;
    }
    let r = match sandbox.exec(req).await {
        Ok(r) => r,
        Err(e) => return ToolOutput::error(format!("exec: the sandbox failed: {e}")),
    };
    let mut body = r.stdout;
    if !r.stderr.is_empty() {
        if !body.is_empty() && !body.ends_with('\n') {
            body.push('\n');
        }
        body.push_str(&r.stderr);
    }
    if body.is_empty() {
        body = "(no output)".into();
    }
    if r.truncated {
        body.push_str(&format!(
            "\n[output cut at {} bytes]",
            limits.max_output_bytes
        ));
    }
    let status = if r.timed_out {
        format!(
            "timed out after {:.1}s; the whole process tree was killed",
            timeout.as_secs_f64()
        )
    } else {
        match r.exit_code {
            Some(c) => format!("exit code {c}"),
            None => "no exit code".into(),
        }
    };
    let text = format!(
        "{note}{}\n\n[{status}; in sandbox {}]",
        body.trim_end(),
        sandbox.describe()
    );
    if r.timed_out || r.exit_code != Some(0) {
        ToolOutput::error(text)
    } else {
        ToolOutput::ok(text)
    }
}

/// Put `run` in the session's table and say how to follow it.
fn background(ctx: &ToolContext, run: Arc<Run>, note: &str, head: &str) -> ToolOutput {
    match ctx.processes.insert(run) {
        Ok(id) => ToolOutput::ok(format!(
            "{note}{head}: sessionId {id}. Follow it with process (action poll, log or kill, \
             sessionId {id})."
        )),
        Err(e) => ToolOutput::error(format!("exec: {e}")),
    }
}

/// Kills a foreground run whose caller went away before it finished.
struct KillOnDrop(Option<Arc<Run>>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(run) = self.0.take() {
            run.kill();
        }
    }
}

async fn process(ctx: ToolContext, args: Value) -> ToolOutput {
    let parsed = (|| {
        let a = Args::new("process", &args)?;
        Ok::<_, String>((
            a.str("action")?.trim().to_ascii_lowercase(),
            a.opt_str("sessionId")?.map(str::to_owned),
            a.opt_u64("offset")?,
            a.opt_u64("limit")?,
        ))
    })();
    let (action, session, offset, limit) = match parsed {
        Ok(p) => p,
        Err(e) => return ToolOutput::error(e),
    };
    let action = match action.as_str() {
        "stop" | "cancel" => "kill",
        a => a,
    };
    if action == "list" {
        return list(&ctx);
    }
    if !matches!(action, "poll" | "log" | "kill") {
        return ToolOutput::error(format!(
            "process: unknown action {action:?}; use list, poll, log or kill"
        ));
    }
    let Some(id) = session else {
        return ToolOutput::error(format!("process: action {action} needs `sessionId`"));
    };
    let Some(run) = ctx.processes.get(&id) else {
        return ToolOutput::error(format!(
            "process: no session {id}; action list shows the sessions"
        ));
    };
    match action {
        "poll" => {
            let new = run.poll();
            let status = run.status();
            let body = if new.is_empty() {
                "(no new output)".to_owned()
            } else {
                new
            };
            ToolOutput::ok(format!("{body}\n\n[{status}]"))
        }
        "log" => {
            // OpenClaw's `sliceLogLines`: 0-based `offset`; `limit` alone means the last
            // `limit` lines.
            let output = run.output();
            let lines: Vec<&str> = output.lines().collect();
            let total = lines.len();
            let first = match (offset, limit) {
                (Some(o), _) => (o as usize).min(total),
                (None, Some(l)) => total.saturating_sub(l as usize),
                (None, None) => 0,
            };
            let count = limit.map_or(total, |l| l as usize);
            let shown: Vec<&str> = lines.iter().skip(first).take(count).copied().collect();
            let body = if shown.is_empty() {
                "(no output)".to_owned()
            } else {
                shown.join("\n")
            };
            ToolOutput::ok(format!(
                "{body}\n\n[lines {}-{} of {total}; {}]",
                first + 1,
                first + shown.len(),
                run.status()
            ))
        }
        _ => {
            let before = run.status();
            if !before.is_running() {
                return ToolOutput::ok(format!("Session {id} had already ended ({before})"));
            }
            run.kill();
            run.wait().await;
            ToolOutput::ok(format!("Session {id}: {}", run.status()))
        }
    }
}

fn list(ctx: &ToolContext) -> ToolOutput {
    let runs = ctx.processes.list();
    if runs.is_empty() {
        return ToolOutput::ok("No running or recent sessions.");
    }
    let lines: Vec<String> = runs
        .iter()
        .rev()
        .map(|(id, run)| {
            let mut command: String = run.command.chars().take(100).collect();
            if command.len() < run.command.len() {
                command.push('…');
            }
            format!(
                "{id} {:<9} {:>7.1}s :: {command}",
                run.status().word(),
                run.runtime().as_secs_f64()
            )
        })
        .collect();
    ToolOutput::ok(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_args_follow_openclaw_names_and_explain_mistakes() {
        let a = parse_exec(&json!({"command": "ls", "timeout": 1.5, "background": true})).unwrap();
        assert_eq!(a.timeout, Some(Duration::from_millis(1500)));
        assert!(a.background);
        let a = parse_exec(&json!({"command": "ls", "timeoutMs": 300})).unwrap();
        assert_eq!(a.timeout, Some(Duration::from_millis(300)));
        let a = parse_exec(&json!({"command": "ls", "timeoutSeconds": 2, "yieldMs": 50})).unwrap();
        assert_eq!(a.timeout, Some(Duration::from_secs(2)));
        assert_eq!(a.yield_after, Some(Duration::from_millis(50)));
        for (bad, why) in [
            (json!({}), "missing required parameter `command`"),
            (json!({"command": "  "}), "`command` is empty"),
            (json!({"command": "ls", "timeout": 0}), "more than 0"),
            (json!({"command": "ls", "timeout": -1}), "non-negative"),
            (
                json!({"command": "ls", "env": {"PATH": "/tmp"}}),
                "may not set PATH",
            ),
            (
                json!({"command": "ls", "env": {"LD_PRELOAD": "x"}}),
                "may not set LD_PRELOAD",
            ),
            (
                json!({"command": "ls", "env": {"A": 1}}),
                "`env.A` must be a string",
            ),
        ] {
            let e = parse_exec(&bad).err().unwrap_or_default();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn child_env_is_an_allowlist() {
        let env = child_env(&[("FOO".into(), "bar".into())]);
        assert!(env.iter().any(|(k, _)| k == "PATH"));
        assert!(env.iter().any(|(k, v)| k == "FOO" && v == "bar"));
        for (k, _) in &env {
            assert!(PASSED_ENV.contains(&k.as_str()) || k == "FOO", "{k} leaked");
        }
    }
}
