//! Whether a case can run here: root, kernel features, tools, the runner.
//! The first missing requirement is the reason the trial is ignored.

use super::features::Features;
use super::{Blocked, RunEnv};
use crate::load::Case;
use crate::load::model::{How, ProcSpec};
use crate::load::ns::{Ns, NsLink};
use crate::load::step::{Hierarchy, Op, Step};
use crate::load::walk;
use crate::runner::Runner;
use std::collections::BTreeSet;

/// How a trial that can run here runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunAs {
    /// As the suite runs: root, or the user without capabilities.
    Suite,
    /// Unprivileged runs: as root of a user namespace of the trial's own.
    OwnUserns,
}

pub fn check(case: &Case, dropped: &[Ns], f: &Features, env: &RunEnv, runner: &dyn Runner) -> Result<RunAs, Blocked> {
    let spec = &case.spec;
    // The case's behaviour's first Linux, for the reader: it says nothing of
    // the requirement that blocked, so it stays out of the gate.
    let kernel = spec
        .needs
        .kernel
        .as_deref()
        .map(|k| format!(" (the behaviour is from Linux {k})"))
        .unwrap_or_default();
    let run_as = if env.privileged {
        RunAs::Suite
    } else {
        unprivileged(case, dropped, env)?
    };
    for name in implied_features(case) {
        f.check(&name)
            .map_err(|why| Blocked::new(f.gate(&name), &format!("{why}{kernel}")))?;
    }
    if let Some(what) = unprivileged_userns(case, dropped, env.privileged, run_as) {
        f.check(UNPRIVILEGED_USERNS)
            .map_err(|why| Blocked::new(f.gate(UNPRIVILEGED_USERNS), &format!("{why} ({what})")))?;
    }
    for t in &case.tools {
        if which::which(&t.tool).is_err() {
            return Err(Blocked::new(
                format!("needs the tool `{}`", t.tool),
                &format!(
                    "{}:{}, {}: not found on PATH",
                    crate::load::error::shown(&case.file),
                    t.line,
                    t.field
                ),
            ));
        }
    }
    for t in runner.tools() {
        if which::which(&t).is_err() {
            return Err(Blocked::new(
                format!("runner {} needs the tool `{t}`", runner.name()),
                "not found on PATH",
            ));
        }
    }
    if let Some(why) = runner.unsupported(spec, spec.child.get_ref(), dropped) {
        return Err(Blocked::whole(why));
    }
    for path in &spec.restore {
        writable(path.get_ref()).map_err(|why| Blocked::new(format!("changes {}", path.get_ref()), &why))?;
    }
    Ok(run_as)
}

/// Whether this run can change (and so restore) a global setting: writing its
/// current value back changes nothing and says whether a write is allowed.
fn writable(path: &str) -> Result<(), String> {
    let now = std::fs::read(path).map_err(|e| format!("it cannot be read here: {e}"))?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &now))
        .map_err(|e| format!("this run cannot write it ({e}), so it could not restore it"))
}

/// Features a case needs because of what it does, plus the ones it names.
pub fn implied_features(case: &Case) -> BTreeSet<String> {
    let spec = &case.spec;
    let mut out: BTreeSet<String> = spec.needs.features.iter().map(|f| f.get_ref().clone()).collect();
    for ns in crate::load::namespaces_used(spec) {
        out.insert(ns.feature().to_string());
    }
    for ns in crate::load::uses::nsfs_named(spec) {
        out.insert(ns.nsfs_feature());
    }
    let mut steps_seen = |op: &Op| match op {
        Op::Clone3(a) => {
            out.insert("clone3".into());
            if !a.set_tid.is_empty() {
                out.insert("clone3_set_tid".into());
            }
        }
        Op::Setns(a) if a.pidfd.is_some() => {
            out.insert("setns_pidfd".into());
        }
        Op::Veth(_) => {
            out.insert("veth".into());
        }
        Op::NsHandle(_) | Op::OpenNsHandle(_) => {
            out.insert("nsfs_file_handle".into());
        }
        Op::Listns(_) => {
            out.insert("listns".into());
        }
        // The step compares the threads' /proc/thread-self/ns/uts links.
        Op::ThreadUnshare(_) => {
            out.insert(Ns::Uts.nsfs_feature());
        }
        Op::MountCgroup(a) => {
            out.insert(
                match a.hierarchy {
                    Hierarchy::Nonroot => "cgroup_nonroot",
                    Hierarchy::Unified => "cgroup2",
                }
                .into(),
            );
        }
        Op::Msgget(_) | Op::Shmget(_) | Op::Semget(_) => {
            out.insert("sysvipc".into());
        }
        Op::Pidfd(_) => {
            out.insert("pidfd".into());
        }
        Op::Write(w) if w.path.ends_with("/timens_offsets") => {
            out.insert("timens_offsets".into());
        }
        // Each level a namespace of the type, made by the one before.
        Op::Nest(a) => {
            out.insert(a.namespace.feature().to_string());
        }
        _ => {}
    };
    walk::each_op(spec, &mut steps_seen);
    for p in walk::proc_specs(spec) {
        if p.how == How::Clone3 {
            out.insert("clone3".into());
            if p.clone3.as_ref().is_some_and(|c| !c.set_tid.is_empty()) {
                out.insert("clone3_set_tid".into());
            }
        }
        if p.time_offsets.is_some() {
            out.insert("timens_offsets".into());
        }
    }
    for site in super::procs::sites(spec) {
        for c in site.expect.checks() {
            let key = c.key().to_string();
            if key.contains(NsLink::PidForChildren.file_name()) {
                out.insert("pid_for_children".into());
            }
            if key.contains(NsLink::TimeForChildren.file_name()) {
                out.insert("time_for_children".into());
            }
            if key.starts_with("ipc.") {
                out.insert("sysvipc".into());
                out.insert("proc_sysvipc".into());
            }
            if let Some(ns) = nsfs_observed(&c.key()) {
                out.insert(ns.nsfs_feature());
            }
        }
    }
    out
}

/// The namespace type whose nsfs file an observation reads, if it reads one.
fn nsfs_observed(key: &crate::load::expect::ObsKey) -> Option<Ns> {
    use crate::load::expect::ObsKey;
    match key {
        ObsKey::Ns(l) | ObsKey::NsLinkText(l) | ObsKey::NsStat(l) => Some(l.ns()),
        ObsKey::Seen(_, inner) => nsfs_observed(inner),
        _ => None,
    }
}

/// The feature of creating a user namespace without privilege in the
/// initial one (off with Debian's kernel.unprivileged_userns_clone=0).
const UNPRIVILEGED_USERNS: &str = "userns_unprivileged";

/// Why the case creates a user namespace from a process without privilege
/// in the initial user namespace, if it does: every one in an unprivileged
/// run (its trial's own too), else one made inside a user namespace of the
/// case's own, or after the process dropped its privileges or changed its uid.
fn unprivileged_userns(case: &Case, dropped: &[Ns], privileged: bool, run_as: RunAs) -> Option<String> {
    if run_as == RunAs::OwnUserns {
        return Some("an unprivileged run gives the trial a user namespace of its own".into());
    }
    let enter = |p: &ProcSpec, unpriv: bool| {
        let makes = p.how != How::Setns && p.effective(dropped).contains(&Ns::User);
        if makes && unpriv {
            return Err("a process of the case is created in a new user namespace by an unprivileged one".to_string());
        }
        Ok(unpriv || makes || p.drop_privileges || (p.how == How::Setns && p.effective(dropped).contains(&Ns::User)))
    };
    walk::find_along(&case.spec, !privileged, &enter, &mut |s, unpriv| {
        let checked = s.errno.is_none() && !s.may_fail;
        let user = |f: &crate::load::flags::FlagSet| f.without(dropped).namespaces().contains(&Ns::User);
        let makes = match &s.op {
            Op::Unshare(f) | Op::ThreadUnshare(f) | Op::FsShareUnshare(f) => user(f),
            Op::Fork(a) => user(&a.flags),
            Op::Clone(a) => user(&a.flags),
            Op::Clone3(a) => user(&a.flags),
            // The second level is made inside the first.
            Op::Nest(a) if a.namespace == Ns::User && a.depth > 1 => {
                *unpriv = true;
                true
            }
            Op::Setns(_) | Op::DropPrivileges(true) => {
                *unpriv = true;
                false
            }
            Op::Setuid(v) if v.trim() != "0" => {
                *unpriv = true;
                false
            }
            _ => false,
        };
        if makes && checked && *unpriv {
            return Some(format!(
                "`{}` makes a user namespace without privilege in the initial one",
                s.op.name()
            ));
        }
        if makes && matches!(s.op, Op::Unshare(_) | Op::ThreadUnshare(_) | Op::FsShareUnshare(_)) {
            *unpriv = true;
        }
        None
    })
}

/// Why the case needs root, if it does something that takes CAP_SYS_ADMIN
/// (or CAP_NET_ADMIN) over the sandbox's namespaces without a user namespace
/// of its own to do it in: creating namespaces, mounting, setting names,
/// configuring links.
fn inferred_root(case: &Case, dropped: &[Ns]) -> Option<String> {
    // The state carried down: whether the process is in a user namespace of
    // the case's own.
    let enter = |p: &ProcSpec, in_userns: bool| {
        let eff = p.effective(dropped);
        let own = in_userns || (eff.contains(&Ns::User) && p.how != How::Setns);
        match eff.iter().find(|n| **n != Ns::User) {
            Some(n) if p.how != How::Setns && !own => Err(format!(
                "creating a new {n} namespace without a user namespace takes CAP_SYS_ADMIN"
            )),
            _ => Ok(own),
        }
    };
    walk::find_along(&case.spec, false, &enter, &mut |s, in_userns| {
        root_for_step(s, in_userns, dropped)
    })
}

/// Why one step needs root, given whether its process is in a user
/// namespace of the case's own (which an unshare of one changes).
fn root_for_step(s: &Step, in_userns: &mut bool, dropped: &[Ns]) -> Option<String> {
    let checked = s.errno.is_none() && !s.may_fail;
    match &s.op {
        Op::Unshare(fl) if checked => {
            let nss = fl.without(dropped).namespaces();
            if nss.contains(&Ns::User) {
                *in_userns = true;
            } else if !*in_userns {
                let n = nss.first()?;
                return Some(format!(
                    "unsharing a new {n} namespace without a user namespace takes CAP_SYS_ADMIN"
                ));
            }
            None
        }
        Op::Fork(f) if checked && !*in_userns => {
            let nss = f.flags.without(dropped).namespaces();
            let n = nss.first().filter(|_| !nss.contains(&Ns::User))?;
            Some(format!(
                "forking into a new {n} namespace without a user namespace takes CAP_SYS_ADMIN"
            ))
        }
        Op::Spawn(_) => None,
        op if checked && !*in_userns => {
            let what = match op {
                Op::Mount(_) | Op::Umount(_) | Op::MountCgroup(_) => "mounting",
                Op::Sethostname(_) | Op::Setdomainname(_) => "setting the UTS names",
                Op::Veth(_) | Op::Link(_) => "configuring network links",
                _ => return None,
            };
            Some(format!(
                "{what} outside a user namespace of the case's own takes privilege"
            ))
        }
        _ => None,
    }
}

// Unprivileged runs. A case that needs root only for privilege over the
// namespaces it makes (creating them, mounting, naming, configuring links)
// runs as root of a user namespace of its own: the sandbox's, which then maps
// root to the user (and, with subordinate ids, more ids). What that root is
// not, root in the initial user namespace, the case declares
// (`needs.init_userns`) or its steps show (`restore`).

/// How an unprivileged run runs the case, or why it cannot.
fn unprivileged(case: &Case, dropped: &[Ns], env: &RunEnv) -> Result<RunAs, String> {
    // Declared: whatever else the case needs, only root of the initial user
    // namespace can run it.
    if let Some(why) = &case.spec.needs.init_userns {
        return Err(format!("needs root: {}", why.get_ref()));
    }
    let root = match case.spec.needs.root {
        Some(r) => r.then(|| "the case says it needs root".to_string()),
        None => inferred_root(case, dropped),
    };
    if root.is_none() {
        return Ok(RunAs::Suite);
    }
    own_userns(case, dropped, env).map(|()| RunAs::OwnUserns)
}

/// Whether root of a user namespace of its own can run the case (without
/// `dropped`) here.
pub fn own_userns(case: &Case, dropped: &[Ns], env: &RunEnv) -> Result<(), String> {
    if let Some(why) = needs_init_userns(case, dropped) {
        return Err(format!("needs root: {why}"));
    }
    ids_mapped(case, env)
}

/// Why the case (without `dropped`) needs root in the initial user
/// namespace, if it does: it says so, it changes a machine-wide setting, or
/// it mounts a cgroup hierarchy from the machine's cgroup namespace.
pub fn needs_init_userns(case: &Case, dropped: &[Ns]) -> Option<String> {
    if let Some(why) = &case.spec.needs.init_userns {
        return Some(why.get_ref().clone());
    }
    if let Some(p) = case.spec.restore.first() {
        return Some(format!(
            "it changes the machine-wide {}, which only root in the initial user namespace may write",
            p.get_ref()
        ));
    }
    machine_cgroup_mount(case, dropped)
}

/// Mounting a cgroup hierarchy takes CAP_SYS_ADMIN over the mounter's cgroup
/// namespace; the sandbox makes none, so a process of the case that has not
/// made one of its own mounts from the machine's.
fn machine_cgroup_mount(case: &Case, dropped: &[Ns]) -> Option<String> {
    // The state carried down: whether the process is in a cgroup namespace of its own.
    let enter = |p: &ProcSpec, own: bool| {
        let makes = p.how != How::Setns && p.effective(dropped).contains(&Ns::Cgroup);
        Ok(own || makes)
    };
    walk::find_along(&case.spec, false, &enter, &mut |s, own| {
        match &s.op {
        Op::Unshare(fl) if fl.without(dropped).namespaces().contains(&Ns::Cgroup) => {
            *own = true;
            None
        }
        Op::MountCgroup(_) if !*own => Some(
            "it mounts a cgroup hierarchy outside a cgroup namespace of its own, which takes CAP_SYS_ADMIN over the machine's cgroup namespace".into(),
        ),
        _ => None,
    }
    })
}

/// Whether the trial's user namespace maps every id the case names: root
/// always; the drop ids, the ids its maps and id changes name, and
/// supplementary groups only with subordinate ids (`env.subids`).
fn ids_mapped(case: &Case, env: &RunEnv) -> Result<(), String> {
    let (uid, gid) = RunEnv::drop_ids();
    let Some((highest, what)) = ids_named(case, uid, gid) else {
        return Ok(());
    };
    match &env.subids {
        Some(s) if highest <= s.count => Ok(()),
        Some(s) => Err(format!(
            "needs id {highest} mapped in a user namespace of its own ({what}), and the range /etc/subuid or /etc/subgid gives this user maps 1 to {} only",
            s.count
        )),
        None => Err(format!(
            "needs id {highest} mapped in a user namespace of its own ({what}): only root is mapped there without {} and {} (package uidmap) and a range for this user in /etc/subuid and /etc/subgid",
            super::env::NEWUIDMAP,
            super::env::NEWGIDMAP
        )),
    }
}

/// The highest id other than root the case names (as the sandbox's ids:
/// placeholders for the suite's ids are root there), and what names it.
pub fn ids_named(case: &Case, uid: u32, gid: u32) -> Option<(u32, String)> {
    let mut best: Option<(u32, String)> = None;
    let mut saw = |id: u32, what: &dyn Fn() -> String| {
        if id > 0 && best.as_ref().is_none_or(|(b, _)| id > *b) {
            best = Some((id, what()));
        }
    };
    let expand = |text: &str| {
        text.replace("{euid}", "0")
            .replace("{egid}", "0")
            .replace("{uid}", &uid.to_string())
            .replace("{gid}", &gid.to_string())
    };
    // The outside ids of a map's lines: start + count - 1 of each.
    let map_ids = |text: &str| -> Vec<u32> {
        expand(text)
            .lines()
            .filter_map(|l| {
                let f: Vec<u64> = l
                    .split_whitespace()
                    .filter_map(|w| w.trim_matches('\0').parse().ok())
                    .collect();
                (f.len() == 3 && f[2] > 0).then(|| (f[1] + f[2] - 1).min(u32::MAX as u64) as u32)
            })
            .collect()
    };
    for p in walk::proc_specs(&case.spec) {
        if p.drop_privileges {
            saw(uid.max(gid), &|| "drop_privileges".into());
        }
        for (field, map) in [("uid_map", &p.uid_map), ("gid_map", &p.gid_map)] {
            for id in map.as_deref().map(map_ids).unwrap_or_default() {
                saw(id, &|| format!("its {field}"));
            }
        }
        if p.setgroups.as_deref() == Some("allow") {
            saw(gid, &|| {
                "setgroups allowed, which a user namespace of one id denies".into()
            });
        }
    }
    let mut step = |op: &Op| match op {
        Op::DropPrivileges(true) => saw(uid.max(gid), &|| "drop_privileges".into()),
        Op::Setuid(v) | Op::Setgid(v) => {
            if let Ok(id) = expand(v).parse::<u32>() {
                saw(id, &|| format!("setuid/setgid {id}"));
            }
        }
        Op::Setgroups(g) => saw(g.iter().copied().max().unwrap_or(0).max(1), &|| {
            "setgroups, which a user namespace of one id denies".into()
        }),
        Op::Write(w) if w.path.ends_with("uid_map") || w.path.ends_with("gid_map") => {
            for id in map_ids(&w.data) {
                saw(id, &|| format!("the map it writes to {}", w.path));
            }
        }
        Op::WriteMap(w) => saw(w.outside.saturating_add(w.extents.saturating_sub(1)), &|| {
            format!("the map it writes to {}", w.path)
        }),
        _ => {}
    };
    walk::each_op(&case.spec, &mut step);
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(text: &str) -> Case {
        let path = std::path::Path::new("t.toml");
        crate::load::load_bytes(path, "uts", text.as_bytes(), crate::load::Catalogue::builtin())
            .expect("loads")
            .remove(0)
    }

    const HEAD: &str = "summary = \"s\"\ncovers = [\"U1\"]\ncontrol = { none = \"a test\" }\n";

    /// A case with two gates (and a behaviour of Linux 6.19): the gate
    /// names the feature that blocked, with a Linux version only where the
    /// kernel lacks that feature, never the other gate's or the case's.
    #[test]
    fn the_gate_is_the_requirement_that_blocked() {
        use crate::plan::features::Found;
        let c = case(&format!(
            "{HEAD}needs = {{ features = [\"listns\", \"veth\"], kernel = \"6.19\" }}\nchild.namespaces = [\"uts\"]\n"
        ));
        let env = RunEnv {
            privileged: true,
            euid: 0,
            egid: 0,
            uid: 1000,
            gid: 1000,
            cgroup_nonroot: None,
            sandbox_pid_max: None,
            initial_ns: Err("not read".into()),
            subids: None,
        };
        let here = [("ns.uts", Found::Present), ("nsfs.uts", Found::Present)];
        let blocked = |listns: Found, veth: Found| {
            let f = Features::of(here.iter().cloned().chain([("listns", listns), ("veth", veth)]));
            check(&c, &[], &f, &env, &crate::runner::Native).expect_err("blocked")
        };
        let b = blocked(Found::Present, Found::Off("no module".into()));
        assert_eq!(b.gate, "needs `veth`");
        assert!(b.reason.starts_with("needs `veth`: no module"), "{}", b.reason);
        let b = blocked(Found::Missing("listns is ENOSYS".into()), Found::Present);
        assert_eq!(b.gate, "needs `listns` (Linux 6.19)");
        // gVisor lacks it, but no Linux version would bring it.
        let b = blocked(Found::NotLinux("gVisor does not implement it".into()), Found::Present);
        assert_eq!(b.gate, "needs `listns`");
        // veth has no first Linux: missing, it names none.
        let b = blocked(Found::Present, Found::Missing("no veth".into()));
        assert_eq!(b.gate, "needs `veth`");
    }

    #[test]
    fn ids_named_finds_the_highest_id_other_than_root() {
        let c = case(&format!("{HEAD}child.namespaces = [\"uts\"]\n"));
        assert_eq!(ids_named(&c, 1000, 1000), None);
        let c = case(&format!(
            "{HEAD}[child]\nnamespaces = [\"user\"]\nuid_map = \"0 {{euid}} 1\"\ngid_map = \"0 {{egid}} 1\"\nsetgroups = \"deny\"\n"
        ));
        assert_eq!(ids_named(&c, 1000, 1000), None, "the suite's own ids are root there");
        let c = case(&format!("{HEAD}child.drop_privileges = true\n"));
        assert_eq!(ids_named(&c, 1000, 1001).map(|(i, _)| i), Some(1001));
        let c = case(&format!(
            "{HEAD}[child]\nnamespaces = [\"user\"]\nrun = [{{ sync = \"m\" }}]\n[parent.on]\nm = [{{ write = {{ path = \"/proc/{{child}}/uid_map\", data = \"0 100000 10\\n5 200000 10\" }}, errno = \"EINVAL\" }}]\n"
        ));
        let (id, what) = ids_named(&c, 1000, 1000).expect("an id");
        assert_eq!(id, 200009);
        assert!(what.contains("uid_map"), "{what}");
    }

    #[test]
    fn a_cgroup_mount_outside_a_cgroup_namespace_of_its_own_needs_the_initial_user_namespace() {
        let mount = "run = [{ mount_cgroup = { target = \"{scratch}/cg\", hierarchy = \"unified\" } }]\n";
        let own = case(&format!(
            "summary = \"s\"\ncovers = [\"C6\"]\ncontrol = {{ drop = [\"cgroup\"] }}\n[child]\nnamespaces = [\"cgroup\", \"mnt\"]\n{mount}isolation = {{ ns.cgroup = \"differs\" }}\n"
        ));
        assert_eq!(needs_init_userns(&own, &[]), None);
        let why = needs_init_userns(&own, &[Ns::Cgroup]).expect("the control mounts from the machine's");
        assert!(why.contains("cgroup namespace"), "{why}");
        let declared = case(&format!(
            "{HEAD}needs.init_userns = \"because\"\nchild.namespaces = [\"uts\"]\n"
        ));
        assert_eq!(needs_init_userns(&declared, &[]).as_deref(), Some("because"));
    }

    #[test]
    fn a_user_namespace_made_without_privilege_needs_userns_unprivileged() {
        let made_by_root = case(&format!("{HEAD}child.namespaces = [\"user\"]\n"));
        assert_eq!(unprivileged_userns(&made_by_root, &[], true, RunAs::Suite), None);
        assert!(
            unprivileged_userns(&made_by_root, &[], false, RunAs::Suite).is_some(),
            "an unprivileged run's"
        );
        let nested = case(&format!(
            "{HEAD}[child]\nnamespaces = [\"user\"]\nrun = [{{ unshare = [\"user\"] }}]\n"
        ));
        let why = unprivileged_userns(&nested, &[], true, RunAs::Suite).expect("nested");
        assert!(why.contains("unshare"), "{why}");
        let dropped = case(&format!(
            "{HEAD}[child]\ndrop_privileges = true\nrun = [{{ unshare = [\"user\"] }}]\n"
        ));
        assert!(unprivileged_userns(&dropped, &[], true, RunAs::Suite).is_some());
        let expected_to_fail = case(&format!(
            "{HEAD}[child]\ndrop_privileges = true\nrun = [{{ unshare = [\"user\"], errno = \"EPERM\" }}]\n"
        ));
        assert_eq!(unprivileged_userns(&expected_to_fail, &[], true, RunAs::Suite), None);
    }
}
