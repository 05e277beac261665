use thiserror::Error;

#[derive(Debug, Error)]
pub enum LogError {
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("sled error: {0}")]
    Sled(#[from] sled::Error),
    #[error("append out of order: zxid {zxid:#x} is not greater than last zxid {last:#x}")]
    OutOfOrder { zxid: u64, last: u64 },
    #[error("corrupt {what} at zxid {zxid:#x}: {reason}")]
    Corrupt { what: &'static str, zxid: u64, reason: String },
}
