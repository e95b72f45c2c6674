//! The suite run as an ordinary user: what needs no root runs and passes,
//! everything else is ignored with its reason.

mod common;
use common::*;

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
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

/// Run as root, the test switches to an ordinary user; run as one, it is
/// that user: the suite is run unprivileged either way, never skipped.
#[test]
fn the_unprivileged_run_passes_and_says_why_it_ignores() {
    let (name, uid, gid) = if is_root() {
        unprivileged_user()
    } else {
        ("this user".to_string(), nix::unistd::getuid(), nix::unistd::getgid())
    };
    // The user may not reach target/: run a copy from a directory it can read.
    let d = readable_tmp("nsconform-unpriv-");
    let exe = d.path().join("nsconform");
    std::fs::copy(bin(), &exe).unwrap();
    copy_dir(&project().join("cases"), &d.path().join("cases"));
    copy_dir(&project().join("runners"), &d.path().join("runners"));
    let mut c = std::process::Command::new(&exe);
    c.current_dir(d.path())
        .env("NSCONFORM_CASES", d.path().join("cases"))
        .env("NSCONFORM_RUNNERS", d.path().join("runners"));
    if is_root() {
        as_user(&mut c, uid, gid);
    }
    let o = c.output().unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let ignored: Vec<&str> = t.lines().filter(|l| l.contains("... ignored")).collect();
    assert!(!ignored.is_empty(), "nothing was ignored as {name}?\n{t}");
    for l in &ignored {
        assert!(
            l.contains("... ignored (") && l.trim_end().ends_with(')'),
            "ignored without a reason: {l}"
        );
    }
    let ran = t.lines().filter(|l| l.contains("... ok")).count();
    assert!(ran > 5, "too little ran as {name}:\n{t}");
}
