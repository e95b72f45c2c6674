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
        let d = &self.def;
        let name = &d.name;
        for b in &case.needs.bare {
            if let Some(why) = d.differs.get(b.get_ref()) {
                let what = crate::load::names::bare_desc(b.get_ref()).unwrap_or("?");
                return Some(format!(
                    "the case expects the bare kernel's behaviour ({what}); runner {name} differs on purpose: {why}"
                ));
            }
        }
        if child.how == How::Setns {
            let j = match &d.join {
                Some(j) => j,
                None => return Some(format!("runner {name} cannot join another process's namespaces")),
            };
            return child
                .namespaces
                .get_ref()
                .iter()
                .find(|n| !j.namespaces.contains_key(n))
                .map(|n| format!("runner {name} cannot join a {n} namespace"));
        }
        // A runner execs the probe, and execve moves a process that unshared
        // its time namespace into it: "the caller stays out" cannot be shown.
        let eff = child.effective(dropped);
        if child.how == How::Unshare && eff.contains(&Ns::Time) {
            return Some(format!(
                "runner {name} starts the probe with execve, which enters time_for_children: a caller that unshared CLONE_NEWTIME cannot stay outside"
            ));
        }
        if !d.how.contains_key(Self::how_key(child.how)) {
            return Some(format!(
                "runner {name} cannot create a child with how = \"{}\"",
                Self::how_key(child.how)
            ));
        }
        if let Some(n) = eff.iter().find(|n| !d.namespaces.contains_key(n)) {
            return Some(format!("runner {name} cannot create a {n} namespace"));
        }
        for c in &d.cannot_combine {
            if c.namespaces.iter().all(|n| eff.contains(n)) {
                let names: Vec<&str> = c.namespaces.iter().map(|n| n.proc_name()).collect();
                return Some(format!(
                    "runner {name} cannot make {} namespaces together: {}",
                    names.join("+"),
                    c.why
                ));
            }
        }
        for (ns, why) in &d.always {
            if dropped.contains(ns) {
                return Some(format!(
                    "runner {name} always creates a {ns} namespace ({why}): the control cannot leave it out"
                ));
            }
            if !eff.contains(ns) && any_same(case, *ns) {
                return Some(format!(
                    "runner {name} always creates a {ns} namespace ({why}): the case checks that the child shares its creator's"
                ));
            }
        }
        if let Some(why) = self.maps_unsupported(child, &eff) {
            return Some(why);
        }
        let control_exit = child.in_control.as_ref().and_then(|c| c.exit.as_ref());
        let exit = if dropped.is_empty() {
            child.exit.as_ref()
        } else {
            control_exit.or(child.exit.as_ref())
        };
        if matches!(exit, Some(crate::load::model::ExitSpec::Signal(_))) && !d.signal_exits {
            return Some(format!(
                "runner {name} does not report a child killed by a signal as such"
            ));
        }
        if child.time_offsets.is_some() && eff.contains(&Ns::Time) {
            if let Some(why) = d.oci.as_ref().and_then(|o| o.no_time_offsets.as_ref()) {
                return Some(format!("runner {name} cannot set time namespace offsets: {why}"));
            }
            if d.time_offsets.is_empty() && self.oci.is_none() {
                return Some(format!("runner {name} cannot set time namespace offsets"));
            }
        }
        None
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
