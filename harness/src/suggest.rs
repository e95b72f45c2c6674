//! "Did you mean": the known words nearest a misspelt one, for every error
//! that names an unknown key, step, feature or name.

/// The edit distance between two words: insertions, deletions,
/// substitutions and swaps of neighbours, one each (so `hostnmae` is one
/// from `hostname`).
pub fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Three rows of the table: two back (for swaps), the last, this one.
    let mut older: Vec<usize> = vec![0; b.len() + 1];
    let mut last: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (last[j] + 1).min(row[j - 1] + 1).min(last[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(older[j - 2] + 1);
            }
        }
        older = std::mem::replace(&mut last, row);
    }
    last[b.len()]
}

/// At most this many suggestions.
const MAX: usize = 3;

/// The known words nearest `word`: of those within a third of its length
/// (at least one edit) or holding it whole (`sethostname` for `hostname`),
/// the ones at the smallest distance. At most three.
pub fn nearest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    let lower = word.to_ascii_lowercase();
    let mut close: Vec<(usize, &'a str)> = known
        .into_iter()
        .filter(|k| *k != word)
        .filter_map(|k| {
            let d = distance(&lower, &k.to_ascii_lowercase());
            let holds = lower.len() >= 4 && k.contains(lower.as_str());
            (d <= limit || holds).then_some((d, k))
        })
        .collect();
    close.sort();
    close.dedup_by(|a, b| a.1 == b.1);
    let best = close.first().map_or(0, |(d, _)| *d);
    close
        .into_iter()
        .take_while(|(d, _)| *d == best)
        .take(MAX)
        .map(|(_, k)| k)
        .collect()
}

/// " (did you mean `a`?)", " (did you mean `a` or `b`?)", or "" when no
/// known word is close.
pub fn did_you_mean<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    match nearest(word, known).as_slice() {
        [] => String::new(),
        [one] => format!(" (did you mean `{one}`?)"),
        [rest @ .., last] => {
            let rest: Vec<String> = rest.iter().map(|k| format!("`{k}`")).collect();
            format!(" (did you mean {} or `{last}`?)", rest.join(", "))
        }
    }
}

/// Lists longer than this are left out of a message that has suggestions.
const LIST_MAX: usize = 12;

/// serde's "unknown field `x`, expected one of `a`, `b`, ..." (and
/// "unknown variant"), rewritten around the nearest valid names: the whole
/// list only when it is short or nothing is near.
pub fn rewrite_unknown(message: &str) -> String {
    let Some((what, word, rest)) = ["unknown field `", "unknown variant `"].iter().find_map(|head| {
        let at = message.find(head)?;
        let after = &message[at + head.len()..];
        let end = after.find('`')?;
        Some((&message[..at + head.len() - 2], &after[..end], &after[end + 1..]))
    }) else {
        return message.to_string();
    };
    let known: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    if known.is_empty() {
        return message.to_string();
    }
    let hint = did_you_mean(word, known.iter().copied());
    let list = || known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    match (hint.is_empty(), known.len() <= LIST_MAX) {
        (false, _) => format!("{what} `{word}`{hint}"),
        (true, true) => format!("{what} `{word}`, expected one of {}", list()),
        (true, false) => format!(
            "{what} `{word}`: none of the {} names allowed here is near it",
            known.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("hostname", "hostname"), 0);
        assert_eq!(distance("hostnmae", "hostname"), 1);
        assert_eq!(distance("ipx", "ipc"), 1);
        assert_eq!(distance("covrage", "coverage"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn the_nearest_and_only_those() {
        let known = ["sethostname", "setdomainname", "setns", "setuid", "mount", "umount"];
        assert_eq!(nearest("sethostnme", known), ["sethostname"]);
        assert_eq!(nearest("hostname", known), ["sethostname"]);
        assert_eq!(nearest("mout", known), ["mount"]);
        assert!(nearest("completely_else", known).is_empty());
        // Only the nearest: `umount` is two edits from `mountt`, `mount` one.
        assert_eq!(did_you_mean("mountt", known), " (did you mean `mount`?)");
        assert_eq!(
            did_you_mean("setnss", ["setns", "setnsx"]),
            " (did you mean `setns` or `setnsx`?)"
        );
        assert_eq!(did_you_mean("xyz", known), "");
    }

    #[test]
    fn serde_lists_become_suggestions() {
        let m = "unknown field `hostnmae`, expected one of `hostname`, `domainname`, `ns`";
        assert_eq!(
            rewrite_unknown(m),
            "unknown field `hostnmae` (did you mean `hostname`?)"
        );
        let m = "unknown variant `ipx`, expected one of `uts`, `ipc`, `pid`";
        assert_eq!(rewrite_unknown(m), "unknown variant `ipx` (did you mean `ipc`?)");
        let m = "unknown field `zzz`, expected `a` or `b`";
        assert_eq!(rewrite_unknown(m), "unknown field `zzz`, expected one of `a`, `b`");
        let many: Vec<String> = (0..40).map(|i| format!("`key{i}`")).collect();
        let m = format!("unknown field `zzz`, expected one of {}", many.join(", "));
        assert_eq!(
            rewrite_unknown(&m),
            "unknown field `zzz`: none of the 40 names allowed here is near it"
        );
        assert_eq!(rewrite_unknown("invalid type: string"), "invalid type: string");
    }
}
