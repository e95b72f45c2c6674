//! Plan: from loaded cases to trials. Probes what the kernel offers, decides
//! per case whether it can run here (or is ignored, with the reason), and adds
//! a control trial for every case with isolation assertions.

pub mod blocked;
pub mod env;
pub mod features;
pub mod probes;
pub mod procs;
pub mod requirements;
pub mod sysctl_writes;

pub use blocked::Blocked;
pub use env::RunEnv;
pub use features::Features;

use crate::load::ns::Ns;
use crate::load::{Case, Catalogue, LoadError};
use crate::runner::Runner;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What a trial keeps of its case between planning and running: where to
/// load it again, and the little the harness needs before then. Cases are
/// parsed again where they run (in the sandbox, and to judge), so the
/// harness's memory does not grow with the number of cases.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct CaseRef {
    pub id: String,
    pub area: String,
    pub file: PathBuf,
    pub line: usize,
    pub index: usize,
    pub label: Option<String>,
    pub timeout: Duration,
    pub restore: Vec<String>,
    /// Whether the case may write a global sysctl (see `sysctl_writes`).
    #[serde(default)]
    pub may_write_sysctls: bool,
    pub child_namespaces: Vec<Ns>,
    pub covers: Vec<String>,
}

impl CaseRef {
    pub fn of(case: &Case) -> CaseRef {
        CaseRef {
            id: case.id.clone(),
            area: case.area.clone(),
            file: case.file.clone(),
            line: case.line,
            index: case.index,
            label: case.label.clone(),
            timeout: crate::plan::env::scaled(case.spec.timeout()),
            restore: case.spec.restore.iter().map(|r| r.get_ref().clone()).collect(),
            may_write_sysctls: sysctl_writes::may_write(&case.spec),
            child_namespaces: case.spec.child.get_ref().namespaces.get_ref().clone(),
            covers: case.spec.covers.iter().map(|c| c.get_ref().clone()).collect(),
        }
    }

    /// The case, parsed again from its file's bytes.
    pub fn load_from(&self, bytes: &[u8]) -> Result<Case, String> {
        let case = crate::load::load_one_bytes(
            &self.file,
            &self.area,
            bytes,
            self.index,
            self.label.as_deref(),
            Catalogue::builtin(),
        )
        .map_err(|e| e.to_string())?;
        if case.id != self.id {
            return Err(format!(
                "{}: expected case `{}`, found `{}` (was the file changed during the run?)",
                self.file.display(),
                self.id,
                case.id
            ));
        }
        Ok(case)
    }
}

/// One trial: a case, or its control.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TrialSpec {
    pub name: String,
    pub case: Arc<CaseRef>,
    /// A control run: the case without `dropped`, whose isolation assertions must fail.
    pub control: bool,
    pub dropped: Vec<Ns>,
    /// Why the trial cannot run here, if it cannot.
    pub ignore: Option<Blocked>,
    /// Unprivileged runs: the trial runs as root of a user namespace of its
    /// own (the sandbox's), not as the user (`requirements::RunAs`).
    #[serde(default)]
    pub userns: bool,
    /// The case is marked to fail on this kernel (`xfail`), with why: its
    /// failure is expected, its pass is news. Never on a control.
    #[serde(default)]
    pub xfail: Option<String>,
}

/// This kernel's release (`uname -r`), read once.
fn release() -> &'static str {
    static RELEASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RELEASE.get_or_init(|| {
        nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default()
    })
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

/// Trials for one case, its control right after it.
pub fn trials_of(case: &Case, features: &Features, env: &RunEnv, runner: &dyn Runner) -> Vec<TrialSpec> {
    use requirements::RunAs;
    let r = Arc::new(CaseRef::of(case));
    let checked = requirements::check(case, &[], features, env, runner);
    let ignore = checked.clone().err();
    let userns = checked == Ok(RunAs::OwnUserns);
    let mut out = vec![TrialSpec {
        name: case.id.clone(),
        case: r.clone(),
        control: false,
        dropped: vec![],
        ignore: ignore.clone(),
        userns,
        xfail: crate::load::xfail::mark_for(&case.spec.xfail, release()),
    }];
    if let Some(dropped) = control_drops(case) {
        let control = case.spec.control.as_ref().map(|c| c.get_ref());
        let root_only = control.and_then(|c| c.root.clone());
        let native_only = control.and_then(|c| c.native.clone());
        let mut run_as = RunAs::Suite;
        let ignore = ignore
            .or_else(|| {
                requirements::check(case, &dropped, features, env, runner)
                    .map(|a| run_as = a)
                    .err()
            })
            .or_else(|| match native_only {
                Some(why) if runner.name() != "native" => Some(Blocked::new("needs the native runner", &why)),
                _ => None,
            });
        // A control runs as its case runs: it must run the same case.
        if userns {
            run_as = RunAs::OwnUserns;
        }
        let ignore = ignore
            .or_else(|| match run_as {
                RunAs::OwnUserns => requirements::own_userns(case, &dropped, env).err().map(Blocked::from),
                RunAs::Suite => None,
            })
            .or_else(|| match root_only {
                Some(why) if !env.privileged && !userns => Some(Blocked::new("needs root", &why)),
                _ => None,
            });
        out.push(TrialSpec {
            name: format!("control::{}", case.id),
            case: r,
            control: true,
            dropped,
            ignore,
            userns: run_as == RunAs::OwnUserns,
            xfail: None,
        });
    }
    out
}

/// Every trial of a cases directory, one file at a time (a file's parsed
/// cases are dropped once planned), and the errors of the files that could
/// not be loaded.
pub fn plan_dir(
    root: &Path,
    features: &Features,
    env: &RunEnv,
    runner: &dyn Runner,
) -> Result<(Vec<TrialSpec>, Vec<LoadError>), LoadError> {
    let catalogue = Catalogue::builtin();
    let (files, mut errors) = crate::load::case_files(root)
        .map_err(|e| LoadError::whole_file(root, format!("cannot read the cases directory: {e}")))?;
    let mut seen: HashMap<String, (PathBuf, usize)> = HashMap::new();
    let mut out = Vec::new();
    for (area, path) in files {
        match crate::load::load_file(&path, &area, catalogue) {
            Ok(cases) => {
                for case in cases {
                    if let Some((file, line)) = seen.get(&case.id) {
                        errors.push(crate::load::duplicate(&case, file, *line));
                        continue;
                    }
                    seen.insert(case.id.clone(), (case.file.clone(), case.line));
                    out.extend(trials_of(&case, features, env, runner));
                }
            }
            Err(e) => errors.push(e),
        }
    }
    Ok((out, errors))
}
