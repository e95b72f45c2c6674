//! `nsconform audit` of the real runtimes, through the scripts in
//! runners/audit/, each in its common configurations: the verdicts the
//! README states, no LEAK, and nothing left on the machine (cgroups, state
//! directories, bundles, mounts, processes).
//!
//! Its own (libtest-mimic) harness: a trial whose runtime is not installed,
//! or that is not run as root, is reported ignored with the reason, never
//! "ok" (and fails under NSCONFORM_REQUIRE_ROOT_TESTS=1, as in CI, which
//! installs the runtimes).

mod common;
use common::*;
use libtest_mimic::Trial;
use serde_json::Value as Json;
use std::collections::BTreeSet;
use std::process::Command;

const TYPES: [&str; 8] = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];
const LINK: &str = "network link outside is not visible inside";
const ABSTRACT: &str = "abstract unix socket outside is not reachable inside";
const CGROUP_PATH: &str = "cgroup path is rooted at the container's cgroup";

/// One audit: the script and its arguments, the tools it needs, the
/// namespace types it must find isolated (every other type SHARED), and
/// the checks it must call SHARED (every other check OK, NOTE or SKIP).
struct Run {
    name: String,
    script: &'static str,
    args: Vec<&'static str>,
    tools: &'static [&'static str],
    isolated: Vec<&'static str>,
    shared_checks: Vec<&'static str>,
}

/// Is /sys/fs/cgroup a cgroup2 mount (no v1 hierarchies)? runc's spec and
/// podman make a cgroup namespace there; the VM the README's tables come
/// from has v1 controllers and the v2 mount under unified/.
fn unified_cgroups() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

fn runs() -> Vec<Run> {
    let v2 = unified_cgroups();
    let mut out = Vec::new();
    // Without a cgroup namespace the container sees its own cgroup's path.
    let own_cgroup = |mut iso: Vec<&'static str>, mut shared: Vec<&'static str>| {
        if v2 {
            iso.push("cgroup");
        } else {
            shared.push(CGROUP_PATH);
        }
        (iso, shared)
    };
    for rt in ["runc", "crun"] {
        for (cfg, iso, shared) in [
            ("default", vec!["ipc", "mnt", "net", "pid", "uts"], vec![]),
            ("userns", vec!["ipc", "mnt", "net", "pid", "user", "uts"], vec![]),
            ("hostnet", vec!["ipc", "mnt", "pid", "uts"], vec![LINK, ABSTRACT]),
        ] {
            let (isolated, shared_checks) = own_cgroup(iso, shared);
            out.push(Run {
                name: format!("{rt}_{cfg}"),
                script: "oci.sh",
                args: vec![rt, cfg],
                tools: if rt == "runc" {
                    &["runc", "jq"]
                } else {
                    &["crun", "jq", "unshare"]
                },
                isolated,
                shared_checks,
            });
        }
    }
    // nspawn shares the host's network unless told otherwise, and always
    // makes a cgroup namespace.
    for (cfg, iso, shared) in [
        (
            "default",
            vec!["cgroup", "ipc", "mnt", "pid", "uts"],
            vec![LINK, ABSTRACT],
        ),
        (
            "userns",
            vec!["cgroup", "ipc", "mnt", "pid", "user", "uts"],
            vec![LINK, ABSTRACT],
        ),
        ("privnet", vec!["cgroup", "ipc", "mnt", "net", "pid", "uts"], vec![]),
    ] {
        out.push(Run {
            name: format!("nspawn_{cfg}"),
            script: "nspawn.sh",
            args: vec![cfg],
            tools: &["systemd-nspawn", "flock"],
            isolated: iso,
            shared_checks: shared,
        });
    }
    for (cfg, iso, shared) in [
        ("default", vec!["ipc", "mnt", "net", "pid", "uts"], vec![]),
        ("userns", vec!["ipc", "mnt", "net", "pid", "user", "uts"], vec![]),
        ("hostnet", vec!["ipc", "mnt", "pid", "uts"], vec![LINK, ABSTRACT]),
    ] {
        let (isolated, shared_checks) = own_cgroup(iso, shared);
        out.push(Run {
            name: format!("podman_{cfg}"),
            script: "podman.sh",
            args: vec![cfg],
            tools: &["podman", "runc", "conmon", "unshare"],
            isolated,
            shared_checks,
        });
    }
    out
}

fn installed(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// What a runtime could leave: cgroups, state directories, temp
/// directories, mounts, processes of the run.
#[derive(Debug, PartialEq)]
struct Residue {
    cgroups: BTreeSet<String>,
    state: BTreeSet<String>,
    tmp: BTreeSet<String>,
    mounts: BTreeSet<String>,
    processes: BTreeSet<String>,
}

const STATE: [&str; 14] = [
    "/run/runc",
    "/run/crun",
    "/run/libpod",
    "/run/containers",
    "/run/netns",
    "/run/cni",
    "/var/lib/containers",
    "/var/lib/cni",
    "/etc/cni/net.d",
    "/run/systemd/nspawn",
    "/run/systemd/nspawn-root",
    "/run/systemd/nspawn-uid",
    "/var/lib/machines",
    "/run/systemd/machines",
];

fn listing(dir: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

impl Residue {
    /// What is in `self` and was not in `before`. Only what appeared counts:
    /// other work on the machine may remove things meanwhile, and a runtime
    /// leaves things, it does not take them away.
    fn new_since(&self, before: &Residue) -> Vec<String> {
        let diff = |what: &str, a: &BTreeSet<String>, b: &BTreeSet<String>| {
            a.difference(b).map(|x| format!("{what} {x}")).collect::<Vec<_>>()
        };
        [
            diff("cgroup", &self.cgroups, &before.cgroups),
            diff("state", &self.state, &before.state),
            diff("tmp", &self.tmp, &before.tmp),
            diff("mount", &self.mounts, &before.mounts),
            diff("process", &self.processes, &before.processes),
        ]
        .concat()
    }

    fn read() -> Residue {
        let ours = |n: &str| n.starts_with("nsconform-audit");
        // Cgroups at the top of every hierarchy and under this process's own
        // (a runtime may make its own there: nspawn's payload and
        // supervisor); the scripts' own have the run's name, at the top.
        let mut cgroups = BTreeSet::new();
        let mine = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        for c in std::iter::once(String::new()).chain(listing("/sys/fs/cgroup")) {
            let root = format!("/sys/fs/cgroup/{c}");
            // This process's line for the hierarchy: "0::" for cgroup2.
            let own = mine.lines().find_map(|l| {
                let (_, rest) = l.split_once(':')?;
                let (ctl, path) = rest.split_once(':')?;
                let hit = if c.is_empty() || c == "unified" {
                    ctl.is_empty()
                } else {
                    ctl.split(',')
                        .any(|x| x == c || x.strip_prefix("name=") == Some(c.as_str()))
                };
                hit.then(|| format!("{root}{path}"))
            });
            for dir in std::iter::once(root.clone()).chain(own) {
                let dirs = listing(&dir)
                    .into_iter()
                    .filter(|n| std::path::Path::new(&dir).join(n).is_dir());
                cgroups.extend(dirs.map(|n| format!("{}/{n}", dir.trim_end_matches('/'))));
            }
        }
        let mut state = BTreeSet::new();
        for s in STATE {
            if std::path::Path::new(s).exists() {
                state.insert(s.to_string());
                state.extend(listing(s).into_iter().map(|n| format!("{s}/{n}")));
            }
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .map(|l| l.split(' ').nth(4).unwrap_or("").to_string())
            .collect();
        let processes = listing("/proc")
            .into_iter()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
            .filter_map(|p| {
                let cmd = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                cmd.contains("nsconform-audit-").then(|| format!("{p} {cmd}"))
            })
            .collect();
        Residue {
            cgroups,
            state,
            tmp: listing("/tmp").into_iter().filter(|n| ours(n)).collect(),
            mounts,
            processes,
        }
    }
}

/// Run the script with `extra` audit options; what it printed, its exit
/// status, and what it left on the machine, if anything.
/// With `interrupt`, the script's process group (as a terminal's Ctrl-C
/// would) gets SIGINT that long after the start.
fn audit(
    run: &Run,
    extra: &[&str],
    interrupt: Option<std::time::Duration>,
) -> Result<(String, String, Option<i32>, Option<String>), String> {
    use std::os::unix::process::CommandExt;
    let _serial = serial();
    let before = Residue::read();
    let child = Command::new("sh")
        .arg(project().join("runners/audit").join(run.script))
        .args(&run.args)
        .args(extra)
        .env("NSCONFORM", bin())
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", run.script))?;
    if let Some(after) = interrupt {
        std::thread::sleep(after);
        let group = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGINT);
    }
    let o = child.wait_with_output().map_err(|e| format!("{}: {e}", run.script))?;
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    // Runtimes tear down asynchronously (conmon, namespaces).
    let mut left = Residue::read().new_since(&before);
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = Residue::read().new_since(&before);
    }
    let left = (!left.is_empty()).then(|| format!("left behind: {left:?}"));
    Ok((out, err, o.status.code(), left))
}

/// An audit ended early (its timeout at 0 s, while the runtime starts):
/// the script's cleanup still leaves nothing.
fn check_failed(run: &Run) -> Result<(), String> {
    let (out, err, code, left) = audit(run, &["--timeout", "0"], None)?;
    if code != Some(2) || !err.contains("no report from the probe") {
        return Err(format!("exit status {code:?}, want 2 (no report)\n{out}\n{err}"));
    }
    left.map_or(Ok(()), |l| Err(format!("{l}\n{out}\n{err}")))
}

/// Interrupted at a few points of its start (Ctrl-C): nothing is left.
fn check_interrupted(run: &Run) -> Result<(), String> {
    for ms in [20, 60, 120, 250] {
        let (out, err, _, left) = audit(run, &[], Some(std::time::Duration::from_millis(ms)))?;
        if let Some(l) = left {
            return Err(format!("interrupted after {ms} ms: {l}\n{out}\n{err}"));
        }
    }
    Ok(())
}

fn check(run: &Run) -> Result<(), String> {
    let (out, err, code, left) = audit(run, &["--json"], None)?;
    let doc: Json = serde_json::from_str(&out).map_err(|e| format!("no JSON ({e}):\n{out}\n{err}"))?;
    let mut wrong = Vec::new();
    if code != Some(0) {
        wrong.push(format!("exit status {code:?}"));
    }
    for row in doc["namespaces"].as_array().into_iter().flatten() {
        let ty = row["type"].as_str().unwrap_or("");
        let want = if run.isolated.contains(&ty) { "OK" } else { "SHARED" };
        if row["verdict"] != want {
            wrong.push(format!("{ty}: {} (want {want})", row["verdict"]));
        }
    }
    if doc["namespaces"].as_array().map(Vec::len) != Some(TYPES.len()) {
        wrong.push("not one row per namespace type".into());
    }
    for c in doc["checks"].as_array().into_iter().flatten() {
        let name = c["check"].as_str().unwrap_or("");
        let v = c["verdict"].as_str().unwrap_or("");
        let shared = run.shared_checks.contains(&name);
        if (v == "SHARED") != shared || v == "LEAK" {
            wrong.push(format!("{name}: {v} {}", c["detail"]));
        }
    }
    wrong.extend(left);
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n{out}\n{err}", wrong.join("\n")))
    }
}

type Test = fn(&Run) -> Result<(), String>;

fn main() -> std::process::ExitCode {
    let mut all: Vec<(String, Run, Test)> = runs().into_iter().map(|r| (r.name.clone(), r, check as _)).collect();
    // The failure path of each script, in its default configuration.
    all.extend(
        runs()
            .into_iter()
            .filter(|r| r.name.ends_with("_default"))
            .map(|r| (format!("{}_ended_early_leaves_nothing", r.name), r, check_failed as _)),
    );
    all.extend(runs().into_iter().filter(|r| r.name.ends_with("_default")).map(|r| {
        (
            format!("{}_interrupted_leaves_nothing", r.name),
            r,
            check_interrupted as _,
        )
    }));
    let names: Vec<&'static str> = all.iter().map(|(n, ..)| &*n.clone().leak()).collect();
    let mut trials: Vec<Trial> = all
        .into_iter()
        .map(|(name, run, test)| {
            Trial::ignorable_test(name, move || {
                if let Some(why) = root_missing("the audit makes namespaces; the runtimes run as root") {
                    return not_run(why);
                }
                if let Some(t) = run.tools.iter().find(|t| !installed(t)) {
                    return not_run(format!("needs {t} installed (.ci/run installs it)"));
                }
                test(&run)?;
                Ok(libtest_mimic::Completion::Completed)
            })
        })
        .collect();
    trials.push(Trial::ignorable_test(
        "unprivileged_the_runtime_audits_are_ignored_or_required",
        move || {
            if let Some(why) = root_missing("switching to an ordinary user") {
                return not_run(why);
            }
            root_trials_are_ignored_unprivileged(&names);
            Ok(libtest_mimic::Completion::Completed)
        },
    ));
    run_trials(trials)
}
