//! Kernel features, probed once at start-up on the running kernel (never
//! inferred from the version string, but for one that cannot be seen any
//! other way). Cases name what they need; a missing feature makes a case
//! ignored with the probe's reason. The probes themselves are the table in
//! `plan::probes`.

pub use super::probes::found::{Found, Linux};
use super::probes::{self, PROBES};
use std::collections::BTreeMap;

pub use crate::load::names::{FEATURES, NAMES, is_known};

/// Pretend these features are absent (comma-separated), to check gating.
pub const PRETEND_ENV: &str = "NSCONFORM_PRETEND_MISSING";

/// Names in NSCONFORM_PRETEND_MISSING that are no feature, each with the
/// nearest feature names: a typo there would otherwise gate nothing and go
/// unnoticed.
pub fn unknown_pretended() -> Vec<String> {
    std::env::var(PRETEND_ENV)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty() && !is_known(n))
        .map(|n| format!("{n}{}", crate::load::suggest::did_you_mean(n, NAMES.iter().copied())))
        .collect()
}

/// What the probes found, by feature name.
#[derive(Clone, Debug, Default)]
pub struct Features {
    found: BTreeMap<String, Found>,
}

impl Features {
    /// Ok when the feature is here, else why not.
    pub fn check(&self, name: &str) -> Result<(), String> {
        match self.found.get(name) {
            Some(f) => f.reason(probes::since(name)).map_or(Ok(()), Err),
            None => Err(format!("feature `{name}` was not probed")),
        }
    }

    /// What the probe of one feature found (None: no such feature).
    pub fn get(&self, name: &str) -> Option<&Found> {
        self.found.get(name)
    }

    /// Probe in a short-lived child, so a probe that creates namespaces or
    /// changes credentials never touches the harness.
    pub fn probe(privileged: bool) -> Features {
        let mut found = match run_in_child(privileged) {
            Ok(f) => f,
            Err(e) => NAMES
                .iter()
                .map(|n| (n.to_string(), Found::Off(format!("the feature probe failed: {e}"))))
                .collect(),
        };
        if let Ok(list) = std::env::var(PRETEND_ENV) {
            for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                found.insert(
                    name.to_string(),
                    Found::Off(format!("`{name}` pretended absent by {PRETEND_ENV}")),
                );
            }
        }
        Features { found }
    }
}

/// Every probe of the table, in a child that sends back what each found.
fn run_in_child(privileged: bool) -> Result<BTreeMap<String, Found>, String> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
    // SAFETY: start-up is single-threaded, so fork is sound and the child
    // may run ordinary Rust code; it only runs the probes, writes their
    // answers and leaves through run_quiet's _exit.
    match unsafe { nix::unistd::fork() }.map_err(|e| e.to_string())? {
        nix::unistd::ForkResult::Child => crate::entry::run_quiet(move || {
            drop(r);
            let here = probes::Here { privileged };
            let found: BTreeMap<&str, Found> = PROBES.iter().map(|p| (p.name, (p.run)(&here))).collect();
            let _ = serde_json::to_writer(std::fs::File::from(w), &found);
            0
        }),
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let answer: Result<BTreeMap<String, Found>, _> = serde_json::from_reader(std::fs::File::from(r));
            let _ = nix::sys::wait::waitpid(child, None);
            let mut found = answer.unwrap_or_default();
            for n in NAMES {
                found
                    .entry(n.to_string())
                    .or_insert_with(|| Found::Off("the probe did not answer".into()));
            }
            Ok(found)
        }
    }
}
