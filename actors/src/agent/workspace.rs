//! The agent workspace: the files the agent reads about itself, the user, its tools and
//! memory, created on first use (unless `agents.defaults.skipBootstrap`) and by
//! `pincer onboard`.

use std::path::Path;

/// Workspace files and their initial text. Short on purpose: every byte of them is sent
/// to the model with each turn.
pub const DEFAULT_FILES: &[(&str, &str)] = &[
    (
        "AGENTS.md",
        "# Agents\n\nHow the agents in this workspace work together. Keep it short: it is sent to the model.\n",
    ),
    (
        "SOUL.md",
        "# Soul\n\nWho the assistant is: tone, values, what it never does.\n",
    ),
    (
        "USER.md",
        "# User\n\nWhat the assistant should know about you (name, time zone, preferences).\n",
    ),
    (
        "IDENTITY.md",
        "# Identity\n\nThe assistant's name and how it introduces itself.\n",
    ),
    (
        "TOOLS.md",
        "# Tools\n\nNotes on the tools available here and how you like them used.\n",
    ),
    (
        "MEMORY.md",
        "# Memory\n\nLong-lived facts the assistant keeps. Daily notes go in memory/.\n",
    ),
    // Empty on purpose: an empty HEARTBEAT.md means heartbeats make no model call.
    ("HEARTBEAT.md", ""),
];

/// The files injected into the system prompt, in order. MEMORY.md only in the main
/// (private) session: it may hold what the user would not want read out in a group.
pub const PROMPT_FILES: &[&str] = &[
    "AGENTS.md",
    "SOUL.md",
    "IDENTITY.md",
    "USER.md",
    "TOOLS.md",
    "MEMORY.md",
];

/// Creates the workspace and whichever default files are missing (never overwrites).
/// Returns the files it wrote.
pub fn ensure(dir: &Path) -> std::io::Result<Vec<&'static str>> {
    std::fs::create_dir_all(dir.join("memory"))?;
    let mut written = Vec::new();
    for (name, text) in DEFAULT_FILES {
        let path = dir.join(name);
        if !path.exists() {
            std::fs::write(&path, text)?;
            written.push(*name);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ensure_creates_missing_files_and_keeps_edits() {
        let d = tempfile::tempdir().unwrap();
        let ws = d.path().join("ws");
        let first = super::ensure(&ws).unwrap();
        assert_eq!(first.len(), super::DEFAULT_FILES.len());
        std::fs::write(ws.join("USER.md"), "mine").unwrap();
        assert!(super::ensure(&ws).unwrap().is_empty());
        assert_eq!(std::fs::read_to_string(ws.join("USER.md")).unwrap(), "mine");
        assert!(ws.join("memory").is_dir());
    }
}
