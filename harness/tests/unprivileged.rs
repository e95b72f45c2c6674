//! The suite run as an ordinary user: what needs no root runs as the user,
//! what needs root only over its own namespaces runs as root of a user
//! namespace of its own (and says so), and only what needs the initial user
//! namespace, a feature this kernel lacks or ids the run cannot map is
//! ignored, each with its true reason.

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// Who the unprivileged runs are: run as root, the test switches to an
/// ordinary user; run as one, it is that user. Never skipped.
fn who() -> (String, nix::unistd::Uid, nix::unistd::Gid) {
    if is_root() {
        unprivileged_user()
    } else {
        ("this user".to_string(), nix::unistd::getuid(), nix::unistd::getgid())
    }
}

/// The suite binary and a cases directory (`cases`, or the project's),
/// copied where the user can read them (it may not reach target/), run as
/// the user with `args` and `env`: the output's text and whether it passed.
fn run_unprivileged(cases: Option<&Path>, args: &[&str], env: &[(&str, &str)]) -> (String, bool) {
    let (_, uid, gid) = who();
    let d = readable_tmp("nsconform-unpriv-");
    let exe = d.path().join("nsconform");
    std::fs::copy(bin(), &exe).unwrap();
    copy_dir(cases.unwrap_or(&project().join("cases")), &d.path().join("cases"));
    copy_dir(&project().join("runners"), &d.path().join("runners"));
    let mut c = std::process::Command::new(&exe);
    c.args(args)
        .current_dir(d.path())
        .env("NSCONFORM_CASES", d.path().join("cases"))
        .env("NSCONFORM_RUNNERS", d.path().join("runners"));
    for (k, v) in env {
        c.env(k, v);
    }
    if is_root() {
        as_user(&mut c, uid, gid);
    }
    // A child another test's thread forked while the copy was open for
    // writing holds it a moment: exec is ETXTBSY until that child execs.
    for _ in 0..100 {
        match c.output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            o => {
                let o = o.unwrap();
                return (text(&o), o.status.success());
            }
        }
    }
    panic!("{}: still ETXTBSY after a second", exe.display());
}

/// libtest's counts: (passed, failed, ignored).
fn counts(t: &str) -> (usize, usize, usize) {
    let line = t
        .lines()
        .find(|l| l.starts_with("test result:"))
        .expect("a result line");
    let n = |what: &str| {
        line.split(';')
            .find_map(|p| p.trim().strip_suffix(what)?.trim().rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no `{what}` in {line}"))
    };
    (n("passed"), n("failed"), n("ignored"))
}

/// The reason of an ignored trial's line, without the parentheses.
fn reason(line: &str) -> &str {
    let (_, r) = line.split_once("... ignored (").expect("ignored with a reason");
    r.trim_end().strip_suffix(')').expect("the reason closes the line")
}

/// The text of every case file: where a declared reason must come from.
fn case_texts(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.push_str(&case_texts(&p));
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push_str(&std::fs::read_to_string(&p).unwrap());
        }
    }
    out
}

/// The features the kernel lacks, as a root run probes them: a feature
/// reason given unprivileged must name one of them (or be a probe that
/// needs root). None when not root, which cannot tell.
fn missing_as_root() -> Option<Vec<String>> {
    if !is_root() {
        return None;
    }
    let o = suite(&["features"], &[]);
    Some(
        text(&o)
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("no"))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect(),
    )
}

/// Why an unprivileged ignore reason is not a true one, if it is not.
fn untrue(reason: &str, cases: &str, missing: Option<&[String]>) -> Option<String> {
    if let Some(why) = reason.strip_prefix("needs root: ") {
        // Derived from what the case does, or declared in a case file
        // (needs.init_userns, control.root) with the reason.
        let derived = [
            "it changes the machine-wide /proc/sys/",
            "it mounts a cgroup hierarchy outside a cgroup namespace of its own",
        ];
        if derived.iter().any(|d| why.starts_with(d)) || cases.contains(&format!("\"{why}\"")) {
            return None;
        }
        return Some(format!("`{why}` is neither derived nor declared by a case"));
    }
    if reason.starts_with("needs id ") && reason.contains(" mapped in a user namespace of its own") {
        // Only where the run maps fewer ids than the case names.
        let id: u64 = reason["needs id ".len()..].split(' ').next()?.parse().ok()?;
        return match subordinate_count() {
            Some(n) if id <= n => Some(format!("the user has ids 1..={n}, yet id {id} was said to be missing")),
            _ => None,
        };
    }
    if let Some(rest) = reason.strip_prefix("needs `") {
        let feature = rest.split('`').next().unwrap_or_default();
        return match missing {
            Some(m) if !m.iter().any(|f| f == feature) => Some(format!(
                "`{feature}` is there as root; unprivileged it was said to be missing"
            )),
            _ => None,
        };
    }
    Some("not one of the reasons an unprivileged run gives".into())
}

/// The user's subordinate range, if the helpers are installed and
/// /etc/subuid and /etc/subgid both give one (by name or uid).
fn subordinate_count() -> Option<u64> {
    let (name, uid, _) = who();
    for tool in ["newuidmap", "newgidmap"] {
        which(tool)?;
    }
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or(name);
    let count = |file: &str| -> Option<u64> {
        std::fs::read_to_string(file).ok()?.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() == 3 && (f[0] == name || f[0] == uid.to_string())).then(|| f[2].parse().ok())?
        })
    };
    Some(count("/etc/subuid")?.min(count("/etc/subgid")?))
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

#[test]
fn the_unprivileged_run_checks_most_of_the_catalogue_and_says_why_it_ignores() {
    let (name, ..) = who();
    let (t, passed) = run_unprivileged(None, &[], &[]);
    assert!(passed, "{t}");
    let (ok, failed, ignored) = counts(&t);
    assert_eq!(failed, 0, "{t}");
    assert!(
        ok >= 300,
        "only {ok} trials ran and passed as {name} ({ignored} ignored):\n{t}"
    );
    let cases = case_texts(&project().join("cases"));
    let missing = missing_as_root();
    let mut wrong = Vec::new();
    for l in t.lines().filter(|l| l.contains("... ignored")) {
        assert!(
            l.contains("... ignored (") && l.trim_end().ends_with(')'),
            "ignored without a reason: {l}"
        );
        if let Some(why) = untrue(reason(l), &cases, missing.as_deref()) {
            wrong.push(format!("{l}\n    {why}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "ignored for reasons that are not true:\n{}",
        wrong.join("\n")
    );
    // Trials that need root only over their own namespaces ran, and say how.
    let userns = t
        .lines()
        .filter(|l| l.contains(":userns]") && l.contains("... ok"))
        .count();
    assert!(
        userns >= 200,
        "only {userns} trials ran as root of a user namespace of their own:\n{t}"
    );
}

/// Reads the initial user namespace's inode (fixed by the kernel): true
/// only in the initial user namespace.
const INITIAL_INODE: &str = r#"
[[case]]
name = "initial_user_inode"
summary = "the process is in the initial user namespace"
covers = ["N4"]
needs.root = true
needs.init_userns = "it reads the initial user namespace's inode"
control = { none = "reads an inode" }
child.expect = { ns_link.user = "user:[4026531837]" }
"#;

#[test]
fn a_case_that_needs_the_initial_user_namespace_is_ignored_unprivileged() {
    let d = cases(&[("api/initial.toml", INITIAL_INODE)]);
    let (t, passed) = run_unprivileged(Some(d.path()), &[], &[]);
    assert!(passed, "{t}");
    assert_eq!(outcome(&t, "api::initial_user_inode"), Some("ignored"), "{t}");
    assert!(
        t.contains("ignored (needs root: it reads the initial user namespace's inode)"),
        "not ignored with its declared reason:\n{t}"
    );
    // Without the declaration it runs as root of a user namespace of its
    // own, and fails: the declaration is what keeps it from a false verdict.
    let undeclared = INITIAL_INODE.replace(
        "needs.init_userns = \"it reads the initial user namespace's inode\"\n",
        "",
    );
    assert_ne!(undeclared, INITIAL_INODE);
    let d = cases(&[("api/initial.toml", &undeclared)]);
    let (t, passed) = run_unprivileged(Some(d.path()), &[], &[]);
    assert!(!passed, "{t}");
    assert_eq!(outcome(&t, "api::initial_user_inode"), Some("FAILED"), "{t}");
    assert!(t.contains("user:[4026531837]"), "{t}");
}

/// Sets a hostname in a new UTS namespace: root over that namespace, which
/// root of a user namespace of its own has.
const OWN_UTS: &str = r#"
[[case]]
name = "sets_its_hostname"
summary = "a hostname set in a new UTS namespace stays there"
covers = ["U1"]
child.namespaces = ["uts"]
child.run = [{ sethostname = "inner" }]
child.expect = { hostname = "inner" }
child.isolation = { ns.uts = "differs" }
parent.isolation = { hostname = "nsconform" }
"#;

#[test]
fn a_trial_run_in_a_user_namespace_of_its_own_says_so() {
    let d = cases(&[("uts/own.toml", OWN_UTS)]);
    let (t, passed) = run_unprivileged(Some(d.path()), &[], &[]);
    assert!(passed, "{t}");
    for (kind, name) in [
        ("case:userns", "uts::sets_its_hostname"),
        ("control:userns", "control::uts::sets_its_hostname"),
    ] {
        assert_eq!(outcome(&t, name), Some("ok"), "{t}");
        assert!(
            t.lines()
                .any(|l| l.starts_with(&format!("test [{kind}]")) && l.contains(name)),
            "{name} does not say it ran as root of a user namespace of its own:\n{t}"
        );
    }
    let (list, passed) = run_unprivileged(Some(d.path()), &["--list"], &[]);
    assert!(passed, "{list}");
    assert!(list.contains("[case:userns] uts::sets_its_hostname: test"), "{list}");
    // A failure says it too.
    let failing = OWN_UTS.replace(
        "hostname = \"inner\" }\nchild.isolation",
        "hostname = \"other\" }\nchild.isolation",
    );
    assert_ne!(failing, OWN_UTS);
    let d = cases(&[("uts/own.toml", &failing)]);
    let (t, passed) = run_unprivileged(Some(d.path()), &[], &[]);
    assert!(!passed, "{t}");
    assert!(
        t.contains("(run unprivileged, as root of a user namespace of its own)"),
        "the failure does not say how the trial ran:\n{t}"
    );
    // In a root run the same case runs as root, not in a user namespace.
    if is_root() {
        let o = suite_on(d.path(), &["--list"], &[]);
        assert!(text(&o).contains("[case] uts::sets_its_hostname: test"), "{}", text(&o));
    }
}

/// Drops to `{uid}` (1000) in a new UTS namespace: root of a user namespace
/// of its own can run it only where that namespace maps 1000 too.
const DROPS: &str = r#"
[[case]]
name = "drops_after_unshare"
summary = "a process that unshares UTS and drops its ids keeps the namespace"
covers = ["U1"]
control = { none = "the ids, not the namespace" }
child.namespaces = ["uts"]
child.run = [{ drop_privileges = true }]
child.expect = { uid = "{uid}" }
"#;

#[test]
fn without_subordinate_ids_a_case_that_needs_other_ids_is_ignored_with_the_reason() {
    let d = cases(&[("uts/drops.toml", DROPS)]);
    // No newuidmap on PATH: only root can be mapped, whatever /etc/subuid says.
    let empty = readable_tmp("nsconform-nopath-");
    let path = empty.path().to_str().unwrap();
    let (t, passed) = run_unprivileged(Some(d.path()), &[], &[("PATH", path)]);
    assert!(passed, "{t}");
    assert_eq!(outcome(&t, "uts::drops_after_unshare"), Some("ignored"), "{t}");
    assert!(
        t.contains("needs id 1000 mapped in a user namespace of its own (drop_privileges): only root is mapped there without newuidmap"),
        "{t}"
    );
    // With the helpers and a range, it runs (where the user has one).
    if subordinate_count().is_some_and(|n| n >= 1000) {
        let (t, passed) = run_unprivileged(Some(d.path()), &[], &[]);
        assert!(passed, "{t}");
        assert_eq!(outcome(&t, "uts::drops_after_unshare"), Some("ok"), "{t}");
        assert!(t.contains("[case:userns]"), "{t}");
    }
}

/// A hostile case run as root of a user namespace of its own: it remounts
/// `/` writable, then unmounts the sandbox's /tmp to write to the machine's.
const ESCAPE: &str = r#"
[[case]]
name = "escape"
summary = "a hostile case tries to write where the user may, outside its sandbox"
covers = ["M1"]
control = { none = "hostile" }
child.namespaces = ["uts"]
parent.run = [
  { mount = { target = "/", flags = ["remount", "bind"] }, may_fail = true, as = "remount" },
  { umount = "/tmp", may_fail = true, as = "uncover" },
  { write = { path = "DIR/escaped", data = "x", create = true }, may_fail = true, as = "write" },
]
parent.expect = { values.remount = "EPERM", values.write = "EROFS" }
"#;

#[test]
fn root_of_a_user_namespace_of_its_own_cannot_make_the_machine_writable() {
    use std::os::unix::fs::PermissionsExt;
    let out = readable_tmp("nsconform-escape-");
    std::fs::set_permissions(out.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let case = ESCAPE.replace("DIR", out.path().to_str().unwrap());
    let d = cases(&[("mnt/escape.toml", &case)]);
    let (t, passed) = run_unprivileged(Some(d.path()), &[], &[]);
    assert!(passed, "{t}");
    assert!(t.contains("[case:userns]"), "{t}");
    assert!(
        !out.path().join("escaped").exists(),
        "the case wrote outside its sandbox:\n{t}"
    );
}
