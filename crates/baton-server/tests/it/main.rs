//! End to end: real `baton-server` processes on 127.0.0.1 (port 0) with temporary
//! data directories, driven through baton-client, raw gRPC, raw TCP and HTTP.

mod acl;
mod api;
mod backup;
mod bad_input;
mod compat;
mod disk_full;
mod durability;
mod ensemble;
mod fourlw;
mod health;
mod limits;
mod lock;
mod metrics;
mod monitoring;
mod reaper;
mod reconfig;
mod secure_ensemble;
mod sessions;
mod storage_faults;
mod support;
mod tls;
mod zk;
mod zk_cli;
mod zk_diff;
mod zk_kazoo;
mod zk_rust_client;
mod zk_support;
