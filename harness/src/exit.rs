//! Exit statuses, named in one place. docs/cli.md's table is made from
//! [`CODES`] and [`BY_COMMAND`], so the reference and the code cannot drift.

use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok,
    Findings,
    Usage,
    MachineChanged,
    TrialsFailed,
    TimedOut,
}

/// Every status: the code, its name, and what it means.
pub const CODES: &[(Exit, &str)] = &[
    (
        Exit::Ok,
        "everything ran as asked and nothing failed (ignored trials do not fail a run)",
    ),
    (
        Exit::Findings,
        "a command found what it looks for: a LEAK (`audit`), a mutant that survived (`mutate`), a control that shows nothing (`controls`), fewer behaviours covered than `--min` (`coverage`), a kernel whose run did not pass (`matrix`)",
    ),
    (
        Exit::Usage,
        "could not run as asked: bad arguments (with the reason and, for a misspelt command, a suggestion), a missing tool or file, a guest that did not reach the suite",
    ),
    (
        Exit::MachineChanged,
        "the run changed the machine it ran on: the VM guest's check of mounts, IPC, links, files, processes and sysctls after the suite",
    ),
    (
        Exit::TrialsFailed,
        "the suite ran and a trial failed, or a global setting changed that no trial declared (libtest's status, which `cargo test` expects)",
    ),
    (
        Exit::TimedOut,
        "the run did not end within its `--timeout` and was killed (`vm`, as timeout(1))",
    ),
];

/// What each command may return, for the reference.
pub const BY_COMMAND: &[(&str, &[Exit])] = &[
    ("(the suite)", &[Exit::Ok, Exit::Usage, Exit::TrialsFailed]),
    ("features", &[Exit::Ok, Exit::Usage]),
    ("coverage", &[Exit::Ok, Exit::Findings, Exit::Usage]),
    ("controls", &[Exit::Ok, Exit::Findings, Exit::Usage]),
    ("mutate", &[Exit::Ok, Exit::Findings, Exit::Usage]),
    ("bench", &[Exit::Ok, Exit::Usage]),
    // The suite's status in the guest, or that of a command run there (`vm 6.1 coverage --min 300`).
    (
        "vm",
        &[
            Exit::Ok,
            Exit::Findings,
            Exit::Usage,
            Exit::MachineChanged,
            Exit::TrialsFailed,
            Exit::TimedOut,
        ],
    ),
    ("matrix", &[Exit::Ok, Exit::Findings, Exit::Usage]),
    ("audit", &[Exit::Ok, Exit::Findings, Exit::Usage]),
];

impl Exit {
    pub const fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Findings => 1,
            Exit::Usage => 2,
            Exit::MachineChanged => 3,
            Exit::TrialsFailed => 101,
            Exit::TimedOut => 124,
        }
    }

    /// The name the reference gives it.
    pub const fn name(self) -> &'static str {
        match self {
            Exit::Ok => "ok",
            Exit::Findings => "findings",
            Exit::Usage => "usage",
            Exit::MachineChanged => "machine changed",
            Exit::TrialsFailed => "trials failed",
            Exit::TimedOut => "timed out",
        }
    }

    /// 1 when `found`, else 0: the status of a command that looks for something.
    pub fn found(found: bool) -> Exit {
        if found { Exit::Findings } else { Exit::Ok }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// An interrupted command (`mutate` passes SIGINT and SIGTERM on): 128 + the signal, as a shell shows it.
pub fn interrupted(signal: i32) -> ExitCode {
    ExitCode::from(128u8.saturating_add(signal.clamp(0, 127) as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_is_in_the_table_once_with_its_own_code() {
        let codes: Vec<u8> = CODES.iter().map(|(e, _)| e.code()).collect();
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), codes.len());
        assert_eq!(codes, [0, 1, 2, 3, 101, 124]);
        for (_, returns) in BY_COMMAND {
            assert!(returns.iter().all(|e| CODES.iter().any(|(c, _)| c == e)));
        }
    }
}
