//! A runner that lists first and judges each trial by its exit code
//! (cargo-nextest) must report what `cargo test` reports: the trials the
//! suite ignores are exactly those its list marks ignored, so nextest skips
//! them instead of counting them passed. Driven the way nextest drives a
//! test binary (`--list --format terse`, `--list --format terse --ignored`,
//! then `--exact NAME`), which needs no nested cargo.

mod common;
use common::*;
use std::collections::BTreeSet;

fn main() -> std::process::ExitCode {
    run_trials(vec![
        anywhere("the_list_marks_what_a_run_ignores", || {
            list_agrees_with_run(&[]);
        }),
        anywhere("the_list_marks_what_a_run_ignores_for_a_missing_feature", || {
            // A feature made absent, so the check never holds vacuously on a
            // machine where every case can run.
            let ignored = list_agrees_with_run(&PRETEND);
            assert!(
                ignored.iter().any(|n| n.contains("time::")),
                "no time trial listed ignored: {ignored:?}"
            );
        }),
        anywhere(
            "one_trial_at_a_time_as_nextest_runs_it",
            one_trial_at_a_time_as_nextest_runs_it,
        ),
    ])
}

const PRETEND: [(&str, &str); 1] = [("NSCONFORM_PRETEND_MISSING", "ns.time")];

/// The names `--list --format terse` prints (with `extra` arguments), as
/// nextest reads them: everything before ": test", kind included.
fn list(extra: &[&str], env: &[(&str, &str)]) -> BTreeSet<String> {
    let mut args = vec!["--list", "--format", "terse"];
    args.extend_from_slice(extra);
    let o = suite(&args, env);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let names: BTreeSet<String> = t
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(String::from)
        .collect();
    assert!(!names.is_empty() || !extra.is_empty(), "nothing listed:\n{t}");
    names
}

/// A listed name without its "[kind] ", as a run's line ends with it.
fn bare(listed: &str) -> &str {
    listed.rsplit_once("] ").map_or(listed, |(_, n)| n)
}

/// Every trial line of a pretty run: (bare name, outcome, rest of the line).
fn run_lines(t: &str) -> Vec<(String, String, String)> {
    t.lines()
        .filter_map(|l| {
            let (head, result) = l.strip_prefix("test ")?.split_once(" ... ")?;
            let (outcome, why) = result.split_once(' ').unwrap_or((result, ""));
            Some((head.split_whitespace().last()?.to_string(), outcome.into(), why.into()))
        })
        .collect()
}

/// The whole suite listed and run: the trials the run ignores (each with
/// its reason) are the ones listed ignored, and the rest pass. Returns them.
fn list_agrees_with_run(env: &[(&str, &str)]) -> BTreeSet<String> {
    let all = list(&[], env);
    let listed_ignored = list(&["--ignored"], env);
    assert!(listed_ignored.is_subset(&all), "{listed_ignored:?}");
    let o = suite(&["--format", "pretty", "--color", "never"], env);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let lines = run_lines(&t);
    let ran: BTreeSet<String> = lines.iter().map(|(n, _, _)| n.clone()).collect();
    assert_eq!(ran, all.iter().map(|n| bare(n).to_string()).collect(), "{t}");
    let run_ignored: BTreeSet<String> = lines
        .iter()
        .filter(|(_, o, _)| o == "ignored")
        .map(|(n, _, _)| n.clone())
        .collect();
    let want: BTreeSet<String> = listed_ignored.iter().map(|n| bare(n).to_string()).collect();
    assert_eq!(
        run_ignored, want,
        "the run ignores other trials than the list marks:\n{t}"
    );
    for (n, o, why) in &lines {
        assert!(o == "ok" || o == "ignored", "{n}: {o} {why}");
        assert!(
            o != "ignored" || why.starts_with('('),
            "{n} is ignored without its reason"
        );
    }
    // The counts nextest would give: passed = listed - skipped.
    let summary = format!(
        "{} passed; 0 failed; {} ignored;",
        all.len() - listed_ignored.len(),
        listed_ignored.len()
    );
    assert!(t.contains(&summary), "want `{summary}`:\n{t}");
    want
}

fn one_trial_at_a_time_as_nextest_runs_it() {
    let ignored = list(&["--ignored"], &PRETEND);
    let all = list(&[], &PRETEND);
    let skipped = ignored
        .iter()
        .find(|n| n.contains("time::"))
        .expect("a time trial is listed ignored");
    let runs = all.difference(&ignored).next().expect("a trial that runs");
    let exact = |name: &str, extra: &[&str]| {
        let mut args = vec!["--exact", name, "--format", "pretty", "--color", "never"];
        args.extend_from_slice(extra);
        let o = suite(&args, &PRETEND);
        (o.status.success(), text(&o))
    };
    let (ok, t) = exact(runs, &[]);
    assert!(ok && t.contains("1 passed; 0 failed; 0 ignored;"), "{t}");
    // Run by name (as `cargo test -- NAME --exact` does), it still says why it did not run.
    let (ok, t) = exact(skipped, &[]);
    assert!(ok && t.contains("0 passed; 0 failed; 1 ignored;"), "{t}");
    assert!(t.contains("... ignored (") && t.contains("ns.time"), "{t}");
    // Asked to run the ignored ones (nextest --run-ignored passes --ignored),
    // it cannot: a clear failure, never an exit 0 a runner would count passed.
    for flag in ["--ignored", "--include-ignored"] {
        let (ok, t) = exact(skipped, &[flag]);
        assert!(
            !ok && t.contains("1 failed;") && t.contains("cannot run here") && t.contains("ns.time"),
            "{flag}:\n{t}"
        );
    }
}
