//! `nsconform controls`: run every control and say, for each, which
//! isolation assertions flipped and which step outcomes differed as the case
//! declares (libtest-mimic prints nothing for a trial that passed), then
//! count the controls that ran another case than theirs: a step's outcome or
//! a process's end differed undeclared, or an `expect` no longer held. The
//! target for that count is none.

use crate::compare;
use crate::outcome::Row;
use crate::plan::{self, Features, RunEnv, TrialSpec};
use crate::report::{self, Outcome, format};
use crate::spawn::zygote::Zygote;
use std::fmt::Write;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What one control showed.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Kind {
    /// Only isolation assertions flipped, each on an observed value.
    Proves,
    /// It ran another case: a step or an exit differed undeclared, or an expect broke.
    RanAnother,
    /// Some isolation assertion held or was not observed.
    ShowsNothing,
    /// Timed out, no report, or harness errors.
    CouldNotRun,
}

/// Counts over a run, in the order of `Kind`, plus ignored and declared.
#[derive(Default, Debug)]
pub struct Tally {
    pub proves: usize,
    pub with_declared: usize,
    pub ran_another: usize,
    pub shows_nothing: usize,
    pub could_not_run: usize,
    pub ignored: usize,
}

fn row_line(r: &Row) -> String {
    let place = if r.at == "end" {
        r.proc_label.clone()
    } else {
        format!("{} ({})", r.proc_label, r.at)
    };
    format!("{place} {}: expected {}, observed {}", r.key, r.expected, r.observed)
}

/// One control's account, and what kind it is.
pub fn describe(spec: &TrialSpec, out: &Result<Outcome, String>) -> (Kind, String) {
    let mut s = String::new();
    let _ = writeln!(s, "{} ({})", spec.name, report::without(spec));
    let report = match out {
        Ok(o) if o.timed_out => None,
        Ok(o) => o.report.as_ref(),
        Err(_) => None,
    };
    let Some(report) = report.filter(|r| r.errors.is_empty()) else {
        let why = match out {
            Err(e) => e.clone(),
            Ok(o) => match report::judge(spec, o) {
                Err(f) => format!("{f:?}"),
                Ok(()) => "no report".into(),
            },
        };
        let _ = writeln!(s, "  could not run: {}", why.lines().next().unwrap_or(""));
        return (Kind::CouldNotRun, s);
    };
    let verdict = compare::Verdict {
        rows: report.verdict.clone(),
    };
    let rows = verdict.control();
    for r in &rows.flipped {
        let _ = writeln!(s, "  flipped: {}", row_line(r));
    }
    for d in &report.declared {
        let _ = writeln!(s, "  declared: {}", format::declared_line(d));
    }
    for f in &report.failures {
        let _ = writeln!(s, "  UNDECLARED: {}", format::failure_line(f));
    }
    for r in &rows.broken {
        let _ = writeln!(s, "  EXPECT NO LONGER HELD: {}", row_line(r));
    }
    for r in &rows.held {
        let _ = writeln!(s, "  STILL HELD: {}", row_line(r));
    }
    for r in &rows.unobserved {
        let _ = writeln!(s, "  NOT OBSERVED: {}", row_line(r));
    }
    let kind = if !report.failures.is_empty() || !rows.broken.is_empty() {
        Kind::RanAnother
    } else if !rows.held.is_empty() || !rows.unobserved.is_empty() {
        Kind::ShowsNothing
    } else {
        Kind::Proves
    };
    (kind, s)
}

impl Tally {
    pub fn add(&mut self, kind: Kind, declared: bool) {
        match kind {
            Kind::Proves => {
                self.proves += 1;
                self.with_declared += declared as usize;
            }
            Kind::RanAnother => self.ran_another += 1,
            Kind::ShowsNothing => self.shows_nothing += 1,
            Kind::CouldNotRun => self.could_not_run += 1,
        }
    }

    pub fn summary(&self) -> String {
        let run = self.proves + self.ran_another + self.shows_nothing + self.could_not_run;
        format!(
            "{run} controls run ({} ignored): {} prove their isolation assertions ({} of them with declared differences); \
             {} flip only because the set-up failed or the run diverged undeclared [target: none]; \
             {} have isolation assertions that held or were not observed; {} could not run",
            self.ignored, self.proves, self.with_declared, self.ran_another, self.shows_nothing, self.could_not_run
        )
    }

    pub fn clean(&self) -> bool {
        self.ran_another == 0 && self.shows_nothing == 0 && self.could_not_run == 0
    }
}

/// Run every control and say, for each, which isolation assertions flipped
/// and which step outcomes differed from its case's.
#[derive(clap::Parser, Debug)]
#[command(name = "nsconform controls")]
pub struct Args {
    /// Only the controls whose trial name contains FILTER.
    filter: Option<String>,
}

pub fn main(args: &[String]) -> ExitCode {
    let filter = match crate::plan::env::parse_args::<Args>("controls", args) {
        Ok(a) => a.filter,
        Err(code) => return code,
    };
    match run(filter.as_deref()) {
        Ok((text, tally)) => {
            print!("{text}");
            println!("{}", tally.summary());
            if tally.clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("nsconform controls: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(filter: Option<&str>) -> Result<(String, Tally), String> {
    let mut env = RunEnv::detect();
    let runner = crate::runner::select(&crate::plan::env::runners_dir())?;
    let features = Features::probe(env.privileged);
    if features.check("pidns_pid_max").is_ok() {
        env.sandbox_pid_max = Some(plan::env::SANDBOX_PID_MAX);
    }
    let _ = crate::load::Catalogue::builtin();
    crate::machine::global_state::block_interrupts();
    let zygote = Zygote::start(&env, runner.as_ref()).map_err(|e| format!("cannot start the zygote: {e}"))?;
    env.subids = env.subids.filter(|_| zygote.subids() > 0);
    let (specs, errors) =
        plan::plan_dir(&crate::plan::env::cases_dir(), &features, &env, runner.as_ref()).map_err(|e| e.to_string())?;
    if let Some(e) = errors.first() {
        return Err(format!("{} case file(s) do not load; the first: {e}", errors.len()));
    }
    crate::machine::global_state::watch_interrupts();
    let controls: Vec<&TrialSpec> = specs
        .iter()
        .filter(|s| s.control && filter.is_none_or(|f| s.name.contains(f)))
        .collect();
    let mut tally = Tally::default();
    let runnable: Vec<&TrialSpec> = controls.iter().copied().filter(|s| s.ignore.is_none()).collect();
    tally.ignored = controls.len() - runnable.len();
    let results: Mutex<Vec<Option<Result<Outcome, String>>>> = Mutex::new((0..runnable.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) * 2;
    std::thread::scope(|sc| {
        for _ in 0..threads.min(runnable.len()).max(1) {
            sc.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(spec) = runnable.get(i) else { break };
                    let out = run_one(&zygote, spec, env.privileged);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(out);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut text = String::new();
    for (spec, out) in runnable.iter().zip(results) {
        let out = out.unwrap_or_else(|| Err("not run".into()));
        let (kind, s) = describe(spec, &out);
        let declared = out
            .as_ref()
            .ok()
            .and_then(|o| o.report.as_ref())
            .is_some_and(|r| !r.declared.is_empty());
        tally.add(kind, declared);
        text.push_str(&s);
    }
    Ok((text, tally))
}

/// One control, as the suite runs it (`report::run_guarded`): a control
/// that changed the machine is a failure naming the change.
fn run_one(zygote: &Zygote, spec: &TrialSpec, privileged: bool) -> Result<Outcome, String> {
    let (out, changed) = report::run_guarded(zygote, spec, privileged)?;
    match crate::machine::failure(&changed) {
        Some(m) => Err(m),
        None => Ok(out),
    }
}

#[cfg(test)]
mod args_tests {
    use super::Args;
    use clap::Parser;

    #[test]
    fn controls_take_one_filter() {
        assert_eq!(
            Args::try_parse_from(["c", "uts"]).expect("a filter").filter.as_deref(),
            Some("uts")
        );
        assert_eq!(Args::try_parse_from(["c", "a", "b"]).unwrap_err().exit_code(), 2);
        assert_eq!(Args::try_parse_from(["c", "--bogus"]).unwrap_err().exit_code(), 2);
    }
}
