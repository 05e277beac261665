//! Generates the etcd driver's client from `proto/etcd_subset.proto` with the vendored
//! protoc, so that no system protoc is needed.

const PROTO: &str = "proto/etcd_subset.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().build_client(true).build_server(false).compile_with_config(
        config,
        &[PROTO],
        &["proto"],
    )?;
    println!("cargo:rerun-if-changed={PROTO}");
    Ok(())
}
