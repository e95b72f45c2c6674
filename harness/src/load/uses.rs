//! What a whole case uses, each found with one walk over its processes and
//! steps (`walk`): the namespace types, the nsfs files its steps name,
//! whether it has isolation assertions, the names its steps keep results
//! under, its syncs.

use super::model::CaseSpec;
use super::ns::Ns;
use super::step::Op;
use super::walk::{self, Role};
use std::collections::BTreeSet;

/// Whether any expectation of the case is an isolation assertion.
pub fn has_isolation(spec: &CaseSpec) -> bool {
    let procs = walk::processes(spec);
    procs.iter().any(|p| !p.expects().1.is_empty())
        || walk::steps(&procs)
            .iter()
            .any(|s| matches!(&s.step.get_ref().op, Op::Isolation(e) if !e.is_empty()))
}

/// Namespace types the case creates or joins anywhere (what a control can drop).
pub fn namespaces_used(spec: &CaseSpec) -> BTreeSet<Ns> {
    let mut out: BTreeSet<Ns> = walk::proc_specs(spec)
        .iter()
        .flat_map(|p| p.namespaces.get_ref().iter().copied())
        .collect();
    walk::each_op(spec, |op| match op {
        Op::Unshare(f) | Op::ThreadUnshare(f) | Op::FsShareUnshare(f) => out.extend(f.namespaces()),
        Op::Setns(a) => out.extend(a.nstype.namespaces()),
        Op::Clone(a) => out.extend(a.flags.namespaces()),
        Op::Clone3(a) => out.extend(a.flags.namespaces()),
        Op::Fork(a) => out.extend(a.flags.namespaces()),
        _ => {}
    });
    out
}

/// Namespace types whose nsfs file (`/proc/PID/ns/TYPE`) a step names: it
/// opens, joins, binds, stats or asks an ioctl of it (a path in any of
/// the step's arguments, a command's included). Such a step needs the
/// file, not only the type's behaviour.
pub fn nsfs_named(spec: &CaseSpec) -> BTreeSet<Ns> {
    let mut out = BTreeSet::new();
    walk::each_op(spec, |op| out.extend(nsfs_in(&format!("{op:?}"))));
    out
}

/// The types `…/ns/TYPE` names in `text` (`pid`, not `pid_for_children`).
pub fn nsfs_in(text: &str) -> BTreeSet<Ns> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("/ns/") {
        let rest = &text[i + 4..];
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        out.extend(Ns::from_name(&word).filter(|ns| ns.proc_name() == word));
    }
    out
}

/// The names steps keep results and fds under (`as`, and a pipe's
/// `NAME.r`/`NAME.w`), anywhere in the case.
pub fn kept_names(spec: &CaseSpec) -> BTreeSet<String> {
    let procs = walk::processes(spec);
    let mut out = BTreeSet::new();
    for s in walk::steps(&procs) {
        let st = s.step.get_ref();
        out.extend(st.save_as.iter().cloned());
        if let Op::Pipe(name) = &st.op {
            out.insert(format!("{name}.r"));
            out.insert(format!("{name}.w"));
        }
    }
    out
}

/// The names the child's own steps `sync` at.
pub fn syncs_used(spec: &CaseSpec) -> BTreeSet<String> {
    let procs = walk::processes(spec);
    walk::steps(&procs)
        .into_iter()
        .filter(|s| s.process.role == Role::Child)
        .filter_map(|s| match &s.step.get_ref().op {
            Op::Sync(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nsfs_paths_name_their_type_only() {
        let found = nsfs_in(
            r#"Setns { path: "/proc/{child}/ns/uts" } cmd "stat /proc/self/ns/pid_for_children /proc/1/ns/mnt)""#,
        );
        assert_eq!(found, BTreeSet::from([Ns::Uts, Ns::Mnt]));
        assert!(nsfs_in("/proc/self/ns/ and /ns/mount").is_empty());
    }
}
