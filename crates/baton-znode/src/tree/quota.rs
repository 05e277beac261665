//! Quotas (ZooKeeper 3.7's, with hard limits enforced): limits on the number of
//! znodes and data bytes of a subtree.
//!
//! A quota on `/app/x` is a real node, `/baton/quota/app/x/limits`, whose data is
//! ZooKeeper's `StatsTrack` text (so a ZooKeeper front door can show it under
//! `/zookeeper/quota`); it is in the digest and in snapshots like any node. What
//! each subtree holds is not stored: `DataTree::quotas` indexes the limits with the
//! usage, which `link` / `unlink` / data changes keep up to date and decoding
//! recomputes. With no quota (the usual case) that upkeep is one `is_empty`.

use crate::CONFIG_PATH;
use std::collections::BTreeMap;

use bytes::Bytes;

use super::DataTree;
use super::apply::{Ctx, created_stat};
use super::node::{Node, NodeKind};
use super::store::Journal;
use crate::acl::{Perms, open_acl};
use crate::limits::{bad, reserved};
use crate::path::{basename, is_reserved, parent, validate_path};
use crate::{ChangeKind, OpResult, QuotaLimits, QuotaUsage, QuotaWarning, ZnodeError};

/// Where the limits nodes live.
pub(crate) const QUOTA_ROOT: &str = "/baton/quota";
/// The name of the node holding a quota's limits, below the mirrored path.
const LIMITS_NODE: &str = "limits";

/// One quota: its limits and what its subtree holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quota {
    pub(crate) limits: QuotaLimits,
    pub(crate) usage: QuotaUsage,
}

impl DataTree {
    /// The usage of the quota on `path` or its nearest quota'd ancestor. Nested
    /// quotas are refused, so at most one quota covers a node.
    pub(super) fn quota_usage_mut(&mut self, path: &str) -> Option<&mut QuotaUsage> {
        if self.quotas.is_empty() {
            return None;
        }
        let root = covering(&self.quotas, path)?;
        self.quotas.get_mut(root).map(|q| &mut q.usage)
    }

    /// Whether adding `count` nodes and `bytes` data bytes (negative: fewer) under
    /// `path` keeps the covering quota within its hard limits, as ZooKeeper's
    /// `checkQuota`: a limit is checked only when the op adds to what it limits.
    /// A soft limit left exceeded is recorded as a warning.
    pub(super) fn check_quota(
        &self,
        path: &str,
        count: u64,
        bytes: i64,
        j: &mut Journal,
    ) -> Result<(), ZnodeError> {
        if self.quotas.is_empty() {
            return Ok(());
        }
        let Some(root) = covering(&self.quotas, path) else { return Ok(()) };
        let Quota { limits, usage } = self.quotas[root];
        let after = QuotaUsage {
            count: usage.count + count,
            bytes: usage.bytes.saturating_add_signed(bytes),
        };
        let exceeded = |what: &str, limit: u64, would: u64| ZnodeError::QuotaExceeded {
            path: path.to_owned(),
            quota_path: root.to_owned(),
            reason: format!("hard limit of {limit} {what}; the subtree would hold {would}"),
        };
        let counts = count > 0;
        let grows = bytes > 0;
        if let Some(limit) = limits.count_hard.filter(|&l| counts && after.count > l) {
            return Err(exceeded("znodes", limit, after.count));
        }
        if let Some(limit) = limits.bytes_hard.filter(|&l| grows && after.bytes > l) {
            return Err(exceeded("data bytes", limit, after.bytes));
        }
        let soft = (counts && limits.count_soft.is_some_and(|l| after.count > l))
            || (grows && limits.bytes_soft.is_some_and(|l| after.bytes > l));
        if soft {
            let quota_path = root.to_owned();
            j.quota_warnings.push(QuotaWarning { quota_path, limits, usage: after });
        }
        Ok(())
    }

    /// `TxnOp::SetQuota`: the limits node is created (with any missing node above
    /// it) or its data replaced, as a create or a setData would.
    pub(super) fn set_quota(
        &mut self,
        ctx: Ctx<'_>,
        path: &str,
        limits: &QuotaLimits,
        j: &mut Journal,
    ) -> Result<OpResult, ZnodeError> {
        quota_target(path)?;
        check_limits(path, limits)?;
        let node = self.nodes.get(path).ok_or_else(|| ZnodeError::NoNode { path: path.into() })?;
        self.permit(path, node, ctx.auth, Perms::ADMIN)?;
        let nested = |other: &str| {
            bad(path, format!("{other} has a quota: quotas on {path} and {other} would nest"))
        };
        if let Some(ancestor) = parent(path).and_then(|p| covering(&self.quotas, p)) {
            return Err(nested(ancestor));
        }
        let below = format!("{path}/");
        let mut after = self.quotas.range(below.clone()..);
        if let Some((descendant, _)) = after.next().filter(|(d, _)| d.starts_with(&below)) {
            return Err(nested(descendant));
        }
        let data = Bytes::from(format_limits(limits));
        let limits_path = limits_node(path);
        if self.quotas.contains_key(path) {
            self.replace_system_data(ctx, &limits_path, &data, j);
        } else {
            let mut missing = Vec::new();
            let mut above = parent(&limits_path);
            while let Some(p) = above.filter(|p| !self.nodes.contains_key(*p)) {
                missing.push(p.to_owned());
                above = parent(p);
            }
            for p in missing.into_iter().rev() {
                self.add_quota_node(ctx, p, Bytes::new(), j);
            }
            self.add_quota_node(ctx, limits_path, data, j);
        }
        let usage = self.subtree_usage(path);
        self.update_quota(path, Some(Quota { limits: *limits, usage }), j);
        Ok(OpResult::QuotaSet)
    }

    /// `TxnOp::RemoveQuota`: deletes the limits node and the nodes above it that
    /// are left childless, up to (not including) `/baton/quota`.
    pub(super) fn remove_quota(
        &mut self,
        ctx: Ctx<'_>,
        path: &str,
        j: &mut Journal,
    ) -> Result<OpResult, ZnodeError> {
        quota_target(path)?;
        if let Some(node) = self.nodes.get(path) {
            self.permit(path, node, ctx.auth, Perms::ADMIN)?;
        }
        let limits_path = limits_node(path);
        if !self.quotas.contains_key(path) {
            return Err(ZnodeError::NoNode { path: limits_path });
        }
        self.remove_leaf(ctx, &limits_path, j);
        let mut above = parent(&limits_path).map(str::to_owned);
        while let Some(p) = above.filter(|p| p != QUOTA_ROOT) {
            if !self.nodes[p.as_str()].children.is_empty() {
                break;
            }
            self.remove_leaf(ctx, &p, j);
            above = parent(&p).map(str::to_owned);
        }
        self.update_quota(path, None, j);
        Ok(OpResult::QuotaRemoved)
    }

    /// `TxnOp::SetConfig`: the configuration node is created or its data replaced,
    /// as a create or a setData would (its `mzxid` is the configuration's version).
    pub(super) fn set_config(&mut self, ctx: Ctx<'_>, data: &Bytes, j: &mut Journal) -> OpResult {
        if self.nodes.contains_key(CONFIG_PATH) {
            self.replace_system_data(ctx, CONFIG_PATH, data, j);
        } else {
            self.add_quota_node(ctx, CONFIG_PATH.to_owned(), data.clone(), j);
        }
        OpResult::ConfigSet { stat: self.nodes[CONFIG_PATH].stat }
    }

    /// Replaces the data of a server-kept node, as a setData would.
    fn replace_system_data(&mut self, ctx: Ctx<'_>, path: &str, data: &Bytes, j: &mut Journal) {
        self.update_node(
            path,
            Some(data.clone()),
            |s| {
                s.version = s.version.wrapping_add(1);
                s.mzxid = ctx.zxid;
                s.mtime = ctx.time_ms;
                s.data_length = data.len() as u32;
            },
            j,
        );
        j.change(path, ChangeKind::NodeDataChanged);
    }

    /// A plain persistent node with the open ACL, as ZooKeeper's quota nodes.
    fn add_quota_node(&mut self, ctx: Ctx<'_>, path: String, data: Bytes, j: &mut Journal) {
        let acl = self.acls.intern(&open_acl());
        let stat = created_stat(ctx, 0, &data);
        self.add_child(ctx, path, Node::new(data, stat, NodeKind::Persistent, acl), j);
    }

    /// The count and data bytes of `path` and every node below it (none if it does
    /// not exist).
    fn subtree_usage(&self, path: &str) -> QuotaUsage {
        let mut usage = QuotaUsage::default();
        let mut stack = vec![path.to_owned()];
        while let Some(p) = stack.pop() {
            let Some(node) = self.nodes.get(p.as_str()) else { continue };
            usage.count += 1;
            usage.bytes += node.data.len() as u64;
            stack.extend(node.children.iter().map(|c| format!("{p}/{}", c.as_str())));
        }
        usage
    }

    /// Rebuilds `quotas` from the limits nodes of a decoded tree, checking that
    /// `/baton/quota` holds nothing else: each leaf below it is a `limits` node
    /// with valid limits for a client path, and no two quotas nest.
    pub(super) fn rebuild_quotas(&mut self) -> Result<(), String> {
        let mut found = BTreeMap::new();
        let mut stack = vec![QUOTA_ROOT.to_owned()];
        while let Some(p) = stack.pop() {
            let Some(node) = self.nodes.get(p.as_str()) else { continue };
            if node.kind != NodeKind::Persistent {
                return Err(format!("{p} is not a plain persistent node"));
            }
            if !node.children.is_empty() {
                stack.extend(node.children.iter().map(|c| format!("{p}/{}", c.as_str())));
                continue;
            }
            if p == QUOTA_ROOT {
                continue;
            }
            let path = match (basename(&p), parent(&p).and_then(|q| q.strip_prefix(QUOTA_ROOT))) {
                (LIMITS_NODE, Some(path)) if !path.is_empty() => path.to_owned(),
                _ => return Err(format!("{p} is neither a limits node nor above one")),
            };
            quota_target(&path).map_err(|e| format!("{p}: {e}"))?;
            let limits = std::str::from_utf8(&node.data)
                .map_err(|_| format!("{p}: limits are not UTF-8"))
                .and_then(|text| parse_limits(text).map_err(|e| format!("{p}: {e}")))?;
            check_limits(&path, &limits).map_err(|e| format!("{p}: {e}"))?;
            found.insert(path, limits);
        }
        for path in found.keys() {
            if let Some(ancestor) = parent(path).and_then(|p| covering(&found, p)) {
                return Err(format!("quotas on {ancestor} and {path} nest"));
            }
        }
        self.quotas = found
            .into_iter()
            .map(|(path, limits)| {
                let usage = self.subtree_usage(&path);
                (path, Quota { limits, usage })
            })
            .collect();
        Ok(())
    }
}

/// `path` or its nearest ancestor that is a key of `quotas` (a prefix of `path`,
/// so borrowed from it).
fn covering<'p, V>(quotas: &BTreeMap<String, V>, path: &'p str) -> Option<&'p str> {
    let mut p = path;
    loop {
        if quotas.contains_key(p) {
            return Some(p);
        }
        p = parent(p)?;
    }
}

/// A path a quota may be on: a valid client path, not `/`.
fn quota_target(path: &str) -> Result<(), ZnodeError> {
    validate_path(path)?;
    if is_reserved(path) {
        return Err(reserved(path));
    }
    if path == "/" {
        return Err(bad(path, "a quota cannot be set on /"));
    }
    Ok(())
}

/// At least one limit, each one a Java long (ZooKeeper keeps them so).
fn check_limits(path: &str, limits: &QuotaLimits) -> Result<(), ZnodeError> {
    let all = [limits.count_soft, limits.bytes_soft, limits.count_hard, limits.bytes_hard];
    if all.iter().all(Option::is_none) {
        return Err(bad(path, "a quota needs at least one limit"));
    }
    if all.iter().flatten().any(|&l| i64::try_from(l).is_err()) {
        return Err(bad(path, format!("quota limits must be at most {}", i64::MAX)));
    }
    Ok(())
}

pub(crate) fn limits_node(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}/{LIMITS_NODE}")
}

/// ZooKeeper 3.7's `StatsTrack` text with all four limits: `count` and `bytes`
/// first and comma-separated (what ZooKeeper 3.4 reads), the hard limits after a
/// `=;` that older readers ignore, in name order; -1 for no limit.
pub(crate) fn format_limits(limits: &QuotaLimits) -> String {
    let show = |limit: Option<u64>| limit.map_or(-1, |l| l as i128);
    format!(
        "count={},bytes={}=;byteHardLimit={};countHardLimit={}",
        show(limits.count_soft),
        show(limits.bytes_soft),
        show(limits.bytes_hard),
        show(limits.count_hard)
    )
}

/// Reads `StatsTrack` text: `key=value` pairs separated by `,` or `;`, a value
/// possibly followed by the compatibility `=`; a missing key or -1 is no limit.
/// Stricter than ZooKeeper: unknown or repeated keys and values below -1 are
/// errors (the text comes only from `format_limits`).
pub(crate) fn parse_limits(text: &str) -> Result<QuotaLimits, String> {
    let mut limits = QuotaLimits::default();
    let mut seen = Vec::new();
    for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
        let mut parts = pair.split('=');
        let (key, value) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        if parts.any(|rest| !rest.is_empty()) {
            return Err(format!("malformed pair {pair:?}"));
        }
        let value: i64 = value.parse().map_err(|_| format!("{key}: {value:?} is not a number"))?;
        let value = match value {
            -1 => None,
            v => Some(u64::try_from(v).map_err(|_| format!("{key}: {v} is below -1"))?),
        };
        let slot = match key {
            "count" => &mut limits.count_soft,
            "bytes" => &mut limits.bytes_soft,
            "countHardLimit" => &mut limits.count_hard,
            "byteHardLimit" => &mut limits.bytes_hard,
            other => return Err(format!("unknown key {other:?}")),
        };
        if seen.contains(&key) {
            return Err(format!("{key} given twice"));
        }
        seen.push(key);
        *slot = value;
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_text_is_zookeepers() {
        let limits = QuotaLimits {
            count_soft: Some(5),
            bytes_soft: None,
            count_hard: Some(10),
            bytes_hard: Some(0),
        };
        let text = format_limits(&limits);
        assert_eq!(text, "count=5,bytes=-1=;byteHardLimit=0;countHardLimit=10");
        assert_eq!(parse_limits(&text), Ok(limits));
        // ZooKeeper 3.4's form, soft limits only.
        let old = parse_limits("count=3,bytes=100").unwrap();
        assert_eq!(
            old,
            QuotaLimits { count_soft: Some(3), bytes_soft: Some(100), ..limits_none() }
        );
        for bad in ["count=x", "count=-2", "foo=1", "count=1,count=2", "count=1=2", "count"] {
            assert!(parse_limits(bad).is_err(), "{bad:?}");
        }
    }

    fn limits_none() -> QuotaLimits {
        QuotaLimits::default()
    }

    #[test]
    fn covering_finds_self_or_nearest_ancestor() {
        let quotas: BTreeMap<String, ()> = [("/a/b".to_owned(), ())].into();
        assert_eq!(covering(&quotas, "/a/b"), Some("/a/b"));
        assert_eq!(covering(&quotas, "/a/b/c/d"), Some("/a/b"));
        assert_eq!(covering(&quotas, "/a/bc"), None);
        assert_eq!(covering(&quotas, "/a"), None);
    }
}
