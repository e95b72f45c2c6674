//! The sandbox: a disposable init per case, in fresh pid, uts, ipc, mount and
//! network namespaces (plus a user namespace when the suite runs unprivileged:
//! the case runs in one below it as the user, or as root of the sandbox's
//! own when it needs privilege over its namespaces, `TrialSpec::userns`).
//! The machine's root filesystem is read-only in it and tmpfs serves as scratch,
//! and killing the init ends every process of the case (the kernel tears the
//! rest down). Root in the sandbox can undo its read-only mounts, so in
//! privileged runs the init also watches the machine's file systems while its
//! case runs (`machine::fswatch`) and fails the case for what it changed there.
//!
//! On a throwaway machine (`machine::throwaway`: gVisor, whose files live in
//! its own memory) the sandbox does without what that kernel lacks: the
//! watch (no fanotify) and the read-only remounts (no remount); gVisor
//! stands between the cases and the host, and the run is checked as a
//! whole (`vm::runsc`). It also undoes there what gVisor's missing mount
//! and network namespace features would carry from one trial to the next
//! (`prepare_for_throwaway_machine`).

use super::runtime_cgroup::Delegated;
use super::script::{SandboxOut, Trial};
use super::wire::Msg;
use crate::plan::{RunEnv, TrialSpec};
use crate::runner::Runner;
use crate::sys;
use nix::mount::MsFlags;
use std::borrow::Cow;
use std::os::fd::{AsRawFd, OwnedFd};

pub use crate::plan::env::{CASE_COPY_DIR, DOMAINNAME, HOSTNAME, PROBE_BIND, RUNNERS_BIND, SCRATCH};

/// Directories that get a fresh tmpfs in the sandbox.
const TMPFS: &[&str] = &["/tmp", "/run"];

/// The device nodes of the sandbox's /dev, bound from the machine's; its
/// disks and every other device stay out of reach.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom"];
/// And for an external runtime, which binds the OCI default devices, tty
/// among them, from its caller's /dev into a container with a user namespace.
const RUNTIME_DEVICES: &[&str] = &["tty"];

/// Namespace flags of the sandbox itself.
pub fn flags(env: &RunEnv) -> i32 {
    let mut f = libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    if !SHARED_NETWORK.get().copied().unwrap_or(false) {
        f |= libc::CLONE_NEWNET;
    }
    if !env.privileged {
        f |= libc::CLONE_NEWUSER;
    }
    f
}

/// Whether the sandboxes stay in the machine's network namespace: only on
/// a throwaway machine (gVisor, run with no network) whose network
/// namespaces other than the first refuse to bind an abstract unix socket
/// (EINVAL), which a case that asks for no network namespace may do. There
/// the machine's has only a loopback, and trials run one at a time.
static SHARED_NETWORK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Does a network namespace of a child refuse an abstract unix socket?
fn abstract_unix_refused_in_new_netns() -> bool {
    // SAFETY: the zygote is single-threaded; the child only unshares, binds
    // and leaves through _exit.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, bind, socket};
            let refused = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).is_ok()
                && socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
                    .and_then(|s| {
                        let addr = UnixAddr::new_abstract(b"nsconform-netns-probe")?;
                        bind(std::os::fd::AsRawFd::as_raw_fd(&s), &addr)
                    })
                    .is_err_and(|e| e == nix::errno::Errno::EINVAL);
            // SAFETY: leaves the probe child at once.
            unsafe { libc::_exit(if refused { 1 } else { 0 }) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            matches!(
                nix::sys::wait::waitpid(child, None),
                Ok(nix::sys::wait::WaitStatus::Exited(_, 1))
            )
        }
        Err(_) => false,
    }
}

extern "C" fn on_alarm(_: libc::c_int) {
    // The harness enforces timeouts; this only ends a sandbox whose harness vanished.
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(124) };
}

/// The sandbox's init. `go` (unprivileged runs) is readable once the zygote has
/// written the sandbox's id maps.
pub fn main(
    spec: &TrialSpec,
    parsed: Option<&crate::load::Case>,
    env: &RunEnv,
    runner: &dyn Runner,
    mut out: SandboxOut,
    go: Option<OwnedFd>,
    cgroup: Option<&Delegated>,
) -> i32 {
    let started = sys::mono_us();
    // First: from here on nothing writes (and so copies) the zygote's heap.
    super::fork_heap::switch_on();
    sys::die_with_parent(None);
    sys::set_comm("nsc-sandbox");
    // Its own session and process group: kill(0) or a pgid from a case
    // reaches the case's processes, never the harness's group.
    let _ = nix::unistd::setsid();
    let mut keep = vec![out.fd()];
    if let Some(g) = &go {
        keep.push(g.as_raw_fd());
    }
    // The zygote holds other cases' pipes.
    crate::entry::close_fds_except(&keep);
    {
        // Signals start at the kernel's defaults (`entry::run`, which every
        // created process goes through); the alarm's handler is the
        // sandbox's own, and its processes start without it again.
        use nix::sys::signal::{SigHandler, Signal};
        // SAFETY: on_alarm only calls _exit, which is async-signal-safe.
        let _ = unsafe { crate::entry::set_disposition(Signal::SIGALRM, SigHandler::Handler(on_alarm)) };
        nix::unistd::alarm::set(spec.case.timeout.as_secs() as u32 + 30);
    }
    if let Some(g) = go {
        let mut b = [0u8; 1];
        if nix::unistd::read(&g, &mut b) != Ok(1) {
            return 1;
        }
    }
    let (case, watch) = match prepare(spec, parsed, env, runner, cgroup) {
        Ok(c) => c,
        Err(e) => {
            out.report.errors.push(format!("sandbox set-up failed: {e}"));
            let report = std::mem::take(&mut out.report);
            out.write(&Msg::Finished(report));
            return 1;
        }
    };
    let ready = sys::mono_us();
    // What the case sees of the run: as root of a user namespace of its own,
    // what a root run shows.
    let env = &env.for_trial(spec.userns);
    let trial = Trial {
        case: &case,
        control: spec.control,
        dropped: &spec.dropped,
        env,
        refs: crate::plan::procs::referenced_keys(&case.spec),
        spawn: super::create::spawn_nested,
        runner,
    };
    let mut out = super::parent::run_case(&trial, out);
    // The report first: what is left is killed either way, and the harness
    // need not wait for it. Unless the machine is watched: then the case's
    // last process must be gone before its changes are counted.
    let mut report = std::mem::take(&mut out.report);
    if watch.is_some() || cgroup.is_some() {
        end_everything();
        report.errors.extend(watch.iter().flat_map(|w| w.finish()));
        if let Some(Err(e)) = cgroup.map(Delegated::release) {
            report.errors.push(format!("the runtime's cgroup: {e}"));
        }
    }
    let ran = sys::mono_us();
    crate::compare::settle(&case, &mut report, env, spec.control);
    report.marks = crate::outcome::Marks {
        started,
        ready,
        ran,
        judged: sys::mono_us(),
    };
    if MOUNTS_AT_START.get().is_some() {
        // Before the report: the harness ends the sandbox once it has it.
        end_everything();
        restore_machine_mounts();
    }
    out.write(&Msg::Finished(report));
    end_everything();
    drop(watch);
    0
}

/// Set the sandbox up, load the case it runs (unless the zygote has, as
/// `parsed`), and (privileged runs) start watching the machine's file
/// systems.
fn prepare<'p>(
    spec: &TrialSpec,
    parsed: Option<&'p crate::load::Case>,
    env: &RunEnv,
    runner: &dyn Runner,
    cgroup: Option<&Delegated>,
) -> Result<(Cow<'p, crate::load::Case>, Option<crate::machine::fswatch::Watch>), String> {
    let external = runner.name() != "native";
    // Read first: the case file or the binary may lie under a directory the
    // sandbox's own tmpfs is about to cover. An external runner's probe
    // reads the case from a copy.
    let bytes = if parsed.is_none() || external {
        std::fs::read(&spec.case.file).map_err(|e| format!("{}: {e}", spec.case.file.display()))?
    } else {
        Vec::new()
    };
    // Only an external runner execs the binary (a lookup and an open less
    // per native trial).
    let exe = external.then(|| std::fs::read_link("/proc/self/exe").ok()).flatten();
    // Opened by its path, not through /proc/self/exe: that file belongs to
    // the machine's mount namespace, and binding it here fails with EINVAL.
    let exe_fd = external
        .then(|| {
            exe.as_ref()
                .and_then(|p| std::fs::File::open(p).ok())
                .or_else(|| std::fs::File::open("/proc/self/exe").ok())
        })
        .flatten();
    // A runner's own files ("{runners}"), found again after the sandbox's
    // tmpfs covers /tmp and /run if they lie there.
    let runners = external
        .then(|| std::fs::canonicalize(crate::plan::env::runners_dir()).ok())
        .flatten()
        .filter(|d| TMPFS.iter().any(|t| d.starts_with(t)))
        .and_then(|d| std::fs::File::open(d).ok());
    // Before the sandbox's own mounts cover some of them. In a user
    // namespace the kernel locks the read-only mounts instead (and refuses
    // the marks).
    if let Some(c) = cgroup {
        c.enter()?;
    }
    let watch = if env.privileged {
        match crate::machine::fswatch::Watch::start() {
            Ok(mut w) => {
                w.exempt(cgroup.map(Delegated::paths).unwrap_or_default());
                Some(w)
            }
            // gVisor has no fanotify; what a case writes there stays in
            // its memory, and the run is checked as a whole instead.
            Err(_) if crate::machine::throwaway::reason().is_some() => None,
            Err(e) => return Err(format!("watching the machine's file systems: {e}")),
        }
    } else {
        None
    };
    setup(env, external)?;
    if let Some(c) = cgroup {
        c.open_for_runtime()?;
    }
    if external {
        if exe.as_ref().is_none_or(|p| !p.exists()) {
            bind_probe(exe_fd.as_ref())?;
        }
        if let Some(dir) = &runners {
            bind_runners(dir)?;
        }
        // The probe reads the case from a copy under the file's own name.
        let name = spec.case.file.file_name().unwrap_or_default();
        let copy = std::path::Path::new(CASE_COPY_DIR).join(name);
        std::fs::create_dir_all(CASE_COPY_DIR)
            .and_then(|()| std::fs::write(&copy, &bytes))
            .map_err(|e| format!("{}: {e}", copy.display()))?;
    }
    let case = match parsed {
        Some(c) => Cow::Borrowed(c),
        None => Cow::Owned(spec.case.load_from(&bytes)?),
    };
    if spec.userns && crate::load::namespaces_used(&case.spec).contains(&crate::load::ns::Ns::Time) {
        own_time_namespace()?;
    }
    // Last, as it gives up the capabilities the set-up needed. A trial run
    // as root of a user namespace of its own keeps them: its user namespace
    // is the sandbox's, which owns every namespace of the case.
    if !env.privileged && !spec.userns {
        become_unprivileged(env)?;
    }
    Ok((case, watch))
}

/// A trial run as root of a user namespace of its own, in a case that uses
/// time namespaces: the sandbox moves into a time namespace of its own
/// (offsets zero, so its clocks are the machine's). Without it the sandbox's
/// is the machine's, owned by the initial user namespace, and returning to
/// it (as making a child's with offsets does) or joining it is EPERM there.
fn own_time_namespace() -> Result<(), String> {
    nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
        .map_err(|e| format!("unshare(CLONE_NEWTIME): {e}"))?;
    let ns = std::fs::File::open("/proc/self/ns/time_for_children")
        .map_err(|e| format!("/proc/self/ns/time_for_children: {e}"))?;
    nix::sched::setns(ns, nix::sched::CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
        .map_err(|e| format!("setns into the sandbox's time namespace: {e}"))
}

/// Make the harness binary reachable for an external runner at PROBE_BIND.
fn bind_probe(exe: Option<&std::fs::File>) -> Result<(), String> {
    let exe = exe.ok_or("cannot open the harness binary")?;
    std::fs::File::create(PROBE_BIND).map_err(|e| format!("{PROBE_BIND}: {e}"))?;
    let source = format!("/proc/self/fd/{}", exe.as_raw_fd());
    let none: Option<&str> = None;
    nix::mount::mount(Some(source.as_str()), PROBE_BIND, none, MsFlags::MS_BIND, none)
        .map_err(|e| format!("binding the harness binary on {PROBE_BIND}: {e}"))
}

/// Bind the runner definitions' directory, read-only, at RUNNERS_BIND.
fn bind_runners(dir: &std::fs::File) -> Result<(), String> {
    std::fs::create_dir_all(RUNNERS_BIND).map_err(|e| format!("{RUNNERS_BIND}: {e}"))?;
    let source = format!("/proc/self/fd/{}", dir.as_raw_fd());
    let none: Option<&str> = None;
    nix::mount::mount(Some(source.as_str()), RUNNERS_BIND, none, MsFlags::MS_BIND, none)
        .and_then(|()| {
            nix::mount::mount(
                none,
                RUNNERS_BIND,
                none,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                none,
            )
        })
        .map_err(|e| format!("binding the runner definitions on {RUNNERS_BIND}: {e}"))
}

/// As pid 1 of the sandbox: kill whatever the case left and reap it.
fn end_everything() {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(-1), nix::sys::signal::Signal::SIGKILL);
    while nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::__WALL)).is_ok() {}
}

fn setup(env: &RunEnv, external: bool) -> Result<(), String> {
    use nix::mount::mount;
    let none: Option<&str> = None;
    make_private().map_err(|e| format!("making / private: {e}"))?;
    make_readonly().map_err(|e| format!("making the root read-only: {e}"))?;
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        none,
    )
    .map_err(|e| format!("mounting proc: {e}"))?;
    for d in TMPFS {
        if std::path::Path::new(d).is_dir() {
            mount(
                Some("tmpfs"),
                *d,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some("mode=1777,size=64m"),
            )
            .map_err(|e| format!("mounting a tmpfs on {d}: {e}"))?;
        }
    }
    minimal_dev(external, env.privileged).map_err(|e| format!("making /dev: {e}"))?;
    if let Some(max) = env.sandbox_pid_max {
        std::fs::write("/proc/sys/kernel/pid_max", max.to_string()).map_err(|e| format!("capping pid_max: {e}"))?;
    }
    nix::unistd::sethostname(HOSTNAME).map_err(|e| format!("sethostname: {e}"))?;
    set_domainname()
}

fn set_domainname() -> Result<(), String> {
    let name = std::ffi::CString::new(DOMAINNAME).map_err(|e| e.to_string())?;
    let set = |len: usize| {
        // nix has no setdomainname.
        // SAFETY: the kernel reads at most len bytes of `name`, which holds
        // DOMAINNAME and its terminating NUL (len is at most that).
        unsafe { libc::setdomainname(name.as_ptr(), len) == 0 }
    };
    // gVisor wants the NUL within len (ENAMETOOLONG without it); Linux takes
    // len bytes, so counting the NUL sets the same name there too.
    if set(DOMAINNAME.len())
        || (nix::errno::Errno::last() == nix::errno::Errno::ENAMETOOLONG && set(DOMAINNAME.len() + 1))
    {
        return Ok(());
    }
    Err(format!("setdomainname: {}", nix::errno::Errno::last()))
}

/// The machine's mounts when the zygote started, kept on a throwaway
/// machine only: for a sandbox that cannot read its own (`mounts`), and to
/// put the mount table back after each (`restore_machine_mounts`).
static MOUNTS_AT_START: std::sync::OnceLock<Vec<crate::observe::mounts::MountInfo>> = std::sync::OnceLock::new();

/// In the zygote, before any sandbox, on a throwaway machine only: keep the
/// machine's mounts (a sandbox falls back on them) and find out whether the
/// sandboxes must share the machine's network namespace.
pub fn prepare_for_throwaway_machine() {
    if crate::machine::throwaway::reason().is_none() {
        return;
    }
    if let Ok(m) = crate::observe::mounts::read("/proc/self/mountinfo") {
        let _ = MOUNTS_AT_START.set(m);
    }
    let _ = SHARED_NETWORK.set(abstract_unix_refused_in_new_netns());
}

/// The sandbox's mounts before it mounts any. gVisor gives every proc mount
/// the pid namespace of the process that mounted proc last: once another
/// sandbox has mounted its own, /proc/self is gone from the machine's. Its
/// mounts are then those the zygote saw (the copy it made them from), as
/// gVisor has no mount propagation that could have added one since.
fn mounts() -> Result<Vec<crate::observe::mounts::MountInfo>, String> {
    crate::observe::mounts::read("/proc/self/mountinfo").or_else(|e| MOUNTS_AT_START.get().cloned().ok_or(e))
}

/// Put a throwaway machine's mounts back as the zygote found them. gVisor
/// (2022) has one mount table for every mount namespace: what a sandbox and its case
/// mounted would stay, for the next trial to see, after they are gone.
/// Everything the zygote did not see at its start is unmounted, newest
/// first (so each path's top mount is the one named), through a fresh proc
/// (the one on /proc may show another pid namespace).
fn restore_machine_mounts() {
    let Some(start) = MOUNTS_AT_START.get() else { return };
    let none: Option<&str> = None;
    let _ = nix::mount::mount(Some("proc"), "/proc", Some("proc"), MsFlags::empty(), none);
    let Ok(now) = crate::observe::mounts::read("/proc/self/mountinfo") else {
        return;
    };
    let kept: std::collections::HashSet<i64> = start.iter().map(|m| m.id).collect();
    let mut added: Vec<_> = now.iter().filter(|m| !kept.contains(&m.id)).collect();
    added.sort_by_key(|m| std::cmp::Reverse(m.id));
    for m in added {
        let _ = nix::mount::umount2(m.mount_point.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Every mount private, so nothing the sandbox mounts reaches the machine.
fn make_private() -> Result<(), String> {
    let none: Option<&str> = None;
    match nix::mount::mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none) {
        Ok(()) => Ok(()),
        // gVisor refuses MS_REC here; the same change, one mount at a time.
        Err(nix::errno::Errno::EINVAL) => {
            let mounts = mounts()?;
            for m in mounts.iter().filter(|m| m.propagation() != "private") {
                nix::mount::mount(none, m.mount_point.as_str(), none, MsFlags::MS_PRIVATE, none)
                    .map_err(|e| format!("{} ({}): {e}", m.mount_point, m.propagation()))?;
            }
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// A device node of the machine's /dev the sandbox's has too: its number
/// and mode.
struct Device {
    name: &'static str,
    meta: std::fs::Metadata,
}

/// Found once, in the zygote (every sandbox inherits the list).
static DEVICES_OF_MACHINE: std::sync::OnceLock<Vec<Device>> = std::sync::OnceLock::new();

/// In the zygote, before any sandbox: the machine's nodes for every /dev.
pub fn find_machine_devices() {
    DEVICES_OF_MACHINE.get_or_init(|| {
        DEVICES
            .iter()
            .chain(RUNTIME_DEVICES)
            .filter_map(|d| {
                let meta = std::fs::metadata(format!("/dev/{d}")).ok()?;
                Some(Device { name: d, meta })
            })
            .collect()
    });
}

/// A /dev of a few harmless nodes, a private /dev/shm and a mount point for
/// mqueue, on a tmpfs of its own over the machine's /dev. (Built in place:
/// gVisor cannot move a mount.) Nodes are made where the sandbox may make
/// them (as root of the machine); else, or if that fails, each is a bind
/// of the machine's node, opened before the tmpfs covers it.
fn minimal_dev(external: bool, privileged: bool) -> Result<(), String> {
    if !privileged {
        return build_dev(external, true).map_err(|(_, e)| e);
    }
    match build_dev(external, false) {
        Ok(()) => Ok(()),
        Err((mounted, first)) => {
            // What the failed attempt mounted goes, to reach the machine's
            // nodes again; a tmpfs that never mounted leaves nothing to undo.
            if mounted {
                nix::mount::umount2("/dev", nix::mount::MntFlags::MNT_DETACH)
                    .map_err(|e| format!("{first}; then unmounting it: {e}"))?;
            }
            build_dev(external, true).map_err(|(_, e)| format!("{first}; then binding instead: {e}"))
        }
    }
}

/// Build /dev with made nodes, or with binds of the machine's (`bind`). An
/// error says whether the tmpfs on /dev was mounted before it.
fn build_dev(external: bool, bind: bool) -> Result<(), (bool, String)> {
    use nix::mount::mount;
    let wanted = |d: &&Device| DEVICES.contains(&d.name) || (external && RUNTIME_DEVICES.contains(&d.name));
    let nodes: Vec<&Device> = DEVICES_OF_MACHINE
        .get()
        .map(|v| v.iter().filter(wanted).collect())
        .unwrap_or_default();
    // Opened in the sandbox's own mount namespace (a bind from another's is
    // EINVAL); a node that cannot be opened is left out, as one the
    // machine lacks.
    let fds: Vec<(&Device, OwnedFd)> = if bind {
        nodes
            .iter()
            .filter_map(|d| {
                let fd = nix::fcntl::open(
                    format!("/dev/{}", d.name).as_str(),
                    nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .ok()?;
                Some((*d, fd))
            })
            .collect()
    } else {
        Vec::new()
    };
    mount(
        Some("tmpfs"),
        "/dev",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=755,size=1m"),
    )
    .map_err(|e| (false, format!("tmpfs on /dev: {e}")))?;
    let within = |r: Result<(), String>| r.map_err(|e| (true, e));
    if bind {
        for (d, fd) in &fds {
            within(bind_node(d, fd))?;
        }
    } else {
        // The nodes get the machine's modes whole (everyone may use these).
        let umask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        let made: Result<Vec<()>, String> = nodes.iter().map(|d| make_node(d)).collect();
        nix::sys::stat::umask(umask);
        within(made.map(|_| ()))?;
    }
    within(std::fs::create_dir("/dev/shm").map_err(|e| format!("/dev/shm: {e}")))?;
    within(
        mount(
            Some("tmpfs"),
            "/dev/shm",
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777,size=64m"),
        )
        .map_err(|e| format!("tmpfs on /dev/shm: {e}")),
    )?;
    // A mount point for cases that mount an mqueue file system; queues need none.
    within(std::fs::create_dir("/dev/mqueue").map_err(|e| format!("/dev/mqueue: {e}")))?;
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        within(std::os::unix::fs::symlink(to, format!("/dev/{link}")).map_err(|e| format!("/dev/{link}: {e}")))?;
    }
    Ok(())
}

/// A node of the machine's device and mode.
fn make_node(d: &Device) -> Result<(), String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let node = format!("/dev/{}", d.name);
    if !d.meta.file_type().is_char_device() {
        return Err(format!("{node} is not a character device on the machine"));
    }
    nix::sys::stat::mknod(
        node.as_str(),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(d.meta.mode() & 0o777),
        d.meta.rdev(),
    )
    .map_err(|e| format!("mknod {node}: {e}"))
}

/// A bind of the machine's node (in a user namespace, where mknod is refused).
fn bind_node(d: &Device, fd: &OwnedFd) -> Result<(), String> {
    let node = format!("/dev/{}", d.name);
    let source = format!("/proc/self/fd/{}", fd.as_raw_fd());
    std::fs::File::create(&node).map_err(|e| format!("{node}: {e}"))?;
    let none: Option<&str> = None;
    nix::mount::mount(Some(source.as_str()), node.as_str(), none, MsFlags::MS_BIND, none)
        .map_err(|e| format!("binding the machine's {node}: {e}"))
}

/// Every mount read-only, in one call where the kernel has mount_setattr
/// (and NSCONFORM_PRETEND_MISSING does not name it).
pub(super) fn make_readonly() -> Result<(), String> {
    const MOUNT_ATTR_RDONLY: u64 = 1;
    const AT_RECURSIVE: u32 = 0x8000;
    let attr = sys::MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    let size = std::mem::size_of::<sys::MountAttr>();
    if !pretended_missing("mount_setattr")
        && sys::mount_setattr(libc::AT_FDCWD, c"/", AT_RECURSIVE, &attr, size).is_ok()
    {
        return Ok(());
    }
    // Older kernels: remount each mount read-only, keeping its other flags.
    let mounts = mounts()?;
    let refused = Refused::of_machine();
    remount_each_readonly(&mounts, refused, |path, flags| {
        let none: Option<&str> = None;
        nix::mount::mount(none, path, none, flags, none)
    })
}

/// What a mount the kernel will not remount at all (EINVAL: gVisor has no
/// remount) means: an error, or, on a throwaway machine, that it stays
/// as the machine has it (its writable file systems are in gVisor's
/// memory, and `nsconform vm runsc` gives the sandbox a read-only root).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Refused {
    Fail,
    Leave,
}

impl Refused {
    fn of_machine() -> Refused {
        match crate::machine::throwaway::reason() {
            Some(_) => Refused::Leave,
            None => Refused::Fail,
        }
    }
}

/// Whether NSCONFORM_PRETEND_MISSING names `feature` (so the sandbox takes
/// the path older kernels take, for tests).
fn pretended_missing(feature: &str) -> bool {
    std::env::var_os(crate::plan::features::PRETEND_ENV)
        .is_some_and(|v| v.to_string_lossy().split(',').any(|n| n.trim() == feature))
}

/// Remount every mount of `mounts` read-only through `remount`; the first
/// mount that stays writable is an error naming it. A mount whose path no
/// longer leads to it is left: ENOENT (its mount point was deleted or lies
/// under another mount's deleted directory) and EACCES (a directory on the
/// way the sandbox's root may not search, in a user namespace) mean no
/// process of the case, which has fewer rights still, can reach it by path
/// either, and the sandbox holds no fd into it.
fn remount_each_readonly(
    mounts: &[crate::observe::mounts::MountInfo],
    refused: Refused,
    remount: impl Fn(&str, MsFlags) -> Result<(), nix::errno::Errno>,
) -> Result<(), String> {
    use nix::errno::Errno;
    for m in mounts {
        let mut f = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        for (opt, flag) in [
            ("nosuid", MsFlags::MS_NOSUID),
            ("nodev", MsFlags::MS_NODEV),
            ("noexec", MsFlags::MS_NOEXEC),
        ] {
            if m.options.split(',').any(|o| o == opt) {
                f |= flag;
            }
        }
        match remount(&m.mount_point, f) {
            Ok(()) | Err(Errno::ENOENT | Errno::EACCES) => {}
            Err(Errno::EINVAL) if refused == Refused::Leave => {}
            Err(e) => {
                return Err(format!(
                    "cannot make {} ({}, mount {}) read-only: {e}",
                    m.mount_point, m.fstype, m.id
                ));
            }
        }
    }
    Ok(())
}

/// Unprivileged runs: the sandbox was set up as root of its own user
/// namespace; the case runs as the user, without capabilities, in a user
/// namespace below it, as an ordinary user on a host would.
fn become_unprivileged(env: &RunEnv) -> Result<(), String> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).map_err(|e| format!("unshare(CLONE_NEWUSER): {e}"))?;
    std::fs::write("/proc/self/uid_map", format!("{} 0 1", env.uid)).map_err(|e| format!("uid_map: {e}"))?;
    std::fs::write("/proc/self/setgroups", "deny").map_err(|e| format!("setgroups: {e}"))?;
    std::fs::write("/proc/self/gid_map", format!("{} 0 1", env.gid)).map_err(|e| format!("gid_map: {e}"))?;
    // nix's prctl module has no PR_CAP_AMBIENT.
    // SAFETY: integer arguments only.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
    sys::capset(0, 0, 0).map_err(|e| format!("dropping capabilities: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::mounts::MountInfo;
    use nix::errno::Errno;

    fn at(point: &str, options: &str) -> MountInfo {
        MountInfo {
            id: 7,
            parent: 1,
            root: "/".into(),
            mount_point: point.into(),
            options: options.into(),
            optional: Vec::new(),
            fstype: "tmpfs".into(),
            source: "none".into(),
            point_raw: point.into(),
            root_raw: b"/".to_vec(),
        }
    }

    #[test]
    fn a_mount_that_stays_writable_is_an_error_naming_it() {
        let mounts = [at("/a", "rw"), at("/b", "rw,nosuid,noexec"), at("/c", "rw")];
        let tried = std::cell::RefCell::new(Vec::new());
        let r = remount_each_readonly(&mounts, Refused::Fail, |p, f| {
            tried.borrow_mut().push(p.to_string());
            assert!(f.contains(MsFlags::MS_RDONLY | MsFlags::MS_REMOUNT | MsFlags::MS_BIND));
            if p == "/b" {
                assert!(f.contains(MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC) && !f.contains(MsFlags::MS_NODEV));
                Err(Errno::EBUSY)
            } else {
                Ok(())
            }
        });
        let e = r.unwrap_err();
        assert!(e.contains("/b") && e.contains("EBUSY"), "{e}");
        assert_eq!(*tried.borrow(), ["/a", "/b"]);
    }

    #[test]
    fn mounts_no_path_reaches_are_left() {
        let mounts = [at("/gone", "rw"), at("/hidden", "rw"), at("/x", "rw")];
        let r = remount_each_readonly(&mounts, Refused::Fail, |p, _| match p {
            "/gone" => Err(Errno::ENOENT),
            "/hidden" => Err(Errno::EACCES),
            _ => Ok(()),
        });
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn a_refused_remount_is_left_only_on_a_throwaway_machine() {
        let mounts = [at("/sys", "rw"), at("/busy", "rw")];
        let remount = |p: &str, _| match p {
            "/sys" => Err(Errno::EINVAL),
            _ => Err(Errno::EBUSY),
        };
        let e = remount_each_readonly(&mounts[..1], Refused::Fail, remount).unwrap_err();
        assert!(e.contains("/sys") && e.contains("EINVAL"), "{e}");
        assert_eq!(remount_each_readonly(&mounts[..1], Refused::Leave, remount), Ok(()));
        // Only EINVAL (no remount at all) is left; any other refusal fails.
        let e = remount_each_readonly(&mounts, Refused::Leave, remount).unwrap_err();
        assert!(e.contains("/busy") && e.contains("EBUSY"), "{e}");
    }

    /// The fallback for real, in a mount namespace of a child: every mount
    /// becomes read-only, and one with a file open for writing (which the
    /// kernel refuses to remount read-only) fails it by name.
    #[test]
    fn the_fallback_remounts_or_names_what_it_could_not() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let point = dir.path().to_str().expect("utf-8").to_string();
        // SAFETY: the child runs this test's code only and leaves by _exit;
        // glibc's malloc is usable after fork.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                let code = (|| {
                    let none: Option<&str> = None;
                    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|_| 10)?;
                    nix::mount::mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none).map_err(|_| 11)?;
                    nix::mount::mount(Some("tmpfs"), point.as_str(), Some("tmpfs"), MsFlags::empty(), none)
                        .map_err(|_| 12)?;
                    let writer = std::fs::File::create(format!("{point}/f")).map_err(|_| 13)?;
                    let mounts = crate::observe::mounts::read("/proc/self/mountinfo").map_err(|_| 14)?;
                    let remount = |p: &str, f: MsFlags| nix::mount::mount(none, p, none, f, none);
                    match remount_each_readonly(&mounts, Refused::Fail, remount) {
                        Err(e) if e.contains(&point) && e.contains("EBUSY") => {}
                        _ => return Err(15),
                    }
                    drop(writer);
                    remount_each_readonly(&mounts, Refused::Fail, remount).map_err(|_| 16)?;
                    let ro = |p: &str| {
                        nix::sys::statvfs::statvfs(p)
                            .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
                    };
                    if !ro("/") || !ro(point.as_str()) {
                        return Err(17);
                    }
                    Ok(())
                })()
                .err()
                .unwrap_or(0);
                // SAFETY: leaves the child without running the test harness's code.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).expect("waitpid");
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
