//! Ops: what a step does. Each returns a value (kept with `as`) or how it
//! failed, so the case can require success, an errno, or an exit status.

mod cmd;
mod fs;
mod ipc;
mod net;
mod ns;
mod proc;
mod uts;

use crate::load::step::{Op, Step};
use crate::spawn::script::Proc;
use crate::value::Value;
use nix::errno::Errno;
use std::fmt;

pub enum Fail {
    Errno(Errno),
    /// A command's exit status (128 + signal when killed) and what it printed on stderr.
    Status(i32, String),
    Other(String),
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fail::Errno(e) => f.write_str(&crate::load::flags::errno_name(*e as i32)),
            Fail::Status(c, _) => write!(f, "exit status {c}"),
            Fail::Other(m) => f.write_str(m),
        }
    }
}

impl From<Errno> for Fail {
    fn from(e: Errno) -> Fail {
        Fail::Errno(e)
    }
}

pub type OpResult = Result<Value, Fail>;

/// Fill placeholders, as a step failure if one has no value here.
pub fn expand(p: &Proc<'_>, s: &str) -> Result<String, Fail> {
    p.expand(s).map_err(Fail::Other)
}

pub fn run(op: &Op, step: &Step, p: &mut Proc<'_>) -> OpResult {
    match op {
        Op::Sh(c) => cmd::sh(p, c),
        Op::Cmd(argv) => cmd::cmd(p, argv),
        Op::Sethostname(h) => uts::sethostname(p, h),
        Op::Setdomainname(h) => uts::setdomainname(p, h),
        Op::Unshare(f) => ns::unshare(p, f),
        Op::Setns(a) => ns::setns(p, a),
        Op::Clone(a) => proc::clone(p, a),
        Op::Clone3(a) => proc::clone3(p, a),
        Op::Fork(a) => proc::fork(p, a.count),
        Op::Mount(m) => fs::mount(p, m),
        Op::Umount(u) => fs::umount(p, u),
        Op::Mkdir(d) => fs::mkdir(p, d),
        Op::Write(w) => fs::write(p, w),
        Op::Read(path) => fs::read(p, path),
        Op::Open(path) => fs::open(p, path, step.save_as.as_deref()),
        Op::Close(name) => fs::close(p, name),
        Op::Msgget(a) => ipc::msgget(a),
        Op::Shmget(a) => ipc::shmget(a),
        Op::Semget(a) => ipc::semget(a),
        Op::Veth(v) => net::veth(v),
        Op::Link(l) => net::link(p, l),
        Op::DropPrivileges(on) => {
            if *on {
                crate::spawn::create::drop_privileges_to(&p.vars).map_err(Fail::Other)?;
            }
            Ok(Value::Bool(*on))
        }
        Op::Kill(k) => proc::kill(p, k),
        Op::Sleep(d) => {
            let d = crate::load::model::parse_duration(d).unwrap_or_default();
            std::thread::sleep(d);
            Ok(Value::Bool(true))
        }
        Op::Expect(_) | Op::Isolation(_) | Op::Sync(_) | Op::Spawn(_) => {
            Err(Fail::Other(format!("`{}` is handled by the step loop", op.name())))
        }
    }
}

/// "SIGKILL", "KILL", "9".
pub fn signal_number(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (0..=64).contains(&n).then_some(n);
    }
    let name = if s.starts_with("SIG") {
        s.to_string()
    } else {
        format!("SIG{s}")
    };
    name.parse::<nix::sys::signal::Signal>().ok().map(|s| s as i32)
}
