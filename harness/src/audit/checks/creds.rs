//! Credentials as they are: the host's ids of every process of the
//! container (whatever the maps say), the maps over all their lines, and
//! capabilities held in the host's user namespace.

use super::{Check, Finding, Input, Severity, Verdict};
use crate::runner::oci::cap_names;
use serde_json::json;

pub const HOST_ROOT: Check = Check {
    id: "cred.host_root",
    title: "no process of the container is host root",
    looks_at: "Uid:, Gid: (real, effective, saved, fs) and Groups: of every thread of every process of the container in the host's /proc",
    severity: Severity::Critical,
    run: host_root,
};

fn host_root(i: &Input) -> Finding {
    let Some(o) = i.outside else {
        let ids = i
            .inside
            .map(|r| json!({"inside": {"Uid": r.status.get("Uid"), "Gid": r.status.get("Gid")}}));
        return Finding::unobservable(i.no_outside(), ids.unwrap_or_default());
    };
    let evidence = json!(
        o.processes()
            .map(|p| json!({"pid": p.pid, "comm": p.comm, "uid": p.uid, "gid": p.gid, "groups": p.groups}))
            .collect::<Vec<_>>()
    );
    let roots: Vec<String> = o
        .procs
        .iter()
        .filter(|p| p.host_root())
        .map(|p| {
            format!(
                "pid {} ({}) uid {:?} gid {:?} groups {:?}",
                p.pid, p.comm, p.uid, p.gid, p.groups
            )
        })
        .collect();
    Finding::judged(
        i.claims("user"),
        !roots.is_empty(),
        format!("runs as the host's root: {}", roots.join("; ")),
        evidence,
    )
}

/// One line of a uid or gid map: inside, outside, count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapLine {
    pub inside: u64,
    pub outside: u64,
    pub count: u64,
}

pub fn parse_map(text: &str) -> Vec<MapLine> {
    text.lines()
        .filter_map(|l| {
            let v: Vec<u64> = l.split_whitespace().filter_map(|w| w.parse().ok()).collect();
            (v.len() == 3).then(|| MapLine {
                inside: v[0],
                outside: v[1],
                count: v[2],
            })
        })
        .collect()
}

/// Host id 0 is mapped, at any inside id.
pub fn maps_host_root(map: &[MapLine]) -> bool {
    map.iter().any(|l| l.outside == 0 && l.count > 0)
}

/// Near-full: more ids mapped than 2^32 - 2^16 over all lines, or half or
/// more of the host ids from 1 to 65535: the ids of the host's system
/// accounts and users, which no subordinate range handed out holds (a
/// rootless runtime maps one of them, its user's own).
pub fn near_full(map: &[MapLine]) -> bool {
    let total: u64 = map.iter().map(|l| l.count).sum();
    total > (1u64 << 32) - (1u64 << 16) || low_host_ids(map) >= 32768
}

/// How many host ids from 1 to 65535 the map covers, over all its lines
/// (overlapping lines counted once).
fn low_host_ids(map: &[MapLine]) -> u64 {
    let mut spans: Vec<(u64, u64)> = map
        .iter()
        .map(|l| (l.outside.max(1), (l.outside + l.count).min(65536)))
        .filter(|(a, b)| a < b)
        .collect();
    spans.sort_unstable();
    let (mut covered, mut upto) = (0u64, 0u64);
    for (a, b) in spans {
        let a = a.max(upto);
        if b > a {
            covered += b - a;
            upto = b;
        }
    }
    covered
}

/// Inside ids left unmapped below the highest mapped one: (first, last).
pub fn holes(map: &[MapLine]) -> Vec<(u64, u64)> {
    let mut lines = map.to_vec();
    lines.sort_by_key(|l| l.inside);
    let mut next = 0u64;
    let mut out = Vec::new();
    for l in lines {
        if l.inside > next {
            out.push((next, l.inside - 1));
        }
        next = next.max(l.inside + l.count);
    }
    out
}

/// The maps of each user namespace of the container's own (not a
/// reference's): (pid, uid_map, gid_map). None: no outside view.
fn own_maps(i: &Input) -> Option<Vec<(i32, String, String)>> {
    let o = i.outside?;
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for p in o.processes() {
        let Some(u) = p.ns.get("user") else { continue };
        if seen.contains(&u.ino) || i.refs.iter().any(|r| r.ns.get("user").is_some_and(|x| x.ino == u.ino)) {
            continue;
        }
        seen.push(u.ino);
        out.push((p.pid, p.uid_map.clone(), p.gid_map.clone()));
    }
    Some(out)
}

/// A map check over every own user namespace's uid and gid maps.
fn over_maps(i: &Input, found: fn(&[MapLine]) -> bool, what: &str) -> Finding {
    let Some(maps) = own_maps(i) else {
        let ev = i
            .inside
            .map(|r| json!({"inside": {"uid_map": r.uid_map, "gid_map": r.gid_map}}));
        return Finding::unobservable(
            format!("{}; the maps inside are the user-space kernel's own", i.no_outside()),
            ev.unwrap_or_default(),
        );
    };
    if maps.is_empty() {
        return Finding::skip("no user namespace of its own");
    }
    let evidence = json!(
        maps.iter()
            .map(|(p, u, g)| json!({"pid": p, "uid_map": u, "gid_map": g}))
            .collect::<Vec<_>>()
    );
    let bad: Vec<String> = maps
        .iter()
        .flat_map(|(p, u, g)| [(p, "uid", u), (p, "gid", g)])
        .filter(|(_, _, m)| found(&parse_map(m)))
        .map(|(p, k, m)| {
            format!(
                "{k}_map of pid {p}: {}",
                m.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        })
        .collect();
    Finding::judged(
        i.claims("user"),
        !bad.is_empty(),
        format!("{what}: {}", bad.join("; ")),
        evidence,
    )
}

pub const MAP_HOST_ROOT: Check = Check {
    id: "user.map_host_root",
    title: "host root is in no id map",
    looks_at: "every line of the uid and gid maps of the container's user namespaces",
    severity: Severity::Critical,
    run: |i| over_maps(i, maps_host_root, "host id 0 is mapped"),
};

pub const MAP_NEAR_FULL: Check = Check {
    id: "user.map_near_full",
    title: "the maps do not cover (nearly) the whole host id range",
    looks_at: "the uid and gid maps, all lines together: more than 2^32-2^16 ids, or half or more of the host ids 1-65535",
    severity: Severity::High,
    run: |i| over_maps(i, near_full, "the maps cover (nearly) every host id"),
};

pub const MAP_HOLES: Check = Check {
    id: "user.map_holes",
    title: "holes in the id maps",
    looks_at: "inside ids left unmapped below the highest mapped one",
    severity: Severity::Info,
    run: map_holes,
};

fn map_holes(i: &Input) -> Finding {
    let f = over_maps(
        i,
        |m| !holes(m).is_empty(),
        "inside ids map to nothing (they show as the overflow id)",
    );
    match f.verdict {
        Verdict::Leak | Verdict::Shared => Finding {
            verdict: Verdict::Note,
            ..f
        },
        _ => f,
    }
}

pub const SETGROUPS: Check = Check {
    id: "user.setgroups",
    title: "setgroups",
    looks_at: "/proc/PID/setgroups of the probe",
    severity: Severity::Info,
    run: setgroups,
};

fn setgroups(i: &Input) -> Finding {
    let v = match (i.outside, i.inside) {
        (Some(o), _) => o.probe().setgroups.clone(),
        (None, Some(r)) if r.setgroups.is_empty() => "not shown (no /proc/self/setgroups inside)".into(),
        (None, Some(r)) => format!("{} (as the user-space kernel shows it)", r.setgroups),
        _ => return Finding::skip("nothing read"),
    };
    Finding::new(Verdict::Note, v, json!(null))
}

/// Capabilities that undo the claims when held in the host's user
/// namespace, and what each gives.
pub const DANGEROUS: &[(u32, &str)] = &[
    (21, "CAP_SYS_ADMIN: mounts, namespaces of others, much else"),
    (2, "CAP_DAC_READ_SEARCH: open_by_handle_at reads any file of the host"),
    (19, "CAP_SYS_PTRACE: ptrace of processes it can see"),
    (16, "CAP_SYS_MODULE: kernel modules"),
    (12, "CAP_NET_ADMIN: the network it is in"),
    (17, "CAP_SYS_RAWIO: I/O ports, raw devices"),
    (39, "CAP_BPF: BPF programs"),
    (38, "CAP_PERFMON: performance monitoring of the machine"),
    (22, "CAP_SYS_BOOT: reboot where the pid namespace is the host's"),
    (25, "CAP_SYS_TIME: the machine's clock"),
    (33, "CAP_MAC_ADMIN: the LSM's policy"),
    (32, "CAP_MAC_OVERRIDE: the LSM's policy"),
    (34, "CAP_SYSLOG: the kernel's log and addresses"),
];

pub fn dangerous(mask: u64) -> Vec<&'static str> {
    DANGEROUS
        .iter()
        .filter(|(b, _)| mask & (1u64 << b) != 0)
        .map(|(_, what)| *what)
        .collect()
}

pub const CAPS: Check = Check {
    id: "cap.initial_userns",
    title: "no dangerous capability in the host's user namespace",
    looks_at: "CapEff, CapPrm and CapBnd of every process of the container in the host's user namespace",
    severity: Severity::Critical,
    run: caps,
};

fn caps(i: &Input) -> Finding {
    let Some(o) = i.outside else {
        let ev = i
            .inside
            .map(|r| json!({"inside": {"CapEff": r.status.get("CapEff"), "CapBnd": r.status.get("CapBnd")}}));
        return Finding::unobservable(i.no_outside(), ev.unwrap_or_default());
    };
    let host_userns = i.host.start.ns.get("user");
    let held: Vec<_> = o.processes().filter(|p| p.ns.get("user") == host_userns).collect();
    let evidence = json!(held.iter().map(|p| json!({
        "pid": p.pid, "comm": p.comm,
        "CapEff": format!("{:016x}", p.cap_eff), "CapPrm": format!("{:016x}", p.cap_prm), "CapBnd": format!("{:016x}", p.cap_bnd),
        "effective": cap_names(p.cap_eff),
    })).collect::<Vec<_>>());
    let bad: Vec<String> = held
        .iter()
        .filter(|p| !dangerous(p.reachable_caps()).is_empty())
        .map(|p| {
            let later = p.reachable_caps() & !(p.cap_eff | p.cap_prm);
            let how = if later != 0 && !dangerous(later).is_empty() {
                " (some only through an exec as root: it is uid 0 or holds CAP_SETUID, and its bounding set has them)"
            } else {
                ""
            };
            format!(
                "pid {} ({}): {}{how}",
                p.pid,
                p.comm,
                dangerous(p.reachable_caps()).join("; ")
            )
        })
        .collect();
    if !bad.is_empty() {
        return Finding::judged(i.any_claim(), true, bad.join(" | "), evidence);
    }
    let some: Vec<String> = held
        .iter()
        .filter(|p| p.cap_eff | p.cap_prm != 0)
        .map(|p| {
            format!(
                "pid {} ({}): {}",
                p.pid,
                p.comm,
                cap_names(p.cap_eff | p.cap_prm).join(",")
            )
        })
        .collect();
    if some.is_empty() {
        let why = if held.is_empty() {
            "no process in the host's user namespace"
        } else {
            "none"
        };
        return Finding::new(Verdict::Ok, why, evidence);
    }
    Finding::new(Verdict::Note, format!("none dangerous: {}", some.join("; ")), evidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_judged_over_all_their_lines() {
        let m = |s: &str| parse_map(s);
        assert!(maps_host_root(&m("65536 0 1\n0 100000 65536")));
        assert!(!maps_host_root(&m("0 100000 65536")));
        // Every host id but root, over three lines.
        let split = "0 1 1000\n1000 1001 1000000\n1001000 1001001 4293966294";
        assert!(near_full(&m(split)));
        assert!(!maps_host_root(&m(split)));
        // Host ids 1-65535 in two pieces, far fewer than 2^32 in all.
        assert!(near_full(&m("0 1 30000\n30000 30001 35535")));
        assert!(!near_full(&m("0 100000 65536\n65536 1000 1")));
        assert!(!near_full(&m("0 1000 1\n1 100000 65536")));
        // Every host id but one, and every ordinary user's id.
        assert!(near_full(&m("0 1 65534")));
        assert!(near_full(&m("0 1000 65536")));
        assert!(near_full(&m("0 1 20000\n20000 10000 30000")));
        assert_eq!(holes(&m("0 100000 1\n2 100002 10")), vec![(1, 1)]);
        assert!(!near_full(&m("0 100000 65536")));
        assert!(holes(&m("0 100000 65536")).is_empty());
    }

    #[test]
    fn caps_reachable_through_an_exec_as_root() {
        use crate::audit::view::Proc;
        let admin = 1u64 << 21;
        let setuid = 1u64 << 7;
        let p = |uid: u32, prm: u64| Proc {
            uid: vec![uid; 4],
            cap_prm: prm,
            cap_bnd: admin | setuid,
            ..Proc::default()
        };
        // uid 1000 with CAP_SETUID becomes root, and an exec fills its set.
        assert_ne!(p(1000, setuid).reachable_caps() & admin, 0);
        assert_ne!(p(0, 0).reachable_caps() & admin, 0);
        assert_eq!(p(1000, 0).reachable_caps(), 0);
    }
}
