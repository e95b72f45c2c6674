//! External runners from their definitions: whether a runtime can start a
//! case's child as the case asks, and the plan that starts it.

use super::def::{MapsBy, RunnerDef};
use super::{ExecPlan, Launch, Runner};
use crate::load::CaseSpec;
use crate::load::expect::{Expect, NsMatcher};
use crate::load::model::{How, ProcSpec};
use crate::load::ns::Ns;
use std::path::Path;

pub struct External {
    pub def: RunnerDef,
    /// The OCI config template, when the definition names one.
    pub oci: Option<serde_json::Value>,
}

impl External {
    pub fn load(path: &Path) -> Result<External, String> {
        let (def, oci) = RunnerDef::load(path)?;
        Ok(External { def, oci })
    }

    fn how_key(how: How) -> &'static str {
        match how {
            How::Clone => "clone",
            How::Clone3 => "clone3",
            How::Unshare => "unshare",
            How::Setns => "setns",
        }
    }

    /// Whether the runtime can leave the id maps as the case wants them.
    fn maps_unsupported(&self, child: &ProcSpec, eff: &[Ns]) -> Option<String> {
        let d = &self.def;
        if d.maps.by != MapsBy::Runtime || !eff.contains(&Ns::User) || child.how == How::Setns {
            return None;
        }
        let name = &d.name;
        let asked_root = child.map_root
            || (child.uid_map.as_deref() == Some("0 {euid} 1") && child.gid_map.as_deref() == Some("0 {egid} 1"));
        if child.uid_map.is_none() && child.gid_map.is_none() && !child.map_root {
            return Some(format!(
                "runner {name} writes a new user namespace's id maps itself: the case needs one whose maps are written later, or never"
            ));
        }
        if !asked_root && self.oci.is_none() {
            return Some(format!(
                "runner {name} writes the id maps itself and can only map root inside to the caller; the case asks for uid_map {:?}, gid_map {:?}",
                child.uid_map.as_deref().unwrap_or("-"),
                child.gid_map.as_deref().unwrap_or("-")
            ));
        }
        // map_root's own "deny" is what the harness must write as an
        // ordinary user; a case that needs a setgroups says so.
        if let Some(w) = &child.setgroups {
            if d.maps.setgroups.as_deref() != Some(w.as_str()) {
                return Some(format!(
                    "runner {name} writes the id maps itself, leaving setgroups {}; the case needs {w:?}",
                    d.maps.setgroups.as_deref().unwrap_or("as it is")
                ));
            }
        }
        None
    }
}

/// Whether an expectation compares this namespace type with another
/// process's as "the same".
fn checks_same(e: &Expect, ns: Ns) -> bool {
    e.ns.iter()
        .any(|(link, m)| link.ns() == ns && matches!(m, NsMatcher::Same(_)))
}

fn any_same(case: &CaseSpec, ns: Ns) -> bool {
    let c = case.child.get_ref();
    checks_same(&c.expect, ns)
        || checks_same(&c.isolation, ns)
        || checks_same(&case.parent.expect, ns)
        || checks_same(&case.parent.isolation, ns)
}

impl Runner for External {
    fn name(&self) -> &str {
        &self.def.name
    }

    fn unsupported(&self, case: &CaseSpec, child: &ProcSpec, dropped: &[Ns]) -> Option<String> {
        let ask = Asked {
            case,
            child,
            dropped,
            eff: child.effective(dropped),
        };
        // Joining is all a runner does for a setns child: no other check applies.
        if child.how == How::Setns {
            return bare_differs(self, &ask).or_else(|| cannot_join(self, &ask));
        }
        CHECKS.iter().find_map(|check| check(self, &ask))
    }

    fn tools(&self) -> Vec<String> {
        self.def.tools.clone()
    }

    fn delegates_cgroup(&self) -> bool {
        self.def.delegate_cgroup
    }

    fn launch(&self, child: &ProcSpec, dropped: &[Ns]) -> Launch {
        let d = &self.def;
        let eff = child.effective(dropped);
        let mut argv;
        if child.how == How::Setns {
            let j = d.join.as_ref().expect("checked by unsupported()");
            argv = j.command.clone();
            for n in &eff {
                argv.extend(j.namespaces.get(n).cloned().unwrap_or_default());
            }
            argv.extend(j.separator.iter().cloned());
            argv.push("{probe}".into());
            return Launch::Exec(ExecPlan {
                argv,
                ..Default::default()
            });
        }
        argv = d.command.clone();
        argv.extend(d.how.get(Self::how_key(child.how)).cloned().unwrap_or_default());
        for n in &eff {
            argv.extend(d.namespaces.get(n).cloned().unwrap_or_default());
        }
        for (_, opts) in d.shared.iter().filter(|(n, _)| !eff.contains(n)) {
            argv.extend(opts.iter().cloned());
        }
        let runtime_maps = d.maps.by == MapsBy::Runtime && eff.contains(&Ns::User);
        if runtime_maps && self.oci.is_none() {
            argv.extend(d.maps.root.iter().cloned());
        }
        if let (Some(o), true) = (&child.time_offsets, eff.contains(&Ns::Time)) {
            argv.extend(d.time_offsets.iter().map(|a| {
                a.replace("{monotonic}", &o.monotonic.to_string())
                    .replace("{boottime}", &o.boottime.to_string())
            }));
        }
        argv.extend(d.fds.options.iter().cloned());
        argv.extend(d.separator.iter().cloned());
        // An OCI runtime finds the probe in the bundle's config.
        if self.oci.is_none() {
            argv.push("{probe}".into());
        }
        argv.extend(d.trailer.iter().cloned());
        let oci = self
            .oci
            .as_ref()
            .map(|t| super::oci::complete(t, &eff, child.time_offsets.as_ref()));
        Launch::Exec(ExecPlan {
            argv,
            env: d.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            runtime_maps,
            fds_first: d.fds.first,
            rootfs: d.rootfs,
            oci,
            tmpfs_dirs: d.tmpfs_dirs.clone(),
        })
    }
}

/// What a case asks of a runner for its child.
struct Asked<'a> {
    case: &'a CaseSpec,
    child: &'a ProcSpec,
    dropped: &'a [Ns],
    /// The child's namespaces, without those a control leaves out.
    eff: Vec<Ns>,
}

/// Why a runner cannot start a child as asked, one reason each; the first
/// that applies is the trial's.
type Check = fn(&External, &Asked<'_>) -> Option<String>;

const CHECKS: &[Check] = &[
    bare_differs,
    time_unshare_then_exec,
    how_supported,
    namespaces_supported,
    combination_supported,
    always_created,
    External::maps_check,
    signal_exit_reported,
    time_offsets_supported,
];

impl External {
    fn maps_check(&self, ask: &Asked<'_>) -> Option<String> {
        self.maps_unsupported(ask.child, &ask.eff)
    }
}

fn bare_differs(r: &External, ask: &Asked<'_>) -> Option<String> {
    let name = &r.def.name;
    ask.case.needs.bare.iter().find_map(|b| {
        let why = r.def.differs.get(b.get_ref())?;
        let what = crate::load::names::bare_desc(b.get_ref()).unwrap_or("?");
        Some(format!(
            "the case expects the bare kernel's behaviour ({what}); runner {name} differs on purpose: {why}"
        ))
    })
}

fn cannot_join(r: &External, ask: &Asked<'_>) -> Option<String> {
    let name = &r.def.name;
    let Some(j) = &r.def.join else {
        return Some(format!("runner {name} cannot join another process's namespaces"));
    };
    ask.child
        .namespaces
        .get_ref()
        .iter()
        .find(|n| !j.namespaces.contains_key(n))
        .map(|n| format!("runner {name} cannot join a {n} namespace"))
}

/// A runner execs the probe, and execve moves a process that unshared its
/// time namespace into it: "the caller stays out" cannot be shown.
fn time_unshare_then_exec(r: &External, ask: &Asked<'_>) -> Option<String> {
    (ask.child.how == How::Unshare && ask.eff.contains(&Ns::Time)).then(|| {
        format!(
            "runner {} starts the probe with execve, which enters time_for_children: a caller that unshared CLONE_NEWTIME cannot stay outside",
            r.def.name
        )
    })
}

fn how_supported(r: &External, ask: &Asked<'_>) -> Option<String> {
    let how = External::how_key(ask.child.how);
    (!r.def.how.contains_key(how)).then(|| format!("runner {} cannot create a child with how = \"{how}\"", r.def.name))
}

fn namespaces_supported(r: &External, ask: &Asked<'_>) -> Option<String> {
    let n = ask.eff.iter().find(|n| !r.def.namespaces.contains_key(n))?;
    Some(format!("runner {} cannot create a {n} namespace", r.def.name))
}

fn combination_supported(r: &External, ask: &Asked<'_>) -> Option<String> {
    let c = r
        .def
        .cannot_combine
        .iter()
        .find(|c| c.namespaces.iter().all(|n| ask.eff.contains(n)))?;
    let names: Vec<&str> = c.namespaces.iter().map(|n| n.proc_name()).collect();
    Some(format!(
        "runner {} cannot make {} namespaces together: {}",
        r.def.name,
        names.join("+"),
        c.why
    ))
}

/// A namespace the runner always creates: a control cannot leave it out,
/// and a case cannot check that the child shares its creator's.
fn always_created(r: &External, ask: &Asked<'_>) -> Option<String> {
    let name = &r.def.name;
    r.def.always.iter().find_map(|(ns, why)| {
        if ask.dropped.contains(ns) {
            Some(format!(
                "runner {name} always creates a {ns} namespace ({why}): the control cannot leave it out"
            ))
        } else if !ask.eff.contains(ns) && any_same(ask.case, *ns) {
            Some(format!(
                "runner {name} always creates a {ns} namespace ({why}): the case checks that the child shares its creator's"
            ))
        } else {
            None
        }
    })
}

fn signal_exit_reported(r: &External, ask: &Asked<'_>) -> Option<String> {
    let child = ask.child;
    let control_exit = child.in_control.as_ref().and_then(|c| c.exit.as_ref());
    let exit = if ask.dropped.is_empty() {
        child.exit.as_ref()
    } else {
        control_exit.or(child.exit.as_ref())
    };
    (matches!(exit, Some(crate::load::model::ExitSpec::Signal(_))) && !r.def.signal_exits).then(|| {
        format!(
            "runner {} does not report a child killed by a signal as such",
            r.def.name
        )
    })
}

fn time_offsets_supported(r: &External, ask: &Asked<'_>) -> Option<String> {
    if ask.child.time_offsets.is_none() || !ask.eff.contains(&Ns::Time) {
        return None;
    }
    let name = &r.def.name;
    if let Some(why) = r.def.oci.as_ref().and_then(|o| o.no_time_offsets.as_ref()) {
        return Some(format!("runner {name} cannot set time namespace offsets: {why}"));
    }
    (r.def.time_offsets.is_empty() && r.oci.is_none())
        .then(|| format!("runner {name} cannot set time namespace offsets"))
}
