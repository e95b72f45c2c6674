//! Renderings of the records: KTAP, JUnit XML, libtest's formats (for a
//! suite that ran elsewhere, in a VM) and the plan of a `--list`.

pub mod junit;
pub mod ktap;
pub mod libtest;

use crate::record::{RunRecord, Status, Verdict};

/// What is wrong with a run beyond its trials: it did not complete (an
/// error: its missing trials prove nothing) or it changed the machine (a
/// failure). Every rendering shows it as a result of its own.
pub fn run_problem(run: &RunRecord) -> Option<(Verdict, String)> {
    if let Some(why) = run.status.why() {
        let what = match run.status {
            Status::TimedOut { .. } => "the run timed out",
            _ => "the run did not complete",
        };
        return Some((Verdict::Error, format!("{what}: {why}")));
    }
    (!run.machine.is_empty()).then(|| {
        (
            Verdict::Fail,
            format!("the run changed the machine: {}", run.machine.join("; ")),
        )
    })
}

/// Whitespace, newlines included, as single spaces.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `nsconform 0.1.0 (commit …) on Linux 6.1.158 (6.1.0-50-amd64; package
/// linux-image-6.1.0-50-amd64 6.1.158-1), 2026-01-31T12:00:00Z, root, runner native`.
pub fn headline(run: &RunRecord) -> String {
    let a = &run.about;
    let mut s = format!(
        "nsconform {} on {}, {}, {}, runner {}",
        a.nsconform.describe(),
        a.kernel.describe(),
        a.date,
        if a.privileged { "root" } else { "unprivileged" },
        a.runner
    );
    if let (Some(q), Some(acc)) = (&a.qemu, &a.accel) {
        s.push_str(&format!(", {q} ({acc})"));
    }
    s
}
