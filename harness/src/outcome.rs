//! What a trial produces: the observations its processes made, the steps
//! that went otherwise, the commands they ran, and the verdict rows. Every
//! layer above the kernel's reads or writes these; none of them needs the
//! wire that carries them or the code that judges them.

use crate::value::Value;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One observation: the value, or why it could not be made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Obs {
    Ok(Value),
    Err(String),
}

/// Observations taken at one point of one process.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// The process: "parent", "child", "peer:a", "child/inner".
    pub proc_label: String,
    /// "end", or "step 3" for an inline expect step.
    pub at: String,
    pub values: BTreeMap<String, Obs>,
}

/// A step whose outcome was not what the case requires (or, in a control,
/// any failing step).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepFailure {
    pub proc_label: String,
    pub phase: String,
    pub index: usize,
    pub step: String,
    pub expected: String,
    pub got: String,
}

/// The `command` of the log a runtime's stderr is kept in: the runtime
/// that started the process, not a command a step ran.
pub const RUNTIME_COMMAND: &str = "(the runtime that started it)";

/// A command a step ran, with what it printed on stderr.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandLog {
    pub proc_label: String,
    pub command: String,
    pub status: String,
    pub stderr: String,
}

/// Everything the sandbox learned, sent back to the harness.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    pub snapshots: Vec<Snapshot>,
    pub creators: BTreeMap<String, BTreeMap<String, String>>,
    pub failures: Vec<StepFailure>,
    pub commands: Vec<CommandLog>,
    /// Exit statuses of the case's processes, as their creators saw them.
    pub exits: BTreeMap<String, String>,
    /// Each process's last reported step, to say where one that failed was.
    #[serde(default)]
    pub progress: BTreeMap<String, String>,
    /// Problems of the harness itself (could not create the child, ...).
    pub errors: Vec<String>,
    /// The parent's placeholder values (pids of the child and peers as it sees them).
    pub vars: BTreeMap<String, String>,
    /// Microseconds the steps of the parent, peers and child took, one after
    /// another: the case's own work, which the benchmark does not count as
    /// the harness's overhead.
    #[serde(default)]
    pub work_us: u64,
    /// The namespace flags of each process the case had created (child,
    /// peers, spawns): what the kernel's own cost of the case is made of.
    #[serde(default)]
    pub created: Vec<u64>,
    /// Every assertion, expected against observed: evaluated in the sandbox,
    /// which has the case parsed (snapshots and creators are then dropped).
    #[serde(default)]
    pub verdict: Vec<Row>,
    /// In a control, the step failures its case declares with `in_control`
    /// (moved out of `failures`, which then holds only undeclared ones).
    #[serde(default)]
    pub declared: Vec<Declared>,
    /// When the sandbox reached each stage of its life (CLOCK_MONOTONIC,
    /// microseconds): the benchmark's account of where a trial's time goes.
    #[serde(default)]
    pub marks: Marks,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Marks {
    /// The sandbox's first instruction.
    pub started: u64,
    /// Set up (mounts, /dev, names) and ready to run the case.
    pub ready: u64,
    /// The case's processes done and observed.
    pub ran: u64,
    /// The verdict evaluated; the report is written next.
    pub judged: u64,
}

/// One assertion's outcome, for the side-by-side report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub proc_label: String,
    pub at: String,
    pub key: String,
    pub expected: String,
    pub observed: String,
    pub held: bool,
    pub isolation: bool,
    /// The value could not be observed (the process never got there, or a read failed).
    pub unobserved: bool,
}

/// A step whose outcome differed in the control as its `in_control` marker
/// declares: the failure as the control saw it, and the marker's reason.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Declared {
    pub failure: StepFailure,
    pub why: String,
}

/// How a wait status reads in a report.
pub fn describe_status(s: nix::sys::wait::WaitStatus) -> String {
    use nix::sys::wait::WaitStatus::*;
    match s {
        Exited(_, c) => format!("exited {c}"),
        Signaled(_, sig, core) => format!("killed by {sig}{}", if core { " (core dumped)" } else { "" }),
        other => format!("{other:?}"),
    }
}
