//! Feature gating and coverage: a kernel feature reported absent turns the
//! cases that need it into ignored trials with the reason, and nothing fails;
//! the coverage report accounts for every catalogue behaviour.
//!
//! No total is written down here: the trials and behaviours expected are
//! counted from the cases (`--list`, their `covers`), so adding a case or a
//! behaviour never breaks these tests. Its own (libtest-mimic) harness: a
//! test that needs root is reported ignored with the reason when not root.

mod common;
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT_TRIALS: [&str; 2] = [
    "without_the_variable_the_same_trials_run",
    "as_root_every_gap_runs_and_nothing_lacks_root",
];

fn main() -> std::process::ExitCode {
    run_trials(vec![
        anywhere(
            "pretending_time_namespaces_are_absent_ignores_the_time_cases",
            pretending_time_namespaces_are_absent_ignores_the_time_cases,
        ),
        gated(
            ROOT_TRIALS[0],
            || root_missing("most time cases need root"),
            without_the_variable_the_same_trials_run,
        ),
        anywhere("several_features_and_unknown_names", several_features_and_unknown_names),
        anywhere(
            "coverage_accounts_for_every_behaviour",
            coverage_accounts_for_every_behaviour,
        ),
        gated(
            ROOT_TRIALS[1],
            || root_missing("what runs here is what a root run covers"),
            as_root_every_gap_runs_and_nothing_lacks_root,
        ),
        anywhere("coverage_min_fails_below_the_bar", coverage_min_fails_below_the_bar),
        anywhere("a_seccomp_filter_is_named_not_an_old_kernel", || {
            a_seccomp_filter_is_named_not_an_old_kernel().unwrap_or_else(|e| panic!("{e}"))
        }),
        gated(
            "unprivileged_the_root_tests_are_ignored_or_required",
            || root_missing("switching to an ordinary user"),
            || root_trials_are_ignored_unprivileged(&ROOT_TRIALS),
        ),
    ])
}

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

/// The trials `--list` names for this filter: what a run must account for.
fn listed(filter: &str) -> BTreeSet<String> {
    let o = suite(&["--list", filter], &[]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    t.lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .filter_map(|l| l.split_whitespace().last().map(String::from))
        .collect()
}

/// The time trials of a run, by name: (outcome, rest of the line).
fn time_trials(t: &str) -> BTreeMap<String, (String, String)> {
    trials(t)
        .into_iter()
        .filter(|(n, _, _)| n.contains("time::"))
        .map(|(n, o, why)| (n, (o, why)))
        .collect()
}

fn time_listed() -> BTreeSet<String> {
    let all: BTreeSet<String> = listed("time").into_iter().filter(|n| n.contains("time::")).collect();
    // Without a time case the checks below would hold vacuously.
    assert!(!all.is_empty(), "no time trial is listed");
    all
}

fn pretending_time_namespaces_are_absent_ignores_the_time_cases() {
    let want = time_listed();
    let o = suite(&["time"], &[("NSCONFORM_PRETEND_MISSING", "ns.time")]);
    let t = text(&o);
    assert!(o.status.success(), "a missing feature failed something:\n{t}");
    let time = time_trials(&t);
    // Every listed time trial ran (as a line of its own) and was ignored for the feature.
    assert_eq!(time.keys().cloned().collect::<BTreeSet<_>>(), want, "{t}");
    // Unprivileged, a case that needs root says that first.
    let needs_root = |why: &str| !is_root() && why.contains("needs root");
    for (name, (outcome, why)) in &time {
        assert_eq!(outcome, "ignored", "{name} was not ignored:\n{t}");
        assert!(
            why.contains("ns.time") || needs_root(why),
            "{name} gives no reason naming the feature: {why}"
        );
    }
    // Root or not, some trial is ignored for the feature (and none fails).
    assert!(
        trials(&t)
            .iter()
            .any(|(_, o, why)| o == "ignored" && why.contains("ns.time")),
        "{t}"
    );
    // Trials elsewhere that use a time namespace are gated the same way.
    let o = suite(&["several_at_once"], &[("NSCONFORM_PRETEND_MISSING", "ns.time")]);
    let t = text(&o);
    assert_eq!(outcome(&t, "api::several_at_once"), Some("ignored"), "{t}");
}

fn without_the_variable_the_same_trials_run() {
    let want = time_listed();
    let o = suite(&["time::"], &[]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let time = time_trials(&t);
    assert_eq!(time.keys().cloned().collect::<BTreeSet<_>>(), want, "{t}");
    // As root with time namespaces present, each runs: one ignored for root
    // or for the feature fails this (another missing kernel feature may not).
    for (name, (outcome, why)) in &time {
        assert!(
            outcome == "ok" || (outcome == "ignored" && !why.contains("ns.time") && !why.contains("root")),
            "{name}: {outcome} {why}\n{t}"
        );
    }
    assert!(time.values().any(|(o, _)| o == "ok"), "no time trial ran:\n{t}");
}

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

/// The cases the binary reads: NSCONFORM_CASES as the test was given it, or the project's.
fn cases_dir() -> PathBuf {
    std::env::var_os("NSCONFORM_CASES")
        .map(PathBuf::from)
        .unwrap_or_else(|| project().join("cases"))
}

/// Every ID the case files list in a `covers`, read from the TOML itself
/// (not through the harness, whose count this checks).
/// A matrix's combinations, as (variable, value text) lists: rows as given,
/// or every combination of a table of lists.
fn matrix_rows(m: &toml::Value) -> Vec<Vec<(String, String)>> {
    let text = |v: &toml::Value| v.as_str().map(String::from).unwrap_or_else(|| v.to_string());
    match m {
        toml::Value::Array(rows) => rows
            .iter()
            .filter_map(|r| r.as_table())
            .map(|r| r.iter().map(|(k, v)| (k.clone(), text(v))).collect())
            .collect(),
        toml::Value::Table(vars) => {
            let mut rows = vec![Vec::new()];
            for (k, vals) in vars {
                let vals = vals.as_array().cloned().unwrap_or_default();
                rows = rows
                    .into_iter()
                    .flat_map(|r: Vec<(String, String)>| {
                        vals.iter().map(move |v| {
                            let mut r = r.clone();
                            r.push((k.clone(), text(v)));
                            r
                        })
                    })
                    .collect();
            }
            rows
        }
        _ => vec![Vec::new()],
    }
}

fn case_covers(dir: &Path) -> BTreeSet<String> {
    fn walk(v: &toml::Value, out: &mut BTreeSet<String>) {
        match v {
            toml::Value::Table(t) => {
                let rows = t.get("matrix").map(matrix_rows).unwrap_or_else(|| vec![Vec::new()]);
                for (k, v) in t {
                    match (k.as_str(), v) {
                        ("covers", toml::Value::Array(ids)) => {
                            // `N15:{ns}` in a matrix is one entry per combination.
                            for row in &rows {
                                out.extend(ids.iter().filter_map(|i| {
                                    let mut s = i.as_str()?.to_string();
                                    for (var, val) in row {
                                        s = s.replace(&format!("{{{var}}}"), val);
                                    }
                                    Some(s)
                                }))
                            }
                        }
                        _ => walk(v, out),
                    }
                }
            }
            toml::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for area in std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
        let Ok(files) = std::fs::read_dir(area.path()) else {
            continue;
        };
        for f in files.filter_map(|e| e.ok()).map(|e| e.path()) {
            if f.extension().is_some_and(|x| x == "toml") {
                let v: toml::Value = toml::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
                walk(&v, &mut out);
            }
        }
    }
    out
}

/// `nsconform coverage` on the cases: its text, each behaviour's line
/// (ID, whether a gap, its status and the rest) and its total line's figures.
struct Coverage {
    text: String,
    ids: Vec<(String, bool, String, String)>,
    covered: usize,
    total: usize,
    gaps: usize,
    gaps_covered: usize,
}

fn coverage() -> Coverage {
    let o = std::process::Command::new(bin())
        .arg("coverage")
        .env("NSCONFORM_CASES", cases_dir())
        .env("NSCONFORM_RUNNERS", project().join("runners"))
        .output()
        .unwrap();
    let text = text(&o);
    assert!(o.status.success(), "{text}");
    let ids = text
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix("  ")?;
            let (tag, rest) = l.split_once(' ')?;
            let rest = rest.trim_start();
            let status = ["yes", "not here", "no case"]
                .into_iter()
                .find(|s| rest.starts_with(s))?;
            let (id, gap) = tag.strip_suffix('*').map_or((tag, false), |id| (id, true));
            Some((
                id.to_string(),
                gap,
                status.to_string(),
                rest[status.len()..].trim().to_string(),
            ))
        })
        .collect();
    // "covered here: C of T behaviours; of the G no other suite checks (*): GC"
    let line = text
        .lines()
        .find(|l| l.starts_with("covered here: "))
        .expect("a total line");
    let n: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(n.len(), 4, "{line}");
    Coverage {
        text,
        ids,
        covered: n[0],
        total: n[1],
        gaps: n[2],
        gaps_covered: n[3],
    }
}

/// The report's figures are those of its lines, and its lines are those of
/// the case files: an ID a case covers is covered here or "not here" with
/// the reason; any other has "no case" with the catalogue's reason.
fn coverage_accounts_for_every_behaviour() {
    let c = coverage();
    let t = &c.text;
    assert!(
        !t.contains("no reason given"),
        "an uncovered behaviour has no reason:\n{t}"
    );
    assert!(!t.contains("could not load"), "{t}");
    let with = |s: &str| c.ids.iter().filter(|i| i.2 == s).collect::<Vec<_>>();
    assert_eq!(c.ids.len(), c.total, "{t}");
    assert_eq!(with("yes").len(), c.covered, "{t}");
    assert_eq!(c.ids.iter().filter(|i| i.1).count(), c.gaps, "{t}");
    assert_eq!(with("yes").iter().filter(|i| i.1).count(), c.gaps_covered, "{t}");
    let entries = case_covers(&cases_dir());
    // `N15:ipc` covers N15 too.
    let covers: BTreeSet<String> = entries
        .iter()
        .map(|e| e.split_once(':').map_or(e.as_str(), |(id, _)| id).to_string())
        .collect();
    // The ID x type table: a cell is `NO` exactly when no case lists it.
    let mut types: Vec<String> = Vec::new();
    let mut cells = 0;
    for l in t.lines().filter_map(|l| l.strip_prefix("    ")) {
        let mut words = l.split_whitespace();
        if l.starts_with(' ') {
            types = words.map(String::from).collect();
            continue;
        }
        let Some(id) = words.next() else { continue };
        let marks: Vec<&str> = words.collect();
        assert_eq!(marks.len(), types.len(), "{l}\n{t}");
        for (ty, mark) in types.iter().zip(marks) {
            let cell = format!("{id}:{ty}");
            assert_eq!(mark != "NO", entries.contains(&cell), "{cell} is {mark}:\n{t}");
            cells += 1;
        }
    }
    assert!(cells >= 28, "the per-type table is missing:\n{t}");
    for e in entries.iter().filter(|e| e.contains(':')) {
        assert!(
            t.contains(&format!("    {}", e.split(':').next().unwrap())),
            "{e} has no row:\n{t}"
        );
    }
    let reported: BTreeSet<String> = with("yes")
        .iter()
        .chain(&with("not here"))
        .map(|i| i.0.clone())
        .collect();
    assert_eq!(reported, covers, "the report and the cases' `covers` differ:\n{t}");
    for (id, _, _, why) in with("not here").iter().chain(&with("no case")) {
        assert!(!why.is_empty(), "{id} gives no reason:\n{t}");
    }
    // Some case runs here, root or not.
    assert!(c.covered > 0, "{t}");
}

/// As root, only a missing kernel feature keeps a case from covering its
/// behaviours, and every behaviour no other suite checks is covered.
fn as_root_every_gap_runs_and_nothing_lacks_root() {
    let c = coverage();
    let t = &c.text;
    assert_eq!(c.gaps_covered, c.gaps, "a gap is not covered here:\n{t}");
    for (id, _, status, why) in &c.ids {
        assert!(
            status != "not here" || (why.contains("needs `") && !why.contains("needs root")),
            "{id} is not covered as root: {why}"
        );
    }
}

/// `--min` is checked against the count the report gives, on either side of it.
fn coverage_min_fails_below_the_bar() {
    let covered = coverage().covered;
    let min = |n: usize| {
        std::process::Command::new(bin())
            .args(["coverage", "--min", &n.to_string()])
            .env("NSCONFORM_CASES", cases_dir())
            .env("NSCONFORM_RUNNERS", project().join("runners"))
            .output()
            .unwrap()
    };
    let o = min(covered + 1);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains(&format!("fewer than {} behaviours", covered + 1)));
    let o = min(covered);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = std::process::Command::new(bin())
        .args(["coverage", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).to_lowercase().contains("usage"), "{}", text(&o));
}

/// A seccomp filter that answers clone3 (435 on x86_64) with ENOSYS, as
/// Docker's default profile does, and lets every other call through.
fn refuse_clone3() -> std::io::Result<()> {
    let insn = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let mut prog = [
        insn(0x20, 0, 0, 4),           // ld arch
        insn(0x15, 0, 3, 0xc000_003e), // x86_64, else allow
        insn(0x20, 0, 0, 0),           // ld nr
        insn(0x15, 0, 1, 435),         // clone3, else allow
        insn(0x06, 0, 0, 0x0005_0000 | libc::ENOSYS as u32),
        insn(0x06, 0, 0, 0x7fff_0000),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: prctl with integer arguments, then a filter program that
    // outlives the call; the kernel copies it.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(libc::PR_SET_SECCOMP, 2, &fprog as *const libc::sock_fprog) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Under a filter that refuses clone3, the probe says so, and names no
/// Linux version; without it, on this kernel, clone3 is there.
fn a_seccomp_filter_is_named_not_an_old_kernel() -> Result<(), String> {
    if !cfg!(target_arch = "x86_64") {
        return Ok(());
    }
    use std::os::unix::process::CommandExt;
    let mut c = std::process::Command::new(bin());
    c.arg("features");
    // SAFETY: the hook only calls prctl, which is async-signal-safe.
    unsafe { c.pre_exec(refuse_clone3) };
    let o = c.output().map_err(|e| format!("nsconform features: {e}"))?;
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.starts_with("clone3 "))
        .ok_or(format!("no clone3 line:\n{out}"))?;
    if !line.contains("refused by a filter") || line.contains("Linux 5.3") {
        return Err(format!("under a filter refusing clone3, the probe said: {line}"));
    }
    let plain = std::process::Command::new(bin())
        .arg("features")
        .output()
        .map_err(|e| e.to_string())?;
    let plain = String::from_utf8_lossy(&plain.stdout);
    let line = plain.lines().find(|l| l.starts_with("clone3 ")).unwrap_or_default();
    if line.contains("refused") {
        return Err(format!("without a filter: {line}"));
    }
    Ok(())
}
