//! `nsconform audit` of the real runtimes, through the scripts in
//! runners/audit/, each in its common configurations: the verdicts of each
//! runtime's table (audit_runtimes/tables.rs), by the audit's stable check
//! IDs, and nothing left on the machine (audit_runtimes/residue.rs), also
//! when the audit ends early or is interrupted. The docker trials share one
//! daemon per run (audit_runtimes/daemon.rs), torn down and checked by the
//! last trial.
//!
//! Its own (libtest-mimic) harness: a trial whose runtime is not installed,
//! or that is not run as root, is reported ignored with the reason, never
//! "ok" (and fails under NSCONFORM_REQUIRE_ROOT_TESTS=1, as in CI, which
//! installs the runtimes).

mod common;
#[path = "audit_runtimes/daemon.rs"]
mod daemon;
#[path = "audit_runtimes/residue.rs"]
mod residue;
#[path = "audit_runtimes/tables.rs"]
mod tables;

use common::*;
use libtest_mimic::{Completion, Trial};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;
use tables::{Row, Runtime};

/// The user podman-rootless.sh runs podman as (.ci/run makes it).
const ROOTLESS_USER: &str = "nsconform-ci";
const SHARED_TEARDOWN: &str = "docker_shared_daemons_leave_nothing";

/// Is /sys/fs/cgroup a cgroup2 mount (no v1 hierarchies)?
fn unified_cgroups() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

fn installed(tool: &str) -> bool {
    if tool.starts_with('/') {
        return std::path::Path::new(tool).is_file();
    }
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Why `rt` cannot be audited here, if it cannot.
fn missing(rt: &Runtime) -> Option<String> {
    if let Some(why) = root_missing("the audit makes namespaces; the runtimes run as root") {
        return Some(why);
    }
    if let Some(t) = rt.tools.iter().find(|t| !installed(t)) {
        return Some(format!("needs {t} installed (.ci/run installs it)"));
    }
    if rt.script == "podman-rootless.sh" {
        return rootless_user_missing();
    }
    None
}

fn rootless_user_missing() -> Option<String> {
    let has_range = |f: &str| {
        std::fs::read_to_string(f).is_ok_and(|t| t.lines().any(|l| l.starts_with(&format!("{ROOTLESS_USER}:"))))
    };
    let exists = nix::unistd::User::from_name(ROOTLESS_USER).is_ok_and(|u| u.is_some());
    (!exists || !has_range("/etc/subuid") || !has_range("/etc/subgid"))
        .then(|| format!("needs the user {ROOTLESS_USER} with a subordinate id range (.ci/run makes it)"))
}

/// The script's environment: the binary under test, and none of the
/// caller's NSCONFORM_* or DOCKER_* variables (a daemon of the caller's
/// must not be audited by mistake).
fn script_env(c: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("NSCONFORM") || k.starts_with("DOCKER_") {
            c.env_remove(&*k);
        }
    }
    c.env("NSCONFORM", bin()).env("NSCONFORM_AUDIT_USER", ROOTLESS_USER);
}

/// What one run of a script gave.
struct Ran {
    out: String,
    err: String,
    code: Option<i32>,
    left: Option<String>,
}

/// Run `rt`'s script in configuration `cfg` with `extra` audit options,
/// under the shared daemon if `shared`. With `interrupt`, the script's
/// process group gets SIGINT (as a terminal's Ctrl-C would) that long after
/// the start.
fn audit(rt: &Runtime, cfg: &str, extra: &[&str], shared: bool, interrupt: Option<Duration>) -> Result<Ran, String> {
    use std::os::unix::process::CommandExt;
    let _serial = serial();
    let daemon_env = if shared {
        daemon::env(cfg == "userns", &script_env)?
    } else {
        vec![]
    };
    let before = residue::read();
    let mut c = Command::new("sh");
    c.arg(project().join("runners/audit").join(rt.script))
        .args(rt.before)
        .arg(cfg)
        .args(extra)
        .process_group(0)
        // A pipe, never a file: runsc gives its stdio files to nobody.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    script_env(&mut c);
    c.envs(daemon_env);
    let child = c.spawn().map_err(|e| format!("{}: {e}", rt.script))?;
    if let Some(after) = interrupt {
        std::thread::sleep(after);
        let group = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGINT);
    }
    // Every script names what it makes after its own pid (docker.sh execs
    // dockerd.sh, which keeps it).
    let pid = child.id();
    let o = child.wait_with_output().map_err(|e| format!("{}: {e}", rt.script))?;
    Ok(Ran {
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
        code: o.status.code(),
        left: residue::left_since(&before, &[pid]),
    })
}

/// Every verdict the JSON gives each ID: any object with an `id` and a
/// `verdict`, wherever it sits in the document.
fn verdicts(doc: &Json) -> BTreeMap<String, Vec<String>> {
    fn walk(v: &Json, out: &mut BTreeMap<String, Vec<String>>) {
        match v {
            Json::Object(m) => {
                if let (Some(Json::String(id)), Some(Json::String(verdict))) = (m.get("id"), m.get("verdict")) {
                    out.entry(id.clone()).or_default().push(verdict.clone());
                }
                m.values().for_each(|x| walk(x, out));
            }
            Json::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    walk(doc, &mut out);
    out
}

/// The claims `row` says its script makes on this host.
fn claims_here(rt: &Runtime, row: &Row) -> Vec<String> {
    let mut c: Vec<String> = row.claims.split(',').map(String::from).collect();
    if unified_cgroups() {
        c.extend(rt.v2_claims.iter().map(|s| s.to_string()));
    }
    c.sort();
    c.dedup();
    c
}

/// What is wrong with an audit's JSON against its row.
fn judge(rt: &Runtime, row: &Row, doc: &Json, code: Option<i32>) -> Vec<String> {
    let mut wrong = Vec::new();
    let seen = verdicts(doc);
    let claims: Vec<String> = doc["claims"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(String::from))
        .collect();
    let want = claims_here(rt, row);
    if claims != want {
        wrong.push(format!("claims {claims:?}, want {want:?}"));
    }
    let is = |id: &str, v: &str| seen.get(id).is_some_and(|vs| vs.iter().any(|x| x == v));
    for id in row.leak {
        if !is(id, "LEAK") {
            wrong.push(format!("{id}: {:?}, want LEAK", seen.get(*id)));
        }
    }
    let must_not = tables::CONTRACT
        .iter()
        .filter(|id| !row.leak.contains(id) && !row.open.contains(id));
    for id in must_not {
        match seen.get(*id) {
            None => wrong.push(format!("{id}: missing from the JSON")),
            Some(_) if is(id, "LEAK") => wrong.push(format!("{id}: LEAK, want no LEAK")),
            Some(_) => {}
        }
    }
    // A claimed type must be seen isolated where the audit can see it.
    for ty in &want {
        let id = format!("ns.{ty}");
        if rt.observable
            && !row.leak.contains(&id.as_str())
            && seen.get(&id).is_none_or(|v| v.iter().any(|x| x != "OK"))
        {
            wrong.push(format!("{id}: {:?}, want OK (claimed)", seen.get(&id)));
        }
    }
    let any_leak = seen.values().flatten().any(|v| v == "LEAK");
    if code != Some(i32::from(any_leak)) {
        wrong.push(format!(
            "exit status {code:?} with {} LEAK",
            if any_leak { "a" } else { "no" }
        ));
    }
    wrong
}

/// The JSON an audit would give that says exactly what `row` demands: its
/// claims, LEAK for its leak IDs, OK for every other ID.
fn exact(rt: &Runtime, row: &Row) -> Json {
    let checks: Vec<Json> = tables::CONTRACT
        .iter()
        .map(|id| serde_json::json!({"id": id, "verdict": if row.leak.contains(id) { "LEAK" } else { "OK" }}))
        .collect();
    serde_json::json!({"claims": claims_here(rt, row), "checks": checks})
}

/// `exact` with one ID's verdict changed (None: the ID left out).
fn changed(doc: &Json, id: &str, verdict: Option<&str>) -> Json {
    let mut d = doc.clone();
    let checks = d["checks"].as_array_mut().expect("checks");
    checks.retain(|c| c["id"] != id || verdict.is_some());
    for c in checks.iter_mut().filter(|c| c["id"] == id) {
        c["verdict"] = Json::from(verdict.unwrap_or_default());
    }
    d
}

/// Every row's assertions can fail: the exact report passes, and each
/// verdict the row rests on, changed, is caught (a demanded LEAK not seen,
/// a LEAK where none may be, an ID missing, a claimed type unseen, the
/// wrong exit status).
fn the_tables_catch_each_wrong_verdict() {
    for rt in tables::ALL {
        for row in rt.rows {
            let name = format!("{}_{}", rt.name, row.config);
            let doc = exact(rt, row);
            let code = Some(i32::from(!row.leak.is_empty()));
            let wrong = judge(rt, row, &doc, code);
            assert!(wrong.is_empty(), "{name}: the exact report is judged wrong: {wrong:?}");
            assert!(
                !judge(rt, row, &doc, Some(2)).is_empty(),
                "{name}: exit status 2 passes"
            );
            for id in row.leak {
                let d = changed(&doc, id, Some("OK"));
                assert!(!judge(rt, row, &d, Some(0)).is_empty(), "{name}: {id} OK passes");
            }
            for id in tables::CONTRACT
                .iter()
                .filter(|id| !row.leak.contains(id) && !row.open.contains(id))
            {
                let d = changed(&doc, id, Some("LEAK"));
                assert!(!judge(rt, row, &d, Some(1)).is_empty(), "{name}: {id} LEAK passes");
                let d = changed(&doc, id, None);
                assert!(!judge(rt, row, &d, code).is_empty(), "{name}: {id} missing passes");
            }
            for ty in claims_here(rt, row) {
                let id = format!("ns.{ty}");
                let d = changed(&doc, &id, Some("UNOBSERVABLE"));
                let caught = !judge(rt, row, &d, code).is_empty();
                assert_eq!(
                    caught,
                    rt.observable || row.leak.contains(&id.as_str()),
                    "{name}: {id} unseen"
                );
            }
        }
    }
}

/// An item of the residue is another run's only when it names a script's
/// pid that is not this run's: the engine's own names (a token) count.
fn residue_tells_another_runs_items() {
    let ours = [123];
    for (item, foreign) in [
        ("tmp nsconform-audit-123", false),
        ("cgroup /sys/fs/cgroup/unified/nsconform-audit-123.run", false),
        ("tmp nsconform-audit-124", true),
        ("process 77 dockerd --data-root /tmp/nsconform-audit-9/data", true),
        ("cgroup /sys/fs/cgroup/unified/nsconform-audit-1efb-ce09ff912478", false),
        ("cgroup /sys/fs/cgroup/unified/nsconform-audit-12ab", false),
        ("mount /tmp/x", false),
    ] {
        assert_eq!(residue::foreign(item, &ours), foreign, "{item}");
    }
}

fn check(rt: &Runtime, row: &Row) -> Result<(), String> {
    let ran = audit(rt, row.config, &["--json"], rt.shared_daemon, None)?;
    let doc: Json = serde_json::from_str(&ran.out)
        .map_err(|e| format!("exit status {:?}, no JSON ({e}):\n{}\n{}", ran.code, ran.out, ran.err))?;
    let mut wrong = judge(rt, row, &doc, ran.code);
    wrong.extend(ran.left);
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n{}\n{}", wrong.join("\n"), ran.out, ran.err))
    }
}

/// An audit ended early (its timeout at 0 s, while the runtime starts), with
/// the runtime's own daemon if it has one: the script's cleanup still
/// leaves nothing.
fn check_failed(rt: &Runtime, row: &Row) -> Result<(), String> {
    let ran = audit(rt, row.config, &["--timeout", "0"], false, None)?;
    if ran.code != Some(2) || !ran.err.contains("no report from the probe") {
        return Err(format!(
            "exit status {:?}, want 2 (no report)\n{}\n{}",
            ran.code, ran.out, ran.err
        ));
    }
    ran.left
        .map_or(Ok(()), |l| Err(format!("{l}\n{}\n{}", ran.out, ran.err)))
}

/// Interrupted at a few points of its start (Ctrl-C), with the runtime's own
/// daemon if it has one: nothing is left.
fn check_interrupted(rt: &Runtime, row: &Row) -> Result<(), String> {
    for ms in rt.interrupts {
        let ran = audit(rt, row.config, &[], false, Some(Duration::from_millis(*ms)))?;
        if let Some(l) = ran.left {
            return Err(format!("interrupted after {ms} ms: {l}\n{}\n{}", ran.out, ran.err));
        }
    }
    Ok(())
}

type Test = fn(&Runtime, &Row) -> Result<(), String>;

/// Every trial: each row of each table, then each runtime's first row ended
/// early and interrupted; whether it uses a shared daemon.
fn all() -> Vec<(String, &'static Runtime, &'static Row, Test, bool)> {
    let mut out = Vec::new();
    for rt in tables::ALL {
        for row in rt.rows {
            let name = format!("{}_{}", rt.name, row.config);
            out.push((name, *rt, row, check as Test, rt.shared_daemon));
        }
    }
    for rt in tables::ALL {
        let row = &rt.rows[0];
        let base = format!("{}_{}", rt.name, row.config);
        out.push((
            format!("{base}_ended_early_leaves_nothing"),
            *rt,
            row,
            check_failed as Test,
            false,
        ));
        out.push((
            format!("{base}_interrupted_leaves_nothing"),
            *rt,
            row,
            check_interrupted as Test,
            false,
        ));
    }
    out
}

fn trial(name: String, rt: &'static Runtime, row: &'static Row, test: Test, shared: bool) -> Trial {
    Trial::ignorable_test(name, move || {
        let _pending = shared.then(|| daemon::Pending);
        if let Some(why) = missing(rt) {
            return not_run(why);
        }
        test(rt, row)?;
        Ok(Completion::Completed)
    })
}

/// The last trial: once every docker trial has ended, the shared daemons end
/// and must have left nothing.
fn teardown_trial() -> Trial {
    Trial::ignorable_test(SHARED_TEARDOWN, || {
        if let Some(why) = missing(&tables::DOCKER) {
            return not_run(why);
        }
        daemon::wait_for_trials();
        match daemon::tear_down()? {
            true => Ok(Completion::Completed),
            false => Ok(Completion::ignored_with(
                "no docker trial started a shared daemon in this run",
            )),
        }
    })
}

fn main() -> std::process::ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let mut names: Vec<&'static str> = Vec::new();
    let mut trials = Vec::new();
    let mut shared = 0;
    for (name, rt, row, test, uses_daemon) in all() {
        names.push(name.clone().leak());
        let t = trial(name, rt, row, test, uses_daemon);
        if uses_daemon && !args.is_filtered_out(&t) && !args.is_ignored(&t) {
            shared += 1;
        }
        trials.push(t);
    }
    daemon::PENDING.store(shared, std::sync::atomic::Ordering::SeqCst);
    names.push(SHARED_TEARDOWN);
    trials.push(Trial::ignorable_test(
        "unprivileged_the_runtime_audits_are_ignored_or_required",
        move || {
            if let Some(why) = root_missing("switching to an ordinary user") {
                return not_run(why);
            }
            root_trials_are_ignored_unprivileged(&names);
            Ok(Completion::Completed)
        },
    ));
    trials.push(anywhere(
        "the_tables_catch_each_wrong_verdict",
        the_tables_catch_each_wrong_verdict,
    ));
    trials.push(anywhere(
        "residue_tells_another_runs_items",
        residue_tells_another_runs_items,
    ));
    trials.push(teardown_trial());
    let conclusion = libtest_mimic::run(&args, trials);
    // The teardown trial may have been filtered out: the daemons end anyway.
    daemon::PENDING.store(0, std::sync::atomic::Ordering::SeqCst);
    if let Err(e) = daemon::tear_down() {
        eprintln!("{SHARED_TEARDOWN}: {e}");
        return std::process::ExitCode::FAILURE;
    }
    conclusion.exit_code()
}
