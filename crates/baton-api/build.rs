//! Generates the `baton.v1` and `baton.peer.v1` prost messages and tonic client/server from the proto, with
//! the vendored protoc so that no system protoc is needed, and writes the file descriptor
//! set that the server hands to tonic-reflection.

use std::{
    env,
    path::{Path, PathBuf},
};

use tonic_prost_build::Builder;

const PROTO: &str = "../../proto/baton/v1/baton.proto";
const PEER_PROTO: &str = "../../proto/baton/peer/v1/peer.proto";
const PROTO_ROOT: &str = "../../proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let baton = tonic_prost_build::configure()
        // `bytes` fields become `bytes::Bytes`, the type baton-znode uses for data, so
        // conversions move data without copying it.
        .bytes(".baton.v1")
        // prost's codec with smaller stream buffers (`codec.rs`): a session is a stream.
        .codec_path("crate::codec::LeanCodec")
        // It carries a password: its Debug (in baton-api's `auth`) shows no secret.
        .skip_debug([".baton.v1.AddAuthRequest"])
        .file_descriptor_set_path(out_dir.join("baton_descriptor.bin"));
    generate(baton, &protoc, PROTO)?;

    // The peer links keep tonic's default buffers: a few streams, carrying batches.
    generate(tonic_prost_build::configure().bytes(".baton.peer.v1"), &protoc, PEER_PROTO)?;

    println!("cargo:rerun-if-changed={PROTO}");
    println!("cargo:rerun-if-changed={PEER_PROTO}");
    Ok(())
}

/// Generates the messages, client and server of `proto` as `builder` says.
fn generate(builder: Builder, protoc: &Path, proto: &str) -> std::io::Result<()> {
    // The protoc path goes into the prost config rather than the PROTOC environment
    // variable: `env::set_var` is `unsafe` in edition 2024 and the workspace forbids
    // unsafe code, build scripts included. The effect is the same.
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    builder.build_client(true).build_server(true).compile_with_config(
        config,
        &[proto],
        &[PROTO_ROOT],
    )
}
