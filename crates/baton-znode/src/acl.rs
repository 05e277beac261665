//! Access control, ZooKeeper's model: every znode carries an ACL, a list of
//! (permissions, scheme, id) entries; a request runs with the identities its session
//! (or unary call) has authenticated, and an operation is allowed when one entry
//! that grants the permission it needs matches one of them.
//!
//! Schemes: `world` (id `anyone`: everybody), `auth` (only when setting an ACL: each
//! identity the caller has authenticated, see [`fixup`]), `digest`
//! (`user:base64(sha1(user:password))`), `ip` (`address` or `address/prefix`, IPv4 or
//! IPv6) and `x509` (a TLS client certificate's subject). The identity `super` (id
//! empty) passes every check; only the server grants it (a `--super-digest` login).
//!
//! Pure functions of their inputs, as the tree: `check` at apply time gives the same
//! answer on every replica because the identities travel inside the txn.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::{MultiOp, TxnError, TxnOp, ZnodeError};

/// A set of permissions; the bits are ZooKeeper's (`ZooDefs.Perms`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Perms(u8);

impl Perms {
    pub const READ: Perms = Perms(1);
    pub const WRITE: Perms = Perms(2);
    pub const CREATE: Perms = Perms(4);
    pub const DELETE: Perms = Perms(8);
    pub const ADMIN: Perms = Perms(16);
    pub const ALL: Perms = Perms(31);
    pub const NONE: Perms = Perms(0);

    /// From ZooKeeper's integer form; None when a bit above ADMIN is set.
    pub fn from_bits(bits: u32) -> Option<Perms> {
        (bits & !u32::from(Perms::ALL.0) == 0).then_some(Perms(bits as u8))
    }

    pub fn bits(self) -> u32 {
        u32::from(self.0)
    }

    /// Whether every permission of `other` is in `self`.
    pub fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether `self` and `other` share a permission.
    pub fn intersects(self, other: Perms) -> bool {
        self.0 & other.0 != 0
    }

    pub fn union(self, other: Perms) -> Perms {
        Perms(self.0 | other.0)
    }

    /// How a refusal (`ZnodeError::NoAuth`) names the permission that was needed.
    /// Checks ask for one permission, but for getACL's "READ or ADMIN".
    pub fn name(self) -> &'static str {
        match self {
            Perms::READ => "READ",
            Perms::WRITE => "WRITE",
            Perms::CREATE => "CREATE",
            Perms::DELETE => "DELETE",
            Perms::ADMIN => "ADMIN",
            p if p == Perms::READ.union(Perms::ADMIN) => "READ or ADMIN",
            _ => "one of the requested permissions",
        }
    }

    /// zkCli's letters: any of `c`, `d`, `r`, `w`, `a`, each at most once.
    pub fn parse(letters: &str) -> Result<Perms, String> {
        let mut perms = Perms::NONE;
        for c in letters.chars() {
            let p = match c {
                'r' => Perms::READ,
                'w' => Perms::WRITE,
                'c' => Perms::CREATE,
                'd' => Perms::DELETE,
                'a' => Perms::ADMIN,
                other => {
                    return Err(format!("unknown permission {other:?} (expected c, d, r, w, a)"));
                }
            };
            if perms.intersects(p) {
                return Err(format!("permission {c:?} given twice"));
            }
            perms = perms.union(p);
        }
        Ok(perms)
    }
}

/// zkCli's order: `cdrwa`.
impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (p, c) in [
            (Perms::CREATE, 'c'),
            (Perms::DELETE, 'd'),
            (Perms::READ, 'r'),
            (Perms::WRITE, 'w'),
            (Perms::ADMIN, 'a'),
        ] {
            if self.contains(p) {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

pub const SCHEME_WORLD: &str = "world";
pub const SCHEME_AUTH: &str = "auth";
pub const SCHEME_DIGEST: &str = "digest";
pub const SCHEME_IP: &str = "ip";
pub const SCHEME_X509: &str = "x509";
pub const SCHEME_SUPER: &str = "super";
pub const ANYONE: &str = "anyone";

/// A (scheme, id) pair: an identity a request has, or whom an ACL entry names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id {
    pub scheme: String,
    pub id: String,
}

impl Id {
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Id {
        Id { scheme: scheme.into(), id: id.into() }
    }

    /// `world:anyone`.
    pub fn anyone() -> Id {
        Id::new(SCHEME_WORLD, ANYONE)
    }

    /// The identity that passes every check.
    pub fn super_user() -> Id {
        Id::new(SCHEME_SUPER, "")
    }

    /// What may be shown of this identity to anyone, logs included: a digest's
    /// user name without its hash.
    pub fn redacted(&self) -> String {
        match self.scheme.as_str() {
            SCHEME_DIGEST => {
                let user = self.id.split(':').next().unwrap_or_default();
                format!("{SCHEME_DIGEST}:{user}")
            }
            SCHEME_SUPER => SCHEME_SUPER.to_owned(),
            _ => format!("{}:{}", self.scheme, self.id),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme, self.id)
    }
}

/// One ACL entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclEntry {
    pub perms: Perms,
    pub id: Id,
}

impl AclEntry {
    pub fn new(perms: Perms, scheme: &str, id: &str) -> AclEntry {
        AclEntry { perms, id: Id::new(scheme, id) }
    }
}

/// zkCli's form: `scheme:id:perms`.
impl fmt::Display for AclEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.id.scheme, self.id.id, self.perms)
    }
}

/// An ACL: the entries of one znode, in the order they were given.
pub type Acl = Vec<AclEntry>;

/// `world:anyone:cdrwa`, ZooKeeper's `OPEN_ACL_UNSAFE`: the default.
pub fn open_acl() -> Acl {
    vec![AclEntry { perms: Perms::ALL, id: Id::anyone() }]
}

/// Parses zkCli's comma-separated `scheme:id:perms` entries (`world:anyone:r`,
/// `digest:alice:<base64 sha1>:cdrwa`, `auth::cdrwa`, `ip:10.0.0.0/8:r`). The scheme
/// ends at the first `:` and the permissions start after the last, so a digest id or
/// an IPv6 address may hold colons. Checks the syntax only; [`fixup`] checks the ids.
pub fn parse_acl(text: &str) -> Result<Acl, String> {
    let mut acl = Acl::new();
    for entry in text.split(',').map(str::trim) {
        let (Some(first), Some(last)) = (entry.find(':'), entry.rfind(':')) else {
            return Err(format!("ACL entry {entry:?} is not scheme:id:perms"));
        };
        if first == last {
            return Err(format!("ACL entry {entry:?} is not scheme:id:perms"));
        }
        let perms = Perms::parse(&entry[last + 1..])
            .map_err(|reason| format!("ACL entry {entry:?}: {reason}"))?;
        acl.push(AclEntry::new(perms, &entry[..first], &entry[first + 1..last]));
    }
    Ok(acl)
}

/// Formats an ACL as [`parse_acl`] reads it.
pub fn format_acl(acl: &[AclEntry]) -> String {
    acl.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// The identities a request runs with. Cheap to clone (shared).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Auth(Option<Arc<[Id]>>);

impl Auth {
    /// No identity at all (server-made txns, and txns logged before ACLs existed).
    pub fn none() -> Auth {
        Auth(None)
    }

    pub fn new(ids: Vec<Id>) -> Auth {
        if ids.is_empty() { Auth(None) } else { Auth(Some(ids.into())) }
    }

    pub fn ids(&self) -> &[Id] {
        self.0.as_deref().unwrap_or_default()
    }

    pub fn is_super(&self) -> bool {
        self.ids().iter().any(|id| id.scheme == SCHEME_SUPER)
    }
}

/// Whether `auth` may do what needs any of `perm` on a node with `acl`: ZooKeeper's
/// `checkACL`. The super identity and an empty ACL allow everything.
pub fn check(acl: &[AclEntry], auth: &Auth, perm: Perms) -> bool {
    if acl.is_empty() || auth.is_super() {
        return true;
    }
    acl.iter().filter(|entry| entry.perms.intersects(perm)).any(|entry| {
        (entry.id.scheme == SCHEME_WORLD && entry.id.id == ANYONE)
            || auth.ids().iter().any(|have| matches(&entry.id, have))
    })
}

/// Whether an identity a request has matches the one an ACL entry names.
fn matches(named: &Id, have: &Id) -> bool {
    if named.scheme != have.scheme {
        return false;
    }
    match named.scheme.as_str() {
        SCHEME_DIGEST | SCHEME_X509 => named.id == have.id,
        SCHEME_IP => ip_matches(&named.id, &have.id),
        _ => false,
    }
}

/// Whether the address `addr` is inside `pattern` (`address` or `address/prefix`).
pub fn ip_matches(pattern: &str, addr: &str) -> bool {
    let Ok((net, bits)) = parse_ip_pattern(pattern) else { return false };
    let Ok(addr) = addr.parse::<IpAddr>() else { return false };
    match (net, addr) {
        (IpAddr::V4(net), IpAddr::V4(addr)) => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(net) & mask == u32::from(addr) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(addr)) => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(net) & mask == u128::from(addr) & mask
        }
        _ => false,
    }
}

fn parse_ip_pattern(pattern: &str) -> Result<(IpAddr, u32), String> {
    let (addr, bits) = match pattern.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (pattern, None),
    };
    let addr: IpAddr =
        addr.parse().map_err(|_| format!("{addr:?} is not an IPv4 or IPv6 address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => max,
        Some(bits) => match bits.parse::<u32>() {
            Ok(b) if b <= max => b,
            _ => return Err(format!("prefix length {bits:?} is not in 0..={max}")),
        },
    };
    Ok((addr, bits))
}

/// Checks an ACL given by a client and makes it concrete, as ZooKeeper's
/// `fixupACL`: an `auth` entry becomes one entry per identity the caller has
/// authenticated (digest and x509; not ip, not super), duplicates go, every other
/// id is checked for its scheme. An empty ACL, an unknown scheme, a malformed id or
/// an `auth` entry from a caller with no such identity is `InvalidAcl`.
pub fn fixup(path: &str, acl: &[AclEntry], auth: &Auth) -> Result<Acl, ZnodeError> {
    let invalid = |reason: String| ZnodeError::InvalidAcl { path: path.to_owned(), reason };
    if acl.is_empty() {
        return Err(invalid("the ACL is empty".into()));
    }
    let mut out = Acl::with_capacity(acl.len());
    let mut push = |entry: AclEntry| {
        if !out.contains(&entry) {
            out.push(entry);
        }
    };
    for entry in acl {
        if entry.id.scheme == SCHEME_AUTH {
            let mut any = false;
            for id in auth.ids().iter().filter(|id| is_authenticated(&id.scheme)) {
                push(AclEntry { perms: entry.perms, id: id.clone() });
                any = true;
            }
            if !any {
                return Err(invalid(
                    "an auth entry needs an authenticated identity (digest or x509), and the caller has none"
                        .into(),
                ));
            }
        } else {
            validate_entry(entry).map_err(invalid)?;
            push(entry.clone());
        }
    }
    Ok(out)
}

/// [`fixup`] for every ACL an op carries (a create's, a multi's creates', a set
/// ACL's): what a front door does before it builds the txn for a caller with `auth`.
pub fn fixup_op(op: TxnOp, auth: &Auth) -> Result<TxnOp, TxnError> {
    Ok(match op {
        TxnOp::Create(mut create) => {
            create.acl = fixup(&create.path, &create.acl, auth)?;
            TxnOp::Create(create)
        }
        TxnOp::SetAcl(mut set) => {
            set.acl = fixup(&set.path, &set.acl, auth)?;
            TxnOp::SetAcl(set)
        }
        TxnOp::Multi(ops) => {
            let fixed = ops.into_iter().enumerate().map(|(i, op)| match op {
                MultiOp::Create(mut create) => {
                    create.acl = fixup(&create.path, &create.acl, auth)
                        .map_err(|error| TxnError { op_index: Some(i), error })?;
                    Ok(MultiOp::Create(create))
                }
                other => Ok(other),
            });
            TxnOp::Multi(fixed.collect::<Result<_, TxnError>>()?)
        }
        other => other,
    })
}

/// Schemes whose identities an `auth` ACL entry stands for.
fn is_authenticated(scheme: &str) -> bool {
    scheme == SCHEME_DIGEST || scheme == SCHEME_X509
}

/// One concrete entry (no `auth`): a known scheme and a well-formed id. Also what
/// `apply` checks of an ACL coming from the log or a peer.
pub fn validate_entry(entry: &AclEntry) -> Result<(), String> {
    let Id { scheme, id } = &entry.id;
    match scheme.as_str() {
        SCHEME_WORLD if id == ANYONE => Ok(()),
        SCHEME_WORLD => Err(format!("world's only id is anyone, not {id:?}")),
        SCHEME_DIGEST => match id.split_once(':') {
            Some((user, hash)) if !user.is_empty() && !hash.is_empty() && !hash.contains(':') => {
                Ok(())
            }
            // The id is a secret's digest: never echo it.
            _ => Err("a digest id must be user:base64(sha1(user:password))".into()),
        },
        SCHEME_IP => parse_ip_pattern(id).map(|_| ()),
        SCHEME_X509 if !id.is_empty() => Ok(()),
        SCHEME_X509 => Err("an x509 id must be a certificate subject".into()),
        SCHEME_AUTH => Err("auth stands for the caller's identities; it cannot be stored".into()),
        other => {
            Err(format!("unknown scheme {other:?} (expected world, auth, digest, ip or x509)"))
        }
    }
}

/// The digest identity of `user:password`: `user:base64(sha1(user:password))`, as
/// ZooKeeper's `DigestAuthenticationProvider.generateDigest`. The password must not
/// may hold `:`; the user may not (the first `:` ends it).
pub fn digest_id(user: &str, password: &str) -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    let hash = sha1::Sha1::digest(format!("{user}:{password}").as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}

/// The ACL as a caller without ADMIN on the node sees it: each digest id's hash
/// replaced by `x` (ZooKeeper 3.6+).
pub fn mask_digests(acl: &[AclEntry]) -> Acl {
    acl.iter()
        .map(|entry| match entry.id.scheme.as_str() {
            SCHEME_DIGEST => {
                let user = entry.id.id.split(':').next().unwrap_or_default();
                AclEntry::new(entry.perms, SCHEME_DIGEST, &format!("{user}:x"))
            }
            _ => entry.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perms_parse_and_print_as_zkcli() {
        assert_eq!(Perms::parse("cdrwa").unwrap(), Perms::ALL);
        assert_eq!(Perms::parse("ar").unwrap().to_string(), "ra");
        assert!(Perms::parse("rr").is_err());
        assert!(Perms::parse("x").is_err());
        assert_eq!(Perms::from_bits(32), None);
        assert_eq!(Perms::DELETE.name(), "DELETE");
        assert_eq!(Perms::ADMIN.union(Perms::READ).name(), "READ or ADMIN");
    }

    #[test]
    fn acl_text_round_trips() {
        let text = "world:anyone:r,digest:alice:abc=:cdrwa,ip:10.0.0.0/8:rw,ip:::1:r";
        let acl = parse_acl(text).unwrap();
        assert_eq!(acl[1].id, Id::new("digest", "alice:abc="));
        assert_eq!(acl[3].id, Id::new("ip", "::1"));
        assert_eq!(format_acl(&acl), text);
        assert!(parse_acl("world:anyone").is_err());
        assert!(parse_acl("").is_err());
    }

    #[test]
    fn checks_follow_zookeeper() {
        let alice = Id::new("digest", "alice:h1");
        let acl = vec![
            AclEntry::new(Perms::READ, "world", "anyone"),
            AclEntry { perms: Perms::ALL, id: alice.clone() },
        ];
        let nobody = Auth::none();
        assert!(check(&acl, &nobody, Perms::READ));
        assert!(!check(&acl, &nobody, Perms::WRITE));
        assert!(check(&acl, &Auth::new(vec![alice]), Perms::WRITE));
        assert!(!check(&acl, &Auth::new(vec![Id::new("digest", "alice:h2")]), Perms::WRITE));
        assert!(check(&acl, &Auth::new(vec![Id::super_user()]), Perms::ADMIN));
        assert!(check(&[], &nobody, Perms::ADMIN));
        // getACL needs READ or ADMIN: either permission suffices.
        assert!(check(&acl, &nobody, Perms::READ.union(Perms::ADMIN)));
    }

    #[test]
    fn ip_patterns() {
        assert!(ip_matches("10.0.0.0/8", "10.1.2.3"));
        assert!(!ip_matches("10.0.0.0/8", "11.1.2.3"));
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(ip_matches("0.0.0.0/0", "1.2.3.4"));
        assert!(ip_matches("::1", "::1"));
        assert!(!ip_matches("10.0.0.0/8", "::1"));
        assert!(!ip_matches("10.0.0.0/33", "10.0.0.1"));
    }

    #[test]
    fn fixup_expands_auth_and_rejects_bad_entries() {
        let alice = Id::new("digest", "alice:h1");
        let auth = Auth::new(vec![Id::new("ip", "127.0.0.1"), alice.clone()]);
        let acl = parse_acl("auth::cdrwa,world:anyone:r,world:anyone:r").unwrap();
        let fixed = fixup("/a", &acl, &auth).unwrap();
        assert_eq!(
            fixed,
            vec![
                AclEntry { perms: Perms::ALL, id: alice },
                AclEntry::new(Perms::READ, "world", "anyone")
            ]
        );
        let err = |text: &str, auth: &Auth| fixup("/a", &parse_acl(text).unwrap(), auth);
        assert!(matches!(err("auth::r", &Auth::none()), Err(ZnodeError::InvalidAcl { .. })));
        assert!(err("foo:bar:r", &auth).is_err());
        assert!(err("digest:alice:r", &auth).is_err());
        assert!(err("ip:300.0.0.1:r", &auth).is_err());
        assert!(err("world:someone:r", &auth).is_err());
        assert!(fixup("/a", &[], &auth).is_err());
    }

    /// The digest of `super:test` as ZooKeeper's documentation gives it.
    #[test]
    fn digest_matches_zookeeper() {
        assert_eq!(digest_id("super", "test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
    }

    #[test]
    fn masking_hides_hashes_only() {
        let acl = parse_acl("digest:alice:abc=:cdrwa,ip:10.0.0.0/8:r").unwrap();
        assert_eq!(format_acl(&mask_digests(&acl)), "digest:alice:x:cdrwa,ip:10.0.0.0/8:r");
        assert_eq!(Id::new("digest", "alice:abc=").redacted(), "digest:alice");
    }
}
