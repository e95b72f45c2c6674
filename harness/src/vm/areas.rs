//! The table a run on another kernel ends with: each area's behaviours (a
//! case with its control folded in, as in the compatibility table) passed,
//! failed and ignored; then the failures, each with its catalogue IDs and
//! why, and the ignores grouped by reason. Rendered from the run's records.

use crate::record::baseline::{Cell, cell_of};
use crate::record::{Kind, RunRecord, Verdict};
use std::collections::BTreeMap;

/// One area's cells, by case name.
type Areas<'a> = BTreeMap<&'a str, Vec<(&'a str, Cell)>>;

fn by_area(run: &RunRecord) -> Areas<'_> {
    let mut areas: Areas = BTreeMap::new();
    for t in run.trials.iter().filter(|t| t.kind == Kind::Case) {
        if let Some(cell) = cell_of(&run.trials, &t.name) {
            areas.entry(t.area()).or_default().push((t.name.as_str(), cell));
        }
    }
    areas
}

/// Passed, failed (errors and unexpected passes too), ignored.
fn counts(cells: &[(&str, Cell)]) -> [usize; 3] {
    let mut n = [0; 3];
    for (_, c) in cells {
        let i = match c.verdict {
            Verdict::Pass | Verdict::Xfail => 0,
            Verdict::Ignored => 2,
            _ => 1,
        };
        n[i] += 1;
    }
    n
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim()
}

/// The table, the failures and the ignores by reason.
pub fn render(run: &RunRecord, covers: &BTreeMap<String, Vec<String>>) -> String {
    let areas = by_area(run);
    let mut s = format!(
        "\nbehaviours by area (a case with its control):\n{:<8} {:>7} {:>7} {:>8}\n",
        "area", "passed", "failed", "ignored"
    );
    let mut all = [0; 3];
    for (area, cells) in &areas {
        let n = counts(cells);
        (0..3).for_each(|i| all[i] += n[i]);
        s.push_str(&format!("{area:<8} {:>7} {:>7} {:>8}\n", n[0], n[1], n[2]));
    }
    s.push_str(&format!("{:<8} {:>7} {:>7} {:>8}\n", "all", all[0], all[1], all[2]));
    let failed: Vec<_> = areas
        .values()
        .flatten()
        .filter(|(_, c)| !matches!(c.verdict, Verdict::Pass | Verdict::Xfail | Verdict::Ignored))
        .collect();
    if !failed.is_empty() {
        s.push_str("\nfailed:\n");
    }
    for (case, c) in failed {
        let ids = covers.get(*case).map(|c| c.join(" ")).unwrap_or_default();
        s.push_str(&format!(
            "  {case} [{ids}] {}: {}\n",
            c.verdict.name(),
            first_line(&c.reason)
        ));
    }
    let mut reasons: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (case, c) in areas.values().flatten().filter(|(_, c)| c.verdict == Verdict::Ignored) {
        reasons.entry(c.short_reason()).or_default().push(case);
    }
    if !reasons.is_empty() {
        s.push_str("\nignored, by reason:\n");
    }
    for (why, cases) in reasons {
        s.push_str(&format!("  {why} ({}): {}\n", cases.len(), cases.join(", ")));
    }
    s
}

/// Each case's catalogue IDs.
pub fn covers(cases: Option<&std::path::Path>) -> BTreeMap<String, Vec<String>> {
    let dir = cases
        .map(std::path::PathBuf::from)
        .unwrap_or_else(crate::plan::env::cases_dir);
    match crate::load::load_dir(&dir, crate::load::Catalogue::builtin()) {
        Ok(l) => l
            .cases
            .iter()
            .map(|c| {
                (
                    c.id.clone(),
                    c.spec.covers.iter().map(|x| x.get_ref().clone()).collect(),
                )
            })
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::TrialRecord;

    #[test]
    fn areas_count_cases_with_their_controls_folded_in() {
        let t = |n: &str, k, v, why: &str| TrialRecord::new(n, k, v, why);
        let mut run = crate::record::stream::read(
            &(serde_json::to_string(&crate::record::stream::Line::Start {
                about: crate::record::About::here(true, "native"),
                plan: vec![],
                filtered_out: 0,
            })
            .unwrap()
                + "\n"),
            None,
        )
        .unwrap();
        run.trials = vec![
            t("uts::a", Kind::Case, Verdict::Pass, ""),
            t("control::uts::a", Kind::Control, Verdict::Fail, "the control held"),
            t("uts::b", Kind::Case, Verdict::Pass, ""),
            t("ipc::c", Kind::Case, Verdict::Ignored, "needs `sysvipc`: gone"),
        ];
        let covers = BTreeMap::from([("uts::a".to_string(), vec!["U1".to_string()])]);
        let text = render(&run, &covers);
        assert!(text.contains("uts            1       1        0"), "{text}");
        assert!(text.contains("ipc            0       0        1"), "{text}");
        assert!(text.contains("all            1       1        1"), "{text}");
        assert!(text.contains("uts::a [U1] fail: control: the control held"), "{text}");
        assert!(text.contains("needs `sysvipc` (1): ipc::c"), "{text}");
    }
}
