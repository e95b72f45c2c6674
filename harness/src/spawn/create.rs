//! Creating the processes of a case: the child (natively or through an
//! external runner), peers and nested spawns; the hello / id maps / go
//! handshake; relaying their messages; reaping them.

use super::channel::Channel;
use super::script::{Out, Proc, Trial};
use super::wire::Msg;
use crate::load::model::{ExitSpec, How, ProcSpec};
use crate::load::ns::Ns;
use crate::outcome::{CommandLog, RUNTIME_COMMAND, StepFailure, describe_status};
use crate::runner::Launch;
use crate::sys;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// A process of the case that has said hello.
pub struct Running {
    pub label: String,
    /// Its pid as the creator sees it.
    pub pid: i32,
    /// The process to reap (an external runner's own process, or the child itself).
    pub reap: i32,
    pub chan: Channel,
    /// Started through an external runtime: its fds and stderr.
    pub runtime: Option<super::runtime::Started>,
}

impl Running {
    /// The go context for this process: its kept fds by the numbers it has.
    pub fn go_context(&self, p: &Proc<'_>) -> BTreeMap<String, String> {
        let mut c = go_context(p);
        if let Some(r) = &self.runtime {
            r.adjust(&mut c);
        }
        c
    }

    /// What the runtime wrote to stderr, if anything, as a report line.
    pub fn runtime_stderr(&self) -> Option<String> {
        self.runtime.as_ref()?.stderr_note()
    }
}

/// How a relay loop ended.
pub enum Ended {
    /// With the microseconds its steps took.
    Done(u64),
    Gone,
}

/// Create a process as `creator`'s child and complete the handshake.
pub fn create(creator: &mut Proc<'_>, spec: &ProcSpec, label: &str, launch: Launch) -> Result<Running, String> {
    let trial = creator.trial;
    let ns_now = crate::observe::all_ns();
    let flags = spec.effective(trial.dropped).iter().fold(0, |m, n| m | n.flag());
    creator.emit(Msg::Creator {
        proc_label: label.to_string(),
        ns: ns_now,
        flags,
    });
    let (down, up) = Channel::pair().map_err(|e| format!("socketpair: {e}"))?;
    down.pass_credentials();
    let eff = spec.effective(trial.dropped);
    let named: Vec<(String, RawFd)> = creator.fds.iter().map(|(n, f)| (n.clone(), f.as_raw_fd())).collect();
    let mut runtime_maps = false;
    let (pid, reap, runtime) = match launch {
        Launch::Native => {
            let pid = native(creator, spec, label, &eff, &up, &named)?;
            (Some(pid), pid, None)
        }
        Launch::Exec(plan) => {
            runtime_maps = plan.runtime_maps;
            let started = super::runtime::start(creator, spec, label, plan, &up, &named)?;
            (None, started.reap, Some(started))
        }
    };
    drop(up);
    // A child cloned here is in its namespaces from the start: its hello can
    // wait in the channel (the relay skips it), and maps, start steps and go
    // need not wait for it. One round trip fewer per process.
    let cloned = matches!(spec.how, How::Clone | How::Clone3);
    let pid = match pid {
        Some(pid) if cloned => pid,
        _ => await_hello(&down, pid, reap, label, runtime.as_ref())?,
    };
    // A runtime that makes the user namespace writes its maps itself
    // (a second write is EPERM): they are only observed.
    if eff.contains(&Ns::User) && spec.how != How::Setns && !runtime_maps {
        if let Err(e) = write_maps(creator, spec, pid) {
            let _ = kill(Pid::from_raw(reap), Signal::SIGKILL);
            reap_now(reap);
            return Err(e);
        }
    }
    Ok(Running {
        label: label.to_string(),
        pid,
        reap,
        chan: down,
        runtime,
    })
}

/// Wait for a new process's hello: its pid (as the creator sees it, from
/// the message's credentials unless the creator knows it already). A
/// process that says something else, ends or stays silent is reaped.
fn await_hello(
    down: &Channel,
    pid: Option<i32>,
    reap: i32,
    label: &str,
    runtime: Option<&super::runtime::Started>,
) -> Result<i32, String> {
    let stderr = || {
        runtime
            .and_then(|s| s.stderr_note())
            .map(|t| format!("; {t}"))
            .unwrap_or_default()
    };
    let hello = if down.readable_within(std::time::Duration::from_secs(30)) {
        down.recv_from()
    } else {
        Err("no hello within 30s".to_string())
    };
    match hello {
        Ok(Some((Msg::Hello { .. }, creds))) => pid.or(creds).ok_or_else(|| "the hello carried no pid".into()),
        Ok(Some((other, _))) => {
            reap_now(reap);
            Err(format!("expected a hello, got {other:?}{}", stderr()))
        }
        Ok(None) => {
            let status = reap_now(reap);
            Err(format!("{label} ended before it said hello ({status}){}", stderr()))
        }
        Err(e) => {
            let _ = kill(Pid::from_raw(reap), Signal::SIGKILL);
            reap_now(reap);
            Err(format!("{label}: {e}{}", stderr()))
        }
    }
}

/// uid_map, setgroups, gid_map, in that order, as the creator.
fn write_maps(creator: &mut Proc<'_>, spec: &ProcSpec, pid: i32) -> Result<(), String> {
    let root = |s: &str| Some(s.to_string());
    let (uid_map, setgroups, gid_map) = if spec.map_root {
        (root("0 {euid} 1"), root("deny"), root("0 {egid} 1"))
    } else {
        (spec.uid_map.clone(), spec.setgroups.clone(), spec.gid_map.clone())
    };
    let files = [("uid_map", &uid_map), ("setgroups", &setgroups), ("gid_map", &gid_map)];
    for (file, content) in files {
        let Some(content) = content else { continue };
        let content = creator.expand(content)?;
        let path = format!("/proc/{pid}/{file}");
        let r = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, content.as_bytes()));
        // A kernel without the file (Linux before 3.19, gVisor) lets an
        // unprivileged gid_map be written without `deny` first.
        let no_file = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
        if file == "setgroups" && content == "deny" && r.as_ref().is_err_and(no_file) {
            continue;
        }
        if let Err(e) = r {
            let got = e
                .raw_os_error()
                .map(crate::load::flags::errno_name)
                .unwrap_or(e.to_string());
            let f = StepFailure {
                proc_label: creator.label.clone(),
                phase: "maps".into(),
                index: 0,
                step: format!("write {content:?} to {path}"),
                expected: "success".into(),
                got: got.clone(),
            };
            creator.emit(Msg::Failure(f));
            if !creator.trial.control {
                return Err(format!("writing {path}: {got}"));
            }
        }
    }
    Ok(())
}

fn reap_now(pid: i32) -> String {
    match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::__WALL)) {
        Ok(s) => describe_status(s),
        Err(e) => format!("wait: {e}"),
    }
}

/// What a process created in-process runs once it is there: its way into
/// its namespaces (`pre`), then `child_main`.
struct Entry<'a, 't> {
    trial: &'a Trial<'t>,
    spec: &'a ProcSpec,
    label: &'a str,
    /// The creator's end of the channel, which the new process inherits.
    up_fd: RawFd,
    named: &'a [(String, RawFd)],
}

impl Entry<'_, '_> {
    /// The body of the new process: `pre` (its way into its namespaces),
    /// then only the fds its creator meant it to have, then its steps.
    fn run(&self, pre: &dyn Fn() -> Result<(), String>) -> i32 {
        Channel::close_inherited(&[self.up_fd]);
        // SAFETY: in the new process `up_fd` is the copy of the creator's
        // `up`, still open (close_inherited kept it). The Channel `up` that
        // owns it in this copy of memory is never dropped here, as the new
        // process only leaves through _exit (run_quiet), so this is its one owner.
        let chan = unsafe { Channel::from_raw(self.up_fd) };
        if let Err(e) = pre() {
            let _ = chan.send(&Msg::Progress {
                proc_label: self.label.to_string(),
                what: format!("could not enter its namespaces: {e}"),
            });
            return 2;
        }
        // Exactly what the creator sent: stdio, the channel, the fds it
        // keeps by name (and, until here, those its way in needed).
        let keep: Vec<RawFd> = std::iter::once(self.up_fd)
            .chain(self.named.iter().map(|(_, fd)| *fd))
            .collect();
        crate::entry::close_fds_except(&keep);
        child_main(self.trial, self.spec, self.label, chan, self.named, false)
    }
}

/// Create the process in-process: clone, clone3, fork + unshare, fork + setns.
fn native(
    creator: &mut Proc<'_>,
    spec: &ProcSpec,
    label: &str,
    eff: &[Ns],
    up: &Channel,
    named: &[(String, RawFd)],
) -> Result<i32, String> {
    let entry = Entry {
        trial: creator.trial,
        spec,
        label,
        up_fd: up.raw(),
        named,
    };
    match spec.how {
        How::Clone => by_clone(&entry, eff),
        How::Clone3 => by_clone3(&entry, eff),
        How::Unshare => by_unshare(&entry, eff),
        How::Setns => by_setns(creator, &entry, eff),
    }
}

fn by_clone(entry: &Entry<'_, '_>, eff: &[Ns]) -> Result<i32, String> {
    let time = eff.contains(&Ns::Time);
    let flags = eff.iter().filter(|n| **n != Ns::Time).fold(0, |m, n| m | n.flag());
    // A time namespace's offsets must be set before a task enters it:
    // the creator unshares it for its children, writes the offsets,
    // clones, and goes back.
    let restore = if time {
        Some(enter_time_for_children(entry.spec)?)
    } else {
        None
    };
    // Fork-like, on a copy of our stack: cheaper than a fresh stack,
    // and the child only ever leaves through _exit (exit_group), as a
    // case may have started threads in it.
    // SAFETY: `flags` are CLONE_NEW* only (no CLONE_VM, CLONE_THREAD or
    // other sharing), so the child runs on its own copy of memory
    // and of the stack, as after fork. It may have been copied from a
    // multithreaded creator (a `threads` step), but those threads
    // only park, holding no lock (malloc's included) the child could
    // need. Raw, since nix's clone wants a separate stack.
    let r = unsafe { sys::clone_raw(flags | libc::SIGCHLD as u64) };
    if let Ok(0) = r {
        crate::entry::run_quiet(|| entry.run(&|| Ok(())))
    }
    if let Some(orig) = restore {
        sys::setns_raw(orig.as_raw_fd(), Ns::Time.flag() as i64)
            .map_err(|e| format!("returning to the original time namespace: {e}"))?;
    }
    r.map_err(|e| format!("clone({}): {e}", flag_names(eff)))
}

fn by_clone3(entry: &Entry<'_, '_>, eff: &[Ns]) -> Result<i32, String> {
    let flags = eff.iter().fold(0, |m, n| m | n.flag());
    let opts = entry.spec.clone3.clone().unwrap_or_default();
    let set_tid: Vec<libc::pid_t> = opts.set_tid.iter().map(|&t| t as libc::pid_t).collect();
    let args = sys::CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        set_tid: if set_tid.is_empty() { 0 } else { set_tid.as_ptr() as u64 },
        set_tid_size: set_tid.len() as u64,
        ..Default::default()
    };
    let size = opts.size.unwrap_or(sys::CLONE_ARGS_SIZE_VER2 as u64) as usize;
    // SAFETY: `args` and the `set_tid` array it points to are live
    // for the call. `size` may claim more or fewer bytes than the
    // struct on purpose (a case testing clone3's size check): the
    // kernel reads user memory with checked copies, so a short size
    // is an EINVAL and a long one an EFAULT or E2BIG, never a
    // read by us. Flags as for clone: no memory sharing.
    match unsafe { sys::clone3_raw((&args as *const sys::CloneArgs).cast(), size) } {
        Ok(0) => crate::entry::run_quiet(|| entry.run(&|| Ok(()))),
        Ok(pid) => Ok(pid),
        Err(e) => Err(format!("clone3({}): {e}", flag_names(eff))),
    }
}

fn by_unshare(entry: &Entry<'_, '_>, eff: &[Ns]) -> Result<i32, String> {
    let flags = eff.iter().fold(0, |m, n| m | n.flag());
    let offsets = entry.spec.time_offsets.clone().filter(|_| eff.contains(&Ns::Time));
    fork_with(|| {
        entry.run(&|| {
            sys::unshare_raw(flags as i64).map_err(|e| format!("unshare({}): {e}", flag_names(eff)))?;
            match &offsets {
                Some(o) => write_offsets("/proc/self/timens_offsets", o.monotonic, o.boottime),
                None => Ok(()),
            }
        })
    })
}

fn by_setns(creator: &Proc<'_>, entry: &Entry<'_, '_>, eff: &[Ns]) -> Result<i32, String> {
    let target = entry.spec.join.as_deref().unwrap_or("");
    let pid = creator
        .vars
        .get(target)
        .cloned()
        .ok_or_else(|| format!("{target} has no pid here"))?;
    // User first: joining it grants the capabilities the other joins need.
    let mut order: Vec<Ns> = eff.to_vec();
    order.sort_by_key(|n| if *n == Ns::User { 0 } else { 1 });
    let mut fds = Vec::new();
    for ns in &order {
        let path = format!("/proc/{pid}/ns/{}", ns.proc_name());
        let f = std::fs::File::open(&path).map_err(|e| format!("cannot open {path}: {e}"))?;
        fds.push((*ns, OwnedFd::from(f)));
    }
    fork_with(|| {
        entry.run(&|| {
            for (ns, fd) in &fds {
                sys::setns_raw(fd.as_raw_fd(), ns.flag() as i64).map_err(|e| format!("setns({ns}): {e}"))?;
            }
            Ok(())
        })
    })
}

fn flag_names(ns: &[Ns]) -> String {
    if ns.is_empty() {
        return "no namespaces".into();
    }
    ns.iter()
        .map(|n| format!("CLONE_NEW{}", n.proc_name().to_uppercase()))
        .collect::<Vec<_>>()
        .join("|")
}

fn fork_with(f: impl FnOnce() -> i32) -> Result<i32, String> {
    // SAFETY: the child runs `f` and leaves by _exit (run_quiet). Other
    // threads of the creator (a `threads` step) only park and hold no lock;
    // glibc's fork resets malloc's locks for the child anyway.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        nix::unistd::ForkResult::Child => crate::entry::run_quiet(f),
        nix::unistd::ForkResult::Parent { child } => Ok(child.as_raw()),
    }
}

/// Unshare a time namespace for our children and write its offsets; returns
/// the fd of the time namespace to go back to.
fn enter_time_for_children(spec: &ProcSpec) -> Result<OwnedFd, String> {
    let orig = std::fs::File::open("/proc/self/ns/time").map_err(|e| format!("cannot open /proc/self/ns/time: {e}"))?;
    sys::unshare_raw(Ns::Time.flag() as i64).map_err(|e| format!("unshare(CLONE_NEWTIME): {e}"))?;
    if let Some(o) = &spec.time_offsets {
        write_offsets("/proc/self/timens_offsets", o.monotonic, o.boottime)?;
    }
    Ok(OwnedFd::from(orig))
}

pub fn write_offsets(path: &str, monotonic: i64, boottime: i64) -> Result<(), String> {
    let text = format!("monotonic {monotonic} 0\nboottime {boottime} 0\n");
    std::fs::write(path, text).map_err(|e| format!("writing {path}: {e}"))
}

/// What a created process runs: hello, wait for go, steps, snapshot, done, wait for exit.
/// `named` are fds its creator kept by name; they are inherited, as fork does.
/// `adopt_by_number`: the process was exec'd by an external runner, and
/// takes its creator's kept fds by the numbers the go context lists.
pub fn child_main(
    trial: &Trial<'_>,
    spec: &ProcSpec,
    label: &str,
    chan: Channel,
    named: &[(String, RawFd)],
    adopt_by_number: bool,
) -> i32 {
    crate::sys::set_comm("nsc-case");
    if chan
        .send(&Msg::Hello {
            proc_label: label.to_string(),
        })
        .is_err()
    {
        return 3;
    }
    let context = match chan.recv() {
        Ok(Some(Msg::Go { context })) => context,
        _ => return 3,
    };
    let mut p = Proc::new(trial, label.to_string(), Out::Up(chan));
    for (name, fd) in named {
        // SAFETY: `fd` is open here, inherited from the creator's OwnedFd
        // for `name`, and that copy is never dropped in this process (it only
        // leaves through _exit), so this is its one owner: no fd is closed twice.
        p.fds.insert(name.clone(), unsafe {
            <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(*fd)
        });
    }
    p.vars.extend(context);
    // In a new pid namespace the parent is invisible (0); otherwise it is the
    // creator (whose pid the context carries), even if a runner sits between.
    if nix::unistd::getppid().as_raw() == 0 {
        p.vars.insert("parent".into(), "0".into());
    }
    if adopt_by_number {
        adopt_exec_passed(&mut p);
    }
    if spec.drop_privileges {
        if let Err(e) = crate::ops::cred::drop_privileges_to(&p.vars) {
            p.progress(format!("could not drop privileges: {e}"));
            p.stopped = true;
        }
    }
    p.run_steps("run", &spec.run, &mut sync_with_parent);
    if !p.stopped {
        p.end_snapshot(&spec.expect, &spec.isolation);
    }
    let label = p.label.clone();
    let work_us = p.work.as_micros() as u64;
    p.emit(Msg::Done {
        proc_label: label,
        work_us,
    });
    if let Out::Up(c) = &p.out {
        // Wait to be told to go: the parent observes us alive until then.
        let _ = c.recv();
    }
    p.release_held();
    0
}

/// Fds an external runner passed through exec, by the names and numbers
/// the go context lists. Only for such a process: one forked or cloned here
/// got its fds as `named`, and the numbers in the context are the
/// creator's, which may include fds opened after the fork whose numbers
/// here are something else (the channel).
fn adopt_exec_passed(p: &mut Proc<'_>) {
    let Some(list) = p.vars.get("fds").cloned() else { return };
    for pair in list.split(',').filter(|s| !s.is_empty()) {
        let Some((name, num)) = pair.split_once('=') else {
            continue;
        };
        let Ok(num) = num.parse::<RawFd>() else { continue };
        // SAFETY: integer arguments only; the number comes from the
        // context and may name no fd (then EBADF, and it is skipped),
        // so there is nothing to borrow for nix's fcntl yet.
        if !p.fds.contains_key(name) && unsafe { libc::fcntl(num, libc::F_SETFD, libc::FD_CLOEXEC) } >= 0 {
            // SAFETY: the fd is open (just checked), passed through exec
            // for this name by the creator, whose OwnedFds are distinct
            // fds, and nothing else in this exec'd process owns it.
            p.fds.insert(name.to_string(), unsafe {
                <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(num)
            });
        }
    }
}

/// A `sync` step of the child: ask the parent to run its `on.NAME` steps
/// and wait until it has.
fn sync_with_parent(p: &mut Proc<'_>, name: &str) -> Result<(), String> {
    p.emit(Msg::Sync { name: name.to_string() });
    let Out::Up(c) = &p.out else {
        return Err("no parent".into());
    };
    match c.recv() {
        Ok(Some(Msg::Continue)) => Ok(()),
        other => Err(format!("the parent answered {other:?}")),
    }
}

/// Relay a process's messages to our own output until it is done.
pub fn relay(p: &mut Proc<'_>, r: &Running, on_sync: &mut dyn FnMut(&mut Proc<'_>, &str)) -> Ended {
    loop {
        match r.chan.recv() {
            Ok(Some(Msg::Done { work_us, .. })) => return Ended::Done(work_us),
            Ok(Some(Msg::Hello { .. })) => {}
            Ok(Some(Msg::Sync { name })) => {
                on_sync(p, &name);
                let _ = r.chan.send(&Msg::Continue);
            }
            Ok(Some(m)) => p.emit(m),
            Ok(None) => return Ended::Gone,
            Err(e) => {
                p.progress(format!("lost {}: {e}", r.label));
                return Ended::Gone;
            }
        }
    }
}

/// Tell a process to exit, reap it, and check its exit status.
pub fn finish(p: &mut Proc<'_>, r: Running, expect_exit: Option<&ExitSpec>) -> String {
    let _ = r.chan.send(&Msg::Exit);
    let stderr = r.runtime_stderr();
    let stderr_text = r.runtime.as_ref().and_then(|s| s.stderr_text());
    drop(r.chan);
    let status = reap_now(r.reap);
    // In the trial's record whatever the verdict: a runtime's warnings can
    // explain a pass as much as a failure.
    if let Some(text) = stderr_text {
        p.emit(Msg::Command(CommandLog {
            proc_label: r.label.clone(),
            command: RUNTIME_COMMAND.into(),
            status: status.clone(),
            stderr: text,
        }));
    }
    let want = expect_exit.map(|e| e.describe()).unwrap_or_else(|| "exited 0".into());
    if status != want {
        let got = match stderr {
            Some(t) => format!("{status}; {t}"),
            None => status.clone(),
        };
        let f = StepFailure {
            proc_label: r.label.clone(),
            phase: "exit".into(),
            index: 0,
            step: format!("{} ends", r.label),
            expected: want,
            got,
        };
        p.emit(Msg::Failure(f));
    }
    status
}

/// A nested process created by a `spawn` step.
pub fn spawn_nested(p: &mut Proc<'_>, spec: &ProcSpec, label: &str) -> Result<(), String> {
    let r = create(p, spec, label, Launch::Native)?;
    let context = r.go_context(p);
    r.chan.send(&Msg::Go { context }).map_err(|e| format!("go: {e}"))?;
    let mut no_sync = |p: &mut Proc<'_>, name: &str| p.progress(format!("ignored sync {name:?} from a spawn"));
    if let Ended::Done(us) = relay(p, &r, &mut no_sync) {
        p.work += std::time::Duration::from_micros(us);
    }
    finish(p, r, spec.exit.as_ref());
    Ok(())
}

/// What a new process gets from its creator with `go`: the ids, the scratch
/// directory, the pids the creator knows (valid while they share a pid
/// namespace, its own as "parent"), and the numbers of its kept fds.
pub fn go_context(p: &Proc<'_>) -> BTreeMap<String, String> {
    let mut c = p.vars.clone();
    c.insert("parent".into(), nix::unistd::getpid().to_string());
    let fds: Vec<String> = p.fds.iter().map(|(n, f)| format!("{n}={}", f.as_raw_fd())).collect();
    c.insert("fds".into(), fds.join(","));
    for (k, v) in &p.values {
        if let Some(t) = super::script::value_text(v) {
            c.insert(format!("value:{k}"), t);
        }
    }
    c
}
