//! The one description of every config key: its type, default, help text, whether it is a
//! secret and whether changing it needs a restart. Validation, `config.schema` (JSON
//! Schema plus OpenClaw's `uiHints`) and `docs/configuration.md` all come from this table,
//! so they cannot drift apart.

use serde_json::{Map, Value, json};

/// What a key holds.
#[derive(Debug)]
pub enum Kind {
    Object(&'static [Field]),
    String,
    /// An integer within the inclusive range.
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    Enum(&'static [&'static str]),
    /// A list of objects with these fields.
    ListOf(&'static [Field]),
    /// An object whose keys are names the user picks (provider ids, ...) and whose values
    /// are objects with these fields.
    MapOf(&'static [Field]),
    /// A list of strings.
    StringList,
    /// An object of string values (HTTP headers, ...).
    StringMap,
    /// Either a string (the short form) or an object with these fields.
    StringOr(&'static [Field]),
    /// A non-negative number (fractions allowed).
    Number,
    /// Accepted as any JSON object: a section a later capability defines. Its inner keys
    /// are not checked yet (documented as such).
    FreeObject,
}

#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    /// The default as JSON text, for docs and the schema (`None`: unset by default).
    pub default: Option<&'static str>,
    pub sensitive: bool,
    pub restart: bool,
}

const fn field(name: &'static str, kind: Kind, help: &'static str) -> Field {
    Field {
        name,
        kind,
        help,
        default: None,
        sensitive: false,
        restart: false,
    }
}

impl Field {
    const fn default(mut self, d: &'static str) -> Self {
        self.default = Some(d);
        self
    }
    const fn secret(mut self) -> Self {
        self.sensitive = true;
        self
    }
    const fn restart(mut self) -> Self {
        self.restart = true;
        self
    }
}

pub const BIND_MODES: &[&str] = &["loopback", "lan", "custom", "tailnet", "auto"];
pub const AUTH_MODES: &[&str] = &["token", "password", "none"];
pub const DM_SCOPES: &[&str] = &[
    "main",
    "per-peer",
    "per-channel-peer",
    "per-account-channel-peer",
];
pub const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];

const AUTH: &[Field] = &[
    field("mode", Kind::Enum(AUTH_MODES), "How clients authenticate: a shared token (default), a password, or none (loopback only)")
        .default("\"token\""),
    field(
        "token",
        Kind::String,
        "Shared token; when unset, PINCER_GATEWAY_TOKEN or the generated credentials/gateway.token is used",
    )
    .secret(),
    field("password", Kind::String, "Password for mode \"password\" (or PINCER_GATEWAY_PASSWORD)").secret(),
];

const GATEWAY: &[Field] = &[
    field(
        "port",
        Kind::Int { min: 0, max: 65535 },
        "TCP port for WebSocket and HTTP (0 picks a free port)",
    )
    .default("18789")
    .restart(),
    field(
        "bind",
        Kind::Enum(BIND_MODES),
        "Where to listen: loopback (127.0.0.1), lan (0.0.0.0) or custom (customBindHost)",
    )
    .default("\"loopback\"")
    .restart(),
    field(
        "customBindHost",
        Kind::String,
        "IP address to bind when bind is \"custom\"",
    )
    .restart(),
    field("auth", Kind::Object(AUTH), "Client authentication"),
];

const SESSION: &[Field] = &[
    field(
        "mainKey",
        Kind::String,
        "Name of the main direct-chat session (agent:<id>:<mainKey>)",
    )
    .default("\"main\""),
    field(
        "dmScope",
        Kind::Enum(DM_SCOPES),
        "How direct messages map to sessions",
    )
    .default("\"main\""),
    field(
        "queueMode",
        Kind::Enum(&["collect", "followup"]),
        "Messages that arrive during a turn: collect (answered together in the next turn) or followup (one turn each)",
    )
    .default("\"collect\"")
    .restart(),
    field(
        "reset",
        Kind::Object(SESSION_RESET),
        "When sessions start afresh on their own (the old transcript is archived)",
    )
    .restart(),
    field(
        "resetTriggers",
        Kind::StringList,
        "Messages that start a new session (the rest of the message goes to the new one)",
    )
    .default("[\"/new\", \"/reset\"]")
    .restart(),
    field(
        "idleMinutes",
        Kind::Int { min: 1, max: 525_600 },
        "Older spelling of reset.idleMinutes",
    )
    .restart(),
    field(
        "agentToAgent",
        Kind::Object(SESSION_AGENT_TO_AGENT),
        "Agent-to-agent conversations",
    ),
];

const SANDBOX: &[Field] = &[
    field(
        "mode",
        Kind::Enum(&["off", "non-main", "all"]),
        "Which sessions run their tools in a container: none, all but the owner's main session, or all",
    )
    .default("\"off\""),
    field(
        "scope",
        Kind::Enum(&["session", "agent", "shared"]),
        "One container per session, per agent, or one shared by all",
    )
    .default("\"session\""),
    field(
        "workspaceAccess",
        Kind::Enum(&["none", "ro", "rw"]),
        "none: a private scratch /workspace; ro: scratch plus the agent workspace read-only at /agent; rw: the agent workspace at /workspace",
    )
    .default("\"none\""),
    field("docker", Kind::Object(SANDBOX_DOCKER), "The container"),
    field("prune", Kind::Object(SANDBOX_PRUNE), "When unused containers are removed"),
];

const SANDBOX_DOCKER: &[Field] = &[
    field(
        "image",
        Kind::String,
        "Image (build it with `pincer sandbox setup`)",
    )
    .default("\"pincer-sandbox:bookworm\""),
    field(
        "network",
        Kind::String,
        "Docker network: none, or a bridge network (host is refused)",
    )
    .default("\"none\""),
    field("readOnlyRoot", Kind::Bool, "Read-only root filesystem").default("true"),
    field("tmpfs", Kind::StringList, "tmpfs mounts, `path[:options]`")
        .default("[\"/tmp\", \"/var/tmp\", \"/run\"]"),
    field("user", Kind::String, "uid:gid the container runs as").default("\"1000:1000\""),
    field("capDrop", Kind::StringList, "Capabilities dropped").default("[\"ALL\"]"),
    field(
        "memory",
        Kind::String,
        "Memory limit (no swap beyond it), e.g. 512m",
    )
    .default("\"512m\""),
    field("cpus", Kind::Number, "CPUs").default("1"),
    field(
        "pidsLimit",
        Kind::Int {
            min: 1,
            max: 1_000_000,
        },
        "Processes at most",
    )
    .default("256"),
    field(
        "ulimits",
        Kind::FreeObject,
        "ulimits: name -> number or {soft, hard}",
    ),
    field(
        "seccompProfile",
        Kind::String,
        "Path to a seccomp profile (default: the shipped deploy/seccomp.json; unconfined is refused)",
    ),
    field("apparmorProfile", Kind::String, "AppArmor profile name"),
    field("env", Kind::StringMap, "Environment of the container"),
    field(
        "binds",
        Kind::StringList,
        "Extra binds `host:container[:ro|rw]` (the Docker socket, /, /etc, the state dir are refused)",
    ),
    field(
        "setupCommand",
        Kind::String,
        "Run once after the container is created",
    ),
];

const SANDBOX_PRUNE: &[Field] = &[
    field(
        "idleHours",
        Kind::Int {
            min: 0,
            max: 100_000,
        },
        "Remove after this many idle hours (0: never)",
    )
    .default("24"),
    field(
        "maxAgeDays",
        Kind::Int {
            min: 0,
            max: 10_000,
        },
        "Remove after this many days (0: never)",
    )
    .default("7"),
];

const SESSION_RESET: &[Field] = &[
    field(
        "mode",
        Kind::Enum(&["daily", "idle", "off"]),
        "daily: at atHour (gateway host's local time); idle: after idleMinutes; off: only by hand",
    )
    .default("\"daily\""),
    field(
        "atHour",
        Kind::Int { min: 0, max: 23 },
        "Local hour of the daily reset",
    )
    .default("4"),
    field(
        "idleMinutes",
        Kind::Int {
            min: 1,
            max: 525_600,
        },
        "Reset after this many idle minutes (with mode daily too: whichever comes first)",
    ),
];

const LOGGING: &[Field] = &[field(
    "level",
    Kind::Enum(LOG_LEVELS),
    "Log level (RUST_LOG overrides it)",
)
.default("\"info\"")];

pub const THINKING_LEVELS: &[&str] = &["off", "low", "medium", "high"];
pub const RUN_MODES: &[&str] = &["fast", "standard", "deep"];
pub const TOOL_PROFILES: &[&str] = &["minimal", "coding", "messaging", "full"];
pub const WORKSPACE_ACCESS: &[&str] = &["none", "ro", "rw"];
pub const EXEC_ASK: &[&str] = &["off", "on-miss", "always"];

const MODEL_CHOICE: &[Field] = &[
    field(
        "primary",
        Kind::String,
        "The model to use, as provider/model (e.g. anthropic/claude-sonnet-4-5)",
    ),
    field(
        "fallbacks",
        Kind::StringList,
        "Models tried in order when the primary stays down (provider/model each)",
    ),
];

/// Keys an agent entry and `agents.defaults` share.
const MODEL_FIELD: Field = field(
    "model",
    Kind::StringOr(MODEL_CHOICE),
    "Model: provider/model, or {primary, fallbacks} tried in order",
);
const THINKING_FIELD: Field = field(
    "thinking",
    Kind::Enum(THINKING_LEVELS),
    "Thinking level: off, low, medium or high",
);
const MODE_FIELD: Field = field(
    "mode",
    Kind::Enum(RUN_MODES),
    "fast: one call, no tools; standard: the tool loop; deep: thinking plus a self-critique pass",
);
const WORKSPACE_ACCESS_FIELD: Field = field(
    "workspaceAccess",
    Kind::Enum(WORKSPACE_ACCESS),
    "What the file tools may do in the workspace: none, ro or rw",
);
/// Keys `tools` and an agent's `tools` share.
const PROFILE_FIELD: Field = field(
    "profile",
    Kind::Enum(TOOL_PROFILES),
    "Base tool set: minimal, coding, messaging or full",
);
const ALLOW_FIELD: Field = field(
    "allow",
    Kind::StringList,
    "Tools (or group:* names) added to the profile",
);
const DENY_FIELD: Field = field(
    "deny",
    Kind::StringList,
    "Tools (or group:* names) removed; deny wins over allow",
);

const TOOL_POLICY: &[Field] = &[PROFILE_FIELD, ALLOW_FIELD, DENY_FIELD];

/// `agents.defaults.heartbeat` and `agents.list[].heartbeat` (OpenClaw's keys, plus
/// `dailyTokenBudget`); read by `schedule::heartbeat_config`.
const HEARTBEAT: &[Field] = &[
    field(
        "every",
        Kind::String,
        "How often: a duration like 30m, 1h or 1h30m (at least 1m); 0m or off turns heartbeats off",
    )
    .default("\"30m\""),
    field(
        "model",
        Kind::String,
        "provider/model for heartbeat turns, e.g. a cheaper one (default: the agent's own)",
    ),
    field(
        "target",
        Kind::String,
        "Where a reply that is not HEARTBEAT_OK goes: last (the chat the main session last answered), none, or a channel name (telegram, slack, sms, discord...) with `to`",
    )
    .default("\"last\""),
    field(
        "to",
        Kind::String,
        "The chat id, channel or phone number when target is a channel",
    ),
    field(
        "accountId",
        Kind::String,
        "The channel account that sends when target is a channel (default: `default`, else the channel's only account)",
    ),
    field(
        "prompt",
        Kind::String,
        "The heartbeat message; HEARTBEAT.md's text and queued system events are appended to it",
    )
    .default("\"Read HEARTBEAT.md if it exists (workspace context). Follow it strictly. Do not infer or repeat old tasks from prior chats. If nothing needs attention, reply HEARTBEAT_OK.\""),
    field(
        "ackMaxChars",
        Kind::Int { min: 0, max: 100_000 },
        "A reply of HEARTBEAT_OK with at most this many other characters stays in the transcript and is not delivered",
    )
    .default("300"),
    field(
        "dailyTokenBudget",
        Kind::Int {
            min: 0,
            max: 1_000_000_000_000,
        },
        "Tokens (input + output) heartbeat turns may use per agent per UTC day; past it heartbeats pause until 00:00 UTC and the user is told once; 0: no limit",
    )
    .default("200000"),
];

const AGENT: &[Field] = &[
    field("id", Kind::String, "Agent id, used in session keys"),
    field("name", Kind::String, "Display name"),
    field("default", Kind::Bool, "Whether this is the default agent"),
    field("workspace", Kind::String, "Workspace directory"),
    MODEL_FIELD,
    THINKING_FIELD,
    MODE_FIELD,
    field(
        "tools",
        Kind::Object(TOOL_POLICY),
        "Tool policy for this agent (replaces tools.profile/allow/deny)",
    ),
    WORKSPACE_ACCESS_FIELD,
    field(
        "subagents",
        Kind::Object(SUBAGENTS),
        "sessions_spawn limits for this agent, over agents.defaults.subagents",
    ),
    field(
        "identity",
        Kind::FreeObject,
        "Name, emoji and theme the agent presents (free-form)",
    ),
    field(
        "sandbox",
        Kind::Object(SANDBOX),
        "Sandbox policy for this agent, merged over agents.defaults.sandbox",
    ),
    field(
        "heartbeat",
        Kind::Object(HEARTBEAT),
        "This agent's heartbeat, merged over agents.defaults.heartbeat; once any agent has one, only those agents run heartbeats",
    ),
];

const AGENT_DEFAULTS: &[Field] = &[
    MODEL_FIELD,
    field(
        "workspace",
        Kind::String,
        "Workspace directory of the default agent (default: <state dir>/workspace)",
    ),
    THINKING_FIELD.default("\"off\""),
    MODE_FIELD.default("\"standard\""),
    field(
        "maxIterations",
        Kind::Int { min: 1, max: 200 },
        "Model calls per turn at most (the tool loop stops there)",
    )
    .default("24"),
    field(
        "timeoutSeconds",
        Kind::Int {
            min: 1,
            max: 86_400,
        },
        "Deadline of one turn",
    )
    .default("600"),
    field(
        "bootstrapMaxChars",
        Kind::Int {
            min: 0,
            max: 1_000_000,
        },
        "Each workspace file injected into the system prompt is cut at this many characters",
    )
    .default("4000"),
    field(
        "skipBootstrap",
        Kind::Bool,
        "Do not create the workspace files",
    )
    .default("false"),
    field(
        "maxConcurrent",
        Kind::Int { min: 1, max: 1000 },
        "Turns an agent runs at once across its sessions; more wait their turn",
    )
    .default("4"),
    field(
        "historyTurns",
        Kind::Int {
            min: 1,
            max: 10_000,
        },
        "Recent turns kept in memory and sent to the model (older ones stay in the store)",
    )
    .default("40"),
    WORKSPACE_ACCESS_FIELD.default("\"rw\""),
    field(
        "sandbox",
        Kind::Object(SANDBOX),
        "Docker sandboxes for tools (off unless mode says otherwise)",
    ),
    field(
        "heartbeat",
        Kind::Object(HEARTBEAT),
        "Heartbeats: periodic main-session turns that read HEARTBEAT.md, with a cost guard and a daily token budget (see docs/heartbeat.md)",
    ),
    field(
        "subagents",
        Kind::Object(SUBAGENTS),
        "What sessions_spawn may start: targets, concurrency, nesting, archiving",
    ),
];

const SUBAGENTS: &[Field] = &[
    field(
        "allowAgents",
        Kind::StringList,
        "Agents sessions_spawn may target besides the agent itself (\"*\": any)",
    )
    .default("[]"),
    field(
        "maxConcurrent",
        Kind::Int { min: 1, max: 1000 },
        "Sub-agent runs in flight at once across the gateway; more are refused",
    )
    .default("8"),
    field(
        "archiveAfterMinutes",
        Kind::Int {
            min: 1,
            max: 525_600,
        },
        "A finished sub-agent session is archived this long after its result was announced",
    )
    .default("60"),
    field(
        "maxSpawnDepth",
        Kind::Int { min: 1, max: 5 },
        "How deep spawns nest: 1 means a sub-agent cannot spawn its own",
    )
    .default("1"),
];

const AGENT_TO_AGENT: &[Field] = &[
    field(
        "enabled",
        Kind::Bool,
        "Whether agents may message, list and read other agents' sessions",
    )
    .default("false"),
    field(
        "allow",
        Kind::StringList,
        "The agents they may reach (\"*\": any); an agent always reaches its own sessions",
    )
    .default("[]"),
];

const SESSION_AGENT_TO_AGENT: &[Field] = &[field(
    "maxPingPongTurns",
    Kind::Int { min: 0, max: 5 },
    "Reply-back exchanges after a sessions_send that did not wait (REPLY_SKIP ends them early)",
)
.default("5")];

const PROVIDER_MODEL: &[Field] = &[
    field("id", Kind::String, "Model id as the provider names it"),
    field("name", Kind::String, "Display name"),
    field(
        "contextWindow",
        Kind::Int {
            min: 1,
            max: 100_000_000,
        },
        "Context window in tokens",
    ),
    field(
        "maxTokens",
        Kind::Int {
            min: 1,
            max: 10_000_000,
        },
        "Most output tokens per call",
    ),
    field(
        "reasoning",
        Kind::Bool,
        "Whether the model supports thinking levels",
    ),
];

pub const PROVIDER_APIS: &[&str] = &[
    "openai-completions",
    "anthropic-messages",
    "google-generative-ai",
];

const PROVIDER: &[Field] = &[
    field(
        "baseUrl",
        Kind::String,
        "API base URL (e.g. https://api.openai.com/v1, http://127.0.0.1:11434/v1)",
    ),
    field(
        "api",
        Kind::Enum(PROVIDER_APIS),
        "Wire protocol: openai-completions, anthropic-messages or google-generative-ai",
    ),
    field(
        "apiKey",
        Kind::String,
        "API key; \"env:NAME\" reads it from the environment, \"file:NAME\" from credentials/NAME (default: credentials/<provider>.key when present)",
    )
    .secret(),
    field(
        "apiKeys",
        Kind::StringList,
        "More keys (auth profiles), rotated when one is rate-limited or refused",
    )
    .secret(),
    field(
        "headers",
        Kind::StringMap,
        "Extra HTTP headers sent with every request",
    ),
    field(
        "models",
        Kind::ListOf(PROVIDER_MODEL),
        "Models this provider offers",
    ),
];

const MODELS: &[Field] = &[field(
    "providers",
    Kind::MapOf(PROVIDER),
    "Model providers by id (the provider part of provider/model)",
)];

const EXEC_POLICY: &[Field] = &[
    field(
        "ask",
        Kind::Enum(EXEC_ASK),
        "When high-risk tool calls need an operator's approval: off, on-miss (not in the allowlist) or always",
    )
    .default("\"on-miss\""),
    field(
        "allowlist",
        Kind::StringList,
        "Command prefixes exec may run without approval (e.g. \"git status\", \"ls\")",
    ),
    field(
        "approvalTimeoutSeconds",
        Kind::Int { min: 1, max: 86_400 },
        "An approval not given within this is a denial",
    )
    .default("120"),
    field(
        "timeoutSeconds",
        Kind::Int { min: 1, max: 86_400 },
        "Default exec timeout",
    )
    .default("120"),
];

const TOOLS: &[Field] = &[
    PROFILE_FIELD.default("\"coding\""),
    ALLOW_FIELD,
    DENY_FIELD,
    field("exec", Kind::Object(EXEC_POLICY), "exec approvals"),
    field(
        "agentToAgent",
        Kind::Object(AGENT_TO_AGENT),
        "Agent-to-agent messaging (sessions_send/list/history across agents): off by default",
    ),
];

const AGENTS: &[Field] = &[
    field(
        "defaults",
        Kind::Object(AGENT_DEFAULTS),
        "Defaults for every agent",
    ),
    field(
        "list",
        Kind::ListOf(AGENT),
        "The configured agents; `main` when empty",
    ),
];

const BINDING_PEER: &[Field] = &[
    field(
        "kind",
        Kind::Enum(&["dm", "direct", "group", "channel"]),
        "The kind of conversation",
    ),
    field("id", Kind::String, "The sender (dm) or group/room id"),
];

const BINDING_MATCH: &[Field] = &[
    field("channel", Kind::String, "telegram, slack, discord, sms..."),
    field(
        "accountId",
        Kind::String,
        "One account of the channel (absent or \"*\": any)",
    ),
    field("peer", Kind::Object(BINDING_PEER), "One conversation"),
    field("guildId", Kind::String, "A Discord server"),
    field("teamId", Kind::String, "A Slack workspace"),
];

const BINDING: &[Field] = &[
    field("agentId", Kind::String, "The agent that answers"),
    field(
        "match",
        Kind::Object(BINDING_MATCH),
        "What the message must match",
    ),
];

const HOOK_MATCH: &[Field] = &[
    field(
        "path",
        Kind::String,
        "The name after the hooks path: `gmail` matches `POST /hooks/gmail`",
    ),
    field(
        "source",
        Kind::String,
        "Only bodies whose `source` field equals this",
    ),
];

const HOOK_MAPPING: &[Field] = &[
    field("id", Kind::String, "A name for logs (default mapping-<n>)"),
    field(
        "match",
        Kind::Object(HOOK_MATCH),
        "Which requests this mapping takes",
    ),
    field(
        "action",
        Kind::Enum(&["wake", "agent"]),
        "A system event for the main session, or an isolated agent turn",
    )
    .default("\"agent\""),
    field(
        "wakeMode",
        Kind::Enum(&["now", "next-heartbeat"]),
        "When the main session hears of it: now, or at the default agent's next heartbeat (now when it runs none)",
    )
    .default("\"now\""),
    field(
        "messageTemplate",
        Kind::String,
        "The agent's message; `{{field.path}}` and `{{items[0].x}}` take values from the JSON body",
    ),
    field(
        "textTemplate",
        Kind::String,
        "The system event text for action \"wake\" (same placeholders)",
    ),
    field("name", Kind::String, "Shown as the hook session's label"),
    field(
        "agentId",
        Kind::String,
        "The agent that runs it (default: the default agent)",
    ),
    field(
        "sessionKey",
        Kind::String,
        "Session key template (default: a new hook:<uuid> per request)",
    ),
    field(
        "deliver",
        Kind::Bool,
        "Send the final reply to `channel`/`to`",
    ),
    field(
        "channel",
        Kind::String,
        "telegram, slack, sms... (its default account, else its first running one)",
    ),
    field(
        "to",
        Kind::String,
        "The chat, channel or number the reply goes to (template)",
    ),
    field(
        "model",
        Kind::String,
        "Model override (not applied yet; logged)",
    ),
    field(
        "thinking",
        Kind::Enum(&["off", "low", "medium", "high"]),
        "Thinking level for the turn",
    ),
    field(
        "timeoutSeconds",
        Kind::Int {
            min: 1,
            max: 86_400,
        },
        "The turn is aborted after this long",
    ),
];

const HOOKS: &[Field] = &[
    field(
        "enabled",
        Kind::Bool,
        "Serve webhook triggers (`POST <path>/wake`, `<path>/agent`, mapped names) on the gateway port",
    )
    .default("false"),
    field(
        "token",
        Kind::String,
        "Shared secret every hook request must carry (Authorization: Bearer, or x-openclaw-token); required when enabled; not the gateway token",
    )
    .secret(),
    field("path", Kind::String, "Where the hooks live on the gateway port").default("\"/hooks\""),
    field(
        "maxBodyBytes",
        Kind::Int { min: 1, max: 16_777_216 },
        "Largest request body taken in (larger: 413)",
    )
    .default("262144"),
    field(
        "allowedAgentIds",
        Kind::StringList,
        "Agents an explicit agentId may name (\"*\": any; [] none); unset: any",
    ),
    field(
        "allowRequestSessionKey",
        Kind::Bool,
        "Let /hooks/agent bodies choose their sessionKey",
    )
    .default("false"),
    field(
        "mappings",
        Kind::ListOf(HOOK_MAPPING),
        "Custom hooks: `POST <path>/<name>` turned into a wake or agent action",
    ),
];

/// One `triggers.watch[]` entry; read by `schedule::watch_config`.
const WATCH_TRIGGER: &[Field] = &[
    field(
        "id",
        Kind::String,
        "Trigger name (letters, digits, - and _), part of the default session key",
    ),
    field(
        "path",
        Kind::String,
        "Folder (or file) to watch; ~/ and paths relative to the state directory work",
    ),
    field(
        "agentId",
        Kind::String,
        "Agent whose session hears of the changes (default: the default agent)",
    ),
    field(
        "sessionKey",
        Kind::String,
        "Session the turns run in (default: agent:<agentId>:watch:<id>)",
    ),
    field(
        "message",
        Kind::String,
        "Message template: {{files}} (the changed paths), {{count}}, {{path}} and {{id}} are filled in; default: a list of the changed files",
    ),
    field(
        "debounceMs",
        Kind::Int {
            min: 0,
            max: 3_600_000,
        },
        "Changes until the folder has been quiet this long are batched into one turn",
    )
    .default("2000"),
    field("recursive", Kind::Bool, "Watch subfolders too").default("true"),
    field(
        "include",
        Kind::StringList,
        "Only paths ending with one of these suffixes count (\"*.md\", \".csv\"); default: every path",
    ),
];

const TRIGGERS: &[Field] = &[field(
    "watch",
    Kind::ListOf(WATCH_TRIGGER),
    "Folders whose changes become agent turns",
)];

const CRON: &[Field] = &[
    field(
        "enabled",
        Kind::Bool,
        "Fire cron jobs on schedule (when false, jobs are kept and can still be managed and run by hand)",
    )
    .default("true"),
    field(
        "missedRunGraceSeconds",
        Kind::Int { min: 0, max: 2_592_000 },
        "A job whose time passed while the gateway was down runs once at start if its newest missed slot is no older than this; older ones are recorded as skipped (see docs/cron.md)",
    )
    .default("43200"),
];

/// The whole file.
pub const ROOT: &[Field] = &[
    field(
        "gateway",
        Kind::Object(GATEWAY),
        "The control-plane listener",
    ),
    field("session", Kind::Object(SESSION), "Session keys"),
    field("logging", Kind::Object(LOGGING), "Logs"),
    field(
        "agents",
        Kind::Object(AGENTS),
        "Agents (changes apply at the next gateway start)",
    )
    .restart(),
    field(
        "models",
        Kind::Object(MODELS),
        "Model providers (changes apply at the next gateway start)",
    )
    .restart(),
    field(
        "channels",
        Kind::FreeObject,
        "Chat channels: `channels.<name>` with dmPolicy, allowFrom, groupPolicy, groups, credentials, apiBaseUrl and `accounts.<id>` (see docs/channels.md); changes apply at the next gateway start",
    )
    .restart(),
    field(
        "bindings",
        Kind::ListOf(BINDING),
        "Which agent answers which channel, account or conversation (most specific wins; changes apply at the next gateway start)",
    )
    .restart(),
    field(
        "tools",
        Kind::Object(TOOLS),
        "Tool policy (changes apply at the next gateway start)",
    )
    .restart(),    field(
        "hooks",
        Kind::Object(HOOKS),
        "Webhook triggers on the gateway port (see docs/hooks.md; changes apply at the next gateway start)",
    )
    .restart(),
    field(
        "triggers",
        Kind::Object(TRIGGERS),
        "File-watch triggers: folders whose changes become agent turns (see docs/triggers.md; applied without a restart)",
    ),
    field(
        "cron",
        Kind::Object(CRON),
        "Scheduled jobs (see docs/cron.md; the jobs live in the store, managed with `pincer cron`; changes apply at the next gateway start)",
    )
    .restart(),
];

/// Keys OpenClaw has that Pincer does not implement yet: reported as warnings, ignored.
pub const OPENCLAW_ONLY: &[&str] = &[
    "$schema",
    "meta",
    "env",
    "wizard",
    "update",
    "diagnostics",
    "browser",
    "ui",
    "auth",
    "skills",
    "plugins",
    "messages",
    "commands",
    "approvals",
    "hooks.presets",
    "hooks.transformsDir",
    "hooks.gmail",
    "hooks.internal",
    "hooks.defaultSessionKey",
    "hooks.allowedSessionKeyPrefixes",
    "cron.store",
    "cron.maxConcurrentRuns",
    "web",
    "discovery",
    "canvasHost",
    "nodeHost",
    "talk",
    "audio",
    "broadcast",
    "memory",
    "gateway.mode",
    "gateway.controlUi",
    "gateway.tailscale",
    "gateway.remote",
    "gateway.trustedProxies",
    "gateway.reload",
    "gateway.http",
    "gateway.nodes",
    "gateway.auth.allowTailscale",
    "logging.file",
    "logging.consoleLevel",
    "logging.consoleStyle",
    "logging.redactSensitive",
    "session.scope",
    "session.identityLinks",
    "session.store",
    "session.typingIntervalSeconds",
    "session.sendPolicy",
    "models.mode",
    "models.bedrockDiscovery",
    "agents.defaults.models",
    "agents.defaults.imageModel",
    "agents.defaults.thinkingDefault",
    "agents.defaults.verboseDefault",
    "agents.defaults.elevatedDefault",
    "agents.defaults.contextTokens",
    "agents.defaults.compaction",
    "agents.defaults.contextPruning",
    "agents.defaults.blockStreamingDefault",
    "agents.defaults.typingMode",
    "agents.defaults.userTimezone",
    "agents.defaults.timeFormat",
    "agents.defaults.repoRoot",
    "agents.defaults.memorySearch",
    "agents.defaults.cliBackends",
    "tools.web",
    "tools.media",
    "tools.links",
    "tools.elevated",
    "tools.message",
    "tools.sandbox",
    "tools.subagents",
    "tools.byProvider",
    "tools.exec.security",
    "tools.exec.host",
    "tools.exec.node",
    "tools.exec.backgroundMs",
    "tools.exec.cleanupMs",
    "tools.exec.applyPatch",
];

/// A problem found while checking a value against the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub path: String,
    pub message: String,
    pub warning: bool,
}

/// Checks `value` against the table. Keys OpenClaw has but Pincer ignores are removed from
/// `value` (and reported as warnings) so that what remains is exactly what Pincer uses.
pub fn check(value: &mut Value, findings: &mut Vec<Finding>) {
    match value {
        Value::Object(map) => check_object(map, ROOT, "", findings),
        _ => findings.push(Finding {
            path: String::new(),
            message: format!(
                "the config must be an object like {{ gateway: {{ port: 18789 }} }}, found {}",
                type_name(value)
            ),
            warning: false,
        }),
    }
}

fn check_object(
    map: &mut Map<String, Value>,
    fields: &[Field],
    prefix: &str,
    findings: &mut Vec<Finding>,
) {
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match fields.iter().find(|f| f.name == key) {
            Some(f) => check_value(
                map.get_mut(&key).expect("key exists"),
                &f.kind,
                &path,
                findings,
            ),
            None if OPENCLAW_ONLY.contains(&path.as_str()) => {
                map.remove(&key);
                findings.push(Finding {
                    path,
                    message: "OpenClaw key not implemented by Pincer yet; ignored".into(),
                    warning: true,
                });
            }
            None => {
                let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
                let hint = suggest(&key, &known)
                    .map(|s| format!("did you mean \"{s}\"?"))
                    .unwrap_or_else(|| format!("known keys here: {}", known.join(", ")));
                findings.push(Finding {
                    path,
                    message: format!("unknown key; {hint}"),
                    warning: false,
                });
            }
        }
    }
}

fn check_value(value: &mut Value, kind: &Kind, path: &str, findings: &mut Vec<Finding>) {
    let mut bad = |expected: String, value: &Value| {
        findings.push(Finding {
            path: path.to_owned(),
            message: format!("expected {expected}, found {}", describe(value)),
            warning: false,
        });
    };
    match kind {
        Kind::Object(fields) => match value {
            Value::Object(map) => check_object(map, fields, path, findings),
            other => bad("an object".into(), other),
        },
        Kind::FreeObject => {
            if !value.is_object() {
                bad("an object".into(), value)
            }
        }
        Kind::ListOf(fields) => match value {
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let p = format!("{path}.{i}");
                    match item {
                        Value::Object(map) => check_object(map, fields, &p, findings),
                        other => findings.push(Finding {
                            path: p,
                            message: format!("expected an object, found {}", describe(other)),
                            warning: false,
                        }),
                    }
                }
            }
            other => bad("a list".into(), other),
        },
        Kind::MapOf(fields) => match value {
            Value::Object(map) => {
                for (name, item) in map.iter_mut() {
                    let p = format!("{path}.{name}");
                    match item {
                        Value::Object(inner) => check_object(inner, fields, &p, findings),
                        other => findings.push(Finding {
                            path: p,
                            message: format!("expected an object, found {}", describe(other)),
                            warning: false,
                        }),
                    }
                }
            }
            other => bad("an object".into(), other),
        },
        Kind::StringList => match value {
            Value::Array(items) if items.iter().all(Value::is_string) => {}
            other => bad("a list of strings".into(), other),
        },
        Kind::StringMap => match value {
            Value::Object(map) if map.values().all(Value::is_string) => {}
            other => bad("an object of strings".into(), other),
        },
        Kind::StringOr(fields) => match value {
            Value::String(_) => {}
            Value::Object(map) => check_object(map, fields, path, findings),
            other => bad("a string or an object".into(), other),
        },
        Kind::Number => match value.as_f64() {
            Some(n) if n >= 0.0 => {}
            _ => bad("a non-negative number".into(), value),
        },
        Kind::String => {
            if !value.is_string() {
                bad("a string".into(), value)
            }
        }
        Kind::Bool => {
            if !value.is_boolean() {
                bad("true or false".into(), value)
            }
        }
        Kind::Int { min, max } => match value.as_i64() {
            Some(n) if (*min..=*max).contains(&n) => {}
            _ => bad(format!("an integer {min}-{max}"), value),
        },
        Kind::Enum(options) => match value.as_str() {
            Some(s) if options.contains(&s) => {}
            Some(s) => {
                let hint = suggest(s, options)
                    .map(|o| format!(" (did you mean \"{o}\"?)"))
                    .unwrap_or_default();
                findings.push(Finding {
                    path: path.to_owned(),
                    message: format!("expected one of {}, found \"{s}\"{hint}", quoted(options)),
                    warning: false,
                });
            }
            None => bad(format!("one of {}", quoted(options)), value),
        },
    }
}

/// The closest known name, if it is close enough to be a typo.
pub fn suggest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| {
            (
                strsim::damerau_levenshtein(&word.to_lowercase(), &k.to_lowercase()),
                *k,
            )
        })
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn quoted(options: &[&str]) -> String {
    options
        .iter()
        .map(|o| format!("\"{o}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => type_name(other).to_owned(),
    }
}

/// Channel credentials (`channels` is free-form, so they are named here).
pub const CHANNEL_SECRETS: &[&str] = &[
    "botToken",
    "appToken",
    "authToken",
    "signingSecret",
    "webhookSecret",
];

/// Every secret key path (lists use `*` for the index).
pub fn sensitive_paths() -> Vec<String> {
    let mut out = Vec::new();
    for name in CHANNEL_SECRETS {
        out.push(format!("channels.*.{name}"));
        out.push(format!("channels.*.accounts.*.{name}"));
    }
    walk(ROOT, "", &mut |path, f| {
        if f.sensitive {
            out.push(path.to_owned());
            if matches!(f.kind, Kind::StringList) {
                // Each secret of a list of secrets.
                out.push(format!("{path}.*"));
            }
        }
    });
    out
}

/// Keys whose change needs a restart.
pub fn restart_paths() -> Vec<String> {
    let mut out = Vec::new();
    walk(ROOT, "", &mut |path, f| {
        if f.restart {
            out.push(path.to_owned());
        }
    });
    out
}

/// Visits every field with its dotted path.
pub fn walk(fields: &'static [Field], prefix: &str, visit: &mut dyn FnMut(&str, &'static Field)) {
    for f in fields {
        let path = if prefix.is_empty() {
            f.name.to_owned()
        } else {
            format!("{prefix}.{}", f.name)
        };
        visit(&path, f);
        match &f.kind {
            Kind::Object(inner) => walk(inner, &path, visit),
            Kind::ListOf(inner) | Kind::MapOf(inner) => walk(inner, &format!("{path}.*"), visit),
            Kind::StringOr(inner) => walk(inner, &path, visit),
            _ => {}
        }
    }
}

/// JSON Schema (draft-07) of the config file.
pub fn json_schema() -> Value {
    let mut schema = object_schema(ROOT);
    schema["$schema"] = json!("http://json-schema.org/draft-07/schema#");
    schema["title"] = json!("Pincer configuration (pincer.json)");
    schema
}

fn object_schema(fields: &[Field]) -> Value {
    let mut props = Map::new();
    for f in fields {
        let mut s = kind_schema(&f.kind);
        s["description"] = json!(f.help);
        if let Some(d) = f.default {
            s["default"] = serde_json::from_str(d).expect("defaults in the table are JSON");
        }
        props.insert(f.name.to_owned(), s);
    }
    json!({ "type": "object", "additionalProperties": false, "properties": props })
}

fn kind_schema(kind: &Kind) -> Value {
    match kind {
        Kind::Object(fields) => object_schema(fields),
        Kind::ListOf(fields) => json!({ "type": "array", "items": object_schema(fields) }),
        Kind::String => json!({ "type": "string" }),
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::Int { min, max } => json!({ "type": "integer", "minimum": min, "maximum": max }),
        Kind::Enum(options) => json!({ "type": "string", "enum": options }),
        Kind::FreeObject => json!({ "type": "object" }),
        Kind::MapOf(fields) => {
            json!({ "type": "object", "additionalProperties": object_schema(fields) })
        }
        Kind::StringList => json!({ "type": "array", "items": { "type": "string" } }),
        Kind::StringMap => {
            json!({ "type": "object", "additionalProperties": { "type": "string" } })
        }
        Kind::StringOr(fields) => json!({ "anyOf": [{ "type": "string" }, object_schema(fields)] }),
        Kind::Number => json!({ "type": "number", "minimum": 0 }),
    }
}

/// OpenClaw's `uiHints`: `{ "gateway.auth.token": {label, help, sensitive}, ... }`.
pub fn ui_hints() -> Value {
    let mut hints = Map::new();
    let mut order = 0;
    walk(ROOT, "", &mut |path, f| {
        order += 1;
        let mut h = json!({ "label": label(f.name), "help": f.help, "order": order });
        if f.sensitive {
            h["sensitive"] = json!(true);
        }
        if let Some(group) = path.split('.').next() {
            h["group"] = json!(group);
        }
        hints.insert(path.to_owned(), h);
    });
    Value::Object(hints)
}

fn label(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if i == 0 {
            out.extend(c.to_uppercase());
        } else if c.is_uppercase() {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The Markdown reference of every key, for `docs/configuration.md`.
pub fn markdown_reference() -> String {
    let mut out =
        String::from("| key | type | default | restart | description |\n|---|---|---|---|---|\n");
    walk(ROOT, "", &mut |path, f| {
        let ty = match &f.kind {
            Kind::Object(_) => "object".to_owned(),
            Kind::ListOf(_) => "list of objects".to_owned(),
            Kind::String => "string".to_owned(),
            Kind::Bool => "boolean".to_owned(),
            Kind::Int { min, max } => format!("integer {min}-{max}"),
            Kind::Enum(o) => o
                .iter()
                .map(|x| format!("`{x}`"))
                .collect::<Vec<_>>()
                .join(" \\| "),
            Kind::FreeObject => "object (free-form for now)".to_owned(),
            Kind::MapOf(_) => "object: name -> object".to_owned(),
            Kind::StringList => "list of strings".to_owned(),
            Kind::StringMap => "object of strings".to_owned(),
            Kind::StringOr(_) => "string or object".to_owned(),
            Kind::Number => "number".to_owned(),
        };
        let default = f.default.map(|d| format!("`{d}`")).unwrap_or_default();
        let restart = if f.restart { "yes" } else { "" };
        let secret = if f.sensitive {
            " Secret: redacted by `config.get`."
        } else {
            ""
        };
        out.push_str(&format!(
            "| `{path}` | {ty} | {default} | {restart} | {}.{secret} |\n",
            f.help
        ));
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(v: Value) -> (Value, Vec<Finding>) {
        let mut v = v;
        let mut f = Vec::new();
        check(&mut v, &mut f);
        (v, f)
    }

    #[test]
    fn unknown_keys_are_errors_with_a_suggestion() {
        let (_, f) = findings(json!({"gateway": {"prot": 1}}));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "gateway.prot");
        assert!(
            f[0].message.contains("did you mean \"port\""),
            "{}",
            f[0].message
        );
        assert!(!f[0].warning);
        let (_, f) = findings(json!({"zzzzzz": 1}));
        assert!(
            f[0].message.contains("known keys here: gateway"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn types_ranges_and_enums_are_checked() {
        let (_, f) =
            findings(json!({"gateway": {"port": "abc", "bind": "loopbak", "auth": {"mode": 3}}}));
        let msgs: Vec<String> = f
            .iter()
            .map(|x| format!("{}: {}", x.path, x.message))
            .collect();
        assert!(
            msgs.contains(&"gateway.port: expected an integer 0-65535, found \"abc\"".to_owned()),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("gateway.bind") && m.contains("did you mean \"loopback\"")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("gateway.auth.mode: expected one of")),
            "{msgs:?}"
        );
        let (_, f) = findings(json!({"gateway": {"port": 70000}}));
        assert!(f[0].message.contains("0-65535"));
        let (_, f) = findings(json!({"agents": {"list": [{"id": "a"}, 5, {"idd": "x"}]}}));
        let paths: Vec<&str> = f.iter().map(|x| x.path.as_str()).collect();
        assert_eq!(paths, ["agents.list.1", "agents.list.2.idd"]);
    }

    #[test]
    fn openclaw_keys_warn_and_are_removed() {
        let (v, f) = findings(
            json!({"browser": {"enabled": true}, "gateway": {"controlUi": {}, "port": 1}}),
        );
        assert_eq!(v, json!({"gateway": {"port": 1}}));
        assert_eq!(f.len(), 2);
        assert!(
            f.iter()
                .all(|x| x.warning && x.message.contains("not implemented by Pincer yet"))
        );
    }

    #[test]
    fn schema_hints_and_docs_come_from_one_table() {
        let s = json_schema();
        assert_eq!(
            s["properties"]["gateway"]["properties"]["port"]["default"],
            18789
        );
        assert_eq!(s["properties"]["gateway"]["additionalProperties"], false);
        let hints = ui_hints();
        assert_eq!(hints["gateway.auth.token"]["sensitive"], true);
        assert_eq!(hints["gateway.customBindHost"]["label"], "Custom bind host");
        assert_eq!(
            sensitive_paths(),
            [
                "channels.*.botToken",
                "channels.*.accounts.*.botToken",
                "channels.*.appToken",
                "channels.*.accounts.*.appToken",
                "channels.*.authToken",
                "channels.*.accounts.*.authToken",
                "channels.*.signingSecret",
                "channels.*.accounts.*.signingSecret",
                "channels.*.webhookSecret",
                "channels.*.accounts.*.webhookSecret",
                "gateway.auth.token",
                "gateway.auth.password",
                "models.providers.*.apiKey",
                "models.providers.*.apiKeys",
                "models.providers.*.apiKeys.*",
                "hooks.token"
            ]
        );
        assert_eq!(
            restart_paths(),
            [
                "gateway.port",
                "gateway.bind",
                "gateway.customBindHost",
                "session.queueMode",
                "session.reset",
                "session.resetTriggers",
                "session.idleMinutes",
                "agents",
                "models",
                "channels",
                "bindings",
                "tools",
                "hooks",
                "cron"
            ]
        );
        assert!(
            markdown_reference().contains("| `gateway.port` | integer 0-65535 | `18789` | yes |")
        );
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        assert_eq!(suggest("prot", &["port", "bind"]), Some("port"));
        assert_eq!(suggest("Port", &["port"]), Some("port"));
        assert_eq!(suggest("xyzzy", &["port", "bind"]), None);
    }
}
