//! Data-driven golden tests of the protocol's phases: each file in `testdata/`
//! is a script of commands against a scripted `World` (no random faults; messages
//! move only when the script says so), each followed by the output it must print.
//!
//! ```text
//! # a comment
//! command args
//! ----
//! expected output
//! (blank line)
//! ```
//!
//! `SIM_REWRITE=1 cargo test -p baton-quorum --test sim golden` rewrites the
//! expected outputs from what the code prints (review the diff before committing).
//!
//! Commands: `ensemble N`, `elect`, `tick [N]`, `settle`, `propose V...` (on the
//! leader, then settle), `propose-on ID V`, `deliver`/`drop` with filters
//! `from=ID to=ID kind=NAME`, `crash ID`, `start ID`, `isolate ID`, `rejoin ID`,
//! `snapshot ID`, `lose ID COUNT` (the disk of a member that is down loses its last COUNT logged entries), `status`, `applied ID`, `log ID`, `wire`.

use std::fmt::Write as _;

use baton_quorum::{
    Zxid,
    zab::{Envelope, Message, Role},
};

use crate::world::World;

fn z(zxid: Zxid) -> String {
    format!("{}.{}", zxid.epoch(), zxid.counter())
}

/// A message in one line, zxids as `epoch.counter`.
fn show(envelope: &Envelope) -> String {
    let body = match &envelope.message {
        Message::Vote { round, leader, leader_zxid, leader_epoch, looking, damaged } => format!(
            "Vote round={round} leader={leader} zxid={} epoch={leader_epoch}{}{}",
            z(*leader_zxid),
            if *looking { " looking" } else { "" },
            if *damaged { " damaged" } else { "" }
        ),
        Message::FollowerInfo { accepted_epoch, last_zxid } => {
            format!("FollowerInfo accepted={accepted_epoch} last={}", z(*last_zxid))
        }
        Message::LeaderInfo { epoch } => format!("LeaderInfo epoch={epoch}"),
        Message::AckEpoch { current_epoch, last_zxid, damaged } => format!(
            "AckEpoch current={current_epoch} last={}{}",
            z(*last_zxid),
            if *damaged { " damaged" } else { "" }
        ),
        Message::Trunc { epoch, zxid } => format!("Trunc epoch={epoch} zxid={}", z(*zxid)),
        Message::Diff { epoch, prev, entries } => {
            let zxids: Vec<String> = entries.iter().map(|e| z(e.zxid)).collect();
            format!("Diff epoch={epoch} prev={} [{}]", z(*prev), zxids.join(" "))
        }
        Message::Snap { epoch, zxid, .. } => format!("Snap epoch={epoch} zxid={}", z(*zxid)),
        Message::NewLeader { epoch, last_zxid } => {
            format!("NewLeader epoch={epoch} last={}", z(*last_zxid))
        }
        Message::AckNewLeader { epoch, last_zxid } => {
            format!("AckNewLeader epoch={epoch} last={}", z(*last_zxid))
        }
        Message::UpToDate { epoch, committed } => {
            format!("UpToDate epoch={epoch} committed={}", z(*committed))
        }
        Message::Propose { entry } => format!("Propose {}", z(entry.zxid)),
        Message::Ack { zxid } => format!("Ack {}", z(*zxid)),
        Message::Commit { epoch, zxid } => format!("Commit epoch={epoch} zxid={}", z(*zxid)),
        Message::Ping { epoch, committed } => {
            format!("Ping epoch={epoch} committed={}", z(*committed))
        }
        Message::PingAck { epoch, last_zxid } => {
            format!("PingAck epoch={epoch} last={}", z(*last_zxid))
        }
        Message::TakeOver { epoch, leader, zxid } => {
            format!("TakeOver epoch={epoch} leader={leader} zxid={}", z(*zxid))
        }
        Message::ReadIndex { ctx } => format!("ReadIndex ctx={ctx}"),
        Message::ReadIndexReply { ctx, index } => {
            format!("ReadIndexReply ctx={ctx} index={}", z(*index))
        }
        Message::ReadProbe { epoch, round } => format!("ReadProbe epoch={epoch} round={round}"),
        Message::ReadProbeAck { epoch, round } => {
            format!("ReadProbeAck epoch={epoch} round={round}")
        }
    };
    format!("{}->{} {body}", envelope.from, envelope.to)
}

fn kind(message: &Message) -> &'static str {
    match message {
        Message::Vote { .. } => "Vote",
        Message::FollowerInfo { .. } => "FollowerInfo",
        Message::LeaderInfo { .. } => "LeaderInfo",
        Message::AckEpoch { .. } => "AckEpoch",
        Message::Trunc { .. } => "Trunc",
        Message::Diff { .. } => "Diff",
        Message::Snap { .. } => "Snap",
        Message::NewLeader { .. } => "NewLeader",
        Message::AckNewLeader { .. } => "AckNewLeader",
        Message::UpToDate { .. } => "UpToDate",
        Message::Propose { .. } => "Propose",
        Message::Ack { .. } => "Ack",
        Message::Commit { .. } => "Commit",
        Message::Ping { .. } => "Ping",
        Message::PingAck { .. } => "PingAck",
        Message::TakeOver { .. } => "TakeOver",
        Message::ReadIndex { .. } => "ReadIndex",
        Message::ReadIndexReply { .. } => "ReadIndexReply",
        Message::ReadProbe { .. } => "ReadProbe",
        Message::ReadProbeAck { .. } => "ReadProbeAck",
    }
}

/// `from=ID to=ID kind=NAME` filters; every given one must match.
fn matches(envelope: &Envelope, filters: &[&str]) -> Result<bool, String> {
    for filter in filters {
        let (key, value) = filter.split_once('=').ok_or(format!("bad filter {filter}"))?;
        let ok = match key {
            "from" => envelope.from.to_string() == value,
            "to" => envelope.to.to_string() == value,
            "kind" => kind(&envelope.message) == value,
            _ => return Err(format!("unknown filter {key}")),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

struct Runner {
    world: Option<World>,
}

impl Runner {
    fn world(&mut self) -> Result<&mut World, String> {
        self.world.as_mut().ok_or_else(|| "no ensemble yet".to_string())
    }

    fn members(&mut self) -> Result<u64, String> {
        Ok(self.world()?.member_count())
    }

    fn run(&mut self, line: &str) -> Result<String, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (command, args) = words.split_first().ok_or("empty command")?;
        let id = |i: usize| -> Result<u64, String> {
            args.get(i).ok_or("missing member id")?.parse().map_err(|e| format!("{e}"))
        };
        let mut out = String::new();
        match *command {
            "ensemble" => {
                self.world = Some(World::scripted(id(0)?));
            }
            "elect" => {
                let world = self.world()?;
                for _ in 0..60 {
                    world.settle_round();
                    if world.stable_leader().is_some() {
                        break;
                    }
                }
                let leader = world.stable_leader().ok_or("no stable leader after 60 ticks")?;
                let epoch = world.status(leader).map_or(0, |s| s.current_epoch);
                writeln!(out, "leader {leader} epoch {epoch}").ok();
            }
            "tick" => {
                let n =
                    args.first().map_or(Ok(1), |a| a.parse::<u32>()).map_err(|e| e.to_string())?;
                let world = self.world()?;
                for _ in 0..n {
                    world.settle_round();
                }
            }
            "settle" => self.settle()?,
            "propose" => {
                let world = self.world()?;
                let leader = world.leader().ok_or("no leader")?;
                for value in args {
                    let zxid = world.propose_on(leader, value)?;
                    writeln!(out, "{value} -> {}", z(zxid)).ok();
                }
                self.settle()?;
            }
            "propose-on" => {
                let value = args.get(1).ok_or("missing value")?;
                match self.world()?.propose_on(id(0)?, value) {
                    Ok(zxid) => writeln!(out, "{value} -> {}", z(zxid)).ok(),
                    Err(error) => writeln!(out, "error: {error}").ok(),
                };
            }
            "deliver" | "drop" => {
                let world = self.world()?;
                let mut index = 0;
                while index < world.wire().len() {
                    if matches(&world.wire()[index], args)? {
                        let envelope = world.wire().remove(index).expect("index within the wire");
                        writeln!(out, "{}", show(&envelope)).ok();
                        if *command == "deliver" {
                            world.deliver(envelope);
                            world.check_step();
                            index = 0;
                        }
                    } else {
                        index += 1;
                    }
                }
            }
            "wire" => {
                for envelope in self.world()?.wire().iter() {
                    writeln!(out, "{}", show(envelope)).ok();
                }
            }
            "crash" => self.world()?.crash(id(0)?),
            "start" => self.world()?.start(id(0)?),
            "isolate" => self.world()?.isolate(id(0)?, true),
            "rejoin" => self.world()?.isolate(id(0)?, false),
            "snapshot" => self.world()?.snapshot_member(id(0)?),
            "lose" => {
                let count =
                    args.get(1).ok_or("missing count")?.parse().map_err(|e| format!("{e}"))?;
                self.world()?.lose_logged(id(0)?, count);
            }
            "status" => {
                for member in 1..=self.members()? {
                    let world = self.world()?;
                    let Some(s) = world.status(member) else {
                        writeln!(out, "{member}: down").ok();
                        continue;
                    };
                    let role = match s.role {
                        Role::Looking => "looking".to_string(),
                        Role::Following { leader } => format!("following {leader}"),
                        Role::Leading => "leading".to_string(),
                    };
                    let phase = if s.broadcasting { " broadcasting" } else { "" };
                    let damaged = if s.damaged { " damaged" } else { "" };
                    writeln!(
                        out,
                        "{member}: {role}{phase}{damaged} accepted={} current={} logged={} committed={} applied={}",
                        s.accepted_epoch,
                        s.current_epoch,
                        z(s.last_logged),
                        z(s.committed),
                        z(s.applied)
                    )
                    .ok();
                }
            }
            "applied" => {
                let (applied, _) = self.world()?.contents(id(0)?);
                writeln!(out, "{}: [{}]", id(0)?, applied.join(" ")).ok();
            }
            "log" => {
                let member = id(0)?;
                let world = self.world()?;
                let (_, log) = world.contents(member);
                let entries: Vec<String> =
                    log.iter().map(|(zx, v)| format!("{}={v}", z(*zx))).collect();
                let snapshot = if world.has_snapshot(member) { " (+snapshot)" } else { "" };
                writeln!(out, "{member}: [{}]{snapshot}", entries.join(" ")).ok();
            }
            other => return Err(format!("unknown command {other}")),
        }
        Ok(out)
    }

    /// Delivers every message in flight, in order, until none is left (no time passes).
    fn settle(&mut self) -> Result<(), String> {
        let world = self.world()?;
        for _ in 0..100_000 {
            if world.wire().is_empty() {
                return Ok(());
            }
            let envelope = world.wire().pop_front().expect("not empty");
            world.deliver(envelope);
            world.check_step();
        }
        Err("the ensemble does not settle".into())
    }
}

/// One file: returns the rewritten text and the mismatches.
fn run_file(text: &str, name: &str) -> (String, Vec<String>) {
    let mut runner = Runner { world: None };
    let mut rewritten = String::new();
    let mut failures = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((number, line)) = lines.next() {
        if line.trim().is_empty() || line.starts_with('#') {
            rewritten.push_str(line);
            rewritten.push('\n');
            continue;
        }
        let command = line;
        let mut expected = String::new();
        match lines.next() {
            Some((_, "----")) => {}
            _ => {
                failures.push(format!("{name}:{}: `{command}` lacks its ---- line", number + 1));
                break;
            }
        }
        while let Some((_, out)) = lines.peek() {
            if out.is_empty() {
                break;
            }
            expected.push_str(out);
            expected.push('\n');
            lines.next();
        }
        let actual = runner.run(command).unwrap_or_else(|error| format!("error: {error}\n"));
        if actual != expected {
            failures.push(format!(
                "{name}:{}: {command}\n--- expected\n{expected}--- actual\n{actual}",
                number + 1
            ));
        }
        rewritten.push_str(command);
        rewritten.push_str("\n----\n");
        rewritten.push_str(&actual);
    }
    (rewritten, failures)
}

#[test]
fn golden_phases() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sim/testdata");
    let rewrite = std::env::var("SIM_REWRITE").is_ok();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scripts in {}", dir.display());
    let mut failures = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read script");
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (rewritten, mut failed) = run_file(&text, &name);
        if rewrite {
            std::fs::write(&path, rewritten).expect("rewrite script");
        } else {
            failures.append(&mut failed);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
