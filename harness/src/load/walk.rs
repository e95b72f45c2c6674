//! One walk over a case's processes and their steps: the parent, the
//! processes it spawns, the peers, the child, and the processes each of
//! them spawns, with how reports name them and where they are written.
//! Everything that visits a whole case (the loader's rules, the plan's
//! requirements, the mutants, the sandbox's observations) goes through it.

use super::expect::Expect;
use super::model::{CaseSpec, ParentSpec, ProcSpec};
use super::step::{Op, Step};
use std::ops::Range;
use toml::Spanned;

/// What a process is to the case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The sandbox's init, which creates the others.
    Parent,
    Child,
    Peer,
    /// Made by a `spawn` step of another process.
    Spawn,
}

/// A process as the case writes it.
#[derive(Clone, Copy)]
pub enum Body<'a> {
    Parent(&'a ParentSpec),
    Proc(&'a ProcSpec),
}

/// One step along a case's TOML table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Idx(usize),
}

/// The step that spawns a process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnedBy {
    /// The creator, as an index into the list `processes` returns.
    pub creator: usize,
    /// The creator's phase ("run", or the parent's "setup", "on.NAME", ...).
    pub phase: String,
    /// The step's place in that phase, from 0.
    pub index: usize,
}

/// One process of a case.
pub struct Process<'a> {
    /// How reports name it: "parent", "child", "peer:a", "child/inner",
    /// "parent/run0".
    pub label: String,
    pub role: Role,
    pub body: Body<'a>,
    /// Where its table is, from the case's table: `child`, `peer[1]`,
    /// `parent.run[2].spawn`.
    pub path: Vec<Seg>,
    /// Where it is written in the file (a spawn: its step); the parent's
    /// and a child the case leaves out are empty.
    pub span: Range<usize>,
    pub spawned_by: Option<SpawnedBy>,
}

/// One step of one process.
pub struct StepAt<'p, 'a> {
    pub process: &'p Process<'a>,
    /// Its process's index in the list `processes` returns.
    pub proc_index: usize,
    pub phase: String,
    /// From 0.
    pub index: usize,
    pub step: &'a Spanned<Step>,
}

/// A peer's label.
pub fn peer_label(spec: &ProcSpec) -> String {
    format!("peer:{}", spec.name.as_deref().unwrap_or("?"))
}

/// The label of a process spawned by step `index` of its creator's `phase`.
pub fn spawn_label(creator: &str, phase: &str, index: usize, spec: &ProcSpec) -> String {
    match &spec.name {
        Some(n) => format!("{creator}/{n}"),
        None => format!("{creator}/{phase}{index}"),
    }
}

/// The parent's phases in the order they run (`on.*` between start and run).
pub fn parent_phases(p: &ParentSpec) -> Vec<(String, &[Spanned<Step>])> {
    let mut out = vec![("setup".to_string(), &p.setup[..]), ("start".into(), &p.start[..])];
    for (k, v) in &p.on {
        out.push((format!("on.{k}"), &v[..]));
    }
    out.push(("run".into(), &p.run[..]));
    out.push(("after".into(), &p.after[..]));
    out
}

impl<'a> Process<'a> {
    /// Its steps by phase, in the order they run.
    pub fn phases(&self) -> Vec<(String, &'a [Spanned<Step>])> {
        match self.body {
            Body::Parent(p) => parent_phases(p),
            Body::Proc(p) => vec![("run".into(), &p.run[..])],
        }
    }

    /// The process's own table (not the parent's, which has fewer fields).
    pub fn spec(&self) -> Option<&'a ProcSpec> {
        match self.body {
            Body::Proc(p) => Some(p),
            Body::Parent(_) => None,
        }
    }

    /// Its end-of-run expectations: `expect` and `isolation`.
    pub fn expects(&self) -> (&'a Expect, &'a Expect) {
        match self.body {
            Body::Parent(p) => (&p.expect, &p.isolation),
            Body::Proc(p) => (&p.expect, &p.isolation),
        }
    }
}

/// Every process of the case: the parent, the processes its phases spawn,
/// each peer, the child; each followed by the processes it spawns, in the
/// order of its steps.
pub fn processes(spec: &CaseSpec) -> Vec<Process<'_>> {
    let mut out = vec![Process {
        label: "parent".into(),
        role: Role::Parent,
        body: Body::Parent(&spec.parent),
        path: vec![Seg::Key("parent".into())],
        span: 0..0,
        spawned_by: None,
    }];
    spawns_of(&mut out, 0);
    for (i, p) in spec.peers.iter().enumerate() {
        let path = vec![Seg::Key("peer".into()), Seg::Idx(i)];
        push(
            &mut out,
            peer_label(p.get_ref()),
            Role::Peer,
            p.get_ref(),
            path,
            p.span(),
            None,
        );
    }
    let child = &spec.child;
    let path = vec![Seg::Key("child".into())];
    push(
        &mut out,
        "child".into(),
        Role::Child,
        child.get_ref(),
        path,
        child.span(),
        None,
    );
    out
}

fn push<'a>(
    out: &mut Vec<Process<'a>>,
    label: String,
    role: Role,
    p: &'a ProcSpec,
    path: Vec<Seg>,
    span: Range<usize>,
    spawned_by: Option<SpawnedBy>,
) {
    out.push(Process {
        label,
        role,
        body: Body::Proc(p),
        path,
        span,
        spawned_by,
    });
    spawns_of(out, out.len() - 1);
}

/// The processes the steps of process `creator` spawn, each with its own.
fn spawns_of(out: &mut Vec<Process<'_>>, creator: usize) {
    for (phase, steps) in out[creator].phases() {
        for (index, s) in steps.iter().enumerate() {
            let Op::Spawn(p) = &s.get_ref().op else { continue };
            let c = &out[creator];
            let label = spawn_label(&c.label, &phase, index, p);
            let mut path = c.path.clone();
            path.extend(phase.split('.').map(|k| Seg::Key(k.into())));
            path.extend([Seg::Idx(index), Seg::Key("spawn".into())]);
            let by = SpawnedBy {
                creator,
                phase: phase.clone(),
                index,
            };
            push(out, label, Role::Spawn, p, path, s.span(), Some(by));
        }
    }
}

/// Every step of every process, in the order of `processes` and then of
/// each process's phases.
pub fn steps<'p, 'a>(procs: &'p [Process<'a>]) -> Vec<StepAt<'p, 'a>> {
    let mut out = Vec::new();
    for (proc_index, process) in procs.iter().enumerate() {
        for (phase, steps) in process.phases() {
            for (index, step) in steps.iter().enumerate() {
                out.push(StepAt {
                    process,
                    proc_index,
                    phase: phase.clone(),
                    index,
                    step,
                });
            }
        }
    }
    out
}

/// Call `f` with every step's operation, anywhere in the case.
pub fn each_op(spec: &CaseSpec, mut f: impl FnMut(&Op)) {
    let procs = processes(spec);
    for s in steps(&procs) {
        f(&s.step.get_ref().op);
    }
}

/// Every process's own table (all but the parent's).
pub fn proc_specs(spec: &CaseSpec) -> Vec<&ProcSpec> {
    processes(spec).iter().filter_map(Process::spec).collect()
}

/// Walk the case in the order it runs, carrying a state down from each
/// creator to what it spawns: the parent, each peer and the child start
/// from `init` as `enter` makes it; a spawned process starts from `enter`
/// of its creator's state at its `spawn` step; each step may change its
/// process's state. The first answer (`enter`'s Err, `step`'s Some) ends
/// the walk: it is what the walk finds.
pub fn find_along<S: Clone, R>(
    spec: &CaseSpec,
    init: S,
    enter: &dyn Fn(&ProcSpec, S) -> Result<S, R>,
    step: &mut dyn FnMut(&Step, &mut S) -> Option<R>,
) -> Option<R> {
    let procs = processes(spec);
    let roots = procs.iter().enumerate().filter(|(_, p)| p.spawned_by.is_none());
    for (i, p) in roots {
        let state = match p.body {
            Body::Parent(_) => init.clone(),
            Body::Proc(ps) => match enter(ps, init.clone()) {
                Ok(s) => s,
                Err(r) => return Some(r),
            },
        };
        if let Some(r) = along(&procs, i, state, enter, step) {
            return Some(r);
        }
    }
    None
}

fn along<S: Clone, R>(
    procs: &[Process<'_>],
    i: usize,
    mut state: S,
    enter: &dyn Fn(&ProcSpec, S) -> Result<S, R>,
    step: &mut dyn FnMut(&Step, &mut S) -> Option<R>,
) -> Option<R> {
    for (phase, steps) in procs[i].phases() {
        for (index, s) in steps.iter().enumerate() {
            if let Some(r) = step(s.get_ref(), &mut state) {
                return Some(r);
            }
            let Op::Spawn(p) = &s.get_ref().op else { continue };
            let here = SpawnedBy {
                creator: i,
                phase: phase.clone(),
                index,
            };
            let Some(j) = procs.iter().position(|q| q.spawned_by.as_ref() == Some(&here)) else {
                continue;
            };
            let inner = match enter(p, state.clone()) {
                Ok(s) => s,
                Err(r) => return Some(r),
            };
            if let Some(r) = along(procs, j, inner, enter, step) {
                return Some(r);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> CaseSpec {
        toml::from_str(text).expect("a case")
    }

    const CASE: &str = r#"
        summary = "s"
        [parent]
        run = [{ spawn = { name = "p1", run = [{ spawn = { run = [{ sleep = "1s" }] } }] } }]
        [[peer]]
        name = "a"
        [child]
        run = [{ sleep = "1s" }, { spawn = { name = "inner" } }]
    "#;

    #[test]
    fn processes_in_order_with_labels_and_paths() {
        let s = spec(CASE);
        let procs = processes(&s);
        let labels: Vec<&str> = procs.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "parent",
                "parent/p1",
                "parent/p1/run0",
                "peer:a",
                "child",
                "child/inner"
            ]
        );
        let key = |k: &str| Seg::Key(k.into());
        assert_eq!(
            procs[2].path,
            [
                key("parent"),
                key("run"),
                Seg::Idx(0),
                key("spawn"),
                key("run"),
                Seg::Idx(0),
                key("spawn")
            ]
        );
        assert_eq!(procs[3].path, [key("peer"), Seg::Idx(0)]);
        assert_eq!(
            procs[5].spawned_by,
            Some(SpawnedBy {
                creator: 4,
                phase: "run".into(),
                index: 1
            })
        );
        assert_eq!(steps(&procs).len(), 5);
    }

    #[test]
    fn state_flows_down_to_what_is_spawned() {
        let s = spec(CASE);
        // Depth: each process is one below its creator; the first at depth 2 is the answer.
        let found = find_along(
            &s,
            0u32,
            &|p, d| if d == 1 { Err(p.name.clone()) } else { Ok(d + 1) },
            &mut |_, _| None,
        );
        // The parent starts from 0 without `enter`; p1 enters at 1; its spawn at 1 answers.
        assert_eq!(found, Some(None));
    }
}
