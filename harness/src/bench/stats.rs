//! Small statistics over measured figures.

/// The value at fraction `p` (0 to 1) of the sorted values; 0 for none.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i]
}

/// Median and 90th percentile.
pub fn median_p90(mut v: Vec<f64>) -> (f64, f64) {
    (percentile(&mut v, 0.5), percentile(&mut v, 0.9))
}

pub fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The machine's load average over the last minute: other work on it
/// slows every figure, so the output says how busy it was.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_sorted_values() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&mut v, 0.5), 3.0);
        assert_eq!(percentile(&mut v, 0.0), 1.0);
        assert_eq!(percentile(&mut v, 1.0), 5.0);
        assert_eq!(percentile(&mut [], 0.5), 0.0);
        assert_eq!(median_p90(vec![1.0; 10]), (1.0, 1.0));
    }
}
