//! Load errors that name the file, line, column and field.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

#[derive(Clone, Debug, PartialEq)]
pub struct LoadError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted path of the field, e.g. `child.expect.hostname` ("-" for the whole file).
    pub field: String,
    pub message: String,
}

/// A path as the user should see it: relative to the working directory when under it.
pub fn shown(p: &Path) -> String {
    match std::env::current_dir() {
        Ok(cwd) => p.strip_prefix(&cwd).unwrap_or(p).display().to_string(),
        Err(_) => p.display().to_string(),
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: field `{}`: {}",
            shown(&self.file),
            self.line,
            self.column,
            self.field,
            self.message
        )
    }
}

impl std::error::Error for LoadError {}

impl LoadError {
    pub fn whole_file(file: &Path, message: impl Into<String>) -> LoadError {
        LoadError {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            field: "-".into(),
            message: message.into(),
        }
    }

    /// An error at a byte span of `text`; the field is found from the document tree.
    pub fn at(
        file: &Path,
        text: &str,
        doc: Option<&Spanned<DeTable<'_>>>,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> LoadError {
        let (line, column) = line_col(text, span.start);
        let field = doc
            .and_then(|d| field_at(d.get_ref(), span.start))
            .unwrap_or_else(|| "-".into());
        LoadError {
            file: file.to_path_buf(),
            line,
            column,
            field,
            message: message.into(),
        }
    }

    pub fn from_toml(file: &Path, text: &str, doc: Option<&Spanned<DeTable<'_>>>, err: &toml::de::Error) -> LoadError {
        let span = err.span().unwrap_or(0..0);
        LoadError::at(file, text, doc, span, err.message().trim())
    }
}

/// 1-based line and column of a byte offset (columns count characters).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    (line, column)
}

/// The dotted path of the innermost key or value that covers `offset`.
pub fn field_at(table: &DeTable<'_>, offset: usize) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    walk_table(table, String::new(), offset, &mut best);
    best.map(|(_, p)| p)
}

fn covers(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && (offset < span.end || (span.is_empty() && offset == span.start))
}

fn consider(best: &mut Option<(usize, String)>, span: &Range<usize>, path: &str) {
    let width = span.end - span.start;
    if best.as_ref().is_none_or(|(w, _)| width <= *w) {
        *best = Some((width, path.to_string()));
    }
}

fn walk_table(table: &DeTable<'_>, prefix: String, offset: usize, best: &mut Option<(usize, String)>) {
    for (k, v) in table.iter() {
        let path = if prefix.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{prefix}.{}", k.get_ref())
        };
        if covers(&k.span(), offset) {
            consider(best, &k.span(), &path);
        }
        walk_value(v, path, offset, best);
    }
}

fn walk_value(v: &Spanned<DeValue<'_>>, path: String, offset: usize, best: &mut Option<(usize, String)>) {
    if covers(&v.span(), offset) {
        consider(best, &v.span(), &path);
    }
    match v.get_ref() {
        DeValue::Table(t) => walk_table(t, path, offset, best),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                walk_value(item, format!("{path}[{i}]"), offset, best);
            }
        }
        _ => {}
    }
}
