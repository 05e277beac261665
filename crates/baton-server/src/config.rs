//! The server's configuration: every flag, each with a `BATON_*` environment variable.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use baton_znode::Limits;
use clap::{ArgAction, Parser};

use crate::{ServerError, tls::ClientAuth};

/// Largest gRPC message a client may send, by default: the largest znode data (1 MiB)
/// with room for a path and framing, times four so that a multi of a few big ops fits.
pub const REQUEST_BYTES_MAX_DEFAULT: usize = 4 * 1024 * 1024 + 64 * 1024;

/// A Baton server: an in-memory tree of znodes made durable by a commit log.
#[derive(Debug, Clone, Parser)]
#[command(name = "baton-server", version, about)]
pub struct Config {
    /// Directory of the commit log and snapshots (created if missing).
    #[arg(long, env = "BATON_DATA_DIR", default_value = "./baton-data")]
    pub data_dir: PathBuf,

    /// Address of the client gRPC service (port 0 picks a free port).
    #[arg(long, env = "BATON_CLIENT_ADDR", default_value = "127.0.0.1:7181")]
    pub client_addr: SocketAddr,

    /// Address of the admin HTTP service: /health, /status, /metrics (port 0 picks a free port).
    #[arg(long, env = "BATON_ADMIN_ADDR", default_value = "127.0.0.1:7180")]
    pub admin_addr: SocketAddr,

    /// Address of ZooKeeper's client protocol (jute over TCP), for ZooKeeper clients
    /// and tools (port 0 picks a free port; `off` listens for none). With client TLS
    /// on, this port speaks TLS too (ZooKeeper's secureClientPort).
    #[arg(long, env = "BATON_ZK_ADDR", default_value = "127.0.0.1:2181")]
    pub zk_addr: ZkAddr,

    /// Largest data of one znode, in bytes.
    #[arg(long, env = "BATON_DATA_BYTES_MAX", default_value_t = 1024 * 1024)]
    pub data_bytes_max: usize,

    /// Largest gRPC request message, in bytes.
    #[arg(long, env = "BATON_REQUEST_BYTES_MAX", default_value_t = REQUEST_BYTES_MAX_DEFAULT)]
    pub request_bytes_max: usize,

    /// Most operations in one multi.
    #[arg(long, env = "BATON_MULTI_OPS_MAX", default_value_t = 1024)]
    pub multi_ops_max: usize,

    /// Longest path, in bytes.
    #[arg(long, env = "BATON_PATH_BYTES_MAX", default_value_t = 4096)]
    pub path_bytes_max: usize,

    /// Take a snapshot every this many applied txns.
    #[arg(long, env = "BATON_SNAPSHOT_EVERY_TXNS", default_value_t = 100_000)]
    pub snapshot_every_txns: u64,

    /// Take a snapshot every this many bytes of logged txns (whichever of the two
    /// comes first): bounds what a restart replays when txns are large.
    #[arg(long, env = "BATON_SNAPSHOT_EVERY_BYTES", default_value_t = 64 << 20)]
    pub snapshot_every_bytes: u64,

    /// Snapshots kept on disk; the log before the oldest kept one is purged.
    #[arg(long, env = "BATON_SNAPSHOTS_KEEP", default_value_t = 3)]
    pub snapshots_keep: usize,

    /// Writes waiting for the driver; beyond it writes fail at once (SYSTEM_ERROR).
    #[arg(long, env = "BATON_WRITE_QUEUE_MAX", default_value_t = 10_000)]
    pub write_queue_max: usize,

    /// Most txns logged with one flush (group commit).
    #[arg(long, env = "BATON_BATCH_TXNS_MAX", default_value_t = 1_000)]
    pub batch_txns_max: usize,

    /// The basic time unit, in ms (session timeouts are counted in ticks).
    #[arg(long, env = "BATON_TICK_MS", default_value_t = 2_000)]
    pub tick_ms: u64,

    /// How often containers and TTL nodes are checked for deletion, in ms (default: tick-ms).
    #[arg(long, env = "BATON_REAP_INTERVAL_MS")]
    pub reap_interval_ms: Option<u64>,

    /// fdatasync the log at every group commit. Only tests of speed turn this off:
    /// without it an acknowledged write may not survive a power loss.
    #[arg(long, env = "BATON_FSYNC", default_value_t = true, action = ArgAction::Set)]
    pub fsync: bool,

    /// This server's id in the ensemble (ZooKeeper's myid), 1 to 255.
    #[arg(long, env = "BATON_ID", default_value_t = 1)]
    pub id: u64,

    /// Take the id from this host's name as a StatefulSet names its pods,
    /// `NAME-ORDINAL`: the id is ORDINAL + 1 (pod `baton-0` is member 1).
    #[arg(long, env = "BATON_ID_FROM_HOSTNAME", conflicts_with = "id")]
    pub id_from_hostname: bool,

    /// The ensemble as a StatefulSet's stable DNS names: `NAME.SERVICE[.MORE]:PORT`
    /// stands for members `NAME-0.SERVICE[.MORE]:PORT` (id 1) to `NAME-(N-1)...` (id N),
    /// N being --ensemble-size. Instead of --peers.
    #[arg(long, env = "BATON_PEERS_DNS", conflicts_with = "peers", requires = "ensemble_size")]
    pub peers_dns: Option<String>,

    /// How many members --peers-dns names (3 or 5, as a rule): the base ensemble.
    /// With --join, a pod of a higher ordinal joins it as a member of its own
    /// (scaling the StatefulSet up), and leaves it on stop (`baton members leave`).
    #[arg(long, env = "BATON_ENSEMBLE_SIZE", requires = "peers_dns")]
    pub ensemble_size: Option<u32>,

    /// Client endpoints (HOST:PORT, comma-separated: a Service, or members) to ask
    /// for this member to be added to the configuration when it is not in it: as a
    /// voter once it has caught up (`--join-as observer`: an observer). Asked again
    /// until it is a member; a no-op for a member already in it.
    #[arg(long, env = "BATON_JOIN", value_delimiter = ',')]
    pub join: Vec<String>,

    /// The role a member that joins asks for.
    #[arg(long, env = "BATON_JOIN_AS", default_value = "voter", value_parser = ["voter", "observer"])]
    pub join_as: String,

    /// Restore: write the snapshot in this file (a backup taken from an admin port's
    /// /snapshot) into the empty --data-dir, then exit. Start the server on it after.
    #[arg(long, value_name = "FILE")]
    pub restore_snapshot: Option<PathBuf>,

    /// Log lines as text (for people) or JSON objects, one per line (for collectors).
    #[arg(long, env = "BATON_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    /// Where the peer protocol listens (ensemble mode only).
    #[arg(long, env = "BATON_PEER_ADDR", default_value = "127.0.0.1:7182")]
    pub peer_addr: SocketAddr,

    /// Every member of the ensemble, this one included, as `ID=HOST:PORT` peer
    /// addresses separated by commas. Without it the server is an ensemble of one.
    #[arg(long, env = "BATON_PEERS", value_delimiter = ',', value_parser = parse_peer)]
    pub peers: Vec<Peer>,

    /// Ticks a follower may take to connect to and sync with its leader (ZooKeeper's initLimit).
    #[arg(long, env = "BATON_INIT_LIMIT", default_value_t = 10)]
    pub init_limit: u32,

    /// Ticks a follower may go without hearing its leader, and a leader without
    /// hearing a quorum, before they give up (ZooKeeper's syncLimit).
    #[arg(long, env = "BATON_SYNC_LIMIT", default_value_t = 5)]
    pub sync_limit: u32,

    /// Committed entries a leader keeps in memory to bring a follower up to date
    /// entry by entry (DIFF); a follower further behind gets a snapshot (SNAP).
    #[arg(long, env = "BATON_DIFF_ENTRIES_MAX", default_value_t = 10_000)]
    pub diff_entries_max: usize,

    /// Free bytes the data directory's file system must keep: below this, writes are
    /// refused ("disk full", SYSTEM_ERROR) until space is freed; 0 turns it off.
    #[arg(long, env = "BATON_DISK_RESERVE_BYTES", default_value_t = 64 << 20)]
    pub disk_reserve_bytes: u64,

    /// Bytes per second of the log and snapshots verified in the background
    /// (checksums and links); damage found is repaired from this member's memory
    /// or a new snapshot, and counted in `baton_storage_damage_found_total`. 0
    /// turns scrubbing off.
    #[arg(long, env = "BATON_SCRUB_BYTES_PER_SEC", default_value_t = 4 << 20)]
    pub scrub_bytes_per_sec: u64,

    /// Start even though the disk lost entries this member had acknowledged (its
    /// log ends before its durable promise, or a record or snapshot below it is
    /// corrupt) and it cannot repair them: a member of an ensemble normally repairs
    /// from its peers before it votes, but an ensemble of one, or an ensemble whose
    /// members are all damaged, has nobody to repair from. With this flag the member
    /// serves what is left: the lost writes are gone.
    #[arg(long, env = "BATON_ACCEPT_DATA_LOSS")]
    pub accept_data_loss: bool,

    // ---- Access control ----
    /// The super user as a digest id, `user:base64(sha1(user:password))` (what
    /// `baton digest user:password` prints): who authenticates as it passes every
    /// ACL check (ZooKeeper's `zookeeper.DigestAuthenticationProvider.superDigest`).
    #[arg(long, env = "BATON_SUPER_DIGEST", value_name = "USER:DIGEST")]
    pub super_digest: Option<String>,

    /// A file of digest users, one `user:base64(sha1(user:password))` per line (`#`
    /// starts a comment). With it, digest authentication succeeds only for a listed
    /// user with the right password; without it, any `user:password` is accepted and
    /// yields its digest identity, as in ZooKeeper. Re-read when it changes.
    #[arg(long, env = "BATON_DIGEST_USERS", value_name = "FILE")]
    pub digest_users: Option<PathBuf>,
    // TLS. Without these flags every port speaks plain text. The files are PEM; they
    // are read again when they change on disk and on SIGHUP.
    /// Client gRPC port: this server's certificate chain (PEM). With --tls-key.
    #[arg(long, env = "BATON_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// Client gRPC port: the private key of --tls-cert (PEM).
    #[arg(long, env = "BATON_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Client gRPC port: the CA (PEM) client certificates must chain to.
    #[arg(long, env = "BATON_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// Client gRPC port: whether clients present a certificate (optional and required
    /// need --tls-ca).
    #[arg(long, env = "BATON_CLIENT_AUTH", value_enum, default_value_t = ClientAuth::None)]
    pub client_auth: ClientAuth,

    /// Peer port and the links this member dials: its certificate (PEM, with both the
    /// serverAuth and clientAuth usages). Peers always use mutual TLS: all three
    /// --peer-tls-* flags go together.
    #[arg(long, env = "BATON_PEER_TLS_CERT", value_name = "FILE")]
    pub peer_tls_cert: Option<PathBuf>,

    /// Peer port: the private key of --peer-tls-cert (PEM).
    #[arg(long, env = "BATON_PEER_TLS_KEY", value_name = "FILE")]
    pub peer_tls_key: Option<PathBuf>,

    /// Peer port: the CA (PEM) every member's certificate must chain to.
    #[arg(long, env = "BATON_PEER_TLS_CA", value_name = "FILE")]
    pub peer_tls_ca: Option<PathBuf>,

    /// Admin HTTP port: this server's certificate chain (PEM). With --admin-tls-key.
    #[arg(long, env = "BATON_ADMIN_TLS_CERT", value_name = "FILE")]
    pub admin_tls_cert: Option<PathBuf>,

    /// Admin HTTP port: the private key of --admin-tls-cert (PEM).
    #[arg(long, env = "BATON_ADMIN_TLS_KEY", value_name = "FILE")]
    pub admin_tls_key: Option<PathBuf>,

    /// Admin HTTP port: a CA (PEM); with it, clients must present a certificate
    /// chaining to it.
    #[arg(long, env = "BATON_ADMIN_TLS_CA", value_name = "FILE")]
    pub admin_tls_ca: Option<PathBuf>,

    /// ZooKeeper's four-letter words the admin port answers at `/commands/<name>`:
    /// names separated by commas, or `*` for all (ZooKeeper's `4lw.commands.whitelist`,
    /// with its default: `srvr` only).
    #[arg(
        long = "4lw-whitelist",
        env = "BATON_4LW_WHITELIST",
        default_value = crate::fourlw::WHITELIST_DEFAULT,
        value_parser = parse_whitelist,
    )]
    pub four_lw_whitelist: String,
}

fn parse_whitelist(text: &str) -> Result<String, String> {
    crate::fourlw::Whitelist::parse(text).map(|_| text.to_owned())
}

/// Where the ZooKeeper-protocol listener binds, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZkAddr(pub Option<SocketAddr>);

impl std::str::FromStr for ZkAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.trim() == "off" {
            return Ok(ZkAddr(None));
        }
        text.trim()
            .parse()
            .map(|addr| ZkAddr(Some(addr)))
            .map_err(|_| format!("`{text}` is not HOST:PORT (an IP address and a port) or `off`"))
    }
}

/// One member of the ensemble: its id and its peer address (`host:port`, a DNS
/// name is fine: it is resolved when connecting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: u64,
    pub addr: String,
    /// `ID=HOST:PORT:observer`: it follows and serves but never votes or leads.
    pub observer: bool,
}

fn parse_peer(text: &str) -> Result<Peer, String> {
    let (id, addr) = text.split_once('=').ok_or_else(|| format!("`{text}` is not ID=HOST:PORT"))?;
    let id: u64 = id.trim().parse().map_err(|e| format!("bad id in `{text}`: {e}"))?;
    let addr = addr.trim();
    let (addr, observer) = match addr.strip_suffix(":observer") {
        Some(addr) => (addr, true),
        None => (addr.strip_suffix(":participant").unwrap_or(addr), false),
    };
    let port_ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !port_ok {
        return Err(format!("bad address in `{text}`: expected HOST:PORT[:observer]"));
    }
    Ok(Peer { id, addr: addr.to_owned(), observer })
}

impl Config {
    /// Checks what clap cannot: ranges and relations between flags.
    pub fn validate(&self) -> Result<(), ServerError> {
        let positive = [
            ("--data-bytes-max", self.data_bytes_max as u64),
            ("--request-bytes-max", self.request_bytes_max as u64),
            ("--multi-ops-max", self.multi_ops_max as u64),
            ("--path-bytes-max", self.path_bytes_max as u64),
            ("--snapshot-every-txns", self.snapshot_every_txns),
            ("--snapshot-every-bytes", self.snapshot_every_bytes),
            ("--snapshots-keep", self.snapshots_keep as u64),
            ("--write-queue-max", self.write_queue_max as u64),
            ("--batch-txns-max", self.batch_txns_max as u64),
            ("--tick-ms", self.tick_ms),
            ("--diff-entries-max", self.diff_entries_max as u64),
            ("--reap-interval-ms", self.reap_interval().as_millis() as u64),
        ];
        if let Some((flag, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(ServerError::Config(format!("{flag} must be greater than 0")));
        }
        if self.data_bytes_max >= self.request_bytes_max {
            return Err(ServerError::Config(format!(
                "--data-bytes-max ({}) must be smaller than --request-bytes-max ({}): \
                 a request must be able to carry the largest data",
                self.data_bytes_max, self.request_bytes_max
            )));
        }
        if self.id == 0 || self.id > 255 {
            return Err(ServerError::Config(format!("--id {} is not in 1..=255", self.id)));
        }
        if !self.join.is_empty() && self.peers.is_empty() {
            return Err(ServerError::Config(
                "--join needs --peers or --peers-dns: the ensemble to join and this member's \
                 place in it"
                    .to_owned(),
            ));
        }
        if !self.peers.is_empty() {
            let mut ids: Vec<u64> = self.peers.iter().map(|p| p.id).collect();
            ids.sort_unstable();
            ids.dedup();
            if ids.len() != self.peers.len() {
                return Err(ServerError::Config("--peers names an id twice".to_owned()));
            }
            if !ids.contains(&self.id) {
                return Err(ServerError::Config(format!(
                    "--peers does not name this server (--id {})",
                    self.id
                )));
            }
            if self.peers.iter().all(|p| p.observer) {
                return Err(ServerError::Config(
                    "--peers names no voting member (every one is :observer)".to_owned(),
                ));
            }
            if let Some(bad) = ids.iter().find(|id| **id == 0 || **id > 255) {
                return Err(ServerError::Config(format!("--peers: id {bad} is not in 1..=255")));
            }
            if self.init_limit == 0 || self.sync_limit == 0 {
                return Err(ServerError::Config(
                    "--init-limit and --sync-limit must be greater than 0".to_owned(),
                ));
            }
        }
        // sled stores each value whole; keep one write within what a u32 length can say.
        if self.request_bytes_max > u32::MAX as usize / 2 {
            return Err(ServerError::Config("--request-bytes-max is too large".to_owned()));
        }
        self.validate_tls()
    }

    /// The limits checked on every request before it becomes a txn.
    pub fn limits(&self) -> Limits {
        Limits {
            data_bytes_max: self.data_bytes_max,
            multi_ops_max: self.multi_ops_max,
            path_bytes_max: self.path_bytes_max,
        }
    }

    /// Fills `id` and `peers` from `--id-from-hostname` and `--peers-dns` (given this
    /// host's name). A no-op without those flags.
    pub fn resolve_statefulset(&mut self, hostname: &str) -> Result<(), ServerError> {
        if self.id_from_hostname {
            let ordinal = hostname
                .rsplit_once('-')
                .and_then(|(_, ordinal)| ordinal.parse::<u64>().ok())
                .ok_or_else(|| {
                    ServerError::Config(format!(
                        "--id-from-hostname: host name `{hostname}` does not end in -ORDINAL"
                    ))
                })?;
            self.id = ordinal + 1;
        }
        if let (Some(template), Some(size)) = (&self.peers_dns, self.ensemble_size) {
            let bad = |why: &str| {
                ServerError::Config(format!(
                    "--peers-dns `{template}`: {why} (expected NAME.SERVICE[.MORE]:PORT)"
                ))
            };
            let (name, rest) = template.split_once('.').ok_or_else(|| bad("no SERVICE part"))?;
            if name.is_empty() || !rest.contains(':') {
                return Err(bad("no NAME or no :PORT"));
            }
            if size == 0 {
                return Err(ServerError::Config("--ensemble-size must be at least 1".into()));
            }
            self.peers = (0..u64::from(size))
                .map(|ordinal| parse_peer(&format!("{}={name}-{ordinal}.{rest}", ordinal + 1)))
                .collect::<Result<_, _>>()
                .map_err(|why| bad(&why))?;
            if !self.join.is_empty() && self.id > u64::from(size) {
                // A pod beyond the base ensemble: it names itself (an observer until
                // the ensemble adds it; the committed configuration decides).
                let own = format!("{}={name}-{}.{rest}:observer", self.id, self.id - 1);
                self.peers.push(parse_peer(&own).map_err(|why| bad(&why))?);
            }
        }
        Ok(())
    }

    /// This member's own peer address as the others reach it (its `--peers` entry).
    pub fn advertised_peer_addr(&self) -> Option<&str> {
        self.peers.iter().find(|p| p.id == self.id).map(|p| p.addr.as_str())
    }

    /// True when `--peers` makes this server a member of an ensemble.
    pub fn ensemble(&self) -> bool {
        !self.peers.is_empty()
    }

    pub fn reap_interval(&self) -> Duration {
        Duration::from_millis(self.reap_interval_ms.unwrap_or(self.tick_ms))
    }

    /// The TLS flags go in sets, and every file they name must be there (whether
    /// its content is usable is known when it is loaded, at start).
    fn validate_tls(&self) -> Result<(), ServerError> {
        let bad = |message: String| Err(ServerError::Config(message));
        let pair = |cert: &Option<PathBuf>, key: &Option<PathBuf>, flags: (&str, &str)| match (
            cert, key,
        ) {
            (Some(_), None) => bad(format!("{} needs {}", flags.0, flags.1)),
            (None, Some(_)) => bad(format!("{} needs {}", flags.1, flags.0)),
            _ => Ok(()),
        };
        pair(&self.tls_cert, &self.tls_key, ("--tls-cert", "--tls-key"))?;
        pair(&self.admin_tls_cert, &self.admin_tls_key, ("--admin-tls-cert", "--admin-tls-key"))?;
        if self.tls_ca.is_some() && self.tls_cert.is_none() {
            return bad("--tls-ca needs --tls-cert and --tls-key".to_owned());
        }
        if self.client_auth != ClientAuth::None && self.tls_ca.is_none() {
            return bad(format!(
                "--client-auth {:?} needs --tls-ca (the CA client certificates chain to)",
                self.client_auth
            )
            .to_lowercase());
        }
        if self.admin_tls_ca.is_some() && self.admin_tls_cert.is_none() {
            return bad("--admin-tls-ca needs --admin-tls-cert and --admin-tls-key".to_owned());
        }
        let peer = [&self.peer_tls_cert, &self.peer_tls_key, &self.peer_tls_ca];
        let given = peer.iter().filter(|f| f.is_some()).count();
        if given != 0 && given != 3 {
            return bad(
                "--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together (peers use mutual TLS)"
                    .to_owned(),
            );
        }
        let files = [
            ("--tls-cert", &self.tls_cert),
            ("--tls-key", &self.tls_key),
            ("--tls-ca", &self.tls_ca),
            ("--peer-tls-cert", &self.peer_tls_cert),
            ("--peer-tls-key", &self.peer_tls_key),
            ("--peer-tls-ca", &self.peer_tls_ca),
            ("--admin-tls-cert", &self.admin_tls_cert),
            ("--admin-tls-key", &self.admin_tls_key),
            ("--admin-tls-ca", &self.admin_tls_ca),
        ];
        for (flag, file) in files {
            if let Some(file) = file
                && let Err(error) = std::fs::metadata(file)
            {
                return bad(format!("{flag} {}: {error}", file.display()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        let mut argv = vec!["baton-server"];
        argv.extend_from_slice(args);
        Config::try_parse_from(argv).expect("valid flags")
    }

    #[test]
    fn a_statefulset_pod_finds_its_id_and_peers() {
        let mut config = parse(&[
            "--id-from-hostname",
            "--peers-dns",
            "baton.baton-peers.default.svc.cluster.local:7182",
            "--ensemble-size",
            "3",
        ]);
        config.resolve_statefulset("baton-2").expect("resolves");
        assert_eq!(config.id, 3);
        assert_eq!(
            config.peers,
            vec![
                Peer {
                    id: 1,
                    addr: "baton-0.baton-peers.default.svc.cluster.local:7182".into(),
                    observer: false
                },
                Peer {
                    id: 2,
                    addr: "baton-1.baton-peers.default.svc.cluster.local:7182".into(),
                    observer: false
                },
                Peer {
                    id: 3,
                    addr: "baton-2.baton-peers.default.svc.cluster.local:7182".into(),
                    observer: false
                },
            ]
        );
        config.validate().expect("valid");
        // A pod beyond the base ensemble that joins names itself, as an observer.
        let mut joining = parse(&[
            "--id-from-hostname",
            "--peers-dns",
            "baton.baton-peers:7182",
            "--ensemble-size",
            "3",
            "--join",
            "baton:7181",
        ]);
        joining.resolve_statefulset("baton-4").expect("resolves");
        assert_eq!(joining.id, 5);
        assert_eq!(joining.peers.len(), 4);
        assert_eq!(joining.advertised_peer_addr(), Some("baton-4.baton-peers:7182"));
        assert!(joining.peers[3].observer);
        assert!(joining.validate().is_ok());
        let error = parse(&["--id-from-hostname"]).resolve_statefulset("laptop").unwrap_err();
        assert!(error.to_string().contains("does not end in -ORDINAL"), "{error}");
        let mut bad = parse(&["--peers-dns", "baton:7182", "--ensemble-size", "3"]);
        let error = bad.resolve_statefulset("baton-0").unwrap_err();
        assert!(error.to_string().contains("no SERVICE part"), "{error}");
        let conflicting =
            Config::try_parse_from(["baton-server", "--id", "2", "--id-from-hostname"]);
        assert!(conflicting.is_err());
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = parse(&[]);
        assert_eq!(config.client_addr.to_string(), "127.0.0.1:7181");
        assert_eq!(config.admin_addr.to_string(), "127.0.0.1:7180");
        assert_eq!(config.zk_addr, ZkAddr(Some("127.0.0.1:2181".parse().unwrap())));
        assert_eq!(parse(&["--zk-addr", "off"]).zk_addr, ZkAddr(None));
        assert!(Config::try_parse_from(["baton-server", "--zk-addr", "2181"]).is_err());
        assert_eq!(config.limits(), Limits::default());
        assert!(config.fsync);
        assert_eq!(config.reap_interval(), Duration::from_millis(2_000));
        config.validate().expect("defaults are valid");
    }

    #[test]
    fn flags_override_defaults() {
        let config =
            parse(&["--fsync=false", "--reap-interval-ms", "100", "--data-bytes-max", "10"]);
        assert!(!config.fsync);
        assert_eq!(config.reap_interval(), Duration::from_millis(100));
        assert_eq!(config.limits().data_bytes_max, 10);
    }

    #[test]
    fn invalid_values_are_refused_with_the_flag_named() {
        let error = parse(&["--batch-txns-max", "0"]).validate().unwrap_err();
        assert!(error.to_string().contains("--batch-txns-max"), "{error}");
        let error = parse(&["--data-bytes-max", "5000000"]).validate().unwrap_err();
        assert!(error.to_string().contains("--request-bytes-max"), "{error}");
        assert!(Config::try_parse_from(["baton-server", "--client-addr", "nowhere"]).is_err());
    }

    #[test]
    fn peers_are_parsed_and_checked() {
        let config = parse(&["--id", "2", "--peers", "1=a:7182,2=127.0.0.1:7282,3=c.svc:9"]);
        assert!(config.ensemble());
        assert_eq!(config.peers[1], Peer { id: 2, addr: "127.0.0.1:7282".into(), observer: false });
        config.validate().expect("valid");
        let error = parse(&["--id", "4", "--peers", "1=a:1,2=b:2"]).validate().unwrap_err();
        assert!(error.to_string().contains("--id 4"), "{error}");
        let error = parse(&["--peers", "1=a:1,1=b:2"]).validate().unwrap_err();
        assert!(error.to_string().contains("twice"), "{error}");
        assert!(Config::try_parse_from(["baton-server", "--peers", "1=nohost"]).is_err());
        assert!(Config::try_parse_from(["baton-server", "--peers", "x=a:1"]).is_err());
        assert!(!parse(&[]).ensemble());
    }

    #[test]
    fn tls_flags_go_in_sets_and_name_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.pem");
        std::fs::write(&file, "").unwrap();
        let file = file.to_str().unwrap();
        let error = parse(&["--tls-cert", file]).validate().unwrap_err();
        assert!(error.to_string().contains("--tls-cert needs --tls-key"), "{error}");
        let error = parse(&["--tls-cert", file, "--tls-key", file, "--client-auth", "required"])
            .validate()
            .unwrap_err();
        assert!(error.to_string().contains("--client-auth required needs --tls-ca"), "{error}");
        let error =
            parse(&["--peer-tls-cert", file, "--peer-tls-ca", file]).validate().unwrap_err();
        assert!(error.to_string().contains("go together"), "{error}");
        let missing = dir.path().join("missing.pem");
        let missing = missing.to_str().unwrap();
        let error =
            parse(&["--admin-tls-cert", missing, "--admin-tls-key", file]).validate().unwrap_err();
        assert!(error.to_string().contains(&format!("--admin-tls-cert {missing}")), "{error}");
        parse(&[
            "--tls-cert",
            file,
            "--tls-key",
            file,
            "--tls-ca",
            file,
            "--client-auth",
            "optional",
        ])
        .validate()
        .expect("a full set is valid");
        assert!(Config::try_parse_from(["baton-server", "--client-auth", "sometimes"]).is_err());
    }
}
