//! `nsconform matrix`: the suite on a list of kernels (several VMs at once
//! where the CPUs allow) and on this machine's kernel, and the compatibility
//! table: each behaviour (catalogue ID and case) by kernel, pass, fail, or
//! ignored with its reason. Written as JSON (the data), Markdown (for the
//! README) and one static HTML page.

use super::results::{self, Outcome, TrialResult};
use super::{VmOpts, run_kernel};
use crate::vm::results::xml_escape;
use clap::Parser;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(
    name = "nsconform matrix",
    about = "Run the suite on several kernels and write the compatibility table"
)]
struct MatrixArgs {
    #[command(flatten)]
    opts: VmOpts,
    /// Kernels, comma-separated, as for `nsconform vm`
    #[arg(long, default_value = "5.10,6.1,6.12,7.2", value_delimiter = ',')]
    kernels: Vec<String>,
    /// Leave out the run on this machine's kernel
    #[arg(long)]
    no_host: bool,
    /// VMs at once (default: CPUs / --smp)
    #[arg(long)]
    jobs: Option<usize>,
    /// Directory for compat.json, compat.md, compat.html and a JUnit file per kernel
    #[arg(long, default_value = "target/nsconform-matrix")]
    out: PathBuf,
    /// The suite's arguments (filters)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    suite: Vec<String>,
}

/// One column of the table.
#[derive(Clone, Debug, Default)]
pub struct Column {
    pub label: String,
    pub version: String,
    pub accel: String,
    pub boot_s: Option<f64>,
    pub total_s: f64,
    pub exit: Option<i32>,
    pub machine: String,
    pub error: Option<String>,
    pub results: Vec<TrialResult>,
}

/// A cell: a case with its control folded in.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Pass,
    Fail(String),
    Ignored(String),
    Absent,
}

/// "needs `feature` (Linux X)" out of an ignore reason, else the reason's first clause.
pub fn short_reason(r: &str) -> String {
    let feature = r
        .find("needs `")
        .and_then(|i| r[i + 7..].find('`').map(|j| r[i..i + 7 + j + 1].to_string()));
    let linux = r.rfind("Linux ").map(|i| {
        r[i..]
            .chars()
            .take_while(|c| *c != ')' && *c != ',' && *c != ';')
            .collect::<String>()
    });
    match (feature, linux) {
        (Some(f), Some(l)) => format!("{f} ({})", l.trim()),
        (Some(f), None) => f,
        _ => r.split(':').next().unwrap_or(r).trim().to_string(),
    }
}

pub fn cell_of(results: &[TrialResult], case: &str) -> Cell {
    let find = |n: &str| results.iter().find(|t| t.name == n).map(|t| t.outcome.clone());
    let control = find(&format!("control::{case}"));
    match (find(case), control) {
        (None, _) => Cell::Absent,
        (Some(Outcome::Fail(m)), _) => Cell::Fail(m),
        (_, Some(Outcome::Fail(m))) => Cell::Fail(format!("control: {m}")),
        (Some(Outcome::Ignored(r)), _) => Cell::Ignored(r),
        (Some(Outcome::Pass), _) => Cell::Pass,
    }
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// Rows: every case (not control, not load error) any column ran, with its catalogue IDs.
fn rows(columns: &[Column], covers: &BTreeMap<String, Vec<String>>) -> Vec<(String, String)> {
    let mut names: Vec<String> = columns
        .iter()
        .flat_map(|c| c.results.iter())
        .filter(|t| !t.name.starts_with("control::") && !t.name.starts_with("load::"))
        .map(|t| t.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|n| (covers.get(&n).map(|c| c.join(" ")).unwrap_or_default(), n))
        .collect()
}

pub fn to_json(columns: &[Column], covers: &BTreeMap<String, Vec<String>>) -> String {
    let mut s = String::from("{\n  \"kernels\": [\n");
    for (i, c) in columns.iter().enumerate() {
        let n = |f: fn(&Outcome) -> bool| c.results.iter().filter(|t| f(&t.outcome)).count();
        s.push_str(&format!(
            "    {{\"label\": {}, \"version\": {}, \"accel\": {}, \"boot_s\": {}, \"total_s\": {:.2}, \"exit\": {}, \"machine\": {}, \"error\": {}, \"passed\": {}, \"failed\": {}, \"ignored\": {}}}{}\n",
            json_str(&c.label),
            json_str(&c.version),
            json_str(&c.accel),
            c.boot_s.map(|b| format!("{b:.2}")).unwrap_or("null".into()),
            c.total_s,
            c.exit.map(|e| e.to_string()).unwrap_or("null".into()),
            json_str(&c.machine),
            c.error.as_deref().map(json_str).unwrap_or("null".into()),
            n(|o| matches!(o, Outcome::Pass)),
            n(|o| matches!(o, Outcome::Fail(_))),
            n(|o| matches!(o, Outcome::Ignored(_))),
            if i + 1 < columns.len() { "," } else { "" }
        ));
    }
    s.push_str("  ],\n  \"behaviours\": [\n");
    let rows = rows(columns, covers);
    for (i, (ids, case)) in rows.iter().enumerate() {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| {
                let (o, why) = match cell_of(&c.results, case) {
                    Cell::Pass => ("pass", String::new()),
                    Cell::Fail(m) => ("fail", m),
                    Cell::Ignored(r) => ("ignored", r),
                    Cell::Absent => ("absent", String::new()),
                };
                format!(
                    "{}: {{\"outcome\": \"{o}\", \"reason\": {}}}",
                    json_str(&c.label),
                    json_str(&why)
                )
            })
            .collect();
        s.push_str(&format!(
            "    {{\"ids\": {}, \"case\": {}, \"cells\": {{{}}}}}{}\n",
            json_str(ids),
            json_str(case),
            cells.join(", "),
            if i + 1 < rows.len() { "," } else { "" }
        ));
    }
    s.push_str("  ]\n}\n");
    s
}

fn cell_md(c: &Cell) -> String {
    match c {
        Cell::Pass => "pass".into(),
        Cell::Fail(_) => "**FAIL**".into(),
        Cell::Ignored(r) => format!("ignored: {}", short_reason(r).replace('|', "\\|")),
        Cell::Absent => "-".into(),
    }
}

/// The kernels, then the behaviours whose outcome is not `pass` everywhere
/// (the rest counted), then, in `full`, every row.
pub fn to_markdown(columns: &[Column], covers: &BTreeMap<String, Vec<String>>, full: bool) -> String {
    let mut s = String::from(
        "| kernel | version | run | boot + suite | passed | failed | ignored | machine after |\n|---|---|---|---|---|---|---|---|\n",
    );
    for c in columns {
        let n = |f: fn(&Outcome) -> bool| c.results.iter().filter(|t| f(&t.outcome)).count();
        let version = c
            .version
            .strip_prefix("Linux version ")
            .unwrap_or(&c.version)
            .split_whitespace()
            .next()
            .unwrap_or("");
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            c.label,
            version,
            c.accel,
            match c.boot_s {
                Some(b) => format!("{b:.1} s + {:.1} s", c.total_s - b),
                None => format!("{:.1} s", c.total_s),
            },
            n(|o| matches!(o, Outcome::Pass)),
            n(|o| matches!(o, Outcome::Fail(_))),
            n(|o| matches!(o, Outcome::Ignored(_))),
            c.machine
        ));
    }
    let rows = rows(columns, covers);
    let head = format!(
        "| IDs | case | {} |\n|---|---|{}\n",
        columns.iter().map(|c| c.label.as_str()).collect::<Vec<_>>().join(" | "),
        "---|".repeat(columns.len())
    );
    let line = |ids: &str, case: &str| {
        let cells: Vec<String> = columns.iter().map(|c| cell_md(&cell_of(&c.results, case))).collect();
        format!("| {ids} | `{case}` | {} |\n", cells.join(" | "))
    };
    let differ: Vec<&(String, String)> = rows
        .iter()
        .filter(|(_, case)| columns.iter().any(|c| cell_of(&c.results, case) != Cell::Pass))
        .collect();
    s.push_str(&format!(
        "\nBehaviours not passing on every kernel ({} of {}; the other {} pass on all):\n\n",
        differ.len(),
        rows.len(),
        rows.len() - differ.len()
    ));
    s.push_str(&head);
    for (ids, case) in &differ {
        s.push_str(&line(ids, case));
    }
    if full {
        s.push_str("\nEvery behaviour:\n\n");
        s.push_str(&head);
        for (ids, case) in &rows {
            s.push_str(&line(ids, case));
        }
    }
    s
}

pub fn to_html(columns: &[Column], covers: &BTreeMap<String, Vec<String>>) -> String {
    let mut s = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>nsconform: kernel compatibility</title>\n<style>\nbody{font-family:sans-serif;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}\n.pass{background:#d8f5d8}.fail{background:#f8c8c8;font-weight:bold}.ignored{background:#f3efc8}.absent{color:#999}code{font-size:12px}\n</style></head><body>\n<h1>nsconform: kernel compatibility</h1>\n<p>Each behaviour (catalogue ID and case, with its control) by kernel. Hover a cell for the reason or the failure.</p>\n<table><tr><th>kernel</th><th>version</th><th>run</th><th>boot</th><th>boot + suite</th><th>machine after</th></tr>\n",
    );
    for c in columns {
        s.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} s</td><td>{}</td></tr>\n",
            xml_escape(&c.label),
            xml_escape(&c.version),
            xml_escape(&c.accel),
            c.boot_s.map(|b| format!("{b:.1} s")).unwrap_or("-".into()),
            c.total_s,
            xml_escape(&c.machine)
        ));
    }
    s.push_str("</table>\n<h2>Behaviours</h2>\n<table><tr><th>IDs</th><th>case</th>");
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
            let (class, text, title) = match cell_of(&c.results, &case) {
                Cell::Pass => ("pass", "pass".to_string(), String::new()),
                Cell::Fail(m) => ("fail", "FAIL".into(), m),
                Cell::Ignored(r) => ("ignored", format!("ignored: {}", short_reason(&r)), r),
                Cell::Absent => ("absent", "-".into(), String::new()),
            };
            s.push_str(&format!(
                "<td class=\"{class}\" title=\"{}\">{}</td>",
                xml_escape(&title),
                xml_escape(&text)
            ));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n</body></html>\n");
    s
}

/// The suite natively, as a column (same arguments, pretty output).
fn host_column(suite: &[String]) -> Column {
    let me = std::env::current_exe().unwrap_or_else(|_| "nsconform".into());
    let started = Instant::now();
    let out = std::process::Command::new(me)
        .args(suite)
        .stderr(std::process::Stdio::inherit())
        .output();
    let total_s = started.elapsed().as_secs_f64();
    let version = std::fs::read_to_string("/proc/version").unwrap_or_default();
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    match out {
        Ok(o) => Column {
            label: format!("host {}", release.split('-').next().unwrap_or(&release)),
            version: version.trim().to_string(),
            accel: "native".into(),
            boot_s: None,
            total_s,
            exit: o.status.code(),
            machine: "(checked by the suite)".into(),
            error: None,
            results: results::parse_pretty(&String::from_utf8_lossy(&o.stdout)),
        },
        Err(e) => Column {
            label: "host".into(),
            error: Some(e.to_string()),
            ..Default::default()
        },
    }
}

pub fn main(args: &[String]) -> ExitCode {
    let a =
        match MatrixArgs::try_parse_from(std::iter::once("nsconform matrix".to_string()).chain(args.iter().cloned())) {
            Ok(a) => a,
            Err(e) => {
                let _ = e.print();
                return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
            }
        };
    let mut suite: Vec<String> = a.suite.iter().filter(|s| *s != "--").cloned().collect();
    if results::format_of(&suite).is_some() {
        eprintln!("nsconform matrix: the table is made from the pretty output; leave --format out");
        return ExitCode::from(2);
    }
    suite.extend(["--color".into(), "never".into()]);
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let jobs = a.jobs.unwrap_or((cpus / a.opts.smp.max(1) as usize).max(1));
    let queue = std::sync::Mutex::new(a.kernels.iter().enumerate().collect::<Vec<_>>());
    let done = std::sync::Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..jobs.min(a.kernels.len()) {
            s.spawn(|| {
                loop {
                    let Some((i, k)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    eprintln!("nsconform matrix: {k}: starting");
                    let col = match run_kernel(k, &a.opts, &suite, false) {
                        Ok(r) => {
                            let o = r.outcome;
                            Column {
                                label: k.clone(),
                                version: o.kernel.clone().unwrap_or(r.kernel.version.clone()),
                                accel: r.accel.name().into(),
                                boot_s: o.boot.map(|b| b.as_secs_f64()),
                                total_s: o.total.as_secs_f64(),
                                exit: o.exit,
                                machine: match (&o.machine, o.exit) {
                                    (_, None) => "-".into(),
                                    (None, _) => "unchanged".into(),
                                    (Some(m), _) => format!("CHANGED: {m}"),
                                },
                                error: o.error.clone(),
                                results: results::parse_pretty(&String::from_utf8_lossy(&o.stdout)),
                            }
                        }
                        Err(e) => Column {
                            label: k.clone(),
                            error: Some(e),
                            ..Default::default()
                        },
                    };
                    eprintln!(
                        "nsconform matrix: {k}: {} in {:.1} s{}",
                        match col.exit {
                            Some(0) => "passed".to_string(),
                            Some(c) => format!("exit {c}"),
                            None => "no result".into(),
                        },
                        col.total_s,
                        col.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
                    );
                    done.lock().unwrap().push((i, col));
                }
            });
        }
    });
    let vms = started.elapsed();
    let mut columns: Vec<Column> = {
        let mut d = done.into_inner().unwrap();
        d.sort_by_key(|(i, _)| *i);
        d.into_iter().map(|(_, c)| c).collect()
    };
    if !a.no_host {
        eprintln!("nsconform matrix: the suite on this machine");
        columns.push(host_column(&suite));
    }
    let covers: BTreeMap<String, Vec<String>> = match crate::load::load_dir(
        &a.opts.cases.clone().unwrap_or_else(crate::plan::env::cases_dir),
        crate::load::Catalogue::builtin(),
    ) {
        Ok(l) => l
            .cases
            .iter()
            .map(|c| {
                (
                    c.id.clone(),
                    c.spec.covers.iter().map(|x| x.get_ref().clone()).collect(),
                )
            })
            .collect(),
        Err(_) => BTreeMap::new(),
    };
    if let Err(e) = std::fs::create_dir_all(&a.out) {
        eprintln!("nsconform matrix: {}: {e}", a.out.display());
        return ExitCode::from(2);
    }
    let files = [
        ("compat.json", to_json(&columns, &covers)),
        ("compat.md", to_markdown(&columns, &covers, true)),
        ("compat.html", to_html(&columns, &covers)),
    ];
    let junits: Vec<(String, String)> = columns
        .iter()
        .map(|c| {
            let safe: String = c
                .label
                .chars()
                .map(|x| if x.is_ascii_alphanumeric() || x == '.' { x } else { '_' })
                .collect();
            (format!("junit-{safe}.xml"), results::junit(&c.results, &c.version))
        })
        .collect();
    for (name, text) in files.into_iter().map(|(n, t)| (n.to_string(), t)).chain(junits) {
        if let Err(e) = std::fs::write(a.out.join(&name), text) {
            eprintln!("nsconform matrix: {}: {e}", a.out.join(&name).display());
            return ExitCode::from(2);
        }
    }
    print!("{}", to_markdown(&columns, &covers, false));
    eprintln!(
        "nsconform matrix: {} kernels in {:.1} s ({jobs} at a time); tables in {}",
        a.kernels.len(),
        vms.as_secs_f64(),
        a.out.display()
    );
    let bad = columns
        .iter()
        .any(|c| c.error.is_some() || c.exit != Some(0) || c.machine.starts_with("CHANGED"));
    ExitCode::from(if bad { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_shorten_to_feature_and_kernel() {
        assert_eq!(
            short_reason("needs `idmapped_tmpfs`: idmapping a detached tmpfs mount: EINVAL (needs Linux 6.3)"),
            "needs `idmapped_tmpfs` (Linux 6.3)"
        );
        assert_eq!(short_reason("needs root: the case says so"), "needs root");
    }
}
