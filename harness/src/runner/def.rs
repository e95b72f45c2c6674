//! An external runner's definition, as written in `runners/<name>.toml`:
//! how the runtime is told which namespaces to create, and what it does on
//! its own that the harness must know about (id maps, namespaces it always
//! makes, how fds reach the container, a bundle, deliberate differences
//! from the bare kernel).

use crate::load::ns::Ns;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerDef {
    pub name: String,
    pub summary: String,
    /// Tools that must be on PATH.
    pub tools: Vec<String>,
    /// The argv start; namespace options follow, then `separator`, then the
    /// probe. Placeholders (filled in `spawn::runtime::start`): `{target}`,
    /// `{runners}`, `{euid}`, `{egid}`, `{rootfs}`, `{bundle}`, `{scratch}`,
    /// `{id}`, `{count}`, `{list}`.
    pub command: Vec<String>,
    #[serde(default)]
    pub separator: Vec<String>,
    /// Options after the probe's argv (an OCI runtime's container id).
    #[serde(default)]
    pub trailer: Vec<String>,
    /// Options for each namespace type the runtime can create.
    pub namespaces: BTreeMap<Ns, Vec<String>>,
    /// Options that keep the creator's namespace of a type the runtime
    /// creates unless told not to (podman's `--network=host`), given when
    /// the child is not to have a new one.
    #[serde(default)]
    pub shared: BTreeMap<Ns, Vec<String>>,
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
    /// Namespace types the runtime creates whether asked or not, with why.
    #[serde(default)]
    pub always: BTreeMap<Ns, String>,
    /// Who writes a new user namespace's id maps.
    #[serde(default)]
    pub maps: MapsDef,
    /// How the channel and the fds a case keeps reach the probe.
    #[serde(default)]
    pub fds: FdsDef,
    /// The runtime needs a root directory for the container ("{rootfs}"):
    /// the harness builds one in the sandbox's scratch from the machine's
    /// top-level directories, read-only, with the probe and the case file
    /// under /.nsconform.
    #[serde(default)]
    pub rootfs: bool,
    /// An OCI bundle: the config.json template (relative to the definition's
    /// directory), completed per trial and written to "{bundle}".
    pub oci: Option<OciDef>,
    /// Directories covered with a fresh tmpfs in the sandbox before the
    /// runtime starts: where it writes its state (so it can, and nothing
    /// outlives the trial), or what it must not find.
    #[serde(default, rename = "tmpfs")]
    pub tmpfs_dirs: Vec<String>,
    /// The runtime makes cgroups below its own (systemd-nspawn): each
    /// sandbox gets a cgroup of its own, writable there and removed with it
    /// (`spawn::runtime_cgroup`).
    #[serde(default)]
    pub delegate_cgroup: bool,
    /// Environment for the runtime; values take the same placeholders.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Namespace types the runtime fails to create together, with why.
    #[serde(default)]
    pub cannot_combine: Vec<Combination>,
    /// Bare-kernel behaviours (`load::names::BARE`) the runtime changes on
    /// purpose, with how: cases that rest on one are ignored with this reason.
    #[serde(default)]
    pub differs: BTreeMap<String, String>,
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

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Combination {
    pub namespaces: Vec<Ns>,
    pub why: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapsBy {
    /// The harness writes the case's maps once the probe has said hello.
    #[default]
    Harness,
    /// The runtime writes them before the probe runs; the harness only
    /// observes. It can write the case's maps only as `root` options (root
    /// inside is the caller outside) or, for an OCI bundle, as the config's
    /// uidMappings and gidMappings.
    Runtime,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapsDef {
    #[serde(default)]
    pub by: MapsBy,
    /// Options that make the runtime map root inside to the caller's ids.
    #[serde(default)]
    pub root: Vec<String>,
    /// The setgroups the runtime leaves with those maps ("deny", "allow").
    pub setgroups: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FdsDef {
    /// The runtime passes fds from this number up (3 for runc's
    /// --preserve-fds and systemd's LISTEN_FDS): the harness renumbers the
    /// channel and the kept fds to first, first+1, ... before exec.
    pub first: Option<i32>,
    /// Options that tell the runtime which fds to pass: "{count}" is how
    /// many, "{list}" their numbers, comma-separated.
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OciDef {
    /// The config.json template, relative to the definition's directory.
    pub config: String,
    /// Why the runtime does not apply `linux.timeOffsets`, if it does not:
    /// cases that set offsets are then ignored with this reason.
    pub no_time_offsets: Option<String>,
}

impl RunnerDef {
    /// Read and check a definition; errors name the file (and the field).
    pub fn load(path: &Path) -> Result<(RunnerDef, Option<serde_json::Value>), String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
        let def: RunnerDef = toml::from_str(&text).map_err(|e| format!("{shown}: {e}"))?;
        if def.command.is_empty() {
            return Err(format!("{shown}: `command` is empty"));
        }
        for k in def.differs.keys() {
            if crate::load::names::bare_desc(k).is_none() {
                let known: Vec<&str> = crate::load::names::BARE.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "{shown}: differs.{k}: unknown bare-kernel behaviour (known: {})",
                    known.join(", ")
                ));
            }
        }
        if def.maps.by == MapsBy::Runtime && def.maps.root.is_empty() && def.oci.is_none() {
            return Err(format!(
                "{shown}: maps.by = \"runtime\" needs `maps.root` (the options that map root inside to the caller) or an `oci` bundle"
            ));
        }
        if let Some(f) = def.fds.first {
            if !(3..=64).contains(&f) {
                return Err(format!("{shown}: fds.first = {f}: expected 3..64"));
            }
        }
        for d in &def.tmpfs_dirs {
            if !d.starts_with('/') || d.contains("..") || d == "/" {
                return Err(format!("{shown}: tmpfs: {d:?} is not an absolute directory below /"));
            }
        }
        let template = match &def.oci {
            Some(o) => {
                let p: PathBuf = path.parent().unwrap_or(Path::new(".")).join(&o.config);
                let t =
                    std::fs::read_to_string(&p).map_err(|e| format!("{shown}: oci.config: {}: {e}", p.display()))?;
                let v: serde_json::Value =
                    serde_json::from_str(&t).map_err(|e| format!("{shown}: oci.config: {}: {e}", p.display()))?;
                if !v.is_object() {
                    return Err(format!("{shown}: oci.config: {}: not a JSON object", p.display()));
                }
                Some(v)
            }
            None => None,
        };
        Ok((def, template))
    }
}
