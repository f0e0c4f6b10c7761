//! The pure half of file-watch triggers: `triggers.watch[]` resolved, which changed paths
//! count, and the message an agent gets for a batch of changes. No I/O here beyond one
//! `is_dir` in [`relevant`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// `debounceMs` when unset.
pub const DEFAULT_DEBOUNCE_MS: u64 = 2000;
/// Paths named in one message at most; the rest are counted ("and 3 more").
pub const MAX_LISTED: usize = 20;

/// One `triggers.watch[]` entry, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerSpec {
    pub id: String,
    /// Absolute (`~/` and relative paths are resolved at load).
    pub path: PathBuf,
    pub agent: String,
    pub session_key: String,
    /// `{{files}}`, `{{count}}`, `{{path}}` and `{{id}}` are filled in; `None`: the default.
    pub message: Option<String>,
    pub debounce: Duration,
    pub recursive: bool,
    /// Only paths ending with one of these count (`*.md` and `.md` mean the same); empty:
    /// every path.
    pub include: Vec<String>,
    /// The path is (in) the agent's own workspace, or holds it: the agent's own writes
    /// must not wake it again (changes during its turn, and for `debounce` after, are
    /// dropped).
    pub self_watch: bool,
}

/// Reads `triggers.watch` from the whole config. `agents` are the configured agents'
/// ids and workspaces; `home` expands `~/`; relative paths are taken from `base` (the
/// state directory).
pub fn resolve(
    config: &Value,
    default_agent: &str,
    agents: &[(String, PathBuf)],
    home: Option<&Path>,
    base: &Path,
) -> Result<Vec<TriggerSpec>, String> {
    let Some(list) = config.pointer("/triggers/watch") else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or("triggers.watch must be a list of {id, path, ...}")?;
    let mut out: Vec<TriggerSpec> = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let at = format!("triggers.watch.{i}");
        let string = |key: &str| -> Result<Option<String>, String> {
            match t.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
                Some(Value::String(_)) => Err(format!("{at}.{key} is empty")),
                Some(other) => Err(format!("{at}.{key}: expected a string, found {other}")),
            }
        };
        let id = string("id")?.ok_or_else(|| {
            format!("{at}.id is required: a short name for the trigger, like \"inbox\"")
        })?;
        if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "{at}.id {id:?} may only hold letters, digits, - and _ (it is part of a session key)"
            ));
        }
        if out.iter().any(|o| o.id == id) {
            return Err(format!("{at}.id: trigger {id:?} is listed twice"));
        }
        let raw = string("path")?
            .ok_or_else(|| format!("{at}.path is required: the folder (or file) to watch"))?;
        let path = match (raw.strip_prefix("~/"), home) {
            (Some(rest), Some(h)) => h.join(rest),
            _ if Path::new(&raw).is_absolute() => PathBuf::from(&raw),
            _ => base.join(&raw),
        };
        let agent = string("agentId")?.unwrap_or_else(|| default_agent.to_owned());
        let Some((_, workspace)) = agents.iter().find(|(a, _)| *a == agent) else {
            let ids: Vec<&str> = agents.iter().map(|(a, _)| a.as_str()).collect();
            return Err(format!(
                "{at}.agentId {agent:?} is not a configured agent (agents: {})",
                ids.join(", ")
            ));
        };
        let session_key =
            string("sessionKey")?.unwrap_or_else(|| format!("agent:{agent}:watch:{id}"));
        let debounce_ms = match t.get("debounceMs") {
            None | Some(Value::Null) => DEFAULT_DEBOUNCE_MS,
            Some(v) => v.as_u64().ok_or_else(|| {
                format!("{at}.debounceMs: expected milliseconds (a whole number), found {v}")
            })?,
        };
        let recursive = match t.get("recursive") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(v) => return Err(format!("{at}.recursive: expected true or false, found {v}")),
        };
        let include = match t.get("include") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(|s| s.trim_start_matches('*').to_owned())
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| {
                            format!("{at}.include: expected suffixes like \"*.md\", found {v}")
                        })
                })
                .collect::<Result<_, _>>()?,
            Some(v) => {
                return Err(format!(
                    "{at}.include: expected a list of suffixes like [\"*.md\"], found {v}"
                ));
            }
        };
        let self_watch = path.starts_with(workspace) || workspace.starts_with(&path);
        out.push(TriggerSpec {
            id,
            path,
            agent,
            session_key,
            message: string("message")?,
            debounce: Duration::from_millis(debounce_ms),
            recursive,
            include,
            self_watch,
        });
    }
    Ok(out)
}

/// The path of a change relative to the watched path, `None` when it does not count:
/// outside the watched path, the watched path itself, an editor's scratch file
/// (`*.swp`, `*~`, `.#*`, `4913`), or not matching `include`.
pub fn relevant(spec: &TriggerSpec, changed: &Path) -> Option<String> {
    let rel = match changed.strip_prefix(&spec.path) {
        Ok(r) if r.as_os_str().is_empty() => {
            // A watched file changed (watching a file, not a folder): name it.
            if spec.path.is_dir() {
                return None;
            }
            PathBuf::from(spec.path.file_name()?)
        }
        Ok(r) => r.to_owned(),
        Err(_) => return None,
    };
    let name = rel.file_name()?.to_string_lossy();
    let scratch = name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.starts_with(".#")
        || name == "4913";
    if scratch {
        return None;
    }
    let text = rel.to_string_lossy().into_owned();
    if !spec.include.is_empty() && !spec.include.iter().any(|s| text.ends_with(s.as_str())) {
        return None;
    }
    Some(text)
}

/// The message for a batch of changed paths (relative, deduplicated by the set). `gone`
/// tells which of them no longer exist (marked "(deleted)").
pub fn message(
    spec: &TriggerSpec,
    changed: &BTreeSet<String>,
    gone: &dyn Fn(&str) -> bool,
) -> String {
    let mut files = String::new();
    for (i, p) in changed.iter().enumerate() {
        if i == MAX_LISTED {
            files.push_str(&format!("\n... and {} more", changed.len() - MAX_LISTED));
            break;
        }
        if i > 0 {
            files.push('\n');
        }
        files.push_str("- ");
        files.push_str(p);
        if gone(p) {
            files.push_str(" (deleted)");
        }
    }
    let template = spec
        .message
        .as_deref()
        .unwrap_or("Files changed in the watched folder {{path}} (trigger {{id}}):\n{{files}}");
    template
        .replace("{{files}}", &files)
        .replace("{{count}}", &changed.len().to_string())
        .replace("{{path}}", &spec.path.display().to_string())
        .replace("{{id}}", &spec.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn agents() -> Vec<(String, PathBuf)> {
        vec![
            ("main".into(), PathBuf::from("/state/workspace")),
            ("ops".into(), PathBuf::from("/state/workspace-ops")),
        ]
    }

    fn one(v: Value) -> Result<TriggerSpec, String> {
        let cfg = json!({"triggers": {"watch": [v]}});
        resolve(
            &cfg,
            "main",
            &agents(),
            Some(Path::new("/home/u")),
            Path::new("/state"),
        )
        .map(|mut l| l.remove(0))
    }

    #[test]
    fn defaults_paths_and_agents_resolve() {
        let t = one(json!({"id": "inbox", "path": "~/Inbox"})).unwrap();
        assert_eq!(t.path, PathBuf::from("/home/u/Inbox"));
        assert_eq!(t.agent, "main");
        assert_eq!(t.session_key, "agent:main:watch:inbox");
        assert_eq!(t.debounce, Duration::from_millis(2000));
        assert!(t.recursive);
        assert!(!t.self_watch);
        let t = one(json!({"id": "w", "path": "workspace/notes", "agentId": "main",
            "debounceMs": 100, "recursive": false, "include": ["*.md", ".txt"], "sessionKey": "agent:main:notes"}))
        .unwrap();
        assert_eq!(t.path, PathBuf::from("/state/workspace/notes"));
        assert!(t.self_watch, "inside the agent's workspace");
        assert_eq!(t.include, [".md", ".txt"]);
        assert_eq!(t.session_key, "agent:main:notes");
        assert!(!t.recursive);
        assert!(
            one(json!({"id": "all", "path": "/state"}))
                .unwrap()
                .self_watch,
            "holds it"
        );
        assert!(
            resolve(&json!({}), "main", &agents(), None, Path::new("/"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn mistakes_name_the_key() {
        let e = one(json!({"path": "/x"})).unwrap_err();
        assert!(e.contains("triggers.watch.0.id is required"), "{e}");
        let e = one(json!({"id": "a b", "path": "/x"})).unwrap_err();
        assert!(e.contains("letters, digits"), "{e}");
        let e = one(json!({"id": "a", "path": "/x", "agentId": "nobody"})).unwrap_err();
        assert!(
            e.contains("not a configured agent (agents: main, ops)"),
            "{e}"
        );
        let e = one(json!({"id": "a", "path": "/x", "debounceMs": "2s"})).unwrap_err();
        assert!(e.contains("debounceMs"), "{e}");
        let cfg =
            json!({"triggers": {"watch": [{"id": "a", "path": "/x"}, {"id": "a", "path": "/y"}]}});
        let e = resolve(&cfg, "main", &agents(), None, Path::new("/")).unwrap_err();
        assert!(e.contains("listed twice"), "{e}");
    }

    #[test]
    fn changes_are_relative_filtered_and_listed_with_a_cap() {
        let mut t = one(json!({"id": "in", "path": "/data/in", "include": ["*.csv"]})).unwrap();
        assert_eq!(
            relevant(&t, Path::new("/data/in/a/b.csv")).as_deref(),
            Some("a/b.csv")
        );
        assert_eq!(relevant(&t, Path::new("/data/in/b.txt")), None);
        assert_eq!(relevant(&t, Path::new("/elsewhere/x.csv")), None);
        t.include.clear();
        assert_eq!(relevant(&t, Path::new("/data/in/.b.txt.swp")), None);
        assert_eq!(relevant(&t, Path::new("/data/in/b.txt~")), None);

        let set: BTreeSet<String> = (0..25).map(|i| format!("f{i:02}.txt")).collect();
        let m = message(&t, &set, &|p| p == "f01.txt");
        assert!(m.starts_with("Files changed in the watched folder /data/in (trigger in):\n- f00.txt\n- f01.txt (deleted)\n"), "{m}");
        assert!(m.ends_with("- f19.txt\n... and 5 more"), "{m}");
        t.message = Some("{{count}} new in {{id}}:\n{{files}}".into());
        let two: BTreeSet<String> = ["a".to_owned(), "b".to_owned()].into();
        assert_eq!(message(&t, &two, &|_| false), "2 new in in:\n- a\n- b");
    }
}
