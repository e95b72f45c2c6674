//! `nsconform mutate`: does every case fail without the namespaces it claims
//! to need? Each namespace of each process (the child, peers, spawns) is
//! dropped in turn; each such mutant is a case of its own. All mutants, and
//! an unchanged copy of every case as a baseline, go into one temporary
//! cases directory that one run of the suite goes through. A mutant that
//! still passes is a survivor: the case would pass without that namespace,
//! so it does not show what it claims. Namespaces a case declares as
//! `hygiene` are not dropped.

use crate::load::ns::Ns;
use crate::load::{self, Catalogue, LoadError};
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

/// A step along the TOML tree to a process table.
#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Idx(usize),
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

/// Every process table of a case: its path and how reports name it.
fn processes(case: &Table) -> Vec<(Vec<Seg>, String)> {
    fn steps(list: Option<&Value>, path: Vec<Seg>, owner: &str, out: &mut Vec<(Vec<Seg>, String)>) {
        let Some(list) = list.and_then(Value::as_array) else {
            return;
        };
        for (k, step) in list.iter().enumerate() {
            let Some(p) = step.get("spawn").and_then(Value::as_table) else {
                continue;
            };
            let name = match p.get("name").and_then(Value::as_str) {
                Some(n) => format!("spawn:{n}"),
                None => format!("{owner} step {} spawn", k + 1),
            };
            let mut at = path.clone();
            at.extend([Seg::Idx(k), Seg::Key("spawn".into())]);
            proc_(p, at, name, out);
        }
    }
    fn proc_(p: &Table, path: Vec<Seg>, name: String, out: &mut Vec<(Vec<Seg>, String)>) {
        let mut run = path.clone();
        run.push(Seg::Key("run".into()));
        out.push((path, name.clone()));
        steps(p.get("run"), run, &name, out);
    }
    let mut out = Vec::new();
    if let Some(c) = case.get("child").and_then(Value::as_table) {
        proc_(c, vec![Seg::Key("child".into())], "child".into(), &mut out);
    }
    if let Some(peers) = case.get("peer").and_then(Value::as_array) {
        for (i, p) in peers.iter().enumerate() {
            let Some(t) = p.as_table() else { continue };
            let name = format!("peer:{}", t.get("name").and_then(Value::as_str).unwrap_or("?"));
            proc_(t, vec![Seg::Key("peer".into()), Seg::Idx(i)], name, &mut out);
        }
    }
    if let Some(parent) = case.get("parent").and_then(Value::as_table) {
        let key = |k: &str| Seg::Key(k.into());
        for list in ["setup", "start", "run", "after"] {
            let path = vec![key("parent"), key(list)];
            steps(parent.get(list), path, &format!("parent.{list}"), &mut out);
        }
        if let Some(on) = parent.get("on").and_then(Value::as_table) {
            for (n, list) in on {
                let path = vec![key("parent"), key("on"), key(n)];
                steps(Some(list), path, &format!("parent.on.{n}"), &mut out);
            }
        }
    }
    out
}

fn ns_named(s: &str) -> Option<Ns> {
    Ns::ALL.into_iter().find(|n| n.proc_name() == s)
}

fn hygiene_reason(t: &Table, ns: Ns) -> Option<String> {
    t.get("hygiene")?.get(ns.proc_name())?.as_str().map(String::from)
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
    let catalogue = Catalogue::builtin();
    let (files, dir_errors) = load::case_files(root)
        .map_err(|e| LoadError::whole_file(root, format!("cannot read the cases directory: {e}")))?;
    let mut out = Plan {
        load_errors: dir_errors,
        ..Default::default()
    };
    let mut n = 0usize;
    for (area, path) in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                out.load_errors
                    .push(LoadError::whole_file(&path, format!("cannot read: {e}")));
                continue;
            }
        };
        // Only files the suite would run: the loader's own checks first.
        if let Err(e) = load::load_bytes(&path, &area, text.as_bytes(), catalogue) {
            out.load_errors.push(e);
            continue;
        }
        let expanded = match load::expanded_tables(&path, &text) {
            Ok(e) => e,
            Err(e) => {
                out.load_errors.push(e);
                continue;
            }
        };
        let single = expanded.first().is_some_and(|e| !e.table.contains_key("name"));
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rel = PathBuf::from(&area).join(path.file_name().unwrap_or_default());
        let gen_path = root.join(&rel);
        let mut made = Vec::new();
        for e in expanded {
            let name = match e.table.get("name").and_then(Value::as_str) {
                Some(n) => n.to_string(),
                None if single => stem.clone(),
                None => continue,
            };
            let case = match &e.label {
                Some(l) => format!("{area}::{name}::{l}"),
                None => format!("{area}::{name}"),
            };
            if !filters.is_empty() && !filters.iter().any(|f| case.contains(f.as_str())) {
                continue;
            }
            let base = format!("{}-{}", trial_word(&name), trial_word(e.label.as_deref().unwrap_or("")));
            let mut renamed = |mut t: Table, prefix: &str| {
                n += 1;
                let new = format!("{prefix}{n}-{base}");
                t.insert("name".into(), Value::String(new.clone()));
                t.remove("label");
                (format!("{area}::{new}"), t)
            };
            let first = made.len();
            for (path, process) in processes(&e.table) {
                let Some(p) = at_mut(&mut e.table.clone(), &path).cloned() else {
                    continue;
                };
                let listed: Vec<Ns> = p
                    .get("namespaces")
                    .and_then(Value::as_array)
                    .map(|l| l.iter().filter_map(|v| v.as_str().and_then(ns_named)).collect())
                    .unwrap_or_default();
                for ns in listed {
                    if let Some(why) = hygiene_reason(&p, ns).or_else(|| hygiene_reason(&e.table, ns)) {
                        out.declared.push(Declared {
                            case: case.clone(),
                            process: process.clone(),
                            ns,
                            why,
                        });
                        continue;
                    }
                    let Some(m) = drop_ns(&e.table, &path, ns) else {
                        continue;
                    };
                    let (trial, m) = renamed(m, "m");
                    let mutant = Mutant {
                        trial,
                        case: case.clone(),
                        process: process.clone(),
                        ns,
                    };
                    // A mutant the loader refuses would take its file's other mutants with it.
                    match load::load_bytes(
                        &gen_path,
                        &area,
                        file_text(std::slice::from_ref(&m)).as_bytes(),
                        catalogue,
                    ) {
                        Ok(_) => {
                            out.mutants.push(mutant);
                            made.push(m);
                        }
                        Err(err) => out.invalid.push((mutant, err.message)),
                    }
                }
            }
            // The case unchanged, to tell a mutant's failure from the case's own.
            if made.len() > first {
                let (trial, t) = renamed(e.table.clone(), "base");
                out.baselines.insert(trial, case.clone());
                made.push(t);
            }
        }
        if !made.is_empty() {
            out.files.insert(rel, made);
        }
    }
    Ok(out)
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
