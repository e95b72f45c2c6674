//! Expected failures: a case marks the kernels on which it is known to fail
//! (a kernel bug, and where it was fixed). There a failure is `xfail` and a
//! pass `xpass` (the mark is stale); elsewhere the case is judged as ever.

use serde::Deserialize;
use toml::Spanned;

/// `xfail = [{ from = "5.10", fixed = "6.6", why = "..." }]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Xfail {
    /// The first kernel with the bug, `major.minor`; left out: every kernel before `fixed`.
    pub from: Option<Spanned<String>>,
    /// The first kernel with the fix, `major.minor`: the range ends before it.
    pub fixed: Spanned<String>,
    /// The bug and where it was fixed (the commit), for every report.
    pub why: Spanned<String>,
}

/// `major.minor` out of a version or a release (`6.1`, `6.1.0-50-amd64`, `6.12.48+deb13`).
pub fn major_minor(s: &str) -> Option<(u32, u32)> {
    let mut parts = s.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// A `major.minor` as a case writes it: two numbers and nothing else.
pub fn parse_version(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('.')?;
    let num = |x: &str| (!x.is_empty() && x.chars().all(|c| c.is_ascii_digit())).then(|| x.parse().ok())?;
    Some((num(a)?, num(b)?))
}

impl Xfail {
    /// Whether a kernel of this `major.minor` is in the range.
    pub fn covers(&self, kernel: (u32, u32)) -> bool {
        let from = self.from.as_ref().and_then(|f| parse_version(f.get_ref()));
        let fixed = parse_version(self.fixed.get_ref());
        from.is_none_or(|f| kernel >= f) && fixed.is_some_and(|f| kernel < f)
    }

    /// `Linux 5.10 to before 6.6` (or `before 6.6`).
    pub fn range(&self) -> String {
        match &self.from {
            Some(f) => format!("Linux {} up to {} (fixed there)", f.get_ref(), self.fixed.get_ref()),
            None => format!("Linux before {} (fixed there)", self.fixed.get_ref()),
        }
    }
}

/// The mark that covers a kernel of release `release`, as the reason a
/// report gives: the range and why.
pub fn mark_for(marks: &[Spanned<Xfail>], release: &str) -> Option<String> {
    let kernel = major_minor(release)?;
    marks
        .iter()
        .map(Spanned::get_ref)
        .find(|m| m.covers(kernel))
        .map(|m| format!("expected to fail on {}: {}", m.range(), m.why.get_ref().trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(text: &str) -> Vec<Spanned<Xfail>> {
        #[derive(Deserialize)]
        struct T {
            xfail: Vec<Spanned<Xfail>>,
        }
        toml::from_str::<T>(text).unwrap().xfail
    }

    #[test]
    fn a_mark_covers_its_range_only() {
        let m = marks(r#"xfail = [{ from = "5.10", fixed = "6.6", why = "bug X, fixed by commit abc" }]"#);
        assert_eq!(mark_for(&m, "5.9.0"), None);
        assert_eq!(
            mark_for(&m, "5.10.0-30-amd64").as_deref(),
            Some("expected to fail on Linux 5.10 up to 6.6 (fixed there): bug X, fixed by commit abc")
        );
        assert!(mark_for(&m, "6.5.13").is_some());
        assert_eq!(mark_for(&m, "6.6.0"), None);
        assert_eq!(mark_for(&m, "6.12.48+deb13-amd64"), None);
        let open = marks(r#"xfail = [{ fixed = "6.1", why = "w" }]"#);
        assert!(mark_for(&open, "4.19.0").is_some() && mark_for(&open, "6.1.0").is_none());
        assert_eq!(mark_for(&open, "not a release"), None);
    }

    #[test]
    fn versions_are_two_numbers() {
        assert_eq!(parse_version("6.12"), Some((6, 12)));
        assert_eq!(parse_version("6"), None);
        assert_eq!(parse_version("6.1.2"), None);
        assert_eq!(parse_version("v6.1"), None);
        assert_eq!(major_minor("7.2.0-rc1"), Some((7, 2)));
    }
}
