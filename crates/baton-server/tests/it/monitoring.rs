//! The Grafana dashboard and the Prometheus alert rules in `deploy/monitoring/`:
//! every query names only metrics a real server exports (a renamed metric breaks
//! them silently otherwise), every rule has what an operator needs, and
//! `promtool check rules` accepts the rules where it is installed.

use std::{collections::BTreeSet, path::PathBuf};

use crate::support::TestServer;

fn monitoring() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/monitoring")
}

/// Every `baton_…` name in a PromQL expression, a histogram's `_bucket`, `_sum` and
/// `_count` series named by their family.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("baton_") {
        let start = i + at;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if boundary {
            let name = &expr[start..end];
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            names.push(family.to_owned());
        }
        i = end;
    }
    names
}

/// Every `expr` in a JSON value.
fn exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", serde_json::Value::String(expr)) => out.push(expr.clone()),
                    _ => exprs(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| exprs(item, out)),
        _ => {}
    }
}

/// The metric families a running server's `/metrics` declares.
async fn exported() -> BTreeSet<String> {
    let server = TestServer::start(&[]).await;
    let (code, body) =
        baton_testkit::http_get(server.process.admin_addr(), "/metrics").await.expect("/metrics");
    assert_eq!(code, 200);
    body.lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_dashboard_and_the_alerts_query_only_exported_metrics() {
    let exported = exported().await;

    let text =
        std::fs::read_to_string(monitoring().join("baton-dashboard.json")).expect("dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "baton-overview");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10, "{} panels", panels.len());
    let mut queries = Vec::new();
    exprs(&dashboard, &mut queries);
    assert!(queries.len() >= panels.len(), "every panel has a query");

    let rules = std::fs::read_to_string(monitoring().join("baton-alerts.yaml")).expect("rules");
    let rule_exprs: Vec<String> = rules
        .lines()
        .filter_map(|line| line.trim().strip_prefix("expr:"))
        .map(|expr| expr.trim().to_owned())
        .collect();
    // Each rule: an alert name, an expression, a severity and a summary.
    for key in ["- alert:", "severity:", "summary:", "description:"] {
        let count = rules.lines().filter(|line| line.trim().starts_with(key)).count();
        assert_eq!(count, rule_exprs.len(), "{key} in every rule");
    }
    for alert in [
        "BatonNoLeader",
        "BatonQuorumLost",
        "BatonMemberLagging",
        "BatonSlowFsync",
        "BatonDiskNearReserve",
    ] {
        assert!(rules.contains(&format!("- alert: {alert}\n")), "no {alert} rule");
    }

    let mut unknown = BTreeSet::new();
    for expr in queries.iter().chain(&rule_exprs) {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "`{expr}` names no Baton metric");
        unknown.extend(names.into_iter().filter(|name| !exported.contains(name)));
    }
    assert!(unknown.is_empty(), "queried but not exported: {unknown:?}");

    match std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(monitoring().join("baton-alerts.yaml"))
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "promtool check rules: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(error) => eprintln!("promtool not installed ({error}): checked the rules' shape only"),
    }
}

#[test]
fn metric_names_are_found_whole() {
    assert_eq!(
        metric_names(
            "histogram_quantile(0.99, sum by (le) (rate(baton_fsync_duration_seconds_bucket[5m]))) > x_baton_no"
        ),
        ["baton_fsync_duration_seconds"]
    );
    assert_eq!(metric_names("baton_a - baton_b_count"), ["baton_a", "baton_b"]);
}
