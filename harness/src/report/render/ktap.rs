//! KTAP version 1 (the kernel's Documentation/dev-tools/ktap.rst): one
//! subtest per area, areas and their trials in name order so a trial keeps
//! its number from run to run, diagnostics before the result they explain,
//! and kselftest's totals line.

use super::{headline, one_line, run_problem};
use crate::record::{Planned, RunRecord, TrialRecord, Verdict, area, tally};
use std::collections::BTreeMap;
use std::fmt::Write;

/// A name as KTAP allows it: no `#`, no whitespace.
fn name(s: &str) -> String {
    s.chars()
        .map(|c| if c == '#' || c.is_whitespace() { '_' } else { c })
        .collect()
}

/// Records by area, each area's in name order.
fn by_area<T>(items: &[T], name_of: impl Fn(&T) -> &str) -> BTreeMap<&str, Vec<&T>> {
    let mut m: BTreeMap<&str, Vec<&T>> = BTreeMap::new();
    for i in items {
        m.entry(area(name_of(i))).or_default().push(i);
    }
    for v in m.values_mut() {
        v.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    }
    m
}

/// One trial's lines, indented as a subtest's: its time (for a trial that
/// ran) and any diagnostics before its result, as KTAP ties them to it.
fn trial(out: &mut String, n: usize, r: &TrialRecord) {
    let id = name(&r.name);
    let why = one_line(&r.reason);
    if r.verdict != Verdict::Ignored {
        let _ = writeln!(out, "  # time: {:.3} s", r.duration_s);
    }
    let diagnostics = |out: &mut String| {
        for l in r.reason.lines() {
            let _ = writeln!(out, "  # {l}");
        }
    };
    let _ = match r.verdict {
        Verdict::Pass => writeln!(out, "  ok {n} {id}"),
        Verdict::Ignored => writeln!(out, "  ok {n} {id} # SKIP {why}"),
        Verdict::Xfail => writeln!(out, "  ok {n} {id} # XFAIL {why}"),
        Verdict::Fail => {
            diagnostics(out);
            writeln!(out, "  not ok {n} {id}")
        }
        Verdict::Xpass => {
            diagnostics(out);
            writeln!(out, "  not ok {n} {id} # XPASS")
        }
        Verdict::Error => writeln!(out, "  not ok {n} {id} # ERROR {why}"),
    };
}

/// A run's results.
pub fn render(run: &RunRecord) -> String {
    let areas = by_area(&run.trials, |t| t.name.as_str());
    let problem = run_problem(run);
    let mut out = format!("KTAP version 1\n# {}\n", headline(run));
    let _ = writeln!(out, "1..{}", areas.len() + usize::from(problem.is_some()));
    for (i, (area, trials)) in areas.iter().enumerate() {
        let _ = writeln!(out, "  KTAP version 1\n  # Subtest: {area}\n  1..{}", trials.len());
        for (j, t) in trials.iter().enumerate() {
            trial(&mut out, j + 1, t);
        }
        let failed = trials.iter().any(|t| t.verdict.fails_the_run());
        let skipped = trials.iter().all(|t| t.verdict == Verdict::Ignored);
        let _ = match (failed, skipped) {
            (true, _) => writeln!(out, "not ok {} {}", i + 1, name(area)),
            (false, true) => writeln!(out, "ok {} {} # SKIP every trial ignored", i + 1, name(area)),
            (false, false) => writeln!(out, "ok {} {}", i + 1, name(area)),
        };
    }
    if let Some((verdict, why)) = &problem {
        let directive = if *verdict == Verdict::Error { "ERROR " } else { "" };
        let _ = writeln!(out, "not ok {} run # {directive}{}", areas.len() + 1, one_line(why));
    }
    let [pass, fail, skip, error, xfail, xpass] = tally(&run.trials);
    let error = error + usize::from(problem.is_some());
    let _ = writeln!(
        out,
        "# Totals: pass:{pass} fail:{fail} xfail:{xfail} xpass:{xpass} skip:{skip} error:{error}"
    );
    out
}

/// The plan of a `--list`: each area's trials, numbered as a run numbers
/// them, as diagnostics (nothing has run, so there are no results).
pub fn plan(title: &str, planned: &[Planned]) -> String {
    let areas = by_area(planned, |p| p.name.as_str());
    let mut out = format!(
        "KTAP version 1\n# {title}: the plan of {} trials, not run\n",
        planned.len()
    );
    let _ = writeln!(out, "1..{}", areas.len());
    for (area, trials) in &areas {
        let _ = writeln!(out, "  KTAP version 1\n  # Subtest: {area}\n  1..{}", trials.len());
        for (j, p) in trials.iter().enumerate() {
            let ignored = p
                .ignored
                .as_deref()
                .map(|w| format!(" # SKIP {}", one_line(w)))
                .unwrap_or_default();
            let _ = writeln!(out, "  # {} {}{ignored}", j + 1, name(&p.name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{About, Kind, Status};

    fn run(trials: Vec<TrialRecord>, status: Status) -> RunRecord {
        RunRecord {
            about: About::here(true, "native"),
            status,
            exit: Some(0),
            machine: vec![],
            filtered_out: 0,
            duration_s: 1.0,
            trials,
            kernel_log: vec![],
        }
    }

    #[test]
    fn areas_are_subtests_numbered_in_name_order() {
        let t = |n: &str, v, why: &str| TrialRecord::new(n, Kind::Case, v, why);
        let text = render(&run(
            vec![
                t("uts::b", Verdict::Fail, "line one\nline two"),
                t("pid::x", Verdict::Ignored, "needs root"),
                t("control::uts::a", Verdict::Pass, ""),
                {
                    let mut a = t("uts::a", Verdict::Pass, "");
                    a.duration_s = 0.25;
                    a
                },
            ],
            Status::Complete,
        ));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "KTAP version 1");
        assert_eq!(lines[2], "1..2");
        let pid = lines.iter().position(|l| *l == "  # Subtest: pid").unwrap();
        let uts = lines.iter().position(|l| *l == "  # Subtest: uts").unwrap();
        assert!(pid < uts);
        assert!(
            text.contains("  ok 1 pid::x # SKIP needs root\nok 1 pid # SKIP"),
            "{text}"
        );
        assert!(
            text.contains(
                "  # time: 0.000 s\n  ok 1 control::uts::a\n  # time: 0.250 s\n  ok 2 uts::a\n  # time: 0.000 s\n  # line one\n  # line two\n  not ok 3 uts::b\nnot ok 2 uts\n"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("# Totals: pass:2 fail:1 xfail:0 xpass:0 skip:1 error:0\n"),
            "{text}"
        );
    }

    #[test]
    fn a_cut_run_is_an_error() {
        let trials = vec![
            TrialRecord::new("uts::a", Kind::Case, Verdict::Pass, ""),
            TrialRecord::new("uts::b", Kind::Case, Verdict::Error, "no result: after 9 s"),
        ];
        let text = render(&run(
            trials,
            Status::TimedOut {
                why: "after 9 s".into(),
            },
        ));
        assert!(
            text.contains("  not ok 2 uts::b # ERROR no result: after 9 s"),
            "{text}"
        );
        assert!(
            text.contains("not ok 2 run # ERROR the run timed out: after 9 s"),
            "{text}"
        );
        assert!(text.contains("1..2\n"), "{text}");
        assert!(text.contains("error:2"), "{text}");
    }
}
