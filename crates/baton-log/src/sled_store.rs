/// sled-backed [`crate::LogStore`] (filled in by the baton-log work).
#[derive(Debug)]
pub struct SledStore {}
