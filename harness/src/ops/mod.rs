//! Ops: what a step does. Each returns a value (kept with `as`) or how it
//! failed, so the case can require success, an errno, or an exit status.

mod acl;
pub mod cmd;
pub mod cred;
mod ctx;
mod fs;
mod ipc;
mod listns;
mod mountapi;
mod net;
mod ns;
pub mod nsid;
mod probes;
mod proc;
mod sig;
mod sock;
pub mod time;
mod uts;

pub use ctx::Ctx;
pub use time::helper_main;

use crate::load::step::{Op, Step};
use crate::value::Value;
use nix::errno::Errno;
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

pub enum Fail {
    Errno(Errno),
    /// A command's exit status and what it printed on stderr.
    Status(i32, String),
    /// A command killed by a signal (`status = 128 + N` matches it, as in a shell).
    Killed(i32, String),
    Other(String),
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fail::Errno(e) => f.write_str(&crate::load::flags::errno_name(*e as i32)),
            Fail::Status(c, _) => write!(f, "exit status {c}"),
            Fail::Killed(s, _) => write!(f, "killed by {}", crate::load::flags::signal_name(*s)),
            Fail::Other(m) => f.write_str(m),
        }
    }
}

impl From<Errno> for Fail {
    fn from(e: Errno) -> Fail {
        Fail::Errno(e)
    }
}

impl From<std::io::Error> for Fail {
    fn from(e: std::io::Error) -> Fail {
        match e.raw_os_error() {
            Some(n) => Fail::Errno(Errno::from_raw(n)),
            None => Fail::Other(e.to_string()),
        }
    }
}

pub type OpResult = Result<Value, Fail>;

/// Fill placeholders, as a step failure if one has no value here.
pub fn expand(p: &Ctx<'_>, s: &str) -> Result<String, Fail> {
    p.expand(s).map_err(Fail::Other)
}

/// A kept fd by name, or an fd number.
pub fn fd_of(p: &Ctx<'_>, name: &str) -> Result<RawFd, Fail> {
    if let Ok(n) = name.parse::<RawFd>() {
        return Ok(n);
    }
    p.fds
        .get(name)
        .map(|f| f.as_raw_fd())
        .ok_or_else(|| Fail::Other(format!("no fd is kept as `{name}`")))
}

/// Keep a new fd under the step's `as` name; the value is what /proc says it is.
pub fn keep(p: &mut Ctx<'_>, step: &Step, fd: OwnedFd) -> Value {
    let what = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map(|t| t.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("fd {}", fd.as_raw_fd()));
    if let Some(n) = &step.save_as {
        p.fds.insert(n.clone(), fd);
    }
    Value::Str(what)
}

/// A pid from a string with placeholders ("{child}", "{value:kid}").
pub fn pid_of(p: &Ctx<'_>, s: &str) -> Result<i32, Fail> {
    let v = expand(p, s)?;
    v.trim()
        .parse()
        .map_err(|_| Fail::Other(format!("{s:?} is not a pid ({v:?})")))
}

/// An id from a string with placeholders ("{uid}", "1000").
pub fn id_of(p: &Ctx<'_>, s: &str) -> Result<u32, Fail> {
    let v = expand(p, s)?;
    v.trim()
        .parse()
        .map_err(|_| Fail::Other(format!("{s:?} is not an id ({v:?})")))
}

/// Run one step's operation.
// A dispatch table, one arm per operation of `load::step`'s `ops!` list:
// its length is the number of operations, and each arm names the function
// that runs one, so the table is kept whole rather than split by area.
pub fn run(op: &Op, step: &Step, p: &mut Ctx<'_>) -> OpResult {
    match op {
        Op::Sh(c) => cmd::sh(p, c),
        Op::Cmd(argv) => cmd::cmd(p, argv),
        Op::Sethostname(h) => uts::sethostname(p, h),
        Op::Setdomainname(h) => uts::setdomainname(p, h),
        Op::Unshare(f) => ns::unshare(p, f),
        Op::Setns(a) => ns::setns(p, a),
        Op::Clone(a) => proc::clone(p, a),
        Op::Clone3(a) => proc::clone3(p, a),
        Op::Fork(a) => proc::fork(p, a),
        Op::Threads(n) => probes::threads(*n),
        Op::Mount(m) => fs::mount(p, m),
        Op::NsHandle(path) => ns::handle(p, path),
        Op::OpenNsHandle(h) => ns::open_handle(p, step, h),
        Op::AclSet(a) => acl::set(p, a),
        Op::AclGet(path) => acl::get(p, path),
        Op::MountCgroup(m) => fs::mount_cgroup(p, m),
        Op::Umount(u) => fs::umount(p, u),
        Op::Mkdir(d) => fs::mkdir(p, d),
        Op::Write(w) => fs::write(p, w),
        Op::Read(path) => fs::read(p, path),
        Op::Chmod(c) => fs::chmod(p, c),
        Op::WriteMap(w) => fs::write_map(p, w),
        Op::Stat(path) => fs::stat(p, path),
        Op::Chdir(d) => fs::chdir(p, d),
        Op::Chroot(d) => fs::chroot(p, d),
        Op::PivotRoot(a) => mountapi::pivot_root(p, a),
        Op::OpenTree(a) => mountapi::open_tree(p, step, a),
        Op::MoveMount(a) => mountapi::move_mount(p, a),
        Op::MountSetattr(a) => mountapi::mount_setattr(p, a),
        Op::Listmount(a) => mountapi::listmount(p, a),
        Op::Listns(a) => listns::listns(p, a),
        Op::Open(path) => fs::open(p, step, path),
        Op::OpenWrite(path) => fs::open_write(p, step, path),
        Op::Close(name) => fs::close(p, name),
        Op::Memfd(name) => fs::memfd(p, step, name),
        Op::Pidfd(pid) => ns::pidfd(p, step, pid),
        Op::Ioctl(a) => ns::ioctl(p, step, a),
        Op::Msgget(a) => ipc::msgget(a),
        Op::Shmget(a) => ipc::shmget(a),
        Op::Semget(a) => ipc::semget(a),
        Op::ShmWrite(a) => ipc::shm_write(a),
        Op::ShmRead(a) => ipc::shm_read(a),
        Op::Msgsnd(a) => ipc::msgsnd(a),
        Op::Msgrcv(a) => ipc::msgrcv(a),
        Op::Semop(a) => ipc::semop(a),
        Op::Semset(a) => ipc::semset(a),
        Op::MqOpen(a) => ipc::mq_open(p, step, a),
        Op::MqSend(a) => ipc::mq_send(p, a),
        Op::MqReceive(q) => ipc::mq_receive(p, q),
        Op::MqNotify(a) => ipc::mq_notify(p, a),
        Op::MqUnlink(n) => ipc::mq_unlink(n),
        Op::Veth(v) => net::veth(v),
        Op::Link(l) => net::link(p, l),
        Op::Addr(a) => net::addr(a),
        Op::Netnsid(a) => net::netnsid(p, a),
        Op::Socket(a) => sock::socket(p, step, a),
        Op::Accept(fd) => sock::accept(p, step, fd),
        Op::Send(a) => sock::send(p, a),
        Op::Recv(a) => sock::recv(p, a),
        Op::Peercred(fd) => sock::peercred(p, fd),
        Op::LinkEvents(a) => sock::link_events(p, a),
        Op::Pipe(name) => sig::pipe(p, name),
        Op::Async(a) => sig::async_io(p, a),
        Op::WriteFd(a) => sig::write_fd(p, a),
        Op::Lock(path) => sig::lock(p, step, path),
        Op::Getlk(path) => sig::getlk(p, path),
        Op::DropPrivileges(on) => cred::drop_privileges_step(p, *on),
        Op::Setuid(u) => cred::setuid(id_of(p, u)?),
        Op::Setgid(g) => cred::setgid(id_of(p, g)?),
        Op::Setgroups(g) => cred::setgroups(g),
        Op::CapsDrop(c) => cred::caps_drop(c),
        Op::Dumpable(on) => cred::prctl_flag(libc::PR_SET_DUMPABLE, *on),
        Op::Setsid(_) => Ok(Value::Int(nix::unistd::setsid()?.as_raw() as i64)),
        Op::Subreaper(on) => cred::prctl_flag(libc::PR_SET_CHILD_SUBREAPER, *on),
        Op::Setrlimit(a) => cred::setrlimit(a),
        Op::FanotifyInit(_) => cred::fanotify_init(p, step),
        Op::Kill(k) => sig::kill(p, k),
        Op::Block(s) => sig::block(s),
        Op::AwaitSignal(a) => sig::await_signal(a),
        Op::Reap(what) => sig::reap(p, what, step.retry.is_some()),
        Op::Reboot(cmd) => sig::reboot(cmd),
        Op::AbsSleep(a) => time::abs_sleep(a),
        Op::ExecProbe(what) => time::exec_probe(p, what),
        Op::Nest(a) => probes::nest(a),
        Op::ThreadUnshare(f) => probes::thread_unshare(p, f),
        Op::FsShareUnshare(f) => probes::fs_share_unshare(p, f),
        Op::SetnsRace(n) => probes::setns_race(*n),
        // Namespace identity (issue 12).
        Op::NetnsCookie(fd) => nsid::netns_cookie(p, fd),
        Op::InitialNs(ns) => nsid::initial_ns(p, *ns),
        Op::Sleep(d) => time::sleep(d),
        Op::Expect(_) | Op::Isolation(_) | Op::Sync(_) | Op::Spawn(_) => {
            Err(Fail::Other(format!("`{}` is handled by the step loop", op.name())))
        }
    }
}

/// The last errno, as a failure.
pub fn last() -> Fail {
    Fail::Errno(Errno::last())
}

/// -1 means failure with errno.
pub fn check(r: libc::c_long) -> Result<libc::c_long, Fail> {
    if r < 0 { Err(last()) } else { Ok(r) }
}
