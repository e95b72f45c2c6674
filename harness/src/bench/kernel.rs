//! The kernel's own cost of what a trial creates: a clone3 of a child
//! that exits at once, and its waitpid, for each set of namespaces.

use super::suite::{Run, Trial};
use crate::plan::RunEnv;
use crate::sys;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

/// Iterations per round and rounds of the clone-and-wait loop (docs/performance.md tells the method).
pub const ITERS: usize = 200;
pub const ROUNDS: usize = 3;

/// Median of `ROUNDS` medians of clone3(flags) + waitpid, in microseconds.
fn kernel_cost(flags: u64) -> Result<f64, String> {
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let mut v = Vec::with_capacity(ITERS);
        for _ in 0..ITERS {
            let args = sys::CloneArgs {
                flags,
                exit_signal: libc::SIGCHLD as u64,
                ..Default::default()
            };
            let t = Instant::now();
            // SAFETY: `args` is a live CloneArgs of CLONE_ARGS_SIZE_VER2 bytes;
            // `flags` are namespace flags only (no CLONE_VM or thread
            // sharing), so the child gets its own copy of memory and does
            // nothing in it but _exit. Raw, because nix has no clone3.
            let pid = unsafe { sys::clone3_raw((&args as *const sys::CloneArgs).cast(), sys::CLONE_ARGS_SIZE_VER2) }
                .map_err(|e| format!("clone3({flags:#x}): {e}"))?;
            if pid == 0 {
                // SAFETY: _exit is async-signal-safe and ends the child at
                // once, without the parent's atexit handlers or buffers.
                unsafe { libc::_exit(0) };
            }
            let _ = waitpid(Pid::from_raw(pid), None);
            v.push(t.elapsed().as_secs_f64() * 1e6);
        }
        rounds.push(super::stats::percentile(&mut v, 0.5));
    }
    Ok(super::stats::percentile(&mut rounds, 0.5))
}

pub fn flag_names(flags: u64) -> String {
    let names: Vec<&str> = crate::load::ns::Ns::ALL
        .into_iter()
        .filter(|n| flags & n.flag() != 0)
        .map(|n| n.proc_name())
        .collect();
    if names.is_empty() {
        "none (a plain process)".into()
    } else {
        names.join(" ")
    }
}

/// The kernel's cost of what a trial creates: its sandbox and its child.
pub struct Kernel {
    pub sandbox_flags: u64,
    user_needed: bool,
    costs: BTreeMap<u64, f64>,
}

impl Kernel {
    pub fn new(env: &RunEnv) -> Kernel {
        Kernel {
            sandbox_flags: crate::spawn::sandbox::flags(env) as u64,
            user_needed: !env.privileged,
            costs: BTreeMap::new(),
        }
    }

    /// Flags as this process can create them: unprivileged, with a user namespace.
    pub fn creatable(&self, flags: u64) -> u64 {
        if self.user_needed && flags != 0 {
            flags | libc::CLONE_NEWUSER as u64
        } else {
            flags
        }
    }

    pub fn cost(&mut self, flags: u64) -> Result<f64, String> {
        let f = self.creatable(flags);
        if let Some(c) = self.costs.get(&f) {
            return Ok(*c);
        }
        let c = kernel_cost(f)?;
        self.costs.insert(f, c);
        Ok(c)
    }

    /// The sandbox, and every process the case had created.
    pub fn of_trial(&mut self, t: &Trial) -> Result<f64, String> {
        let mut c = self.cost(self.sandbox_flags)?;
        for f in &t.created {
            c += self.cost(*f)?;
        }
        Ok(c)
    }
}

/// The kernel's cost of each set of namespaces the serial run created.
pub fn kernel_costs(out: &mut String, k: &mut Kernel, serial: &Run) -> Result<(), String> {
    let _ = writeln!(
        out,
        "\nthe kernel's own cost: clone3 + waitpid of a child that exits at once, median of {ROUNDS}x{ITERS}"
    );
    let mut used: Vec<u64> = vec![k.sandbox_flags, 0];
    used.extend(serial.trials.iter().flat_map(|t| t.created.iter().copied()));
    used.sort();
    used.dedup();
    for f in used {
        let c = k.cost(f)?;
        let what = if f == k.sandbox_flags {
            format!("{} (the sandbox)", flag_names(k.creatable(f)))
        } else {
            flag_names(k.creatable(f))
        };
        let _ = writeln!(out, "  {c:>8.0} us  {what}");
    }
    Ok(())
}
