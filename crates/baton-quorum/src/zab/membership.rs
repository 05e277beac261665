//! Membership that changes while serving (ZooKeeper 3.5's dynamic reconfiguration,
//! with joint quorums).
//!
//! A configuration is committed through the log as an entry of its own (a *config
//! entry*: [`encode_config_entry`]); its version is that entry's zxid (the first
//! configuration, from the command line, has version 0). From the moment a config
//! entry is in a member's log until the member knows it committed, every quorum that
//! member counts (election, epoch, NEWLEADER acknowledgements, commits, its leader's
//! liveness) is a *joint* quorum: a majority of the voters of the old configuration
//! and a majority of the new one. So no two quorums counted during a change are
//! disjoint, whichever side of the change each counter is on; a whole new membership
//! is as safe as adding one member.
//!
//! At most one change is in flight: a leader proposes a config entry only once the
//! previous one committed. Hence in any log every config entry but the last is
//! committed, and a member's view is the last config entry its log holds, plus the
//! one before it while the last is not known committed.

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};

use crate::{Zxid, zab::ServerId};

/// Config entries start with these bytes. A txn of the server's own encoding starts
/// with its version byte (1 or 2), so the two never collide.
const CONFIG_MAGIC: [u8; 4] = [0xBA, 0x70, 0xC0, 0x01];

/// An address is at most this long (a host name and a port).
const ADDR_BYTES_MAX: usize = 1_024;
/// A configuration has at most this many members.
pub const MEMBERS_MAX: usize = 255;

/// One member of a configuration.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    pub id: ServerId,
    /// Votes (and may lead); an observer otherwise.
    pub voter: bool,
    /// Its peer address (`HOST:PORT`), opaque here; empty when unknown.
    pub addr: String,
}

/// A configuration: its members and its version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// The zxid of the config entry that made it (`Zxid::ZERO`: the first one).
    pub version: Zxid,
    /// Sorted by id, ids unique.
    pub members: Vec<Member>,
}

impl Membership {
    /// A configuration of these members (sorted here).
    pub fn new(version: Zxid, mut members: Vec<Member>) -> Membership {
        members.sort();
        Membership { version, members }
    }

    pub fn voters(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.members.iter().filter(|m| m.voter).map(|m| m.id)
    }

    pub fn observers(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.members.iter().filter(|m| !m.voter).map(|m| m.id)
    }

    pub fn get(&self, id: ServerId) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    pub fn is_voter(&self, id: ServerId) -> bool {
        self.get(id).is_some_and(|m| m.voter)
    }

    pub fn is_member(&self, id: ServerId) -> bool {
        self.get(id).is_some()
    }

    /// Whether the voters for which `has` holds are a majority of the voters.
    pub fn majority(&self, has: &dyn Fn(ServerId) -> bool) -> bool {
        let voters = self.voters().count();
        self.voters().filter(|id| has(*id)).count() > voters / 2
    }

    /// The highest zxid a majority of the voters has logged, given each one's.
    fn majority_logged(&self, logged: &dyn Fn(ServerId) -> Zxid) -> Zxid {
        let mut all: Vec<Zxid> = self.voters().map(logged).collect();
        all.sort_unstable_by(|a, b| b.cmp(a));
        all.get(all.len() / 2).copied().unwrap_or(Zxid::ZERO)
    }

    /// Checks a proposed configuration is well formed: ids unique and > 0, at
    /// least one voter, at most [`MEMBERS_MAX`] members, addresses bounded.
    pub fn validate(members: &[Member]) -> Result<(), String> {
        let mut ids = BTreeSet::new();
        for member in members {
            if member.id == 0 {
                return Err("server id 0 is not valid (ids are > 0)".into());
            }
            if !ids.insert(member.id) {
                return Err(format!("server {} is listed twice", member.id));
            }
            if member.addr.len() > ADDR_BYTES_MAX {
                return Err(format!("the address of server {} is too long", member.id));
            }
        }
        if members.len() > MEMBERS_MAX {
            return Err(format!("{} members, at most {MEMBERS_MAX}", members.len()));
        }
        if !members.iter().any(|m| m.voter) {
            return Err("a configuration needs at least one voter".into());
        }
        Ok(())
    }
}

/// The data of a config entry making `members` the configuration.
pub fn encode_config_entry(members: &[Member]) -> Bytes {
    let mut out = BytesMut::with_capacity(8 + members.len() * 24);
    out.put_slice(&CONFIG_MAGIC);
    put_varint(&mut out, members.len() as u64);
    for member in members {
        put_varint(&mut out, member.id);
        out.put_u8(u8::from(member.voter));
        put_varint(&mut out, member.addr.len() as u64);
        out.put_slice(member.addr.as_bytes());
    }
    out.freeze()
}

/// The members a config entry's data names; `None` for any other entry (and for a
/// config entry that does not decode or is not a valid configuration: no member
/// acts on it, and the driver's own decoding reports it).
pub fn decode_config_entry(data: &[u8]) -> Option<Vec<Member>> {
    let mut input = data.strip_prefix(&CONFIG_MAGIC)?;
    let count = usize::try_from(take_varint(&mut input)?).ok()?;
    if count > MEMBERS_MAX {
        return None;
    }
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        let id = take_varint(&mut input)?;
        let (&voter, rest) = input.split_first()?;
        input = rest;
        let len = usize::try_from(take_varint(&mut input)?).ok()?;
        if len > ADDR_BYTES_MAX || len > input.len() {
            return None;
        }
        let (addr, rest) = input.split_at(len);
        input = rest;
        let voter = match voter {
            0 => false,
            1 => true,
            _ => return None,
        };
        members.push(Member { id, voter, addr: String::from_utf8(addr.to_vec()).ok()? });
    }
    if !input.is_empty() || Membership::validate(&members).is_err() {
        return None;
    }
    members.sort();
    Some(members)
}

/// Whether `data` is a config entry's (well formed or not).
pub fn is_config_entry(data: &[u8]) -> bool {
    data.starts_with(&CONFIG_MAGIC)
}

fn put_varint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn take_varint(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        value |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The configurations a member's log holds, oldest first: `[0]` is committed, and
/// with the one-change-in-flight rule every one but the last is.
#[derive(Debug, Clone)]
pub(crate) struct Configs {
    stack: Vec<Membership>,
}

impl Configs {
    pub(crate) fn new(base: Membership) -> Configs {
        Configs { stack: vec![base] }
    }

    /// The newest configuration known committed, given the commit point.
    pub(crate) fn active(&self, committed: Zxid) -> &Membership {
        let last = self.last();
        if last.version <= committed || self.stack.len() == 1 {
            last
        } else {
            &self.stack[self.stack.len() - 2]
        }
    }

    /// The configuration in flight (in the log, not known committed), if any.
    pub(crate) fn pending(&self, committed: Zxid) -> Option<&Membership> {
        let last = self.last();
        (self.stack.len() > 1 && last.version > committed).then_some(last)
    }

    pub(crate) fn last(&self) -> &Membership {
        self.stack.last().expect("at least the base configuration")
    }

    /// The configurations whose quorums count now: the active one, and the
    /// pending one if any.
    pub(crate) fn view(&self, committed: Zxid) -> impl Iterator<Item = &Membership> {
        std::iter::once(self.active(committed)).chain(self.pending(committed))
    }

    /// A majority of every configuration in the view holds `has`.
    pub(crate) fn is_quorum(&self, committed: Zxid, has: &dyn Fn(ServerId) -> bool) -> bool {
        self.view(committed).all(|config| config.majority(has))
    }

    /// The highest zxid a joint quorum has logged.
    pub(crate) fn quorum_logged(&self, committed: Zxid, logged: &dyn Fn(ServerId) -> Zxid) -> Zxid {
        self.view(committed).map(|c| c.majority_logged(logged)).min().unwrap_or(Zxid::ZERO)
    }

    pub(crate) fn is_voter(&self, committed: Zxid, id: ServerId) -> bool {
        self.view(committed).any(|c| c.is_voter(id))
    }

    pub(crate) fn is_member(&self, committed: Zxid, id: ServerId) -> bool {
        self.view(committed).any(|c| c.is_member(id))
    }

    /// Every voter of the view, sorted.
    #[cfg(test)]
    pub(crate) fn voters(&self, committed: Zxid) -> Vec<ServerId> {
        let all: BTreeSet<ServerId> = self.view(committed).flat_map(|c| c.voters()).collect();
        all.into_iter().collect()
    }

    /// A config entry was appended at `zxid`.
    pub(crate) fn appended(&mut self, zxid: Zxid, members: Vec<Member>) {
        if zxid > self.last().version {
            self.stack.push(Membership { version: zxid, members });
        }
    }

    /// Everything up to `committed` is committed: older configurations are history.
    pub(crate) fn committed(&mut self, committed: Zxid) {
        let newest_committed = self.stack.iter().rposition(|c| c.version <= committed).unwrap_or(0);
        self.stack.drain(..newest_committed);
    }

    /// The log was cut after `zxid`.
    pub(crate) fn truncated(&mut self, zxid: Zxid) {
        while self.stack.len() > 1 && self.last().version > zxid {
            self.stack.pop();
        }
    }

    /// The whole state was replaced by a leader's snapshot, whose configuration
    /// (or a newer committed one) is `config`.
    pub(crate) fn installed(&mut self, config: Membership) {
        self.stack = vec![config];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: ServerId, voter: bool) -> Member {
        Member { id, voter, addr: format!("10.0.0.{id}:2888") }
    }

    fn config(version: Zxid, voters: &[ServerId]) -> Membership {
        Membership::new(version, voters.iter().map(|id| member(*id, true)).collect())
    }

    #[test]
    fn config_entries_round_trip_and_garbage_is_none() {
        let members = vec![member(1, true), member(2, false), member(300, true)];
        let data = encode_config_entry(&members);
        assert!(is_config_entry(&data));
        assert_eq!(decode_config_entry(&data), Some(members));
        assert_eq!(decode_config_entry(&[2, 0, 1]), None, "a txn is no config");
        for cut in 0..data.len() {
            assert_eq!(decode_config_entry(&data[..cut]), None, "cut at {cut}");
        }
        let no_voter = encode_config_entry(&[member(1, false)]);
        assert_eq!(decode_config_entry(&no_voter), None);
        let twice = encode_config_entry(&[member(1, true), member(1, true)]);
        assert_eq!(decode_config_entry(&twice), None);
    }

    #[test]
    fn a_change_in_flight_counts_joint_quorums() {
        let mut configs = Configs::new(config(Zxid::ZERO, &[1, 2, 3]));
        let z = Zxid::new(1, 5);
        configs.appended(z, config(z, &[3, 4, 5]).members);
        let before = Zxid::new(1, 4);
        // {1, 2} is a majority of the old voters only; {3, 4, 5} of the new only.
        assert!(!configs.is_quorum(before, &|id| [1, 2].contains(&id)));
        assert!(!configs.is_quorum(before, &|id| [3, 4, 5].contains(&id)));
        assert!(configs.is_quorum(before, &|id| [1, 3, 4].contains(&id)));
        assert_eq!(configs.voters(before), [1, 2, 3, 4, 5]);
        // Once it committed, the new configuration alone.
        assert!(configs.is_quorum(z, &|id| [3, 4, 5].contains(&id)));
        let logged = |id| Zxid::new(1, [0, 9, 9, 4, 6, 5][id as usize]);
        assert_eq!(configs.quorum_logged(before, &logged), Zxid::new(1, 5));
        // A cut log takes the change back; a commit makes it the base.
        let mut cut = configs.clone();
        cut.truncated(before);
        assert!(cut.is_quorum(before, &|id| [1, 2].contains(&id)));
        configs.committed(z);
        assert_eq!(configs.stack.len(), 1);
        assert_eq!(configs.active(Zxid::ZERO).version, z);
    }
}
