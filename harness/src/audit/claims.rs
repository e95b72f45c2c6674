//! What the user says the runtime isolates: `--claims`, or an OCI
//! config.json's `linux.namespaces`.

use serde_json::Value as Json;
use std::collections::BTreeSet;
use std::path::Path;

/// The namespace types, by their /proc/PID/ns names.
pub const TYPES: [&str; 8] = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];

pub type Claims = BTreeSet<&'static str>;

/// `--claims uts,ipc,...` (`all` is every type, `none` no type).
pub fn parse_list(s: &str) -> Result<Claims, String> {
    let mut out = Claims::new();
    for w in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match w {
            "all" => out.extend(TYPES),
            "none" => {}
            _ => {
                out.insert(canonical(w).ok_or_else(|| {
                    format!(
                        "--claims: `{w}` is no namespace type (one of {}, all, none)",
                        TYPES.join(", ")
                    )
                })?);
            }
        }
    }
    Ok(out)
}

/// The /proc name of a type, from it or its OCI name.
fn canonical(w: &str) -> Option<&'static str> {
    let w = match w {
        "network" => "net",
        "mount" => "mnt",
        w => w,
    };
    TYPES.iter().copied().find(|t| *t == w)
}

/// The namespaces a config.json (or a bundle directory holding one) asks
/// for. One given with a `path` joins an existing namespace: no claim.
pub fn from_oci(path: &Path) -> Result<Claims, String> {
    let (file, doc) = read_config(path)?;
    let list = match doc.get("linux").and_then(|l| l.get("namespaces")) {
        None => return Ok(Claims::new()),
        Some(Json::Array(a)) => a,
        Some(_) => return Err(format!("{}: field linux.namespaces: not an array", file.display())),
    };
    let mut out = Claims::new();
    for (i, ns) in list.iter().enumerate() {
        let ty = ns.get("type").and_then(Json::as_str).ok_or_else(|| {
            format!(
                "{}: field linux.namespaces[{i}].type: missing or not a string",
                file.display()
            )
        })?;
        let t = canonical(ty).ok_or_else(|| {
            format!(
                "{}: field linux.namespaces[{i}].type: `{ty}` is no namespace type",
                file.display()
            )
        })?;
        if ns.get("path").and_then(Json::as_str).is_none_or(str::is_empty) {
            out.insert(t);
        }
    }
    Ok(out)
}

/// The config.json (or bundle) path and its parsed text.
fn read_config(path: &Path) -> Result<(std::path::PathBuf, Json), String> {
    let file = if path.is_dir() {
        path.join("config.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let doc = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok((file, doc))
}

/// A config.json whose command is the probe: its process.args run
/// `... audit --inside`. Otherwise the audit would wait for a report that
/// never comes.
pub fn runs_probe(path: &Path) -> Result<(), String> {
    let (file, doc) = read_config(path)?;
    let args: Vec<&str> = doc
        .get("process")
        .and_then(|p| p.get("args"))
        .and_then(Json::as_array)
        .map(|a| a.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    if args.windows(2).any(|w| w == super::inside::ARGS) {
        return Ok(());
    }
    Err(format!(
        "{}: field process.args: {args:?} does not run the probe (`<this binary> {}`), \
         and the command line has no `{}`",
        file.display(),
        super::inside::ARGS.join(" "),
        super::PLACEHOLDER
    ))
}

/// Types the runtime named in the command line has no way to create, with
/// why: such a claim is reported as impossible, not as a leak.
pub fn cannot(argv: &[String]) -> Vec<(&'static str, &'static str)> {
    let base = |w: &String| w.rsplit('/').next().unwrap_or(w).to_string();
    for w in argv.iter().map(base) {
        match w.as_str() {
            "bwrap" => return vec![("time", "bubblewrap has no time namespace option")],
            "runc" => return vec![("time", "runc 1.1 has no time namespace")],
            "systemd-nspawn" => return vec![("time", "systemd-nspawn has no time namespace option")],
            "firejail" => return vec![("time", "firejail has no time namespace option")],
            _ => {}
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_from_the_list_and_from_a_config() {
        assert_eq!(
            parse_list("uts, network,mount").unwrap(),
            Claims::from(["uts", "net", "mnt"])
        );
        assert_eq!(parse_list("all").unwrap().len(), 8);
        assert!(parse_list("uts,bogus").unwrap_err().contains("`bogus`"));
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("config.json");
        std::fs::write(
            &f,
            r#"{"linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/run/netns/x"}, {"type": "mount"}]}}"#,
        )
        .unwrap();
        assert_eq!(from_oci(d.path()).unwrap(), Claims::from(["pid", "mnt"]));
        std::fs::write(&f, r#"{"linux": {"namespaces": [{"type": "wat"}]}}"#).unwrap();
        let e = from_oci(&f).unwrap_err();
        assert!(e.contains("linux.namespaces[0].type") && e.contains("`wat`"), "{e}");
        std::fs::write(&f, "{\"linux\": [}").unwrap();
        assert!(from_oci(&f).unwrap_err().contains("line 1"));
    }
}
