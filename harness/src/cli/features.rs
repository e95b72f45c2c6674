//! `nsconform features`: the kernel features the suite probes, and the answers here.

use crate::exit::Exit;
use crate::plan::{Features, RunEnv};
use serde::Serialize;
use std::process::ExitCode;

/// Probe this kernel's features as the suite does before a run, and print
/// each with its answer: present, or absent and why
#[derive(clap::Parser, Debug)]
#[command(name = "nsconform features")]
pub struct Args {
    /// Print one JSON document (the kernel, root or not, and each feature) instead of the table
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    kernel: String,
    privileged: bool,
    features: Vec<Feature<'a>>,
}

#[derive(Serialize)]
struct Feature<'a> {
    name: &'a str,
    present: bool,
    /// What it is (present) or why it is not (absent).
    detail: String,
}

pub fn main(args: &[String]) -> ExitCode {
    let a: Args = match crate::plan::env::parse_args("features", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let env = RunEnv::detect();
    let f = Features::probe(env.privileged);
    let features: Vec<Feature> = crate::plan::features::FEATURES
        .iter()
        .map(|(name, what)| match f.check(name) {
            Ok(()) => Feature {
                name,
                present: true,
                detail: what.to_string(),
            },
            Err(why) => Feature {
                name,
                present: false,
                detail: why,
            },
        })
        .collect();
    if a.json {
        let report = Report {
            kernel: crate::record::Kernel::here().release,
            privileged: env.privileged,
            features,
        };
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("nsconform features: {e}");
                return Exit::Usage.into();
            }
        }
        return Exit::Ok.into();
    }
    for f in &features {
        if f.present {
            println!("{:<22} yes  ({})", f.name, f.detail);
        } else {
            println!("{:<22} no   {}", f.name, f.detail);
        }
    }
    Exit::Ok.into()
}
