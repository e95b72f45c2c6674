//! What a probe found, and the first Linux with a feature.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A kernel version: the first Linux with a feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Linux(pub u32, pub u32);

impl fmt::Display for Linux {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Linux {}.{}", self.0, self.1)
    }
}

/// What one probe found. As JSON: `{"state": "missing", "detail": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum Found {
    /// The feature works here.
    Present,
    /// The kernel lacks it: what the probe saw. The reason adds the first
    /// Linux that has it (`Probe::since`).
    Missing(String),
    /// The kernel may have it, but this machine's configuration, mounts or
    /// settings keep it from the suite: what the probe saw.
    Off(String),
    /// A filter in front of the kernel (seccomp) refused the call the probe
    /// makes, so the probe cannot tell whether the kernel has it.
    Refused { call: String, errno: i32 },
    /// The kernel is not Linux (gVisor) and lacks it: what the probe saw.
    /// No version of Linux says anything about it.
    NotLinux(String),
}

impl Found {
    pub fn is_present(&self) -> bool {
        *self == Found::Present
    }

    /// Why the feature cannot be used, with `since` for a kernel that lacks it.
    pub fn reason(&self, since: Option<Linux>) -> Option<String> {
        match (self, since) {
            (Found::Present, _) => None,
            (Found::Missing(why), Some(v)) => Some(format!("{why} (needs {v})")),
            (Found::Missing(why) | Found::Off(why) | Found::NotLinux(why), _) => Some(why.clone()),
            (Found::Refused { call, errno }, _) => Some(format!(
                "refused by a filter: seccomp answered {call} with {}, so whether the kernel has it is unknown",
                crate::load::flags::errno_name(*errno)
            )),
        }
    }

    /// `Present` when `r` is Ok, else `Off` with the error.
    pub fn off_unless(r: Result<(), String>) -> Found {
        r.map_or_else(Found::Off, |()| Found::Present)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_absence_has_its_reason() {
        let v = Some(Linux(6, 19));
        assert_eq!(Found::Present.reason(v), None);
        assert_eq!(
            Found::Missing("listns is ENOSYS".into()).reason(v).unwrap(),
            "listns is ENOSYS (needs Linux 6.19)"
        );
        assert_eq!(Found::Missing("gone".into()).reason(None).unwrap(), "gone");
        // A setting of the machine is no matter of kernel version.
        assert_eq!(Found::Off("set to 0".into()).reason(v).unwrap(), "set to 0");
        let refused = Found::Refused {
            call: "clone3".into(),
            errno: libc::ENOSYS,
        }
        .reason(Some(Linux(5, 3)))
        .unwrap();
        assert!(
            refused.contains("clone3") && refused.contains("ENOSYS") && refused.contains("refused by a filter"),
            "{refused}"
        );
        assert!(
            !refused.contains("5.3"),
            "a filter's refusal is no kernel version: {refused}"
        );
        let gvisor = Found::NotLinux("clone3 is ENOSYS: gVisor does not implement it".into());
        assert!(!gvisor.reason(Some(Linux(5, 3))).unwrap().contains("Linux"));
    }

    #[test]
    fn what_a_probe_found_crosses_the_pipe_as_it_was() {
        for f in [
            Found::Present,
            Found::Missing("a\ttab\nand a newline".into()),
            Found::Off("x".into()),
            Found::Refused {
                call: "clone3".into(),
                errno: libc::EPERM,
            },
        ] {
            let text = serde_json::to_string(&f).unwrap();
            assert_eq!(serde_json::from_str::<Found>(&text).unwrap(), f);
        }
    }
}
