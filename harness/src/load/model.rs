//! The case model: what a case file says, after parsing.

use super::expect::Expect;
use super::ns::Ns;
use super::step::Step;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

/// A case, ready to plan.
#[derive(Clone, Debug)]
pub struct Case {
    /// `<area>::<name>`, plus `::<label>` for a matrix combination.
    pub id: String,
    pub area: String,
    pub name: String,
    pub file: PathBuf,
    /// Line of the case's first key, for reports.
    pub line: usize,
    /// Where this case sits in its file, so a probe can load the same case again.
    pub index: usize,
    /// The matrix combination's label, for a case a matrix made.
    pub label: Option<String>,
    pub spec: CaseSpec,
    /// Programs the case's commands run, with where they are named.
    pub tools: Vec<ToolUse>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ToolUse {
    pub tool: String,
    pub line: usize,
    pub field: String,
}

/// The case as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    pub name: Option<String>,
    pub summary: Option<String>,
    #[serde(default)]
    pub covers: Vec<Spanned<String>>,
    #[serde(default)]
    pub needs: Needs,
    /// "250ms", "5s" (default 10s).
    pub timeout: Option<Spanned<super::names::Dur>>,
    #[serde(default)]
    pub parent: ParentSpec,
    #[serde(default, rename = "peer")]
    pub peers: Vec<Spanned<ProcSpec>>,
    /// Left out: a child with no namespaces and no steps.
    #[serde(default = "plain_child")]
    pub child: Spanned<ProcSpec>,
    pub control: Option<Spanned<ControlSpec>>,
    /// Parameters: `{ var = ["a", "b"] }` (every combination) or a list of
    /// rows `[{ var = "a", other = "x" }]`. `{var}` in strings and keys is replaced.
    pub matrix: Option<Spanned<toml::Value>>,
    /// Trial name suffix for a matrix combination, e.g. "{prop}_{op}".
    pub label: Option<String>,
    /// Machine-wide kernel settings (/proc/sys paths) the case changes: saved
    /// before, written back after (also on failure or timeout); such a case
    /// runs alone, in this run and in any other run on the machine.
    #[serde(default)]
    pub restore: Vec<Spanned<String>>,
    /// Namespace types that are hygiene only in every process of the case
    /// (kept off the machine, not what the case shows), with the reason:
    /// `nsconform mutate` does not drop them.
    pub hygiene: Option<Spanned<Hygiene>>,
    /// Kernels on which the case is known to fail, with the bug and where
    /// it was fixed: there a failure is `xfail`, a pass `xpass`.
    #[serde(default)]
    pub xfail: Vec<Spanned<super::xfail::Xfail>>,
}

/// `{ net = "why" }`: namespaces that keep a case tidy rather than make it pass.
pub type Hygiene = BTreeMap<Ns, String>;

/// Requirements, checked before the case runs; a missing one makes the case
/// ignored with its reason.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Needs {
    /// Needs real root (CAP_SYS_ADMIN in the initial user namespace). Inferred
    /// when left out: creating namespaces other than user without a user namespace needs it.
    pub root: Option<bool>,
    /// Why the case needs root in the initial user namespace itself, which
    /// root of a user namespace of its own (how an unprivileged run runs a
    /// case that needs root) is not: it observes the initial namespaces or
    /// capabilities there, or a limit counted from there. An unprivileged
    /// run ignores it with this reason.
    pub init_userns: Option<Spanned<String>>,
    /// Kernel features probed at start-up (see `nsconform features`).
    #[serde(default)]
    pub features: Vec<Spanned<String>>,
    /// Tools that must be on PATH (argv[0] of `cmd` steps is added automatically).
    #[serde(default)]
    pub tools: Vec<String>,
    /// The first kernel with the behaviour, for reports only: gating is by probe.
    pub kernel: Option<String>,
    /// The bare kernel's behaviours the expectations rest on (see
    /// `load::names::BARE`): under a runner that differs on purpose the case
    /// is ignored with the runner's reason.
    #[serde(default)]
    pub bare: Vec<Spanned<String>>,
}

/// How a process gets its namespaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// clone(2) with the namespace flags (time: unshare + fork, so offsets can be set first).
    #[default]
    Clone,
    /// clone3(2) with the namespace flags.
    Clone3,
    /// A plain child that calls unshare(2) itself: it moves, except for pid and
    /// time where only its next child does.
    Unshare,
    /// A plain child that joins the namespaces of another process with setns(2).
    Setns,
}

/// A process of the case: the child, a peer, or a nested spawn.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcSpec {
    /// Peers and spawns are named; the child is "child".
    pub name: Option<String>,
    #[serde(default = "no_namespaces")]
    pub namespaces: Spanned<Vec<Ns>>,
    #[serde(default)]
    pub how: How,
    /// For `how = "setns"`: the process whose namespaces are joined.
    pub join: Option<String>,
    /// Run as an unprivileged uid/gid with no capabilities.
    #[serde(default)]
    pub drop_privileges: bool,
    /// Written by the creator before the process runs its steps, e.g. "0 {uid} 1".
    pub uid_map: Option<String>,
    pub gid_map: Option<String>,
    /// "deny" or "allow", written before gid_map.
    pub setgroups: Option<String>,
    /// Shorthand for uid_map "0 {euid} 1", setgroups "deny", gid_map "0 {egid} 1":
    /// root inside, the suite's own ids outside (as `unshare --map-root-user`).
    #[serde(default)]
    pub map_root: bool,
    /// Offsets (seconds) for a new time namespace, written before the process enters it.
    pub time_offsets: Option<TimeOffsets>,
    /// For `how = "clone3"`.
    pub clone3: Option<Clone3Opts>,
    #[serde(default)]
    pub run: Vec<Spanned<Step>>,
    #[serde(default)]
    pub expect: Expect,
    #[serde(default)]
    pub isolation: Expect,
    /// How the process must end, as its creator sees it: an exit status
    /// (default 0) or a signal name ("SIGKILL").
    pub exit: Option<ExitSpec>,
    /// How the process ends in the control instead, and why (`exit`, `why`).
    pub in_control: Option<super::step::InControl>,
    /// Namespaces of this process that are hygiene only, with the reason
    /// (see `CaseSpec::hygiene`).
    pub hygiene: Option<Spanned<Hygiene>>,
}

impl ProcSpec {
    /// The namespace types the process is created in, without those a
    /// control leaves out.
    pub fn effective(&self, dropped: &[Ns]) -> Vec<Ns> {
        self.namespaces
            .get_ref()
            .iter()
            .copied()
            .filter(|n| !dropped.contains(n))
            .collect()
    }
}

/// How a process must end: `0`..`255`, `"SIGKILL"`, or the table forms
/// `{ signal = "SIGKILL" }` / `{ status = 3 }`. A signal is stored by its
/// full name, as the creator's report words a status.
#[derive(Clone, Debug, PartialEq)]
pub enum ExitSpec {
    Status(i32),
    Signal(String),
}

/// What `exit` accepts, for error messages.
pub fn exit_forms() -> String {
    let names: Vec<&str> = nix::sys::signal::Signal::iterator().map(|s| s.as_str()).collect();
    format!(
        "`exit` is an exit status 0..255 (`exit = 3`) or a signal name (`exit = \"SIGKILL\"`, or `exit = {{ signal = \"SIGKILL\" }}`); the signals: {}",
        names.join(", ")
    )
}

impl ExitSpec {
    fn status(v: i64) -> Result<ExitSpec, String> {
        if (0..=255).contains(&v) {
            Ok(ExitSpec::Status(v as i32))
        } else {
            Err(format!("exit status {v} is out of range: {}", exit_forms()))
        }
    }

    fn signal(s: &str) -> Result<ExitSpec, String> {
        // Names only: a number in a string would read as a status.
        let full = if s.starts_with("SIG") {
            s.to_string()
        } else {
            format!("SIG{s}")
        };
        match full.parse::<nix::sys::signal::Signal>() {
            Ok(sig) if !s.is_empty() && !s.starts_with(|c: char| c.is_ascii_digit()) => {
                Ok(ExitSpec::Signal(sig.as_str().to_string()))
            }
            _ => {
                let hint = crate::suggest::did_you_mean(s, nix::sys::signal::Signal::iterator().map(|s| s.as_str()));
                Err(format!("unknown exit signal {s:?}{hint}: {}", exit_forms()))
            }
        }
    }
}

impl<'de> Deserialize<'de> for ExitSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, MapAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ExitSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&exit_forms())
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<ExitSpec, E> {
                ExitSpec::status(v).map_err(E::custom)
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<ExitSpec, E> {
                ExitSpec::status(v.min(i64::MAX as u64) as i64).map_err(E::custom)
            }
            fn visit_str<E: Error>(self, s: &str) -> Result<ExitSpec, E> {
                ExitSpec::signal(s).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<ExitSpec, A::Error> {
                let out = match m.next_key::<String>()?.as_deref() {
                    Some("signal") => ExitSpec::signal(&m.next_value::<String>()?),
                    Some("status") => ExitSpec::status(m.next_value::<i64>()?),
                    Some(k) => Err(format!("`exit` has no key `{k}`: {}", exit_forms())),
                    None => Err(format!("`exit` is an empty table: {}", exit_forms())),
                }
                .map_err(A::Error::custom)?;
                if m.next_key::<String>()?.is_some() {
                    return Err(A::Error::custom(format!(
                        "`exit` holds one of `signal` and `status`: {}",
                        exit_forms()
                    )));
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

impl ExitSpec {
    /// As the creator's report words it.
    pub fn describe(&self) -> String {
        match self {
            ExitSpec::Status(c) => format!("exited {c}"),
            ExitSpec::Signal(s) => format!("killed by {s}"),
        }
    }
}

fn plain_child() -> Spanned<ProcSpec> {
    Spanned::new(0..0, ProcSpec::default())
}

impl Default for ProcSpec {
    fn default() -> Self {
        ProcSpec {
            name: None,
            namespaces: no_namespaces(),
            how: How::Clone,
            join: None,
            drop_privileges: false,
            uid_map: None,
            gid_map: None,
            setgroups: None,
            map_root: false,
            time_offsets: None,
            clone3: None,
            run: Vec::new(),
            expect: Expect::default(),
            isolation: Expect::default(),
            exit: None,
            in_control: None,
            hygiene: None,
        }
    }
}

fn no_namespaces() -> Spanned<Vec<Ns>> {
    Spanned::new(0..0, Vec::new())
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeOffsets {
    #[serde(default)]
    pub monotonic: i64,
    #[serde(default)]
    pub boottime: i64,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clone3Opts {
    pub size: Option<u64>,
    #[serde(default)]
    pub set_tid: Vec<i64>,
}

/// The parent side: the sandbox's init, which creates the child.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentSpec {
    /// Before the child exists.
    #[serde(default)]
    pub setup: Vec<Spanned<Step>>,
    /// The child exists and waits (the place to write id maps).
    #[serde(default)]
    pub start: Vec<Spanned<Step>>,
    /// The child has run its steps and waits.
    #[serde(default)]
    pub run: Vec<Spanned<Step>>,
    /// The child has exited and been reaped.
    #[serde(default)]
    pub after: Vec<Spanned<Step>>,
    /// Steps run when the child reaches `sync = "<name>"`.
    #[serde(default)]
    pub on: BTreeMap<String, Vec<Spanned<Step>>>,
    /// Checked at the end of `run`, while the child is alive.
    #[serde(default)]
    pub expect: Expect,
    #[serde(default)]
    pub isolation: Expect,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSpec {
    /// Namespace types the control leaves out (default: all the case creates).
    pub drop: Option<Spanned<Vec<Ns>>>,
    /// Why a control would prove nothing for this case.
    pub none: Option<String>,
    /// Why the control proves something only in a root run (it is ignored otherwise).
    pub root: Option<String>,
    /// Why the control proves something only with the built-in runner: an
    /// external runner's own processes share what the control unshares
    /// (it is ignored under those).
    pub native: Option<String>,
}

impl CaseSpec {
    pub fn timeout(&self) -> Duration {
        self.timeout.as_ref().map_or(DEFAULT_TIMEOUT, |t| t.get_ref().get())
    }
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
