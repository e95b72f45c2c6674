//! Steps: what a process of a case does, in order.
//!
//! A step is a table with exactly one operation key (`sethostname = "x"`,
//! `mount = { ... }`) plus optional modifiers saying what outcome is required
//! (`errno = "EINVAL"`, `status = 1`, `may_fail = true`) and where to keep
//! the result (`as = "name"`).

pub use super::args::*;
use super::expect::Expect;
use super::flags::{ErrnoName, FlagSet};
use super::model::{ExitSpec, ProcSpec};
use super::names::{Dur, Signal};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use std::fmt;

#[derive(Clone, Debug)]
pub struct Step {
    pub op: Op,
    /// The call must fail with this errno.
    pub errno: Option<ErrnoName>,
    /// The outcome is recorded, not checked.
    pub may_fail: bool,
    /// A command must exit with this status (default 0).
    pub status: Option<i32>,
    /// Keep the result as `values.<name>` (or, for `open`, as a named fd).
    pub save_as: Option<String>,
    /// Why the step is there; shown in reports.
    pub why: Option<String>,
    /// Try again until the required outcome or this much time has passed
    /// (for what the kernel finishes asynchronously, like namespace teardown).
    pub retry: Option<Dur>,
    /// The outcome the step has in the control instead, and why.
    pub in_control: Option<InControl>,
}

/// A step (or a process's end) whose outcome legitimately differs without
/// the namespaces under test (a `mount` that needs the dropped user namespace
/// is EPERM): the outcome it has in the control instead, and why. Without
/// one, an outcome that differs in the control fails it, since the control
/// then ran another case than the one it should prove something about.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InControl {
    /// The call fails with this errno in the control.
    pub errno: Option<ErrnoName>,
    /// The command exits with this status in the control.
    pub status: Option<i32>,
    /// The step succeeds in the control (where the case requires a failure).
    pub succeeds: Option<bool>,
    /// (On a process) how it ends in the control: a status or a signal name.
    pub exit: Option<ExitSpec>,
    /// Why the outcome differs; shown in the control's report.
    #[serde(default)]
    pub why: String,
}

impl InControl {
    /// The outcome as a step failure words what happened ("EPERM",
    /// "exit status 1", "success", "killed by SIGTERM"), or None when it
    /// names none or several.
    pub fn outcome(&self) -> Option<String> {
        match (self.errno, self.status, self.succeeds, &self.exit) {
            (Some(e), None, None, None) => Some(e.to_string()),
            (None, Some(s), None, None) => Some(format!("exit status {s}")),
            (None, None, Some(true), None) => Some("success".into()),
            (None, None, None, Some(x)) => Some(x.describe()),
            _ => None,
        }
    }
}

macro_rules! ops {
    ($( $(#[$m:meta])* $variant:ident($ty:ty) = $name:literal, )*) => {
        #[derive(Clone, Debug)]
        pub enum Op { $( $(#[$m])* $variant($ty), )* }

        pub const OP_NAMES: &[&str] = &[ $($name),* ];

        impl Op {
            pub fn name(&self) -> &'static str {
                match self { $( Op::$variant(_) => $name, )* }
            }
            /// The arguments, for reports.
            pub fn args_debug(&self) -> String {
                match self { $( Op::$variant(a) => format!("{a:?}"), )* }
            }
            fn parse<'de, A: MapAccess<'de>>(key: &str, map: &mut A) -> Result<Option<Op>, A::Error> {
                Ok(Some(match key {
                    $( $name => Op::$variant(map.next_value()?), )*
                    _ => return Ok(None),
                }))
            }
        }
    };
}

ops! {
    /// A shell command line (`sh -c`).
    Sh(String) = "sh",
    /// A command as an argv list.
    Cmd(Vec<String>) = "cmd",
    Sethostname(String) = "sethostname",
    Setdomainname(String) = "setdomainname",
    /// unshare(2) in this process.
    Unshare(FlagSet) = "unshare",
    /// setns(2) by nsfs path, named fd, or pidfd.
    Setns(SetnsArgs) = "setns",
    /// clone(2) of a child that exits at once: checks the flags, returns its pid.
    Clone(CloneArgs) = "clone",
    /// clone3(2) likewise, with the extended arguments.
    Clone3(Clone3Args) = "clone3",
    /// Fork `count` children that wait until this process ends; returns their pids.
    Fork(ForkArgs) = "fork",
    /// A nested process with its own namespaces, steps and expectations.
    Spawn(Box<ProcSpec>) = "spawn",
    /// Start idle threads (the process is then multithreaded).
    Threads(u32) = "threads",
    Mount(MountArgs) = "mount",
    /// Mount a cgroup hierarchy (created as a directory first); `nonroot` is
    /// the one where the suite is off the root, so a cgroup namespace shows.
    MountCgroup(MountCgroupArgs) = "mount_cgroup",
    Umount(UmountArgs) = "umount",
    Mkdir(String) = "mkdir",
    /// One write(2) of `data` to `path`; returns the byte count.
    Write(WriteArgs) = "write",
    /// Read a file whole; returns its text.
    Read(String) = "read",
    Chmod(ChmodArgs) = "chmod",
    /// Write an id map of `extents` one-id lines ("i outside+i 1") in one write(2).
    WriteMap(WriteMapArgs) = "write_map",
    /// stat(2): `{ uid, gid, mode }`.
    Stat(String) = "stat",
    Chdir(String) = "chdir",
    Chroot(String) = "chroot",
    PivotRoot(PivotArgs) = "pivot_root",
    /// open_tree(2), keeping the fd under `as`.
    OpenTree(OpenTreeArgs) = "open_tree",
    /// move_mount(2) of a kept fd onto a path.
    MoveMount(MoveMountArgs) = "move_mount",
    /// mount_setattr(2).
    MountSetattr(MountSetattrArgs) = "mount_setattr",
    /// listmount(2) of a mount namespace's mounts: their count.
    Listmount(ListmountArgs) = "listmount",
    /// listns(2) (Linux 6.19): the namespace ids it lists, in order.
    Listns(ListnsArgs) = "listns",
    /// Open a path (O_RDONLY) and keep the fd under the step's `as` name.
    Open(String) = "open",
    /// Open a file write-only (for a later `write_fd`), kept under `as`.
    OpenWrite(String) = "open_write",
    Close(String) = "close",
    /// memfd_create(2), kept under `as`.
    Memfd(String) = "memfd",
    /// pidfd_open(2) of a pid, kept under `as`.
    Pidfd(String) = "pidfd",
    /// name_to_handle_at(2) on a namespace file: the handle, as text for `{value:NAME}`.
    NsHandle(String) = "ns_handle",
    /// open_by_handle_at(FD_NSFS_ROOT) with a handle from `ns_handle`; the fd is kept under `as`.
    OpenNsHandle(String) = "open_ns_handle",
    /// Set the POSIX access ACL of a file: entries like "user:1000:rwx".
    AclSet(AclSetArgs) = "acl_set",
    /// Read a file's POSIX access ACL: its entries, ids as this user namespace sees them.
    AclGet(String) = "acl_get",
    /// An nsfs, socket or pidfd ioctl by name; a returned fd is kept under `as`.
    Ioctl(IoctlArgs) = "ioctl",
    /// getsockopt(SO_NETNS_COOKIE) of a kept socket.
    NetnsCookie(String) = "netns_cookie",
    /// The initial namespace of a type, as the harness read it before the sandbox: its link text.
    InitialNs(super::ns::Ns) = "initial_ns",
    Msgget(IpcArgs) = "msgget",
    Shmget(IpcArgs) = "shmget",
    Semget(IpcArgs) = "semget",
    /// Attach the segment with this key and write text into it.
    ShmWrite(KeyText) = "shm_write",
    /// Attach the segment with this key: its text up to the first NUL.
    ShmRead(KeyOnly) = "shm_read",
    Msgsnd(KeyText) = "msgsnd",
    /// msgrcv(2) without waiting: the text.
    Msgrcv(KeyOnly) = "msgrcv",
    /// semop(2) on semaphore 0 of the set, without waiting.
    Semop(SemArgs) = "semop",
    /// semctl(SETVAL) on semaphore 0.
    Semset(SemArgs) = "semset",
    /// POSIX message queues.
    MqOpen(MqOpenArgs) = "mq_open",
    MqSend(MqSendArgs) = "mq_send",
    MqReceive(String) = "mq_receive",
    MqNotify(MqNotifyArgs) = "mq_notify",
    MqUnlink(String) = "mq_unlink",
    /// A veth pair, created over rtnetlink.
    Veth(VethArgs) = "veth",
    /// Bring a link up or down, or move it to another network namespace.
    Link(LinkArgs) = "link",
    /// Add an address to a link (rtnetlink).
    Addr(AddrArgs) = "addr",
    /// Assign an id to a peer network namespace (RTM_NEWNSID).
    Netnsid(NetnsidArgs) = "netnsid",
    /// A socket, kept under `as`.
    Socket(SocketArgs) = "socket",
    Accept(String) = "accept",
    Send(SendArgs) = "send",
    /// Receive one message (with a timeout): its text.
    Recv(RecvArgs) = "recv",
    /// SO_PEERCRED of a connected unix socket: `{ pid, uid, gid }`.
    Peercred(String) = "peercred",
    /// Link names in the events a netlink socket subscribed to RTMGRP_LINK has queued.
    LinkEvents(RecvArgs) = "link_events",
    /// A pipe: fds `<name>.r` and `<name>.w`.
    Pipe(String) = "pipe",
    /// O_ASYNC with F_SETOWN to this process and F_SETSIG.
    Async(AsyncArgs) = "async",
    /// write(2) to a kept fd.
    WriteFd(WriteFdArgs) = "write_fd",
    /// Take an fcntl write lock on a file (its fd kept under `as`).
    Lock(String) = "lock",
    /// F_GETLK for a write lock on a file: `{ type, pid }`.
    Getlk(String) = "getlk",
    /// Become an unprivileged uid/gid with no capabilities.
    DropPrivileges(bool) = "drop_privileges",
    /// setresuid / setresgid / setgroups inside the current user namespace.
    Setuid(String) = "setuid",
    Setgid(String) = "setgid",
    Setgroups(Vec<u32>) = "setgroups",
    /// Remove capabilities (by name, e.g. "sys_chroot") from every set.
    CapsDrop(Vec<String>) = "caps_drop",
    Dumpable(bool) = "dumpable",
    /// setsid(2): a new session and process group led by this process.
    Setsid(bool) = "setsid",
    Subreaper(bool) = "subreaper",
    Setrlimit(RlimitArgs) = "setrlimit",
    /// Send a signal.
    Kill(KillArgs) = "kill",
    /// Block signals (they stay pending, even for a pid namespace's init).
    Block(Vec<Signal>) = "block",
    /// Wait for a blocked signal: `{ signal, pid, uid, code, fd }` from its siginfo.
    AwaitSignal(AwaitArgs) = "await_signal",
    /// Reap a child: a pid, or "any".
    Reap(String) = "reap",
    /// reboot(2) with "restart", "power_off", "halt", "cad_on" (refused in the initial pid namespace).
    Reboot(String) = "reboot",
    /// fanotify_init(FAN_CLASS_NOTIF), kept under `as`.
    FanotifyInit(bool) = "fanotify_init",
    /// Sleep until an absolute CLOCK_MONOTONIC deadline `ms` ahead, with
    /// clock_nanosleep, timerfd, a POSIX timer or a futex: the milliseconds it took.
    AbsSleep(AbsSleepArgs) = "abs_sleep",
    /// Run the harness binary as a helper (`caps`, `clocks`) and keep what it printed.
    ExecProbe(String) = "exec_probe",
    /// Nest namespaces of one type until the kernel refuses: `{ created, errno }`.
    Nest(NestArgs) = "nest",
    /// In a new thread: unshare and set the hostname; `{ same_ns, main_hostname, thread_hostname }`.
    ThreadUnshare(FlagSet) = "thread_unshare",
    /// With a process sharing our fs struct: unshare, chdir, see whether it followed.
    FsShareUnshare(FlagSet) = "fs_share_unshare",
    /// setns(pidfd) racing the target's exit, many times: the errnos seen.
    SetnsRace(u32) = "setns_race",
    Sleep(Dur) = "sleep",
    /// Observe now and check these expectations.
    Expect(Box<Expect>) = "expect",
    /// Observe now; these hold only because of the namespaces (a control must see them fail).
    Isolation(Box<Expect>) = "isolation",
    /// Stop here and let the parent run its `on.<name>` steps.
    Sync(String) = "sync",
}

const MODIFIERS: &[&str] = &["errno", "may_fail", "status", "as", "why", "retry", "in_control"];

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Step;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a step: a table with one operation such as { sethostname = \"x\" }")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Step, A::Error> {
                let mut op: Option<Op> = None;
                let mut errno = None;
                let mut may_fail = false;
                let mut status = None;
                let mut save_as = None;
                let mut why = None;
                let mut retry = None;
                let mut in_control = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "errno" => errno = Some(map.next_value()?),
                        "may_fail" => may_fail = map.next_value()?,
                        "status" => status = Some(map.next_value()?),
                        "as" => save_as = Some(map.next_value()?),
                        "why" => why = Some(map.next_value()?),
                        "retry" => retry = Some(map.next_value()?),
                        "in_control" => in_control = Some(map.next_value()?),
                        name => match Op::parse(name, &mut map)? {
                            Some(parsed) => {
                                if let Some(first) = &op {
                                    return Err(de::Error::custom(format!(
                                        "a step does one thing, this one has both `{}` and `{name}`",
                                        first.name()
                                    )));
                                }
                                op = Some(parsed);
                            }
                            None => {
                                return Err(de::Error::unknown_field(name, step_keys()));
                            }
                        },
                    }
                }
                let op = op.ok_or_else(|| {
                    de::Error::custom(format!(
                        "a step needs an operation (one of the {} in cases/REFERENCE.md), not only modifiers",
                        OP_NAMES.len()
                    ))
                })?;
                if errno.is_some() && may_fail {
                    return Err(de::Error::custom(
                        "`errno` requires a failure, `may_fail` accepts anything: keep one",
                    ));
                }
                Ok(Step {
                    op,
                    errno,
                    may_fail,
                    status,
                    save_as,
                    why,
                    retry,
                    in_control,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// Every key a step may hold (serde's unknown_field wants a 'static list).
fn step_keys() -> &'static [&'static str] {
    static KEYS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| OP_NAMES.iter().chain(MODIFIERS).copied().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The case format's reference must name every operation and modifier.
    #[test]
    fn every_operation_is_documented() {
        let doc = include_str!("../../../cases/REFERENCE.md");
        let missing: Vec<_> = OP_NAMES
            .iter()
            .chain(MODIFIERS)
            .filter(|n| {
                !doc.contains(&format!("`{n} "))
                    && !doc.contains(&format!("`{n}`"))
                    && !doc.contains(&format!("`{n} ="))
            })
            .collect();
        assert!(missing.is_empty(), "cases/REFERENCE.md does not document {missing:?}");
    }
}
