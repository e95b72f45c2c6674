//! Runners: how the child of a case gets its namespaces. The native runner
//! clones it (kernel conformance); external runners, defined as data under
//! `runners/`, start it with a tool or runtime (unshare(1), ...), with the
//! harness binary as the probe that makes the same observations.

mod def;
mod external;
pub mod oci;

pub mod probe_args;

pub use def::{FdsDef, MapsBy, RunnerDef};
pub use external::External;

use crate::load::CaseSpec;
use crate::load::model::ProcSpec;
use crate::load::ns::Ns;
use std::path::Path;

/// Which runner: `NSCONFORM_RUNNER=unshare cargo test`.
pub const RUNNER_ENV: &str = "NSCONFORM_RUNNER";

/// How to start the child.
pub enum Launch {
    /// clone(2) and friends, in the sandbox.
    Native,
    /// Through an external runtime.
    Exec(ExecPlan),
}

/// How an external runtime is started for one process. Placeholders in
/// `argv` and `env` are filled in by the creator, which knows them: the
/// element "{probe}" (the probe's argv), "{target}", "{rootfs}",
/// "{bundle}", "{scratch}", "{id}", "{count}", "{list}", "{euid}",
/// "{egid}", "{runners}".
#[derive(Clone, Debug, Default)]
pub struct ExecPlan {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The runtime wrote the id maps: the harness must not.
    pub runtime_maps: bool,
    /// Renumber the channel and kept fds from this number before exec.
    pub fds_first: Option<i32>,
    /// Build a root directory for the container.
    pub rootfs: bool,
    /// The completed OCI config (its process.args still hold "{probe}").
    pub oci: Option<serde_json::Value>,
    /// Directories to cover with a fresh tmpfs before the runtime starts.
    pub tmpfs_dirs: Vec<String>,
}

pub trait Runner: Send + Sync {
    fn name(&self) -> &str;
    /// Why this runner cannot start `child` of `case` (a control when
    /// `dropped` is not empty), if it cannot.
    fn unsupported(&self, case: &CaseSpec, child: &ProcSpec, dropped: &[Ns]) -> Option<String>;
    /// Tools the runner needs on PATH.
    fn tools(&self) -> Vec<String>;
    fn launch(&self, child: &ProcSpec, dropped: &[Ns]) -> Launch;
    /// Whether each sandbox needs a cgroup of its own for the runtime.
    fn delegates_cgroup(&self) -> bool {
        false
    }
}

pub struct Native;

impl Runner for Native {
    fn name(&self) -> &str {
        "native"
    }
    fn unsupported(&self, _: &CaseSpec, _: &ProcSpec, _: &[Ns]) -> Option<String> {
        None
    }
    fn tools(&self) -> Vec<String> {
        Vec::new()
    }
    fn launch(&self, _: &ProcSpec, _: &[Ns]) -> Launch {
        Launch::Native
    }
}

/// The runner named by NSCONFORM_RUNNER (default native), with external
/// definitions read from `dir`.
pub fn select(dir: &Path) -> Result<Box<dyn Runner>, String> {
    let name = std::env::var(RUNNER_ENV).unwrap_or_default();
    if name.is_empty() || name == "native" {
        return Ok(Box::new(Native));
    }
    let path = dir.join(format!("{name}.toml"));
    if !path.is_file() {
        let known = available(dir).join(", ");
        return Err(format!(
            "{RUNNER_ENV}={name}: no runner definition {} (known: native, {known})",
            path.display()
        ));
    }
    External::load(&path).map(|r| Box::new(r) as Box<dyn Runner>)
}

/// Names of the external runner definitions in `dir`.
pub fn available(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| {
                let p = e.ok()?.path();
                if p.extension()? != "toml" {
                    return None;
                }
                Some(p.file_stem()?.to_string_lossy().into_owned())
            })
            .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}
