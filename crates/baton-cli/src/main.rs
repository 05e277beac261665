//! `baton`: the command-line client of Baton.
//!
//! Parses the command line, connects with baton-client, runs one command and prints its
//! result as text or (`--json`) one JSON object. Errors are one line on stderr,
//! `baton: <message>`, and the exit code says who failed (see `baton --help`).
//!
//! # Layout
//! - `args`: the clap definitions and how create flags resolve to a mode.
//! - `run`: one command against a client.
//! - `output`: text and JSON rendering.
//! - `exit`: exit codes.
//!
//! It must never speak gRPC itself (that is baton-client's job) nor print more than one
//! line for an error.

mod args;
mod exit;
mod output;
mod run;

use std::io::Write;

use anyhow::Context;
use baton_client::Client;
use clap::Parser;

use crate::{args::Cli, output::Output};

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
    let client = Client::connect(&cli.endpoints).await?;
    let output = run::run(&client, cli.command).await?;
    print(&output, cli.json).context("writing the output")?;
    Ok(output.exit_code())
}

fn print(output: &Output, json: bool) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut stdout, &output.to_json())?;
        writeln!(stdout)?;
    } else {
        output.write_text(&mut stdout)?;
    }
    stdout.flush()
}
