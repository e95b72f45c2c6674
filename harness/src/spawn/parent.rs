//! The parent side of a case, run by the sandbox's init: parent steps, peers,
//! the child, and the order they happen in.

use super::create::{self, Ended, Running};
use super::script::{Out, Proc, SandboxOut, Trial};
use super::wire::Msg;
use crate::load::model::ProcSpec;
use crate::load::step::Step;
use crate::runner::Launch;
use std::collections::BTreeMap;
use toml::Spanned;

/// Run the case; everything observed ends up in the report of the returned output.
pub fn run_case(trial: &Trial<'_>, out: SandboxOut) -> SandboxOut {
    let spec = &trial.case.spec;
    let parent = &spec.parent;
    let mut p = Proc::new(trial, "parent".into(), Out::Sandbox(Box::new(out)));
    p.vars.insert("parent".into(), nix::unistd::getpid().to_string());
    p.vars.insert("clockref".into(), crate::clock::ClockRef::now().encode());

    p.run_steps("setup", &parent.setup, &mut no_sync);
    let peers = start_peers(&mut p, &spec.peers);
    let child_spec = spec.child.get_ref();
    let mut child = if p.stopped {
        None
    } else {
        start_child(&mut p, child_spec)
    };
    if let Some(r) = &child {
        p.run_steps("start", &parent.start, &mut no_sync);
        let context = r.go_context(&p);
        let _ = r.chan.send(&Msg::Go { context });
        let on = &parent.on;
        let mut on_sync = |p: &mut Proc<'_>, name: &str| {
            let steps: &[Spanned<Step>] = on.get(name).map(|v| &v[..]).unwrap_or(&[]);
            let was = p.stopped;
            p.run_steps(&format!("on.{name}"), steps, &mut no_sync);
            p.stopped = was || p.stopped;
        };
        match create::relay(&mut p, r, &mut on_sync) {
            Ended::Done(us) => p.work += std::time::Duration::from_micros(us),
            Ended::Gone => p.progress("the child ended before it was done".into()),
        }
    }
    p.run_steps("run", &parent.run, &mut no_sync);
    if !p.stopped || trial.control {
        p.end_snapshot(&parent.expect, &parent.isolation);
    }
    if let Some(r) = child.take() {
        end(&mut p, r, child_spec);
    }
    p.run_steps("after", &parent.after, &mut no_sync);
    for (r, ps) in peers {
        end(&mut p, r, ps);
    }
    p.release_held();
    into_output(p)
}

/// The parent's answer to a `sync` from anyone but the child.
fn no_sync(_: &mut Proc<'_>, _: &str) -> Result<(), String> {
    Err("only the child syncs".into())
}

/// Create the peers, each run to the end of its steps, in order; the first
/// that cannot be created stops the case.
fn start_peers<'s>(p: &mut Proc<'_>, peers: &'s [Spanned<ProcSpec>]) -> Vec<(Running, &'s ProcSpec)> {
    let mut out = Vec::new();
    for peer in peers {
        if p.stopped {
            break;
        }
        let ps = peer.get_ref();
        let label = crate::load::walk::peer_label(ps);
        match start(p, ps, &label, Launch::Native) {
            Ok(r) => {
                p.vars.insert(label.clone(), r.pid.to_string());
                let mut ignore = |p: &mut Proc<'_>, n: &str| p.progress(format!("ignored sync {n:?} from a peer"));
                match create::relay(p, &r, &mut ignore) {
                    Ended::Done(us) => p.work += std::time::Duration::from_micros(us),
                    Ended::Gone => p.progress(format!("{label} ended before it was done")),
                }
                out.push((r, ps));
            }
            Err(e) => {
                error(p, format!("could not create {label}: {e}"));
                p.stopped = true;
            }
        }
    }
    out
}

/// Create the child (through the runner); a control goes on without it.
fn start_child(p: &mut Proc<'_>, child: &ProcSpec) -> Option<Running> {
    let trial = p.trial;
    let launch = trial.runner.launch(child, trial.dropped);
    match create::create(p, child, "child", launch) {
        Ok(r) => {
            p.vars.insert("child".into(), r.pid.to_string());
            Some(r)
        }
        Err(e) => {
            error(p, format!("could not create the child: {e}"));
            if !trial.control {
                p.stopped = true;
            }
            None
        }
    }
}

/// Tell a process to exit, reap it and record how it ended.
fn end(p: &mut Proc<'_>, r: Running, spec: &ProcSpec) {
    let label = r.label.clone();
    let status = create::finish(p, r, spec.exit.as_ref());
    exits(p).insert(label, status);
}

/// The sandbox's output, with the parent's variables and work time.
fn into_output(p: Proc<'_>) -> SandboxOut {
    let vars = p.vars.clone();
    let work = p.work;
    match p.out {
        Out::Sandbox(mut s) => {
            s.report.vars = vars;
            s.report.work_us = work.as_micros() as u64;
            *s
        }
        Out::Up(_) => unreachable!("the parent reports to the sandbox"),
    }
}

fn start(p: &mut Proc<'_>, spec: &ProcSpec, label: &str, launch: Launch) -> Result<Running, String> {
    let r = create::create(p, spec, label, launch)?;
    let context = r.go_context(p);
    r.chan.send(&Msg::Go { context }).map_err(|e| format!("go: {e}"))?;
    Ok(r)
}

fn exits<'b>(p: &'b mut Proc<'_>) -> &'b mut BTreeMap<String, String> {
    match &mut p.out {
        Out::Sandbox(s) => &mut s.report.exits,
        Out::Up(_) => unreachable!("the parent reports to the sandbox"),
    }
}

fn error(p: &mut Proc<'_>, e: String) {
    p.progress(e.clone());
    if let Out::Sandbox(s) = &mut p.out {
        s.report.errors.push(e);
    }
}
