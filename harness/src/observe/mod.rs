//! Observe: read what the kernel says, for one observation key at a time.
//! Sources are the kernel's own interfaces (/proc, rtnetlink, syscalls), so a
//! verdict never depends on which userland tools are installed.

pub mod cgroups;
pub mod clocks;
mod ids;
pub mod initial;
pub mod links;
pub mod mounts;
mod pidns;
pub mod procfs;

pub use procfs::normalize as normalize_text;

use crate::load::expect::{CapSet, ObsKey};
use crate::load::ns::NsLink;
use crate::outcome::Obs;
use crate::value::Value;
use std::collections::BTreeMap;

/// What an observer needs besides the kernel: values saved by steps and the
/// pids of the other processes of the case as this process sees them.
pub struct Ctx<'a> {
    pub values: &'a BTreeMap<String, Value>,
    pub vars: &'a BTreeMap<String, String>,
    /// How reaped processes ended (the parent's record).
    pub exits: Option<&'a BTreeMap<String, String>>,
}

impl Ctx<'_> {
    pub fn expand(&self, s: &str) -> Result<String, String> {
        crate::load::vars::Vars::new(self.vars).values(self.values).expand(s)
    }

    fn pid_of(&self, proc_label: &str) -> Result<i32, String> {
        self.vars
            .get(proc_label)
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("{proc_label} has no pid this process can see"))
    }
}

pub fn observe(key: &ObsKey, ctx: &Ctx<'_>) -> Obs {
    match observe_value(key, ctx) {
        Ok(v) => Obs::Ok(v),
        Err(e) => Obs::Err(e),
    }
}

fn observe_value(key: &ObsKey, ctx: &Ctx<'_>) -> Result<Value, String> {
    match key {
        ObsKey::Id(name) => ids::own(name),
        ObsKey::Hostname => Ok(Value::Str(uname()?.nodename)),
        ObsKey::Domainname => Ok(Value::Str(uname()?.domainname)),
        ObsKey::Uname(f) => {
            let u = uname()?;
            Ok(Value::Str(match f {
                crate::load::expect::UnameField::Sysname => u.sysname,
                crate::load::expect::UnameField::Release => u.release,
                crate::load::expect::UnameField::Version => u.version,
                crate::load::expect::UnameField::Machine => u.machine,
            }))
        }
        ObsKey::Ns(link) => ns_link("/proc/thread-self", *link),
        ObsKey::NsLinkText(link) => ns_link("/proc/thread-self", *link),
        ObsKey::NsEntries => {
            let mut names: Vec<String> = std::fs::read_dir("/proc/thread-self/ns")
                .map_err(|e| format!("cannot list /proc/thread-self/ns: {e}"))?
                .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect();
            names.sort();
            Ok(Value::strs(names))
        }
        ObsKey::Caps(set) => caps("/proc/self/status", *set),
        ObsKey::Ipc(kind) => procfs::sysvipc_keys(*kind),
        ObsKey::Mount(path) => mounts::at("/proc/self/mountinfo", &ctx.expand(path)?),
        ObsKey::Links => links::names(),
        ObsKey::LinkState(name) => links::state(name),
        ObsKey::File(path) => procfs::file(&ctx.expand(path)?),
        ObsKey::Exists(path) => Ok(Value::Bool(std::fs::symlink_metadata(ctx.expand(path)?).is_ok())),
        ObsKey::Sysctl(name) => procfs::file(&format!("/proc/sys/{}", name.replace('.', "/"))),
        ObsKey::ProcPids => procfs::pids(),
        ObsKey::ProcSelf => std::fs::read_link("/proc/self")
            .map_err(|e| format!("cannot read /proc/self: {}", procfs::io_errno(&e)))
            .and_then(|t| t.to_string_lossy().parse::<i64>().map_err(|e| e.to_string()))
            .map(Value::Int),
        ObsKey::Value(name) => value_at(ctx.values, name),
        ObsKey::Children => procfs::children_of(nix::unistd::getpid().as_raw()),
        ObsKey::PidnsProcs(name) => match ctx.values.get(name) {
            Some(Value::Str(ns)) => pidns::procs_in(ns),
            _ => Err(format!(
                "no pid namespace was kept as `{name}` (open /proc/PID/ns/pid with `as`)"
            )),
        },
        ObsKey::Dir(path) => procfs::dir(&ctx.expand(path)?),
        ObsKey::Cwd => link("/proc/self/cwd"),
        ObsKey::Root => link("/proc/self/root"),
        ObsKey::MountCount => mounts::read("/proc/self/mountinfo").map(|m| Value::Int(m.len() as i64)),
        ObsKey::NsStat(l) => {
            use std::os::unix::fs::MetadataExt;
            let p = format!("/proc/thread-self/ns/{}", l.file_name());
            std::fs::metadata(&p)
                .map(|m| Value::Str(format!("{}:{}", m.dev(), m.ino())))
                .map_err(|e| format!("cannot stat {p}: {}", procfs::io_errno(&e)))
        }
        ObsKey::ClockShift(c) => clocks::shift(c, ctx.vars),
        ObsKey::UptimeVsBoottime => clocks::uptime_vs_boottime(),
        ObsKey::SysinfoVsBoottime => clocks::sysinfo_vs_boottime(),
        ObsKey::BtimeShift => clocks::btime_shift(ctx.vars),
        ObsKey::ExitStatus(label) => ctx
            .exits
            .and_then(|e| e.get(label))
            .map(|s| Value::Str(s.clone()))
            .ok_or_else(|| format!("{label} has not been reaped by the parent yet")),
        ObsKey::Seen(proc_label, inner) => {
            let pid = ctx.pid_of(proc_label)?;
            match inner.as_ref() {
                ObsKey::Mount(path) => mounts::at(&format!("/proc/{pid}/mountinfo"), &ctx.expand(path)?),
                other => seen(pid, other),
            }
        }
    }
}

/// A value a step kept; "name.field" looks inside a kept table.
fn value_at(values: &BTreeMap<String, Value>, name: &str) -> Result<Value, String> {
    if let Some(v) = values.get(name) {
        return Ok(v.clone());
    }
    let mut parts = name.split('.');
    let first = parts.next().unwrap_or("");
    let mut v = values
        .get(first)
        .ok_or_else(|| format!("no step saved a value as `{first}`"))?;
    for p in parts {
        match v.get(p) {
            Some(inner) => v = inner,
            // Observed, and not what a table with this field would be.
            None => return Ok(Value::Str(format!("(no `{p}` in {v})"))),
        }
    }
    Ok(v.clone())
}

fn link(path: &str) -> Result<Value, String> {
    std::fs::read_link(path)
        .map(|t| Value::Str(t.to_string_lossy().into_owned()))
        .map_err(|e| format!("cannot read {path}: {}", procfs::io_errno(&e)))
}

/// Another process through /proc/PID.
fn seen(pid: i32, key: &ObsKey) -> Result<Value, String> {
    let dir = format!("/proc/{pid}");
    match key {
        ObsKey::Mount(path) => mounts::at(&format!("{dir}/mountinfo"), path),
        ObsKey::Id("alive") => Ok(Value::Bool(ids::alive(pid))),
        ObsKey::Id(name) => ids::of(pid, name),
        ObsKey::Ns(link) => ns_link(&dir, *link),
        ObsKey::Caps(set) => caps(&format!("{dir}/status"), *set),
        ObsKey::File(rel) => procfs::file(&format!("{dir}/{rel}")),
        other => Err(format!("`{other}` cannot be read for another process")),
    }
}

pub fn ns_link(dir: &str, link: NsLink) -> Result<Value, String> {
    let p = format!("{dir}/ns/{}", link.file_name());
    std::fs::read_link(&p)
        .map(|t| Value::Str(t.to_string_lossy().into_owned()))
        .map_err(|e| format!("cannot read {p}: {}", procfs::io_errno(&e)))
}

/// Every ns link of this thread (the reference other processes compare with).
pub fn all_ns() -> BTreeMap<String, String> {
    let own = OwnNs::open();
    NsLink::ALL
        .into_iter()
        .filter_map(|l| match own.link(l) {
            Ok(Value::Str(s)) => Some((l.file_name().to_string(), s)),
            _ => None,
        })
        .collect()
}

/// This thread's ns links read at one moment through one open directory:
/// each link is then one lookup rather than a walk of
/// /proc/thread-self/ns from the root (in a sandbox's fresh proc mount
/// every step of that walk makes its dentry anew, and a snapshot reads
/// all ten). Where the directory cannot be opened each link is read by
/// its path, with the same errors as before.
pub struct OwnNs(Option<std::os::fd::OwnedFd>);

/// Where a process's own ns links are read.
const OWN: &str = "/proc/thread-self";

impl OwnNs {
    pub fn open() -> OwnNs {
        let flags = nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC;
        OwnNs(nix::fcntl::open("/proc/thread-self/ns", flags, nix::sys::stat::Mode::empty()).ok())
    }

    pub fn link(&self, link: NsLink) -> Result<Value, String> {
        let Some(dir) = &self.0 else {
            return ns_link(OWN, link);
        };
        match nix::fcntl::readlinkat(dir, link.file_name()) {
            Ok(t) => Ok(Value::Str(t.to_string_lossy().into_owned())),
            Err(_) => ns_link(OWN, link),
        }
    }
}

fn caps(status: &str, set: CapSet) -> Result<Value, String> {
    let v = procfs::status_field(status, set.status_field())?;
    let bits = u64::from_str_radix(v.trim(), 16).map_err(|e| format!("{}: {e}", set.status_field()))?;
    Ok(Value::Str(describe_caps(bits)))
}

/// "full", "none", or the hex mask.
pub fn describe_caps(bits: u64) -> String {
    if bits == 0 {
        "none".into()
    } else if bits == crate::sys::full_caps() {
        "full".into()
    } else {
        format!("{bits:#x}")
    }
}

struct Uname {
    sysname: String,
    nodename: String,
    release: String,
    version: String,
    machine: String,
    domainname: String,
}

fn uname() -> Result<Uname, String> {
    let u = nix::sys::utsname::uname().map_err(|e| format!("uname: {e}"))?;
    let f = |b: &std::ffi::OsStr| b.to_string_lossy().into_owned();
    Ok(Uname {
        sysname: f(u.sysname()),
        nodename: f(u.nodename()),
        release: f(u.release()),
        version: f(u.version()),
        machine: f(u.machine()),
        domainname: f(u.domainname()),
    })
}
