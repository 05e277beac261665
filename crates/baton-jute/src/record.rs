//! [`Record`]: a value with a jute encoding, and `record!`, which declares a jute class
//! as a struct whose fields are encoded in declaration order, as jute does.

use bytes::Bytes;

use crate::{DecodeError, Reader, Writer};

/// A value with a jute encoding.
pub trait Record: Sized {
    /// The fewest bytes one encoded value takes. A vector's count is checked against it
    /// before anything is allocated.
    const BYTES_MIN: usize;

    fn encode(&self, writer: &mut Writer);

    fn decode(reader: &mut Reader) -> Result<Self, DecodeError>;

    fn to_bytes(&self) -> Bytes {
        let mut writer = Writer::new();
        self.encode(&mut writer);
        writer.into_bytes()
    }

    /// Decodes a record that must fill `input` exactly.
    fn from_bytes(input: Bytes) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(input);
        let value = Self::decode(&mut reader)?;
        reader.finish()?;
        Ok(value)
    }
}

/// No body: replies that carry only a header (delete, ping, auth, close...).
impl Record for () {
    const BYTES_MIN: usize = 0;
    fn encode(&self, _: &mut Writer) {}
    fn decode(_: &mut Reader) -> Result<Self, DecodeError> {
        Ok(())
    }
}

impl Record for i32 {
    const BYTES_MIN: usize = 4;
    fn encode(&self, writer: &mut Writer) {
        writer.write_i32(*self);
    }
    fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        reader.read_i32()
    }
}

impl Record for i64 {
    const BYTES_MIN: usize = 8;
    fn encode(&self, writer: &mut Writer) {
        writer.write_i64(*self);
    }
    fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        reader.read_i64()
    }
}

impl Record for bool {
    const BYTES_MIN: usize = 1;
    fn encode(&self, writer: &mut Writer) {
        writer.write_bool(*self);
    }
    fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        reader.read_bool()
    }
}

/// A `buffer` where ZooKeeper keeps null apart from empty (znode data).
impl Record for Option<Bytes> {
    const BYTES_MIN: usize = 4;
    fn encode(&self, writer: &mut Writer) {
        writer.write_buffer(self.as_deref());
    }
    fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        reader.read_buffer()
    }
}

/// A `buffer` where ZooKeeper treats null as empty (passwords, auth data); it is
/// written as empty.
impl Record for Bytes {
    const BYTES_MIN: usize = 4;
    fn encode(&self, writer: &mut Writer) {
        writer.write_buffer(Some(self));
    }
    fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        Ok(reader.read_buffer()?.unwrap_or_default())
    }
}

/// A `ustring` that must not be null (paths, schemes): ZooKeeper would fail on it.
impl Record for String {
    const BYTES_MIN: usize = 4;
    fn encode(&self, writer: &mut Writer) {
        writer.write_ustring(Some(self));
    }
    fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        reader.read_ustring()?.ok_or(DecodeError::UnexpectedNull)
    }
}

/// A `ustring` that may be null.
impl Record for Option<String> {
    const BYTES_MIN: usize = 4;
    fn encode(&self, writer: &mut Writer) {
        writer.write_ustring(self.as_deref());
    }
    fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        reader.read_ustring()
    }
}

/// A `vector`. ZooKeeper gives a null vector no meaning of its own (a null ACL list is
/// refused like an empty one), so null decodes as empty and empty is written.
impl<T: Record> Record for Vec<T> {
    const BYTES_MIN: usize = 4;
    fn encode(&self, writer: &mut Writer) {
        writer.write_length(Some(self.len()));
        for item in self {
            item.encode(writer);
        }
    }
    fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        let count = reader.read_count(T::BYTES_MIN)?.unwrap_or(0);
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(T::decode(reader)?);
        }
        Ok(items)
    }
}

/// Declares jute classes: each field is encoded in declaration order, which must be the
/// order of `zookeeper.jute`.
macro_rules! record {
    ($(
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$field_meta:meta])* pub $field:ident: $type:ty,)*
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: $type,)*
        }

        impl $crate::Record for $name {
            const BYTES_MIN: usize = 0 $(+ <$type as $crate::Record>::BYTES_MIN)*;

            #[allow(unused_variables)]
            fn encode(&self, writer: &mut $crate::Writer) {
                $($crate::Record::encode(&self.$field, writer);)*
            }

            #[allow(unused_variables)]
            fn decode(reader: &mut $crate::Reader) -> Result<Self, $crate::DecodeError> {
                Ok(Self { $($field: $crate::Record::decode(reader)?,)* })
            }
        }

        #[cfg(test)]
        impl $crate::arb::Arb for $name {
            fn arb() -> proptest::strategy::BoxedStrategy<Self> {
                use proptest::strategy::Strategy;
                ($(<$type as $crate::arb::Arb>::arb(),)*)
                    .prop_map(|($($field,)*)| Self { $($field,)* })
                    .boxed()
            }
        }
    )*};
}
pub(crate) use record;
