//! The suite run as an ordinary user: what needs no root runs and passes,
//! everything else is ignored with its reason.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;

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

#[test]
fn the_unprivileged_run_passes_and_says_why_it_ignores() {
    if !is_root() {
        eprintln!("skipped: switching to an unprivileged user needs root (run the suite as yourself instead)");
        return;
    }
    // A user .ci/run creates, or else ids no account uses: the kernel needs no
    // passwd entry, and nobody (65534) would look like an unmapped id.
    let (name, uid, gid) = match std::env::var("NSCONFORM_UNPRIV_USER") {
        Ok(name) => match nix::unistd::User::from_name(&name) {
            Ok(Some(u)) => (name, u.uid, u.gid),
            _ => panic!("NSCONFORM_UNPRIV_USER={name}: no such user"),
        },
        Err(_) => (
            "uid 61234".to_string(),
            nix::unistd::Uid::from_raw(61234),
            nix::unistd::Gid::from_raw(61234),
        ),
    };
    // The user may not reach target/: run a copy from a directory it can read.
    let d = tempfile::Builder::new()
        .prefix("nsconform-unpriv-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = d.path().join("nsconform");
    std::fs::copy(bin(), &exe).unwrap();
    copy_dir(&project().join("cases"), &d.path().join("cases"));
    copy_dir(&project().join("runners"), &d.path().join("runners"));
    let o = unsafe {
        std::process::Command::new(&exe)
            .current_dir(d.path())
            .env("NSCONFORM_CASES", d.path().join("cases"))
            .env("NSCONFORM_RUNNERS", d.path().join("runners"))
            .pre_exec(move || {
                nix::unistd::setgroups(&[])?;
                nix::unistd::setgid(gid)?;
                nix::unistd::setuid(uid)?;
                Ok(())
            })
            .output()
            .unwrap()
    };
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
