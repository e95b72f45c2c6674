//! The suite: one libtest-mimic trial per case and per control. Each trial
//! makes its record once, where it runs; libtest prints its outcome from
//! it, and KTAP, JUnit and `--records` are written from the same records.

use crate::exit::Exit;
use crate::load;
use crate::machine;
use crate::plan::{self, Blocked, Features, RunEnv, TrialSpec};
use crate::record::stream::Line;
use crate::record::{About, Kind, Planned, RunRecord, Status, TrialRecord, Verdict};
use crate::report::args::{Format, SuiteArgs};
use crate::report::render;
use crate::report::trial::Recorder;
use crate::runner::Runner;
use crate::spawn::zygote::Zygote;
use libtest_mimic::{Arguments, Trial};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// The trials of a run with what each is before it runs, in the same order.
struct Built {
    trials: Vec<Trial>,
    planned: Vec<Planned>,
}

impl Built {
    fn push(&mut self, trial: Trial, planned: Planned) {
        self.trials.push(trial);
        self.planned.push(planned);
    }

    /// A trial whose record is known before it runs (a file that did not load).
    fn fixed(&mut self, record: TrialRecord, recorder: &Arc<Recorder>) {
        let planned = planned(&record.name, record.kind, record.userns, None);
        let kind = record.libtest_kind();
        let recorder = recorder.clone();
        let trial = Trial::ignorable_test(record.name.clone(), move || recorder.keep(record)).with_kind(kind);
        self.push(trial, planned);
    }
}

fn planned(name: &str, kind: Kind, userns: bool, ignored: Option<String>) -> Planned {
    Planned {
        name: name.to_string(),
        kind,
        userns,
        ignored,
    }
}

/// What the trials share: where records go, the zygote, the guard of the machine.
struct Shared {
    recorder: Arc<Recorder>,
    zygote: Option<Arc<Zygote>>,
    privileged: bool,
    timings: Arc<Option<crate::report::timings::Timings>>,
}

/// Run the suite with `args`. `typo` is a first argument that looks like a
/// misspelt command: an error if it selects no trial.
pub fn run(args: SuiteArgs, typo: Option<(&str, &str)>) -> ExitCode {
    let unknown = plan::features::unknown_pretended();
    if !unknown.is_empty() {
        eprintln!(
            "nsconform: {} names no feature: {} (`nsconform features` lists them)",
            plan::features::PRETEND_ENV,
            unknown.join(", ")
        );
        return Exit::Usage.into();
    }
    let recorder = match Recorder::open(args.records.as_deref()) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!("nsconform: {e}");
            return Exit::Usage.into();
        }
    };
    let mut env = RunEnv::detect();
    let runner: Arc<dyn Runner> = match crate::runner::select(&crate::plan::env::runners_dir()) {
        Ok(r) => Arc::from(r),
        Err(e) => return without_runner(&args, env.privileged, recorder, e),
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
    let zygote = if args.libtest.list {
        None
    } else {
        match start_zygote(&mut env, runner.as_ref()) {
            Ok(z) => Some(Arc::new(z)),
            Err(e) => {
                eprintln!("nsconform: cannot start the zygote: {e}");
                return Exit::Usage.into();
            }
        }
    };
    let (specs, errors) = match plan::plan_dir(&crate::plan::env::cases_dir(), &features, &env, runner.as_ref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nsconform: {e}");
            return Exit::Usage.into();
        }
    };
    let shared = Shared {
        recorder,
        zygote,
        privileged: env.privileged,
        timings: Arc::new(crate::report::timings::Timings::from_env()),
    };
    let built = build(&args.libtest, specs, &errors, &shared);
    if let Some((word, command)) = typo
        && selected(&args.libtest, &built).is_empty()
    {
        eprintln!(
            "nsconform: `{word}` selects no trial; did you mean `nsconform {command}`? (`nsconform -- {word}` runs the trials whose names hold it)"
        );
        return Exit::Usage.into();
    }
    let about = About::here(env.privileged, runner.name());
    execute(&args, built, about, shared)
}

/// A run with no runner to create the cases' children: one trial, an error saying why.
fn without_runner(args: &SuiteArgs, privileged: bool, recorder: Arc<Recorder>, why: String) -> ExitCode {
    let mut built = Built {
        trials: vec![],
        planned: vec![],
    };
    built.fixed(
        TrialRecord::new("runner::select", Kind::Harness, Verdict::Error, why),
        &recorder,
    );
    let shared = Shared {
        recorder,
        zygote: None,
        privileged,
        timings: Arc::new(None),
    };
    execute(args, built, About::here(privileged, "(none)"), shared)
}

fn start_zygote(env: &mut RunEnv, runner: &dyn Runner) -> Result<Zygote, String> {
    // Parsed once here, so no sandbox parses it again.
    let _ = crate::load::Catalogue::builtin();
    crate::machine::global_state::block_interrupts();
    let z = Zygote::start(env, runner)?;
    env.subids = env.subids.take().filter(|_| z.subids() > 0);
    Ok(z)
}

/// Every trial: the files that did not load (one failing trial each, every
/// other case still runs), then each case and control.
fn build(args: &Arguments, specs: Vec<TrialSpec>, errors: &[load::LoadError], shared: &Shared) -> Built {
    let mut built = Built {
        trials: Vec::new(),
        planned: Vec::new(),
    };
    let mut names = std::collections::HashSet::new();
    for e in errors {
        let mut name = load_error_name(e);
        if !names.insert(name.clone()) {
            name = format!("{name}::line{}", e.line);
            names.insert(name.clone());
        }
        built.fixed(
            TrialRecord::new(name, Kind::Load, Verdict::Fail, e.to_string()),
            &shared.recorder,
        );
    }
    let specs = Arc::new(specs);
    for (index, spec) in specs.iter().enumerate() {
        let kind = crate::report::trial::kind(spec);
        let libtest_kind = crate::record::libtest_kind(kind, spec.userns);
        let planned = planned(
            &spec.name,
            kind,
            spec.userns,
            spec.ignore.as_ref().map(|b| b.reason.clone()),
        );
        let trial = match &spec.ignore {
            Some(blocked) => cannot_run_here(spec, blocked, args, &shared.recorder),
            None => runnable(specs.clone(), index, shared),
        };
        built.push(trial.with_kind(libtest_kind), planned);
    }
    built
}

/// A trial that runs its case in a sandbox and keeps its record.
fn runnable(specs: Arc<Vec<TrialSpec>>, index: usize, shared: &Shared) -> Trial {
    let recorder = shared.recorder.clone();
    let zygote = shared.zygote.clone();
    let timings = shared.timings.clone();
    let privileged = shared.privileged;
    let name = specs[index].name.clone();
    Trial::ignorable_test(name, move || {
        let spec = &specs[index];
        let record = match zygote.as_ref() {
            Some(z) => crate::report::trial::run(z, spec, privileged, timings.as_ref().as_ref()),
            None => TrialRecord::new(
                &spec.name,
                crate::report::trial::kind(spec),
                Verdict::Error,
                "no zygote",
            ),
        };
        recorder.keep(record)
    })
}

/// A trial the start-up probe found cannot run here. The list marks it
/// ignored, so a runner that lists first (nextest) skips it. A run prints it
/// ignored with the reason: libtest-mimic prints a reason only for an ignore
/// decided at run time, so the flag stays off there (`--exact NAME` still
/// reports it ignored, not passed). Asked for by `--ignored` or
/// `--include-ignored`, it fails with the reason: passing or quietly
/// ignoring it would read as "ran" under nextest, which judges by exit code.
fn cannot_run_here(spec: &TrialSpec, blocked: &Blocked, args: &Arguments, recorder: &Arc<Recorder>) -> Trial {
    let asked = args.ignored || args.include_ignored;
    let reason = &blocked.reason;
    let mut record = TrialRecord::new(&spec.name, crate::report::trial::kind(spec), Verdict::Ignored, reason);
    record.userns = spec.userns;
    record.gate = blocked.gate.clone();
    if asked {
        record.verdict = Verdict::Fail;
        record.reason = format!("asked to run ignored trials, but this one cannot run here: {reason}");
    }
    let recorder = recorder.clone();
    Trial::ignorable_test(spec.name.clone(), move || recorder.keep(record)).with_ignored_flag(args.list || asked)
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

/// The planned trials libtest's arguments select, in order, as libtest-mimic selects them.
fn selected<'a>(args: &Arguments, built: &'a Built) -> Vec<&'a Planned> {
    built
        .trials
        .iter()
        .zip(&built.planned)
        .filter(|(t, _)| !args.is_filtered_out(t))
        .map(|(_, p)| p)
        .collect()
}

/// List the trials, or run them and write what was asked.
fn execute(args: &SuiteArgs, built: Built, about: About, shared: Shared) -> ExitCode {
    let recorder = &shared.recorder;
    let plan: Vec<Planned> = selected(&args.libtest, &built).into_iter().cloned().collect();
    let filtered_out = built.planned.len() - plan.len();
    recorder.send(&Line::Start {
        about: about.clone(),
        plan: plan.clone(),
        filtered_out,
    });
    if args.libtest.list {
        return list(args, built, &about, plan, recorder);
    }
    // Trials libtest leaves unrun (`--bench`) still have a record.
    for (t, p) in built.trials.iter().zip(&built.planned) {
        if !args.libtest.is_filtered_out(t) && args.libtest.is_ignored(t) {
            let why = p
                .ignored
                .clone()
                .unwrap_or_else(|| "left out by libtest's arguments".into());
            recorder.keep_only(TrialRecord::new(&p.name, p.kind, Verdict::Ignored, why));
        }
    }
    let started = Instant::now();
    let libtest = libtest_arguments(args);
    let running = shared.zygote.is_some();
    let guard = machine_baseline(running, shared.privileged);
    if running {
        crate::machine::global_state::watch_interrupts();
    }
    let conclusion = libtest_mimic::run(&libtest, built.trials);
    if let Some(t) = shared.timings.as_ref() {
        t.finish();
    }
    let machine = guard.map(put_back).unwrap_or_default();
    let failed = conclusion.has_failed() || !machine.is_empty();
    let exit = if failed { Exit::TrialsFailed } else { Exit::Ok };
    let duration_s = started.elapsed().as_secs_f64();
    let trials = recorder.finish(&plan);
    recorder.send(&Line::End {
        exit: exit.code().into(),
        machine: machine.clone(),
        duration_s,
    });
    let run = RunRecord {
        about,
        status: Status::Complete,
        exit: Some(exit.code().into()),
        machine,
        filtered_out,
        duration_s,
        trials,
        kernel_log: vec![],
    };
    match write_reports(args, &run) {
        Ok(()) => exit.into(),
        Err(e) => {
            eprintln!("nsconform: {e}");
            Exit::Usage.into()
        }
    }
}

/// libtest-mimic's arguments for the run: its own output to a log file it
/// is given or nowhere when the suite writes KTAP; more threads than CPUs,
/// as trials mostly wait on the kernel and their sandboxes.
fn libtest_arguments(args: &SuiteArgs) -> Arguments {
    let mut a = args.libtest.clone();
    if args.format == Format::Ktap && a.logfile.is_none() {
        a.logfile = Some("/dev/null".into());
    }
    if a.test_threads.is_none() {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        a.test_threads = Some((cpus * 2).max(2));
    }
    a
}

/// `--list` in the format asked for: libtest's own for pretty and terse
/// (what nextest reads), the suite's for JSON and KTAP.
fn list(args: &SuiteArgs, built: Built, about: &About, plan: Vec<Planned>, recorder: &Recorder) -> ExitCode {
    recorder.send(&Line::End {
        exit: 0,
        machine: vec![],
        duration_s: 0.0,
    });
    match args.format {
        Format::Pretty | Format::Terse => {
            let _ = libtest_mimic::run(&args.libtest, built.trials);
        }
        Format::Json => print!("{}", render::libtest::list(Format::Json, &plan)),
        Format::Ktap => {
            let title = format!("nsconform {} on {}", about.nsconform.describe(), about.kernel.release);
            print!("{}", render::ktap::plan(&title, &plan));
        }
    }
    Exit::Ok.into()
}

/// The machine's global settings as the run found them (under the lock,
/// so not in the middle of another run's declared change).
fn machine_baseline(running: bool, privileged: bool) -> Option<machine::sysctl::Snapshot> {
    (running && privileged).then(|| {
        let _lock = crate::machine::global_state::Lock::take(false);
        machine::sysctl::Snapshot::take()
    })
}

/// Anything no trial was checked for (a case that hid the write from
/// `may_write`) still fails the run, named and put back.
fn put_back(baseline: machine::sysctl::Snapshot) -> Vec<String> {
    let _lock = crate::machine::global_state::Lock::take(false);
    let changed = baseline.put_back();
    if !changed.is_empty() {
        eprintln!("nsconform: global settings changed during the run by a trial that was not checked for it:");
        for c in &changed {
            eprintln!("  {c}");
        }
    }
    changed
}

/// KTAP on stdout and the JUnit file, when asked for.
fn write_reports(args: &SuiteArgs, run: &RunRecord) -> Result<(), String> {
    if args.format == Format::Ktap {
        print!("{}", render::ktap::render(run));
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, render::junit::render(run)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
