//! The container's mounts: propagation with the host, the host's root
//! file system, disks, control sockets and cgroupfs inside, and the cgroup
//! path it sees.

use super::{Check, Finding, Input, Severity, Verdict};
use crate::audit::outside::Outside;
use serde_json::json;
use std::collections::BTreeSet;

/// A container process owns the host's root files (host uid or gid 0) or
/// holds capabilities in the host's user namespace.
pub fn privileged(i: &Input, o: &Outside) -> bool {
    let host = i.host.start.ns.get("user");
    o.procs
        .iter()
        .any(|p| p.host_root() || (p.ns.get("user") == host && p.reachable_caps() != 0))
}

/// Mount points, each once, the first three and a count.
fn list(points: &[&str]) -> String {
    let mut v = points.to_vec();
    v.sort_unstable();
    v.dedup();
    let n = v.len();
    let mut s = v.iter().take(3).copied().collect::<Vec<_>>().join(", ");
    if n > 3 {
        s.push_str(&format!(" and {} more", n - 3));
    }
    s
}

/// The container's mounts in a peer group of a reference's (shared), or
/// receiving from one (slave).
fn propagation(i: &Input, o: &Outside, slave: bool) -> Vec<String> {
    let groups: BTreeSet<u32> = i.refs.iter().flat_map(|r| r.groups.iter().copied()).collect();
    o.mounts
        .iter()
        .filter(|m| {
            let g = if slave { m.group("master:") } else { m.group("shared:") };
            g.is_some_and(|g| groups.contains(&g))
        })
        .map(|m| m.mount_point.clone())
        .collect()
}

pub const SHARED_PROPAGATION: Check = Check {
    id: "mnt.shared_propagation",
    title: "mounts do not propagate between the container and the host",
    looks_at: "the container's mounts in a peer group (shared:N) of the host's, the auditor's or a daemon's mounts",
    severity: Severity::High,
    run: shared_propagation,
};

fn shared_propagation(i: &Input) -> Finding {
    let Some(o) = i.outside else {
        return Finding::unobservable(i.no_outside(), json!(null));
    };
    if i.shares("mnt") == Some(true) {
        return Finding::skip("the container shares a mount namespace outside (see ns.mnt)");
    }
    let peers = propagation(i, o, false);
    let shown: Vec<&str> = peers.iter().map(String::as_str).collect();
    Finding::judged(
        i.claims("mnt"),
        !peers.is_empty(),
        format!("shared propagation with the host: {}", list(&shown)),
        json!({"peers": peers}),
    )
}

pub const RECEIVES: Check = Check {
    id: "mnt.receives_host_mounts",
    title: "mounts made outside after start do not reach the container",
    looks_at: "the container's mounts that are slaves (master:N) of the host's, the auditor's or a daemon's peer groups",
    severity: Severity::Info,
    run: receives,
};

fn receives(i: &Input) -> Finding {
    let Some(o) = i.outside else {
        return Finding::unobservable(i.no_outside(), json!(null));
    };
    if i.shares("mnt") == Some(true) {
        return Finding::skip("the container shares a mount namespace outside (see ns.mnt)");
    }
    let slaves = propagation(i, o, true);
    let shown: Vec<&str> = slaves.iter().map(String::as_str).collect();
    if slaves.is_empty() {
        return Finding::ok(json!({"slaves": slaves}));
    }
    Finding::new(
        Verdict::Note,
        format!("receives the host's mounts (slave): {}", list(&shown)),
        json!({"slaves": slaves}),
    )
}

pub const HOST_ROOT_BOUND: Check = Check {
    id: "mnt.host_root_bound",
    title: "the host's root file system is not mounted inside",
    looks_at: "mounts of the file system holding the host's /, at or above the host's root directory (-v /:/host); \
               the janitor's marker file on that file system, under a mount point inside",
    severity: Severity::Critical,
    run: host_root_bound,
};

fn host_root_bound(i: &Input) -> Finding {
    let marked = i.inside.and_then(|r| r.host_root_at.clone());
    let Some(o) = i.outside else {
        return host_root_by_behaviour(i, marked);
    };
    let mut at = o.fs.host_root_mounts.clone();
    at.extend(marked.iter().flatten().cloned());
    at.sort();
    at.dedup();
    let evidence =
        json!({"mount_points": o.fs.host_root_mounts, "marker_under": marked, "host_root_fs": i.host.root_fs});
    if at.is_empty() {
        return Finding::ok(evidence);
    }
    let shown: Vec<&str> = at.iter().map(String::as_str).collect();
    if !privileged(i, o) {
        return Finding::new(
            Verdict::Note,
            format!(
                "the host's root file system is mounted at {}, but no process of the container is root or privileged on the host",
                list(&shown)
            ),
            evidence,
        );
    }
    Finding::judged(
        i.claims("mnt"),
        true,
        format!(
            "the host's root file system is mounted at {}, and the container is root on the host",
            list(&shown)
        ),
        evidence,
    )
}

/// A user-space kernel's container: the marker the janitor put on the
/// host's root file system, under a mount point inside; a LEAK when the
/// probe is root there (root of the user-space kernel reads the host's files
/// as its file server serves them).
fn host_root_by_behaviour(i: &Input, marked: Option<Vec<String>>) -> Finding {
    let Some(at) = marked else {
        return Finding::unobservable(
            format!("{}; no mount points inside to look under", i.no_outside()),
            json!(null),
        );
    };
    let root = i
        .inside
        .and_then(|r| r.status.get("Uid"))
        .is_some_and(|u| u.split_whitespace().any(|x| x == "0"));
    let evidence = json!({"marker_under": at, "uid_inside": i.inside.and_then(|r| r.status.get("Uid"))});
    if at.is_empty() {
        return Finding::new(
            Verdict::Ok,
            "by behaviour: the host's root file system marker shows under no mount point",
            evidence,
        );
    }
    let shown: Vec<&str> = at.iter().map(String::as_str).collect();
    if !root {
        return Finding::new(
            Verdict::Note,
            format!(
                "by behaviour: the host's root file system shows at {}, to a probe that is not root",
                list(&shown)
            ),
            evidence,
        );
    }
    Finding::judged(
        i.claims("mnt"),
        true,
        format!(
            "by behaviour: the host's root file system shows at {}, and the probe is root",
            list(&shown)
        ),
        evidence,
    )
}

pub const HOST_DISKS: Check = Check {
    id: "dev.host_disks",
    title: "no device node of the host's disks can be opened inside",
    looks_at: "block devices under /dev inside whose major:minor is one of the host's disks, and who could open them",
    severity: Severity::Critical,
    run: host_disks,
};

fn host_disks(i: &Input) -> Finding {
    let Some(o) = i.outside else {
        return Finding::unobservable(i.no_outside(), json!(null));
    };
    let evidence = json!({"nodes": o.fs.disks, "host_disks": i.host.disks});
    let open: Vec<String> =
        o.fs.disks
            .iter()
            .filter(|d| d.openable)
            .map(|d| format!("{} ({})", d.path, d.rdev))
            .collect();
    if !open.is_empty() {
        return Finding::judged(
            i.any_claim(),
            true,
            format!("the host's disks can be opened inside: {}", open.join(", ")),
            evidence,
        );
    }
    if o.fs.disks.is_empty() {
        return Finding::ok(evidence);
    }
    let shut: Vec<&str> = o.fs.disks.iter().map(|d| d.path.as_str()).collect();
    Finding::new(
        Verdict::Note,
        format!(
            "nodes of the host's disks are present, but no process of the container may open them: {}",
            list(&shut)
        ),
        evidence,
    )
}

pub const CONTROL_SOCKET: Check = Check {
    id: "sock.runtime_control",
    title: "no runtime control socket is bound in",
    looks_at: "mount points inside that are sockets; the host's control sockets (docker.sock, containerd.sock, podman.sock ..., \
               rootless ones, --socket) at their paths inside and below any mount of a host directory holding them, by device \
               and inode; which of them the probe can connect to",
    severity: Severity::Critical,
    run: control_socket,
};

fn control_socket(i: &Input) -> Finding {
    // A socket anyone may connect to (a system bus, a log) answers to its
    // own policy, which sees the caller's host credentials: a way out only
    // for a container privileged on the host (or when that cannot be told).
    let privileged = i.outside.is_none_or(|o| privileged(i, o));
    let outside: Vec<String> = i
        .outside
        .map(|o| {
            o.fs.sockets
                .iter()
                .filter(|s| !s.world || privileged)
                .map(|s| format!("{}: {}", s.path, s.why))
                .collect()
        })
        .unwrap_or_default();
    let inside: Vec<String> = i.inside.map(|r| r.sockets.clone()).unwrap_or_default();
    let evidence = json!({"outside": i.outside.map(|o| &o.fs.sockets), "probe_connected": inside});
    if i.outside.is_none() && i.inside.is_none() {
        return Finding::skip("nothing read");
    }
    let mut found = outside;
    let world_known = |p: &str| {
        i.outside
            .is_some_and(|o| o.fs.sockets.iter().any(|s| s.path == p && s.world))
            || crate::audit::host::WORLD_SOCKETS.contains(&p)
    };
    found.extend(
        inside
            .iter()
            .filter(|p| privileged || !world_known(p))
            .map(|p| format!("{p}: accepts the probe's connection")),
    );
    Finding::judged(
        i.any_claim(),
        !found.is_empty(),
        format!("a control socket is reachable inside: {}", found.join("; ")),
        evidence,
    )
}

pub const CGROUP_PATH: Check = Check {
    id: "cgroup.path_rooted",
    title: "the cgroup path the container sees is its own",
    looks_at: "/proc/PID/cgroup of the probe, read inside its cgroup namespace",
    severity: Severity::Medium,
    run: cgroup_path,
};

fn cgroup_path(i: &Input) -> Finding {
    let Some(o) = i.outside else {
        let ev = i.inside.map(|r| json!({"inside": r.cgroup}));
        return Finding::unobservable(
            format!("{}; its cgroups are the user-space kernel's", i.no_outside()),
            ev.unwrap_or_default(),
        );
    };
    // Every hierarchy's path: a v1 controller may show what v2 does not.
    let paths: Vec<&str> = o
        .cgroup_inside
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .collect();
    let shared = i.shares("cgroup") == Some(true);
    let mut bad: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|p| p.starts_with("/..") || (shared && *p != "/"))
        .collect();
    // Each path once: a runtime puts every v1 controller at the same path.
    bad.sort_unstable();
    bad.dedup();
    let evidence = json!({"seen_inside": o.cgroup_inside});
    if paths.is_empty() {
        return Finding::skip("no cgroup path");
    }
    Finding::judged(
        i.claims("cgroup"),
        !bad.is_empty(),
        format!("the container sees the host's cgroup path {}", bad.join(", ")),
        evidence,
    )
}

pub const CGROUP_WRITABLE: Check = Check {
    id: "cgroup.host_writable",
    title: "no cgroupfs of the host is mounted writable inside",
    looks_at: "cgroup and cgroup2 mounts inside (reachable by path) whose root is a hierarchy's root, without ro",
    severity: Severity::Critical,
    run: cgroup_writable,
};

fn cgroup_writable(i: &Input) -> Finding {
    let Some(o) = i.outside else {
        return Finding::unobservable(i.no_outside(), json!(null));
    };
    let rw: Vec<&str> =
        o.fs.host_cgroups
            .iter()
            .filter(|c| !c.read_only)
            .map(|c| c.point.as_str())
            .collect();
    let evidence = json!({"host_rooted": o.fs.host_cgroups});
    if rw.is_empty() {
        return Finding::ok(evidence);
    }
    if !privileged(i, o) {
        return Finding::new(
            Verdict::Note,
            format!(
                "the host's cgroupfs is mounted writable at {}, but no process of the container is root or privileged on the host",
                list(&rw)
            ),
            evidence,
        );
    }
    Finding::judged(
        i.any_claim(),
        true,
        format!(
            "the host's cgroupfs is mounted writable at {} (release_agent, every cgroup's limits)",
            list(&rw)
        ),
        evidence,
    )
}
