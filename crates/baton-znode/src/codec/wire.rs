//! The primitives of the binary formats: LEB128 varints (zigzag for signed),
//! length-prefixed byte strings, and a bounds-checked reader that never panics and
//! never allocates more than the remaining input could hold.

use crate::DecodeError;

/// Appends values to a buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Writer { buf: Vec::with_capacity(capacity) }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Makes room for at least `additional` more bytes.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional);
    }

    /// Bytes written so far.
    pub(crate) fn position(&self) -> usize {
        self.buf.len()
    }

    /// Room left before the buffer grows.
    pub(crate) fn spare(&self) -> usize {
        self.buf.capacity() - self.buf.len()
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub(crate) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub(crate) fn i64(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    pub(crate) fn i32(&mut self, v: i32) {
        self.i64(i64::from(v));
    }

    pub(crate) fn len(&mut self, n: usize) {
        self.varint(n as u64);
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        self.len(bytes.len());
        self.raw(bytes);
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads values from a byte slice; every error names its offset.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// A varint of u64 takes at most 10 bytes.
const VARINT_BYTES_MAX: usize = 10;

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub(crate) fn invalid(&self, offset: usize, reason: impl Into<String>) -> DecodeError {
        DecodeError::Invalid { offset, reason: reason.into() }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated { offset: self.pos, needed: n - self.remaining() });
        }
        let slice = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// A canonical LEB128 varint: at most 10 bytes, no overflow, no redundant
    /// trailing zero byte (so every value has exactly one encoding).
    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut value = 0u64;
        for i in 0..VARINT_BYTES_MAX {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if i == VARINT_BYTES_MAX - 1 && byte > 1 {
                return Err(self.invalid(start, "varint overflows u64"));
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                if byte == 0 && i > 0 {
                    return Err(self.invalid(start, "non-canonical varint"));
                }
                return Ok(value);
            }
        }
        Err(self.invalid(start, "varint longer than 10 bytes"))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, DecodeError> {
        let start = self.pos;
        let v = self.i64()?;
        i32::try_from(v).map_err(|_| self.invalid(start, format!("{v} out of i32 range")))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let start = self.pos;
        let v = self.varint()?;
        u32::try_from(v).map_err(|_| self.invalid(start, format!("{v} out of u32 range")))
    }

    /// A length or count of items each at least `item_bytes_min` long: rejected
    /// unless the remaining input could hold them, so it is safe to allocate for.
    pub(crate) fn count(&mut self, item_bytes_min: usize) -> Result<usize, DecodeError> {
        let start = self.pos;
        let n = self.varint()?;
        let needed = u128::from(n) * item_bytes_min as u128;
        let remaining = self.remaining() as u128;
        if needed > remaining {
            let needed = usize::try_from(needed - remaining).unwrap_or(usize::MAX);
            return Err(DecodeError::Truncated { offset: start, needed });
        }
        // needed ≤ remaining ≤ usize::MAX, and n ≤ needed unless item_bytes_min is 0.
        usize::try_from(n).map_err(|_| self.invalid(start, "count does not fit in memory"))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.count(1)?;
        self.take(n)
    }

    pub(crate) fn str(&mut self) -> Result<&'a str, DecodeError> {
        let start = self.pos;
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes).map_err(|e| self.invalid(start, format!("invalid UTF-8: {e}")))
    }

    /// Fails unless every byte was read.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(self.invalid(self.pos, format!("{n} trailing bytes"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_canonical() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX - 1, u64::MAX] {
            let mut w = Writer::default();
            w.varint(v);
            let mut r = Reader::new(w.as_slice());
            assert_eq!(r.varint(), Ok(v));
            r.finish().unwrap();
        }
        for v in [0, -1, 1, i64::MIN, i64::MAX] {
            let mut w = Writer::default();
            w.i64(v);
            assert_eq!(Reader::new(w.as_slice()).i64(), Ok(v));
        }
        assert!(matches!(Reader::new(&[0x80, 0x00]).varint(), Err(DecodeError::Invalid { .. })));
        let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(matches!(Reader::new(&overflow).varint(), Err(DecodeError::Invalid { .. })));
        assert!(matches!(Reader::new(&[0x80]).varint(), Err(DecodeError::Truncated { .. })));
    }

    #[test]
    fn counts_are_bounded_by_remaining_input() {
        let mut w = Writer::default();
        w.varint(u64::MAX);
        assert!(matches!(Reader::new(w.as_slice()).count(1), Err(DecodeError::Truncated { .. })));
        let mut w = Writer::default();
        w.varint(3);
        w.raw(&[0; 5]);
        assert_eq!(Reader::new(w.as_slice()).count(1), Ok(3));
        assert!(matches!(Reader::new(w.as_slice()).count(2), Err(DecodeError::Truncated { .. })));
    }

    #[test]
    fn strings_must_be_utf8() {
        let mut w = Writer::default();
        w.bytes(&[0xff, 0xfe]);
        assert_eq!(
            Reader::new(w.as_slice()).str(),
            Err(DecodeError::Invalid {
                offset: 0,
                reason: "invalid UTF-8: invalid utf-8 sequence of 1 bytes from index 0".into()
            })
        );
    }
}
