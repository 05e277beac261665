//! `baton`: the command-line client of Baton.
//!
//! Parses the command line, connects with baton-client, runs one command and prints its
//! result as text or (`--json`) one JSON object. The tree commands use one-shot calls;
//! `create -e`, `watch`, `lock` and `session` open a session and run until done or
//! interrupted, printing one line per event. Errors are one line on stderr,
//! `baton: <message>`, and the exit code says who failed (see `baton --help`).
//!
//! # Layout
//! - `args`: the clap definitions and how create flags resolve to a mode.
//! - `run`: one tree command against a client.
//! - `hold`: `create -e` and `session open`, which hold a session until told to stop.
//! - `watch`: `watch`, a persistent watch printed line by line.
//! - `lock`: `lock PATH -- COMMAND`.
//! - `status`: `status`, each server's `/status` from its admin port.
//! - `signal`: SIGINT/SIGTERM handling for the long-running commands.
//! - `output`: text and JSON rendering of one result; `lines`: of a stream of events.
//! - `exit`: exit codes.
//!
//! It must never speak gRPC itself (that is baton-client's job) nor print more than one
//! line for an error.

mod args;
mod exit;
mod hold;
mod lines;
mod lock;
mod output;
mod run;
mod signal;
mod status;
mod watch;

use anyhow::Context;
use baton_client::{Client, ConnectOptions, SessionOptions};
use clap::Parser;

use crate::args::{Cli, Command, SessionCommand, TreeCommand};

fn main() {
    let cli = Cli::parse();
    let code = match tokio_runtime().and_then(|rt| rt.block_on(execute(cli))) {
        Ok(code) => code,
        Err(error) => {
            // `{:#}` joins anyhow's context chain on one line: exactly one line on stderr.
            eprintln!("baton: {error:#}");
            exit::for_error(&error)
        }
    };
    std::process::exit(code);
}

/// One command runs at a time, so a single-threaded runtime is enough.
fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn execute(cli: Cli) -> anyhow::Result<i32> {
    let tls = cli.tls();
    let options = SessionOptions {
        timeout_ms: cli.session_timeout_ms,
        credentials: cli.auth.clone(),
        tls: tls.clone(),
        ..SessionOptions::default()
    };
    let endpoints = &cli.endpoints;
    match cli.command {
        Command::Digest { user_password } => {
            let (user, password) = user_password
                .split_once(':')
                .filter(|(user, _)| !user.is_empty())
                .context("expected USER:PASSWORD")?;
            let output =
                output::Output::Digest { id: baton_client::acl::digest_id(user, password) };
            output::print(&output, cli.json).context("writing the output")?;
            Ok(exit::OK)
        }
        Command::Tree(TreeCommand::Create(create)) if create.ephemeral => {
            hold::create_ephemeral(endpoints, options, create, cli.json).await
        }
        Command::Tree(command) => {
            let client = Client::connect_with(endpoints, ConnectOptions { tls }).await?;
            client.set_credentials(cli.auth.clone());
            let output = run::run(&client, command).await?;
            output::print(&output, cli.json).context("writing the output")?;
            Ok(output.exit_code())
        }
        Command::Watch(watch) => watch::run(endpoints, options, watch, cli.json).await,
        Command::Lock(lock) => lock::run(endpoints, options, lock).await,
        Command::Status { admin } => status::run(&admin, tls.as_ref(), cli.json).await,
        Command::Session { command: SessionCommand::Open { timeout_ms, hold_ms } } => {
            let options =
                SessionOptions { timeout_ms: timeout_ms.unwrap_or(options.timeout_ms), ..options };
            hold::open_session(endpoints, options, hold_ms, cli.json).await
        }
    }
}
