//! Placeholders in case strings, filled in at run time: `{uid}`, `{child}`,
//! `{peer:a}`. Only lowercase `{name}` and `{name:arg}` forms are
//! placeholders, so shell text such as `${HOME}` or `awk '{print $1}'` is left alone.

/// Placeholder names and what they stand for (shown in cases/REFERENCE.md).
pub const NAMES: &[(&str, &str)] = &[
    (
        "uid",
        "the unprivileged uid (the dropped uid in a root run, the user's own otherwise)",
    ),
    ("gid", "the unprivileged gid"),
    (
        "euid",
        "the uid the suite runs as (0 in a root run): the parent side's uid",
    ),
    ("egid", "the gid the suite runs as"),
    ("child", "the child's pid, as the process using it sees it"),
    ("parent", "the parent's pid, as the process using it sees it"),
    ("peer", "`{peer:NAME}`: a peer's pid, as the process using it sees it"),
    ("scratch", "a writable directory private to the case (a tmpfs)"),
    (
        "value",
        "`{value:NAME}`: a value a step kept with `as` (the first item of a list)",
    ),
    ("fd", "`{fd:NAME}`: the number of an fd a step kept with `as`"),
];

/// A placeholder found in a string: byte range, name and optional argument.
#[derive(Debug, PartialEq)]
pub struct Placeholder<'a> {
    pub start: usize,
    pub end: usize,
    pub name: &'a str,
    pub arg: Option<&'a str>,
}

fn ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Every placeholder-shaped `{...}` in `s`.
pub fn scan(s: &str) -> Vec<Placeholder<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(open) = s[i..].find('{').map(|p| p + i) {
        let Some(close) = s[open..].find('}').map(|p| p + open) else {
            break;
        };
        let inner = &s[open + 1..close];
        let (name, arg) = match inner.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (inner, None),
        };
        if ident(name) && arg.is_none_or(ident) && !s[..open].ends_with('$') {
            out.push(Placeholder {
                start: open,
                end: close + 1,
                name,
                arg,
            });
        }
        i = open + 1;
    }
    out
}

/// Why a placeholder is wrong, if it is.
pub fn check(p: &Placeholder<'_>) -> Option<String> {
    match (p.name, p.arg) {
        ("peer" | "value" | "fd", Some(_)) => None,
        ("value", None) => Some("`{value}` needs a name: `{value:NAME}`".into()),
        ("peer", None) => Some("`{peer}` needs a name: `{peer:NAME}`".into()),
        (n, None) if NAMES.iter().any(|(k, _)| *k == n) => None,
        _ => Some(format!(
            "unknown placeholder `{{{}{}}}`{} (known: {{uid}}, {{gid}}, {{euid}}, {{egid}}, {{child}}, {{parent}}, {{peer:NAME}}, {{value:NAME}}, {{scratch}}; a matrix variable?)",
            p.name,
            p.arg.map(|a| format!(":{a}")).unwrap_or_default(),
            crate::suggest::did_you_mean(p.name, NAMES.iter().map(|(n, _)| *n))
        )),
    }
}

/// Replace placeholders using `lookup(name, arg)`; an unresolvable one is an error.
pub fn expand(s: &str, mut lookup: impl FnMut(&str, Option<&str>) -> Option<String>) -> Result<String, String> {
    let found = scan(s);
    if found.is_empty() {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for p in found {
        out.push_str(&s[last..p.start]);
        match lookup(p.name, p.arg) {
            Some(v) => out.push_str(&v),
            None => return Err(format!("`{}` has no value here", &s[p.start..p.end])),
        }
        last = p.end;
    }
    out.push_str(&s[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_braces_are_not_placeholders() {
        assert!(scan("echo ${HOME} {} awk '{print $1}'").is_empty());
        assert_eq!(scan("/proc/{child}/uid_map")[0].name, "child");
        let p = &scan("{peer:a}")[0];
        assert_eq!((p.name, p.arg), ("peer", Some("a")));
    }

    #[test]
    fn expansion_and_unknown_names() {
        let s = expand("0 {uid} 1", |n, _| (n == "uid").then(|| "1000".into())).unwrap();
        assert_eq!(s, "0 1000 1");
        assert!(expand("{gid}", |_, _| None).is_err());
        assert!(check(&scan("{prop}")[0]).is_some());
        assert!(check(&scan("{uid}")[0]).is_none());
    }
}
