//! The guest's whole file system, one initramfs: the static suite binary (it
//! is also the guest's init), `cases/`, `runners/`, and the programs the
//! cases call with their shared libraries, laid out as on this machine (so
//! `/bin -> usr/bin` and the dynamic loader's path hold as they do here).
//! Cached by what went into it; a kernel's modules are a second small
//! archive appended to a copy, cached per kernel.

use super::cpio::Cpio;
use super::{cache_dir, hash_bytes};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// Where the suite lives in the guest.
pub const GUEST_DIR: &str = "/nsconform";
pub const GUEST_BIN: &str = "/nsconform/nsconform";

/// Programs a run may call besides those the cases name: the shell their
/// command lines go through, and what `sh` steps commonly use.
const BASE_TOOLS: &[&str] = &[
    "sh", "ip", "mount", "umount", "unshare", "nsenter", "ipcmk", "ipcs", "ipcrm", "lsns", "stat", "grep", "cat", "ls",
    "sleep", "setpriv", "runuser", "id", "readlink", "hostname", "env", "true", "false", "kill", "echo",
];

/// The static suite binary: this one if it is static, else `NSCONFORM_VM_BINARY`,
/// else built from the source tree into `target/vm` (glibc, +crt-static; a
/// release build: under TCG the guest's user-space work is emulated too, and
/// loading the cases took 0.5 s against 0.7 to 0.9 s for a debug build).
pub fn static_binary() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    if is_static(&me) {
        return Ok(me);
    }
    if let Ok(p) = std::env::var("NSCONFORM_VM_BINARY") {
        let p = PathBuf::from(p);
        return if is_static(&p) {
            Ok(p)
        } else {
            Err(format!("NSCONFORM_VM_BINARY={} is not a static binary", p.display()))
        };
    }
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if !src.join("Cargo.toml").is_file() {
        return Err("this binary is not static and its source tree is gone: set NSCONFORM_VM_BINARY".into());
    }
    let target = src.join("target/vm");
    let triple = "x86_64-unknown-linux-gnu";
    eprintln!("nsconform vm: building the static suite binary in {}", target.display());
    // Passed a signal to nsconform on, so that an interrupted matrix or
    // VM run leaves no build running.
    let status = super::cleanup::run_forwarded(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&src)
            .args([
                "build",
                "--quiet",
                "--release",
                "--bin",
                "nsconform",
                "--target",
                triple,
            ])
            .env("CARGO_TARGET_DIR", &target)
            .env("RUSTFLAGS", "-C target-feature=+crt-static"),
    )
    .map_err(|e| format!("cargo: {e}"))?
    .status;
    if !status.success() {
        return Err(format!("building the static suite binary failed: {status}"));
    }
    let built = target.join(triple).join("release/nsconform");
    if is_static(&built) {
        Ok(built)
    } else {
        Err(format!("{} is not static", built.display()))
    }
}

/// An ELF without a program interpreter (PT_INTERP) needs no loader.
pub fn is_static(path: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; 64];
    if std::io::Read::read_exact(&mut f, &mut head).is_err() || &head[..4] != b"\x7fELF" || head[4] != 2 {
        return false;
    }
    let phoff = u64::from_le_bytes(head[0x20..0x28].try_into().unwrap());
    let phentsize = u16::from_le_bytes([head[0x36], head[0x37]]) as usize;
    let phnum = u16::from_le_bytes([head[0x38], head[0x39]]) as usize;
    let mut ph = vec![0u8; phentsize * phnum];
    use std::io::{Read, Seek, SeekFrom};
    if f.seek(SeekFrom::Start(phoff)).is_err() || f.read_exact(&mut ph).is_err() {
        return false;
    }
    !ph.chunks(phentsize.max(4))
        .any(|e| u32::from_le_bytes(e[..4].try_into().unwrap()) == 3)
}

/// The programs a run calls: the cases' (`needs.tools` and the commands'
/// first words), the base list, and the tools of the runner the run uses
/// (`NSCONFORM_RUNNER`, passed to the guest): a native run carries no
/// container runtime (podman, runc and their libraries were two thirds of
/// the image, and a larger image boots slower under TCG). Those this
/// machine has.
pub fn tools(cases: &Path, runner: &dyn crate::runner::Runner) -> Vec<String> {
    let mut out: Vec<String> = BASE_TOOLS.iter().map(|s| s.to_string()).collect();
    if let Ok(loaded) = crate::load::load_dir(cases, crate::load::Catalogue::builtin()) {
        for c in &loaded.cases {
            out.extend(c.tools.iter().map(|t| t.tool.clone()));
            out.extend(c.spec.needs.tools.iter().cloned());
        }
    }
    out.extend(runner.tools());
    out.sort();
    out.dedup();
    out.retain(|t| which::which(t).is_ok());
    out
}

#[derive(Clone, Debug)]
enum Entry {
    Dir,
    File(PathBuf, u32),
    Data(Vec<u8>, u32),
    Link(String),
}

/// A file tree to archive, keyed by its path in the guest.
#[derive(Default)]
struct Tree(BTreeMap<PathBuf, Entry>);

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

impl Tree {
    /// `p` as it is on this machine: each symbolic link on the way is kept
    /// as a link and its target added too. Returns where `p` really is.
    fn add_host(&mut self, p: &Path, depth: u32) -> Result<PathBuf, String> {
        let p = normalize(p);
        let Some(parent) = p.parent() else {
            return Ok(p);
        };
        if depth > 40 {
            return Err(format!("{}: too many symbolic links", p.display()));
        }
        let real_parent = if parent == Path::new("/") {
            parent.to_path_buf()
        } else {
            self.add_host(parent, depth + 1)?
        };
        let at = real_parent.join(p.file_name().unwrap_or_default());
        let meta = std::fs::symlink_metadata(&at).map_err(|e| format!("{}: {e}", at.display()))?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&at).map_err(|e| e.to_string())?;
            self.0
                .insert(at.clone(), Entry::Link(target.to_string_lossy().into_owned()));
            let next = if target.is_absolute() {
                target
            } else {
                real_parent.join(target)
            };
            return self.add_host(&next, depth + 1);
        }
        if !self.0.contains_key(&at) {
            let entry = if meta.is_dir() {
                Entry::Dir
            } else {
                use std::os::unix::fs::PermissionsExt;
                Entry::File(at.clone(), meta.permissions().mode())
            };
            self.0.insert(at.clone(), entry);
        }
        Ok(at)
    }

    fn dirs_of(&mut self, p: &Path) {
        for a in p.ancestors().skip(1) {
            if a != Path::new("/") {
                self.0.entry(a.to_path_buf()).or_insert(Entry::Dir);
            }
        }
    }

    fn put(&mut self, p: &str, e: Entry) {
        let p = PathBuf::from(p);
        self.dirs_of(&p);
        self.0.insert(p, e);
    }

    /// Every regular file under `src`, at `dst`.
    fn copy_tree(&mut self, src: &Path, dst: &str) {
        for f in super::files_under(src) {
            if let Ok(rel) = f.strip_prefix(src) {
                self.put(&format!("{dst}/{}", rel.display()), Entry::File(f.clone(), 0o644));
            }
        }
    }

    fn write(&self, out: &Path) -> Result<(), String> {
        let tmp = out.with_extension("partial");
        let f = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        let mut c = Cpio::new(std::io::BufWriter::new(f));
        let io = |e: std::io::Error| format!("{}: {e}", tmp.display());
        for (p, e) in &self.0 {
            let name = p.to_string_lossy();
            match e {
                Entry::Dir => c.dir(&name).map_err(io)?,
                Entry::Link(t) => c.symlink(&name, t).map_err(io)?,
                Entry::Data(d, m) => c.file(&name, *m, d).map_err(io)?,
                Entry::File(src, m) => {
                    let d = std::fs::read(src).map_err(|e| format!("{}: {e}", src.display()))?;
                    c.file(&name, *m, &d).map_err(io)?
                }
            }
        }
        c.chardev("dev/console", 5, 1).map_err(io)?;
        c.finish().map_err(io)?;
        std::fs::rename(&tmp, out).map_err(|e| e.to_string())
    }
}

/// Shared libraries of a dynamic program, as `ldd` names them.
fn libraries(program: &Path) -> Vec<PathBuf> {
    let Ok(out) = Command::new("ldd").arg(program).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// A stripped copy of the suite binary (debug info is most of its size), cached.
fn stripped(binary: &Path) -> Result<PathBuf, String> {
    let meta = std::fs::metadata(binary).map_err(|e| format!("{}: {e}", binary.display()))?;
    let key = format!("{}-{:?}", meta.len(), meta.modified().ok());
    let out = cache_dir()
        .join("bin")
        .join(format!("nsconform-{:016x}", hash_bytes(key.as_bytes())));
    if out.is_file() {
        return Ok(out);
    }
    std::fs::create_dir_all(out.parent().unwrap()).map_err(|e| e.to_string())?;
    let ok = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&out)
        .arg(binary)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        std::fs::copy(binary, &out).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// The shared image (everything but kernel modules), cached by its inputs.
pub fn base(binary: &Path, cases: &Path, runners: &Path) -> Result<PathBuf, String> {
    let tools = tools(cases, crate::runner::select(runners)?.as_ref());
    let mut key = String::new();
    let mut stamp = |p: &Path| {
        if let Ok(m) = std::fs::metadata(p) {
            key.push_str(&format!("{}:{}:{:?};", p.display(), m.len(), m.modified().ok()));
        }
    };
    stamp(binary);
    for f in super::files_under(cases)
        .iter()
        .chain(super::files_under(runners).iter())
    {
        stamp(f);
    }
    let paths: Vec<PathBuf> = tools.iter().filter_map(|t| which::which(t).ok()).collect();
    for p in &paths {
        stamp(p);
    }
    let out = cache_dir()
        .join("initramfs")
        .join(format!("base-{:016x}.cpio", hash_bytes(key.as_bytes())));
    if out.is_file() {
        return Ok(out);
    }
    std::fs::create_dir_all(out.parent().unwrap()).map_err(|e| e.to_string())?;
    let mut t = Tree::default();
    for d in [
        "/proc", "/sys", "/dev", "/tmp", "/run", "/root", "/var/tmp", "/etc", "/mnt",
    ] {
        t.put(d, Entry::Dir);
    }
    for p in &paths {
        let real = t.add_host(p, 0)?;
        for lib in libraries(&real) {
            t.add_host(&lib, 0)?;
        }
    }
    t.put(GUEST_BIN, Entry::File(stripped(binary)?, 0o755));
    t.copy_tree(cases, &format!("{GUEST_DIR}/cases"));
    t.copy_tree(runners, &format!("{GUEST_DIR}/runners"));
    t.put(
        "/etc/passwd",
        Entry::Data(
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n".to_vec(),
            0o644,
        ),
    );
    t.put(
        "/etc/group",
        Entry::Data(b"root:x:0:\nnogroup:x:65534:\n".to_vec(), 0o644),
    );
    t.write(&out)?;
    Ok(out)
}

/// The base image with the kernel's modules appended, cached per kernel.
pub fn for_kernel(base: &Path, modules: &[PathBuf]) -> Result<PathBuf, String> {
    if modules.is_empty() {
        return Ok(base.to_path_buf());
    }
    let mut key = base.display().to_string();
    for m in modules {
        key.push_str(&m.display().to_string());
    }
    let out = base.with_file_name(format!("k-{:016x}.cpio", hash_bytes(key.as_bytes())));
    if out.is_file() {
        return Ok(out);
    }
    let mut t = Tree::default();
    for m in modules {
        let name = m.file_name().unwrap_or_default().to_string_lossy();
        t.put(&format!("{GUEST_DIR}/modules/{name}"), Entry::File(m.clone(), 0o644));
    }
    let extra = out.with_extension("modules");
    t.write(&extra)?;
    let mut data = std::fs::read(base).map_err(|e| e.to_string())?;
    data.extend(std::fs::read(&extra).map_err(|e| e.to_string())?);
    let _ = std::fs::remove_file(&extra);
    std::fs::write(&out, data).map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A native run's image holds no runtime; a runner's run holds its tools.
    #[test]
    fn a_runners_tools_only_when_it_runs() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let cases = root.join("cases");
        let native = tools(&cases, &crate::runner::Native);
        assert!(native.iter().any(|t| t == "sh"), "{native:?}");
        assert!(!native.iter().any(|t| t == "podman" || t == "runc"), "{native:?}");
        let runc = crate::runner::External::load(&root.join("runners/runc.toml")).expect("runc.toml");
        let with = tools(&cases, &runc);
        if which::which("runc").is_ok() {
            assert!(with.iter().any(|t| t == "runc"), "{with:?}");
        }
        assert!(!with.iter().any(|t| t == "podman"), "{with:?}");
    }
}
