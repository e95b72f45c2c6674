//! JSON for the audit: an OCI config.json is read with serde_json, and the
//! `--json` output quotes its strings the same way.

/// A JSON string literal.
pub fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn strings_are_quoted_and_escaped() {
        assert_eq!(super::quote("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\u0001""#);
    }
}
