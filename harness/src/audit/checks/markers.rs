//! Behaviour: what the probe saw of the markers, and what the IPC and
//! network file systems inside belong to.

use super::{Check, Finding, Input, Severity, Verdict};
use crate::audit::markers::HostNames;
use serde_json::{Value as Json, json};

/// The markers `keys` as the probe saw them: seen (which), or not, or
/// UNOBSERVABLE when none could be looked at.
fn seen(i: &Input, ty: &str, keys: &[&str], what: &str) -> Finding {
    let Some(r) = i.inside else {
        return Finding::skip("not checked: the container started before the audit (--pid)");
    };
    let got: Vec<(&str, Option<bool>)> = keys
        .iter()
        .map(|k| (*k, r.markers.get(*k).copied().flatten()))
        .collect();
    let evidence = json!(
        got.iter()
            .map(|(k, v)| json!({"marker": k, "seen": v}))
            .collect::<Vec<_>>()
    );
    let hits: Vec<&str> = got.iter().filter(|(_, v)| *v == Some(true)).map(|(k, _)| *k).collect();
    if got.iter().all(|(_, v)| v.is_none()) {
        return Finding::unobservable("the probe could not look for these markers", evidence);
    }
    let whose = |k: &&str| {
        if k.starts_with("host.") {
            "the host's"
        } else {
            "the auditor's own"
        }
    };
    let mut f = Finding::judged(
        i.claims(ty),
        !hits.is_empty(),
        format!(
            "{what}: {}",
            hits.iter()
                .map(|k| format!("{} ({k})", whose(k)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        evidence,
    );
    let unseen: Vec<&str> = got.iter().filter(|(_, v)| v.is_none()).map(|(k, _)| *k).collect();
    if f.verdict == Verdict::Ok && !unseen.is_empty() {
        f.detail = format!("not looked for: {}", unseen.join(", "));
    }
    f
}

pub const HOSTNAME: Check = Check {
    id: "uts.hostname_marker",
    title: "the auditor's hostname does not reach the container",
    looks_at: "a hostname the auditor sets in its own uts namespace after the container started",
    severity: Severity::High,
    run: hostname,
};

fn hostname(i: &Input) -> Finding {
    let how = if i.outside.is_some() {
        "read in its uts namespace"
    } else {
        "as the probe reports it"
    };
    let evidence = json!({"set_after_start": crate::audit::markers::AFTER, "how": how});
    match i.hostname_follows {
        None if i.inside.is_none() => Finding::skip("not checked: the container started before the audit (--pid)"),
        None => Finding::unobservable("the container's hostname after the change could not be read", evidence),
        Some(f) => Finding::judged(
            i.claims("uts"),
            f,
            "a hostname the auditor set after start is the container's",
            evidence,
        ),
    }
}

pub const SYSV: Check = Check {
    id: "ipc.sysv_marker",
    title: "no System V queue of the host is visible",
    looks_at: "msgget of the auditor's queue and of the host's (keyed by the audit's token)",
    severity: Severity::High,
    run: |i| {
        seen(
            i,
            "ipc",
            &["fresh.sysv", "host.sysv"],
            "a System V queue outside is visible",
        )
    },
};

pub const MQUEUE: Check = Check {
    id: "ipc.mqueue_marker",
    title: "no POSIX queue of the host is visible",
    looks_at: "mq_open of the auditor's queue and of the host's",
    severity: Severity::High,
    run: |i| {
        seen(
            i,
            "ipc",
            &["fresh.mqueue", "host.mqueue"],
            "a POSIX queue outside opens inside",
        )
    },
};

pub const LINK: Check = Check {
    id: "net.link_marker",
    title: "no network link outside is visible",
    looks_at: "the veth link in the auditor's network namespace, by name",
    severity: Severity::High,
    run: |i| seen(i, "net", &["fresh.link"], "a link outside is visible"),
};

pub const ABSTRACT: Check = Check {
    id: "net.abstract_marker",
    title: "no abstract unix socket outside is reachable",
    looks_at: "connect to the auditor's abstract socket and to the host's",
    severity: Severity::High,
    run: |i| {
        seen(
            i,
            "net",
            &["fresh.abstract", "host.abstract"],
            "an abstract socket outside accepts a connection",
        )
    },
};

/// Whether the container has a namespace of `ty` of its own, from outside
/// (identity) or, for a user-space kernel, always: its IPC and network are
/// the kernel's own.
fn own(i: &Input, ty: &str) -> bool {
    i.shares(ty) != Some(true)
}

pub const DEVSHM: Check = Check {
    id: "ipc.devshm_of_other_ns",
    title: "/dev/shm inside is the container's own",
    looks_at: "the file system of /dev/shm inside (st_dev) against the host's; the host's /dev/shm marker file",
    severity: Severity::Medium,
    run: devshm,
};

fn devshm(i: &Input) -> Finding {
    if !own(i, "ipc") {
        return Finding::skip("the container shares an IPC namespace outside (see ns.ipc)");
    }
    let marker = i.inside.and_then(|r| r.markers.get("host.devshm").copied().flatten());
    let inside_dev = i.outside.and_then(|o| o.fs.shm_dev);
    let evidence = json!({"inside_dev": inside_dev, "host_dev": i.host.shm_dev, "host_marker_seen": marker});
    let same = inside_dev.is_some() && inside_dev == i.host.shm_dev;
    if i.outside.is_none() && marker.is_none() {
        return Finding::unobservable("no /dev/shm inside could be read", evidence);
    }
    Finding::judged(
        i.claims("ipc"),
        same || marker == Some(true),
        "/dev/shm inside is the host's: POSIX shared memory and named semaphores cross the IPC namespace",
        evidence,
    )
}

pub const MQUEUEFS: Check = Check {
    id: "ipc.mqueuefs_of_other_ns",
    title: "/dev/mqueue inside is the container's own",
    looks_at: "the names in /dev/mqueue inside: the host's or the auditor's queue there means another IPC namespace's",
    severity: Severity::Medium,
    run: mqueuefs,
};

fn mqueuefs(i: &Input) -> Finding {
    if !own(i, "ipc") {
        return Finding::skip("the container shares an IPC namespace outside (see ns.ipc)");
    }
    let host = i
        .inside
        .filter(|r| !r.token.is_empty())
        .map(|r| HostNames::of(&r.token).mqueue);
    let names = [Some(crate::audit::markers::MQUEUE.to_string()), host];
    let listed = |l: &Vec<String>| {
        names
            .iter()
            .flatten()
            .any(|n| l.iter().any(|x| x == n.trim_start_matches('/')))
    };
    let outside = i.outside.map(|o| o.fs.mqueue.as_ref().is_some_and(listed));
    let inside = i.inside.map(|r| {
        ["host.mqueuefs", "fresh.mqueuefs"]
            .iter()
            .any(|k| r.markers.get(*k).copied().flatten() == Some(true))
    });
    let evidence = json!({"listed_inside": i.outside.map(|o| &o.fs.mqueue), "probe_saw_marker": inside});
    Finding::judged(
        i.claims("ipc"),
        outside == Some(true) || inside == Some(true),
        "/dev/mqueue inside lists a queue of another IPC namespace",
        evidence,
    )
}

pub const SYSFS: Check = Check {
    id: "net.sysfs_of_other_ns",
    title: "/sys inside shows the container's own network",
    looks_at: "the device of /sys/class/net inside against the host's; the names in it against the links of the container's network namespace",
    severity: Severity::Medium,
    run: sysfs,
};

/// From where, the names in /sys/class/net, the links of the network.
type View<'a> = (&'a str, Option<&'a Vec<String>>, Option<&'a Vec<String>>);

fn sysfs(i: &Input) -> Finding {
    if !own(i, "net") {
        return Finding::skip("the container shares a network namespace outside (see ns.net)");
    }
    // On the host's kernel a sysfs is known by its device: names can agree
    // (an eth0 of the container's own beside the host's), devices cannot.
    if i.outside.is_some()
        && let Some(dev) = i.inside.and_then(|r| r.sysfs_net_dev)
        && i.host.sysfs_net_dev == Some(dev)
    {
        return Finding::judged(
            i.claims("net"),
            true,
            format!("/sys/class/net inside is the host's own sysfs (device {dev}): the host network's links"),
            json!({"sysfs_dev_inside": dev, "sysfs_dev_host": i.host.sysfs_net_dev}),
        );
    }
    let pairs: Vec<View> = [
        i.outside
            .map(|o| ("outside", o.fs.sysfs_net.as_ref(), o.fs.netns_links.as_ref())),
        i.inside.map(|r| ("inside", r.sysfs_net.as_ref(), r.links.as_ref())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let evidence = Json::Array(
        pairs
            .iter()
            .map(|(w, s, l)| json!({"view": w, "sys_class_net": s, "links": l}))
            .collect(),
    );
    if pairs.iter().all(|(_, s, _)| s.is_none()) {
        return Finding::new(Verdict::Ok, "no /sys/class/net inside", evidence);
    }
    let comparable: Vec<(&Vec<String>, &Vec<String>)> =
        pairs.iter().filter_map(|(_, s, l)| Some(((*s)?, (*l)?))).collect();
    if comparable.is_empty() {
        return Finding::unobservable(
            "the links of the container's network namespace could not be read",
            evidence,
        );
    }
    let differ = comparable.iter().any(|(s, l)| s != l);
    Finding::judged(
        i.claims("net"),
        differ,
        "/sys/class/net inside lists links that are not the container's network's (another network namespace's sysfs)",
        evidence,
    )
}
