//! docs/cli.md: the reference of the command line, made from its clap
//! definition and the exit statuses' table, so that it cannot drift from
//! the code (a test compares the file with what this makes).

use crate::exit::{BY_COMMAND, CODES};
use std::fmt::Write;

/// How to make the file again, printed in it and by the test that finds it stale.
pub const REGENERATE: &str = "cargo run -q -- --cli-reference > docs/cli.md";

fn help(cmd: &mut clap::Command) -> String {
    // Plain text: clap adds no styles to a rendered help that is not printed.
    let text = cmd.render_long_help().to_string();
    text.lines().map(str::trim_end).collect::<Vec<_>>().join("\n")
}

fn exit_table(out: &mut String) {
    out.push_str("## Exit statuses\n\nEvery command exits with one of these (named in `harness/src/exit.rs`):\n\n");
    out.push_str("| status | name | meaning |\n|---|---|---|\n");
    for (e, meaning) in CODES {
        let _ = writeln!(out, "| {} | {} | {meaning} |", e.code(), e.name());
    }
    out.push_str(
        "\nAn interrupted `mutate` exits 128 + the signal's number, as a shell shows a death by signal.\n\n\
         What each command may return:\n\n| command | statuses |\n|---|---|\n",
    );
    for (command, returns) in BY_COMMAND {
        let codes: Vec<String> = returns.iter().map(|e| format!("{} ({})", e.code(), e.name())).collect();
        let _ = writeln!(out, "| `{command}` | {} |", codes.join(", "));
    }
}

/// The whole of docs/cli.md.
pub fn markdown() -> String {
    let mut cmd = super::commands::command();
    cmd.build();
    let mut out = String::from("# Command line reference\n\n");
    let _ = writeln!(
        out,
        "Made from the command line's definition; do not edit it by hand, run `{REGENERATE}`.\n\
         `cargo test` fails while it is out of date. What each output holds (the formats, the verdicts, \
         the records) is in [results.md](results.md).\n"
    );
    out.push_str("## Contents\n\n- [nsconform](#nsconform) (the suite)\n");
    for s in super::commands::SUBCOMMANDS {
        let _ = writeln!(out, "- [nsconform {0}](#nsconform-{0})", s.name);
    }
    out.push_str("- [Exit statuses](#exit-statuses)\n\n");
    let _ = write!(out, "## nsconform\n\n```text\n{}\n```\n\n", help(&mut cmd));
    for s in super::commands::SUBCOMMANDS {
        let Some(sub) = cmd.find_subcommand_mut(s.name) else {
            continue;
        };
        let _ = write!(out, "## nsconform {}\n\n```text\n{}\n```\n\n", s.name, help(sub));
    }
    exit_table(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_cli_md_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md");
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        let made = markdown();
        if on_disk != made {
            let first = on_disk
                .lines()
                .zip(made.lines())
                .position(|(a, b)| a != b)
                .map(|i| format!("first difference at line {}", i + 1))
                .unwrap_or_else(|| "one is a prefix of the other".into());
            panic!("docs/cli.md is not what the command line says ({first}): run `{REGENERATE}`");
        }
    }

    #[test]
    fn the_reference_names_every_command_and_status() {
        let md = markdown();
        for s in super::super::commands::SUBCOMMANDS {
            assert!(md.contains(&format!("## nsconform {}\n", s.name)), "{}", s.name);
        }
        for code in ["| 0 |", "| 1 |", "| 2 |", "| 3 |", "| 101 |", "| 124 |"] {
            assert!(md.contains(code), "{code}");
        }
        assert!(
            !md.contains("/work/") && !md.contains("/root/"),
            "no path of this machine"
        );
    }
}
