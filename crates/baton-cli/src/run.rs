//! Runs one tree command against a connected client (no session).

use std::io::Read;

use anyhow::Context;
use baton_client::{Client, ConfigChange, ConfigMember, QuotaLimits};
use bytes::Bytes;

use crate::{
    args::{AclCommand, LeaderCommand, MembersCommand, QuotaCommand, TreeCommand as Command},
    output::Output,
};

/// The most `-` reads from stdin. Far above any server's data limit (1 MiB by default), so
/// the server's own DATA_TOO_LARGE answers for sizes in between; this only stops a runaway
/// pipe from filling memory.
pub const STDIN_BYTES_MAX: u64 = 64 * 1024 * 1024;

pub async fn run(client: &Client, command: Command) -> anyhow::Result<Output> {
    Ok(match command {
        Command::Create(create) => {
            let data = data_arg(create.data.as_deref().unwrap_or(""), std::io::stdin())?;
            let (path, stat) = client.create_with(&create.path, data, create.options()).await?;
            Output::Created { path, stat }
        }
        Command::Get { path, stat: show_stat, linearizable } => {
            let (data, stat) = if linearizable {
                client.get_linearizable(&path).await?
            } else {
                client.get(&path).await?
            };
            Output::Data { path, data, stat, show_stat }
        }
        Command::Set { path, data, version } => {
            let data = data_arg(&data, std::io::stdin())?;
            let stat = client.set(&path, data, version).await?;
            Output::Updated { path, stat }
        }
        Command::Delete { path, version, recursive: false } => {
            client.delete(&path, version).await?;
            Output::Deleted { path, count: 1 }
        }
        Command::Delete { path, recursive: true, .. } => {
            let count = client.delete_recursive(&path).await?;
            Output::Deleted { path, count }
        }
        Command::Ls { path, recursive: false } => {
            let (children, _) = client.children(&path).await?;
            Output::Children { path, children }
        }
        Command::Ls { path, recursive: true } => {
            let paths = client.list_recursive(&path).await?;
            Output::Subtree { path, paths }
        }
        Command::Stat { path } => {
            let (_, stat) = client.get(&path).await?;
            Output::Stat { path, stat }
        }
        Command::Exists { path } => {
            let stat = client.exists(&path).await?;
            Output::Exists { path, stat }
        }
        Command::Sync { path } => {
            let zxid = client.sync(&path).await?;
            Output::Synced { path, zxid }
        }
        Command::Acl { command: AclCommand::Get { path } } => {
            let (acl, stat) = client.get_acl(&path).await?;
            Output::Acl { path, acl, stat }
        }
        Command::Acl { command: AclCommand::Set { path, acl, version } } => {
            let stat = client.set_acl(&path, &acl, version).await?;
            Output::Updated { path, stat }
        }
        Command::Whoami => Output::Identities { ids: client.who_am_i().await? },
        Command::Quota { command: QuotaCommand::Set { path, count, bytes, hard } } => {
            let limits = if hard {
                QuotaLimits { count_hard: count, bytes_hard: bytes, ..QuotaLimits::default() }
            } else {
                QuotaLimits { count_soft: count, bytes_soft: bytes, ..QuotaLimits::default() }
            };
            anyhow::ensure!(
                count.is_some() || bytes.is_some(),
                "quota set needs --count, --bytes or both"
            );
            client.set_quota(&path, &limits).await?;
            Output::Done { path }
        }
        Command::Quota { command: QuotaCommand::Get { path } } => {
            let (limits, usage) = client.get_quota(&path).await?;
            Output::Quota { path, limits, usage }
        }
        Command::Quota { command: QuotaCommand::Rm { path } } => {
            client.remove_quota(&path).await?;
            Output::Done { path }
        }
        Command::Members { command: MembersCommand::List } => {
            Output::Members { config: client.get_config().await? }
        }
        Command::Members { command: MembersCommand::Leave { above, id } } => {
            let id = match id {
                Some(id) => id,
                None => id_from_hostname()?,
            };
            if id <= above {
                eprintln!("member {id} is in the base ensemble (1..={above}): it stays");
                return Ok(Output::Members { config: client.get_config().await? });
            }
            let config = client.get_config().await?;
            if config.members.iter().all(|m| m.id != id) {
                return Ok(Output::Members { config });
            }
            let config = client.reconfig(ConfigChange::Remove { id }, None).await?;
            Output::Members { config }
        }
        Command::Members { command } => {
            let (change, from_version) = match command {
                MembersCommand::List | MembersCommand::Leave { .. } => {
                    unreachable!("handled above")
                }
                MembersCommand::Add { id, peer_addr, observer, from_version } => {
                    let member = ConfigMember { id, addr: peer_addr, voter: !observer };
                    (ConfigChange::Add(member), from_version)
                }
                MembersCommand::Remove { id, from_version } => {
                    (ConfigChange::Remove { id }, from_version)
                }
                MembersCommand::SetRole { id, role, from_version } => {
                    (ConfigChange::SetRole { id, voter: role == "voter" }, from_version)
                }
                MembersCommand::Set { members, from_version } => {
                    (ConfigChange::Members(members), from_version)
                }
            };
            Output::Members { config: client.reconfig(change, from_version).await? }
        }
        Command::Leader { command: LeaderCommand::Transfer { id } } => {
            Output::Leader { id: client.transfer_leadership(id).await? }
        }
    })
}

/// This host's member id as a StatefulSet names its pods: `NAME-ORDINAL` is
/// member ORDINAL + 1.
fn id_from_hostname() -> anyhow::Result<u64> {
    let name = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default();
    let name = name.trim();
    let ordinal = name
        .rsplit_once('-')
        .and_then(|(_, ordinal)| ordinal.parse::<u64>().ok())
        .with_context(|| format!("host name `{name}` does not end in -ORDINAL; give --id"))?;
    Ok(ordinal + 1)
}

/// A DATA argument: itself, or for `-` everything on `stdin` (at most
/// [`STDIN_BYTES_MAX`]).
pub fn data_arg(arg: &str, stdin: impl Read) -> anyhow::Result<Bytes> {
    if arg != "-" {
        return Ok(Bytes::copy_from_slice(arg.as_bytes()));
    }
    let mut data = Vec::new();
    stdin.take(STDIN_BYTES_MAX + 1).read_to_end(&mut data).context("reading data from stdin")?;
    anyhow::ensure!(
        data.len() as u64 <= STDIN_BYTES_MAX,
        "data on stdin is larger than {STDIN_BYTES_MAX} bytes"
    );
    Ok(data.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_the_argument_or_stdin_for_a_dash() {
        assert_eq!(data_arg("color=blue", &b"ignored"[..]).unwrap(), "color=blue");
        assert_eq!(data_arg("-", &b"from\nstdin\0"[..]).unwrap(), &b"from\nstdin\0"[..]);
        assert_eq!(data_arg("", &b""[..]).unwrap(), "");
    }

    #[test]
    fn stdin_is_bounded() {
        let endless = std::io::repeat(b'x');
        let err = data_arg("-", endless).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }
}
