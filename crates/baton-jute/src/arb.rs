//! Proptest strategies for every record: `record!` derives one per class from these.

use bytes::Bytes;
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;

pub(crate) trait Arb: Sized + std::fmt::Debug {
    fn arb() -> BoxedStrategy<Self>;
}

impl Arb for i32 {
    fn arb() -> BoxedStrategy<Self> {
        any::<i32>().boxed()
    }
}

impl Arb for i64 {
    fn arb() -> BoxedStrategy<Self> {
        any::<i64>().boxed()
    }
}

impl Arb for bool {
    fn arb() -> BoxedStrategy<Self> {
        any::<bool>().boxed()
    }
}

impl Arb for Bytes {
    fn arb() -> BoxedStrategy<Self> {
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from).boxed()
    }
}

impl Arb for Option<Bytes> {
    fn arb() -> BoxedStrategy<Self> {
        proptest::option::of(Bytes::arb()).boxed()
    }
}

impl Arb for String {
    fn arb() -> BoxedStrategy<Self> {
        // Multi-byte characters too: lengths are in bytes, not chars.
        "(/[a-zé0-9]{0,6}){0,3}".boxed()
    }
}

impl Arb for Option<String> {
    fn arb() -> BoxedStrategy<Self> {
        proptest::option::of(String::arb()).boxed()
    }
}

impl<T: Arb + 'static> Arb for Vec<T> {
    fn arb() -> BoxedStrategy<Self> {
        proptest::collection::vec(T::arb(), 0..4).boxed()
    }
}
