use crate::ZnodeError;

/// Paths under this prefix belong to the server; clients cannot change them.
pub const RESERVED_PREFIX: &str = "/baton";

/// Checks a path is absolute, `/`-separated, with no empty, `.` or `..` segment, no
/// trailing `/` (except the root) and no NUL or control characters.
pub fn validate_path(path: &str) -> Result<(), ZnodeError> {
    let _ = path;
    todo!("baton-znode helper")
}

/// The parent of a valid path; None for the root.
pub fn parent(path: &str) -> Option<&str> {
    let _ = path;
    todo!("baton-znode helper")
}

/// The last segment of a valid path ("" for the root).
pub fn basename(path: &str) -> &str {
    let _ = path;
    todo!("baton-znode helper")
}
