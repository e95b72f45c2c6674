//! `nsconform matrix`: the suite on a list of kernels (several VMs at once
//! where the CPUs allow) and on this machine's kernel, and the compatibility
//! table: each behaviour (catalogue ID and case) by kernel, pass, fail,
//! error, or ignored with its reason. Each column is a run's records (the
//! VMs' results channels; the host's run writes its own with `--records`);
//! the table is written as JSON (the data), Markdown (for the docs) and one
//! static HTML page, with a JUnit file per kernel.

use super::{VmOpts, boot, prepare, results};
use crate::exit::Exit;
use crate::record::baseline::{Baseline, Change, cell_of};
use crate::record::{About, RunRecord, Status, Verdict, count};
use crate::report::render::junit::{self, xml_escape};
use clap::Parser;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(
    name = "nsconform matrix",
    about = "Run the suite on several kernels and write the compatibility table"
)]
pub struct MatrixArgs {
    #[command(flatten)]
    opts: VmOpts,
    /// Kernels, comma-separated, as for `nsconform vm`; `6.1:userns=off` is 6.1 with settings (docs/kernels.md)
    #[arg(long, default_value = "5.10,6.1,6.12,7.2", value_delimiter = ',')]
    kernels: Vec<String>,
    /// Leave out the run on this machine's kernel
    #[arg(long)]
    no_host: bool,
    /// Leave out the run on gVisor (made where runsc is installed and the matrix runs as root)
    #[arg(long)]
    no_runsc: bool,
    /// The runsc binary of the gVisor row (default: runsc on PATH)
    #[arg(long, value_name = "PATH")]
    runsc: Option<PathBuf>,
    /// VMs at once (default: CPUs / --smp)
    #[arg(long)]
    jobs: Option<usize>,
    /// Directory for compat.json, compat.md, compat.html and a JUnit file per kernel
    #[arg(long, default_value = "target/nsconform-matrix")]
    out: PathBuf,
    /// A previous matrix's compat.json (or a run's --records): report the cases that
    /// newly fail, were fixed, or changed verdict or ignore reason, per kernel
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// The suite's arguments (filters)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    suite: Vec<String>,
}

/// One column of the table: a kernel's run.
#[derive(Clone, Debug)]
pub struct Column {
    pub label: String,
    pub run: RunRecord,
    pub boot_s: Option<f64>,
    pub total_s: f64,
    /// Why the run did not give its own status (a hung boot, a timeout, a crash).
    pub error: Option<String>,
}

impl Column {
    fn count(&self, v: Verdict) -> usize {
        count(&self.run.trials, v)
    }

    /// The kernel: upstream version, release and package (`Kernel::describe`);
    /// for a run that never started, the release its image names.
    fn version(&self) -> String {
        let k = &self.run.about.kernel;
        if !k.release.is_empty() {
            return k.describe();
        }
        let v = &k.version;
        v.strip_prefix("Linux version ")
            .unwrap_or(v)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string()
    }

    fn machine(&self) -> String {
        match (&self.run.status, self.run.machine.is_empty()) {
            (Status::Complete, true) => "unchanged".into(),
            (Status::Complete, false) => format!("CHANGED: {}", self.run.machine.join("; ")),
            (_, _) => "-".into(),
        }
    }

    fn failed(&self) -> usize {
        self.count(Verdict::Fail) + self.count(Verdict::Xpass)
    }

    /// Errors: trials that never reported, and the run itself if it did not complete.
    fn errors(&self) -> usize {
        self.count(Verdict::Error) + usize::from(self.run.status != Status::Complete || self.error.is_some())
    }

    fn passed_whole(&self) -> bool {
        self.error.is_none() && self.run.passed() && self.run.exit == Some(0)
    }
}

/// Rows: every case (not control, not load error) any column ran, with its catalogue IDs.
fn rows(columns: &[Column], covers: &BTreeMap<String, Vec<String>>) -> Vec<(String, String)> {
    let mut names: Vec<String> = columns
        .iter()
        .flat_map(|c| c.run.trials.iter())
        .filter(|t| t.kind == crate::record::Kind::Case)
        .map(|t| t.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|n| (covers.get(&n).map(|c| c.join(" ")).unwrap_or_default(), n))
        .collect()
}

#[derive(Serialize)]
struct KernelJson<'a> {
    label: &'a str,
    version: &'a str,
    about: &'a About,
    status: &'a Status,
    accel: &'a str,
    boot_s: Option<f64>,
    total_s: f64,
    exit: Option<i32>,
    machine: String,
    error: Option<&'a str>,
    passed: usize,
    failed: usize,
    ignored: usize,
    errors: usize,
}

#[derive(Serialize)]
struct CellJson {
    outcome: &'static str,
    reason: String,
    /// An ignored cell's gate, so that a baseline read from this file
    /// summarises its reasons as the run did.
    #[serde(skip_serializing_if = "String::is_empty")]
    gate: String,
    duration_s: f64,
}

#[derive(Serialize)]
struct BehaviourJson {
    ids: String,
    case: String,
    cells: BTreeMap<String, CellJson>,
}

/// The comparison with a baseline: its file and each case that differs.
#[derive(Clone, Debug, Serialize)]
pub struct Compared {
    pub file: String,
    pub changes: Vec<Change>,
}

#[derive(Serialize)]
struct CompatJson<'a> {
    kernels: Vec<KernelJson<'a>>,
    behaviours: Vec<BehaviourJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline: Option<&'a Compared>,
}

/// Each column against its column of the baseline (a column the baseline
/// lacks is compared with nothing: every case new).
pub fn compare(columns: &[Column], base: &Baseline) -> Vec<Change> {
    let none = BTreeMap::new();
    columns
        .iter()
        .flat_map(|c| {
            let was = base.column(&c.label).unwrap_or(&none);
            crate::record::baseline::compare(&c.label, was, &crate::record::baseline::cells(&c.run.trials))
        })
        .collect()
}

pub fn to_json(columns: &[Column], covers: &BTreeMap<String, Vec<String>>, baseline: Option<&Compared>) -> String {
    let kernels = columns
        .iter()
        .map(|c| KernelJson {
            label: &c.label,
            version: &c.run.about.kernel.version,
            about: &c.run.about,
            status: &c.run.status,
            accel: c.run.about.accel.as_deref().unwrap_or("native"),
            boot_s: c.boot_s,
            total_s: c.total_s,
            exit: c.run.exit,
            machine: c.machine(),
            error: c.error.as_deref(),
            passed: c.count(Verdict::Pass) + c.count(Verdict::Xfail),
            failed: c.failed(),
            ignored: c.count(Verdict::Ignored),
            errors: c.errors(),
        })
        .collect();
    let behaviours = rows(columns, covers)
        .into_iter()
        .map(|(ids, case)| {
            let cells = columns
                .iter()
                .map(|c| {
                    let cell = match cell_of(&c.run.trials, &case) {
                        Some(x) => CellJson {
                            outcome: x.verdict.name(),
                            reason: x.reason,
                            gate: x.gate,
                            duration_s: x.duration_s,
                        },
                        None => CellJson {
                            outcome: "absent",
                            reason: String::new(),
                            gate: String::new(),
                            duration_s: 0.0,
                        },
                    };
                    (c.label.clone(), cell)
                })
                .collect();
            BehaviourJson { ids, case, cells }
        })
        .collect();
    let doc = CompatJson {
        kernels,
        behaviours,
        baseline,
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

/// A cell of the Markdown table; `time` adds the case's own time.
fn cell_md(c: &Option<crate::record::baseline::Cell>, time: bool) -> String {
    let t = match c {
        Some(c) if time && c.verdict != Verdict::Ignored => format!(" {:.2} s", c.duration_s),
        _ => String::new(),
    };
    let text = match c {
        None => "-".into(),
        Some(c) => match c.verdict {
            Verdict::Pass => "pass".into(),
            Verdict::Ignored => format!("ignored: {}", c.short_reason().replace('|', "\\|")),
            Verdict::Fail => "**FAIL**".into(),
            Verdict::Error => "**ERROR**".into(),
            Verdict::Xfail => "xfail".into(),
            Verdict::Xpass => "**XPASS**".into(),
        },
    };
    text + &t
}

fn kernels_md(columns: &[Column]) -> String {
    let mut s = String::from(
        "| kernel | version | run | boot + suite | passed | failed | ignored | errors | machine after |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for c in columns {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            c.label,
            c.version(),
            c.run.about.accel.as_deref().unwrap_or("native"),
            match c.boot_s {
                Some(b) => format!("{b:.1} s + {:.1} s", c.total_s - b),
                None => format!("{:.1} s", c.total_s),
            },
            c.count(Verdict::Pass) + c.count(Verdict::Xfail),
            c.failed(),
            c.count(Verdict::Ignored),
            c.errors(),
            c.machine()
        ));
    }
    s
}

/// Which build made the table, when, and with which qemu.
fn provenance(columns: &[Column]) -> String {
    let Some(first) = columns.first() else {
        return String::new();
    };
    let a = &first.run.about;
    let qemu = columns
        .iter()
        .find_map(|c| c.run.about.qemu.as_deref())
        .map(|q| format!(", {q}"))
        .unwrap_or_default();
    format!("nsconform {}, {}{qemu}", a.nsconform.describe(), a.date)
}

/// The kernels, then the behaviours whose outcome is not `pass` everywhere
/// (the rest counted), then, in `full`, every row.
pub fn to_markdown(columns: &[Column], covers: &BTreeMap<String, Vec<String>>, full: bool) -> String {
    let mut s = if full {
        format!("Made by {}.\n\n", provenance(columns))
    } else {
        String::new()
    };
    s.push_str(&kernels_md(columns));
    for c in columns
        .iter()
        .filter(|c| c.run.status != Status::Complete || c.error.is_some())
    {
        let why = c.error.as_deref().or(c.run.status.why()).unwrap_or_default();
        s.push_str(&format!(
            "\n**{}: the run did not complete**: {}\n",
            c.label,
            why.lines().next().unwrap_or("")
        ));
    }
    let rows = rows(columns, covers);
    let head = format!(
        "| IDs | case | {} |\n|---|---|{}\n",
        columns.iter().map(|c| c.label.as_str()).collect::<Vec<_>>().join(" | "),
        "---|".repeat(columns.len())
    );
    let line = |ids: &str, case: &str, time: bool| {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| cell_md(&cell_of(&c.run.trials, case), time))
            .collect();
        format!("| {ids} | `{case}` | {} |\n", cells.join(" | "))
    };
    let passes = |case: &str| {
        columns
            .iter()
            .all(|c| cell_of(&c.run.trials, case).is_some_and(|x| x.verdict == Verdict::Pass))
    };
    let differ: Vec<&(String, String)> = rows.iter().filter(|(_, case)| !passes(case)).collect();
    s.push_str(&format!(
        "\nBehaviours not passing on every kernel ({} of {}; the other {} pass on all):\n\n",
        differ.len(),
        rows.len(),
        rows.len() - differ.len()
    ));
    s.push_str(&head);
    for (ids, case) in &differ {
        s.push_str(&line(ids, case, false));
    }
    s.push_str(&gvisor_differs(columns, &rows));
    if full {
        s.push_str("\nEvery behaviour, with the case's own time where it ran:\n\n");
        s.push_str(&head);
        for (ids, case) in &rows {
            s.push_str(&line(ids, case, true));
        }
    }
    s
}

/// The comparison with a baseline, as a Markdown section.
pub fn baseline_md(b: &Compared) -> String {
    let mut s = format!("\nAgainst the baseline `{}`:\n\n", b.file);
    for l in crate::record::baseline::describe(&b.changes).lines() {
        match l.strip_prefix("  ") {
            Some(item) => s.push_str(&format!("  - {item}\n")),
            None => s.push_str(&format!("- {l}\n")),
        }
    }
    s
}

/// Where gVisor differs from Linux: the behaviours whose runsc cell is not
/// the host's (or, without a host column, the last kernel's).
fn gvisor_differs(columns: &[Column], rows: &[(String, String)]) -> String {
    let Some(g) = columns.iter().find(|c| c.label == super::runsc::TARGET) else {
        return String::new();
    };
    let Some(linux) = columns
        .iter()
        .rev()
        .find(|c| c.label.starts_with("host "))
        .or_else(|| columns.iter().rev().find(|c| c.label != g.label))
    else {
        return String::new();
    };
    let differ: Vec<String> = rows
        .iter()
        .filter_map(|(ids, case)| {
            let (a, b) = (cell_of(&g.run.trials, case), cell_of(&linux.run.trials, case));
            (a.as_ref().map(|c| c.verdict) != b.as_ref().map(|c| c.verdict)).then(|| {
                format!(
                    "| {ids} | `{case}` | {} | {} |\n",
                    cell_md(&b, false),
                    cell_md(&a, false)
                )
            })
        })
        .collect();
    format!(
        "\nWhere gVisor differs from Linux ({} behaviours; Linux is `{}`):\n\n| IDs | case | {} | runsc |\n|---|---|---|---|\n{}",
        differ.len(),
        linux.label,
        linux.label,
        differ.concat()
    )
}

const HTML_HEAD: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>nsconform: kernel compatibility</title>\n<style>\nbody{font-family:sans-serif;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}\n.pass{background:#d8f5d8}.fail,.error,.xpass{background:#f8c8c8;font-weight:bold}.ignored{background:#f3efc8}.xfail{background:#e8e0f5}.absent{color:#999}code{font-size:12px}\n</style></head><body>\n<h1>nsconform: kernel compatibility</h1>\n<p>Each behaviour (catalogue ID and case, with its control) by kernel. Hover a cell for the reason or the failure.</p>\n";

fn kernels_html(columns: &[Column]) -> String {
    let mut s = String::from(
        "<table><tr><th>kernel</th><th>version</th><th>run</th><th>boot</th><th>boot + suite</th><th>passed</th><th>failed</th><th>ignored</th><th>errors</th><th>machine after</th></tr>\n",
    );
    for c in columns {
        s.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} s</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            xml_escape(&c.label),
            xml_escape(&c.version()),
            xml_escape(c.run.about.accel.as_deref().unwrap_or("native")),
            c.boot_s.map(|b| format!("{b:.1} s")).unwrap_or("-".into()),
            c.total_s,
            c.count(Verdict::Pass) + c.count(Verdict::Xfail),
            c.failed(),
            c.count(Verdict::Ignored),
            c.errors(),
            xml_escape(&c.machine())
        ));
    }
    s.push_str("</table>\n");
    s
}

/// Markdown's inline marks as HTML: `code` and **bold**, the rest escaped.
pub fn inline_md(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{}</code>", xml_escape(part)));
            continue;
        }
        for (j, plain) in part.split("**").enumerate() {
            match j % 2 {
                1 => out.push_str(&format!("<b>{}</b>", xml_escape(plain))),
                _ => out.push_str(&xml_escape(plain)),
            }
        }
    }
    out
}

/// How many behaviours, and how many of them do not pass on every kernel.
fn counts_html(columns: &[Column], covers: &BTreeMap<String, Vec<String>>) -> String {
    let rows = rows(columns, covers);
    let differ = rows
        .iter()
        .filter(|(_, case)| {
            !columns
                .iter()
                .all(|c| cell_of(&c.run.trials, case).is_some_and(|x| x.verdict == Verdict::Pass))
        })
        .count();
    format!(
        "<p>{} behaviours on {} kernels: {differ} do not pass on every kernel, {} do.</p>\n",
        rows.len(),
        columns.len(),
        rows.len() - differ
    )
}

/// One cell of the behaviours' table: its class, text and hover text.
fn cell_html(c: &Column, case: &str) -> String {
    let (class, text, title) = match cell_of(&c.run.trials, case) {
        None => ("absent", "-".to_string(), String::new()),
        Some(x) => {
            let text = match x.verdict {
                Verdict::Ignored => format!("ignored: {}", x.short_reason()),
                Verdict::Pass => "pass".into(),
                v => v.name().to_uppercase(),
            };
            let title = match x.verdict {
                Verdict::Ignored => x.reason,
                _ => format!("{:.3} s. {}", x.duration_s, x.reason),
            };
            (x.verdict.name(), text, title)
        }
    };
    format!(
        "<td class=\"{class}\" title=\"{}\">{}</td>",
        xml_escape(title.trim_end_matches(". ")),
        inline_md(&text)
    )
}

pub fn to_html(columns: &[Column], covers: &BTreeMap<String, Vec<String>>, baseline: Option<&Compared>) -> String {
    let mut s = String::from(HTML_HEAD);
    s.push_str(&format!("<p>Made by {}.</p>\n", xml_escape(&provenance(columns))));
    s.push_str(&counts_html(columns, covers));
    s.push_str(&kernels_html(columns));
    if let Some(b) = baseline {
        s.push_str(&format!(
            "<h2>Against the baseline <code>{}</code></h2>\n<pre>",
            xml_escape(&b.file)
        ));
        s.push_str(&xml_escape(&crate::record::baseline::describe(&b.changes)));
        s.push_str("</pre>\n");
    }
    s.push_str("<h2>Behaviours</h2>\n<table><tr><th>IDs</th><th>case</th>");
    for c in columns {
        s.push_str(&format!("<th>{}</th>", xml_escape(&c.label)));
    }
    s.push_str("</tr>\n");
    for (ids, case) in rows(columns, covers) {
        s.push_str(&format!(
            "<tr><td>{}</td><td><code>{}</code></td>",
            xml_escape(&ids),
            xml_escape(&case)
        ));
        for c in columns {
            s.push_str(&cell_html(c, &case));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n</body></html>\n");
    s
}

/// The suite natively, as a column: a run of this binary with the same
/// selection (and `--cases`), its records on a pipe.
fn host_column(suite: &[String], cases: Option<&std::path::Path>) -> Column {
    let me = std::env::current_exe().unwrap_or_else(|_| "nsconform".into());
    let started = Instant::now();
    let mut c = std::process::Command::new(me);
    c.args(["--records", "/dev/stdout", "--logfile", "/dev/null", "--color", "never"])
        .args(suite)
        .stderr(std::process::Stdio::inherit());
    if let Some(dir) = cases {
        c.env(crate::plan::env::CASES_ENV, dir);
    }
    // A signal to the matrix reaches the suite, which ends in order.
    let out = super::cleanup::run_forwarded(c.stdout(std::process::Stdio::piped()));
    let total_s = started.elapsed().as_secs_f64();
    let release = crate::record::Kernel::here().release;
    let label = format!("host {}", release.split('-').next().unwrap_or(&release));
    let (run, error) = match &out {
        Ok(o) => match crate::record::stream::read(&String::from_utf8_lossy(&o.stdout), None) {
            Some(r) => (r, None),
            None => (missing_run(), Some(format!("the suite sent no records ({})", o.status))),
        },
        Err(e) => (missing_run(), Some(e.to_string())),
    };
    Column {
        label,
        run,
        boot_s: None,
        total_s,
        error,
    }
}

/// gVisor, as a column (`nsconform vm runsc`), or why there is none here.
fn runsc_column(selection: &[String], a: &MatrixArgs) -> Result<Column, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("runsc runs its containers as root here, and this matrix does not run as root".into());
    }
    let opts = super::runsc::RunscOpts {
        runsc: a.runsc.clone(),
        timeout: a.opts.timeout,
        cases: a.opts.cases.clone(),
    };
    let channel = super::runsc::channel(opts.runsc.as_deref(), None, None)?;
    // On a signal the run ends its container and cleans up before the
    // matrix ends.
    let _hold = super::cleanup::hold();
    let run = super::runsc::run(&opts, &super::runsc::guest_args(selection), channel)?;
    let o = &run.outcome;
    Ok(Column {
        label: super::runsc::TARGET.into(),
        boot_s: o.boot.map(|b| b.as_secs_f64()),
        total_s: o.total.as_secs_f64(),
        error: o
            .error
            .clone()
            .or_else(|| (!run.left.is_empty()).then(|| format!("left on the host: {}", run.left.join(", ")))),
        run: run.record,
    })
}

/// The run of a column that has none.
fn missing_run() -> RunRecord {
    RunRecord {
        about: About::here(nix::unistd::geteuid().is_root(), ""),
        status: Status::Crashed {
            why: "no results".into(),
        },
        exit: None,
        machine: vec![],
        filtered_out: 0,
        duration_s: 0.0,
        trials: vec![],
        kernel_log: vec![],
    }
}

/// One kernel in a VM, as a column.
fn vm_column(label: &str, opts: &VmOpts, guest_args: &[String]) -> Column {
    // No kernel ran: the host's (missing_run's) is not this column's.
    let failed = |e: String| Column {
        label: label.to_string(),
        run: RunRecord {
            about: About {
                kernel: crate::record::Kernel::default(),
                ..missing_run().about
            },
            ..missing_run()
        },
        boot_s: None,
        total_s: 0.0,
        error: Some(e),
    };
    // `6.1:userns=off`: a kernel and the guest's settings (`with_settings`).
    let (kernel, opts) = match super::with_settings(label, opts) {
        Ok(k) => k,
        Err(e) => return failed(e),
    };
    let prepared = match prepare(&kernel, &opts) {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    let channel = results::Channel::new(None, None, prepared.host_side());
    let run = match boot(prepared, &opts, guest_args, &|l| channel.line(l), false) {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let o = &run.outcome;
    let error = o.error.clone().or_else(|| {
        channel
            .guest()
            .is_none()
            .then(|| super::qemu::no_status(&run.console, o))
    });
    Column {
        label: label.to_string(),
        run: run.record(channel),
        boot_s: o.boot.map(|b| b.as_secs_f64()),
        total_s: o.total.as_secs_f64(),
        error,
    }
}

/// The VMs, `jobs` at a time, in the order of `kernels`.
fn vm_columns(kernels: &[String], opts: &VmOpts, guest_args: &[String], jobs: usize) -> Vec<Column> {
    let queue = std::sync::Mutex::new(kernels.iter().enumerate().collect::<Vec<_>>());
    let done = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(kernels.len()) {
            s.spawn(|| {
                while let Some((i, k)) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop() {
                    if super::cleanup::interrupted().is_some() {
                        break;
                    }
                    eprintln!("nsconform matrix: {k}: starting");
                    let col = vm_column(k, opts, guest_args);
                    eprintln!(
                        "nsconform matrix: {k}: {} in {:.1} s{}",
                        match col.run.exit {
                            Some(0) => "passed".to_string(),
                            Some(c) => format!("exit {c}"),
                            None => "no result".into(),
                        },
                        col.total_s,
                        col.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
                    );
                    done.lock().unwrap_or_else(|e| e.into_inner()).push((i, col));
                }
            });
        }
    });
    let mut d = done.into_inner().unwrap_or_else(|e| e.into_inner());
    d.sort_by_key(|(i, _)| *i);
    d.into_iter().map(|(_, c)| c).collect()
}

/// A baseline file, read before anything runs: a bad one is a usage error.
pub fn read_baseline(path: &std::path::Path) -> Result<Baseline, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("--baseline {}: {e}", path.display()))?;
    Baseline::of_compat_json(&text)
        .or_else(|| crate::record::stream::read(&text, None).map(|run| Baseline::of_run(&run.trials)))
        .ok_or_else(|| {
            format!(
                "--baseline {}: neither a matrix's compat.json nor a run's records (the JSON lines of --records)",
                path.display()
            )
        })
}

/// compat.json, compat.md, compat.html and a JUnit file per column, in `out`.
fn write_tables(
    out: &std::path::Path,
    columns: &[Column],
    covers: &BTreeMap<String, Vec<String>>,
    baseline: Option<&Compared>,
) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut md = to_markdown(columns, covers, true);
    if let Some(b) = baseline {
        md.push_str(&baseline_md(b));
    }
    let mut files = vec![
        ("compat.json".to_string(), to_json(columns, covers, baseline)),
        ("compat.md".to_string(), md),
        ("compat.html".to_string(), to_html(columns, covers, baseline)),
    ];
    for c in columns {
        let safe: String = c
            .label
            .chars()
            .map(|x| if x.is_ascii_alphanumeric() || x == '.' { x } else { '_' })
            .collect();
        files.push((format!("junit-{safe}.xml"), junit::render(&c.run)));
    }
    for (name, text) in files {
        std::fs::write(out.join(&name), text).map_err(|e| format!("{}: {e}", out.join(&name).display()))?;
    }
    Ok(())
}

/// A version or list of versions ("6.1", "5.10,6.1"), or "runsc": no
/// trial's name holds one.
fn names_kernels(filter: &str) -> bool {
    filter == "runsc" || (filter.contains('.') && filter.chars().all(|c| c.is_ascii_digit() || c == '.' || c == ','))
}

pub fn main(args: &[String]) -> ExitCode {
    let a: MatrixArgs = match crate::plan::env::parse_args("matrix", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let base = match a.baseline.as_deref().map(read_baseline).transpose() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("nsconform matrix: {e}");
            return Exit::Usage.into();
        }
    };
    let rest: Vec<String> = a.suite.iter().filter(|s| *s != "--").cloned().collect();
    let argv: Vec<String> = std::iter::once("nsconform matrix".to_string()).chain(rest).collect();
    let suite = match crate::report::args::parse("nsconform matrix", &argv) {
        Ok(s) => s,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    // `matrix 6.1` reads as "on 6.1" but would filter the trials' names
    // (and run every default kernel).
    if let Some(f) = suite.libtest.filter.as_deref().filter(|f| names_kernels(f)) {
        eprintln!(
            "nsconform matrix: `{f}` would be a filter on the trials' names; to choose the kernels, say --kernels {f}"
        );
        return Exit::Usage.into();
    }
    if suite.format != crate::report::args::Format::Pretty || suite.junit.is_some() || suite.records.is_some() {
        eprintln!("nsconform matrix: the tables are the output; leave --format, --junit and --records out");
        return Exit::Usage.into();
    }
    let selection = suite.selection_argv();
    let mut guest_args: Vec<String> = ["--records", super::qemu::RESULTS_TTY, "--color", "never"]
        .map(String::from)
        .to_vec();
    guest_args.extend(selection.iter().cloned());
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let jobs = a.jobs.unwrap_or((cpus / a.opts.smp.max(1) as usize).max(1));
    // Before anything starts: a signal ends every VM, the host run and the
    // gVisor run, and then the matrix (`cleanup`).
    super::cleanup::watch();
    let stop_if_interrupted = || {
        if super::cleanup::interrupted().is_some() {
            super::cleanup::await_the_end();
        }
    };
    let started = Instant::now();
    let mut columns = vm_columns(&a.kernels, &a.opts, &guest_args, jobs);
    let vms = started.elapsed();
    stop_if_interrupted();
    if !a.no_host {
        eprintln!("nsconform matrix: the suite on this machine");
        columns.push(host_column(&selection, a.opts.cases.as_deref()));
    }
    stop_if_interrupted();
    if !a.no_runsc {
        eprintln!("nsconform matrix: the suite on gVisor (runsc)");
        match runsc_column(&selection, &a) {
            Ok(c) => columns.push(c),
            Err(why) => eprintln!("nsconform matrix: no gVisor row: {why}"),
        }
    }
    stop_if_interrupted();
    let covers = super::areas::covers(a.opts.cases.as_deref());
    let compared = base.as_ref().zip(a.baseline.as_ref()).map(|(b, file)| Compared {
        file: file.display().to_string(),
        changes: compare(&columns, b),
    });
    if let Err(e) = write_tables(&a.out, &columns, &covers, compared.as_ref()) {
        eprintln!("nsconform matrix: {e}");
        return Exit::Usage.into();
    }
    print!("{}", to_markdown(&columns, &covers, false));
    if let Some(b) = &compared {
        print!("{}", baseline_md(b));
    }
    eprintln!(
        "nsconform matrix: {} kernels in {:.1} s ({jobs} at a time); tables in {}",
        a.kernels.len(),
        vms.as_secs_f64(),
        a.out.display()
    );
    Exit::found(!columns.iter().all(Column::passed_whole)).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Kind, TrialRecord};

    fn column(label: &str, trials: Vec<TrialRecord>, status: Status) -> Column {
        let mut run = missing_run();
        run.status = status;
        run.exit = Some(0);
        run.trials = trials;
        Column {
            label: label.into(),
            run,
            boot_s: Some(1.0),
            total_s: 3.0,
            error: None,
        }
    }

    #[test]
    fn cells_fold_the_control_in_and_a_cut_run_shows_errors() {
        let t = |n: &str, k, v| TrialRecord::new(n, k, v, "why");
        let a = column(
            "6.1",
            vec![
                t("uts::a", Kind::Case, Verdict::Pass),
                t("control::uts::a", Kind::Control, Verdict::Fail),
                t("uts::b", Kind::Case, Verdict::Pass),
            ],
            Status::Complete,
        );
        let b = column(
            "7.2",
            vec![
                t("uts::a", Kind::Case, Verdict::Pass),
                t("uts::b", Kind::Case, Verdict::Error),
            ],
            Status::TimedOut {
                why: "after 9 s".into(),
            },
        );
        assert_eq!(cell_of(&a.run.trials, "uts::a").unwrap().reason, "control: why");
        let columns = [a, b];
        let md = to_markdown(&columns, &BTreeMap::new(), true);
        assert!(md.contains("| 6.1 |") && md.contains("errors"), "{md}");
        assert!(md.starts_with("Made by nsconform "), "{md}");
        assert!(md.contains("**7.2: the run did not complete**: after 9 s"), "{md}");
        assert!(md.contains("| `uts::b` | pass | **ERROR** |"), "{md}");
        let json: serde_json::Value = serde_json::from_str(&to_json(&columns, &BTreeMap::new(), None)).unwrap();
        assert_eq!(json["kernels"][1]["errors"], 2);
        assert_eq!(json["behaviours"][0]["cells"]["6.1"]["outcome"], "fail");
        let html = to_html(&columns, &BTreeMap::new(), None);
        assert!(
            html.contains("<th>errors</th>") && html.contains("class=\"error\""),
            "{html}"
        );
    }
}
