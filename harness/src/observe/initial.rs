//! The initial namespaces, read by the harness before any sandbox: those of
//! a kernel thread. Kernel threads never leave the namespaces the kernel
//! booted with, so kthreadd's /proc/2/ns links name the initial namespace of
//! every type whatever namespaces the harness itself is in; inside a sandbox
//! (its own pid namespace and procfs) no kernel thread is visible.

use crate::load::ns::Ns;
use std::collections::BTreeMap;

/// PF_KTHREAD, in the flags field of /proc/PID/stat.
const PF_KTHREAD: u64 = 0x0020_0000;

/// kthreadd: the parent of every kernel thread, pid 2 since Linux 2.6.22.
const KTHREADD: &str = "/proc/2";

/// Type name -> link text ("net:[4026531833]"), for the types this kernel has.
pub fn read() -> Result<BTreeMap<String, String>, String> {
    let stat = std::fs::read_to_string(format!("{KTHREADD}/stat"))
        .map_err(|e| format!("no kernel thread is visible ({KTHREADD}/stat: {e}): not in the initial pid namespace"))?;
    // Fields after the command name (which may hold spaces and parentheses):
    // state, ppid, pgrp, session, tty_nr, tpgid, flags.
    let flags = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(6))
        .and_then(|f| f.parse::<u64>().ok())
        .ok_or_else(|| format!("{KTHREADD}/stat has no flags field"))?;
    if flags & PF_KTHREAD == 0 {
        return Err(
            "pid 2 is not a kernel thread: this procfs belongs to a pid namespace other than the initial one".into(),
        );
    }
    let mut out = BTreeMap::new();
    for ns in Ns::ALL {
        let path = format!("{KTHREADD}/ns/{}", ns.proc_name());
        match std::fs::read_link(&path) {
            Ok(l) => {
                out.insert(ns.proc_name().to_string(), l.to_string_lossy().into_owned());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "cannot read {path}: {e} (reading a kernel thread's links takes root)"
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn read_answers_without_panicking() {
        // As root on a machine: every type; elsewhere a reason.
        match super::read() {
            Ok(m) => assert!(m.get("user").is_some_and(|l| l.starts_with("user:[")), "{m:?}"),
            Err(why) => assert!(!why.is_empty()),
        }
    }
}
