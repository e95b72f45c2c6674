//! The entry points of the `nsconform` binary and of the suite test target.
//! First the modes the harness re-executes itself in, each chosen by a
//! `--flag` as argv[1] (libtest's parser rejects it, so no filter can take
//! that route, and a container runtime passes argv as given where it may
//! not pass the environment); then, in the binary, the subcommands; then
//! the suite.

pub mod commands;
pub mod features;
pub mod reference;
pub mod suite;

use crate::exit::Exit;
use std::process::ExitCode;

// Kept here too for callers that name them through cli; they live in plan::env.
pub use crate::plan::env::{CASES_ENV, RUNNERS_ENV, cases_dir, runners_dir};

/// An internal mode's entry point, given argv from its flag on.
type Entry = fn(&[String]) -> ExitCode;

/// Each internal mode: its flag, and its entry point.
const INTERNAL: &[(&str, Entry)] = &[
    // A case's child started by an external runner.
    (crate::runner::probe_args::PROBE_ARG, |a| {
        ExitCode::from(crate::spawn::probe::main(a) as u8)
    }),
    // Capabilities and clock offsets after an execve, for the time cases.
    (crate::ops::time::HELPER_ARG, |a| {
        ExitCode::from(crate::ops::helper_main(a) as u8)
    }),
    // The VM's init.
    (crate::vm::guest::GUEST_ARG, |a| crate::vm::guest::main(&a[1..])),
    // The runsc container's init (`nsconform vm runsc`).
    (crate::vm::runsc::init::INIT_ARG, |a| {
        crate::vm::runsc::init::main(&a[1..])
    }),
];

fn internal(args: &[String]) -> Option<ExitCode> {
    let first = args.get(1)?;
    let (_, run) = INTERNAL.iter().find(|(flag, _)| flag == first)?;
    Some(run(&args[1..]))
}

fn clap_exit(e: clap::Error) -> ExitCode {
    // Help and --version on stdout with 0; errors on stderr with 2.
    let _ = e.print();
    ExitCode::from(e.exit_code().clamp(0, 255) as u8)
}

/// `main` of the `nsconform` binary.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(code) = internal(&args) {
        return code;
    }
    // A command parses its own arguments, so its errors name it.
    if let Some(sub) = args.get(1).and_then(|a| commands::find(a)) {
        return (sub.main)(&args[2..]);
    }
    if let Some(code) = misspelt_help(&args) {
        return code;
    }
    let mut m = match commands::command().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => return clap_exit(e),
    };
    if m.get_flag(commands::REFERENCE_FLAG) {
        print!("{}", reference::markdown());
        return Exit::Ok.into();
    }
    let suite_args = match crate::report::args::from_matches(&mut m) {
        Ok(a) => a,
        Err(e) => return clap_exit(e),
    };
    // A first word near a command's name that selects no trial is a slip.
    let first = args.get(1).map(String::as_str);
    let typo = first
        .filter(|w| suite_args.libtest.filter.as_deref() == Some(*w))
        .and_then(|w| crate::suggest::nearest(w, commands::names()).first().map(|c| (w, *c)));
    suite::run(suite_args, typo)
}

/// `help NAME` with a NAME that is no command but near one: clap says only
/// that it is unknown.
fn misspelt_help(args: &[String]) -> Option<ExitCode> {
    let [_, help, word, ..] = args else {
        return None;
    };
    if help != "help" || commands::find(word).is_some() {
        return None;
    }
    let meant = *crate::suggest::nearest(word, commands::names()).first()?;
    eprintln!("nsconform: no command `{word}`; did you mean `nsconform help {meant}`?");
    Some(Exit::Usage.into())
}

/// `main` of the suite test target (`cargo test`): the internal modes, then
/// the suite, every word of whose arguments is a filter.
pub fn test_main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(code) = internal(&args) {
        return code;
    }
    match crate::report::args::parse("suite", &args) {
        Ok(a) => suite::run(a, None),
        Err(e) => clap_exit(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No filter and no command line of the suite reaches an internal
    /// mode by another route: libtest's parser rejects each flag, so only
    /// argv[1] as the harness writes it selects one.
    #[test]
    fn internal_modes_are_flags_no_filter_can_be() {
        for (flag, _) in INTERNAL {
            assert!(flag.starts_with("--"), "{flag}");
            let argv = ["suite".to_string(), flag.to_string()];
            assert!(
                crate::report::args::parse("suite", &argv).is_err(),
                "{flag} parses as a suite argument"
            );
            assert!(commands::command().try_get_matches_from(&argv).is_err(), "{flag}");
            assert!(commands::find(flag).is_none());
        }
    }
}
