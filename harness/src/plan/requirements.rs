//! Whether a case can run here: root, kernel features, tools, the runner.
//! The first missing requirement is the reason the trial is ignored.

use super::RunEnv;
use super::features::{self, Features};
use crate::load::Case;
use crate::load::model::{How, ProcSpec};
use crate::load::ns::{Ns, NsLink};
use crate::load::step::{Hierarchy, Op};
use crate::runner::Runner;
use std::collections::BTreeSet;

pub fn check(case: &Case, dropped: &[Ns], f: &Features, env: &RunEnv, runner: &dyn Runner) -> Result<(), String> {
    let spec = &case.spec;
    let kernel = spec
        .needs
        .kernel
        .as_deref()
        .map(|k| format!(" (Linux {k})"))
        .unwrap_or_default();
    if !env.privileged {
        let root = match spec.needs.root {
            Some(r) => r.then(|| "the case says it needs root".to_string()),
            None => inferred_root(case, dropped),
        };
        if let Some(why) = root {
            return Err(format!("needs root: {why}"));
        }
    }
    for name in implied_features(case) {
        f.check(&name).map_err(|why| format!("needs `{name}`{kernel}: {why}"))?;
    }
    for t in &case.tools {
        if which::which(&t.tool).is_err() {
            return Err(format!(
                "needs the tool `{}` ({}:{}, {}): not found on PATH",
                t.tool,
                crate::load::error::shown(&case.file),
                t.line,
                t.field
            ));
        }
    }
    for t in runner.tools() {
        if which::which(&t).is_err() {
            return Err(format!(
                "runner {} needs the tool `{t}`: not found on PATH",
                runner.name()
            ));
        }
    }
    if let Some(why) = runner.unsupported(spec, spec.child.get_ref(), dropped) {
        return Err(why);
    }
    for path in &spec.restore {
        writable(path.get_ref())?;
    }
    Ok(())
}

/// Whether this run can change (and so restore) a global setting: writing its
/// current value back changes nothing and says whether a write is allowed.
fn writable(path: &str) -> Result<(), String> {
    let now = std::fs::read(path).map_err(|e| format!("changes {path}, which cannot be read here: {e}"))?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &now))
        .map_err(|e| format!("changes {path}, which this run cannot write ({e}), so it could not restore it"))
}

/// Features a case needs because of what it does, plus the ones it names.
pub fn implied_features(case: &Case) -> BTreeSet<String> {
    let spec = &case.spec;
    let mut out: BTreeSet<String> = spec.needs.features.iter().map(|f| f.get_ref().clone()).collect();
    for ns in crate::load::namespaces_used(spec) {
        out.insert(features::for_ns(ns).to_string());
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
        _ => {}
    };
    for_each_op(spec, &mut steps_seen);
    for p in procs(spec) {
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
            }
        }
    }
    out
}

fn procs(spec: &crate::load::CaseSpec) -> Vec<&ProcSpec> {
    super::procs::processes(spec)
        .into_iter()
        .filter_map(|p| match p.kind {
            super::procs::Kind::Proc(ps) => Some(ps),
            super::procs::Kind::Parent(_) => None,
        })
        .collect()
}

fn for_each_op(spec: &crate::load::CaseSpec, f: &mut dyn FnMut(&Op)) {
    for p in super::procs::processes(spec) {
        match p.kind {
            super::procs::Kind::Parent(ps) => {
                for (_, steps) in super::procs::parent_phases(ps) {
                    steps.iter().for_each(|s| f(&s.get_ref().op));
                }
            }
            super::procs::Kind::Proc(ps) => ps.run.iter().for_each(|s| f(&s.get_ref().op)),
        }
    }
}

/// Why the case needs root, if it does something that takes CAP_SYS_ADMIN
/// (or CAP_NET_ADMIN) over the sandbox's namespaces without a user namespace
/// of its own to do it in: creating namespaces, mounting, setting names,
/// configuring links.
fn inferred_root(case: &Case, dropped: &[Ns]) -> Option<String> {
    fn privileged_op(op: &Op) -> Option<&'static str> {
        Some(match op {
            Op::Mount(_) | Op::Umount(_) | Op::MountCgroup(_) => "mounting",
            Op::Sethostname(_) | Op::Setdomainname(_) => "setting the UTS names",
            Op::Veth(_) | Op::Link(_) => "configuring network links",
            _ => return None,
        })
    }
    fn steps(run: &[toml::Spanned<crate::load::step::Step>], mut in_userns: bool, dropped: &[Ns]) -> Option<String> {
        for s in run {
            let s = s.get_ref();
            let checked = s.errno.is_none() && !s.may_fail;
            match &s.op {
                Op::Unshare(fl) if checked => {
                    let nss = fl.without(dropped).namespaces();
                    if nss.contains(&Ns::User) {
                        in_userns = true;
                    } else if !in_userns {
                        if let Some(n) = nss.first() {
                            return Some(format!(
                                "unsharing a new {n} namespace without a user namespace takes CAP_SYS_ADMIN"
                            ));
                        }
                    }
                }
                Op::Fork(f) if checked && !in_userns => {
                    let nss = f.flags.without(dropped).namespaces();
                    if !nss.contains(&Ns::User) {
                        if let Some(n) = nss.first() {
                            return Some(format!(
                                "forking into a new {n} namespace without a user namespace takes CAP_SYS_ADMIN"
                            ));
                        }
                    }
                }
                Op::Spawn(inner) => {
                    if let Some(w) = walk(inner, in_userns, dropped) {
                        return Some(w);
                    }
                }
                op if checked && !in_userns => {
                    if let Some(what) = privileged_op(op) {
                        return Some(format!(
                            "{what} outside a user namespace of the case's own takes privilege"
                        ));
                    }
                }
                _ => {}
            }
        }
        None
    }
    fn walk(p: &ProcSpec, in_userns: bool, dropped: &[Ns]) -> Option<String> {
        let eff: Vec<Ns> = p
            .namespaces
            .get_ref()
            .iter()
            .copied()
            .filter(|n| !dropped.contains(n))
            .collect();
        let own = in_userns || (eff.contains(&Ns::User) && p.how != How::Setns);
        if p.how != How::Setns && !own {
            if let Some(n) = eff.iter().find(|n| **n != Ns::User) {
                return Some(format!(
                    "creating a new {n} namespace without a user namespace takes CAP_SYS_ADMIN"
                ));
            }
        }
        steps(&p.run, own, dropped)
    }
    let spec = &case.spec;
    super::procs::parent_phases(&spec.parent)
        .into_iter()
        .find_map(|(_, s)| steps(s, false, dropped))
        .or_else(|| spec.peers.iter().find_map(|p| walk(p.get_ref(), false, dropped)))
        .or_else(|| walk(spec.child.get_ref(), false, dropped))
}
