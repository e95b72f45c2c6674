//! Entry point shared by `cargo test` (the suite test target) and the
//! `nsconform` binary: internal modes first, then the libtest-mimic suite.

use crate::load;
use crate::machine;
use crate::plan::{self, Features, RunEnv};
use crate::report;
use crate::runner;
use crate::spawn::zygote::Zygote;
use libtest_mimic::{Arguments, Completion, Trial};
use std::process::ExitCode;
use std::sync::Arc;

// Kept here too for callers that name them through cli; they live in plan::env.
pub use crate::plan::env::{CASES_ENV, RUNNERS_ENV, cases_dir, runners_dir};

/// `main` of both binaries.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some(crate::runner::probe_args::PROBE_ARG) => {
            return ExitCode::from(crate::spawn::probe::main(&args[1..]) as u8);
        }
        Some("features") => return features(),
        Some(crate::ops::time::HELPER_ARG) => return ExitCode::from(crate::ops::helper_main(&args[1..]) as u8),
        Some("coverage") => return crate::coverage::main(&args[2..]),
        Some("controls") => return crate::controls::main(&args[2..]),
        Some("mutate") => return crate::mutate::main(&args[2..]),
        Some("bench") => return crate::bench::main(&args[2..]),
        Some("audit") => return crate::audit::main(&args[2..]),
        Some("vm") => return crate::vm::main(&args[2..]),
        Some("matrix") => return crate::vm::matrix::main(&args[2..]),
        Some(crate::vm::guest::GUEST_ARG) => return crate::vm::guest::main(&args[2..]),
        Some(crate::vm::runsc::init::INIT_ARG) => return crate::vm::runsc::init::main(&args[2..]),
        _ if crate::vm::results::requested(&args) => return crate::vm::results::suite_main(&args),
        _ => {}
    }
    suite()
}

fn features() -> ExitCode {
    let env = RunEnv::detect();
    let f = Features::probe(env.privileged);
    for (name, what) in plan::features::FEATURES {
        match f.check(name) {
            Ok(()) => println!("{name:<22} yes  ({what})"),
            Err(why) => println!("{name:<22} no   {why}"),
        }
    }
    ExitCode::SUCCESS
}

/// Run the suite under libtest-mimic's command line.
pub fn suite() -> ExitCode {
    let mut args = Arguments::from_args();
    let unknown = plan::features::unknown_pretended();
    if !unknown.is_empty() {
        eprintln!(
            "nsconform: {} names no feature: {} (`nsconform features` lists them)",
            plan::features::PRETEND_ENV,
            unknown.join(", ")
        );
        return ExitCode::from(2);
    }
    let mut env = RunEnv::detect();
    let mut trials: Vec<Trial> = Vec::new();
    let runner: Arc<dyn runner::Runner> = match runner::select(&runners_dir()) {
        Ok(r) => Arc::from(r),
        Err(e) => {
            trials.push(Trial::test("runner::select", move || Err(e.clone().into())));
            return libtest_mimic::run(&args, trials).exit_code();
        }
    };
    // Probed for a listing too (about 9 ms, once per list): the list marks the
    // trials that cannot run here ignored, which is how nextest and other
    // runners that list first learn to skip them.
    let features = Features::probe(env.privileged);
    if features.check("pidns_pid_max").is_ok() {
        env.sandbox_pid_max = Some(plan::env::SANDBOX_PID_MAX);
    }
    // The zygote before the cases are loaded, so that it (and every sandbox
    // it forks) stays small however many cases there are.
    let zygote = if args.list {
        None
    } else {
        // Parsed once here, so no sandbox parses it again.
        let _ = crate::load::Catalogue::builtin();
        crate::machine::global_state::block_interrupts();
        match Zygote::start(&env, runner.as_ref()) {
            Ok(z) => {
                env.subids = env.subids.filter(|_| z.subids() > 0);
                Some(Arc::new(z))
            }
            Err(e) => {
                eprintln!("nsconform: cannot start the zygote: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let (specs, errors) = match plan::plan_dir(&cases_dir(), &features, &env, runner.as_ref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nsconform: {e}");
            return ExitCode::from(2);
        }
    };
    // One bad file is one failing trial; every other case still runs.
    let mut names = std::collections::HashSet::new();
    for e in &errors {
        let mut name = load_error_name(e);
        if !names.insert(name.clone()) {
            name = format!("{name}::line{}", e.line);
            names.insert(name.clone());
        }
        let msg = e.to_string();
        trials.push(Trial::test(name, move || Err(msg.into())).with_kind("load"));
    }
    if zygote.is_some() {
        crate::machine::global_state::watch_interrupts();
    }
    // The machine's global settings as the run found them (under the lock,
    // so not in the middle of another run's declared change).
    let privileged = env.privileged;
    let baseline = (zygote.is_some() && privileged).then(|| {
        let _lock = crate::machine::global_state::Lock::take(false);
        machine::sysctl::Snapshot::take()
    });
    let specs = Arc::new(specs);
    let timings = Arc::new(report::timings::Timings::from_env());
    for (index, spec) in specs.iter().enumerate() {
        // A trial run as root of a user namespace of its own says so in the
        // run's lines and in --list (`cargo test -- userns` selects them).
        let kind = match (spec.control, spec.userns) {
            (false, false) => "case",
            (true, false) => "control",
            (false, true) => "case:userns",
            (true, true) => "control:userns",
        };
        if let Some(reason) = &spec.ignore {
            trials.push(cannot_run_here(spec.name.clone(), kind, reason.clone(), &args));
            continue;
        }
        let (specs, zygote, timings) = (specs.clone(), zygote.clone(), timings.clone());
        trials.push(
            Trial::ignorable_test(spec.name.clone(), move || {
                let spec = &specs[index];
                let zygote = zygote.as_ref().ok_or("no zygote")?;
                let started = std::time::Instant::now();
                let (out, changed) = report::run_guarded(zygote, spec, privileged)?;
                // An undeclared change to the machine fails the trial, whatever else it showed.
                let verdict = report::judge_guarded(spec, &out, &changed);
                if let Some(t) = timings.as_ref() {
                    t.record(spec, started.elapsed(), &out);
                }
                verdict.map(|()| Completion::Completed)
            })
            .with_kind(kind),
        );
    }
    // Trials mostly wait on the kernel and their sandboxes: more threads than CPUs pay off.
    if args.test_threads.is_none() {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        args.test_threads = Some((cpus * 2).max(2));
    }
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(t) = timings.as_ref() {
        t.finish();
    }
    // Anything no trial was checked for (a case that hid the write from
    // `may_write`) still fails the run, named and put back.
    if let Some(b) = baseline {
        let _lock = crate::machine::global_state::Lock::take(false);
        let changed = b.put_back();
        if !changed.is_empty() {
            eprintln!("nsconform: global settings changed during the run by a trial that was not checked for it:");
            for c in &changed {
                eprintln!("  {c}");
            }
            return ExitCode::from(101);
        }
    }
    conclusion.exit_code()
}

/// A trial the start-up probe found cannot run here. The list marks it
/// ignored, so a runner that lists first (nextest) skips it. A run prints it
/// ignored with the reason: libtest-mimic prints a reason only for an ignore
/// decided at run time, so the flag stays off there (`--exact NAME` still
/// reports it ignored, not passed). Asked for by `--ignored` or
/// `--include-ignored`, it fails with the reason: passing or quietly
/// ignoring it would read as "ran" under nextest, which judges by exit code.
fn cannot_run_here(name: String, kind: &str, reason: String, args: &Arguments) -> Trial {
    let asked = args.ignored || args.include_ignored;
    Trial::ignorable_test(name, move || {
        if asked {
            Err(format!("asked to run ignored trials, but this one cannot run here: {reason}").into())
        } else {
            Ok(Completion::ignored_with(reason))
        }
    })
    .with_kind(kind)
    .with_ignored_flag(args.list || asked)
}

fn load_error_name(e: &load::LoadError) -> String {
    let area = e
        .file
        .parent()
        .and_then(|p| p.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cases".into());
    let stem = e
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Apart from case names, which a file's stem may well equal.
    format!("load::{area}::{stem}")
}
