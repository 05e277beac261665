//! The results: one row per system and workload, printed as a markdown table, then the
//! ratios of the first system (Baton) to each other one, and of baton-zk to ZooKeeper
//! (the same client library against both servers).

use std::fmt::Write as _;

use crate::systems::Kind;

/// One measurement of one system.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub system: Kind,
    pub workload: String,
    /// Operations (or events) completed.
    pub ops: u64,
    /// Operations per second; `None` for a row that measures a time.
    pub throughput: Option<f64>,
    /// p50, p99 and p99.9 latency in milliseconds.
    pub latency_ms: Option<[f64; 3]>,
    /// Operations that failed.
    pub errors: u64,
    /// Server CPU seconds (all members) per 1,000 operations.
    pub cpu_per_kop: Option<f64>,
    /// Resident memory of all members together, and of the largest, in bytes.
    pub rss: (u64, u64),
    /// For time measurements (failover, restart): seconds.
    pub secs: Option<f64>,
    /// Baton only: where its writes' time went, per member (see [`MemberStages`]).
    pub stages: Vec<MemberStages>,
    /// The latency distribution at [`crate::stats::CDF_QUANTILES`]: (quantile, ms);
    /// empty for rows that measure no latencies.
    pub cdf: Vec<(f64, f64)>,
}

/// One Baton member's write stages over one workload, from the deltas of its
/// `baton_write_stage_duration_seconds` histograms: (stage, mean µs, count).
#[derive(Debug, Clone, PartialEq)]
pub struct MemberStages {
    pub id: u32,
    pub leads: bool,
    pub stages: Vec<(String, f64, u64)>,
}

/// What a run measured, and the systems it could not start.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub rows: Vec<Row>,
    pub skipped: Vec<(Kind, String)>,
    /// What some rows measure, printed under the table.
    pub notes: Vec<String>,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn opt(value: Option<f64>, precision: usize) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.precision$}"))
}

impl Report {
    /// The rows of `system` for `workload`.
    pub fn find(&self, system: Kind, workload: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.system == system && r.workload == workload)
    }

    /// What makes the numbers untrustworthy: an operation that failed where no fault
    /// was injected, or a workload that completed nothing.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for row in &self.rows {
            let faulted = row.workload.starts_with("failover");
            if row.errors > 0 && !faulted {
                problems.push(format!(
                    "{} {}: {} operations failed",
                    row.system.name(),
                    row.workload,
                    row.errors
                ));
            }
            if row.ops == 0 {
                problems.push(format!("{} {}: nothing completed", row.system.name(), row.workload));
            }
        }
        problems
    }

    /// Every row, then the ratios of the first system to each other, as markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "| system | workload | ops/s | p50 ms | p99 ms | p99.9 ms | errors | CPU s / 1k ops | RSS MiB (all, largest) | time s |\n",
        );
        out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for row in &self.rows {
            let [p50, p99, p999] = row.latency_ms.map_or([None; 3], |l| l.map(Some));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0}, {:.0} | {} |",
                row.system.name(),
                row.workload,
                opt(row.throughput, 0),
                opt(p50, 2),
                opt(p99, 2),
                opt(p999, 2),
                row.errors,
                opt(row.cpu_per_kop, 3),
                mib(row.rss.0),
                mib(row.rss.1),
                opt(row.secs, 2),
            );
        }
        self.stage_table(&mut out);
        for (kind, reason) in &self.skipped {
            let _ = writeln!(out, "\n{} skipped: {reason}", kind.name());
        }
        for note in &self.notes {
            let _ = writeln!(out, "\n{note}");
        }
        for (a, b) in self.pairs() {
            self.ratios(&mut out, a, b);
        }
        out
    }

    /// The systems compared: the first to each other, then baton-zk to ZooKeeper.
    /// Where Baton's writes spent their time, per workload and member (mean µs per
    /// stage, from the members' own histograms).
    fn stage_table(&self, out: &mut String) {
        let rows: Vec<&Row> = self.rows.iter().filter(|r| !r.stages.is_empty()).collect();
        let Some(first) = rows.first() else { return };
        let names: Vec<&str> = first.stages[0].stages.iter().map(|(n, _, _)| n.as_str()).collect();
        out.push_str(
            "\nWhere a write's time goes (mean µs per stage, each member's own view):\n\n",
        );
        let _ = writeln!(out, "| system | workload | member | {} |", names.join(" | "));
        let _ = writeln!(out, "|---|---|---|{}", "---:|".repeat(names.len()));
        for row in rows {
            for member in &row.stages {
                let cells: Vec<String> = member
                    .stages
                    .iter()
                    .map(
                        |(_, mean, count)| {
                            if *count == 0 { "–".to_owned() } else { format!("{mean:.0}") }
                        },
                    )
                    .collect();
                let role = if member.leads { "leader" } else { "follower" };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} ({role}) | {} |",
                    row.system.name(),
                    row.workload,
                    member.id,
                    cells.join(" | ")
                );
            }
        }
    }

    fn pairs(&self) -> Vec<(Kind, Kind)> {
        let mut systems: Vec<Kind> = Vec::new();
        for row in &self.rows {
            if !systems.contains(&row.system) {
                systems.push(row.system);
            }
        }
        let Some((&first, peers)) = systems.split_first() else { return Vec::new() };
        let mut pairs: Vec<(Kind, Kind)> = peers.iter().map(|&peer| (first, peer)).collect();
        let same_client = (Kind::BatonZk, Kind::ZooKeeper);
        if first != Kind::BatonZk
            && [same_client.0, same_client.1].iter().all(|k| systems.contains(k))
        {
            pairs.push(same_client);
        }
        pairs
    }

    /// The ratios of `a` to `b` over the workloads both ran.
    fn ratios(&self, out: &mut String, a: Kind, b: Kind) {
        let _ = writeln!(
            out,
            "\n{a} / {b} (throughput: higher is better for {a}; p99, CPU, RSS, time: lower is better)\n",
            a = a.name(),
            b = b.name()
        );
        out.push_str("| workload | throughput | p99 | CPU / op | RSS (all) | time |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|\n");
        for row in self.rows.iter().filter(|r| r.system == a) {
            let Some(other) = self.find(b, &row.workload) else { continue };
            let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
                _ => "–".to_owned(),
            };
            let p99 = |r: &Row| r.latency_ms.map(|l| l[1]);
            let rss = |r: &Row| (r.rss.0 > 0).then_some(r.rss.0 as f64);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                row.workload,
                ratio(row.throughput, other.throughput),
                ratio(p99(row), p99(other)),
                ratio(row.cpu_per_kop, other.cpu_per_kop),
                ratio(rss(row), rss(other)),
                ratio(row.secs, other.secs),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(system: Kind, throughput: f64, p99: f64) -> Row {
        Row {
            system,
            workload: "read, 32 in flight".into(),
            ops: 1000,
            throughput: Some(throughput),
            latency_ms: Some([p99 / 2.0, p99, p99 * 2.0]),
            errors: 0,
            cpu_per_kop: Some(0.5),
            rss: (30 << 20, 10 << 20),
            secs: None,
            stages: Vec::new(),
            cdf: Vec::new(),
        }
    }

    #[test]
    fn ratios_are_of_the_first_system_to_each_peer() {
        let report = Report {
            rows: vec![row(Kind::Baton, 40_000.0, 1.0), row(Kind::ZooKeeper, 10_000.0, 4.0)],
            skipped: vec![(Kind::Etcd, "etcd not found".into())],
            notes: Vec::new(),
        };
        let text = report.markdown();
        assert!(
            text.contains("| read, 32 in flight | 4.00× | 0.25× | 1.00× | 1.00× | – |"),
            "{text}"
        );
        assert!(text.contains("etcd skipped: etcd not found"), "{text}");
        assert!(text.contains("| baton | read, 32 in flight | 40000 | 0.50 | 1.00 | 2.00 | 0 | 0.500 | 30, 10 | – |"), "{text}");
    }

    #[test]
    fn baton_zk_is_also_compared_with_zookeeper() {
        let report = Report {
            rows: vec![
                row(Kind::Baton, 40_000.0, 1.0),
                row(Kind::BatonZk, 30_000.0, 2.0),
                row(Kind::ZooKeeper, 10_000.0, 4.0),
            ],
            skipped: Vec::new(),
            notes: vec!["baton-zk: what it is".into()],
        };
        let text = report.markdown();
        let titles: Vec<&str> = text.lines().filter(|l| l.ends_with("lower is better)")).collect();
        assert_eq!(titles.len(), 3, "{text}");
        assert!(titles[0].starts_with("baton / baton-zk "), "{text}");
        assert!(titles[1].starts_with("baton / zookeeper "), "{text}");
        assert!(titles[2].starts_with("baton-zk / zookeeper "), "{text}");
        let after = text.split(titles[2]).nth(1).unwrap_or_default();
        assert!(after.contains("| read, 32 in flight | 3.00× | 0.50× |"), "{text}");
        assert!(text.contains("\nbaton-zk: what it is\n"), "{text}");
    }
}
