//! The tree's ACL lists, each distinct list stored once (as ZooKeeper's
//! `ReferenceCountedACLCache`): a node holds a 4-byte [`AclRef`] instead of its own
//! list, because nearly every node of a real tree shares one of a handful of ACLs.
//!
//! Reference counts change only when a node is linked, unlinked or given another
//! ACL. A list whose count falls to 0 is not freed at once but when the txn ends
//! ([`AclCache::collect`]): a multi rolled back relinks its removed nodes with the
//! references they had, which must still name the same lists.

use std::collections::HashMap;

use super::PathHasher;
use crate::acl::{Acl, AclEntry};
use crate::hash::StableHasher;

/// Index of a list in the cache.
pub(crate) type AclRef = u32;

/// Domain separator: an ACL's hash never collides with a node's or a session's by
/// construction (see `node`).
const ACL_TAG: u64 = 3;

#[derive(Debug, Clone, Default)]
struct Slot {
    acl: Acl,
    /// `acl_hash(acl)`, kept so that a node's digest hash costs no ACL walk.
    hash: u64,
    /// Nodes that hold this slot; a free slot has 0 and an empty list.
    refs: u64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct AclCache {
    slots: Vec<Slot>,
    ids: HashMap<Acl, AclRef, PathHasher>,
    /// Slots to reuse, freed by `collect`.
    free: Vec<AclRef>,
    /// Slots whose count fell to (or was created at) 0 since the last `collect`.
    unreferenced: Vec<AclRef>,
}

impl AclCache {
    /// The reference of `acl`'s slot, made if needed (with no reference yet: the
    /// node it is for is linked next, or `collect` frees it).
    pub(crate) fn intern(&mut self, acl: &[AclEntry]) -> AclRef {
        if let Some(&id) = self.ids.get(acl) {
            return id;
        }
        let slot = Slot { acl: acl.to_vec(), hash: acl_hash(acl), refs: 0 };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                let id = AclRef::try_from(self.slots.len()).expect("fewer than 2^32 distinct ACLs");
                self.slots.push(slot);
                id
            }
        };
        self.ids.insert(acl.to_vec(), id);
        self.unreferenced.push(id);
        id
    }

    /// One more node holds `id`.
    pub(crate) fn retain(&mut self, id: AclRef) {
        let slot = &mut self.slots[id as usize];
        assert!(!slot.acl.is_empty(), "reference to free ACL slot {id}");
        slot.refs += 1;
    }

    /// One node fewer holds `id`.
    pub(crate) fn release(&mut self, id: AclRef) {
        let slot = &mut self.slots[id as usize];
        assert!(slot.refs > 0, "ACL slot {id} released more often than retained");
        slot.refs -= 1;
        if slot.refs == 0 {
            self.unreferenced.push(id);
        }
    }

    /// Frees the slots left without references. Called when a txn ends, never in
    /// the middle of one.
    pub(crate) fn collect(&mut self) {
        for id in std::mem::take(&mut self.unreferenced) {
            let slot = &mut self.slots[id as usize];
            if slot.refs == 0 && !slot.acl.is_empty() {
                let acl = std::mem::take(&mut slot.acl);
                self.ids.remove(&acl);
                self.free.push(id);
            }
        }
    }

    pub(crate) fn get(&self, id: AclRef) -> &[AclEntry] {
        &self.slots[id as usize].acl
    }

    pub(crate) fn hash(&self, id: AclRef) -> u64 {
        self.slots[id as usize].hash
    }

    /// Nodes holding `id`.
    pub(crate) fn refs(&self, id: AclRef) -> u64 {
        self.slots[id as usize].refs
    }

    /// Live lists in content order (canonical: independent of the history that
    /// filled the slots), with their references.
    pub(crate) fn sorted(&self) -> Vec<(&[AclEntry], AclRef)> {
        let mut live: Vec<(&[AclEntry], AclRef)> =
            self.ids.iter().map(|(acl, id)| (acl.as_slice(), *id)).collect();
        live.sort_unstable();
        live
    }

    /// Distinct lists held by at least one node.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.refs > 0).count()
    }
}

/// Equal when the same lists are held by the same numbers of nodes, whichever slots
/// they sit in (slot numbers depend on history; contents do not).
impl PartialEq for AclCache {
    fn eq(&self, other: &Self) -> bool {
        let live = |cache: &AclCache| cache.slots.iter().filter(|s| s.refs > 0).count();
        live(self) == live(other)
            && self
                .slots
                .iter()
                .filter(|s| s.refs > 0)
                .all(|slot| other.ids.get(&slot.acl).is_some_and(|&id| other.refs(id) == slot.refs))
    }
}

impl Eq for AclCache {}

/// A list's share of its nodes' digest hashes: every entry, in order.
pub(crate) fn acl_hash(acl: &[AclEntry]) -> u64 {
    let mut h = StableHasher::default();
    h.write_u64(ACL_TAG);
    h.write_u64(acl.len() as u64);
    for entry in acl {
        h.write_u64(u64::from(entry.perms.bits()));
        h.write_bytes(entry.id.scheme.as_bytes());
        h.write_bytes(entry.id.id.as_bytes());
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{open_acl, parse_acl};

    #[test]
    fn lists_are_shared_counted_and_reused() {
        let mut cache = AclCache::default();
        let open = cache.intern(&open_acl());
        assert_eq!(cache.intern(&open_acl()), open, "one slot per distinct list");
        cache.retain(open);
        cache.retain(open);
        let read = parse_acl("world:anyone:r").unwrap();
        let r = cache.intern(&read);
        assert_ne!(r, open);
        cache.retain(r);
        assert_eq!(cache.len(), 2);
        cache.release(r);
        // Still there until the txn ends: a rollback may relink a node holding it.
        assert_eq!(cache.get(r), read.as_slice());
        cache.retain(r);
        cache.release(r);
        cache.collect();
        assert_eq!(cache.len(), 1);
        let other = parse_acl("ip:10.0.0.0/8:cdrwa").unwrap();
        assert_eq!(cache.intern(&other), r, "a freed slot is reused");
        assert_eq!(cache.get(r), other.as_slice());
        assert_eq!(cache.hash(r), acl_hash(&other));
        cache.collect();
        assert_eq!(cache.get(open), open_acl().as_slice());
        assert_eq!(cache.refs(open), 2);
    }

    #[test]
    fn equality_ignores_slot_numbers() {
        let (a_acl, b_acl) = (open_acl(), parse_acl("world:anyone:r").unwrap());
        let mut x = AclCache::default();
        let mut y = AclCache::default();
        let (xa, xb) = (x.intern(&a_acl), x.intern(&b_acl));
        let (yb, ya) = (y.intern(&b_acl), y.intern(&a_acl));
        for id in [xa, xb] {
            x.retain(id);
        }
        y.retain(ya);
        assert!(x != y, "different reference counts");
        y.retain(yb);
        assert!(x == y);
        assert_ne!(acl_hash(&a_acl), acl_hash(&b_acl));
    }

    #[test]
    #[should_panic(expected = "released more often")]
    fn releasing_an_unheld_list_is_a_bug() {
        let mut cache = AclCache::default();
        let id = cache.intern(&open_acl());
        cache.release(id);
    }
}
