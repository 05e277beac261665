//! What a command prints: as text for people (and `cut`/`grep`), or as one JSON object
//! per command for programs.

use std::io::{self, Write};

use baton_client::{Acl, Id, QuotaLimits, QuotaUsage, Stat, acl::format_acl};
use bytes::Bytes;
use serde_json::{Value, json};

/// The result of one successful command, before it is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A configuration (`members …`).
    Members {
        config: baton_client::Config,
    },
    /// The new leader (`leader transfer`).
    Leader {
        id: u64,
    },
    Created {
        path: String,
        stat: Stat,
    },
    Data {
        path: String,
        data: Bytes,
        stat: Stat,
        show_stat: bool,
    },
    Updated {
        path: String,
        stat: Stat,
    },
    Deleted {
        path: String,
        count: usize,
    },
    Children {
        path: String,
        children: Vec<String>,
    },
    Subtree {
        path: String,
        paths: Vec<String>,
    },
    Stat {
        path: String,
        stat: Stat,
    },
    Exists {
        path: String,
        stat: Option<Stat>,
    },
    Synced {
        path: String,
        zxid: u64,
    },
    Acl {
        path: String,
        acl: Acl,
        stat: Stat,
    },
    Identities {
        ids: Vec<Id>,
    },
    Quota {
        path: String,
        limits: QuotaLimits,
        usage: QuotaUsage,
    },
    /// A change with nothing to show (quota set, quota rm).
    Done {
        path: String,
    },
    /// `digest`: the digest id of a user and password.
    Digest {
        id: String,
    },
}

impl Output {
    /// `exists` of a missing node is the one successful answer with a non-zero code.
    pub fn exit_code(&self) -> i32 {
        match self {
            Output::Exists { stat: None, .. } => crate::exit::NOT_FOUND,
            _ => crate::exit::OK,
        }
    }

    /// The text form. Data is written raw (it may be binary), followed by a newline.
    pub fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            Output::Created { path, .. } => writeln!(out, "{path}"),
            Output::Data { data, stat, show_stat, .. } => {
                out.write_all(data)?;
                writeln!(out)?;
                if *show_stat {
                    write_stat(stat, out)?;
                }
                Ok(())
            }
            Output::Updated { .. } | Output::Deleted { .. } | Output::Done { .. } => Ok(()),
            Output::Acl { acl, .. } => acl.iter().try_for_each(|entry| writeln!(out, "{entry}")),
            Output::Identities { ids } => ids.iter().try_for_each(|id| writeln!(out, "{id}")),
            // zkCli's listquota lines, in ZooKeeper 3.7's StatsTrack form.
            Output::Quota { path, limits, usage } => {
                writeln!(out, "Output quota for {path} {}", limits.to_stats_track())?;
                writeln!(out, "Output stat for {path} count={},bytes={}", usage.count, usage.bytes)
            }
            Output::Digest { id } => writeln!(out, "{id}"),
            Output::Members { config } => {
                writeln!(out, "version {:x}", config.version)?;
                for m in &config.members {
                    let role = if m.voter { "voter" } else { "observer" };
                    let leads = if config.leader == Some(m.id) { " *" } else { "" };
                    writeln!(out, "{} {} {role}{leads}", m.id, m.addr)?;
                }
                if let Some(pending) = config.pending {
                    writeln!(out, "change in flight: {pending:x}")?;
                }
                Ok(())
            }
            Output::Leader { id } => writeln!(out, "leader {id}"),
            Output::Children { children: lines, .. } | Output::Subtree { paths: lines, .. } => {
                lines.iter().try_for_each(|line| writeln!(out, "{line}"))
            }
            Output::Stat { stat, .. } => write_stat(stat, out),
            Output::Exists { stat, .. } => writeln!(out, "{}", stat.is_some()),
            Output::Synced { zxid, .. } => writeln!(out, "{zxid:#x}"),
        }
    }

    /// The JSON form: always an object with the `path` the command was about.
    pub fn to_json(&self) -> Value {
        match self {
            Output::Created { path, stat }
            | Output::Updated { path, stat }
            | Output::Stat { path, stat } => {
                json!({ "path": path, "stat": stat_json(stat) })
            }
            Output::Data { path, data, stat, .. } => {
                let mut object = json!({ "path": path, "stat": stat_json(stat) });
                let (key, value) = match std::str::from_utf8(data) {
                    Ok(text) => ("data", text.to_owned()),
                    Err(_) => ("data_hex", hex(data)),
                };
                object[key] = Value::String(value);
                object
            }
            Output::Deleted { path, count } => json!({ "path": path, "deleted": count }),
            Output::Children { path, children } => json!({ "path": path, "children": children }),
            Output::Subtree { path, paths } => json!({ "path": path, "paths": paths }),
            Output::Exists { path, stat } => json!({
                "path": path,
                "exists": stat.is_some(),
                "stat": stat.as_ref().map(stat_json),
            }),
            Output::Synced { path, zxid } => json!({ "path": path, "zxid": zxid }),
            Output::Acl { path, acl, stat } => json!({
                "path": path,
                "acl": format_acl(acl),
                "entries": acl.iter().map(|e| json!({
                    "scheme": e.id.scheme, "id": e.id.id, "perms": e.perms.to_string(),
                })).collect::<Vec<_>>(),
                "stat": stat_json(stat),
            }),
            Output::Identities { ids } => json!({
                "identities": ids.iter().map(|id| json!({"scheme": id.scheme, "id": id.id}))
                    .collect::<Vec<_>>(),
            }),
            Output::Quota { path, limits, usage } => json!({
                "path": path,
                "limits": {
                    "count_soft": limits.count_soft, "bytes_soft": limits.bytes_soft,
                    "count_hard": limits.count_hard, "bytes_hard": limits.bytes_hard,
                },
                "usage": { "count": usage.count, "bytes": usage.bytes },
            }),
            Output::Done { path } => json!({ "path": path }),
            Output::Digest { id } => json!({ "digest": id }),
            Output::Members { config } => json!({
                "path": "/baton/config",
                "version": config.version,
                "leader": config.leader,
                "pending": config.pending,
                "members": config.members.iter().map(|m| json!({
                    "id": m.id, "addr": m.addr, "voter": m.voter,
                })).collect::<Vec<_>>(),
            }),
            Output::Leader { id } => json!({ "path": "", "leader": id }),
        }
    }
}

/// Writes one command's output to stdout: its text form, or one JSON object and a newline.
pub fn print(output: &Output, json: bool) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    if json {
        serde_json::to_writer(&mut stdout, &output.to_json())?;
        writeln!(stdout)?;
    } else {
        output.write_text(&mut stdout)?;
    }
    stdout.flush()
}

/// A Stat as zkCli prints it: its field names, zxids and the owner in hex, times as
/// RFC 3339 UTC.
pub fn write_stat(stat: &Stat, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "cZxid = {:#x}", stat.czxid)?;
    writeln!(out, "ctime = {}", rfc3339_ms(stat.ctime))?;
    writeln!(out, "mZxid = {:#x}", stat.mzxid)?;
    writeln!(out, "mtime = {}", rfc3339_ms(stat.mtime))?;
    writeln!(out, "pZxid = {:#x}", stat.pzxid)?;
    writeln!(out, "cversion = {}", stat.cversion)?;
    writeln!(out, "dataVersion = {}", stat.version)?;
    writeln!(out, "aclVersion = {}", stat.aversion)?;
    writeln!(out, "ephemeralOwner = {:#x}", stat.ephemeral_owner)?;
    writeln!(out, "dataLength = {}", stat.data_length)?;
    writeln!(out, "numChildren = {}", stat.num_children)
}

/// A Stat as JSON, with the field names of the proto's `baton.v1.Stat` and numbers as
/// numbers (times in milliseconds since the Unix epoch).
pub fn stat_json(stat: &Stat) -> Value {
    json!({
        "czxid": stat.czxid,
        "mzxid": stat.mzxid,
        "pzxid": stat.pzxid,
        "ctime": stat.ctime,
        "mtime": stat.mtime,
        "version": stat.version,
        "cversion": stat.cversion,
        "aversion": stat.aversion,
        "ephemeral_owner": stat.ephemeral_owner,
        "data_length": stat.data_length,
        "num_children": stat.num_children,
    })
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DDThh:mm:ss.mmmZ` (proleptic Gregorian,
/// UTC), without a date library for one line of output.
pub fn rfc3339_ms(ms: i64) -> String {
    const MS_PER_DAY: i64 = 86_400_000;
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s, milli) =
        (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60, in_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// The Gregorian date `days` after 1970-01-01. Counts in 400-year eras (146 097 days each)
/// starting on March 1st, so that the leap day is the last day of a counted year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month =
        if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat() -> Stat {
        Stat {
            czxid: 0x1_0000_0002,
            mzxid: 0x1_0000_0005,
            pzxid: 0x1_0000_0002,
            ctime: 1_700_000_000_123,
            mtime: 1_700_000_001_000,
            version: 1,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            data_length: 10,
            num_children: 0,
        }
    }

    fn text(output: &Output) -> String {
        let mut buf = Vec::new();
        output.write_text(&mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn stats_print_like_zkcli() {
        let mut buf = Vec::new();
        write_stat(&stat(), &mut buf).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "cZxid = 0x100000002\n\
             ctime = 2023-11-14T22:13:20.123Z\n\
             mZxid = 0x100000005\n\
             mtime = 2023-11-14T22:13:21.000Z\n\
             pZxid = 0x100000002\n\
             cversion = 0\n\
             dataVersion = 1\n\
             aclVersion = 0\n\
             ephemeralOwner = 0x0\n\
             dataLength = 10\n\
             numChildren = 0\n"
        );
    }

    #[test]
    fn dates_are_right_across_eras_and_leap_days() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_868_800_000), "2000-03-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_709_164_800_000), "2024-02-29T00:00:00.000Z");
    }

    #[test]
    fn get_prints_raw_data_then_a_newline_then_the_stat() {
        let data = Output::Data {
            path: "/a".into(),
            data: Bytes::from_static(b"color=blue"),
            stat: stat(),
            show_stat: false,
        };
        assert_eq!(text(&data), "color=blue\n");
        let Output::Data { path, data, stat, .. } = data else { unreachable!() };
        let with_stat = Output::Data { path, data, stat, show_stat: true };
        let printed = text(&with_stat);
        assert!(printed.starts_with("color=blue\ncZxid = 0x100000002\n"), "{printed}");
        assert!(printed.ends_with("numChildren = 0\n"));
    }

    #[test]
    fn text_forms() {
        let created = Output::Created { path: "/app/job-0000000001".into(), stat: stat() };
        assert_eq!(text(&created), "/app/job-0000000001\n");
        let children =
            Output::Children { path: "/app".into(), children: vec!["a".into(), "b".into()] };
        assert_eq!(text(&children), "a\nb\n");
        let subtree =
            Output::Subtree { path: "/a".into(), paths: vec!["/a".into(), "/a/b".into()] };
        assert_eq!(text(&subtree), "/a\n/a/b\n");
        assert_eq!(text(&Output::Exists { path: "/a".into(), stat: Some(stat()) }), "true\n");
        assert_eq!(text(&Output::Exists { path: "/a".into(), stat: None }), "false\n");
        assert_eq!(
            text(&Output::Synced { path: "/".into(), zxid: 0x1_0000_0007 }),
            "0x100000007\n"
        );
        assert_eq!(text(&Output::Updated { path: "/a".into(), stat: stat() }), "");
        assert_eq!(text(&Output::Deleted { path: "/a".into(), count: 3 }), "");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Output::Exists { path: "/a".into(), stat: None }.exit_code(), 1);
        assert_eq!(Output::Exists { path: "/a".into(), stat: Some(stat()) }.exit_code(), 0);
        assert_eq!(Output::Deleted { path: "/a".into(), count: 1 }.exit_code(), 0);
    }

    #[test]
    fn json_stat_uses_the_proto_field_names() {
        let value = stat_json(&stat());
        let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = [
            "czxid",
            "mzxid",
            "pzxid",
            "ctime",
            "mtime",
            "version",
            "cversion",
            "aversion",
            "ephemeral_owner",
            "data_length",
            "num_children",
        ];
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(value["czxid"], 0x1_0000_0002u64);
        assert_eq!(value["ctime"], 1_700_000_000_123i64);
    }

    #[test]
    fn json_data_is_text_when_it_can_be_and_hex_otherwise() {
        let utf8 = Output::Data {
            path: "/a".into(),
            data: Bytes::from_static(b"hi"),
            stat: stat(),
            show_stat: false,
        };
        let value = utf8.to_json();
        assert_eq!(value["data"], "hi");
        assert!(value.get("data_hex").is_none());
        assert_eq!(value["path"], "/a");
        assert_eq!(value["stat"]["version"], 1);
        let binary = Output::Data {
            path: "/b".into(),
            data: Bytes::from_static(&[0xff, 0x00, 0x10]),
            stat: stat(),
            show_stat: false,
        };
        let value = binary.to_json();
        assert_eq!(value["data_hex"], "ff0010");
        assert!(value.get("data").is_none());
    }

    #[test]
    fn json_shapes() {
        let exists = Output::Exists { path: "/a".into(), stat: None }.to_json();
        assert_eq!(exists, json!({ "path": "/a", "exists": false, "stat": null }));
        let deleted = Output::Deleted { path: "/a".into(), count: 4 }.to_json();
        assert_eq!(deleted, json!({ "path": "/a", "deleted": 4 }));
        let ls = Output::Children { path: "/".into(), children: vec!["a".into()] }.to_json();
        assert_eq!(ls, json!({ "path": "/", "children": ["a"] }));
        let tree = Output::Subtree { path: "/a".into(), paths: vec!["/a".into()] }.to_json();
        assert_eq!(tree, json!({ "path": "/a", "paths": ["/a"] }));
        let synced = Output::Synced { path: "/".into(), zxid: 5 }.to_json();
        assert_eq!(synced, json!({ "path": "/", "zxid": 5 }));
        let created = Output::Created { path: "/n".into(), stat: stat() }.to_json();
        assert_eq!(created["path"], "/n");
        assert_eq!(created["stat"]["data_length"], 10);
    }
}
