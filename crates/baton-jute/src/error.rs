//! The two ways input can be wrong: a bad frame (the connection cannot continue) and a
//! bad record inside a well-formed frame.

/// A length prefix the framing layer refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("negative frame length {length}")]
    NegativeLength { length: i32 },
    #[error("frame of {length} bytes exceeds the maximum of {frame_bytes_max}")]
    TooLarge { length: usize, frame_bytes_max: usize },
}

/// A record that does not decode. Every variant names what was wrong, so a log line
/// tells a broken client from a truncated read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated: {needed} bytes needed, {remaining} left")]
    Truncated { needed: usize, remaining: usize },
    #[error("negative length {length} (only -1, meaning null, is allowed)")]
    NegativeLength { length: i32 },
    #[error("length {length} runs past the input ({remaining} bytes left)")]
    LengthBeyondInput { length: usize, remaining: usize },
    #[error("{count} items need at least {bytes_min} bytes, {remaining} left")]
    CountBeyondInput { count: usize, bytes_min: usize, remaining: usize },
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("boolean byte {byte} is neither 0 nor 1")]
    InvalidBoolean { byte: u8 },
    #[error("null where ZooKeeper requires a value")]
    UnexpectedNull,
    #[error("{remaining} trailing bytes after the record")]
    TrailingBytes { remaining: usize },
    #[error("op {op} cannot appear inside a multi")]
    InvalidMultiOp { op: i32 },
}
