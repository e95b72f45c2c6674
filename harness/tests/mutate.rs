//! `nsconform mutate`: every project case fails without each namespace it
//! does not declare as hygiene; a weak case is named as a survivor; the
//! mutants reach every process; hygiene declarations are checked at load.
//! A libtest-mimic harness, so that what needs root is reported ignored
//! with the reason when the tests run unprivileged.

mod common;
use common::*;
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::path::Path;

const ROOT_TRIALS: [&str; 2] = ["the_project_cases_have_no_survivor", "a_weak_case_is_named_a_survivor"];

const NEEDS_ROOT: &str = "needs root: the mutants create namespaces as the suite's root run does";

fn as_root(name: &str, f: fn() -> Result<(), Failed>) -> Trial {
    Trial::ignorable_test(name, move || {
        if !is_root() {
            return not_run(NEEDS_ROOT);
        }
        // One mutation run at a time, so /tmp shows what each left behind.
        let _serial = serial();
        f().map(|()| Completion::Completed)
    })
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), Failed> {
    if ok { Ok(()) } else { Err(what().into()) }
}

fn mutate_on(cases: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["mutate"];
    all.extend_from_slice(args);
    suite_on(cases, &all, &[])
}

/// Entries of /tmp that a mutation run makes (and must remove).
fn mutate_dirs() -> Vec<String> {
    std::fs::read_dir("/tmp")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("nsconform-mutate-"))
                .collect()
        })
        .unwrap_or_default()
}

fn the_project_cases_have_no_survivor() -> Result<(), Failed> {
    let o = mutate_on(&project().join("cases"), &[]);
    let t = text(&o);
    let score = t.lines().find(|l| l.starts_with("nsconform mutate: ")).unwrap_or("");
    check(o.status.success() && score.contains(" 0 survivors"), || {
        format!("survivors (fix the case, or declare the namespace as hygiene with the reason):\n{t}")
    })?;
    check(!t.lines().any(|l| l.starts_with("survivor")), || t.clone())?;
    // Something was mutated and killed: "N/N mutants killed" with N > 0.
    let killed: usize = score
        .trim_start_matches("nsconform mutate: ")
        .split('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    check(killed > 100, || format!("too few mutants killed: {score}"))
}

const WEAK: &str = r#"
summary = "the ipc namespace is along for the ride: nothing needs it"
covers = ["U1"]
[child]
namespaces = ["uts", "ipc"]
run = [{ sethostname = "weak" }]
expect = { hostname = "weak" }
isolation = { ns.uts = "differs" }
"#;

const TIDY: &str = r#"
summary = "the same, with the ipc namespace declared"
covers = ["U1"]
[child]
namespaces = ["uts", "ipc"]
hygiene = { ipc = "keeps the case's IPC objects apart" }
run = [{ sethostname = "tidy" }]
expect = { hostname = "tidy" }
isolation = { ns.uts = "differs" }
"#;

fn a_weak_case_is_named_a_survivor() -> Result<(), Failed> {
    let before = mutate_dirs();
    let d = cases(&[("uts/weak.toml", WEAK), ("uts/tidy.toml", TIDY)]);
    let o = mutate_on(d.path(), &[]);
    let t = text(&o);
    check(o.status.code() == Some(1), || {
        format!("a survivor must fail the run:\n{t}")
    })?;
    check(
        t.contains("survivor    uts::weak: passes with its child not in a new ipc namespace"),
        || t.clone(),
    )?;
    check(
        t.contains("declared    uts::tidy: child ipc is hygiene: keeps the case's IPC objects apart"),
        || t.clone(),
    )?;
    check(
        t.contains("nsconform mutate: 2/3 mutants killed, 1 survivors, 1 declared hygiene, 0 not run, 2 cases mutated"),
        || t.clone(),
    )?;
    // Only the weak mutant survives: a filter leaves the other file out.
    let o = mutate_on(d.path(), &["tidy"]);
    let t = text(&o);
    check(
        o.status.success() && t.contains("1/1 mutants killed, 0 survivors"),
        || t.clone(),
    )?;
    check(mutate_dirs() == before, || {
        "the temporary cases directory is left behind".into()
    })
}

const PROCESSES: &str = r#"
summary = "a namespace in every kind of process"
covers = ["U1"]
[[peer]]
name = "p"
namespaces = ["uts"]
[child]
namespaces = ["user", "time"]
uid_map = "0 0 1"
time_offsets = { monotonic = 1 }
run = [{ spawn = { name = "s", how = "unshare", namespaces = ["ipc"] } }]
isolation = { ns.uts = { differs_from = "peer:p" } }
[parent]
run = [{ spawn = { namespaces = ["net", "mnt"], hygiene = { mnt = "tidy" } } }]
"#;

const MATRIX: &str = r#"
summary = "one mutant per row"
covers = ["U1"]
matrix = { ns = ["uts", "ipc"] }
child.namespaces = ["{ns}"]
child.isolation = { ns."{ns}" = "differs" }
"#;

fn mutants_reach_every_process_and_row() -> Result<(), Failed> {
    let d = cases(&[("uts/procs.toml", PROCESSES), ("uts/rows.toml", MATRIX)]);
    let plan = nsconform::mutate::plan(d.path(), &[]).map_err(|e| e.to_string())?;
    check(plan.load_errors.is_empty() && plan.invalid.is_empty(), || {
        format!("{:?} {:?}", plan.load_errors, plan.invalid)
    })?;
    let mut got: Vec<String> = plan
        .mutants
        .iter()
        .map(|m| format!("{} {} {}", m.case, m.process, m.ns))
        .collect();
    got.sort();
    let want = [
        "uts::procs child time",
        "uts::procs child user",
        "uts::procs parent.run step 1 spawn net",
        "uts::procs peer:p uts",
        "uts::procs spawn:s ipc",
        "uts::rows::ipc child ipc",
        "uts::rows::uts child uts",
    ];
    check(got == want, || format!("{got:#?}"))?;
    let declared: Vec<String> = plan
        .declared
        .iter()
        .map(|d| format!("{} {} {}", d.case, d.process, d.ns))
        .collect();
    check(declared == ["uts::procs parent.run step 1 spawn mnt"], || {
        format!("{declared:?}")
    })?;
    // Trial names are unique and every mutant has a baseline.
    let mut trials: Vec<&str> = plan.mutants.iter().map(|m| m.trial.as_str()).collect();
    trials.extend(plan.baselines.keys().map(String::as_str));
    let n = trials.len();
    trials.sort();
    trials.dedup();
    check(trials.len() == n && plan.baselines.len() == 3, || format!("{trials:?}"))
}

fn load_error(text: &str) -> nsconform::load::LoadError {
    nsconform::load::load_bytes(
        Path::new("cases/uts/h.toml"),
        "uts",
        text.as_bytes(),
        nsconform::load::Catalogue::builtin(),
    )
    .expect_err(text)
}

fn hygiene_is_checked_at_load() -> Result<(), Failed> {
    let base =
        "summary = \"s\"\ncovers = [\"U1\"]\n[child]\nnamespaces = [\"uts\"]\nisolation = { ns.uts = \"differs\" }\n";
    let bad = [
        (
            "hygiene = { ipc = \"why\" }\n",
            6,
            "child.hygiene",
            "`hygiene` names `ipc`, which this process's `namespaces` does not list",
        ),
        (
            "hygiene = { uts = \" \" }\n",
            6,
            "child.hygiene",
            "`hygiene.uts` needs the reason",
        ),
        ("hygiene = {}\n", 6, "child.hygiene", "`hygiene` is empty"),
        (
            "hygiene = { nets = \"why\" }\n",
            6,
            "child.hygiene.nets",
            "unknown variant `nets`",
        ),
    ];
    for (line, at, field, msg) in bad {
        let e = load_error(&format!("{base}{line}"));
        check(e.line == at && e.field == field && e.message.contains(msg), || {
            format!("{line:?}: got {e}")
        })?;
    }
    // On the case: a namespace no process creates.
    let e = load_error(&format!("hygiene = {{ net = \"why\" }}\n{base}"));
    check(
        e.line == 1
            && e.field == "hygiene"
            && e.message
                .contains("`hygiene` names `net`, which the case never creates"),
        || format!("{e}"),
    )?;
    let ok = nsconform::load::load_bytes(
        Path::new("cases/uts/h.toml"),
        "uts",
        format!("hygiene = {{ uts = \"why\" }}\n{base}hygiene = {{ uts = \"why\" }}\n").as_bytes(),
        nsconform::load::Catalogue::builtin(),
    );
    check(ok.is_ok(), || format!("{ok:?}"))
}

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let trials = vec![
        as_root(ROOT_TRIALS[0], the_project_cases_have_no_survivor),
        as_root(ROOT_TRIALS[1], a_weak_case_is_named_a_survivor),
        Trial::test(
            "mutants_reach_every_process_and_row",
            mutants_reach_every_process_and_row,
        ),
        Trial::test("hygiene_is_checked_at_load", hygiene_is_checked_at_load),
        gated(
            "unprivileged_the_root_tests_are_ignored_or_required",
            || root_missing("switching to an ordinary user"),
            || root_trials_are_ignored_unprivileged(&ROOT_TRIALS),
        ),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}
