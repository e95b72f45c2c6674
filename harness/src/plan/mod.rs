//! Plan: from loaded cases to trials. Probes what the kernel offers, decides
//! per case whether it can run here (or is ignored, with the reason), and adds
//! a control trial for every case with isolation assertions.

pub mod env;
pub mod features;
pub mod procs;
pub mod requirements;

pub use env::RunEnv;
pub use features::Features;

use crate::load::Case;
use crate::load::ns::Ns;
use crate::runner::Runner;
use std::sync::Arc;

/// One trial: a case, or its control.
#[derive(Clone, Debug)]
pub struct TrialSpec {
    pub name: String,
    pub case: Arc<Case>,
    /// A control run: the case without `dropped`, whose isolation assertions must fail.
    pub control: bool,
    pub dropped: Vec<Ns>,
    /// Why the trial cannot run here, if it cannot.
    pub ignore: Option<String>,
}

/// The namespaces a control leaves out.
pub fn control_drops(case: &Case) -> Option<Vec<Ns>> {
    let spec = &case.spec;
    if let Some(c) = &spec.control {
        if c.get_ref().none.is_some() {
            return None;
        }
        if let Some(d) = &c.get_ref().drop {
            return Some(d.get_ref().clone());
        }
    }
    if !crate::load::has_isolation(spec) {
        return None;
    }
    let used: Vec<Ns> = crate::load::namespaces_used(spec).into_iter().collect();
    (!used.is_empty()).then_some(used)
}

/// Trials for every case, controls right after their case.
pub fn trials(cases: Vec<Case>, features: &Features, env: &RunEnv, runner: &dyn Runner) -> Vec<TrialSpec> {
    let mut out = Vec::new();
    for case in cases {
        let case = Arc::new(case);
        let ignore = requirements::check(&case, &[], features, env, runner).err();
        out.push(TrialSpec {
            name: case.id.clone(),
            case: case.clone(),
            control: false,
            dropped: vec![],
            ignore: ignore.clone(),
        });
        if let Some(dropped) = control_drops(&case) {
            let root_only = case.spec.control.as_ref().and_then(|c| c.get_ref().root.clone());
            let ignore = ignore
                .or_else(|| requirements::check(&case, &dropped, features, env, runner).err())
                .or_else(|| match root_only {
                    Some(why) if !env.privileged => Some(format!("needs root: {why}")),
                    _ => None,
                });
            out.push(TrialSpec {
                name: format!("control::{}", case.id),
                case,
                control: true,
                dropped,
                ignore,
            });
        }
    }
    out
}
