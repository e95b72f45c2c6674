//! libtest's formats (pretty, terse, JSON events) made from records as they
//! arrive: how the VM host shows a suite that runs in the guest, laid out as
//! libtest-mimic lays out a run here. Also the `--list` of each format.

use super::one_line;
use crate::record::{Planned, RunRecord, TrialRecord, Verdict, libtest_kind};
use crate::report::args::Format;
use serde_json::json;
use std::collections::BTreeSet;
use std::fmt::Write;

/// libtest's `[kind] ` prefix of a trial.
fn bracket(kind: &str) -> String {
    if kind.is_empty() {
        String::new()
    } else {
        format!("[{kind}] ")
    }
}

/// The counts libtest's summary gives: passed, failed, ignored.
fn libtest_counts(trials: &[TrialRecord]) -> (usize, usize, usize) {
    let n = |f: fn(Verdict) -> bool| trials.iter().filter(|t| f(t.verdict)).count();
    (
        n(|v| matches!(v, Verdict::Pass | Verdict::Xfail)),
        n(Verdict::fails_the_run),
        n(|v| v == Verdict::Ignored),
    )
}

/// A run's lines, made as its records arrive.
pub struct Live {
    format: Format,
    name_width: usize,
    kind_width: usize,
    shown: BTreeSet<String>,
    failures: Vec<(String, String)>,
    /// Characters on the current terse line.
    terse_column: usize,
}

impl Live {
    pub fn new(format: Format) -> Live {
        Live {
            format,
            name_width: 0,
            kind_width: 0,
            shown: BTreeSet::new(),
            failures: Vec::new(),
            terse_column: 0,
        }
    }

    /// The run's first lines, for the trials it will run.
    pub fn start(&mut self, plan: &[Planned]) -> String {
        self.name_width = plan.iter().map(|p| p.name.chars().count()).max().unwrap_or(0);
        self.kind_width = plan
            .iter()
            .map(|p| bracket(&libtest_kind(p.kind, p.userns)).chars().count())
            .max()
            .unwrap_or(0);
        let n = plan.len();
        match self.format {
            Format::Json => format!("{}\n", json!({"type": "suite", "event": "started", "test_count": n})),
            _ => format!("\nrunning {n} test{}\n", if n == 1 { "" } else { "s" }),
        }
    }

    /// A trial's line (or character).
    pub fn trial(&mut self, r: &TrialRecord) -> String {
        if !self.shown.insert(r.name.clone()) {
            return String::new();
        }
        if r.verdict.fails_the_run() {
            self.failures.push((r.name.clone(), r.reason.clone()));
        }
        match self.format {
            Format::Json => json_trial(r),
            Format::Terse => {
                let c = match r.verdict {
                    Verdict::Pass | Verdict::Xfail => '.',
                    Verdict::Ignored => 'i',
                    _ => 'F',
                };
                self.terse_column += 1;
                c.to_string()
            }
            _ => {
                let outcome = match r.verdict {
                    Verdict::Pass | Verdict::Xfail => "ok".to_string(),
                    Verdict::Ignored => format!("ignored ({})", r.reason),
                    _ => "FAILED".to_string(),
                };
                format!(
                    "test {:<kw$}{:<nw$} ... {outcome}\n",
                    bracket(&r.libtest_kind()),
                    r.name,
                    kw = self.kind_width,
                    nw = self.name_width
                )
            }
        }
    }

    /// The lines after the last trial: trials the run never reported, the
    /// failures in full, the summary.
    pub fn end(&mut self, run: &RunRecord) -> String {
        let mut out = String::new();
        for t in &run.trials {
            out.push_str(&self.trial(t));
        }
        let (passed, mut failed, ignored) = libtest_counts(&run.trials);
        if let Some((_, why)) = super::run_problem(run) {
            self.failures.push(("(the run)".into(), why));
            failed += 1;
        }
        let ok = failed == 0;
        if self.format == Format::Json {
            let event = if ok { "ok" } else { "failed" };
            let summary = json!({"type": "suite", "event": event, "passed": passed, "failed": failed,
                "ignored": ignored, "measured": 0, "filtered_out": run.filtered_out, "exec_time": run.duration_s});
            let _ = writeln!(out, "{summary}");
            return out;
        }
        if self.terse_column > 0 {
            out.push('\n');
        }
        if !self.failures.is_empty() {
            out.push_str("\nfailures:\n\n");
            for (name, msg) in &self.failures {
                let _ = writeln!(out, "---- {name} ----\n{msg}\n");
            }
            out.push_str("\nfailures:\n");
            for (name, _) in &self.failures {
                let _ = writeln!(out, "    {name}");
            }
        }
        let _ = writeln!(
            out,
            "\ntest result: {}. {passed} passed; {failed} failed; {ignored} ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
            if ok { "ok" } else { "FAILED" },
            run.filtered_out,
            run.duration_s
        );
        out
    }
}

fn json_trial(r: &TrialRecord) -> String {
    let event = match r.verdict {
        Verdict::Pass | Verdict::Xfail => "ok",
        Verdict::Ignored => "ignored",
        _ => "failed",
    };
    let started = json!({"type": "test", "event": "started", "name": r.name});
    let mut ended = json!({"type": "test", "name": r.name, "event": event});
    if !r.reason.is_empty() {
        let key = if r.verdict == Verdict::Ignored {
            "reason"
        } else {
            "stdout"
        };
        ended[key] = json!(r.reason);
    }
    format!("{started}\n{ended}\n")
}

/// `--list`: libtest's `[kind] name: test` lines, or in JSON one object a
/// trial (its name, kind, and why it will be ignored, if it will).
pub fn list(format: Format, plan: &[Planned]) -> String {
    let mut out = String::new();
    for p in plan {
        let kind = libtest_kind(p.kind, p.userns);
        if format == Format::Json {
            let mut o = json!({"type": "test", "event": "discovered", "name": p.name, "kind": kind});
            if let Some(why) = &p.ignored {
                o["ignored"] = json!(one_line(why));
            }
            let _ = writeln!(out, "{o}");
        } else {
            let _ = writeln!(out, "{}{}: test", bracket(&kind), p.name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{About, Kind, Status};

    fn plan() -> Vec<Planned> {
        vec![
            Planned {
                name: "uts::a".into(),
                kind: Kind::Case,
                userns: false,
                ignored: None,
            },
            Planned {
                name: "control::uts::a".into(),
                kind: Kind::Control,
                userns: true,
                ignored: None,
            },
        ]
    }

    #[test]
    fn pretty_lines_are_libtests() {
        let mut live = Live::new(Format::Pretty);
        let mut text = live.start(&plan());
        text.push_str(&live.trial(&TrialRecord::new("uts::a", Kind::Case, Verdict::Pass, "")));
        let mut control = TrialRecord::new("control::uts::a", Kind::Control, Verdict::Fail, "it held");
        control.userns = true;
        let run = RunRecord {
            about: About::here(true, "native"),
            status: Status::Complete,
            exit: Some(101),
            machine: vec![],
            filtered_out: 3,
            duration_s: 1.0,
            trials: vec![control, TrialRecord::new("uts::a", Kind::Case, Verdict::Pass, "")],
            kernel_log: vec![],
        };
        text.push_str(&live.end(&run));
        assert!(text.contains("\nrunning 2 tests\n"), "{text}");
        assert!(
            text.contains("test [case]           uts::a          ... ok\n"),
            "{text}"
        );
        assert!(
            text.contains("test [control:userns] control::uts::a ... FAILED\n"),
            "{text}"
        );
        assert!(text.contains("---- control::uts::a ----\nit held\n"), "{text}");
        assert!(
            text.contains("test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 3 filtered out"),
            "{text}"
        );
        assert_eq!(
            text.lines().filter(|l| l.ends_with(" ... ok")).count(),
            1,
            "each trial once"
        );
    }

    #[test]
    fn lists_are_libtests_or_json() {
        let l = list(Format::Pretty, &plan());
        assert_eq!(l, "[case] uts::a: test\n[control:userns] control::uts::a: test\n");
        let j = list(Format::Json, &plan());
        let first: serde_json::Value = serde_json::from_str(j.lines().next().unwrap()).unwrap();
        assert_eq!(first["name"], "uts::a");
    }
}
