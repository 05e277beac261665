//! Where the `baton-server` binary is, and runs of it that end by themselves.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::OnceLock,
};

use crate::Error;

/// The variable naming the `baton-server` binary to use instead of looking for one.
pub const SERVER_BIN_VARIABLE: &str = "BATON_SERVER_BIN";

/// The `baton-server` binary:
/// 1. `BATON_SERVER_BIN`, if set;
/// 2. under cargo (a test run: `CARGO` is set), the one in the running executable's
///    target directory, built first with that cargo (a no-op when it is fresh, so a
///    test of another crate never runs a stale server);
/// 3. else the one beside the running executable (a tool installed with its server).
///
/// Panics if there is none: nothing a test can do without it.
pub fn server_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os(SERVER_BIN_VARIABLE) {
            return PathBuf::from(path);
        }
        let exe = std::env::current_exe().expect("the running executable's path");
        let dir = exe.parent().expect("the executable's directory");
        // A test is target/<profile>/deps/<test>; a binary is target/<profile>/<bin>.
        let profile_dir = if dir.ends_with("deps") { dir.parent().unwrap_or(dir) } else { dir };
        if let Some(cargo) = std::env::var_os("CARGO") {
            build_server(&cargo, profile_dir);
        }
        let bin = profile_dir.join("baton-server");
        assert!(bin.is_file(), "{} does not exist: cargo build -p baton-server", bin.display());
        bin
    })
    .clone()
}

/// `cargo build -p baton-server` into the target directory `profile_dir` belongs to,
/// in its profile.
fn build_server(cargo: &OsStr, profile_dir: &Path) {
    let mut command = Command::new(cargo);
    command.args(["build", "--quiet", "-p", "baton-server", "--bin", "baton-server"]);
    if let Some(target_dir) = profile_dir.parent() {
        command.arg("--target-dir").arg(target_dir);
    }
    // What cargo set for the test that runs this describes that test's package; build
    // scripts that watch such variables (ring's) would see them change and run again,
    // rebuilding much of the workspace twice per test run.
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let of_the_test = name == "CARGO_MANIFEST_DIR"
            || name == "CARGO_MANIFEST_PATH"
            || name == "CARGO_CRATE_NAME"
            || name == "CARGO_PRIMARY_PACKAGE"
            || name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_EXE_");
        if of_the_test {
            command.env_remove(name);
        }
    }
    match profile_dir.file_name().and_then(OsStr::to_str) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    let status = command.status().expect("run cargo build -p baton-server");
    assert!(status.success(), "cargo build -p baton-server failed");
}

/// Runs the server binary ([`server_bin`]) with `args` to its end (`--help`,
/// `--restore-snapshot`, a start that must be refused) and returns what it printed.
/// `env` is set for it; the `BATON_*` variables of this process are not passed on.
pub fn run_server<I, S>(args: I, env: &[(&str, &str)]) -> Result<Output, Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let bin = server_bin();
    let mut command = Command::new(&bin);
    command.args(args).stdin(Stdio::null());
    for name in baton_variables() {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().map_err(|source| Error::Spawn { what: format!("{}", bin.display()), source })
}

/// The `BATON_*` variables of this process: a server started by the kit gets its
/// settings from its command line only.
pub(crate) fn baton_variables() -> Vec<std::ffi::OsString> {
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| name.to_str().is_some_and(|n| n.starts_with("BATON_")))
        .collect()
}
