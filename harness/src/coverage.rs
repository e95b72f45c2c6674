//! `nsconform coverage`: per area, which catalogue IDs the cases cover on
//! this machine (as this user, with this runner), which are covered only by
//! cases that cannot run here and why, and which no case covers and why.

use crate::load::Catalogue;
use crate::plan::{self, Features, RunEnv, TrialSpec};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::process::ExitCode;

/// The cases that list one ID: those that run here, and those ignored here with their reason.
#[derive(Default, Debug)]
pub struct Cover {
    pub runs: Vec<String>,
    pub ignored: Vec<(String, String)>,
}

#[derive(Debug, PartialEq)]
pub enum Status {
    Covered,
    NotHere,
    Uncovered,
}

impl Cover {
    pub fn status(&self) -> Status {
        if !self.runs.is_empty() {
            Status::Covered
        } else if !self.ignored.is_empty() {
            Status::NotHere
        } else {
            Status::Uncovered
        }
    }
}

/// ID -> its cases, from the trials of a plan (controls left out: they cover
/// nothing new). A per-type entry (`N15:ipc`) counts for its ID too.
pub fn tally(specs: &[TrialSpec]) -> BTreeMap<String, Cover> {
    tally_by(specs, |entry| {
        Some(entry.split_once(':').map_or(entry, |(id, _)| id).to_string())
    })
}

/// `ID:type` -> its cases, for the per-type entries only.
pub fn tally_types(specs: &[TrialSpec]) -> BTreeMap<String, Cover> {
    tally_by(specs, |entry| entry.contains(':').then(|| entry.to_string()))
}

fn tally_by(specs: &[TrialSpec], key: impl Fn(&str) -> Option<String>) -> BTreeMap<String, Cover> {
    let mut out: BTreeMap<String, Cover> = BTreeMap::new();
    for s in specs.iter().filter(|s| !s.control) {
        // A case listing both `N15` and `N15:uts` is one case for N15.
        let mut keys: Vec<String> = s.case.covers.iter().filter_map(|e| key(e)).collect();
        keys.dedup();
        for k in keys {
            let c = out.entry(k).or_default();
            match &s.ignore {
                None => c.runs.push(s.name.clone()),
                Some(why) => c.ignored.push((s.name.clone(), why.reason.clone())),
            }
        }
    }
    out
}

/// The ID x type table of the behaviours the catalogue checks type by type:
/// `yes` a case runs here, `ign` only cases ignored here cover the cell,
/// `NO` no case covers it. Rows sharing a list of types share a header.
/// Indented deeper than the per-ID lines, so a reader of those (the
/// project's tests) never takes a row for one.
/// Returns the text and the cells not covered here.
pub fn render_types(catalogue: &Catalogue, cells: &BTreeMap<String, Cover>) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut missing = Vec::new();
    let mut header: Option<&[String]> = None;
    let none = Cover::default();
    let _ = writeln!(
        out,
        "\nper type (`covers = [\"ID:type\"]`): yes = a case runs here, ign = ignored here, NO = no case"
    );
    for (id, types) in catalogue.typed_ids() {
        let width = |t: &str| t.len().max(4);
        if header != Some(types) {
            let cols: Vec<String> = types.iter().map(|t| format!("{t:<w$}", w = width(t))).collect();
            let _ = writeln!(out, "    {:<5} {}", "", cols.join(" ").trim_end());
            header = Some(types);
        }
        let marks: Vec<String> = types
            .iter()
            .map(|t| {
                let cell = format!("{id}:{t}");
                let mark = match cells.get(&cell).unwrap_or(&none).status() {
                    Status::Covered => "yes",
                    Status::NotHere => "ign",
                    Status::Uncovered => "NO",
                };
                if mark != "yes" {
                    missing.push(cell);
                }
                format!("{mark:<w$}", w = width(t))
            })
            .collect();
        let _ = writeln!(out, "    {id:<5} {}", marks.join(" ").trim_end());
    }
    (out, missing)
}

/// How many cases to name on one line before "+N more".
const SHOWN: usize = 3;

fn names(list: &[String]) -> String {
    let mut s = list.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if list.len() > SHOWN {
        let _ = write!(s, ", +{} more", list.len() - SHOWN);
    }
    s
}

/// The report text and the number of IDs covered here.
pub fn render(catalogue: &Catalogue, covers: &BTreeMap<String, Cover>, verbose: bool) -> (String, usize) {
    let none = Cover::default();
    let mut out = String::new();
    let (mut total, mut covered, mut gaps, mut gaps_covered) = (0, 0, 0, 0);
    let mut missing: Vec<String> = Vec::new();
    for area in &catalogue.areas {
        let here = area
            .ids
            .iter()
            .filter(|(id, _)| covers.get(id).unwrap_or(&none).status() == Status::Covered)
            .count();
        let _ = writeln!(
            out,
            "\n{}  {}: {here} of {} covered here",
            area.letter,
            area.title,
            area.ids.len()
        );
        for (id, summary) in &area.ids {
            let c = covers.get(id).unwrap_or(&none);
            let gap = catalogue.is_gap(id);
            let tag = format!("{id}{}", if gap { "*" } else { "" });
            total += 1;
            gaps += gap as usize;
            let line = match c.status() {
                Status::Covered => {
                    covered += 1;
                    gaps_covered += gap as usize;
                    let mut l = format!("yes      {}", names(&c.runs));
                    if !c.ignored.is_empty() {
                        let _ = write!(l, " (not here: {})", c.ignored.len());
                    }
                    l
                }
                Status::NotHere => {
                    missing.push(id.clone());
                    let (name, why) = &c.ignored[0];
                    format!("not here {name}: {why}")
                }
                Status::Uncovered => {
                    missing.push(id.clone());
                    match catalogue.uncovered_reason(id) {
                        Some(why) => format!("no case  {why}"),
                        None => "no case  (no reason given in cases/behaviours.toml)".to_string(),
                    }
                }
            };
            let _ = writeln!(out, "  {tag:<5} {line}");
            if verbose {
                let _ = writeln!(out, "         {summary}");
                for (name, why) in &c.ignored {
                    let _ = writeln!(out, "         not here: {name}: {why}");
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "\ncovered here: {covered} of {total} behaviours; of the {gaps} no other suite checks (*): {gaps_covered}"
    );
    if !missing.is_empty() {
        let _ = writeln!(out, "not covered here: {}", missing.join(" "));
    }
    (out, covered)
}

/// The whole report: per ID, then ID x type; and the number of IDs covered here.
pub fn report(catalogue: &Catalogue, specs: &[TrialSpec], verbose: bool) -> (String, usize) {
    let (mut text, covered) = render(catalogue, &tally(specs), verbose);
    let (types, missing) = render_types(catalogue, &tally_types(specs));
    text.push_str(&types);
    if !missing.is_empty() {
        let _ = writeln!(text, "cells not covered here: {}", missing.join(" "));
    }
    (text, covered)
}

/// Which catalogue behaviours the cases cover on this machine (as this
/// user, with this runner), which only cases that cannot run here cover, and
/// which no case covers, with the reasons.
#[derive(clap::Parser, Debug)]
#[command(name = "nsconform coverage")]
pub struct Args {
    /// Each behaviour's summary and every case that cannot run here, with its reason.
    #[arg(short, long)]
    verbose: bool,
    /// Exit 1 when fewer than N behaviours are covered here.
    #[arg(long, value_name = "N")]
    min: Option<usize>,
}

pub fn main(args: &[String]) -> ExitCode {
    let Args { verbose, min } = match crate::plan::env::parse_args("coverage", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut env = RunEnv::detect();
    let catalogue = Catalogue::builtin();
    let dir = crate::plan::env::cases_dir();
    let runner = match crate::runner::select(&crate::plan::env::runners_dir()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nsconform: {e}");
            return ExitCode::from(2);
        }
    };
    let features = Features::probe(env.privileged);
    if features.check("pidns_pid_max").is_ok() {
        env.sandbox_pid_max = Some(crate::plan::env::SANDBOX_PID_MAX);
    }
    let (specs, errors) = match plan::plan_dir(&dir, &features, &env, runner.as_ref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nsconform: {e}");
            return ExitCode::from(2);
        }
    };
    let (text, covered) = report(catalogue, &specs, verbose);
    let who = if env.privileged { "root" } else { "unprivileged" };
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    println!(
        "nsconform coverage: kernel {release}, {who}, runner {}, cases in {}",
        runner.name(),
        dir.display()
    );
    print!("{text}");
    print!("{}", per_mode(catalogue, &dir, &features, &env, runner.as_ref()));
    // A bad file hides the IDs it would cover: say so rather than under-count silently.
    for e in &errors {
        println!("could not load: {e}");
    }
    match min {
        Some(n) if covered < n => {
            println!("fewer than {n} behaviours covered here");
            ExitCode::from(1)
        }
        _ => ExitCode::SUCCESS,
    }
}

// Per mode: what a root run and an unprivileged run check of the catalogue
// on this machine, planned from the same cases (with the features probed in
// this run's mode).

/// The environments of the two modes: a root run; an unprivileged run as
/// this user (its subordinate ids as detected), and, where they differ,
/// one whose subordinate ids cover every id a case names.
pub fn mode_envs(env: &RunEnv) -> Vec<(String, RunEnv)> {
    let (uid, gid) = RunEnv::drop_ids();
    let root = RunEnv {
        privileged: true,
        euid: 0,
        egid: 0,
        uid,
        gid,
        subids: None,
        ..env.clone()
    };
    let mut user = RunEnv {
        privileged: false,
        subids: None,
        ..env.clone()
    };
    if !env.privileged {
        user.subids = env.subids.clone();
    } else {
        user.euid = uid;
        user.egid = gid;
        user.uid = uid;
        user.gid = gid;
    }
    let what = match &user.subids {
        Some(s) => format!("unprivileged, ids 1..={} from /etc/subuid", s.count),
        None => "unprivileged, root only mapped".to_string(),
    };
    let mut out = vec![("root".to_string(), root), (what, user.clone())];
    if user.subids.as_ref().is_none_or(|s| s.count < u32::MAX / 2) {
        let wide = crate::plan::env::SubIds {
            uid_start: 100_000,
            gid_start: 100_000,
            count: u32::MAX / 2,
            newuidmap: crate::plan::env::NEWUIDMAP.into(),
            newgidmap: crate::plan::env::NEWGIDMAP.into(),
        };
        out.push((
            "unprivileged, with a subordinate range covering every id the cases name".to_string(),
            RunEnv {
                subids: Some(wide),
                ..user
            },
        ));
    }
    out
}

/// One line per mode: behaviours covered, and trials run, as userns, ignored.
fn per_mode(
    catalogue: &Catalogue,
    dir: &std::path::Path,
    features: &Features,
    env: &RunEnv,
    runner: &dyn crate::runner::Runner,
) -> String {
    let total: usize = catalogue.areas.iter().map(|a| a.ids.len()).sum();
    let mut out = String::from("\nper mode (planned here with this run's probes, not run):\n");
    let mut last = None;
    for (what, env) in mode_envs(env) {
        let Ok((specs, _)) = plan::plan_dir(dir, features, &env, runner) else {
            continue;
        };
        let covered = tally(&specs).values().filter(|c| c.status() == Status::Covered).count();
        let runs = specs.iter().filter(|s| s.ignore.is_none()).count();
        let userns = specs.iter().filter(|s| s.ignore.is_none() && s.userns).count();
        // A wider range than the user's that changes nothing is not worth a line.
        if last.replace((covered, runs, userns)) == Some((covered, runs, userns)) {
            continue;
        }
        let _ = writeln!(
            out,
            "  {what}: {covered} of {total} behaviours; {runs} of {} trials run ({userns} as root of a user namespace of their own)",
            specs.len()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        Catalogue::parse(
            r#"
[areas.X]
title = "Creation"
gaps = ["X2"]
[areas.X.ids]
X1 = "one"
X2 = "two"
X3 = "three"
X4 = "four"
[areas.X.uncovered]
X4 = "needs a newer kernel"
"#,
        )
        .unwrap()
    }

    #[test]
    fn statuses_and_counts() {
        let mut covers = BTreeMap::new();
        covers.insert(
            "X1".to_string(),
            Cover {
                runs: vec!["api::a".into()],
                ignored: vec![],
            },
        );
        covers.insert(
            "X2".to_string(),
            Cover {
                runs: vec![],
                ignored: vec![("api::b".into(), "needs root".into())],
            },
        );
        let (text, n) = render(&catalogue(), &covers, false);
        assert_eq!(n, 1);
        assert!(text.contains("X1    yes      api::a"), "{text}");
        assert!(text.contains("X2*   not here api::b: needs root"), "{text}");
        assert!(text.contains("X3    no case  (no reason given"), "{text}");
        assert!(text.contains("X4    no case  needs a newer kernel"), "{text}");
        assert!(text.contains("covered here: 1 of 4 behaviours; of the 1 no other suite checks (*): 0"));
        assert!(text.contains("not covered here: X2 X3 X4"));
    }

    #[test]
    fn per_type_cells() {
        let c = Catalogue::parse(
            r#"
[areas.N]
title = "nsfs"
gaps = []
[areas.N.ids]
N1 = "one"
N2 = "two"
N3 = "three"
[areas.N.types]
N1 = ["uts", "ipc"]
N3 = ["tcp", "udp"]
"#,
        )
        .unwrap();
        let mut cells = BTreeMap::new();
        cells.insert(
            "N1:uts".to_string(),
            Cover {
                runs: vec!["api::a".into()],
                ignored: vec![],
            },
        );
        cells.insert(
            "N3:udp".to_string(),
            Cover {
                runs: vec![],
                ignored: vec![("api::b".into(), "needs root".into())],
            },
        );
        let (text, missing) = render_types(&c, &cells);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], "          uts  ipc", "{text}");
        assert_eq!(lines[3], "    N1    yes  NO", "{text}");
        assert_eq!(lines[4], "          tcp  udp", "{text}");
        assert_eq!(lines[5], "    N3    NO   ign", "{text}");
        assert!(!text.contains("N2"), "{text}");
        assert_eq!(missing, ["N1:ipc", "N3:tcp", "N3:udp"]);
    }

    #[test]
    fn long_lists_are_shortened() {
        let l: Vec<String> = (0..5).map(|i| format!("c{i}")).collect();
        assert_eq!(names(&l), "c0, c1, c2, +2 more");
    }
}

#[cfg(test)]
mod args_tests {
    use super::Args;
    use clap::Parser;

    #[test]
    fn coverage_arguments_go_through_clap() {
        let help = Args::try_parse_from(["c", "--help"]).unwrap_err();
        assert_eq!(
            (help.kind(), help.exit_code()),
            (clap::error::ErrorKind::DisplayHelp, 0)
        );
        assert!(help.to_string().contains("--min <N>"));
        let bad = Args::try_parse_from(["c", "--min", "abc"]).unwrap_err();
        assert_eq!(bad.exit_code(), 2);
        let a = Args::try_parse_from(["c", "-v", "--min", "3"]).expect("valid");
        assert!(a.verbose && a.min == Some(3));
    }
}
