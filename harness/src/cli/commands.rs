//! The `nsconform` command line: the suite as the default command, and the
//! subcommands, each a name, its clap definition (for `--help`, `help
//! NAME` and docs/cli.md) and its entry point, which parses its own
//! arguments.

use clap::CommandFactory;
use std::process::ExitCode;

pub struct Subcommand {
    pub name: &'static str,
    pub command: fn() -> clap::Command,
    pub main: fn(&[String]) -> ExitCode,
}

pub const SUBCOMMANDS: &[Subcommand] = &[
    Subcommand {
        name: "features",
        command: super::features::Args::command,
        main: super::features::main,
    },
    Subcommand {
        name: "coverage",
        command: crate::coverage::Args::command,
        main: crate::coverage::main,
    },
    Subcommand {
        name: "controls",
        command: crate::controls::Args::command,
        main: crate::controls::main,
    },
    Subcommand {
        name: "mutate",
        command: crate::mutate::Args::command,
        main: crate::mutate::main,
    },
    Subcommand {
        name: "bench",
        command: crate::bench::Args::command,
        main: crate::bench::main,
    },
    Subcommand {
        name: "vm",
        command: crate::vm::VmArgs::command,
        main: vm,
    },
    Subcommand {
        name: "matrix",
        command: crate::vm::matrix::MatrixArgs::command,
        main: crate::vm::matrix::main,
    },
    Subcommand {
        name: "audit",
        command: crate::audit::Args::command,
        main: crate::audit::main,
    },
];

/// The subcommand called `name`.
pub fn find(name: &str) -> Option<&'static Subcommand> {
    SUBCOMMANDS.iter().find(|s| s.name == name)
}

pub fn names() -> impl Iterator<Item = &'static str> {
    SUBCOMMANDS.iter().map(|s| s.name)
}

/// `nsconform vm`, which runs a subcommand in the guest as it is and
/// renders the suite's records itself, so it must tell them apart.
fn vm(args: &[String]) -> ExitCode {
    crate::vm::main(args, |word| find(word).is_some())
}

const ABOUT: &str = "A conformance suite for Linux namespaces and the container runtimes that make them.\n\n\
Without a command, it runs the suite: one trial per case under cases/ and one per control, \
with libtest's options (a FILTER, --list, --exact, --skip, --test-threads ...).";

const AFTER: &str = "Under `cargo test` every argument is libtest's: a word is a filter, whatever it spells. \
Here a first word that names a command runs it; `nsconform -- WORD` runs the trials whose names hold WORD.\n\
Exit statuses: 0 ok, 1 findings, 2 usage, 3 machine changed, 101 trials failed, 124 timed out (docs/cli.md).";

/// `0.1.0 (commit 0123456789ab)`, or the version alone outside a git checkout.
pub fn version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| crate::record::Build::this().describe())
}

/// The hidden flag that prints docs/cli.md.
pub const REFERENCE_FLAG: &str = "cli-reference";

/// The whole command line, as clap knows it.
pub fn command() -> clap::Command {
    // The suite's arguments first: they bring settings of their own.
    let mut c = crate::report::args::augment(clap::Command::new("nsconform"))
        .version(version())
        .about(ABOUT)
        .after_help(AFTER)
        .args_conflicts_with_subcommands(true)
        .arg(
            clap::Arg::new(REFERENCE_FLAG)
                .long(REFERENCE_FLAG)
                .hide(true)
                .action(clap::ArgAction::SetTrue)
                .help("Print the command line's reference (docs/cli.md) as Markdown"),
        );
    for s in SUBCOMMANDS {
        c = c.subcommand((s.command)().name(s.name));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn help_lists_every_command_and_output_option() {
        let help = command().render_long_help().to_string();
        for s in SUBCOMMANDS {
            assert!(help.contains(&format!("  {}", s.name)), "{} missing:\n{help}", s.name);
        }
        for opt in ["--format", "ktap", "--junit", "--records", "--list", "--version"] {
            assert!(help.contains(opt), "{opt} missing:\n{help}");
        }
        assert!(!help.contains(REFERENCE_FLAG), "the hidden flag shows:\n{help}");
    }

    #[test]
    fn every_command_has_its_statuses_in_the_table() {
        let table: Vec<&str> = crate::exit::BY_COMMAND.iter().map(|(c, _)| *c).collect();
        for s in SUBCOMMANDS {
            assert!(table.contains(&s.name), "{} is not in exit::BY_COMMAND", s.name);
        }
        assert_eq!(table.len(), SUBCOMMANDS.len() + 1, "the suite and each command, once");
    }

    #[test]
    fn a_word_that_is_no_command_is_the_filter() {
        let m = command().try_get_matches_from(["nsconform", "uts::"]).expect("parses");
        assert!(m.subcommand().is_none());
        let m = command()
            .try_get_matches_from(["nsconform", "--", "vm"])
            .expect("parses");
        assert!(m.subcommand().is_none(), "after --, a command's name is a filter");
        let err = command()
            .try_get_matches_from(["nsconform", "--exact", "audit", "--inside"])
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
