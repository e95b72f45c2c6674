//! Steps: what a process of a case does, in order.
//!
//! A step is a table with exactly one operation key (`sethostname = "x"`,
//! `mount = { ... }`) plus optional modifiers saying what outcome is required
//! (`errno = "EINVAL"`, `status = 1`, `may_fail = true`) and where to keep
//! the result (`as = "name"`).

use super::expect::Expect;
use super::flags::{ErrnoName, FlagSet, MountFlag};
use super::model::ProcSpec;
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
    Mount(MountArgs) = "mount",
    Umount(UmountArgs) = "umount",
    Mkdir(String) = "mkdir",
    /// One write(2) of `data` to `path`; returns the byte count.
    Write(WriteArgs) = "write",
    /// Read a file whole; returns its text.
    Read(String) = "read",
    /// Open a path (O_RDONLY) and keep the fd under the step's `as` name.
    Open(String) = "open",
    Close(String) = "close",
    Msgget(IpcArgs) = "msgget",
    Shmget(IpcArgs) = "shmget",
    Semget(IpcArgs) = "semget",
    /// A veth pair, created over rtnetlink.
    Veth(VethArgs) = "veth",
    /// Bring a link up or down, or move it to another network namespace.
    Link(LinkArgs) = "link",
    /// Become an unprivileged uid/gid with no capabilities.
    DropPrivileges(bool) = "drop_privileges",
    /// Send a signal.
    Kill(KillArgs) = "kill",
    Sleep(String) = "sleep",
    /// Observe now and check these expectations.
    Expect(Box<Expect>) = "expect",
    /// Observe now; these hold only because of the namespaces (a control must see them fail).
    Isolation(Box<Expect>) = "isolation",
    /// Stop here and let the parent run its `on.<name>` steps.
    Sync(String) = "sync",
}

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
    pub signal: String,
}

const MODIFIERS: &[&str] = &["errno", "may_fail", "status", "as", "why"];

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
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "errno" => errno = Some(map.next_value()?),
                        "may_fail" => may_fail = map.next_value()?,
                        "status" => status = Some(map.next_value()?),
                        "as" => save_as = Some(map.next_value()?),
                        "why" => why = Some(map.next_value()?),
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
                    de::Error::custom(format!("a step needs an operation, one of: {}", OP_NAMES.join(", ")))
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
