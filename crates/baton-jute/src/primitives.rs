//! Jute's binary primitives: big-endian `int` and `long`, one-byte `boolean`, and
//! length-prefixed `buffer`, `ustring` and `vector`, where a length of -1 means null.

use bytes::{BufMut, Bytes, BytesMut};

use crate::DecodeError;

/// The length jute writes for a null buffer, string or vector.
const NULL_LENGTH: i32 = -1;

/// A bounds-checked cursor over one record's bytes.
///
/// Nothing it returns can be larger than the input it was given: buffers are slices of
/// the input, strings are copies of input bytes, and a vector's count is checked against
/// the bytes left before anything is allocated for it.
#[derive(Debug, Clone)]
pub struct Reader {
    input: Bytes,
    position: usize,
}

impl Reader {
    pub fn new(input: Bytes) -> Self {
        Self { input, position: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.input.len() - self.position
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Ends a record that must fill its input exactly.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            remaining => Err(DecodeError::TrailingBytes { remaining }),
        }
    }

    /// Whatever is left, taken: a body to decode apart from its header.
    pub fn rest(&mut self) -> Bytes {
        let rest = self.input.slice(self.position..);
        self.position = self.input.len();
        rest
    }

    /// Drops whatever is left: for a body this crate does not interpret.
    pub fn skip_rest(&mut self) {
        self.position = self.input.len();
    }

    fn take(&mut self, needed: usize) -> Result<Bytes, DecodeError> {
        let remaining = self.remaining();
        if needed > remaining {
            return Err(DecodeError::Truncated { needed, remaining });
        }
        let taken = self.input.slice(self.position..self.position + needed);
        self.position += needed;
        Ok(taken)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let taken = self.take(N)?;
        let mut array = [0; N];
        array.copy_from_slice(&taken);
        Ok(array)
    }

    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        self.take_array().map(i32::from_be_bytes)
    }

    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        self.take_array().map(i64::from_be_bytes)
    }

    /// Java writes booleans as 0 or 1; any other byte is a corrupt or foreign stream.
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        match self.take_array::<1>()?[0] {
            0 => Ok(false),
            1 => Ok(true),
            byte => Err(DecodeError::InvalidBoolean { byte }),
        }
    }

    /// A length prefix: `None` for null, otherwise a length that fits in the input.
    fn read_length(&mut self) -> Result<Option<usize>, DecodeError> {
        match self.read_i32()? {
            NULL_LENGTH => Ok(None),
            length if length < 0 => Err(DecodeError::NegativeLength { length }),
            length => {
                let length = length as usize;
                let remaining = self.remaining();
                if length > remaining {
                    return Err(DecodeError::LengthBeyondInput { length, remaining });
                }
                Ok(Some(length))
            }
        }
    }

    /// A `buffer`; `None` is jute's null. The bytes share the input's allocation.
    pub fn read_buffer(&mut self) -> Result<Option<Bytes>, DecodeError> {
        self.read_length()?.map(|length| self.take(length)).transpose()
    }

    /// A `ustring`; `None` is jute's null.
    pub fn read_ustring(&mut self) -> Result<Option<String>, DecodeError> {
        let Some(bytes) = self.read_buffer()? else {
            return Ok(None);
        };
        String::from_utf8(bytes.to_vec()).map(Some).map_err(|_| DecodeError::InvalidUtf8)
    }

    /// A `vector`'s count; `None` is jute's null. The count is refused unless the input
    /// left could hold that many items of `item_bytes_min` bytes each, which bounds the
    /// caller's allocation by the input's size.
    pub fn read_count(&mut self, item_bytes_min: usize) -> Result<Option<usize>, DecodeError> {
        match self.read_i32()? {
            NULL_LENGTH => Ok(None),
            length if length < 0 => Err(DecodeError::NegativeLength { length }),
            count => {
                let count = count as usize;
                // Zero-sized items would make any count fit; count each as one byte.
                let bytes_min = count.saturating_mul(item_bytes_min.max(1));
                let remaining = self.remaining();
                if bytes_min > remaining {
                    return Err(DecodeError::CountBeyondInput { count, bytes_min, remaining });
                }
                Ok(Some(count))
            }
        }
    }
}

/// Appends jute primitives to a growing buffer.
#[derive(Debug, Default)]
pub struct Writer {
    output: BytesMut,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn into_bytes(self) -> Bytes {
        self.output.freeze()
    }

    pub fn len(&self) -> usize {
        self.output.len()
    }

    pub fn is_empty(&self) -> bool {
        self.output.is_empty()
    }

    pub(crate) fn into_inner(self) -> BytesMut {
        self.output
    }

    pub(crate) fn from_inner(output: BytesMut) -> Self {
        Self { output }
    }

    /// Bytes already in jute's form (a record encoded earlier), as they are.
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }

    pub fn write_i32(&mut self, value: i32) {
        self.output.put_i32(value);
    }

    pub fn write_i64(&mut self, value: i64) {
        self.output.put_i64(value);
    }

    pub fn write_bool(&mut self, value: bool) {
        self.output.put_u8(u8::from(value));
    }

    /// Writes a length prefix. Records come from this process, never from the peer, so
    /// one longer than jute can express is a bug in the caller.
    pub fn write_length(&mut self, length: Option<usize>) {
        let length = match length {
            None => NULL_LENGTH,
            Some(length) => {
                i32::try_from(length).expect("a jute length fits in an i32 by construction")
            }
        };
        self.write_i32(length);
    }

    pub fn write_buffer(&mut self, value: Option<&[u8]>) {
        self.write_length(value.map(<[u8]>::len));
        if let Some(value) = value {
            self.output.put_slice(value);
        }
    }

    pub fn write_ustring(&mut self, value: Option<&str>) {
        self.write_buffer(value.map(str::as_bytes));
    }
}
