//! System prompt assembly, with the size of every part, so the cost of a turn is visible
//! (`pincer agents prompt`) and pinned by a test. Token cost is what users of assistant
//! gateways complain about most; every part here earns its bytes.

use std::path::Path;

use serde::Serialize;

use super::model::{Message, ToolSpec};
use super::workspace::PROMPT_FILES;

/// One part of what a turn sends, and its size in characters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Part {
    pub name: String,
    pub chars: usize,
    /// Whether the source was cut at `bootstrapMaxChars`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// The assembled prompt and where its bytes come from.
#[derive(Debug, Clone, Serialize)]
pub struct Prompt {
    pub system: String,
    pub tools: Vec<ToolSpec>,
    pub parts: Vec<Part>,
}

impl Prompt {
    /// Characters of the system prompt plus the serialized tool schemas: the fixed cost of
    /// every model call, before any history.
    pub fn fixed_chars(&self) -> usize {
        self.system.chars().count() + tool_chars(&self.tools)
    }
}

pub fn tool_chars(tools: &[ToolSpec]) -> usize {
    tools
        .iter()
        .map(|t| serde_json::to_string(t).map(|s| s.len()).unwrap_or(0))
        .sum()
}

/// Everything the prompt depends on.
pub struct PromptInput<'a> {
    pub agent_id: &'a str,
    pub agent_name: &'a str,
    pub workspace: &'a Path,
    /// Whether this is the agent's main (private) session: MEMORY.md is only read there.
    pub main_session: bool,
    pub bootstrap_max_chars: usize,
    pub tools: Vec<ToolSpec>,
    /// Current time, as the model should read it.
    pub now: &'a str,
}

const IDENTITY: &str = "You are a personal assistant running in Pincer, a self-hosted gateway. \
Be concise and direct. Use tools when they help; paths are relative to the workspace. \
Ask before anything destructive.";

/// Builds the system prompt: identity, time, then the workspace files (each cut at
/// `bootstrap_max_chars`, empty ones skipped).
pub fn assemble(input: PromptInput<'_>) -> Prompt {
    let mut system = String::new();
    let mut parts = Vec::new();
    let identity = format!(
        "{IDENTITY}\nAgent: {} ({}). Workspace: {}. Now: {}.",
        input.agent_name,
        input.agent_id,
        input.workspace.display(),
        input.now
    );
    parts.push(Part {
        name: "identity".into(),
        chars: identity.chars().count(),
        truncated: false,
    });
    system.push_str(&identity);
    for name in PROMPT_FILES {
        if *name == "MEMORY.md" && !input.main_session {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(input.workspace.join(name)) else {
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let (body, truncated) = cut(text, input.bootstrap_max_chars);
        let section = format!(
            "\n\n## {name}\n{body}{}",
            if truncated { "\n[truncated]" } else { "" }
        );
        parts.push(Part {
            name: format!("workspace/{name}"),
            chars: section.chars().count(),
            truncated,
        });
        system.push_str(&section);
    }
    parts.push(Part {
        name: "skills".into(),
        chars: 0,
        truncated: false,
    });
    parts.push(Part {
        name: "tool schemas".into(),
        chars: tool_chars(&input.tools),
        truncated: false,
    });
    Prompt {
        system,
        tools: input.tools,
        parts,
    }
}

/// The size of the history part: the characters of its texts and tool arguments (the
/// wire framing around them differs by provider).
pub fn history_part(messages: &[Message]) -> Part {
    Part {
        name: format!("history ({} messages)", messages.len()),
        chars: messages.iter().map(message_chars).sum(),
        truncated: false,
    }
}

/// Characters of one message's text and tool-call arguments, without serialising it.
pub fn message_chars(m: &Message) -> usize {
    match m {
        Message::User { content } => content.len(),
        Message::Assistant {
            content,
            tool_calls,
        } => {
            content.len()
                + tool_calls
                    .iter()
                    .map(|c| c.name.len() + c.arguments.to_string().len())
                    .sum::<usize>()
        }
        Message::Tool { name, content, .. } => name.len() + content.len(),
    }
}

fn cut(text: &str, max: usize) -> (&str, bool) {
    match text.char_indices().nth(max) {
        Some((i, _)) => (&text[..i], true),
        None => (text, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default agent (default workspace files, default tool profile) sends a system
    /// prompt plus tool schemas under 8,000 characters. OpenClaw sends about 51 KB for a
    /// one-word message; this keeps Pincer's fixed cost from creeping.
    #[test]
    fn the_default_prompt_stays_under_its_budget() {
        let d = tempfile::tempdir().unwrap();
        crate::agent::workspace::ensure(d.path()).unwrap();
        let spec = crate::agent::config::AgentSpec::new("main", d.path());
        let tools: Vec<ToolSpec> = crate::agent::run::AgentRuntime::allowed_tools(&spec)
            .iter()
            .map(|t| t.spec())
            .collect();
        assert!(
            tools.iter().any(|t| t.name == "exec"),
            "the coding profile has its tools"
        );
        let p = assemble(PromptInput {
            agent_id: "main",
            agent_name: "main",
            workspace: d.path(),
            main_session: true,
            bootstrap_max_chars: spec.bootstrap_max_chars,
            tools,
            now: "2026-11-24 08:00 UTC",
        });
        let total = p.fixed_chars();
        assert!(
            total < 8_000,
            "default prompt is {total} chars: {:?}",
            p.parts
        );
    }

    #[test]
    fn parts_add_up_and_files_are_cut_and_memory_stays_private() {
        let d = tempfile::tempdir().unwrap();
        crate::agent::workspace::ensure(d.path()).unwrap();
        std::fs::write(d.path().join("USER.md"), "x".repeat(100)).unwrap();
        let input = |main| PromptInput {
            agent_id: "main",
            agent_name: "Main",
            workspace: d.path(),
            main_session: main,
            bootstrap_max_chars: 40,
            tools: Vec::new(),
            now: "2026-11-24 08:00 UTC",
        };
        let p = assemble(input(true));
        let total: usize = p.parts.iter().map(|p| p.chars).sum();
        assert_eq!(total, p.system.chars().count());
        let user = p
            .parts
            .iter()
            .find(|x| x.name == "workspace/USER.md")
            .unwrap();
        assert!(user.truncated);
        assert!(p.system.contains("[truncated]"));
        assert!(p.parts.iter().any(|x| x.name == "workspace/MEMORY.md"));
        let group = assemble(input(false));
        assert!(!group.parts.iter().any(|x| x.name == "workspace/MEMORY.md"));
        assert!(!group.system.contains("# Memory"));
    }
}
