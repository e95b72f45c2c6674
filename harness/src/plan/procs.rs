//! The processes of a case, with the labels they report under, and every
//! place an expectation is checked. The sandbox uses this to know what to
//! observe; compare uses it to find what was observed.

use crate::load::expect::{CREATOR, Check, Expect, ObsKey};
use crate::load::model::{CaseSpec, ProcSpec};
use crate::load::step::{Op, Step};
use crate::load::walk;
use std::collections::{BTreeMap, BTreeSet};

/// One expectation table and where it is checked.
pub struct Site<'a> {
    pub proc_label: String,
    /// "end" or "<phase> step <n>".
    pub at: String,
    pub expect: &'a Expect,
    /// An isolation assertion (must fail in the control).
    pub isolation: bool,
}

pub use crate::load::walk::{parent_phases, spawn_label};

/// Where an inline expectation sits, counting steps from 1 as reports do.
pub fn step_at(phase: &str, index: usize) -> String {
    format!("{phase} step {}", index + 1)
}

/// The process a report names by label (not the parent, which has no exit to declare).
pub fn proc_of<'a>(spec: &'a CaseSpec, proc_label: &str) -> Option<&'a ProcSpec> {
    walk::processes(spec)
        .into_iter()
        .find(|p| p.label == proc_label)?
        .spec()
}

/// The step a report names by process, phase and index (from 0), if the
/// case has one there (`maps` and `exit` failures name no step).
pub fn step_of<'a>(spec: &'a CaseSpec, proc_label: &str, phase: &str, index: usize) -> Option<&'a Step> {
    let p = walk::processes(spec).into_iter().find(|p| p.label == proc_label)?;
    let steps = p.phases().into_iter().find(|(n, _)| n == phase)?.1;
    steps.get(index).map(|s| s.get_ref())
}

pub fn sites(spec: &CaseSpec) -> Vec<Site<'_>> {
    let mut out = Vec::new();
    for p in walk::processes(spec) {
        for (phase, steps) in p.phases() {
            for (i, s) in steps.iter().enumerate() {
                let (expect, isolation) = match &s.get_ref().op {
                    Op::Expect(e) => (&**e, false),
                    Op::Isolation(e) => (&**e, true),
                    _ => continue,
                };
                out.push(Site {
                    proc_label: p.label.clone(),
                    at: step_at(&phase, i),
                    expect,
                    isolation,
                });
            }
        }
        let (expect, isolation) = p.expects();
        for (expect, isolation) in [(expect, false), (isolation, true)] {
            out.push(Site {
                proc_label: p.label.clone(),
                at: "end".into(),
                expect,
                isolation,
            });
        }
    }
    out
}

/// Keys each process must observe at its end because another process compares with them.
pub fn referenced_keys(spec: &CaseSpec) -> BTreeMap<String, BTreeSet<ObsKey>> {
    let mut out: BTreeMap<String, BTreeSet<ObsKey>> = BTreeMap::new();
    for site in sites(spec) {
        for c in site.expect.checks() {
            let (key, refs): (ObsKey, Vec<String>) = match &c {
                Check::Value(k, m) => (k.clone(), m.references().into_iter().map(String::from).collect()),
                Check::Ns(k, m) => (k.clone(), vec![m.reference().to_string()]),
                Check::Mount(..) | Check::SeenMount(..) => continue,
            };
            // A `seen.X.ns.uts` compares with the reference's own `ns.uts`.
            let key = match key {
                ObsKey::Seen(_, inner) => *inner,
                k => k,
            };
            for r in refs.into_iter().filter(|r| r != CREATOR) {
                match r.split_once('.') {
                    Some((proc_label, other)) => {
                        if let Some(k) = ObsKey::parse(other) {
                            out.entry(proc_label.to_string()).or_default().insert(k);
                        }
                    }
                    None => {
                        out.entry(r).or_default().insert(key.clone());
                    }
                }
            }
        }
    }
    out
}
