//! Counters and gauges, rendered as Prometheus text on the admin port.

use std::{
    fmt::Write,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

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
}

/// Values read at render time rather than counted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gauges {
    pub(crate) znodes: u64,
    pub(crate) last_zxid: u64,
    pub(crate) epoch: u32,
    pub(crate) sessions: u64,
    pub(crate) watches: u64,
}

impl Metrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn sub(gauge: &AtomicU64, n: u64) {
        gauge.fetch_sub(n, Relaxed);
    }

    pub(crate) fn render(&self, gauges: Gauges) -> String {
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        };
        gauge(&mut out, "baton_znodes", "Znodes in the tree.", gauges.znodes);
        gauge(&mut out, "baton_last_zxid", "zxid of the last applied txn.", gauges.last_zxid);
        gauge(&mut out, "baton_epoch", "Epoch of this run.", gauges.epoch.into());
        gauge(&mut out, "baton_sessions", "Open sessions.", gauges.sessions);
        gauge(&mut out, "baton_watches", "Watches set on this server.", gauges.watches);
        let depth = self.write_queue_depth.load(Relaxed);
        gauge(&mut out, "baton_write_queue_depth", "Writes waiting for the driver.", depth);
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
        ];
        for (name, help, value) in counters {
            let value = value.load(Relaxed);
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        Metrics::add(&metrics.writes_total, 3);
        let text = metrics.render(Gauges {
            znodes: 2,
            last_zxid: 0x1_0000_0003,
            epoch: 1,
            sessions: 0,
            watches: 0,
        });
        assert!(text.contains("# TYPE baton_writes_total counter\nbaton_writes_total 3\n"));
        assert!(text.contains("baton_znodes 2\n"));
        assert!(text.contains("baton_last_zxid 4294967299\n"));
        assert!(text.lines().all(|l| l.starts_with('#') || l.starts_with("baton_")), "{text}");
    }
}
