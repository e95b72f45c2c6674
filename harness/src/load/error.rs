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
    /// Dotted path of the field, e.g. `child.expect.hostname` (WHOLE_FILE for the file itself).
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

/// The field of an error about the file as a whole (size, encoding, no case).
pub const WHOLE_FILE: &str = "(the whole file)";

impl LoadError {
    pub fn whole_file(file: &Path, message: impl Into<String>) -> LoadError {
        LoadError {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            field: WHOLE_FILE.into(),
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
        // Without a document (a syntax error) the field is read off the text.
        let field = match doc {
            Some(d) => field_at(d.get_ref(), span.start),
            None => field_near(text, span.start),
        }
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| WHOLE_FILE.into());
        LoadError {
            file: file.to_path_buf(),
            line,
            column,
            field,
            message: message.into(),
        }
    }

    pub fn from_toml(file: &Path, text: &str, doc: Option<&Spanned<DeTable<'_>>>, err: &toml::de::Error) -> LoadError {
        let mut span = err.span().unwrap_or(0..0);
        let message = crate::suggest::rewrite_unknown(err.message().trim());
        // An unknown key of a table read by hand (a step) is reported at the
        // table: point at the key itself, so the field names it.
        if let (Some(d), Some(key)) = (doc, unknown_key(&message)) {
            let path = field_at(d.get_ref(), span.start).unwrap_or_default();
            if let Some(k) = key_span(d.get_ref(), &path, key) {
                span = k;
            }
        }
        LoadError::at(file, text, doc, span, message)
    }
}

/// The key an "unknown field `KEY`" message names.
fn unknown_key(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
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

/// For text that did not parse: the key being written at `offset`, under
/// the table header above it (`[[case]]` items counted), from the lines
/// alone. A best effort that is right for the usual slips: an unclosed
/// array or string, a missing `=` or comma.
pub fn field_near(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let mut table = String::new();
    let mut items: std::collections::BTreeMap<String, usize> = Default::default();
    let mut key: Option<String> = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let start = at;
        at += line.len();
        // An error at the very start of a line is about what came before it
        // (a `[table]` line that cuts an unclosed array short, say).
        let first = start + (line.len() - line.trim_start().len());
        if first >= offset {
            break;
        }
        let t = line.trim();
        if t.starts_with('[') {
            // A header, perhaps a malformed one (`[[case]`, `[[[case]]]`):
            // its name without the brackets, when that is a plain dotted key.
            let name = header_name(t);
            table = match (&name, t.starts_with("[[")) {
                (Some(name), true) => {
                    let n = items.entry(name.clone()).and_modify(|n| *n += 1).or_insert(0);
                    format!("{name}[{n}]")
                }
                (Some(name), false) => name.clone(),
                (None, _) => String::new(),
            };
            key = None;
        } else if let Some((k, _)) = t.split_once('=') {
            let k = k.trim();
            let bare = |c: char| c.is_ascii_alphanumeric() || "_-.\"' ".contains(c);
            if !k.is_empty() && k.chars().all(bare) && !t.starts_with('#') && !line.starts_with([' ', '\t']) {
                let k = k.replace([' ', '"', '\''], "");
                key = (!k.is_empty()).then_some(k);
            }
        }
    }
    match (table.is_empty(), key) {
        (true, None) => None,
        (true, Some(k)) => Some(k),
        (false, None) => Some(table),
        (false, Some(k)) => Some(format!("{table}.{k}")),
    }
}

/// The dotted name a `[table]` or `[[array]]` header line declares, without
/// quotes and with any number of brackets; None when it is no plain key.
fn header_name(line: &str) -> Option<String> {
    let inner = line.trim_start_matches(['[', ' ', '\t']);
    let inner = inner.split(']').next()?;
    let ok = |c: char| c.is_ascii_alphanumeric() || "_-.\"' \t".contains(c);
    let name: String = inner.chars().filter(|c| !"\"' \t".contains(*c)).collect();
    let sane = !name.is_empty() && inner.chars().all(ok) && name.split('.').all(|part| !part.is_empty());
    sane.then_some(name)
}

/// The span of key `name` in the table found at dotted `path` (as
/// `field_at` writes it: `case[1].child.run[0].spawn`), to point at
/// `uid_map` itself rather than at the table that holds it.
pub fn key_span(doc: &DeTable<'_>, path: &str, name: &str) -> Option<Range<usize>> {
    let mut table = doc;
    if !path.is_empty() {
        for part in path.split('.') {
            let (key, index) = match part.split_once('[') {
                Some((k, i)) => (k, i.trim_end_matches(']').parse::<usize>().ok()),
                None => (part, None),
            };
            let mut v = table.get(key)?.get_ref();
            if let Some(i) = index {
                match v {
                    DeValue::Array(a) => v = a.get(i)?.get_ref(),
                    _ => return None,
                }
            }
            match v {
                DeValue::Table(t) => table = t,
                _ => return None,
            }
        }
    }
    table.iter().find(|(k, _)| k.get_ref() == name).map(|(k, _)| k.span())
}

/// The first byte at or after `offset` that is neither blank nor a comment:
/// where a case that starts at `offset` visibly begins.
pub fn first_content(text: &str, offset: usize) -> usize {
    let mut at = offset.min(text.len());
    for line in text[at..].split_inclusive('\n') {
        let t = line.trim_start();
        if !t.is_empty() && !t.starts_with('#') {
            return at + (line.len() - t.len());
        }
        at += line.len();
    }
    offset.min(text.len())
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
