//! The command line, as clap derive types, and the flag combinations it resolves to.

use std::path::PathBuf;

use baton_client::{
    Acl, ClientTls, CreateMode, CreateOptions, Credential, SESSION_TIMEOUT_MS_DEFAULT, acl,
};
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

    /// Print one JSON object per command (per line for watch and session) instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// The session timeout to ask for, for the commands that open a session (create -e,
    /// watch, lock); the server clamps it.
    #[arg(
        long,
        global = true,
        env = "BATON_SESSION_TIMEOUT_MS",
        value_name = "MS",
        default_value_t = SESSION_TIMEOUT_MS_DEFAULT
    )]
    pub session_timeout_ms: u32,

    /// Authenticate as SCHEME:CREDENTIALS, as zkCli's addauth takes them
    /// (`digest:alice:secret`); repeat for more identities. Sent with every call and
    /// in every session's connect.
    #[arg(long, global = true, env = "BATON_AUTH", value_name = "SCHEME:CREDENTIALS",
          value_parser = parse_credential, hide_env_values = true)]
    pub auth: Vec<Credential>,
    // TLS to the servers' client port: with any of these flags every endpoint is
    // dialled with TLS (host:port or https://host:port).
    /// CA (PEM) the servers' certificates must chain to (default: the built-in Mozilla
    /// roots). Turns TLS on.
    #[arg(long, global = true, env = "BATON_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// Client certificate (PEM) presented to servers that ask for one; with --tls-key.
    /// Turns TLS on.
    #[arg(long, global = true, env = "BATON_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, global = true, env = "BATON_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

fn parse_credential(text: &str) -> Result<Credential, String> {
    Credential::parse(text)
}

/// An ACL as zkCli writes it: comma-separated `scheme:id:perms`.
fn parse_acl(text: &str) -> Result<Acl, String> {
    acl::parse_acl(text)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Tree(TreeCommand),
    /// Watch a znode: print one line per event until interrupted (or --count events).
    ///
    /// Each line is `NODE_CREATED /a/b zxid=0x…` (one JSON object with --json:
    /// {"type":"NODE_CREATED","path":"/a/b","zxid":N}); nothing else goes to stdout.
    /// Without flags: every event of PATH itself (a persistent watch, set again after a
    /// reconnect, so no event is missed between re-arms).
    Watch(WatchArgs),
    /// Run a command while holding the lock at PATH; exit with the command's exit code.
    ///
    /// COMMAND gets BATON_LOCK_NODE and BATON_LOCK_FENCING_TOKEN (a number that grows with
    /// every holder) in its environment. If the session expires while COMMAND runs, the
    /// lock is lost: COMMAND is killed and baton exits 6. SIGINT/SIGTERM kill COMMAND,
    /// then the lock is released.
    Lock(LockArgs),
    /// Session commands (`session open`).
    Session {
        #[command(subcommand)]
        command: SessionCommand,
    },
    /// Print each server's role in its ensemble, one line per admin endpoint (HTTPS
    /// with the --tls-* flags):
    /// id, role, leader, broadcast, epoch, logged / committed / applied zxids, znodes,
    /// sessions and tree digest (equal digests: equal trees). Exits 4 if one is unreachable.
    /// Print the digest id of USER:PASSWORD, `user:base64(sha1(user:password))`, for
    /// `digest:` ACL entries, --super-digest and --digest-users (no server is contacted).
    Digest {
        #[arg(value_name = "USER:PASSWORD")]
        user_password: String,
    },
    Status {
        /// Admin HTTP endpoints (host:port), comma-separated.
        #[arg(
            long,
            env = "BATON_ADMIN_ENDPOINTS",
            value_delimiter = ',',
            default_value = "127.0.0.1:7180"
        )]
        admin: Vec<String>,
    },
}

/// The one-shot commands on the tree (no session, except `create -e`).
#[derive(Debug, Subcommand)]
pub enum TreeCommand {
    /// Create a znode; prints the path created (with the sequence suffix for -s).
    ///
    /// With -e the node lives as long as the command's session: baton prints the path,
    /// holds the node until SIGINT or SIGTERM (or --hold-ms), then closes the session
    /// (the node goes at once) and exits 0.
    Create(CreateArgs),
    /// Print a znode's data (then its Stat with --stat).
    Get {
        path: String,
        /// Also print the Stat, one `name = value` per line.
        #[arg(long)]
        stat: bool,
        /// A linearizable read: the server confirms with a quorum that its leader
        /// still leads and answers once it has applied what was committed then.
        #[arg(long)]
        linearizable: bool,
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
    /// Read or replace a znode's ACL (`acl get`, `acl set`).
    Acl {
        #[command(subcommand)]
        command: AclCommand,
    },
    /// Print the identities the calls run with (`scheme:id`, one per line; a digest
    /// shows its user only).
    Whoami,
    /// Quotas on subtrees (`quota set`, `quota get`, `quota rm`).
    Quota {
        #[command(subcommand)]
        command: QuotaCommand,
    },
    /// The ensemble's membership (`members list`, `add`, `remove`, `set-role`, `set`):
    /// ZooKeeper's reconfig. Changes go through the leader, one at a time; a new
    /// voter joins as an observer and is promoted once it has caught up.
    Members {
        #[command(subcommand)]
        command: MembersCommand,
    },
    /// Leadership (`leader transfer`).
    Leader {
        #[command(subcommand)]
        command: LeaderCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// Print the configuration in force: its version, then one line per member
    /// (`ID ADDR voter|observer`, `*` after the leader).
    List,
    /// Add server ID at PEER_ADDR (host:port of its peer port): a voter, or an
    /// observer with --observer. Start the server first (its --peers naming the
    /// ensemble and itself).
    Add {
        /// The new member's id (its --id).
        id: u64,
        /// Where the members reach it: its peer port, HOST:PORT.
        peer_addr: String,
        /// Add it as an observer (it serves but never votes).
        #[arg(long)]
        observer: bool,
        /// Only if the configuration in force has this version (hex, as `list`
        /// prints it).
        #[arg(long, value_name = "VERSION", value_parser = parse_hex)]
        from_version: Option<u64>,
    },
    /// Remove server ID (removing the leader hands leadership over first).
    Remove {
        id: u64,
        #[arg(long, value_name = "VERSION", value_parser = parse_hex)]
        from_version: Option<u64>,
    },
    /// Make server ID a voter or an observer.
    SetRole {
        id: u64,
        #[arg(value_parser = ["voter", "observer"])]
        role: String,
        #[arg(long, value_name = "VERSION", value_parser = parse_hex)]
        from_version: Option<u64>,
    },
    /// Remove this member when its id is above the base ensemble's size (a
    /// StatefulSet pod's preStop hook: pods beyond the base ensemble join on start,
    /// with the server's --join, and leave on stop; the base members stay). The id
    /// is --id, else the host name's ordinal + 1 (pod `baton-3` is member 4).
    Leave {
        /// The base ensemble's size: members 1..=N never leave.
        #[arg(long, value_name = "N")]
        above: u64,
        #[arg(long)]
        id: Option<u64>,
    },
    /// Replace the whole membership by MEMBERS: `ID=HOST:PORT` entries, with
    /// `:observer` for an observer (the --peers form).
    Set {
        #[arg(required = true, value_parser = parse_member)]
        members: Vec<baton_client::ConfigMember>,
        #[arg(long, value_name = "VERSION", value_parser = parse_hex)]
        from_version: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum LeaderCommand {
    /// Hand leadership to server ID (default: the voter that has logged the most),
    /// without an election timeout. Ask the leader (--endpoints naming it first).
    Transfer { id: Option<u64> },
}

fn parse_hex(text: &str) -> Result<u64, String> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    u64::from_str_radix(digits, 16).map_err(|e| format!("`{text}` is not a hex version: {e}"))
}

/// `ID=HOST:PORT` or `ID=HOST:PORT:observer`.
fn parse_member(text: &str) -> Result<baton_client::ConfigMember, String> {
    let (id, addr) = text.split_once('=').ok_or_else(|| format!("`{text}` is not ID=HOST:PORT"))?;
    let id: u64 = id.parse().map_err(|e| format!("bad id in `{text}`: {e}"))?;
    let (addr, voter) = match addr.strip_suffix(":observer") {
        Some(addr) => (addr, false),
        None => (addr.strip_suffix(":participant").unwrap_or(addr), true),
    };
    Ok(baton_client::ConfigMember { id, addr: addr.to_owned(), voter })
}

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Print a znode's ACL, one `scheme:id:perms` entry per line (digests are masked
    /// without ADMIN on it).
    Get { path: String },
    /// Replace a znode's ACL with ACL: comma-separated `scheme:id:perms` entries
    /// (`world:anyone:r`, `digest:alice:<base64 sha1>:cdrwa`, `auth::cdrwa`,
    /// `ip:10.0.0.0/8:r`).
    Set {
        path: String,
        #[arg(value_parser = parse_acl)]
        acl: Acl,
        /// Only if the znode's ACL version (aversion) is this one (-1 = any).
        #[arg(short = 'v', long, default_value_t = -1, allow_negative_numbers = true)]
        version: i32,
    },
}

#[derive(Debug, Subcommand)]
pub enum QuotaCommand {
    /// Set (replace) the quota on the subtree at PATH: at most --count znodes (PATH
    /// included) and --bytes of data. Soft by default (exceeding it logs a warning on
    /// the server); with --hard a create or set that would exceed it fails.
    Set {
        path: String,
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        #[arg(long, value_name = "B")]
        bytes: Option<u64>,
        #[arg(long)]
        hard: bool,
    },
    /// Print the quota on PATH and what its subtree holds now.
    Get { path: String },
    /// Remove the quota on PATH.
    Rm { path: String },
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
    /// With -e: hold the node this long, then close the session and exit 0 (instead of
    /// waiting for SIGINT/SIGTERM).
    #[arg(long, value_name = "MS", requires = "ephemeral")]
    pub hold_ms: Option<u64>,
    /// The node's ACL: comma-separated `scheme:id:perms` (default `world:anyone:cdrwa`).
    #[arg(long, value_parser = parse_acl)]
    pub acl: Option<Acl>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    pub path: String,
    /// Only the child changes of PATH (NODE_CHILDREN_CHANGED): a persistent watch on PATH
    /// whose other events are not printed.
    #[arg(long, conflicts_with = "recursive")]
    pub children: bool,
    /// PATH and everything below it: created, deleted and data changed (a
    /// persistent-recursive watch; child events are left out, as in ZooKeeper).
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Exit 0 after N events.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The lock's znode (created if missing); holders queue as its children.
    pub path: String,
    /// The command to run and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Open a session and hold it until SIGINT/SIGTERM (or --hold-ms).
    ///
    /// Prints `session_id=0x… timeout_ms=N` once connected, then one line per change of
    /// state (`state=DISCONNECTED`, `state=CONNECTED`); exits 6 if the session expires.
    Open {
        /// The session timeout to ask for (default: --session-timeout-ms).
        #[arg(long, value_name = "MS")]
        timeout_ms: Option<u32>,
        /// Close the session after this long instead of waiting for a signal.
        #[arg(long, value_name = "MS")]
        hold_ms: Option<u64>,
    },
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
        CreateOptions {
            mode,
            ttl_ms: self.ttl.unwrap_or(0),
            acl: self.acl.clone().unwrap_or_default(),
        }
    }
}

impl Cli {
    /// The TLS options the `--tls-*` flags give; `None` (plain text) without any.
    pub fn tls(&self) -> Option<ClientTls> {
        if self.tls_ca.is_none() && self.tls_cert.is_none() && self.tls_key.is_none() {
            return None;
        }
        Some(ClientTls {
            ca: self.tls_ca.clone(),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
        })
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
            Command::Tree(TreeCommand::Create(create)) => create.options(),
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
                CreateOptions { mode: *mode, ttl_ms: *ttl_ms, acl: Acl::new() },
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
        let Command::Tree(TreeCommand::Create(create)) =
            parse(&["create", "/p", "hello"]).unwrap().command
        else {
            panic!("not a create");
        };
        assert_eq!(create.data.as_deref(), Some("hello"));
        let Command::Tree(TreeCommand::Create(create)) = parse(&["create", "/p"]).unwrap().command
        else {
            panic!("not a create");
        };
        assert_eq!(create.data, None);
    }

    #[test]
    fn versions_default_to_any_and_accept_minus_one() {
        match parse(&["set", "/p", "d"]).unwrap().command {
            Command::Tree(TreeCommand::Set { version, .. }) => assert_eq!(version, -1),
            other => panic!("{other:?}"),
        }
        match parse(&["set", "/p", "d", "--version", "3"]).unwrap().command {
            Command::Tree(TreeCommand::Set { version, .. }) => assert_eq!(version, 3),
            other => panic!("{other:?}"),
        }
        match parse(&["delete", "/p", "-v", "-1"]).unwrap().command {
            Command::Tree(TreeCommand::Delete { version, recursive, .. }) => {
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
        assert!(matches!(cli.command, Command::Tree(TreeCommand::Ls { recursive: true, .. })));
    }

    #[test]
    fn endpoints_default_to_the_local_server() {
        // Only meaningful when the environment does not set BATON_ENDPOINTS.
        if std::env::var_os("BATON_ENDPOINTS").is_none() {
            assert_eq!(parse(&["stat", "/"]).unwrap().endpoints, [DEFAULT_ENDPOINTS]);
        }
    }

    #[test]
    fn watch_flags() {
        let Command::Watch(watch) = parse(&["watch", "/a", "--count", "3"]).unwrap().command else {
            panic!("not a watch");
        };
        assert_eq!((watch.path.as_str(), watch.count), ("/a", Some(3)));
        assert!(!watch.children && !watch.recursive);
        let Command::Watch(watch) = parse(&["watch", "-R", "/"]).unwrap().command else {
            panic!("not a watch");
        };
        assert!(watch.recursive);
        for bad in [&["watch", "/a", "--children", "-R"][..], &["watch", "/a", "--count", "0"]] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), exit::USAGE, "{bad:?}");
        }
    }

    #[test]
    fn lock_takes_a_command_after_a_double_dash() {
        let cli = parse(&["lock", "/l", "--", "sh", "-c", "exit 3"]).unwrap();
        let Command::Lock(lock) = cli.command else { panic!("not a lock") };
        assert_eq!(lock.path, "/l");
        assert_eq!(lock.command, ["sh", "-c", "exit 3"]);
        assert_eq!(parse(&["lock", "/l"]).unwrap_err().exit_code(), exit::USAGE);
    }

    #[test]
    fn hold_needs_an_ephemeral_create() {
        let Command::Tree(TreeCommand::Create(create)) =
            parse(&["create", "-e", "/p", "--hold-ms", "50"]).unwrap().command
        else {
            panic!("not a create");
        };
        assert_eq!(create.hold_ms, Some(50));
        assert_eq!(
            parse(&["create", "/p", "--hold-ms", "5"]).unwrap_err().exit_code(),
            exit::USAGE
        );
    }

    #[test]
    fn session_open_and_its_timeouts() {
        let cli = parse(&["session", "open", "--timeout-ms", "4000"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Session {
                command: SessionCommand::Open { timeout_ms: Some(4000), hold_ms: None }
            }
        ));
        if std::env::var_os("BATON_SESSION_TIMEOUT_MS").is_none() {
            assert_eq!(cli.session_timeout_ms, SESSION_TIMEOUT_MS_DEFAULT);
        }
        let cli = parse(&["watch", "/", "--session-timeout-ms", "3000"]).unwrap();
        assert_eq!(cli.session_timeout_ms, 3000);
    }

    #[test]
    fn missing_arguments_are_usage_errors() {
        for args in [&["get"][..], &["set", "/p"], &["frobnicate"], &[]] {
            assert_eq!(parse(args).unwrap_err().exit_code(), exit::USAGE, "{args:?}");
        }
    }
}
