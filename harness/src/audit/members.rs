//! Which host processes are the container's, which is the probe, and which
//! daemon (if any) started it.

use super::cgroups;
use super::report::Report;
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

pub fn ppid(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis: state, then ppid.
    s.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

pub fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The probe's pid on the host: a process running `... audit --inside`
/// with the report's token (without one, from an OCI config: this binary),
/// whose innermost pid and namespaces are those it reported. None: no host
/// process is the probe (a user-space kernel runs it).
pub fn find_probe(report: &Report, me_exe: &Path) -> Option<i32> {
    let exe = std::fs::metadata(me_exe).ok().map(|m| (m.dev(), m.ino()));
    let me = std::process::id() as i32;
    pids().into_iter().find(|&pid| {
        pid != me && is_probe(pid, report, exe) && innermost_pid(pid) == Some(report.pid) && same_ns(pid, report)
    })
}

fn is_probe(pid: i32, report: &Report, exe: Option<(u64, u64)>) -> bool {
    let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let argv: Vec<&[u8]> = cmd.split(|&b| b == 0).collect();
    if argv.get(1).copied() != Some(super::protocol::ARGS[0].as_bytes())
        || argv.get(2).copied() != Some(super::protocol::ARGS[1].as_bytes())
    {
        return false;
    }
    match argv.iter().position(|w| *w == b"--token") {
        Some(i) => argv.get(i + 1).copied() == Some(report.token.as_bytes()),
        None => {
            report.token.is_empty()
                && std::fs::metadata(format!("/proc/{pid}/exe"))
                    .ok()
                    .map(|m| (m.dev(), m.ino()))
                    == exe
        }
    }
}

fn innermost_pid(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

fn same_ns(pid: i32, report: &Report) -> bool {
    report.ns.iter().all(|(ty, link)| {
        std::fs::read_link(format!("/proc/{pid}/ns/{ty}")).is_ok_and(|l| l.to_string_lossy() == link.as_str())
    })
}

/// The container's processes: those in the probe's pid namespace when it
/// has one of its own (`own_pidns`), else the probe and its descendants;
/// and those in the probe's cgroup when that is the container's alone (not
/// the auditor's, an ancestor of it, or below the audit's own cgroup, where
/// the runtime's processes are; "" for none).
pub fn container(probe: i32, own_pidns: bool, audit_cgroup: &str) -> Vec<i32> {
    let mut out = BTreeSet::from([probe]);
    if own_pidns {
        let ns = |p: i32| std::fs::metadata(format!("/proc/{p}/ns/pid")).ok().map(|m| m.ino());
        let want = ns(probe);
        out.extend(pids().into_iter().filter(|&p| want.is_some() && ns(p) == want));
    } else {
        descendants(probe, &mut out);
    }
    for h in cgroups::hierarchies() {
        let (Some(its), Some(mine)) = (h.path_of(&probe.to_string()), h.path_of("self")) else {
            continue;
        };
        let under = |a: &str, b: &str| a == b || b == "/" || a.starts_with(&format!("{}/", b.trim_end_matches('/')));
        let audit = format!("{}/{audit_cgroup}", mine.trim_end_matches('/'));
        if under(&mine, &its) || (!audit_cgroup.is_empty() && under(&its, &audit)) {
            continue;
        }
        if let Some(dir) = h.dir(&its) {
            out.extend(cgroups::procs(&dir));
        }
    }
    out.into_iter().collect()
}

fn descendants(pid: i32, out: &mut BTreeSet<i32>) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for t in tasks.flatten() {
        let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        for k in kids.split_whitespace().filter_map(|k| k.parse().ok()) {
            if out.insert(k) {
                descendants(k, out);
            }
        }
    }
}

/// The daemons that started the container: its ancestors outside it, when
/// the auditor is not among them (a runtime the audit started is the
/// audit's, daemonized helpers included: the auditor is their subreaper).
/// Left out: init (pid 1), and an ancestor in the container's mount
/// namespace, which is the runtime's own process that moved into the
/// namespaces it made before it forked the container (unshare(1) does),
/// not a daemon that lends it its own.
pub fn daemons(probe: i32, container: &[i32]) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mnt = |p: i32| std::fs::metadata(format!("/proc/{p}/ns/mnt")).ok().map(|m| m.ino());
    let theirs = mnt(probe);
    let mut out = Vec::new();
    let mut p = ppid(probe);
    while let Some(pid) = p.filter(|&p| p > 1) {
        if pid == me {
            return Vec::new();
        }
        if !container.contains(&pid) && (theirs.is_none() || mnt(pid) != theirs) {
            out.push(pid);
        }
        p = ppid(pid);
    }
    out
}
