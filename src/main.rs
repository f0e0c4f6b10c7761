use std::process::ExitCode;

use clap::Parser;
use pincer::cli::{Cli, Command, GatewaySub};
use pincer::commands;
use pincer::setup::Globals;

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
            _ => ExitCode::from(2),
        }
    })
}
