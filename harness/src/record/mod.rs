//! Results as data: one record per trial, made once where the trial runs,
//! and the run around them. libtest's lines, KTAP, JUnit, the VM runs and
//! the matrix are renderings of these records (`report::render`); the VM
//! guest sends them to the host as JSON lines ([`stream`]).

pub mod baseline;
pub mod run;
pub mod stream;

use crate::outcome::{CommandLog, Row};
use serde::{Deserialize, Serialize};

pub use run::{About, Build, Complaint, Kernel, RunRecord, Setup, Status};

/// What became of a trial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// Not run here, with the reason (a missing feature, root, a tool).
    Ignored,
    /// No verdict: the trial never reported (its run timed out or crashed,
    /// or the harness failed), so neither pass nor fail can be claimed.
    Error,
    /// Failed where a case marks it expected to fail (a known kernel bug).
    Xfail,
    /// Passed where a case marks it expected to fail: the mark is stale.
    Xpass,
}

impl Verdict {
    /// Whether the run fails for it.
    pub fn fails_the_run(self) -> bool {
        matches!(self, Verdict::Fail | Verdict::Error | Verdict::Xpass)
    }

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Ignored => "ignored",
            Verdict::Error => "error",
            Verdict::Xfail => "xfail",
            Verdict::Xpass => "xpass",
        }
    }

    pub const ALL: [Verdict; 6] = [
        Verdict::Pass,
        Verdict::Fail,
        Verdict::Ignored,
        Verdict::Error,
        Verdict::Xfail,
        Verdict::Xpass,
    ];
}

/// What a trial is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A case as written.
    Case,
    /// A case without the namespaces it is about: its isolation assertions must fail.
    Control,
    /// A case file that could not be loaded.
    Load,
    /// The harness could not set the run up (no runner).
    Harness,
}

/// One trial, as it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    pub name: String,
    pub kind: Kind,
    /// Run as root of a user namespace of its own (an unprivileged run).
    #[serde(default)]
    pub userns: bool,
    pub verdict: Verdict,
    /// Why it was ignored, or what went wrong: the message libtest prints.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// For a trial the plan left out: the requirement that blocked it, in a
    /// few words (`needs \`listns\` (Linux 6.19)`), as tables summarise it.
    /// Empty for an older record, or an ignore decided elsewhere.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gate: String,
    /// From the launch of its sandbox to its verdict.
    #[serde(default)]
    pub duration_s: f64,
    /// The assertions the failure is about, expected against observed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<Row>,
    /// What commands, and the runtime that started the child, wrote on stderr.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stderr: Vec<CommandLog>,
}

impl TrialRecord {
    /// A record with no rows and no stderr.
    pub fn new(name: impl Into<String>, kind: Kind, verdict: Verdict, reason: impl Into<String>) -> TrialRecord {
        TrialRecord {
            name: name.into(),
            kind,
            userns: false,
            verdict,
            reason: reason.into(),
            gate: String::new(),
            duration_s: 0.0,
            rows: Vec::new(),
            stderr: Vec::new(),
        }
    }

    /// The kind as libtest shows it in brackets (`case`, `control:userns`).
    pub fn libtest_kind(&self) -> String {
        libtest_kind(self.kind, self.userns)
    }

    /// The case area: `uts` for `uts::x`, `control::uts::x` and `load::uts::x`.
    pub fn area(&self) -> &str {
        area(&self.name)
    }
}

/// The kind in libtest's brackets; `cargo test -- userns` selects the trials run in a user namespace.
pub fn libtest_kind(kind: Kind, userns: bool) -> String {
    let base = match kind {
        Kind::Case => "case",
        Kind::Control => "control",
        Kind::Load => "load",
        Kind::Harness => return String::new(),
    };
    if userns {
        format!("{base}:userns")
    } else {
        base.to_string()
    }
}

/// The area a trial name belongs to.
pub fn area(name: &str) -> &str {
    let rest = name
        .strip_prefix("control::")
        .or_else(|| name.strip_prefix("load::"))
        .unwrap_or(name);
    rest.split("::").next().unwrap_or(rest)
}

/// A trial the run means to run, before it runs: what `--list` shows and
/// what a run that ends early still owes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Planned {
    pub name: String,
    pub kind: Kind,
    #[serde(default)]
    pub userns: bool,
    /// Known before it runs not to run here, with the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
}

/// Counts by verdict, in `Verdict::ALL` order.
pub fn tally(records: &[TrialRecord]) -> [usize; 6] {
    let mut n = [0; 6];
    for r in records {
        if let Some(i) = Verdict::ALL.iter().position(|v| *v == r.verdict) {
            n[i] += 1;
        }
    }
    n
}

/// How many records have this verdict.
pub fn count(records: &[TrialRecord], v: Verdict) -> usize {
    records.iter().filter(|r| r.verdict == v).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_it_was_written() {
        let mut r = TrialRecord::new("control::uts::a", Kind::Control, Verdict::Fail, "it held");
        r.userns = true;
        r.duration_s = 0.25;
        r.rows.push(Row {
            proc_label: "child".into(),
            at: "end".into(),
            key: "hostname".into(),
            expected: "\"a\"".into(),
            observed: "\"b\"".into(),
            held: false,
            isolation: true,
            unobserved: false,
        });
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.contains("\"verdict\":\"fail\"") && json.contains("\"kind\":\"control\""),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<TrialRecord>(&json).unwrap(), r);
        assert_eq!(r.libtest_kind(), "control:userns");
        assert_eq!(r.area(), "uts");
        assert_eq!(area("load::pid::file"), "pid");
        assert_eq!(area("runner::select"), "runner");
    }
}
