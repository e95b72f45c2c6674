//! What an op sees of the process it runs in: the fds, values and
//! placeholder variables its steps kept, the children it holds, the last
//! sender of each socket, the namespace types the trial leaves out, and
//! where the commands it runs are logged. The step runner (spawn's `Proc`)
//! contains one and sends the command log on; ops know nothing of spawn.

use crate::load::ns::Ns;
use crate::outcome::CommandLog;
use crate::value::Value;
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;

pub struct Ctx<'a> {
    /// The process's label in reports ("child", "peer:a", "child/inner").
    pub label: String,
    /// Namespace types the trial leaves out (a control): ops that take
    /// clone or unshare flags leave them out too.
    pub dropped: &'a [Ns],
    pub fds: BTreeMap<String, OwnedFd>,
    pub values: BTreeMap<String, Value>,
    /// Placeholder values: uid, gid, scratch, and pids of other processes as this one sees them.
    pub vars: BTreeMap<String, String>,
    /// Children forked by `fork` steps, killed when this process ends.
    pub held: Vec<i32>,
    /// The last sender each socket received from (for replies).
    pub peers: BTreeMap<String, nix::sys::socket::SockaddrStorage>,
    /// Commands run since the step runner last took them.
    pub commands: Vec<CommandLog>,
}

impl<'a> Ctx<'a> {
    pub fn new(label: String, dropped: &'a [Ns], vars: BTreeMap<String, String>) -> Ctx<'a> {
        Ctx {
            label,
            dropped,
            fds: BTreeMap::new(),
            values: BTreeMap::new(),
            vars,
            held: Vec::new(),
            peers: BTreeMap::new(),
            commands: Vec::new(),
        }
    }

    pub fn dropped(&self, ns: Ns) -> bool {
        self.dropped.contains(&ns)
    }

    pub fn log_command(&mut self, command: String, status: String, stderr: String) {
        self.commands.push(CommandLog {
            proc_label: self.label.clone(),
            command,
            status,
            stderr,
        });
    }

    /// Fill placeholders: variables, and `{value:NAME}` for a kept value
    /// (the first item of a list, as `fork` keeps its pids).
    pub fn expand(&self, s: &str) -> Result<String, String> {
        crate::load::vars::Vars::new(&self.vars)
            .values(&self.values)
            .fds(&self.fds)
            .expand(s)
    }
}
