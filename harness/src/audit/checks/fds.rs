//! fds judged by where they lead. Beyond stdio, a directory, a regular
//! file (not a memfd), another namespace's nsfs file, a pidfd of a process
//! outside, a socket of another network namespace or connected to a
//! process outside, a pipe held open by a process outside, a device other
//! than the harmless ones, and the anon inodes that act with their
//! creator's powers (io_uring, fanotify, bpf, perf, userfaultfd, kvm): a
//! way out. Stdio on /dev/null, a pipe, a terminal, a file or a socket is
//! the user's choice: a NOTE; a disk or a raw device is never.

use super::{Check, Finding, Input, Severity, Verdict};
use crate::audit::members::comm;
use crate::audit::openfds::Fd;
use crate::audit::outside::Outside;
use crate::audit::view::Proc;
use serde_json::json;

/// Why fd `f` of `p` leads outside, if it does.
fn leads_out(f: &Fd, p: &Proc, o: &Outside) -> Option<String> {
    let n = f.n;
    match f.kind.as_str() {
        "dir" if f.mount_in_ns == Some(false) => Some(format!(
            "fd {n} is a directory on a mount of another mount namespace ({})",
            f.link
        )),
        "dir" if f.under_root == Some(false) => Some(format!("fd {n} is a directory outside its root ({})", f.link)),
        "file" if n > 2 && f.mount_in_ns == Some(false) => Some(format!(
            "fd {n} is a file on a mount of another mount namespace ({})",
            f.link
        )),
        // Opened before the container began, by whoever could: the
        // container reads (or writes) it with the opener's rights.
        "file" if n > 2 && !f.link.starts_with("/memfd:") => {
            Some(format!("fd {n} is a file the container was handed open ({})", f.link))
        }
        "blk" => Some(format!(
            "fd {n} is a block device ({}, {})",
            f.link,
            f.rdev.as_deref().unwrap_or("?")
        )),
        "chr" if !harmless_device(f.rdev.as_deref()) => Some(format!(
            "fd {n} is the device {} ({})",
            f.link,
            f.rdev.as_deref().unwrap_or("?")
        )),
        "anon_inode" if POWERFUL_ANON.iter().any(|a| f.link.contains(a)) => Some(format!(
            "fd {n} is {}, which acts with the rights of whoever made it",
            f.link
        )),
        "fifo" if n > 2 && !f.holders_outside.is_empty() => Some(format!(
            "fd {n} is a pipe ({}) also held by {}, outside the container",
            f.link,
            f.holders_outside
                .iter()
                .map(|h| format!("pid {h} ({})", comm(*h)))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        "nsfs" => {
            let (ty, ino) = f.link.split_once(":[")?;
            let ino: u64 = ino.trim_end_matches(']').parse().ok()?;
            (p.ns.get(ty).map(|x| x.ino) != Some(ino))
                .then(|| format!("fd {n} is a {ty} namespace not its own ({})", f.link))
        }
        "pidfd" if f.target_inside == Some(false) => {
            let t = f.target.unwrap_or(0);
            Some(format!(
                "fd {n} is a pidfd of pid {t} ({}), outside the container",
                comm(t)
            ))
        }
        "socket" if n > 2 => {
            let own_net = p.ns.get("net").map(|x| x.ino);
            if f.netns.is_some() && f.netns != own_net {
                return Some(format!("fd {n} is a socket in another network namespace"));
            }
            let peer = f.peer.filter(|_| f.peer_inside == Some(false))?;
            (!o.is_member(peer)).then(|| {
                format!(
                    "fd {n} is a socket connected to pid {peer} ({}), outside the container",
                    comm(peer)
                )
            })
        }
        _ => None,
    }
}

/// Character devices a container may hold: /dev/null, zero, full, random,
/// urandom, tty, ptmx, console-less terminals (major 4, 5, 136-143).
fn harmless_device(rdev: Option<&str>) -> bool {
    let Some((major, minor)) = rdev.and_then(|d| d.split_once(':')) else {
        return false;
    };
    (major == "1" && ["3", "5", "7", "8", "9"].contains(&minor)) || terminal(major)
}

/// Terminals: ttys and the console (4, 5), pseudo-terminals (136-143).
fn terminal(major: &str) -> bool {
    ["4", "5", "136", "137", "138", "139", "140", "141", "142", "143"].contains(&major)
}

/// Anon inodes whose operations run with their creator's credentials or
/// reach beyond the holder: an io_uring (registered personalities), a
/// fanotify group (event fds opened by its maker), BPF objects, perf events,
/// userfaultfd and KVM.
const POWERFUL_ANON: &[&str] = &["io_uring", "fanotify", "bpf", "perf_event", "userfaultfd", "kvm"];

pub const OUTSIDE: Check = Check {
    id: "fd.outside",
    title: "no inherited fd leads outside",
    looks_at: "every fd of every process of the container (and of each thread with an fd table of its own): its kind, mount, `..` from a directory, nsfs inode, \
               pidfd's process, socket's network namespace and peer (SO_PEERCRED)",
    severity: Severity::Critical,
    run: outside,
};

fn outside(i: &Input) -> Finding {
    let Some(o) = i.outside else {
        return from_inside(i);
    };
    let mut bad = Vec::new();
    for p in &o.procs {
        for f in &p.fds {
            if let Some(why) = leads_out(f, p, o) {
                bad.push(format!("pid {} ({}): {why}", p.pid, p.comm));
            }
        }
    }
    let evidence = json!(
        o.procs
            .iter()
            .map(|p| json!({"pid": p.pid, "comm": p.comm, "fds": p.fds}))
            .collect::<Vec<_>>()
    );
    let unjudged: Vec<String> = o
        .procs
        .iter()
        .flat_map(|p| {
            p.fds
                .iter()
                .filter(|f| unread(f))
                .map(move |f| format!("pid {} fd {} ({})", p.pid, f.n, f.link))
        })
        .collect();
    if bad.is_empty() && !unjudged.is_empty() {
        return Finding::unobservable(
            format!("where these lead could not be read: {}", unjudged.join(", ")),
            evidence,
        );
    }
    Finding::judged(i.any_claim(), !bad.is_empty(), bad.join("; "), evidence)
}

/// An fd whose way out could not be read: a socket (3 and up) no copy of
/// could be taken, a pidfd whose process is not named, a directory or file
/// whose mount is unknown, an fd whose kind is unknown.
fn unread(f: &Fd) -> bool {
    match f.kind.as_str() {
        "socket" => f.n > 2 && f.copied == Some(false),
        "pidfd" => f.target.is_none(),
        "dir" => f.mnt_id.is_none() || f.under_root.is_none(),
        "file" => f.n > 2 && f.mnt_id.is_none(),
        "other" | "" => true,
        _ => false,
    }
}

/// A user-space kernel's probe: its own fds at start. A directory outside
/// its root is a way out; where anything else beyond stdio leads cannot be
/// seen; with nothing beyond stdio, nothing was inherited.
fn from_inside(i: &Input) -> Finding {
    let Some(r) = i.inside else {
        return Finding::skip("nothing read");
    };
    let evidence = json!(r.fds);
    let out: Vec<String> = r
        .fds
        .iter()
        .filter(|f| f.kind == "dir" && f.under_root == Some(false))
        .map(|f| format!("fd {} is a directory outside its root ({})", f.n, f.link))
        .collect();
    if !out.is_empty() {
        return Finding::judged(i.any_claim(), true, out.join("; "), evidence);
    }
    let beyond: Vec<String> = r
        .fds
        .iter()
        .filter(|f| f.n > 2 || matches!(f.kind.as_str(), "dir" | "nsfs" | "pidfd"))
        .map(|f| format!("fd {} ({})", f.n, f.link))
        .collect();
    if beyond.is_empty() {
        return Finding::new(Verdict::Ok, "nothing beyond stdio was inherited", evidence);
    }
    Finding::unobservable(
        format!("{}; where these lead: {}", i.no_outside(), beyond.join(", ")),
        evidence,
    )
}

/// What a stdio fd is, in a word.
fn stdio_kind(kind: &str, link: &str, rdev: Option<&str>) -> String {
    match (kind, rdev) {
        ("chr", Some("1:3")) => "/dev/null".into(),
        ("chr", Some(d)) if d.split_once(':').is_some_and(|(major, _)| terminal(major)) => {
            format!("a terminal ({link})")
        }
        ("fifo", _) => "a pipe".into(),
        ("file", _) => format!("the file {link}"),
        ("socket", _) => "a socket".into(),
        _ => format!("{kind} {link}"),
    }
}

pub const STDIO: Check = Check {
    id: "fd.stdio",
    title: "stdio",
    looks_at: "fds 0-2 of every process of the container",
    severity: Severity::Info,
    run: stdio,
};

fn stdio(i: &Input) -> Finding {
    let shown: Vec<(i32, i32, String)> = match (i.outside, i.inside) {
        (Some(o), _) => o
            .procs
            .iter()
            .flat_map(|p| {
                p.fds
                    .iter()
                    .filter(|f| f.n <= 2)
                    .map(move |f| (p.pid, f.n, stdio_kind(&f.kind, &f.link, f.rdev.as_deref())))
            })
            .collect(),
        (None, Some(r)) => r
            .fds
            .iter()
            .filter(|f| f.n <= 2)
            .map(|f| (r.pid, f.n, stdio_kind(&f.kind, &f.link, None)))
            .collect(),
        _ => return Finding::skip("nothing read"),
    };
    let evidence = json!(
        shown
            .iter()
            .map(|(p, n, k)| json!({"pid": p, "fd": n, "is": k}))
            .collect::<Vec<_>>()
    );
    if shown.is_empty() {
        return Finding::ok(evidence);
    }
    let mut words: Vec<String> = shown.iter().map(|(_, n, k)| format!("{n}: {k}")).collect();
    words.sort();
    words.dedup();
    Finding::new(Verdict::Note, words.join(", "), evidence)
}
