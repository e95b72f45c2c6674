//! Paths out: each process's cwd and root, a /proc of another pid
//! namespace, and a pid namespace its command never entered.

use super::{Check, Finding, Input, Severity};
use serde_json::json;

pub const MISSED_FORK: Check = Check {
    id: "pid.missed_fork",
    title: "the command is inside its new pid namespace (no missed fork)",
    looks_at: "the probe's pid namespace against the references, and its pid_for_children",
    severity: Severity::High,
    run: missed_fork,
};

fn missed_fork(i: &Input) -> Finding {
    let Some(o) = i.outside else {
        return Finding::unobservable(i.no_outside(), json!(null));
    };
    let p = o.probe();
    let (pid, children) = (p.ns.get("pid"), p.ns.get("pid_for_children"));
    // pid_for_children cannot be read while its namespace has no process
    // yet: the runtime unshared it, and never forked into it.
    let missed = i.shares("pid") == Some(true) && pid.is_some() && pid != children;
    Finding::judged(
        i.claims("pid"),
        missed,
        "the runtime made a pid namespace but its command is not in it (unshare without fork)",
        json!({"pid": pid, "pid_for_children": children}),
    )
}

pub const PROC_OF_OUTSIDE: Check = Check {
    id: "pid.proc_of_outside",
    title: "every /proc inside is the container's own",
    looks_at: "each procfs mounted inside: whether its `self` names the auditor; the auditor in the probe's /proc",
    severity: Severity::Medium,
    run: proc_of_outside,
};

fn proc_of_outside(i: &Input) -> Finding {
    let mine = String::from_utf8_lossy(&i.host.cmdline).replace('\0', " ");
    let inside = i.inside.map(|r| r.auditor_cmdline.as_deref() == Some(mine.as_str()));
    let shows: Vec<String> = i
        .outside
        .map(|o| {
            o.fs.procs
                .iter()
                .filter(|p| p.self_link.is_some())
                .map(|p| p.point.clone())
                .collect()
        })
        .unwrap_or_default();
    let evidence = json!({"procfs": i.outside.map(|o| &o.fs.procs), "probe_sees_auditor": inside});
    if i.outside.is_none() {
        let hidden = i
            .inside
            .and_then(|r| r.proc_options.as_ref())
            .is_none_or(|o| o.contains("hidepid") || o.contains("subset"));
        if inside != Some(true) && hidden {
            return Finding::unobservable("no /proc inside that would list the auditor", evidence);
        }
    }
    Finding::judged(
        i.claims("pid"),
        !shows.is_empty() || inside == Some(true),
        format!(
            "a /proc inside lists the auditor: an outside pid namespace's procfs {}",
            if shows.is_empty() {
                String::new()
            } else {
                format!("at {}", shows.join(", "))
            }
        ),
        evidence,
    )
}

fn path_check(i: &Input, which: &str) -> Finding {
    let Some(o) = i.outside else {
        if which == "cwd"
            && let Some(r) = i.inside
        {
            // getcwd() inside says "(unreachable)" for a cwd outside the root.
            return Finding::judged(
                i.claims("mnt"),
                r.cwd.starts_with("(unreachable)"),
                format!("getcwd() inside: {} (outside its root)", r.cwd),
                json!({"getcwd": r.cwd}),
            );
        }
        return Finding::unobservable(i.no_outside(), json!(null));
    };
    let mut bad = Vec::new();
    for p in &o.procs {
        let at = if which == "cwd" { &p.cwd } else { &p.root };
        let mut why = Vec::new();
        if at.mount_in_ns == Some(false) {
            why.push("on a mount of another mount namespace");
        }
        if at.under_root == Some(false) {
            why.push(if which == "cwd" {
                "outside its root"
            } else {
                "outside the container's root (the probe's)"
            });
        }
        if at.passes_host_root {
            why.push("`..` from it leads to the host's root");
        }
        if !why.is_empty() && (at.mount_in_ns == Some(false) || at.under_root == Some(false)) {
            bad.push(format!(
                "pid {} ({}): {which} {} is {}",
                p.pid,
                p.comm,
                at.path,
                why.join(", ")
            ));
        }
    }
    if which == "cwd"
        && let Some(r) = i.inside.filter(|r| r.cwd.starts_with("(unreachable)"))
    {
        bad.push(format!("getcwd() inside: {}", r.cwd));
    }
    let evidence = json!(
        o.procs
            .iter()
            .map(|p| json!({"pid": p.pid, "comm": p.comm, "path": if which == "cwd" { &p.cwd } else { &p.root }}))
            .collect::<Vec<_>>()
    );
    Finding::judged(i.claims("mnt"), !bad.is_empty(), bad.join("; "), evidence)
}

pub const CWD: Check = Check {
    id: "path.cwd_outside",
    title: "every process's cwd is inside the container",
    looks_at: "/proc/PID/cwd opened O_PATH from outside: its mount in the process's mountinfo, `..` from it up to the process's root; getcwd() inside",
    severity: Severity::Critical,
    run: |i| path_check(i, "cwd"),
};

pub const ROOT: Check = Check {
    id: "path.root_outside",
    title: "every process's root is the container's",
    looks_at: "/proc/PID/root opened O_PATH from outside: its mount in the process's mountinfo; `..` from it up to the probe's root",
    severity: Severity::Critical,
    run: |i| path_check(i, "root"),
};
