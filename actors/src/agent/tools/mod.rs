//! The agent's built-in tools, with OpenClaw's names and parameters, and the tool policy.
//!
//! | tool          | group             | risk   | module      |
//! |---------------|-------------------|--------|-------------|
//! | `read`        | `group:fs`        | low    | [`fs`]      |
//! | `write`       | `group:fs`        | medium | [`fs`]      |
//! | `edit`        | `group:fs`        | medium | [`fs`]      |
//! | `apply_patch` | `group:fs`        | medium | [`patch`]   |
//! | `exec`        | `group:runtime`   | high   | [`exec`]    |
//! | `process`     | `group:runtime`   | high   | [`exec`]    |
//! | `web_fetch`   | `group:web`       | high   | [`web`]     |
//! | `message`     | `group:messaging` | high   | [`message`] |
//! | `sessions_spawn` | `group:sessions` | medium | [`sessions`] |
//! | `sessions_send`  | `group:sessions` | medium | [`sessions`] |
//! | `sessions_list`  | `group:sessions` | low    | [`sessions`] |
//! | `sessions_history` | `group:sessions` | low  | [`sessions`] |
//! | `agents_list`    | `group:agents`   | low    | [`sessions`] |
//!
//! A tool is a stateless value; what a call may touch comes in its [`ToolContext`]: the
//! workspace root every path resolves in ([`path::resolve`]), the workspace access level,
//! the session's background runs ([`ProcessTable`]) and the [`Limits`]. A call never panics
//! and never returns `Err`: a bad argument, a refused path or a failed command is a
//! [`ToolOutput`] with `is_error` and a message that says what was wrong, so the model can
//! correct itself.
//!
//! Which tools a session is offered is decided by [`policy::ToolPolicy`], not here.

mod args;
pub mod exec;
pub mod fs;
pub mod message;
pub mod patch;
pub mod path;
pub mod policy;
pub mod process;
pub mod sessions;
pub mod web;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::agent::model::ToolSpec;
pub use path::{Intent, PathError};
pub use policy::{Profile, ToolPolicy};
pub use process::ProcessTable;

/// How much harm a call can do; the lead's approval logic keys on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Reads inside the workspace.
    Low,
    /// Changes files inside the workspace.
    Medium,
    /// Runs programs, kills them, deletes, or reaches the network.
    High,
}

/// What the file tools may do in the workspace (OpenClaw's sandbox `workspaceAccess`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum WorkspaceAccess {
    /// Every file tool, and `exec`, is refused.
    #[serde(rename = "none")]
    None,
    /// `read` only; writes are refused, and so is `exec` (a shell can write anywhere, so
    /// a read-only workspace cannot be kept read-only with it).
    #[serde(rename = "ro")]
    ReadOnly,
    #[default]
    #[serde(rename = "rw")]
    ReadWrite,
}

impl WorkspaceAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ReadOnly => "ro",
            Self::ReadWrite => "rw",
        }
    }
}

/// Caps on what one call may cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// `exec` without `timeout`: killed after this (default 120 s).
    pub exec_timeout: Duration,
    /// The largest `timeout` `exec` accepts, and the life limit of a background run
    /// (default 1800 s, OpenClaw's default exec timeout).
    pub exec_max_timeout: Duration,
    /// Tool output beyond this is cut, with a note saying how much (default 64 KiB).
    pub max_output_bytes: usize,
    /// `read`/`edit` refuse larger files, naming the size (default 1 MiB).
    pub read_max_bytes: u64,
    /// `web_fetch` stops reading the body here (default 2,000,000 bytes, OpenClaw's
    /// `tools.web.fetch.maxResponseBytes`).
    pub fetch_max_bytes: usize,
    /// `web_fetch` gives up after this (default 30 s, OpenClaw's `timeoutSeconds`).
    pub fetch_timeout: Duration,
    /// `web_fetch` may reach loopback, private and link-local addresses. Off by default
    /// (OpenClaw blocks private/internal hosts); tests and LAN-only setups turn it on.
    pub fetch_allow_private: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            exec_timeout: Duration::from_secs(120),
            exec_max_timeout: Duration::from_secs(1800),
            max_output_bytes: 64 * 1024,
            read_max_bytes: 1024 * 1024,
            fetch_max_bytes: 2_000_000,
            fetch_timeout: Duration::from_secs(30),
            fetch_allow_private: false,
        }
    }
}

/// Where `exec` runs when the session is sandboxed: a container owned by a SandboxActor.
pub trait SandboxRunner: Send + Sync + 'static {
    /// Runs a command in the container; `Err` is the sandbox failing (daemon down,
    /// circuit open...), not the command.
    fn exec(
        &self,
        req: pincer_sandbox::docker::ExecRequest,
    ) -> BoxFuture<'static, Result<pincer_sandbox::docker::ExecResult, String>>;
    /// Starts a command in the container in the background (`exec background:true` /
    /// `yieldMs`, followed by `process`), returning once it runs; killed at
    /// `req.timeout`, or when the returned process is dropped. `Err` is the sandbox
    /// failing or unable to run background commands (the default).
    fn spawn(
        &self,
        req: pincer_sandbox::docker::ExecRequest,
    ) -> BoxFuture<'static, Result<pincer_sandbox::execd::BackgroundProcess, String>> {
        let _ = req;
        Box::pin(async { Err("this sandbox cannot run background commands".to_owned()) })
    }
    /// Which container, for messages.
    fn describe(&self) -> String;
}

/// Tools a sandboxed session may not use: they would act outside the container (the
/// host's network for `web_fetch`), defeating its isolation.
pub const DENIED_IN_SANDBOX: &[&str] = &["web_fetch"];

/// What one call may touch.
#[derive(Clone)]
pub struct ToolContext {
    /// The root all paths resolve in (a sandboxed session: the host side of the
    /// container's `/workspace`).
    pub workspace: PathBuf,
    pub access: WorkspaceAccess,
    /// Background `exec` runs of this session.
    pub processes: Arc<ProcessTable>,
    pub limits: Limits,
    /// Set when the session is sandboxed: `exec` runs in this container.
    pub sandbox: Option<Arc<dyn SandboxRunner>>,
    /// The gateway's channel accounts, for `message` (None: nothing to send with).
    pub outbound: Option<message::OutboundCtx>,
    /// The calling session and the delegation machinery, for the session tools.
    pub sessions: Option<sessions::SessionsCtx>,
}

impl ToolContext {
    /// A context with default limits and a fresh process table.
    pub fn new(workspace: impl Into<PathBuf>, access: WorkspaceAccess) -> Self {
        Self {
            workspace: workspace.into(),
            access,
            processes: Arc::new(ProcessTable::new()),
            limits: Limits::default(),
            sandbox: None,
            outbound: None,
            sessions: None,
        }
    }

    /// Whether the access level allows `intent` at all.
    pub fn check_access(&self, intent: Intent) -> Result<(), PathError> {
        match (self.access, intent) {
            (WorkspaceAccess::None, _) => Err(PathError::AccessDenied {
                access: "none",
                what: "using workspace files",
            }),
            (WorkspaceAccess::ReadOnly, Intent::Write) => Err(PathError::AccessDenied {
                access: "ro (read-only)",
                what: "changing files",
            }),
            _ => Ok(()),
        }
    }

    /// [`path::resolve`] after [`Self::check_access`].
    pub fn resolve(&self, requested: &str, intent: Intent) -> Result<PathBuf, PathError> {
        self.check_access(intent)?;
        path::resolve(&self.workspace, requested, intent)
    }
}

/// The result of one call, as the model will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    pub content: String,
    pub is_error: bool,
}

impl ToolOutput {
    pub fn ok(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            is_error: false,
        }
    }

    pub fn error(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            is_error: true,
        }
    }
}

/// One tool the model may call.
pub trait Tool: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// OpenClaw's group: `group:fs`, `group:runtime`, `group:web` or `group:messaging`.
    fn group(&self) -> &'static str;
    fn risk(&self) -> Risk;
    /// Name, one-line description and JSON Schema of the parameters.
    fn spec(&self) -> ToolSpec;
    /// Run the call. Never panics; bad arguments give an `is_error` output saying what is
    /// wrong.
    fn call(&self, ctx: ToolContext, args: serde_json::Value) -> BoxFuture<'static, ToolOutput>;
}

/// The built-in tools, in the order they are offered.
pub fn builtin() -> Vec<Arc<dyn Tool>> {
    vec![
        Arc::new(fs::Read),
        Arc::new(fs::Write),
        Arc::new(fs::Edit),
        Arc::new(patch::ApplyPatch),
        Arc::new(exec::Exec),
        Arc::new(exec::Process),
        Arc::new(web::WebFetch),
        Arc::new(message::Message),
        Arc::new(sessions::SessionsSpawn),
        Arc::new(sessions::SessionsSend),
        Arc::new(sessions::SessionsList),
        Arc::new(sessions::SessionsHistory),
        Arc::new(sessions::AgentsList),
    ]
}

/// The built-in tool called `name` (OpenClaw aliases `bash` and `apply-patch` accepted).
pub fn find(name: &str) -> Option<Arc<dyn Tool>> {
    let name = policy::normalize_tool_name(name);
    builtin().into_iter().find(|t| t.name() == name)
}

/// Box a call's future, turning a panic inside it into an error output.
pub(crate) fn boxed(
    tool: &'static str,
    fut: impl Future<Output = ToolOutput> + Send + 'static,
) -> BoxFuture<'static, ToolOutput> {
    std::panic::AssertUnwindSafe(fut)
        .catch_unwind()
        .map(move |r| {
            r.unwrap_or_else(|_| ToolOutput::error(format!("{tool}: internal error (panicked)")))
        })
        .boxed()
}

/// Run blocking file work off the async threads; a panic becomes an error output.
pub(crate) async fn blocking(
    tool: &'static str,
    f: impl FnOnce() -> ToolOutput + Send + 'static,
) -> ToolOutput {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| ToolOutput::error(format!("{tool}: internal error: {e}")))
}

/// `text` cut to at most `max` bytes (on a char boundary), with a note saying how many
/// bytes were cut.
pub(crate) fn cap_text(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.len() - end;
    let mut out = text;
    out.truncate(end);
    out.push_str(&format!("\n[output truncated: {cut} more bytes cut]"));
    out
}

/// A JSON Schema object with `properties` and `required`.
pub(crate) fn schema(properties: serde_json::Value, required: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": properties,
        "required": required,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_groups_and_risks() {
        let tools = builtin();
        let names: Vec<_> = tools.iter().map(|t| t.name()).collect();
        assert_eq!(
            names,
            [
                "read",
                "write",
                "edit",
                "apply_patch",
                "exec",
                "process",
                "web_fetch",
                "message",
                "sessions_spawn",
                "sessions_send",
                "sessions_list",
                "sessions_history",
                "agents_list"
            ]
        );
        for t in &tools {
            assert_eq!(t.spec().name, t.name());
            let expected = policy::group_members(t.group()).unwrap();
            assert!(
                expected.contains(&t.name()),
                "{} not in {}",
                t.name(),
                t.group()
            );
        }
        assert_eq!(find("read").unwrap().risk(), Risk::Low);
        assert_eq!(find("write").unwrap().risk(), Risk::Medium);
        assert_eq!(find("bash").unwrap().name(), "exec");
        assert_eq!(find("exec").unwrap().risk(), Risk::High);
        assert_eq!(find("web_fetch").unwrap().risk(), Risk::High);
        assert_eq!(find("message").unwrap().risk(), Risk::High);
        assert!(find("nope").is_none());
    }

    #[test]
    fn cap_text_notes_how_much_was_cut() {
        assert_eq!(cap_text("short".into(), 10), "short");
        let out = cap_text("héllo world".into(), 2);
        assert_eq!(out, "h\n[output truncated: 11 more bytes cut]");
        let out = cap_text("a".repeat(100), 10);
        assert!(out.starts_with(&"a".repeat(10)));
        assert!(
            out.ends_with("[output truncated: 90 more bytes cut]"),
            "{out}"
        );
    }

    #[test]
    fn access_levels_gate_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let none = ToolContext::new(dir.path(), WorkspaceAccess::None);
        let e = none.resolve("a", Intent::Read).unwrap_err();
        assert!(e.to_string().contains("workspace access is none"), "{e}");
        let ro = ToolContext::new(dir.path(), WorkspaceAccess::ReadOnly);
        assert!(ro.resolve("a", Intent::Read).is_ok());
        let e = ro.resolve("a", Intent::Write).unwrap_err();
        assert!(e.to_string().contains("read-only"), "{e}");
        let rw = ToolContext::new(dir.path(), WorkspaceAccess::ReadWrite);
        assert!(rw.resolve("a", Intent::Write).is_ok());
        assert_eq!(
            serde_json::from_str::<WorkspaceAccess>("\"ro\"").unwrap(),
            WorkspaceAccess::ReadOnly
        );
    }
}
