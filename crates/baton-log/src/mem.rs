/// In-memory [`crate::LogStore`] (filled in by the baton-log work).
#[derive(Debug, Default)]
pub struct MemStore {}
