//! Machine state a root case can change in spite of its sandbox (see
//! docs/safety.md): writes to the machine's file systems
//! and cgroup trees, watched per trial from the sandbox, and global sysctls,
//! compared around the trials that may write one and over the whole run;
//! the global settings a case declares in `restore`, saved and put back;
//! whether the machine is throwaway (gVisor), where the sandboxes may do
//! without what that kernel lacks; and the state of a throwaway machine,
//! compared around a whole run.

pub mod fswatch;
pub mod global_state;
pub mod sysctl;
pub mod throwaway;
pub mod whole;

/// The failure of a trial that changed the machine, naming each change.
pub fn failure(changes: &[String]) -> Option<String> {
    (!changes.is_empty()).then(|| {
        let mut s = String::from("the case changed the machine:\n");
        for c in changes {
            s.push_str("  ");
            s.push_str(c);
            s.push('\n');
        }
        s
    })
}
