//! Load: case files under `cases/<area>/` into [`Case`] values, with errors
//! that name file, line and field. One bad file never hides the others.

pub mod args;
pub mod catalogue;
pub mod error;
pub mod expect;
pub mod flags;
pub mod matcher;
mod matrix;
pub mod model;
pub mod names;
pub mod ns;
pub mod step;
pub mod template;
pub mod uses;
mod validate;
pub mod vars;
pub mod walk;
pub mod xfail;

pub use catalogue::Catalogue;
pub use error::LoadError;
pub use model::{Case, CaseSpec, How, ProcSpec};
pub use uses::{has_isolation, namespaces_used};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Case files bigger than this are refused before parsing.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// Everything found under a cases directory.
#[derive(Debug, Default)]
pub struct Loaded {
    pub cases: Vec<Case>,
    /// One per bad file (or duplicate case), in file order.
    pub errors: Vec<LoadError>,
}

/// A case file: its area and path.
pub type CaseFile = (String, PathBuf);

/// The area of the cases about the calls and files every type shares
/// (creation, setns, /proc/PID/ns, nsfs); the others are the namespace types.
pub const API_AREA: &str = "api";

/// The areas a case file may sit in, one directory each: a namespace type's
/// name, or `api`.
pub fn areas() -> Vec<&'static str> {
    ns::Ns::names().chain([API_AREA]).collect()
}

/// The case files under `root`, as `(area, path)`, sorted; a directory that
/// cannot be read or is no area is an error of its own, not of the others.
pub fn case_files(root: &Path) -> std::io::Result<(Vec<CaseFile>, Vec<LoadError>)> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut areas: Vec<_> = std::fs::read_dir(root)?.filter_map(|a| a.ok()).collect();
    areas.sort_by_key(|a| a.file_name());
    for area in areas {
        if !area.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let area_name = area.file_name().to_string_lossy().into_owned();
        let listing = match std::fs::read_dir(area.path()) {
            Ok(l) => l,
            Err(e) => {
                errors.push(LoadError::whole_file(
                    &area.path(),
                    format!("cannot read the directory: {e}"),
                ));
                continue;
            }
        };
        let mut files = Vec::new();
        let mut bad = Vec::new();
        for f in listing.filter_map(|f| f.ok()) {
            let p = f.path();
            if p.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            match not_a_case_file(root, &p, f.file_type()) {
                None => files.push(p),
                Some(why) => bad.push(LoadError::whole_file(&p, why)),
            }
        }
        let known = self::areas();
        if !known.contains(&area_name.as_str()) {
            if let Some(first) = files.iter().chain(bad.iter().map(|e| &e.file)).min() {
                errors.push(LoadError::whole_file(
                    first,
                    format!(
                        "`{area_name}` is no area{}; case files go under one of {}",
                        crate::suggest::did_you_mean(&area_name, known.iter().copied()),
                        known.join(", ")
                    ),
                ));
            }
            continue;
        }
        bad.sort_by(|a, b| a.file.cmp(&b.file));
        errors.extend(bad);
        out.extend(files.into_iter().map(|p| (area_name.clone(), p)));
    }
    out.sort();
    Ok((out, errors))
}

/// Why a `*.toml` entry of an area cannot be loaded, from its directory entry
/// and stat(2) alone: nothing is opened, so a FIFO cannot block the run. A
/// symlink is followed when it resolves to a regular file under `root`
/// (its cases load under the link's name and area).
fn not_a_case_file(root: &Path, p: &Path, t: std::io::Result<std::fs::FileType>) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    let kind = |t: std::fs::FileType| {
        if t.is_file() {
            None
        } else if t.is_dir() {
            Some("a directory")
        } else if t.is_fifo() {
            Some("a FIFO (named pipe), which is never opened")
        } else if t.is_socket() {
            Some("a socket")
        } else if t.is_block_device() || t.is_char_device() {
            Some("a device file")
        } else {
            Some("not a regular file")
        }
    };
    let t = match t {
        Ok(t) => t,
        Err(e) => return Some(format!("cannot stat: {e}")),
    };
    if !t.is_symlink() {
        return kind(t).map(|k| format!("this is {k}, not a case file: a case file is a regular file"));
    }
    let target = std::fs::read_link(p)
        .map(|l| l.display().to_string())
        .unwrap_or_default();
    let resolved = match std::fs::canonicalize(p) {
        Ok(r) => r,
        Err(e) => return Some(format!("a symlink to {target:?}, which cannot be followed: {e}")),
    };
    let inside = std::fs::canonicalize(root).is_ok_and(|r| resolved.starts_with(r));
    if !inside {
        return Some(format!(
            "a symlink to {target:?}, outside the cases directory: only links to case files inside it are followed"
        ));
    }
    match std::fs::metadata(&resolved) {
        Ok(m) => kind(m.file_type()).map(|k| format!("a symlink to {target:?}, which is {k}, not a case file")),
        Err(e) => Some(format!("a symlink to {target:?}, which cannot be followed: {e}")),
    }
}

/// Load every case under `root`.
pub fn load_dir(root: &Path, catalogue: &Catalogue) -> Result<Loaded, LoadError> {
    let (files, errors) =
        case_files(root).map_err(|e| LoadError::whole_file(root, format!("cannot read the cases directory: {e}")))?;
    let mut loaded = Loaded {
        errors,
        ..Default::default()
    };
    let mut seen: HashMap<String, (PathBuf, usize)> = HashMap::new();
    for (area, path) in files {
        match load_file(&path, &area, catalogue) {
            Ok(cases) => {
                for case in cases {
                    if let Some((file, line)) = seen.get(&case.id) {
                        loaded.errors.push(duplicate(&case, file, *line));
                        continue;
                    }
                    seen.insert(case.id.clone(), (case.file.clone(), case.line));
                    loaded.cases.push(case);
                }
            }
            Err(e) => loaded.errors.push(e),
        }
    }
    Ok(loaded)
}

/// The error of a case whose name another file took first.
pub fn duplicate(case: &Case, first: &Path, line: usize) -> LoadError {
    LoadError {
        file: case.file.clone(),
        line: case.line,
        column: 1,
        field: "name".into(),
        message: format!("case `{}` is already defined at {}:{line}", case.id, first.display()),
    }
}

/// Load the cases of one file.
pub fn load_file(path: &Path, area: &str, catalogue: &Catalogue) -> Result<Vec<Case>, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError::whole_file(path, format!("cannot read: {e}")))?;
    load_bytes(path, area, &bytes, catalogue)
}

/// Load cases from the bytes of a file (the fuzz target's entry point).
pub fn load_bytes(path: &Path, area: &str, bytes: &[u8], catalogue: &Catalogue) -> Result<Vec<Case>, LoadError> {
    load_selected(path, area, bytes, catalogue, None)
}

/// Load one case again, by where it sits in its file: its table and its
/// matrix label. Only that case is expanded and checked, so a trial of a
/// large matrix does not pay for its siblings.
pub fn load_one(
    path: &Path,
    area: &str,
    index: usize,
    label: Option<&str>,
    catalogue: &Catalogue,
) -> Result<Case, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError::whole_file(path, format!("cannot read: {e}")))?;
    load_one_bytes(path, area, &bytes, index, label, catalogue)
}

/// As `load_one`, from the file's bytes.
pub fn load_one_bytes(
    path: &Path,
    area: &str,
    bytes: &[u8],
    index: usize,
    label: Option<&str>,
    catalogue: &Catalogue,
) -> Result<Case, LoadError> {
    let mut cases = load_selected(path, area, bytes, catalogue, Some((index, label)))?;
    cases.pop().ok_or_else(|| {
        LoadError::whole_file(
            path,
            "the case is no longer in the file (was it changed during the run?)",
        )
    })
}

/// The bytes of a case file as text, refused unparsed when they are too
/// many, not UTF-8, or hold a NUL.
fn text_of<'b>(path: &Path, bytes: &'b [u8]) -> Result<&'b str, LoadError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(LoadError::whole_file(
            path,
            format!(
                "the file is {} bytes; case files are limited to {} bytes",
                bytes.len(),
                MAX_FILE_BYTES
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let (line, column) = error::line_col(std::str::from_utf8(good).unwrap_or(""), good.len());
        LoadError {
            file: path.to_path_buf(),
            line,
            column,
            field: error::WHOLE_FILE.into(),
            message: format!(
                "not UTF-8 text (byte {} is invalid): case files are TOML",
                e.valid_up_to()
            ),
        }
    })?;
    match text.find('\0') {
        Some(at) => Err(LoadError::at(
            path,
            text,
            None,
            at..at,
            "a NUL byte: case files are TOML text",
        )),
        None => Ok(text),
    }
}

fn load_selected(
    path: &Path,
    area: &str,
    bytes: &[u8],
    catalogue: &Catalogue,
    only: Option<(usize, Option<&str>)>,
) -> Result<Vec<Case>, LoadError> {
    let text = text_of(path, bytes)?;
    let doc = DeTable::parse(text).map_err(|e| LoadError::from_toml(path, text, None, &e))?;
    let tables = case_tables(path, text, &doc, only.map(|(i, _)| i))?;
    let single = !doc.get_ref().contains_key("case");
    let mut out = Vec::new();
    for (index, table) in tables.into_iter().enumerate() {
        // Unselected cases were checked for shape but not copied.
        let Some(table) = table else { continue };
        let label = only.map(|(_, l)| l);
        for (combo, case_table) in matrix::expand(path, text, &doc, &table, label)? {
            let de = toml::de::Deserializer::from(case_table.clone());
            let spec: CaseSpec =
                serde::Deserialize::deserialize(de).map_err(|e| LoadError::from_toml(path, text, Some(&doc), &e))?;
            let written = validate::Written {
                path,
                text,
                doc: &doc,
                table: &case_table,
            };
            let naming = validate::Naming {
                area,
                index,
                single,
                label: combo.as_deref(),
            };
            let case = validate::finish(written, naming, spec, catalogue)?;
            if let Some(first) = out.iter().find(|c: &&Case| c.id == case.id) {
                let at = format!("case[{index}]");
                let span = error::key_span(doc.get_ref(), &at, "name").unwrap_or(table.span());
                return Err(LoadError::at(
                    path,
                    text,
                    Some(&doc),
                    span,
                    format!("case `{}` is already defined at line {}", case.id, first.line),
                ));
            }
            out.push(case);
        }
    }
    Ok(out)
}

/// A case table as its trial sees it: matrix expanded (`matrix` removed,
/// `label` kept), as plain TOML, with where it sits in its file.
pub struct Expanded {
    pub index: usize,
    pub label: Option<String>,
    pub table: toml::Table,
}

/// Every case table of a file once per matrix combination, for tools that
/// rewrite cases (`nsconform mutate`). The file must load (see `load_bytes`).
pub fn expanded_tables(path: &Path, text: &str) -> Result<Vec<Expanded>, LoadError> {
    let doc = DeTable::parse(text).map_err(|e| LoadError::from_toml(path, text, None, &e))?;
    let mut out = Vec::new();
    for (index, table) in case_tables(path, text, &doc, None)?.into_iter().enumerate() {
        let Some(table) = table else { continue };
        for (label, t) in matrix::expand(path, text, &doc, &table, None)? {
            let de = toml::de::Deserializer::from(t);
            let table: toml::Table =
                serde::Deserialize::deserialize(de).map_err(|e| LoadError::from_toml(path, text, Some(&doc), &e))?;
            out.push(Expanded { index, label, table });
        }
    }
    Ok(out)
}

/// The case tables of a document: the top level (one case) or `[[case]]`
/// items; with `want`, only that one is copied out (the others are None).
fn case_tables<'i>(
    path: &Path,
    text: &str,
    doc: &Spanned<DeTable<'i>>,
    want: Option<usize>,
) -> Result<Vec<Option<Spanned<DeTable<'i>>>>, LoadError> {
    let top = doc.get_ref();
    if top.is_empty() {
        return Err(LoadError::whole_file(
            path,
            "the file defines no case (expected `[child]` for one case or `[[case]]` items)",
        ));
    }
    let Some(cases) = top.get("case") else {
        return Ok(vec![want.is_none_or(|w| w == 0).then(|| doc.clone())]);
    };
    let stray: Vec<_> = top.iter().filter(|(k, _)| k.get_ref() != "case").collect();
    if let Some((k, _)) = stray.first() {
        return Err(LoadError::at(
            path,
            text,
            Some(doc),
            k.span(),
            format!(
                "`{}` sits beside `[[case]]` items: in a file of several cases every key belongs to a `[[case]]`",
                k.get_ref()
            ),
        ));
    }
    let DeValue::Array(items) = cases.get_ref() else {
        return Err(LoadError::at(
            path,
            text,
            Some(doc),
            cases.span(),
            "`case` must be an array of tables (`[[case]]`)",
        ));
    };
    if items.is_empty() {
        return Err(LoadError::at(
            path,
            text,
            Some(doc),
            cases.span(),
            "`case` holds no case",
        ));
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.get_ref() {
            DeValue::Table(t) => out.push(
                want.is_none_or(|w| w == i)
                    .then(|| Spanned::new(item.span(), t.clone())),
            ),
            _ => {
                return Err(LoadError::at(
                    path,
                    text,
                    Some(doc),
                    item.span(),
                    "each `case` item must be a table",
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Vec<Case>, LoadError> {
        load_bytes(
            Path::new("cases/uts/t.toml"),
            "uts",
            text.as_bytes(),
            Catalogue::builtin(),
        )
    }

    const ONE: &str = r#"
covers = ["U1"]
[child]
namespaces = ["uts"]
isolation = { ns.uts = "differs" }
"#;

    #[test]
    fn one_case_is_named_after_its_file() {
        let c = load(ONE).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].id, "uts::t");
        assert_eq!(c[0].line, 1);
    }

    #[test]
    fn several_cases_need_names_and_get_their_lines() {
        let text = "[[case]]\nname = \"a\"\ncovers = [\"U1\"]\ncontrol = { none = \"x\" }\nchild = {}\n\n[[case]]\nname = \"b\"\ncovers = [\"U2\"]\ncontrol = { none = \"x\" }\nchild = {}\n";
        let c = load(text).unwrap();
        assert_eq!(
            c.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["uts::a", "uts::b"]
        );
        let e = load("[[case]]\ncovers = [\"U1\"]\nchild = {}\n").unwrap_err();
        assert!(e.message.contains("needs a `name`"), "{e}");
    }

    #[test]
    fn a_matrix_expands_with_labels_and_substitution() {
        let text = r#"
covers = ["X5"]
matrix = { ns = ["uts", "ipc"], how = ["clone"] }
control = { none = "x" }
[child]
run = [{ clone = { flags = ["{ns}"] }, errno = "EPERM" }]
"#;
        let c = load(text).unwrap();
        let ids: Vec<_> = c.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["uts::t::clone_uts", "uts::t::clone_ipc"]);
        let step = &c[1].spec.child.get_ref().run[0];
        assert!(matches!(&step.get_ref().op, step::Op::Clone(a) if a.flags.describe() == "ipc"));
    }

    #[test]
    fn impossible_combinations_are_errors_with_lines() {
        let cases = [
            ("covers = [\"X1\"]\n[child]\nhow = \"unshare\"\n", "nothing to unshare"),
            (
                "covers = [\"T2\"]\n[child]\ntime_offsets = { monotonic = 1 }\n",
                "without a new time namespace",
            ),
            ("covers = [\"R5\"]\n[child]\nuid_map = \"0 0 1\"\n", "creates none"),
            (
                "covers = [\"U1\"]\n[child]\nnamespaces = [\"uts\"]\n",
                "no isolation assertion",
            ),
            (
                "covers = [\"Z9\"]\ncontrol = { none = \"x\" }\nchild = {}\n",
                "unknown behaviour ID `Z9`",
            ),
            (
                "covers = [\"U1\"]\ncontrol = { none = \"x\" }\n[child]\nrun = [{ sh = \"echo {prop}\" }]\n",
                "unknown placeholder",
            ),
            (
                "covers = [\"U1\"]\ncontrol = { none = \"x\" }\n[child]\nrun = [{ sethostname = \"a\", mount = { target = \"/\" } }]\n",
                "does one thing",
            ),
            ("", "defines no case"),
        ];
        for (text, want) in cases {
            let e = load(text).unwrap_err();
            assert!(e.message.contains(want), "{text:?}: {e}");
            assert!(e.line >= 1);
        }
    }

    #[test]
    fn exit_takes_a_status_a_signal_name_or_a_table() {
        let exit_of = |e: &str| {
            let text = format!("covers = [\"P1\"]\ncontrol = {{ none = \"x\" }}\nchild.exit = {e}\n");
            load(&text).map(|c| c[0].spec.child.get_ref().exit.clone().unwrap())
        };
        use model::ExitSpec::{Signal, Status};
        assert_eq!(exit_of("3").unwrap(), Status(3));
        assert_eq!(exit_of("\"SIGKILL\"").unwrap(), Signal("SIGKILL".into()));
        assert_eq!(exit_of("\"TERM\"").unwrap(), Signal("SIGTERM".into()));
        assert_eq!(exit_of("{ signal = \"SIGKILL\" }").unwrap(), Signal("SIGKILL".into()));
        assert_eq!(exit_of("{ status = 0 }").unwrap(), Status(0));
        for bad in [
            "\"9\"",
            "-1",
            "\"\"",
            "{}",
            "{ signal = \"SIGKILL\", status = 1 }",
            "1.5",
        ] {
            let e = exit_of(bad).unwrap_err();
            assert_eq!(e.field, "child.exit", "{bad}: {e}");
            assert!(e.message.contains("`exit` is an exit status 0..255"), "{bad}: {e}");
        }
    }

    #[test]
    fn binary_and_oversized_input_is_refused_without_parsing() {
        let e = load_bytes(Path::new("x.toml"), "uts", &[0xff, 0xfe, 0x00], Catalogue::builtin()).unwrap_err();
        assert!(e.message.contains("not UTF-8"), "{e}");
        let big = vec![b'#'; MAX_FILE_BYTES + 1];
        let e = load_bytes(Path::new("x.toml"), "uts", &big, Catalogue::builtin()).unwrap_err();
        assert!(e.message.contains("limited"), "{e}");
    }
}
