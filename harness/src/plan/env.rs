//! Who the suite runs as, and the ids a case can drop to.

use crate::sys;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The sandbox's paths and names, which cases and the harness both use.
/// Writable, private to the case (a tmpfs in the sandbox).
pub const SCRATCH: &str = "/tmp";
pub const HOSTNAME: &str = "nsconform";
pub const DOMAINNAME: &str = "nsconform.invalid";
/// Where the harness binary is bound for an external runner's probe, when
/// its own path lies under a directory the sandbox covers.
pub const PROBE_BIND: &str = "/run/.nsconform-probe";
/// Where the runner definitions' directory is bound (read-only) for a
/// runner's own files ("{runners}"), when it lies under a directory the
/// sandbox covers.
pub const RUNNERS_BIND: &str = "/run/.nsconform-runners";

/// Where the case file is copied, under its own name, in the sandbox's
/// scratch for an external runner's probe.
pub const CASE_COPY_DIR: &str = "/tmp/.nsconform-case";

pub const CASES_ENV: &str = "NSCONFORM_CASES";
pub const RUNNERS_ENV: &str = "NSCONFORM_RUNNERS";

fn project_dir(env: &str, name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return PathBuf::from(p);
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name);
    if built.is_dir() { built } else { PathBuf::from(name) }
}

/// The cases to run: NSCONFORM_CASES, else the project's `cases/`.
pub fn cases_dir() -> PathBuf {
    project_dir(CASES_ENV, "cases")
}

/// The external runners: NSCONFORM_RUNNERS, else the project's `runners/`.
pub fn runners_dir() -> PathBuf {
    project_dir(RUNNERS_ENV, "runners")
}

/// A subcommand's arguments (those after its name), or the exit code once
/// clap has printed its help (0) or its error (2).
pub fn parse_args<T: clap::Parser>(subcommand: &str, args: &[String]) -> Result<T, ExitCode> {
    let argv = std::iter::once(format!("nsconform {subcommand}")).chain(args.iter().cloned());
    T::try_parse_from(argv).map_err(|e| {
        let _ = e.print();
        ExitCode::from(e.exit_code() as u8)
    })
}

#[derive(Clone, Debug)]
pub struct RunEnv {
    /// CAP_SYS_ADMIN: the sandbox needs no user namespace and root semantics are tested as they are.
    pub privileged: bool,
    pub euid: u32,
    pub egid: u32,
    /// `{uid}`/`{gid}`: what `drop_privileges` becomes in a root run, the user's own ids otherwise.
    pub uid: u32,
    pub gid: u32,
    /// A cgroup hierarchy the suite is not at the root of (`cgroup2` or
    /// `cgroup:<controllers>`), read before any case's cgroup namespace.
    pub cgroup_nonroot: Option<String>,
    /// The sandbox's own pid_max, where pid_max is per pid namespace: a case
    /// that forks without end runs out of pids instead of into the machine's.
    pub sandbox_pid_max: Option<u32>,
    /// The initial namespaces' links by type, read before any sandbox (a
    /// kernel thread's), or why they cannot be read here.
    pub initial_ns: Result<std::collections::BTreeMap<String, String>, String>,
    /// Unprivileged runs: the ids a user namespace of the run's own can map
    /// beyond root (see `SubIds`); `None` where only the user's own id can be.
    pub subids: Option<SubIds>,
}

/// pid_max in each sandbox: room for every case (set_tid asks for 4242), far
/// below what would strain the machine.
pub const SANDBOX_PID_MAX: u32 = 8192;

/// The variable that carries the hierarchy `mount_cgroup` picks for "nonroot".
pub const CGROUP_VAR: &str = "cgroup_nonroot";

pub const DROP_UID_ENV: &str = "NSCONFORM_DROP_UID";
pub const DROP_GID_ENV: &str = "NSCONFORM_DROP_GID";

impl RunEnv {
    /// The ids `drop_privileges` becomes when the case has root over its
    /// namespaces: the suite's root, or root of a user namespace of its own.
    pub fn drop_ids() -> (u32, u32) {
        let env_id = |k: &str, d: u32| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
        (env_id(DROP_UID_ENV, 1000), env_id(DROP_GID_ENV, 1000))
    }

    /// The environment a trial's case sees. A trial run as root of a user
    /// namespace of its own (`TrialSpec::userns`, unprivileged runs) sees
    /// what a root run shows: it is uid 0 there, and drops to the drop ids
    /// where the user namespace maps them.
    pub fn for_trial(&self, userns: bool) -> RunEnv {
        if !userns {
            return self.clone();
        }
        let (uid, gid) = RunEnv::drop_ids();
        RunEnv {
            euid: 0,
            egid: 0,
            uid,
            gid,
            ..self.clone()
        }
    }

    pub fn detect() -> RunEnv {
        let euid = nix::unistd::geteuid().as_raw();
        let egid = nix::unistd::getegid().as_raw();
        let cap_admin = sys::capget()
            .map(|(eff, _, _)| eff & (1 << sys::CAP_SYS_ADMIN) != 0)
            .unwrap_or(false);
        let privileged = cap_admin;
        let (uid, gid) = if privileged { RunEnv::drop_ids() } else { (euid, egid) };
        RunEnv {
            privileged,
            euid,
            egid,
            uid,
            gid,
            cgroup_nonroot: crate::observe::cgroups::nonroot(&crate::observe::cgroups::own()).map(|m| m.encode()),
            sandbox_pid_max: None,
            initial_ns: crate::observe::initial::read(),
            subids: if privileged { None } else { SubIds::detect(euid) },
        }
    }
}

/// The newuidmap and newgidmap helpers (package `uidmap`), which map the
/// ranges /etc/subuid and /etc/subgid give a user into its user namespaces.
pub const NEWUIDMAP: &str = "newuidmap";
pub const NEWGIDMAP: &str = "newgidmap";

/// Subordinate ids: what lets an unprivileged run's user namespaces map more
/// than root. With them, the run's user namespace maps root to the user and
/// 1..=count to the start of the user's ranges, so a case that drops to
/// other ids or maps them in its own user namespaces can run too.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubIds {
    pub uid_start: u32,
    pub gid_start: u32,
    /// Ids mapped beyond root, the same for uids and gids (the smaller range).
    pub count: u32,
    pub newuidmap: PathBuf,
    pub newgidmap: PathBuf,
}

impl SubIds {
    /// The user's first range in /etc/subuid and /etc/subgid (by name or
    /// uid: newgidmap checks /etc/subgid against the user too), if both
    /// files give it one and both helpers are installed.
    pub fn detect(euid: u32) -> Option<SubIds> {
        let newuidmap = which::which(NEWUIDMAP).ok()?;
        let newgidmap = which::which(NEWGIDMAP).ok()?;
        let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(euid))
            .ok()
            .flatten()
            .map(|u| u.name);
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let (uid_start, uids) = first_range(&read("/etc/subuid")?, name.as_deref(), euid)?;
        let (gid_start, gids) = first_range(&read("/etc/subgid")?, name.as_deref(), euid)?;
        Some(SubIds {
            uid_start,
            gid_start,
            count: uids.min(gids),
            newuidmap,
            newgidmap,
        })
    }
}

/// The first `start:count` of `owner` (its name or its uid) in a subuid or
/// subgid file's text.
pub fn first_range(text: &str, name: Option<&str>, uid: u32) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let (owner, start, count) = (f.next()?, f.next()?, f.next()?);
        if f.next().is_some() || !(Some(owner) == name || owner == uid.to_string()) {
            return None;
        }
        let (start, count) = (start.parse::<u32>().ok()?, count.parse::<u32>().ok()?);
        (count > 0).then_some((start, count))
    })
}

/// The factor the guest's init sets for the cases' timeouts and retry
/// windows (its measured slowdown).
pub const TIMEOUT_SCALE_ENV: &str = "NSCONFORM_TIMEOUT_SCALE";

/// A case's timeout or a step's retry window scaled for a slow machine (an
/// emulated guest); on this machine, as written.
pub fn scaled(t: Duration) -> Duration {
    static SCALE: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let s = *SCALE.get_or_init(|| {
        std::env::var(TIMEOUT_SCALE_ENV)
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 1.0)
            .unwrap_or(1.0)
    });
    t.mul_f64(s)
}

#[cfg(test)]
mod tests {
    use super::first_range;

    #[test]
    fn a_users_first_range_by_name_or_uid() {
        let text = "other:100000:65536\nci:200000:300000\nci:900000:10\n1234:5:6\nbad line\nzero:1:0\n";
        assert_eq!(first_range(text, Some("ci"), 999), Some((200000, 300000)));
        assert_eq!(first_range(text, None, 1234), Some((5, 6)));
        assert_eq!(first_range(text, Some("zero"), 7), None, "an empty range is none");
        assert_eq!(first_range(text, Some("nobody"), 7), None);
    }
}
