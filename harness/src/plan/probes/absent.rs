//! Why a call or a file a probe looks for is not there. Three causes read
//! alike (ENOSYS, EPERM, a missing /proc file) and mean different things:
//! a kernel too old for it, a seccomp filter in front of the kernel that
//! refused the call (Docker's default profile answers clone3 with ENOSYS),
//! or a kernel that is not Linux (gVisor), where no version of Linux says
//! anything. The probe names the one it can tell.

use super::found::Found;
use nix::errno::Errno;

/// Whether a seccomp filter applies to this process (`Seccomp: 2` in its
/// status); a filter that answers a call with an errno looks like a kernel
/// without it.
pub fn filtered() -> bool {
    filter_mode(&std::fs::read_to_string("/proc/self/status").unwrap_or_default())
}

fn filter_mode(status: &str) -> bool {
    status
        .lines()
        .any(|l| l.strip_prefix("Seccomp:").is_some_and(|v| v.trim() == "2"))
}

/// What a gVisor kernel means for a feature it lacks.
fn gvisor(what: &str) -> Found {
    Found::NotLinux(format!("{what}: gVisor does not implement it"))
}

/// A call that failed with `e` where the kernel has the feature.
pub fn call(call: &str, e: Errno, what: String) -> Found {
    if matches!(e, Errno::ENOSYS | Errno::EPERM) && filtered() {
        Found::Refused {
            call: call.into(),
            errno: e as i32,
        }
    } else if crate::machine::throwaway::gvisor() {
        gvisor(&what)
    } else {
        Found::Missing(what)
    }
}

/// A file of /proc the feature puts there.
pub fn file(path: &str) -> Found {
    if std::path::Path::new(path).exists() {
        Found::Present
    } else {
        missing_file(path, "")
    }
}

/// A file that is not there, and what that means (`more`, after a colon).
pub fn missing_file(path: &str, more: &str) -> Found {
    let what = format!("{path} is missing{more}");
    if crate::machine::throwaway::gvisor() {
        gvisor(&what)
    } else {
        Found::Missing(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_shows_in_the_status() {
        assert!(filter_mode("Name:\tx\nSeccomp:\t2\nSeccomp_filters:\t1\n"));
        assert!(!filter_mode("Seccomp:\t0\n"));
        assert!(!filter_mode("Seccomp:\t1\n"), "strict mode allows no call to ask about");
        assert!(!filter_mode(""));
    }
}
