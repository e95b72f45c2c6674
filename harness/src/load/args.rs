//! Arguments of the step operations.

use super::flags::{FlagSet, MountFlag};
use super::names::{Dur, Signal};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use std::fmt;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetnsArgs {
    /// An nsfs path such as "/proc/{child}/ns/uts".
    pub path: Option<String>,
    /// An fd kept by an earlier `open` step.
    pub fd: Option<String>,
    /// A process of the case, joined through a pidfd.
    pub pidfd: Option<String>,
    /// The nstype argument (default 0: any).
    #[serde(default)]
    pub nstype: FlagSet,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloneArgs {
    #[serde(default)]
    pub flags: FlagSet,
    /// Exit signal (default SIGCHLD).
    pub exit_signal: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clone3Args {
    #[serde(default)]
    pub flags: FlagSet,
    pub exit_signal: Option<i64>,
    /// The size argument (default: the full struct the harness knows).
    pub size: Option<u64>,
    #[serde(default)]
    pub set_tid: Vec<i64>,
    /// Claim a set_tid array this long regardless of `set_tid`.
    pub set_tid_size: Option<u64>,
    /// Put a non-zero byte after the known struct (size must cover it).
    #[serde(default)]
    pub dirty_tail: bool,
    /// Pass an unmapped address as the struct pointer.
    #[serde(default)]
    pub bad_pointer: bool,
    /// CLONE_INTO_CGROUP target directory.
    pub cgroup: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForkArgs {
    #[serde(default = "one")]
    pub count: u32,
    /// The children exit at once (and stay zombies until reaped) instead of waiting.
    #[serde(default)]
    pub exit: bool,
    /// Extra clone flags (e.g. ["fs"] to share the fs struct, ["pid"] for a new pid namespace).
    #[serde(default)]
    pub flags: FlagSet,
    /// Not killed when this process ends (they become orphans).
    #[serde(default)]
    pub orphan: bool,
    /// Stop at the first failure and keep what was made, instead of failing.
    #[serde(default)]
    pub best_effort: bool,
}

fn one() -> u32 {
    1
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountArgs {
    pub source: Option<String>,
    pub target: String,
    pub fstype: Option<String>,
    #[serde(default)]
    pub flags: Vec<MountFlag>,
    pub data: Option<String>,
    /// Create the target directory first.
    #[serde(default)]
    pub mkdir: bool,
}

#[derive(Clone, Debug)]
pub struct UmountArgs {
    pub target: String,
    pub detach: bool,
}

impl<'de> Deserialize<'de> for UmountArgs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            target: String,
            #[serde(default)]
            detach: bool,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UmountArgs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path or { target, detach }")
            }
            fn visit_str<E>(self, v: &str) -> Result<UmountArgs, E> {
                Ok(UmountArgs {
                    target: v.into(),
                    detach: false,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<UmountArgs, A::Error> {
                let f = Full::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(UmountArgs {
                    target: f.target,
                    detach: f.detach,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclSetArgs {
    pub path: String,
    /// `user::rw`, `user:1000:rwx`, `group::r`, `group:100:r`, `mask::rwx`, `other::`.
    pub entries: Vec<String>,
}

/// Which cgroup hierarchy `mount_cgroup` attaches.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Hierarchy {
    /// The one where the suite is not at the root (v2 if it qualifies), found at start-up.
    Nonroot,
    /// The cgroup2 hierarchy.
    Unified,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountCgroupArgs {
    pub target: String,
    pub hierarchy: Hierarchy,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteArgs {
    pub path: String,
    pub data: String,
    /// Create (and truncate) a regular file; off for /proc and /sys files.
    #[serde(default)]
    pub create: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpcArgs {
    pub key: i64,
    #[serde(default = "yes")]
    pub create: bool,
    #[serde(default)]
    pub excl: bool,
    /// Shared memory size in bytes.
    pub size: Option<u64>,
    /// Semaphores in the set.
    pub nsems: Option<i32>,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VethArgs {
    pub name: String,
    pub peer: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkArgs {
    pub name: String,
    pub up: Option<bool>,
    /// Move the link into the network namespace of this nsfs path.
    pub netns: Option<String>,
    #[serde(default)]
    pub delete: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillArgs {
    /// A pid, or a template such as "{child}".
    pub pid: String,
    pub signal: Signal,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChmodArgs {
    pub path: String,
    pub mode: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PivotArgs {
    pub new_root: String,
    pub put_old: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenTreeArgs {
    pub path: String,
    /// OPEN_TREE_CLONE: a detached copy.
    #[serde(default)]
    pub clone: bool,
    /// AT_RECURSIVE.
    #[serde(default)]
    pub recursive: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveMountArgs {
    /// A kept fd (from open_tree).
    pub fd: String,
    pub target: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountSetattrArgs {
    /// A path, or a kept fd with `fd`.
    pub path: Option<String>,
    pub fd: Option<String>,
    /// "rdonly", "nosuid", "nodev", "noexec", "idmap", ...
    #[serde(default)]
    pub set: Vec<String>,
    #[serde(default)]
    pub clear: Vec<String>,
    /// MS_SHARED & co by name, or a raw value (-1 to check rejection).
    pub propagation: Option<toml::Value>,
    /// A kept fd of a user namespace, for MOUNT_ATTR_IDMAP.
    pub userns: Option<String>,
    #[serde(default)]
    pub recursive: bool,
    /// The size argument (default: the struct's).
    pub size: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListmountArgs {
    /// The mount namespace, as a kept fd of an nsfs mnt file (default: our own).
    pub ns: Option<String>,
    /// Or its id (from NS_GET_MNTNS_ID kept with `as`).
    pub ns_id: Option<String>,
}

/// The most ids one `listns` step asks for.
pub const MAX_LISTNS: u64 = 4096;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListnsArgs {
    /// Namespace types to list (`ns_type`; empty: every type).
    #[serde(default)]
    pub types: FlagSet,
    /// The owning user namespace's id (`user_ns_id`), as text with
    /// placeholders, or "current" for LISTNS_CURRENT_USER.
    pub owner: Option<String>,
    /// List only ids above this one (`ns_id`, the last of a previous page).
    pub after: Option<String>,
    /// How many ids to ask for (`nr_ns_ids`, default 256).
    pub max: Option<u64>,
    /// The flags argument (default 0, the only one the kernel takes).
    #[serde(default)]
    pub flags: u32,
    /// Ids to look for, by name (text with placeholders): the result is
    /// then `{ ids, count, has.NAME }`, `has.NAME` true when that id is
    /// listed; without it, the list of ids.
    #[serde(default)]
    pub find: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IoctlArgs {
    /// A kept fd, or a path opened for the call.
    pub fd: Option<String>,
    pub path: Option<String>,
    pub request: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyText {
    pub key: i64,
    pub text: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyOnly {
    pub key: i64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemArgs {
    pub key: i64,
    /// semop's sem_op, or semset's value.
    pub value: i32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqOpenArgs {
    pub name: String,
    #[serde(default)]
    pub create: bool,
    #[serde(default)]
    pub excl: bool,
    pub maxmsg: Option<i64>,
    pub msgsize: Option<i64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqSendArgs {
    /// A kept fd (from mq_open with `as`) or a queue name ("/q").
    pub queue: String,
    pub text: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqNotifyArgs {
    pub queue: String,
    pub signal: Signal,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddrArgs {
    pub link: String,
    /// "10.77.0.1/24" or "fd77::1/64".
    pub address: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetnsidArgs {
    /// An nsfs net path, e.g. "/proc/{child}/ns/net".
    pub netns: String,
    pub id: i32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketArgs {
    /// "unix", "inet", "inet6", "netlink_route".
    pub family: String,
    /// "stream", "dgram", "seqpacket".
    #[serde(default = "dgram")]
    pub kind: String,
    /// "@abstract" for unix; "10.0.0.1:9000" or "[fd77::1]:9000" for inet.
    pub bind: Option<String>,
    #[serde(default)]
    pub listen: bool,
    pub connect: Option<String>,
    /// For netlink_route: subscribe to link events.
    #[serde(default)]
    pub link_events: bool,
}

fn dgram() -> String {
    "dgram".into()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendArgs {
    pub fd: String,
    pub data: String,
    /// A destination address for an unconnected datagram socket.
    pub to: Option<String>,
    /// Reply to the sender of the last datagram `recv` took on this fd.
    #[serde(default)]
    pub reply: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecvArgs {
    pub fd: String,
    #[serde(default = "two_seconds")]
    pub timeout: Dur,
}

fn two_seconds() -> Dur {
    Dur::parse("2s").expect("a valid duration")
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsyncArgs {
    pub fd: String,
    pub signal: Signal,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteFdArgs {
    pub fd: String,
    pub data: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlimitArgs {
    /// "msgqueue", "nproc", "nofile".
    pub resource: String,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwaitArgs {
    pub signal: Signal,
    #[serde(default = "two_seconds")]
    pub timeout: Dur,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbsSleepArgs {
    /// "clock_nanosleep", "timerfd", "timer", "futex".
    pub api: String,
    pub ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NestArgs {
    /// pid or user (`NestArgs::TYPES`).
    pub namespace: super::ns::Ns,
    /// Stop trying after this many levels.
    pub depth: u32,
}

impl NestArgs {
    /// The types `nest` makes levels of: those that nest.
    pub const TYPES: [super::ns::Ns; 2] = [super::ns::Ns::Pid, super::ns::Ns::User];
}

/// The kernel's limit of lines in one id map (UID_GID_MAP_MAX_EXTENTS).
pub const MAP_MAX_EXTENTS: u32 = 340;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteMapArgs {
    pub path: String,
    pub extents: u32,
    #[serde(default)]
    pub inside: u32,
    pub outside: u32,
}
