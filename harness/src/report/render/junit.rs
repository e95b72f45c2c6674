//! JUnit XML, as GitHub, GitLab and Jenkins read it: one testsuite per run,
//! named by the kernel it ran on (so the reports of several kernels merge),
//! a testcase per trial with its time, classname `nsconform.<area>`.

use super::{one_line, run_problem};
use crate::record::{RunRecord, TrialRecord, Verdict, area, count};
use std::fmt::Write;

pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => o.push('?'),
            c => o.push(c),
        }
    }
    o
}

fn class(r: &TrialRecord) -> String {
    let prefix = if r.name.starts_with("control::") {
        "nsconform.control"
    } else {
        "nsconform"
    };
    format!("{prefix}.{}", area(&r.name))
}

/// The element inside a testcase that says how it went, if any.
fn outcome(r: &TrialRecord) -> String {
    let first = |s: &str| one_line(s.lines().next().unwrap_or(""));
    match r.verdict {
        Verdict::Pass => String::new(),
        Verdict::Xfail => format!(
            "      <system-out>failed, as marked for this kernel: {}</system-out>\n",
            xml_escape(&r.reason)
        ),
        Verdict::Ignored => format!("      <skipped message=\"{}\"/>\n", xml_escape(&one_line(&r.reason))),
        // An xpass's reason says it passed where it is marked to fail.
        Verdict::Fail | Verdict::Xpass => format!(
            "      <failure message=\"{}\">{}</failure>\n",
            xml_escape(&first(&r.reason)),
            xml_escape(&r.reason)
        ),
        Verdict::Error => format!(
            "      <error message=\"{}\">{}</error>\n",
            xml_escape(&first(&r.reason)),
            xml_escape(&r.reason)
        ),
    }
}

fn testcase(out: &mut String, r: &TrialRecord) {
    let mut inner = outcome(r);
    if !r.stderr.is_empty() {
        let text: Vec<String> = r
            .stderr
            .iter()
            .map(|c| format!("{}$ {} ({})\n{}", c.proc_label, c.command, c.status, c.stderr))
            .collect();
        inner.push_str(&format!(
            "      <system-err>{}</system-err>\n",
            xml_escape(&text.join("\n"))
        ));
    }
    let open = format!(
        "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
        xml_escape(&class(r)),
        xml_escape(&r.name),
        r.duration_s
    );
    let _ = if inner.is_empty() {
        writeln!(out, "{open}/>")
    } else {
        write!(out, "{open}>\n{inner}    </testcase>\n")
    };
}

fn property(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(out, "      <property name=\"{name}\" value=\"{}\"/>", xml_escape(value));
}

pub fn render(run: &RunRecord) -> String {
    let mut trials: Vec<TrialRecord> = run.trials.clone();
    // A run that did not complete, or changed the machine, is a testcase of its own.
    if let Some((verdict, why)) = run_problem(run) {
        let mut r = TrialRecord::new("run", crate::record::Kind::Harness, verdict, why);
        r.duration_s = run.duration_s;
        trials.push(r);
    }
    let n = |v| count(&trials, v);
    let (tests, skipped) = (trials.len(), n(Verdict::Ignored));
    let failures = n(Verdict::Fail) + n(Verdict::Xpass);
    let errors = n(Verdict::Error);
    let a = &run.about;
    let suite = format!("nsconform on {}", a.kernel.release);
    let counts = format!("tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\"");
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"nsconform\" {counts} time=\"{:.3}\">",
        run.duration_s
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" {counts} time=\"{:.3}\" timestamp=\"{}\">",
        xml_escape(&suite),
        run.duration_s,
        xml_escape(a.date.trim_end_matches('Z'))
    );
    out.push_str("    <properties>\n");
    property(&mut out, "kernel", &a.kernel.version);
    property(&mut out, "kernel.release", &a.kernel.release);
    property(&mut out, "kernel.upstream", &a.kernel.upstream());
    if let Some(p) = &a.kernel.package {
        property(&mut out, "kernel.package", p);
    }
    if let Some(v) = a.kernel.debian_version() {
        property(&mut out, "kernel.package.version", v);
    }
    property(&mut out, "nsconform", &a.nsconform.describe());
    property(&mut out, "date", &a.date);
    property(&mut out, "privileged", if a.privileged { "yes" } else { "no" });
    property(&mut out, "runner", &a.runner);
    if let Some(q) = &a.qemu {
        property(&mut out, "qemu", q);
    }
    if let Some(acc) = &a.accel {
        property(&mut out, "accel", acc);
    }
    out.push_str("    </properties>\n");
    for r in &trials {
        testcase(&mut out, r);
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{About, Kind, Status};

    #[test]
    fn counts_match_the_testcases_and_a_cut_run_is_an_error() {
        let run = RunRecord {
            about: About::here(true, "native"),
            status: Status::TimedOut {
                why: "after 9 s".into(),
            },
            exit: None,
            machine: vec![],
            filtered_out: 0,
            duration_s: 9.0,
            trials: vec![
                TrialRecord::new("uts::a", Kind::Case, Verdict::Pass, ""),
                TrialRecord::new("uts::b <&>", Kind::Case, Verdict::Fail, "bad <x> & y"),
                TrialRecord::new("uts::c", Kind::Case, Verdict::Error, "no result: after 9 s"),
            ],
            kernel_log: vec![],
        };
        let xml = render(&run);
        assert!(
            xml.contains("tests=\"4\" failures=\"1\" errors=\"2\" skipped=\"0\""),
            "{xml}"
        );
        assert!(xml.contains("name=\"uts::b &lt;&amp;&gt;\""), "{xml}");
        assert!(xml.contains("<error message=\"the run timed out: after 9 s\""), "{xml}");
        assert!(xml.contains(&format!("name=\"nsconform on {}\"", run.about.kernel.release)));
    }
}
