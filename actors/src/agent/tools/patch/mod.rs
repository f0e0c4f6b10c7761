//! `apply_patch {input}`: change several files at once, all or nothing.
//!
//! `input` is either OpenClaw's patch envelope (`*** Begin Patch` ... `*** End Patch`, see
//! [`envelope`]) or a unified diff of one or more files (see [`unified`]); new files and
//! deletions work in both. Every path, including `a/`/`b/`-stripped diff names and
//! `*** Move to:` targets, resolves like any other tool path ([`super::path::resolve`]).
//!
//! Atomicity: every change of every file is computed in memory first; if any hunk fails,
//! nothing is written. Then every new content is staged to a temporary file beside its
//! target, and only when all are staged are they renamed into place and deletions done. If
//! a rename fails half-way (the disk vanished), the files already replaced are restored
//! from the in-memory originals.

mod envelope;
mod unified;

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use super::args::Args;
use super::fs::{load_text, stage};
use super::path::relative_display;
use super::{Intent, Risk, Tool, ToolContext, ToolOutput, blocking, boxed, schema};
use crate::agent::model::ToolSpec;

pub struct ApplyPatch;

impl Tool for ApplyPatch {
    fn name(&self) -> &'static str {
        "apply_patch"
    }
    fn group(&self) -> &'static str {
        "group:fs"
    }
    fn risk(&self) -> Risk {
        Risk::Medium
    }
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "apply_patch".into(),
            description: "Change files atomically: a `*** Begin Patch` envelope or a unified diff \
                          (add, update, delete, move)."
                .into(),
            parameters: schema(json!({"input": {"type": "string"}}), &["input"]),
        }
    }
    fn call(&self, ctx: ToolContext, args: Value) -> BoxFuture<'static, ToolOutput> {
        boxed(
            "apply_patch",
            blocking("apply_patch", move || apply_patch(&ctx, &args)),
        )
    }
}

/// One file's change, as parsed.
struct Change {
    /// The file changed (for an Add, the file created).
    path: String,
    kind: ChangeKind,
}

enum ChangeKind {
    Add(String),
    /// `verify`: hunks that must apply to the current content and leave it empty (a unified
    /// diff's deletion shows the lines it deletes).
    Delete {
        verify: Option<Body>,
    },
    Update {
        move_to: Option<String>,
        body: Body,
    },
}

/// The hunks of an Update, in either format.
enum Body {
    Unified(unified::Hunks),
    Envelope(Vec<envelope::Chunk>),
}

impl Body {
    fn apply(&self, old: &str) -> Result<String, String> {
        match self {
            Self::Unified(h) => h.apply(old),
            Self::Envelope(chunks) => envelope::apply(chunks, old),
        }
    }
}

fn apply_patch(ctx: &ToolContext, args: &Value) -> ToolOutput {
    let input = match Args::new("apply_patch", args).and_then(|a| a.str("input")) {
        Ok(i) => i,
        Err(e) => return ToolOutput::error(e),
    };
    // Access level first, so a read-only workspace gets that reason, not a parse error.
    if let Err(e) = ctx.check_access(Intent::Write) {
        return ToolOutput::error(format!("apply_patch: {e}"));
    }
    let parsed = if input.trim_start().starts_with(envelope::BEGIN) {
        envelope::parse(input)
    } else {
        unified::parse(input)
    };
    let changes = match parsed {
        Ok(c) => c,
        Err(e) => return ToolOutput::error(format!("apply_patch: {e}; nothing was written")),
    };
    let plan = match Plan::build(ctx, &changes) {
        Ok(p) => p,
        Err(e) => return ToolOutput::error(format!("apply_patch: {e}; nothing was written")),
    };
    match plan.commit() {
        Ok(()) => ToolOutput::ok(plan.summary(ctx)),
        Err(e) => ToolOutput::error(format!(
            "apply_patch: writing failed ({e}); the files already changed were restored"
        )),
    }
}

/// One file's contents before and after the whole patch.
struct FileState {
    before: Option<String>,
    after: Option<String>,
}

/// Every file the patch touches, with its final content, computed before anything is
/// written.
struct Plan {
    files: BTreeMap<PathBuf, FileState>,
    /// `A`/`M`/`D` lines in patch order, for the summary.
    log: Vec<(char, PathBuf)>,
}

impl Plan {
    fn build(ctx: &ToolContext, changes: &[Change]) -> Result<Self, String> {
        let mut plan = Self {
            files: BTreeMap::new(),
            log: Vec::new(),
        };
        for change in changes {
            let path = plan.load(ctx, &change.path)?;
            let current = plan.files[&path].after.clone();
            match &change.kind {
                ChangeKind::Add(content) => {
                    if current.is_some() {
                        return Err(format!(
                            "cannot add {}: it already exists (delete it earlier in the patch, \
                             or update it)",
                            change.path
                        ));
                    }
                    plan.set(path, 'A', Some(content.clone()));
                }
                ChangeKind::Delete { verify } => {
                    let Some(current) = current else {
                        return Err(format!("cannot delete {}: no such file", change.path));
                    };
                    if let Some(body) = verify {
                        let rest = body
                            .apply(&current)
                            .map_err(|e| format!("{}: {e}", change.path))?;
                        if !rest.is_empty() {
                            return Err(format!(
                                "cannot delete {}: the diff does not remove all of its lines",
                                change.path
                            ));
                        }
                    }
                    plan.set(path, 'D', None);
                }
                ChangeKind::Update { move_to, body } => {
                    let Some(current) = current else {
                        return Err(format!("cannot update {}: no such file", change.path));
                    };
                    let updated = body
                        .apply(&current)
                        .map_err(|e| format!("{}: {e}", change.path))?;
                    match move_to {
                        Some(to) => {
                            let dest = plan.load(ctx, to)?;
                            if dest != path && plan.files[&dest].after.is_some() {
                                return Err(format!(
                                    "cannot move {} to {to}: it exists",
                                    change.path
                                ));
                            }
                            plan.set(path, 'D', None);
                            plan.set(dest, 'A', Some(updated));
                        }
                        None => plan.set(path, 'M', Some(updated)),
                    }
                }
            }
        }
        Ok(plan)
    }

    /// Resolve `requested` for writing and remember its current content.
    fn load(&mut self, ctx: &ToolContext, requested: &str) -> Result<PathBuf, String> {
        let path = ctx
            .resolve(requested, Intent::Write)
            .map_err(|e| e.to_string())?;
        if !self.files.contains_key(&path) {
            let before = match std::fs::symlink_metadata(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                _ => Some(load_text(ctx, "apply_patch", requested)?.1),
            };
            self.files.insert(
                path.clone(),
                FileState {
                    after: before.clone(),
                    before,
                },
            );
        }
        Ok(path)
    }

    fn set(&mut self, path: PathBuf, op: char, after: Option<String>) {
        self.files.get_mut(&path).expect("loaded first").after = after;
        self.log.push((op, path));
    }

    /// Stage every new content, then rename and delete; restore on a half-way failure.
    fn commit(&self) -> io::Result<()> {
        let changed: Vec<_> = self
            .files
            .iter()
            .filter(|(_, f)| f.before != f.after)
            .collect();
        let mut staged: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
        let cleanup = |staged: &[(PathBuf, Option<PathBuf>)]| {
            for tmp in staged.iter().filter_map(|(_, t)| t.as_ref()) {
                let _ = std::fs::remove_file(tmp);
            }
        };
        for (path, state) in &changed {
            let tmp = match &state.after {
                Some(content) => {
                    let staged_file = path
                        .parent()
                        .map_or(Ok(()), std::fs::create_dir_all)
                        .and_then(|()| stage(path, content.as_bytes()));
                    match staged_file {
                        Ok(t) => Some(t),
                        Err(e) => {
                            cleanup(&staged);
                            return Err(e);
                        }
                    }
                }
                None => None,
            };
            staged.push(((*path).clone(), tmp));
        }
        for (i, (path, tmp)) in staged.iter().enumerate() {
            let result = match tmp {
                Some(tmp) => std::fs::rename(tmp, path),
                None => std::fs::remove_file(path),
            };
            if let Err(e) = result {
                self.restore(&staged[..i]);
                cleanup(&staged[i..]);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Put back the original content of files already replaced or deleted.
    fn restore(&self, done: &[(PathBuf, Option<PathBuf>)]) {
        for (path, _) in done {
            let result = match &self.files[path].before {
                Some(content) => super::fs::write_atomic(path, content.as_bytes()),
                None => std::fs::remove_file(path),
            };
            if let Err(e) = result {
                tracing::warn!(path = %path.display(), error = %e, "apply_patch could not restore a file");
            }
        }
    }

    fn summary(&self, ctx: &ToolContext) -> String {
        let mut out = String::from("Success. Updated the following files:");
        for (op, path) in &self.log {
            out.push_str(&format!(
                "\n{op} {}",
                relative_display(&ctx.workspace, path)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::tools::WorkspaceAccess;

    fn ctx() -> (tempfile::TempDir, ToolContext) {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ToolContext::new(dir.path(), WorkspaceAccess::ReadWrite);
        (dir, ctx)
    }

    fn run(ctx: &ToolContext, input: &str) -> ToolOutput {
        apply_patch(ctx, &json!({ "input": input }))
    }

    #[test]
    fn unified_multi_file_with_new_and_deleted_files() {
        let (dir, ctx) = ctx();
        std::fs::write(dir.path().join("a.txt"), "one\ntwo\nthree\n").unwrap();
        std::fs::write(dir.path().join("gone.txt"), "bye\n").unwrap();
        let diff = "diff --git a/a.txt b/a.txt\nindex 1..2 100644\n--- a/a.txt\n+++ b/a.txt\n\
                    @@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n\
                    --- /dev/null\n+++ b/sub/new.txt\n@@ -0,0 +1,2 @@\n+hello\n+--- not a header\n\
                    --- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n";
        let out = run(&ctx, diff);
        assert!(!out.is_error, "{}", out.content);
        assert_eq!(
            out.content,
            "Success. Updated the following files:\nM a.txt\nA sub/new.txt\nD gone.txt"
        );
        let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap();
        assert_eq!(read("a.txt"), "one\nTWO\nthree\n");
        assert_eq!(read("sub/new.txt"), "hello\n--- not a header\n");
        assert!(!dir.path().join("gone.txt").exists());
    }

    #[test]
    fn envelope_update_move_add_delete() {
        let (dir, ctx) = ctx();
        std::fs::write(dir.path().join("x.rs"), "fn main() {\n    old();\n}\n").unwrap();
        std::fs::write(dir.path().join("del.txt"), "d\n").unwrap();
        let out = run(
            &ctx,
            "*** Begin Patch\n*** Update File: x.rs\n*** Move to: y.rs\n@@ fn main() {\n-    old();\n+    new();\n\
             *** Add File: n.txt\n+n\n*** Delete File: del.txt\n*** End Patch",
        );
        assert!(!out.is_error, "{}", out.content);
        assert!(!dir.path().join("x.rs").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("y.rs")).unwrap(),
            "fn main() {\n    new();\n}\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("n.txt")).unwrap(),
            "n\n"
        );
        assert!(!dir.path().join("del.txt").exists());
    }

    #[test]
    fn a_failing_hunk_writes_nothing() {
        let (dir, ctx) = ctx();
        std::fs::write(dir.path().join("a.txt"), "a\n").unwrap();
        std::fs::write(dir.path().join("b.txt"), "b\n").unwrap();
        let out = run(
            &ctx,
            "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-a\n+A\n--- a/b.txt\n+++ b/b.txt\n@@ -1 +1 @@\n-zzz\n+B\n",
        );
        assert!(out.is_error);
        assert!(
            out.content.contains("b.txt") && out.content.contains("nothing was written"),
            "{}",
            out.content
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.txt")).unwrap(),
            "a\n"
        );
        let entries = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(entries, 2, "no temporary files left behind");
    }

    #[test]
    fn refusals_name_the_reason() {
        let (dir, ctx) = ctx();
        std::fs::write(dir.path().join("a.txt"), "a\n").unwrap();
        let out = run(
            &ctx,
            "*** Begin Patch\n*** Add File: a.txt\n+x\n*** End Patch",
        );
        assert!(
            out.is_error && out.content.contains("already exists"),
            "{}",
            out.content
        );
        let out = run(
            &ctx,
            "*** Begin Patch\n*** Add File: ../evil\n+x\n*** End Patch",
        );
        assert!(
            out.is_error && out.content.contains("climbs out"),
            "{}",
            out.content
        );
        let out = run(
            &ctx,
            "--- a/../../etc/passwd\n+++ b/../../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n",
        );
        assert!(
            out.is_error && out.content.contains("climbs out"),
            "{}",
            out.content
        );
        let out = run(&ctx, "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n-a\n+b\n");
        assert!(
            out.is_error && out.content.contains("counts"),
            "{}",
            out.content
        );
        let out = run(&ctx, "just words");
        assert!(
            out.is_error && out.content.contains("no file sections"),
            "{}",
            out.content
        );
        let ro = ToolContext::new(dir.path(), WorkspaceAccess::ReadOnly);
        let out = run(&ro, "*** Begin Patch\n*** Add File: b\n+x\n*** End Patch");
        assert!(
            out.is_error && out.content.contains("read-only"),
            "{}",
            out.content
        );
    }
}
