//! `nsconform audit` against made-up runtimes: wrappers around unshare(1)
//! that claim all eight namespace types but each get one thing wrong. The
//! audit must name each mistake (a LEAK on the right row or check, exit
//! status 1), and pass the honest wrapper (exit status 0).

mod common;
use common::*;
use libtest_mimic::Trial;
use std::process::Command;

/// A runtime made of unshare(1): `flags` for unshare, `map` written as the
/// uid and gid map from outside (as a runtime does), `pre` run first.
fn wrapper(flags: &str, map: &str, pre: &str) -> String {
    format!(
        r#"set -e
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT; chmod 755 "$d"; mkfifo -m 666 "$d/go"
{pre}
exec 3<&0
unshare {flags} sh -c 'read _ < "$0"; exec "$@"' "$d/go" {{probe}} <&3 &
pid=$!
# The first of the runtime's processes (down its chain of children) in a
# new user namespace gets the maps.
inner() {{ p=$1; while [ -n "$p" ]; do
  u=$(readlink /proc/$p/ns/user) && [ -n "$u" ] && [ "$u" != "$(readlink /proc/self/ns/user)" ] && {{ echo "$p"; return; }}
  p=$(cut -d' ' -f1 /proc/$p/task/$p/children 2>/dev/null); done; }}
until pid2=$(inner $pid) && [ -n "$pid2" ]; do sleep 0.002; done; pid=$pid2
echo '{map}' > /proc/$pid/uid_map
echo '{map}' > /proc/$pid/gid_map
echo go > "$d/go"
wait $pid"#
    )
}

const ALL: &str = "-U -m -u -i -n -p -C -T --fork --mount-proc";
const MAP: &str = "0 100000 65536";

/// (name, wrapper, what the audit must call a LEAK: row types and check names)
fn runtimes() -> Vec<(&'static str, String, &'static [&'static str])> {
    vec![
        ("honest", wrapper(ALL, MAP, ""), &[]),
        (
            "no_ipc_namespace",
            wrapper(&ALL.replace("-i ", ""), MAP, ""),
            &[
                "ipc",
                "System V IPC object outside is not visible inside",
                "POSIX message queue outside is not visible inside",
            ],
        ),
        (
            "no_proc_remount",
            wrapper(&ALL.replace(" --mount-proc", ""), MAP, ""),
            &["/proc inside shows only the container's processes"],
        ),
        (
            "no_fork_after_unshare_p",
            wrapper(&ALL.replace(" --fork --mount-proc", ""), MAP, ""),
            // Without the fork unshare cannot mount a fresh /proc either.
            &[
                "pid",
                "the process is inside its new pid namespace (no missed fork)",
                "/proc inside shows only the container's processes",
            ],
        ),
        (
            "full_0_to_0_map",
            wrapper(ALL, "0 0 4294967295", ""),
            &[
                "id maps: root inside is not root outside",
                "id maps: not the whole id range",
            ],
        ),
        (
            "shared_propagation",
            // A user namespace made with the mount namespace turns shared
            // mounts into slaves: the mount namespace comes first, from
            // root, and /proc is made private before the fresh proc goes on
            // it, so nothing reaches the machine's /proc.
            wrapper(
                "-m --propagation unchanged -u -i -n -p -C -T --fork sh -c 'mount --make-private /proc && mount -t proc proc /proc && exec unshare -U \"$@\"' sh",
                MAP,
                "",
            ),
            &["mounts made inside do not appear outside"],
        ),
        (
            "no_cgroup_namespace",
            wrapper(&ALL.replace("-C ", ""), MAP, ""),
            &["cgroup"],
        ),
        (
            "no_time_namespace",
            wrapper(&ALL.replace("-T ", ""), MAP, ""),
            &["time"],
        ),
        (
            "host_network",
            wrapper(&ALL.replace("-n ", ""), MAP, ""),
            &[
                "net",
                "network link outside is not visible inside",
                "abstract unix socket outside is not reachable inside",
            ],
        ),
        (
            "inherited_fd_to_a_host_namespace",
            wrapper(ALL, MAP, "exec 7</proc/self/ns/net"),
            &["no inherited fd leads outside"],
        ),
    ]
}

/// The LEAK rows' types and checks' names in the audit's JSON.
fn leaks(json: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in json.split("{\"").skip(1) {
        if !part.contains("\"verdict\":\"LEAK\"") {
            continue;
        }
        for key in ["type\":\"", "check\":\""] {
            if let Some(rest) = part.strip_prefix(key) {
                out.push(rest.split('"').next().unwrap_or("").to_string());
            }
        }
    }
    out.sort();
    out
}

fn audit_of(script: &str) -> (i32, String, String) {
    let o = Command::new(bin())
        .args(["audit", "--claims", "all", "--json", "--", "sh", "-c", script])
        .output()
        .expect("the audit runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn main() -> std::process::ExitCode {
    let mut trials = Vec::new();
    for (name, script, want) in runtimes() {
        trials.push(Trial::ignorable_test(name, move || {
            if let Some(why) = root_missing("the audit makes namespaces and plants markers") {
                return not_run(why);
            }
            let (code, out, err) = audit_of(&script);
            let mut got = leaks(&out);
            // Whether the host's cgroup path shows depends on where the
            // test runs (at the root cgroup it is "/" either way).
            if name == "no_cgroup_namespace" {
                got.retain(|c| c != "cgroup path is rooted at the container's cgroup");
            }
            let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            want.sort();
            if got != want || code != i32::from(!want.is_empty()) {
                return Err(format!("exit {code}, leaks {got:?}, want {want:?}\n{out}\n{err}").into());
            }
            Ok(libtest_mimic::Completion::Completed)
        }));
    }
    trials.push(gated(
        "the_audit_leaves_nothing_behind",
        || root_missing("the audit"),
        nothing_left,
    ));
    trials.push(anywhere("bad_claims_and_configs_are_clear_errors", bad_input));
    trials.push(gated(
        "a_mount_the_runtime_makes_stays_off_the_machine",
        || root_missing("the audit"),
        runtime_mounts_stay_in,
    ));
    trials.push(gated(
        "an_interrupted_audit_ends_the_runtime",
        || root_missing("the audit"),
        interrupted,
    ));
    trials.push(gated(
        "a_config_json_runs_the_probe_and_the_command_line_gets_nothing",
        || root_missing("the audit"),
        config_runs_the_probe,
    ));
    trials.push(gated(
        "a_runtime_that_never_reports_is_ended_with_its_processes",
        || root_missing("the audit"),
        never_reports,
    ));
    run_trials(trials)
}

/// Markers live in the auditor's own namespaces: the machine's hostname,
/// links and IPC objects are as before.
fn nothing_left() {
    let state = || {
        let sh = |c: &str| {
            String::from_utf8_lossy(&Command::new("sh").args(["-c", c]).output().unwrap().stdout).into_owned()
        };
        (sh(
            "hostname; ip -o link | cut -d' ' -f2; ipcs -q | grep -c 0x6e736175; ls /dev/mqueue 2>/dev/null",
        ),)
    };
    let before = state();
    let (code, out, err) = audit_of(&wrapper(&ALL.replace("-n ", "").replace("-i ", ""), MAP, ""));
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(state(), before);
}

fn bad_input() {
    let o = Command::new(bin())
        .args(["audit", "--claims", "uts,nope", "--", "true"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("`nope` is no namespace type"), "{e}");
    let d = scratch();
    let f = d.path().join("config.json");
    std::fs::write(&f, "{\"linux\": {\"namespaces\": [{\"type\": 3}]}}").unwrap();
    let o = Command::new(bin())
        .args(["audit", "--config", f.to_str().unwrap(), "--", "true"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("config.json") && e.contains("linux.namespaces[0].type"),
        "{e}"
    );
    // A config whose command is not the probe, and a command line without
    // `{probe}`: nothing would ever report.
    std::fs::write(&f, r#"{"process": {"args": ["sh"]}, "linux": {"namespaces": []}}"#).unwrap();
    let o = Command::new(bin())
        .args(["audit", "--config", f.to_str().unwrap(), "--", "runc", "run", "x"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("config.json: field process.args") && e.contains("does not run the probe"),
        "{e}"
    );
}

/// As with `runc run ID`: the probe is the config's process.args and the
/// runtime takes no more arguments, so none may be appended (a runtime
/// given the probe's too would refuse them).
fn config_runs_the_probe() {
    let d = scratch();
    let f = d.path().join("config.json");
    std::fs::write(
        &f,
        r#"{"process": {"args": ["/nsconform", "audit", "--inside"]}, "linux": {"namespaces": [{"type": "uts"}]}}"#,
    )
    .unwrap();
    let runtime = format!("[ $# = 0 ] && exec unshare -u {} audit --inside", bin());
    let o = Command::new(bin())
        .args([
            "audit",
            "--json",
            "--config",
            f.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            &runtime,
        ])
        .output()
        .unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.contains(r#"{"type":"uts","claimed":true,"isolated":true,"verdict":"OK""#),
        "{out}"
    );
}

/// A runtime whose probe never reports: the audit gives up at its timeout
/// and ends every process the runtime started (they hold its pipes), rather
/// than waiting for them.
fn never_reports() {
    let start = std::time::Instant::now();
    let o = Command::new(bin())
        .args(["audit", "--timeout", "1", "--", "sh", "-c", "sleep 300 & sleep 300"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("no report from the probe within 1 s"), "{e}");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
}

/// On a host whose mounts are shared (systemd's), a mount the runtime makes
/// in its own namespace (the auditor's) must not reach the host. The test
/// plays the host in a mount namespace with shared propagation.
fn runtime_mounts_stay_in() {
    let d = scratch();
    let point = d.path().to_str().unwrap();
    let script = format!(
        "{bin} audit --claims none -- sh -c 'mount -t tmpfs nsconform-runtime {point} && exec {{probe}}' >/dev/null \
         && ! grep -q ' {point} ' /proc/self/mountinfo",
        bin = bin()
    );
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "shared", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the runtime's mount reached its caller's caller\n{}",
        text(&o)
    );
}

/// SIGTERM or SIGINT to the audit (a Ctrl-C reaches only its own process
/// group) ends the runtime too: it has a process group of its own, and a
/// container left running would hold its cgroups and state.
fn interrupted() {
    for sig in [nix::sys::signal::Signal::SIGTERM, nix::sys::signal::Signal::SIGINT] {
        // A sleep of a length that names this test (sleep takes a float).
        let tag = format!("300.{}{}", std::process::id(), sig as i32);
        let mut c = Command::new(bin())
            // A container in a session of its own (nspawn's) is out of the
            // runtime's group: it goes by the audit's token in its argv (its
            // pid namespace goes with its first process).
            .args([
                "audit",
                "--",
                "sh",
                "-c",
                &format!("setsid unshare -pf sh -c 'sleep 299; true' {{probe}} & exec sleep {tag}"),
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The runtime's own process (the audit's command line holds the tag too).
        let runtime = |tag: &str| -> Vec<i32> {
            let argv = format!("sleep\0{tag}\0");
            std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == argv.as_bytes()))
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        };
        let started = |tag: &str| !runtime(tag).is_empty();
        let probes = || -> Vec<i32> {
            std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter(|e| {
                    std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                        let c = String::from_utf8_lossy(&c).replace('\0', " ");
                        c.starts_with("sh -c sleep 299; true ") || c.starts_with("unshare -pf sh -c sleep 299")
                    })
                })
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        };
        let t = std::time::Instant::now();
        while !started(&tag) {
            assert!(t.elapsed().as_secs() < 10, "the runtime never started");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), sig).unwrap();
        let status = c.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(sig as i32));
        let t = std::time::Instant::now();
        while started(&tag) || !probes().is_empty() {
            if t.elapsed().as_secs() >= 2 {
                for p in runtime(&tag).into_iter().chain(probes()) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
                }
                panic!("the runtime outlived its audit ({sig})");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
