//! What a whole case uses, each found with one walk over its processes and
//! steps (`walk`): the namespace types, whether it has isolation
//! assertions, the names its steps keep results under, its syncs.

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
