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
        .map(|n| format!("{n}{}", crate::suggest::did_you_mean(n, NAMES.iter().copied())))
        .collect()
}

/// One feature as `nsconform features` shows it, for a listing or JSON.
#[derive(Debug, serde::Serialize)]
pub struct Row<'a> {
    pub name: &'static str,
    /// What its probe checks.
    pub what: &'static str,
    /// The first Linux with it ("6.19"), when the kernel's age is what decides.
    pub since: Option<String>,
    pub found: &'a Found,
    /// Why a case that needs it is ignored here, if it is.
    pub reason: Option<String>,
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

    /// The words that name the feature as what blocked a case: the first
    /// Linux with it only where this kernel lacks it (not where a setting,
    /// a filter or gVisor keeps it away).
    pub fn gate(&self, name: &str) -> String {
        match (self.found.get(name), probes::since(name)) {
            (Some(Found::Missing(_)), Some(v)) => format!("needs `{name}` ({v})"),
            _ => format!("needs `{name}`"),
        }
    }

    /// What the probe of one feature found (None: no such feature).
    pub fn get(&self, name: &str) -> Option<&Found> {
        self.found.get(name)
    }

    /// Features as a test chooses them; the rest not probed.
    #[cfg(test)]
    pub fn of<'a>(found: impl IntoIterator<Item = (&'a str, Found)>) -> Features {
        Features {
            found: found.into_iter().map(|(n, f)| (n.to_string(), f)).collect(),
        }
    }

    /// Every feature, in the order of `FEATURES`, with what its probe found.
    pub fn rows(&self) -> Vec<Row<'_>> {
        static UNPROBED: Found = Found::Off(String::new());
        FEATURES
            .iter()
            .map(|(name, what)| {
                let since = probes::since(name);
                let found = self.found.get(*name);
                Row {
                    name,
                    what,
                    since: since.map(|Linux(a, b)| format!("{a}.{b}")),
                    found: found.unwrap_or(&UNPROBED),
                    reason: match found {
                        Some(f) => f.reason(since),
                        None => Some(format!("feature `{name}` was not probed")),
                    },
                }
            })
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_say_what_each_feature_found_and_why() {
        let mut f = Features::default();
        f.found
            .insert("listns".into(), Found::Missing("listns is ENOSYS".into()));
        f.found.insert("veth".into(), Found::Present);
        let rows = f.rows();
        assert_eq!(rows.len(), FEATURES.len());
        let row = |n: &str| rows.iter().find(|r| r.name == n).expect("a row");
        let listns = row("listns");
        assert_eq!(listns.since.as_deref(), Some("6.19"));
        assert_eq!(listns.reason.as_deref(), Some("listns is ENOSYS (needs Linux 6.19)"));
        assert_eq!(row("veth").reason, None);
        assert!(
            row("clone3")
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("not probed"))
        );
        let json = serde_json::to_value(listns).expect("json");
        assert_eq!(json["found"]["state"], "missing");
        assert_eq!(json["found"]["detail"], "listns is ENOSYS");
    }
}
