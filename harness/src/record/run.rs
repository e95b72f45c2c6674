//! A run: the build that made it, where and when it ran, how it ended,
//! and its trials.

use super::TrialRecord;
use serde::{Deserialize, Serialize};

/// nsconform's version and the git commit it was built from, when known.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Build {
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

impl Build {
    /// This binary's.
    pub fn this() -> Build {
        Build {
            version: env!("CARGO_PKG_VERSION").to_string(),
            commit: option_env!("NSCONFORM_COMMIT").map(str::to_string),
        }
    }

    /// `0.1.0 (commit 0123abcd)`, or the version alone.
    pub fn describe(&self) -> String {
        match &self.commit {
            Some(c) => format!("{} (commit {c})", self.version),
            None => self.version.clone(),
        }
    }
}

/// The kernel a run ran on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Kernel {
    /// `uname -r`.
    pub release: String,
    /// `/proc/version`.
    pub version: String,
    /// The Debian package it was unpacked from (a kernel `nsconform vm` fetched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

impl Kernel {
    /// The package version a Debian kernel names in its version line
    /// (`... Debian 6.1.158-1 (2025-11-02)` gives `6.1.158-1`).
    pub fn debian_version(&self) -> Option<&str> {
        let at = self.version.find(" Debian ")? + " Debian ".len();
        self.version[at..].split_whitespace().next()
    }

    /// The upstream version: a Debian package version without its revision
    /// (`6.1.158`, `7.2-rc3` for `7.2~rc3-1~exp1`), else the release's
    /// leading numbers (`6.18.44` of `6.18.44-fc-v1300`).
    pub fn upstream(&self) -> String {
        if let Some(v) = self.debian_version() {
            return v.split('-').next().unwrap_or(v).replace('~', "-");
        }
        self.release
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()
            .unwrap_or_default()
            .trim_end_matches('.')
            .to_string()
    }

    /// `Linux 6.1.158 (6.1.0-50-amd64; package linux-image-6.1.0-50-amd64 6.1.158-1)`.
    pub fn describe(&self) -> String {
        let mut inner = vec![self.release.clone()];
        match (&self.package, self.debian_version()) {
            (Some(p), Some(v)) => inner.push(format!("package {p} {v}")),
            (Some(p), None) => inner.push(format!("package {p}")),
            (None, Some(v)) => inner.push(format!("Debian {v}")),
            (None, None) => {}
        }
        inner.retain(|s| !s.is_empty());
        format!("Linux {} ({})", self.upstream(), inner.join("; "))
    }

    /// The kernel this process runs on.
    pub fn here() -> Kernel {
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        let version = std::fs::read_to_string("/proc/version").unwrap_or_default();
        Kernel {
            release,
            version: version.trim().to_string(),
            package: None,
        }
    }
}

/// What a run ran on, with which build, and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct About {
    pub nsconform: Build,
    /// When the run started: UTC, RFC 3339, to the second.
    pub date: String,
    pub kernel: Kernel,
    /// Root; or not, with every trial run as root of a user namespace of its own.
    pub privileged: bool,
    /// The runner that creates each case's child (`native`: the harness's own clone).
    pub runner: String,
    /// For a run in a VM: qemu's version line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qemu: Option<String>,
    /// For a run in a VM: `kvm` or `tcg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accel: Option<String>,
    /// For a run in a VM: how the guest was set up and the kernel configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<Box<Setup>>,
}

/// A VM guest's configuration: what the host asked for and how the kernel was built.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    /// The kernel command line's words nsconform itself gives every guest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel_args: Vec<String>,
    /// The guest's CPU, as qemu's `-cpu` gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Words added to the kernel's command line (`--append`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub append: Vec<String>,
    /// `key=value` sysctls the guest set before the suite (`--sysctl`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sysctls: Vec<String>,
    /// Where the kernel's configuration came from (`/proc/config.gz`, or the package's file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_source: Option<String>,
    /// The configuration's hash (FNV-1a, hex): equal hashes, equal configurations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// Its namespace-related `CONFIG_` lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<String>,
}

/// Something the kernel reported in its log during a VM run (a warning,
/// a BUG, an oops, a hung task, an RCU stall): it fails the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Complaint {
    /// Which kind (`warning`, `bug`, `oops`, `hung_task`, `rcu_stall`, ...).
    pub kind: String,
    /// The log's line.
    pub line: String,
    /// The trials running when it came; none: it came outside every trial.
    #[serde(default)]
    pub trials: Vec<String>,
}

impl RunRecord {
    /// The kernel's complaints into the run: each fails the trials it names
    /// (their verdict, whatever it was, becomes a failure that quotes the
    /// kernel; an error stays an error), and all are kept in `kernel_log`.
    pub fn complained(&mut self, found: Vec<Complaint>) {
        for c in &found {
            for t in self.trials.iter_mut().filter(|t| c.trials.contains(&t.name)) {
                if t.verdict != super::Verdict::Error {
                    t.verdict = super::Verdict::Fail;
                }
                let why = format!("the kernel complained during this trial: {}", c.line);
                t.reason = if t.reason.is_empty() {
                    why
                } else {
                    format!("{why}; {}", t.reason)
                };
            }
        }
        self.kernel_log.extend(found);
    }
}

impl About {
    /// A run starting now on this machine.
    pub fn here(privileged: bool, runner: &str) -> About {
        About {
            nsconform: Build::this(),
            date: utc_date(std::time::SystemTime::now()),
            kernel: Kernel::here(),
            privileged,
            runner: runner.to_string(),
            qemu: None,
            accel: None,
            setup: None,
        }
    }
}

/// How a run ended. Anything but `Complete` is an error in every rendering:
/// its missing trials are not passes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    Complete,
    TimedOut { why: String },
    Crashed { why: String },
}

impl Status {
    pub fn why(&self) -> Option<&str> {
        match self {
            Status::Complete => None,
            Status::TimedOut { why } | Status::Crashed { why } => Some(why),
        }
    }
}

/// A whole run, as a document: what `--format json` of a VM run, the
/// matrix's columns and a later baseline read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub about: About,
    pub status: Status,
    /// The suite's exit status (in a VM, as the guest saw it), when it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    /// What the run changed on the machine; empty when it is as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub machine: Vec<String>,
    /// Trials the arguments left out.
    #[serde(default)]
    pub filtered_out: usize,
    pub duration_s: f64,
    pub trials: Vec<TrialRecord>,
    /// What the kernel complained of in its log during the run (VM runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel_log: Vec<Complaint>,
}

impl RunRecord {
    /// Whether every trial ran, none failed, the kernel did not complain
    /// and the machine is as before.
    pub fn passed(&self) -> bool {
        self.status == Status::Complete
            && self.machine.is_empty()
            && self.kernel_log.is_empty()
            && !self.trials.iter().any(|t| t.verdict.fails_the_run())
    }
}

/// `2026-01-31T12:34:56Z` for a point in time (UTC, no leap seconds, as Unix time has none).
pub fn utc_date(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Year, month and day of the `days`th day after 1970-01-01, counting in
/// 400-year eras of the Gregorian calendar with years starting in March, so
/// that the leap day falls last.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn dates_are_utc_calendar_dates() {
        let at = |s: u64| utc_date(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(951_868_799), "2000-02-29T23:59:59Z");
        assert_eq!(at(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(at(4_102_444_800), "2100-01-01T00:00:00Z");
    }

    #[test]
    fn a_kernel_names_its_upstream_version_and_package() {
        let debian = Kernel {
            release: "6.1.0-50-amd64".into(),
            version: "Linux version 6.1.0-50-amd64 (debian-kernel@lists.debian.org) (gcc-12) #1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1 (2025-11-02)".into(),
            package: Some("linux-image-6.1.0-50-amd64".into()),
        };
        assert_eq!(debian.debian_version(), Some("6.1.158-1"));
        assert_eq!(debian.upstream(), "6.1.158");
        assert_eq!(
            debian.describe(),
            "Linux 6.1.158 (6.1.0-50-amd64; package linux-image-6.1.0-50-amd64 6.1.158-1)"
        );
        let exp = Kernel {
            release: "7.2.0-rc3-amd64".into(),
            version: "Linux version 7.2.0-rc3-amd64 #1 SMP Debian 7.2~rc3-1~exp1 (2026-11-01)".into(),
            package: None,
        };
        assert_eq!(exp.upstream(), "7.2-rc3");
        let other = Kernel {
            release: "6.18.44-fc-v1300".into(),
            version: "Linux version 6.18.44-fc-v1300 (builder) #1 SMP".into(),
            package: None,
        };
        assert_eq!(other.upstream(), "6.18.44");
        assert_eq!(other.describe(), "Linux 6.18.44 (6.18.44-fc-v1300)");
    }

    #[test]
    fn a_status_names_its_state() {
        let s = serde_json::to_string(&Status::TimedOut {
            why: "after 900 s".into(),
        })
        .unwrap();
        assert_eq!(s, r#"{"state":"timed_out","why":"after 900 s"}"#);
        assert_eq!(
            serde_json::to_string(&Status::Complete).unwrap(),
            r#"{"state":"complete"}"#
        );
    }
}
