//! The command line: `pincer <command>`. Every flag documented here is what `--help` shows.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::telemetry::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "pincer",
    version,
    about = "Pincer: a self-hosted personal AI assistant gateway",
    long_about = "Pincer connects your chat apps to LLM agents from one small daemon on your own machine.\n\
                  State lives in ~/.pincer (PINCER_HOME overrides; --profile NAME uses ~/.pincer-NAME).\n\n\
                  Start here: `pincer onboard --yes`, then `pincer gateway`."
)]
pub struct Cli {
    /// Use the state directory ~/.pincer-NAME instead of ~/.pincer
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,

    /// Log output: human-readable on a terminal and JSON lines otherwise (auto), or forced
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    /// Log level or filter (trace, debug, info, warn, error); overrides the config's
    /// logging.level; RUST_LOG overrides both
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway daemon in the foreground (same as `pincer gateway run`), or call it
    Gateway(GatewayCmd),
    /// Ask a running gateway whether it is healthy (the `health` method)
    Health(ClientArgs),
    /// Show a running gateway's status (the `status` method)
    Status(ClientArgs),
    /// Read, change or check the config file (pincer.json)
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Check the config, state directory, port, token, model and Docker; exits 1 on problems
    Doctor {
        /// Print the findings as JSON
        #[arg(long)]
        json: bool,
    },
    /// Send one message to an agent and stream its reply to the terminal
    Agent(AgentArgs),
    /// Chat with an agent in the terminal, one turn per line (/new, /quit)
    Chat(ChatArgs),
    /// List, add or remove agents, or show what a turn sends to the model (`agents prompt`)
    Agents {
        #[command(subcommand)]
        cmd: AgentsCommand,
    },
    /// The audit log: exec approvals, config changes, delegations and cross-agent
    /// messages, oldest first (the `audit.query` method)
    Audit(AuditArgs),
    /// List, show or reset sessions
    Sessions {
        #[command(subcommand)]
        cmd: SessionsCmd,
    },
    /// Docker sandboxes: build the image, list, explain, recreate or prune containers
    Sandbox {
        #[command(subcommand)]
        cmd: SandboxCmd,
    },
    /// Chat channel accounts (Telegram, Slack, SMS...): what each is doing
    Channels {
        #[command(subcommand)]
        cmd: ChannelsCmd,
    },
    /// Let unknown senders talk to the assistant (channels with dmPolicy "pairing")
    Pairing {
        #[command(subcommand)]
        cmd: PairingCmd,
    },
    /// Send a message to a chat through the gateway's channel accounts
    Message {
        #[command(subcommand)]
        cmd: MessageCmd,
    },
    /// Scheduled jobs: add, list, remove, run now, run history (see docs/cron.md)
    Cron {
        #[command(subcommand)]
        cmd: crate::cron_cmd::CronCmd,
    },
    /// Run the local mock LLM server (OpenAI, Anthropic and Gemini wire formats, scripted
    /// replies and faults) for testing a setup without a real provider
    MockLlm {
        /// Address to listen on
        #[arg(long, default_value = "127.0.0.1:11500", value_name = "ADDR")]
        listen: std::net::SocketAddr,
    },
    /// Write a commented default config and the workspace files
    Onboard {
        /// Do not ask anything; accept the defaults
        #[arg(long, short = 'y')]
        yes: bool,
        /// Overwrite an existing pincer.json (the old one is kept as pincer.json.bak)
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct GatewayCmd {
    #[command(subcommand)]
    pub sub: Option<GatewaySub>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum GatewaySub {
    /// Run the gateway daemon in the foreground
    Run(RunArgs),
    /// Call one RPC method on a running gateway and print its result
    Call(CallArgs),
}

#[derive(Debug, Clone, Args, Default)]
pub struct RunArgs {
    /// Port to listen on (0 picks a free one); beats PINCER_GATEWAY_PORT and gateway.port
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Address to bind: loopback, lan, or an IP address; beats gateway.bind
    #[arg(long, value_name = "BIND")]
    pub bind: Option<String>,
    /// Debug aid: make a supervised actor fail on purpose, e.g. `gateway:panic@3` (panic
    /// at its 3rd message), `config-watcher:error@1`; actors: config-watcher, gateway,
    /// config-reloader, sandboxes, sandbox, agent, sessions, session, run, scheduler and
    /// channel-CHANNEL-ACCOUNT (e.g. channel-telegram-default); repeatable
    #[arg(long = "inject-fault", value_name = "ACTOR:KIND@N")]
    pub faults: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The message
    #[arg(long, short = 'm')]
    pub message: String,
    /// Agent id (its main session); default: the default agent
    #[arg(long)]
    pub agent: Option<String>,
    /// Session key (default: agent:<agent>:main)
    #[arg(long)]
    pub session: Option<String>,
    /// Thinking level: off, low, medium, high
    #[arg(long)]
    pub thinking: Option<String>,
    /// Seconds to wait for the final answer
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub wait: u64,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Agent id (its main session); default: the default agent
    #[arg(long)]
    pub agent: Option<String>,
    /// Session key (default: the agent's main session)
    #[arg(long)]
    pub session: Option<String>,
    /// Seconds to wait for each answer
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub wait: u64,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum AgentsCmd {
    /// The configured agents, their models and tool profiles
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The assembled prompt with the size of each part (identity, workspace files,
    /// skills, tool schemas, history)
    Prompt {
        /// Agent id (default: the default agent)
        #[arg(long)]
        agent: Option<String>,
        /// Session key, for its history (default: the agent's main session)
        #[arg(long)]
        session: Option<String>,
        /// Also print the system prompt itself
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `pincer agents ...`: what the gateway reports, and edits of `agents.list[]`.
#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    #[command(flatten)]
    Gateway(AgentsCmd),
    /// Add an agent to agents.list in pincer.json and create its workspace; the gateway
    /// starts it when it next starts
    Add(AgentsAddArgs),
    /// Remove an agent from agents.list in pincer.json; a running gateway stops it when
    /// restarted (its sessions stay in the store)
    Remove(AgentsRemoveArgs),
}

#[derive(Debug, Args)]
pub struct AgentsAddArgs {
    /// Agent id: lowercase letters, digits, - and _ (used in session keys agent:<id>:...)
    pub id: String,
    /// Model as provider/model (default: agents.defaults.model)
    #[arg(long, value_name = "PROVIDER/MODEL")]
    pub model: Option<String>,
    /// Workspace directory (default: <state dir>/workspace-<id>); created with the
    /// workspace files if missing
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Display name (default: the id)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Make it the default agent (the one that answers when no binding says otherwise)
    #[arg(long)]
    pub default: bool,
}

#[derive(Debug, Args)]
pub struct AgentsRemoveArgs {
    /// Agent id
    pub id: String,
    /// Also delete the agent's workspace directory (refused when another agent uses it)
    #[arg(long)]
    pub delete_workspace: bool,
    /// The agent that becomes the default; needed to remove the default agent
    #[arg(long, value_name = "ID")]
    pub new_default: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only records from this time on: a duration back from now (30m, 2h, 1d, 1w, 1h30m),
    /// an RFC 3339 time (2026-01-31T09:00:00Z, 2026-01-31T10:00:00+01:00) or unix
    /// milliseconds
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only records involving this agent (named in the record, or one of its sessions
    /// agent:<id>:... as actor or target)
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,
    /// Only records whose kind starts with this: approval, config.change, delegation,
    /// agent
    #[arg(long, value_name = "PREFIX")]
    pub kind: Option<String>,
    /// Show the newest N matching records (1-10000)
    #[arg(long, default_value_t = 100, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub limit: u64,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum SessionsCmd {
    /// Sessions, most recent first
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A session's transcript
    Show {
        /// Session key, e.g. agent:main:main
        key: String,
        /// Last N entries
        #[arg(long, default_value_t = 50)]
        limit: u64,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Forget a session's transcript (the next message starts afresh)
    Reset {
        key: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum SandboxCmd {
    /// Build the sandbox image locally from Debian packages (no registry needed)
    Setup {
        /// Image tag (default pincer-sandbox:bookworm, what agents.*.sandbox.docker.image names)
        #[arg(long, value_name = "TAG")]
        image: Option<String>,
        /// Build the small busybox test image instead (seconds, for trying things out)
        #[arg(long, conflicts_with = "image")]
        test: bool,
    },
    /// The gateway's sandbox containers
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Whether a session is sandboxed, in which container, with what mounts and limits
    Explain {
        /// Agent id (default: the default agent)
        #[arg(long, value_name = "ID")]
        agent: Option<String>,
        /// Session key (default: the agent's main session)
        #[arg(long, value_name = "KEY")]
        session: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove containers so the next use creates them afresh (after a config or image change)
    Recreate {
        /// Every container of this gateway
        #[arg(long)]
        all: bool,
        /// The containers of this agent
        #[arg(long, value_name = "ID")]
        agent: Option<String>,
        /// The container of this session
        #[arg(long, value_name = "KEY")]
        session: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove containers idle or old past agents.*.sandbox.prune (the gateway also does
    /// this every 5 minutes)
    Prune {
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ChannelsCmd {
    /// Each configured account: running, reconnecting, stopped or in error (and why),
    /// with its message counters
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum PairingCmd {
    /// Pairing requests: pending codes and approved senders
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Approve the sender who was given CODE on CHANNEL (e.g. `pincer pairing approve telegram K7M2QX9A`)
    Approve {
        /// telegram, slack, sms, discord...
        channel: String,
        /// The code the sender was given
        code: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Refuse (forget) a pending request
    Reject {
        channel: String,
        code: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum MessageCmd {
    /// Send a message (Markdown, formatted for the platform) to a chat, channel or phone
    /// number; prints whether it was sent; exits 1 when it was refused or failed, 3 when
    /// the gateway cannot be reached
    #[command(after_help = "Examples:\n  \
        pincer message send --channel telegram --to 12345 \"hello from **Pincer**\"\n  \
        pincer message send --channel slack --account work --to C0123 --thread 1700000000.000100 -m \"done\"")]
    Send(MessageSendArgs),
}

#[derive(Debug, Args)]
pub struct MessageSendArgs {
    /// telegram, slack, sms or discord (default: the only configured channel)
    #[arg(long, value_name = "CHANNEL")]
    pub channel: Option<String>,
    /// Where to: a Telegram chat id, a Slack or Discord channel id, a phone number (E.164)
    #[arg(long, visible_alias = "target", value_name = "TO")]
    pub to: String,
    /// The channel account (default: the one called default, else the channel's only one)
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// A Telegram forum topic id, a Slack thread ts or a Discord thread id
    #[arg(long, visible_alias = "thread-id", value_name = "ID")]
    pub thread: Option<String>,
    /// The message, in Markdown
    #[arg(
        value_name = "TEXT",
        required_unless_present = "message",
        conflicts_with = "message"
    )]
    pub text: Option<String>,
    /// The message, in Markdown (instead of TEXT; OpenClaw's spelling)
    #[arg(long, short = 'm', value_name = "TEXT")]
    pub message: Option<String>,
    /// Do not wait for the delivery: answer "queued" once the gateway has the message
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Gateway URL (default: ws://127.0.0.1:<port from the config>)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Shared gateway token (default: the config's or the state directory's token)
    #[arg(
        long,
        env = "PINCER_GATEWAY_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Gateway password, for gateways with gateway.auth.mode = "password"
    #[arg(
        long,
        env = "PINCER_GATEWAY_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub password: Option<String>,
    /// Print the raw JSON result
    #[arg(long)]
    pub json: bool,
    /// Give up after this many milliseconds
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct CallArgs {
    /// Method name, e.g. health, status, config.get
    pub method: String,
    /// Params as a JSON (or JSON5) object
    #[arg(long, value_name = "JSON")]
    pub params: Option<String>,
    /// Wait for the final answer of a method that answers twice (`agent`: accepted, then
    /// the result); raise --timeout for long turns
    #[arg(long)]
    pub expect_final: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print the config (secrets redacted), or one value by dotted key
    Get {
        /// Dotted key, e.g. gateway.port
        key: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Set one value by dotted key; the value is JSON5 (bare words are strings)
    Set {
        /// Dotted key, e.g. gateway.port
        key: String,
        /// New value, e.g. 18790, true, "text" or {a: 1}
        value: String,
    },
    /// Check the config file and report every problem with its line
    Validate {
        /// Print the findings as JSON
        #[arg(long)]
        json: bool,
        /// File to check instead of the state directory's pincer.json
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn gateway_alone_and_gateway_run_both_run_the_daemon() {
        let cli = Cli::try_parse_from(["pincer", "gateway", "--port", "1234"]).unwrap();
        let Command::Gateway(g) = cli.command else {
            panic!()
        };
        assert!(g.sub.is_none());
        assert_eq!(g.run.port, Some(1234));
        let cli = Cli::try_parse_from(["pincer", "gateway", "run", "--port", "5"]).unwrap();
        let Command::Gateway(g) = cli.command else {
            panic!()
        };
        assert!(matches!(
            g.sub,
            Some(GatewaySub::Run(RunArgs { port: Some(5), .. }))
        ));
        let cli = Cli::try_parse_from([
            "pincer", "gateway", "call", "health", "--json", "--url", "ws://x",
        ])
        .unwrap();
        let Command::Gateway(g) = cli.command else {
            panic!()
        };
        assert!(
            matches!(g.sub, Some(GatewaySub::Call(CallArgs { ref method, .. })) if method == "health")
        );
    }
}
