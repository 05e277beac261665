//! The command line, as clap derive types, and the flag combinations it resolves to.

use baton_client::{CreateMode, CreateOptions};
use clap::{Args, Parser, Subcommand};

use crate::exit;

/// The endpoint used when neither `--endpoints` nor `BATON_ENDPOINTS` is given: the
/// server's default client address.
pub const DEFAULT_ENDPOINTS: &str = "127.0.0.1:7181";

#[derive(Debug, Parser)]
#[command(
    name = "baton",
    version,
    about = "Command-line client of the Baton coordination service.",
    after_help = exit::HELP,
)]
pub struct Cli {
    /// Servers to connect to, host:port, comma-separated; the first that answers is used.
    #[arg(
        long,
        global = true,
        env = "BATON_ENDPOINTS",
        value_delimiter = ',',
        default_value = DEFAULT_ENDPOINTS
    )]
    pub endpoints: Vec<String>,

    /// Print one JSON object per command instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a znode; prints the path created (with the sequence suffix for -s).
    Create(CreateArgs),
    /// Print a znode's data (then its Stat with --stat).
    Get {
        path: String,
        /// Also print the Stat, one `name = value` per line.
        #[arg(long)]
        stat: bool,
    },
    /// Replace a znode's data.
    Set {
        path: String,
        /// The new data; `-` reads it from stdin.
        data: String,
        /// Only if the znode's version is this one (-1 = any).
        #[arg(short = 'v', long, default_value_t = -1, allow_negative_numbers = true)]
        version: i32,
    },
    /// Delete a znode (with -r, and everything under it).
    Delete {
        path: String,
        /// Only if the znode's version is this one (-1 = any).
        #[arg(short = 'v', long, default_value_t = -1, allow_negative_numbers = true)]
        version: i32,
        /// Delete the whole subtree, children first.
        #[arg(short = 'r', long, conflicts_with = "version")]
        recursive: bool,
    },
    /// List a znode's children (with -R, the full paths of its whole subtree).
    Ls {
        path: String,
        /// The whole subtree, depth-first, as full paths.
        #[arg(short = 'R', long)]
        recursive: bool,
    },
    /// Print a znode's Stat.
    Stat { path: String },
    /// Print `true` (exit 0) if the znode exists, `false` (exit 1) if not.
    Exists { path: String },
    /// Wait until the server has caught up with the leader; prints the zxid it reached.
    Sync { path: String },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub path: String,
    /// The data; `-` reads it from stdin. Empty when left out.
    pub data: Option<String>,
    /// Ephemeral: deleted when the session ends (needs a session).
    #[arg(short = 'e', long)]
    pub ephemeral: bool,
    /// Sequential: a 10-digit increasing counter is appended to the name.
    #[arg(short = 's', long)]
    pub sequential: bool,
    /// Container: deleted by the server once its last child is gone.
    #[arg(long, conflicts_with_all = ["ephemeral", "sequential", "ttl"])]
    pub container: bool,
    /// Time to live in milliseconds: deleted once unchanged and childless for this long.
    #[arg(long, value_name = "MS", conflicts_with = "ephemeral",
          value_parser = clap::value_parser!(i64).range(1..))]
    pub ttl: Option<i64>,
}

impl CreateArgs {
    /// The create mode and TTL the flags ask for. clap has already rejected the
    /// combinations that name no mode (container with anything, ephemeral with a TTL).
    pub fn options(&self) -> CreateOptions {
        let mode = match (self.container, self.ephemeral, self.sequential, self.ttl.is_some()) {
            (true, ..) => CreateMode::Container,
            (false, true, false, _) => CreateMode::Ephemeral,
            (false, true, true, _) => CreateMode::EphemeralSequential,
            (false, false, false, false) => CreateMode::Persistent,
            (false, false, true, false) => CreateMode::PersistentSequential,
            (false, false, false, true) => CreateMode::PersistentWithTtl,
            (false, false, true, true) => CreateMode::PersistentSequentialWithTtl,
        };
        CreateOptions { mode, ttl_ms: self.ttl.unwrap_or(0) }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("baton").chain(args.iter().copied()))
    }

    fn create_options(args: &[&str]) -> CreateOptions {
        let mut full = vec!["create"];
        full.extend_from_slice(args);
        full.push("/p");
        match parse(&full).unwrap().command {
            Command::Create(create) => create.options(),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn create_flags_resolve_to_modes() {
        use CreateMode::*;
        let cases: &[(&[&str], CreateMode, i64)] = &[
            (&[], Persistent, 0),
            (&["-s"], PersistentSequential, 0),
            (&["-e"], Ephemeral, 0),
            (&["-e", "-s"], EphemeralSequential, 0),
            (&["-es"], EphemeralSequential, 0),
            (&["--container"], Container, 0),
            (&["--ttl", "5000"], PersistentWithTtl, 5000),
            (&["-s", "--ttl", "10"], PersistentSequentialWithTtl, 10),
        ];
        for (flags, mode, ttl_ms) in cases {
            assert_eq!(
                create_options(flags),
                CreateOptions { mode: *mode, ttl_ms: *ttl_ms },
                "{flags:?}"
            );
        }
    }

    #[test]
    fn contradictory_create_flags_are_usage_errors() {
        for flags in [
            &["--container", "-e"][..],
            &["--container", "-s"],
            &["--container", "--ttl", "5"],
            &["-e", "--ttl", "5"],
            &["--ttl", "0"],
            &["--ttl", "-3"],
            &["--ttl", "soon"],
        ] {
            let mut args = vec!["create"];
            args.extend_from_slice(flags);
            args.push("/p");
            let err = parse(&args).unwrap_err();
            assert_eq!(err.exit_code(), exit::USAGE, "{flags:?}");
        }
    }

    #[test]
    fn create_data_is_optional() {
        let Command::Create(create) = parse(&["create", "/p", "hello"]).unwrap().command else {
            panic!("not a create");
        };
        assert_eq!(create.data.as_deref(), Some("hello"));
        let Command::Create(create) = parse(&["create", "/p"]).unwrap().command else {
            panic!("not a create");
        };
        assert_eq!(create.data, None);
    }

    #[test]
    fn versions_default_to_any_and_accept_minus_one() {
        match parse(&["set", "/p", "d"]).unwrap().command {
            Command::Set { version, .. } => assert_eq!(version, -1),
            other => panic!("{other:?}"),
        }
        match parse(&["set", "/p", "d", "--version", "3"]).unwrap().command {
            Command::Set { version, .. } => assert_eq!(version, 3),
            other => panic!("{other:?}"),
        }
        match parse(&["delete", "/p", "-v", "-1"]).unwrap().command {
            Command::Delete { version, recursive, .. } => {
                assert_eq!((version, recursive), (-1, false))
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["delete", "-r", "/p", "--version", "2"]).is_err());
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = parse(&["get", "/p", "--json", "--endpoints", "a:1,b:2"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.endpoints, ["a:1", "b:2"]);
        let cli = parse(&["--json", "ls", "-R", "/"]).unwrap();
        assert!(cli.json);
        assert!(matches!(cli.command, Command::Ls { recursive: true, .. }));
    }

    #[test]
    fn endpoints_default_to_the_local_server() {
        // Only meaningful when the environment does not set BATON_ENDPOINTS.
        if std::env::var_os("BATON_ENDPOINTS").is_none() {
            assert_eq!(parse(&["stat", "/"]).unwrap().endpoints, [DEFAULT_ENDPOINTS]);
        }
    }

    #[test]
    fn missing_arguments_are_usage_errors() {
        for args in [&["get"][..], &["set", "/p"], &["frobnicate"], &[]] {
            assert_eq!(parse(args).unwrap_err().exit_code(), exit::USAGE, "{args:?}");
        }
    }
}
