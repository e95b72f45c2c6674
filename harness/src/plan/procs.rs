//! The processes of a case, with the labels they report under, and every
//! place an expectation is checked. The sandbox uses this to know what to
//! observe; compare uses it to find what was observed.

use crate::load::expect::{CREATOR, Check, Expect, ObsKey};
use crate::load::model::{CaseSpec, ParentSpec, ProcSpec};
use crate::load::step::{Op, Step};
use std::collections::{BTreeMap, BTreeSet};
use toml::Spanned;

pub enum Kind<'a> {
    Parent(&'a ParentSpec),
    Proc(&'a ProcSpec),
}

pub struct ProcRef<'a> {
    pub label: String,
    pub kind: Kind<'a>,
}

/// One expectation table and where it is checked.
pub struct Site<'a> {
    pub proc_label: String,
    /// "end" or "<phase> step <n>".
    pub at: String,
    pub expect: &'a Expect,
    /// An isolation assertion (must fail in the control).
    pub isolation: bool,
}

pub fn spawn_label(creator: &str, phase: &str, index: usize, spec: &ProcSpec) -> String {
    match &spec.name {
        Some(n) => format!("{creator}/{n}"),
        None => format!("{creator}/{phase}{index}"),
    }
}

/// Where an inline expectation sits, counting steps from 1 as reports do.
pub fn step_at(phase: &str, index: usize) -> String {
    format!("{phase} step {}", index + 1)
}

/// Parent phases in the order they run (`on.*` between start and run).
pub fn parent_phases(p: &ParentSpec) -> Phases<'_> {
    let mut out: Phases<'_> = vec![("setup".into(), &p.setup[..]), ("start".into(), &p.start[..])];
    for (k, v) in &p.on {
        out.push((format!("on.{k}"), &v[..]));
    }
    out.push(("run".into(), &p.run[..]));
    out.push(("after".into(), &p.after[..]));
    out
}

pub fn processes(spec: &CaseSpec) -> Vec<ProcRef<'_>> {
    let mut out = vec![ProcRef {
        label: "parent".into(),
        kind: Kind::Parent(&spec.parent),
    }];
    for (phase, steps) in parent_phases(&spec.parent) {
        spawns(&mut out, "parent", &phase, steps);
    }
    for p in &spec.peers {
        let label = format!("peer:{}", p.get_ref().name.as_deref().unwrap_or("?"));
        push_proc(&mut out, label, p.get_ref());
    }
    push_proc(&mut out, "child".into(), spec.child.get_ref());
    out
}

fn push_proc<'a>(out: &mut Vec<ProcRef<'a>>, label: String, p: &'a ProcSpec) {
    out.push(ProcRef {
        label: label.clone(),
        kind: Kind::Proc(p),
    });
    spawns(out, &label, "run", &p.run);
}

fn spawns<'a>(out: &mut Vec<ProcRef<'a>>, creator: &str, phase: &str, steps: &'a [Spanned<Step>]) {
    for (i, s) in steps.iter().enumerate() {
        if let Op::Spawn(p) = &s.get_ref().op {
            push_proc(out, spawn_label(creator, phase, i, p), p);
        }
    }
}

/// The process a report names by label (not the parent, which has no exit to declare).
pub fn proc_of<'a>(spec: &'a CaseSpec, proc_label: &str) -> Option<&'a ProcSpec> {
    match processes(spec).into_iter().find(|p| p.label == proc_label)?.kind {
        Kind::Proc(ps) => Some(ps),
        Kind::Parent(_) => None,
    }
}

/// The step a report names by process, phase and index (from 0), if the
/// case has one there (`maps` and `exit` failures name no step).
pub fn step_of<'a>(spec: &'a CaseSpec, proc_label: &str, phase: &str, index: usize) -> Option<&'a Step> {
    let p = processes(spec).into_iter().find(|p| p.label == proc_label)?;
    let steps: &[Spanned<Step>] = match p.kind {
        Kind::Parent(ps) => parent_phases(ps).into_iter().find(|(n, _)| n == phase)?.1,
        Kind::Proc(ps) if phase == "run" => &ps.run,
        Kind::Proc(_) => return None,
    };
    steps.get(index).map(|s| s.get_ref())
}

type Phases<'a> = Vec<(String, &'a [Spanned<Step>])>;

pub fn sites(spec: &CaseSpec) -> Vec<Site<'_>> {
    let mut out = Vec::new();
    for p in processes(spec) {
        let (expect, isolation, phases): (&Expect, &Expect, Phases<'_>) = match p.kind {
            Kind::Parent(ps) => (&ps.expect, &ps.isolation, parent_phases(ps)),
            Kind::Proc(ps) => (&ps.expect, &ps.isolation, vec![("run".into(), &ps.run[..])]),
        };
        for (phase, steps) in phases {
            for (i, s) in steps.iter().enumerate() {
                match &s.get_ref().op {
                    Op::Expect(e) => out.push(Site {
                        proc_label: p.label.clone(),
                        at: step_at(&phase, i),
                        expect: e,
                        isolation: false,
                    }),
                    Op::Isolation(e) => out.push(Site {
                        proc_label: p.label.clone(),
                        at: step_at(&phase, i),
                        expect: e,
                        isolation: true,
                    }),
                    _ => {}
                }
            }
        }
        out.push(Site {
            proc_label: p.label.clone(),
            at: "end".into(),
            expect,
            isolation: false,
        });
        out.push(Site {
            proc_label: p.label.clone(),
            at: "end".into(),
            expect: isolation,
            isolation: true,
        });
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
