//! `cargo xtask deploy-check`: the Kubernetes manifests in deploy/k8s, and their TLS
//! variant in deploy/k8s-tls, are valid and agree with the server.
//!
//! 1. Every resource passes `kubernetes-validate --strict` (PyPI; it bundles the API
//!    schemas and works offline), installed into a virtualenv under
//!    target/deploy-check the first time.
//! 2. The StatefulSet agrees with `baton-server --help` and with itself: every
//!    `BATON_*` variable is one the server reads; the client, admin and peer addresses
//!    listen on the container ports of those names; the peer DNS template names this
//!    StatefulSet, its headless Service and the peer port; the base ensemble size is
//!    at most `replicas`, and scaling is wired: BATON_JOIN names the client Service
//!    on the client port, and the preStop hook runs `baton … members leave --above
//!    SIZE` with the same size, a command `baton members leave --help` knows (pods
//!    beyond the base join on start and leave on stop); gRPC probes go to the client
//!    port and readiness asks for the
//!    server's readiness service; the Services target ports the container has.
//!    The TLS variant: its Services and PodDisruptionBudget are deploy/k8s's (copies,
//!    identical); every TLS file variable names a file in a mounted Secret; the
//!    probes are HTTPS GETs on the admin port (a kubelet's gRPC probe cannot speak
//!    TLS): `/ready` (which the admin port must serve) for readiness, `/status` else;
//!    and the admin port asks no client certificate (kubelets present none).
//! 3. Self-test: a manifest broken on purpose (a wrong type for the schema, an
//!    unknown variable and a port that does not match) must be refused by both.
//!
//! The manifests are read as the plain YAML subset they are written in (one key per
//! line, block lists); the checks look for exactly the shapes used there.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

/// The validator's version, pinned so that CI validates against the same schemas.
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
/// The manifests that are Kubernetes resources (the kustomization is not one).
const RESOURCES: [&str; 4] =
    ["service-peers.yaml", "service-client.yaml", "statefulset.yaml", "pdb.yaml"];

/// Where the TLS variant lives.
const TLS_DIR: &str = "deploy/k8s-tls";
/// The TLS variant's files that are copies of deploy/k8s's.
const TLS_COPIES: [&str; 3] = ["service-peers.yaml", "service-client.yaml", "pdb.yaml"];

pub fn run(root: &Path, server_help: &str, leave_help: &str) -> Result<()> {
    let dir = root.join("deploy/k8s");
    let ready_service = ready_service_name(root)?;
    let manifests = Manifests::read(&dir)?;
    let mut problems = manifests.check(server_help, &ready_service);
    problems.extend(check_leave(&manifests.statefulset, leave_help));
    if !problems.is_empty() {
        bail!("deploy/k8s disagrees with the server:\n- {}", problems.join("\n- "));
    }
    let tls_dir = root.join(TLS_DIR);
    let tls_manifests = Manifests::read_tls(&tls_dir)?;
    let mut problems = tls_manifests.check(server_help, &ready_service);
    problems.extend(check_leave(&tls_manifests.statefulset, leave_help));
    problems.extend(tls_copies_differ(&dir, &tls_dir)?);
    if !admin_serves_ready(root)? {
        problems.push("the admin port serves no /ready for the HTTPS probes".into());
    }
    if !problems.is_empty() {
        bail!("{TLS_DIR} disagrees with the server:\n- {}", problems.join("\n- "));
    }
    eprintln!("deploy-check: manifests (and the TLS variant) agree with baton-server --help");

    let validator = install_validator(root)?;
    let mut files: Vec<PathBuf> = RESOURCES.iter().map(|f| dir.join(f)).collect();
    files.push(tls_dir.join("statefulset.yaml"));
    validate(&validator, &files)?;
    eprintln!("deploy-check: kubernetes-validate --strict passed");

    // Self-test: the checks must refuse a broken StatefulSet.
    let broken_dir = root.join("target/deploy-check/broken");
    fs::create_dir_all(&broken_dir)?;
    let broken = break_statefulset(&manifests.statefulset);
    let broken_file = broken_dir.join("statefulset.yaml");
    fs::write(&broken_file, &broken)?;
    if validate(&validator, &[broken_file]).is_ok() {
        bail!("self-test: kubernetes-validate accepted a broken StatefulSet");
    }
    let problems =
        Manifests { statefulset: broken, ..manifests }.check(server_help, &ready_service);
    if problems.len() < 2 {
        bail!("self-test: the consistency checks missed the broken StatefulSet: {problems:?}");
    }
    eprintln!("deploy-check: a broken StatefulSet is refused by both (self-test)");
    Ok(())
}

/// The preStop hook removes pods beyond the base ensemble: `baton … members leave
/// --above SIZE`, SIZE being BATON_ENSEMBLE_SIZE, with flags the CLI knows.
fn check_leave(sts: &str, leave_help: &str) -> Vec<String> {
    let Some(hook) = block(sts, "preStop") else {
        return vec!["no preStop hook: pods beyond the base ensemble would not leave".into()];
    };
    let command: Vec<String> = hook
        .lines()
        .find_map(|line| line.trim().strip_prefix("command: "))
        .map(|list| {
            list.trim_matches(['[', ']'])
                .split(',')
                .map(|word| word.trim().trim_matches('"').to_owned())
                .collect()
        })
        .unwrap_or_default();
    let size = env_vars(sts).into_iter().find(|(n, _)| n == "BATON_ENSEMBLE_SIZE").map(|(_, v)| v);
    let mut problems = Vec::new();
    let at = |word: &str| command.iter().position(|w| w == word);
    let leave = at("members").zip(at("leave")).is_some_and(|(m, l)| l == m + 1);
    if command.first().map(String::as_str) != Some("baton") || !leave {
        problems.push(format!("the preStop hook is not `baton … members leave`: {command:?}"));
    }
    let above = at("--above").and_then(|i| command.get(i + 1));
    if above.is_none() || above != size.as_ref() {
        problems.push(format!(
            "the preStop hook leaves above {above:?}, not BATON_ENSEMBLE_SIZE {size:?}"
        ));
    }
    if !leave_help.contains("--above") {
        problems.push("`baton members leave --help` knows no --above".into());
    }
    problems
}

/// The StatefulSet broken three ways: `replicas` a string (schema), an unknown
/// variable and a client address on a port the container does not expose.
pub fn break_statefulset(text: &str) -> String {
    text.replacen("replicas: 3", "replicas: \"three\"", 1)
        .replacen("BATON_LOG_FORMAT", "BATON_NO_SUCH_FLAG", 1)
        .replacen("0.0.0.0:7181", "0.0.0.0:7999", 1)
}

/// The TLS variant's copies of deploy/k8s's files that differ from them.
fn tls_copies_differ(dir: &Path, tls_dir: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for name in TLS_COPIES {
        let read = |dir: &Path| {
            let path = dir.join(name);
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
        };
        if read(dir)? != read(tls_dir)? {
            problems.push(format!("{TLS_DIR}/{name} is not deploy/k8s/{name}"));
        }
    }
    Ok(problems)
}

/// Whether the admin port serves `/ready`, read from its source.
fn admin_serves_ready(root: &Path) -> Result<bool> {
    let path = root.join("crates/baton-server/src/admin.rs");
    let source =
        fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(source.contains(".route(\"/ready\""))
}

/// The readiness service name the server reports, read from its source.
fn ready_service_name(root: &Path) -> Result<String> {
    let path = root.join("crates/baton-server/src/grpc.rs");
    let source =
        fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let line = source
        .lines()
        .find(|l| l.contains("pub const READY_SERVICE_NAME: &str ="))
        .context("READY_SERVICE_NAME not found in grpc.rs")?;
    Ok(line.split('"').nth(1).context("READY_SERVICE_NAME has no string")?.to_owned())
}

/// Installs the validator if it is not there yet; returns its path. `cargo xtask ci`
/// calls it while it builds (pip mostly waits on the network).
pub fn install_validator(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target/deploy-check/venv");
    let validator = venv.join("bin/kubernetes-validate");
    if validator.exists() {
        return Ok(validator);
    }
    eprintln!("deploy-check: installing {KUBERNETES_VALIDATE} into {}", venv.display());
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .context("running python3 -m venv")?;
    if !status.success() {
        bail!("python3 -m venv {} failed: {status}", venv.display());
    }
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", KUBERNETES_VALIDATE])
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!("pip install {KUBERNETES_VALIDATE} failed: {status}");
    }
    Ok(validator)
}

fn validate(validator: &Path, files: &[PathBuf]) -> Result<()> {
    let output = Command::new(validator)
        .args(["--strict", "--quiet"])
        .args(files)
        .output()
        .context("running kubernetes-validate")?;
    if !output.status.success() {
        bail!(
            "kubernetes-validate refused the manifests:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The manifests' text.
#[derive(Debug, Clone)]
pub struct Manifests {
    pub statefulset: String,
    pub services: Vec<String>,
    /// The TLS variant (HTTPS probes on the admin port, certificates from Secrets).
    pub tls: bool,
}

impl Manifests {
    pub fn read(dir: &Path) -> Result<Manifests> {
        let read = |name: &str| {
            let path = dir.join(name);
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
        };
        Ok(Manifests {
            statefulset: read("statefulset.yaml")?,
            services: vec![read("service-peers.yaml")?, read("service-client.yaml")?],
            tls: false,
        })
    }

    pub fn read_tls(dir: &Path) -> Result<Manifests> {
        Ok(Manifests { tls: true, ..Manifests::read(dir)? })
    }

    /// Every disagreement found (empty: none).
    pub fn check(&self, server_help: &str, ready_service: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let sts = &self.statefulset;
        let env = env_vars(sts);
        let ports = container_ports(sts);
        let port_of = |name: &str| ports.iter().find(|(n, _)| n == name).map(|(_, p)| *p);
        for (name, _) in &env {
            if !server_help.contains(&format!("[env: {name}=")) {
                problems.push(format!("{name} is not a variable baton-server reads"));
            }
        }
        let var = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        for (variable, port_name) in [
            ("BATON_CLIENT_ADDR", "client"),
            ("BATON_ADMIN_ADDR", "admin"),
            ("BATON_PEER_ADDR", "peer"),
            ("BATON_ZK_ADDR", "zookeeper"),
        ] {
            let listens = var(variable).and_then(port_in);
            if listens.is_none() || listens != port_of(port_name) {
                problems.push(format!(
                    "{variable} ({:?}) does not listen on container port {port_name} ({:?})",
                    var(variable),
                    port_of(port_name)
                ));
            }
        }
        let name = scalar(sts, "name");
        let service = scalar(sts, "serviceName");
        match var("BATON_PEERS_DNS") {
            Some(template) => {
                let expected = format!(
                    "{}.{}",
                    name.as_deref().unwrap_or("?"),
                    service.as_deref().unwrap_or("?")
                );
                let (host, port) = template.rsplit_once(':').unwrap_or((template, ""));
                if !host.starts_with(&expected) {
                    problems.push(format!(
                        "BATON_PEERS_DNS {template} does not start with {expected} (NAME.SERVICE)"
                    ));
                }
                if port.parse::<u16>().ok() != port_of("peer") {
                    problems.push(format!("BATON_PEERS_DNS {template} is not on the peer port"));
                }
            }
            None => problems.push("BATON_PEERS_DNS is not set".into()),
        }
        let size = var("BATON_ENSEMBLE_SIZE").and_then(|s| s.parse::<u32>().ok());
        let replicas = scalar(sts, "replicas").and_then(|r| r.parse::<u32>().ok());
        if size.is_none() || replicas.is_none() || size > replicas {
            problems.push(format!(
                "BATON_ENSEMBLE_SIZE {:?} is not a base ensemble within replicas {:?}",
                var("BATON_ENSEMBLE_SIZE"),
                scalar(sts, "replicas")
            ));
        }
        let client_service = self.services.iter().find_map(|s| {
            let named = scalar(s, "name")?;
            (!s.contains("clusterIP: None")).then_some(named)
        });
        match (var("BATON_JOIN"), client_service) {
            (Some(join), Some(service)) => {
                let (host, port) = join.rsplit_once(':').unwrap_or((join, ""));
                if host != service || port.parse::<u16>().ok() != port_of("client") {
                    problems.push(format!(
                        "BATON_JOIN {join} is not the client Service {service} on the client port"
                    ));
                }
            }
            (join, service) => problems.push(format!(
                "scaling is not wired: BATON_JOIN {join:?}, client Service {service:?}"
            )),
        }
        if self.tls {
            problems.extend(self.check_tls(&env, &port_of("admin")));
            return problems;
        }
        for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
            let Some(block) = block(sts, probe) else {
                problems.push(format!("no {probe}"));
                continue;
            };
            let port = scalar(&block, "port").and_then(|p| p.parse::<u16>().ok());
            if !block.contains("grpc:") || port != port_of("client") {
                problems.push(format!("{probe} is not a gRPC probe on the client port"));
            }
            let asked = scalar(&block, "service");
            let wanted = (probe == "readinessProbe").then_some(ready_service);
            if asked.as_deref() != wanted {
                problems.push(format!("{probe} asks for service {asked:?}, not {wanted:?}"));
            }
        }
        problems.extend(self.check_services(&port_of));
        problems
    }

    fn check_services(&self, port_of: &dyn Fn(&str) -> Option<u16>) -> Vec<String> {
        let mut problems = Vec::new();
        for service in &self.services {
            for line in service.lines() {
                if let Some(target) = line.trim().strip_prefix("targetPort:") {
                    let target = target.trim();
                    if port_of(target).is_none() {
                        problems
                            .push(format!("a Service targets port {target}, which the pod lacks"));
                    }
                }
            }
        }
        problems
    }

    /// The TLS variant: certificate files from mounted Secrets, HTTPS probes on the
    /// admin port, no client certificate asked there, and the Services' ports.
    fn check_tls(&self, env: &[(String, String)], admin: &Option<u16>) -> Vec<String> {
        let sts = &self.statefulset;
        let mut problems = Vec::new();
        let mounts = secret_mounts(sts);
        let files: Vec<&(String, String)> = env
            .iter()
            .filter(|(n, _)| {
                n.contains("TLS_") && ["CERT", "KEY", "CA"].iter().any(|s| n.ends_with(s))
            })
            .collect();
        for wanted in ["BATON_TLS_CERT", "BATON_PEER_TLS_CERT", "BATON_ADMIN_TLS_CERT"] {
            if !files.iter().any(|(n, _)| n == wanted) {
                problems.push(format!("{wanted} is not set"));
            }
        }
        for (name, file) in files {
            if !mounts.iter().any(|m| file.starts_with(&format!("{m}/"))) {
                problems.push(format!("{name} {file} is not in a mounted Secret"));
            }
        }
        if env.iter().any(|(n, _)| n == "BATON_ADMIN_TLS_CA") {
            problems.push("BATON_ADMIN_TLS_CA asks kubelets' probes for a certificate".into());
        }
        for (probe, path) in [
            ("readinessProbe", "/ready"),
            ("livenessProbe", "/status"),
            ("startupProbe", "/status"),
        ] {
            let Some(block) = block(sts, probe) else {
                problems.push(format!("no {probe}"));
                continue;
            };
            let port = scalar(&block, "port").and_then(|p| p.parse::<u16>().ok());
            let https =
                block.contains("httpGet:") && scalar(&block, "scheme").as_deref() == Some("HTTPS");
            if !https || port != *admin || scalar(&block, "path").as_deref() != Some(path) {
                problems.push(format!("{probe} is not an HTTPS GET of {path} on the admin port"));
            }
        }
        let ports = container_ports(sts);
        let port_of = |name: &str| ports.iter().find(|(n, _)| n == name).map(|(_, p)| *p);
        problems.extend(self.check_services(&port_of));
        problems
    }
}

/// The mount paths of the volumes that are Secrets.
fn secret_mounts(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let secret_volumes: Vec<&str> = lines
        .windows(2)
        .filter(|w| w[1] == "secret:")
        .filter_map(|w| w[0].strip_prefix("- name: "))
        .collect();
    lines
        .windows(2)
        .filter_map(|w| Some((w[0].strip_prefix("- name: ")?, w[1].strip_prefix("mountPath: ")?)))
        .filter(|(name, _)| secret_volumes.contains(name))
        .map(|(_, path)| path.trim().to_owned())
        .collect()
}

/// The first `key: value` line's value, unquoted.
fn scalar(text: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}:");
    text.lines()
        .map(|l| l.trim().trim_start_matches("- "))
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// The lines indented under `key:` (its block).
fn block(text: &str, key: &str) -> Option<String> {
    let mut lines = text.lines().skip_while(|l| l.trim() != format!("{key}:"));
    let head = lines.next()?;
    let indent = head.len() - head.trim_start().len();
    let body: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .collect();
    Some(body.join("\n"))
}

/// `- name: BATON_X` / `value: "..."` pairs.
fn env_vars(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(name) = line.strip_prefix("- name: ").filter(|n| n.starts_with("BATON_")) {
            let value = lines.get(i + 1).and_then(|l| l.strip_prefix("value:"));
            let value = value.map(|v| v.trim().trim_matches('"').to_owned()).unwrap_or_default();
            out.push((name.to_owned(), value));
        }
    }
    out
}

/// `- name: X` / `containerPort: N` pairs.
fn container_ports(text: &str) -> Vec<(String, u16)> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let port = line.strip_prefix("containerPort:").and_then(|p| p.trim().parse().ok());
        let name = i.checked_sub(1).and_then(|j| lines[j].strip_prefix("- name: "));
        if let (Some(port), Some(name)) = (port, name) {
            out.push((name.to_owned(), port));
        }
    }
    out
}

fn port_in(addr: &str) -> Option<u16> {
    addr.rsplit_once(':')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
    }

    /// What `baton-server --help` says of the variables the manifests use.
    const HELP: &str = "[env: BATON_ID_FROM_HOSTNAME=] [env: BATON_PEERS_DNS=] \
        [env: BATON_ENSEMBLE_SIZE=] [env: BATON_CLIENT_ADDR=] [env: BATON_ADMIN_ADDR=] \
        [env: BATON_PEER_ADDR=] [env: BATON_ZK_ADDR=] [env: BATON_DATA_DIR=] \
        [env: BATON_LOG_FORMAT=] [env: BATON_JOIN=]";
    /// What `baton members leave --help` says.
    const LEAVE_HELP: &str = "Usage: baton members leave [OPTIONS] --above <N>";

    #[test]
    fn the_manifests_agree_with_the_server() {
        let manifests = Manifests::read(&root().join("deploy/k8s")).unwrap();
        let ready = ready_service_name(&root()).unwrap();
        assert_eq!(ready, "baton.v1.Ready");
        assert_eq!(manifests.check(HELP, &ready), Vec::<String>::new());
        assert_eq!(check_leave(&manifests.statefulset, LEAVE_HELP), Vec::<String>::new());
    }

    /// Scaling is wired: the base ensemble within replicas, BATON_JOIN on the
    /// client Service, and a preStop hook that leaves above the same size.
    #[test]
    fn scaling_needs_the_join_and_the_leave_to_agree() {
        let manifests = Manifests::read(&root().join("deploy/k8s")).unwrap();
        let check = |sts: String| {
            let mut problems = Manifests { statefulset: sts.clone(), ..manifests.clone() }
                .check(HELP, "baton.v1.Ready");
            problems.extend(check_leave(&sts, LEAVE_HELP));
            problems
        };
        let sts = &manifests.statefulset;
        assert_eq!(check(sts.replacen("replicas: 3", "replicas: 5", 1)), Vec::<String>::new());
        let bigger_base = sts.replacen("value: \"3\"", "value: \"5\"", 1);
        assert!(check(bigger_base.clone()).iter().any(|p| p.contains("BATON_ENSEMBLE_SIZE")));
        assert!(check(bigger_base).iter().any(|p| p.contains("leaves above")));
        let wrong_join = sts.replacen("value: \"baton:7181\"", "value: \"baton:7999\"", 1);
        assert!(check(wrong_join).iter().any(|p| p.contains("BATON_JOIN")));
        let no_hook = sts.replacen("preStop:", "postStart:", 1);
        assert!(check(no_hook).iter().any(|p| p.contains("no preStop hook")));
        let problems = check_leave(sts, "Usage: baton members leave");
        assert!(problems.iter().any(|p| p.contains("--above")), "{problems:?}");
    }

    /// ... and of the TLS variant's.
    const TLS_HELP: &str = "[env: BATON_TLS_CERT=] [env: BATON_TLS_KEY=] [env: BATON_TLS_CA=] \
        [env: BATON_CLIENT_AUTH=] [env: BATON_PEER_TLS_CERT=] [env: BATON_PEER_TLS_KEY=] \
        [env: BATON_PEER_TLS_CA=] [env: BATON_ADMIN_TLS_CERT=] [env: BATON_ADMIN_TLS_KEY=]";

    #[test]
    fn the_tls_variant_agrees_with_the_server_and_its_base() {
        let help = format!("{HELP} {TLS_HELP}");
        let tls = Manifests::read_tls(&root().join(TLS_DIR)).unwrap();
        assert_eq!(tls.check(&help, "baton.v1.Ready"), Vec::<String>::new());
        assert_eq!(check_leave(&tls.statefulset, LEAVE_HELP), Vec::<String>::new());
        assert!(
            tls_copies_differ(&root().join("deploy/k8s"), &root().join(TLS_DIR))
                .unwrap()
                .is_empty()
        );
        assert!(admin_serves_ready(&root()).unwrap());

        let outside = tls.statefulset.replacen("/etc/baton/tls/peer/tls.key", "/tmp/key", 1);
        let outside = Manifests { statefulset: outside, ..tls.clone() };
        let problems = outside.check(&help, "baton.v1.Ready");
        assert!(problems.iter().any(|p| p.contains("BATON_PEER_TLS_KEY")), "{problems:?}");
        let grpc = tls.statefulset.replacen("path: /ready", "path: /health", 1);
        let grpc = Manifests { statefulset: grpc, ..tls.clone() };
        let problems = grpc.check(&help, "baton.v1.Ready");
        assert!(problems.iter().any(|p| p.contains("readinessProbe")), "{problems:?}");
        // The plain manifests are not a TLS variant.
        let plain = Manifests { tls: true, ..Manifests::read(&root().join("deploy/k8s")).unwrap() };
        assert!(plain.check(&help, "baton.v1.Ready").len() >= 3);
    }

    #[test]
    fn a_broken_statefulset_is_refused() {
        let manifests = Manifests::read(&root().join("deploy/k8s")).unwrap();
        let broken = Manifests {
            statefulset: break_statefulset(&manifests.statefulset),
            ..manifests.clone()
        };
        let problems = broken.check(HELP, "baton.v1.Ready");
        assert!(problems.iter().any(|p| p.contains("BATON_NO_SUCH_FLAG")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("BATON_CLIENT_ADDR")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("BATON_ENSEMBLE_SIZE")), "{problems:?}");

        let zk = manifests.statefulset.replacen("0.0.0.0:2181", "0.0.0.0:2999", 1);
        let zk = Manifests { statefulset: zk, ..manifests.clone() };
        assert!(zk.check(HELP, "baton.v1.Ready").iter().any(|p| p.contains("BATON_ZK_ADDR")));

        let probe = manifests.statefulset.replacen("service: baton.v1.Ready", "service: x", 1);
        let probe = Manifests { statefulset: probe, ..manifests };
        assert!(probe.check(HELP, "baton.v1.Ready").iter().any(|p| p.contains("readinessProbe")));
    }
}
