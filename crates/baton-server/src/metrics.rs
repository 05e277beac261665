//! Counters and gauges, rendered as Prometheus text on the admin port.

use std::{
    fmt::Write,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::{Duration, Instant},
};

use baton_api::admin::Role;

/// Upper bounds of the latency histograms' buckets, in seconds (10 µs to 10 s): a
/// write's stages on a fast disk take tens of microseconds.
pub(crate) const LATENCY_BUCKETS: [f64; 19] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The stages of a write, the `stage` label of `baton_write_stage_duration_seconds`
/// (see [`Stage`]).
pub(crate) const STAGES: [&str; 6] = ["queue", "log", "quorum", "apply", "forward", "reply"];

/// One stage of a write's way through a member, as the member sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// From the request's arrival in the write queue to the driver taking it.
    Queue = 0,
    /// This member's append and flush of a batch of entries (the storage thread's
    /// round trip included): a leader's own log write, a follower's before its ACK.
    Log = 1,
    /// A leader's: from proposing an entry to the quorum's commit of it.
    Quorum = 2,
    /// From an entry's commit (as this member learns it) to its application here.
    Apply = 3,
    /// A follower's: from forwarding a write to the leader's answer.
    Forward = 4,
    /// A follower's: from the leader's answer to its own application of the write
    /// (a client reads its writes from the member it talks to).
    Reply = 5,
}

/// The operations whose latency is recorded, the `op` label of
/// `baton_request_duration_seconds` (requests on sessions and unary calls alike).
pub(crate) const OPS: [&str; 22] = [
    "create",
    "delete",
    "set",
    "multi",
    "close",
    "sync",
    "get",
    "exists",
    "children",
    "add_watch",
    "remove_watch",
    "ping",
    "get_acl",
    "set_acl",
    "add_auth",
    "set_quota",
    "remove_quota",
    "who_am_i",
    "set_watches",
    "get_ephemerals",
    "count_descendants",
    "reconfig",
];

/// A Prometheus histogram of durations: cumulative counts are derived at render.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    max_micros: AtomicU64,
    /// `u64::MAX` minus the shortest duration seen: inverted so that the default, 0,
    /// means "none yet" and `fetch_max` keeps the minimum.
    min_micros_inverted: AtomicU64,
}

/// Request durations over every op, for the four-letter words' `Latency min/avg/max`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct LatencySummary {
    pub(crate) count: u64,
    pub(crate) sum_micros: u64,
    pub(crate) min_micros: u64,
    pub(crate) max_micros: u64,
}

impl Histogram {
    pub(crate) fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|bound| secs <= *bound) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Relaxed);
        self.max_micros.fetch_max(micros, Relaxed);
        self.min_micros_inverted.fetch_max(u64::MAX - micros, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Records a request's duration when dropped.
#[derive(Debug)]
pub(crate) struct RequestTimer<'a> {
    histogram: &'a Histogram,
    started: Instant,
}

impl Drop for RequestTimer<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.started.elapsed());
    }
}

/// What the server counts. Relaxed atomics: these are statistics, not
/// synchronisation.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) writes_total: AtomicU64,
    pub(crate) writes_failed_total: AtomicU64,
    pub(crate) reads_total: AtomicU64,
    pub(crate) fsyncs_total: AtomicU64,
    pub(crate) batches_total: AtomicU64,
    pub(crate) snapshots_total: AtomicU64,
    pub(crate) log_entries_purged_total: AtomicU64,
    pub(crate) write_queue_full_total: AtomicU64,
    /// A gauge: writes queued and not yet taken by the driver.
    pub(crate) write_queue_depth: AtomicU64,
    /// Times this member started an election.
    pub(crate) elections_total: AtomicU64,
    /// Credentials refused (AUTH_FAILED), on calls and sessions.
    pub(crate) auth_failures_total: AtomicU64,
    /// Txns that left a soft quota limit exceeded.
    pub(crate) quota_soft_exceeded_total: AtomicU64,
    /// Duration of each durability barrier (append + flush + fdatasync).
    pub(crate) fsync_seconds: Histogram,
    /// Request durations, one histogram per entry of [`OPS`].
    requests: [Histogram; OPS.len()],
    /// A write's stages, one histogram per entry of [`STAGES`].
    stages: [Histogram; STAGES.len()],
    // TLS: reloads of the material (on a file change or SIGHUP) and refused handshakes.
    pub(crate) tls_reloads_total: AtomicU64,
    pub(crate) tls_reload_errors_total: AtomicU64,
    pub(crate) tls_handshake_failures_total: AtomicU64,
    /// ZooKeeper-protocol connections with a session: open now (a gauge), and ever.
    pub(crate) zk_connections: AtomicU64,
    pub(crate) zk_connections_total: AtomicU64,
    /// A gauge: 1 while the disk has lost acknowledged entries not yet repaired.
    pub(crate) storage_damaged: AtomicU64,
    /// A gauge: the version of the configuration in force (its zxid).
    pub(crate) config_version: AtomicU64,
    /// Damage found: on opening (once per start) and by the scrubber (per part).
    pub(crate) storage_damage_found_total: AtomicU64,
    /// Damage repaired: from a leader's history, this member's memory or a snapshot.
    pub(crate) storage_repairs_total: AtomicU64,
    /// Stored bytes the scrubber verified, and the passes it finished.
    pub(crate) scrub_bytes_total: AtomicU64,
    pub(crate) scrub_passes_total: AtomicU64,
}

/// Values read at render time rather than counted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gauges {
    pub(crate) znodes: u64,
    pub(crate) data_bytes: u64,
    pub(crate) last_zxid: u64,
    pub(crate) committed_zxid: u64,
    pub(crate) logged_zxid: u64,
    pub(crate) epoch: u32,
    pub(crate) role: Role,
    pub(crate) sessions: u64,
    pub(crate) watches: u64,
    /// Bytes free for the data directory (0 if unknown), and the reserve.
    pub(crate) disk_free_bytes: u64,
    pub(crate) disk_reserve_bytes: u64,
    /// Members of the configuration in force, by role.
    pub(crate) config_voters: u64,
    pub(crate) config_observers: u64,
}

impl Metrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn sub(gauge: &AtomicU64, n: u64) {
        gauge.fetch_sub(n, Relaxed);
    }

    pub(crate) fn set(gauge: &AtomicU64, n: u64) {
        gauge.store(n, Relaxed);
    }

    /// Times a request of `op` (one of [`OPS`]) until the timer is dropped.
    pub(crate) fn time(&self, op: &str) -> RequestTimer<'_> {
        let index = OPS.iter().position(|o| *o == op);
        debug_assert!(index.is_some(), "unknown op {op}");
        RequestTimer { histogram: &self.requests[index.unwrap_or(0)], started: Instant::now() }
    }

    /// Records one write's (or one batch's) time in `stage`.
    pub(crate) fn stage(&self, stage: Stage, took: Duration) {
        self.stages[stage as usize].observe(took);
    }

    /// Records a request of `op` that took `took`.
    pub(crate) fn observe(&self, op: &str, took: Duration) {
        if let Some(index) = OPS.iter().position(|o| *o == op) {
            self.requests[index].observe(took);
        }
    }

    /// Every request histogram folded into one (a request of no recorded op is not in it).
    pub(crate) fn latency(&self) -> LatencySummary {
        let mut total = LatencySummary { min_micros: u64::MAX, ..LatencySummary::default() };
        for histogram in &self.requests {
            let count = histogram.count.load(Relaxed);
            if count == 0 {
                continue;
            }
            total.count += count;
            total.sum_micros = total.sum_micros.saturating_add(histogram.sum_micros.load(Relaxed));
            total.max_micros = total.max_micros.max(histogram.max_micros.load(Relaxed));
            let min = u64::MAX - histogram.min_micros_inverted.load(Relaxed);
            total.min_micros = total.min_micros.min(min);
        }
        if total.count == 0 {
            total.min_micros = 0;
        }
        total
    }

    pub(crate) fn render(&self, gauges: Gauges) -> String {
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        };
        gauge(&mut out, "baton_znodes", "Znodes in the tree.", gauges.znodes);
        gauge(&mut out, "baton_data_bytes", "Bytes of data in all znodes.", gauges.data_bytes);
        gauge(&mut out, "baton_last_zxid", "zxid of the last applied txn.", gauges.last_zxid);
        let committed = gauges.committed_zxid;
        gauge(&mut out, "baton_committed_zxid", "Highest zxid known committed.", committed);
        gauge(&mut out, "baton_logged_zxid", "Last zxid durable in the log.", gauges.logged_zxid);
        // Within one epoch zxids count txns: logged and not yet committed.
        let in_flight = if gauges.logged_zxid >> 32 == committed >> 32 {
            gauges.logged_zxid.saturating_sub(committed)
        } else {
            0
        };
        gauge(&mut out, "baton_proposals_in_flight", "Logged txns not yet committed.", in_flight);
        gauge(&mut out, "baton_epoch", "Epoch of this run.", gauges.epoch.into());
        let _ = writeln!(out, "# HELP baton_role This member's role (1 for the current one).");
        let _ = writeln!(out, "# TYPE baton_role gauge");
        // One line per role: the current one is 1, the others 0.
        for role in Role::ALL {
            let _ =
                writeln!(out, "baton_role{{role=\"{role}\"}} {}", u8::from(role == gauges.role));
        }
        gauge(&mut out, "baton_sessions", "Open sessions.", gauges.sessions);
        gauge(&mut out, "baton_watches", "Watches set on this server.", gauges.watches);
        let zk = self.zk_connections.load(Relaxed);
        gauge(&mut out, "baton_zk_connections", "Open ZooKeeper-protocol connections.", zk);
        let depth = self.write_queue_depth.load(Relaxed);
        gauge(&mut out, "baton_write_queue_depth", "Writes waiting for the driver.", depth);
        let help = "Bytes free on the data directory's file system.";
        gauge(&mut out, "baton_disk_free_bytes", help, gauges.disk_free_bytes);
        let help = "--disk-reserve-bytes: below it, writes are refused (0: off).";
        gauge(&mut out, "baton_disk_reserve_bytes", help, gauges.disk_reserve_bytes);
        let damaged = self.storage_damaged.load(Relaxed);
        let help = "1 while the disk has lost acknowledged entries not yet repaired from peers.";
        gauge(&mut out, "baton_storage_damaged", help, damaged);
        let version = self.config_version.load(Relaxed);
        let help = "Version (zxid) of the configuration in force; 0 until the first change.";
        gauge(&mut out, "baton_config_version", help, version);
        let help = "Members of the configuration in force, by role.";
        let _ =
            writeln!(out, "# HELP baton_config_members {help}\n# TYPE baton_config_members gauge");
        for (role, count) in
            [("voter", gauges.config_voters), ("observer", gauges.config_observers)]
        {
            let _ = writeln!(out, "baton_config_members{{role=\"{role}\"}} {count}");
        }
        let counters = [
            ("baton_writes_total", "Txns applied (including failed ones).", &self.writes_total),
            ("baton_writes_failed_total", "Txns applied that failed.", &self.writes_failed_total),
            ("baton_reads_total", "Reads served from the local tree.", &self.reads_total),
            ("baton_fsyncs_total", "Durability barriers (one per batch).", &self.fsyncs_total),
            ("baton_batches_total", "Batches the driver committed.", &self.batches_total),
            ("baton_snapshots_total", "Snapshots saved.", &self.snapshots_total),
            (
                "baton_log_entries_purged_total",
                "Log entries deleted after a snapshot.",
                &self.log_entries_purged_total,
            ),
            (
                "baton_write_queue_full_total",
                "Writes refused because the write queue was full.",
                &self.write_queue_full_total,
            ),
            ("baton_elections_total", "Elections this member started.", &self.elections_total),
            (
                "baton_auth_failures_total",
                "Credentials refused (AUTH_FAILED) on calls and sessions.",
                &self.auth_failures_total,
            ),
            (
                "baton_quota_soft_exceeded_total",
                "Applied txns that left a soft quota limit exceeded.",
                &self.quota_soft_exceeded_total,
            ),
            (
                "baton_tls_reloads_total",
                "TLS material reloaded (a file changed, or SIGHUP).",
                &self.tls_reloads_total,
            ),
            (
                "baton_tls_reload_errors_total",
                "TLS reloads that failed (the material in use stayed).",
                &self.tls_reload_errors_total,
            ),
            (
                "baton_tls_handshake_failures_total",
                "TLS handshakes refused on any port.",
                &self.tls_handshake_failures_total,
            ),
            (
                "baton_zk_connections_total",
                "ZooKeeper-protocol connections that opened a session.",
                &self.zk_connections_total,
            ),
            (
                "baton_storage_damage_found_total",
                "Storage damage found (on opening, and each part the scrubber found).",
                &self.storage_damage_found_total,
            ),
            (
                "baton_storage_repairs_total",
                "Storage damage repaired (from a leader, this member's memory or a snapshot).",
                &self.storage_repairs_total,
            ),
            (
                "baton_scrub_bytes_total",
                "Stored bytes of log and snapshots the scrubber verified.",
                &self.scrub_bytes_total,
            ),
            ("baton_scrub_passes_total", "Scrub passes finished.", &self.scrub_passes_total),
        ];
        for (name, help, value) in counters {
            let value = value.load(Relaxed);
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        }
        let name = "baton_fsync_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Durability barriers: append, flush and fdatasync.");
        let _ = writeln!(out, "# TYPE {name} histogram");
        self.fsync_seconds.render(&mut out, name, "");
        let name = "baton_write_stage_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Writes by stage: queue, log (append and flush), quorum (proposal \
             to commit, leader), apply (commit to applied), forward (follower to leader's \
             answer), reply (leader's answer to applied, follower)."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (stage, histogram) in STAGES.iter().zip(&self.stages) {
            histogram.render(&mut out, name, &format!("stage=\"{stage}\""));
        }
        let name = "baton_request_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Client requests, from receipt to reply, by op.");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (op, histogram) in OPS.iter().zip(&self.requests) {
            histogram.render(&mut out, name, &format!("op=\"{op}\""));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_folds_every_op() {
        let metrics = Metrics::default();
        assert_eq!(metrics.latency(), LatencySummary::default());
        metrics.observe("get", Duration::from_micros(300));
        metrics.observe("create", Duration::from_millis(7));
        metrics.observe("get", Duration::from_millis(2));
        let latency = metrics.latency();
        assert_eq!(latency.count, 3);
        assert_eq!(latency.sum_micros, 9_300);
        assert_eq!((latency.min_micros, latency.max_micros), (300, 7_000));
    }

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        Metrics::add(&metrics.writes_total, 3);
        metrics.observe("get", Duration::from_micros(300));
        metrics.observe("get", Duration::from_millis(20));
        drop(metrics.time("create"));
        metrics.fsync_seconds.observe(Duration::from_micros(400));
        let text = metrics.render(Gauges {
            znodes: 2,
            data_bytes: 10,
            last_zxid: 0x1_0000_0003,
            committed_zxid: 0x1_0000_0003,
            logged_zxid: 0x1_0000_0005,
            epoch: 1,
            role: Role::Leading,
            sessions: 0,
            watches: 0,
            disk_free_bytes: 1 << 30,
            disk_reserve_bytes: 64 << 20,
            config_voters: 3,
            config_observers: 0,
        });
        assert!(text.contains("# TYPE baton_writes_total counter\nbaton_writes_total 3\n"));
        assert!(text.contains("baton_znodes 2\n"));
        assert!(text.contains("baton_last_zxid 4294967299\n"));
        assert!(text.contains("baton_proposals_in_flight 2\n"), "{text}");
        assert!(text.contains("baton_role{role=\"leading\"} 1\n"), "{text}");
        assert!(text.contains("baton_role{role=\"looking\"} 0\n"), "{text}");
        assert!(!text.contains("standalone"), "{text}");
        assert!(text.contains("baton_role{role=\"following\"} 0\n"), "{text}");
        assert!(
            text.contains("baton_request_duration_seconds_bucket{op=\"get\",le=\"0.00025\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("baton_request_duration_seconds_bucket{op=\"get\",le=\"0.0005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("baton_request_duration_seconds_bucket{op=\"get\",le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("baton_request_duration_seconds_count{op=\"get\"} 2\n"), "{text}");
        assert!(text.contains("baton_request_duration_seconds_count{op=\"create\"} 1\n"), "{text}");
        assert!(text.contains("baton_fsync_duration_seconds_bucket{le=\"0.0005\"} 1\n"), "{text}");
        assert!(text.lines().all(|l| l.starts_with('#') || l.starts_with("baton_")), "{text}");
    }
}
