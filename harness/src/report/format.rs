//! Failure text: expected and observed side by side, then step failures,
//! commands' stderr and sandbox errors.

use crate::outcome::{Declared, Report, Row, StepFailure};
use std::collections::BTreeMap;
use std::fmt::Write;

const WIDE: usize = 70;
/// The observed column is last, so it can run long without breaking the table.
const OBSERVED_WIDE: usize = 400;

fn clip(s: &str, wide: usize) -> String {
    let one = s.replace('\n', "\\n");
    if one.chars().count() > wide {
        let mut c: String = one.chars().take(wide - 1).collect();
        c.push('…');
        c
    } else {
        one
    }
}

/// A table of assertions: where, what, expected, observed.
pub fn table(rows: &[&Row]) -> String {
    let head = ["where", "what", "expected", "observed"];
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let place = if r.at == "end" {
                r.proc_label.clone()
            } else {
                format!("{} ({})", r.proc_label, r.at)
            };
            let what = if r.isolation {
                format!("{} [isolation]", r.key)
            } else {
                r.key.clone()
            };
            [place, what, clip(&r.expected, WIDE), clip(&r.observed, OBSERVED_WIDE)]
        })
        .collect();
    let mut w = head.map(|h| h.len());
    for c in &cells {
        for i in 0..4 {
            w[i] = w[i].max(c[i].chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, c: [&str; 4]| {
        let _ = writeln!(
            out,
            "  {:<w0$}  {:<w1$}  {:<w2$}  {}",
            c[0],
            c[1],
            c[2],
            c[3],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2]
        );
    };
    line(&mut out, head);
    for c in &cells {
        line(&mut out, [&c[0], &c[1], &c[2], &c[3]]);
    }
    out
}

/// One line saying what went wrong: processes that ended badly first, then
/// steps, then assertions.
pub fn headline(report: &Report, failed: usize, total: usize) -> String {
    let mut parts = Vec::new();
    for f in report.failures.iter().filter(|f| f.phase == "exit") {
        parts.push(format!("{} {}", f.proc_label, f.got));
    }
    let steps = report.failures.iter().filter(|f| f.phase != "exit").count();
    if steps > 0 {
        parts.push(format!(
            "{steps} step{} did not do what the case requires",
            plural(steps)
        ));
    }
    if failed > 0 || parts.is_empty() {
        parts.push(format!("{failed} of {total} assertions failed"));
    }
    if !report.errors.is_empty() {
        parts.push("the harness reported errors".into());
    }
    parts.join("; ")
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// What else the sandbox said that explains a failure; `progress` is each
/// process's last step, to say where one that ended badly was.
pub fn context(report: &Report, control: bool, progress: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    if !report.errors.is_empty() {
        out.push_str("harness errors:\n");
        for e in &report.errors {
            let _ = writeln!(out, "  {e}");
        }
    }
    // A control's problems name its undeclared step outcomes already.
    if !report.failures.is_empty() && !control {
        out.push_str("steps that did not do what the case requires:\n");
        for f in &report.failures {
            if f.phase == "exit" {
                let at = progress
                    .get(&f.proc_label)
                    .map(|p| format!("; its last step: {p}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {} ended: expected {}, got {}{at}",
                    f.proc_label, f.expected, f.got
                );
                continue;
            }
            let _ = writeln!(out, "  {}", failure_line(f));
        }
    }
    if !report.declared.is_empty() {
        out.push_str("steps whose outcome differs in the control, as declared (`in_control`):\n");
        for d in &report.declared {
            let _ = writeln!(out, "  {}", declared_line(d));
        }
    }
    let noisy: Vec<_> = report.commands.iter().filter(|c| !c.stderr.trim().is_empty()).collect();
    if !noisy.is_empty() {
        out.push_str("commands' stderr:\n");
        for c in noisy {
            let _ = writeln!(out, "  {}$ {} ({})", c.proc_label, c.command, c.status);
            for l in c.stderr.lines().take(20) {
                let _ = writeln!(out, "    {l}");
            }
        }
    }
    out
}

/// One step failure: which step, what was required, what happened.
pub fn failure_line(f: &StepFailure) -> String {
    if f.phase == "exit" || f.phase == "maps" {
        return format!(
            "{} {}: {}: expected {}, got {}",
            f.proc_label, f.phase, f.step, f.expected, f.got
        );
    }
    format!(
        "{} {} step {}: {}: expected {}, got {}",
        f.proc_label,
        f.phase,
        f.index + 1,
        f.step,
        f.expected,
        f.got
    )
}

/// A declared divergence: the step, its outcome in the case and here, why.
pub fn declared_line(d: &Declared) -> String {
    let f = &d.failure;
    let case = if f.expected.is_empty() { "success" } else { &f.expected };
    if f.phase == "exit" {
        return format!("{} ended {} instead of {case}, because {}", f.proc_label, f.got, d.why);
    }
    format!(
        "{} {} step {}: {}: {} instead of {}, because {}",
        f.proc_label,
        f.phase,
        f.index + 1,
        f.step,
        f.got,
        case,
        d.why
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up_expected_and_observed() {
        let row = Row {
            proc_label: "parent".into(),
            at: "end".into(),
            key: "hostname".into(),
            expected: "\"nsconform\"".into(),
            observed: "\"bizarro\"".into(),
            held: false,
            isolation: true,
            unobserved: false,
        };
        let t = table(&[&row]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("expected") && lines[0].contains("observed"));
        assert_eq!(lines[0].find("expected"), lines[1].find("\"nsconform\""));
        assert_eq!(lines[0].find("observed"), lines[1].find("\"bizarro\""));
        assert!(lines[1].contains("hostname [isolation]"));
    }
}
