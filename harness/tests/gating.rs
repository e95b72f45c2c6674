//! Feature gating and coverage: a kernel feature reported absent turns the
//! cases that need it into ignored trials with the reason, and nothing fails;
//! the coverage report accounts for every catalogue behaviour.

mod common;
use common::*;

/// Every trial line libtest printed: (name, outcome, rest of the line).
fn trials(t: &str) -> Vec<(String, String, String)> {
    t.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("test ")?;
            let (head, result) = rest.split_once(" ... ")?;
            let name = head.split_whitespace().last()?.to_string();
            let (outcome, why) = result.split_once(' ').unwrap_or((result, ""));
            Some((name, outcome.to_string(), why.to_string()))
        })
        .collect()
}

#[test]
fn pretending_time_namespaces_are_absent_ignores_the_time_cases() {
    let o = suite(&["time"], &[("NSCONFORM_PRETEND_MISSING", "ns.time")]);
    let t = text(&o);
    assert!(o.status.success(), "a missing feature failed something:\n{t}");
    let all = trials(&t);
    let time: Vec<_> = all.iter().filter(|(n, _, _)| n.contains("time::")).collect();
    assert!(time.len() >= 10, "too few time trials matched:\n{t}");
    for (name, outcome, why) in &time {
        assert_eq!(outcome, "ignored", "{name} was not ignored:\n{t}");
        assert!(
            why.contains("ns.time"),
            "{name} gives no reason naming the feature: {why}"
        );
    }
    // Trials elsewhere that use a time namespace are gated the same way.
    let o = suite(&["several_at_once"], &[("NSCONFORM_PRETEND_MISSING", "ns.time")]);
    let t = text(&o);
    assert_eq!(outcome(&t, "api::several_at_once"), Some("ignored"), "{t}");
}

#[test]
fn without_the_variable_the_same_trials_run() {
    if !is_root() {
        eprintln!("skipped: most time cases need root");
        return;
    }
    let o = suite(&["time::"], &[]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let ran = trials(&t).iter().filter(|(_, outcome, _)| outcome == "ok").count();
    assert!(ran >= 10, "{t}");
}

#[test]
fn several_features_and_unknown_names() {
    let o = suite(&["api::"], &[("NSCONFORM_PRETEND_MISSING", "setns_pidfd,clone3")]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert_eq!(outcome(&t, "api::several_at_once"), Some("ignored"), "{t}");
    assert!(t.contains("needs `clone3`"), "{t}");
    // A name that is no feature is a mistake in the variable, said at once.
    let o = suite(&["--list"], &[("NSCONFORM_PRETEND_MISSING", "ns.tiem")]);
    let t = text(&o);
    assert!(t.contains("ns.tiem"), "{t}");
}

#[test]
fn coverage_accounts_for_every_behaviour() {
    let o = std::process::Command::new(bin())
        .args(["coverage", "--verbose"])
        .env("NSCONFORM_CASES", project().join("cases"))
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        !t.contains("no reason given"),
        "an uncovered behaviour has no reason:\n{t}"
    );
    assert!(!t.contains("could not load"), "{t}");
    let line = t
        .lines()
        .find(|l| l.starts_with("covered here: "))
        .expect("a total line");
    let covered: usize = line["covered here: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    if is_root() {
        assert!(covered >= 160, "{line}");
        assert!(line.ends_with("(*): 16"), "a gap is not covered here: {line}");
    } else {
        assert!(covered > 0, "{line}");
    }
}

#[test]
fn coverage_min_fails_below_the_bar() {
    let o = std::process::Command::new(bin())
        .args(["coverage", "--min", "186"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = std::process::Command::new(bin())
        .args(["coverage", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("usage"));
}
