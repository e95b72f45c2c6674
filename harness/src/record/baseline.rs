//! A run against a baseline (a previous run's records, or a matrix's
//! compat.json): which cases newly fail, which were fixed, and which changed
//! otherwise (ignored where they ran, or for another reason). Cases are
//! compared as the compatibility table shows them: a case with its control
//! folded in.

use super::{Kind, TrialRecord, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A case's outcome in one run: its verdict, or its control's where the
/// control failed (or never reported) and the case did not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// For an ignored cell: the requirement that blocked it (`TrialRecord::gate`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gate: String,
    /// The case's own trial's time.
    #[serde(default)]
    pub duration_s: f64,
}

/// The case's cell in a run; `None` where the run did not have the case.
pub fn cell_of(trials: &[TrialRecord], case: &str) -> Option<Cell> {
    let find = |n: &str| trials.iter().find(|t| t.name == n);
    let own = find(case)?;
    let cell = |t: &TrialRecord, prefix: &str| Cell {
        verdict: t.verdict,
        reason: format!("{prefix}{}", t.reason),
        gate: if t.gate.is_empty() {
            String::new()
        } else {
            format!("{prefix}{}", t.gate)
        },
        duration_s: own.duration_s,
    };
    Some(match find(&format!("control::{case}")) {
        Some(c) if !own.verdict.fails_the_run() && c.verdict.fails_the_run() => cell(c, "control: "),
        _ => cell(own, ""),
    })
}

/// Every case's cell in a run, by name.
pub fn cells(trials: &[TrialRecord]) -> BTreeMap<String, Cell> {
    trials
        .iter()
        .filter(|t| t.kind == Kind::Case)
        .filter_map(|t| cell_of(trials, &t.name).map(|c| (t.name.clone(), c)))
        .collect()
}

impl Cell {
    /// The ignore reason in a few words: the requirement that blocked (as
    /// the plan named it), else, for a record that names none (an older
    /// one, an ignore decided at run time), the reason's first clause.
    pub fn short_reason(&self) -> String {
        if self.gate.is_empty() {
            crate::plan::blocked::first_clause(&self.reason).to_string()
        } else {
            self.gate.clone()
        }
    }
}

/// How a case differs from the baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Fails (or errs) now; did not then.
    NewFailure,
    /// Failed (or erred) then; does not now.
    Fixed,
    /// Another verdict (ignored where it ran, or the reverse), or ignored for another reason.
    Changed,
    /// Not in the baseline.
    Added,
    /// In the baseline, not in this run.
    Removed,
}

impl ChangeKind {
    pub fn title(self) -> &'static str {
        match self {
            ChangeKind::NewFailure => "new failures",
            ChangeKind::Fixed => "fixed",
            ChangeKind::Changed => "changed",
            ChangeKind::Added => "new cases",
            ChangeKind::Removed => "cases gone",
        }
    }
}

/// One case that differs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The column (kernel) it is in.
    pub kernel: String,
    pub case: String,
    pub change: ChangeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was: Option<Cell>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<Cell>,
}

/// What differs between two runs' cells, by case name.
pub fn compare(kernel: &str, was: &BTreeMap<String, Cell>, now: &BTreeMap<String, Cell>) -> Vec<Change> {
    let mut names: Vec<&String> = was.keys().chain(now.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let (w, n) = (was.get(name), now.get(name));
            let change = kind_of(w, n)?;
            Some(Change {
                kernel: kernel.to_string(),
                case: name.clone(),
                change,
                was: w.cloned(),
                now: n.cloned(),
            })
        })
        .collect()
}

fn kind_of(was: Option<&Cell>, now: Option<&Cell>) -> Option<ChangeKind> {
    let (w, n) = match (was, now) {
        (None, None) => return None,
        (None, Some(_)) => return Some(ChangeKind::Added),
        (Some(_), None) => return Some(ChangeKind::Removed),
        (Some(w), Some(n)) => (w, n),
    };
    let (failed, fails) = (w.verdict.fails_the_run(), n.verdict.fails_the_run());
    Some(match (failed, fails) {
        (false, true) => ChangeKind::NewFailure,
        (true, false) => ChangeKind::Fixed,
        // Still failing: a changed failure message is no news of its own.
        (true, true) => return None,
        (false, false) if w.verdict != n.verdict => ChangeKind::Changed,
        (false, false) if w.verdict == Verdict::Ignored && w.short_reason() != n.short_reason() => ChangeKind::Changed,
        (false, false) => return None,
    })
}

/// A baseline: each column's cells by case, as read from a file.
#[derive(Clone, Debug, Default)]
pub struct Baseline {
    pub columns: BTreeMap<String, BTreeMap<String, Cell>>,
}

#[derive(Deserialize)]
struct CompatCell {
    outcome: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    gate: String,
    #[serde(default)]
    duration_s: f64,
}

#[derive(Deserialize)]
struct CompatRow {
    case: String,
    cells: BTreeMap<String, CompatCell>,
}

#[derive(Deserialize)]
struct CompatDoc {
    behaviours: Vec<CompatRow>,
}

/// The column of a records stream, which names no kernel of its own.
pub const ONE_RUN: &str = "";

impl Baseline {
    /// A matrix's compat.json, if `text` is one.
    pub fn of_compat_json(text: &str) -> Option<Baseline> {
        serde_json::from_str::<CompatDoc>(text).ok().map(Baseline::of_compat)
    }

    /// One run's trials (a records stream read back), as the only column.
    pub fn of_run(trials: &[TrialRecord]) -> Baseline {
        Baseline {
            columns: BTreeMap::from([(ONE_RUN.to_string(), cells(trials))]),
        }
    }

    fn of_compat(doc: CompatDoc) -> Baseline {
        let mut columns: BTreeMap<String, BTreeMap<String, Cell>> = BTreeMap::new();
        for row in doc.behaviours {
            for (label, c) in row.cells {
                let verdict = Verdict::ALL.into_iter().find(|v| v.name() == c.outcome);
                let col = columns.entry(label).or_default();
                // `absent`: the column did not have the case.
                if let Some(verdict) = verdict {
                    let cell = Cell {
                        verdict,
                        reason: c.reason,
                        gate: c.gate,
                        duration_s: c.duration_s,
                    };
                    col.insert(row.case.clone(), cell);
                }
            }
        }
        Baseline { columns }
    }

    /// The column to compare `label` with: its own, a host run's with a
    /// host run's (the host's kernel is in its label), or the only one.
    pub fn column(&self, label: &str) -> Option<&BTreeMap<String, Cell>> {
        if let Some(c) = self.columns.get(label) {
            return Some(c);
        }
        if label.starts_with("host ")
            && let Some((_, c)) = self.columns.iter().find(|(l, _)| l.starts_with("host "))
        {
            return Some(c);
        }
        (self.columns.len() == 1)
            .then(|| self.columns.values().next())
            .flatten()
    }
}

/// The changes as text: counts per kernel, then one line each.
pub fn describe(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "no case changed\n".into();
    }
    let mut by_kernel: BTreeMap<&str, Vec<&Change>> = BTreeMap::new();
    for c in changes {
        by_kernel.entry(&c.kernel).or_default().push(c);
    }
    let mut out = String::new();
    for (kernel, mut list) in by_kernel {
        list.sort_by(|a, b| (a.change, &a.case).cmp(&(b.change, &b.case)));
        let mut counts: BTreeMap<ChangeKind, usize> = BTreeMap::new();
        for c in &list {
            *counts.entry(c.change).or_default() += 1;
        }
        let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {}", k.title())).collect();
        let name = if kernel.is_empty() { "this run" } else { kernel };
        out.push_str(&format!("{name}: {}\n", counts.join(", ")));
        for c in list {
            out.push_str(&format!("  {}\n", line(c)));
        }
    }
    out
}

fn state(c: &Option<Cell>) -> String {
    match c {
        None => "absent".into(),
        Some(c) if c.verdict == Verdict::Ignored => format!("ignored ({})", c.short_reason()),
        Some(c) if c.verdict.fails_the_run() => {
            let first = c.reason.lines().next().unwrap_or("");
            format!("{}: {first}", c.verdict.name())
        }
        Some(c) => c.verdict.name().to_string(),
    }
}

/// `NEW FAILURE api::x: was pass, now fail: ...`.
pub fn line(c: &Change) -> String {
    let tag = match c.change {
        ChangeKind::NewFailure => "NEW FAILURE",
        ChangeKind::Fixed => "FIXED",
        ChangeKind::Changed => "CHANGED",
        ChangeKind::Added => "NEW CASE",
        ChangeKind::Removed => "CASE GONE",
    };
    format!("{tag} {}: was {}, now {}", c.case, state(&c.was), state(&c.now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(v: Verdict, why: &str) -> Cell {
        Cell {
            verdict: v,
            reason: why.into(),
            gate: String::new(),
            duration_s: 0.1,
        }
    }

    #[test]
    fn each_kind_of_change_is_told_apart() {
        let was = BTreeMap::from([
            ("a".to_string(), cell(Verdict::Pass, "")),
            ("b".to_string(), cell(Verdict::Fail, "x")),
            (
                "c".to_string(),
                Cell {
                    gate: "needs `listns` (Linux 6.19)".into(),
                    ..cell(Verdict::Ignored, "needs `listns`: ENOSYS (needs Linux 6.19)")
                },
            ),
            ("d".to_string(), cell(Verdict::Ignored, "needs `veth`: no module")),
            ("e".to_string(), cell(Verdict::Pass, "")),
            ("f".to_string(), cell(Verdict::Fail, "one message")),
            ("g".to_string(), cell(Verdict::Pass, "")),
        ]);
        let now = BTreeMap::from([
            ("a".to_string(), cell(Verdict::Fail, "line one\nline two")),
            ("b".to_string(), cell(Verdict::Pass, "")),
            ("c".to_string(), cell(Verdict::Pass, "")),
            ("d".to_string(), cell(Verdict::Ignored, "needs `mqueue`: not mounted")),
            ("e".to_string(), cell(Verdict::Pass, "")),
            ("f".to_string(), cell(Verdict::Fail, "another message")),
            ("h".to_string(), cell(Verdict::Xpass, "passed, but marked")),
        ]);
        let got: Vec<(String, ChangeKind)> = compare("6.1", &was, &now)
            .into_iter()
            .map(|c| (c.case, c.change))
            .collect();
        let want = [
            ("a", ChangeKind::NewFailure),
            ("b", ChangeKind::Fixed),
            ("c", ChangeKind::Changed),
            ("d", ChangeKind::Changed),
            ("g", ChangeKind::Removed),
            ("h", ChangeKind::Added),
        ]
        .map(|(n, k)| (n.to_string(), k));
        assert_eq!(got, want);
        let text = describe(&compare("6.1", &was, &now));
        assert!(
            text.starts_with("6.1: 1 new failures, 1 fixed, 2 changed, 1 new cases, 1 cases gone\n"),
            "{text}"
        );
        assert!(
            text.contains("  NEW FAILURE a: was pass, now fail: line one\n"),
            "{text}"
        );
        assert!(
            text.contains("  CHANGED c: was ignored (needs `listns` (Linux 6.19)), now pass\n"),
            "{text}"
        );
    }

    /// The plan's gate is the summary; a record without one (an older
    /// one) gives its first clause, never a version from further on.
    #[test]
    fn the_short_reason_is_the_gate() {
        let mut c = cell(
            Verdict::Ignored,
            "needs `veth`: no module (the behaviour is from Linux 6.3)",
        );
        assert_eq!(c.short_reason(), "needs `veth`");
        c.gate = "needs `veth` (Linux 9.9)".into();
        assert_eq!(c.short_reason(), "needs `veth` (Linux 9.9)");
        let mut t = TrialRecord::new("uts::a", Kind::Case, Verdict::Ignored, "needs root: says so");
        t.gate = "needs root".into();
        let json = serde_json::to_string(&t).unwrap();
        let back: TrialRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(cell_of(&[back], "uts::a").unwrap().short_reason(), "needs root");
    }

    #[test]
    fn a_compat_json_is_a_baseline_by_column() {
        let doc = r#"{"kernels": [], "behaviours": [
            {"ids": "U1", "case": "uts::a", "cells": {
                "6.1": {"outcome": "pass", "reason": ""},
                "7.2": {"outcome": "ignored", "reason": "needs root"},
                "host 6.18.44": {"outcome": "absent", "reason": ""}}}]}"#;
        let b = Baseline::of_compat_json(doc).unwrap();
        assert_eq!(b.column("6.1").unwrap()["uts::a"].verdict, Verdict::Pass);
        assert_eq!(b.column("7.2").unwrap()["uts::a"].verdict, Verdict::Ignored);
        // Another host's column is this host's baseline; the case was absent there.
        assert!(b.column("host 6.19.1").unwrap().is_empty());
        assert!(b.column("5.10").is_none());
        assert!(Baseline::of_compat_json("not json").is_none());
    }

    #[test]
    fn a_failing_control_makes_the_cell() {
        let t = |n: &str, k, v| TrialRecord::new(n, k, v, "why");
        let trials = [
            t("uts::a", Kind::Case, Verdict::Pass),
            t("control::uts::a", Kind::Control, Verdict::Fail),
        ];
        assert_eq!(cell_of(&trials, "uts::a").unwrap().reason, "control: why");
        assert_eq!(cells(&trials).len(), 1);
    }
}
