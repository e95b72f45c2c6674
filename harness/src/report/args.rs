//! The suite's arguments: libtest's (libtest-mimic's `Arguments`,
//! flattened) with `--format` widened to KTAP, plus `--junit` and
//! `--records`. The test target, the `nsconform` binary and the VM host
//! parse them the same way.

use clap::builder::EnumValueParser;
use clap::{Args, FromArgMatches};
use libtest_mimic::{Arguments, FormatSetting};
use std::path::PathBuf;

/// How the suite's results are shown on stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per trial, failures in full at the end (libtest's)
    #[default]
    Pretty,
    /// One character per trial (libtest's)
    Terse,
    /// libtest's JSON events, one a line
    Json,
    /// KTAP version 1, as kernel CI reads it (one subtest per area, numbered in name order)
    Ktap,
}

impl Format {
    /// libtest's setting for it; KTAP is written by the suite itself.
    pub fn libtest(self) -> Option<FormatSetting> {
        match self {
            Format::Pretty => Some(FormatSetting::Pretty),
            Format::Terse => Some(FormatSetting::Terse),
            Format::Json => Some(FormatSetting::Json),
            Format::Ktap => None,
        }
    }
}

#[derive(Args, Clone, Debug, Default)]
pub struct SuiteArgs {
    #[command(flatten)]
    pub libtest: Arguments,
    /// Also write the results as JUnit XML to FILE (for GitHub, GitLab, Jenkins)
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write each trial's record to FILE as a JSON line when it ends,
    /// between a line on the run and one on how it ended
    #[arg(long, value_name = "FILE")]
    pub records: Option<PathBuf>,
    /// The output format (`--format`, or `-q` for terse)
    #[arg(skip)]
    pub format: Format,
}

/// `cmd` with the suite's arguments: libtest's `--format` takes `ktap` too.
/// The settings libtest-mimic's `Arguments` gives a command of its own
/// (its help template and description, its note on threads, no
/// `--version`) are undone: here it is one part of a command line. Its
/// doc comments, written for Rust programmers, give way to the short help
/// it sets for each flag.
pub fn augment(cmd: clap::Command) -> clap::Command {
    SuiteArgs::augment_args(cmd)
        .help_template(None::<&'static str>)
        .long_about(None::<&'static str>)
        .after_help(None::<&'static str>)
        .disable_version_flag(false)
        .mut_args(|a| a.long_help(None::<&'static str>))
        .mut_arg("format", |a| {
            a.value_parser(EnumValueParser::<Format>::new())
                .value_name("pretty|terse|json|ktap")
                .help("The output format")
        })
}

/// The suite's arguments out of matches made by a command [`augment`]ed.
pub fn from_matches(m: &mut clap::ArgMatches) -> Result<SuiteArgs, clap::Error> {
    // Taken out first, as the widened type; libtest's own field then reads none.
    let format = m.remove_one::<Format>("format");
    let mut a = SuiteArgs::from_arg_matches_mut(m)?;
    a.format = match format {
        Some(f) => f,
        None if a.libtest.quiet => Format::Terse,
        None => Format::Pretty,
    };
    a.libtest.format = a.format.libtest();
    Ok(a)
}

/// Parse `argv` (program name first) as the suite's arguments alone: under
/// `cargo test` every word is a filter, whatever it spells.
pub fn parse(name: &'static str, argv: &[String]) -> Result<SuiteArgs, clap::Error> {
    let cmd = augment(clap::Command::new(name));
    let mut m = cmd.try_get_matches_from(argv)?;
    from_matches(&mut m)
}

impl SuiteArgs {
    /// The arguments that choose and run trials, for a suite run elsewhere
    /// (in a VM) whose output this process renders: output options left out.
    pub fn selection_argv(&self) -> Vec<String> {
        let l = &self.libtest;
        let mut v = Vec::new();
        let flags = [
            (l.list, "--list"),
            (l.exact, "--exact"),
            (l.ignored, "--ignored"),
            (l.include_ignored, "--include-ignored"),
        ];
        v.extend(flags.iter().filter(|(on, _)| *on).map(|(_, f)| f.to_string()));
        for s in &l.skip {
            v.extend(["--skip".to_string(), s.clone()]);
        }
        if let Some(n) = l.test_threads {
            v.extend(["--test-threads".to_string(), n.to_string()]);
        }
        if let Some(f) = &l.filter {
            // After `--`, so a filter that looks like an option stays a filter.
            v.extend(["--".to_string(), f.clone()]);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<SuiteArgs, clap::Error> {
        let argv: Vec<String> = std::iter::once("suite")
            .chain(a.iter().copied())
            .map(String::from)
            .collect();
        parse("suite", &argv)
    }

    #[test]
    fn every_format_parses_and_ktap_is_the_suites_own() {
        assert_eq!(args(&[]).unwrap().format, Format::Pretty);
        assert_eq!(args(&["-q"]).unwrap().format, Format::Terse);
        let k = args(&["--format", "ktap", "uts::"]).unwrap();
        assert_eq!(k.format, Format::Ktap);
        assert_eq!(k.libtest.format, None);
        assert_eq!(k.libtest.filter.as_deref(), Some("uts::"));
        let j = args(&["--format=json"]).unwrap();
        assert_eq!(j.libtest.format, Some(FormatSetting::Json));
        assert!(args(&["--format", "xml"]).is_err());
        assert!(args(&["-q", "--format", "json"]).is_err(), "libtest's conflict stays");
    }

    #[test]
    fn every_word_is_a_filter() {
        for w in ["features", "audit", "vm", "mutate", "help"] {
            assert_eq!(args(&[w]).unwrap().libtest.filter.as_deref(), Some(w));
        }
    }

    #[test]
    fn the_selection_survives_a_round_trip() {
        let a = args(&[
            "--exact", "--skip", "x", "--junit", "j.xml", "--format", "ktap", "--", "--odd",
        ])
        .unwrap();
        let again = args(&a.selection_argv().iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
        assert_eq!(again.libtest.filter.as_deref(), Some("--odd"));
        assert!(again.libtest.exact && again.libtest.skip == ["x"]);
        assert_eq!(again.junit, None);
        assert_eq!(again.format, Format::Pretty);
    }
}
