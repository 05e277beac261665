//! The codec of `baton.v1`'s generated client and server: prost's, with smaller buffers.
//!
//! tonic gives each stream an encoding and a decoding buffer of the codec's
//! `buffer_size` when the stream opens (8 KiB each by default), and keeps them as long
//! as the stream lives. A session is one long-lived stream, so that was 16 KiB of
//! every session's memory on its member, mostly empty: requests and replies are a few
//! hundred bytes. The buffers still grow to fit a larger message.

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// A stream's buffers start at this size.
pub const BUFFER_BYTES: usize = 1024;

/// A stream yields what it has encoded to the connection once this much is buffered
/// (tonic's default).
const YIELD_THRESHOLD_BYTES: usize = 32 * 1024;

/// prost's codec with [`BUFFER_BYTES`] buffers; `build.rs` names it as the codec of
/// every `baton.v1` method (the peer protocol keeps tonic's defaults).
#[derive(Debug)]
pub struct LeanCodec<T, U>(std::marker::PhantomData<(T, U)>);

impl<T, U> Default for LeanCodec<T, U> {
    fn default() -> Self {
        LeanCodec(std::marker::PhantomData)
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD_BYTES)
}

impl<T, U> Codec for LeanCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(settings())
    }
}
