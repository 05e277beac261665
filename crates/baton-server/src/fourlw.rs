//! ZooKeeper's four-letter words (`ruok`, `srvr`, `mntr`, ...): the texts ZooKeeper's
//! tools and monitoring parse, line for line in ZooKeeper's shapes. The admin port
//! serves them as `GET /commands/<name>`; the text is made here, apart from any
//! transport, so that the ZooKeeper client port can answer them too.

use std::fmt::Write;

use baton_api::admin::Role;

use crate::{
    config::Config,
    session::tracker::{TIMEOUT_TICKS_MAX, TIMEOUT_TICKS_MIN},
    shared::Shared,
};

/// The version every text reports: ZooKeeper's tools compare it against the ZooKeeper
/// release whose protocol they expect, so it names the one Baton speaks, then Baton's.
/// Only `[A-Za-z0-9.-]`, which is what parsers of `srvr` accept (go-zookeeper's `FLWSrvr`).
pub(crate) const VERSION: &str = concat!("3.9.0-baton-", env!("CARGO_PKG_VERSION"));

/// Baton records no build time; `srvr`'s first line still carries one in the
/// `MM/dd/yyyy HH:mm zone` form its parsers require, so it is the Unix epoch.
const BUILT_ON: &str = "01/01/1970 00:00 GMT";

/// Every word answered here. ZooKeeper knows others (`dump`, `wchc`, `wchp`, `crst`,
/// `srst`, `gtmk`, `stmk`): Baton answers those with 404.
pub(crate) const COMMANDS: [&str; 10] =
    ["ruok", "isro", "srvr", "stat", "mntr", "conf", "envi", "wchs", "dirs", "cons"];

/// ZooKeeper's default `4lw.commands.whitelist` since 3.5.3: `srvr` only, what
/// `zkServer.sh status` needs.
pub(crate) const WHITELIST_DEFAULT: &str = "srvr";

/// Names a whitelist may hold at most (ZooKeeper has 17 words).
const WHITELIST_NAMES_MAX: usize = 64;

/// What ZooKeeper answers, instead of a word's text, while it serves no clients.
const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

/// The words a server answers: `*` (all) or a set of names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Whitelist {
    All,
    Only(Vec<String>),
}

impl Whitelist {
    /// Parses ZooKeeper's form: names separated by commas (spaces around them allowed),
    /// or `*`. Names ZooKeeper knows and Baton does not are kept (they answer 404), so
    /// a ZooKeeper configuration carries over.
    pub(crate) fn parse(text: &str) -> Result<Whitelist, String> {
        let names: Vec<&str> =
            text.split(',').map(str::trim).filter(|name| !name.is_empty()).collect();
        if names.contains(&"*") {
            return Ok(Whitelist::All);
        }
        if names.len() > WHITELIST_NAMES_MAX {
            return Err(format!("more than {WHITELIST_NAMES_MAX} names in the 4lw whitelist"));
        }
        if let Some(bad) =
            names.iter().find(|n| n.len() != 4 || !n.bytes().all(|b| b.is_ascii_lowercase()))
        {
            return Err(format!("`{bad}` is not a four-letter word"));
        }
        Ok(Whitelist::Only(names.into_iter().map(str::to_owned).collect()))
    }

    pub(crate) fn allows(&self, name: &str) -> bool {
        match self {
            Whitelist::All => true,
            Whitelist::Only(names) => names.iter().any(|n| n == name),
        }
    }
}

/// Why a word gets no text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not a word Baton answers.
    Unknown,
    /// A word left out of the whitelist: ZooKeeper's own sentence.
    NotWhitelisted(String),
}

/// What the words need besides [`Shared`]: fixed at start.
#[derive(Debug, Clone)]
pub(crate) struct Words {
    pub(crate) whitelist: Whitelist,
    /// `conf`'s lines, in order, named as ZooKeeper names them where it has the setting.
    pub(crate) conf: Vec<(&'static str, String)>,
}

impl Words {
    /// From the effective configuration. Never a secret: `--super-digest` and the
    /// TLS keys appear as whether they are set, never their values or contents.
    pub(crate) fn new(config: &Config, whitelist: Whitelist) -> Words {
        let mut conf = vec![
            ("clientPort", config.client_addr.port().to_string()),
            ("clientPortAddress", config.client_addr.ip().to_string()),
            ("dataDir", config.data_dir.display().to_string()),
            ("dataLogDir", config.data_dir.display().to_string()),
            ("tickTime", config.tick_ms.to_string()),
            ("minSessionTimeout", config.tick_ms.saturating_mul(TIMEOUT_TICKS_MIN).to_string()),
            ("maxSessionTimeout", config.tick_ms.saturating_mul(TIMEOUT_TICKS_MAX).to_string()),
            ("initLimit", config.init_limit.to_string()),
            ("syncLimit", config.sync_limit.to_string()),
            ("serverId", config.id.to_string()),
            ("jute.maxbuffer", config.request_bytes_max.to_string()),
            ("snapCount", config.snapshot_every_txns.to_string()),
            ("autopurge.snapRetainCount", config.snapshots_keep.to_string()),
            ("adminPort", config.admin_addr.port().to_string()),
            ("secureClient", config.tls_cert.is_some().to_string()),
            ("superDigestSet", config.super_digest.is_some().to_string()),
        ];
        for peer in &config.peers {
            conf.push(("server", format!("{}={}", peer.id, peer.addr)));
        }
        Words { whitelist, conf }
    }
}

/// The text of `name`, or why there is none.
pub(crate) fn answer(name: &str, shared: &Shared, words: &Words) -> Result<String, Refusal> {
    if !COMMANDS.contains(&name) {
        return Err(Refusal::Unknown);
    }
    if !words.whitelist.allows(name) {
        return Err(Refusal::NotWhitelisted(format!(
            "{name} is not executed because it is not in the whitelist.\n"
        )));
    }
    // These need the process only: ZooKeeper answers them while it elects too.
    match name {
        "ruok" => return Ok("imok".to_owned()),
        "isro" => return Ok("rw".to_owned()),
        "conf" => return Ok(lines(&words.conf)),
        "envi" => return Ok(envi(shared)),
        "dirs" => return Ok(dirs(shared)),
        _ => {}
    }
    let facts = match Facts::read(shared) {
        Ok(facts) if shared.serving() => facts,
        _ => return Ok(NOT_SERVING.to_owned()),
    };
    Ok(match name {
        "srvr" => srvr(&facts),
        "stat" => stat(&facts),
        "mntr" => mntr(&facts),
        "wchs" => wchs(&facts),
        _ => cons(&facts),
    })
}

/// Everything the texts report, read once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    pub(crate) latency: crate::metrics::LatencySummary,
    pub(crate) connections: u64,
    pub(crate) outstanding: u64,
    pub(crate) zxid: u64,
    pub(crate) mode: &'static str,
    pub(crate) node_count: u64,
    pub(crate) data_bytes: u64,
    pub(crate) ephemerals: u64,
    pub(crate) watches: u64,
    pub(crate) watchers: u64,
    pub(crate) watched_paths: u64,
    /// (session id, timeout in ms) of every open session.
    pub(crate) sessions: Vec<(u64, u32)>,
    /// On a leader of more than itself: (followers, synced followers).
    pub(crate) followers: Option<(u64, u64)>,
}

impl Facts {
    fn read(shared: &Shared) -> Result<Facts, crate::shared::TreePoisoned> {
        let tree = shared.read_tree()?;
        let membership = shared.membership();
        let sessions: Vec<(u64, u32)> =
            tree.sessions().iter().map(|s| (s.session, s.timeout_ms)).collect();
        let ephemerals = sessions.iter().map(|(id, _)| tree.ephemerals(*id).len() as u64).sum();
        let alone = membership.peers.len() <= 1;
        let mode = match membership.role {
            Role::Leading if alone => "standalone",
            Role::Leading => "leader",
            Role::Following => "follower",
            Role::Observing => "observer",
            Role::Looking => "looking",
        };
        // Baton keeps no per-follower sync state here: a follower counts as synced
        // while the leader broadcasts (it has a quorum of them then).
        let followers = (membership.role == Role::Leading && !alone).then(|| {
            let followers = membership.peers.len() as u64 - 1;
            (followers, if membership.broadcasting { followers } else { 0 })
        });
        // Before the watches' lock: the session hub's lock order is tracker → watches.
        let connections = shared.sessions.session_count() as u64;
        let watches = shared.sessions.watches();
        Ok(Facts {
            latency: shared.metrics.latency(),
            connections,
            outstanding: shared
                .metrics
                .write_queue_depth
                .load(std::sync::atomic::Ordering::Relaxed),
            zxid: tree.last_zxid(),
            mode,
            node_count: tree.node_count() as u64,
            data_bytes: tree.data_bytes(),
            ephemerals,
            watches: watches.len() as u64,
            watchers: watches.watcher_count() as u64,
            watched_paths: watches.path_count() as u64,
            sessions,
            followers,
        })
    }
}

fn ms(micros: u64) -> u64 {
    micros / 1_000
}

fn avg_ms(latency: &crate::metrics::LatencySummary) -> f64 {
    if latency.count == 0 { 0.0 } else { latency.sum_micros as f64 / latency.count as f64 / 1e3 }
}

pub(crate) fn srvr(facts: &Facts) -> String {
    let l = &facts.latency;
    format!(
        "Zookeeper version: {VERSION}, built on {BUILT_ON}\n\
         Latency min/avg/max: {}/{:.4}/{}\n\
         Received: {}\nSent: {}\nConnections: {}\nOutstanding: {}\n\
         Zxid: {:#x}\nMode: {}\nNode count: {}\n",
        ms(l.min_micros),
        avg_ms(l),
        ms(l.max_micros),
        l.count,
        l.count,
        facts.connections,
        facts.outstanding,
        facts.zxid,
        facts.mode,
        facts.node_count,
    )
}

/// `srvr` with the `Clients:` section ZooKeeper puts after its first line.
pub(crate) fn stat(facts: &Facts) -> String {
    let srvr = srvr(facts);
    let (version, rest) = srvr.split_once('\n').unwrap_or((&srvr, ""));
    format!("{version}\nClients:\n{}\n{rest}", cons(facts))
}

pub(crate) fn mntr(facts: &Facts) -> String {
    let l = &facts.latency;
    let mut out = String::new();
    let mut line = |key: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(out, "zk_{key}\t{value}");
    };
    line("version", &format!("{VERSION}, built on {BUILT_ON}").replace(' ', "_"));
    line("avg_latency", &format!("{:.4}", avg_ms(l)));
    line("max_latency", &ms(l.max_micros));
    line("min_latency", &ms(l.min_micros));
    line("packets_received", &l.count);
    line("packets_sent", &l.count);
    line("num_alive_connections", &facts.connections);
    line("outstanding_requests", &facts.outstanding);
    line("server_state", &facts.mode);
    line("znode_count", &facts.node_count);
    line("watch_count", &facts.watches);
    line("ephemerals_count", &facts.ephemerals);
    line("approximate_data_size", &facts.data_bytes);
    if let Some((open, max)) = file_descriptors() {
        line("open_file_descriptor_count", &open);
        line("max_file_descriptor_count", &max);
    }
    if let Some((followers, synced)) = facts.followers {
        line("followers", &followers);
        line("synced_followers", &synced);
    }
    out
}

/// Open descriptors and their soft limit, where `/proc` tells (Linux); `None` elsewhere.
fn file_descriptors() -> Option<(u64, u64)> {
    let open = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.trim_start_matches("Max open files").split_whitespace().next()?;
    // "unlimited" has no number: report the largest one rather than drop the line.
    let max = soft.parse().unwrap_or(u64::MAX);
    Some((open, max))
}

fn lines(pairs: &[(&'static str, String)]) -> String {
    pairs.iter().map(|(key, value)| format!("{key}={value}\n")).collect()
}

fn envi(shared: &Shared) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
    let pairs = [
        ("zookeeper.version", format!("{VERSION}, built on {BUILT_ON}")),
        ("host.name", host),
        ("os.name", std::env::consts::OS.to_owned()),
        ("os.arch", std::env::consts::ARCH.to_owned()),
        ("user.dir", cwd),
        ("baton.data.dir", shared.data_dir.display().to_string()),
    ];
    format!("Environment:\n{}", lines(&pairs))
}

pub(crate) fn wchs(facts: &Facts) -> String {
    format!(
        "{} connections watching {} paths\nTotal watches:{}\n",
        facts.watchers, facts.watched_paths, facts.watches
    )
}

/// Bytes under the data directory (log and snapshots alike: Baton keeps both there).
fn dirs(shared: &Shared) -> String {
    let bytes = dir_bytes(&shared.data_dir);
    format!("datadir_size: {bytes}\nlogdir_size: {bytes}\n")
}

/// Entries a `dirs` walk visits at most: the data directory holds a few dozen files.
const DIR_ENTRIES_MAX: usize = 100_000;

fn dir_bytes(root: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![root.to_path_buf()];
    let mut visited = 0;
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            visited += 1;
            if visited > DIR_ENTRIES_MAX {
                return total;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

/// One line per open session, in ZooKeeper's `cons` shape but with what Baton knows
/// of a session (its id and timeout; the remote address is the connection's, not
/// the session's, and is not kept with it).
pub(crate) fn cons(facts: &Facts) -> String {
    facts.sessions.iter().map(|(id, to)| format!(" /-[1](sid={id:#x},to={to})\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            mode: "standalone",
            node_count: 3,
            sessions: vec![(0x100, 30_000)],
            ..Facts::default()
        }
    }

    #[test]
    fn whitelist_parsing() {
        assert_eq!(Whitelist::parse("*").unwrap(), Whitelist::All);
        assert_eq!(Whitelist::parse("srvr, *").unwrap(), Whitelist::All);
        let list = Whitelist::parse(" stat, ruok ,conf,").unwrap();
        assert!(list.allows("stat") && list.allows("ruok") && list.allows("conf"));
        assert!(!list.allows("mntr"));
        let default = Whitelist::parse(WHITELIST_DEFAULT).unwrap();
        assert!(default.allows("srvr") && !default.allows("mntr"));
        assert!(Whitelist::parse("srvr,MNTR").is_err());
        assert!(Whitelist::parse("srvrx").is_err());
        assert!(Whitelist::parse(&vec!["srvr"; WHITELIST_NAMES_MAX + 1].join(",")).is_err());
    }

    #[test]
    fn srvr_shape() {
        let text = srvr(&facts());
        let first = text.lines().next().unwrap();
        assert!(first.starts_with("Zookeeper version: 3.9.0-baton-"), "{first}");
        assert!(first.ends_with(", built on 01/01/1970 00:00 GMT"), "{first}");
        let keys: Vec<&str> = text.lines().map(|l| l.split(": ").next().unwrap()).collect();
        let expected = [
            "Zookeeper version",
            "Latency min/avg/max",
            "Received",
            "Sent",
            "Connections",
            "Outstanding",
            "Zxid",
            "Mode",
            "Node count",
        ];
        assert_eq!(keys, expected);
        assert!(text.contains("Latency min/avg/max: 0/0.0000/0\n"), "{text}");
        assert!(text.contains("Zxid: 0x0\nMode: standalone\nNode count: 3\n"), "{text}");
    }

    #[test]
    fn stat_has_clients_after_the_version() {
        let text = stat(&facts());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("Zookeeper version: "));
        assert_eq!(lines[1], "Clients:");
        assert_eq!(lines[2], " /-[1](sid=0x100,to=30000)");
        assert_eq!(lines[3], "");
        assert!(lines[4].starts_with("Latency min/avg/max: "));
    }

    #[test]
    fn mntr_lines_are_key_tab_value() {
        let mut leader = facts();
        leader.mode = "leader";
        leader.followers = Some((2, 2));
        let text = mntr(&leader);
        for line in text.lines() {
            let (key, value) = line.split_once('\t').expect(line);
            assert!(key.starts_with("zk_"), "{line}");
            assert!(key[3..].bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{line}");
            assert!(!value.is_empty() && !value.contains(char::is_whitespace), "{line}");
        }
        assert!(text.contains("zk_server_state\tleader\n"));
        assert!(text.contains("zk_znode_count\t3\n"));
        assert!(text.contains("zk_synced_followers\t2\n"));
        assert!(!mntr(&facts()).contains("zk_followers"));
    }

    #[test]
    fn wchs_shape() {
        let f = Facts { watchers: 2, watched_paths: 3, watches: 4, ..facts() };
        assert_eq!(wchs(&f), "2 connections watching 3 paths\nTotal watches:4\n");
    }
}
