//! `read`, `write` and `edit`: the file tools, with the parameters of OpenClaw's
//! (pi-coding-agent's) tools: `read {path, offset?, limit?}` (lines, `offset` 1-based),
//! `write {path, content}`, `edit {path, oldText, newText}`.
//!
//! Writes are atomic: the new content goes to a temporary file beside the target, is synced,
//! and renamed over it, so a reader never sees half a file and a crash leaves the old one.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use super::args::Args;
use super::path::relative_display;
use super::{Intent, Risk, Tool, ToolContext, ToolOutput, blocking, boxed, schema};
use crate::agent::model::ToolSpec;

/// Lines `read` returns when no `limit` is given (pi-coding-agent's default).
pub const READ_DEFAULT_LINES: usize = 2000;

pub struct Read;
pub struct Write;
pub struct Edit;

impl Tool for Read {
    fn name(&self) -> &'static str {
        "read"
    }
    fn group(&self) -> &'static str {
        "group:fs"
    }
    fn risk(&self) -> Risk {
        Risk::Low
    }
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "read".into(),
            description: "Read a text file in the workspace.".into(),
            parameters: schema(
                json!({
                    "path": {"type": "string"},
                    "offset": {"type": "integer", "description": "first line, 1-based"},
                    "limit": {"type": "integer", "description": "max lines"}
                }),
                &["path"],
            ),
        }
    }
    fn call(&self, ctx: ToolContext, args: Value) -> BoxFuture<'static, ToolOutput> {
        boxed("read", blocking("read", move || read(&ctx, &args)))
    }
}

impl Tool for Write {
    fn name(&self) -> &'static str {
        "write"
    }
    fn group(&self) -> &'static str {
        "group:fs"
    }
    fn risk(&self) -> Risk {
        Risk::Medium
    }
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "write".into(),
            description: "Create or overwrite a file; parent directories are created.".into(),
            parameters: schema(
                json!({"path": {"type": "string"}, "content": {"type": "string"}}),
                &["path", "content"],
            ),
        }
    }
    fn call(&self, ctx: ToolContext, args: Value) -> BoxFuture<'static, ToolOutput> {
        boxed("write", blocking("write", move || write(&ctx, &args)))
    }
}

impl Tool for Edit {
    fn name(&self) -> &'static str {
        "edit"
    }
    fn group(&self) -> &'static str {
        "group:fs"
    }
    fn risk(&self) -> Risk {
        Risk::Medium
    }
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "edit".into(),
            description: "Replace oldText with newText in a file; oldText must occur exactly once."
                .into(),
            parameters: schema(
                json!({
                    "path": {"type": "string"},
                    "oldText": {"type": "string"},
                    "newText": {"type": "string"}
                }),
                &["path", "oldText", "newText"],
            ),
        }
    }
    fn call(&self, ctx: ToolContext, args: Value) -> BoxFuture<'static, ToolOutput> {
        boxed("edit", blocking("edit", move || edit(&ctx, &args)))
    }
}

fn read(ctx: &ToolContext, args: &Value) -> ToolOutput {
    let parsed = (|| {
        let a = Args::new("read", args)?;
        Ok::<_, String>((a.str("path")?, a.opt_u64("offset")?, a.opt_u64("limit")?))
    })();
    let (requested, offset, limit) = match parsed {
        Ok(p) => p,
        Err(e) => return ToolOutput::error(e),
    };
    let text = match load_text(ctx, "read", requested) {
        Ok((_, text)) => text,
        Err(e) => return ToolOutput::error(e),
    };
    if limit == Some(0) {
        return ToolOutput::error("read: `limit` must be at least 1");
    }
    let lines: Vec<&str> = text.lines().collect();
    let total = lines.len();
    if total == 0 {
        return ToolOutput::ok(format!("({requested} is empty)"));
    }
    let first = offset.unwrap_or(1).max(1) as usize;
    if first > total {
        return ToolOutput::error(format!(
            "read: offset {first} is past the end of {requested} ({total} lines)"
        ));
    }
    let want = limit.map_or(READ_DEFAULT_LINES, |l| l as usize);
    let budget = ctx.limits.max_output_bytes;
    let mut out = String::new();
    let mut last = first - 1;
    for line in lines.iter().skip(first - 1).take(want) {
        if !out.is_empty() && out.len() + line.len() + 1 > budget {
            break;
        }
        out.push_str(line);
        out.push('\n');
        last += 1;
    }
    if last == first - 1 {
        // A single line longer than the whole budget: show its start.
        out = super::cap_text(lines[first - 1].to_owned(), budget);
        out.push('\n');
        last = first;
    }
    if last < total {
        out.push_str(&format!(
            "\n[showing lines {first}-{last} of {total}; use offset={} to continue]",
            last + 1
        ));
    }
    ToolOutput::ok(out)
}

fn write(ctx: &ToolContext, args: &Value) -> ToolOutput {
    let parsed = (|| {
        let a = Args::new("write", args)?;
        Ok::<_, String>((a.str("path")?, a.str("content")?))
    })();
    let (requested, content) = match parsed {
        Ok(p) => p,
        Err(e) => return ToolOutput::error(e),
    };
    let path = match ctx.resolve(requested, Intent::Write) {
        Ok(p) => p,
        Err(e) => return ToolOutput::error(format!("write: {e}")),
    };
    if path.is_dir() {
        return ToolOutput::error(format!("write: {requested} is a directory"));
    }
    if let Some(parent) = path.parent()
        && let Err(e) = std::fs::create_dir_all(parent)
    {
        return ToolOutput::error(format!(
            "write: could not create the directories of {requested}: {e}"
        ));
    }
    match write_atomic(&path, content.as_bytes()) {
        Ok(()) => ToolOutput::ok(format!(
            "Wrote {} bytes to {}",
            content.len(),
            relative_display(&ctx.workspace, &path)
        )),
        Err(e) => ToolOutput::error(format!("write: could not write {requested}: {e}")),
    }
}

fn edit(ctx: &ToolContext, args: &Value) -> ToolOutput {
    let parsed = (|| {
        let a = Args::new("edit", args)?;
        Ok::<_, String>((a.str("path")?, a.str("oldText")?, a.str("newText")?))
    })();
    let (requested, old, new) = match parsed {
        Ok(p) => p,
        Err(e) => return ToolOutput::error(e),
    };
    if old.is_empty() {
        return ToolOutput::error("edit: `oldText` is empty; give the exact text to replace");
    }
    // Checked before reading so the refusal names the real reason.
    if let Err(e) = ctx.check_access(Intent::Write) {
        return ToolOutput::error(format!("edit: {e}"));
    }
    let (path, text) = match load_text(ctx, "edit", requested) {
        Ok(p) => p,
        Err(e) => return ToolOutput::error(e),
    };
    let matches = text.matches(old).count();
    match matches {
        1 => {}
        0 => {
            return ToolOutput::error(format!(
                "edit: oldText was not found in {requested} (0 matches); read the file and copy \
                 the text exactly, including whitespace"
            ));
        }
        n => {
            return ToolOutput::error(format!(
                "edit: oldText occurs {n} times in {requested} ({n} matches); include more \
                 surrounding lines so it matches exactly once"
            ));
        }
    }
    let updated = text.replacen(old, new, 1);
    match write_atomic(&path, updated.as_bytes()) {
        Ok(()) => ToolOutput::ok(format!(
            "Edited {}: replaced {} bytes with {} bytes",
            relative_display(&ctx.workspace, &path),
            old.len(),
            new.len()
        )),
        Err(e) => ToolOutput::error(format!("edit: could not write {requested}: {e}")),
    }
}

/// Resolve `requested` for reading and load it as UTF-8 text within `read_max_bytes`.
pub(crate) fn load_text(
    ctx: &ToolContext,
    tool: &str,
    requested: &str,
) -> Result<(PathBuf, String), String> {
    let path = ctx
        .resolve(requested, Intent::Read)
        .map_err(|e| format!("{tool}: {e}"))?;
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(format!(
                "{tool}: there is no file {requested} in the workspace"
            ));
        }
        Err(e) => return Err(format!("{tool}: could not open {requested}: {e}")),
    };
    if meta.is_dir() {
        return Err(format!(
            "{tool}: {requested} is a directory; list it with exec (`ls`)"
        ));
    }
    if !meta.is_file() {
        return Err(format!("{tool}: {requested} is not a regular file"));
    }
    let max = ctx.limits.read_max_bytes;
    if meta.len() > max {
        return Err(format!(
            "{tool}: {requested} is {} bytes, over the {max}-byte limit; look at parts of it \
             with exec (`head`, `tail`, `grep`)",
            meta.len()
        ));
    }
    let bytes =
        std::fs::read(&path).map_err(|e| format!("{tool}: could not read {requested}: {e}"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("{tool}: {requested} is not UTF-8 text (a binary file?)"))?;
    Ok((path, text))
}

/// Replace `path` with `data` atomically: [`stage`] it, then rename it over `path`.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = stage(path, data)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Write `data` to a new temporary file beside `path` (same directory, so a rename is
/// atomic), synced, with the permissions of the file it will replace. Returns its path; the
/// caller renames it over `path` or removes it.
pub(crate) fn stage(path: &Path, data: &[u8]) -> io::Result<PathBuf> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent directory"))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.{}.pincer-tmp",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
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

    #[test]
    fn read_pages_by_lines_and_says_how_to_continue() {
        let (dir, ctx) = ctx();
        let body: String = (1..=10).map(|i| format!("line {i}\n")).collect();
        std::fs::write(dir.path().join("f.txt"), body).unwrap();
        let out = read(&ctx, &json!({"path": "f.txt", "offset": 3, "limit": 2}));
        assert!(!out.is_error);
        assert_eq!(
            out.content,
            "line 3\nline 4\n\n[showing lines 3-4 of 10; use offset=5 to continue]"
        );
        let out = read(&ctx, &json!({"path": "f.txt", "offset": 9}));
        assert_eq!(out.content, "line 9\nline 10\n");
        let out = read(&ctx, &json!({"path": "f.txt", "offset": 11}));
        assert!(
            out.is_error && out.content.contains("past the end"),
            "{out:?}"
        );
    }

    #[test]
    fn read_stops_at_the_output_budget() {
        let (dir, mut ctx) = ctx();
        ctx.limits.max_output_bytes = 20;
        std::fs::write(
            dir.path().join("f.txt"),
            "aaaaaaaaa\nbbbbbbbbb\nccccccccc\n",
        )
        .unwrap();
        let out = read(&ctx, &json!({"path": "f.txt"}));
        assert_eq!(
            out.content,
            "aaaaaaaaa\nbbbbbbbbb\n\n[showing lines 1-2 of 3; use offset=3 to continue]"
        );
    }

    #[test]
    fn read_refuses_directories_binaries_and_missing_files() {
        let (dir, ctx) = ctx();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("bin"), [0xff, 0xfe, 0x00]).unwrap();
        let out = read(&ctx, &json!({"path": "d"}));
        assert!(out.is_error && out.content.contains("is a directory"));
        let out = read(&ctx, &json!({"path": "bin"}));
        assert!(out.is_error && out.content.contains("not UTF-8"));
        let out = read(&ctx, &json!({"path": "nope"}));
        assert!(out.is_error && out.content.contains("no file nope"));
        let out = read(&ctx, &json!({"path": 5}));
        assert!(out.is_error && out.content.contains("`path` must be a string"));
    }

    #[test]
    fn write_atomic_replaces_and_keeps_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, _ctx) = ctx();
        let p = dir.path().join("x.sh");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o755
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }
}
