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
    let mut no_sync = |_: &mut Proc<'_>, _: &str| -> Result<(), String> { Err("only the child syncs".into()) };

    p.run_steps("setup", &parent.setup, &mut no_sync);

    let mut peers: Vec<(Running, &ProcSpec)> = Vec::new();
    for peer in &spec.peers {
        if p.stopped {
            break;
        }
        let ps = peer.get_ref();
        let label = crate::load::walk::peer_label(ps);
        match start(&mut p, ps, &label, Launch::Native) {
            Ok(r) => {
                p.vars.insert(label.clone(), r.pid.to_string());
                let mut ignore = |p: &mut Proc<'_>, n: &str| p.progress(format!("ignored sync {n:?} from a peer"));
                match create::relay(&mut p, &r, &mut ignore) {
                    Ended::Done(us) => p.work += std::time::Duration::from_micros(us),
                    Ended::Gone => p.progress(format!("{label} ended before it was done")),
                }
                peers.push((r, ps));
            }
            Err(e) => {
                error(&mut p, format!("could not create {label}: {e}"));
                p.stopped = true;
            }
        }
    }

    let child_spec = spec.child.get_ref();
    let mut child = None;
    if !p.stopped {
        let launch = trial.runner.launch(child_spec, trial.dropped);
        match create::create(&mut p, child_spec, "child", launch) {
            Ok(r) => {
                p.vars.insert("child".into(), r.pid.to_string());
                child = Some(r);
            }
            Err(e) => {
                error(&mut p, format!("could not create the child: {e}"));
                if !trial.control {
                    p.stopped = true;
                }
            }
        }
    }
    if let Some(r) = &child {
        p.run_steps("start", &parent.start, &mut no_sync);
        let context = r.go_context(&p);
        let _ = r.chan.send(&Msg::Go { context });
        let on = &parent.on;
        let mut on_sync = |p: &mut Proc<'_>, name: &str| {
            let steps: &[Spanned<Step>] = on.get(name).map(|v| &v[..]).unwrap_or(&[]);
            let was = p.stopped;
            p.run_steps(&format!("on.{name}"), steps, &mut |_, _| {
                Err("only the child syncs".into())
            });
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
        let label = r.label.clone();
        let status = create::finish(&mut p, r, child_spec.exit.as_ref());
        exits(&mut p).insert(label, status);
    }
    p.run_steps("after", &parent.after, &mut no_sync);
    for (r, ps) in peers {
        let label = r.label.clone();
        let status = create::finish(&mut p, r, ps.exit.as_ref());
        exits(&mut p).insert(label, status);
    }
    p.release_held();
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
