//! "Did you mean": the known word nearest to a misspelt one, when it is near
//! enough to be what was meant.

/// Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`,
/// case ignored.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    // Three rows of the table: two back (for a swap), one back, this one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut last: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (last[j] + 1).min(row[j - 1] + 1).min(last[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut last, row);
    }
    last[b.len()]
}

/// How many edits still read as a slip rather than another word: one for
/// short words, about a third of the length for longer ones.
pub fn near_enough(word: &str, edits: usize) -> bool {
    edits > 0 && edits <= (word.chars().count() / 3).max(1)
}

/// The known word `word` most likely misspells, if one is near enough.
pub fn nearest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (distance(word, k), k))
        .filter(|(d, k)| near_enough(k, *d))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slips_are_near_and_other_words_are_not() {
        assert_eq!(distance("covrage", "coverage"), 1);
        assert_eq!(distance("contorls", "controls"), 1, "a swap is one edit");
        assert_eq!(distance("", "vm"), 2);
        assert_eq!(distance("VM", "vm"), 0);
        let commands = [
            "features", "coverage", "controls", "mutate", "bench", "vm", "matrix", "audit",
        ];
        assert_eq!(nearest("covrage", commands), Some("coverage"));
        assert_eq!(nearest("vn", commands), Some("vm"));
        assert_eq!(nearest("audti", commands), Some("audit"));
        assert_eq!(nearest("uts", commands), None);
        assert_eq!(nearest("coverage", commands), None, "the word itself is no slip");
        assert_eq!(nearest("pid::", commands), None);
    }
}
