//! The suite's results as kernel CI reads them: KTAP (the kernel selftests'
//! format, read by KernelCI and LKFT) and JUnit XML (GitHub, GitLab,
//! Jenkins). Both are made from the suite's pretty output, the one format
//! that carries ignore reasons and failure messages; `--format ktap` and
//! `--junit FILE` on the suite run it again as a child for that.

use std::io::{BufRead, Write};
use std::process::{Command, ExitCode, Stdio};

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Pass,
    Fail(String),
    Ignored(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrialResult {
    pub name: String,
    pub kind: String,
    pub outcome: Outcome,
}

/// One `test [kind] name ... outcome` line.
fn parse_line(line: &str) -> Option<TrialResult> {
    let rest = line.strip_prefix("test ")?;
    let (kind, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (k, r) = r.split_once(']')?;
            (k.to_string(), r)
        }
        None => (String::new(), rest),
    };
    let (name, outcome) = rest.split_once(" ... ")?;
    let outcome = outcome.trim_end();
    let outcome = if outcome == "ok" {
        Outcome::Pass
    } else if outcome == "FAILED" {
        Outcome::Fail(String::new())
    } else if let Some(r) = outcome.strip_prefix("ignored") {
        let r = r.trim();
        Outcome::Ignored(
            r.strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or(r)
                .to_string(),
        )
    } else {
        return None;
    };
    Some(TrialResult {
        name: name.trim().to_string(),
        kind,
        outcome,
    })
}

/// Every trial of a pretty (`--color never`) run, failures with their messages.
pub fn parse_pretty(text: &str) -> Vec<TrialResult> {
    let mut out: Vec<TrialResult> = text.lines().filter_map(parse_line).collect();
    // After the run: `---- name ----` then the message, up to the next header or the summary list.
    let mut current: Option<(String, Vec<&str>)> = None;
    let mut messages = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("---- ").and_then(|l| l.strip_suffix(" ----")) {
            messages.extend(current.take());
            current = Some((name.to_string(), Vec::new()));
        } else if line == "failures:" || line.starts_with("test result: ") {
            messages.extend(current.take());
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push(line);
        }
    }
    messages.extend(current);
    for (name, lines) in messages {
        if let Some(t) = out.iter_mut().find(|t| t.name == name) {
            t.outcome = Outcome::Fail(lines.join("\n").trim().to_string());
        }
    }
    out
}

/// KTAP version 1: a plan, one line per trial, diagnostics as `# ` lines.
pub fn ktap(results: &[TrialResult], header: &str) -> String {
    let mut s = format!("KTAP version 1\n# {header}\n1..{}\n", results.len());
    for (i, r) in results.iter().enumerate() {
        // A test name may not hold `#`, and spaces would end it.
        let name = r.name.replace(['#', ' '], "_");
        match &r.outcome {
            Outcome::Pass => s.push_str(&format!("ok {} {name}\n", i + 1)),
            Outcome::Ignored(why) => s.push_str(&format!("ok {} {name} # SKIP {}\n", i + 1, one_line(why))),
            Outcome::Fail(msg) => {
                for l in msg.lines() {
                    s.push_str(&format!("# {l}\n"));
                }
                s.push_str(&format!("not ok {} {name}\n", i + 1));
            }
        }
    }
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
    s.push_str(&format!(
        "# Totals: pass:{} fail:{} xfail:0 xpass:0 skip:{} error:0\n",
        count(|o| matches!(o, Outcome::Pass)),
        count(|o| matches!(o, Outcome::Fail(_))),
        count(|o| matches!(o, Outcome::Ignored(_)))
    ));
    s
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

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

/// JUnit XML: one testsuite, a testcase per trial, classname the area.
pub fn junit(results: &[TrialResult], kernel: &str) -> String {
    let fails = results.iter().filter(|r| matches!(r.outcome, Outcome::Fail(_))).count();
    let skips = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Ignored(_)))
        .count();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str(&format!(
        "<testsuites name=\"nsconform\" tests=\"{}\" failures=\"{fails}\" skipped=\"{skips}\">\n",
        results.len()
    ));
    s.push_str(&format!(
        "  <testsuite name=\"nsconform\" tests=\"{}\" failures=\"{fails}\" errors=\"0\" skipped=\"{skips}\">\n",
        results.len()
    ));
    s.push_str(&format!(
        "    <properties><property name=\"kernel\" value=\"{}\"/></properties>\n",
        xml_escape(kernel)
    ));
    for r in results {
        let parts: Vec<&str> = r.name.split("::").collect();
        let class = match parts.as_slice() {
            ["control", area, ..] => format!("nsconform.control.{area}"),
            [area, _, ..] => format!("nsconform.{area}"),
            _ => "nsconform".into(),
        };
        let open = format!(
            "    <testcase classname=\"{}\" name=\"{}\"",
            xml_escape(&class),
            xml_escape(&r.name)
        );
        match &r.outcome {
            Outcome::Pass => s.push_str(&format!("{open}/>\n")),
            Outcome::Ignored(why) => s.push_str(&format!(
                "{open}>\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                xml_escape(&one_line(why))
            )),
            Outcome::Fail(msg) => s.push_str(&format!(
                "{open}>\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                xml_escape(&one_line(msg.lines().next().unwrap_or("failed"))),
                xml_escape(msg)
            )),
        }
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

/// The value of `--format` among the suite's arguments.
pub fn format_of(args: &[String]) -> Option<&str> {
    args.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix("--format=")
            .or_else(|| (a == "--format").then(|| args.get(i + 1).map(String::as_str)).flatten())
    })
}

/// Whether the suite's arguments ask for KTAP or a JUnit file.
pub fn requested(args: &[String]) -> bool {
    format_of(args) == Some("ktap") || args.iter().any(|a| a == "--junit" || a.starts_with("--junit="))
}

/// The suite with `--format ktap` and/or `--junit FILE`: run again as a child
/// with the pretty format, its output shown as it comes unless KTAP replaces it.
pub fn suite_main(args: &[String]) -> ExitCode {
    let ktap_out = format_of(args) == Some("ktap");
    let mut junit_file = None;
    let mut pass: Vec<String> = Vec::new();
    let mut it = args.iter().skip(1).peekable();
    while let Some(a) = it.next() {
        if a == "--junit" {
            junit_file = it.next().cloned();
        } else if let Some(f) = a.strip_prefix("--junit=") {
            junit_file = Some(f.to_string());
        } else if a == "--format" {
            it.next();
        } else if !a.starts_with("--format=") {
            pass.push(a.clone());
        }
    }
    if junit_file.is_none() && args.iter().any(|a| a == "--junit") {
        eprintln!("nsconform: --junit needs a file name");
        return ExitCode::from(2);
    }
    if let Some(f) = format_of(args).filter(|f| !["ktap", "pretty"].contains(f)) {
        eprintln!("nsconform: --junit reads the pretty output; --format {f} cannot go with it");
        return ExitCode::from(2);
    }
    pass.extend(["--format".into(), "pretty".into(), "--color".into(), "never".into()]);
    let me = match std::env::current_exe() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("nsconform: cannot find this binary: {e}");
            return ExitCode::from(2);
        }
    };
    let mut child = match Command::new(me).args(&pass).stdout(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nsconform: {e}");
            return ExitCode::from(2);
        }
    };
    let mut text = String::new();
    let stdout = child.stdout.take().unwrap();
    for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
        if !ktap_out {
            println!("{line}");
        }
        text.push_str(&line);
        text.push('\n');
    }
    let status = child.wait().map(|s| s.code().unwrap_or(101)).unwrap_or(101);
    let results = parse_pretty(&text);
    let kernel = std::fs::read_to_string("/proc/version").unwrap_or_default();
    if ktap_out {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(ktap(&results, &format!("nsconform on {}", kernel.trim())).as_bytes());
    }
    if let Some(f) = junit_file
        && let Err(e) = std::fs::write(&f, junit(&results, kernel.trim()))
    {
        eprintln!("nsconform: {f}: {e}");
        return ExitCode::from(2);
    }
    ExitCode::from(status.clamp(0, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRETTY: &str = "\nrunning 4 tests\n\
test [case]    uts::a        ... ok\n\
test [control] control::uts::a ... FAILED\n\
test [case]    pid::b        ... ignored (needs `ns.time` (Linux 5.6): absent)\n\
test load::x::y ... FAILED\n\
\nfailures:\n\n---- control::uts::a ----\nexpected 1\n  observed 2\n\n---- load::x::y ----\nbad <file> & line\n\n\nfailures:\n    control::uts::a\n    load::x::y\n\n\
test result: FAILED. 1 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.10s\n";

    #[test]
    fn pretty_output_parses_with_reasons_and_messages() {
        let r = parse_pretty(PRETTY);
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].outcome, Outcome::Pass);
        assert_eq!(r[0].kind, "case");
        assert_eq!(r[1].outcome, Outcome::Fail("expected 1\n  observed 2".into()));
        assert_eq!(
            r[2].outcome,
            Outcome::Ignored("needs `ns.time` (Linux 5.6): absent".into())
        );
        assert_eq!(r[3].name, "load::x::y");
        assert_eq!(r[3].outcome, Outcome::Fail("bad <file> & line".into()));
    }
}
