//! Whole-subtree operations, built from single calls (like ZooKeeper's `deleteall` and
//! `ls -R`). They are not atomic: other clients may change the subtree meanwhile, and the
//! functions are written to tolerate that.

use baton_api::status::ErrorCode;

use crate::{Client, ClientError};

/// How many times [`Client::delete_recursive`] re-lists a subtree that gained children
/// while it was being deleted, before giving up with `NOT_EMPTY`.
pub const DELETE_RECURSIVE_ROUNDS_MAX: usize = 8;

/// The full path of the child `name` of `parent`.
pub fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" { format!("/{name}") } else { format!("{parent}/{name}") }
}

impl Client {
    /// Every path of the subtree at `path`, `path` first, depth-first with each node's
    /// children in sorted order. A node that vanishes while the walk runs is left out;
    /// `path` itself missing is `NO_NODE`.
    pub async fn list_recursive(&self, path: &str) -> Result<Vec<String>, ClientError> {
        let mut listed = Vec::new();
        // Explicit stack instead of recursion: the depth of a tree is not ours to bound.
        let mut stack = vec![path.to_owned()];
        while let Some(node) = stack.pop() {
            let children = match self.children(&node).await {
                Ok((children, _)) => children,
                Err(e) if e.code() == ErrorCode::NoNode && node != path => continue,
                Err(e) => return Err(e),
            };
            // Reversed so that the smallest name is popped (visited) first.
            stack.extend(children.iter().rev().map(|name| child_path(&node, name)));
            listed.push(node);
        }
        Ok(listed)
    }

    /// Deletes `path` and everything under it, children before parents; returns how many
    /// nodes this call deleted. Nodes deleted by someone else meanwhile are fine; a node
    /// that gains a child meanwhile makes it list again (at most
    /// [`DELETE_RECURSIVE_ROUNDS_MAX`] rounds). The root cannot be deleted this way.
    pub async fn delete_recursive(&self, path: &str) -> Result<usize, ClientError> {
        if path == "/" {
            return Err(ClientError::Api {
                code: ErrorCode::BadArguments,
                message: "refusing to delete the root recursively".to_owned(),
                path: path.to_owned(),
                op_index: None,
            });
        }
        let mut deleted = 0;
        let mut last_error = None;
        for round in 0..DELETE_RECURSIVE_ROUNDS_MAX {
            let nodes = match self.list_recursive(path).await {
                Ok(nodes) => nodes,
                // Gone since the previous round (someone else finished the job): done.
                Err(e) if e.code() == ErrorCode::NoNode && round > 0 => return Ok(deleted),
                Err(e) => return Err(e),
            };
            // In a pre-order listing every node comes before its descendants, so the
            // reverse order deletes children first.
            match self.delete_all(nodes.iter().rev(), &mut deleted).await {
                Ok(()) => return Ok(deleted),
                Err(e) if e.code() == ErrorCode::NotEmpty => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| ClientError::Api {
            code: ErrorCode::NotEmpty,
            message: format!("node has children: {path}"),
            path: path.to_owned(),
            op_index: None,
        }))
    }

    async fn delete_all<'a>(
        &self,
        nodes: impl Iterator<Item = &'a String>,
        deleted: &mut usize,
    ) -> Result<(), ClientError> {
        for node in nodes {
            match self.delete(node, -1).await {
                Ok(()) => *deleted += 1,
                Err(e) if e.code() == ErrorCode::NoNode => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_paths_join_with_one_slash() {
        assert_eq!(child_path("/", "a"), "/a");
        assert_eq!(child_path("/a", "b"), "/a/b");
        assert_eq!(child_path("/a/b", "c-0000000001"), "/a/b/c-0000000001");
    }
}
