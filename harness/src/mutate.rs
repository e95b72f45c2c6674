//! `nsconform mutate`: does every case fail without the namespaces it claims
//! to need? Each namespace of each process (the child, peers, spawns) is
//! dropped in turn; each such mutant is a case of its own. All mutants, and
//! an unchanged copy of every case as a baseline, go into one temporary
//! cases directory that one run of the suite goes through. A mutant that
//! still passes is a survivor: the case would pass without that namespace,
//! so it does not show what it claims. Namespaces a case declares as
//! `hygiene` are not dropped.

use crate::load::ns::Ns;
use crate::load::walk::{self, Role, Seg};
use crate::load::{self, Case, Catalogue, LoadError};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use toml::{Table, Value};

/// One namespace dropped from one process of one case.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutant {
    /// The mutant's trial name in the generated directory.
    pub trial: String,
    /// The trial it was made from (`<area>::<name>[::<label>]`).
    pub case: String,
    /// `child`, `peer:NAME`, `spawn:NAME` or where an unnamed spawn sits.
    pub process: String,
    pub ns: Ns,
}

/// A namespace a case keeps out of the mutation, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Declared {
    pub case: String,
    pub process: String,
    pub ns: Ns,
    pub why: String,
}

/// The mutants of a cases directory, ready to be written out.
#[derive(Debug, Default)]
pub struct Plan {
    pub mutants: Vec<Mutant>,
    pub declared: Vec<Declared>,
    /// Mutants the loader refuses (with its error); none are run.
    pub invalid: Vec<(Mutant, String)>,
    /// Files of the source directory that do not load; their cases are not mutated.
    pub load_errors: Vec<LoadError>,
    /// Baseline trial name -> the case it copies.
    pub baselines: BTreeMap<String, String>,
    /// Generated files: path relative to the directory -> case tables.
    files: BTreeMap<PathBuf, Vec<Table>>,
}

/// How a mutant fared.
#[derive(Clone, Debug, PartialEq)]
pub enum Fate {
    Killed,
    Survived,
    /// Not judged, with the reason (ignored here, or its baseline failed).
    NotRun(String),
}

fn at_mut<'a>(t: &'a mut Table, path: &[Seg]) -> Option<&'a mut Table> {
    let (Seg::Key(first), rest) = path.split_first()? else {
        return None;
    };
    let mut v = t.get_mut(first)?;
    for s in rest {
        v = match s {
            Seg::Key(k) => v.as_table_mut()?.get_mut(k)?,
            Seg::Idx(i) => v.as_array_mut()?.get_mut(*i)?,
        };
    }
    v.as_table_mut()
}

/// A process the mutants drop namespaces of: where its table is, how the
/// report names it, the types it lists, and the reason for each the case
/// keeps as hygiene.
struct Target {
    path: Vec<Seg>,
    name: String,
    namespaces: Vec<Ns>,
    hygiene: BTreeMap<Ns, String>,
}

/// Every process with a table of its own (the parent has none), as the
/// report names it: `child`, `peer:NAME`, `spawn:NAME`, or where an unnamed
/// spawn sits. The child's tree first, then each peer's, then the parent's.
fn targets(case: &Case) -> Vec<Target> {
    let procs = walk::processes(&case.spec);
    let mut names: Vec<String> = Vec::with_capacity(procs.len());
    for p in &procs {
        let name = match (&p.role, p.spec().and_then(|s| s.name.as_deref()), &p.spawned_by) {
            (Role::Parent, ..) => "parent".to_string(),
            (Role::Child | Role::Peer, ..) => p.label.clone(),
            (Role::Spawn, Some(n), _) => format!("spawn:{n}"),
            (Role::Spawn, None, Some(by)) => {
                let owner = match procs[by.creator].role {
                    Role::Parent => format!("parent.{}", by.phase),
                    _ => names[by.creator].clone(),
                };
                format!("{owner} step {} spawn", by.index + 1)
            }
            (Role::Spawn, None, None) => p.label.clone(),
        };
        names.push(name);
    }
    let root = |mut i: usize| {
        while let Some(by) = &procs[i].spawned_by {
            i = by.creator;
        }
        match procs[i].role {
            Role::Child => 0,
            Role::Peer => 1,
            _ => 2,
        }
    };
    let mut out: Vec<(usize, Target)> = procs
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let spec = p.spec()?;
            let mut hygiene = case
                .spec
                .hygiene
                .as_ref()
                .map(|h| h.get_ref().clone())
                .unwrap_or_default();
            hygiene.extend(spec.hygiene.iter().flat_map(|h| h.get_ref().clone()));
            let target = Target {
                path: p.path.clone(),
                name: names[i].clone(),
                namespaces: spec.namespaces.get_ref().clone(),
                hygiene,
            };
            Some((root(i), target))
        })
        .collect();
    out.sort_by_key(|(r, _)| *r);
    out.into_iter().map(|(_, t)| t).collect()
}

/// Drop `ns` from the process at `path`, with what only makes sense with it,
/// so that the mutant still loads. None if the process does not list it.
fn drop_ns(case: &Table, path: &[Seg], ns: Ns) -> Option<Table> {
    let mut m = case.clone();
    let p = at_mut(&mut m, path)?;
    let list = p.get_mut("namespaces")?.as_array_mut()?;
    let before = list.len();
    list.retain(|v| v.as_str() != Some(ns.proc_name()));
    if list.len() == before {
        return None;
    }
    let empty = list.is_empty();
    match ns {
        Ns::Time => {
            p.remove("time_offsets");
        }
        Ns::User => {
            for k in ["uid_map", "gid_map", "setgroups", "map_root"] {
                p.remove(k);
            }
        }
        _ => {}
    }
    if empty && matches!(p.get("how").and_then(Value::as_str), Some("unshare" | "setns")) {
        // Nothing left to unshare or join: a plain child.
        p.remove("how");
        p.remove("join");
    }
    // Controls are not run; what a control drops may be gone now.
    if let Some(c) = m.get_mut("control").and_then(Value::as_table_mut) {
        c.remove("drop");
    }
    Some(m)
}

fn trial_word(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// One case table as a file of one `[[case]]`.
fn file_text(cases: &[Table]) -> String {
    let mut doc = Table::new();
    doc.insert(
        "case".into(),
        Value::Array(cases.iter().cloned().map(Value::Table).collect()),
    );
    toml::to_string(&doc).unwrap_or_default()
}

/// The mutants of every case under `root` whose trial name contains one of
/// `filters` (all cases when there is none).
pub fn plan(root: &Path, filters: &[String]) -> Result<Plan, LoadError> {
    let (files, dir_errors) = load::case_files(root)
        .map_err(|e| LoadError::whole_file(root, format!("cannot read the cases directory: {e}")))?;
    let mut out = Plan {
        load_errors: dir_errors,
        ..Default::default()
    };
    let mut numbering = 0usize;
    for (area, path) in files {
        let rel = PathBuf::from(&area).join(path.file_name().unwrap_or_default());
        let mut file = FileMutants {
            plan: &mut out,
            numbering: &mut numbering,
            area: &area,
            gen_path: root.join(&rel),
            made: Vec::new(),
        };
        if let Err(e) = file.add(&path, filters) {
            file.plan.load_errors.push(e);
        }
        let made = file.made;
        if !made.is_empty() {
            out.files.insert(rel, made);
        }
    }
    Ok(out)
}

/// The mutants of one file, as they are made.
struct FileMutants<'a> {
    plan: &'a mut Plan,
    /// Numbers the generated cases across the whole plan.
    numbering: &'a mut usize,
    area: &'a str,
    /// Where the generated file will be, for the loader's errors.
    gen_path: PathBuf,
    /// The generated case tables.
    made: Vec<Table>,
}

impl FileMutants<'_> {
    /// Every mutant of the file's cases that the filters select. Only files
    /// the suite would run: the loader's own checks first.
    fn add(&mut self, path: &Path, filters: &[String]) -> Result<(), LoadError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| LoadError::whole_file(path, format!("cannot read: {e}")))?;
        let cases = load::load_bytes(path, self.area, text.as_bytes(), Catalogue::builtin())?;
        for e in load::expanded_tables(path, &text)? {
            let Some(case) = cases.iter().find(|c| c.index == e.index && c.label == e.label) else {
                continue;
            };
            if filters.is_empty() || filters.iter().any(|f| case.id.contains(f.as_str())) {
                self.add_case(case, &e.table);
            }
        }
        Ok(())
    }

    /// The mutants of one case (its matrix-expanded `table`), and the case
    /// unchanged as their baseline.
    fn add_case(&mut self, case: &Case, table: &Table) {
        let first = self.made.len();
        for target in targets(case) {
            for &ns in &target.namespaces {
                self.add_mutant(case, table, &target, ns);
            }
        }
        // The case unchanged, to tell a mutant's failure from the case's own.
        if self.made.len() > first {
            let (trial, t) = self.renamed(case, table.clone(), "base");
            self.plan.baselines.insert(trial, case.id.clone());
            self.made.push(t);
        }
    }

    fn add_mutant(&mut self, case: &Case, table: &Table, target: &Target, ns: Ns) {
        if let Some(why) = target.hygiene.get(&ns) {
            self.plan.declared.push(Declared {
                case: case.id.clone(),
                process: target.name.clone(),
                ns,
                why: why.clone(),
            });
            return;
        }
        let Some(m) = drop_ns(table, &target.path, ns) else {
            return;
        };
        let (trial, m) = self.renamed(case, m, "m");
        let mutant = Mutant {
            trial,
            case: case.id.clone(),
            process: target.name.clone(),
            ns,
        };
        // A mutant the loader refuses would take its file's other mutants with it.
        let text = file_text(std::slice::from_ref(&m));
        match load::load_bytes(&self.gen_path, self.area, text.as_bytes(), Catalogue::builtin()) {
            Ok(_) => {
                self.plan.mutants.push(mutant);
                self.made.push(m);
            }
            Err(err) => self.plan.invalid.push((mutant, err.message)),
        }
    }

    /// `t` as a generated case of its own: a numbered name, no label; and its trial name.
    fn renamed(&mut self, case: &Case, mut t: Table, prefix: &str) -> (String, Table) {
        *self.numbering += 1;
        let base = format!(
            "{}-{}",
            trial_word(&case.name),
            trial_word(case.label.as_deref().unwrap_or(""))
        );
        let new = format!("{prefix}{}-{base}", self.numbering);
        t.insert("name".into(), Value::String(new.clone()));
        t.remove("label");
        (format!("{}::{new}", self.area), t)
    }
}

impl Plan {
    /// Write the generated cases under `dir`, laid out like cases/.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        for (rel, cases) in &self.files {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap_or(dir))?;
            std::fs::write(p, file_text(cases))?;
        }
        Ok(())
    }

    /// Each mutant's fate, from the outcomes of one run (trial name -> libtest's word).
    pub fn judge(&self, outcomes: &HashMap<String, String>) -> Vec<(Mutant, Fate)> {
        let base_of: HashMap<&str, &str> = self.baselines.iter().map(|(t, c)| (c.as_str(), t.as_str())).collect();
        self.mutants
            .iter()
            .map(|m| {
                let base = base_of.get(m.case.as_str()).and_then(|t| outcomes.get(*t));
                let fate = match (base.map(String::as_str), outcomes.get(&m.trial).map(String::as_str)) {
                    (Some("ok"), Some("ok")) => Fate::Survived,
                    (Some("ok"), Some("FAILED")) => Fate::Killed,
                    (Some("ok"), Some(other)) => Fate::NotRun(other.to_string()),
                    (Some("ok"), None) => Fate::NotRun("no outcome".into()),
                    (b, _) => Fate::NotRun(format!("the case itself: {}", b.unwrap_or("no outcome"))),
                };
                (m.clone(), fate)
            })
            .collect()
    }
}

/// What libtest printed for each trial: "ok", "FAILED", "ignored" (with
/// the reason after it when there is one).
pub fn outcomes(stdout: &str) -> HashMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("test ")?;
            let (head, result) = rest.split_once(" ... ")?;
            Some((head.split_whitespace().last()?.to_string(), result.trim().to_string()))
        })
        .collect()
}

static STOP: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_stop(sig: libc::c_int) {
    STOP.store(sig, std::sync::atomic::Ordering::SeqCst);
}

/// Run the suite binary (this one) on `dir`, controls left out; its stdout.
/// SIGINT and SIGTERM are passed on, so the temporary directory is still removed.
fn run_suite(dir: &Path, threads: Option<&str>) -> std::io::Result<(String, std::process::ExitStatus)> {
    let mut c = Command::new(std::env::current_exe()?);
    c.args(["--skip", "control::", "--color", "never"]);
    if let Some(t) = threads {
        c.args(["--test-threads", t]);
    }
    c.env(crate::plan::env::CASES_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: on_stop only stores into an atomic, which is async-signal-safe;
    // it is a plain extern "C" fn of the signature signal() expects. Raw,
    // because nix's signal() is just as unsafe.
    unsafe {
        libc::signal(libc::SIGINT, on_stop as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_stop as *const () as libc::sighandler_t);
    }
    let mut child = c.spawn()?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let mut passed_on = false;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        let sig = STOP.load(std::sync::atomic::Ordering::SeqCst);
        if sig != 0 && !passed_on {
            if let Ok(sig) = Signal::try_from(sig) {
                let _ = kill(Pid::from_raw(child.id() as i32), sig);
            }
            passed_on = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Ok((reader.join().unwrap_or_default(), status))
}

/// Drop each namespace of each process of each case in turn, run every such
/// mutant once, and name those that still pass. Exit 0 when every mutant
/// was killed, 1 when one survived.
#[derive(clap::Parser, Debug)]
#[command(name = "nsconform mutate")]
pub struct Args {
    /// Threads of each suite run (as the suite's own option).
    #[arg(long, value_name = "N")]
    test_threads: Option<std::num::NonZeroUsize>,
    /// Only cases whose name contains one of these.
    filters: Vec<String>,
}

/// `nsconform mutate`: exit 0 when every mutant run was killed, 1 when one survived.
pub fn main(args: &[String]) -> ExitCode {
    let (filters, threads) = match crate::plan::env::parse_args::<Args>("mutate", args) {
        Ok(a) => (a.filters, a.test_threads.map(|n| n.to_string())),
        Err(code) => return code,
    };
    let started = std::time::Instant::now();
    let source = crate::plan::env::cases_dir();
    let plan = match plan(&source, &filters) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nsconform mutate: {e}");
            return ExitCode::from(2);
        }
    };
    for e in &plan.load_errors {
        println!("not loaded  {e}");
    }
    let dir = match tempfile::Builder::new().prefix("nsconform-mutate-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("nsconform mutate: cannot make a temporary directory: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = plan.write(dir.path()) {
        eprintln!("nsconform mutate: cannot write the mutants: {e}");
        return ExitCode::from(2);
    }
    let run = run_suite(dir.path(), threads.as_deref());
    drop(dir);
    let (stdout, _status) = match run {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nsconform mutate: cannot run the suite: {e}");
            return ExitCode::from(2);
        }
    };
    let stop = STOP.load(std::sync::atomic::Ordering::SeqCst);
    if stop != 0 {
        eprintln!("nsconform mutate: interrupted");
        return ExitCode::from(128 + stop as u8);
    }
    let fates = plan.judge(&outcomes(&stdout));
    print!("{}", report(&plan, &fates, started.elapsed()));
    if fates.iter().any(|(_, f)| *f == Fate::Survived) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The report: survivors, declared hygiene, what was not judged, the score.
pub fn report(plan: &Plan, fates: &[(Mutant, Fate)], took: std::time::Duration) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for (m, f) in fates {
        match f {
            Fate::Survived => {
                let _ = writeln!(
                    s,
                    "survivor    {}: passes with its {} not in a new {} namespace",
                    m.case, m.process, m.ns
                );
            }
            Fate::NotRun(why) => {
                let _ = writeln!(s, "not run     {}: {} without {}: {why}", m.case, m.process, m.ns);
            }
            Fate::Killed => {}
        }
    }
    for (m, err) in &plan.invalid {
        let _ = writeln!(
            s,
            "not run     {}: {} without {}: does not load: {err}",
            m.case, m.process, m.ns
        );
    }
    for d in &plan.declared {
        let _ = writeln!(
            s,
            "declared    {}: {} {} is hygiene: {}",
            d.case, d.process, d.ns, d.why
        );
    }
    let killed = fates.iter().filter(|(_, f)| *f == Fate::Killed).count();
    let survived = fates.iter().filter(|(_, f)| *f == Fate::Survived).count();
    let judged = killed + survived;
    let _ = writeln!(
        s,
        "nsconform mutate: {killed}/{judged} mutants killed, {survived} survivors, {} declared hygiene, {} not run, {} cases mutated, {:.1}s",
        plan.declared.len(),
        fates.len() - judged + plan.invalid.len(),
        plan.baselines.len(),
        took.as_secs_f64()
    );
    s
}

#[cfg(test)]
mod args_tests {
    use super::Args;
    use clap::Parser;

    #[test]
    fn mutate_arguments_go_through_clap() {
        let a = Args::try_parse_from(["m", "--test-threads", "3", "uts", "pid"]).expect("valid");
        assert_eq!(
            (a.test_threads.map(|n| n.get()), a.filters),
            (Some(3), vec!["uts".into(), "pid".into()])
        );
        assert_eq!(
            Args::try_parse_from(["m", "--test-threads"]).unwrap_err().exit_code(),
            2
        );
        assert_eq!(
            Args::try_parse_from(["m", "--test-threads", "x"])
                .unwrap_err()
                .exit_code(),
            2
        );
    }
}
