//! The ensemble's membership as the server keeps it: the text of the configuration
//! node (`/baton/config`, ZooKeeper's `/zookeeper/config` form), the txn a config
//! entry applies as, and the membership change a client asks for turned into the
//! new configuration.

use baton_quorum::{
    Zxid,
    zab::{Member, Membership, decode_config_entry, is_config_entry},
};
use std::time::{Duration, Instant};

use baton_api::{
    pb,
    status::{ErrorCode, error_status, txn_error_status},
};
use baton_znode::{
    Auth, CONFIG_PATH, ConfigChange, ConfigMember, DecodeError, OpResult, ReconfigOp, Txn, TxnOp,
    validate_op,
};
use bytes::Bytes;
use tonic::Status;

use crate::{shared::Shared, write_queue::WriteQueue};

/// The configuration as ZooKeeper writes its dynamic config: a line per member
/// (`server.ID=HOST:PORT:PORT:participant|observer`; Baton has one peer port, so
/// both ports are it) and the version in hex.
pub(crate) fn text(config: &Membership) -> String {
    let mut text = String::new();
    for member in &config.members {
        let role = if member.voter { "participant" } else { "observer" };
        let port = member.addr.rsplit_once(':').map_or("", |(_, port)| port);
        text.push_str(&format!("server.{}={}:{port}:{role}\n", member.id, member.addr));
    }
    text.push_str(&format!("version={:x}", config.version.as_u64()));
    text
}

/// Reads [`text`] back (the configuration in a recovered tree).
pub(crate) fn parse(text: &str) -> Result<Membership, String> {
    let mut members = Vec::new();
    let mut version = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(hex) = line.strip_prefix("version=") {
            let v = u64::from_str_radix(hex, 16).map_err(|e| format!("bad version {hex}: {e}"))?;
            version = Some(Zxid::from_u64(v));
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| format!("bad line `{line}`"))?;
        let id = key
            .strip_prefix("server.")
            .and_then(|id| id.parse::<u64>().ok())
            .ok_or_else(|| format!("bad server key in `{line}`"))?;
        // HOST:PORT:PORT:ROLE (the host may hold colons: an IPv6 address).
        let mut parts = value.rsplitn(3, ':');
        let role = parts.next().unwrap_or_default();
        let _second_port = parts.next();
        let addr = parts.next().ok_or_else(|| format!("bad address in `{line}`"))?;
        let voter = match role {
            "participant" => true,
            "observer" => false,
            other => return Err(format!("unknown role `{other}` in `{line}`")),
        };
        members.push(Member { id, voter, addr: addr.to_owned() });
    }
    let version = version.ok_or("no version line")?;
    Membership::validate(&members)?;
    Ok(Membership::new(version, members))
}

/// The txn a committed log entry applies as: a config entry becomes `SetConfig`
/// (the configuration node, whose `mzxid` is the version), anything else is
/// decoded as the txn it is.
pub(crate) fn entry_txn(zxid: u64, data: &[u8]) -> Result<Txn, DecodeError> {
    if !is_config_entry(data) {
        return baton_znode::decode_txn(data);
    }
    let members = decode_config_entry(data).ok_or_else(|| DecodeError::Invalid {
        offset: 0,
        reason: "a config entry that is not a valid configuration".into(),
    })?;
    let config = Membership { version: Zxid::from_u64(zxid), members };
    Ok(Txn {
        zxid,
        time_ms: 0,
        session: 0,
        auth: Auth::none(),
        op: TxnOp::SetConfig { data: Bytes::from(text(&config)) },
    })
}

/// The configuration a membership change asks for, from the one in force, or why
/// it cannot be made (naming the member and the rule). The quorum rules (a
/// majority of the voters kept, new voters caught up) are the node's to check.
pub(crate) fn apply_change(active: &Membership, op: &ReconfigOp) -> Result<Vec<Member>, String> {
    let version = active.version.as_u64();
    if op.from_version != -1 && u64::try_from(op.from_version).ok() != Some(version) {
        return Err(format!(
            "the configuration is at version {version:x}, not {:x}: it changed since it was read",
            op.from_version
        ));
    }
    let member = |m: &ConfigMember| Member { id: m.id, voter: m.voter, addr: m.addr.clone() };
    let mut members = active.members.clone();
    match &op.change {
        ConfigChange::Add(new) => {
            if active.is_member(new.id) {
                return Err(format!("server {} is already a member", new.id));
            }
            if let Some(other) = members.iter().find(|m| m.addr == new.addr) {
                return Err(format!("server {} already has the address {}", other.id, new.addr));
            }
            members.push(member(new));
        }
        ConfigChange::Remove { id } => {
            if !active.is_member(*id) {
                return Err(format!("server {id} is not a member"));
            }
            members.retain(|m| m.id != *id);
        }
        ConfigChange::SetRole { id, voter } => {
            let Some(found) = members.iter_mut().find(|m| m.id == *id) else {
                return Err(format!("server {id} is not a member"));
            };
            if found.voter == *voter {
                let role = if *voter { "a voter" } else { "an observer" };
                return Err(format!("server {id} is {role} already"));
            }
            found.voter = *voter;
        }
        ConfigChange::Members(all) => {
            members = all.iter().map(member).collect();
        }
    }
    Membership::validate(&members)?;
    Ok(members)
}

/// How long a new voter may take to catch up as an observer before its promotion
/// is given up (it stays an observer; promote it later with `set-role`).
const CATCH_UP_MAX: Duration = Duration::from_secs(120);
/// How long a leadership transfer may take to show (a new leader in broadcast).
const TRANSFER_MAX: Duration = Duration::from_secs(15);
/// Pause between checks while waiting.
const POLL: Duration = Duration::from_millis(100);

/// With a `--super-digest`, only the super user changes the membership or moves
/// leadership (ZooKeeper lets only the super user, or who may write
/// `/zookeeper/config`, reconfigure).
pub(crate) fn may_change(shared: &Shared, auth: &Auth) -> Result<(), Status> {
    if shared.auth.has_super() && !auth.is_super() {
        let message = "membership changes and leadership transfers need the super user";
        return Err(error_status(ErrorCode::NoAuth, message, CONFIG_PATH, None));
    }
    Ok(())
}

fn member_to_pb(member: &Member) -> pb::Member {
    pb::Member { id: member.id, addr: member.addr.clone(), voter: member.voter }
}

fn member_from_pb(member: pb::Member) -> ConfigMember {
    ConfigMember { id: member.id, addr: member.addr, voter: member.voter }
}

/// The configuration in force as this member knows it.
pub(crate) fn get_config(shared: &Shared) -> pb::GetConfigResponse {
    let membership = shared.membership();
    pb::GetConfigResponse {
        header: Some(pb::ResponseHeader { zxid: membership.committed_zxid }),
        version: membership.config.version.as_u64(),
        members: membership.config.members.iter().map(member_to_pb).collect(),
        leader: membership.leader.unwrap_or(0),
        pending_version: membership.config_pending.unwrap_or(0),
    }
}

/// A membership change, through the leader (forwarded as any write). A new voter
/// first joins as an observer; once it follows the leader it is promoted (the
/// leader refuses the promotion until then, and it is asked again).
pub(crate) async fn reconfig(
    shared: &Shared,
    writes: &WriteQueue,
    request: pb::ReconfigRequest,
) -> Result<pb::ReconfigResponse, Status> {
    let bad = |message: String| error_status(ErrorCode::BadArguments, message, CONFIG_PATH, None);
    let from_version = request.from_version;
    let change = match request.change.ok_or_else(|| bad("no change given".into()))? {
        pb::reconfig_request::Change::Add(member) => ConfigChange::Add(member_from_pb(member)),
        pb::reconfig_request::Change::Remove(id) => ConfigChange::Remove { id },
        pb::reconfig_request::Change::SetRole(role) => {
            ConfigChange::SetRole { id: role.id, voter: role.voter }
        }
        pb::reconfig_request::Change::Members(all) => {
            ConfigChange::Members(all.members.into_iter().map(member_from_pb).collect())
        }
    };
    let config = shared.membership().config;
    let mut steps = Vec::new();
    match &change {
        ConfigChange::Add(member) if member.voter => {
            steps.push(ConfigChange::Add(ConfigMember { voter: false, ..member.clone() }));
            steps.push(ConfigChange::SetRole { id: member.id, voter: true });
        }
        ConfigChange::Members(all) if all.iter().any(|m| m.voter && !config.is_member(m.id)) => {
            let mut first: Vec<ConfigMember> = config
                .members
                .iter()
                .map(|m| ConfigMember { id: m.id, addr: m.addr.clone(), voter: m.voter })
                .collect();
            let joining = all.iter().filter(|m| !config.is_member(m.id));
            first.extend(joining.map(|m| ConfigMember { voter: false, ..m.clone() }));
            steps.push(ConfigChange::Members(first));
            steps.push(change.clone());
        }
        _ => steps.push(change.clone()),
    }
    let mut stat = None;
    for (i, step) in steps.into_iter().enumerate() {
        let from_version = if i == 0 { from_version } else { -1 };
        let op = TxnOp::Reconfig(ReconfigOp { from_version, change: step });
        validate_op(&op, &shared.limits).map_err(|e| txn_error_status(&e))?;
        let deadline = Instant::now() + CATCH_UP_MAX;
        loop {
            let reply = writes.submit(0, op.clone()).await.map_err(|e| e.status())?;
            match reply.result {
                Ok(OpResult::ConfigSet { stat: set }) => {
                    stat = Some(set);
                    break;
                }
                Ok(other) => {
                    let message = format!("internal error: unexpected {other:?}");
                    return Err(error_status(ErrorCode::SystemError, message, CONFIG_PATH, None));
                }
                // A promotion waits for the new member to follow the leader.
                Err(error)
                    if i > 0
                        && error.to_string().contains("does not follow this leader now")
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(POLL * 5).await;
                }
                Err(error) => return Err(txn_error_status(&error)),
            }
        }
    }
    let stat = stat.expect("at least one step");
    let text = shared
        .read_tree()
        .ok()
        .and_then(|tree| tree.get(CONFIG_PATH).ok())
        .map(|(data, _)| String::from_utf8_lossy(&data).into_owned())
        .unwrap_or_default();
    let config = parse(&text).map_err(|e| {
        error_status(
            ErrorCode::SystemError,
            format!("the new configuration: {e}"),
            CONFIG_PATH,
            None,
        )
    })?;
    Ok(pb::ReconfigResponse {
        header: Some(pb::ResponseHeader { zxid: stat.mzxid }),
        version: config.version.as_u64(),
        members: config.members.iter().map(member_to_pb).collect(),
    })
}

/// Moves leadership (this member must lead); returns the new leader once it
/// serves.
pub(crate) async fn transfer(shared: &Shared, writes: &WriteQueue, to: u64) -> Result<u64, Status> {
    let successor = writes.transfer(to).await.map_err(|e| e.status())?;
    let deadline = Instant::now() + TRANSFER_MAX;
    loop {
        let membership = shared.membership();
        if membership.leader == Some(successor) && membership.broadcasting {
            return Ok(successor);
        }
        if Instant::now() >= deadline {
            let message = format!(
                "leadership was handed to server {successor}, which does not lead yet \
                 (this member: {}, leader {:?})",
                membership.role.as_str(),
                membership.leader
            );
            return Err(error_status(ErrorCode::OperationTimeout, message, "", None));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A member that asks to be added (`--join`).
#[derive(Debug, Clone)]
pub(crate) struct Join {
    pub(crate) id: u64,
    /// Its peer address as the others reach it.
    pub(crate) addr: String,
    pub(crate) voter: bool,
    /// Client endpoints of the ensemble.
    pub(crate) endpoints: Vec<String>,
    pub(crate) tls: Option<baton_client::ClientTls>,
}

/// Until this member is in the configuration in force (as a voter, or as an
/// observer if that is what it asks), asks the ensemble to add it; once a second.
/// A member added already (its data directory says so) asks nothing.
pub(crate) async fn join(
    shared: std::sync::Arc<Shared>,
    join: Join,
    mut stop: crate::shutdown::ShutdownListener,
) {
    let joined = |shared: &Shared| {
        let config = shared.membership().config;
        config.get(join.id).is_some_and(|m| m.voter || !join.voter)
    };
    let mut announced = false;
    loop {
        if joined(&shared) {
            if announced {
                tracing::info!(id = join.id, voter = join.voter, "joined the ensemble");
            }
            return;
        }
        if let Err(error) = ask_to_join(&join).await {
            tracing::info!(%error, "asking to join the ensemble; asking again");
        }
        announced = true;
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = stop.recv() => return,
        }
    }
}

async fn ask_to_join(join: &Join) -> Result<(), String> {
    let options = baton_client::ConnectOptions { tls: join.tls.clone() };
    let client = baton_client::Client::connect_with(&join.endpoints, options)
        .await
        .map_err(|e| e.to_string())?;
    let config = client.get_config().await.map_err(|e| e.to_string())?;
    let change = match config.members.iter().find(|m| m.id == join.id) {
        Some(member) if member.voter || !join.voter => return Ok(()),
        // An observer already (a join that stopped halfway): promote it.
        Some(_) => ConfigChange::SetRole { id: join.id, voter: true },
        None => ConfigChange::Add(ConfigMember {
            id: join.id,
            addr: join.addr.clone(),
            voter: join.voter,
        }),
    };
    tracing::info!(id = join.id, addr = %join.addr, ?change, configuration = config.version, "asking to join the ensemble");
    client.reconfig(change, Some(config.version)).await.map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_quorum::zab::encode_config_entry;

    fn config() -> Membership {
        let m = |id, voter| Member { id, voter, addr: format!("10.0.0.{id}:7000") };
        Membership::new(Zxid::new(3, 7), vec![m(1, true), m(2, true), m(3, false)])
    }

    #[test]
    fn the_text_reads_back_and_is_zookeepers_form() {
        let text = text(&config());
        assert_eq!(
            text,
            "server.1=10.0.0.1:7000:7000:participant\nserver.2=10.0.0.2:7000:7000:participant\n\
             server.3=10.0.0.3:7000:7000:observer\nversion=300000007"
        );
        assert_eq!(parse(&text), Ok(config()));
        assert!(parse("server.1=a:1:1:leader\nversion=1").is_err());
        assert!(parse("server.1=a:1:1:participant").is_err(), "no version");
    }

    #[test]
    fn a_config_entry_applies_as_the_configuration_node() {
        let data = encode_config_entry(&config().members);
        let txn = entry_txn(Zxid::new(3, 7).as_u64(), &data).unwrap();
        let TxnOp::SetConfig { data } = txn.op else { panic!("{txn:?}") };
        assert_eq!(parse(std::str::from_utf8(&data).unwrap()), Ok(config()));
        assert!(entry_txn(1, &data[..data.len() - 1]).is_err());
    }

    #[test]
    fn changes_name_what_is_wrong_and_change_nothing() {
        let active = config();
        let ask = |change| ReconfigOp { from_version: -1, change };
        let add = |id, addr: &str| {
            ConfigChange::Add(ConfigMember { id, addr: addr.into(), voter: false })
        };
        let err = |change| apply_change(&active, &ask(change)).unwrap_err();
        assert!(err(add(2, "h:1")).contains("server 2 is already a member"));
        assert!(err(add(4, "10.0.0.1:7000")).contains("server 1 already has the address"));
        assert!(err(ConfigChange::Remove { id: 9 }).contains("server 9 is not a member"));
        assert!(err(ConfigChange::SetRole { id: 3, voter: false }).contains("observer already"));
        let stale = ReconfigOp { from_version: 5, change: ConfigChange::Remove { id: 3 } };
        assert!(apply_change(&active, &stale).unwrap_err().contains("version 300000007, not 5"));
        let current =
            ReconfigOp { from_version: 0x3_0000_0007, change: ConfigChange::Remove { id: 3 } };
        assert_eq!(apply_change(&active, &current).unwrap().len(), 2);
        let members = apply_change(&active, &ask(add(4, "h:4"))).unwrap();
        assert_eq!(members.iter().map(|m| m.id).collect::<Vec<_>>(), [1, 2, 3, 4]);
    }
}
