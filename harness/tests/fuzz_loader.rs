//! A mutation fuzzer for the case loader, run as a test: seeds (the
//! project's cases, the malformed corpus and the kept fuzz corpus) are
//! mutated with byte edits, TOML fragments and splices, and every result
//! must load or fail with an error that names a line and a field; nothing
//! may panic.
//!
//! `NSCONFORM_FUZZ_ITERS` (default 4000) and `NSCONFORM_FUZZ_SEED` set the
//! run; `NSCONFORM_FUZZ_KEEP=1` adds inputs that reach an error not seen
//! before to harness/tests/fuzz_corpus/, which later runs replay first.

mod common;
use common::*;
use nsconform::load::{Catalogue, load_bytes};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// Fragments that steer mutations toward the loader's corners.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    "=",
    "\"",
    "'",
    ",",
    ".",
    "\n",
    "#",
    "[[case]]\n",
    "[child]\n",
    "[parent]\n",
    "[[peer]]\n",
    "namespaces = [\"pid\", \"user\"]\n",
    "how = \"setns\"\n",
    "how = \"unshare\"\n",
    "join = \"peer:x\"\n",
    "covers = [\"X1\"]\n",
    "control = { none = \"\" }\n",
    "control = { drop = [\"net\"] }\n",
    "matrix = { a = [1, 2] }\n",
    "matrix = [{ a = 1 }, { b = 2 }]\n",
    "label = \"{a}\"\n",
    "{child}",
    "{peer:x}",
    "{value:}",
    "{",
    "}}",
    "{a}",
    "0x",
    "1e9999",
    "-9223372036854775808",
    "18446744073709551616",
    "\"\\u0000\"",
    "\"\\uD800\"",
    "inf",
    "nan",
    "true",
    "1979-05-27T07:32:00Z",
    "time_offsets = { monotonic = 1 }\n",
    "uid_map = \"0 0 1\"\n",
    "map_root = true\n",
    "run = [{ sync = \"a\" }]\n",
    "on.a = [{ sleep = \"1s\" }]\n",
    "errno = \"EINVAL\"",
    "retry = \"-1s\"",
    "timeout = \"0s\"\n",
    "expect = { ns.uts = { same_as = \"peer:nobody\" } }\n",
    "isolation = { hostname = { like = \"[\" } }\n",
    "spawn = { namespaces = [\"user\"] }",
    "restore = [\"/etc/passwd\"]\n",
    "é",
    "\u{feff}",
    "\r\n",
    "\t",
];

fn mutate(rng: &mut Rng, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.next() as u8),
            2 if !v.is_empty() => {
                let end = (at + 1 + rng.below(32)).min(v.len());
                v.drain(at.min(end)..end);
            }
            3 if !v.is_empty() => {
                let start = rng.below(v.len());
                let end = (start + 1 + rng.below(64)).min(v.len());
                let piece = v[start..end].to_vec();
                v.splice(at..at, piece);
            }
            4 | 5 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                v.splice(at..at, t.iter().copied());
            }
            6 if !seeds.is_empty() => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
            _ => v.truncate(at),
        }
    }
    v
}

fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(d) = std::fs::read_dir(dir) else { return };
    for e in d.flatten() {
        let p = e.path();
        if p.is_dir() {
            toml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

/// What kind of outcome an input reached: an error's message with its
/// specifics (numbers, quoted names) blurred, or "loaded".
fn kind(r: &Result<usize, nsconform::load::LoadError>) -> String {
    match r {
        Ok(_) => "loaded".into(),
        Err(e) => {
            let mut k = String::new();
            let mut quoted: Option<char> = None;
            for c in e.message.chars() {
                match (c, quoted) {
                    ('`' | '"', None) => quoted = Some(c),
                    (c, Some(q)) if c == q => quoted = None,
                    (_, Some(_)) => {}
                    (d, None) if d.is_ascii_digit() => {}
                    (c, None) => k.push(c),
                }
            }
            // The gist: up to the first clause break.
            k.split([',', ':', '('])
                .next()
                .unwrap_or("")
                .trim()
                .chars()
                .take(40)
                .collect()
        }
    }
}

/// Load one input: it must not panic, and an error must say where and what.
fn check(input: &[u8], catalogue: &Catalogue) -> Result<Result<usize, nsconform::load::LoadError>, String> {
    let path = Path::new("cases/uts/fuzzed.toml");
    let r = std::panic::catch_unwind(|| load_bytes(path, "uts", input, catalogue).map(|c| c.len()))
        .map_err(|_| "the loader panicked".to_string())?;
    if let Err(e) = &r {
        let lines = input.iter().filter(|&&b| b == b'\n').count() + 1;
        if e.line == 0 || e.line > lines || e.column == 0 || e.field.is_empty() || e.message.trim().is_empty() {
            return Err(format!("an error that does not say where or what: {e:?}"));
        }
        if e.to_string().is_empty() {
            return Err("an empty error text".into());
        }
    }
    Ok(r)
}

#[test]
fn the_loader_survives_mutated_cases() {
    let catalogue = Catalogue::builtin();
    let kept_dir = project().join("harness/tests/fuzz_corpus");
    let mut kept = Vec::new();
    toml_files(&kept_dir, &mut kept);
    let mut seed_files = Vec::new();
    toml_files(&project().join("cases"), &mut seed_files);
    toml_files(&project().join("harness/tests/malformed"), &mut seed_files);
    seed_files.extend(kept.iter().cloned());
    seed_files.sort();
    let seeds: Vec<Vec<u8>> = seed_files.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    assert!(seeds.len() > 20, "too few seeds");

    // The kept corpus first: each once found something new.
    let mut seen = BTreeSet::new();
    for p in &kept {
        let input = std::fs::read(p).unwrap();
        let r = check(&input, catalogue).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        seen.insert(kind(&r));
    }

    let iters: usize = std::env::var("NSCONFORM_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let seed: u64 = std::env::var("NSCONFORM_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6e73_636f_6e66);
    let keep = std::env::var_os("NSCONFORM_FUZZ_KEEP").is_some();
    let mut rng = Rng(seed | 1);
    let mut new_kinds = 0;
    for i in 0..iters {
        let base = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, base, &seeds);
        let r = match check(&input, catalogue) {
            Ok(r) => r,
            Err(e) => {
                let p = kept_dir.join(format!("crash-{seed}-{i}.toml"));
                std::fs::write(&p, &input).unwrap();
                panic!("input {i} (seed {seed}), saved as {}: {e}", p.display());
            }
        };
        if seen.insert(kind(&r)) {
            new_kinds += 1;
            if keep {
                std::fs::write(kept_dir.join(format!("kind-{seed}-{i}.toml")), &input).unwrap();
            }
        }
    }
    if std::env::var_os("NSCONFORM_FUZZ_SHOW").is_some() {
        for k in &seen {
            eprintln!("  {k}");
        }
    }
    eprintln!(
        "fuzzed {iters} inputs from {} seeds: {} kinds of outcome, {new_kinds} not in the kept corpus",
        seeds.len(),
        seen.len()
    );
}
