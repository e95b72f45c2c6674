//! `--runtime NAME`: what the named runtime has no way to create, so that
//! a claim of it that is not isolated reads CANNOT rather than LEAK. Only a
//! name the user gives counts, never the words of the command line (a
//! wrapper script called `runc-debug` is not runc). From the runner
//! definitions in runners/ (the types a definition has no option for), and
//! a table for runtimes without one.

use super::claims::{TYPES, did_you_mean};
use std::path::Path;

/// A runtime's name, its other names, and (type, why) it cannot create.
type Known = (
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

/// Runtimes known without a runner definition, or whose definition says
/// less than the table: (name, other names, [(type, why)]).
const KNOWN: &[Known] = &[
    (
        "docker",
        &["dockerd", "moby"],
        &[("time", "Docker (docker.io 20.10) has no time namespace option")],
    ),
    ("runc", &[], &[("time", "runc 1.1 has no time namespace")]),
    (
        "bwrap",
        &["bubblewrap"],
        &[("time", "bubblewrap has no time namespace option")],
    ),
    (
        "nspawn",
        &["systemd-nspawn"],
        &[("time", "systemd-nspawn has no time namespace option")],
    ),
    ("firejail", &[], &[("time", "firejail has no time namespace option")]),
    ("podman", &[], &[("time", "podman 4.3 has no time namespace option")]),
    ("runsc", &["gvisor"], &[]),
    ("lxc", &["lxc-execute", "lxc-start"], &[]),
    ("crun", &[], &[]),
];

#[derive(Debug, Clone, Default)]
pub struct Runtime {
    pub name: String,
    /// (type, why) it cannot create.
    pub cannot: Vec<(&'static str, String)>,
}

/// The runtime named `name`, with runner definitions read from `dir`. A
/// name that nothing here knows is taken as it is (nothing is CANNOT),
/// unless it is a near miss of a known one.
pub fn named(name: &str, dir: &Path) -> Result<Runtime, String> {
    let entry = KNOWN.iter().find(|(n, other, _)| *n == name || other.contains(&name));
    let canonical = entry.map(|(n, _, _)| *n).unwrap_or(name);
    let mut cannot: Vec<(&'static str, String)> = entry
        .map(|(_, _, c)| c.iter().map(|(t, why)| (canon(t), why.to_string())).collect())
        .unwrap_or_default();
    let def = dir.join(format!("{canonical}.toml"));
    if def.is_file() {
        let (d, _) = crate::runner::RunnerDef::load(&def)?;
        for ty in TYPES.iter().copied() {
            let has = d.namespaces.keys().chain(d.always.keys()).any(|n| n.proc_name() == ty);
            if !has && !cannot.iter().any(|(t, _)| *t == ty) {
                cannot.push((
                    ty,
                    format!("its runner definition ({}) has no option for it", def.display()),
                ));
            }
        }
    } else if entry.is_none() {
        let mut known: Vec<&str> = KNOWN
            .iter()
            .flat_map(|(n, o, _)| std::iter::once(*n).chain(o.iter().copied()))
            .collect();
        let defs = crate::runner::available(dir);
        known.extend(defs.iter().map(String::as_str));
        if let Some(k) = did_you_mean(name, &known).filter(|k| *k != name) {
            return Err(format!(
                "--runtime: `{name}` is no runtime the audit knows; did you mean `{k}`? (known: {})",
                known.join(", ")
            ));
        }
    }
    cannot.sort();
    Ok(Runtime {
        name: name.to_string(),
        cannot,
    })
}

fn canon(t: &str) -> &'static str {
    TYPES.iter().copied().find(|x| *x == t).unwrap_or("time")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_named_runtime_cannot() {
        let dir = tempfile::tempdir().unwrap();
        let d = named("docker", dir.path()).unwrap();
        assert_eq!(d.cannot.len(), 1);
        assert_eq!(d.cannot[0].0, "time");
        assert!(named("youki-dev", dir.path()).unwrap().cannot.is_empty());
        let e = named("dokcer", dir.path()).unwrap_err();
        assert!(e.contains("did you mean `docker`?"), "{e}");
        assert_eq!(named("systemd-nspawn", dir.path()).unwrap().cannot[0].0, "time");
    }
}
