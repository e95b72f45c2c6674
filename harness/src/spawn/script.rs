//! A process of a case running its steps: the step loop, outcome checks,
//! snapshots of observations, and where messages go.

use super::channel::Channel;
use super::wire::Msg;
use crate::load::Case;
use crate::load::expect::{Expect, ObsKey};
use crate::load::flags::errno_name;
use crate::load::names::Dur;
use crate::load::ns::{Ns, NsLink};
use crate::load::step::{Op, Step};
use crate::ops::{self, Fail};
use crate::outcome::{Report, Snapshot, StepFailure};
use crate::plan::RunEnv;
use crate::plan::procs;
use crate::value::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::OwnedFd;
use toml::Spanned;

/// Where a process's messages go.
pub enum Out {
    /// To the process that created it.
    Up(Channel),
    /// The parent: straight into the report, progress also onto the board.
    Sandbox(Box<SandboxOut>),
}

/// The parent's side of the result pipe to the harness.
pub struct SandboxOut {
    pub report: Report,
    pipe: std::fs::File,
    /// The trial's id and its slot on the progress board.
    trial: (u64, u32),
}

impl SandboxOut {
    pub fn new(pipe: OwnedFd, id: u64, slot: u32) -> SandboxOut {
        SandboxOut {
            report: Report::default(),
            pipe: std::fs::File::from(pipe),
            trial: (id, slot),
        }
    }

    /// The result pipe's fd, which the sandbox keeps open.
    pub fn fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.pipe)
    }

    pub fn write(&mut self, m: &Msg) {
        // The harness may be gone; then there is nobody to tell.
        let _ = std::io::Write::write_all(&mut self.pipe, &super::wire::frame(m));
    }

    pub fn take(&mut self, m: Msg) {
        match m {
            // Read by the harness only if the trial never reports.
            Msg::Progress { proc_label, what } => {
                super::progress_board::post(self.trial.1, self.trial.0, &format!("{proc_label}: {what}"));
                self.report.progress.insert(proc_label, what);
            }
            other => super::wire::absorb(&mut self.report, other),
        }
    }
}

/// Shared, read-only facts of the trial.
pub struct Trial<'a> {
    pub case: &'a Case,
    pub control: bool,
    pub dropped: &'a [Ns],
    pub env: &'a RunEnv,
    pub refs: BTreeMap<String, BTreeSet<ObsKey>>,
    /// Argv of the probe, for external runners.
    pub runner: &'a dyn crate::runner::Runner,
    /// How a `spawn` step creates its process (`create::spawn_nested`):
    /// handed in, so the step runner does not depend on process creation,
    /// which depends on it (a created process runs steps).
    pub spawn: SpawnFn,
}

/// Create, run and reap a nested process of the case as `p`'s child.
pub type SpawnFn = fn(&mut Proc<'_>, &crate::load::ProcSpec, &str) -> Result<(), String>;

/// A process of the case running its steps: the trial, where its messages
/// go, and the context its ops work on (reached through `Deref`, so
/// `p.vars`, `p.fds` read as the process's own).
pub struct Proc<'a> {
    pub trial: &'a Trial<'a>,
    pub out: Out,
    pub ctx: crate::ops::Ctx<'a>,
    /// A required step failed: the rest of the steps are skipped.
    pub stopped: bool,
    /// An op panicked: the process stops, in a control too.
    pub panicked: bool,
    /// Time spent doing what the steps ask (waits for syncs left out).
    pub work: std::time::Duration,
}

impl<'a> std::ops::Deref for Proc<'a> {
    type Target = crate::ops::Ctx<'a>;
    fn deref(&self) -> &Self::Target {
        &self.ctx
    }
}

impl std::ops::DerefMut for Proc<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.ctx
    }
}

impl<'a> Proc<'a> {
    pub fn new(trial: &'a Trial<'a>, label: String, out: Out) -> Proc<'a> {
        let mut vars = BTreeMap::new();
        vars.insert("uid".into(), trial.env.uid.to_string());
        vars.insert("gid".into(), trial.env.gid.to_string());
        vars.insert("euid".into(), trial.env.euid.to_string());
        vars.insert("egid".into(), trial.env.egid.to_string());
        vars.insert("scratch".into(), crate::plan::env::SCRATCH.into());
        if let Some(h) = &trial.env.cgroup_nonroot {
            vars.insert(crate::plan::env::CGROUP_VAR.into(), h.clone());
        }
        crate::ops::nsid::initial_ns_vars(&trial.env.initial_ns, &mut vars);
        Proc {
            trial,
            out,
            ctx: crate::ops::Ctx::new(label, trial.dropped, vars),
            stopped: false,
            panicked: false,
            work: std::time::Duration::ZERO,
        }
    }

    pub fn emit(&mut self, m: Msg) {
        match &mut self.out {
            Out::Up(c) => {
                if c.send(&m).is_err() {
                    // The creator is gone: nobody will read what we do.
                    // SAFETY: _exit ends this process at once, as a created
                    // process always leaves (its creator's destructors and
                    // atexit handlers are not its own to run).
                    unsafe { libc::_exit(3) };
                }
            }
            Out::Sandbox(s) => s.take(m),
        }
    }

    pub fn progress(&mut self, what: String) {
        let label = self.label.clone();
        self.emit(Msg::Progress {
            proc_label: label,
            what,
        });
    }

    fn fail(&mut self, phase: &str, index: usize, step: &Step, expected: String, got: String) {
        let f = StepFailure {
            proc_label: self.label.clone(),
            phase: phase.to_string(),
            index,
            step: describe(step),
            expected,
            got,
        };
        self.emit(Msg::Failure(f));
        if !self.trial.control {
            self.stopped = true;
        }
    }

    /// Run one list of steps. `sync` handles `sync` steps (the child's channel).
    pub fn run_steps(
        &mut self,
        phase: &str,
        steps: &[Spanned<Step>],
        sync: &mut dyn FnMut(&mut Proc<'a>, &str) -> Result<(), String>,
    ) {
        for (i, s) in steps.iter().enumerate() {
            if self.stopped {
                return;
            }
            let step = s.get_ref();
            self.progress(format!("{phase} step {}: {}", i + 1, describe(step)));
            match &step.op {
                Op::Expect(e) | Op::Isolation(e) => {
                    // In a control an isolation check is heading for the
                    // flip: `retry` waits for that, as it waits for the hold
                    // in the case (for what the kernel finishes later).
                    let flip = self.trial.control && matches!(step.op, Op::Isolation(_));
                    self.settle(e, step.retry.as_ref(), flip);
                    let at = procs::step_at(phase, i);
                    self.snapshot(&at, &[e], None);
                }
                Op::Sync(name) => {
                    if let Err(e) = sync(self, name) {
                        self.fail(phase, i, step, "the parent to answer the sync".into(), e);
                    }
                }
                Op::Spawn(spec) => {
                    let label = procs::spawn_label(&self.label, phase, i, spec);
                    if let Err(e) = (self.trial.spawn)(self, spec, &label) {
                        self.fail(phase, i, step, "the process to run".into(), e);
                    }
                }
                op => {
                    let r = self.attempt(op, step);
                    self.judge(phase, i, step, r);
                    self.stopped |= self.panicked;
                }
            }
        }
    }

    /// Whether an outcome is what the step requires: (ok, expected, got).
    fn verdict(step: &Step, r: &Result<Value, Fail>) -> (bool, String, String) {
        let got = match r {
            Ok(_) => "success".to_string(),
            Err(f) => f.to_string(),
        };
        if step.may_fail {
            return (true, String::new(), got);
        }
        let (ok, expected) = match (&step.errno, step.status, r) {
            (Some(want), _, Err(Fail::Errno(e))) => (*e as i32 == want.0, want.to_string()),
            (Some(want), _, _) => (false, want.to_string()),
            (None, Some(0) | None, Ok(_)) => (true, String::new()),
            (None, Some(s), Err(Fail::Status(code, _))) => (*code == s, format!("exit status {s}")),
            (None, Some(s), Err(Fail::Killed(sig, _))) => (128 + *sig == s, format!("exit status {s}")),
            (None, Some(s), _) => (false, format!("exit status {s}")),
            (None, None, Err(_)) => (false, "success".to_string()),
        };
        (ok, expected, got)
    }

    /// Run an op, again and again while `retry` allows and the outcome is not the required one.
    fn attempt(&mut self, op: &Op, step: &Step) -> Result<Value, Fail> {
        // A retry waits for the kernel's own deferred work (a grace period, a
        // worker), as slow as the machine: scaled like the case's timeout.
        let deadline = step
            .retry
            .as_ref()
            .map(|d| std::time::Instant::now() + crate::plan::env::scaled(d.get()));
        loop {
            let started = std::time::Instant::now();
            // A panic in an op is the harness's bug: it fails the step with
            // its text and stops the process, rather than unwinding into
            // whatever code of the creator this process is a copy of.
            let r = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ops::run(op, step, &mut self.ctx))) {
                Ok(r) => r,
                Err(p) => {
                    self.panicked = true;
                    Err(Fail::Other(format!(
                        "the harness panicked: {}",
                        crate::entry::panic_text(p.as_ref())
                    )))
                }
            };
            self.work += started.elapsed();
            for c in std::mem::take(&mut self.ctx.commands) {
                self.emit(Msg::Command(c));
            }
            if self.panicked {
                return r;
            }
            // With may_fail, keep trying for a success; otherwise for the required outcome.
            let done = if step.may_fail {
                r.is_ok()
            } else {
                Self::verdict(step, &r).0
            };
            match deadline {
                Some(d) if !done && std::time::Instant::now() < d => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                _ => return r,
            }
        }
    }

    fn judge(&mut self, phase: &str, i: usize, step: &Step, r: Result<Value, Fail>) {
        let saved = match &r {
            Ok(v) => v.clone(),
            Err(Fail::Errno(e)) => Value::Str(errno_name(*e as i32)),
            Err(Fail::Status(code, _)) => Value::Int(*code as i64),
            Err(Fail::Killed(sig, _)) => Value::Int(128 + *sig as i64),
            Err(Fail::Other(m)) => Value::Str(m.clone()),
        };
        if let Some(name) = &step.save_as {
            self.values.insert(name.clone(), saved);
        }
        let (ok, expected, mut got) = Self::verdict(step, &r);
        if !ok {
            if let Err(Fail::Errno(nix::errno::Errno::EPERM | nix::errno::Errno::EOVERFLOW)) = &r {
                got.push_str(&unmapped_ids_hint());
            }
            self.fail(phase, i, step, expected, got);
        }
    }

    /// Observe until the table's value checks hold (or the retry time is up).
    /// Observe `e` until every check holds (or, with `flip`, none does), or
    /// the retry window closes.
    fn settle(&mut self, e: &Expect, retry: Option<&Dur>, flip: bool) {
        let Some(d) = retry else {
            return;
        };
        let deadline = std::time::Instant::now() + crate::plan::env::scaled(d.get());
        let vars = crate::compare::literal_vars(&self.vars);
        while std::time::Instant::now() < deadline {
            let ctx = crate::observe::Ctx {
                values: &self.values,
                vars: &self.vars,
                exits: None,
            };
            let check = |c: &crate::load::expect::Check<'_>| {
                let v = match crate::observe::observe(&c.key(), &ctx) {
                    crate::outcome::Obs::Ok(v) => v,
                    crate::outcome::Obs::Err(_) => return false,
                };
                match c {
                    crate::load::expect::Check::Value(_, m) if m.references().is_empty() => {
                        crate::compare::eval::matches(m, &v, &vars, &|_| None)
                    }
                    crate::load::expect::Check::Mount(_, me) => crate::compare::mount_holds(me, &v, &vars),
                    _ => true,
                }
            };
            let checks = e.checks();
            let settled = if flip {
                !checks.iter().any(check)
            } else {
                checks.iter().all(check)
            };
            if settled {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Observe what `tables` check (plus what others compare with at "end",
    /// plus this process's namespaces) and send it.
    pub fn snapshot(&mut self, at: &str, tables: &[&Expect], extra: Option<&BTreeSet<ObsKey>>) {
        let mut keys: BTreeSet<ObsKey> = tables.iter().flat_map(|t| t.checks()).map(|c| c.key()).collect();
        if let Some(extra) = extra {
            keys.extend(extra.iter().cloned());
        }
        keys.extend(NsLink::ALL.into_iter().map(ObsKey::Ns));
        let exits = match &self.out {
            Out::Sandbox(s) => Some(&s.report.exits),
            Out::Up(_) => None,
        };
        let ctx = crate::observe::Ctx {
            values: &self.values,
            vars: &self.vars,
            exits,
        };
        let own = crate::observe::OwnNs::open();
        let values = keys
            .iter()
            .map(|k| {
                let v = match k {
                    ObsKey::Ns(link) => match own.link(*link) {
                        Ok(v) => crate::outcome::Obs::Ok(v),
                        Err(e) => crate::outcome::Obs::Err(e),
                    },
                    _ => crate::observe::observe(k, &ctx),
                };
                (k.to_string(), v)
            })
            .collect();
        let snap = Snapshot {
            proc_label: self.label.clone(),
            at: at.to_string(),
            values,
        };
        self.emit(Msg::Snapshot(snap));
    }

    /// The end-of-process snapshot: its expectations and what others compare with.
    pub fn end_snapshot(&mut self, expect: &Expect, isolation: &Expect) {
        let extra = self.trial.refs.get(&self.label).cloned();
        self.snapshot("end", &[expect, isolation], extra.as_ref());
    }

    /// Kill and reap the children `fork` steps left.
    pub fn release_held(&mut self) {
        for pid in self.held.drain(..) {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

/// For an EPERM or EOVERFLOW: a hint when this process's own uid or gid is
/// not mapped in its user namespace, the usual cause (a root run's child
/// keeps uid 0 outside, which a map such as `0 1001 1` does not cover).
/// Read only when a step has failed, so it costs nothing otherwise.
pub fn unmapped_ids_hint() -> String {
    // Whether `id`, as this namespace shows it, is inside a line of `map`.
    fn covered(map: &str, id: u32) -> bool {
        map.lines().any(|l| {
            let f: Vec<u64> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            f.len() == 3 && (f[0]..f[0] + f[2]).contains(&(id as u64))
        })
    }
    let mut missing = Vec::new();
    for (what, file, id) in [
        ("uid", "/proc/self/uid_map", nix::unistd::getuid().as_raw()),
        ("gid", "/proc/self/gid_map", nix::unistd::getgid().as_raw()),
    ] {
        let map = std::fs::read_to_string(file).unwrap_or_default();
        // An unmapped id reads as the overflow id, which no map line covers.
        if !covered(&map, id) {
            let shown = map.split_whitespace().collect::<Vec<_>>().join(" ");
            let shown = if shown.is_empty() {
                "empty".to_string()
            } else {
                format!("{shown:?}")
            };
            missing.push(format!("{what}_map {shown} does not cover its {what} outside"));
        }
    }
    if missing.is_empty() {
        return String::new();
    }
    format!(
        " (hint: this process's own ids are not mapped in its user namespace: {}; unmapped ids show as the overflow id (usually 65534), and calls that check or record ids fail with EPERM or EOVERFLOW. In a root run a child keeps uid and gid 0 outside: map 0, or switch to mapped ids first with `setgid = \"0\"` and `setuid = \"0\"`)",
        missing.join(", ")
    )
}

/// One line describing a step, for progress and failure reports.
/// A value as a placeholder's text: a list gives its first item.
pub fn value_text(v: &Value) -> Option<String> {
    crate::load::vars::value_text(v)
}

pub fn describe(step: &Step) -> String {
    let what = match &step.op {
        Op::Sh(c) => format!("sh {c:?}"),
        Op::Cmd(a) => format!("cmd {a:?}"),
        Op::Sethostname(h) => format!("sethostname({h:?})"),
        Op::Setdomainname(h) => format!("setdomainname({h:?})"),
        Op::Unshare(f) => format!("unshare({})", f.describe()),
        Op::Setns(a) => {
            let target = a
                .path
                .clone()
                .or_else(|| a.fd.as_ref().map(|f| format!("fd {f}")))
                .or_else(|| a.pidfd.as_ref().map(|p| format!("pidfd of {p}")))
                .unwrap_or_default();
            format!("setns({target}, {})", a.nstype.describe())
        }
        Op::Clone(a) => format!("clone({})", a.flags.describe()),
        Op::Clone3(a) => format!("clone3({})", a.flags.describe()),
        Op::Fork(f) => format!("fork x{}", f.count),
        Op::Spawn(p) => format!("spawn {}", p.name.as_deref().unwrap_or("a process")),
        Op::Mount(m) => format!(
            "mount({}, {}, {}, {:?})",
            m.source.as_deref().unwrap_or("none"),
            m.target,
            m.fstype.as_deref().unwrap_or("none"),
            m.flags
        ),
        Op::MountCgroup(m) => format!("mount the {:?} cgroup hierarchy on {}", m.hierarchy, m.target),
        Op::Umount(u) => format!("umount({}{})", u.target, if u.detach { ", MNT_DETACH" } else { "" }),
        Op::Write(w) => format!("write {:?} to {}", w.data, w.path),
        Op::Kill(k) => format!("kill({}, {})", k.pid, k.signal),
        Op::Expect(_) => "expect".to_string(),
        Op::Isolation(_) => "isolation".to_string(),
        Op::Sync(n) => format!("sync {n:?}"),
        other => {
            let args = other.args_debug();
            let args = args.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_');
            format!("{} {}", other.name(), args.trim())
        }
    };
    // A step's text goes to the creator in bounded messages: a huge
    // argument must not cost the report, or the process its channel.
    let what = crate::ops::cmd::clip(&what, 300);
    match &step.why {
        Some(w) => format!("{what} ({})", crate::ops::cmd::clip(w, 300)),
        None => what,
    }
}
