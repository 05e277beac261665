//! Znode paths: validation (ZooKeeper's `PathUtils.validatePath`) and helpers.

use std::borrow::Cow;

use crate::ZnodeError;

/// Paths under this prefix belong to the server; clients cannot change them.
pub const RESERVED_PREFIX: &str = "/baton";

/// Checks a path is absolute, `/`-separated, with no empty, `.` or `..` segment, no
/// trailing `/` (except the root) and no NUL or control characters.
///
/// As ZooKeeper, it also rejects U+D800–U+F8FF and U+FFF0–U+FFFF. ZooKeeper checks
/// UTF-16 code units, so it rejects every character above U+FFFF too (their
/// surrogates fall in the first range); so do we, so that a path valid here is
/// valid for any ZooKeeper-compatible tool.
pub fn validate_path(path: &str) -> Result<(), ZnodeError> {
    check(path).map_err(|reason| ZnodeError::InvalidPath { path: path.to_owned(), reason })
}

fn check(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("path is empty");
    }
    if !path.starts_with('/') {
        return Err("path must start with /");
    }
    if path == "/" {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err("path must not end with /");
    }
    let bytes = path.as_bytes();
    if bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        // Printable ASCII, as nearly every path is: only the segments can be wrong.
        return bytes[1..].split(|&b| b == b'/').try_for_each(|segment| match segment {
            b"" => Err("empty segment (//)"),
            b"." | b".." => Err("relative segment (. or ..)"),
            _ => Ok(()),
        });
    }
    check_general(path)
}

/// `check` for any path past its first four tests, character by character.
fn check_general(path: &str) -> Result<(), &'static str> {
    for segment in path[1..].split('/') {
        match segment {
            "" => return Err("empty segment (//)"),
            "." | ".." => return Err("relative segment (. or ..)"),
            _ => {}
        }
    }
    path.chars().try_for_each(check_char)
}

fn check_char(c: char) -> Result<(), &'static str> {
    match c {
        '\0' => Err("NUL character"),
        '\u{1}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => Err("control character"),
        // U+D800-U+DFFF are surrogates, which a Rust char cannot be.
        '\u{e000}'..='\u{f8ff}' | '\u{fff0}'..='\u{ffff}' => {
            Err("character in a range ZooKeeper rejects (U+E000-U+F8FF or U+FFF0-U+FFFF)")
        }
        '\u{10000}'.. => Err("character above U+FFFF (ZooKeeper rejects surrogate pairs)"),
        _ => Ok(()),
    }
}

/// The path whose validity decides a create's: for a sequential create the given
/// path is only a prefix (it may end in `/`, as ZooKeeper allows: `/a/` gives
/// `/a/0000000003`), so it is checked with a digit appended.
pub(crate) fn create_probe(path: &str, sequential: bool) -> Cow<'_, str> {
    if sequential { Cow::Owned(format!("{path}0")) } else { Cow::Borrowed(path) }
}

/// True for `/baton` and every path below it (not for `/batonx`).
pub fn is_reserved(path: &str) -> bool {
    path.strip_prefix(RESERVED_PREFIX).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The parent of a valid path; None for the root.
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// The last segment of a valid path ("" for the root).
pub fn basename(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The printable-ASCII shortcut gives exactly the general check's answer: every
    /// path of up to 6 characters over an alphabet with each kind of trouble.
    #[test]
    fn the_ascii_shortcut_agrees_with_the_general_check() {
        let alphabet = ['/', '.', 'a', ' ', '~', '\u{7f}', '\u{1f}', '\0', 'é'];
        let mut paths = vec![String::from("/")];
        let mut checked = 0;
        for _ in 0..6 {
            let mut longer = Vec::new();
            for path in &paths {
                for c in alphabet {
                    let mut p = path.clone();
                    p.push(c);
                    if p.len() > 1 && !p.ends_with('/') {
                        assert_eq!(check(&p), check_general(&p), "{p:?}");
                        checked += 1;
                    }
                    longer.push(p);
                }
            }
            paths = longer;
        }
        assert!(checked > 100_000, "{checked}");
    }

    #[test]
    fn validation_table() {
        let valid = ["/", "/a", "/a/b", "/a.b", "/.a", "/a..", "/...", "/a b", "/é", "/\u{fff}"];
        for path in valid {
            assert_eq!(validate_path(path), Ok(()), "{path:?}");
        }
        let invalid = [
            ("", "path is empty"),
            ("a", "path must start with /"),
            ("a/b", "path must start with /"),
            ("/a/", "path must not end with /"),
            ("//", "path must not end with /"),
            ("//a", "empty segment (//)"),
            ("/a//b", "empty segment (//)"),
            ("/.", "relative segment (. or ..)"),
            ("/..", "relative segment (. or ..)"),
            ("/a/./b", "relative segment (. or ..)"),
            ("/a/../b", "relative segment (. or ..)"),
            ("/a\0b", "NUL character"),
            ("/a\nb", "control character"),
            ("/\u{1f}", "control character"),
            ("/\u{7f}", "control character"),
            ("/\u{9f}", "control character"),
            (
                "/\u{e000}",
                "character in a range ZooKeeper rejects (U+E000-U+F8FF or U+FFF0-U+FFFF)",
            ),
            (
                "/\u{f8ff}",
                "character in a range ZooKeeper rejects (U+E000-U+F8FF or U+FFF0-U+FFFF)",
            ),
            (
                "/\u{fff0}",
                "character in a range ZooKeeper rejects (U+E000-U+F8FF or U+FFF0-U+FFFF)",
            ),
            (
                "/\u{ffff}",
                "character in a range ZooKeeper rejects (U+E000-U+F8FF or U+FFF0-U+FFFF)",
            ),
            ("/\u{1f600}", "character above U+FFFF (ZooKeeper rejects surrogate pairs)"),
        ];
        for (path, reason) in invalid {
            assert_eq!(
                validate_path(path),
                Err(ZnodeError::InvalidPath { path: path.to_owned(), reason }),
                "{path:?}"
            );
        }
        // Just outside the rejected ranges.
        for path in ["/\u{a0}", "/\u{f900}", "/\u{ffef}"] {
            assert_eq!(validate_path(path), Ok(()), "{path:?}");
        }
    }

    #[test]
    fn sequential_probe_allows_trailing_slash() {
        assert_eq!(validate_path(&create_probe("/a/", true)), Ok(()));
        assert_eq!(validate_path(&create_probe("/", true)), Ok(()));
        assert!(validate_path(&create_probe("/a/", false)).is_err());
        assert!(validate_path(&create_probe("/a//", true)).is_err());
    }

    #[test]
    fn parent_and_basename() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a/b/c"), Some("/a/b"));
        assert_eq!(basename("/"), "");
        assert_eq!(basename("/a"), "a");
        assert_eq!(basename("/a/bc"), "bc");
    }

    #[test]
    fn reserved_prefix_is_a_whole_segment() {
        assert!(is_reserved("/baton"));
        assert!(is_reserved("/baton/x"));
        assert!(!is_reserved("/batonx"));
        assert!(!is_reserved("/bato"));
        assert!(!is_reserved("/"));
        assert!(!is_reserved("/a/baton"));
    }
}
