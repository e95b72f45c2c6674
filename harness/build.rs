//! Link arguments (the code on huge page boundaries), and the git commit
//! the binary is built from, for `nsconform --version` and the run records:
//! `NSCONFORM_COMMIT` at compile time, left unset outside a git checkout (a
//! source tarball) or without git.

use std::path::Path;
use std::process::Command;

/// The code segment starting on a 2 MiB boundary, and the next segment on
/// the next one, so that `spawn::hugetext` can put all the code on huge
/// pages, the gap up to that boundary included (a copy with small pages at
/// either end costs every fork a page table entry per 4 KiB of them).
/// Only for the dynamically linked Linux build the host runs; the VM
/// guest's static build stays compact.
fn align_code_to_huge_pages() {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_FEATURE").split(',').any(|f| f == "crt-static") {
        return;
    }
    println!("cargo:rustc-link-arg=-Wl,-z,max-page-size=0x200000");
    println!("cargo:rustc-link-arg=-Wl,-z,separate-code");
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !s.trim().is_empty()).then(|| s.trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=harness/build.rs");
    align_code_to_huge_pages();
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return;
    };
    println!("cargo:rustc-env=NSCONFORM_COMMIT={commit}");
    // Built again when HEAD moves: HEAD itself, the branch it names, and the
    // packed refs. Only files that exist: cargo reruns the script on every
    // build for a path that is missing.
    let mut watch = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(git(&["rev-parse", "--git-path", &branch]));
    }
    watch.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for p in watch.into_iter().flatten() {
        if Path::new(&p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}
