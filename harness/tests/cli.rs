//! The `nsconform` command line as a user meets it: `--help` lists every
//! command and output option, `--version` names the build, `help NAME` and
//! `features --help` print help without running anything, a misspelt
//! command is an error that names the command meant, and `features --json`
//! is JSON.

use std::path::Path;
use std::process::{Command, Output};

fn nsconform(args: &[&str], cases: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nsconform"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("NSCONFORM_")) {
        c.env_remove(k);
    }
    c.args(args).env(
        "NSCONFORM_RUNNERS",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("runners"),
    );
    if let Some(d) = cases {
        c.env("NSCONFORM_CASES", d);
    }
    c.output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const COMMANDS: [&str; 8] = [
    "features", "coverage", "controls", "mutate", "bench", "vm", "matrix", "audit",
];

#[test]
fn help_lists_every_command_and_output_option() {
    let o = nsconform(&["--help"], None);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    for c in COMMANDS {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(&format!("{c} "))),
            "{c}:\n{text}"
        );
    }
    for opt in [
        "--format <pretty|terse|json|ktap>",
        "--junit <FILE>",
        "--records <FILE>",
        "--list",
        "--version",
    ] {
        assert!(text.contains(opt), "{opt}:\n{text}");
    }
}

#[test]
fn version_names_the_build() {
    let o = nsconform(&["--version"], None);
    assert_eq!(o.status.code(), Some(0));
    let v = stdout(&o);
    assert!(
        v.starts_with(&format!("nsconform {}", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
}

#[test]
fn help_of_a_command_runs_nothing() {
    let o = nsconform(&["help", "vm"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("Usage: nsconform vm"), "{}", stdout(&o));
    let o = nsconform(&["features", "--help"], None);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(
        text.contains("Usage: nsconform features") && text.contains("--json"),
        "{text}"
    );
    assert!(!text.contains("ns.uts"), "the probes ran:\n{text}");
}

#[test]
fn a_misspelt_command_is_an_error_naming_the_command() {
    let empty = tempfile::Builder::new()
        .prefix("nsconform-test-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    for (typo, meant) in [("covrage", "coverage"), ("contorls", "controls"), ("vn", "vm")] {
        let o = nsconform(&[typo], Some(empty.path()));
        assert_eq!(o.status.code(), Some(2), "{typo}: {}{}", stdout(&o), stderr(&o));
        assert!(
            stderr(&o).contains(&format!("nsconform {meant}")),
            "{typo}: {}",
            stderr(&o)
        );
        assert!(!stdout(&o).contains("running"), "{typo}: trials ran\n{}", stdout(&o));
    }
    // After `--` a word is a filter whatever it spells; selecting nothing is no error.
    let o = nsconform(&["--", "covrage"], Some(empty.path()));
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = nsconform(&["--bogus"], Some(empty.path()));
    assert_eq!(o.status.code(), Some(2));
    let o = nsconform(&["help", "covrage"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nsconform help coverage"), "{}", stderr(&o));
}

#[test]
fn features_as_json() {
    let o = nsconform(&["features", "--json"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let features = v["features"].as_array().expect("a list of features");
    assert!(
        features
            .iter()
            .any(|f| f["name"] == "ns.uts" && f["present"].is_boolean()),
        "{v}"
    );
}

#[test]
fn matrix_with_a_kernel_as_its_filter_says_how_to_choose_kernels() {
    let o = nsconform(&["matrix", "6.1"], None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--kernels 6.1"), "{}", stderr(&o));
}
