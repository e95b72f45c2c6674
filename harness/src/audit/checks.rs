//! Claims against what was observed: a row per namespace type, then the
//! leak checks, each named in a runtime user's words.

use super::claims::{Claims, TYPES};
use super::inside::Seen;
use super::view::View;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Isolated as claimed, or a check that found nothing.
    Ok,
    /// Claimed but not isolated; a check that found a way out.
    Leak,
    /// Not claimed and not isolated: as declared.
    Shared,
    /// Claimed, but the runtime has no way to make it.
    Cannot,
    /// Reported, not judged.
    Note,
    /// Could not be checked here.
    Skip,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Leak => "LEAK",
            Verdict::Shared => "SHARED",
            Verdict::Cannot => "CANNOT",
            Verdict::Note => "NOTE",
            Verdict::Skip => "SKIP",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub ty: &'static str,
    pub claimed: bool,
    pub isolated: bool,
    pub verdict: Verdict,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
}

pub struct Input<'a> {
    pub claims: &'a Claims,
    pub cannot: &'a [(&'static str, &'static str)],
    /// The auditor's own view (its namespaces are the "outside").
    pub me: &'a View,
    pub it: &'a View,
    /// The probe's report; None for `--pid`.
    pub seen: Option<&'a Seen>,
    /// /proc inside shows the auditor: (None when there is no /proc inside).
    pub proc_shows_outside: Option<bool>,
    /// A hostname the auditor set after start is the container's (None:
    /// not checked, as with --pid, where the auditor has no uts namespace
    /// of its own to change).
    pub hostname_follows: Option<bool>,
}

pub fn rows(i: &Input) -> Vec<Row> {
    TYPES
        .iter()
        .map(|&ty| {
            let claimed = i.claims.contains(ty);
            let (mine, its) = (i.me.ns.get(ty), i.it.ns.get(ty));
            let isolated = mine.is_some() && its.is_some() && mine != its;
            let cannot = i.cannot.iter().find(|(t, _)| *t == ty).map(|(_, why)| *why);
            let (verdict, detail) = match (claimed, isolated, cannot) {
                (true, true, _) => (Verdict::Ok, String::new()),
                (true, false, Some(why)) => (Verdict::Cannot, why.to_string()),
                (true, false, None) => (Verdict::Leak, "claimed, but the container shares the auditor's".into()),
                (false, false, _) => (Verdict::Shared, String::new()),
                (false, true, _) => (Verdict::Ok, "isolated, though not claimed".into()),
            };
            let detail = match (ty, isolated) {
                ("time", true) => {
                    let o = i.it.timens_offsets.split_whitespace().collect::<Vec<_>>().join(" ");
                    [detail, format!("offsets: {o}")]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join("; ")
                }
                _ => detail,
            };
            Row {
                ty,
                claimed,
                isolated,
                verdict,
                detail,
            }
        })
        .collect()
}

fn same(i: &Input, ty: &str) -> bool {
    i.me.ns.contains_key(ty) && i.me.ns.get(ty) == i.it.ns.get(ty)
}

fn judged(claimed: bool, leak: bool, what: String) -> (Verdict, String) {
    match (leak, claimed) {
        (false, _) => (Verdict::Ok, String::new()),
        (true, true) => (Verdict::Leak, what),
        (true, false) => (Verdict::Shared, what),
    }
}

pub fn checks(i: &Input) -> Vec<Check> {
    let mut out = Vec::new();
    let mut push = |name, (verdict, detail): (Verdict, String)| out.push(Check { name, verdict, detail });
    let claims = |t: &str| i.claims.contains(t);

    // pid: a runtime that unshares but does not fork leaves its command outside.
    let missed = same(i, "pid") && i.it.ns.get("pid_for_children") != i.me.ns.get("pid_for_children");
    push(
        "the process is inside its new pid namespace (no missed fork)",
        judged(
            claims("pid"),
            missed,
            "the runtime made a pid namespace but its command is not in it (unshare without fork)".into(),
        ),
    );
    push(
        "/proc inside shows only the container's processes",
        match i.proc_shows_outside {
            None => (Verdict::Ok, "no /proc inside".into()),
            Some(shows) => judged(
                claims("pid"),
                shows,
                "/proc inside lists the auditor: it is the outside pid namespace's /proc (no fresh /proc)".into(),
            ),
        },
    );

    // user: the maps the runtime wrote.
    if same(i, "user") {
        push(
            "id maps: root inside is not root outside",
            (Verdict::Skip, "no user namespace".into()),
        );
        push(
            "id maps: not the whole id range",
            (Verdict::Skip, "no user namespace".into()),
        );
    } else {
        let maps = format!("{}{}", i.it.uid_map, i.it.gid_map);
        let lines: Vec<Vec<u64>> = maps
            .lines()
            .map(|l| l.split_whitespace().filter_map(|w| w.parse().ok()).collect())
            .filter(|v: &Vec<u64>| v.len() == 3)
            .collect();
        let root = lines.iter().any(|v| v[0] == 0 && v[1] == 0);
        let full = lines.iter().any(|v| v[2] >= 4_294_967_295);
        let show = i.it.uid_map.split_whitespace().collect::<Vec<_>>().join(" ");
        push(
            "id maps: root inside is not root outside",
            judged(
                claims("user"),
                root,
                format!("uid 0 inside is uid 0 outside (uid_map: {show})"),
            ),
        );
        push(
            "id maps: not the whole id range",
            judged(
                claims("user"),
                full,
                format!("the full id range is mapped (uid_map: {show})"),
            ),
        );
        push("setgroups", (Verdict::Note, i.it.setgroups.clone()));
    }

    // Markers planted outside before start.
    let marker = |name: &str| {
        i.seen
            .and_then(|s| s.markers.iter().find(|(m, _)| m == name).map(|(_, v)| *v))
    };
    push(
        "hostname set outside after start is not seen inside",
        match i.hostname_follows {
            None => (Verdict::Skip, "not checked (--pid)".into()),
            Some(f) => judged(
                claims("uts"),
                f,
                "the hostname the auditor set after start is the container's".into(),
            ),
        },
    );
    for (key, ty, name, what) in [
        (
            "sysv",
            "ipc",
            "System V IPC object outside is not visible inside",
            "the auditor's System V message queue key is visible",
        ),
        (
            "mqueue",
            "ipc",
            "POSIX message queue outside is not visible inside",
            "the auditor's POSIX queue opens inside",
        ),
        (
            "link",
            "net",
            "network link outside is not visible inside",
            "the auditor's veth link is visible inside",
        ),
        (
            "abstract",
            "net",
            "abstract unix socket outside is not reachable inside",
            "the auditor's abstract socket accepts a connection",
        ),
    ] {
        push(
            name,
            match marker(key) {
                None => (
                    Verdict::Skip,
                    "not checked: the container started before the audit (--pid)".into(),
                ),
                Some(seen) => judged(claims(ty), seen, what.into()),
            },
        );
    }

    // Mounts: peer groups shared with the auditor's propagate both ways;
    // slaves of the auditor's groups receive its later mounts.
    if same(i, "mnt") {
        push(
            "mounts made inside do not appear outside",
            (Verdict::Skip, "same mount namespace".into()),
        );
        push(
            "mounts made outside after start do not appear inside",
            (Verdict::Skip, "same mount namespace".into()),
        );
    } else {
        let groups: BTreeSet<u32> = i.me.mounts.iter().filter_map(|m| m.shared).collect();
        let peers: Vec<&str> =
            i.it.mounts
                .iter()
                .filter(|m| m.shared.is_some_and(|g| groups.contains(&g)))
                .map(|m| m.point.as_str())
                .collect();
        let slaves: Vec<&str> =
            i.it.mounts
                .iter()
                .filter(|m| m.master.is_some_and(|g| groups.contains(&g)))
                .map(|m| m.point.as_str())
                .collect();
        let list = |v: &[&str]| {
            // Stacked mounts (nspawn's /run/host/os-release) once each.
            let mut v = v.to_vec();
            v.sort_unstable();
            v.dedup();
            let n = v.len();
            let mut s = v.iter().take(3).copied().collect::<Vec<_>>().join(", ");
            if n > 3 {
                s.push_str(&format!(" and {} more", n - 3));
            }
            s
        };
        push(
            "mounts made inside do not appear outside",
            judged(
                claims("mnt"),
                !peers.is_empty(),
                format!("shared propagation with the host: {}", list(&peers)),
            ),
        );
        push(
            "mounts made outside after start do not appear inside",
            if slaves.is_empty() {
                (Verdict::Ok, String::new())
            } else {
                (
                    Verdict::Note,
                    format!("receives the host's mounts (slave): {}", list(&slaves)),
                )
            },
        );
    }

    // cgroup: the path the process sees.
    // Every hierarchy's path: a v1 controller may show what v2 does not.
    let paths: Vec<&str> = i.it.cgroup.lines().filter_map(|l| l.splitn(3, ':').nth(2)).collect();
    let mut bad: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|p| p.starts_with("/..") || (same(i, "cgroup") && *p != "/"))
        .collect();
    // Each path once: a runtime puts every v1 controller at the same path.
    bad.sort_unstable();
    bad.dedup();
    push(
        "cgroup path is rooted at the container's cgroup",
        if paths.is_empty() {
            (Verdict::Skip, "no cgroup path".into())
        } else {
            judged(
                claims("cgroup"),
                !bad.is_empty(),
                format!("the container sees the host's cgroup path {}", bad.join(", ")),
            )
        },
    );

    // Inherited fds that lead outside.
    let it_mounts: BTreeSet<u32> = i.it.mounts.iter().map(|m| m.id).collect();
    let mut leaks = Vec::new();
    for f in &i.it.fds {
        let nsfs = TYPES.iter().find_map(|t| {
            let ino: u64 = f
                .link
                .strip_prefix(&format!("{t}:["))?
                .strip_suffix(']')?
                .parse()
                .ok()?;
            Some((*t, ino))
        });
        if let Some((t, ino)) = nsfs {
            if i.it.ns.get(t) != Some(&ino) {
                let whose = if i.me.ns.get(t) == Some(&ino) {
                    "the host's"
                } else {
                    "another"
                };
                leaks.push(format!("fd {} is {whose} {t} namespace", f.n));
            }
        } else if f.link.starts_with("socket:") {
            if f.sock_netns.is_some() && f.sock_netns != i.it.ns.get("net").copied() && !same(i, "net") {
                leaks.push(format!("fd {} is a socket in the host's network namespace", f.n));
            }
        } else if f.link.starts_with('/') && !same(i, "mnt") && f.mnt_id.is_some_and(|m| !it_mounts.contains(&m)) {
            leaks.push(format!("fd {} leads to {} in the host's mount namespace", f.n, f.link));
        }
    }
    push(
        "no inherited fd leads outside",
        if leaks.is_empty() {
            (Verdict::Ok, String::new())
        } else {
            (Verdict::Leak, leaks.join("; "))
        },
    );

    // Reported, not judged.
    let ncap = i.it.cap_eff.count_ones();
    push(
        "capabilities in the host's user namespace",
        if same(i, "user") && ncap > 0 {
            (
                Verdict::Note,
                format!("{ncap} capabilities (CapEff {:016x})", i.it.cap_eff),
            )
        } else {
            (Verdict::Ok, "none".into())
        },
    );
    push(
        "no_new_privs, seccomp",
        (
            Verdict::Note,
            format!("no_new_privs {}, seccomp {}", i.it.no_new_privs, i.it.seccomp),
        ),
    );
    out
}
