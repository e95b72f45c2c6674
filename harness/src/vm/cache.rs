//! The image cache kept small: each change of the suite binary or the cases
//! makes new guest images (tens of MB each, per kernel), which nothing else
//! removes. Images a run uses are marked used (their time set to now); a
//! directory then keeps its newest few of each kind and loses the rest, and
//! the run says what went. Kernels and packages (one per version, reused
//! until a newer one) are not pruned.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What one directory of the cache keeps: files whose name starts with
/// `prefix`, the newest `keep` of them.
struct Rule {
    dir: &'static str,
    prefix: &'static str,
    keep: usize,
}

/// The current build and the last few: a base image per build, an image
/// per kernel of it (a matrix of five kernels makes five), a stripped
/// binary per build, an extracted ELF per kernel image given as a file.
const RULES: &[Rule] = &[
    Rule {
        dir: "initramfs",
        prefix: "base-",
        keep: 3,
    },
    Rule {
        dir: "initramfs",
        prefix: "k-",
        keep: 12,
    },
    Rule {
        dir: "bin",
        prefix: "nsconform-",
        keep: 3,
    },
    Rule {
        dir: "images",
        prefix: "",
        keep: 8,
    },
];

/// Mark `used` as used now, so that pruning keeps them before older ones.
pub fn mark_used(used: &[&Path]) {
    for p in used {
        if let Ok(f) = std::fs::File::options().append(true).open(p) {
            let _ = f.set_modified(SystemTime::now());
        }
    }
}

/// A file or directory of the cache, with its time and size.
struct Entry {
    path: PathBuf,
    modified: SystemTime,
    bytes: u64,
}

fn entries(dir: &Path, prefix: &str) -> Vec<Entry> {
    let mut out: Vec<Entry> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            // A directory is as new as its newest file, as big as its files.
            let files: Vec<std::fs::Metadata> = match m.is_dir() {
                true => super::files_under(&e.path())
                    .iter()
                    .filter_map(|f| f.metadata().ok())
                    .collect(),
                false => vec![m.clone()],
            };
            let modified = files
                .iter()
                .filter_map(|f| f.modified().ok())
                .chain(m.modified().ok())
                .max()?;
            Some(Entry {
                path: e.path(),
                modified,
                bytes: files.iter().map(|f| f.len()).sum(),
            })
        })
        .collect();
    // Newest first.
    out.sort_by_key(|e| std::cmp::Reverse(e.modified));
    out
}

/// Remove what `RULES` do not keep under `root`, never a path of `used`;
/// the paths removed, with their sizes.
pub fn prune(root: &Path, used: &[&Path]) -> Vec<(PathBuf, u64)> {
    mark_used(used);
    let mut removed = Vec::new();
    for r in RULES {
        for e in entries(&root.join(r.dir), r.prefix).into_iter().skip(r.keep) {
            if used.iter().any(|u| u.starts_with(&e.path)) {
                continue;
            }
            let gone = if e.path.is_dir() {
                std::fs::remove_dir_all(&e.path)
            } else {
                std::fs::remove_file(&e.path)
            };
            if gone.is_ok() {
                removed.push((e.path, e.bytes));
            }
        }
    }
    removed
}

/// `removed 3 old images (231 MB) from the cache: base-…, k-…, k-…`, or nothing.
pub fn describe(removed: &[(PathBuf, u64)]) -> Option<String> {
    if removed.is_empty() {
        return None;
    }
    let bytes: u64 = removed.iter().map(|(_, b)| b).sum();
    let names: Vec<String> = removed
        .iter()
        .map(|(p, _)| p.file_name().unwrap_or_default().to_string_lossy().into_owned())
        .collect();
    Some(format!(
        "removed {} old images ({} MB) from the cache: {}",
        removed.len(),
        bytes.div_ceil(1 << 20),
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn file(dir: &Path, name: &str, age_s: u64) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, vec![0u8; 1000]).unwrap();
        let f = std::fs::File::options().append(true).open(&p).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(age_s)).unwrap();
        p
    }

    #[test]
    fn the_newest_few_and_the_used_stay() {
        let root = tempfile::tempdir().unwrap();
        let ir = root.path().join("initramfs");
        std::fs::create_dir_all(&ir).unwrap();
        let bases: Vec<PathBuf> = (0..6).map(|i| file(&ir, &format!("base-{i}.cpio"), 100 * i)).collect();
        // The oldest is the one this run uses again.
        let removed = prune(root.path(), &[&bases[5]]);
        let mut gone: Vec<String> = removed
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        gone.sort();
        // Kept: base-5 (used, now the newest), base-0 and base-1.
        assert_eq!(gone, ["base-2.cpio", "base-3.cpio", "base-4.cpio"]);
        assert!(bases[5].is_file() && bases[0].is_file() && bases[1].is_file());
        let text = describe(&removed).unwrap();
        assert!(
            text.starts_with("removed 3 old images (1 MB) from the cache: "),
            "{text}"
        );
        assert_eq!(describe(&[]), None);
        assert!(prune(root.path(), &[]).is_empty(), "nothing more to remove");
    }
}
