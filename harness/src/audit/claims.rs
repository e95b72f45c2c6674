//! What the user says the runtime isolates: `--claims`, or an OCI
//! config.json's `linux.namespaces`.

use serde_json::Value as Json;
use std::collections::BTreeSet;
use std::path::Path;

/// The namespace types by their /proc/PID/ns names (`load::ns`'s one list),
/// in the order the audit prints them.
pub static TYPES: std::sync::LazyLock<[&'static str; 8]> = std::sync::LazyLock::new(|| {
    let mut t = crate::load::ns::Ns::ALL.map(crate::load::ns::Ns::proc_name);
    t.sort_unstable();
    t
});

pub type Claims = BTreeSet<&'static str>;

/// `--claims uts,ipc,...` (`all` is every type, `none` no type). An empty
/// list, or `none` beside a type, is an error: the claims must be said.
pub fn parse_list(s: &str) -> Result<Claims, String> {
    let words: Vec<&str> = s.split(',').map(str::trim).filter(|w| !w.is_empty()).collect();
    if words.is_empty() {
        return Err(format!(
            "--claims: empty; name the types the runtime isolates ({}), or all, or none",
            TYPES.join(", ")
        ));
    }
    if words.contains(&"none") && words.len() > 1 {
        return Err(format!("--claims: `none` with other words ({s})"));
    }
    let mut out = Claims::new();
    for w in words {
        match w {
            "all" => out.extend(TYPES.iter().copied()),
            "none" => {}
            _ => {
                out.insert(canonical(w).ok_or_else(|| {
                    let mut known: Vec<&str> = TYPES.to_vec();
                    known.extend(["network", "mount", "all", "none"]);
                    let hint = did_you_mean(w, &known)
                        .map(|k| format!("; did you mean `{k}`?"))
                        .unwrap_or_default();
                    format!(
                        "--claims: `{w}` is no namespace type (one of {}, all, none){hint}",
                        TYPES.join(", ")
                    )
                })?);
            }
        }
    }
    Ok(out)
}

/// The claims from the command line: `--claims`, an OCI config, or both.
/// Neither is an error: an audit without claims would pass anything.
pub fn from_args(list: Option<&str>, config: Option<&Path>) -> Result<Claims, String> {
    if list.is_none() && config.is_none() {
        return Err(format!(
            "no claims: say what the runtime isolates with --claims ({}, all), or --claims none, or --config",
            TYPES.join(",")
        ));
    }
    let mut claims = match list {
        Some(c) => parse_list(c)?,
        None => Claims::new(),
    };
    if let Some(c) = config {
        claims.extend(from_oci(c)?);
    }
    Ok(claims)
}

/// The known word closest to `w`, if one is close.
pub fn did_you_mean<'a>(w: &str, known: &[&'a str]) -> Option<&'a str> {
    crate::suggest::nearest(w, known.iter().copied()).first().copied()
}

/// The /proc name of a type, from it or its OCI name.
fn canonical(w: &str) -> Option<&'static str> {
    crate::load::ns::Ns::from_name(w).map(crate::load::ns::Ns::proc_name)
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
    if args.windows(2).any(|w| w == super::protocol::ARGS) {
        return Ok(());
    }
    Err(format!(
        "{}: field process.args: {args:?} does not run the probe (`<this binary> {}`), \
         and the command line has no `{}`",
        file.display(),
        super::protocol::ARGS.join(" "),
        super::PLACEHOLDER
    ))
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
        assert!(parse_list("uts,netw").unwrap_err().contains("did you mean `net`?"));
        assert!(parse_list("").unwrap_err().contains("empty"));
        assert!(parse_list(" , ").unwrap_err().contains("empty"));
        assert!(parse_list("none,uts").is_err());
        assert!(parse_list("none").unwrap().is_empty());
        assert!(from_args(None, None).unwrap_err().contains("no claims"));
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
