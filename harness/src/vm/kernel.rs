//! Kernels for the VM: a Debian package name, a version series (`6.1`), or a
//! kernel image on disk. Packages come through a private apt configuration
//! (the machine's own is never touched), are unpacked with dpkg-deb (never
//! installed), and what a boot needs is kept in the cache: the uncompressed
//! vmlinux (TCG boots it about twice as fast as the bzImage, which would
//! decompress itself under emulation) and the modules the suite loads.

use super::cache_dir;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Debian suites that reach the kernels of the matrix (5.10 to the newest).
const SOURCES: &str = "\
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main
";

/// Modules the cases need that Debian builds as modules (veth pairs).
pub const MODULES: &[&str] = &["veth"];

/// A kernel ready to boot.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// What the user asked for, for names of logs and table columns.
    pub label: String,
    /// The image qemu boots (vmlinux when it could be extracted).
    pub image: PathBuf,
    /// The bzImage, for qemu builds or kernels that cannot boot the ELF.
    pub bzimage: Option<PathBuf>,
    /// Uncompressed modules to load at start, in order.
    pub modules: Vec<PathBuf>,
    /// `Linux version ...` as found in the image.
    pub version: String,
    /// The Debian package it was unpacked from; none for an image given as a file.
    pub package: Option<String>,
    /// Its build configuration: the package's config-VERSION, or the one
    /// built into the image (CONFIG_IKCONFIG, as /proc/config.gz shows it).
    pub config: Option<PathBuf>,
}

fn apt(args: &[&str]) -> Command {
    let dir = cache_dir().join("apt");
    let mut c = Command::new(if args[0] == "apt-cache" { "apt-cache" } else { "apt-get" });
    let d = dir.display();
    for o in [
        format!("Dir::Etc::SourceList={d}/sources.list"),
        "Dir::Etc::SourceParts=/dev/null".into(),
        format!("Dir::State::Lists={d}/lists"),
        format!("Dir::Cache={d}/cache"),
        "Dir::State::status=/dev/null".into(),
        "Debug::NoLocking=1".into(),
    ] {
        c.arg("-o").arg(o);
    }
    c.args(&args[1..]);
    c
}

fn run(mut c: Command, what: &str) -> Result<String, String> {
    let out = c.stdin(Stdio::null()).output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The private apt lists, fetched once a week at most.
fn apt_ready() -> Result<(), String> {
    let dir = cache_dir().join("apt");
    for d in ["lists/partial", "cache/archives/partial"] {
        std::fs::create_dir_all(dir.join(d)).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let list = dir.join("sources.list");
    if std::fs::read_to_string(&list).ok().as_deref() != Some(SOURCES) {
        std::fs::write(&list, SOURCES).map_err(|e| format!("{}: {e}", list.display()))?;
        let _ = std::fs::remove_file(dir.join("lists/.fresh"));
    }
    let fresh = dir.join("lists/.fresh");
    let age = std::fs::metadata(&fresh)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    if age.is_some_and(|a| a.as_secs() < 7 * 86400) {
        return Ok(());
    }
    eprintln!("nsconform vm: updating the private apt lists in {}", dir.display());
    run(apt(&["apt-get", "-qq", "update"]), "apt-get update (private lists)")?;
    std::fs::write(&fresh, "").map_err(|e| e.to_string())
}

/// Every `linux-image-*` package name of the private lists. apt-cache
/// parses all the suites' indexes for it (about 2 s), so its answer is kept
/// beside the lists, keyed by the indexes' hash: parsed again only when
/// `apt-get update` brought other indexes.
fn image_package_names() -> Result<String, String> {
    let lists = cache_dir().join("apt/lists");
    let kept = lists.join(format!("linux-image-names-{:016x}", indexes_hash(&lists)));
    if let Ok(text) = std::fs::read_to_string(&kept) {
        return Ok(text);
    }
    let names = run(apt(&["apt-cache", "pkgnames", "linux-image-"]), "apt-cache pkgnames")?;
    for old in std::fs::read_dir(&lists).into_iter().flatten().flatten() {
        if old.file_name().to_string_lossy().starts_with("linux-image-names-") {
            let _ = std::fs::remove_file(old.path());
        }
    }
    // Whole or not at all: another run may read it meanwhile.
    let tmp = kept.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&tmp, &names)
        .and_then(|()| std::fs::rename(&tmp, &kept))
        .map_err(|e| format!("{}: {e}", kept.display()))?;
    Ok(names)
}

/// A hash of the indexes apt reads: each file's name and size, and the
/// content of the Release files (which hold the indexes' own checksums).
fn indexes_hash(lists: &Path) -> u64 {
    let mut key = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(lists)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy();
            !n.starts_with('.') && !n.starts_with("linux-image-names-") && n != "lock"
        })
        .collect();
    files.sort();
    for f in files {
        let name = f.file_name().unwrap_or_default().to_string_lossy().into_owned();
        key.extend_from_slice(name.as_bytes());
        key.extend_from_slice(&std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0).to_le_bytes());
        if name.ends_with("Release") {
            key.extend(std::fs::read(&f).unwrap_or_default());
        }
    }
    super::hash_bytes(&key)
}

/// Digits of a version, for ordering package names.
fn version_key(s: &str) -> Vec<u64> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// The newest `linux-image-<series>...-<flavour>` among `names`.
pub fn pick_package(names: &[&str], series: &str, flavour: &str) -> Option<String> {
    let prefix = format!("linux-image-{series}.");
    let suffix = format!("-{flavour}");
    names
        .iter()
        .filter(|n| n.starts_with(&prefix) && n.ends_with(&suffix))
        .filter(|n| {
            // `6.1.0-50-amd64`, `6.12.48+deb12-amd64`: a version, then only the flavour.
            let mid = &n[prefix.len()..n.len() - suffix.len()];
            mid.chars().all(|c| c.is_ascii_digit() || ".-+deb".contains(c))
        })
        .max_by_key(|n| version_key(&n[prefix.len()..]))
        .map(|n| n.to_string())
}

fn is_series(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Resolve, fetch and unpack the kernel `spec` names.
pub fn get(spec: &str, flavour: &str) -> Result<Kernel, String> {
    let path = Path::new(spec);
    if path.is_file() {
        return from_image(spec, path, Vec::new());
    }
    let package = if is_series(spec) {
        apt_ready()?;
        let names = image_package_names()?;
        let names: Vec<&str> = names.lines().collect();
        pick_package(&names, spec, flavour)
            .ok_or_else(|| format!("no package linux-image-{spec}.*-{flavour} in the private apt lists"))?
    } else if spec.starts_with("linux-image-") {
        spec.to_string()
    } else {
        return Err(format!(
            "`{spec}` is neither a file, a version series such as 6.1, nor a package name linux-image-*"
        ));
    };
    let dir = cache_dir().join("kernels").join(&package);
    if !dir.join("version").is_file() {
        unpack(&package, &dir)?;
    }
    let modules = MODULES
        .iter()
        .map(|m| dir.join(format!("{m}.ko")))
        .filter(|p| p.is_file())
        .collect();
    let image = if dir.join("vmlinux").is_file() {
        dir.join("vmlinux")
    } else {
        dir.join("vmlinuz")
    };
    let version = std::fs::read_to_string(dir.join("version")).unwrap_or_default();
    let config = package_config(&package, &dir);
    Ok(Kernel {
        label: spec.to_string(),
        image,
        bzimage: Some(dir.join("vmlinuz")),
        modules,
        version: version.trim().to_string(),
        package: Some(package),
        config,
    })
}

/// Why `bytes` are not a kernel qemu can boot, if they are not: a bzImage
/// has the boot protocol's `HdrS` at 0x202; an ELF must be a kernel's (its
/// `Linux version` banner).
pub fn not_a_kernel(bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(b"\x7fELF") {
        return linux_version(bytes)
            .is_none()
            .then(|| "an ELF file with no `Linux version` banner: not a vmlinux".to_string());
    }
    if bytes.get(0x202..0x206) == Some(b"HdrS") {
        return None;
    }
    Some("not a kernel image: neither a vmlinux (ELF) nor a bzImage (no `HdrS` boot header at 0x202)".into())
}

fn from_image(label: &str, path: &Path, modules: Vec<PathBuf>) -> Result<Kernel, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(why) = not_a_kernel(&bytes) {
        return Err(format!("{}: {why}", path.display()));
    }
    let (image, bzimage, vmlinux) = if bytes.starts_with(b"\x7fELF") {
        (path.to_path_buf(), None, bytes)
    } else {
        // Keep the extracted ELF next to the other cached kernels.
        let key = format!("{:016x}", super::hash_bytes(&bytes));
        let out = cache_dir().join("images").join(key);
        let elf = out.join("vmlinux");
        if !elf.is_file() {
            std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
            match vmlinux_of(&bytes) {
                Some(v) => std::fs::write(&elf, &v).map_err(|e| e.to_string())?,
                None => std::fs::copy(path, &elf).map(drop).map_err(|e| e.to_string())?,
            }
        }
        let v = std::fs::read(&elf).map_err(|e| e.to_string())?;
        (elf, Some(path.to_path_buf()), v)
    };
    // Kept in the cache, beside the extracted ELF; never beside the user's file.
    let config = cache_dir()
        .join("images")
        .join(format!("{:016x}", super::hash_bytes(&vmlinux)))
        .join("config");
    let config = (config.is_file()
        || built_in_config(&vmlinux).is_some_and(|c| {
            std::fs::create_dir_all(config.parent().unwrap_or(Path::new("."))).is_ok()
                && std::fs::write(&config, c).is_ok()
        }))
    .then_some(config);
    Ok(Kernel {
        label: label.to_string(),
        image,
        bzimage,
        modules,
        version: linux_version(&vmlinux).unwrap_or_else(|| "(version not found in the image)".into()),
        package: None,
        config,
    })
}

/// The package's config-VERSION (Debian ships it in /boot, later beside
/// the modules), kept beside the unpacked image; taken from the .deb once.
fn package_config(package: &str, dir: &Path) -> Option<PathBuf> {
    let kept = dir.join("config");
    if kept.is_file() {
        return Some(kept);
    }
    let deb = deb_of(package).ok()?;
    let sh = "dpkg-deb --fsys-tarfile \"$1\" | tar -xO --wildcards './boot/config-*' '*/modules/*/config' 2>/dev/null; exit 0";
    let mut c = Command::new("sh");
    c.arg("-c").arg(sh).arg("sh").arg(&deb);
    let text = run(c, "the kernel's config").ok()?;
    if !text.contains("CONFIG_") {
        return None;
    }
    let tmp = tempfile::NamedTempFile::new_in(dir).ok()?;
    std::fs::write(tmp.path(), text).ok()?;
    tmp.persist(&kept).ok()?;
    Some(kept)
}

/// The configuration an image carries (CONFIG_IKCONFIG: gzip between markers).
pub fn built_in_config(vmlinux: &[u8]) -> Option<Vec<u8>> {
    let find = |what: &[u8], from: usize| {
        vmlinux
            .get(from..)?
            .windows(what.len())
            .position(|w| w == what)
            .map(|i| i + from)
    };
    let start = find(b"IKCFG_ST", 0)? + 8;
    let end = find(b"IKCFG_ED", start)?;
    decompress(&vmlinux[start..end]).filter(|c| c.starts_with(b"#") || c.starts_with(b"CONFIG_"))
}

/// The package's .deb in the cache, downloaded when missing.
fn deb_of(package: &str) -> Result<PathBuf, String> {
    let debs = cache_dir().join("debs");
    std::fs::create_dir_all(&debs).map_err(|e| e.to_string())?;
    let find = || {
        std::fs::read_dir(&debs).ok().and_then(|rd| {
            rd.flatten().map(|e| e.path()).find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{package}_")))
            })
        })
    };
    if let Some(d) = find() {
        return Ok(d);
    }
    apt_ready()?;
    eprintln!("nsconform vm: downloading {package}");
    let mut c = apt(&["apt-get", "-qq", "download", package]);
    c.current_dir(&debs);
    run(c, &format!("apt-get download {package}"))?;
    find().ok_or_else(|| format!("apt-get download {package} left no .deb in {}", debs.display()))
}

fn unpack(package: &str, dir: &Path) -> Result<(), String> {
    let mut debs = vec![deb_of(package)?];
    // Newer packages (Debian 14) hold only dependencies: the image is in
    // linux-binary-*, the modules in linux-modules-*.
    let depends = run(
        {
            let mut c = Command::new("dpkg-deb");
            c.args(["-f"]).arg(&debs[0]).arg("Depends");
            c
        },
        "dpkg-deb -f",
    )?;
    for d in depends.split(',') {
        let name = d.split_whitespace().next().unwrap_or("");
        if name.starts_with("linux-binary-") || name.starts_with("linux-modules-") {
            debs.push(deb_of(name)?);
        }
    }
    let tmp = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
    // The image is /boot/vmlinuz-<ver> up to Debian 13, /usr/lib/modules/<ver>/vmlinuz after.
    let mut patterns = vec!["./boot/vmlinuz-*".to_string(), "*/modules/*/vmlinuz".to_string()];
    patterns.extend(MODULES.iter().map(|m| format!("*/{m}.ko*")));
    for deb in &debs {
        eprintln!("nsconform vm: unpacking {}", deb.display());
        // tar fails for patterns a package does not match; what was found is checked below.
        let sh = format!(
            "dpkg-deb --fsys-tarfile \"$1\" | tar -x -C \"$2\" --wildcards {} 2>/dev/null; exit 0",
            patterns.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(" ")
        );
        let mut c = Command::new("sh");
        c.arg("-c").arg(sh).arg("sh").arg(deb).arg(&tmp);
        run(c, &format!("unpacking {}", deb.display()))?;
    }
    let deb = &debs[0];
    let files = walk(&tmp);
    let vmlinuz = files
        .iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz"))
        })
        .ok_or_else(|| format!("{} (with its linux-binary package) holds no vmlinuz", deb.display()))?;
    let bz = std::fs::read(vmlinuz).map_err(|e| e.to_string())?;
    std::fs::write(tmp.join("vmlinuz"), &bz).map_err(|e| e.to_string())?;
    let version = match vmlinux_of(&bz) {
        Some(elf) => {
            std::fs::write(tmp.join("vmlinux"), &elf).map_err(|e| e.to_string())?;
            linux_version(&elf)
        }
        None => linux_version(&bz),
    };
    for m in MODULES {
        let Some(ko) = files.iter().find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{m}.ko")))
        }) else {
            continue; // built in
        };
        let raw = std::fs::read(ko).map_err(|e| e.to_string())?;
        let raw = decompress(&raw).unwrap_or(raw);
        std::fs::write(tmp.join(format!("{m}.ko")), raw).map_err(|e| e.to_string())?;
    }
    std::fs::write(tmp.join("version"), version.unwrap_or_else(|| package.to_string())).map_err(|e| e.to_string())?;
    for p in files {
        let _ = std::fs::remove_file(p);
    }
    for sub in ["boot", "lib", "usr"] {
        let _ = std::fs::remove_dir_all(tmp.join(sub));
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&tmp, dir).map_err(|e| e.to_string())
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out
}

/// `Linux version ...` up to the end of its line.
pub fn linux_version(image: &[u8]) -> Option<String> {
    let pat = b"Linux version ";
    let i = image.windows(pat.len()).position(|w| w == pat)?;
    let end = image[i..].iter().position(|&b| b == b'\n' || b == 0).map(|e| i + e)?;
    Some(String::from_utf8_lossy(&image[i..end]).trim().to_string())
}

/// The compression program for data starting with `head`.
fn decompressor(head: &[u8]) -> Option<&'static [&'static str]> {
    Some(match head {
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => &["xz", "-dc", "--single-stream"],
        [0x28, 0xb5, 0x2f, 0xfd, ..] => &["zstd", "-dcq"],
        [0x1f, 0x8b, ..] => &["gzip", "-dc"],
        [0x02, 0x21, 0x4c, 0x18, ..] => &["lz4", "-dc"],
        [b'B', b'Z', b'h', ..] => &["bzip2", "-dc"],
        [0x5d, 0, 0, ..] => &["xz", "-dc", "--format=lzma"],
        _ => return None,
    })
}

/// Data run through its decompressor; trailing bytes after the stream (the
/// size the kernel appends) make some tools complain, so their output counts.
fn decompress(data: &[u8]) -> Option<Vec<u8>> {
    let argv = decompressor(data)?;
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let data = data.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = std::io::Write::write_all(&mut stdin, &data);
    });
    let out = child.wait_with_output().ok()?;
    let _ = writer.join();
    (!out.stdout.is_empty()).then_some(out.stdout)
}

/// The ELF inside a bzImage: the header says where the compressed payload is.
pub fn vmlinux_of(bz: &[u8]) -> Option<Vec<u8>> {
    if bz.len() < 0x250 || &bz[0x202..0x206] != b"HdrS" {
        return None;
    }
    let setup = match bz[0x1f1] {
        0 => 4,
        n => n as usize,
    };
    let u32_at = |o: usize| u32::from_le_bytes(bz[o..o + 4].try_into().unwrap()) as usize;
    let start = (setup + 1) * 512 + u32_at(0x248);
    let payload = bz.get(start..start + u32_at(0x24c))?;
    decompress(payload).filter(|elf| elf.starts_with(b"\x7fELF"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_picks_its_newest_plain_flavour() {
        let names = [
            "linux-image-6.1.0-9-amd64",
            "linux-image-6.1.0-50-amd64",
            "linux-image-6.1.0-50-amd64-unsigned",
            "linux-image-6.1.0-50-cloud-amd64",
            "linux-image-6.1.0-50-rt-amd64",
            "linux-image-6.12.48+deb12-amd64",
            "linux-image-6.12.117+deb13-amd64",
            "linux-image-6.1.0-50-amd64-dbg",
        ];
        assert_eq!(
            pick_package(&names, "6.1", "amd64").as_deref(),
            Some("linux-image-6.1.0-50-amd64")
        );
        assert_eq!(
            pick_package(&names, "6.12", "amd64").as_deref(),
            Some("linux-image-6.12.117+deb13-amd64")
        );
        assert_eq!(
            pick_package(&names, "6.1", "cloud-amd64").as_deref(),
            Some("linux-image-6.1.0-50-cloud-amd64")
        );
        assert_eq!(pick_package(&names, "5.10", "amd64"), None);
    }

    #[test]
    fn series_are_two_numbers() {
        assert!(is_series("6.1") && is_series("5.10"));
        assert!(!is_series("6") && !is_series("6.1.2") && !is_series("6.x"));
    }

    #[test]
    fn a_file_that_is_no_kernel_is_refused() {
        assert!(
            not_a_kernel(b"root:x:0:0:root:/root:/bin/sh\n")
                .unwrap()
                .contains("not a kernel image")
        );
        let mut bz = vec![0u8; 0x300];
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        assert_eq!(not_a_kernel(&bz), None);
        assert!(
            not_a_kernel(b"\x7fELF\x02\x01 a program")
                .unwrap()
                .contains("not a vmlinux")
        );
        assert_eq!(not_a_kernel(b"\x7fELF\x02\x01\0Linux version 6.1.0 (x)\n"), None);
        assert!(not_a_kernel(b"").is_some());
    }

    #[test]
    fn the_version_line_is_found() {
        let img = b"\0\0Linux version 6.1.0-50-amd64 (debian) #1 SMP\n\0";
        assert_eq!(
            linux_version(img).as_deref(),
            Some("Linux version 6.1.0-50-amd64 (debian) #1 SMP")
        );
    }

    /// The kept names are parsed again only when the indexes changed.
    #[test]
    fn the_indexes_hash_follows_the_release_files_and_the_indexes() {
        let d = tempfile::tempdir().expect("tempdir");
        let at = |n: &str| d.path().join(n);
        std::fs::write(at("x_InRelease"), "SHA256: aaa").unwrap();
        std::fs::write(at("x_Packages.lz4"), "1234").unwrap();
        let h = indexes_hash(d.path());
        std::fs::write(at("linux-image-names-0123"), "kept").unwrap();
        std::fs::write(at(".fresh"), "").unwrap();
        assert_eq!(indexes_hash(d.path()), h, "the kept list and markers are no index");
        std::fs::write(at("x_InRelease"), "SHA256: bbb").unwrap();
        let h2 = indexes_hash(d.path());
        assert_ne!(h2, h);
        std::fs::write(at("x_Packages.lz4"), "12345").unwrap();
        assert_ne!(indexes_hash(d.path()), h2);
    }
}
