//! Which tools an agent may call: a profile (a base set), plus `allow` entries, minus `deny`
//! entries. Entries are tool names or `group:*` names, OpenClaw's vocabulary for
//! `tools.profile`, `tools.allow` and `tools.deny`.
//!
//! Sources (openclaw/openclaw):
//! - profiles and groups: `src/agents/tool-catalog.ts` (`CORE_TOOL_DEFINITIONS`: each core
//!   tool lists the profiles it belongs to; `group:<section>` is every tool of a section;
//!   `group:openclaw` is the tools marked `includeInOpenClawGroup`, which leaves out the
//!   file and shell tools). The older `src/agents/tool-policy.ts` had the same four
//!   profiles (`minimal` = `session_status`; `coding` = `group:fs`, `group:runtime`,
//!   `group:sessions`, `group:memory`, `image`; `messaging` = `group:messaging` and the
//!   session list/history/send/status tools; `full` = no restriction); the catalog version
//!   adds the web, media, cron and plan tools to `coding`.
//! - name aliases `bash` -> `exec`, `apply-patch` -> `apply_patch`, case-insensitive names:
//!   `normalizeToolName` in `src/agents/tool-policy.ts`.
//! - "`allow: ["exec"]` implicitly allows `apply_patch`": `docs/tools/exec.md`.
//! - deny wins over allow: `docs` ("Apply explicit `tools.allow` / `tools.deny` (deny takes
//!   precedence)").
//!
//! Difference from OpenClaw: there, a non-empty `tools.allow` narrows the profile (a second
//! filter); here, as Pincer's config defines it, `allow` adds to the profile (OpenClaw's
//! `alsoAllow`). `"*"` matches every tool.

use serde::{Deserialize, Serialize};

/// A base set of tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// `session_status` only.
    Minimal,
    /// Files, shell, web, memory, sessions, media, cron, plan.
    Coding,
    /// Messages and the session list/history/send/status tools.
    Messaging,
    /// Every tool.
    #[default]
    Full,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minimal => "minimal",
            Self::Coding => "coding",
            Self::Messaging => "messaging",
            Self::Full => "full",
        }
    }

    /// The core tools of this profile; `None` for `full` (no restriction).
    pub fn tools(self) -> Option<Vec<&'static str>> {
        if self == Self::Full {
            return None;
        }
        Some(
            CORE_TOOLS
                .iter()
                .filter(|t| t.profiles.contains(&self))
                .map(|t| t.name)
                .collect(),
        )
    }
}

/// One core tool of OpenClaw's catalog: its name, its section (`group:<section>`), the
/// profiles that include it, and whether `group:openclaw` includes it.
struct CoreTool {
    name: &'static str,
    section: &'static str,
    profiles: &'static [Profile],
    in_openclaw_group: bool,
}

const fn core(
    name: &'static str,
    section: &'static str,
    profiles: &'static [Profile],
    in_openclaw_group: bool,
) -> CoreTool {
    CoreTool {
        name,
        section,
        profiles,
        in_openclaw_group,
    }
}

use Profile::{Coding as C, Messaging as M, Minimal as N};

/// OpenClaw's `CORE_TOOL_DEFINITIONS` (`src/agents/tool-catalog.ts`), in its order.
const CORE_TOOLS: &[CoreTool] = &[
    core("read", "fs", &[C], false),
    core("write", "fs", &[C], false),
    core("edit", "fs", &[C], false),
    core("apply_patch", "fs", &[C], false),
    core("exec", "runtime", &[C], false),
    core("process", "runtime", &[C], false),
    core("code_execution", "runtime", &[C], true),
    core("web_search", "web", &[C], true),
    core("web_fetch", "web", &[C], true),
    core("x_search", "web", &[C], true),
    core("memory_search", "memory", &[C], true),
    core("memory_get", "memory", &[C], true),
    core("sessions_list", "sessions", &[C, M], true),
    core("sessions_history", "sessions", &[C, M], true),
    core("sessions_send", "sessions", &[C, M], true),
    core("sessions_spawn", "sessions", &[C], true),
    core("sessions_yield", "sessions", &[C], true),
    core("subagents", "sessions", &[C], true),
    core("session_status", "sessions", &[N, C, M], true),
    core("browser", "ui", &[], true),
    core("canvas", "ui", &[], true),
    core("message", "messaging", &[M], true),
    core("cron", "automation", &[C], true),
    core("gateway", "automation", &[], true),
    core("nodes", "nodes", &[], true),
    core("agents_list", "agents", &[], true),
    core("update_plan", "agents", &[C], true),
    core("image", "media", &[C], true),
    core("image_generate", "media", &[C], true),
    core("music_generate", "media", &[C], true),
    core("video_generate", "media", &[C], true),
    core("tts", "media", &[], true),
];

/// The known `group:*` names.
pub const GROUPS: &[&str] = &[
    "group:fs",
    "group:runtime",
    "group:web",
    "group:memory",
    "group:sessions",
    "group:ui",
    "group:messaging",
    "group:automation",
    "group:nodes",
    "group:agents",
    "group:media",
    "group:openclaw",
];

/// The core tools of a `group:*` name; `None` if the group is unknown.
pub fn group_members(group: &str) -> Option<Vec<&'static str>> {
    let group = group.trim().to_ascii_lowercase();
    if group == "group:openclaw" {
        return Some(
            CORE_TOOLS
                .iter()
                .filter(|t| t.in_openclaw_group)
                .map(|t| t.name)
                .collect(),
        );
    }
    let section = group.strip_prefix("group:")?;
    let members: Vec<_> = CORE_TOOLS
        .iter()
        .filter(|t| t.section == section)
        .map(|t| t.name)
        .collect();
    (!members.is_empty()).then_some(members)
}

/// OpenClaw's `normalizeToolName`: trimmed, lowercase, `bash` -> `exec`,
/// `apply-patch` -> `apply_patch`.
pub fn normalize_tool_name(name: &str) -> String {
    let name = name.trim().to_ascii_lowercase();
    match name.as_str() {
        "bash" => "exec".to_owned(),
        "apply-patch" => "apply_patch".to_owned(),
        _ => name,
    }
}

/// The tool policy of one agent (`tools.profile`, `tools.allow`, `tools.deny`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolPolicy {
    pub profile: Profile,
    /// Tool or `group:*` names added to the profile.
    pub allow: Vec<String>,
    /// Tool or `group:*` names removed; wins over the profile and `allow`.
    pub deny: Vec<String>,
}

impl ToolPolicy {
    /// Whether `tool` (whose own group is `group`, e.g. `"group:fs"`) may be offered to and
    /// called by the model.
    pub fn allows(&self, tool: &str, group: &str) -> bool {
        let tool = normalize_tool_name(tool);
        let group = group.trim().to_ascii_lowercase();
        if self.deny.iter().any(|e| entry_matches(e, &tool, &group)) {
            return false;
        }
        let in_profile = match self.profile.tools() {
            None => true,
            Some(names) => names.contains(&tool.as_str()),
        };
        in_profile
            || self.allow.iter().any(|e| {
                entry_matches(e, &tool, &group)
                    // docs/tools/exec.md: `allow: ["exec"]` implicitly allows `apply_patch`.
                    || (tool == "apply_patch" && normalize_tool_name(e) == "exec")
            })
    }
}

/// Whether one allow/deny entry names `tool`: its name, `*`, its own group, or a known
/// group that contains it.
fn entry_matches(entry: &str, tool: &str, group: &str) -> bool {
    let entry = normalize_tool_name(entry);
    if entry == "*" || entry == tool {
        return true;
    }
    if !entry.starts_with("group:") {
        return false;
    }
    entry == group || group_members(&entry).is_some_and(|m| m.contains(&tool))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(profile: Profile, allow: &[&str], deny: &[&str]) -> ToolPolicy {
        ToolPolicy {
            profile,
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn profile_contents_match_openclaw() {
        assert_eq!(Profile::Minimal.tools().unwrap(), vec!["session_status"]);
        assert_eq!(
            Profile::Messaging.tools().unwrap(),
            vec![
                "sessions_list",
                "sessions_history",
                "sessions_send",
                "session_status",
                "message"
            ]
        );
        let coding = Profile::Coding.tools().unwrap();
        for t in [
            "read",
            "write",
            "edit",
            "apply_patch",
            "exec",
            "process",
            "web_fetch",
            "web_search",
            "memory_search",
            "sessions_spawn",
            "session_status",
            "image",
        ] {
            assert!(coding.contains(&t), "coding lacks {t}");
        }
        for t in ["message", "browser", "gateway", "nodes", "canvas", "tts"] {
            assert!(!coding.contains(&t), "coding has {t}");
        }
        assert_eq!(Profile::Full.tools(), None);
    }

    #[test]
    fn groups_match_openclaw() {
        assert_eq!(
            group_members("group:fs").unwrap(),
            vec!["read", "write", "edit", "apply_patch"]
        );
        assert_eq!(
            group_members("group:runtime").unwrap(),
            vec!["exec", "process", "code_execution"]
        );
        assert_eq!(
            group_members("group:web").unwrap(),
            vec!["web_search", "web_fetch", "x_search"]
        );
        assert_eq!(group_members("group:messaging").unwrap(), vec!["message"]);
        let openclaw = group_members("group:openclaw").unwrap();
        assert!(openclaw.contains(&"web_fetch") && openclaw.contains(&"message"));
        assert!(!openclaw.contains(&"exec") && !openclaw.contains(&"read"));
        assert_eq!(group_members("group:nope"), None);
        for g in GROUPS {
            assert!(group_members(g).is_some(), "{g}");
        }
    }

    #[test]
    fn profiles_allow_their_tools_only() {
        let minimal = policy(Profile::Minimal, &[], &[]);
        assert!(minimal.allows("session_status", "group:sessions"));
        assert!(!minimal.allows("read", "group:fs"));
        let coding = policy(Profile::Coding, &[], &[]);
        assert!(coding.allows("exec", "group:runtime"));
        assert!(coding.allows("web_fetch", "group:web"));
        assert!(!coding.allows("message", "group:messaging"));
        let messaging = policy(Profile::Messaging, &[], &[]);
        assert!(messaging.allows("message", "group:messaging"));
        assert!(!messaging.allows("exec", "group:runtime"));
        let full = policy(Profile::Full, &[], &[]);
        assert!(full.allows("anything_from_a_plugin", "group:plugins"));
    }

    #[test]
    fn allow_adds_and_deny_wins() {
        let p = policy(Profile::Messaging, &["group:fs", "web_fetch"], &[]);
        assert!(p.allows("read", "group:fs"));
        assert!(p.allows("web_fetch", "group:web"));
        assert!(!p.allows("exec", "group:runtime"));

        let p = policy(Profile::Coding, &["exec"], &["exec", "group:web"]);
        assert!(!p.allows("exec", "group:runtime"));
        assert!(!p.allows("web_fetch", "group:web"));
        assert!(p.allows("process", "group:runtime"));

        let p = policy(Profile::Full, &[], &["group:runtime"]);
        assert!(!p.allows("exec", "group:runtime"));
        assert!(!p.allows("process", "group:runtime"));
        assert!(p.allows("read", "group:fs"));

        let p = policy(Profile::Full, &["*"], &["*"]);
        assert!(!p.allows("read", "group:fs"));
    }

    #[test]
    fn names_are_normalized_and_plugin_groups_match_by_the_tools_own_group() {
        let p = policy(Profile::Minimal, &["Bash"], &[]);
        assert!(p.allows("exec", "group:runtime"));
        assert!(
            p.allows("apply_patch", "group:fs"),
            "allow exec implies apply_patch"
        );
        let p = policy(Profile::Full, &[], &["APPLY-PATCH"]);
        assert!(!p.allows("apply_patch", "group:fs"));
        let p = policy(Profile::Minimal, &["group:plugins"], &[]);
        assert!(p.allows("weather", "group:plugins"));
        assert!(!p.allows("read", "group:fs"));
    }

    #[test]
    fn serde_uses_openclaw_names() {
        let p: ToolPolicy =
            serde_json::from_str(r#"{"profile":"coding","deny":["group:web"]}"#).unwrap();
        assert_eq!(p.profile, Profile::Coding);
        assert!(p.allow.is_empty());
        assert_eq!(p.deny, vec!["group:web".to_string()]);
        assert!(serde_json::from_str::<ToolPolicy>(r#"{"profile":"everything"}"#).is_err());
        assert_eq!(
            serde_json::to_string(&Profile::Minimal).unwrap(),
            "\"minimal\""
        );
    }
}
