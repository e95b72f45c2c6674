//! External runners from their TOML definitions: the argv that starts the
//! child in new namespaces (or in another process's), with the probe last.

use super::{Launch, Runner};
use crate::load::model::{How, ProcSpec};
use crate::load::ns::Ns;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerDef {
    pub name: String,
    pub summary: String,
    /// Tools that must be on PATH.
    pub tools: Vec<String>,
    /// The argv start; namespace options follow, then `separator`, then the probe.
    pub command: Vec<String>,
    #[serde(default)]
    pub separator: Vec<String>,
    /// Options for each namespace type the runtime can create.
    pub namespaces: BTreeMap<Ns, Vec<String>>,
    /// Extra options by `how`: "clone" (the child is in every new namespace)
    /// and "unshare" (the caller moves itself). A missing `how` is unsupported.
    pub how: BTreeMap<String, Vec<String>>,
    /// Options that set time namespace offsets; "{monotonic}", "{boottime}" are filled in.
    #[serde(default)]
    pub time_offsets: Vec<String>,
    /// Joining another process's namespaces (`how = "setns"`), if the runtime can.
    pub join: Option<JoinDef>,
    /// Whether the runtime's own exit status shows a child killed by a signal
    /// as that signal (so a case can require it).
    #[serde(default = "yes")]
    pub signal_exits: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinDef {
    /// "{target}" is the pid of the process whose namespaces are joined.
    pub command: Vec<String>,
    pub namespaces: BTreeMap<Ns, Vec<String>>,
    #[serde(default)]
    pub separator: Vec<String>,
}

pub struct External {
    pub def: RunnerDef,
}

impl External {
    pub fn load(path: &Path) -> Result<External, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let def: RunnerDef = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if def.command.is_empty() {
            return Err(format!("{}: `command` is empty", path.display()));
        }
        Ok(External { def })
    }

    fn how_key(how: How) -> &'static str {
        match how {
            How::Clone => "clone",
            How::Clone3 => "clone3",
            How::Unshare => "unshare",
            How::Setns => "setns",
        }
    }
}

impl Runner for External {
    fn name(&self) -> &str {
        &self.def.name
    }

    fn unsupported(&self, child: &ProcSpec, dropped: &[Ns]) -> Option<String> {
        let d = &self.def;
        if child.how == How::Setns {
            let j = match &d.join {
                Some(j) => j,
                None => return Some(format!("runner {} cannot join another process's namespaces", d.name)),
            };
            return child
                .namespaces
                .get_ref()
                .iter()
                .find(|n| !j.namespaces.contains_key(n))
                .map(|n| format!("runner {} cannot join a {n} namespace", d.name));
        }
        // A runner execs the probe, and execve moves a process that unshared
        // its time namespace into it: "the caller stays out" cannot be shown.
        if child.how == How::Unshare
            && child
                .namespaces
                .get_ref()
                .iter()
                .any(|n| *n == Ns::Time && !dropped.contains(n))
        {
            return Some(format!(
                "runner {} starts the probe with execve, which enters time_for_children: a caller that unshared CLONE_NEWTIME cannot stay outside",
                d.name
            ));
        }
        if !d.how.contains_key(Self::how_key(child.how)) {
            return Some(format!(
                "runner {} cannot create a child with how = \"{}\"",
                d.name,
                Self::how_key(child.how)
            ));
        }
        if let Some(n) = child
            .namespaces
            .get_ref()
            .iter()
            .find(|n| !dropped.contains(n) && !d.namespaces.contains_key(n))
        {
            return Some(format!("runner {} cannot create a {n} namespace", d.name));
        }
        if matches!(child.exit, Some(crate::load::model::ExitSpec::Signal(_))) && !d.signal_exits {
            return Some(format!(
                "runner {} does not report a child killed by a signal as such",
                d.name
            ));
        }
        if child.time_offsets.is_some() && !dropped.contains(&Ns::Time) && d.time_offsets.is_empty() {
            return Some(format!("runner {} cannot set time namespace offsets", d.name));
        }
        None
    }

    fn tools(&self) -> Vec<String> {
        self.def.tools.clone()
    }

    fn launch(&self, child: &ProcSpec, dropped: &[Ns]) -> Launch {
        let d = &self.def;
        let eff: Vec<Ns> = Ns::ALL
            .into_iter()
            .filter(|n| child.namespaces.get_ref().contains(n) && !dropped.contains(n))
            .collect();
        let mut argv;
        if child.how == How::Setns {
            let j = d.join.as_ref().expect("checked by unsupported()");
            argv = j.command.clone();
            for n in &eff {
                argv.extend(j.namespaces.get(n).cloned().unwrap_or_default());
            }
            argv.extend(j.separator.iter().cloned());
        } else {
            argv = d.command.clone();
            argv.extend(d.how.get(Self::how_key(child.how)).cloned().unwrap_or_default());
            for n in &eff {
                argv.extend(d.namespaces.get(n).cloned().unwrap_or_default());
            }
            if let (Some(o), true) = (&child.time_offsets, eff.contains(&Ns::Time)) {
                argv.extend(d.time_offsets.iter().map(|a| {
                    a.replace("{monotonic}", &o.monotonic.to_string())
                        .replace("{boottime}", &o.boottime.to_string())
                }));
            }
            argv.extend(d.separator.iter().cloned());
        }
        argv.push("{probe}".into());
        Launch::Exec(argv)
    }
}
