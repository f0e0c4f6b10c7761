use std::process::ExitCode;

use clap::Parser;
use pincer::cli::{AgentsCommand, Cli, Command, ConfigCmd, GatewaySub};
use pincer::setup::Globals;
use pincer::{
    agent_cmd, agents_cmd, audit_cmd, channels_cmd, commands, config_cmd, doctor, message_cmd,
    onboard, sandbox_cmd,
};

/// jemalloc rather than glibc's malloc: the gateway allocates and frees small buffers on
/// one worker and hands them to another all day, which glibc's arenas handle poorly
/// (about a third of the CPU of a message flood went to malloc/free). Measured in
/// docs/PERFORMANCE.md ("Allocator"); why this crate, in docs/dependencies.md.
#[cfg(unix)]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let globals = Globals {
        profile: cli.profile.clone(),
        log_format: cli.log_format,
        log_level: cli.log_level.clone(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Gateway(g) => match g.sub {
                None => pincer::daemon::main(&globals, g.run).await,
                Some(GatewaySub::Run(run)) => pincer::daemon::main(&globals, run).await,
                Some(GatewaySub::Call(call)) => commands::call(&globals, call).await,
            },
            Command::Health(args) => commands::health(&globals, args).await,
            Command::Status(args) => commands::status(&globals, args).await,
            Command::Config { cmd } => match cmd {
                ConfigCmd::Get { key, json } => config_cmd::get(&globals, key, json),
                ConfigCmd::Set { key, value } => config_cmd::set(&globals, &key, &value),
                ConfigCmd::Validate { json, file } => config_cmd::validate(&globals, json, file),
            },
            Command::Doctor { json } => doctor::run(&globals, json).await,
            Command::Onboard { yes, force } => onboard::run(&globals, yes, force),
            Command::Agent(args) => agent_cmd::agent(&globals, args).await,
            Command::Sessions { cmd } => agent_cmd::sessions(&globals, cmd).await,
            Command::Agents { cmd } => match cmd {
                AgentsCommand::Gateway(cmd) => agent_cmd::agents(&globals, cmd).await,
                AgentsCommand::Add(args) => agents_cmd::add(&globals, args),
                AgentsCommand::Remove(args) => agents_cmd::remove(&globals, args),
            },
            Command::Audit(args) => audit_cmd::audit(&globals, args).await,
            Command::Chat(args) => agent_cmd::chat(&globals, args).await,
            Command::MockLlm { listen } => agent_cmd::mock_llm(listen).await,
            Command::Sandbox { cmd } => sandbox_cmd::sandbox(&globals, cmd).await,
            Command::Channels { cmd } => channels_cmd::channels(&globals, cmd).await,
            Command::Pairing { cmd } => channels_cmd::pairing(&globals, cmd).await,
            Command::Message { cmd } => message_cmd::message(&globals, cmd).await,
            Command::Cron { cmd } => pincer::cron_cmd::cron(&globals, cmd).await,
        }
    })
}
