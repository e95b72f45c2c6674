//! Why a trial cannot run here: the whole reason, and the requirement that
//! blocked it in a few words. Tables show the latter; it is kept apart
//! from the reason so that a summary never borrows a Linux version from
//! another requirement of the same case.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocked {
    /// The requirement that blocked the trial: `needs \`veth\``, `needs
    /// \`listns\` (Linux 6.19)` (a version only where the kernel lacks the
    /// feature and the feature has a first Linux), `needs root`.
    pub gate: String,
    /// The whole reason: the gate, then what was found.
    pub reason: String,
}

impl Blocked {
    /// `gate: detail`.
    pub fn new(gate: impl Into<String>, detail: &str) -> Blocked {
        let gate = gate.into();
        Blocked {
            reason: format!("{gate}: {detail}"),
            gate,
        }
    }

    /// A reason made elsewhere (a runner's, the unprivileged checks'): its
    /// gate is its first clause, which names no version.
    pub fn whole(reason: impl Into<String>) -> Blocked {
        let reason = reason.into();
        Blocked {
            gate: first_clause(&reason).to_string(),
            reason,
        }
    }
}

/// A reason's text up to its first `: `.
pub fn first_clause(reason: &str) -> &str {
    reason.split(": ").next().unwrap_or(reason).trim()
}

impl From<String> for Blocked {
    fn from(reason: String) -> Blocked {
        Blocked::whole(reason)
    }
}
