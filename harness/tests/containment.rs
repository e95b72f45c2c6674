//! A root case that undoes its sandbox's read-only mounts, mounts a cgroup
//! hierarchy or writes a global sysctl changes the machine: each such case
//! fails, naming the change, and what can be put back is.

mod common;
use common::*;
use libtest_mimic::{Arguments, Completion, Trial};

const ROOT_TRIALS: [&str; 1] = ["escapes_from_the_sandbox_fail_and_are_put_back"];

// Its own harness, so that a root-only test is reported ignored with its
// reason when not root, rather than "ok".
fn main() -> std::process::ExitCode {
    let trials = vec![
        Trial::ignorable_test(ROOT_TRIALS[0], || {
            if !is_root() {
                return not_run("needs root: an unprivileged run cannot make these escapes");
            }
            escapes_from_the_sandbox_fail_and_are_put_back();
            Ok(Completion::Completed)
        }),
        gated(
            "unprivileged_the_root_tests_are_ignored_or_required",
            || root_missing("switching to an ordinary user"),
            || root_trials_are_ignored_unprivileged(&ROOT_TRIALS),
        ),
    ];
    libtest_mimic::run(&Arguments::from_args(), trials).exit_code()
}

fn case(summary: &str, steps: &str) -> String {
    format!(
        r#"summary = "{summary}"
covers = ["M1"]
needs.root = true
control = {{ none = "a test of the harness" }}
[parent]
run = [
{steps}
]
"#
    )
}

/// Where the machine mounts its cgroup2 hierarchy.
fn cgroup2() -> Option<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .ok()?
        .lines()
        .find(|l| l.contains(" - cgroup2 "))
        .and_then(|l| l.split(' ').nth(4).map(String::from))
}

fn escapes_from_the_sandbox_fail_and_are_put_back() {
    let _serial = serial();
    let tag = format!("nsconform-escape-{}", std::process::id());
    let remounted = format!("/var/tmp/{tag}-remount");
    let setattr = format!("/var/tmp/{tag}-setattr");
    let cg = cgroup2().expect("a cgroup2 mount");
    let sysctl = "/proc/sys/kernel/printk_ratelimit_burst";
    let before = std::fs::read_to_string(sysctl).unwrap();
    let other = if before.trim() == "11" { "12" } else { "11" };
    let files = [
        (
            "mnt/remount.toml",
            case(
                "remounts / writable and writes under /var/tmp",
                &format!(
                    r#"{{ mount = {{ target = "/", flags = ["remount", "bind"] }} }},
{{ write = {{ path = "{remounted}", data = "x", create = true }} }},"#
                ),
            ),
        ),
        (
            "mnt/setattr.toml",
            case(
                "clears rdonly on / with mount_setattr and writes under /var/tmp",
                &format!(
                    r#"{{ mount_setattr = {{ path = "/", clear = ["rdonly"] }} }},
{{ write = {{ path = "{setattr}", data = "x", create = true }} }},"#
                ),
            ),
        ),
        (
            "cgroup/fresh.toml",
            case(
                "mounts cgroup2 afresh and makes a cgroup",
                &format!(
                    r#"{{ mount = {{ source = "cgroup2", target = "{{scratch}}/cg", fstype = "cgroup2", mkdir = true }} }},
{{ mkdir = "{{scratch}}/cg/{tag}-fresh" }},"#
                ),
            ),
        ),
        (
            "cgroup/remount.toml",
            case(
                "remounts the machine's cgroup2 writable and makes a cgroup",
                &format!(
                    r#"{{ mount = {{ target = "{cg}", flags = ["remount", "bind"] }} }},
{{ mkdir = "{cg}/{tag}-remount" }},"#
                ),
            ),
        ),
        (
            "user/sysctl.toml",
            case(
                "writes a global sysctl without restore",
                &format!(r#"{{ write = {{ path = "{sysctl}", data = "{other}" }} }},"#),
            ),
        ),
    ];
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let d = cases(&refs);
    let o = suite_on(d.path(), &[], &[]);
    let t = text(&o);
    // What landed on the disk is the test's to clean up, whatever happened.
    let landed: Vec<bool> = [&remounted, &setattr]
        .iter()
        .map(|p| std::fs::remove_file(p).is_ok())
        .collect();
    for (name, says) in [
        ("mnt::remount", format!("wrote {remounted}")),
        ("mnt::setattr", format!("wrote {setattr}")),
        ("cgroup::fresh", format!("created the cgroup {cg}/{tag}-fresh")),
        ("cgroup::remount", format!("created the cgroup {cg}/{tag}-remount")),
        ("user::sysctl", format!("{sysctl} changed from")),
    ] {
        assert_eq!(outcome(&t, name), Some("FAILED"), "{name}:\n{t}");
        let section = t.split(&format!("---- {name} ----")).nth(1).unwrap_or("");
        let section = section.split("\n---- ").next().unwrap_or("");
        assert!(section.contains("the case changed the machine"), "{name}:\n{t}");
        assert!(section.contains(&says), "{name} does not say {says:?}:\n{t}");
    }
    assert!(t.contains("removed it again"), "{t}");
    assert_eq!(landed, [true, true], "the writes should have reached the disk:\n{t}");
    for g in ["fresh", "remount"] {
        let p = format!("{cg}/{tag}-{g}");
        assert!(std::fs::metadata(&p).is_err(), "{p} was left on the machine");
    }
    assert_eq!(
        std::fs::read_to_string(sysctl).unwrap(),
        before,
        "{sysctl} not put back"
    );
}
